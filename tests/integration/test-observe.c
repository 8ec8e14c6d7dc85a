/* test-observe.c - the four observe/process modules through the real core, in
 * a private network namespace, checked against the machine itself: nproc,
 * /proc/meminfo, /sys/devices/system/node, lspci (where installed); VIF
 * counters after real frames through a port's tap; pinning read back from
 * /proc/<pid>/status; capabilities from /proc/<pid>/status.
 *
 * Stand-in: libvirt's test:///default driver runs no QEMU, so a copy of this
 * test program named qemu-system-x86_64, started with the command line
 * libvirt gives QEMU for our domain (-name guest=nova-<uuid> -uuid <uuid>)
 * and registered as an instance of ours (booted with that UUID), stands in
 * for the QEMU process. It runs three threads so pinning must reach all.
 * Like libvirt's QEMU it runs as root (a uid qemu_user allows) and in
 * libvirt's machine cgroup of the domain: this (root) test makes the cgroup
 * systemd-machined would make, /machine.slice/machine-qemu\x2d1\x2dnova\x2d
 * <uuid>.scope, in the cgroup2 hierarchy, and moves the stand-in into it
 * (removed again when it stops). Impostors are the probe's: a copy of
 * /bin/sh named qemu-system-x86_64 and a process that renamed its task to
 * qemu-system-x86, both as uid 65534 with the mark on their command line;
 * and two that lack one piece of evidence each. */
#include "harness.h"
#include "tmpdir.h"

#include "names.h"
#include "procfs.h"

#include <check.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define PLUGS "plugs = network-control libvirt hardware-observe system-observe network-observe process-control\n" \
              "libvirt_uri = test:///default\nvif_type = tap\nmodule_timeout_ms = 5000\n" \
              "cpu_allocation_ratio = 4.0\nram_allocation_ratio = 1.0\n"

static struct core core;
static char fake_dir[PATH_MAX];

#define NOBODY 65534
#define MAX_FAKES 8
/* Processes started by claimant_start(): their cgroup (when given one) and
 * the pipe holding a shell impostor's stdin, for fake_qemu_stop(). */
static struct {
        pid_t pid;
        char scope[PATH_MAX];
        int hold_fd;
} fakes[MAX_FAKES];

static void setup(void)
{
        static const char *const mods[] = { "hardware-observe", "system-observe", "network-observe",
                                            "process-control", "network-control", "libvirt" };

        memset(&core, 0, sizeof(core));
        core_start(&core, PLUGS);
        for (size_t i = 0; i < ARRAY_SIZE(mods); i++)
                ck_assert_msg(core_wait_module_running(&core, mods[i], 0, 5000) > 0, "%s not running", mods[i]);
}

static void teardown(void) { core_stop(&core); }

static struct json_object *jget(struct json_object *o, const char *key)
{
        struct json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static int64_t jint(struct json_object *o, const char *key) { return json_object_get_int64(jget(o, key)); }
static const char *jstr(struct json_object *o, const char *key)
{
        struct json_object *v = jget(o, key);
        return v ? json_object_get_string(v) : "";
}

/* "0x8086" -> "8086" */
static const char *hex(const char *s) { return strncmp(s, "0x", 2) == 0 ? s + 2 : s; }

static char *read_text(const char *path)
{
        char *buf = NULL;
        size_t len;
        ck_assert_int_eq(read_file_bounded(path, 1 << 20, &buf, &len), 0);
        return buf;
}

/* ---- the QEMU stand-in ---- */

static void *idle_thread(void *arg)
{
        (void)arg;
        for (;;)
                pause();
        return NULL;
}

static _noreturn_ void fake_qemu_main(void)
{
        pthread_t t;
        for (int i = 0; i < 2; i++)
                (void)pthread_create(&t, NULL, idle_thread, NULL);
        for (;;)
                pause();
}

/* Where the cgroup2 hierarchy is mounted (/sys/fs/cgroup, or .../unified on a hybrid host). */
static const char *cgroup2_root(void)
{
        static char root[PATH_MAX];
        char *out;

        if (root[0])
                return root;
        out = sh_out("awk '$3 == \"cgroup2\" { print $2; exit }' /proc/self/mounts");
        out[strcspn(out, "\n")] = '\0';
        ck_assert_msg(out[0] == '/', "no cgroup2 hierarchy mounted");
        (void)snprintf(root, sizeof(root), "%s", out);
        free(out);
        return root;
}

/* Move pid into the cgroup systemd-machined makes for libvirt's machine
 * qemu-1-nova-<uuid>; its path into dir. */
static void scope_enter(pid_t pid, const char *uuid, char *dir, size_t size)
{
        char esc[256] = "", slice[PATH_MAX], procs[PATH_MAX + 16];
        size_t n = 0;
        FILE *f;

        for (const char *p = uuid; *p && n + 5 < sizeof(esc); p++) {
                if (*p == '-') {
                        memcpy(esc + n, "\\x2d", 4);
                        n += 4;
                } else {
                        esc[n++] = *p;
                }
        }
        esc[n] = '\0';
        ck_assert_int_eq(xsnprintf(slice, sizeof(slice), "%s/machine.slice", cgroup2_root()), 0);
        ck_assert_int_eq(xsnprintf(dir, size, "%s/machine-qemu\\x2d1\\x2dnova\\x2d%s.scope", slice, esc), 0);
        /* machine.slice is shared with other tests that may remove it when they finish */
        for (int attempt = 0; attempt < 3; attempt++) {
                if (mkdir(slice, 0755) < 0)
                        ck_assert_msg(errno == EEXIST, "mkdir %s: %m", slice);
                if (mkdir(dir, 0755) == 0 || errno == EEXIST)
                        break;
                ck_assert_msg(errno == ENOENT, "mkdir %s: %m", dir);
        }
        (void)snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        f = fopen(procs, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_gt(fprintf(f, "%d\n", (int)pid), 0);
        ck_assert_int_eq(fclose(f), 0);
}

static void fake_dir_ensure(void)
{
        if (!fake_dir[0]) {
                /* removed when this test's process exits after a pass (tmpdir.h) */
                ck_assert_int_eq(test_tmpdir_make("nova-fakeqemu", fake_dir, sizeof(fake_dir)), 0);
                ck_assert_int_eq(chmod(fake_dir, 0755), 0); /* impostors run as nobody */
        }
}

static void drop_to_nobody(void)
{
        if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 || setresuid(NOBODY, NOBODY, NOBODY) < 0)
                _exit(126);
}

static void fakes_add(pid_t pid, const char *scope, int hold_fd)
{
        for (size_t i = 0; i < MAX_FAKES; i++)
                if (fakes[i].pid == 0) {
                        fakes[i].pid = pid;
                        (void)snprintf(fakes[i].scope, sizeof(fakes[i].scope), "%s", scope);
                        fakes[i].hold_fd = hold_fd;
                        return;
                }
        ck_abort_msg("too many fake processes");
}

/* Until pid runs `threads` threads. */
static void wait_threads(pid_t pid, int threads)
{
        char want[32];

        (void)snprintf(want, sizeof(want), "Threads:\t%d\n", threads);
        for (int i = 0; i < 200; i++) {
                char path[64], *st;
                (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
                if (access(path, R_OK) != 0)
                        break;
                st = read_text(path);
                bool ready = strstr(st, want) != NULL;
                free(st);
                if (ready)
                        break;
                sleep_ms(10);
        }
}

/* A copy of this program claiming instance uuid on its command line, as
 * fake_qemu_main(). exe_name: the copy's name; uid: 0 or NOBODY; scope: in
 * libvirt's machine cgroup of the domain; comm: when not NULL, the task name
 * it gives itself (prctl PR_SET_NAME). */
static pid_t claimant_start(const char *uuid, const char *exe_name, uid_t uid, bool scope, const char *comm)
{
        char exe[PATH_MAX + 64], name_arg[64], comm_env[64], dir[PATH_MAX] = "";
        pid_t pid;

        fake_dir_ensure();
        (void)snprintf(exe, sizeof(exe), "%s/%s", fake_dir, exe_name);
        if (access(exe, X_OK) != 0)
                ck_assert_int_eq(sh("cp /proc/%d/exe '%s' && chmod 755 '%s'", (int)getpid(), exe, exe), 0);
        (void)snprintf(name_arg, sizeof(name_arg), "guest=nova-%s,debug-threads=on", uuid);
        (void)snprintf(comm_env, sizeof(comm_env), "NOVA_TEST_FAKE_COMM=%s", comm ? comm : "");
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char *argv[] = { (char *)exe_name, "-name", name_arg, "-uuid", (char *)uuid, "-S", NULL };
                char *envp[] = { "NOVA_TEST_FAKE_QEMU=1", comm ? comm_env : NULL, NULL };
                if (uid != 0)
                        drop_to_nobody();
                execve(exe, argv, envp);
                _exit(127);
        }
        if (scope)
                scope_enter(pid, uuid, dir, sizeof(dir));
        fakes_add(pid, dir, -1);
        wait_threads(pid, 3);
        return pid;
}

/* The probe's first impostor: a copy of /bin/sh named qemu-system-x86_64,
 * as nobody, `sh -c 'read line' qemu-system-x86_64 -uuid U -name guest=nova-U`
 * (it waits on a pipe this test holds). */
static pid_t sh_impostor_start(const char *uuid)
{
        char dir[PATH_MAX + 8], exe[PATH_MAX + 64], name_arg[64];
        int p[2];
        pid_t pid;

        fake_dir_ensure();
        (void)snprintf(dir, sizeof(dir), "%s/sh", fake_dir);
        (void)snprintf(exe, sizeof(exe), "%s/qemu-system-x86_64", dir);
        if (access(exe, X_OK) != 0)
                ck_assert_int_eq(sh("mkdir -p '%s' && chmod 755 '%s' && cp /bin/sh '%s' && chmod 755 '%s'", dir, dir,
                                    exe, exe),
                                 0);
        (void)snprintf(name_arg, sizeof(name_arg), "guest=nova-%s", uuid);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char *argv[] = { "qemu-system-x86_64", "-c", "read line", "qemu-system-x86_64", "-uuid", (char *)uuid,
                                 "-name", name_arg, NULL };
                char *envp[] = { "PATH=/usr/bin:/bin", NULL };
                if (dup2(p[0], 0) < 0)
                        _exit(125);
                drop_to_nobody();
                execve(exe, argv, envp);
                _exit(127);
        }
        close(p[0]);
        fakes_add(pid, "", p[1]);
        wait_threads(pid, 1);
        return pid;
}

/* Start the stand-in for instance uuid, as libvirt would run it (root, in
 * the domain's machine cgroup). exe_name: its executable's name. */
static pid_t fake_qemu_start(const char *uuid, const char *exe_name)
{
        return claimant_start(uuid, exe_name, 0, true, NULL);
}

static void fake_qemu_stop(pid_t pid)
{
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        for (size_t i = 0; i < MAX_FAKES; i++)
                if (fakes[i].pid == pid) {
                        if (fakes[i].scope[0])
                                (void)rmdir(fakes[i].scope);
                        if (fakes[i].hold_fd >= 0)
                                close(fakes[i].hold_fd);
                        fakes[i].pid = 0;
                }
}

/* Cpus_allowed_list of every thread of pid, all equal to want. */
static void assert_threads_pinned(pid_t pid, const char *want)
{
        char path[128];
        DIR *d;
        struct dirent *de;
        int n = 0;

        (void)snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        d = opendir(path);
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                char p2[512], *st, *line;
                if (de->d_name[0] == '.')
                        continue;
                (void)snprintf(p2, sizeof(p2), "/proc/%d/task/%s/status", (int)pid, de->d_name);
                st = read_text(p2);
                line = strstr(st, "Cpus_allowed_list:\t");
                ck_assert_ptr_nonnull(line);
                line += strlen("Cpus_allowed_list:\t");
                line[strcspn(line, "\n")] = '\0';
                ck_assert_msg(streq(line, want), "thread %s: Cpus_allowed_list %s, want %s", de->d_name, line, want);
                free(st);
                n++;
        }
        closedir(d);
        ck_assert_int_eq(n, 3);
}

static void boot_instance(const char *name, const char *uuid, const char *port_uuid)
{
        struct json_object *resp = NULL;
        char body[512];

        (void)snprintf(body, sizeof(body),
                       "{\"name\":\"%s\",\"uuid\":\"%s\",\"vcpus\":2,\"memory_mb\":128,"
                       "\"ports\":[{\"port_uuid\":\"%s\",\"mac\":\"fa:16:3e:00:00:01\",\"mtu\":1500}]}",
                       name, uuid, port_uuid);
        ck_assert_int_eq(core_api(&core, "POST", "/v1/instances?wait=1", body, &resp), 200);
        json_object_put(resp);
}

/* ---- tests ---- */

START_TEST(test_module_capabilities_from_the_kernel)
{
        static const struct {
                const char *plug;
                uint64_t caps;
        } want[] = {
                { "hardware-observe", 0 },
                { "system-observe", 0 },
                { "network-observe", 0 },
                { "process-control", 1ULL << CAP_SYS_NICE },
        };

        for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
                struct proc_security sec;
                pid_t pid = core_module_pid(&core, want[i].plug);

                ck_assert_int_gt(pid, 0);
                ck_assert_int_eq(proc_security_read(pid, &sec), 0);
                ck_assert_msg(sec.cap_eff == want[i].caps, "%s: CapEff %llx", want[i].plug, (unsigned long long)sec.cap_eff);
                ck_assert_uint_eq(sec.cap_prm, want[i].caps);
                ck_assert_uint_eq(sec.cap_bnd, want[i].caps);
                ck_assert_uint_eq(sec.cap_amb, 0);
                ck_assert(sec.no_new_privs);
        }
}
END_TEST

START_TEST(test_inventory_matches_the_machine)
{
        struct json_object *resp = NULL, *hw, *cpu, *mem, *numa, *pci, *place;
        char *meminfo = read_text("/proc/meminfo"), *out;
        uint64_t total_kb;
        long nproc;

        ck_assert_int_eq(core_api(&core, "GET", "/v1/host", NULL, &resp), 200);
        hw = jget(resp, "hardware");
        ck_assert(json_object_get_boolean(jget(hw, "available")));
        cpu = jget(hw, "cpu");
        mem = jget(hw, "memory");

        /* nproc */
        out = sh_out("nproc");
        ck_assert_int_eq(parse_u64(strtok(out, "\n"), 1, 1 << 20, (uint64_t *)&nproc), 0);
        free(out);
        ck_assert_int_eq(jint(cpu, "threads"), nproc);
        ck_assert_int_ge(jint(cpu, "cores"), 1);
        ck_assert_int_le(jint(cpu, "cores"), nproc);
        ck_assert_int_ge(jint(cpu, "sockets"), 1);
        /* virtualisation support is what the flags say */
        out = sh_out("grep -m1 -o -w -E 'vmx|svm' /proc/cpuinfo || true");
        out[strcspn(out, "\n")] = '\0';
        ck_assert_str_eq(jstr(cpu, "virtualization"), out);
        free(out);

        /* /proc/meminfo */
        ck_assert_int_eq(meminfo_get(meminfo, strlen(meminfo), "MemTotal", &total_kb), 0);
        ck_assert_int_eq(jint(mem, "total_kb"), (int64_t)total_kb);
        free(meminfo);

        /* /sys/devices/system/node */
        numa = jget(hw, "numa");
        out = sh_out("ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l");
        ck_assert_int_eq((int)json_object_array_length(numa), atoi(out));
        free(out);
        for (size_t i = 0; i < json_object_array_length(numa); i++) {
                struct json_object *n = json_object_array_get_idx(numa, i);
                char path[128], *cpus;
                (void)snprintf(path, sizeof(path), "/sys/devices/system/node/node%lld/cpulist", (long long)jint(n, "node"));
                cpus = read_text(path);
                cpus[strcspn(cpus, "\n")] = '\0';
                ck_assert_str_eq(jstr(n, "cpus"), cpus);
                free(cpus);
                ck_assert_int_gt(jint(n, "memory_total_kb"), 0);
        }

        /* lspci, where installed: the same devices, classes and ids */
        pci = jget(hw, "pci");
        if (access("/usr/bin/lspci", X_OK) == 0) {
                out = sh_out("lspci -D -n | wc -l");
                ck_assert_int_eq(jint(hw, "pci_total"), atoi(out));
                free(out);
                for (size_t i = 0; i < json_object_array_length(pci); i++) {
                        struct json_object *d = json_object_array_get_idx(pci, i);
                        char want[128];
                        /* lspci -n: "0000:00:03.0 0200: 1af4:1041" (class without prog-if) */
                        (void)snprintf(want, sizeof(want), "%s %.4s: %s:%s", jstr(d, "address"), hex(jstr(d, "class")),
                                       hex(jstr(d, "vendor")), hex(jstr(d, "device")));
                        out = sh_out("lspci -D -n -s %s", jstr(d, "address"));
                        ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "lspci says '%s', we say '%s'", out, want);
                        free(out);
                }
        } else {
                fprintf(stderr, "test-observe: lspci not installed; PCI compared with sysfs only\n");
                out = sh_out("ls /sys/bus/pci/devices | wc -l");
                ck_assert_int_eq(jint(hw, "pci_total"), atoi(out));
                free(out);
        }

        /* placement: totals from the inventory, ratios from config, used from the store */
        place = jget(resp, "placement");
        ck_assert_int_eq(jint(jget(place, "VCPU"), "total"), nproc);
        ck_assert_int_eq(jint(jget(place, "VCPU"), "capacity"), nproc * 4);
        ck_assert_int_eq(jint(jget(place, "MEMORY_MB"), "total"), (int64_t)(total_kb / 1024));
        ck_assert_int_eq(jint(jget(place, "VCPU"), "used"), 0);
        json_object_put(resp);

        char uuid[37], port[37];
        random_port_uuid(uuid);
        random_port_uuid(port);
        boot_instance("sized", uuid, port);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/host", NULL, &resp), 200);
        place = jget(resp, "placement");
        ck_assert_int_eq(jint(jget(place, "VCPU"), "used"), 2);
        ck_assert_int_eq(jint(jget(place, "VCPU"), "free"), nproc * 4 - 2);
        ck_assert_int_eq(jint(jget(place, "MEMORY_MB"), "used"), 128);
        json_object_put(resp);
}
END_TEST

/* Frames written into the tap by "the guest" are received by the kernel: rx counters move by exactly that. */
START_TEST(test_vif_counters_move_with_real_frames)
{
        char uuid[37], port[37], tap[IFNAME_MAX], path[160];
        struct json_object *resp = NULL, *insts, *links, *link = NULL;
        struct ifreq ifr = {};
        uint8_t frame[100] = {};
        int fd;
        int64_t rx0, rxb0;

        random_port_uuid(uuid);
        random_port_uuid(port);
        boot_instance("talker", uuid, port);
        ck_assert_int_eq(tap_name_from_port(port, tap), 0);

        (void)snprintf(path, sizeof(path), "/v1/stats/%s", uuid);
        ck_assert_int_eq(core_api(&core, "GET", path, NULL, &resp), 200);
        insts = jget(resp, "instances");
        ck_assert_int_eq((int)json_object_array_length(insts), 1);
        links = jget(json_object_array_get_idx(jget(json_object_array_get_idx(insts, 0), "vifs"), 0), "links");
        ck_assert_int_eq((int)json_object_array_length(links), 1);
        link = json_object_array_get_idx(links, 0);
        ck_assert_str_eq(jstr(link, "name"), tap);
        ck_assert_str_eq(jstr(link, "kind"), "tap");
        rx0 = jint(link, "rx_packets");
        rxb0 = jint(link, "rx_bytes");
        json_object_put(resp);

        /* Attach to the tap as QEMU would and send 25 Ethernet frames from "the guest". */
        fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
        memcpy(ifr.ifr_name, tap, strlen(tap) + 1);
        ck_assert_int_eq(ioctl(fd, TUNSETIFF, &ifr), 0);
        memset(frame, 0xff, 6);                                         /* broadcast */
        memcpy(frame + 6, "\xfa\x16\x3e\x00\x00\x01", 6);               /* the port's MAC */
        frame[12] = 0x88, frame[13] = 0xb5;                             /* local experimental ethertype */
        for (int i = 0; i < 25; i++)
                ck_assert_int_eq(write(fd, frame, sizeof(frame)), (int)sizeof(frame));

        ck_assert_int_eq(core_api(&core, "GET", path, NULL, &resp), 200);
        insts = jget(resp, "instances");
        links = jget(json_object_array_get_idx(jget(json_object_array_get_idx(insts, 0), "vifs"), 0), "links");
        link = json_object_array_get_idx(links, 0);
        ck_assert_int_eq(jint(link, "rx_packets") - rx0, 25);
        ck_assert_int_eq(jint(link, "rx_bytes") - rxb0, 25 * (int64_t)sizeof(frame));
        json_object_put(resp);

        /* The same counters in the Prometheus endpoint. */
        char *text = sh_out("curl -s --unix-socket '%s' http://localhost/metrics", core.socket), want[256];
        (void)snprintf(want, sizeof(want), "nova_vif_rx_packets_total{device=\"%s\",kind=\"tap\",port_uuid=\"%s\",instance_uuid=\"%s\"} %lld",
                       tap, port, uuid, (long long)(rx0 + 25));
        ck_assert_msg(strstr(text, want), "missing in /metrics: %s", want);
        ck_assert(strstr(text, "nova_observe_available{plug=\"network-observe\"} 1"));
        ck_assert(strstr(text, "# TYPE nova_vif_rx_packets_total counter"));
        free(text);
        close(fd);
}
END_TEST

START_TEST(test_pinning_seen_in_proc_and_foreign_refused)
{
        char uuid[37], port[37], path[160], body[128];
        struct json_object *resp = NULL, *procs;
        pid_t fake, foreign;
        long nproc = sysconf(_SC_NPROCESSORS_ONLN);
        char last[32];

        random_port_uuid(uuid);
        random_port_uuid(port);
        boot_instance("pinned", uuid, port);
        fake = fake_qemu_start(uuid, "qemu-system-x86_64");

        /* system-observe finds it by its command line and mark */
        (void)snprintf(path, sizeof(path), "/v1/stats/%s", uuid);
        ck_assert_int_eq(core_api(&core, "GET", path, NULL, &resp), 200);
        procs = jget(json_object_array_get_idx(jget(resp, "instances"), 0), "process");
        ck_assert(json_object_get_boolean(jget(procs, "available")));
        ck_assert_int_eq(jint(procs, "pid"), fake);
        ck_assert_str_eq(jstr(procs, "found_by"), "cmdline");
        ck_assert_int_eq(jint(procs, "threads"), 3);
        ck_assert_int_gt(jint(procs, "rss_kb"), 0);
        json_object_put(resp);

        /* pin to the last CPU, every thread */
        (void)snprintf(last, sizeof(last), "%ld", nproc - 1);
        (void)snprintf(path, sizeof(path), "/v1/instances/pinned/pin");
        (void)snprintf(body, sizeof(body), "{\"cpus\":\"%s\",\"priority\":\"5\"}", last);
        ck_assert_int_eq(core_api(&core, "POST", path, body, &resp), 200);
        ck_assert_int_eq(jint(resp, "pid"), fake);
        ck_assert_int_eq(jint(resp, "threads"), 3);
        json_object_put(resp);
        assert_threads_pinned(fake, last);
        char *nice = sh_out("ps -o ni= -p %d", (int)fake);
        ck_assert_int_eq(atoi(nice), 5);
        free(nice);

        /* a pid is never accepted */
        (void)snprintf(body, sizeof(body), "{\"cpus\":\"0\",\"pid\":\"%d\"}", (int)getpid());
        ck_assert_int_eq(core_api(&core, "POST", path, body, &resp), 400);
        json_object_put(resp);
        /* bad cpu lists change nothing */
        ck_assert_int_eq(core_api(&core, "POST", path, "{\"cpus\":\"1-0\"}", &resp), 400);
        json_object_put(resp);
        ck_assert_int_eq(core_api(&core, "POST", path, "{\"cpus\":\"4095\"}", &resp), 400);
        json_object_put(resp);
        assert_threads_pinned(fake, last);
        fake_qemu_stop(fake);

        /* A foreign process with the mark but not a QEMU executable: refused, untouched. */
        foreign = fake_qemu_start(uuid, "not-qemu");
        ck_assert_int_eq(core_api(&core, "POST", path, "{\"cpus\":\"0\"}", &resp), 404);
        json_object_put(resp);
        char *before = sh_out("grep Cpus_allowed_list /proc/%d/status", (int)foreign);
        char want[64];
        (void)snprintf(want, sizeof(want), "Cpus_allowed_list:\t0-%ld\n", nproc - 1);
        if (nproc == 1)
                (void)snprintf(want, sizeof(want), "Cpus_allowed_list:\t0\n");
        ck_assert_str_eq(before, want);
        free(before);
        fake_qemu_stop(foreign);
        (void)sh("rm -rf '%s'", fake_dir);

        /* No process at all: the instance exists, its process does not. */
        ck_assert_int_eq(core_api(&core, "POST", path, "{\"cpus\":\"0\"}", &resp), 404);
        json_object_put(resp);
        /* an instance that is not ours */
        ck_assert_int_eq(core_api(&core, "POST", "/v1/instances/nobody/pin", "{\"cpus\":\"0\"}", &resp), 404);
        json_object_put(resp);
}
END_TEST

/* Nice value and the affinity of every thread of pid, as one text. */
static char *sched_facts(pid_t pid)
{
        return sh_out("ps -o ni= -p %d; for t in /proc/%d/task/*; do grep Cpus_allowed_list $t/status; done", (int)pid,
                      (int)pid);
}

/* Issue 23, item 1: a process that only claims to be an instance's QEMU
 * (the mark on its command line, a QEMU name) is never acted on. Each
 * impostor alone: pin refused, its nice value and affinity untouched, not
 * listed as the instance's process. Then with the real stand-in beside
 * them: the stand-in is pinned (impostors cannot block it with ENOTUNIQ)
 * and they stay untouched. */
START_TEST(test_impostors_refused_and_untouched)
{
        char uuid[37], port[37], last[32], body[96];
        struct json_object *resp = NULL, *procs;
        long nproc = sysconf(_SC_NPROCESSORS_ONLN);
        pid_t imp[4], real;

        random_port_uuid(uuid);
        random_port_uuid(port);
        boot_instance("claimed", uuid, port);
        (void)snprintf(last, sizeof(last), "%ld", nproc - 1);
        (void)snprintf(body, sizeof(body), "{\"cpus\":\"%s\",\"priority\":\"-20\"}", last);

        imp[0] = sh_impostor_start(uuid);                                          /* the probe's sh copy */
        imp[1] = claimant_start(uuid, "impostor", NOBODY, false, "qemu-system-x86"); /* the probe's prctl rename */
        imp[2] = claimant_start(uuid, "qemu-system-x86_64", 0, false, NULL);       /* root, not libvirt's cgroup */
        imp[3] = claimant_start(uuid, "qemu-system-x86_64", NOBODY, true, NULL);   /* libvirt's cgroup, not its uid */
        /* all four at once: refused, none touched */
        {
                char *before[ARRAY_SIZE(imp)];
                for (size_t j = 0; j < ARRAY_SIZE(imp); j++)
                        before[j] = sched_facts(imp[j]);
                ck_assert_int_eq(core_api(&core, "POST", "/v1/instances/claimed/pin", body, &resp), 409);
                ck_assert_msg(strstr(json_object_to_json_string(resp), "not in libvirt's machine cgroup"), "%s",
                              json_object_to_json_string(resp));
                json_object_put(resp);
                for (size_t j = 0; j < ARRAY_SIZE(imp); j++) {
                        char *after = sched_facts(imp[j]);
                        ck_assert_msg(streq(before[j], after), "impostor %zu changed: %s -> %s", j, before[j], after);
                        free(after);
                        free(before[j]);
                }
        }

        /* system-observe does not list them as the instance's process either */
        char path[96];
        (void)snprintf(path, sizeof(path), "/v1/stats/%s", uuid);
        ck_assert_int_eq(core_api(&core, "GET", path, NULL, &resp), 200);
        procs = jget(json_object_array_get_idx(jget(resp, "instances"), 0), "process");
        ck_assert_msg(!json_object_get_boolean(jget(procs, "available")), "%s", json_object_to_json_string(resp));
        /* and says why: a marked process without the evidence, not "no process carries the mark" */
        {
                const char *why = json_object_get_string(jget(procs, "error"));
                char want[64];
                bool named = false;
                ck_assert_msg(why && strstr(why, "carries this instance's mark but not libvirt's evidence"), "%s",
                              json_object_to_json_string(resp));
                for (size_t j = 0; j < ARRAY_SIZE(imp); j++) { /* one of the impostors, by its pid */
                        (void)snprintf(want, sizeof(want), "QEMU process %d ", (int)imp[j]);
                        named |= strstr(why, want) != NULL;
                }
                ck_assert_msg(named, "%s", why);
        }
        json_object_put(resp);

        /* each alone (the others stopped and gone) */
        for (size_t i = 0; i < ARRAY_SIZE(imp); i++)
                fake_qemu_stop(imp[i]);
        for (size_t i = 0; i < ARRAY_SIZE(imp); i++) {
                pid_t one = i == 0   ? sh_impostor_start(uuid)
                            : i == 1 ? claimant_start(uuid, "impostor", NOBODY, false, "qemu-system-x86")
                            : i == 2 ? claimant_start(uuid, "qemu-system-x86_64", 0, false, NULL)
                                     : claimant_start(uuid, "qemu-system-x86_64", NOBODY, true, NULL);
                char *before = sched_facts(one), *after;
                ck_assert_int_eq(core_api(&core, "POST", "/v1/instances/claimed/pin", body, &resp), 409);
                json_object_put(resp);
                after = sched_facts(one);
                ck_assert_msg(streq(before, after), "impostor %zu alone changed: %s -> %s", i, before, after);
                free(before);
                free(after);
                imp[i] = one;
        }

        /* The real one beside all four: pinned, they untouched. */
        real = fake_qemu_start(uuid, "qemu-system-x86_64");
        char *before[ARRAY_SIZE(imp)];
        for (size_t j = 0; j < ARRAY_SIZE(imp); j++)
                before[j] = sched_facts(imp[j]);
        ck_assert_int_eq(core_api(&core, "POST", "/v1/instances/claimed/pin", body, &resp), 200);
        ck_assert_int_eq(jint(resp, "pid"), real);
        json_object_put(resp);
        assert_threads_pinned(real, last);
        for (size_t j = 0; j < ARRAY_SIZE(imp); j++) {
                char *after = sched_facts(imp[j]);
                ck_assert_msg(streq(before[j], after), "impostor %zu changed: %s -> %s", j, before[j], after);
                free(after);
                free(before[j]);
        }
        fake_qemu_stop(real);
        for (size_t i = 0; i < ARRAY_SIZE(imp); i++)
                fake_qemu_stop(imp[i]);
        (void)sh("rm -rf '%s'", fake_dir);
}
END_TEST

/* The instance's pinning, read back through the API. */
static void instance_pinning(const char *id, char *state, size_t ssize, char *message, size_t msize)
{
        struct json_object *resp = NULL, *pin;
        char path[160];

        (void)snprintf(path, sizeof(path), "/v1/instances/%s", id);
        ck_assert_int_eq(core_api(&core, "GET", path, NULL, &resp), 200);
        pin = jget(resp, "pinning");
        (void)snprintf(state, ssize, "%s", jstr(pin, "state"));
        (void)snprintf(message, msize, "%s", jstr(pin, "message"));
        json_object_put(resp);
}

/* Boot with a cpu_set: the PIN step after START pins every thread of the
 * instance's QEMU (the stand-in, registered by booting with its UUID), and
 * again after a stop/start (a new QEMU process each time). */
START_TEST(test_boot_cpu_set_pins_the_qemu_threads)
{
        char uuid[37], port[37], body[512], want[48], state[32], msg[512];
        struct json_object *resp = NULL, *pin;
        long nproc = sysconf(_SC_NPROCESSORS_ONLN);
        cpu_set_t all;
        pid_t fake;
        char *out;

        /* the last CPU, or the last two: never the whole set the stand-in starts with (nproc > 1) */
        if (nproc >= 3)
                (void)snprintf(want, sizeof(want), "%ld-%ld", nproc - 2, nproc - 1);
        else
                (void)snprintf(want, sizeof(want), "%ld", nproc - 1);
        random_port_uuid(uuid);
        random_port_uuid(port);
        fake = fake_qemu_start(uuid, "qemu-system-x86_64");
        (void)snprintf(body, sizeof(body),
                       "{\"name\":\"cpuset\",\"uuid\":\"%s\",\"cpu_set\":\"%s\","
                       "\"ports\":[{\"port_uuid\":\"%s\"}]}", uuid, want, port);
        ck_assert_int_eq(core_api(&core, "POST", "/v1/instances?wait=1", body, &resp), 200);
        ck_assert_str_eq(jstr(resp, "vm_state"), "active");
        ck_assert_str_eq(jstr(resp, "cpu_set"), want);
        pin = jget(resp, "pinning");
        ck_assert_msg(json_object_get_boolean(jget(pin, "applied")), "%s", jstr(pin, "message"));
        ck_assert_str_eq(jstr(pin, "state"), "applied");
        json_object_put(resp);
        /* the kernel's word, not the core's */
        assert_threads_pinned(fake, want);
        out = sh_out("%s/nova-hypervisor --socket '%s' show cpuset", getenv("NOVA_BIN"), core.socket);
        ck_assert_msg(strstr(out, "cpu_set:") && strstr(out, want) && strstr(out, "applied (pid "), "%s", out);
        free(out);

        /* stop, unpin by hand, start: pinned again */
        ck_assert_int_eq(sh("%s/nova-hypervisor --socket '%s' stop cpuset --wait", getenv("NOVA_BIN"), core.socket), 0);
        instance_pinning("cpuset", state, sizeof(state), msg, sizeof(msg));
        ck_assert_str_eq(state, "pending");
        CPU_ZERO(&all);
        for (long c = 0; c < nproc; c++)
                CPU_SET(c, &all);
        ck_assert_int_eq(sched_setaffinity(fake, sizeof(all), &all), 0);
        ck_assert_int_eq(sh("%s/nova-hypervisor --socket '%s' start cpuset --wait", getenv("NOVA_BIN"), core.socket), 0);
        instance_pinning("cpuset", state, sizeof(state), msg, sizeof(msg));
        ck_assert_msg(streq(state, "applied"), "%s", msg);
        {
                char path[64], *st, *line;
                (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)fake);
                st = read_text(path);
                line = strstr(st, "Cpus_allowed_list:\t");
                ck_assert_ptr_nonnull(line);
                line += strlen("Cpus_allowed_list:\t");
                line[strcspn(line, "\n")] = '\0';
                ck_assert_str_eq(line, want);
                free(st);
        }
        fake_qemu_stop(fake);
}
END_TEST

/* Without process-control the boot succeeds, unpinned, and says so with the
 * fix; once the plug is connected the core tries again (the test driver has
 * no QEMU: "no QEMU process found"). A bad cpu_set creates nothing. */
START_TEST(test_boot_cpu_set_without_process_control)
{
        struct json_object *resp = NULL, *pin;
        char state[32], msg[512];
        char *out;
        int n_before;

        ck_assert_int_eq(core_api(&core, "POST", "/v1/plugs/process-control/disconnect", NULL, &resp), 200);
        json_object_put(resp);
        out = sh_out("%s/nova-hypervisor --socket '%s' boot loose --cpu-set 0 --ports 0 --wait 2>&1; echo rc=$?",
                     getenv("NOVA_BIN"), core.socket);
        ck_assert_msg(strstr(out, "rc=0"), "%s", out);
        ck_assert_msg(strstr(out, "warning: cpu_set 0 not applied: process-control is not connected"), "%s", out);
        ck_assert_msg(strstr(out, "fix: sudo snap connect nova-hypervisor:process-control"), "%s", out);
        free(out);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/instances/loose", NULL, &resp), 200);
        ck_assert_str_eq(jstr(resp, "vm_state"), "active");
        pin = jget(resp, "pinning");
        ck_assert(!json_object_get_boolean(jget(pin, "applied")));
        ck_assert_str_eq(jstr(pin, "state"), "unplugged");
        ck_assert_str_eq(jstr(pin, "message"), "cpu_set 0 not applied: process-control is not connected");
        ck_assert_str_eq(jstr(pin, "fix"), "sudo snap connect nova-hypervisor:process-control");
        json_object_put(resp);
        out = sh_out("%s/nova-hypervisor --socket '%s' show loose", getenv("NOVA_BIN"), core.socket);
        ck_assert_msg(strstr(out, "cpu_set 0 not applied: process-control is not connected; fix: sudo snap connect "
                                  "nova-hypervisor:process-control"), "%s", out);
        free(out);

        /* Bad cpu_sets: 400, nothing created. */
        ck_assert_int_eq(core_api(&core, "GET", "/v1/instances", NULL, &resp), 200);
        n_before = (int)json_object_array_length(jget(resp, "instances"));
        json_object_put(resp);
        static const char *const bad[] = { "\"1-0\"", "\"0,,1\"", "\"x\"", "\"4095\"", "3", "\" 0\"" };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                char body[160];
                (void)snprintf(body, sizeof(body), "{\"name\":\"badpin\",\"cpu_set\":%s}", bad[i]);
                ck_assert_int_eq(core_api(&core, "POST", "/v1/instances?wait=1", body, &resp), 400);
                ck_assert_msg(strstr(jstr(jget(resp, "error"), "message"), "cpu_set"), "%s",
                              json_object_to_json_string(resp));
                json_object_put(resp);
        }
        ck_assert_int_eq(core_api(&core, "GET", "/v1/instances/badpin", NULL, &resp), 404);
        json_object_put(resp);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/instances", NULL, &resp), 200);
        ck_assert_int_eq((int)json_object_array_length(jget(resp, "instances")), n_before);
        json_object_put(resp);
        ck_assert_int_ne(sh("%s/nova-hypervisor --socket '%s' boot badpin --cpu-set 2-1 --ports 0", getenv("NOVA_BIN"),
                            core.socket), 0);

        /* Connected again: the core pins what it could not; the test driver runs no QEMU. */
        ck_assert_int_eq(core_api(&core, "POST", "/v1/plugs/process-control/connect", NULL, &resp), 200);
        json_object_put(resp);
        ck_assert(core_wait_module_running(&core, "process-control", 0, 5000) > 0);
        for (int i = 0; i < 200; i++) {
                instance_pinning("loose", state, sizeof(state), msg, sizeof(msg));
                if (!streq(state, "unplugged"))
                        break;
                sleep_ms(20);
        }
        ck_assert_str_eq(state, "failed");
        ck_assert_msg(strstr(msg, "cpu_set 0 not applied: no QEMU process found"), "%s", msg);
}
END_TEST

START_TEST(test_disconnected_plugs_say_so)
{
        static const char *const plugs[] = { "hardware-observe", "system-observe", "network-observe", "process-control" };
        struct json_object *resp = NULL, *hw, *vcpu;
        char *out;

        for (size_t i = 0; i < ARRAY_SIZE(plugs); i++) {
                char path[96];
                (void)snprintf(path, sizeof(path), "/v1/plugs/%s/disconnect", plugs[i]);
                ck_assert_int_eq(core_api(&core, "POST", path, NULL, &resp), 200);
                json_object_put(resp);
        }
        ck_assert_int_eq(core_api(&core, "GET", "/v1/host", NULL, &resp), 200);
        hw = jget(resp, "hardware");
        ck_assert(!json_object_get_boolean(jget(hw, "available")));
        ck_assert_str_eq(jstr(hw, "plug"), "hardware-observe");
        ck_assert_str_eq(jstr(hw, "fix"), "sudo snap connect nova-hypervisor:hardware-observe");
        vcpu = jget(jget(resp, "placement"), "VCPU");
        ck_assert(json_object_is_type(jget(vcpu, "total"), json_type_null));
        ck_assert(strlen(jstr(vcpu, "unknown")) > 0);
        json_object_put(resp);

        ck_assert_int_eq(core_api(&core, "GET", "/v1/stats", NULL, &resp), 200);
        ck_assert(!json_object_get_boolean(jget(jget(resp, "load"), "available")));
        ck_assert_str_eq(jstr(jget(resp, "load"), "plug"), "system-observe");
        ck_assert(!json_object_get_boolean(jget(jget(resp, "links"), "available")));
        ck_assert_str_eq(jstr(jget(resp, "links"), "plug"), "network-observe");
        json_object_put(resp);

        out = sh_out("curl -s --unix-socket '%s' http://localhost/metrics", core.socket);
        ck_assert(strstr(out, "nova_observe_available{plug=\"hardware-observe\"} 0"));
        ck_assert(strstr(out, "nova_observe_available{plug=\"system-observe\"} 0"));
        free(out);

        /* the CLI says it too, with the fix */
        out = sh_out("%s/nova-hypervisor --socket '%s' host", getenv("NOVA_BIN"), core.socket);
        ck_assert_msg(strstr(out, "inventory: not available (hardware-observe plug not connected)"), "%s", out);
        ck_assert(strstr(out, "fix: sudo snap connect nova-hypervisor:hardware-observe"));
        free(out);

        ck_assert_int_eq(core_api(&core, "POST", "/v1/instances/x/pin", "{\"cpus\":\"0\"}", &resp), 404);
        json_object_put(resp);
}
END_TEST

START_TEST(test_cli_host_and_stats)
{
        char *out = sh_out("%s/nova-hypervisor --socket '%s' host", getenv("NOVA_BIN"), core.socket);
        ck_assert_msg(strstr(out, "VCPU"), "%s", out);
        ck_assert(strstr(out, "MEMORY_MB"));
        ck_assert(strstr(out, "numa node 0"));
        free(out);
        out = sh_out("%s/nova-hypervisor --socket '%s' --json stats", getenv("NOVA_BIN"), core.socket);
        ck_assert_msg(strstr(out, "\"load1\""), "%s", out);
        free(out);
        ck_assert_int_ne(sh("%s/nova-hypervisor --socket '%s' stats no-such-instance", getenv("NOVA_BIN"), core.socket), 0);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("observe");
        TCase *tc = tcase_create("observe");
        SRunner *sr;
        int failed;

        if (getenv("NOVA_TEST_FAKE_QEMU")) {
                const char *comm = getenv("NOVA_TEST_FAKE_COMM");
                if (comm && comm[0])
                        (void)prctl(PR_SET_NAME, comm, 0, 0, 0);
                fake_qemu_main();
        }
        harness_enter_netns("test-observe");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_module_capabilities_from_the_kernel);
        tcase_add_test(tc, test_inventory_matches_the_machine);
        tcase_add_test(tc, test_vif_counters_move_with_real_frames);
        tcase_add_test(tc, test_pinning_seen_in_proc_and_foreign_refused);
        tcase_add_test(tc, test_impostors_refused_and_untouched);
        tcase_add_test(tc, test_boot_cpu_set_pins_the_qemu_threads);
        tcase_add_test(tc, test_boot_cpu_set_without_process_control);
        tcase_add_test(tc, test_disconnected_plugs_say_so);
        tcase_add_test(tc, test_cli_host_and_stats);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        if (fake_dir[0])
                (void)sh("rm -rf '%s'", fake_dir);
        return failed ? 1 : 0;
}
