/* test-snap-mode.c - the core as it runs inside the snap: no spawner, plug
 * state from `snapctl is-connected --list`, module apps (started by systemd
 * in the snap, by this test here) connecting to <run_dir>/modules.socket.
 *
 * snapd cannot run on this machine: a stand-in `snapctl` on PATH answers
 * is-connected from a file the test writes and records every call. What this
 * test cannot show is AppArmor's label on the module socket (no LSM here);
 * that part is checked by the end-to-end test under real snapd. */
#include "harness.h"

#include "apiclient.h"
#include "names.h"
#include "tmpdir.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char dir[PATH_MAX], api_sock[PATH_MAX], mod_sock[PATH_MAX], connected_file[PATH_MAX], calls_file[PATH_MAX],
        log_path[PATH_MAX];
static pid_t core_pid;
static bool old_snapd; /* the stand-in answers like snapd 2.57: no is-connected --list */

static void msleep(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static void set_connected(const char *plugs)
{
        ck_assert_int_eq(write_file_atomic(connected_file, plugs, strlen(plugs), 0644), 0);
}

static pid_t spawn(const char *prog, const char *arg1, const char *arg2)
{
        char path[PATH_MAX];
        const char *bin = getenv("NOVA_BIN");
        pid_t pid;

        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/%s", bin ? bin : "build/bin", prog), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
                dup2(log, 1);
                dup2(log, 2);
                execl(path, prog, arg1, arg2, (char *)NULL);
                _exit(127);
        }
        return pid;
}

static void setup(void)
{
        char path[PATH_MAX], script[2048], envpath[4096], list_answer[PATH_MAX + 16];
        struct json_object *st = NULL;

        ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* the core's children, once it is gone */
        ck_assert_int_eq(test_tmpdir_make("nova-snap", dir, sizeof(dir)), 0);
        static const char *const subdirs[] = { "snap", "data", "common", "bin" };
        for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
                ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]), 0);
                ck_assert_int_eq(mkdir(path, 0755), 0);
        }
        ck_assert_int_eq(xsnprintf(connected_file, sizeof(connected_file), "%s/connected", dir), 0);
        ck_assert_int_eq(xsnprintf(calls_file, sizeof(calls_file), "%s/snapctl.calls", dir), 0);
        ck_assert_int_eq(xsnprintf(log_path, sizeof(log_path), "%s/log", dir), 0);
        if (old_snapd)
                (void)strscpy(list_answer, "echo \"error: unknown flag \\`list'\" >&2; exit 1", sizeof(list_answer));
        else
                ck_assert_int_eq(xsnprintf(list_answer, sizeof(list_answer), "cat %s", connected_file), 0);
        ck_assert_int_eq(xsnprintf(script, sizeof(script),
                                   "#!/bin/sh\n"
                                   "# stand-in for snapctl: snapd cannot run here\n"
                                   "echo \"$*\" >> %s\n"
                                   "case \"$1 $2\" in\n"
                                   "  'is-connected --list') %s ;;\n"
                                   "  'is-connected '*) grep -qx \"$2\" %s ;;\n"
                                   "  *) echo \"error: unsupported in the stand-in: $*\" >&2; exit 1 ;;\n"
                                   "esac\n",
                                   calls_file, list_answer, connected_file),
                         0);
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/bin/snapctl", dir), 0);
        ck_assert_int_eq(write_file_atomic(path, script, strlen(script), 0755), 0);

        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/snap", dir), 0);
        setenv("SNAP", path, 1);
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/data", dir), 0);
        setenv("SNAP_DATA", path, 1);
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/common", dir), 0);
        setenv("SNAP_COMMON", path, 1);
        ck_assert_int_eq(xsnprintf(envpath, sizeof(envpath), "%s/bin:%s", dir, getenv("PATH")), 0);
        setenv("PATH", envpath, 1);
        ck_assert_int_eq(xsnprintf(api_sock, sizeof(api_sock), "%s/data/run/nova-hypervisor.socket", dir), 0);
        ck_assert_int_eq(xsnprintf(mod_sock, sizeof(mod_sock), "%s/data/run/modules.socket", dir), 0);

        set_connected("network-control\nnetwork-bind\n");
        core_pid = spawn("nova-compute", NULL, NULL);
        for (int i = 0; i < 500; i++) {
                if (api_request(api_sock, "GET", "/v1/status", NULL, 2000, &st) == 200) {
                        json_object_put(st);
                        return;
                }
                msleep(10);
        }
        ck_abort_msg("core did not come up; see %s", log_path);
}

static void teardown(void)
{
        int status;

        kill(core_pid, SIGTERM);
        waitpid(core_pid, &status, 0);
        /* what the core had running (its `snapctl set-health`, reaped by its loop) is ours
         * now (the subreaper of setup): wait for it, so that nothing writes into the dir
         * once it is removed (tmpdir.h) */
        for (int t = 0; t < 500; t++) {
                pid_t p = waitpid(-1, &status, WNOHANG);
                if (p < 0)
                        break;
                if (p == 0)
                        msleep(10);
        }
}

static const char *module_field(const char *field, char *buf, size_t size)
{
        struct json_object *root = NULL, *plugs, *m, *v;

        ck_assert_int_eq(api_request(api_sock, "GET", "/v1/status", NULL, 5000, &root), 200);
        ck_assert(json_object_object_get_ex(root, "plugs", &plugs));
        for (size_t i = 0; i < json_object_array_length(plugs); i++) {
                struct json_object *p = json_object_array_get_idx(plugs, i);
                if (!streq(json_object_get_string(json_object_object_get(p, "plug")), "network-control"))
                        continue;
                if (streq(field, "connected"))
                        v = json_object_object_get(p, "connected");
                else {
                        ck_assert(json_object_object_get_ex(p, "module", &m));
                        v = json_object_object_get(m, field);
                }
                (void)strscpy(buf, v ? json_object_get_string(v) : "", size);
        }
        json_object_put(root);
        return buf;
}

static bool wait_state(const char *state, int timeout_ms)
{
        char buf[64];

        for (int t = 0; t <= timeout_ms; t += 10) {
                if (streq(module_field("state", buf, sizeof(buf)), state))
                        return true;
                msleep(10);
        }
        return false;
}

START_TEST(test_plug_state_from_snapctl)
{
        struct json_object *root = NULL, *core, *v;
        char buf[64];

        ck_assert(file_contains(calls_file, "is-connected --list"));
        ck_assert_str_eq(module_field("connected", buf, sizeof(buf)), "true");
        /* Nobody has started the module app yet: the core waits for it. */
        ck_assert_str_eq(module_field("state", buf, sizeof(buf)), "starting");
        ck_assert_int_eq(api_request(api_sock, "GET", "/v1/status", NULL, 5000, &root), 200);
        ck_assert(json_object_object_get_ex(root, "core", &core));
        ck_assert(json_object_object_get_ex(core, "snap", &v) && json_object_get_boolean(v));
        ck_assert(json_object_object_get_ex(core, "spawner_pid", &v) && json_object_get_int(v) == 0);
        json_object_put(root);
        /* Inside the snap, plugs are snapd's business. */
        ck_assert_int_eq(api_request(api_sock, "POST", "/v1/plugs/network-control/disconnect", NULL, 5000, &root), 409);
        ck_assert_ptr_nonnull(strstr(json_object_to_json_string(root), "snap disconnect"));
        json_object_put(root);
}
END_TEST

START_TEST(test_module_app_connects_and_serves)
{
        struct json_object *resp = NULL;
        char buf[512], uuid[37], tap[IFNAME_MAX], body[128];
        struct link_facts f;
        pid_t mod;
        int status;

        mod = spawn("nova-network-control", "--connect", mod_sock);
        ck_assert_msg(wait_state("running", 5000), "module did not register; see %s", log_path);
        ck_assert_int_eq(atoi(module_field("pid", buf, sizeof(buf))), mod);
        ck_assert(file_contains(calls_file, "is-connected network-control"));

        random_port_uuid(uuid);
        (void)snprintf(body, sizeof(body), "{\"port_uuid\":\"%s\",\"mtu\":1400}", uuid);
        ck_assert_int_eq(api_request(api_sock, "POST", "/v1/ports", body, 5000, &resp), 200);
        json_object_put(resp);
        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        ck_assert_int_eq(link_facts_get(tap, &f), 0);
        ck_assert_uint_eq(f.mtu, 1400);

        /* The app dies: the core says so and waits for systemd to restart it. */
        kill(mod, SIGKILL);
        waitpid(mod, &status, 0);
        ck_assert(wait_state("starting", 5000));
        ck_assert_msg(strstr(module_field("last_error", buf, sizeof(buf)), "systemd"), "last_error: %s", buf);
        ck_assert_int_eq(api_request(api_sock, "GET", "/v1/ports", NULL, 5000, &resp), 503);
        json_object_put(resp);

        /* "systemd" restarts it. */
        mod = spawn("nova-network-control", "--connect", mod_sock);
        ck_assert(wait_state("running", 5000));
        (void)snprintf(body, sizeof(body), "/v1/ports/%s", uuid);
        ck_assert_int_eq(api_request(api_sock, "DELETE", body, NULL, 5000, &resp), 200);
        json_object_put(resp);
        ck_assert_int_eq(link_facts_get(tap, &f), -ENOENT);
        kill(mod, SIGTERM);
        waitpid(mod, &status, 0);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

START_TEST(test_disconnected_plug_module_exits_cleanly)
{
        struct json_object *resp = NULL;
        char buf[64];
        pid_t mod;
        int status;

        /* snap disconnect, then the hook tells the core. */
        set_connected("network-bind\n");
        ck_assert_int_eq(api_request(api_sock, "POST", "/v1/plugs/refresh", NULL, 5000, &resp), 200);
        json_object_put(resp);
        ck_assert_str_eq(module_field("connected", buf, sizeof(buf)), "false");
        ck_assert_str_eq(module_field("state", buf, sizeof(buf)), "stopped");

        /* A module app started anyway checks snapctl and leaves quietly. */
        mod = spawn("nova-network-control", "--connect", mod_sock);
        waitpid(mod, &status, 0);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert(file_contains(log_path, "plug network-control is not connected; exiting"));

        /* If snapd says connected but the core has not been told yet, the core
         * refuses it explicitly and the module exits cleanly instead of looping. */
        set_connected("network-control\n");
        mod = spawn("nova-network-control", "--connect", mod_sock);
        waitpid(mod, &status, 0);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert(file_contains(log_path, "the core refused this module: plug network-control is not connected"));
}
END_TEST

/* snapd 2.57 (Debian 12, the e2e guest) has no `is-connected --list`: the
 * core asks plug by plug, at start and on refresh (under make e2e the core
 * saw no plug at all and refused every module app). */
START_TEST(test_old_snapd_without_list)
{
        struct json_object *resp = NULL;
        char buf[64];
        pid_t mod;
        int status;

        ck_assert(file_contains(calls_file, "is-connected --list"));
        ck_assert(file_contains(calls_file, "is-connected network-control"));
        ck_assert_str_eq(module_field("connected", buf, sizeof(buf)), "true");
        mod = spawn("nova-network-control", "--connect", mod_sock);
        ck_assert_msg(wait_state("running", 5000), "module did not register; see %s", log_path);

        set_connected("network-bind\n");
        ck_assert_int_eq(api_request(api_sock, "POST", "/v1/plugs/refresh", NULL, 5000, &resp), 200);
        json_object_put(resp);
        ck_assert_str_eq(module_field("connected", buf, sizeof(buf)), "false");
        kill(mod, SIGTERM); /* snapctl stop --disable, in the snap */
        waitpid(mod, &status, 0);

        set_connected("network-control\n");
        ck_assert_int_eq(api_request(api_sock, "POST", "/v1/plugs/refresh", NULL, 5000, &resp), 200);
        json_object_put(resp);
        ck_assert_str_eq(module_field("connected", buf, sizeof(buf)), "true");
}
END_TEST

static void setup_old_snapd(void)
{
        old_snapd = true;
        setup();
}

int main(void)
{
        Suite *s = suite_create("snap-mode");
        TCase *tc = tcase_create("snap-mode");
        SRunner *sr;
        int failed;

        harness_enter_netns("test-snap-mode");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_plug_state_from_snapctl);
        tcase_add_test(tc, test_module_app_connects_and_serves);
        tcase_add_test(tc, test_disconnected_plug_module_exits_cleanly);
        suite_add_tcase(s, tc);
        tc = tcase_create("snapd-2.57");
        tcase_add_checked_fixture(tc, setup_old_snapd, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_old_snapd_without_list);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
