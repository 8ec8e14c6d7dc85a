/* test-libvirt-module.c - the real nova-libvirt module on a socketpair,
 * driven frame by frame as the core would, against libvirt's in-process
 * test:///default driver (and an unreachable URI). Privileges are read from
 * /proc/<pid>/status, never taken from the module's word. */
#include "harness.h"
#include "tmpdir.h"

#include "domain-xml.h"
#include "libvirt-protocol.h"
#include "proto.h"

#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#define IID "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
#define UNREACHABLE_URI "qemu+unix:///system?socket=/nonexistent/sock"
#define MAX_EVENTS 64

/* One event frame the module sent. */
struct ev {
        char name[PROTO_MAX_NAME + 1];          /* "domain_lifecycle" or "libvirt_connection" */
        char instance_uuid[UUID_STR_LEN + 1];   /* domain_lifecycle: whose domain */
        char event[32], detail[32], state[16];  /* domain_lifecycle: the contract's words */
        bool connected;                         /* libvirt_connection */
        char uri[256], error[256];              /* libvirt_connection */
};

/* A module process on our end of a socketpair. */
struct lvmod {
        pid_t pid;                   /* the nova-libvirt process */
        int fd;                      /* our end, -1 once closed */
        uint32_t next_id;            /* next request id */
        struct proto_msg *msg;       /* last frame received */
        struct proto_writer *w;      /* request being built */
        char dir[PATH_MAX];          /* temp dir with module.conf and module.log */
        char log[PATH_MAX];          /* the module's stderr */
        struct ev events[MAX_EVENTS];/* every event received, in order */
        size_t n_events;
        char err[256];               /* last reply: error text */
        char state[16];              /* last reply: domain.state */
        uint64_t vcpus, memory_mb;   /* last reply: domain.vcpus, domain.memory_mb */
};

static void lvmod_start(struct lvmod *m, const char *uri, const char *extra_config)
{
        char conf[PATH_MAX + 16], text[512], err[256];
        uint8_t buf[PROTO_MAX_FRAME];
        int fd;
        ssize_t n;

        memset(m, 0, sizeof(*m));
        ck_assert_ptr_nonnull(mkdtemp(strcpy(m->dir, "/tmp/test-libvirt-module-XXXXXX")));
        ck_assert_int_eq(xsnprintf(conf, sizeof(conf), "%s/module.conf", m->dir), 0);
        ck_assert_int_eq(xsnprintf(m->log, sizeof(m->log), "%s/module.log", m->dir), 0);
        ck_assert_int_eq(xsnprintf(text, sizeof(text), "libvirt_uri = %s\nshutdown_timeout_s = 30\n%s", uri,
                                   extra_config ? extra_config : ""),
                         0);
        fd = open(conf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write_all(fd, text, strlen(text)), 0);
        close(fd);

        m->pid = module_exec("nova-libvirt", conf, m->log, &m->fd);
        m->next_id = 1;
        m->msg = malloc(sizeof(*m->msg));
        m->w = malloc(sizeof(*m->w));
        ck_assert(m->msg && m->w);

        /* The first frame is the hello. */
        struct pollfd p = { m->fd, POLLIN, 0 };
        ck_assert_msg(poll(&p, 1, 10000) == 1, "no hello from nova-libvirt; see %s", m->log);
        n = recv(m->fd, buf, sizeof(buf), 0);
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(proto_decode(buf, (size_t)n, m->msg, err, sizeof(err)), 0);
        ck_assert_int_eq(m->msg->type, PROTO_HELLO);
        ck_assert_str_eq(m->msg->name, "libvirt");
        ck_assert_uint_eq(proto_get(m->msg->body, "entrypoints")->count, _LIBVIRT_MAX);
        ck_assert_uint_eq(proto_get_u64(m->msg->body, "caps_effective", 1), 0);
        ck_assert(proto_get_bool(m->msg->body, "no_new_privs", false));
}

static void copy_str(char *dst, size_t size, const struct proto_value *obj, const char *key)
{
        (void)snprintf(dst, size, "%s", proto_get_str(obj, key, ""));
}

/* Read one frame within timeout_ms: 1 and m->msg, 0 on timeout, -1 when the module hung up. Events are recorded. */
static int recv_frame(struct lvmod *m, int timeout_ms)
{
        static uint8_t buf[PROTO_MAX_FRAME];
        struct pollfd p = { m->fd, POLLIN, 0 };
        char err[256];
        ssize_t n;
        int r;

        r = poll(&p, 1, timeout_ms);
        ck_assert_int_ge(r, 0);
        if (r == 0)
                return 0;
        n = recv(m->fd, buf, sizeof(buf), 0);
        if (n == 0)
                return -1;
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(proto_decode(buf, (size_t)n, m->msg, err, sizeof(err)), 0);
        if (m->msg->type == PROTO_EVENT) {
                struct ev *e;
                ck_assert_uint_lt(m->n_events, MAX_EVENTS);
                e = &m->events[m->n_events++];
                (void)snprintf(e->name, sizeof(e->name), "%s", m->msg->name);
                copy_str(e->instance_uuid, sizeof(e->instance_uuid), m->msg->body, "instance_uuid");
                copy_str(e->event, sizeof(e->event), m->msg->body, "event");
                copy_str(e->detail, sizeof(e->detail), m->msg->body, "detail");
                copy_str(e->state, sizeof(e->state), m->msg->body, "state");
                copy_str(e->uri, sizeof(e->uri), m->msg->body, "uri");
                copy_str(e->error, sizeof(e->error), m->msg->body, "error");
                e->connected = proto_get_bool(m->msg->body, "connected", false);
        }
        return 1;
}

/* Send the built request; read frames (recording events) until its reply. The reply's status. */
/* As the core does, a request its schema check refuses is never sent: -EINVAL or
 * -ENOSYS (issue 20: one that reached the module would end it, see test-modrt). */
static int lv_call(struct lvmod *m)
{
        const uint8_t *frame;
        size_t len;
        int verdict = core_request_check(&libvirt_protocol, m->w, m->err, sizeof(m->err));
        if (verdict < 0)
                return verdict;
        uint32_t id = m->next_id++;

        pw_set_id(m->w, id);
        ck_assert_int_eq(pw_finish(m->w, &frame, &len), 0);
        ck_assert_int_eq(send(m->fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
        for (;;) {
                int r = recv_frame(m, 10000);
                ck_assert_msg(r == 1, "no reply to %s (%s)", m->msg->name, r == 0 ? "timeout" : "module hung up");
                if (m->msg->type != PROTO_REPLY)
                        continue;
                ck_assert_uint_eq(m->msg->id, id);
                const struct proto_value *dom = proto_get(m->msg->body, "domain");
                copy_str(m->err, sizeof(m->err), m->msg->body, "error");
                copy_str(m->state, sizeof(m->state), dom, "state");
                m->vcpus = proto_get_u64(dom, "vcpus", 0);
                m->memory_mb = proto_get_u64(dom, "memory_mb", 0);
                if (dom) {
                        ck_assert_str_eq(proto_get_str(dom, "instance_uuid", ""),
                                         proto_get_str(dom, "domain_name", "") + strlen(LIBVIRT_DOMAIN_PREFIX));
                        ck_assert_ptr_nonnull(proto_get(dom, "reason"));
                        ck_assert_ptr_nonnull(proto_get(dom, "display_name"));
                }
                return m->msg->status;
        }
}

static int call_uuid(struct lvmod *m, const char *ep, const char *uuid)
{
        pw_init(m->w, PROTO_REQUEST, 0, 0, ep);
        pw_str(m->w, "instance_uuid", uuid);
        return lv_call(m);
}

static void build_define(struct lvmod *m, const char *uuid, const char *name, uint64_t vcpus, uint64_t memory_mb,
                         size_t n_ports)
{
        char port[UUID_STR_LEN + 1], mac[MAC_STR_LEN + 1];

        pw_init(m->w, PROTO_REQUEST, 0, 0, "domain_define");
        pw_str(m->w, "instance_uuid", uuid);
        pw_str(m->w, "name", name);
        pw_u64(m->w, "vcpus", vcpus);
        pw_u64(m->w, "memory_mb", memory_mb);
        pw_list_begin(m->w, "ports");
        for (size_t i = 0; i < n_ports; i++) {
                (void)snprintf(port, sizeof(port), "%08zx-aaaa-4bbb-8ccc-%012zx", 0xb0000000 + i, i);
                (void)snprintf(mac, sizeof(mac), "fa:16:3e:00:02:%02zx", i);
                pw_obj_begin(m->w, NULL);
                pw_str(m->w, "port_uuid", port);
                pw_str(m->w, "mac", mac);
                pw_u64(m->w, "mtu", 1450);
                pw_obj_end(m->w);
        }
        pw_list_end(m->w);
}

/* Total of our domains in a domain_list reply (the list is left in m->msg). */
static uint64_t list_total(struct lvmod *m)
{
        pw_init(m->w, PROTO_REQUEST, 0, 0, "domain_list");
        ck_assert_int_eq(lv_call(m), 0);
        ck_assert(!proto_get_bool(m->msg->body, "truncated", true));
        ck_assert_uint_eq(proto_get(m->msg->body, "domains")->count, proto_get_u64(m->msg->body, "total", 99));
        return proto_get_u64(m->msg->body, "total", 99);
}

/* Index of a recorded event from index `from` on matching (name, uuid or NULL, event or NULL), reading
 * more frames for up to timeout_ms; -1 when none came. */
static int wait_event(struct lvmod *m, size_t from, const char *name, const char *uuid, const char *event,
                      int timeout_ms)
{
        uint64_t deadline = now_usec() + (uint64_t)timeout_ms * 1000;
        size_t seen = from;

        for (;;) {
                for (; seen < m->n_events; seen++) {
                        const struct ev *e = &m->events[seen];
                        if (streq(e->name, name) && (!uuid || streq(e->instance_uuid, uuid)) &&
                            (!event || streq(e->event, event)))
                                return (int)seen;
                }
                uint64_t now = now_usec();
                if (now >= deadline)
                        return -1;
                int r = recv_frame(m, (int)((deadline - now) / 1000) + 1);
                if (r <= 0)
                        return -1;
                ck_assert_int_eq(m->msg->type, PROTO_EVENT);
        }
}

/* Wait (bounded) for the module to exit; its exit status, or -1 on timeout. */
static int wait_exit(struct lvmod *m, int timeout_ms)
{
        uint64_t deadline = now_usec() + (uint64_t)timeout_ms * 1000;
        int status;

        while (now_usec() < deadline) {
                pid_t r = waitpid(m->pid, &status, WNOHANG);
                ck_assert_int_ge(r, 0);
                if (r == m->pid) {
                        ck_assert(WIFEXITED(status));
                        return WEXITSTATUS(status);
                }
                usleep(10 * 1000);
        }
        return -1;
}

static void lvmod_free(struct lvmod *m)
{
        char path[PATH_MAX + 16];

        if (m->fd >= 0)
                close(m->fd);
        free(m->msg);
        free(m->w);
        if (getenv("KEEP_LOGS")) {
                fprintf(stderr, "module log kept in %s\n", m->log);
                return;
        }
        (void)snprintf(path, sizeof(path), "%s/module.conf", m->dir);
        unlink(path);
        unlink(m->log);
        rmdir(m->dir);
}

static bool log_contains(struct lvmod *m, const char *needle)
{
        _cleanup_free_ char *text = NULL;
        size_t len;

        if (read_file_bounded(m->log, 1 << 20, &text, &len) < 0)
                return false;
        return strstr(text, needle) != NULL;
}

/* The whole lifecycle of one domain at uri. */
static void domain_lifecycle(const char *uri)
{
        struct lvmod m;
        struct proc_security sec;
        char line[256];
        int i;

        lvmod_start(&m, uri, NULL);
        ck_assert_int_eq(proc_security_read(m.pid, &sec), 0);
        ck_assert_uint_eq(sec.cap_eff, 0);
        ck_assert_uint_eq(sec.cap_prm, 0);
        ck_assert(sec.no_new_privs);

        /* Nothing of ours yet: libvirt's own "test" domain is not listed. */
        ck_assert_uint_eq(list_total(&m), 0);

        build_define(&m, IID, "web-1", 2, 128, 2);
        ck_assert_msg(lv_call(&m) == 0, "define: %s", m.err);
        ck_assert_str_eq(m.state, "shutoff");
        ck_assert_uint_eq(m.vcpus, 2);
        ck_assert_uint_eq(m.memory_mb, 128);
        ck_assert_str_eq(proto_get_str(proto_get(m.msg->body, "domain"), "display_name", ""), "web-1");
        ck_assert_int_ge(wait_event(&m, 0, "domain_lifecycle", IID, "defined", 2000), 0);

        /* Define again: redefined with the new document, not duplicated. */
        build_define(&m, IID, "web-1", 3, 160, 2);
        ck_assert_msg(lv_call(&m) == 0, "redefine: %s", m.err);
        ck_assert_uint_eq(m.vcpus, 3);
        ck_assert_uint_eq(m.memory_mb, 160);

        ck_assert_int_eq(call_uuid(&m, "domain_state", IID), 0);
        ck_assert_str_eq(m.state, "shutoff");

        ck_assert_msg(call_uuid(&m, "domain_start", IID) == 0, "start: %s", m.err);
        ck_assert_str_eq(m.state, "running");
        i = wait_event(&m, 0, "domain_lifecycle", IID, "started", 2000);
        ck_assert_int_ge(i, 0);
        ck_assert_str_eq(m.events[i].detail, "booted");
        ck_assert_str_eq(m.events[i].state, "running");
        ck_assert_int_eq(call_uuid(&m, "domain_state", IID), 0);
        ck_assert_str_eq(m.state, "running");
        ck_assert_int_eq(call_uuid(&m, "domain_start", IID), 0); /* idempotent */
        ck_assert_str_eq(m.state, "running");

        /* Exactly our one domain. */
        ck_assert_uint_eq(list_total(&m), 1);
        const struct proto_value *d = proto_get(m.msg->body, "domains")->child;
        ck_assert_str_eq(proto_get_str(d, "instance_uuid", ""), IID);
        ck_assert_str_eq(proto_get_str(d, "domain_name", ""), "nova-" IID);
        ck_assert_str_eq(proto_get_str(d, "state", ""), "running");

        ck_assert_msg(call_uuid(&m, "domain_reboot", IID) == 0, "reboot: %s", m.err);
        ck_assert_str_eq(m.state, "running");

        /* The test driver powers off at once. */
        pw_init(m.w, PROTO_REQUEST, 0, 0, "domain_shutdown");
        pw_str(m.w, "instance_uuid", IID);
        pw_u64(m.w, "timeout_s", 1);
        ck_assert_msg(lv_call(&m) == 0, "shutdown: %s", m.err);
        ck_assert_int_eq(call_uuid(&m, "domain_state", IID), 0);
        ck_assert_str_eq(m.state, "shutoff");
        ck_assert_int_ge(wait_event(&m, 0, "domain_lifecycle", IID, "stopped", 2000), 0);
        ck_assert_int_eq(call_uuid(&m, "domain_shutdown", IID), 0); /* stopped already: fine */
        ck_assert_str_eq(m.state, "shutoff");

        /* Start again; the earlier shutdown's deadline must not destroy it. */
        size_t before = m.n_events;
        ck_assert_int_eq(call_uuid(&m, "domain_start", IID), 0);
        ck_assert_str_eq(m.state, "running");
        ck_assert_int_ge(wait_event(&m, before, "domain_lifecycle", IID, "started", 2000), 0);
        for (size_t k = before; k < m.n_events; k++)
                ck_assert_str_ne(m.events[k].event, "stopped");
        if (recv_frame(&m, 1500) != 0) /* past the 1 s deadline: nothing happens */
                ck_abort_msg("unexpected %s frame: %s (%s)", m.msg->name, m.events[m.n_events - 1].event,
                             m.events[m.n_events - 1].detail);
        ck_assert_int_eq(call_uuid(&m, "domain_state", IID), 0);
        ck_assert_str_eq(m.state, "running");
        /* A running domain is not undefined behind the caller's back. */
        ck_assert_int_eq(call_uuid(&m, "domain_undefine", IID), -EBUSY);
        ck_assert_ptr_nonnull(strstr(m.err, "destroy it"));

        before = m.n_events;
        ck_assert_int_eq(call_uuid(&m, "domain_destroy", IID), 0);
        ck_assert_str_eq(m.state, "shutoff");
        ck_assert_int_eq(call_uuid(&m, "domain_destroy", IID), 0); /* idempotent */
        ck_assert_str_eq(m.state, "shutoff");
        i = wait_event(&m, before, "domain_lifecycle", IID, "stopped", 2000);
        ck_assert_int_ge(i, 0);
        ck_assert_str_eq(m.events[i].detail, "destroyed");
        ck_assert_str_eq(m.events[i].state, "shutoff");
        ck_assert_int_eq(call_uuid(&m, "domain_reboot", IID), -EINVAL); /* not running */
        ck_assert_ptr_nonnull(strstr(m.err, "nova-" IID));

        ck_assert_int_eq(call_uuid(&m, "domain_undefine", IID), 0);
        ck_assert_int_ge(wait_event(&m, 0, "domain_lifecycle", IID, "undefined", 2000), 0);
        ck_assert_int_eq(call_uuid(&m, "domain_undefine", IID), -ENOENT);
        ck_assert_ptr_nonnull(strstr(m.err, IID));
        ck_assert_int_eq(call_uuid(&m, "domain_state", IID), -ENOENT);
        ck_assert_int_eq(call_uuid(&m, "domain_start", IID), -ENOENT);
        ck_assert_uint_eq(list_total(&m), 0);

        /* Events only ever named our instance. */
        for (size_t k = 0; k < m.n_events; k++)
                if (streq(m.events[k].name, "domain_lifecycle"))
                        ck_assert_str_eq(m.events[k].instance_uuid, IID);

        /* The core goes away: the module exits cleanly. */
        close(m.fd);
        m.fd = -1;
        ck_assert_int_eq(wait_exit(&m, 5000), 0);

        (void)snprintf(line, sizeof(line), "audit: domain_define instance_uuid=%s name=web-1 vcpus=2 memory_mb=128 "
                                           "ports=[2] domain=nova-%s result=ok", IID, IID);
        ck_assert_msg(log_contains(&m, line), "missing audit line: %s", line);
        (void)snprintf(line, sizeof(line),
                       "audit: domain_undefine instance_uuid=%s domain=nova-%s result=error errno=%d", IID, IID,
                       ENOENT);
        ck_assert_msg(log_contains(&m, line), "missing audit line: %s", line);
        lvmod_free(&m);
}

/* In-process test driver: every call on the module's main thread. */
START_TEST(test_domain_lifecycle)
{
        domain_lifecycle("test:///default");
}
END_TEST

/* The same through a private libvirtd: domain calls, events and the shutdown deadline on the
 * module's worker threads. */
START_TEST(test_domain_lifecycle_on_workers)
{
        char dir[] = "/tmp/test-libvirt-lvd-XXXXXX", uri[PATH_MAX + 64], test_uri[PATH_MAX + 64];

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(libvirtd_private_start(dir, uri, sizeof(uri)), 0);
        ck_assert_int_eq(xsnprintf(test_uri, sizeof(test_uri), "test+unix:///default?socket=%s/sock/libvirt-sock", dir),
                         0);
        domain_lifecycle(test_uri);
        libvirtd_private_stop(dir, uri);
}
END_TEST

/* domain_list in pages: by instance UUID, a limit, and the cursor where the next page starts. */
START_TEST(test_domain_list_pages)
{
        static const char *const ids[] = {
                "3f2504e0-4f89-41d3-9a0c-0305e82c3305", "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
                "3f2504e0-4f89-41d3-9a0c-0305e82c3304", "3f2504e0-4f89-41d3-9a0c-0305e82c3302",
                "3f2504e0-4f89-41d3-9a0c-0305e82c3303",
        };
        char after[37] = "";
        unsigned listed = 0, pages = 0;
        struct lvmod m;

        lvmod_start(&m, "test:///default", NULL);
        for (size_t k = 0; k < ARRAY_SIZE(ids); k++) {
                build_define(&m, ids[k], "paged", 1, 64, 1);
                ck_assert_msg(lv_call(&m) == 0, "define: %s", m.err);
        }
        for (;;) {
                const struct proto_value *l;
                pw_init(m.w, PROTO_REQUEST, 0, 0, "domain_list");
                if (after[0])
                        pw_str(m.w, "after", after);
                pw_u64(m.w, "limit", 2);
                ck_assert_int_eq(lv_call(&m), 0);
                ck_assert_uint_eq(proto_get_u64(m.msg->body, "total", 0), ARRAY_SIZE(ids));
                l = proto_get(m.msg->body, "domains");
                ck_assert_uint_eq(l->count, pages < 2 ? 2 : 1);
                for (const struct proto_value *d = l->child; d; d = d->next) {
                        char want[37];
                        (void)snprintf(want, sizeof(want), "3f2504e0-4f89-41d3-9a0c-0305e82c330%u", ++listed);
                        ck_assert_str_eq(proto_get_str(d, "instance_uuid", ""), want);
                        ck_assert_str_eq(proto_get_str(d, "display_name", ""), "paged");
                        ck_assert_str_eq(proto_get_str(d, "state", ""), "shutoff");
                        ck_assert_uint_eq(proto_get_u64(d, "vcpus", 0), 1);
                        ck_assert_uint_eq(proto_get_u64(d, "memory_mb", 0), 64);
                        (void)strscpy(after, want, sizeof(after));
                }
                pages++;
                if (!proto_get_bool(m.msg->body, "truncated", true))
                        break;
                ck_assert_str_eq(proto_get_str(m.msg->body, "next", ""), after);
                ck_assert_uint_lt(pages, 3);
        }
        ck_assert_uint_eq(pages, 3);
        ck_assert_uint_eq(listed, ARRAY_SIZE(ids));
        ck_assert_ptr_null(proto_get(m.msg->body, "next"));
        /* A cursor past the last: an empty, complete page. */
        pw_init(m.w, PROTO_REQUEST, 0, 0, "domain_list");
        pw_str(m.w, "after", "ffffffff-4f89-41d3-9a0c-0305e82c3300");
        ck_assert_int_eq(lv_call(&m), 0);
        ck_assert_uint_eq(proto_get(m.msg->body, "domains")->count, 0);
        ck_assert(!proto_get_bool(m.msg->body, "truncated", true));
        lvmod_free(&m);
}
END_TEST

/* A domain of libvirt's test driver for a node file: named nova-<uuid>; with mark_uuid, it
 * carries our mark naming that uuid and display (NULL: no mark). */
/* A test driver node file in the new directory dir (a mkdtemp template): its path in node, the
 * test:// URI of it in uri, and the file open with its <node> begun (the caller writes the domains). */
static FILE *node_file_begin(char *dir, char *node, size_t node_len, char *uri, size_t uri_len)
{
        FILE *f;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(xsnprintf(node, node_len, "%s/node.xml", dir), 0);
        ck_assert_int_eq(xsnprintf(uri, uri_len, "test://%s", node), 0);
        f = fopen(node, "we");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "<node>\n");
        return f;
}

static void node_domain(FILE *f, const char *uuid, const char *mark_uuid, const char *display)
{
        fprintf(f, "<domain type='test'><name>nova-%s</name><uuid>%s</uuid>", uuid, uuid);
        if (mark_uuid)
                fprintf(f, "<metadata><nova:instance xmlns:nova='urn:nova-hypervisor:instance:1'><nova:uuid>%s</nova:uuid>"
                           "<nova:name>%s</nova:name><nova:ports/></nova:instance></metadata>",
                        mark_uuid, display);
        fprintf(f, "<memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>\n");
}

/* domain_list judges the mark of many domains at once (LIST_CALLS_IN_FLIGHT): among 40 domains named
 * as ours, the 12 that only copy the naming (no mark, or a mark naming another instance) are never
 * listed, whatever the page size, and the pages still follow one another without a gap or a repeat. */
START_TEST(test_domain_list_skips_lookalikes_in_pages)
{
        char dir[] = "/tmp/test-libvirt-node-XXXXXX", node[PATH_MAX], uri[PATH_MAX + 16];
        static const size_t limits[] = { 1, 2, 3, 7, 100 };
        bool ours[40];
        FILE *f;

        f = node_file_begin(dir, node, sizeof(node), uri, sizeof(uri));
        for (unsigned i = 0; i < ARRAY_SIZE(ours); i++) {
                char uuid[37], other[37];
                /* listed in the reverse of UUID order, so the module's sort matters */
                (void)snprintf(uuid, sizeof(uuid), "3f2504e0-4f89-41d3-9a0c-0305e82c33%02u", 39 - i);
                (void)snprintf(other, sizeof(other), "3f2504e0-4f89-41d3-9a0c-0305e82c34%02u", i);
                ours[39 - i] = !(i % 7 == 3 || i % 5 == 1 || i >= 38);
                node_domain(f, uuid, ours[39 - i] ? uuid : (i % 2 ? NULL : other), "marked");
        }
        fprintf(f, "</node>\n");
        ck_assert_int_eq(fclose(f), 0);

        for (size_t li = 0; li < ARRAY_SIZE(limits); li++) {
                char after[37] = "";
                unsigned seen[40] = { 0 }, pages = 0;
                struct lvmod m;

                lvmod_start(&m, uri, NULL);
                for (;;) {
                        const struct proto_value *l;
                        pw_init(m.w, PROTO_REQUEST, 0, 0, "domain_list");
                        if (after[0])
                                pw_str(m.w, "after", after);
                        pw_u64(m.w, "limit", limits[li]);
                        ck_assert_msg(lv_call(&m) == 0, "domain_list: %s", m.err);
                        l = proto_get(m.msg->body, "domains");
                        ck_assert_uint_le(l->count, limits[li]);
                        for (const struct proto_value *d = l->child; d; d = d->next) {
                                const char *id = proto_get_str(d, "instance_uuid", "");
                                unsigned k;
                                ck_assert_int_eq(sscanf(id, "3f2504e0-4f89-41d3-9a0c-0305e82c33%2u", &k), 1);
                                ck_assert_uint_lt(k, 40);
                                ck_assert_msg(ours[k], "look-alike %s listed", id);
                                ck_assert_str_gt(id, after);
                                seen[k]++;
                                ck_assert_str_eq(proto_get_str(d, "state", ""), "running");
                                ck_assert_uint_eq(proto_get_u64(d, "memory_mb", 0), 64);
                                (void)strscpy(after, id, sizeof(after));
                        }
                        pages++;
                        ck_assert_uint_lt(pages, 50);
                        if (!proto_get_bool(m.msg->body, "truncated", true))
                                break;
                        /* the cursor is the last judged: a look-alike after the last listed may end a page */
                        ck_assert_str_ge(proto_get_str(m.msg->body, "next", ""), after);
                        (void)strscpy(after, proto_get_str(m.msg->body, "next", ""), sizeof(after));
                }
                for (unsigned k = 0; k < 40; k++)
                        ck_assert_msg(seen[k] == (ours[k] ? 1u : 0u), "limit %zu: domain %u listed %u times",
                                      limits[li], k, seen[k]);
                lvmod_free(&m);
        }
        unlink(node);
        rmdir(dir);
}
END_TEST

/* A page as full as one reply may be (no limit: as many as the frame bound DOMAIN_REPLY_MAX_BYTES
 * allows), every display name the longest there is: the reply is built and decodes; 300 domains take
 * 2 pages (217 a page). */
START_TEST(test_domain_list_full_pages)
{
        char dir[] = "/tmp/test-libvirt-node-XXXXXX", node[PATH_MAX], uri[PATH_MAX + 16], after[37] = "";
        char display[INSTANCE_NAME_MAX + 1];
        unsigned listed = 0, pages = 0;
        struct lvmod m;
        FILE *f;

        memset(display, 'n', INSTANCE_NAME_MAX);
        display[INSTANCE_NAME_MAX] = '\0';
        f = node_file_begin(dir, node, sizeof(node), uri, sizeof(uri));
        for (unsigned i = 0; i < 300; i++) {
                char uuid[37];
                (void)snprintf(uuid, sizeof(uuid), "3f2504e0-4f89-41d3-9a0c-0305e82c%04u", i);
                node_domain(f, uuid, uuid, display);
        }
        fprintf(f, "</node>\n");
        ck_assert_int_eq(fclose(f), 0);

        lvmod_start(&m, uri, NULL);
        for (;;) {
                const struct proto_value *l;
                pw_init(m.w, PROTO_REQUEST, 0, 0, "domain_list");
                if (after[0])
                        pw_str(m.w, "after", after);
                ck_assert_msg(lv_call(&m) == 0, "domain_list: %s", m.err);
                l = proto_get(m.msg->body, "domains");
                for (const struct proto_value *d = l->child; d; d = d->next) {
                        ck_assert_str_eq(proto_get_str(d, "display_name", ""), display);
                        listed++;
                }
                pages++;
                ck_assert_uint_lt(pages, 10);
                if (!proto_get_bool(m.msg->body, "truncated", true))
                        break;
                ck_assert_uint_ge(l->count, 200);
                (void)strscpy(after, proto_get_str(m.msg->body, "next", ""), sizeof(after));
        }
        ck_assert_uint_eq(listed, 300);
        ck_assert_uint_eq(pages, 2);
        lvmod_free(&m);
        unlink(node);
        rmdir(dir);
}
END_TEST

START_TEST(test_refusals_define_nothing)
{
        static const char *const bad_uuids[] = { "../../etc/passwd", "/var/lib/libvirt/qemu/x.xml", "test",
                                                 "nova-" IID, "3F2504E0-4F89-41D3-9A0C-0305E82C3301" };
        static const char *const bad_names[] = { "a/b", "a<b", "../x", "", "-x", "a b",
                                                 "0123456789012345678901234567890123456789012345678901234567890123" };
        struct lvmod m;

        lvmod_start(&m, "test:///default", NULL);
        for (size_t i = 0; i < ARRAY_SIZE(bad_uuids); i++) {
                build_define(&m, bad_uuids[i], "web-1", 1, 64, 1);
                ck_assert_int_eq(lv_call(&m), -EINVAL);
                ck_assert_int_eq(call_uuid(&m, "domain_start", bad_uuids[i]), -EINVAL);
                ck_assert_int_eq(call_uuid(&m, "domain_undefine", bad_uuids[i]), -EINVAL);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++) {
                build_define(&m, IID, bad_names[i], 1, 64, 1);
                ck_assert_msg(lv_call(&m) == -EINVAL, "name '%s' accepted", bad_names[i]);
        }
        build_define(&m, IID, "web-1", 1, 64, LIBVIRT_MAX_PORTS + 1);
        ck_assert_int_eq(lv_call(&m), -EINVAL);
        build_define(&m, IID, "web-1", 0, 64, 1);
        ck_assert_int_eq(lv_call(&m), -EINVAL);
        build_define(&m, IID, "web-1", LIBVIRT_MAX_VCPUS + 1, 64, 1);
        ck_assert_int_eq(lv_call(&m), -EINVAL);
        build_define(&m, IID, "web-1", 1, LIBVIRT_MIN_MEMORY_MB - 1, 1);
        ck_assert_int_eq(lv_call(&m), -EINVAL);
        /* A name or a document instead of identifiers: unknown members. */
        build_define(&m, IID, "web-1", 1, 64, 1);
        pw_str(m.w, "xml", "<domain/>");
        ck_assert_int_eq(lv_call(&m), -EINVAL);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "domain_start");
        pw_str(m.w, "domain_name", "test");
        ck_assert_int_eq(lv_call(&m), -EINVAL);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "domain_undefine_all");
        ck_assert_int_eq(lv_call(&m), -ENOSYS);
        ck_assert_uint_eq(list_total(&m), 0);

        /* The full 16 ports are fine; the largest define still fits. */
        build_define(&m, IID, "web-1", 1, 64, LIBVIRT_MAX_PORTS);
        ck_assert_msg(lv_call(&m) == 0, "define 16 ports: %s", m.err);
        ck_assert_int_eq(call_uuid(&m, "domain_undefine", IID), 0);
        ck_assert_uint_eq(list_total(&m), 0);

        /* SIGTERM: out of the event loop promptly, exit 0. */
        uint64_t t0 = now_usec();
        ck_assert_int_eq(kill(m.pid, SIGTERM), 0);
        ck_assert_int_eq(wait_exit(&m, 3000), 0);
        ck_assert_uint_lt(now_usec() - t0, 1000 * 1000);
        lvmod_free(&m);
}
END_TEST

START_TEST(test_unreachable_libvirt)
{
        struct lvmod m;
        int i;

        lvmod_start(&m, UNREACHABLE_URI, "log_level = debug\n");
        /* The module runs and tells the core libvirt is out of reach. */
        i = wait_event(&m, 0, "libvirt_connection", NULL, NULL, 3000);
        ck_assert_int_ge(i, 0);
        ck_assert(!m.events[i].connected);
        ck_assert_str_eq(m.events[i].uri, UNREACHABLE_URI);
        ck_assert_ptr_nonnull(strstr(m.events[i].error, "/nonexistent/sock"));

        /* Requests fail at once with a clear reason, and keep failing while it retries. */
        for (int round = 0; round < 3; round++) {
                uint64_t t0 = now_usec();
                pw_init(m.w, PROTO_REQUEST, 0, 0, "domain_list");
                ck_assert_int_eq(lv_call(&m), -ENOTCONN);
                ck_assert_uint_lt(now_usec() - t0, 1000 * 1000);
                ck_assert_msg(strstr(m.err, "libvirt at " UNREACHABLE_URI " is unreachable (") &&
                                      strstr(m.err, "/nonexistent/sock") && strstr(m.err, "); reconnecting"),
                              "unclear error: %s", m.err);
                build_define(&m, IID, "web-1", 1, 64, 1);
                ck_assert_int_eq(lv_call(&m), -ENOTCONN);
                ck_assert_int_eq(call_uuid(&m, "domain_state", IID), -ENOTCONN);
                ck_assert_int_eq(recv_frame(&m, 400), 0); /* retries say nothing new */
        }
        ck_assert(log_contains(&m, "is unreachable"));
        /* It keeps retrying with a doubling backoff. */
        ck_assert(log_contains(&m, "still unreachable (Failed to connect socket to '/nonexistent/sock'"));
        ck_assert(log_contains(&m, "next attempt in 200 ms"));
        ck_assert(log_contains(&m, "next attempt in 400 ms"));

        /* SIGTERM while it waits for libvirt: exits promptly. */
        ck_assert_int_eq(kill(m.pid, SIGTERM), 0);
        ck_assert_int_eq(wait_exit(&m, 3000), 0);
        lvmod_free(&m);
}
END_TEST

/* libvirt comes within reach later (a test driver whose node file appears): the module
 * connects on a retry, says so, and serves requests with events flowing again. */
START_TEST(test_reconnect_when_libvirt_appears)
{
        char dir[] = "/tmp/test-libvirt-node-XXXXXX", node[PATH_MAX], uri[PATH_MAX + 16];
        struct lvmod m;
        int i, fd;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(xsnprintf(node, sizeof(node), "%s/node.xml", dir), 0);
        ck_assert_int_eq(xsnprintf(uri, sizeof(uri), "test://%s", node), 0);
        lvmod_start(&m, uri, NULL);
        i = wait_event(&m, 0, "libvirt_connection", NULL, NULL, 3000);
        ck_assert_int_ge(i, 0);
        ck_assert(!m.events[i].connected);
        ck_assert_str_eq(m.events[i].uri, uri);
        ck_assert_str_ne(m.events[i].error, "");
        pw_init(m.w, PROTO_REQUEST, 0, 0, "domain_list");
        ck_assert_int_eq(lv_call(&m), -ENOTCONN);

        fd = open(node, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write_all(fd, "<node/>\n", 8), 0);
        close(fd);
        i = wait_event(&m, (size_t)i + 1, "libvirt_connection", NULL, NULL, 15000);
        ck_assert_msg(i >= 0, "no reconnect within the backoff");
        ck_assert(m.events[i].connected);
        ck_assert_str_eq(m.events[i].error, "");

        ck_assert_uint_eq(list_total(&m), 0);
        build_define(&m, IID, "later", 1, 64, 1);
        ck_assert_msg(lv_call(&m) == 0, "define after reconnect: %s", m.err);
        ck_assert_int_eq(call_uuid(&m, "domain_start", IID), 0);
        ck_assert_int_ge(wait_event(&m, 0, "domain_lifecycle", IID, "started", 2000), 0);
        ck_assert_int_eq(call_uuid(&m, "domain_destroy", IID), 0);
        ck_assert_int_eq(call_uuid(&m, "domain_undefine", IID), 0);

        close(m.fd);
        m.fd = -1;
        ck_assert_int_eq(wait_exit(&m, 5000), 0);
        lvmod_free(&m);
        unlink(node);
        rmdir(dir);
}
END_TEST

/* libvirt's libraries are loaded after the hello (src/lib/lazylib.h): the module says hello
 * without them, and a libvirt.so.0 that cannot be loaded ends the module with status 1 and a
 * line naming it, never a module that runs without libvirt. */
START_TEST(test_libvirt_loaded_after_hello)
{
        char dir[] = "/tmp/test-libvirt-lazy-XXXXXX", bogus[PATH_MAX];
        struct lvmod m;
        int fd;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(xsnprintf(bogus, sizeof(bogus), "%s/libvirt.so.0", dir), 0);
        fd = open(bogus, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write_all(fd, "not an ELF file\n", 16), 0);
        close(fd);
        ck_assert_int_eq(setenv("LD_LIBRARY_PATH", dir, 1), 0);
        lvmod_start(&m, "test:///default", NULL); /* asserts the hello */
        ck_assert_int_eq(unsetenv("LD_LIBRARY_PATH"), 0);
        ck_assert_int_eq(wait_exit(&m, 5000), 1);
        ck_assert_msg(log_contains(&m, "cannot load libvirt.so.0"), "no reason logged; see %s", m.log);
        lvmod_free(&m);
        unlink(bogus);
        rmdir(dir);
}
END_TEST

/* A real libvirtd killed: the module tells the core at once (the unix socket's EOF runs
 * libvirt's close callback), without keepalive pings, which it does not send on a local
 * socket (idle modules stay asleep); then it reconnects when libvirtd is back. */
START_TEST(test_killed_libvirtd_noticed_without_keepalive)
{
        char dir[64], uri[PATH_MAX + 64], pidfile[PATH_MAX], text[32] = "";
        struct lvmod m;
        uint64_t t0;
        pid_t lvd;
        int i, fd;
        ssize_t n;

        /* the private libvirtd's tree: removed when this test's process exits after a pass */
        ck_assert_int_eq(test_tmpdir_make("test-libvirt-lvd", dir, sizeof(dir)), 0);
        ck_assert_int_eq(libvirtd_private_start(dir, uri, sizeof(uri)), 0);
        lvmod_start(&m, uri, NULL);
        ck_assert_uint_eq(list_total(&m), 0); /* connected and serving */
        ck_assert_int_eq(xsnprintf(pidfile, sizeof(pidfile), "%s/libvirtd.pid", dir), 0);
        fd = open(pidfile, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        n = read(fd, text, sizeof(text) - 1);
        close(fd);
        ck_assert_int_gt(n, 0);
        lvd = (pid_t)strtol(text, NULL, 10);
        ck_assert_int_gt(lvd, 1);

        t0 = now_usec();
        ck_assert_int_eq(kill(lvd, SIGKILL), 0);
        i = wait_event(&m, 0, "libvirt_connection", NULL, NULL, 3000);
        ck_assert_msg(i >= 0, "the module did not notice the killed libvirtd within 3 s");
        ck_assert(!m.events[i].connected);
        /* keepalive would take keepalive_interval x (count + 1) = 20 s at the least */
        ck_assert_uint_lt(now_usec() - t0, 3000 * 1000);
        ck_assert_ptr_nonnull(strstr(m.events[i].error, "closed the connection"));
        pw_init(m.w, PROTO_REQUEST, 0, 0, "domain_list");
        ck_assert_int_eq(lv_call(&m), -ENOTCONN);
        ck_assert(!log_contains(&m, "keepalive"));

        /* libvirtd back (the script sees the stale pidfile and starts a new one): reconnected */
        ck_assert_int_eq(libvirtd_private_start(dir, uri, sizeof(uri)), 0);
        i = wait_event(&m, (size_t)i + 1, "libvirt_connection", NULL, NULL, 15000);
        ck_assert_msg(i >= 0, "no reconnect after libvirtd came back");
        ck_assert(m.events[i].connected);
        ck_assert_uint_eq(list_total(&m), 0);

        close(m.fd);
        m.fd = -1;
        ck_assert_int_eq(wait_exit(&m, 5000), 0);
        lvmod_free(&m);
        libvirtd_private_stop(dir, uri);
}
END_TEST

/* ---- domain calls on workers: a private libvirtd behind a slow link ----
 *
 * A relay between the module and a private libvirtd that holds back every byte libvirtd sends
 * for RELAY_DELAY_MS, as a distant or busy daemon would: each libvirt call of the module then
 * takes at least that long, so calls served one after the other and calls served together are
 * told apart by the clock, whatever the load of the machine. */

#define RELAY_DELAY_MS 40
#define RELAY_PAIRS 8

struct relay_chunk {
        uint64_t due_usec;                  /* when it may go on to the client */
        size_t len;
        struct relay_chunk *next;
        uint8_t data[];
};

struct relay_pair {
        int client, server;                 /* -1 when unused */
        struct relay_chunk *head, *tail;    /* libvirtd's bytes held back, in order */
};

struct relay {
        int listen_fd, stop[2];
        char target[PATH_MAX];
        struct relay_pair pairs[RELAY_PAIRS];
        pthread_t thread;
};

static void relay_pair_close(struct relay_pair *p)
{
        while (p->head) {
                struct relay_chunk *c = p->head;
                p->head = c->next;
                free(c);
        }
        p->tail = NULL;
        if (p->client >= 0)
                close(p->client);
        if (p->server >= 0)
                close(p->server);
        p->client = p->server = -1;
}

static int unix_connect(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || strscpy(sa.sun_path, path, sizeof(sa.sun_path)) < 0 ||
            connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

static void *relay_thread(void *userdata)
{
        struct relay *rl = userdata;
        uint8_t buf[65536];

        for (;;) {
                struct pollfd pf[2 + 2 * RELAY_PAIRS];
                int n = 0, timeout = -1;
                uint64_t now = now_usec();

                pf[n++] = (struct pollfd){ rl->stop[0], POLLIN, 0 };
                pf[n++] = (struct pollfd){ rl->listen_fd, POLLIN, 0 };
                for (int i = 0; i < RELAY_PAIRS; i++) {
                        struct relay_pair *p = &rl->pairs[i];
                        /* what is due goes on first */
                        while (p->head && p->head->due_usec <= now) {
                                struct relay_chunk *c = p->head;
                                if (p->client >= 0 && write_all(p->client, c->data, c->len) < 0)
                                        relay_pair_close(p);
                                if (p->head != c)
                                        break;
                                p->head = c->next;
                                if (!p->head)
                                        p->tail = NULL;
                                free(c);
                        }
                        if (p->head) {
                                int ms = (int)((p->head->due_usec - now) / 1000) + 1;
                                timeout = timeout < 0 || ms < timeout ? ms : timeout;
                        }
                        pf[n++] = (struct pollfd){ p->client, POLLIN, 0 };
                        pf[n++] = (struct pollfd){ p->server, POLLIN, 0 };
                }
                if (poll(pf, (nfds_t)n, timeout) < 0)
                        continue;
                if (pf[0].revents)
                        break;
                if (pf[1].revents & POLLIN) {
                        int c = accept4(rl->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                        for (int i = 0; c >= 0 && i < RELAY_PAIRS; i++)
                                if (rl->pairs[i].client < 0) {
                                        rl->pairs[i].client = c;
                                        rl->pairs[i].server = unix_connect(rl->target);
                                        if (rl->pairs[i].server < 0)
                                                relay_pair_close(&rl->pairs[i]);
                                        c = -1;
                                }
                        if (c >= 0)
                                close(c);
                }
                for (int i = 0; i < RELAY_PAIRS; i++) {
                        struct relay_pair *p = &rl->pairs[i];
                        struct pollfd *cl = &pf[2 + 2 * i], *sv = &pf[3 + 2 * i];
                        ssize_t len;

                        if (p->client >= 0 && (cl->revents & (POLLIN | POLLHUP | POLLERR))) {
                                len = read(p->client, buf, sizeof(buf));
                                if (len <= 0 || write_all(p->server, buf, (size_t)len) < 0) {
                                        relay_pair_close(p);
                                        continue;
                                }
                        }
                        if (p->server >= 0 && (sv->revents & (POLLIN | POLLHUP | POLLERR))) {
                                struct relay_chunk *c;
                                len = read(p->server, buf, sizeof(buf));
                                if (len <= 0) {
                                        relay_pair_close(p);
                                        continue;
                                }
                                c = malloc(sizeof(*c) + (size_t)len);
                                ck_assert_ptr_nonnull(c);
                                c->due_usec = now_usec() + RELAY_DELAY_MS * 1000;
                                c->len = (size_t)len;
                                c->next = NULL;
                                memcpy(c->data, buf, (size_t)len);
                                if (p->tail)
                                        p->tail->next = c;
                                else
                                        p->head = c;
                                p->tail = c;
                        }
                }
        }
        for (int i = 0; i < RELAY_PAIRS; i++)
                relay_pair_close(&rl->pairs[i]);
        return NULL;
}

/* A relay listening at path, to the unix socket target. */
static void relay_start(struct relay *rl, const char *path, const char *target)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        memset(rl, 0, sizeof(*rl));
        for (int i = 0; i < RELAY_PAIRS; i++)
                rl->pairs[i].client = rl->pairs[i].server = -1;
        ck_assert_int_eq(strscpy(rl->target, target, sizeof(rl->target)), 0);
        ck_assert_int_ge(strscpy(sa.sun_path, path, sizeof(sa.sun_path)), 0);
        rl->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(rl->listen_fd, 0);
        ck_assert_int_eq(bind(rl->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(rl->listen_fd, 8), 0);
        ck_assert_int_eq(pipe2(rl->stop, O_CLOEXEC), 0);
        ck_assert_int_eq(pthread_create(&rl->thread, NULL, relay_thread, rl), 0);
}

static void relay_stop(struct relay *rl)
{
        ck_assert_int_eq(write(rl->stop[1], "x", 1), 1);
        ck_assert_int_eq(pthread_join(rl->thread, NULL), 0);
        close(rl->stop[0]);
        close(rl->stop[1]);
        close(rl->listen_fd);
}

/* Send the built request without waiting for its reply; its id. */
static uint32_t lv_send(struct lvmod *m)
{
        const uint8_t *frame;
        size_t len;
        uint32_t id = m->next_id++;

        ck_assert_int_eq(core_request_check(&libvirt_protocol, m->w, m->err, sizeof(m->err)), 0);
        pw_set_id(m->w, id);
        ck_assert_int_eq(pw_finish(m->w, &frame, &len), 0);
        ck_assert_int_eq(send(m->fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
        return id;
}

static uint32_t send_uuid(struct lvmod *m, const char *ep, const char *uuid)
{
        pw_init(m->w, PROTO_REQUEST, 0, 0, ep);
        pw_str(m->w, "instance_uuid", uuid);
        return lv_send(m);
}

/* One reply (events on the way are recorded), within 20 s: its id, status in *ret_status and
 * domain.state (or "") in ret_state; the number of events recorded before it in *ret_events. */
static uint32_t recv_reply(struct lvmod *m, int *ret_status, char ret_state[16], size_t *ret_events)
{
        for (;;) {
                int r = recv_frame(m, 20000);
                ck_assert_msg(r == 1, "no reply (%s)", r == 0 ? "timeout" : "module hung up");
                if (m->msg->type != PROTO_REPLY)
                        continue;
                *ret_status = m->msg->status;
                copy_str(ret_state, 16, proto_get(m->msg->body, "domain"), "state");
                *ret_events = m->n_events;
                return m->msg->id;
        }
}

#define N_SLOW 8
static const char *const slow_uuids[N_SLOW] = {
        "5a000000-0000-4000-8000-000000000001", "5a000000-0000-4000-8000-000000000002",
        "5a000000-0000-4000-8000-000000000003", "5a000000-0000-4000-8000-000000000004",
        "5a000000-0000-4000-8000-000000000005", "5a000000-0000-4000-8000-000000000006",
        "5a000000-0000-4000-8000-000000000007", "5a000000-0000-4000-8000-000000000008",
};

/* Issue 22: calls on different domains are served together (8 domain_state at once take far less
 * than 8 times one; one at a time they took 8 times one), and calls on one domain keep their
 * order: destroy, undefine and state of one domain sent at once are answered in order and act in
 * order (undefine after the destroy, state after the undefine), each answer before the event it
 * caused, and a listing sent after a destroy sees it done. */
START_TEST(test_domain_calls_concurrent_and_in_order)
{
        char dir[] = "/tmp/test-libvirt-lvd-XXXXXX", uri[PATH_MAX + 64], sock[PATH_MAX], relay_sock[PATH_MAX];
        char module_uri[PATH_MAX + 64], state[16];
        const char *a = slow_uuids[0], *b = slow_uuids[1];
        uint32_t ids[8], id;
        size_t evs, destroy_events = 0, undefine_events = 0;
        uint64_t t0, one_us, eight_us;
        struct relay rl;
        struct lvmod m;
        int st;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(libvirtd_private_start(dir, uri, sizeof(uri)), 0);
        ck_assert_int_eq(xsnprintf(sock, sizeof(sock), "%s/sock/libvirt-sock", dir), 0);
        ck_assert_int_eq(xsnprintf(relay_sock, sizeof(relay_sock), "%s/relay-sock", dir), 0);
        relay_start(&rl, relay_sock, sock);
        ck_assert_int_eq(xsnprintf(module_uri, sizeof(module_uri), "test+unix:///default?socket=%s", relay_sock), 0);
        lvmod_start(&m, module_uri, NULL);
        /* define and start each, all sent at once: each start comes after its define */
        for (int i = 0; i < N_SLOW; i++) {
                char name[16];
                (void)snprintf(name, sizeof(name), "slow-%d", i);
                build_define(&m, slow_uuids[i], name, 1, 64, 1);
                (void)lv_send(&m);
                (void)send_uuid(&m, "domain_start", slow_uuids[i]);
        }
        for (int i = 0; i < 2 * N_SLOW; i++) {
                (void)recv_reply(&m, &st, state, &evs);
                ck_assert_msg(st == 0, "define or start: %s", proto_get_str(m.msg->body, "error", ""));
        }

        /* their events first (each is judged in its domain's lane: two calls to libvirtd) */
        for (int i = 0; i < N_SLOW; i++)
                ck_assert_int_ge(wait_event(&m, 0, "domain_lifecycle", slow_uuids[i], "started", 10000), 0);
        /* one, then eight at once (each makes the same five calls to libvirtd) */
        t0 = now_usec();
        ck_assert_int_eq(call_uuid(&m, "domain_state", a), 0);
        one_us = now_usec() - t0;
        ck_assert_uint_ge(one_us, 2 * RELAY_DELAY_MS * 1000); /* the relay holds every answer back */
        t0 = now_usec();
        for (int i = 0; i < N_SLOW; i++)
                ids[i] = send_uuid(&m, "domain_state", slow_uuids[i]);
        for (int i = 0; i < N_SLOW; i++) {
                id = recv_reply(&m, &st, state, &evs);
                ck_assert_int_eq(st, 0);
                ck_assert_str_eq(state, "running");
                ck_assert_uint_ge(id, ids[0]);
                ck_assert_uint_le(id, ids[N_SLOW - 1]);
        }
        eight_us = now_usec() - t0;
        fprintf(stderr, "domain_state through a %d ms relay: one %.0f ms, %d at once %.0f ms\n", RELAY_DELAY_MS,
                (double)one_us / 1000, N_SLOW, (double)eight_us / 1000);
        ck_assert_msg(eight_us < 5 * one_us, "%d calls on different domains took %.0f ms, one took %.0f ms: not concurrent",
                      N_SLOW, (double)eight_us / 1000, (double)one_us / 1000);

        /* one domain's calls at once, with another domain's between them */
        ids[0] = send_uuid(&m, "domain_destroy", a);
        ids[1] = send_uuid(&m, "domain_state", b);
        ids[2] = send_uuid(&m, "domain_undefine", a);
        ids[3] = send_uuid(&m, "domain_destroy", b);
        ids[4] = send_uuid(&m, "domain_state", a);
        {
                uint32_t a_next = 0; /* index into a's ids: 0, 2, 4 */
                const uint32_t a_ids[3] = { ids[0], ids[2], ids[4] };
                for (int k = 0; k < 5; k++) {
                        id = recv_reply(&m, &st, state, &evs);
                        if (id == ids[1] || id == ids[3]) {
                                ck_assert_int_eq(st, 0);
                                continue;
                        }
                        ck_assert_msg(a_next < 3 && id == a_ids[a_next], "domain %s: reply %u out of order", a, id);
                        if (a_next == 0) {
                                ck_assert_int_eq(st, 0);
                                ck_assert_str_eq(state, "shutoff");
                                destroy_events = evs;
                        } else if (a_next == 1) {
                                ck_assert_msg(st == 0, "undefine after destroy: %d", st); /* -EBUSY: ran first */
                                undefine_events = evs;
                        } else {
                                ck_assert_int_eq(st, -ENOENT); /* after the undefine */
                        }
                        a_next++;
                }
                ck_assert_uint_eq(a_next, 3);
        }
        /* the events came after the answers of the calls that caused them */
        for (size_t i = 0; i < destroy_events; i++)
                ck_assert_msg(!(streq(m.events[i].instance_uuid, a) && streq(m.events[i].event, "stopped")),
                              "the stopped event of %s came before the destroy's answer", a);
        for (size_t i = 0; i < undefine_events; i++)
                ck_assert_msg(!(streq(m.events[i].instance_uuid, a) && streq(m.events[i].event, "undefined")),
                              "the undefined event of %s came before the undefine's answer", a);
        ck_assert_int_ge(wait_event(&m, destroy_events, "domain_lifecycle", a, "stopped", 5000), 0);
        ck_assert_int_ge(wait_event(&m, undefine_events, "domain_lifecycle", a, "undefined", 5000), 0);

        /* a listing (main thread) after a destroy (worker) sent at once: answered after it, sees it */
        ids[0] = send_uuid(&m, "domain_destroy", slow_uuids[2]);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "domain_list");
        ids[1] = lv_send(&m);
        id = recv_reply(&m, &st, state, &evs);
        ck_assert_uint_eq(id, ids[0]);
        ck_assert_int_eq(st, 0);
        id = recv_reply(&m, &st, state, &evs);
        ck_assert_uint_eq(id, ids[1]);
        ck_assert_int_eq(st, 0);
        {
                const struct proto_value *doms = proto_get(m.msg->body, "domains");
                bool seen = false;
                ck_assert_uint_eq(proto_get_u64(m.msg->body, "total", 0), N_SLOW - 1);
                for (const struct proto_value *d = doms ? doms->child : NULL; d; d = d->next)
                        if (streq(proto_get_str(d, "instance_uuid", ""), slow_uuids[2])) {
                                ck_assert_str_eq(proto_get_str(d, "state", ""), "shutoff");
                                seen = true;
                        }
                ck_assert(seen);
        }

        for (int i = 1; i < N_SLOW; i++) {
                (void)send_uuid(&m, "domain_destroy", slow_uuids[i]);
                (void)send_uuid(&m, "domain_undefine", slow_uuids[i]);
        }
        for (int i = 1; i < 2 * N_SLOW - 1; i++) {
                (void)recv_reply(&m, &st, state, &evs);
                ck_assert_msg(st == 0, "destroy or undefine: %s", proto_get_str(m.msg->body, "error", ""));
        }
        ck_assert_uint_eq(list_total(&m), 0);
        close(m.fd);
        m.fd = -1;
        ck_assert_int_eq(wait_exit(&m, 10000), 0);
        lvmod_free(&m);
        relay_stop(&rl);
        libvirtd_private_stop(dir, uri);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("libvirt-module");
        TCase *tc = tcase_create("raw-module");
        SRunner *sr;
        int failed;

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_domain_lifecycle);
        tcase_add_test(tc, test_domain_lifecycle_on_workers);
        tcase_add_test(tc, test_domain_list_pages);
        tcase_add_test(tc, test_domain_list_skips_lookalikes_in_pages);
        tcase_add_test(tc, test_domain_list_full_pages);
        tcase_add_test(tc, test_refusals_define_nothing);
        tcase_add_test(tc, test_unreachable_libvirt);
        tcase_add_test(tc, test_reconnect_when_libvirt_appears);
        tcase_add_test(tc, test_libvirt_loaded_after_hello);
        tcase_add_test(tc, test_killed_libvirtd_noticed_without_keepalive);
        tcase_add_test(tc, test_domain_calls_concurrent_and_in_order);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
