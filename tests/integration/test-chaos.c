/* test-chaos.c - the chaos suite (issue 20): the whole service in a sandbox of its
 * own under a seeded random mix of operations while a fault injector, on its own
 * schedule, kills and breaks what the service depends on; then, with faults
 * stopped, invariants checked against the kernel (ip, nft), OVS (ovsdb) and
 * libvirt, never against the service's own word.
 *
 * The sandbox (as DESIGN §7 and scripts/sandbox.sh, but private to this
 * process): a network namespace and a mount namespace of its own; a private
 * ovsdb-server + ovs-vswitchd (userspace datapath); a private libvirtd
 * (scripts/libvirtd-private.sh) whose test driver holds the domains, reached by
 * the libvirt module as test+unix:///default and by this program directly; the
 * core with all eight plugs; its state dir on a small tmpfs (4 MiB) that the
 * ENOSPC fault fills. libvirt's test driver keeps its domains only while some
 * connection is open: this program holds one, standing in for the persistence
 * of a real libvirtd (restarting libvirtd therefore loses every domain, a
 * harsher fault than with QEMU; reconcile must re-create them).
 *
 * Environment: CHAOS_DURATION (seconds of operations, default 60), CHAOS_SEED
 * (default: from the clock), CHAOS_CHECKPOINT (seconds between quiet checkpoints,
 * default 30), CHAOS_WORKERS (operation threads, default 2), CHAOS_CONVERGE (the
 * bound of each convergence wait in seconds, default 90), CHAOS_KEEP=1 keeps the
 * directories. `make chaos DURATION=1800 SEED=42` runs it alone; make check runs
 * 60 s.
 *
 * Each checkpoint pauses the workers and the injector, undoes the faults that
 * persist (frees the disk, restarts what is down, reconnects every plug), then
 * checks the invariants every 250 ms until none is violated (the convergence
 * time) or the bound passes (the violations are printed with the seed and the
 * step). Operations are generated from the seed per worker and faults from the
 * seed on their own stream, so a seed replays the same sequences; the
 * interleaving of threads is the machine's. */
#include "harness.h"

#include "apiclient.h"
#include "fw-nft.h"
#include "fw-protocol.h"
#include "libvirt-protocol.h"
#include "names.h"
#include "ovs-protocol.h"
#include "tap.h"

#include <check.h>
#include <stdarg.h>
#include <dirent.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define PLUGS "network-control libvirt openvswitch firewall-control hardware-observe system-observe network-observe process-control"
static const char *const plug_names[] = { "network-control", "libvirt",        "openvswitch",     "firewall-control",
                                          "hardware-observe", "system-observe", "network-observe", "process-control" };
#define N_PLUGS 8
#define SLOTS_PER_WORKER 4
#define GROUPS_PER_WORKER 2
#define MAX_WORKERS 8
#define MAX_VIOLATIONS 64
#define API_TIMEOUT_MS 60000
#define FOREIGN_COMMENT "chaos-foreign"

/* ---- operations and faults, by kind ---- */

enum op_kind {
        OP_BOOT, OP_BOOT_SG, OP_DELETE, OP_STOP, OP_START, OP_REBOOT, OP_SG_CREATE, OP_SG_RULE_ADD,
        OP_SG_RULE_DEL, OP_PORT_SET, OP_PLUG_DISCONNECT, OP_PLUG_CONNECT, _OP_MAX
};
static const char *const op_names[_OP_MAX] = {
        "boot", "boot_sg", "delete", "stop", "start", "reboot", "sg_create", "sg_rule_add", "sg_rule_del",
        "port_set", "plug_disconnect", "plug_connect",
};

enum fault_kind {
        F_KILL_MODULE, F_KILL_CORE, F_RESTART_OVSDB, F_KILL_VSWITCHD, F_RESTART_LIBVIRTD, F_DEL_TAP,
        F_DEL_OVS_PORT, F_DEL_CHAIN, F_FOREIGN_RULE, F_ENOSPC, _F_MAX
};
static const char *const fault_names[_F_MAX] = {
        "kill_module", "kill_core", "restart_ovsdb", "kill_vswitchd", "restart_libvirtd", "del_tap",
        "del_ovs_port", "del_chain", "foreign_rule", "enospc",
};
/* Relative weights of the faults (libvirtd restarts take ~10 s: rarer). */
static const unsigned fault_weights[_F_MAX] = { 6, 3, 2, 2, 1, 3, 3, 3, 2, 2 };

/* ---- one instance slot of a worker: the model of what the API answered ---- */

enum known { K_NO, K_YES, K_UNKNOWN };

struct slot {
        char name[32];
        enum known exists;       /* per the last answer about it */
        bool boot_failed;        /* the last boot was answered as failed (and nothing since) */
        char uuid[37];           /* when known */
        size_t n_ports;
        char ports[2][37];
        enum known running;      /* K_YES running, K_NO stopped */
        char groups[160];        /* the port's groups as last set ("" unknown), JSON list text */
        char failed_ports[2][37];/* ports of the last failed boot: must be left with nothing */
        size_t n_failed_ports;
};

struct worker {
        unsigned id;
        uint64_t rng;
        struct slot slots[SLOTS_PER_WORKER];
        bool group_made[GROUPS_PER_WORKER];
        bool plug_down[N_PLUGS];   /* disconnected by this worker */
        pthread_t thread;
};

/* ---- the run ---- */

static struct {
        unsigned seed, duration_s, checkpoint_s, workers, converge_s;
        bool keep;
        char dir[PATH_MAX];        /* core.conf, core.log, run/, state/ (tmpfs) */
        char state[PATH_MAX], conf[PATH_MAX], log[PATH_MAX], socket[PATH_MAX];
        char lvdir[PATH_MAX], lvuri[PATH_MAX + 64];
        struct ovs_fixture ovs;
        virConnectPtr lv;          /* held: the test driver keeps domains while a connection is open */
        FILE *ops_log;             /* <dir>/ops.log: every operation and fault with its answer */
        pthread_mutex_t lock;      /* the core pid, the counters, the pause handshake, ops_log */
        pthread_cond_t cond;
        pid_t core_pid;
        bool pause, stop;          /* workers and injector: finish the current action and wait */
        unsigned paused;           /* how many of them wait */
        atomic_ulong op_step, fault_step;
        unsigned long ops_ok[_OP_MAX], ops_failed[_OP_MAX], faults[_F_MAX], faults_skipped[_F_MAX];
        unsigned long core_exits;  /* the core exited without our signal */
        uint64_t fault_rng;
        struct worker w[MAX_WORKERS];
        /* checkpoints */
        unsigned n_conv;
        long conv_ms[1024];
        unsigned violations;       /* at the checkpoints that did not converge */
        char first_violation[512];
        unsigned long violation_op_step, violation_fault_step;
        int violation_checkpoint;
} run;

static uint64_t rng_next(uint64_t *s)
{
        /* splitmix64: small, seedable, good enough to pick actions */
        uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static unsigned rng_below(uint64_t *s, unsigned n) { return n ? (unsigned)(rng_next(s) % n) : 0; }

static long mono_ms(void) { return (long)(now_usec() / 1000); }

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
        va_list ap;
        char buf[1024];

        va_start(ap, fmt);
        (void)vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        fprintf(stderr, "chaos[%6.1f] %s\n", (double)mono_ms() / 1000.0, buf);
}

/* json-c asserts on arrays that are not: these answer 0 and NULL instead. */
static size_t jlen(struct json_object *o)
{
        return json_object_is_type(o, json_type_array) ? json_object_array_length(o) : 0;
}

static struct json_object *jidx(struct json_object *o, size_t i)
{
        return i < jlen(o) ? json_object_array_get_idx(o, i) : NULL;
}

static struct json_object *jget(struct json_object *o, const char *key)
{
        struct json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *jstr(struct json_object *o, const char *key)
{
        struct json_object *v = jget(o, key);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* The API; transport errors are negative. */
static int api(const char *method, const char *path, const char *body, struct json_object **ret)
{
        struct json_object *tmp = NULL;
        int st = api_request(run.socket, method, path, body, API_TIMEOUT_MS, ret ? ret : &tmp);
        json_object_put(tmp);
        return st;
}

/* Count an operation and log it with its answer (status, and the error the API gave). */
static void count_op(enum op_kind k, bool ok, const char *what, int status, struct json_object *resp)
{
        unsigned long step = atomic_fetch_add(&run.op_step, 1);

        pthread_mutex_lock(&run.lock);
        if (ok)
                run.ops_ok[k]++;
        else
                run.ops_failed[k]++;
        if (run.ops_log)
                fprintf(run.ops_log, "%8.1f op %lu %s %s -> %d%s%s\n", (double)mono_ms() / 1000.0, step, op_names[k],
                        what, status, ok ? "" : " ", ok ? "" : (jstr(jget(resp, "error"), "message") ?: ""));
        pthread_mutex_unlock(&run.lock);
}

/* ---- the core, supervised as systemd would (Restart=always) ---- */

static int core_spawn(void)
{
        char prog[PATH_MAX];
        const char *bin = getenv("NOVA_BIN");
        int logfd;
        pid_t pid;

        (void)xsnprintf(prog, sizeof(prog), "%s/nova-compute", bin && *bin ? bin : "build/bin");
        logfd = open(run.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (logfd < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                close(logfd);
                return -errno;
        }
        if (pid == 0) {
                dup2(logfd, 2);
                dup2(logfd, 1);
                execl(prog, "nova-compute", "--config", run.conf, (char *)NULL);
                _exit(127);
        }
        close(logfd);
        run.core_pid = pid;
        {
                char path[PATH_MAX], text[32];
                (void)xsnprintf(path, sizeof(path), "%s/core.pid", run.dir);
                (void)xsnprintf(text, sizeof(text), "%ld\n", (long)pid);
                (void)write_file_atomic(path, text, strlen(text), 0600); /* for the runner's sweep */
        }
        for (int i = 0; i < 1000; i++) {
                struct json_object *st = NULL;
                int r = api_request(run.socket, "GET", "/v1/status", NULL, 2000, &st);
                json_object_put(st);
                if (r == 200)
                        return 0;
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        run.core_pid = 0;
                        return -ECHILD;
                }
                sleep_ms(10);
        }
        return -ETIMEDOUT;
}

/* Every process below root (from /proc). */
static size_t descendants(pid_t root, pid_t *ret, size_t max)
{
        size_t n = 0;
        bool grew = true;

        ret[n++] = root;
        while (grew && n < max) {
                _cleanup_(closedirp) DIR *d = opendir("/proc");
                struct dirent *e;

                grew = false;
                while (d && (e = readdir(d)) && n < max) {
                        char path[64], *buf = NULL, *rp;
                        long pid, ppid;
                        bool known = false;

                        if (e->d_name[0] < '1' || e->d_name[0] > '9')
                                continue;
                        (void)xsnprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
                        if (read_file_bounded(path, 4096, &buf, NULL) < 0)
                                continue;
                        rp = strrchr(buf, ')');
                        if (rp && sscanf(rp + 2, "%*c %ld", &ppid) == 1) {
                                pid = strtol(e->d_name, NULL, 10);
                                for (size_t i = 0; i < n; i++)
                                        known |= ret[i] == pid;
                                for (size_t i = 0; i < n && !known; i++)
                                        if (ret[i] == ppid) {
                                                ret[n++] = (pid_t)pid;
                                                grew = true;
                                                break;
                                        }
                        }
                        free(buf);
                }
        }
        return n;
}

/* SIGKILL the core; its spawner stops the modules; what is left after 5 s is
 * killed as systemd's KillMode=control-group would; then it starts again. */
static void core_kill_and_restart(bool restart)
{
        pid_t procs[64];
        size_t n;

        if (run.core_pid <= 0)
                return;
        n = descendants(run.core_pid, procs, ARRAY_SIZE(procs));
        (void)kill(run.core_pid, SIGKILL);
        (void)waitpid(run.core_pid, NULL, 0);
        run.core_pid = 0;
        for (size_t i = 1; i < n; i++)
                if (!wait_process_gone(procs[i], 5000))
                        (void)kill(procs[i], SIGKILL);
        for (size_t i = 1; i < n; i++)
                (void)wait_process_gone(procs[i], 2000);
        if (restart) {
                sleep_ms(100); /* RestartSec */
                if (core_spawn() < 0)
                        say("core did not come back at once (see %s); retrying", run.log);
        }
}

/* The supervisor's check: a core that exited on its own is counted and restarted. */
static void core_supervise(void)
{
        int status;

        if (run.core_pid > 0 && waitpid(run.core_pid, &status, WNOHANG) == run.core_pid) {
                run.core_pid = 0;
                run.core_exits++;
                say("core exited by itself (%s %d); restarting", WIFSIGNALED(status) ? "signal" : "status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
        if (run.core_pid <= 0)
                (void)core_spawn();
}

/* ---- the sandbox's OVS and libvirtd ---- */

static pid_t pidfile_pid(const char *dir, const char *name)
{
        char path[PATH_MAX], *buf = NULL;
        long pid = 0;

        (void)xsnprintf(path, sizeof(path), "%s/%s", dir, name);
        if (read_file_bounded(path, 64, &buf, NULL) == 0)
                pid = strtol(buf, NULL, 10);
        free(buf);
        return pid > 0 && process_alive((pid_t)pid) ? (pid_t)pid : 0;
}

static int vswitchd_start(void)
{
        const char *d = run.ovs.dir;
        return sh("OVS_RUNDIR=%s OVS_LOGDIR=%s ovs-vswitchd unix:%s --pidfile=%s/vswitchd.pid "
                  "--unixctl=%s/vswitchd.ctl --log-file=%s/vswitchd.log -vconsole:err --detach",
                  d, d, run.ovs.db_sock, d, d, d) == 0 ? 0 : -EIO;
}

static int libvirtd_ctl(const char *what)
{
        return sh("bash scripts/libvirtd-private.sh %s %s", what, run.lvdir) == 0 ? 0 : -EIO;
}

static void lv_hold(void)
{
        if (run.lv && virConnectIsAlive(run.lv) == 1)
                return;
        if (run.lv)
                virConnectClose(run.lv);
        run.lv = NULL;
        for (int i = 0; i < 100 && !run.lv; i++) {
                run.lv = virConnectOpen(run.lvuri);
                if (!run.lv)
                        sleep_ms(100);
        }
}

/* ---- operations (worker threads) ---- */

static void slot_forget(struct slot *s)
{
        s->exists = K_UNKNOWN;
        s->running = K_UNKNOWN;
        s->groups[0] = '\0';
}

static bool worker_pause_point(void)
{
        bool stop;

        pthread_mutex_lock(&run.lock);
        if (run.pause) {
                run.paused++;
                pthread_cond_broadcast(&run.cond);
                while (run.pause)
                        pthread_cond_wait(&run.cond, &run.lock);
                run.paused--;
        }
        stop = run.stop;
        pthread_mutex_unlock(&run.lock);
        return stop;
}

static void group_name(const struct worker *w, unsigned g, char ret[32])
{
        (void)xsnprintf(ret, 32, "w%u-g%u", w->id, g);
}

static void op_boot(struct worker *w, struct slot *s, bool with_groups)
{
        char body[2048], groups[160] = "", portsj[1024] = "";
        struct json_object *resp = NULL;
        size_t n_ports = 1 + rng_below(&w->rng, 2);
        int st;

        if (with_groups) {
                char g[32];
                unsigned k = rng_below(&w->rng, GROUPS_PER_WORKER);
                group_name(w, k, g);
                (void)xsnprintf(groups, sizeof(groups), "[\"default\",\"%s\"]", w->group_made[k] ? g : "default");
                if (!w->group_made[k])
                        (void)xsnprintf(groups, sizeof(groups), "[\"default\"]");
        }
        for (size_t i = 0; i < n_ports; i++) {
                char mac[MAC_STR_LEN + 1];
                size_t len = strlen(portsj);
                ck_assert_int_eq(uuid_new_str(s->ports[i]), 0);
                ck_assert_int_eq(mac_generate(mac), 0);
                (void)xsnprintf(portsj + len, sizeof(portsj) - len,
                               "%s{\"port_uuid\":\"%s\",\"mac\":\"%s\",\"ips\":[\"10.%u.%u.%u\"]}", i ? "," : "",
                               s->ports[i], mac, 20 + w->id, rng_below(&w->rng, 250), 2 + rng_below(&w->rng, 250));
        }
        s->n_ports = n_ports;
        (void)xsnprintf(body, sizeof(body), "{\"name\":\"%s\",\"vcpus\":1,\"memory_mb\":64,%s%s%s\"ports\":[%s]}",
                       s->name, groups[0] ? "\"secgroups\":" : "", groups, groups[0] ? "," : "", portsj);
        st = api("POST", "/v1/instances?wait=1", body, &resp);
        if (st == 200) {
                const char *u = jstr(resp, "uuid");
                s->exists = K_YES;
                s->running = K_YES;
                s->boot_failed = false;
                s->n_failed_ports = 0;
                (void)xsnprintf(s->uuid, sizeof(s->uuid), "%s", u ? u : "");
                (void)xsnprintf(s->groups, sizeof(s->groups), "%s", groups[0] ? groups : "[\"default\"]");
        } else if (st > 0) {
                /* answered as failed: whatever the store keeps, its ports must hold nothing */
                s->boot_failed = true;
                s->n_failed_ports = n_ports;
                memcpy(s->failed_ports, s->ports, sizeof(s->ports));
                s->exists = K_UNKNOWN;
                s->running = K_UNKNOWN;
                s->groups[0] = '\0';
                s->uuid[0] = '\0';
        } else {
                s->boot_failed = false;
                s->n_failed_ports = 0;
                slot_forget(s);
                s->uuid[0] = '\0';
        }
        count_op(with_groups ? OP_BOOT_SG : OP_BOOT, st == 200, s->name, st, resp);
        json_object_put(resp);
}

static void op_instance(struct slot *s, enum op_kind k)
{
        char path[128];
        int st;

        /* Another operation on the instance: its failed boot is no longer the last word (a start
         * repairs it, and a repair that fails keeps what it made, by design: see lifecycle.c). */
        s->boot_failed = false;
        s->n_failed_ports = 0;

        (void)xsnprintf(path, sizeof(path), "/v1/instances/%s%s?wait=1", s->name,
                       k == OP_DELETE ? "" : k == OP_STOP ? "/stop" : k == OP_START ? "/start" : "/reboot");
        struct json_object *resp = NULL;
        st = api(k == OP_DELETE ? "DELETE" : "POST", path, NULL, &resp);
        if (st == 200) {
                if (k == OP_DELETE) {
                        s->exists = K_NO;
                        s->boot_failed = false;
                        s->n_failed_ports = 0;
                } else {
                        const char *u = jstr(resp, "uuid");
                        s->exists = K_YES;
                        s->running = k == OP_STOP ? K_NO : K_YES;
                        (void)xsnprintf(s->uuid, sizeof(s->uuid), "%s", u ? u : "");
                }
        } else if (st == 404 && k == OP_DELETE) {
                s->exists = K_NO; /* nothing to delete is what we wanted */
                s->boot_failed = false;
        } else {
                slot_forget(s);
        }
        count_op(k, st == 200 || (st == 404 && k == OP_DELETE), s->name, st, resp);
        json_object_put(resp);
}

static void op_secgroup(struct worker *w, enum op_kind k)
{
        unsigned g = rng_below(&w->rng, GROUPS_PER_WORKER);
        char name[32], path[160], body[256];
        struct json_object *resp = NULL;
        int st;

        group_name(w, g, name);
        if (k == OP_SG_CREATE) {
                (void)xsnprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
                st = api("POST", "/v1/secgroups", body, &resp);
                if (st == 201 || st == 409)
                        w->group_made[g] = true;
                count_op(k, st == 201, name, st, resp);
        } else if (k == OP_SG_RULE_ADD) {
                (void)xsnprintf(path, sizeof(path), "/v1/secgroups/%s/rules", name);
                (void)xsnprintf(body, sizeof(body),
                               "{\"direction\":\"%s\",\"ethertype\":\"IPv4\",\"protocol\":\"tcp\","
                               "\"port_range_min\":%u,\"port_range_max\":%u}",
                               rng_below(&w->rng, 2) ? "ingress" : "egress", 1000 + rng_below(&w->rng, 1000),
                               2000 + rng_below(&w->rng, 1000));
                st = api("POST", path, body, &resp);
                count_op(k, st == 201 || st == 200, name, st, resp);
        } else {
                struct json_object *rules;
                size_t n;
                (void)xsnprintf(path, sizeof(path), "/v1/secgroups/%s", name);
                st = api("GET", path, NULL, &resp);
                rules = st == 200 ? jget(resp, "rules") : NULL;
                n = rules ? jlen(rules) : 0;
                if (n == 0) {
                        json_object_put(resp);
                        return; /* nothing to delete: not an operation */
                }
                (void)xsnprintf(path, sizeof(path), "/v1/secgroup-rules/%s",
                               jstr(jidx(rules, rng_below(&w->rng, (unsigned)n)), "id"));
                json_object_put(resp);
                resp = NULL;
                st = api("DELETE", path, NULL, &resp);
                count_op(k, st == 200 || st == 204, name, st, resp);
        }
        json_object_put(resp);
}

static void op_port_set(struct worker *w, struct slot *s)
{
        struct json_object *resp = NULL;
        char path[128], body[256], groups[160], g[32];
        unsigned k = rng_below(&w->rng, GROUPS_PER_WORKER);
        int st;

        group_name(w, k, g);
        if (rng_below(&w->rng, 2) && w->group_made[k])
                (void)xsnprintf(groups, sizeof(groups), "[\"%s\"]", g);
        else
                (void)xsnprintf(groups, sizeof(groups), "[\"default\"%s%s%s]", w->group_made[k] ? ",\"" : "",
                               w->group_made[k] ? g : "", w->group_made[k] ? "\"" : "");
        (void)xsnprintf(path, sizeof(path), "/v1/ports/%s/secgroups", s->ports[0]);
        (void)xsnprintf(body, sizeof(body), "{\"secgroups\":%s}", groups);
        st = api("PUT", path, body, &resp);
        if (st == 200)
                (void)xsnprintf(s->groups, sizeof(s->groups), "%s", groups);
        else
                s->groups[0] = '\0';
        count_op(OP_PORT_SET, st == 200, s->name, st, resp);
        json_object_put(resp);
}

static void op_plug(struct worker *w, enum op_kind k)
{
        struct json_object *resp = NULL;
        unsigned p = rng_below(&w->rng, N_PLUGS), down = 0;
        char path[128];
        int st;

        for (unsigned i = 0; i < N_PLUGS; i++)
                down += w->plug_down[i];
        for (unsigned i = 0; i < N_PLUGS && w->plug_down[p] != (k == OP_PLUG_CONNECT); i++)
                p = (p + 1) % N_PLUGS;
        if (w->plug_down[p] != (k == OP_PLUG_CONNECT) || (k == OP_PLUG_DISCONNECT && down >= 2))
                return;
        (void)xsnprintf(path, sizeof(path), "/v1/plugs/%s/%s", plug_names[p],
                       k == OP_PLUG_CONNECT ? "connect" : "disconnect");
        st = api("POST", path, NULL, &resp);
        if (st == 200)
                w->plug_down[p] = k == OP_PLUG_DISCONNECT;
        count_op(k, st == 200, plug_names[p], st, resp);
        json_object_put(resp);
}

static void *worker_main(void *arg)
{
        struct worker *w = arg;

        while (!worker_pause_point()) {
                struct slot *s = &w->slots[rng_below(&w->rng, SLOTS_PER_WORKER)];
                unsigned r = rng_below(&w->rng, 100);

                if (r < 8 && !w->group_made[r % GROUPS_PER_WORKER])
                        op_secgroup(w, OP_SG_CREATE);
                else if (r < 16)
                        op_secgroup(w, OP_SG_RULE_ADD);
                else if (r < 20)
                        op_secgroup(w, OP_SG_RULE_DEL);
                else if (r < 22 && w->id == 0)
                        op_plug(w, OP_PLUG_DISCONNECT);
                else if (r < 28 && w->id == 0)
                        op_plug(w, OP_PLUG_CONNECT);
                else if (s->exists == K_NO || (s->exists == K_UNKNOWN && !s->uuid[0] && !s->boot_failed))
                        op_boot(w, s, rng_below(&w->rng, 2));
                else if (r < 40)
                        op_instance(s, OP_DELETE);
                else if (r < 52)
                        op_instance(s, s->running == K_NO ? OP_START : OP_STOP);
                else if (r < 64)
                        op_instance(s, s->running == K_YES ? OP_REBOOT : OP_START);
                else if (r < 76)
                        op_instance(s, OP_REBOOT);
                else if (r < 88 && s->n_ports)
                        op_port_set(w, s);
                else
                        op_instance(s, OP_DELETE);
                sleep_ms(20 + (int)rng_below(&w->rng, 200));
        }
        return NULL;
}

/* ---- faults (the injector thread) ---- */

/* Names of our links of one prefix, from the kernel. */
static size_t our_links(const char *prefix, char ret[][IFNAME_MAX], size_t max)
{
        _cleanup_free_ char *out = sh_out("ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1");
        size_t n = 0;
        char *save = NULL;

        for (char *l = strtok_r(out, "\n", &save); l && n < max; l = strtok_r(NULL, "\n", &save))
                if (port_dev_name_is_ours(prefix, l))
                        (void)strscpy(ret[n++], l, IFNAME_MAX);
        return n;
}

/* Our port chains (table and chain per line). */
static size_t our_chains(char ret[][128], size_t max)
{
        _cleanup_free_ char *out = sh_out("nft list ruleset 2>/dev/null | awk '/^table inet " FW_TABLE "/{t=$3} "
                                          "/^\\tchain port-/{print t, $2}'");
        size_t n = 0;
        char *save = NULL;

        for (char *l = strtok_r(out, "\n", &save); l && n < max; l = strtok_r(NULL, "\n", &save))
                (void)strscpy(ret[n++], l, 128);
        return n;
}

static bool fault_pause_point(void)
{
        return worker_pause_point();
}

static enum fault_kind fault_pick(void)
{
        unsigned total = 0, r;

        for (int k = 0; k < _F_MAX; k++)
                total += fault_weights[k];
        r = rng_below(&run.fault_rng, total);
        for (int k = 0; k < _F_MAX; k++) {
                if (r < fault_weights[k])
                        return (enum fault_kind)k;
                r -= fault_weights[k];
        }
        return F_KILL_MODULE;
}

static pid_t module_pid(const char *plug)
{
        struct json_object *root = NULL, *plugs;
        pid_t pid = 0;

        if (api_request(run.socket, "GET", "/v1/status", NULL, 5000, &root) != 200) {
                json_object_put(root);
                return 0;
        }
        plugs = jget(root, "plugs");
        for (size_t i = 0; plugs && i < jlen(plugs); i++) {
                struct json_object *p = jidx(plugs, i), *m = jget(p, "module");
                if (streq_ptr(jstr(p, "plug"), plug) && streq_ptr(jstr(m, "state"), "running"))
                        pid = (pid_t)json_object_get_int64(jget(m, "pid"));
        }
        json_object_put(root);
        return pid;
}

/* Fill the state dir's filesystem until writes fail with ENOSPC. */
static int disk_fill(void)
{
        char path[PATH_MAX];
        static char block[65536];
        int fd;

        (void)xsnprintf(path, sizeof(path), "%s/.chaos-fill", run.state);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t n = write(fd, block, sizeof(block));
                if (n <= 0)
                        break;
        }
        /* the last blocks of a page-sized remainder */
        while (write(fd, block, 512) > 0)
                ;
        while (write(fd, block, 1) > 0)
                ;
        close(fd);
        return 0;
}

static void disk_free(void)
{
        char path[PATH_MAX];

        (void)xsnprintf(path, sizeof(path), "%s/.chaos-fill", run.state);
        (void)unlink(path);
}

static int foreign_domain_define(void);

static bool fault_run(enum fault_kind k)
{
        char names[256][IFNAME_MAX];
        char chains[256][128];
        size_t n;

        switch (k) {
        case F_KILL_MODULE: {
                pid_t pid = module_pid(plug_names[rng_below(&run.fault_rng, N_PLUGS)]);
                return pid > 0 && kill(pid, SIGKILL) == 0;
        }
        case F_KILL_CORE:
                core_kill_and_restart(true);
                return true;
        case F_RESTART_OVSDB:
                if (ovs_fixture_restart_ovsdb(&run.ovs) < 0)
                        say("ovsdb-server did not restart");
                return true;
        case F_KILL_VSWITCHD: {
                pid_t pid = pidfile_pid(run.ovs.dir, "vswitchd.pid");
                if (pid > 0) {
                        (void)kill(pid, SIGKILL);
                        (void)wait_process_gone(pid, 5000);
                }
                sleep_ms(50 + (int)rng_below(&run.fault_rng, 1000));
                if (vswitchd_start() < 0)
                        say("ovs-vswitchd did not restart");
                return true;
        }
        case F_RESTART_LIBVIRTD:
                (void)libvirtd_ctl("stop");
                if (run.lv)
                        virConnectClose(run.lv);
                run.lv = NULL;
                if (libvirtd_ctl("start") < 0)
                        say("libvirtd did not restart");
                lv_hold();
                if (foreign_domain_define() < 0)
                        say("cannot define the foreign domain again");
                return true;
        case F_DEL_TAP:
                n = our_links("tap", names, 256);
                return n && sh("ip link del %s", names[rng_below(&run.fault_rng, (unsigned)n)]) == 0;
        case F_DEL_OVS_PORT: {
                _cleanup_free_ char *out = NULL;
                char *save = NULL;
                n = 0;
                if (ovs_vsctl(&run.ovs, &out, "list-ports", "br-int", (char *)NULL) < 0 || !out)
                        return false;
                for (char *l = strtok_r(out, "\n", &save); l && n < 256; l = strtok_r(NULL, "\n", &save))
                        if (port_dev_name_is_ours("qvo", l) || port_dev_name_is_ours("tap", l))
                                (void)strscpy(names[n++], l, IFNAME_MAX);
                return n && ovs_vsctl(&run.ovs, NULL, "--if-exists", "del-port", "br-int",
                                      names[rng_below(&run.fault_rng, (unsigned)n)], (char *)NULL) == 0;
        }
        case F_DEL_CHAIN: {
                char table[64], chain[80], qbr[IFNAME_MAX];
                n = our_chains(chains, 256);
                if (!n || sscanf(chains[rng_below(&run.fault_rng, (unsigned)n)], "%63s %79s", table, chain) != 2 ||
                    port_dev_name("qbr", chain + 5, qbr) < 0)
                        return false;
                /* the map element that jumps to it first, else the kernel refuses (EBUSY) */
                return sh("nft delete element inet %s ports '{ \"%s\" }'; nft flush chain inet %s %s; "
                          "nft delete chain inet %s %s", table, qbr, table, chain, table, chain) == 0;
        }
        case F_FOREIGN_RULE:
                return sh("nft insert rule inet " FW_TABLE " forward meta l4proto udp udp dport 4242 accept comment "
                          "'\"" FOREIGN_COMMENT "\"'") == 0;
        case F_ENOSPC:
                if (disk_fill() < 0)
                        return false;
                sleep_ms(500 + (int)rng_below(&run.fault_rng, 4000));
                disk_free();
                return true;
        default:
                return false;
        }
}

static void *injector_main(void *arg)
{
        (void)arg;
        while (!fault_pause_point()) {
                enum fault_kind k = fault_pick();
                bool done;

                sleep_ms(300 + (int)rng_below(&run.fault_rng, 2500));
                if (fault_pause_point())
                        break;
                done = fault_run(k);
                pthread_mutex_lock(&run.lock);
                if (done)
                        run.faults[k]++;
                else
                        run.faults_skipped[k]++;
                if (run.ops_log)
                        fprintf(run.ops_log, "%8.1f fault %lu %s%s\n", (double)mono_ms() / 1000.0,
                                atomic_load(&run.fault_step), fault_names[k], done ? "" : " (nothing to hit)");
                core_supervise();
                pthread_mutex_unlock(&run.lock);
                atomic_fetch_add(&run.fault_step, 1);
        }
        return NULL;
}

/* ---- facts and invariants ---- */

struct link_row {
        char name[IFNAME_MAX], kind[16], master[IFNAME_MAX], alias[128];
        bool up;
};

struct facts {
        struct link_row links[1024];
        size_t n_links;
        struct json_object *ovs_if, *ovs_port; /* ovs-vsctl --format=json list */
        char *brports;                         /* list-ports br-int, "\n" separated with a leading "\n" */
        struct json_object *nft;               /* nft -j list ruleset */
        struct { char name[64]; int state; } doms[512];
        size_t n_doms;
        bool lv_ok;
};

static void facts_free(struct facts *f)
{
        json_object_put(f->ovs_if);
        json_object_put(f->ovs_port);
        json_object_put(f->nft);
        free(f->brports);
}

static int facts_gather(struct facts *f)
{
        _cleanup_free_ char *links = sh_out("ip -j -d link show 2>/dev/null");
        _cleanup_free_ char *nft = sh_out("nft -j list ruleset 2>/dev/null");
        struct json_object *lj = json_tokener_parse(links);
        char *out = NULL;
        virDomainPtr *doms = NULL;
        int nd;

        memset(f, 0, sizeof(*f));
        for (size_t i = 0; lj && i < jlen(lj) && f->n_links < ARRAY_SIZE(f->links); i++) {
                struct json_object *l = jidx(lj, i), *flags = jget(l, "flags");
                struct link_row *r = &f->links[f->n_links++];
                (void)strscpy(r->name, jstr(l, "ifname") ?: "", sizeof(r->name));
                (void)strscpy(r->kind, jstr(jget(l, "linkinfo"), "info_kind") ?: "", sizeof(r->kind));
                (void)strscpy(r->master, jstr(l, "master") ?: "", sizeof(r->master));
                (void)strscpy(r->alias, jstr(l, "ifalias") ?: "", sizeof(r->alias));
                for (size_t k = 0; flags && k < jlen(flags); k++)
                        r->up |= streq(json_object_get_string(jidx(flags, k)), "UP");
        }
        json_object_put(lj);
        if (!lj)
                return -EIO;
        f->nft = json_tokener_parse(nft);
        if (!f->nft)
                return -EIO;
        if (ovs_vsctl(&run.ovs, &out, "--format=json", "--columns=name,external_ids", "list", "Interface", (char *)NULL) < 0)
                return -EIO;
        f->ovs_if = json_tokener_parse(out);
        free(out);
        out = NULL;
        if (ovs_vsctl(&run.ovs, &out, "--format=json", "--columns=name,external_ids", "list", "Port", (char *)NULL) < 0)
                return -EIO;
        f->ovs_port = json_tokener_parse(out);
        free(out);
        out = NULL;
        if (ovs_vsctl(&run.ovs, &out, "list-ports", "br-int", (char *)NULL) < 0)
                return -EIO;
        if (asprintf(&f->brports, "\n%s\n", out) < 0)
                f->brports = NULL;
        free(out);
        if (!f->ovs_if || !f->ovs_port || !f->brports)
                return -EIO;
        lv_hold();
        nd = run.lv ? virConnectListAllDomains(run.lv, &doms, 0) : -1;
        f->lv_ok = nd >= 0;
        for (int i = 0; i < nd; i++) {
                int state = 0, reason;
                if ((size_t)i < ARRAY_SIZE(f->doms)) {
                        (void)strscpy(f->doms[f->n_doms].name, virDomainGetName(doms[i]), sizeof(f->doms[0].name));
                        if (virDomainGetState(doms[i], &state, &reason, 0) == 0)
                                f->doms[f->n_doms].state = state;
                        f->n_doms++;
                }
                virDomainFree(doms[i]);
        }
        free(doms);
        return f->lv_ok ? 0 : -EIO;
}

static const struct link_row *link_find(const struct facts *f, const char *name)
{
        for (size_t i = 0; i < f->n_links; i++)
                if (streq(f->links[i].name, name))
                        return &f->links[i];
        return NULL;
}

static bool on_br_int(const struct facts *f, const char *name)
{
        char needle[IFNAME_MAX + 2];
        (void)xsnprintf(needle, sizeof(needle), "\n%s\n", name);
        return strstr(f->brports, needle) != NULL;
}

/* Value of key in an ovs-vsctl JSON map cell ["map",[[k,v]...]], or NULL. */
static const char *ovs_map_get(struct json_object *cell, const char *key)
{
        struct json_object *pairs = jidx(cell, 1);
        for (size_t i = 0; pairs && i < jlen(pairs); i++) {
                struct json_object *kv = jidx(pairs, i);
                if (streq_ptr(json_object_get_string(jidx(kv, 0)), key))
                        return json_object_get_string(jidx(kv, 1));
        }
        return NULL;
}

/* nft objects of one type ("table", "chain", "rule", "map", "set") visited in order. */
#define NFT_FOREACH(f, type, obj)                                                                           \
        for (size_t _i = 0, _n = jlen(jget((f)->nft, "nftables")); _i < _n; _i++)     \
                if (((obj) = jget(jidx(jget((f)->nft, "nftables"), _i), (type))))

static bool our_table(const char *family, const char *name)
{
        return (streq_ptr(family, "inet") || streq_ptr(family, "bridge")) && name &&
               (streq(name, FW_TABLE) || (strncmp(name, FW_TABLE "_", strlen(FW_TABLE) + 1) == 0));
}

struct store_inst {
        char uuid[37], name[64], vm_state[16], task[16];
        size_t n_ports;
        struct { char uuid[37]; bool filtered; char groups[8][37]; size_t n_groups; } ports[8];
};

struct checker {
        unsigned n;
        char msgs[MAX_VIOLATIONS][512];
        struct store_inst inst[256];
        size_t n_inst;
        struct json_object *groups; /* secgroups.json "groups" */
        struct json_object *groups_root;
};

static void violation(struct checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(struct checker *c, const char *fmt, ...)
{
        va_list ap;

        if (c->n < MAX_VIOLATIONS) {
                va_start(ap, fmt);
                (void)vsnprintf(c->msgs[c->n], sizeof(c->msgs[0]), fmt, ap);
                va_end(ap);
        }
        c->n++;
}

static const struct store_inst *owner_of_port11(const struct checker *c, const char *name11)
{
        for (size_t i = 0; i < c->n_inst; i++)
                for (size_t p = 0; p < c->inst[i].n_ports; p++)
                        if (strncmp(c->inst[i].ports[p].uuid, name11, PORT_NAME_CHARS) == 0)
                                return &c->inst[i];
        return NULL;
}

static const struct store_inst *owner_of_port(const struct checker *c, const char *port)
{
        for (size_t i = 0; i < c->n_inst; i++)
                for (size_t p = 0; p < c->inst[i].n_ports; p++)
                        if (streq(c->inst[i].ports[p].uuid, port))
                                return &c->inst[i];
        return NULL;
}

/* Read every store file: it must parse. */
static void store_read(struct checker *c)
{
        char dir[PATH_MAX], path[PATH_MAX];
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *e;
        char *buf = NULL;

        (void)xsnprintf(path, sizeof(path), "%s/secgroups.json", run.state);
        if (read_file_bounded(path, 4 << 20, &buf, NULL) == 0) {
                c->groups_root = json_tokener_parse(buf);
                if (!c->groups_root)
                        violation(c, "store: %s does not parse", path);
                c->groups = jget(c->groups_root, "groups");
        }
        free(buf);
        buf = NULL;
        (void)xsnprintf(path, sizeof(path), "%s/plugs.json", run.state);
        if (read_file_bounded(path, 1 << 20, &buf, NULL) == 0) {
                struct json_object *o = json_tokener_parse(buf);
                if (!o)
                        violation(c, "store: %s does not parse", path);
                json_object_put(o);
        }
        free(buf);
        buf = NULL;
        (void)xsnprintf(dir, sizeof(dir), "%s/instances", run.state);
        d = opendir(dir);
        while (d && (e = readdir(d))) {
                struct json_object *o, *ports;
                struct store_inst *si;
                size_t len = strlen(e->d_name);

                if (e->d_name[0] == '.' && (streq(e->d_name, ".") || streq(e->d_name, "..")))
                        continue;
                if (len != 41 || !streq(e->d_name + 36, ".json")) {
                        violation(c, "store: stray file instances/%s", e->d_name);
                        continue;
                }
                (void)xsnprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                if (read_file_bounded(path, 1 << 20, &buf, NULL) < 0)
                        continue;
                o = json_tokener_parse(buf);
                free(buf);
                buf = NULL;
                if (!o) {
                        violation(c, "store: instances/%s does not parse", e->d_name);
                        continue;
                }
                if (c->n_inst == ARRAY_SIZE(c->inst)) {
                        json_object_put(o);
                        continue;
                }
                si = &c->inst[c->n_inst++];
                memset(si, 0, sizeof(*si));
                (void)strscpy(si->uuid, jstr(o, "uuid") ?: "", sizeof(si->uuid));
                (void)strscpy(si->name, jstr(o, "name") ?: "", sizeof(si->name));
                (void)strscpy(si->vm_state, jstr(o, "vm_state") ?: "", sizeof(si->vm_state));
                (void)strscpy(si->task, jstr(o, "task") ?: "", sizeof(si->task));
                if (strncmp(e->d_name, si->uuid, 36) != 0)
                        violation(c, "store: instances/%s holds uuid %s", e->d_name, si->uuid);
                ports = jget(o, "ports");
                for (size_t p = 0; ports && p < jlen(ports) && p < 8; p++) {
                        struct json_object *pj = jidx(ports, p), *g = jget(pj, "secgroups");
                        (void)strscpy(si->ports[p].uuid, jstr(pj, "port_uuid") ?: "", 37);
                        si->ports[p].filtered = json_object_get_boolean(jget(pj, "filtered"));
                        for (size_t k = 0; g && k < jlen(g) && k < 8; k++)
                                (void)strscpy(si->ports[p].groups[si->ports[p].n_groups++],
                                              json_object_get_string(jidx(g, k)), 37);
                        si->n_ports++;
                }
                json_object_put(o);
        }
        /* no duplicates: names, uuids, ports */
        for (size_t i = 0; i < c->n_inst; i++)
                for (size_t j = i + 1; j < c->n_inst; j++) {
                        if (streq(c->inst[i].name, c->inst[j].name))
                                violation(c, "store: instance name %s twice (%s, %s)", c->inst[i].name,
                                          c->inst[i].uuid, c->inst[j].uuid);
                        for (size_t p = 0; p < c->inst[i].n_ports; p++)
                                for (size_t q = 0; q < c->inst[j].n_ports; q++)
                                        if (streq(c->inst[i].ports[p].uuid, c->inst[j].ports[q].uuid))
                                                violation(c, "store: port %s in two instances",
                                                          c->inst[i].ports[p].uuid);
                }
}

static size_t group_rule_count(const struct checker *c, const char *id, const char *direction)
{
        for (size_t i = 0; c->groups && i < jlen(c->groups); i++) {
                struct json_object *g = jidx(c->groups, i), *rules = jget(g, "rules");
                size_t n = 0;
                if (!streq_ptr(jstr(g, "id"), id))
                        continue;
                for (size_t k = 0; rules && k < jlen(rules); k++)
                        n += streq_ptr(jstr(jidx(rules, k), "direction"), direction);
                return n;
        }
        return SIZE_MAX;
}

static const char *group_id_of(const struct checker *c, const char *name)
{
        for (size_t i = 0; c->groups && i < jlen(c->groups); i++) {
                struct json_object *g = jidx(c->groups, i);
                if (streq_ptr(jstr(g, "name"), name))
                        return jstr(g, "id");
        }
        return NULL;
}

/* One port of an instance that should be complete: the kernel, OVS and nftables. */
static void check_port(struct checker *c, const struct facts *f, const struct store_inst *si, size_t p)
{
        const char *port = si->ports[p].uuid;
        char tap[IFNAME_MAX], qbr[IFNAME_MAX], qvb[IFNAME_MAX], qvo[IFNAME_MAX], mark[128], chain[64];
        const struct link_row *l;
        struct json_object *o;
        const char *table = NULL;
        unsigned chains = 0;

        (void)port_dev_name("tap", port, tap);
        (void)port_dev_name("qbr", port, qbr);
        (void)port_dev_name("qvb", port, qvb);
        (void)port_dev_name("qvo", port, qvo);
        (void)xsnprintf(mark, sizeof(mark), TAP_MARK_PREFIX "%s", port);
        l = link_find(f, tap);
        if (!l) {
                violation(c, "instance %s (%s): tap %s missing", si->name, si->vm_state, tap);
                return;
        }
        if (!streq(l->kind, "tun") || !streq(l->alias, mark) || !l->up)
                violation(c, "instance %s: tap %s kind %s alias '%s' %s", si->name, tap, l->kind, l->alias,
                          l->up ? "up" : "down");
        if (!si->ports[p].filtered) {
                if (!on_br_int(f, tap))
                        violation(c, "instance %s: unfiltered tap %s not on br-int", si->name, tap);
                return;
        }
        if (!streq(l->master, qbr))
                violation(c, "instance %s: tap %s master '%s', not %s", si->name, tap, l->master, qbr);
        l = link_find(f, qbr);
        if (!l || !streq(l->kind, "bridge"))
                violation(c, "instance %s: bridge %s missing", si->name, qbr);
        l = link_find(f, qvb);
        if (!l || !streq(l->kind, "veth") || !streq(l->master, qbr))
                violation(c, "instance %s: veth %s missing or not in %s", si->name, qvb, qbr);
        l = link_find(f, qvo);
        if (!l || !streq(l->kind, "veth"))
                violation(c, "instance %s: veth %s missing", si->name, qvo);
        if (!on_br_int(f, qvo))
                violation(c, "instance %s: %s not on br-int", si->name, qvo);
        /* the port's chain, in one shard, reached from the ports map, jumping to exactly its groups */
        (void)xsnprintf(chain, sizeof(chain), "port-%s", port);
        NFT_FOREACH(f, "chain", o)
                if (our_table(jstr(o, "family"), jstr(o, "table")) && streq_ptr(jstr(o, "name"), chain)) {
                        chains++;
                        table = jstr(o, "table");
                }
        if (chains != 1) {
                violation(c, "instance %s: chain %s in %u tables", si->name, chain, chains);
                return;
        }
        {
                bool in_map = false;
                char needle[64], jumps[2048] = "";
                NFT_FOREACH(f, "map", o)
                        if (streq_ptr(jstr(o, "table"), table) && streq_ptr(jstr(o, "name"), "ports")) {
                                (void)xsnprintf(needle, sizeof(needle), "\"%s\"", qbr);
                                in_map |= strstr(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), needle) != NULL;
                        }
                if (!in_map)
                        violation(c, "instance %s: %s not in map ports of %s (its chain is never reached)", si->name,
                                  qbr, table);
                NFT_FOREACH(f, "rule", o) {
                        const char *s, *t;
                        if (!streq_ptr(jstr(o, "table"), table) || !streq_ptr(jstr(o, "chain"), chain))
                                continue;
                        s = json_object_to_json_string_ext(jget(o, "expr"), JSON_C_TO_STRING_PLAIN);
                        while ((t = strstr(s, "\"target\":\"sg-"))) {
                                size_t len = strlen(jumps);
                                (void)xsnprintf(jumps + len, sizeof(jumps) - len, "%.43s ", t + 10);
                                s = t + 1;
                        }
                }
                for (size_t g = 0; g < si->ports[p].n_groups; g++) {
                        const char *id = si->ports[p].groups[g];
                        char in[64], out[64];
                        (void)xsnprintf(in, sizeof(in), "sg-%s-in", id);
                        (void)xsnprintf(out, sizeof(out), "sg-%s-out", id);
                        if (!strstr(jumps, in) || !strstr(jumps, out))
                                violation(c, "instance %s: chain %s does not jump to group %s (%s)", si->name, chain,
                                          id, jumps);
                        for (int dir = 0; dir < 2; dir++) {
                                size_t want = group_rule_count(c, id, dir ? "egress" : "ingress"), have = 0;
                                bool exists = false;
                                NFT_FOREACH(f, "chain", o)
                                        exists |= streq_ptr(jstr(o, "table"), table) &&
                                                  streq_ptr(jstr(o, "name"), dir ? out : in);
                                /* the group's rules, not the family check a one-family chain starts with */
                                NFT_FOREACH(f, "rule", o)
                                        have += streq_ptr(jstr(o, "table"), table) &&
                                                streq_ptr(jstr(o, "chain"), dir ? out : in) &&
                                                strncmp(jstr(o, "comment") ? jstr(o, "comment") : "", FW_FAMILY_COMMENT,
                                                        strlen(FW_FAMILY_COMMENT)) != 0;
                                if (!exists)
                                        violation(c, "instance %s: group chain %s missing in %s", si->name,
                                                  dir ? out : in, table);
                                else if (want != SIZE_MAX && have != want)
                                        violation(c, "group %s: %zu %s rules in %s, the store has %zu", id, have,
                                                  dir ? "egress" : "ingress", table, want);
                        }
                }
                /* no jump to a group the port does not have */
                for (const char *s = jumps; (s = strstr(s, "sg-")); s++) {
                        bool known = false;
                        for (size_t g = 0; g < si->ports[p].n_groups; g++)
                                known |= strncmp(s + 3, si->ports[p].groups[g], 36) == 0;
                        if (!known)
                                violation(c, "instance %s: chain %s jumps to %.40s, not a group of the port", si->name,
                                          chain, s);
                }
        }
}

/* Empty c again, dropping the store tree a store_read() left in it. */
static void checker_reset(struct checker *c)
{
        json_object_put(c->groups_root);
        memset(c, 0, sizeof(*c));
}

/* The invariants; the number of violations (messages in c). */
static unsigned check_invariants(struct checker *c, bool final)
{
        struct facts *f = calloc(1, sizeof(*f));
        struct json_object *o;

        checker_reset(c); /* the self-test read the store into c first: its tree was leaked here */
        store_read(c);
        if (facts_gather(f) < 0) {
                violation(c, "facts: cannot read the kernel, OVS or libvirt");
                goto out;
        }
        /* every instance: complete in the state the store says; no operation left running */
        for (size_t i = 0; i < c->n_inst; i++) {
                const struct store_inst *si = &c->inst[i];
                char dom[64];
                int state = -1;

                if (si->task[0])
                        violation(c, "instance %s: task %s never finished", si->name, si->task);
                (void)xsnprintf(dom, sizeof(dom), LIBVIRT_DOMAIN_PREFIX "%s", si->uuid);
                for (size_t d = 0; d < f->n_doms; d++)
                        if (streq(f->doms[d].name, dom))
                                state = f->doms[d].state;
                if (streq(si->vm_state, "error"))
                        continue;
                for (size_t p = 0; p < si->n_ports; p++)
                        check_port(c, f, si, p);
                if (state < 0)
                        violation(c, "instance %s (%s): domain %s missing", si->name, si->vm_state, dom);
                else if (streq(si->vm_state, "active") && state != VIR_DOMAIN_RUNNING)
                        violation(c, "instance %s active: domain state %d", si->name, state);
                else if (streq(si->vm_state, "stopped") && state != VIR_DOMAIN_SHUTOFF)
                        violation(c, "instance %s stopped: domain state %d", si->name, state);
        }
        /* nothing of ours without an owner */
        for (size_t i = 0; i < f->n_links; i++) {
                const struct link_row *l = &f->links[i];
                static const char *const prefixes[] = { "tap", "qbr", "qvb", "qvo" };
                for (size_t k = 0; k < ARRAY_SIZE(prefixes); k++)
                        if (port_dev_name_is_ours(prefixes[k], l->name) && !owner_of_port11(c, l->name + 3))
                                violation(c, "orphan link %s (%s, alias '%s')", l->name, l->kind, l->alias);
                if (strncmp(l->alias, TAP_MARK_PREFIX, strlen(TAP_MARK_PREFIX)) == 0 &&
                    !owner_of_port(c, l->alias + strlen(TAP_MARK_PREFIX)))
                        violation(c, "orphan marked link %s (%s)", l->name, l->alias);
        }
        for (int t = 0; t < 2; t++) {
                struct json_object *data = jget(t ? f->ovs_port : f->ovs_if, "data");
                for (size_t i = 0; data && i < jlen(data); i++) {
                        struct json_object *row = jidx(data, i);
                        const char *name = json_object_get_string(jidx(row, 0));
                        const char *m = ovs_map_get(jidx(row, 1), OVS_MARK_KEY);
                        if (m && !owner_of_port(c, m))
                                violation(c, "orphan OVS %s %s (mark %s)", t ? "Port" : "Interface", name, m);
                        for (size_t j = i + 1; m && j < jlen(data); j++) {
                                struct json_object *r2 = jidx(data, j);
                                if (streq_ptr(ovs_map_get(jidx(r2, 1), OVS_MARK_KEY), m))
                                        violation(c, "duplicate OVS %s for port %s", t ? "Port" : "Interface", m);
                        }
                }
        }
        NFT_FOREACH(f, "chain", o) {
                const char *name = jstr(o, "name");
                if (our_table(jstr(o, "family"), jstr(o, "table")) && name && strncmp(name, "port-", 5) == 0 &&
                    !owner_of_port(c, name + 5))
                        violation(c, "orphan chain %s in %s", name, jstr(o, "table"));
        }
        for (size_t d = 0; d < f->n_doms; d++) {
                const char *n = f->doms[d].name;
                bool owned = false;
                if (strncmp(n, LIBVIRT_DOMAIN_PREFIX, strlen(LIBVIRT_DOMAIN_PREFIX)) != 0)
                        continue;
                for (size_t i = 0; i < c->n_inst; i++)
                        owned |= streq(n + strlen(LIBVIRT_DOMAIN_PREFIX), c->inst[i].uuid);
                if (!owned)
                        violation(c, "orphan domain %s", n);
        }
        /* a rule slipped into our tables does not stay there */
        NFT_FOREACH(f, "rule", o)
                if (our_table(jstr(o, "family"), jstr(o, "table")) && streq_ptr(jstr(o, "comment"), FOREIGN_COMMENT))
                        violation(c, "foreign rule still in %s %s chain %s", jstr(o, "family"), jstr(o, "table"),
                                  jstr(o, "chain"));
        /* nothing foreign touched */
        if (!link_find(f, "chaosfx0"))
                violation(c, "foreign veth chaosfx0 is gone");
        if (!on_br_int(f, "chaosfp0"))
                violation(c, "foreign OVS port chaosfp0 is gone");
        {
                bool table = false, rule = false, dom = false;
                NFT_FOREACH(f, "table", o)
                        table |= streq_ptr(jstr(o, "name"), "chaos_foreign");
                NFT_FOREACH(f, "rule", o)
                        rule |= streq_ptr(jstr(o, "table"), "chaos_foreign") && streq_ptr(jstr(o, "comment"), "mine");
                for (size_t d = 0; d < f->n_doms; d++)
                        dom |= streq(f->doms[d].name, "chaos-foreign");
                if (!table || !rule)
                        violation(c, "foreign nft table chaos_foreign or its rule is gone");
                if (!dom)
                        violation(c, "foreign domain chaos-foreign is gone");
        }
        /* what the API answered */
        for (unsigned w = 0; final && w < run.workers; w++)
                for (unsigned k = 0; k < SLOTS_PER_WORKER; k++) {
                        const struct slot *s = &run.w[w].slots[k];
                        const struct store_inst *si = NULL;
                        for (size_t i = 0; i < c->n_inst; i++)
                                if (streq(c->inst[i].name, s->name))
                                        si = &c->inst[i];
                        if (s->exists == K_YES && (!si || (s->uuid[0] && !streq(si->uuid, s->uuid))))
                                violation(c, "answered: %s was booted (%s) but the store has %s", s->name, s->uuid,
                                          si ? si->uuid : "nothing");
                        if (s->exists == K_NO && si)
                                violation(c, "answered: %s was deleted but the store has %s (%s)", s->name, si->uuid,
                                          si->vm_state);
                        if (si && s->exists == K_YES && s->running != K_UNKNOWN &&
                            !streq(si->vm_state, s->running == K_YES ? "active" : "stopped"))
                                violation(c, "answered: %s %s but the store says %s", s->name,
                                          s->running == K_YES ? "running" : "stopped", si->vm_state);
                        if (si && s->exists == K_YES && s->groups[0] && si->n_ports) {
                                struct json_object *want = json_tokener_parse(s->groups);
                                bool same = want && jlen(want) == si->ports[0].n_groups;
                                for (size_t g = 0; same && g < si->ports[0].n_groups; g++) {
                                        const char *id = group_id_of(c, json_object_get_string(jidx(want, g)));
                                        same = streq_ptr(id, si->ports[0].groups[g]);
                                }
                                json_object_put(want);
                                if (!same)
                                        violation(c, "answered: %s port groups %s, the store differs", s->name,
                                                  s->groups);
                        }
                        for (size_t p = 0; s->boot_failed && p < s->n_failed_ports; p++) {
                                char tap[IFNAME_MAX], chain[64];
                                bool chain_there = false;
                                const struct store_inst *owner = owner_of_port(c, s->failed_ports[p]);
                                if (owner && !streq(owner->vm_state, "error"))
                                        continue; /* repaired or booted since: no longer a failed boot */
                                (void)port_dev_name("tap", s->failed_ports[p], tap);
                                (void)xsnprintf(chain, sizeof(chain), "port-%s", s->failed_ports[p]);
                                NFT_FOREACH(f, "chain", o)
                                        chain_there |= streq_ptr(jstr(o, "name"), chain);
                                if (link_find(f, tap) || chain_there)
                                        violation(c, "answered: boot of %s failed but left %s%s", s->name,
                                                  link_find(f, tap) ? tap : "", chain_there ? " and its chain" : "");
                        }
                }
out:
        facts_free(f);
        free(f);
        json_object_put(c->groups_root);
        c->groups_root = NULL;
        c->groups = NULL;
        return c->n;
}

/* ---- checkpoints ---- */

static void pause_all(unsigned expect)
{
        pthread_mutex_lock(&run.lock);
        run.pause = true;
        while (run.paused < expect)
                pthread_cond_wait(&run.cond, &run.lock);
        pthread_mutex_unlock(&run.lock);
}

static void resume_all(void)
{
        pthread_mutex_lock(&run.lock);
        run.pause = false;
        pthread_cond_broadcast(&run.cond);
        pthread_mutex_unlock(&run.lock);
}

/* Undo the faults that persist: the disk, the daemons, the core, the plugs. */
static void heal(void)
{
        disk_free();
        if (!pidfile_pid(run.ovs.dir, "ovsdb.pid"))
                (void)ovs_fixture_start_ovsdb(&run.ovs);
        if (!pidfile_pid(run.ovs.dir, "vswitchd.pid"))
                (void)vswitchd_start();
        if (!pidfile_pid(run.lvdir, "libvirtd.pid")) {
                (void)libvirtd_ctl("start");
                lv_hold();
                (void)foreign_domain_define();
        }
        lv_hold();
        pthread_mutex_lock(&run.lock);
        core_supervise();
        pthread_mutex_unlock(&run.lock);
        for (unsigned w = 0; w < run.workers; w++)
                memset(run.w[w].plug_down, 0, sizeof(run.w[w].plug_down));
        for (int i = 0; i < N_PLUGS; i++) {
                char path[128];
                (void)xsnprintf(path, sizeof(path), "/v1/plugs/%s/connect", plug_names[i]);
                (void)api("POST", path, NULL, NULL);
        }
}

static int cmp_long(const void *a, const void *b)
{
        long x = *(const long *)a, y = *(const long *)b;
        return (x > y) - (x < y);
}

static bool checkpoint(int n, bool final)
{
        struct checker *c = calloc(1, sizeof(*c));
        long start;
        unsigned v = 0;

        heal();
        start = mono_ms();
        for (;;) {
                v = check_invariants(c, final);
                if (v == 0 || mono_ms() - start > (long)run.converge_s * 1000)
                        break;
                sleep_ms(250);
        }
        if (v == 0) {
                if (run.n_conv < ARRAY_SIZE(run.conv_ms))
                        run.conv_ms[run.n_conv++] = mono_ms() - start;
                say("checkpoint %d: converged in %ld ms (%zu instances)", n, mono_ms() - start, c->n_inst);
        } else {
                say("checkpoint %d: %u invariant violations after %u s:", n, v, run.converge_s);
                for (unsigned i = 0; i < v && i < MAX_VIOLATIONS; i++)
                        say("  violation: %s", c->msgs[i]);
                if (!run.violations) {
                        (void)xsnprintf(run.first_violation, sizeof(run.first_violation), "%s", c->msgs[0]);
                        run.violation_op_step = atomic_load(&run.op_step);
                        run.violation_fault_step = atomic_load(&run.fault_step);
                        run.violation_checkpoint = n;
                }
                run.violations += v;
        }
        free(c);
        return v == 0;
}

/* ---- the checker can fail: damage it must see, with the service frozen ---- */

static void freeze(pid_t *procs, size_t n, int sig)
{
        for (size_t i = 0; i < n; i++)
                (void)kill(procs[i], sig);
}

static bool has_violation(const struct checker *c, const char *needle)
{
        for (unsigned i = 0; i < c->n && i < MAX_VIOLATIONS; i++)
                if (strstr(c->msgs[i], needle))
                        return true;
        return false;
}

/* With the core and its modules stopped (SIGSTOP), break four things behind
 * their back and require the checker to report each; then let the service
 * repair them (one more convergence). Skipped when no instance is active. */
static void checker_self_test(void)
{
        struct checker *c = calloc(1, sizeof(*c));
        const struct store_inst *si = NULL;
        char tap[IFNAME_MAX], dom[64], orphan_port[37], orphan_tap[IFNAME_MAX];
        pid_t procs[64];
        size_t n;
        virDomainPtr d;

        ck_assert_ptr_nonnull(c);
        store_read(c);
        for (size_t i = 0; i < c->n_inst && !si; i++)
                if (streq(c->inst[i].vm_state, "active") && c->inst[i].n_ports && c->inst[i].ports[0].filtered)
                        si = &c->inst[i];
        if (!si) {
                say("checker self-test skipped: no active filtered instance at the end");
                checker_reset(c);
                free(c);
                return;
        }
        (void)port_dev_name("tap", si->ports[0].uuid, tap);
        (void)xsnprintf(dom, sizeof(dom), LIBVIRT_DOMAIN_PREFIX "%s", si->uuid);
        ck_assert_int_eq(uuid_new_str(orphan_port), 0);
        (void)port_dev_name("tap", orphan_port, orphan_tap);
        n = descendants(run.core_pid, procs, ARRAY_SIZE(procs));
        freeze(procs, n, SIGSTOP);
        ck_assert_int_eq(sh("ip link del %s", tap), 0);
        d = virDomainLookupByName(run.lv, dom);
        ck_assert_ptr_nonnull(d);
        ck_assert_int_eq(virDomainDestroy(d), 0);
        virDomainFree(d);
        ck_assert_int_eq(sh("nft insert rule inet " FW_TABLE " forward meta l4proto udp udp dport 4243 accept comment "
                            "'\"" FOREIGN_COMMENT "\"'"), 0);
        ck_assert_int_eq(sh("ip tuntap add dev %s mode tap && ip link set %s alias " TAP_MARK_PREFIX "%s", orphan_tap,
                            orphan_tap, orphan_port), 0);
        ck_assert_uint_gt(check_invariants(c, true), 0);
        ck_assert_msg(has_violation(c, "missing") && has_violation(c, "active: domain state") &&
                              has_violation(c, "foreign rule") && has_violation(c, "orphan marked link"),
                      "the checker missed damage: %u violations, first: %s", c->n, c->msgs[0]);
        say("checker self-test: %u violations seen for 4 kinds of damage", c->n);
        /* the destroyed guest is recorded as stopped (as nova's power sync does): not what the API answered */
        for (unsigned w = 0; w < run.workers; w++)
                for (unsigned k = 0; k < SLOTS_PER_WORKER; k++)
                        if (streq(run.w[w].slots[k].name, si->name))
                                run.w[w].slots[k].running = K_UNKNOWN;
        (void)sh("ip link del %s", orphan_tap); /* a tap without an owner, not made by the service */
        freeze(procs, n, SIGCONT);
        free(c);
}

/* ---- setup ---- */

/* The foreign domain: a real libvirtd keeps it across its restarts; the test
 * driver forgets every domain, so the injector defines it again. */
static int foreign_domain_define(void)
{
        static const char xml[] = "<domain type='test'><name>chaos-foreign</name><memory>65536</memory>"
                                  "<os><type>hvm</type></os></domain>";
        virDomainPtr d = run.lv ? virDomainDefineXML(run.lv, xml) : NULL;

        if (!d)
                return -EIO;
        virDomainFree(d);
        return 0;
}

static void foreign_objects(void)
{

        ck_assert_int_eq(foreign_veth_add("chaosfx0"), 0);
        ck_assert_int_eq(ovs_vsctl(&run.ovs, NULL, "--may-exist", "add-br", "br-int", "--", "set", "Bridge", "br-int",
                                   "datapath_type=netdev", (char *)NULL), 0);
        ck_assert_int_eq(ovs_vsctl(&run.ovs, NULL, "add-port", "br-int", "chaosfp0", "--", "set", "Interface",
                                   "chaosfp0", "type=internal", (char *)NULL), 0);
        ck_assert_int_eq(sh("nft add table inet chaos_foreign && nft add chain inet chaos_foreign c && "
                            "nft add rule inet chaos_foreign c tcp dport 9 accept comment '\"mine\"'"), 0);
        ck_assert_int_eq(foreign_domain_define(), 0);
}

static void setup_paths(void)
{
        (void)xsnprintf(run.state, sizeof(run.state), "%s/state", run.dir);
        (void)xsnprintf(run.conf, sizeof(run.conf), "%s/core.conf", run.dir);
        (void)xsnprintf(run.log, sizeof(run.log), "%s/core.log", run.dir);
        (void)xsnprintf(run.socket, sizeof(run.socket), "%s/run/nova-hypervisor.socket", run.dir);
        (void)xsnprintf(run.lvdir, sizeof(run.lvdir), "%s/libvirtd", run.dir);
        (void)xsnprintf(run.lvuri, sizeof(run.lvuri), "test+unix:///default?socket=%s/sock/libvirt-sock", run.lvdir);
}

static void setup_sandbox(void)
{
        char text[4096];

        ck_assert_int_eq(mkdir(run.state, 0700), 0);
        {
                char path[PATH_MAX];
                (void)xsnprintf(path, sizeof(path), "%s/ops.log", run.dir);
                run.ops_log = fopen(path, "we");
                ck_assert_ptr_nonnull(run.ops_log);
                setvbuf(run.ops_log, NULL, _IOLBF, 0);
        }
        /* the state dir on a small filesystem of its own, visible in this mount namespace only */
        ck_assert_int_eq(mount("chaos-state", run.state, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0700"), 0);
        ck_assert_int_eq(ovs_fixture_start(&run.ovs), 0);
        {
                char path[PATH_MAX];
                (void)xsnprintf(path, sizeof(path), "%s/ovs.dir", run.dir);
                ck_assert_int_eq(write_file_atomic(path, run.ovs.dir, strlen(run.ovs.dir), 0600), 0);
        }
        ck_assert_int_eq(libvirtd_ctl("start"), 0);
        lv_hold();
        ck_assert_ptr_nonnull(run.lv);
        foreign_objects();
        ck_assert_int_eq(xsnprintf(text, sizeof(text),
                                   "state_dir = %s\nrun_dir = %s/run\nplugs = " PLUGS "\nlibvirt_uri = %s\n"
                                   "vif_type = ovs\novsdb_socket = unix:%s\nintegration_bridge = br-int\n"
                                   "bridge_create = true\nbridge_datapath_type = netdev\norphan_policy = reap\n"
                                   "reconcile_interval_s = 10\n"
                                   "restart_min_ms = 50\nrestart_max_ms = 2000\nstop_timeout_ms = 2000\n"
                                   "module_timeout_ms = 10000\nport_timeout_ms = 5000\n",
                                   run.state, run.dir, run.lvuri, run.ovs.db_sock),
                         0);
        ck_assert_int_eq(write_file_atomic(run.conf, text, strlen(text), 0600), 0);
        ck_assert_msg(core_spawn() == 0, "nova-compute did not start; see %s", run.log);
}

static void teardown_sandbox(void)
{
        if (run.core_pid > 0) {
                (void)kill(run.core_pid, SIGTERM);
                for (int i = 0; i < 1000 && waitpid(run.core_pid, NULL, WNOHANG) != run.core_pid; i++)
                        sleep_ms(10);
                core_kill_and_restart(false);
        }
        if (run.lv)
                virConnectClose(run.lv);
        (void)libvirtd_ctl("stop");
        ovs_fixture_stop(&run.ovs);
        disk_free();
        (void)umount2(run.state, MNT_DETACH);
        if (!run.keep)
                (void)sh("rm -rf '%s'", run.dir);
        else
                say("kept %s", run.dir);
}

/* sh() without Check's assertions (the runner is not inside a test). */
static int plain_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int plain_sh(const char *fmt, ...)
{
        char cmd[2048];
        va_list ap;
        int status;
        pid_t pid;

        va_start(ap, fmt);
        (void)vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (devnull >= 0) {
                        (void)dup2(devnull, STDOUT_FILENO);
                        (void)dup2(devnull, STDERR_FILENO);
                }
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) != pid)
                return -ECHILD;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* In the runner, after the test process ended however it ended (a crash skips
 * its teardown): stop whatever of the sandbox still runs, remove it. */
static void sweep(void)
{
        char path[PATH_MAX], *buf = NULL;
        pid_t procs[64];
        long pid = 0;
        size_t n;

        (void)xsnprintf(path, sizeof(path), "%s/core.pid", run.dir);
        if (read_file_bounded(path, 64, &buf, NULL) == 0)
                pid = strtol(buf, NULL, 10);
        free(buf);
        buf = NULL;
        if (pid > 0 && process_alive((pid_t)pid)) {
                n = descendants((pid_t)pid, procs, ARRAY_SIZE(procs));
                for (size_t i = 0; i < n; i++)
                        (void)kill(procs[i], SIGKILL);
                for (size_t i = 0; i < n; i++)
                        (void)wait_process_gone(procs[i], 2000);
        }
        if (run.lvdir[0])
                (void)plain_sh("bash scripts/libvirtd-private.sh stop %s", run.lvdir);
        (void)xsnprintf(path, sizeof(path), "%s/ovs.dir", run.dir);
        if (read_file_bounded(path, PATH_MAX, &buf, NULL) == 0 && strncmp(buf, "/tmp/nova-ovs-", 14) == 0) {
                pid_t d;
                if ((d = pidfile_pid(buf, "vswitchd.pid")) > 0)
                        (void)kill(d, SIGKILL);
                if ((d = pidfile_pid(buf, "ovsdb.pid")) > 0)
                        (void)kill(d, SIGKILL);
                (void)plain_sh("rm -rf '%s'", buf);
        }
        free(buf);
        (void)umount2(run.state, MNT_DETACH);
        if (!run.keep)
                (void)plain_sh("rm -rf '%s'", run.dir);
}

static void lv_quiet(void *opaque, virErrorPtr e)
{
        (void)opaque;
        (void)e;
}

static unsigned env_uint(const char *name, unsigned def)
{
        const char *v = getenv(name);
        uint32_t n;
        return v && *v && parse_u32(v, 0, UINT32_MAX, &n) == 0 ? n : def;
}

START_TEST(test_chaos)
{
        long begin, end_at;
        int n_checkpoint = 0;
        char line[2048];
        size_t len = 0;

        setup_sandbox();
        say("seed %u, %u s, checkpoints every %u s, %u workers; sandbox %s (core log %s)", run.seed, run.duration_s,
            run.checkpoint_s, run.workers, run.dir, run.log);
        ck_assert_msg(checkpoint(n_checkpoint++, false), "the fresh sandbox does not satisfy the invariants");
        run.n_conv = 0;
        run.fault_rng = (uint64_t)run.seed * 0x2545f4914f6cdd1dULL + 7;
        for (unsigned i = 0; i < run.workers; i++) {
                struct worker *w = &run.w[i];
                w->id = i;
                w->rng = (uint64_t)run.seed * 1000003ULL + i;
                for (unsigned k = 0; k < SLOTS_PER_WORKER; k++) {
                        (void)xsnprintf(w->slots[k].name, sizeof(w->slots[k].name), "w%u-s%u", i, k);
                        w->slots[k].exists = K_NO;
                }
                ck_assert_int_eq(pthread_create(&w->thread, NULL, worker_main, w), 0);
        }
        {
                pthread_t inj;
                ck_assert_int_eq(pthread_create(&inj, NULL, injector_main, NULL), 0);
                begin = mono_ms();
                end_at = begin + (long)run.duration_s * 1000; /* moved on by the time checkpoints take */
                for (;;) {
                        long now = mono_ms(), paused_at;
                        if (now >= end_at)
                                break;
                        sleep_ms((int)(now + (long)run.checkpoint_s * 1000 < end_at ? (long)run.checkpoint_s * 1000
                                                                                       : end_at - now));
                        if (mono_ms() >= end_at)
                                break;
                        paused_at = mono_ms();
                        pause_all(run.workers + 1);
                        (void)checkpoint(n_checkpoint++, true);
                        resume_all();
                        end_at += mono_ms() - paused_at;
                }
                pause_all(run.workers + 1);
                pthread_mutex_lock(&run.lock);
                run.stop = true;
                pthread_mutex_unlock(&run.lock);
                resume_all();
                for (unsigned i = 0; i < run.workers; i++)
                        pthread_join(run.w[i].thread, NULL);
                pthread_join(inj, NULL);
        }
        if (checkpoint(n_checkpoint++, true)) {
                checker_self_test();
                (void)checkpoint(n_checkpoint++, true); /* the self-test's damage repaired: a violation if not */
        }

        /* the summary line */
        qsort(run.conv_ms, run.n_conv, sizeof(run.conv_ms[0]), cmp_long);
        len += (size_t)snprintf(line + len, sizeof(line) - len, "chaos: seed=%u duration=%us ops", run.seed,
                                run.duration_s);
        for (int k = 0; k < _OP_MAX; k++)
                len += (size_t)snprintf(line + len, sizeof(line) - len, " %s=%lu/%lu", op_names[k], run.ops_ok[k],
                                        run.ops_failed[k]);
        len += (size_t)snprintf(line + len, sizeof(line) - len, " (ok/failed) | faults");
        for (int k = 0; k < _F_MAX; k++)
                len += (size_t)snprintf(line + len, sizeof(line) - len, " %s=%lu", fault_names[k], run.faults[k]);
        len += (size_t)snprintf(line + len, sizeof(line) - len,
                                " core_exits=%lu | convergence p50=%ldms max=%ldms n=%u | violations=%u", run.core_exits,
                                run.n_conv ? run.conv_ms[run.n_conv / 2] : -1L,
                                run.n_conv ? run.conv_ms[run.n_conv - 1] : -1L, run.n_conv, run.violations);
        if (run.violations)
                len += (size_t)snprintf(line + len, sizeof(line) - len,
                                        " | replay: make chaos SEED=%u DURATION=%u (checkpoint %d, op step %lu, fault "
                                        "step %lu; first: %s)",
                                        run.seed, run.duration_s, run.violation_checkpoint, run.violation_op_step,
                                        run.violation_fault_step, run.first_violation);
        printf("%s\n", line);
        fflush(stdout);
        teardown_sandbox();
        ck_assert_msg(run.violations == 0 && run.core_exits == 0, "%s", line);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("chaos");
        TCase *tc = tcase_create("chaos");
        SRunner *sr;
        int failed;

        run.duration_s = env_uint("CHAOS_DURATION", 60);
        run.seed = env_uint("CHAOS_SEED", (unsigned)(now_usec() % 1000000));
        run.checkpoint_s = env_uint("CHAOS_CHECKPOINT", 30);
        run.workers = env_uint("CHAOS_WORKERS", 2);
        run.converge_s = env_uint("CHAOS_CONVERGE", 90);
        run.keep = env_uint("CHAOS_KEEP", 0) == 1;
        if (run.workers < 1 || run.workers > MAX_WORKERS)
                run.workers = 2;
        if (run.checkpoint_s < 5)
                run.checkpoint_s = 5;
        pthread_mutex_init(&run.lock, NULL);
        pthread_cond_init(&run.cond, NULL);
        (void)setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
        (void)signal(SIGPIPE, SIG_IGN); /* a core killed mid-request: EPIPE, not death */
        virSetErrorFunc(NULL, lv_quiet);
        harness_enter_netns("test-chaos");
        /* a mount namespace of our own: the state tmpfs is seen by us and the core only */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                fprintf(stderr, "test-chaos: cannot make a mount namespace: %s\n", strerror(errno));
                return 1;
        }
        if (xsnprintf(run.dir, sizeof(run.dir), "/tmp/nova-chaos-XXXXXX") < 0 || !mkdtemp(run.dir)) {
                fprintf(stderr, "test-chaos: cannot make a directory: %s\n", strerror(errno));
                return 1;
        }
        setup_paths();
        tcase_set_timeout(tc, (double)run.duration_s + 120.0 + 3.0 * run.converge_s * (run.duration_s / run.checkpoint_s + 2));
        tcase_add_test(tc, test_chaos);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        sweep();
        return failed ? 1 : 0;
}
