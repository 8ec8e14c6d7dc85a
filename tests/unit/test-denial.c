/* test-denial.c - the denial-line decoder on lines in the formats the kernel
 * writes (dmesg, journalctl -k, auditd), the AppArmor glob matcher, and the
 * compiled-in snapd policy lookups explain-denial and the conformance test use. */
#include "aaglob.h"
#include "denial.h"
#include "snapd-policy.h"

#include <check.h>

static int parse(const char *line, struct denial *d)
{
        return denial_parse(line, strlen(line), d);
}

START_TEST(test_apparmor_capability_journal)
{
        struct denial d;

        ck_assert_int_eq(parse("Nov 23 10:12:01 compute-1 kernel: audit: type=1400 audit(1763892721.123:456): "
                               "apparmor=\"DENIED\" operation=\"capable\" class=\"cap\" "
                               "profile=\"snap.nova-hypervisor.network-control\" pid=2314 comm=\"ip\" capability=16  "
                               "capname=\"sys_module\"\n",
                               &d),
                         0);
        ck_assert_int_eq(d.kind, DENIAL_APPARMOR);
        ck_assert_str_eq(d.operation, "capable");
        ck_assert_str_eq(d.class_, "cap");
        ck_assert_str_eq(d.profile, "snap.nova-hypervisor.network-control");
        ck_assert_str_eq(d.capname, "sys_module");
        ck_assert_str_eq(d.comm, "ip");
        ck_assert_int_eq(d.pid, 2314);
        ck_assert_str_eq(d.name, "");
}
END_TEST

START_TEST(test_apparmor_file_dmesg_and_hex_name)
{
        struct denial d;

        ck_assert_int_eq(parse("[ 1234.567890] audit: type=1400 audit(1763892721.456:457): apparmor=\"DENIED\" "
                               "operation=\"connect\" class=\"file\" profile=\"snap.nova-hypervisor.openvswitch\" "
                               "name=\"/run/libvirt/libvirt-sock\" pid=2400 comm=\"nova-openvswitc\" "
                               "requested_mask=\"wr\" denied_mask=\"wr\" fsuid=0 ouid=0",
                               &d),
                         0);
        ck_assert_str_eq(d.name, "/run/libvirt/libvirt-sock");
        ck_assert_str_eq(d.denied_mask, "wr");
        /* A path with a blank: the kernel writes it in hex, unquoted. */
        ck_assert_int_eq(parse("audit: type=1400 audit(1.2:3): apparmor=\"DENIED\" operation=\"open\" "
                               "profile=\"snap.nova-hypervisor.libvirt\" name=2F746D702F6120622F63 pid=1 "
                               "comm=\"x\" requested_mask=\"r\" denied_mask=\"r\"",
                               &d),
                         0);
        ck_assert_str_eq(d.name, "/tmp/a b/c");
}
END_TEST

START_TEST(test_apparmor_network_and_auditd)
{
        struct denial d;

        ck_assert_int_eq(parse("type=AVC msg=audit(1763892722.010:458): apparmor=\"DENIED\" operation=\"create\" "
                               "class=\"net\" info=\"failed af match\" error=-13 profile=\"snap.nova-hypervisor.libvirt\" "
                               "pid=2500 comm=\"nova-libvirt\" family=\"netlink\" sock_type=\"raw\" protocol=12 "
                               "requested_mask=\"create\" denied_mask=\"create\"",
                               &d),
                         0);
        ck_assert_str_eq(d.family, "netlink");
        ck_assert_str_eq(d.sock_type, "raw");
        ck_assert_int_eq(d.protocol, 12);
        ck_assert_str_eq(denial_netlink_name(d.protocol), "NETLINK_NETFILTER");
        ck_assert_str_eq(denial_netlink_name(0), "NETLINK_ROUTE");
}
END_TEST

START_TEST(test_seccomp)
{
        struct denial d;

        ck_assert_int_eq(parse("Nov 23 10:12:03 compute-1 kernel: audit: type=1326 audit(1763892723.001:460): "
                               "auid=4294967295 uid=0 gid=0 ses=4294967295 subj=snap.nova-hypervisor.network-control "
                               "pid=2600 comm=\"modprobe\" exe=\"/usr/bin/kmod\" sig=0 arch=c000003e syscall=313 "
                               "compat=0 ip=0x7f1c2a3b4c5d code=0x50000",
                               &d),
                         0);
        ck_assert_int_eq(d.kind, DENIAL_SECCOMP);
        ck_assert_int_eq(d.syscall, 313);
        ck_assert_uint_eq(d.arch, 0xc000003eUL);
        ck_assert_str_eq(d.profile, "snap.nova-hypervisor.network-control");
        ck_assert_str_eq(d.exe, "/usr/bin/kmod");
        ck_assert_str_eq(denial_syscall_name(d.syscall), "finit_module");
        /* Newer kernels: "subj=<label> (enforce)"; auditd: type=SECCOMP. */
        ck_assert_int_eq(parse("type=SECCOMP msg=audit(1.2:3): auid=0 uid=0 subj=snap.nova-hypervisor.libvirt (enforce) "
                               "pid=5 comm=\"a\" exe=\"/b\" sig=0 arch=c000003e syscall=175 compat=0 code=0x50000",
                               &d),
                         0);
        ck_assert_str_eq(d.profile, "snap.nova-hypervisor.libvirt");
        ck_assert_str_eq(denial_syscall_name(d.syscall), "init_module");
}
END_TEST

START_TEST(test_not_denials_and_malformed)
{
        struct denial d = { .pid = 77 };
        char big[DENIAL_MAX_LINE + 2];

        ck_assert_int_eq(parse("Nov 23 10:12:07 compute-1 systemd[1]: Started snap.nova-hypervisor.nova-compute.service", &d),
                         -ENOENT);
        ck_assert_int_eq(parse("audit: type=1400 audit(1.2:3): apparmor=\"ALLOWED\" operation=\"open\" name=\"/x\"", &d),
                         -ENOENT);
        ck_assert_int_eq(parse("audit: type=1400 audit(1.2:3): apparmor=\"DENIED\" operation=\"open\" name=\"/x", &d),
                         -EBADMSG);
        ck_assert_int_eq(parse("audit: type=1400 audit(1.2:3): apparmor=\"DENIED\" name=\"/x\"", &d), -EBADMSG);
        ck_assert_int_eq(parse("audit: type=1326 audit(1.2:3): subj=x syscall=abc", &d), -EBADMSG);
        ck_assert_int_eq(parse("audit: type=1400 audit(1.2:3): apparmor=\"DENIED\" operation=\"o\" protocol=999", &d),
                         -EBADMSG);
        ck_assert_int_eq(denial_parse("audit(1:2): apparmor=\"DENIED\"\0x", 31, &d), -EBADMSG);
        memset(big, 'a', sizeof(big));
        ck_assert_int_eq(denial_parse(big, sizeof(big), &d), -EFBIG);
        ck_assert_int_eq(d.pid, 77); /* untouched */
}
END_TEST

START_TEST(test_aaglob)
{
        ck_assert(aaglob_match("@{PROC}/@{pid}/net/**", "/proc/1234/net/dev"));
        ck_assert(!aaglob_match("@{PROC}/@{pid}/net/**", "/proc/self/net/dev"));
        ck_assert(aaglob_match("@{PROC}/sys/net/ipv{4,6}/**", "/proc/sys/net/ipv6/conf/all/forwarding"));
        ck_assert(!aaglob_match("@{PROC}/sys/net/ipv{4,6}/**", "/proc/sys/net/core/somaxconn"));
        ck_assert(aaglob_match("/sys/devices/system/node/node[0-9]*/*", "/sys/devices/system/node/node0/meminfo"));
        ck_assert(!aaglob_match("/sys/devices/system/node/node[0-9]*/*", "/sys/devices/system/node/node0/a/b"));
        ck_assert(aaglob_match("/var/snap/{@{SNAP_NAME},@{SNAP_INSTANCE_NAME}}/common/**",
                               "/var/snap/nova-hypervisor/common/state/instances.json"));
        ck_assert(!aaglob_match("/var/snap/{@{SNAP_NAME},@{SNAP_INSTANCE_NAME}}/common/**", "/var/snap/other/common/x"));
        ck_assert(aaglob_match("/run/openvswitch/*.mgmt", "/run/openvswitch/br-int.mgmt"));
        ck_assert(aaglob_match("/dev/{,u}random", "/dev/urandom") && aaglob_match("/dev/{,u}random", "/dev/random"));
        ck_assert(aaperms_grant("rw", "wr") && aaperms_grant("mrkix", "x") && aaperms_grant("w", "c"));
        ck_assert(!aaperms_grant("r", "w") && !aaperms_grant("rw", "k") && !aaperms_grant("rw", ""));
}
END_TEST

START_TEST(test_policy_lookups)
{
        struct access tun = { ACCESS_FILE, "/dev/net/tun", "wr" };
        struct access sys_module = { ACCESS_CAPABILITY, "sys_module", NULL };
        struct access net_admin = { ACCESS_CAPABILITY, "net_admin", NULL };
        struct access sys_ptrace = { ACCESS_CAPABILITY, "sys_ptrace", NULL };
        struct access nl_netfilter = { ACCESS_NETLINK, "NETLINK_NETFILTER", NULL };
        struct access common = { ACCESS_FILE, "/var/snap/nova-hypervisor/common/state/x", "w" };
        struct access ovsdb = { ACCESS_FILE, "/run/openvswitch/db.sock", "rw" };

        ck_assert_int_eq(snapd_policy_load(), 0);
        ck_assert(snapd_policy_iface_grants("network-control", &tun));
        ck_assert(!snapd_policy_iface_grants("firewall-control", &tun));
        ck_assert(snapd_policy_iface_grants("kernel-module-control", &sys_module));
        /* snapd's backend denies sys_module and sys_ptrace along with network-control. */
        ck_assert(!snapd_policy_iface_grants("network-control", &sys_module));
        ck_assert(!snapd_policy_iface_grants("network-control", &sys_ptrace));
        ck_assert(snapd_policy_iface_grants("network-control", &net_admin));
        ck_assert(snapd_policy_iface_grants("firewall-control", &nl_netfilter));
        ck_assert(!snapd_policy_iface_grants("network-control", &nl_netfilter));
        ck_assert(snapd_policy_iface_grants("default", &common));
        ck_assert(snapd_policy_iface_grants("openvswitch", &ovsdb));
        ck_assert_uint_eq(snapd_policy_grants(&ovsdb, NULL, NULL), 1);
        ck_assert(snapd_policy_has_iface("default") && !snapd_policy_has_iface("no-such"));
        ck_assert_ptr_nonnull(strstr(snapd_policy_source(), "bee548f7470"));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("denial");
        TCase *tc = tcase_create("decode");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_apparmor_capability_journal);
        tcase_add_test(tc, test_apparmor_file_dmesg_and_hex_name);
        tcase_add_test(tc, test_apparmor_network_and_auditd);
        tcase_add_test(tc, test_seccomp);
        tcase_add_test(tc, test_not_denials_and_malformed);
        tcase_add_test(tc, test_aaglob);
        tcase_add_test(tc, test_policy_lookups);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
