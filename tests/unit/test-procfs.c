/* test-procfs.c - the procfs/sysfs parsers of the observe and process modules,
 * the QEMU mark, the pin request checks, and the placement config keys. */
#include "config.h"
#include "procctl-protocol.h"
#include "procfs.h"

#include <check.h>

START_TEST(test_cpuset)
{
        struct cpuset s, t;
        char buf[64];

        ck_assert_int_eq(cpuset_parse("0-3,8,10-11\n", 12, &s), 0);
        ck_assert_uint_eq(cpuset_count(&s), 7);
        ck_assert(cpuset_has(&s, 10) && !cpuset_has(&s, 9));
        ck_assert_int_eq(cpuset_format(&s, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "0-3,8,10-11");
        ck_assert_int_eq(cpuset_parse("", 0, &s), 0);
        ck_assert_uint_eq(cpuset_count(&s), 0);
        /* refusals leave *ret untouched */
        ck_assert_int_eq(cpuset_parse("1", 1, &s), 0);
        static const char *const bad[] = { "3-1", "1,", ",1", "1--2", "-1", "a", "1 2", "+1", "0-", "1,,2" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                t = s;
                ck_assert_msg(cpuset_parse(bad[i], strlen(bad[i]), &s) == -EINVAL, "%s", bad[i]);
                ck_assert(memcmp(&s, &t, sizeof(s)) == 0);
        }
        ck_assert_int_eq(cpuset_parse("4096", 4, &s), -ERANGE);
        ck_assert_int_eq(cpuset_parse("0-99999", 7, &s), -ERANGE);
        ck_assert_int_eq(cpuset_parse("0-1", 3, &t), 0);
        ck_assert_int_eq(cpuset_parse("0-3", 3, &s), 0);
        ck_assert(cpuset_subset(&t, &s) && !cpuset_subset(&s, &t));
}
END_TEST

START_TEST(test_meminfo_cpuinfo)
{
        const char *mi = "MemTotal:       24684096 kB\nMemFree: 100 kB\nHugePages_Total:       4\n";
        const char *node = "Node 0 MemTotal:       6514904 kB\nNode 0 MemFree: 5 kB\n";
        const char *ci = "processor\t: 0\nmodel name\t: AMD EPYC  \nflags\t\t: fpu svm sse\n";
        uint64_t v;
        char buf[32];

        ck_assert_int_eq(meminfo_get(mi, strlen(mi), "MemTotal", &v), 0);
        ck_assert_uint_eq(v, 24684096);
        ck_assert_int_eq(meminfo_get(mi, strlen(mi), "HugePages_Total", &v), 0);
        ck_assert_uint_eq(v, 4);
        ck_assert_int_eq(meminfo_get(mi, strlen(mi), "Mem", &v), -ENOENT);
        ck_assert_int_eq(meminfo_get(node, strlen(node), "MemFree", &v), 0);
        ck_assert_uint_eq(v, 5);
        ck_assert_int_eq(cpuinfo_get(ci, strlen(ci), "model name", buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "AMD EPYC");
        ck_assert_int_eq(cpuinfo_get(ci, strlen(ci), "flags", buf, 4), -ENAMETOOLONG);
        ck_assert(cpu_flags_has("fpu svm sse", "svm"));
        ck_assert(!cpu_flags_has("fpu svmx sse", "svm"));
}
END_TEST

START_TEST(test_psi_loadavg_stat)
{
        const char *psi = "some avg10=55.85 avg60=60.79 avg300=64.31 total=1497082677\n"
                          "full avg10=0.00 avg60=0.01 avg300=0.00 total=7\n";
        const char *stat = "12 (qemu (x) y) S 1 12 12 0 -1 4194560 100 0 0 0 5 7 0 0 20 0 3 0 1234 100000 250 1";
        struct psi p;
        struct loadavg la;
        struct proc_stat st;

        ck_assert_int_eq(psi_parse(psi, strlen(psi), &p), 0);
        ck_assert_uint_eq(p.some_avg10, 5585);
        ck_assert_uint_eq(p.some_total, 1497082677);
        ck_assert(p.has_full);
        ck_assert_uint_eq(p.full_avg60, 1);
        ck_assert_int_eq(psi_parse("some avg10=1.0\n", 15, &p), -EINVAL);
        ck_assert_int_eq(loadavg_parse("0.52 1.5 10.00 2/312 4242\n", 26, &la), 0);
        ck_assert_uint_eq(la.load1, 520);
        ck_assert_uint_eq(la.load5, 1500);
        ck_assert_uint_eq(la.load15, 10000);
        ck_assert_uint_eq(la.tasks, 312);
        ck_assert_int_eq(proc_stat_parse(stat, strlen(stat), &st), 0);
        ck_assert_str_eq(st.comm, "qemu (x) y");
        ck_assert_uint_eq(st.utime, 5);
        ck_assert_uint_eq(st.stime, 7);
        ck_assert_uint_eq(st.num_threads, 3);
        ck_assert_uint_eq(st.rss_pages, 250);
        ck_assert_int_eq(proc_stat_parse("12 (x) S 1", 10, &st), -EINVAL);
}
END_TEST

#define U "5e1f0c1a-7d3b-4c2e-9a8f-0b1c2d3e4f50"

START_TEST(test_qemu_mark)
{
        static const char good[] = "qemu-system-x86_64\0-name\0guest=nova-" U ",debug-threads=on\0-uuid\0" U "\0";
        static const char legacy[] = "qemu-kvm\0-name\0nova-" U "\0-uuid\0" U "\0";
        static const char other_name[] = "qemu\0-name\0guest=nova-5e1f0c1a-7d3b-4c2e-9a8f-000000000000\0-uuid\0" U "\0";
        static const char no_name[] = "qemu\0-uuid\0" U "\0";
        static const char upper[] = "qemu\0-name\0guest=nova-" U "\0-uuid\0" "5E1F0C1A-7d3b-4c2e-9a8f-0b1c2d3e4f50\0";
        static const char cut[] = "qemu\0-name\0guest=nova-" U "\0-uuid\0" U;
        char uuid[37];

        ck_assert_int_eq(qemu_cmdline_instance(good, sizeof(good) - 1, uuid), 0);
        ck_assert_str_eq(uuid, U);
        ck_assert_int_eq(qemu_cmdline_instance(legacy, sizeof(legacy) - 1, uuid), 0);
        ck_assert_int_eq(qemu_cmdline_instance(other_name, sizeof(other_name) - 1, uuid), -ENOENT);
        ck_assert_int_eq(qemu_cmdline_instance(no_name, sizeof(no_name) - 1, uuid), -ENOENT);
        ck_assert_int_eq(qemu_cmdline_instance(upper, sizeof(upper) - 1, uuid), -ENOENT);
        ck_assert_int_eq(qemu_cmdline_instance(cut, sizeof(cut) - 1, uuid), -ENOENT);
        ck_assert(qemu_exe_is_emulator("/usr/bin/qemu-system-x86_64"));
        ck_assert(qemu_exe_is_emulator("/usr/bin/qemu-system-x86_64 (deleted)"));
        ck_assert(qemu_exe_is_emulator("qemu-kvm"));
        ck_assert(!qemu_exe_is_emulator("/usr/bin/qemu-system-"));
        ck_assert(!qemu_exe_is_emulator("/bin/sleep"));
        ck_assert(!qemu_exe_is_emulator("/tmp/qemu-kvmx"));
}
END_TEST

/* The evidence of libvirt's QEMU: uids from /proc/<pid>/status, libvirt's
 * machine cgroup of the domain from /proc/<pid>/cgroup (paths as systemd
 * and libvirt name them for libvirt 9.0), and what must not pass. */
START_TEST(test_qemu_evidence_parsers)
{
        static const char status[] = "Name:\tqemu-system-x86\nUmask:\t0022\nState:\tS (sleeping)\n"
                                     "Uid:\t64055\t64055\t64055\t64055\nGid:\t120\t120\t120\t120\n";
        static const char mixed[] = "Name:\tx\nUid:\t0\t65534\t0\t0\n";
        static const char short_line[] = "Name:\tx\nUid:\t0\t0\t0\n";
        static const char no_uid[] = "Name:\tx\nXUid:\t0\t0\t0\t0\n";
        uint32_t uids[4];

        ck_assert_int_eq(proc_status_uids(status, sizeof(status) - 1, uids), 0);
        ck_assert_uint_eq(uids[0], 64055);
        ck_assert_uint_eq(uids[3], 64055);
        ck_assert_int_eq(proc_status_uids(mixed, sizeof(mixed) - 1, uids), 0);
        ck_assert_uint_eq(uids[1], 65534);
        ck_assert_int_eq(proc_status_uids(short_line, sizeof(short_line) - 1, uids), -EINVAL);
        ck_assert_int_eq(proc_status_uids(no_uid, sizeof(no_uid) - 1, uids), -EINVAL);

        static const char *const good[] = {
                /* systemd-machined (cgroup v2), libvirt's nested cgroups below the scope */
                "0::/machine.slice/machine-qemu\\x2d3\\x2dnova\\x2d5e1f0c1a\\x2d7d3b\\x2d4c2e\\x2d9a8f\\x2d0b1c2d3e4f50.scope/libvirt/emulator\n",
                "0::/machine.slice/machine-qemu\\x2d17\\x2dnova\\x2d5e1f0c1a\\x2d7d3b\\x2d4c2e\\x2d9a8f\\x2d0b1c2d3e4f50.scope\n",
                /* v1 with systemd: the name=systemd line */
                "12:cpuset:/\n1:name=systemd:/machine.slice/machine-qemu\\x2d2\\x2dnova\\x2d5e1f0c1a\\x2d7d3b\\x2d4c2e\\x2d9a8f\\x2d0b1c2d3e4f50.scope\n0::/\n",
                /* libvirt without systemd, and the embedded driver */
                "4:cpu,cpuacct:/machine/qemu-1-nova-" U ".libvirt-qemu/emulator\n",
                "0::/machine/qemu-embed-0a1b2c3d-1-nova-" U ".libvirt-qemu\n",
        };
        static const char *const bad[] = {
                "0::/\n",
                "0::/user.slice/user-65534.slice/machine.slice/machine-qemu\\x2d3\\x2dnova\\x2d5e1f0c1a\\x2d7d3b\\x2d4c2e\\x2d9a8f\\x2d0b1c2d3e4f50.scope\n",
                "0::/machine.slice/machine-qemu\\x2d3\\x2dnova\\x2d5e1f0c1a\\x2d7d3b\\x2d4c2e\\x2d9a8f\\x2d0b1c2d3e4f51.scope\n",
                "0::/machine.slice/machine-qemu-3-nova-" U ".scope\n",           /* not escaped: not systemd's */
                "0::/machine.slice/machine-qemu\\x2dnobody\\x2d3\\x2dnova\\x2d5e1f0c1a\\x2d7d3b\\x2d4c2e\\x2d9a8f\\x2d0b1c2d3e4f50.scope\n",
                "0::/machine.slice/machine-qemu\\x2d3\\x2dnova\\x2d5e1f0c1a\\x2d7d3b\\x2d4c2e\\x2d9a8f\\x2d0b1c2d3e4f50.scopex\n",
                "0::/machine/qemu-1-nova-" U ".libvirt-lxc\n",
                "0::/machine/qemu-1-nova-" U "x.libvirt-qemu\n",
                "0::/machine/qemu--nova-" U ".libvirt-qemu\n",
                "0::/machine/qemu-embed-0A1B2C3D-1-nova-" U ".libvirt-qemu\n",
                "0::/machine/qemu-1-nova-" U,                                        /* no suffix */
                "/machine/qemu-1-nova-" U ".libvirt-qemu\n",                       /* not a cgroup line */
        };
        /* What libvirt 9.0 (Debian 12, embedded QEMU driver, cgroup controllers on, no systemd) gave a real
         * QEMU of domain nova-U on this machine (cgroup v1 controllers with a v2 hierarchy beside them). */
        static const char real_libvirt[] =
                "9:name=systemd:/\n8:pids:/\n"
                "7:blkio:/machine/qemu-embed-42eae98f-1-nova-" U ".libvirt-qemu\n"
                "6:freezer:/machine/qemu-embed-42eae98f-1-nova-" U ".libvirt-qemu\n5:devices:/\n"
                "4:memory:/machine/qemu-embed-42eae98f-1-nova-" U ".libvirt-qemu\n"
                "3:cpuset:/machine/qemu-embed-42eae98f-1-nova-" U ".libvirt-qemu/emulator\n2:cpuacct:/\n"
                "1:cpu:/machine/qemu-embed-42eae98f-1-nova-" U ".libvirt-qemu/emulator\n"
                "0::/machine/qemu-embed-42eae98f-1-nova-" U ".libvirt-qemu/emulator\n";
        ck_assert(qemu_cgroup_is_instance(real_libvirt, sizeof(real_libvirt) - 1, U));
        for (size_t i = 0; i < ARRAY_SIZE(good); i++)
                ck_assert_msg(qemu_cgroup_is_instance(good[i], strlen(good[i]), U), "good[%zu] refused", i);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                ck_assert_msg(!qemu_cgroup_is_instance(bad[i], strlen(bad[i]), U), "bad[%zu] accepted", i);
        ck_assert(!qemu_cgroup_is_instance(good[0], strlen(good[0]), "5e1f0c1a-7d3b-4c2e-9a8f-0b1c2d3e4f51"));

        struct qemu_evidence ev;
        ck_assert_int_eq(qemu_evidence_init("+64055", &ev), 0);
        ck_assert_uint_eq(ev.n_uids, 2);
        ck_assert_uint_eq(ev.uids[0], 0);
        ck_assert_uint_eq(ev.uids[1], 64055);
        ck_assert_int_eq(qemu_evidence_init("root", &ev), 0);
        ck_assert_uint_eq(ev.n_uids, 1);
        ck_assert_int_eq(qemu_evidence_init("no-such-user-here", &ev), -ENOENT);
        ck_assert_uint_eq(ev.n_uids, 1);
        ck_assert_uint_eq(ev.uids[0], 0);
}
END_TEST

START_TEST(test_pin_request_checks)
{
        ck_assert(procctl_cpus_text_ok("0-3,6"));
        ck_assert(!procctl_cpus_text_ok(""));
        ck_assert(!procctl_cpus_text_ok("0\n"));
        ck_assert(!procctl_cpus_text_ok("3-1"));
        ck_assert(procctl_priority_text_ok("-20") && procctl_priority_text_ok("19") && procctl_priority_text_ok("0"));
        ck_assert(!procctl_priority_text_ok("20") && !procctl_priority_text_ok("-21") && !procctl_priority_text_ok("+1"));
        ck_assert(!procctl_priority_text_ok("-0") && !procctl_priority_text_ok("05") && !procctl_priority_text_ok(""));
        ck_assert_int_eq(procctl_priority_value("-5"), -5);
}
END_TEST

START_TEST(test_placement_config)
{
        struct nova_config c, before;
        char err[256];

        config_defaults(&c);
        ck_assert_uint_eq(c.cpu_allocation_ratio_milli, 16000);
        ck_assert_uint_eq(c.ram_allocation_ratio_milli, 1500);
        ck_assert_uint_eq(c.disk_allocation_ratio_milli, 1000);
        ck_assert_str_eq(c.cpu_set, "");
        ck_assert_int_eq(config_set(&c, "cpu_allocation_ratio", "4.5", err, sizeof(err)), 0);
        ck_assert_uint_eq(c.cpu_allocation_ratio_milli, 4500);
        ck_assert_int_eq(config_set(&c, "ram_allocation_ratio", "0.125", err, sizeof(err)), 0);
        ck_assert_uint_eq(c.ram_allocation_ratio_milli, 125);
        ck_assert_int_eq(config_set(&c, "cpu_set", "0-1,3", err, sizeof(err)), 0);
        ck_assert_str_eq(c.cpu_set, "0-1,3");
        static const char *const bad_ratio[] = { "", "0", "1.2345", "-1", "1.", ".5", "1e3", "1000.001", "abc" };
        for (size_t i = 0; i < sizeof(bad_ratio) / sizeof(bad_ratio[0]); i++) {
                before = c;
                ck_assert_msg(config_set(&c, "cpu_allocation_ratio", bad_ratio[i], err, sizeof(err)) == -EINVAL, "%s",
                              bad_ratio[i]);
                ck_assert(memcmp(&c, &before, sizeof(c)) == 0);
        }
        before = c;
        ck_assert_int_eq(config_set(&c, "cpu_set", "3-1", err, sizeof(err)), -EINVAL);
        ck_assert(strstr(err, "cpu list"));
        ck_assert(memcmp(&c, &before, sizeof(c)) == 0);
        ck_assert_int_eq(config_set(&c, "cpu_set", "", err, sizeof(err)), 0);
        ck_assert_str_eq(c.cpu_set, "");
}
END_TEST

/* /proc/<pid>/status: the capability masks, each exactly once. */
START_TEST(test_proc_security_parse)
{
        static const char good[] = "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t0000000000001000\n"
                                   "CapEff:\t0000000000001000\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n"
                                   "NoNewPrivs:\t1\n";
        struct proc_security sec = { 0 }, untouched = { .cap_eff = 42 };
        char buf[512];

        ck_assert_int_eq(proc_security_parse(good, strlen(good), &sec), 0);
        ck_assert_uint_eq(sec.cap_eff, 0x1000);
        ck_assert_uint_eq(sec.cap_bnd, 0x1ffffffffffULL);
        ck_assert(sec.no_new_privs);
        /* a repeated field: refused (which one would be true?), even when another is missing */
        (void)snprintf(buf, sizeof(buf), "%s", good);
        memcpy(strstr(buf, "CapAmb"), "CapEff", 6);
        sec = untouched;
        ck_assert_int_eq(proc_security_parse(buf, strlen(buf), &sec), -EBADMSG);
        ck_assert_uint_eq(sec.cap_eff, 42);
        /* every field, one of them twice with another value */
        (void)snprintf(buf, sizeof(buf), "%sCapEff:\t0000000000000000\n", good);
        ck_assert_int_eq(proc_security_parse(buf, strlen(buf), &sec), -EBADMSG);
        ck_assert_uint_eq(sec.cap_eff, 42);
        /* a missing field, a NUL inside, a bad or too long mask */
        ck_assert_int_eq(proc_security_parse(good, (size_t)(strstr(good, "CapAmb") - good), &sec), -EBADMSG);
        memcpy(buf, good, sizeof(good));
        buf[3] = '\0';
        ck_assert_int_eq(proc_security_parse(buf, sizeof(good) - 1, &sec), -EBADMSG);
        (void)snprintf(buf, sizeof(buf), "%s", good);
        memcpy(strstr(buf, "CapPrm:\t") + 8, "X", 1);
        ck_assert_int_eq(proc_security_parse(buf, strlen(buf), &sec), -EINVAL);
        (void)snprintf(buf, sizeof(buf), "CapInh: 00000000000000000\nCapPrm: 0\nCapEff: 0\nCapBnd: 0\nCapAmb: 0");
        ck_assert_int_eq(proc_security_parse(buf, strlen(buf), &sec), -ERANGE);
        /* no newline at the end, no NoNewPrivs line */
        (void)snprintf(buf, sizeof(buf), "CapInh: 0\nCapPrm: 0\nCapEff: f\nCapBnd: 0\nCapAmb: 0");
        ck_assert_int_eq(proc_security_parse(buf, strlen(buf), &sec), 0);
        ck_assert_uint_eq(sec.cap_eff, 0xf);
        ck_assert(!sec.no_new_privs);
        /* and the live one */
        ck_assert_int_eq(proc_security_read(0, &sec), 0);
}
END_TEST

/* Kernel uevents as NETLINK_KOBJECT_UEVENT delivers them (the first two as
 * `udevadm monitor --kernel --property` showed them on this machine's kernel). */
#define UEV(lit) lit, sizeof(lit) - 1 /* a datagram: every field NUL-terminated, the last one too */
START_TEST(test_uevent)
{
        struct uevent ev = { UEVENT_ACTION_OTHER, UEVENT_OTHER }, before;

        ck_assert_int_eq(uevent_parse(UEV("change@/devices/system/cpu/cpu0\0ACTION=change\0"
                                          "DEVPATH=/devices/system/cpu/cpu0\0SUBSYSTEM=cpu\0DRIVER=processor\0"
                                          "MODALIAS=cpu:type:x86\0SEQNUM=5210\0"), &ev), 0);
        ck_assert_int_eq(ev.action, UEVENT_CHANGE);
        ck_assert_int_eq(ev.subsystem, UEVENT_CPU);
        ck_assert(uevent_changes_inventory(&ev));
        ck_assert_str_eq(uevent_subsystem_name(ev.subsystem), "cpu");
        ck_assert_str_eq(uevent_action_name(ev.action), "change");
        ck_assert_int_eq(uevent_parse(UEV("add@/devices/pci0000:00/0000:00:03.0\0ACTION=add\0"
                                          "DEVPATH=/devices/pci0000:00/0000:00:03.0\0SUBSYSTEM=pci\0SEQNUM=7\0"), &ev), 0);
        ck_assert_int_eq(ev.action, UEVENT_ADD);
        ck_assert_int_eq(ev.subsystem, UEVENT_PCI);
        ck_assert_int_eq(uevent_parse(UEV("offline@/devices/system/memory/memory9\0ACTION=offline\0"
                                          "SUBSYSTEM=memory\0"), &ev), 0);
        ck_assert(ev.action == UEVENT_OFFLINE && ev.subsystem == UEVENT_MEMORY && uevent_changes_inventory(&ev));
        /* parsed, but nothing the inventory shows */
        ck_assert_int_eq(uevent_parse(UEV("add@/devices/virtual/net/tap0\0ACTION=add\0SUBSYSTEM=net\0"), &ev), 0);
        ck_assert(ev.subsystem == UEVENT_OTHER && !uevent_changes_inventory(&ev));
        ck_assert_int_eq(uevent_parse(UEV("bind@/devices/pci0000:00/0000:00:03.0\0ACTION=bind\0SUBSYSTEM=pci\0"), &ev), 0);
        ck_assert(ev.action == UEVENT_ACTION_OTHER && !uevent_changes_inventory(&ev));

        /* refused, *ret untouched */
        static const struct {
                const char *buf;
                size_t len;
        } bad[] = {
                { UEV("") },
                { UEV("libudev\0ACTION=add\0SUBSYSTEM=pci\0") },           /* udev's binary header: no '@' */
                { UEV("@/devices/x\0ACTION=add\0SUBSYSTEM=pci\0") },       /* empty header action */
                { UEV("add@/devices/x\0ACTION=remove\0SUBSYSTEM=pci\0") }, /* header and ACTION disagree */
                { UEV("add@/devices/x\0ACTION=add\0") },                   /* no SUBSYSTEM */
                { UEV("add@/devices/x\0SUBSYSTEM=pci\0") },                /* no ACTION */
                { UEV("add@/devices/x\0ACTION=add\0SUBSYSTEM=\0") },       /* empty SUBSYSTEM */
                { UEV("add@/devices/x\0ACTION=add\0garbage\0SUBSYSTEM=pci\0") }, /* a field without '=' */
                { UEV("add@/devices/x\0ACTION=add\0=pci\0SUBSYSTEM=pci\0") },   /* an empty key */
                { "add@/devices/x\0ACTION=add\0SUBSYSTEM=pci", sizeof("add@/devices/x\0ACTION=add\0SUBSYSTEM=pci") - 1 },
                { "add@/devices/x", 14 },                                     /* header not terminated */
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                ev = (struct uevent){ UEVENT_REMOVE, UEVENT_NODE };
                before = ev;
                ck_assert_msg(uevent_parse(bad[i].buf, bad[i].len, &ev) == -EBADMSG, "bad[%zu] accepted", i);
                ck_assert(memcmp(&ev, &before, sizeof(ev)) == 0);
        }
        /* an over-long SUBSYSTEM value */
        char big[256];
        size_t n = (size_t)snprintf(big, sizeof(big), "add@/x%cACTION=add%cSUBSYSTEM=", 0, 0);
        memset(big + n, 'p', 100);
        big[n + 100] = '\0';
        ck_assert_int_eq(uevent_parse(big, n + 101, &ev), -EBADMSG);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("procfs");
        TCase *tc = tcase_create("parsers");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_cpuset);
        tcase_add_test(tc, test_proc_security_parse);
        tcase_add_test(tc, test_meminfo_cpuinfo);
        tcase_add_test(tc, test_psi_loadavg_stat);
        tcase_add_test(tc, test_qemu_mark);
        tcase_add_test(tc, test_qemu_evidence_parsers);
        tcase_add_test(tc, test_pin_request_checks);
        tcase_add_test(tc, test_placement_config);
        tcase_add_test(tc, test_uevent);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
