/* harness.c - see harness.h */
#include "harness.h"

#include "apiclient.h"
#include "names.h"
#include "schema.h"
#include "tmpdir.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sched.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

void sleep_ms(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static bool in_private_netns; /* set by harness_enter_netns, inherited by the tests it forks */
static pid_t netns_entered_by;
static int ovs_stop_strays(const char *why);

/* At the end of the program: daemons a failed test left (see ovs_stop_strays). */
static void stop_strays_at_exit(void)
{
        if (getpid() == netns_entered_by)
                (void)ovs_stop_strays("at exit");
}

void harness_enter_netns(const char *test_name)
{
        struct nl_sock *sk;
        struct rtnl_link *lo = NULL, *change;

        if (geteuid() != 0) {
                fprintf(stderr, "%s: needs root (network namespaces, tap devices, capabilities)\n", test_name);
                exit(1);
        }
        if (unshare(CLONE_NEWNET) < 0) {
                fprintf(stderr, "%s: unshare(CLONE_NEWNET): %s\n", test_name, strerror(errno));
                exit(1);
        }
        sk = nl_socket_alloc();
        if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0 || rtnl_link_get_kernel(sk, 0, "lo", &lo) < 0) {
                fprintf(stderr, "%s: cannot reach rtnetlink\n", test_name);
                exit(1);
        }
        change = rtnl_link_alloc();
        rtnl_link_set_flags(change, IFF_UP);
        (void)rtnl_link_change(sk, lo, change, 0);
        rtnl_link_put(change);
        rtnl_link_put(lo);
        nl_socket_free(sk);
        in_private_netns = true;
        netns_entered_by = getpid();
        atexit(stop_strays_at_exit);
}

/* A failed assertion ends the test process before its teardown runs: stop
 * whatever it started from an exit handler, so nothing outlives the test. */
#define TRACK_MAX 8
static struct core *tracked_cores[TRACK_MAX];
static struct ovs_fixture *tracked_fixtures[TRACK_MAX];
static pid_t tracked_core_owner[TRACK_MAX], tracked_fixture_owner[TRACK_MAX]; /* only the starter stops it */

static void stop_leftovers(void)
{
        pid_t self = getpid();

        for (int i = 0; i < TRACK_MAX; i++) {
                struct core *c = tracked_cores[i];
                if (c && c->pid > 0 && tracked_core_owner[i] == self) {
                        kill(c->pid, SIGTERM);
                        for (int t = 0; t < 500 && waitpid(c->pid, NULL, WNOHANG) != c->pid; t++)
                                sleep_ms(10);
                        kill(c->pid, SIGKILL);
                        c->pid = 0;
                }
        }
        for (int i = 0; i < TRACK_MAX; i++)
                if (tracked_fixtures[i] && tracked_fixture_owner[i] == self)
                        ovs_fixture_stop(tracked_fixtures[i]);
}

static void track(void **slots, pid_t *owners, void *p)
{
        static bool registered;

        if (!registered) {
                atexit(stop_leftovers);
                test_tmpdir_before_remove = stop_leftovers; /* also when the dir's handler runs first */
                registered = true;
        }
        for (int i = 0; i < TRACK_MAX; i++)
                if (slots[i] == p) {
                        owners[i] = getpid();
                        return;
                }
        for (int i = 0; i < TRACK_MAX; i++)
                if (!slots[i]) {
                        slots[i] = p;
                        owners[i] = getpid();
                        return;
                }
}

static const char *bin_dir(void)
{
        const char *b = getenv("NOVA_BIN");
        return b && *b ? b : "build/bin";
}

void core_start(struct core *c, const char *config_lines)
{
        char conf[PATH_MAX], prog[PATH_MAX], text[4096];
        struct json_object *st = NULL;
        int logfd;

        if (c->dir[0] == '\0') {
                ck_assert_int_eq(test_tmpdir_make("nova-it", c->dir, sizeof(c->dir)), 0);
        }
        ck_assert_int_eq(xsnprintf(conf, sizeof(conf), "%s/core.conf", c->dir), 0);
        ck_assert_int_eq(xsnprintf(c->socket, sizeof(c->socket), "%s/run/nova-hypervisor.socket", c->dir), 0);
        ck_assert_int_eq(xsnprintf(c->log, sizeof(c->log), "%s/core.log", c->dir), 0);
        ck_assert_int_eq(xsnprintf(text, sizeof(text),
                                   "state_dir = %s/state\nrun_dir = %s/run\n%s"
                                   "restart_min_ms = 50\nrestart_max_ms = 2000\nstop_timeout_ms = 2000\n%s",
                                   c->dir, c->dir,
                                   config_lines && strstr(config_lines, "plugs =") ? "" : "plugs = network-control\n",
                                   config_lines ? config_lines : ""),
                         0);
        ck_assert_int_eq(write_file_atomic(conf, text, strlen(text), 0600), 0);
        ck_assert_int_eq(xsnprintf(prog, sizeof(prog), "%s/nova-compute", bin_dir()), 0);
        logfd = open(c->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        ck_assert_int_ge(logfd, 0);
        c->pid = fork();
        ck_assert_int_ge(c->pid, 0);
        if (c->pid == 0) {
                dup2(logfd, 2);
                dup2(logfd, 1);
                execl(prog, "nova-compute", "--config", conf, (char *)NULL);
                _exit(127);
        }
        close(logfd);
        track((void **)tracked_cores, tracked_core_owner, c);
        for (int i = 0; i < 500; i++) {
                int status = api_request(c->socket, "GET", "/v1/status", NULL, 2000, &st);
                if (status == 200) {
                        json_object_put(st);
                        return;
                }
                ck_assert_msg(process_alive(c->pid), "nova-compute exited during start; see %s", c->log);
                sleep_ms(10);
        }
        ck_abort_msg("nova-compute did not answer within 5 s; see %s", c->log);
}

void core_stop(struct core *c)
{
        int status;

        if (c->pid <= 0)
                return;
        kill(c->pid, SIGTERM);
        for (int i = 0; i < 1000; i++) {
                if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
                        c->pid = 0;
                        return;
                }
                sleep_ms(10);
        }
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &status, 0);
        c->pid = 0;
        ck_abort_msg("nova-compute did not stop within 10 s");
}

int core_api(struct core *c, const char *method, const char *path, const char *body, struct json_object **ret)
{
        return api_request(c->socket, method, path, body, 30000, ret);
}

struct json_object *core_plug_status(struct core *c, const char *plug, struct json_object **ret_root)
{
        struct json_object *root = NULL, *plugs;

        ck_assert_int_eq(core_api(c, "GET", "/v1/status", NULL, &root), 200);
        ck_assert(json_object_object_get_ex(root, "plugs", &plugs));
        for (size_t i = 0; i < json_object_array_length(plugs); i++) {
                struct json_object *p = json_object_array_get_idx(plugs, i), *name;
                if (json_object_object_get_ex(p, "plug", &name) && streq(json_object_get_string(name), plug)) {
                        *ret_root = root;
                        return p;
                }
        }
        json_object_put(root);
        ck_abort_msg("plug %s missing from status", plug);
        return NULL;
}

pid_t core_module_pid(struct core *c, const char *plug)
{
        struct json_object *root, *p = core_plug_status(c, plug, &root), *m, *state, *pid;
        pid_t result = 0;

        if (json_object_object_get_ex(p, "module", &m) && json_object_object_get_ex(m, "state", &state) &&
            streq(json_object_get_string(state), "running") && json_object_object_get_ex(m, "pid", &pid))
                result = (pid_t)json_object_get_int64(pid);
        json_object_put(root);
        return result;
}

pid_t core_wait_module_running(struct core *c, const char *plug, pid_t not_pid, int timeout_ms)
{
        for (int waited = 0; waited <= timeout_ms; waited += 10) {
                pid_t pid = core_module_pid(c, plug);
                if (pid > 0 && pid != not_pid)
                        return pid;
                sleep_ms(10);
        }
        return 0;
}

bool core_wait_module_state(struct core *c, const char *plug, const char *state, int timeout_ms)
{
        for (int waited = 0; waited <= timeout_ms; waited += 10) {
                struct json_object *root = NULL, *p = core_plug_status(c, plug, &root), *m = NULL, *st = NULL;
                bool match = p && json_object_object_get_ex(p, "module", &m) &&
                             json_object_object_get_ex(m, "state", &st) && json_object_is_type(st, json_type_string) &&
                             streq(json_object_get_string(st), state);

                json_object_put(root);
                if (match)
                        return true;
                sleep_ms(10);
        }
        return false;
}

/* The state letter of /proc/<path>/stat: the field after "(comm)"; 0 when it is gone. */
static char task_state(const char *path)
{
        char *buf = NULL, *rp, state = 0;

        if (read_file_bounded(path, 4096, &buf, NULL) < 0)
                return 0;
        rp = strrchr(buf, ')');
        if (rp && rp[1] == ' ')
                state = rp[2];
        free(buf);
        return state;
}

/* Alive while any of its threads has not ended: a thread group's leader shows Z
 * as soon as it exits itself, while the other threads may still be exiting and
 * holding the process's files (an ovs-vswitchd's datapath tap, still attached,
 * makes the next one's creation fail with EBUSY). */
bool process_alive(pid_t pid)
{
        char path[64];
        struct dirent *e;
        DIR *d;
        char state;
        bool alive = false;

        if (pid <= 0)
                return false;
        (void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        state = task_state(path);
        if (state != 'Z')
                return state != 0 && state != 'X';
        (void)snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
        d = opendir(path);
        while (d && !alive && (e = readdir(d))) {
                char tpath[PATH_MAX];

                if (e->d_name[0] == '.')
                        continue;
                (void)snprintf(tpath, sizeof(tpath), "/proc/%ld/task/%s/stat", (long)pid, e->d_name);
                state = task_state(tpath);
                alive = state != 0 && state != 'Z' && state != 'X';
        }
        if (d)
                closedir(d);
        return alive;
}

bool wait_process_gone(pid_t pid, int timeout_ms)
{
        for (int waited = 0; waited <= timeout_ms; waited += 10) {
                if (!process_alive(pid))
                        return true;
                sleep_ms(10);
        }
        return false;
}

int link_facts_get(const char *name, struct link_facts *ret)
{
        struct nl_sock *sk = nl_socket_alloc();
        struct rtnl_link *link = NULL;
        struct link_facts f = { 0 };
        struct nl_addr *addr;
        const char *alias, *kind;
        int r;

        ck_assert_ptr_nonnull(sk);
        ck_assert_int_eq(nl_connect(sk, NETLINK_ROUTE), 0);
        r = rtnl_link_get_kernel(sk, 0, name, &link);
        nl_socket_free(sk);
        if (r < 0)
                return -ENOENT;
        f.ifindex = rtnl_link_get_ifindex(link);
        f.mtu = rtnl_link_get_mtu(link);
        f.flags = rtnl_link_get_flags(link);
        addr = rtnl_link_get_addr(link);
        if (addr && nl_addr_get_len(addr) == 6) {
                const uint8_t *b = nl_addr_get_binary_addr(addr);
                mac_format(b, f.mac);
        }
        alias = rtnl_link_get_ifalias(link);
        if (alias)
                (void)strscpy(f.alias, alias, sizeof(f.alias));
        kind = rtnl_link_get_type(link);
        if (kind)
                (void)strscpy(f.kind, kind, sizeof(f.kind));
        rtnl_link_put(link);
        *ret = f;
        return 0;
}

int link_count(void)
{
        struct nl_sock *sk = nl_socket_alloc();
        struct nl_cache *cache = NULL;
        int n;

        ck_assert_ptr_nonnull(sk);
        ck_assert_int_eq(nl_connect(sk, NETLINK_ROUTE), 0);
        ck_assert_int_eq(rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache), 0);
        n = nl_cache_nitems(cache);
        nl_cache_free(cache);
        nl_socket_free(sk);
        return n;
}

bool file_contains(const char *path, const char *needle)
{
        char *buf = NULL;
        bool found;

        if (read_file_bounded(path, 16 * 1024 * 1024, &buf, NULL) < 0)
                return false;
        found = strstr(buf, needle) != NULL;
        free(buf);
        return found;
}

void random_port_uuid(char ret[37])
{
        ck_assert_int_eq(uuid_new_str(ret), 0);
}

int foreign_veth_add(const char *name)
{
        struct nl_sock *sk = nl_socket_alloc();
        struct rtnl_link *veth, *peer;
        char peer_name[IFNAMSIZ];
        int r;

        if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0)
                return -EIO;
        veth = rtnl_link_veth_alloc();
        if (!veth) {
                nl_socket_free(sk);
                return -ENOMEM;
        }
        peer = rtnl_link_veth_get_peer(veth);
        (void)snprintf(peer_name, sizeof(peer_name), "fpeer%d", (int)(now_usec() % 100000));
        rtnl_link_set_name(veth, name);
        rtnl_link_set_name(peer, peer_name);
        r = rtnl_link_add(sk, veth, NLM_F_CREATE | NLM_F_EXCL);
        rtnl_link_put(peer);
        rtnl_link_veth_release(veth);
        nl_socket_free(sk);
        return r < 0 ? -EIO : 0;
}

/* ---- Open vSwitch daemons for tests ---- */


#define OVS_SCHEMA "/usr/share/openvswitch/vswitch.ovsschema"
#define OVS_MAX_ARGS 64

/* In a child about to exec an OVS program: its run/log/db directories are the
 * fixture's, and the sbin directories are on PATH. */
static void ovs_child_env(const char *dir)
{
        const char *path = getenv("PATH");
        char buf[4096];

        (void)setenv("OVS_RUNDIR", dir, 1);
        (void)setenv("OVS_LOGDIR", dir, 1);
        (void)setenv("OVS_DBDIR", dir, 1);
        (void)snprintf(buf, sizeof(buf), "%s%s/usr/sbin:/usr/bin:/sbin:/bin", path ? path : "", path ? ":" : "");
        (void)setenv("PATH", buf, 1);
}

/* Run argv (NULL-terminated) to its end. Its stdout goes to *ret_out when
 * ret_out is not NULL, else to our stderr. 0, -EIO (exit status not 0) or -errno. */
static int ovs_run_prog(const char *dir, char *const argv[], char **ret_out)
{
        _cleanup_close_ int rd = -1;
        _cleanup_free_ char *out = NULL;
        size_t len = 0, cap = 0;
        int fds[2], status;
        pid_t pid;

        if (ret_out) {
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return -errno;
                rd = fds[0];
        }
        pid = fork();
        if (pid < 0) {
                if (ret_out)
                        (void)close(fds[1]);
                return -errno;
        }
        if (pid == 0) {
                ovs_child_env(dir);
                (void)dup2(ret_out ? fds[1] : STDERR_FILENO, STDOUT_FILENO);
                execvp(argv[0], argv);
                fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        if (ret_out) {
                (void)close(fds[1]);
                for (;;) {
                        ssize_t n;

                        if (cap - len < 4096) {
                                char *bigger = realloc(out, cap + 65536);
                                if (!bigger)
                                        break;
                                out = bigger;
                                cap += 65536;
                        }
                        n = read(rd, out + len, cap - len - 1);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0)
                                break;
                        len += (size_t)n;
                }
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (ret_out) {
                if (!out)
                        return -ENOMEM;
                while (len > 0 && out[len - 1] == '\n')
                        len--;
                out[len] = '\0';
                *ret_out = TAKE_PTR(out);
        }
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static pid_t ovs_read_pidfile(const struct ovs_fixture *f, const char *name)
{
        char path[PATH_MAX];
        _cleanup_free_ char *buf = NULL;
        uint32_t pid;

        if (xsnprintf(path, sizeof(path), "%s/%s", f->dir, name) < 0 || read_file_bounded(path, 64, &buf, NULL) < 0)
                return 0;
        buf[strcspn(buf, "\n")] = '\0';
        return parse_u32(buf, 1, INT32_MAX, &pid) < 0 ? 0 : (pid_t)pid;
}

/* SIGTERM, wait up to 5 s, then SIGKILL. */
static void ovs_kill_wait(pid_t pid)
{
        if (pid <= 0 || !process_alive(pid))
                return;
        (void)kill(pid, SIGTERM);
        (void)kill(pid, SIGCONT); /* a test may have frozen it */
        if (wait_process_gone(pid, 5000))
                return;
        (void)kill(pid, SIGKILL);
        (void)wait_process_gone(pid, 2000);
}

/* True when pid is one of the daemons of a fixture this process started (and has not stopped). */
static bool ovs_daemon_of_ours(pid_t pid)
{
        pid_t self = getpid();

        for (int i = 0; i < TRACK_MAX; i++) {
                const struct ovs_fixture *f = tracked_fixtures[i];

                if (!f || tracked_fixture_owner[i] != self || f->dir[0] == '\0')
                        continue;
                if (pid == f->ovsdb_pid || pid == f->vswitchd_pid || pid == ovs_read_pidfile(f, "ovsdb.pid") ||
                    pid == ovs_read_pidfile(f, "vswitchd.pid"))
                        return true;
        }
        return false;
}

/* Stop every ovsdb-server and ovs-vswitchd in this network namespace that no
 * fixture of this process owns: those of an earlier test whose assertion failed
 * (check ends a failed test with _exit, so neither its teardown nor an exit
 * handler stops them). Left running, the old ovs-vswitchd keeps the namespace's
 * datapath device (ovs-netdev) attached and the next one cannot create its
 * bridge: every later test of the program fails waiting for an ofport. Their
 * directories are kept, with their logs. Returns how many were stopped. */
static int ovs_stop_strays(const char *why)
{
        struct stat ours, theirs;
        struct dirent *e;
        int n = 0;
        DIR *d;

        /* in the host's namespace, another program's daemons are not ours to stop */
        if (!in_private_netns || stat("/proc/self/ns/net", &ours) < 0 || !(d = opendir("/proc")))
                return 0;
        while ((e = readdir(d))) {
                char path[PATH_MAX], name[16], *comm = NULL;
                uint32_t pid;

                if (parse_u32(e->d_name, 1, INT32_MAX, &pid) < 0 || (pid_t)pid == getpid())
                        continue;
                (void)snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
                if (read_file_bounded(path, 64, &comm, NULL) < 0)
                        continue;
                comm[strcspn(comm, "\n")] = '\0';
                (void)snprintf(name, sizeof(name), "%s", comm);
                free(comm);
                if (!streq(name, "ovs-vswitchd") && !streq(name, "ovsdb-server"))
                        continue;
                (void)snprintf(path, sizeof(path), "/proc/%s/ns/net", e->d_name);
                if ( stat(path, &theirs) < 0 || theirs.st_ino != ours.st_ino ||
                    theirs.st_dev != ours.st_dev || ovs_daemon_of_ours((pid_t)pid) || !process_alive((pid_t)pid))
                        continue;
                fprintf(stderr, "%s: stopping a stray %s (pid %u) that an earlier test left in this namespace\n",
                        why, name, pid);
                ovs_kill_wait((pid_t)pid);
                n++;
        }
        closedir(d);
        return n;
}

int ovs_fixture_start_ovsdb(struct ovs_fixture *f)
{
        char remote[PATH_MAX + 8], unixctl[PATH_MAX + 16], pidfile[PATH_MAX + 16], logfile[PATH_MAX + 16],
                db[PATH_MAX];
        char *argv[] = { "ovsdb-server", remote, unixctl, pidfile, logfile, "-vconsole:err", "--detach", db, NULL };
        int r;

        if (xsnprintf(remote, sizeof(remote), "--remote=punix:%s", f->db_sock) < 0 ||
            xsnprintf(unixctl, sizeof(unixctl), "--unixctl=%s/ovsdb.ctl", f->dir) < 0 ||
            xsnprintf(pidfile, sizeof(pidfile), "--pidfile=%s/ovsdb.pid", f->dir) < 0 ||
            xsnprintf(logfile, sizeof(logfile), "--log-file=%s/ovsdb.log", f->dir) < 0 ||
            xsnprintf(db, sizeof(db), "%s/conf.db", f->dir) < 0)
                return -ENAMETOOLONG;
        /* --detach returns once the server listens. */
        r = ovs_run_prog(f->dir, argv, NULL);
        if (r < 0)
                return r;
        f->ovsdb_pid = ovs_read_pidfile(f, "ovsdb.pid");
        return f->ovsdb_pid > 0 ? 0 : -ESRCH;
}

int ovs_fixture_stop_ovsdb(struct ovs_fixture *f)
{
        pid_t pid = ovs_read_pidfile(f, "ovsdb.pid");

        if (pid <= 0)
                pid = f->ovsdb_pid;
        if (pid <= 0)
                return -ESRCH;
        ovs_kill_wait(pid);
        f->ovsdb_pid = 0;
        return process_alive(pid) ? -EBUSY : 0;
}

int ovs_fixture_restart_ovsdb(struct ovs_fixture *f)
{
        int r = ovs_fixture_stop_ovsdb(f);

        return r < 0 ? r : ovs_fixture_start_ovsdb(f);
}

int ovs_vsctl(const struct ovs_fixture *f, char **ret_out, ...)
{
        char dbarg[PATH_MAX + 16];
        char *argv[OVS_MAX_ARGS + 4] = { "ovs-vsctl", dbarg, "--timeout=10" };
        size_t n = 3;
        va_list ap;
        char *a;

        if (xsnprintf(dbarg, sizeof(dbarg), "--db=unix:%s", f->db_sock) < 0)
                return -ENAMETOOLONG;
        va_start(ap, ret_out);
        while ((a = va_arg(ap, char *)) && n < OVS_MAX_ARGS + 3)
                argv[n++] = a;
        va_end(ap);
        if (a)
                return -E2BIG;
        argv[n] = NULL;
        return ovs_run_prog(f->dir, argv, ret_out);
}

int ovs_fixture_add_bridge(const struct ovs_fixture *f, const char *bridge)
{
        return ovs_vsctl(f, NULL, "add-br", bridge, "--", "set", "Bridge", bridge, "datapath_type=netdev", (char *)NULL);
}

int ovs_fixture_start(struct ovs_fixture *f)
{
        char remote[PATH_MAX + 8], unixctl[PATH_MAX + 16], pidfile[PATH_MAX + 16], logfile[PATH_MAX + 16],
                db[PATH_MAX];
        char *create[] = { "ovsdb-tool", "create", db, OVS_SCHEMA, NULL };
        char *vswitchd[] = { "ovs-vswitchd", remote, unixctl, pidfile, logfile, "-vconsole:err", "--detach", NULL };
        int r;

        memset(f, 0, sizeof(*f));
        (void)ovs_stop_strays("ovs_fixture_start");
        if (xsnprintf(f->dir, sizeof(f->dir), "/tmp/nova-ovs-XXXXXX") < 0 || !mkdtemp(f->dir))
                return -errno;
        if (xsnprintf(f->db_sock, sizeof(f->db_sock), "%s/db.sock", f->dir) < 0 ||
            xsnprintf(db, sizeof(db), "%s/conf.db", f->dir) < 0 ||
            xsnprintf(remote, sizeof(remote), "unix:%s", f->db_sock) < 0 ||
            xsnprintf(unixctl, sizeof(unixctl), "--unixctl=%s/vswitchd.ctl", f->dir) < 0 ||
            xsnprintf(pidfile, sizeof(pidfile), "--pidfile=%s/vswitchd.pid", f->dir) < 0 ||
            xsnprintf(logfile, sizeof(logfile), "--log-file=%s/vswitchd.log", f->dir) < 0) {
                r = -ENAMETOOLONG;
                goto fail;
        }
        track((void **)tracked_fixtures, tracked_fixture_owner, f);
        r = ovs_run_prog(f->dir, create, NULL);
        if (r < 0)
                goto fail;
        r = ovs_fixture_start_ovsdb(f);
        if (r < 0)
                goto fail;
        r = ovs_vsctl(f, NULL, "--no-wait", "init", (char *)NULL);
        if (r < 0)
                goto fail;
        /* In this process's network namespace; --detach returns once it runs. */
        r = ovs_run_prog(f->dir, vswitchd, NULL);
        if (r < 0)
                goto fail;
        f->vswitchd_pid = ovs_read_pidfile(f, "vswitchd.pid");
        if (f->vswitchd_pid <= 0) {
                r = -ESRCH;
                goto fail;
        }
        /* Without --no-wait, ovs-vsctl returns once ovs-vswitchd has applied the change. */
        r = ovs_vsctl(f, NULL, "set", "Open_vSwitch", ".", "external_ids:nova-test=ready", (char *)NULL);
        if (r < 0)
                goto fail;
        return 0;
fail:
        ovs_fixture_stop(f);
        return r;
}

void ovs_fixture_stop(struct ovs_fixture *f)
{
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *e;
        pid_t pid;

        if (f->dir[0] == '\0')
                return;
        pid = ovs_read_pidfile(f, "vswitchd.pid");
        ovs_kill_wait(pid > 0 ? pid : f->vswitchd_pid);
        (void)ovs_fixture_stop_ovsdb(f);
        f->vswitchd_pid = 0;
        d = opendir(f->dir);
        while (d && (e = readdir(d)))
                if (!streq(e->d_name, ".") && !streq(e->d_name, ".."))
                        (void)unlinkat(dirfd(d), e->d_name, 0);
        (void)rmdir(f->dir);
        f->dir[0] = '\0';
}

pid_t module_exec(const char *program, const char *config_path, const char *log_path, int *ret_fd)
{
        char prog[PATH_MAX];
        int sv[2];
        pid_t pid;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        ck_assert_int_eq(xsnprintf(prog, sizeof(prog), "%s/%s", bin_dir(), program), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                if (log_path) {
                        int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
                        if (log >= 0)
                                dup2(log, 2);
                }
                dup2(sv[1], 3);
                if (config_path)
                        execl(prog, program, "--fd", "3", "--config", config_path, (char *)NULL);
                else
                        execl(prog, program, "--fd", "3", (char *)NULL);
                _exit(127);
        }
        close(sv[1]);
        *ret_fd = sv[0];
        return pid;
}

int core_request_check(const struct module_protocol *mp, struct proto_writer *w, char *err, size_t errlen)
{
        _cleanup_free_ struct proto_msg *msg = malloc(sizeof(*msg));
        const struct proto_entrypoint *ep;
        const uint8_t *buf;
        char why[256];
        size_t len;
        int r;

        ck_assert_ptr_nonnull(msg);
        r = pw_finish(w, &buf, &len);
        if (r < 0)
                return r;
        pw_set_id(w, 1); /* the id does not matter here; the caller sets its own */
        ck_assert_int_eq(proto_decode(buf, len, msg, why, sizeof(why)), 0);
        ep = module_protocol_find(mp, msg->name);
        if (!ep) {
                if (err)
                        (void)snprintf(err, errlen, "no entrypoint %s", msg->name);
                return -ENOSYS;
        }
        r = schema_check(ep->request, msg->body, why, sizeof(why));
        if (r < 0 && err)
                (void)snprintf(err, errlen, "%s", why);
        return r;
}

/* ---- shell helpers (test code only: the daemon never runs a shell) ---- */


int sh(const char *fmt, ...)
{
        char cmd[2048];
        va_list ap;
        int status;
        pid_t pid;

        va_start(ap, fmt);
        (void)vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int devnull = open("/dev/null", O_WRONLY);
                if (!getenv("FW_TEST_VERBOSE") && devnull >= 0) {
                        (void)dup2(devnull, STDOUT_FILENO);
                        (void)dup2(devnull, STDERR_FILENO);
                }
                (void)setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* stdout of a shell command (malloc'd). */
char *sh_out(const char *fmt, ...)
{
        char cmd[2048];
        va_list ap;
        FILE *f;
        char *buf = NULL;
        size_t cap = 0, len = 0;

        va_start(ap, fmt);
        (void)vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        (void)setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
        f = popen(cmd, "r");
        ck_assert_ptr_nonnull(f);
        for (;;) {
                if (len + 4096 > cap) {
                        cap = cap ? cap * 2 : 8192;
                        buf = realloc(buf, cap);
                        ck_assert_ptr_nonnull(buf);
                }
                size_t n = fread(buf + len, 1, cap - len - 1, f);
                if (n == 0)
                        break;
                len += n;
        }
        buf[len] = '\0';
        (void)pclose(f);
        return buf;
}


/* ---- a guest on a tap: a userspace frame copier ---- */

/* Attach to a tap (IFF_TAP | IFF_NO_PI), or create one with that name. -1 on failure. */
static int tap_attach(const char *name)
{
        struct ifreq ifr = { 0 };
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

        if (fd < 0)
                return -1;
        if (strscpy(ifr.ifr_name, name, sizeof(ifr.ifr_name)) < 0) {
                close(fd);
                return -1;
        }
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
        if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/* The copier: frames read from one fd are written whole to the other, as a
 * hypervisor's virtio-net backend moves them between the tap and the guest. */
static _Noreturn void wire_loop(int host, int guest)
{
        static uint8_t frame[65536];

        for (;;) {
                struct pollfd p[2] = { { host, POLLIN, 0 }, { guest, POLLIN, 0 } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                for (int i = 0; i < 2; i++) {
                        if (!(p[i].revents & POLLIN))
                                continue;
                        ssize_t n = read(p[i].fd, frame, sizeof(frame));
                        if (n > 0)
                                (void)!write(p[1 - i].fd, frame, (size_t)n);
                        else if (n == 0 || (errno != EINTR && errno != EAGAIN))
                                _exit(0);
                }
        }
}

pid_t guest_wire_start(const char *tap, const char *netns)
{
        char path[PATH_MAX];
        int ready[2];
        char ok = 0;
        pid_t pid;

        ck_assert_int_eq(xsnprintf(path, sizeof(path), "/var/run/netns/%s", netns), 0);
        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int host, guest, nsfd;
                close(ready[0]);
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                host = tap_attach(tap); /* in the test's namespace, where the tap is */
                nsfd = open(path, O_RDONLY | O_CLOEXEC);
                if (host < 0 || nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0)
                        _exit(1);
                guest = tap_attach("eth0"); /* made in the guest's namespace, gone with the copier */
                if (guest < 0)
                        _exit(1);
                ok = 1;
                (void)!write(ready[1], &ok, 1);
                close(ready[1]);
                wire_loop(host, guest);
        }
        close(ready[1]);
        if (read(ready[0], &ok, 1) != 1)
                ok = 0;
        close(ready[0]);
        if (!ok) {
                (void)waitpid(pid, NULL, 0);
                ck_abort_msg("cannot wire a guest in %s to %s", netns, tap);
        }
        return pid;
}

void guest_wire_stop(pid_t pid)
{
        if (pid <= 0)
                return;
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
}

/* ---- real QEMU: the test guest and a private libvirtd ---- */

int harness_run_script(char *out, size_t size, const char *script, const char *arg1, const char *arg2)
{
        const char *src = getenv("NOVA_SRC") ? getenv("NOVA_SRC") : ".";
        char path[PATH_MAX];
        int pipefd[2], status, r;
        size_t len = 0;
        ssize_t k;
        pid_t pid;

        if (!out || size == 0)
                return -EINVAL;
        r = xsnprintf(path, sizeof(path), "%s/scripts/%s", src, script);
        if (r < 0)
                return r;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                (void)dup2(pipefd[1], STDOUT_FILENO);
                execlp("bash", "bash", path, arg1, arg1 ? arg2 : NULL, (char *)NULL);
                _exit(127);
        }
        close(pipefd[1]);
        while ((k = read(pipefd[0], out + len, size - 1 - len)) > 0) {
                len += (size_t)k;
                if (len + 1 == size) { /* full: drain the rest, keep what fits */
                        char sink[512];
                        while (read(pipefd[0], sink, sizeof(sink)) > 0)
                                ;
                        break;
                }
        }
        close(pipefd[0]);
        out[len] = '\0';
        while (len > 0 && out[len - 1] == '\n')
                out[--len] = '\0';
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int test_guest_dir(char *ret_dir, size_t size)
{
        return harness_run_script(ret_dir, size, "guest/build-test-guest.sh", NULL, NULL);
}

int libvirtd_private_start(const char *dir, char *ret_uri, size_t size)
{
        if (!dir || dir[0] != '/')
                return -EINVAL;
        /* the script stops what it started when libvirtd does not answer */
        return harness_run_script(ret_uri, size, "libvirtd-private.sh", "start", dir);
}

/* Errors of the clean-up below are expected (a domain already gone): not printed. */
static void libvirt_quiet(void *userdata, virErrorPtr err)
{
        (void)userdata;
        (void)err;
}

void libvirtd_private_stop(const char *dir, const char *uri)
{
        char out[256];

        if (!dir || !dir[0])
                return;
        if (uri && uri[0]) {
                virConnectPtr conn;

                virSetErrorFunc(NULL, libvirt_quiet);
                conn = virConnectOpen(uri);
                if (conn) {
                        virDomainPtr *doms = NULL;
                        int n = virConnectListAllDomains(conn, &doms, 0);

                        for (int i = 0; i < n; i++) {
                                (void)virDomainDestroy(doms[i]);
                                (void)virDomainUndefine(doms[i]);
                                virDomainFree(doms[i]);
                        }
                        free(doms);
                        virConnectClose(conn);
                }
        }
        (void)harness_run_script(out, sizeof(out), "libvirtd-private.sh", "stop", dir);
}
