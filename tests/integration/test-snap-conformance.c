/* test-snap-conformance.c - confinement conformance: every module, run by a
 * real core on a real workload (a private Open vSwitch, libvirt's
 * test:///default, an instance booted with a filtered port, host and stats
 * queries), is traced with strace (following forks, one file per process).
 * Every file it opens, unix socket it connects or binds, socket family and
 * netlink protocol it creates, program it executes, and every capability it
 * keeps (CapEff while serving) is checked against its own plug's policy plus
 * snapd's default template (data/snapd-policy.json, derived from snapd's
 * interface sources). Sandbox paths are mapped to the snap's first: the OVS
 * run dir to /run/openvswitch, run_dir to $SNAP_DATA/run, state_dir to
 * $SNAP_COMMON/state, the config to $SNAP_DATA, the programs to $SNAP/bin.
 *
 * No AppArmor or seccomp is loaded here (no snapd): this checks what the code
 * does against what the policy would allow. A module that steps outside its
 * plug fails with the access and the interface that would grant it. */
#include "harness.h"

#include "apiclient.h"
#include "denial.h"
#include "plugs.h"
#include "snapd-policy.h"

#include <check.h>
#include <dirent.h>
#include <sys/stat.h>
#include <linux/netlink.h>

#define SNAP_DIR "/snap/nova-hypervisor/x1"
#define SNAP_DATA "/var/snap/nova-hypervisor/x1"
#define SNAP_COMMON "/var/snap/nova-hypervisor/common"

static struct core core;
static struct ovs_fixture ovs;
static char trace_dir[PATH_MAX], wrap_dir[PATH_MAX], bin_real[PATH_MAX];

struct mapping {
        char from[PATH_MAX];
        char to[PATH_MAX];
};
static struct mapping maps[8];
static size_t n_maps;

static void add_map(const char *from, const char *to)
{
        ck_assert_uint_lt(n_maps, ARRAY_SIZE(maps));
        ck_assert_ptr_nonnull(realpath(from, maps[n_maps].from) ? maps[n_maps].from : NULL);
        ck_assert_int_eq(strscpy(maps[n_maps].to, to, sizeof(maps[0].to)), 0);
        n_maps++;
}

/* The snap's path of a sandbox path (longest matching prefix), into buf. */
static const char *snap_path(const char *path, char *buf, size_t size)
{
        size_t best = 0, bl = 0;

        for (size_t i = 0; i < n_maps; i++) {
                size_t n = strlen(maps[i].from);
                if (strncmp(path, maps[i].from, n) == 0 && (path[n] == '/' || path[n] == '\0') && n > bl) {
                        best = i + 1;
                        bl = n;
                }
        }
        if (!best) {
                (void)strscpy(buf, path, size);
                return buf;
        }
        (void)snprintf(buf, size, "%s%s", maps[best - 1].to, path + bl);
        return buf;
}

struct report {
        char text[16384];
        unsigned violations, checked;
};

static void add_iface(const char *iface, const char *rule, void *userdata)
{
        char *list = userdata;
        size_t n = strlen(list);
        (void)rule;
        if (!streq(iface, "default"))
                (void)snprintf(list + n, 512 - n, "%s%s", n ? ", " : "", iface);
}

/* Accesses only the sandbox makes, never the snap: libvirt's test:///default
 * driver runs inside the module's process and probes the host (virsh -c
 * test:///default does the same); in the snap libvirt_uri is qemu:///system
 * and that driver runs in the host's libvirtd. Listed, never silently. */
static const struct {
        const char *plug, *path;
} sandbox_only[] = {
        { "libvirt", "/sys/kernel/iommu_groups/" },
};

/* Check one access against plug + default; record a violation naming the granting interfaces. */
static void check_access(struct report *rep, const char *program, const char *plug, const struct access *a,
                         const char *what)
{
        char who[512] = "";
        size_t n;

        rep->checked++;
        if (snapd_policy_iface_grants(plug, a) || snapd_policy_iface_grants("default", a))
                return;
        for (size_t i = 0; i < ARRAY_SIZE(sandbox_only); i++)
                if (a->kind == ACCESS_FILE && streq(plug, sandbox_only[i].plug) && streq(a->name, sandbox_only[i].path)) {
                        fprintf(stderr, "note: %s: %s: made by libvirt's in-process test driver only (sandbox)\n",
                                program, what);
                        return;
                }
        (void)snapd_policy_grants(a, add_iface, who);
        rep->violations++;
        n = strlen(rep->text);
        (void)snprintf(rep->text + n, sizeof(rep->text) - n, "%s: %s is outside its plug %s and the default template; %s%s\n",
                       program, what, plug, who[0] ? "granted by: " : "no snapd interface grants it",
                       who[0] ? who : "");
}

static const char *open_mask(const char *flags)
{
        bool creat = strstr(flags, "O_CREAT") != NULL;
        if (strstr(flags, "O_RDWR"))
                return "rw";
        if (strstr(flags, "O_WRONLY"))
                return creat ? "wc" : "w";
        return creat ? "rc" : "r";
}

/* First "..."-quoted string after p (strace -s 4096 escapes quotes), into buf. */
static bool quoted(const char *p, char *buf, size_t size)
{
        const char *q = strchr(p, '"'), *end;
        if (!q)
                return false;
        end = strchr(q + 1, '"');
        if (!end || (size_t)(end - q - 1) >= size)
                return false;
        memcpy(buf, q + 1, (size_t)(end - q - 1));
        buf[end - q - 1] = '\0';
        return true;
}

static const char *const netlink_names[][2] = {
        { "NETLINK_ROUTE", "NETLINK_ROUTE" }, { "NETLINK_NETFILTER", "NETLINK_NETFILTER" },
        { "NETLINK_GENERIC", "NETLINK_GENERIC" }, { "NETLINK_SOCK_DIAG", "NETLINK_INET_DIAG" },
        { "NETLINK_INET_DIAG", "NETLINK_INET_DIAG" }, { "NETLINK_KOBJECT_UEVENT", "NETLINK_KOBJECT_UEVENT" },
        { "NETLINK_AUDIT", "NETLINK_AUDIT" }, { "NETLINK_FIREWALL", "NETLINK_FIREWALL" },
        { "NETLINK_NFLOG", "NETLINK_NFLOG" }, { "NETLINK_XFRM", "NETLINK_XFRM" },
};

/* The path AppArmor sees: symlinks resolved (/lib -> /usr/lib, /proc/self ->
 * /proc/<pid>) when the file exists here, and a trailing '/' for directories. */
static void kernel_path(char *path, size_t size, long pid, bool directory)
{
        char real[PATH_MAX];

        if (strncmp(path, "/proc/self", 10) == 0 && (path[10] == '/' || path[10] == '\0')) {
                char tmp[4096];
                (void)snprintf(tmp, sizeof(tmp), "/proc/%ld%s", pid, path + 10);
                (void)strscpy(path, tmp, size);
        } else if (strncmp(path, "/proc/", 6) != 0 && realpath(path, real))
                (void)strscpy(path, real, size);
        if (directory && path[strlen(path) - 1] != '/' && strlen(path) + 1 < size) {
                size_t n = strlen(path);
                path[n] = '/';
                path[n + 1] = '\0';
        }
}

/* Check every line of one strace -ff output file (named <plug>.<pid>). */
static void check_trace_file(struct report *rep, const char *program, const char *plug, const char *file)
{
        const char *dot = strrchr(file, '.');
        long pid = dot ? strtol(dot + 1, NULL, 10) : 1;
        FILE *f = fopen(file, "re");
        char *line = NULL, path[4096], mapped[4096], what[4400];
        size_t cap = 0;

        ck_assert_msg(f, "%s: %s", file, strerror(errno));
        while (getline(&line, &cap, f) >= 0) {
                struct access a = { 0 };
                bool enoent = strstr(line, "= -1 ENOENT") != NULL;

                if (strncmp(line, "openat(", 7) == 0 || strncmp(line, "open(", 5) == 0) {
                        const char *flags;
                        if (enoent || !quoted(line, path, sizeof(path)) || path[0] != '/')
                                continue; /* absent files and relative names (dirfd) are not checked */
                        flags = strstr(line, "\", ") ? strstr(line, "\", ") + 3 : "";
                        kernel_path(path, sizeof(path), pid, strstr(flags, "O_DIRECTORY") != NULL);
                        a = (struct access){ ACCESS_FILE, snap_path(path, mapped, sizeof(mapped)), open_mask(flags) };
                        (void)snprintf(what, sizeof(what), "open %s (%s)", mapped, a.arg);
                        check_access(rep, program, plug, &a, what);
                } else if (strncmp(line, "execve(", 7) == 0) {
                        if (enoent || !quoted(line, path, sizeof(path)))
                                continue;
                        a = (struct access){ ACCESS_FILE, snap_path(path, mapped, sizeof(mapped)), "x" };
                        (void)snprintf(what, sizeof(what), "exec %s", mapped);
                        check_access(rep, program, plug, &a, what);
                } else if ((strncmp(line, "connect(", 8) == 0 || strncmp(line, "bind(", 5) == 0) &&
                           strstr(line, "sa_family=AF_UNIX") && strstr(line, "sun_path=\"")) {
                        bool is_bind = line[0] == 'b';
                        if (enoent || !quoted(strstr(line, "sun_path="), path, sizeof(path)))
                                continue;
                        a = (struct access){ ACCESS_FILE, snap_path(path, mapped, sizeof(mapped)), "w" };
                        (void)snprintf(what, sizeof(what), "%s unix socket %s", is_bind ? "bind" : "connect", mapped);
                        check_access(rep, program, plug, &a, what);
                        if (is_bind) {
                                a = (struct access){ ACCESS_SYSCALL, "bind", NULL };
                                check_access(rep, program, plug, &a, "the bind() syscall");
                        }
                } else if (strncmp(line, "bind(", 5) == 0) {
                        a = (struct access){ ACCESS_SYSCALL, "bind", NULL };
                        check_access(rep, program, plug, &a, "the bind() syscall");
                } else if (strncmp(line, "socket(", 7) == 0) {
                        /* socket(FAMILY, TYPE[|FLAGS...], PROTOCOL) = fd */
                        char fam[32] = "", type[32] = "", proto[64] = "";
                        const char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
                        const char *close = c2 ? strchr(c2, ')') : NULL;
                        if (!close || (size_t)(c1 - line - 7) >= sizeof(fam) || (size_t)(close - c2 - 2) >= sizeof(proto))
                                continue;
                        memcpy(fam, line + 7, (size_t)(c1 - line - 7));
                        (void)snprintf(type, sizeof(type), "%.*s", (int)strcspn(c1 + 2, "|,"), c1 + 2);
                        memcpy(proto, c2 + 2, (size_t)(close - c2 - 2));
                        if (streq(fam, "AF_UNIX") || streq(fam, "AF_LOCAL"))
                                continue; /* the template's unix rules */
                        const char *family = streq(fam, "AF_NETLINK") ? "netlink"
                                             : streq(fam, "AF_INET")  ? "inet"
                                             : streq(fam, "AF_INET6") ? "inet6"
                                             : streq(fam, "AF_PACKET") ? "packet"
                                                                       : fam;
                        const char *stype = streq(type, "SOCK_RAW")      ? "raw"
                                            : streq(type, "SOCK_DGRAM")  ? "dgram"
                                            : streq(type, "SOCK_STREAM") ? "stream"
                                                                         : type;
                        a = (struct access){ ACCESS_NETWORK, family, stype };
                        (void)snprintf(what, sizeof(what), "socket network %s %s", family, stype);
                        check_access(rep, program, plug, &a, what);
                        if (streq(family, "netlink")) {
                                const char *nl = proto;
                                for (size_t i = 0; i < ARRAY_SIZE(netlink_names); i++)
                                        if (streq(proto, netlink_names[i][0]))
                                                nl = netlink_names[i][1];
                                a = (struct access){ ACCESS_NETLINK, nl, NULL };
                                (void)snprintf(what, sizeof(what), "socket AF_NETLINK %s", nl);
                                check_access(rep, program, plug, &a, what);
                        }
                }
        }
        free(line);
        fclose(f);
}

/* Capabilities the module keeps while serving: each must come from its plug (or the template). */
static void check_caps(struct report *rep, const char *program, const char *plug, pid_t pid)
{
        char path[64], caps[512], what[128];
        uint64_t eff = 0;
        FILE *f;
        char line[256];

        (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "re");
        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "CapEff:", 7) == 0)
                        eff = strtoull(line + 7, NULL, 16);
        fclose(f);
        ck_assert_int_eq(caps_mask_format(eff, caps, sizeof(caps)), 0);
        for (char *save = NULL, *c = strtok_r(caps, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
                struct access a = { ACCESS_CAPABILITY, c + 4, NULL }; /* without "cap_" */
                (void)snprintf(what, sizeof(what), "capability %s (kept while serving)", c + 4);
                check_access(rep, program, plug, &a, what);
        }
}

static void setup(void)
{
        const char *bin = getenv("NOVA_BIN");
        char path[PATH_MAX], script[3 * PATH_MAX];

        memset(&core, 0, sizeof(core));
        memset(&ovs, 0, sizeof(ovs));
        n_maps = 0;
        ck_assert_ptr_nonnull(realpath(bin ? bin : "build/bin", bin_real));
        ck_assert_int_eq(snapd_policy_load(), 0);
        ck_assert_int_eq(ovs_fixture_start(&ovs), 0);
        ck_assert_int_eq(xsnprintf(core.dir, sizeof(core.dir), "/tmp/nova-conform-XXXXXX"), 0);
        ck_assert_ptr_nonnull(mkdtemp(core.dir));
        ck_assert_int_eq(xsnprintf(trace_dir, sizeof(trace_dir), "%s/trace", core.dir), 0);
        ck_assert_int_eq(xsnprintf(wrap_dir, sizeof(wrap_dir), "%s/modules", core.dir), 0);
        ck_assert_int_eq(mkdir(trace_dir, 0700), 0);
        ck_assert_int_eq(mkdir(wrap_dir, 0700), 0);
        /* Each module program runs under strace -D (the tracer is a grandchild:
         * the module keeps the pid the core knows). */
        for (int i = 0; i < _PLUG_MAX; i++) {
                ck_assert_int_eq(xsnprintf(script, sizeof(script),
                                           "#!/bin/sh\nexec strace -D -f -ff -qq -s 4096 -o %s/%s "
                                           "-e trace=open,openat,execve,connect,bind,socket %s/%s \"$@\"\n",
                                           trace_dir, plug_table[i].name, bin_real, plug_table[i].program),
                                 0);
                ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/%s", wrap_dir, plug_table[i].program), 0);
                ck_assert_int_eq(write_file_atomic(path, script, strlen(script), 0755), 0);
        }
}

static void teardown(void)
{
        core_stop(&core);
        ovs_fixture_stop(&ovs);
        if (!getenv("KEEP"))
                (void)sh("rm -rf %s", core.dir);
}

static void workload(void)
{
        char lines[3 * PATH_MAX], body[512], uuid[37], path[256];
        struct json_object *resp = NULL;
        int st;

        ck_assert_int_eq(xsnprintf(lines, sizeof(lines),
                       "plugs = libvirt openvswitch network-control firewall-control hardware-observe system-observe "
                       "network-observe process-control\n"
                       "module_dir = %s\nlibvirt_uri = test:///default\nvif_type = ovs\novsdb_socket = unix:%s\n"
                       "integration_bridge = br-int\nbridge_create = true\nbridge_datapath_type = netdev\n"
                       "module_timeout_ms = 10000\nport_timeout_ms = 10000\n",
                       wrap_dir, ovs.db_sock), 0);
        core_start(&core, lines);
        for (int i = 0; i < _PLUG_MAX; i++)
                ck_assert_msg(core_wait_module_running(&core, plug_table[i].name, 0, 20000) > 0,
                              "module %s did not run under strace; see %s", plug_table[i].name, core.log);
        /* Boot an instance with a filtered (hybrid) port: network-control, openvswitch, firewall-control, libvirt. */
        random_port_uuid(uuid);
        (void)snprintf(body, sizeof(body),
                       "{\"name\":\"conform\",\"secgroups\":[\"default\"],\"ports\":[{\"port_uuid\":\"%s\","
                       "\"mac\":\"fa:16:3e:00:00:01\",\"ips\":[\"10.1.0.5\"]}]}",
                       uuid);
        st = core_api(&core, "POST", "/v1/instances?wait=1", body, &resp);
        ck_assert_msg(st == 200, "boot: HTTP %d %s; see %s", st, json_object_to_json_string(resp), core.log);
        json_object_put(resp);
        /* The observe modules. */
        ck_assert_int_eq(core_api(&core, "GET", "/v1/host", NULL, &resp), 200);
        json_object_put(resp);
        st = core_api(&core, "GET", "/v1/stats", NULL, &resp);
        ck_assert_msg(st == 200, "stats: HTTP %d", st);
        json_object_put(resp);
        /* process-control: test:///default domains have no QEMU threads; the call still reaches the module. */
        (void)snprintf(path, sizeof(path), "/v1/instances/conform/pin");
        (void)core_api(&core, "POST", path, "{\"cpus\":\"0\"}", &resp);
        json_object_put(resp);
        st = core_api(&core, "DELETE", "/v1/instances/conform?wait=1", NULL, &resp);
        ck_assert_msg(st == 200 || st == 204, "delete: HTTP %d", st);
        json_object_put(resp);
}

START_TEST(test_modules_stay_inside_their_plugs)
{
        static struct report rep;
        pid_t pids[_PLUG_MAX];

        workload();
        for (int i = 0; i < _PLUG_MAX; i++)
                pids[i] = core_module_pid(&core, plug_table[i].name);
        for (int i = 0; i < _PLUG_MAX; i++)
                check_caps(&rep, plug_table[i].program, plug_table[i].name, pids[i]);
        core_stop(&core); /* modules exit: the traces are complete */

        /* Sandbox paths as the snap has them. */
        add_map(ovs.dir, "/run/openvswitch");
        {
                char p[PATH_MAX];
                ck_assert_int_eq(xsnprintf(p, sizeof(p), "%s/run", core.dir), 0);
                add_map(p, SNAP_DATA "/run");
                ck_assert_int_eq(xsnprintf(p, sizeof(p), "%s/state", core.dir), 0);
                add_map(p, SNAP_COMMON "/state");
                ck_assert_int_eq(xsnprintf(p, sizeof(p), "%s/core.conf", core.dir), 0);
                add_map(p, SNAP_DATA "/nova-hypervisor.conf");
        }
        add_map(bin_real, SNAP_DIR "/bin");
        add_map(wrap_dir, SNAP_DIR "/bin");

        for (int i = 0; i < _PLUG_MAX; i++) {
                char prefix[64], file[PATH_MAX];
                unsigned files = 0;
                DIR *d = opendir(trace_dir);
                struct dirent *e;

                ck_assert_ptr_nonnull(d);
                (void)snprintf(prefix, sizeof(prefix), "%s.", plug_table[i].name);
                while ((e = readdir(d)))
                        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
                            strspn(e->d_name + strlen(prefix), "0123456789") == strlen(e->d_name + strlen(prefix))) {
                                ck_assert_int_eq(xsnprintf(file, sizeof(file), "%s/%s", trace_dir, e->d_name), 0);
                                check_trace_file(&rep, plug_table[i].program, plug_table[i].name, file);
                                files++;
                        }
                closedir(d);
                ck_assert_msg(files > 0, "no trace of %s", plug_table[i].program);
        }
        fprintf(stderr, "conformance: %u accesses checked, %u outside their plug\n", rep.checked, rep.violations);
        ck_assert_uint_gt(rep.checked, 100);
        if (rep.violations)
                fprintf(stderr, "%s", rep.text);
        ck_assert_msg(rep.violations == 0, "%u accesses of modules are outside their plugs (listed above)", rep.violations);
}
END_TEST

/* The checker itself: an access only another plug grants is a violation naming that plug. */
START_TEST(test_checker_names_the_granting_interface)
{
        static struct report rep;
        char file[PATH_MAX];
        const char *trace = "openat(AT_FDCWD, \"/etc/ld.so.cache\", O_RDONLY|O_CLOEXEC) = 3\n"
                            "connect(5, {sa_family=AF_UNIX, sun_path=\"/run/libvirt/libvirt-sock\"}, 110) = 0\n"
                            "socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_NETFILTER) = 6\n"
                            "openat(AT_FDCWD, \"/run/openvswitch/db.sock\", O_RDWR) = 7\n";

        ck_assert_int_eq(xsnprintf(file, sizeof(file), "%s/trace/openvswitch.1", core.dir), 0);
        ck_assert_int_eq(write_file_atomic(file, trace, strlen(trace), 0600), 0);
        check_trace_file(&rep, "nova-openvswitch", "openvswitch", file);
        ck_assert_uint_eq(rep.checked, 5);
        ck_assert_uint_eq(rep.violations, 3);
        ck_assert_msg(strstr(rep.text, "nova-openvswitch: connect unix socket /run/libvirt/libvirt-sock is outside its "
                                       "plug openvswitch and the default template; granted by: libvirt"),
                      "%s", rep.text);
        ck_assert_msg(strstr(rep.text, "socket AF_NETLINK NETLINK_NETFILTER is outside its plug openvswitch") &&
                              strstr(rep.text, "firewall-control"),
                      "%s", rep.text);
        ck_assert_msg(strstr(rep.text, "socket network netlink raw is outside its plug openvswitch"), "%s", rep.text);
        ck_assert_ptr_null(strstr(rep.text, "ld.so.cache"));
        ck_assert_ptr_null(strstr(rep.text, "db.sock"));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("snap-conformance");
        TCase *tc = tcase_create("trace");
        SRunner *sr;
        int failed;

        harness_enter_netns("test-snap-conformance");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 180);
        tcase_add_test(tc, test_checker_names_the_granting_interface);
        tcase_add_test(tc, test_modules_stay_inside_their_plugs);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
