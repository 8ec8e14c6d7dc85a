/* test-sandbox.c - `make run` (scripts/sandbox.sh) end to end, as a new user
 * runs it: it must build, start the core with its modules in a private
 * namespace, create the demo port, show status and the port, and leave
 * nothing behind on the host. Run from the top of the work tree (make check
 * does). Unique names keep it clear of a sandbox a developer kept running. */
#include "harness.h"

#include <check.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int run_sandbox(const char *dir, const char *ns, const char *keep, const char *arg, const char *out)
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

START_TEST(test_make_run_demo_and_teardown)
{
        char dir[64], ns[64], out[PATH_MAX];
        struct stat st;

        (void)snprintf(dir, sizeof(dir), "/tmp/nova-sandbox-test-%ld", (long)getpid());
        (void)snprintf(ns, sizeof(ns), "nova-sbtest-%ld", (long)getpid());
        (void)snprintf(out, sizeof(out), "/tmp/nova-sandbox-test-%ld.out", (long)getpid());
        ck_assert_int_eq(run_sandbox(dir, ns, "0", NULL, out), 0);
        ck_assert(file_contains(out, "nova-hypervisor status"));
        ck_assert(file_contains(out, "network-control   yes       running"));
        ck_assert(file_contains(out, "libvirt           yes       running"));
        ck_assert(file_contains(out, "openvswitch       yes       running"));
        ck_assert(file_contains(out, "firewall-control  yes       running"));
        /* every plug connected, every module running, nothing to fix */
        ck_assert(file_contains(out, "hardware-observe  yes       running"));
        ck_assert(file_contains(out, "system-observe    yes       running"));
        ck_assert(file_contains(out, "network-observe   yes       running"));
        ck_assert(file_contains(out, "process-control   yes       running     "));
        ck_assert(!file_contains(out, "fix: sudo snap connect"));
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
        ck_assert(file_contains(out, "security groups: default ssh"));
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
        /* And really nothing: no namespace, no directory. */
        ck_assert(!netns_exists(ns));
        ck_assert_int_ne(stat(dir, &st), 0);
        unlink(out);
}
END_TEST

START_TEST(test_make_run_keep_then_stop)
{
        char dir[64], ns[64], out[PATH_MAX], sock[PATH_MAX];
        struct json_object *resp = NULL;
        struct stat st;

        (void)snprintf(dir, sizeof(dir), "/tmp/nova-sandbox-keep-%ld", (long)getpid());
        (void)snprintf(ns, sizeof(ns), "nova-sbkeep-%ld", (long)getpid());
        (void)snprintf(out, sizeof(out), "/tmp/nova-sandbox-keep-%ld.out", (long)getpid());
        ck_assert_int_eq(run_sandbox(dir, ns, "1", NULL, out), 0);
        ck_assert(file_contains(out, "Stop it with: make run-stop"));
        ck_assert(netns_exists(ns));
        /* The kept sandbox answers the CLI's API. */
        struct core c = { 0 };
        (void)snprintf(sock, sizeof(sock), "%s/run/nova-hypervisor.socket", dir);
        ck_assert_int_eq(xsnprintf(c.socket, sizeof(c.socket), "%s", sock), 0);
        ck_assert_int_eq(core_api(&c, "GET", "/v1/ports", NULL, &resp), 200);
        ck_assert_ptr_nonnull(strstr(json_object_to_json_string(resp), "5e1f0c1a-7d3b-4c2e-9a8f-0b1c2d3e4f50"));
        json_object_put(resp);
        ck_assert_int_eq(core_api(&c, "GET", "/v1/instances/demo", NULL, &resp), 200);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(resp, "vm_state")), "active");
        json_object_put(resp);
        /* A second `make run` refuses instead of trampling on it. */
        ck_assert_int_ne(run_sandbox(dir, ns, "0", NULL, out), 0);
        ck_assert(file_contains(out, "make run-stop"));
        ck_assert_int_eq(run_sandbox(dir, ns, "0", "stop", out), 0);
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
        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, test_make_run_demo_and_teardown);
        tcase_add_test(tc, test_make_run_keep_then_stop);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
