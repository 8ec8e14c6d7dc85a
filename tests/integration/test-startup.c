/* test-startup.c - where the core's start-up goes, as GET /v1/status reports it
 * (core.startup): the real nova-compute with real modules in a private network
 * namespace. The order is the point: the module registry, which has the spawner
 * fork every connected plug's module, comes before the stores load, so the
 * modules start while the core sets up the rest. (That nova-libvirt says hello
 * before it loads libvirt's libraries is test-libvirt-module's.) */
#include "harness.h"
#include "tmpdir.h"

#include <check.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define PLUGS "plugs = network-control libvirt hardware-observe system-observe process-control\n" \
              "libvirt_uri = test:///default\nvif_type = tap\n"

static struct core core;

/* The status once every connected plug's module has run (put it), within 10 s. */
static struct json_object *status_when_ready(void)
{
        for (int i = 0; i < 1000; i++) {
                struct json_object *st = NULL, *c, *ready;

                ck_assert_int_eq(core_api(&core, "GET", "/v1/status", NULL, &st), 200);
                ck_assert(json_object_object_get_ex(st, "core", &c));
                if (json_object_object_get_ex(c, "modules_ready_ms", &ready) && ready)
                        return st;
                json_object_put(st);
                sleep_ms(10);
        }
        ck_abort_msg("not every module ran within 10 s; see %s", core.log);
        return NULL;
}

static double num(struct json_object *o, const char *key)
{
        struct json_object *v;

        ck_assert_msg(json_object_object_get_ex(o, key, &v) && v, "no %s in %s", key, json_object_to_json_string(o));
        return json_object_get_double(v);
}

/* The index of the phase called name in phases, -1 when absent. */
static int phase_index(struct json_object *phases, const char *name)
{
        for (size_t i = 0; i < json_object_array_length(phases); i++) {
                struct json_object *n;
                if (json_object_object_get_ex(json_object_array_get_idx(phases, i), "name", &n) &&
                    streq(json_object_get_string(n), name))
                        return (int)i;
        }
        return -1;
}

START_TEST(test_startup_order_and_figures)
{
        struct json_object *st, *c, *s, *phases, *mods, *m;
        int reg, stores;
        double prev = 0, registry_ms, stores_end;
        const char *plugs[] = { "network-control", "libvirt", "hardware-observe", "system-observe", "process-control" };

        core_start(&core, PLUGS);
        st = status_when_ready();
        ck_assert(json_object_object_get_ex(st, "core", &c));
        ck_assert(json_object_object_get_ex(c, "startup", &s) && s);
        ck_assert_double_gt(num(s, "main_realtime_us"), 0);
        ck_assert_double_ge(num(s, "all_ready_realtime_us"), num(s, "main_realtime_us"));
        ck_assert(json_object_object_get_ex(s, "phases", &phases));
        /* the phases in order, each ending after the one before */
        for (size_t i = 0; i < json_object_array_length(phases); i++) {
                double end = num(json_object_array_get_idx(phases, i), "end_ms");
                ck_assert_double_ge(end, prev);
                prev = end;
        }
        reg = phase_index(phases, "module registry (modules spawned)");
        stores = phase_index(phases, "stores loaded");
        ck_assert_int_ge(reg, 0);
        ck_assert_int_ge(stores, 0);
        ck_assert_msg(reg < stores, "the modules are spawned after the stores load (phase %d, stores %d)", reg,
                      stores);
        ck_assert_int_lt(phase_index(phases, "privileges dropped"), reg);
        registry_ms = num(s, "registry_ms");
        stores_end = num(json_object_array_get_idx(phases, (size_t)stores), "end_ms");
        ck_assert_double_le(registry_ms, stores_end);

        /* every connected plug: forked by the spawner after the registry started, hello after that */
        ck_assert(json_object_object_get_ex(s, "modules", &mods));
        ck_assert_uint_eq(json_object_object_length(mods), 5);
        for (size_t i = 0; i < sizeof(plugs) / sizeof(plugs[0]); i++) {
                ck_assert_msg(json_object_object_get_ex(mods, plugs[i], &m), "no start-up figures of %s", plugs[i]);
                ck_assert_double_ge(num(m, "spawned_ms"), registry_ms);
                ck_assert_double_ge(num(m, "hello_ms"), num(m, "spawned_ms"));
                ck_assert_double_le(num(m, "hello_ms"), num(c, "modules_ready_ms") + registry_ms + 1);
        }
        json_object_put(st);
        core_stop(&core);
}
END_TEST

/* A child runs a core as a test would and exits with status (without stopping
 * the core when it fails, as a failed assertion does); the core's dir comes
 * back in ret and the core's pid in ret_pid. */
static void core_in_child(int status, char ret[PATH_MAX], pid_t *ret_pid)
{
        int fds[2], wstatus;
        ssize_t n;
        pid_t pid;

        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct core c = { 0 };

                (void)unsetenv("NOVA_IT_KEEP");
                core_start(&c, "plugs = network-control\n");
                if (write(fds[1], &c.pid, sizeof(c.pid)) < 0 || write(fds[1], c.dir, strlen(c.dir) + 1) < 0)
                        _exit(91);
                if (status == 0)
                        core_stop(&c);
                exit(status);
        }
        ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
        ck_assert_msg(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == status, "child status %d", wstatus);
        close(fds[1]);
        ck_assert_int_eq(read(fds[0], ret_pid, sizeof(*ret_pid)), (ssize_t)sizeof(*ret_pid));
        n = read(fds[0], ret, PATH_MAX);
        ck_assert_int_gt(n, 0);
        ret[n - 1] = '\0';
        close(fds[0]);
}

/* The harness's temp dir of a core (/tmp/nova-it-*) goes with a passing test,
 * and stays (its core stopped) after a failing one, to be looked at. */
START_TEST(test_core_dir_removed_after_a_pass)
{
        char dir[PATH_MAX], log[PATH_MAX + 16];
        struct stat st;
        pid_t core_pid;

        core_in_child(0, dir, &core_pid);
        ck_assert_msg(strncmp(dir, "/tmp/nova-it-", 13) == 0, "%s", dir);
        ck_assert_msg(lstat(dir, &st) < 0 && errno == ENOENT, "%s left behind after a pass", dir);

        core_in_child(1, dir, &core_pid);
        ck_assert(wait_process_gone(core_pid, 2000));
        (void)snprintf(log, sizeof(log), "%s/core.log", dir);
        ck_assert_msg(lstat(log, &st) == 0, "%s not kept after a failure", dir);
        ck_assert_int_eq(test_tmpdir_remove(dir), 0);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("startup");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        harness_enter_netns("test-startup");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_startup_order_and_figures);
        tcase_add_test(tc, test_core_dir_removed_after_a_pass);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
