/* test-openvswitch-module.c - the real nova-openvswitch module against a
 * private ovsdb-server and ovs-vswitchd (userspace datapath) in a private
 * network namespace, driven over a raw socketpair as the core would drive it.
 * Every effect is checked from outside the module: OVS state with ovs-vsctl
 * and ovsdb-tool, privileges in /proc/<pid>/status. */
#include "harness.h"
#include "tmpdir.h"

#include "names.h"
#include "ovs-protocol.h"
#include "proto.h"

#include <check.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define TIMEOUT_MS 20000 /* for one reply or event */
#define BATCH 50

static struct ovs_fixture ovs;

/* ---- the fixture: one ovsdb-server + ovs-vswitchd for the whole suite ---- */

static void ovs_setup(void)
{
        ck_assert_int_eq(ovs_fixture_start(&ovs), 0);
        ck_assert_int_eq(ovs_fixture_add_bridge(&ovs, "br-int"), 0);
}

static void ovs_teardown(void) { ovs_fixture_stop(&ovs); }

/* ---- taps: the module does not create them (network-control does) ---- */

static void tap_persist(const char *name, bool persist)
{
        struct ifreq ifr = { 0 };
        _cleanup_close_ int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
        ck_assert_int_eq(strscpy(ifr.ifr_name, name, sizeof(ifr.ifr_name)), 0);
        ck_assert_msg(ioctl(fd, TUNSETIFF, &ifr) == 0, "TUNSETIFF %s: %s", name, strerror(errno));
        ck_assert_msg(ioctl(fd, TUNSETPERSIST, persist ? 1 : 0) == 0, "TUNSETPERSIST %s: %s", name, strerror(errno));
}

static void tap_make(const char *name) { tap_persist(name, true); }
static void tap_remove(const char *name) { tap_persist(name, false); }

/* ---- OVS facts through ovs-vsctl ---- */

static char *vsctl_out(const char *a1, const char *a2, const char *a3, const char *a4)
{
        char *out = NULL;

        ck_assert_int_eq(ovs_vsctl(&ovs, &out, a1, a2, a3, a4, (char *)NULL), 0);
        return out;
}

/* Whether name is a line of `ovs-vsctl list-ports bridge`. */
static bool bridge_has_port(const char *bridge, const char *name)
{
        _cleanup_free_ char *out = NULL;
        bool found = false;

        ck_assert_int_eq(ovs_vsctl(&ovs, &out, "list-ports", bridge, (char *)NULL), 0);
        for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (streq(line, name))
                        found = true;
        return found;
}

static int bridge_port_count(const char *bridge)
{
        _cleanup_free_ char *out = NULL;
        int n = 0;

        ck_assert_int_eq(ovs_vsctl(&ovs, &out, "list-ports", bridge, (char *)NULL), 0);
        for (char *p = out; *p; p++)
                n += *p == '\n';
        return out[0] ? n + 1 : 0;
}

static bool interface_exists(const char *name)
{
        _cleanup_free_ char *out = NULL;
        char cond[64];

        (void)snprintf(cond, sizeof(cond), "name=%s", name);
        ck_assert_int_eq(ovs_vsctl(&ovs, &out, "--bare", "--columns=name", "find", "Interface", cond, (char *)NULL), 0);
        return out[0] != '\0';
}

/* Run argv (from PATH, with the sbin directories) with its stdout in the file out; it must exit 0. */
static void run_to_file(char *const argv[], const char *out)
{
        int status, fd;
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
                        _exit(126);
                (void)setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
                execvp(argv[0], argv);
                _exit(127);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s failed (status %d)", argv[0], status);
}

/* ---- the module on a raw socketpair ---- */

struct mod {
        pid_t pid;
        int fd;
        struct proto_msg *msg;
        struct proto_writer *w;
        char dir[PATH_MAX];       /* config and log */
        char log[PATH_MAX];
        bool events[64];          /* "connected" of each ovsdb_connection event, in order */
        size_t n_events, seen;    /* received, consumed by mod_wait_event */
        uint32_t next_id;
};

/* Receive one frame into m->msg within timeout_ms: 1, 0 on timeout, -1 when the module hung up. */
static int mod_recv(struct mod *m, int timeout_ms)
{
        uint8_t buf[PROTO_MAX_FRAME];
        struct pollfd p = { .fd = m->fd, .events = POLLIN };
        char err[256];
        ssize_t n;

        if (poll(&p, 1, timeout_ms) == 0)
                return 0;
        n = recv(m->fd, buf, sizeof(buf), 0);
        if (n <= 0)
                return -1;
        ck_assert_msg(proto_decode(buf, (size_t)n, m->msg, err, sizeof(err)) == 0, "bad frame: %s", err);
        if (m->msg->type == PROTO_EVENT) {
                ck_assert_str_eq(m->msg->name, "ovsdb_connection");
                ck_assert(strstr(proto_get_str(m->msg->body, "socket", ""), ovs.db_sock));
                ck_assert_uint_lt(m->n_events, ARRAY_SIZE(m->events));
                m->events[m->n_events++] = proto_get_bool(m->msg->body, "connected", false);
        }
        return 1;
}

/* Wait for the next ovsdb_connection event; true when it says `connected`. */
static bool mod_wait_event(struct mod *m, bool connected, int timeout_ms)
{
        uint64_t until = now_usec() + (uint64_t)timeout_ms * 1000;

        for (;;) {
                while (m->seen < m->n_events)
                        if (m->events[m->seen++] == connected)
                                return true;
                if (now_usec() >= until)
                        return false;
                if (mod_recv(m, (int)((until - now_usec()) / 1000) + 1) < 0)
                        return false;
        }
}

static void mod_start(struct mod *m, const char *bridge, const char *extra_config)
{
        char conf[PATH_MAX], text[1024];

        memset(m, 0, sizeof(*m));
        if (ovs.vswitchd_pid > 0)
                (void)kill(ovs.vswitchd_pid, SIGCONT); /* in case a failed test left it frozen */
        /* removed at the test's successful exit too (tmpdir.h), as a test that ends
         * without mod_stop left it; KEEP_LOGS=1 keeps it as NOVA_IT_KEEP=1 does */
        if (getenv("KEEP_LOGS")) {
                ck_assert_int_eq(xsnprintf(m->dir, sizeof(m->dir), "/tmp/nova-it-ovsmod-XXXXXX"), 0);
                ck_assert_ptr_nonnull(mkdtemp(m->dir));
        } else
                ck_assert_int_eq(test_tmpdir_make("nova-it-ovsmod", m->dir, sizeof(m->dir)), 0);
        ck_assert_int_eq(xsnprintf(conf, sizeof(conf), "%s/module.conf", m->dir), 0);
        ck_assert_int_eq(xsnprintf(m->log, sizeof(m->log), "%s/module.log", m->dir), 0);
        ck_assert_int_eq(xsnprintf(text, sizeof(text), "ovsdb_socket = unix:%s\nintegration_bridge = %s\n%s",
                                   ovs.db_sock, bridge, extra_config ? extra_config : "port_timeout_ms = 5000\n"),
                         0);
        ck_assert_int_eq(write_file_atomic(conf, text, strlen(text), 0600), 0);
        m->pid = module_exec("nova-openvswitch", conf, m->log, &m->fd);
        m->msg = malloc(sizeof(*m->msg));
        m->w = malloc(sizeof(*m->w));
        ck_assert(m->msg && m->w);
        ck_assert_int_eq(mod_recv(m, TIMEOUT_MS), 1);
        ck_assert_int_eq(m->msg->type, PROTO_HELLO);
        ck_assert_str_eq(m->msg->name, "openvswitch");
        ck_assert_uint_eq(proto_get(m->msg->body, "entrypoints")->count, _OVS_MAX);
        ck_assert_uint_eq(proto_get_u64(m->msg->body, "caps_effective", 1), 0);
        ck_assert(proto_get_bool(m->msg->body, "no_new_privs", false));
}

/* Close the core's end: the module exits cleanly. */
static void mod_stop(struct mod *m)
{
        char path[PATH_MAX];
        int status;

        close(m->fd);
        ck_assert_int_eq(waitpid(m->pid, &status, 0), m->pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "module exit status %d; see %s", status, m->log);
        free(m->msg);
        free(m->w);
        /* The log stays when the test fails before this, or with KEEP_LOGS=1. */
        if (getenv("KEEP_LOGS"))
                return;
        if (xsnprintf(path, sizeof(path), "%s/module.conf", m->dir) == 0)
                (void)unlink(path);
        (void)unlink(m->log);
        (void)rmdir(m->dir);
}

/* Send the request in m->w without waiting; its id. */
static uint32_t mod_send(struct mod *m)
{
        const uint8_t *frame;
        uint32_t id = ++m->next_id;
        size_t len;

        pw_set_id(m->w, id);
        ck_assert_int_eq(pw_finish(m->w, &frame, &len), 0);
        ck_assert_int_eq(send(m->fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
        return id;
}

/* The next reply (in m->msg), whatever its id; events are collected on the way. Its status. */
static int mod_next_reply(struct mod *m)
{
        uint64_t until = now_usec() + (uint64_t)TIMEOUT_MS * 1000;

        for (;;) {
                ck_assert_msg(now_usec() < until, "no reply within %d ms; see %s", TIMEOUT_MS, m->log);
                int r = mod_recv(m, (int)((until - now_usec()) / 1000) + 1);
                ck_assert_msg(r >= 0, "the module hung up; see %s", m->log);
                if (r == 1 && m->msg->type == PROTO_REPLY)
                        return m->msg->status;
        }
}

/* Send the request in m->w; return the reply's status (reply in m->msg). */
/* As the core does: a request its schema check refuses is never sent (one that
 * reached the module would end it: test_schema_violation_ends_module). */
static int mod_call(struct mod *m)
{
        int verdict = core_request_check(&ovs_protocol, m->w, NULL, 0);
        if (verdict < 0)
                return verdict;

        uint32_t id = mod_send(m);
        int status = mod_next_reply(m);

        ck_assert_uint_eq(m->msg->id, id);
        return status;
}

static const char *reply_error(const struct mod *m) { return proto_get_str(m->msg->body, "error", ""); }

static void port_fields(struct proto_writer *w, const char *port_uuid, const char *instance_uuid, const char *mac,
                        unsigned mtu)
{
        pw_str(w, "port_uuid", port_uuid);
        pw_str(w, "instance_uuid", instance_uuid);
        pw_str(w, "mac", mac);
        pw_u64(w, "mtu", mtu);
}

static int port_add(struct mod *m, const char *port_uuid, const char *instance_uuid, const char *mac, unsigned mtu)
{
        pw_init(m->w, PROTO_REQUEST, 0, 0, "port_add");
        port_fields(m->w, port_uuid, instance_uuid, mac, mtu);
        return mod_call(m);
}

static int port_op(struct mod *m, const char *entrypoint, const char *port_uuid)
{
        pw_init(m->w, PROTO_REQUEST, 0, 0, entrypoint);
        pw_str(m->w, "port_uuid", port_uuid);
        return mod_call(m);
}

static int64_t reply_ofport(const struct mod *m)
{
        const struct proto_value *v = proto_get(proto_get(m->msg->body, "port"), "ofport");

        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(v->type, PV_I64);
        return v->v.i;
}

static void mod_ready(struct mod *m)
{
        ck_assert_msg(mod_wait_event(m, true, TIMEOUT_MS), "no ovsdb_connection connected:true; see %s", m->log);
}

/* ---- tests ---- */

START_TEST(test_privileges_from_the_kernel)
{
        struct proc_security sec;
        struct mod m;

        mod_start(&m, "br-int", NULL);
        /* Sent before the module has connected to ovsdb-server: it waits for the replica. */
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_list");
        ck_assert_int_eq(mod_call(&m), 0);
        ck_assert_ptr_nonnull(proto_get(m.msg->body, "ports"));
        mod_ready(&m);
        ck_assert_int_eq(proc_security_read(m.pid, &sec), 0);
        ck_assert_uint_eq(sec.cap_eff, 0);
        ck_assert_uint_eq(sec.cap_prm, 0);
        ck_assert_uint_eq(sec.cap_amb, 0);
        ck_assert(sec.no_new_privs);
        mod_stop(&m);
}
END_TEST

START_TEST(test_port_lifecycle_seen_by_ovs)
{
        char uuid[37], inst[37], tap[IFNAME_MAX], want[512], audit[256], status_path[64];
        const struct proto_value *port, *list;
        _cleanup_free_ char *ids = NULL, *mtu = NULL, *pids = NULL, *status = NULL;
        int64_t ofport;
        uint64_t t0;
        struct mod m;

        random_port_uuid(uuid);
        random_port_uuid(inst);
        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        tap_make(tap);
        /* A foreign port on the same bridge: never listed, never touched. */
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "add-port", "br-int", "foreign0", "--", "set", "Interface", "foreign0",
                                   "type=internal", (char *)NULL),
                         0);

        /* Debug logging: the module logs how long ovs-vswitchd took to assign the ofport. */
        mod_start(&m, "br-int", "port_timeout_ms = 5000\nlog_level = debug\n");
        mod_ready(&m);
        t0 = now_usec();
        ck_assert_msg(port_add(&m, uuid, inst, "fa:16:3e:12:34:56", 1450) == 0, "port_add: %s", reply_error(&m));
        fprintf(stderr, "test-openvswitch-module: port_add round trip (commit + ofport) %.1f ms\n",
                (double)(now_usec() - t0) / 1000.0);
        port = proto_get(m.msg->body, "port");
        ck_assert_ptr_nonnull(port);
        ofport = reply_ofport(&m);
        ck_assert_int_gt(ofport, 0);
        ck_assert_str_eq(proto_get_str(port, "port_uuid", ""), uuid);
        ck_assert_str_eq(proto_get_str(port, "instance_uuid", ""), inst);
        ck_assert_str_eq(proto_get_str(port, "name", ""), tap);
        ck_assert_str_eq(proto_get_str(port, "bridge", ""), "br-int");
        ck_assert_str_eq(proto_get_str(port, "mac", ""), "fa:16:3e:12:34:56");
        ck_assert_uint_eq(proto_get_u64(port, "mtu", 0), 1450);
        ck_assert_str_eq(proto_get_str(port, "iface_status", ""), "active");
        ck_assert_ptr_null(proto_get(port, "error"));

        /* OVS's own view: exactly our external_ids, the MTU request, the mark on the Port. */
        ids = vsctl_out("get", "Interface", tap, "external_ids");
        (void)snprintf(want, sizeof(want),
                       "{attached-mac=\"fa:16:3e:12:34:56\", iface-id=\"%s\", iface-status=active, "
                       "nova-hypervisor-port=\"%s\", vm-id=\"%s\", vm-uuid=\"%s\"}",
                       uuid, uuid, inst, inst);
        ck_assert_str_eq(ids, want);
        mtu = vsctl_out("get", "Interface", tap, "mtu_request");
        ck_assert_str_eq(mtu, "1450");
        pids = vsctl_out("get", "Port", tap, "external_ids");
        (void)snprintf(want, sizeof(want), "{nova-hypervisor-port=\"%s\"}", uuid);
        ck_assert_str_eq(pids, want);
        ck_assert(bridge_has_port("br-int", tap));

        ck_assert_int_eq(port_op(&m, "port_get", uuid), 0);
        ck_assert_int_eq(reply_ofport(&m), ofport);

        /* Only ours, by the mark: the foreign port is not listed. */
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_list");
        ck_assert_int_eq(mod_call(&m), 0);
        list = proto_get(m.msg->body, "ports");
        ck_assert_uint_eq(list->count, 1);
        ck_assert_uint_eq(proto_get_u64(m.msg->body, "total", 0), 1);
        ck_assert(!proto_get_bool(m.msg->body, "truncated", true));
        ck_assert_str_eq(proto_get_str(list->child, "port_uuid", ""), uuid);
        ck_assert(bridge_has_port("br-int", "foreign0"));

        /* Idempotent: the same request again changes nothing; a new MAC/MTU converges in place. */
        int before = bridge_port_count("br-int");
        ck_assert_int_eq(port_add(&m, uuid, inst, "fa:16:3e:12:34:56", 1450), 0);
        ck_assert_int_eq(reply_ofport(&m), ofport);
        ck_assert_int_eq(port_add(&m, uuid, inst, "fa:16:3e:12:34:57", 1400), 0);
        ck_assert_int_eq(reply_ofport(&m), ofport);
        ck_assert_int_eq(bridge_port_count("br-int"), before);
        free(mtu);
        mtu = vsctl_out("get", "Interface", tap, "mtu_request");
        ck_assert_str_eq(mtu, "1400");
        free(ids);
        ids = vsctl_out("get", "Interface", tap, "external_ids:attached-mac");
        ck_assert_str_eq(ids, "\"fa:16:3e:12:34:57\"");

        /* The module's memory while it holds a replica of this switch. */
        (void)snprintf(status_path, sizeof(status_path), "/proc/%d/status", (int)m.pid);
        ck_assert_int_eq(read_file_bounded(status_path, 65536, &status, NULL), 0);
        char *rss = strstr(status, "VmRSS:");
        ck_assert_ptr_nonnull(rss);
        rss[strcspn(rss, "\n")] = '\0';
        fprintf(stderr, "test-openvswitch-module: module %s\n", rss);

        /* port_del removes it (Port and Interface); a second one finds nothing. */
        ck_assert_int_eq(port_op(&m, "port_del", uuid), 0);
        ck_assert(!bridge_has_port("br-int", tap));
        ck_assert(!interface_exists(tap));
        ck_assert_int_eq(port_op(&m, "port_get", uuid), -ENOENT);
        ck_assert_int_eq(port_op(&m, "port_del", uuid), -ENOENT);
        ck_assert(bridge_has_port("br-int", "foreign0"));

        (void)snprintf(audit, sizeof(audit), "audit: port_add port_uuid=%s instance_uuid=%s mac=fa:16:3e:12:34:56 mtu=1450 port=%s bridge=br-int result=ok",
                       uuid, inst, tap);
        ck_assert_msg(file_contains(m.log, audit), "missing audit line: %s", audit);
        (void)snprintf(audit, sizeof(audit), "audit: port_del port_uuid=%s port=%s bridge=br-int result=ok", uuid, tap);
        ck_assert_msg(file_contains(m.log, audit), "missing audit line: %s", audit);
        _cleanup_free_ char *log = NULL;
        ck_assert_int_eq(read_file_bounded(m.log, 1024 * 1024, &log, NULL), 0);
        char *timing = strstr(log, "ofport assigned");
        ck_assert_ptr_nonnull(timing);
        timing[strcspn(timing, "\n")] = '\0';
        fprintf(stderr, "test-openvswitch-module: first port_add: %s\n", timing);
        mod_stop(&m);
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "del-port", "br-int", "foreign0", (char *)NULL), 0);
        tap_remove(tap);
}
END_TEST

START_TEST(test_missing_tap_is_enodev_and_leaves_nothing)
{
        char uuid[37], inst[37], tap[IFNAME_MAX];
        struct mod m;
        int before;

        random_port_uuid(uuid);
        random_port_uuid(inst);
        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        mod_start(&m, "br-int", NULL);
        mod_ready(&m);
        before = bridge_port_count("br-int");
        ck_assert_int_eq(port_add(&m, uuid, inst, "fa:16:3e:00:00:01", 1500), -ENODEV);
        /* ovs-vswitchd's own words reach the caller. */
        ck_assert_msg(strstr(reply_error(&m), "could not open network device") &&
                              strstr(reply_error(&m), "No such device") && strstr(reply_error(&m), tap),
                      "error: %s", reply_error(&m));
        ck_assert(!bridge_has_port("br-int", tap));
        ck_assert(!interface_exists(tap));
        ck_assert_int_eq(bridge_port_count("br-int"), before);
        ck_assert_int_eq(port_op(&m, "port_get", uuid), -ENOENT);

        /* All or nothing: one missing tap in a batch leaves none of the batch behind. */
        char others[2][37], other_taps[2][IFNAME_MAX];
        for (int i = 0; i < 2; i++) {
                random_port_uuid(others[i]);
                ck_assert_int_eq(tap_name_from_port(others[i], other_taps[i]), 0);
                tap_make(other_taps[i]);
        }
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_add_many");
        pw_list_begin(m.w, "ports");
        const char *batch[3] = { others[0], uuid, others[1] };
        for (int i = 0; i < 3; i++) {
                pw_obj_begin(m.w, NULL);
                port_fields(m.w, batch[i], inst, "fa:16:3e:00:00:01", 1500);
                pw_obj_end(m.w);
        }
        pw_list_end(m.w);
        ck_assert_int_eq(mod_call(&m), -ENODEV);
        ck_assert_msg(strstr(reply_error(&m), tap), "error: %s", reply_error(&m));
        ck_assert_int_eq(bridge_port_count("br-int"), before);
        for (int i = 0; i < 2; i++) {
                ck_assert(!interface_exists(other_taps[i]));
                tap_remove(other_taps[i]);
        }
        mod_stop(&m);
}
END_TEST

/* ovs-vswitchd frozen: the port gets no ofport; the call times out and takes its port back.
 * Meanwhile another request for the same port is refused, others proceed. */
START_TEST(test_timeout_undoes_and_busy)
{
        char uuid[37], inst[37], tap[IFNAME_MAX];
        uint32_t id;
        uint64_t t0;
        struct mod m;

        random_port_uuid(uuid);
        random_port_uuid(inst);
        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        tap_make(tap);
        mod_start(&m, "br-int", "port_timeout_ms = 1000\n");
        mod_ready(&m);
        ck_assert_int_gt(ovs.vswitchd_pid, 0);
        ck_assert_int_eq(kill(ovs.vswitchd_pid, SIGSTOP), 0);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_add");
        port_fields(m.w, uuid, inst, "fa:16:3e:00:00:07", 1500);
        t0 = now_usec();
        id = mod_send(&m);
        ck_assert_int_eq(port_add(&m, uuid, inst, "fa:16:3e:00:00:07", 1500), -EBUSY);
        ck_assert_int_eq(port_op(&m, "port_del", uuid), -EBUSY);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_list");
        ck_assert_int_eq(mod_call(&m), 0);
        ck_assert_int_eq(mod_next_reply(&m), -ETIMEDOUT);
        ck_assert_uint_eq(m.msg->id, id);
        ck_assert_uint_ge(now_usec() - t0, 1000000);
        ck_assert_msg(strstr(reply_error(&m), "port_timeout_ms"), "error: %s", reply_error(&m));
        ck_assert(!bridge_has_port("br-int", tap));
        ck_assert(!interface_exists(tap));
        ck_assert_int_eq(kill(ovs.vswitchd_pid, SIGCONT), 0);
        ck_assert_msg(port_add(&m, uuid, inst, "fa:16:3e:00:00:07", 1500) == 0, "port_add: %s", reply_error(&m));
        ck_assert_int_gt(reply_ofport(&m), 0);
        ck_assert_int_eq(port_op(&m, "port_del", uuid), 0);
        mod_stop(&m);
        tap_remove(tap);
}
END_TEST

/* A request whose id is still in flight (port_add waits for a frozen
 * ovs-vswitchd) is a protocol violation: the module logs it, hangs up and
 * exits 1 without executing it. */
START_TEST(test_inflight_id_reused_is_a_violation)
{
        char uuid[37], inst[37], tap[IFNAME_MAX];
        uint32_t id;
        struct mod m;
        int status;

        random_port_uuid(uuid);
        random_port_uuid(inst);
        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        tap_make(tap);
        mod_start(&m, "br-int", "port_timeout_ms = 10000\n");
        mod_ready(&m);
        ck_assert_int_eq(kill(ovs.vswitchd_pid, SIGSTOP), 0);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_add");
        port_fields(m.w, uuid, inst, "fa:16:3e:00:00:08", 1500);
        id = mod_send(&m);
        /* the same id again while the first waits for its ofport */
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_del");
        pw_str(m.w, "port_uuid", uuid);
        m.next_id = id - 1;
        ck_assert_uint_eq(mod_send(&m), id);
        for (;;) {
                int r = mod_recv(&m, TIMEOUT_MS);
                ck_assert_msg(r != 0, "the module did not hang up; see %s", m.log);
                if (r < 0)
                        break;
                ck_assert_msg(m.msg->type != PROTO_REPLY, "answered request %u: %d", m.msg->id, m.msg->status);
        }
        ck_assert_int_eq(waitpid(m.pid, &status, 0), m.pid);
        ck_assert_int_eq(kill(ovs.vswitchd_pid, SIGCONT), 0);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "exit status %d", status);
        ck_assert_msg(file_contains(m.log, "protocol violation: request id"), "see %s", m.log);
        char want[96];
        (void)snprintf(want, sizeof(want), "request id %u is still in flight", id);
        ck_assert_msg(file_contains(m.log, want), "see %s", m.log);
        (void)ovs_vsctl(&ovs, NULL, "--if-exists", "del-port", "br-int", tap, (char *)NULL);
        close(m.fd);
        free(m.msg);
        free(m.w);
        tap_remove(tap);
}
END_TEST

/* Several transactions in flight at once, answered independently. */
START_TEST(test_concurrent_requests)
{
        char uuids[5][37], taps[5][IFNAME_MAX], inst[37];
        bool answered[5] = { false };
        uint32_t first = 0;
        struct mod m;

        random_port_uuid(inst);
        mod_start(&m, "br-int", NULL);
        mod_ready(&m);
        for (int i = 0; i < 5; i++) {
                random_port_uuid(uuids[i]);
                ck_assert_int_eq(tap_name_from_port(uuids[i], taps[i]), 0);
                tap_make(taps[i]);
                pw_init(m.w, PROTO_REQUEST, 0, 0, "port_add");
                port_fields(m.w, uuids[i], inst, "fa:16:3e:00:00:08", 1500);
                uint32_t id = mod_send(&m);
                if (i == 0)
                        first = id;
        }
        for (int i = 0; i < 5; i++) {
                ck_assert_int_eq(mod_next_reply(&m), 0);
                uint32_t k = m.msg->id - first;
                ck_assert_uint_lt(k, 5);
                ck_assert(!answered[k]);
                answered[k] = true;
                ck_assert_str_eq(proto_get_str(proto_get(m.msg->body, "port"), "name", ""), taps[k]);
                ck_assert_int_gt(reply_ofport(&m), 0);
        }
        for (int i = 0; i < 5; i++) {
                ck_assert_int_eq(port_op(&m, "port_del", uuids[i]), 0);
                tap_remove(taps[i]);
        }

        /* A batch larger than OVS_MAX_BATCH (sized so its reply fits one frame)
         * is refused by the schema, before anything is done. */
        int before = bridge_port_count("br-int");
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_add_many");
        pw_list_begin(m.w, "ports");
        for (int i = 0; i < OVS_MAX_BATCH + 1; i++) {
                char u[37];
                (void)snprintf(u, sizeof(u), "%08x-0000-4000-8000-000000000000", 0x20000000 + i);
                pw_obj_begin(m.w, NULL);
                port_fields(m.w, u, inst, "fa:16:3e:00:00:09", 1500);
                pw_obj_end(m.w);
        }
        pw_list_end(m.w);
        ck_assert_int_eq(mod_call(&m), -EINVAL);
        ck_assert_int_eq(bridge_port_count("br-int"), before);
        mod_stop(&m);
}
END_TEST

START_TEST(test_add_many_in_one_transaction)
{
        char uuids[BATCH][37], taps[BATCH][IFNAME_MAX], inst[37], cmd[PATH_MAX], out[PATH_MAX], comment[128], mac[18];
        const struct proto_value *list;
        int64_t ofports[BATCH];
        _cleanup_free_ char *log = NULL;
        uint64_t t0;
        struct mod m;
        size_t k = 0;

        random_port_uuid(inst);
        for (int i = 0; i < BATCH; i++) {
                random_port_uuid(uuids[i]);
                ck_assert_int_eq(tap_name_from_port(uuids[i], taps[i]), 0);
                tap_make(taps[i]);
        }
        mod_start(&m, "br-int", NULL);
        mod_ready(&m);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_add_many");
        pw_list_begin(m.w, "ports");
        for (int i = 0; i < BATCH; i++) {
                pw_obj_begin(m.w, NULL);
                (void)snprintf(mac, sizeof(mac), "fa:16:3e:00:01:%02x", i);
                port_fields(m.w, uuids[i], inst, mac, 1500);
                pw_obj_end(m.w);
        }
        pw_list_end(m.w);
        t0 = now_usec();
        ck_assert_msg(mod_call(&m) == 0, "port_add_many: %s", reply_error(&m));
        fprintf(stderr, "test-openvswitch-module: port_add_many of %d round trip %.1f ms\n", BATCH,
                (double)(now_usec() - t0) / 1000.0);
        list = proto_get(m.msg->body, "ports");
        ck_assert_ptr_nonnull(list);
        ck_assert_uint_eq(list->count, BATCH);
        for (const struct proto_value *p = list->child; p; p = p->next, k++) {
                const struct proto_value *of = proto_get(p, "ofport");
                ck_assert_str_eq(proto_get_str(p, "port_uuid", ""), uuids[k]);
                ck_assert_ptr_nonnull(of);
                ck_assert_int_gt(of->v.i, 0);
                ofports[k] = of->v.i;
                for (size_t j = 0; j < k; j++)
                        ck_assert_int_ne(ofports[j], ofports[k]);
                ck_assert(bridge_has_port("br-int", taps[k]));
        }

        /* port_list in pages of 7: ascending port UUIDs, each of the batch once, the cursor in "next". */
        {
                char after[37] = "";
                unsigned found = 0, pages = 0;
                for (;;) {
                        const struct proto_value *l;
                        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_list");
                        if (after[0])
                                pw_str(m.w, "after", after);
                        pw_u64(m.w, "limit", 7);
                        ck_assert_int_eq(mod_call(&m), 0);
                        l = proto_get(m.msg->body, "ports");
                        ck_assert_uint_le(l->count, 7);
                        for (const struct proto_value *p = l->child; p; p = p->next) {
                                const char *u = proto_get_str(p, "port_uuid", "");
                                ck_assert_msg(strcmp(u, after) > 0, "%s listed after %s", u, after);
                                (void)strscpy(after, u, sizeof(after));
                                for (int i = 0; i < BATCH; i++)
                                        found += streq(u, uuids[i]);
                        }
                        pages++;
                        if (!proto_get_bool(m.msg->body, "truncated", true))
                                break;
                        ck_assert_uint_eq(l->count, 7);
                        ck_assert_str_eq(proto_get_str(m.msg->body, "next", ""), after);
                        ck_assert_uint_lt(pages, 100);
                }
                ck_assert_uint_eq(found, BATCH);
                ck_assert_uint_ge(pages, (BATCH + 6) / 7);
        }

        /* One transaction: the database log has one record with our comment that inserts all 50 Ports. */
        ck_assert_int_eq(xsnprintf(cmd, sizeof(cmd), "%s/conf.db", ovs.dir), 0);
        ck_assert_int_eq(xsnprintf(out, sizeof(out), "%s/showlog.txt", ovs.dir), 0);
        run_to_file((char *const[]){ "ovsdb-tool", "show-log", "-m", cmd, NULL }, out);
        ck_assert_int_eq(read_file_bounded(out, 64 * 1024 * 1024, &log, NULL), 0);
        (void)unlink(out);
        (void)snprintf(comment, sizeof(comment), "\"nova-hypervisor: port_add_many %s +%d\"", taps[0], BATCH - 1);
        char *rec = strstr(log, comment);
        ck_assert_ptr_nonnull(rec);
        ck_assert_ptr_null(strstr(rec + 1, comment));
        char *end = strstr(rec, "\nrecord ");
        if (end)
                *end = '\0';
        for (int i = 0; i < BATCH; i++) {
                char row[96];
                (void)snprintf(row, sizeof(row), "table Port insert row \"%.15s\"", taps[i]);
                ck_assert_msg(strstr(rec, row), "%s not inserted by the batch's transaction", taps[i]);
        }
        for (int i = 0; i < BATCH; i++) {
                ck_assert_int_eq(port_op(&m, "port_del", uuids[i]), 0);
                tap_remove(taps[i]);
        }
        ck_assert(!bridge_has_port("br-int", taps[0]));
        mod_stop(&m);
}
END_TEST

START_TEST(test_refusals_change_nothing)
{
        static const char *const bad_uuids[] = { "../../etc/passwd", "/sys/class/net/eth0", "eth0", "tap0123abcd-ef",
                                                 "0123ABCD-EF01-4234-8678-9ABCDEF01234" };
        static const char *const bad_macs[] = { "ff:ff:ff:ff:ff:ff", "fa:16:3e:12:34", "00:00:00:00:00:00",
                                                "FA:16:3E:12:34:56" };
        char uuid[37], inst[37], tap[IFNAME_MAX];
        _cleanup_free_ char *before = NULL, *after = NULL;
        struct mod m;
        int r;

        random_port_uuid(uuid);
        random_port_uuid(inst);
        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        mod_start(&m, "br-int", NULL);
        mod_ready(&m);
        before = vsctl_out("list-ports", "br-int", NULL, NULL);

        /* A bridge is never taken from a request. */
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_add");
        port_fields(m.w, uuid, inst, "fa:16:3e:00:00:02", 1500);
        pw_str(m.w, "bridge", "br-ex");
        ck_assert_int_eq(mod_call(&m), -EINVAL);
        for (size_t i = 0; i < ARRAY_SIZE(bad_macs); i++)
                ck_assert_int_eq(port_add(&m, uuid, inst, bad_macs[i], 1500), -EINVAL);
        for (size_t i = 0; i < ARRAY_SIZE(bad_uuids); i++) {
                ck_assert_int_eq(port_add(&m, bad_uuids[i], inst, "fa:16:3e:00:00:02", 1500), -EINVAL);
                ck_assert_int_eq(port_op(&m, "port_del", bad_uuids[i]), -EINVAL);
                ck_assert_int_eq(port_op(&m, "port_get", bad_uuids[i]), -EINVAL);
        }
        ck_assert_int_eq(port_add(&m, uuid, inst, "fa:16:3e:00:00:02", 67), -EINVAL);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_del");
        pw_str(m.w, "name", "foreign0");
        ck_assert_int_eq(mod_call(&m), -EINVAL);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "bridge_del");
        ck_assert_int_eq(mod_call(&m), -ENOSYS);
        /* The same port twice in one batch. */
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_add_many");
        pw_list_begin(m.w, "ports");
        for (int i = 0; i < 2; i++) {
                pw_obj_begin(m.w, NULL);
                port_fields(m.w, uuid, inst, "fa:16:3e:00:00:02", 1500);
                pw_obj_end(m.w);
        }
        pw_list_end(m.w);
        ck_assert_int_eq(mod_call(&m), -EINVAL);
        after = vsctl_out("list-ports", "br-int", NULL, NULL);
        ck_assert_str_eq(after, before);

        /* A foreign port that carries our derived name but not our mark. */
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "add-port", "br-int", tap, "--", "set", "Interface", tap, "type=internal",
                                   (char *)NULL),
                         0);
        r = port_add(&m, uuid, inst, "fa:16:3e:00:00:02", 1500);
        ck_assert_msg(r == -EEXIST && strstr(reply_error(&m), "without our mark"), "port_add: %d, error: %s", r,
                      reply_error(&m));
        ck_assert_int_eq(port_op(&m, "port_del", uuid), -ENOENT);
        ck_assert_int_eq(port_op(&m, "port_get", uuid), -ENOENT);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_list");
        ck_assert_int_eq(mod_call(&m), 0);
        ck_assert_uint_eq(proto_get_u64(m.msg->body, "total", 1), 0);
        ck_assert(bridge_has_port("br-int", tap));
        free(after);
        after = vsctl_out("get", "Interface", tap, "external_ids");
        ck_assert_str_eq(after, "{}");
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "del-port", "br-int", tap, (char *)NULL), 0);
        mod_stop(&m);
}
END_TEST

/* Issue 20, fate-sharing: a request the core's schema check would have refused
 * (a bridge named in port_add) reaching the module is not answered: the module
 * logs it with the field, hangs up and exits 1; nothing was added. */
START_TEST(test_schema_violation_ends_module)
{
        char uuid[37], inst[37], *before, *after;
        struct mod m;
        int status;

        random_port_uuid(uuid);
        random_port_uuid(inst);
        mod_start(&m, "br-int", NULL);
        mod_ready(&m);
        before = vsctl_out("list-ports", "br-int", NULL, NULL);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_add");
        port_fields(m.w, uuid, inst, "fa:16:3e:00:00:02", 1500);
        pw_str(m.w, "bridge", "br-ex");
        (void)mod_send(&m);
        for (int r; (r = mod_recv(&m, TIMEOUT_MS)) != -1;)
                ck_assert_msg(r == 1 && m.msg->type == PROTO_EVENT, "the module answered (or was silent); see %s", m.log);
        ck_assert_int_eq(waitpid(m.pid, &status, 0), m.pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "exit status %d; see %s", status, m.log);
        ck_assert_msg(file_contains(m.log, "protocol violation: request 1: port_add: bridge"), "see %s", m.log);
        after = vsctl_out("list-ports", "br-int", NULL, NULL);
        ck_assert_str_eq(after, before);
        free(before);
        free(after);
        close(m.fd);
        free(m.msg);
        free(m.w);
}
END_TEST

START_TEST(test_bridge_missing_without_create)
{
        char uuid[37], inst[37];
        struct mod m;

        random_port_uuid(uuid);
        random_port_uuid(inst);
        mod_start(&m, "br-missing", "bridge_create = false\nport_timeout_ms = 3000\n");
        mod_ready(&m);
        ck_assert_int_eq(port_add(&m, uuid, inst, "fa:16:3e:00:00:03", 1500), -ENOENT);
        ck_assert_msg(strstr(reply_error(&m), "br-missing") && strstr(reply_error(&m), "bridge_create") &&
                              strstr(reply_error(&m), "integration_bridge"),
                      "error: %s", reply_error(&m));
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_list");
        ck_assert_int_eq(mod_call(&m), -ENOENT);
        ck_assert(strstr(reply_error(&m), "br-missing"));
        ck_assert_int_ne(ovs_vsctl(&ovs, NULL, "br-exists", "br-missing", (char *)NULL), 0);
        mod_stop(&m);
}
END_TEST

/* port_list's "chassis" (a whole page of the list: nothing else in the reply). */
static const char *listed_chassis(struct mod *m)
{
        pw_init(m->w, PROTO_REQUEST, 0, 0, "port_list");
        ck_assert_msg(mod_call(m) == 0, "port_list: %s", reply_error(m));
        return proto_get(m->msg->body, "chassis") ? proto_get_str(m->msg->body, "chassis", "") : NULL;
}

/* With ovn, port_list names this host's OVN chassis (Open_vSwitch external_ids:system-id, the
 * name ovn-controller registers; a migration's prepare reports it); nothing for an id that is
 * not a valid name, nor without ovn. */
START_TEST(test_port_list_names_the_chassis)
{
        const char *ch = NULL;
        struct mod m;

        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "set", "Open_vSwitch", ".", "external_ids:system-id=chassis-7.test",
                                   (char *)NULL), 0);
        mod_start(&m, "br-int", "ovn = true\nport_timeout_ms = 5000\n");
        mod_ready(&m);
        ch = listed_chassis(&m);
        ck_assert_msg(ch && streq(ch, "chassis-7.test"), "chassis: %s", ch ? ch : "(none)");
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "set", "Open_vSwitch", ".", "external_ids:system-id=\"two words,x\"",
                                   (char *)NULL), 0);
        for (int i = 0; i < 50 && (ch = listed_chassis(&m)) != NULL; i++) /* the replica follows */
                sleep_ms(100);
        ck_assert_msg(ch == NULL, "an invalid system-id reported as chassis '%s'", ch);
        mod_stop(&m);

        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "set", "Open_vSwitch", ".", "external_ids:system-id=chassis-7.test",
                                   (char *)NULL), 0);
        mod_start(&m, "br-int", NULL);
        mod_ready(&m);
        ch = listed_chassis(&m);
        ck_assert_msg(ch == NULL, "without ovn, port_list reported chassis '%s'", ch);
        mod_stop(&m);
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "remove", "Open_vSwitch", ".", "external_ids", "system-id", (char *)NULL), 0);
}
END_TEST

START_TEST(test_bridge_created_with_datapath_type)
{
        char uuid[37], inst[37], tap[IFNAME_MAX];
        _cleanup_free_ char *dp = NULL;
        struct mod m;

        random_port_uuid(uuid);
        random_port_uuid(inst);
        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        tap_make(tap);
        ck_assert_int_ne(ovs_vsctl(&ovs, NULL, "br-exists", "br-auto", (char *)NULL), 0);
        mod_start(&m, "br-auto", "bridge_create = true\nbridge_datapath_type = netdev\nport_timeout_ms = 5000\n");
        mod_ready(&m);
        ck_assert_msg(port_add(&m, uuid, inst, "fa:16:3e:00:00:04", 1500) == 0, "port_add: %s", reply_error(&m));
        ck_assert_int_gt(reply_ofport(&m), 0);
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "br-exists", "br-auto", (char *)NULL), 0);
        dp = vsctl_out("get", "Bridge", "br-auto", "datapath_type");
        ck_assert_str_eq(dp, "netdev");
        ck_assert(bridge_has_port("br-auto", tap));
        ck_assert(!bridge_has_port("br-int", tap));
        ck_assert_int_eq(port_op(&m, "port_del", uuid), 0);
        ck_assert(file_contains(m.log, "created integration bridge br-auto (datapath_type netdev)"));
        mod_stop(&m);
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "del-br", "br-auto", (char *)NULL), 0);
        tap_remove(tap);
}
END_TEST

/* ---- hybrid plugging: the OVS port is the qvo end of a veth pair ---- */

static int port_add_hybrid(struct mod *m, const char *port_uuid, const char *instance_uuid, const char *mac,
                           unsigned mtu, bool hybrid)
{
        pw_init(m->w, PROTO_REQUEST, 0, 0, "port_add");
        port_fields(m->w, port_uuid, instance_uuid, mac, mtu);
        pw_bool(m->w, "hybrid", hybrid);
        return mod_call(m);
}

/* The database log record carrying comment (exactly one), cut before the
 * next record; malloc'd. (noinline: gcc 12 sees a dangling pointer that is not.) */
__attribute__((noinline)) static char *log_record(const char *comment)
{
        char db[PATH_MAX], out[PATH_MAX], quoted[160];
        char *log = NULL;

        ck_assert_int_eq(xsnprintf(db, sizeof(db), "%s/conf.db", ovs.dir), 0);
        ck_assert_int_eq(xsnprintf(out, sizeof(out), "%s/showlog.txt", ovs.dir), 0);
        run_to_file((char *const[]){ "ovsdb-tool", "show-log", "-m", db, NULL }, out);
        ck_assert_int_eq(read_file_bounded(out, 64 * 1024 * 1024, &log, NULL), 0);
        (void)unlink(out);
        (void)snprintf(quoted, sizeof(quoted), "\"%s\"", comment);
        char *rec = strstr(log, quoted);
        ck_assert_msg(rec, "no record with comment %s", quoted);
        ck_assert_ptr_null(strstr(rec + 1, quoted));
        char *end = strstr(rec, "\nrecord ");
        if (end)
                *end = '\0';
        memmove(log, rec, strlen(rec) + 1);
        return log;
}

START_TEST(test_hybrid_port)
{
        char uuid[37], inst[37], tap[IFNAME_MAX], qvb[IFNAME_MAX], qvo[IFNAME_MAX], want[512], comment[96];
        const struct proto_value *port, *list;
        int64_t ofport;
        struct mod m;

        random_port_uuid(uuid);
        random_port_uuid(inst);
        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        ck_assert_int_eq(port_dev_name(QVB_PREFIX, uuid, qvb), 0);
        ck_assert_int_eq(port_dev_name(QVO_PREFIX, uuid, qvo), 0);
        /* What network-control makes for a hybrid port: here the veth pair and the tap. */
        ck_assert_int_eq(sh("ip link add %s type veth peer name %s && ip link set %s up && ip link set %s up", qvo, qvb,
                            qvo, qvb),
                         0);
        tap_make(tap);
        mod_start(&m, "br-int", NULL);
        mod_ready(&m);
        int before = bridge_port_count("br-int");

        /* hybrid: the OVS port is qvo, and it gets an ofport from ovs-vswitchd */
        ck_assert_msg(port_add_hybrid(&m, uuid, inst, "fa:16:3e:00:30:01", 1450, true) == 0, "port_add: %s",
                      reply_error(&m));
        port = proto_get(m.msg->body, "port");
        ck_assert_str_eq(proto_get_str(port, "name", ""), qvo);
        ck_assert_str_eq(proto_get_str(port, "port_uuid", ""), uuid);
        ofport = reply_ofport(&m);
        ck_assert_int_gt(ofport, 0);
        ck_assert(bridge_has_port("br-int", qvo));
        ck_assert(!bridge_has_port("br-int", tap));
        ck_assert_int_eq(bridge_port_count("br-int"), before + 1);
        _cleanup_free_ char *ids = vsctl_out("get", "Interface", qvo, "external_ids");
        (void)snprintf(want, sizeof(want),
                       "{attached-mac=\"fa:16:3e:00:30:01\", iface-id=\"%s\", iface-status=active, "
                       "nova-hypervisor-port=\"%s\", vm-id=\"%s\", vm-uuid=\"%s\"}",
                       uuid, uuid, inst, inst);
        ck_assert_str_eq(ids, want);
        _cleanup_free_ char *ofp = vsctl_out("get", "Interface", qvo, "ofport");
        ck_assert_int_eq(strtoll(ofp, NULL, 10), ofport);

        /* port_get and port_list find it by the port UUID, under its qvo name. */
        ck_assert_int_eq(port_op(&m, "port_get", uuid), 0);
        ck_assert_str_eq(proto_get_str(proto_get(m.msg->body, "port"), "name", ""), qvo);
        ck_assert_int_eq(reply_ofport(&m), ofport);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_list");
        ck_assert_int_eq(mod_call(&m), 0);
        bool listed = false;
        for (list = proto_get(m.msg->body, "ports")->child; list; list = list->next)
                if (streq(proto_get_str(list, "port_uuid", ""), uuid)) {
                        ck_assert(!listed);
                        listed = true;
                        ck_assert_str_eq(proto_get_str(list, "name", ""), qvo);
                }
        ck_assert(listed);

        /* Idempotent. */
        ck_assert_int_eq(port_add_hybrid(&m, uuid, inst, "fa:16:3e:00:30:01", 1450, true), 0);
        ck_assert_int_eq(reply_ofport(&m), ofport);
        ck_assert_int_eq(bridge_port_count("br-int"), before + 1);

        /* hybrid -> plain: the tap port replaces the qvo port, in one transaction. */
        ck_assert_msg(port_add_hybrid(&m, uuid, inst, "fa:16:3e:00:30:01", 1450, false) == 0, "port_add: %s",
                      reply_error(&m));
        ck_assert_str_eq(proto_get_str(proto_get(m.msg->body, "port"), "name", ""), tap);
        ck_assert_int_gt(reply_ofport(&m), 0);
        ck_assert(bridge_has_port("br-int", tap));
        ck_assert(!bridge_has_port("br-int", qvo));
        ck_assert(!interface_exists(qvo));
        ck_assert_int_eq(bridge_port_count("br-int"), before + 1);
        (void)snprintf(comment, sizeof(comment), "nova-hypervisor: port_add %s", tap);
        _cleanup_free_ char *rec = log_record(comment);
        (void)snprintf(want, sizeof(want), "table Port insert row \"%s\"", tap);
        ck_assert_msg(strstr(rec, want), "%s: no insert of %s in:\n%s", comment, tap, rec);
        (void)snprintf(want, sizeof(want), "row \"%s\"", qvo);
        char *del = strstr(rec, want);
        ck_assert_msg(del && strstr(del, "delete row"), "%s: no delete of %s in:\n%s", comment, qvo, rec);

        /* plain -> hybrid: back to qvo, still one port. */
        ck_assert_int_eq(port_add_hybrid(&m, uuid, inst, "fa:16:3e:00:30:01", 1450, true), 0);
        ck_assert_str_eq(proto_get_str(proto_get(m.msg->body, "port"), "name", ""), qvo);
        ck_assert_int_gt(reply_ofport(&m), 0);
        ck_assert(bridge_has_port("br-int", qvo));
        ck_assert(!bridge_has_port("br-int", tap));
        ck_assert_int_eq(bridge_port_count("br-int"), before + 1);

        /* port_del finds the qvo port by the UUID. */
        ck_assert_int_eq(port_op(&m, "port_del", uuid), 0);
        ck_assert(!bridge_has_port("br-int", qvo));
        ck_assert(!interface_exists(qvo));
        ck_assert_int_eq(bridge_port_count("br-int"), before);
        ck_assert_int_eq(port_op(&m, "port_get", uuid), -ENOENT);
        ck_assert_int_eq(port_op(&m, "port_del", uuid), -ENOENT);

        /* The same port twice in one batch, once per plugging: refused. */
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_add_many");
        pw_list_begin(m.w, "ports");
        for (int i = 0; i < 2; i++) {
                pw_obj_begin(m.w, NULL);
                port_fields(m.w, uuid, inst, "fa:16:3e:00:30:01", 1500);
                pw_bool(m.w, "hybrid", i == 1);
                pw_obj_end(m.w);
        }
        pw_list_end(m.w);
        ck_assert_int_eq(mod_call(&m), -EINVAL);
        /* A batch of one hybrid and one plain port. */
        char uuid2[37], tap2[IFNAME_MAX];
        random_port_uuid(uuid2);
        ck_assert_int_eq(tap_name_from_port(uuid2, tap2), 0);
        tap_make(tap2);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_add_many");
        pw_list_begin(m.w, "ports");
        pw_obj_begin(m.w, NULL);
        port_fields(m.w, uuid, inst, "fa:16:3e:00:30:01", 1500);
        pw_bool(m.w, "hybrid", true);
        pw_obj_end(m.w);
        pw_obj_begin(m.w, NULL);
        port_fields(m.w, uuid2, inst, "fa:16:3e:00:30:02", 1500);
        pw_obj_end(m.w);
        pw_list_end(m.w);
        ck_assert_msg(mod_call(&m) == 0, "port_add_many: %s", reply_error(&m));
        list = proto_get(m.msg->body, "ports");
        ck_assert_uint_eq(list->count, 2);
        ck_assert_str_eq(proto_get_str(list->child, "name", ""), qvo);
        ck_assert_str_eq(proto_get_str(list->child->next, "name", ""), tap2);
        ck_assert(bridge_has_port("br-int", qvo));
        ck_assert(bridge_has_port("br-int", tap2));
        ck_assert_int_eq(port_op(&m, "port_del", uuid), 0);
        ck_assert_int_eq(port_op(&m, "port_del", uuid2), 0);
        ck_assert_int_eq(bridge_port_count("br-int"), before);

        (void)snprintf(want, sizeof(want),
                       "audit: port_add port_uuid=%s instance_uuid=%s mac=fa:16:3e:00:30:01 mtu=1450 hybrid=true port=%s "
                       "bridge=br-int result=ok",
                       uuid, inst, qvo);
        ck_assert_msg(file_contains(m.log, want), "missing audit line: %s", want);
        (void)snprintf(want, sizeof(want), "audit: port_del port_uuid=%s port=%s bridge=br-int result=ok", uuid, qvo);
        ck_assert_msg(file_contains(m.log, want), "missing audit line: %s", want);
        mod_stop(&m);
        ck_assert_int_eq(sh("ip link del %s", qvo), 0);
        tap_remove(tap);
        tap_remove(tap2);
}
END_TEST

/* A foreign Port named like our qvo, without our mark: never touched. */
START_TEST(test_hybrid_foreign_qvo)
{
        char uuid[37], inst[37], tap[IFNAME_MAX], qvo[IFNAME_MAX];
        struct mod m;

        random_port_uuid(uuid);
        random_port_uuid(inst);
        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        ck_assert_int_eq(port_dev_name(QVO_PREFIX, uuid, qvo), 0);
        tap_make(tap);
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "add-port", "br-int", qvo, "--", "set", "Interface", qvo, "type=internal",
                                   (char *)NULL),
                         0);
        mod_start(&m, "br-int", NULL);
        mod_ready(&m);
        int before = bridge_port_count("br-int");

        ck_assert_int_eq(port_add_hybrid(&m, uuid, inst, "fa:16:3e:00:40:01", 1500, true), -EEXIST);
        ck_assert_msg(strstr(reply_error(&m), "without our mark") && strstr(reply_error(&m), qvo), "error: %s",
                      reply_error(&m));
        ck_assert_int_eq(port_op(&m, "port_get", uuid), -ENOENT);
        ck_assert_int_eq(port_op(&m, "port_del", uuid), -ENOENT);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_list");
        ck_assert_int_eq(mod_call(&m), 0);
        for (const struct proto_value *p = proto_get(m.msg->body, "ports")->child; p; p = p->next)
                ck_assert_str_ne(proto_get_str(p, "name", ""), qvo);

        /* Plain plugging of the same port: the tap port is added, the foreign qvo port stays as it was. */
        ck_assert_msg(port_add_hybrid(&m, uuid, inst, "fa:16:3e:00:40:01", 1500, false) == 0, "port_add: %s",
                      reply_error(&m));
        ck_assert_str_eq(proto_get_str(proto_get(m.msg->body, "port"), "name", ""), tap);
        ck_assert(bridge_has_port("br-int", qvo));
        ck_assert_int_eq(bridge_port_count("br-int"), before + 1);
        ck_assert_int_eq(port_op(&m, "port_del", uuid), 0);
        ck_assert(!bridge_has_port("br-int", tap));
        ck_assert(bridge_has_port("br-int", qvo));
        _cleanup_free_ char *ids = vsctl_out("get", "Interface", qvo, "external_ids");
        ck_assert_str_eq(ids, "{}");
        _cleanup_free_ char *pids = vsctl_out("get", "Port", qvo, "external_ids");
        ck_assert_str_eq(pids, "{}");
        ck_assert_int_eq(bridge_port_count("br-int"), before);
        mod_stop(&m);
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "del-port", "br-int", qvo, (char *)NULL), 0);
        tap_remove(tap);
}
END_TEST

/* Last: it restarts the shared ovsdb-server. */
START_TEST(test_ovsdb_restart)
{
        char uuid[37], uuid2[37], inst[37], tap[IFNAME_MAX], tap2[IFNAME_MAX];
        int64_t ofport;
        struct mod m;

        random_port_uuid(uuid);
        random_port_uuid(uuid2);
        random_port_uuid(inst);
        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        ck_assert_int_eq(tap_name_from_port(uuid2, tap2), 0);
        tap_make(tap);
        tap_make(tap2);
        mod_start(&m, "br-int", "port_timeout_ms = 15000\n");
        mod_ready(&m);
        ck_assert_int_eq(port_add(&m, uuid, inst, "fa:16:3e:00:00:05", 1500), 0);
        ofport = reply_ofport(&m);

        /* Outage: the module says so, and requests fail at once. */
        ck_assert_int_eq(ovs_fixture_stop_ovsdb(&ovs), 0);
        ck_assert_msg(mod_wait_event(&m, false, TIMEOUT_MS), "no ovsdb_connection connected:false");
        uint64_t t0 = now_usec();
        ck_assert_int_eq(port_add(&m, uuid2, inst, "fa:16:3e:00:00:06", 1500), -ENOTCONN);
        ck_assert_uint_lt(now_usec() - t0, 1000000);
        ck_assert_msg(strstr(reply_error(&m), "is unreachable; reconnecting") && strstr(reply_error(&m), ovs.db_sock),
                      "error: %s", reply_error(&m));
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_list");
        ck_assert_int_eq(mod_call(&m), -ENOTCONN);

        /* Back: the module reconnects by itself and says so; the next port_add works. */
        ck_assert_int_eq(ovs_fixture_start_ovsdb(&ovs), 0);
        ck_assert_msg(mod_wait_event(&m, true, TIMEOUT_MS), "no ovsdb_connection connected:true after the restart");
        ck_assert_msg(port_add(&m, uuid2, inst, "fa:16:3e:00:00:06", 1500) == 0, "port_add: %s", reply_error(&m));
        ck_assert_int_gt(reply_ofport(&m), 0);
        ck_assert_int_eq(port_op(&m, "port_get", uuid), 0);
        ck_assert_int_eq(reply_ofport(&m), ofport);

        /* ovs_fixture_restart_ovsdb as one step: loss and restore are both reported. */
        ck_assert_int_eq(ovs_fixture_restart_ovsdb(&ovs), 0);
        ck_assert(mod_wait_event(&m, false, TIMEOUT_MS));
        ck_assert(mod_wait_event(&m, true, TIMEOUT_MS));
        ck_assert_int_eq(port_op(&m, "port_del", uuid), 0);
        ck_assert_int_eq(port_op(&m, "port_del", uuid2), 0);
        ck_assert(!bridge_has_port("br-int", tap));
        ck_assert(!bridge_has_port("br-int", tap2));
        ck_assert(file_contains(m.log, "lost ovsdb-server at"));
        mod_stop(&m);
        tap_remove(tap);
        tap_remove(tap2);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("openvswitch-module");
        TCase *tc = tcase_create("module");
        SRunner *sr;
        int failed;

        harness_enter_netns("test-openvswitch-module");
        tcase_add_unchecked_fixture(tc, ovs_setup, ovs_teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_privileges_from_the_kernel);
        tcase_add_test(tc, test_port_lifecycle_seen_by_ovs);
        tcase_add_test(tc, test_missing_tap_is_enodev_and_leaves_nothing);
        tcase_add_test(tc, test_timeout_undoes_and_busy);
        tcase_add_test(tc, test_inflight_id_reused_is_a_violation);
        tcase_add_test(tc, test_concurrent_requests);
        tcase_add_test(tc, test_add_many_in_one_transaction);
        tcase_add_test(tc, test_refusals_change_nothing);
        tcase_add_test(tc, test_schema_violation_ends_module);
        tcase_add_test(tc, test_bridge_missing_without_create);
        tcase_add_test(tc, test_bridge_created_with_datapath_type);
        tcase_add_test(tc, test_hybrid_port);
        tcase_add_test(tc, test_hybrid_foreign_qvo);
        tcase_add_test(tc, test_ovsdb_restart);
        tcase_add_test(tc, test_port_list_names_the_chassis);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
