/* test-sandbox.c - `make run` (scripts/sandbox.sh) end to end, as a new user
 * runs it: it must build, start the core with its modules in a private
 * namespace, and leave nothing behind on the host.
 *   - The default (a private libvirtd driving QEMU with software emulation),
 *     kept running (KEEP=1): the test guest imported as an image and booted
 *     behind a security group prints the uuid and address it read from its
 *     config drive on the console; it answers ping and TCP 80 through
 *     tap -> qbr -> OVS; TCP 7, which no group allows, is dropped until a rule
 *     allows it; the kept sandbox answers the API; a second `make run` refuses;
 *     `make run-stop` leaves no namespace, directory, libvirtd or QEMU.
 *   - LIBVIRT=test (libvirt's test driver, no guest): the whole demo and its
 *     own teardown, checked against the machine.
 * Run from the top of the work tree (make check does). Unique names keep it
 * clear of a sandbox a developer kept running. */
#include "harness.h"

#include "names.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int run_sandbox(const char *dir, const char *ns, const char *libvirt, const char *keep, const char *arg,
                       const char *out)
{
        pid_t pid = fork();
        int status;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                dup2(fd, 1);
                dup2(fd, 2);
                setenv("NOVA_SANDBOX_DIR", dir, 1);
                setenv("NOVA_SANDBOX_NETNS", ns, 1);
                setenv("KEEP", keep, 1);
                setenv("NOVA_SANDBOX_LIBVIRT", libvirt, 1);
                execlp("bash", "bash", "scripts/sandbox.sh", arg, (char *)NULL);
                _exit(127);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool netns_exists(const char *ns)
{
        char path[PATH_MAX];
        struct stat st;

        (void)snprintf(path, sizeof(path), "/run/netns/%s", ns);
        return stat(path, &st) == 0;
}

/* The pid of a process (not this one) whose command line mentions needle
 * (the sandbox's directory: its libvirtd's --config, its QEMU's paths), or 0. */
static pid_t process_mentioning(const char *needle)
{
        DIR *d = opendir("/proc");
        struct dirent *e;
        pid_t found = 0;

        ck_assert_ptr_nonnull(d);
        while (!found && (e = readdir(d))) {
                char path[64], buf[8192];
                uint32_t pid;
                ssize_t n;
                int fd;

                if (parse_u32(e->d_name, 1, INT32_MAX, &pid) < 0 || (pid_t)pid == getpid())
                        continue;
                (void)snprintf(path, sizeof(path), "/proc/%u/cmdline", pid);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                n = read(fd, buf, sizeof(buf) - 1);
                close(fd);
                if (n <= 0)
                        continue;
                for (ssize_t i = 0; i < n; i++)
                        if (buf[i] == '\0')
                                buf[i] = ' ';
                buf[n] = '\0';
                if (strstr(buf, needle))
                        found = (pid_t)pid;
        }
        closedir(d);
        return found;
}

/* The status table: every plug connected, every module running, nothing to fix. */
static void assert_all_modules_running(const char *out)
{
        ck_assert(file_contains(out, "nova-hypervisor status"));
        ck_assert(file_contains(out, "network-control   yes       running"));
        ck_assert(file_contains(out, "libvirt           yes       running"));
        ck_assert(file_contains(out, "openvswitch       yes       running"));
        ck_assert(file_contains(out, "firewall-control  yes       running"));
        ck_assert(file_contains(out, "hardware-observe  yes       running"));
        ck_assert(file_contains(out, "system-observe    yes       running"));
        ck_assert(file_contains(out, "network-observe   yes       running"));
        ck_assert(file_contains(out, "process-control   yes       running     "));
        ck_assert(!file_contains(out, "fix: sudo snap connect"));
}

/* The default: a private libvirtd and a real guest; kept, then make run-stop. */
START_TEST(test_make_run_real_guest_keep_then_stop)
{
        char dir[64], ns[64], out[PATH_MAX], sock[PATH_MAX], want[160], uuid[UUID_STR_LEN + 1];
        struct json_object *resp = NULL, *v;
        struct core c = { 0 };
        struct stat st;
        pid_t left;

        (void)snprintf(dir, sizeof(dir), "/tmp/nova-sandbox-keep-%ld", (long)getpid());
        (void)snprintf(ns, sizeof(ns), "nova-sbkeep-%ld", (long)getpid());
        (void)snprintf(out, sizeof(out), "/tmp/nova-sandbox-keep-%ld.out", (long)getpid());
        ck_assert_msg(run_sandbox(dir, ns, "qemu", "1", NULL, out) == 0, "make run failed; see %s and %s/nova.log", out, dir);
        ck_assert(file_contains(out, "Stop it with: make run-stop"));
        ck_assert(file_contains(out, "make run: "));
        ck_assert(netns_exists(ns));
        assert_all_modules_running(out);
        /* a private libvirtd of its own, its pool in the sandbox dir */
        (void)snprintf(want, sizeof(want), "qemu+unix:///system?socket=%s/libvirtd/sock/libvirt-sock", dir);
        ck_assert(file_contains(out, want));
        ck_assert(file_contains(out, "imported guest ("));
        (void)snprintf(sock, sizeof(sock), "%s/run/nova-hypervisor.socket", dir);
        ck_assert_int_eq(xsnprintf(c.socket, sizeof(c.socket), "%s", sock), 0);
        ck_assert_int_eq(core_api(&c, "GET", "/v1/instances/demo", NULL, &resp), 200);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(resp, "vm_state")), "active");
        ck_assert(json_object_object_get_ex(resp, "uuid", &v));
        ck_assert_int_eq(xsnprintf(uuid, sizeof(uuid), "%s", json_object_get_string(v)), 0);
        json_object_put(resp);
        /* the console: the guest read its uuid (the domain's) and address from config-2 */
        (void)snprintf(want, sizeof(want), "  | NOVA-GUEST uuid=%s ip=10.0.0.5 dev=eth0 mtu=1450", uuid);
        ck_assert_msg(file_contains(out, want), "no '%s' in %s", want, out);
        ck_assert(file_contains(out, "boot to console line: "));
        /* ping, TCP 80 allowed, TCP 7 dropped, then allowed by a new rule */
        ck_assert(file_contains(out, "3 packets transmitted, 3 received"));
        (void)snprintf(want, sizeof(want), "GET / -> '%s' (the guest's uuid: matches)", uuid);
        ck_assert(file_contains(out, want));
        ck_assert(file_contains(out, "connect to port 7: no answer within"));
        (void)snprintf(want, sizeof(want), "port 7 answered: '%s'", uuid);
        ck_assert(file_contains(out, want));
        ck_assert(file_contains(out, "security groups: default web"));
        ck_assert(file_contains(out, "filtered: yes (bridge qbr5e1f0c1a-7d)"));
        /* the guest's disk counts in host: DISK_GB used */
        {
                char *disk = sh_out("grep -E '^DISK_GB ' '%s' | awk '{printf \"%%s\", $5}'", out);
                uint32_t used = 0;
                ck_assert_msg(disk && parse_u32(disk, 0, UINT32_MAX, &used) == 0 && used >= 1, "DISK_GB used: '%s'",
                              disk ? disk : "(none)");
                free(disk);
        }
        /* stats demo: the real QEMU's figures. system-observe takes a process for the instance's
         * QEMU only in libvirt's machine cgroup of the domain (and as root or qemu_user): the private
         * libvirtd runs QEMU in one, also under `ip netns exec` (libvirtd-private.sh mounts the
         * host's cgroup hierarchies again where /sys was remounted). */
        ck_assert_msg(file_contains(out, "  qemu pid "), "stats demo shows no QEMU process; see %s", out);
        ck_assert(!file_contains(out, "no QEMU process carries this instance's mark"));
        /* no workaround left in the demo: network-control sets qvb's tx checksum offload */
        ck_assert(file_contains(out, "tx checksum offload (set by network-control for the userspace datapath): off"));
        ck_assert(!file_contains(out, "ethtool -K"));
        /* libvirtd and QEMU run, from the sandbox dir */
        ck_assert_msg(process_mentioning(dir) > 0, "no process of the sandbox runs");
        /* A second `make run` refuses instead of trampling on it. */
        ck_assert_int_ne(run_sandbox(dir, ns, "qemu", "0", NULL, out), 0);
        ck_assert(file_contains(out, "make run-stop"));
        ck_assert_int_eq(run_sandbox(dir, ns, "qemu", "0", "stop", out), 0);
        ck_assert(!netns_exists(ns));
        ck_assert_int_ne(stat(dir, &st), 0);
        left = process_mentioning(dir);
        ck_assert_msg(left == 0, "process %d of the sandbox is left after make run-stop", (int)left);
        unlink(out);
}
END_TEST

/* LIBVIRT=test: libvirt's test driver (no QEMU), the demo and its own teardown. */
START_TEST(test_make_run_test_driver_demo_and_teardown)
{
        char dir[64], ns[64], out[PATH_MAX];
        struct stat st;

        (void)snprintf(dir, sizeof(dir), "/tmp/nova-sandbox-test-%ld", (long)getpid());
        (void)snprintf(ns, sizeof(ns), "nova-sbtest-%ld", (long)getpid());
        (void)snprintf(out, sizeof(out), "/tmp/nova-sandbox-test-%ld.out", (long)getpid());
        ck_assert_int_eq(run_sandbox(dir, ns, "test", "0", NULL, out), 0);
        ck_assert(file_contains(out, "libvirt_uri = test:///default"));
        assert_all_modules_running(out);
        ck_assert(!file_contains(out, "inventory: not available"));
        /* nova-hypervisor host: the inventory and the placement summary, checked against the machine */
        ck_assert(file_contains(out, "== nova-hypervisor host"));
        ck_assert(file_contains(out, "resource    total  ratio  capacity  used  free"));
        {
                char *vcpu = sh_out("grep -E '^VCPU ' '%s' | awk '{print $2, $5}'", out);
                char want[64];
                (void)snprintf(want, sizeof(want), "%ld 1\n", sysconf(_SC_NPROCESSORS_ONLN)); /* the demo: 1 vcpu */
                ck_assert_str_eq(vcpu, want);
                free(vcpu);
        }
        ck_assert(file_contains(out, "numa node 0: cpus "));
        /* nova-hypervisor stats demo: load, and the demo port's links with their counters */
        ck_assert(file_contains(out, "== nova-hypervisor stats demo"));
        ck_assert(file_contains(out, "load:   "));
        ck_assert(file_contains(out, "instance demo ("));
        ck_assert(file_contains(out, "  port 5e1f0c1a-7d3b-4c2e-9a8f-0b1c2d3e4f50"));
        ck_assert(file_contains(out, "tap5e1f0c1a-7d  tap    rx "));
        ck_assert(file_contains(out, "qvo5e1f0c1a-7d  veth   rx "));
        /* the port is filtered: bridge and veth pair, its chain jumps to both groups */
        ck_assert(file_contains(out, "filtered: yes (bridge qbr5e1f0c1a-7d)"));
        ck_assert(file_contains(out, "security groups: default web"));
        ck_assert(file_contains(out, "chain port-5e1f0c1a-7d3b-4c2e-9a8f-0b1c2d3e4f50"));
        ck_assert(file_contains(out, "jump sg-"));
        /* nova-hypervisor ports: the demo port on the integration bridge, with an ofport */
        ck_assert(file_contains(out, "Bridge br-int"));
        ck_assert(file_contains(out, "Interface qvo5e1f0c1a-7d"));
        ck_assert(file_contains(out, "iface-id=\"5e1f0c1a-7d3b-4c2e-9a8f-0b1c2d3e4f50\""));
        ck_assert(file_contains(out, "instance: demo"));
        ck_assert(file_contains(out, "state:       active"));
        ck_assert(file_contains(out, "power:       running"));
        ck_assert(file_contains(out, "5e1f0c1a-7d3b-4c2e-9a8f-0b1c2d3e4f50 tap5e1f0c1a-7d"));
        ck_assert(file_contains(out, "deleted demo"));
        ck_assert(file_contains(out, "mtu 1450"));          /* the kernel's own view */
        ck_assert(file_contains(out, "nothing left on the host"));
        ck_assert(file_contains(out, "make run: "));
        /* no guest with the test driver: no image, no console */
        ck_assert(!file_contains(out, "image import"));
        /* And really nothing: no namespace, no directory. */
        ck_assert(!netns_exists(ns));
        ck_assert_int_ne(stat(dir, &st), 0);
        unlink(out);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("sandbox");
        TCase *tc = tcase_create("make-run");
        SRunner *sr;
        int failed;

        if (geteuid() != 0) {
                fprintf(stderr, "test-sandbox: needs root\n");
                return 1;
        }
        tcase_set_timeout(tc, 600); /* the real guest: build check, a TCG boot (about 30 s here under load) */
        tcase_add_test(tc, test_make_run_real_guest_keep_then_stop);
        tcase_add_test(tc, test_make_run_test_driver_demo_and_teardown);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
