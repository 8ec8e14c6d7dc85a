/* test-explain-denial.c - `nova-hypervisor explain-denial` on
 * tests/integration/fixtures/denials.log: AppArmor and seccomp lines in the
 * formats the kernel writes (journalctl -k, dmesg, auditd), an ALLOWED line
 * and an unrelated line (skipped), and one truncated record. */
#include "harness.h"

#include <check.h>

static char *out;

static void run(void)
{
        const char *bin = getenv("NOVA_BIN");
        out = sh_out("%s/nova-hypervisor explain-denial tests/integration/fixtures/denials.log; echo \"status=$?\"",
                     bin ? bin : "build/bin");
}

/* The block of output about input line n (up to the next "line " or the end). */
static char *block(unsigned n)
{
        char head[32], *start, *end, *b;

        (void)snprintf(head, sizeof(head), "line %u: ", n);
        start = strstr(out, head);
        ck_assert_msg(start, "no output for %s in:\n%s", head, out);
        end = strstr(start + 1, "\nline ");
        if (!end)
                end = start + strlen(start);
        b = strndup(start, (size_t)(end - start));
        ck_assert_ptr_nonnull(b);
        return b;
}

#define EXPECT(n, ...)                                                                       \
        do {                                                                                 \
                char *b_ = block(n);                                                         \
                const char *const needles_[] = { __VA_ARGS__ };                              \
                for (size_t i_ = 0; i_ < ARRAY_SIZE(needles_); i_++)                         \
                        ck_assert_msg(strstr(b_, needles_[i_]), "line %u lacks '%s':\n%s", n, \
                                      needles_[i_], b_);                                     \
                free(b_);                                                                    \
        } while (0)

START_TEST(test_explains_each_denial)
{
        run();
        /* sys_module from ip: only kernel-module-control, never requested; the kmod advice. */
        EXPECT(1, "capability sys_module", "snap.nova-hypervisor.network-control", "granted by: kernel-module-control",
               "we do not request kernel-module-control", "never loaded by the snap", "snapd's kmod backend");
        /* The libvirt socket from the openvswitch app: ours, but another module's plug. */
        EXPECT(2, "/run/libvirt/libvirt-sock", "granted by: libvirt (/run/libvirt/libvirt-sock rw,)",
               "only plugs of other apps of ours grant this (libvirt)", "not in openvswitch");
        /* A netlink socket from the libvirt app. */
        EXPECT(3, "network netlink raw", "network-control (network netlink raw)", "not in libvirt");
        /* finit_module by seccomp, from modprobe. */
        EXPECT(4, "seccomp denied syscall finit_module (313)", "granted by: kernel-module-control (finit_module)",
               "never loaded by the snap");
        /* auditd format, chown: no account-control needed. */
        EXPECT(5, "capability chown", "snap.nova-hypervisor.nova-compute", "we do not request account-control",
               "needs no account-control");
        /* The app's own plug grants it: connect it or restart the app. */
        EXPECT(6, "/dev/net/tun", "app network-control plugs network-control",
               "sudo snap connect nova-hypervisor:network-control", "sudo snap restart nova-hypervisor.network-control");
        /* Hex-encoded path, granted by nothing. */
        EXPECT(9, "/var/snap/a b", "granted by: no snapd interface");
        EXPECT(10, "sched_setaffinity (203)", "process-control (sched_setaffinity)",
               "app process-control plugs process-control");
        EXPECT(12, "malformed denial record");
        /* ALLOWED and unrelated lines are skipped. */
        ck_assert_ptr_null(strstr(out, "line 7:"));
        ck_assert_ptr_null(strstr(out, "line 8:"));
        ck_assert_ptr_nonnull(strstr(out, "9 denials explained"));
        ck_assert_ptr_nonnull(strstr(out, "policy data: snapd 2.77"));
        /* The malformed line makes the exit status 1. */
        ck_assert_ptr_nonnull(strstr(out, "status=1"));
        free(out);
}
END_TEST

START_TEST(test_stdin_and_clean_exit)
{
        const char *bin = getenv("NOVA_BIN");

        out = sh_out("head -6 tests/integration/fixtures/denials.log | %s/nova-hypervisor explain-denial; "
                     "echo \"status=$?\"",
                     bin ? bin : "build/bin");
        ck_assert_ptr_nonnull(strstr(out, "6 denials explained from stdin"));
        ck_assert_ptr_nonnull(strstr(out, "status=0"));
        free(out);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("explain-denial");
        TCase *tc = tcase_create("cli");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_explains_each_denial);
        tcase_add_test(tc, test_stdin_and_clean_exit);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
