/* test-qemu.c - one instance on real QEMU (software emulation, no KVM):
 * the core, nova-network-control making a real tap in this private network
 * namespace, and nova-libvirt running libvirt's QEMU driver in-process as
 * qemu:///embed?root=<private dir>. Everything is checked from outside the
 * modules: the tap through netlink (carrier = some process holds it), the
 * QEMU process through /proc (its command line names the instance, one of
 * its fds is a tun file attached to our tap).
 *
 * What the embed driver needs to run inside nova-libvirt (uid 0, no
 * capabilities at all, no_new_privs), found by running it:
 *  - the user and group libvirt was built with (libvirt-qemu) must exist or
 *    the driver refuses to start; created here when missing;
 *  - <root>/etc/qemu.conf:
 *    user/group "+4294967295" (uid/gid -1: "do not switch identity"). With
 *      "root" libvirt still calls setuid(0)/setgid(0) in QEMU's child and
 *      first tries to raise CAP_SETUID/CAP_SETGID/CAP_SETPCAP for that, which
 *      a process without capabilities cannot: "cannot apply process
 *      capabilities -5". QEMU runs as uid 0 either way, with no capabilities.
 *    security_driver "none", remember_owner 0: otherwise libvirt records
 *      owners in trusted.* xattrs (CAP_SYS_ADMIN): "Unable to set XATTR
 *      trusted.libvirt.security.dac ... Operation not permitted";
 *    stdio_handler "file": no virtlogd here;
 *    cgroup_controllers [ ]: no cgroup of the host is touched (with them the
 *      domain still runs but libvirt fails to remove its cgroup afterwards);
 *  - libvirt probes a QEMU binary's capabilities by starting it with
 *    capabilities cleared and CAP_DAC_OVERRIDE kept (whenever euid is 0),
 *    which again needs CAP_SETPCAP; no qemu.conf key avoids it. So this
 *    (root, privileged) test probes once into <root>/cache, from a child
 *    process, before the core starts; the module then reads the cache.
 *    The cache is valid only for the host CPUID it was probed with, and libvirt
 *    reads CPUID on whichever CPU it runs (without KVM), where the APIC ID
 *    differs: probed on CPU 0 and read on CPU 1, the module found the cache
 *    outdated ("host cpuid changed"), probed itself and failed as above (1 run
 *    in 3 here). So the test, and with it the core and its modules, runs on one CPU.
 * The tap needs nothing: network-control creates it without TUNSETOWNER, and
 * the kernel lets any process attach to a tap that has no owner and no group.
 *
 * Skipped (exit 0 with a printed reason) only when qemu-system-x86_64 is not
 * installed (scripts/deps.sh installs it). */
#include "harness.h"

#include "names.h"

#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <grp.h>
#include <libvirt/libvirt.h>
#include <linux/if.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define QEMU_BINARY "qemu-system-x86_64"
#define QEMU_CONF                        \
        "user = \"+4294967295\"\n"       \
        "group = \"+4294967295\"\n"      \
        "security_driver = \"none\"\n"   \
        "remember_owner = 0\n"           \
        "stdio_handler = \"file\"\n"     \
        "cgroup_controllers = [ ]\n"

static struct core core;

/* This process and everything it starts on one CPU (see the top of the file). */
static void pin_one_cpu(void)
{
        cpu_set_t allowed, one;

        CPU_ZERO(&one);
        if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0) {
                fprintf(stderr, "test-qemu: sched_getaffinity: %s\n", strerror(errno));
                exit(1);
        }
        for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
                if (CPU_ISSET(cpu, &allowed)) {
                        CPU_SET(cpu, &one);
                        break;
                }
        if (sched_setaffinity(0, sizeof(one), &one) < 0) {
                fprintf(stderr, "test-qemu: sched_setaffinity: %s\n", strerror(errno));
                exit(1);
        }
}
static char embed_root[PATH_MAX];

static void msleep(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static double now_s(void)
{
        return (double)now_usec() / 1e6;
}

static const char *jget(struct json_object *o, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : NULL;
}

/* The QEMU binary on $PATH (or the usual places), else false. */
static bool qemu_installed(void)
{
        const char *path = getenv("PATH");
        char buf[4096], file[PATH_MAX];

        (void)snprintf(buf, sizeof(buf), "%s:/usr/bin:/usr/local/bin", path ? path : "");
        for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
                (void)snprintf(file, sizeof(file), "%s/%s", dir, QEMU_BINARY);
                if (access(file, X_OK) == 0)
                        return true;
        }
        return false;
}

/* The embedded QEMU driver insists on its build-time user and group. */
static void ensure_libvirt_qemu_user(void)
{
        if (!getgrnam("libvirt-qemu") && system("groupadd -r libvirt-qemu") != 0) {
                fprintf(stderr, "test-qemu: cannot create group libvirt-qemu\n");
                exit(1);
        }
        if (!getpwnam("libvirt-qemu") &&
            system("useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu") != 0) {
                fprintf(stderr, "test-qemu: cannot create user libvirt-qemu\n");
                exit(1);
        }
}

static void make_embed_root(void)
{
        char etc[PATH_MAX + 8], conf[PATH_MAX + 32];

        (void)snprintf(embed_root, sizeof(embed_root), "/tmp/nova-qemu-XXXXXX");
        if (!mkdtemp(embed_root)) {
                fprintf(stderr, "test-qemu: mkdtemp: %s\n", strerror(errno));
                exit(1);
        }
        (void)snprintf(etc, sizeof(etc), "%s/etc", embed_root);
        (void)snprintf(conf, sizeof(conf), "%s/etc/qemu.conf", embed_root);
        if (mkdir(etc, 0700) < 0 || write_file_atomic(conf, QEMU_CONF, strlen(QEMU_CONF), 0600) < 0) {
                fprintf(stderr, "test-qemu: cannot write %s\n", conf);
                exit(1);
        }
}

static void embed_uri(char *buf, size_t size)
{
        (void)snprintf(buf, size, "qemu:///embed?root=%s", embed_root);
}

/* Probe QEMU's capabilities into <root>/cache from a child of this privileged
 * process (see the top of the file), then check the cache holds them. */
static void prime_capability_cache(void)
{
        char uri[PATH_MAX + 32], dir[PATH_MAX + 32];
        struct dirent *de;
        int status, n = 0;
        pid_t pid;
        DIR *d;

        embed_uri(uri, sizeof(uri));
        pid = fork();
        if (pid < 0) {
                fprintf(stderr, "test-qemu: fork: %s\n", strerror(errno));
                exit(1);
        }
        if (pid == 0) {
                virConnectPtr conn;
                char *caps;

                if (virEventRegisterDefaultImpl() < 0 || !(conn = virConnectOpen(uri)))
                        _exit(2);
                caps = virConnectGetDomainCapabilities(conn, NULL, "x86_64", "pc", "qemu", 0);
                free(caps);
                (void)virConnectClose(conn);
                _exit(caps ? 0 : 3);
        }
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "test-qemu: probing QEMU through %s failed (status %#x)\n", uri, status);
                exit(1);
        }
        (void)snprintf(dir, sizeof(dir), "%s/cache/qemu/capabilities", embed_root);
        d = opendir(dir);
        while (d && (de = readdir(d)))
                n += strstr(de->d_name, ".xml") != NULL;
        if (d)
                closedir(d);
        if (n == 0) {
                fprintf(stderr, "test-qemu: no capability cache in %s after probing\n", dir);
                exit(1);
        }
}

/* PIDs of qemu-system-* processes whose command line contains needle; returns how many (up to max). */
static int qemu_pids(const char *needle, pid_t *pids, int max)
{
        DIR *d = opendir("/proc");
        struct dirent *de;
        int n = 0;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                char path[300], *buf = NULL;
                size_t len = 0;
                bool is_qemu, named = false;
                pid_t pid = (pid_t)atol(de->d_name);

                if (pid <= 0)
                        continue;
                (void)snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
                if (read_file_bounded(path, 1 << 20, &buf, &len) < 0 || len == 0) {
                        free(buf);
                        continue;
                }
                /* argv[0] is the first NUL-terminated string; the others follow. */
                is_qemu = strstr(buf, "qemu-system-") != NULL;
                for (size_t off = 0; is_qemu && off < len; off += strlen(buf + off) + 1)
                        if (strstr(buf + off, needle))
                                named = true;
                free(buf);
                if (is_qemu && named && process_alive(pid) && n < max)
                        pids[n++] = pid;
        }
        closedir(d);
        return n;
}

/* Whether one of pid's fds is a tun file attached to ifname (fdinfo "iff:"). */
static bool process_holds_tap(pid_t pid, const char *ifname)
{
        char dir[64], line[IFNAMSIZ + 16];
        struct dirent *de;
        bool found = false;
        DIR *d;

        (void)snprintf(dir, sizeof(dir), "/proc/%ld/fdinfo", (long)pid);
        (void)snprintf(line, sizeof(line), "iff:\t%s\n", ifname);
        d = opendir(dir);
        if (!d)
                return false;
        while (!found && (de = readdir(d))) {
                char path[sizeof(dir) + 256];
                if (de->d_name[0] == '.')
                        continue;
                (void)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                found = file_contains(path, line);
        }
        closedir(d);
        return found;
}

static int domain_count(void)
{
        struct json_object *resp = NULL, *list;
        int n;

        ck_assert_int_eq(core_api(&core, "GET", "/v1/domains", NULL, &resp), 200);
        ck_assert(json_object_object_get_ex(resp, "domains", &list));
        n = (int)json_object_array_length(list);
        json_object_put(resp);
        return n;
}

static void setup(void)
{
        char lines[PATH_MAX + 256];

        memset(&core, 0, sizeof(core));
        (void)snprintf(lines, sizeof(lines),
                       "plugs = network-control libvirt\n"
                       "libvirt_uri = qemu:///embed?root=%s\nvif_type = tap\n"
                       "module_timeout_ms = 30000\n"
                       "shutdown_timeout_s = 1\n",
                       embed_root);
        core_start(&core, lines);
        ck_assert_int_gt(core_wait_module_running(&core, "network-control", 0, 5000), 0);
        ck_assert_int_gt(core_wait_module_running(&core, "libvirt", 0, 5000), 0);
}

static void teardown(void)
{
        pid_t left[16];
        int n;

        core_stop(&core);
        /* A failed run may leave its QEMU (daemonized, outlives the module): end it by pid. */
        n = qemu_pids(embed_root, left, 16);
        for (int i = 0; i < n; i++) {
                fprintf(stderr, "test-qemu: killing leftover QEMU %ld\n", (long)left[i]);
                (void)kill(left[i], SIGKILL);
        }
}

START_TEST(test_boot_stop_delete_on_qemu)
{
        char instance[37], port[37], body[512], tap[IFNAME_MAX];
        struct json_object *resp = NULL;
        struct link_facts f;
        pid_t qemu[4];
        double t0;
        int status;

        random_port_uuid(instance);
        random_port_uuid(port);
        ck_assert_int_eq(tap_name_from_port(port, tap), 0);

        /* Boot: a real tap, a real QEMU holding it. */
        (void)snprintf(body, sizeof(body),
                       "{\"name\":\"qemu1\",\"uuid\":\"%s\",\"vcpus\":1,\"memory_mb\":64,"
                       "\"ports\":[{\"port_uuid\":\"%s\"}]}",
                       instance, port);
        t0 = now_s();
        status = core_api(&core, "POST", "/v1/instances?wait=1", body, &resp);
        ck_assert_msg(status == 200, "boot gave %d: %s (see %s)", status, json_object_to_json_string(resp),
                      core.log);
        ck_assert_str_eq(jget(resp, "vm_state"), "active");
        ck_assert_str_eq(jget(resp, "power_state"), "running");
        json_object_put(resp);
        fprintf(stderr, "test-qemu: boot took %.2f s\n", now_s() - t0);

        ck_assert_int_eq(qemu_pids(instance, qemu, 4), 1);
        ck_assert(process_holds_tap(qemu[0], tap));
        ck_assert_int_eq(link_facts_get(tap, &f), 0);
        ck_assert_str_eq(f.kind, "tun");
        ck_assert_uint_ne(f.flags & IFF_UP, 0);
        /* Carrier comes with the first attached queue; allow QEMU a moment. */
        for (int t = 0; t < 200 && !(f.flags & IFF_LOWER_UP); t++) {
                msleep(10);
                ck_assert_int_eq(link_facts_get(tap, &f), 0);
        }
        ck_assert_msg(f.flags & IFF_LOWER_UP, "tap %s has no carrier with QEMU running", tap);
        ck_assert_int_eq(domain_count(), 1);

        /* Stop: the guest has no OS to honour ACPI, so the grace period ends in a destroy. */
        t0 = now_s();
        ck_assert_int_eq(core_api(&core, "POST", "/v1/instances/qemu1/stop?wait=1", NULL, &resp), 200);
        ck_assert_str_eq(jget(resp, "vm_state"), "stopped");
        json_object_put(resp);
        fprintf(stderr, "test-qemu: stop took %.2f s\n", now_s() - t0);
        /* ... and the module says so (test-image-boot's graceful stop checks this line is absent) */
        ck_assert_msg(file_contains(core.log, "shutdown_timeout instance_uuid="),
                      "no shutdown_timeout audit line for the forced stop in %s", core.log);
        ck_assert_msg(wait_process_gone(qemu[0], 5000), "QEMU %ld still runs after stop", (long)qemu[0]);
        ck_assert_int_eq(qemu_pids(instance, qemu, 4), 0);
        ck_assert_int_eq(link_facts_get(tap, &f), 0); /* the tap stays with the stopped instance */
        for (int t = 0; t < 200 && (f.flags & IFF_LOWER_UP); t++) {
                msleep(10);
                ck_assert_int_eq(link_facts_get(tap, &f), 0);
        }
        ck_assert_msg(!(f.flags & IFF_LOWER_UP), "tap %s keeps carrier after QEMU exited", tap);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/instances/qemu1", NULL, &resp), 200);
        ck_assert_str_eq(jget(resp, "power_state"), "shutoff");
        json_object_put(resp);
        ck_assert_int_eq(domain_count(), 1);

        /* Delete: nothing remains anywhere. */
        ck_assert_int_eq(core_api(&core, "DELETE", "/v1/instances/qemu1?wait=1", NULL, &resp), 200);
        json_object_put(resp);
        ck_assert_int_eq(link_facts_get(tap, &f), -ENOENT);
        ck_assert_int_eq(domain_count(), 0);
        ck_assert_int_eq(qemu_pids(instance, qemu, 4), 0);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/instances/qemu1", NULL, &resp), 404);
        json_object_put(resp);
}
END_TEST

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

int main(void)
{
        Suite *s = suite_create("qemu");
        TCase *tc = tcase_create("embed");
        SRunner *sr;
        int failed;

        if (!qemu_installed()) {
                printf("test-qemu: skipped: %s is not installed (scripts/deps.sh installs qemu-system-x86)\n",
                       QEMU_BINARY);
                return 0;
        }
        harness_enter_netns("test-qemu");
        ensure_libvirt_qemu_user();
        make_embed_root();
        pin_one_cpu();
        prime_capability_cache();
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_boot_stop_delete_on_qemu);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        if (!failed) /* kept for its logs (log/qemu/) when something failed */
                (void)nftw(embed_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        else
                fprintf(stderr, "test-qemu: embed root kept: %s\n", embed_root);
        return failed ? 1 : 0;
}
