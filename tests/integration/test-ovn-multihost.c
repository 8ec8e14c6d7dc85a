/* test-ovn-multihost.c - two hypervisor hosts share a network through OVN
 * (scripts/multihost.sh): OVN central, two hosts in namespaces each with its
 * own ovsdb-server, userspace ovs-vswitchd, ovn-controller and nova-compute
 * (ovn = true, network_mtu = 1442), a veth underlay. The facts are read from
 * where they live: the bindings from the OVN southbound database (ovn-sbctl),
 * ovn-installed and the MTU from each host's ovsdb (ovs-vsctl), reachability
 * with real packets between guest stand-ins on the instances' taps (ping and
 * a TCP transfer across the Geneve tunnel). Run from the top of the work tree
 * (make check does). Unique names keep it clear of a kept `make run-multihost`. */
#include "harness.h"

#include <check.h>
#include <sys/stat.h>
#include <time.h>

#define PORT_A "0a0a0a0a-1111-4a11-8a11-0000000000a1"
#define PORT_B "0b0b0b0b-2222-4b22-8b22-0000000000b1"
#define PORT_C "0c0c0c0c-3333-4c33-8c33-0000000000c1"
#define MAC_A "fa:16:3e:00:00:0a"
#define MAC_B "fa:16:3e:00:00:0b"
#define IP_A "10.0.0.10"
#define IP_B "10.0.0.11"
#define TCP_BYTES (2 << 20) /* 2 MB */

static char dir[64], prefix[32];
static pid_t base_pid; /* the runner's pid: names are the same in the test's fork and in the teardown */

/* Environment of every scripts/multihost.sh call of this test. */
#define MH "MH_DIR=%s MH_PREFIX=%s MH_PORT_A=" PORT_A " MH_PORT_B=" PORT_B " bash scripts/multihost.sh"

static void names(const char *tag)
{
        (void)snprintf(dir, sizeof(dir), "/tmp/nova-mh-test-%s-%ld", tag, (long)base_pid);
        (void)snprintf(prefix, sizeof(prefix), "mht%s%ld", tag, (long)base_pid % 100000);
}

static void mh_up(const char *env)
{
        ck_assert_msg(sh("%s " MH " up", env, dir, prefix) == 0, "multihost up failed (logs in %s)", dir);
}

static void mh_down(void)
{
        (void)sh(MH " down", dir, prefix);
}

/* Trimmed stdout of a command line (malloc'd). */
static char *out_trim(char *s)
{
        size_t n = strlen(s);

        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '"'))
                s[--n] = '\0';
        if (s[0] == '"')
                memmove(s, s + 1, n);
        return s;
}

/* The chassis the SB binds the logical port to ("" when none). */
static char *bound(const char *port)
{
        return out_trim(sh_out("ovn-sbctl --db=unix:%s/central/sb.sock --timeout=10 --bare --columns=chassis find "
                               "Port_Binding logical_port=%s | xargs -r ovn-sbctl --db=unix:%s/central/sb.sock "
                               "--timeout=10 --bare --columns=name list Chassis",
                               dir, port, dir));
}

/* Wait (bounded) until the port is bound to chassis ("" = unbound). */
static bool wait_bound(const char *port, const char *chassis, int timeout_ms)
{
        for (int t = 0; t <= timeout_ms; t += 100) {
                char *b = bound(port);
                bool ok = streq(b, chassis);

                free(b);
                if (ok)
                        return true;
                sleep_ms(100);
        }
        return false;
}

/* A column of the Interface of the port's tap in host h's ovsdb. */
static char *iface_get(const char *h, const char *port, const char *column)
{
        return out_trim(sh_out("ovs-vsctl --db=unix:%s/%s/db.sock --timeout=10 get Interface tap%.11s %s 2>/dev/null",
                               dir, h, port, column));
}

/* One ping from vm-a's stand-in to vm-b's, retried (the first may be lost
 * while a neighbour is learned) within timeout_ms. */
static bool ping_ab(int timeout_ms)
{
        for (int t = 0; t <= timeout_ms; t += 500)
                if (sh("ip netns exec %s-a-vm ping -c 1 -W 1 " IP_B, prefix) == 0)
                        return true;
        return false;
}

/* TCP_BYTES from vm-a to vm-b: the bytes vm-b counted. */
static long tcp_ab(void)
{
        char out[PATH_MAX];
        long n = -1;
        char *s;

        (void)snprintf(out, sizeof(out), "%s/tcp.out", dir);
        ck_assert_int_eq(sh("rm -f %s; ip netns exec %s-b-vm python3 -c '"
                            "import socket\n"
                            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                            "s.bind((\"0.0.0.0\", 5001)); s.listen(1); print(\"listening\", flush=True)\n"
                            "s.settimeout(30); c,_=s.accept(); c.settimeout(30); n=0\n"
                            "while True:\n"
                            "    b=c.recv(65536)\n"
                            "    if not b: break\n"
                            "    n+=len(b)\n"
                            "print(\"bytes\", n, flush=True)' >%s 2>&1 &",
                            out, prefix, out),
                         0);
        for (int i = 0; i < 100 && !file_contains(out, "listening"); i++)
                sleep_ms(50);
        ck_assert_int_eq(sh("ip netns exec %s-a-vm timeout 60 python3 -c '"
                            "import socket\n"
                            "s=socket.create_connection((\"" IP_B "\", 5001), timeout=10)\n"
                            "s.sendall(b\"x\" * %d); s.shutdown(socket.SHUT_WR); s.recv(1); s.close()'",
                            prefix, TCP_BYTES),
                         0);
        for (int i = 0; i < 100 && !file_contains(out, "bytes "); i++)
                sleep_ms(50);
        s = sh_out("sed -n 's/^bytes //p' %s", out);
        if (s[0])
                n = strtol(s, NULL, 10);
        free(s);
        return n;
}

/* Bytes host a sent on its end of the underlay veth. */
static long underlay_tx_bytes(void)
{
        char *s = sh_out("ip netns exec %s-a cat /sys/class/net/ul-a/statistics/tx_bytes", prefix);
        long n = s[0] ? strtol(s, NULL, 10) : -1;

        free(s);
        return n;
}

static pid_t pidfile(const char *h, const char *name)
{
        char *s = sh_out("cat %s/%s/%s 2>/dev/null", dir, h, name);
        pid_t pid = (pid_t)strtol(s, NULL, 10);

        free(s);
        return pid;
}

START_TEST(test_two_hosts_bind_and_carry_traffic)
{
        char *s;

        names("x");
        mh_up("");
        /* the control plane creates the ports; each host boots through its CLI */
        ck_assert_int_eq(sh(MH " boot a vm-a " PORT_A " " MAC_A " " IP_A, dir, prefix), 0);
        ck_assert_int_eq(sh(MH " boot b vm-b " PORT_B " " MAC_B " " IP_B, dir, prefix), 0);

        /* both bound, each to its own chassis, in the southbound database */
        ck_assert_msg(wait_bound(PORT_A, "host-a", 5000), "port A not bound to host-a");
        ck_assert_msg(wait_bound(PORT_B, "host-b", 5000), "port B not bound to host-b");
        /* boot --wait returned after ovn-controller marked the Interfaces installed */
        s = iface_get("a", PORT_A, "external_ids:ovn-installed");
        ck_assert_str_eq(s, "true");
        free(s);
        s = iface_get("b", PORT_B, "external_ids:iface-id");
        ck_assert_str_eq(s, PORT_B); /* the logical port, exactly as given */
        free(s);
        s = iface_get("a", PORT_A, "mtu_request");
        ck_assert_str_eq(s, "1442"); /* network_mtu: room for Geneve's 58 bytes */
        free(s);
        /* and the CLI says so */
        s = sh_out("%s/nova-hypervisor --socket %s/a/run/nova-hypervisor.socket ports", getenv("NOVA_BIN"), dir);
        ck_assert_msg(strstr(s, "ovn-installed (bound to this chassis"), "ports: %s", s);
        free(s);

        /* real packets between the instances' stand-ins, across the tunnel */
        ck_assert_int_eq(sh(MH " standin a " PORT_A " " MAC_A " " IP_A, dir, prefix), 0);
        ck_assert_int_eq(sh(MH " standin b " PORT_B " " MAC_B " " IP_B, dir, prefix), 0);
        ck_assert_msg(ping_ab(5000), "no ICMP from vm-a to vm-b");
        {
                long before = underlay_tx_bytes(), after;

                ck_assert_int_eq(tcp_ab(), TCP_BYTES);
                /* it crossed the underlay (the only link between the hosts), encapsulated */
                after = underlay_tx_bytes();
                ck_assert_msg(before >= 0 && after - before >= TCP_BYTES, "underlay tx bytes %ld -> %ld", before, after);
                s = out_trim(sh_out("ovs-vsctl --db=unix:%s/a/db.sock --timeout=10 --bare --columns=type find Interface "
                                    "type=geneve | head -1",
                                    dir));
                ck_assert_str_eq(s, "geneve");
                free(s);
        }

        /* restarting host b's core changes no binding */
        {
                char *iface_before = iface_get("b", PORT_B, "_uuid"), *iface_after;

                ck_assert_int_eq(sh(MH " stop-core b", dir, prefix), 0);
                ck_assert_int_eq(sh(MH " start-core b", dir, prefix), 0);
                sleep_ms(1000); /* let the core reconcile */
                iface_after = iface_get("b", PORT_B, "_uuid");
                ck_assert_str_eq(iface_before, iface_after); /* the OVS port was not replugged */
                free(iface_before);
                free(iface_after);
                s = bound(PORT_B);
                ck_assert_str_eq(s, "host-b");
                free(s);
                s = iface_get("b", PORT_B, "external_ids:ovn-installed");
                ck_assert_str_eq(s, "true");
                free(s);
                ck_assert_msg(ping_ab(5000), "no ICMP after host b's core restarted");
        }

        /* killing ovn-controller on host a and starting it again restores
         * traffic, without touching our services */
        {
                pid_t core = pidfile("a", "core.pid");

                ck_assert_int_gt(core, 0);
                ck_assert_int_eq(sh(MH " stop-ovn-controller a", dir, prefix), 0);
                ck_assert_int_eq(sh(MH " start-ovn-controller a", dir, prefix), 0);
                ck_assert_msg(ping_ab(10000), "no ICMP after ovn-controller on host a restarted");
                ck_assert_int_eq(tcp_ab(), TCP_BYTES);
                ck_assert(process_alive(core));
                ck_assert_int_eq(pidfile("a", "core.pid"), core);
                s = bound(PORT_A);
                ck_assert_str_eq(s, "host-a");
                free(s);
        }

        /* deleting the instance on host a unbinds its port */
        ck_assert_int_eq(sh("%s/nova-hypervisor --socket %s/a/run/nova-hypervisor.socket delete vm-a --wait",
                            getenv("NOVA_BIN"), dir),
                         0);
        ck_assert_msg(wait_bound(PORT_A, "", 5000), "port A still bound after its instance was deleted");
        s = bound(PORT_B);
        ck_assert_str_eq(s, "host-b"); /* the other host's port stays */
        free(s);
        mh_down();
}
END_TEST

/* ovn_timeout_policy = fail: a port ovn-controller never installs (no logical
 * port in the NB) fails the boot after ovn_wait_ms, and the boot is rolled
 * back: no tap, no OVS port. */
START_TEST(test_ovn_wait_timeout_fails_and_rolls_back)
{
        char *s;
        long long t0, ms;
        struct timespec ts;

        names("f");
        mh_up("MH_OVN_WAIT_MS=1000");
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t0 = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
        s = sh_out("%s/nova-hypervisor --socket %s/a/run/nova-hypervisor.socket boot nolsp --port uuid=" PORT_C
                   " --wait 2>&1; echo rc=$?",
                   getenv("NOVA_BIN"), dir);
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ms = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 - t0;
        ck_assert_msg(strstr(s, "rc=1"), "boot did not fail: %s", s);
        ck_assert_msg(strstr(s, "did not mark logical port " PORT_C " ovn-installed within 1000 ms"), "%s", s);
        ck_assert_msg(ms >= 1000 && ms < 10000, "failed after %lld ms", ms);
        free(s);
        /* rolled back: neither the tap nor the OVS port is left */
        ck_assert_int_ne(sh("ip -n %s-a link show tap%.11s", prefix, PORT_C), 0);
        s = out_trim(sh_out("ovs-vsctl --db=unix:%s/a/db.sock --timeout=10 list-ports br-int | grep -c ^tap", dir));
        ck_assert_str_eq(s, "0");
        free(s);
        /* a port MTU above network_mtu (1442) is refused before anything is made */
        s = sh_out("%s/nova-hypervisor --socket %s/a/run/nova-hypervisor.socket boot big --port uuid=" PORT_B
                   ",mtu=1500 --wait 2>&1; echo rc=$?; %s/nova-hypervisor --socket %s/a/run/nova-hypervisor.socket list",
                   getenv("NOVA_BIN"), dir, getenv("NOVA_BIN"), dir);
        ck_assert_msg(strstr(s, "exceeds the network's MTU 1442") && strstr(s, "rc=1") && !strstr(s, "big "), "%s", s);
        free(s);
        ck_assert_int_ne(sh("ip -n %s-a link show tap%.11s", prefix, PORT_B), 0);
        mh_down();
}
END_TEST

/* ovn_timeout_policy = continue: the boot succeeds with the port pending;
 * once the control plane creates the logical port, it binds and shows installed. */
START_TEST(test_ovn_wait_timeout_continue_marks_pending)
{
        char *s;
        bool installed = false;

        names("c");
        mh_up("MH_OVN_WAIT_MS=500 MH_POLICY=continue");
        ck_assert_int_eq(sh("%s/nova-hypervisor --socket %s/a/run/nova-hypervisor.socket boot late --port uuid=" PORT_C
                            " --wait",
                            getenv("NOVA_BIN"), dir),
                         0);
        s = sh_out("%s/nova-hypervisor --socket %s/a/run/nova-hypervisor.socket --json ports", getenv("NOVA_BIN"), dir);
        ck_assert_msg(strstr(s, "\"ovn_binding\":\"pending\"") || strstr(s, "\"ovn_binding\": \"pending\""), "%s", s);
        free(s);
        ck_assert_int_eq(sh("ovn-nbctl --db=unix:%s/central/nb.sock lsp-add net1 " PORT_C, dir), 0);
        ck_assert_msg(wait_bound(PORT_C, "host-a", 5000), "port C not bound after lsp-add");
        for (int i = 0; i < 50 && !installed; i++) {
                s = sh_out("%s/nova-hypervisor --socket %s/a/run/nova-hypervisor.socket ports", getenv("NOVA_BIN"), dir);
                installed = strstr(s, "ovn-installed (bound to this chassis") != NULL;
                free(s);
                if (!installed)
                        sleep_ms(100);
        }
        ck_assert(installed);
        mh_down();
}
END_TEST

/* Whatever a failed test left up goes (runs in the runner, after the tests). */
static void teardown_all(void)
{
        static const char *const tags[] = { "x", "f", "c" };

        for (size_t i = 0; i < ARRAY_SIZE(tags); i++) {
                names(tags[i]);
                mh_down();
        }
}

static Suite *suite(void)
{
        Suite *s = suite_create("ovn-multihost");
        TCase *tc = tcase_create("ovn");

        tcase_set_timeout(tc, 300);
        tcase_add_unchecked_fixture(tc, NULL, teardown_all);
        tcase_add_test(tc, test_two_hosts_bind_and_carry_traffic);
        tcase_add_test(tc, test_ovn_wait_timeout_fails_and_rolls_back);
        tcase_add_test(tc, test_ovn_wait_timeout_continue_marks_pending);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        struct stat st;
        SRunner *sr;
        int failed;

        if (geteuid() != 0) {
                fprintf(stderr, "test-ovn-multihost: needs root (network namespaces)\n");
                return 77;
        }
        if (stat("/usr/bin/ovn-controller", &st) != 0 || stat("/usr/bin/ovn-northd", &st) != 0) {
                fprintf(stderr, "test-ovn-multihost: ovn-host and ovn-central are not installed (make deps)\n");
                return 1;
        }
        if (!getenv("NOVA_BIN")) {
                fprintf(stderr, "test-ovn-multihost: set NOVA_BIN (make check does)\n");
                return 1;
        }
        base_pid = getpid();
        sr = srunner_create(suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
