/* test-modrt.c - the module runtime (src/lib/modrt.c) with a module of the
 * test's own: a small entrypoint table (a plain call, a privileged call that
 * is audited, a call answered later with modrt_defer/modrt_complete, a call
 * that takes a descriptor) served by modrt_main() in a forked child of this
 * program over a socketpair, exactly as a real module is served (--fd 3; the
 * runtime drops every capability first: the test's plug is hardware-observe,
 * which keeps none). The test is the core, on a raw socket.
 *
 * What is checked: the hello (plug, pid, the table in order), dispatch to the
 * right handler with the validated body, handler errors answered with their
 * reason, the deferred answer, the descriptor passed, the audit line of a
 * privileged call (a failure with errno and reason; a deferred call audited
 * when answered, not when taken), an event sent from inside a handler (before
 * its reply), request ids (0, repeated, going back, in flight, wrapping),
 * and fate-sharing (issue 20): a request the core's own checks would have
 * refused (unknown entrypoint, schema violation, descriptor missing or
 * unexpected) is not answered: the runtime logs it with the field, closes the
 * connection and the module exits 1; bad frames likewise; the end of the
 * stream is a clean exit. */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "log.h"
#include "modrt.h"
#include "plugs.h"

/* ---- the test module ---- */

enum { EP_ECHO, EP_GUARDED, EP_LATER, EP_FINISH, EP_READ_FD, EP_GUARDED_LATER, EP_NOTIFY, EP_ELSEWHERE, _EP_MAX };

static const struct schema_field echo_req[] = {
        { .name = "port_uuid", .kind = SCH_UUID, .required = true },
        { .name = "mtu", .kind = SCH_U64, .required = false, .min = 68, .max = 9000 },
        { .name = NULL },
};

static const struct proto_entrypoint test_eps[_EP_MAX] = {
        [EP_ECHO] = { "echo", echo_req, false },
        [EP_GUARDED] = { "guarded", schema_port_only_req, true },
        [EP_LATER] = { "later", schema_empty_req, false },
        [EP_FINISH] = { "finish", schema_empty_req, false },
        [EP_READ_FD] = { "read_fd", schema_empty_req, false, .takes_fd = true },
        [EP_GUARDED_LATER] = { "guarded_later", schema_port_only_req, true },
        [EP_NOTIFY] = { "notify", schema_empty_req, false },
        [EP_ELSEWHERE] = { "elsewhere", schema_port_only_req, true },
};

static const struct module_protocol test_protocol = {
        .plug = PLUG_HARDWARE_OBSERVE,
        .entrypoints = test_eps,
        .n_entrypoints = _EP_MAX,
};

struct tm_state {
        struct modrt *rt;
        struct modrt_deferred *pending; /* the "later" call, answered by "finish" */
        struct modrt_deferred *elsewhere; /* the "elsewhere" call, served on a thread by "finish" */
        struct proto_value *elsewhere_req; /* its request, copied (the frame's arena is reused) */
};

static int handle_echo(void *state, struct modrt_call *call)
{
        (void)state;
        if (proto_get_u64(call->req, "mtu", 1500) == 1234) {
                (void)snprintf(call->err, sizeof(call->err), "mtu 1234 is cursed");
                return -EDOM;
        }
        pw_str(call->reply, "port_uuid", proto_get_str(call->req, "port_uuid", ""));
        pw_u64(call->reply, "mtu", proto_get_u64(call->req, "mtu", 1500));
        return 0;
}

#define REFUSED_UUID "0123abcd-ef01-4234-8678-9abcdef0dead"

static int handle_guarded(void *state, struct modrt_call *call)
{
        (void)state;
        (void)snprintf(call->audit, sizeof(call->audit), "dev=tst0");
        if (streq(proto_get_str(call->req, "port_uuid", ""), REFUSED_UUID)) {
                (void)snprintf(call->err, sizeof(call->err), "refused by the test");
                return -EPERM;
        }
        return 0;
}

/* Privileged and answered later: audited when answered, not when taken. */
static int handle_guarded_later(void *state, struct modrt_call *call)
{
        struct tm_state *st = state;

        (void)snprintf(call->audit, sizeof(call->audit), "dev=tst1");
        st->pending = modrt_defer(st->rt, call);
        return st->pending ? MODRT_DEFERRED : -ENOMEM;
}

/* An event sent from inside a handler goes out before the handler's reply. */
static int handle_notify(void *state, struct modrt_call *call)
{
        struct tm_state *st = state;
        static struct proto_writer ev;

        (void)call;
        pw_init(&ev, PROTO_EVENT, 0, 0, "something_changed");
        pw_str(&ev, "what", "the test");
        return modrt_send_event(st->rt, &ev);
}

static int handle_later(void *state, struct modrt_call *call)
{
        struct tm_state *st = state;

        st->pending = modrt_defer(st->rt, call);
        return st->pending ? MODRT_DEFERRED : -ENOMEM;
}

static void fill_later(struct proto_writer *w, void *userdata)
{
        (void)userdata;
        pw_str(w, "done", "yes");
}

/* Privileged, served on a thread of its own (as the libvirt module's workers serve domain calls):
 * the handler keeps a copy of the request; "finish" runs it and answers with modrt_complete_call. */
static int handle_elsewhere(void *state, struct modrt_call *call)
{
        struct tm_state *st = state;

        st->elsewhere_req = proto_value_dup(call->req);
        st->elsewhere = st->elsewhere_req ? modrt_defer(st->rt, call) : NULL;
        if (!st->elsewhere) {
                free(st->elsewhere_req);
                st->elsewhere_req = NULL;
                return -ENOMEM;
        }
        return MODRT_DEFERRED;
}

struct elsewhere_job {
        struct modrt_call call;
        int status;
};

static void *elsewhere_thread(void *userdata)
{
        struct elsewhere_job *j = userdata;
        const char *port = proto_get_str(j->call.req, "port_uuid", "");

        (void)snprintf(j->call.audit, sizeof(j->call.audit), "dev=tst2");
        if (streq(port, REFUSED_UUID)) {
                pw_str(j->call.reply, "dropped", "members of a failed call are not sent");
                (void)snprintf(j->call.err, sizeof(j->call.err), "refused on a thread");
                j->status = -EPERM;
                return NULL;
        }
        pw_str(j->call.reply, "port_uuid", port);
        pw_str(j->call.reply, "served", "on a thread");
        j->status = 0;
        return NULL;
}

static int handle_finish(void *state, struct modrt_call *call)
{
        struct tm_state *st = state;

        (void)call;
        if (st->elsewhere) {
                static struct proto_writer w;
                struct elsewhere_job j = { .call = { .req = st->elsewhere_req, .reply = &w, .fd = -1 } };
                pthread_t t;

                modrt_deferred_reply_begin(st->elsewhere, &w);
                if (pthread_create(&t, NULL, elsewhere_thread, &j) != 0)
                        return -EAGAIN;
                (void)pthread_join(t, NULL);
                (void)modrt_complete_call(st->rt, st->elsewhere, j.status, &j.call);
                st->elsewhere = NULL;
                free(st->elsewhere_req);
                st->elsewhere_req = NULL;
                return 0;
        }
        if (!st->pending)
                return -ENOENT;
        (void)modrt_complete(st->rt, st->pending, 0, NULL, fill_later, NULL);
        st->pending = NULL;
        return 0;
}

static int handle_read_fd(void *state, struct modrt_call *call)
{
        char buf[64];
        ssize_t n;

        (void)state;
        n = read(call->fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        pw_str(call->reply, "read", buf);
        return 0;
}

static const struct modrt_entry test_entries[_EP_MAX] = {
        [EP_ECHO] = { &test_eps[EP_ECHO], handle_echo },
        [EP_GUARDED] = { &test_eps[EP_GUARDED], handle_guarded },
        [EP_LATER] = { &test_eps[EP_LATER], handle_later },
        [EP_FINISH] = { &test_eps[EP_FINISH], handle_finish },
        [EP_READ_FD] = { &test_eps[EP_READ_FD], handle_read_fd },
        [EP_GUARDED_LATER] = { &test_eps[EP_GUARDED_LATER], handle_guarded_later },
        [EP_NOTIFY] = { &test_eps[EP_NOTIFY], handle_notify },
        [EP_ELSEWHERE] = { &test_eps[EP_ELSEWHERE], handle_elsewhere },
};

static struct tm_state tm;

static int tm_init(struct modrt *rt, void **ret_state)
{
        tm.rt = rt;
        *ret_state = &tm;
        return 0;
}

static const struct modrt_module test_module = {
        .protocol = &test_protocol,
        .entries = test_entries,
        .n_entries = _EP_MAX,
        .init = tm_init,
};

/* ---- the core's side ---- */

static bool file_has(const char *path, const char *needle)
{
        _cleanup_free_ char *text = NULL;
        return read_file_bounded(path, 1 << 20, &text, NULL) == 0 && strstr(text, needle);
}


struct peer {
        pid_t pid;
        int fd;
        char log[64];
        struct proto_msg *msg;
        struct proto_writer *w;
};

static struct peer m;

static void peer_start(void)
{
        int sv[2];

        (void)strscpy(m.log, "/tmp/nova-modrt-XXXXXX", sizeof(m.log));
        int lfd = mkstemp(m.log);
        ck_assert_int_ge(lfd, 0);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        m.pid = fork();
        ck_assert_int_ge(m.pid, 0);
        if (m.pid == 0) {
                char *argv[] = { "nova-test-module", "--fd", "3", NULL };
                close(sv[0]); /* the core's end: only the test holds it */
                (void)dup2(lfd, 2);
                (void)dup2(sv[1], 3);
                (void)unsetenv("SNAP");
                _exit(modrt_main(&test_module, 3, argv));
        }
        close(lfd);
        close(sv[1]);
        m.fd = sv[0];
        m.msg = malloc(sizeof(*m.msg));
        m.w = malloc(sizeof(*m.w));
        ck_assert(m.msg && m.w);
}

/* The next frame into m.msg: true, or false when the module closed the connection. */
static bool peer_recv(void)
{
        uint8_t buf[PROTO_MAX_FRAME];
        char err[256];
        struct timeval tv = { .tv_sec = 5 };
        ssize_t n;

        ck_assert_int_eq(setsockopt(m.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
        n = recv(m.fd, buf, sizeof(buf), 0);
        if (n == 0)
                return false;
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(proto_decode(buf, (size_t)n, m.msg, err, sizeof(err)), 0);
        return true;
}

static void peer_send_bytes(const void *buf, size_t len, int fd)
{
        struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control = { 0 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (fd >= 0) {
                struct cmsghdr *c;
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        ck_assert_int_eq(sendmsg(m.fd, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

/* Send m.w with request id `id` (and fd, -1 for none); the reply's status in m.msg, or 1 when the module hung up. */
static int call_fd(uint32_t id, int fd)
{
        const uint8_t *buf;
        size_t len;

        pw_set_id(m.w, id);
        ck_assert_int_eq(pw_finish(m.w, &buf, &len), 0);
        peer_send_bytes(buf, len, fd);
        if (!peer_recv())
                return 1;
        ck_assert_int_eq(m.msg->type, PROTO_REPLY);
        ck_assert_uint_eq(m.msg->id, id);
        return m.msg->status;
}

static int call(uint32_t id) { return call_fd(id, -1); }

/* Close our end; the module's exit status. */
static int peer_finish(void)
{
        int status;

        m.fd = safe_close(m.fd);
        ck_assert_int_eq(waitpid(m.pid, &status, 0), m.pid);
        free(m.msg);
        free(m.w);
        ck_assert(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* The module hung up after a violation, exits 1 and logged `why`. */
static void expect_fatal(int r, const char *why)
{
        ck_assert_int_eq(r, 1);
        ck_assert_int_eq(peer_finish(), 1);
        ck_assert_msg(file_has(m.log, why), "'%s' not in the module's log %s", why, m.log);
        (void)unlink(m.log);
}

#define UUID "0123abcd-ef01-4234-8678-9abcdef01234"

static void start_and_hello(void)
{
        const struct proto_value *eps, *e;
        size_t i = 0;

        peer_start();
        ck_assert(peer_recv());
        ck_assert_int_eq(m.msg->type, PROTO_HELLO);
        ck_assert_str_eq(m.msg->name, "hardware-observe");
        ck_assert_uint_eq(proto_get_u64(m.msg->body, "pid", 0), (uint64_t)m.pid);
        ck_assert_uint_eq(proto_get_u64(m.msg->body, "version", 0), PROTO_VERSION);
        ck_assert_uint_eq(proto_get_u64(m.msg->body, "caps_effective", 1), 0);
        ck_assert(proto_get_bool(m.msg->body, "no_new_privs", false));
        eps = proto_get(m.msg->body, "entrypoints");
        for (e = eps->child; e; e = e->next, i++)
                ck_assert_str_eq(e->v.s, test_eps[i].name); /* the table, in order */
        ck_assert_uint_eq(i, _EP_MAX);
        /* the core's acknowledgement: nothing comes back */
        pw_init(m.w, PROTO_HELLO, 0, 0, "core");
        pw_bool(m.w, "accepted", true);
        {
                const uint8_t *buf;
                size_t len;
                ck_assert_int_eq(pw_finish(m.w, &buf, &len), 0);
                peer_send_bytes(buf, len, -1);
        }
}

/* ---- tests ---- */

START_TEST(test_dispatch)
{
        start_and_hello();
        pw_init(m.w, PROTO_REQUEST, 0, 0, "echo");
        pw_str(m.w, "port_uuid", UUID);
        pw_u64(m.w, "mtu", 1450);
        ck_assert_int_eq(call(1), 0);
        ck_assert_str_eq(m.msg->name, "echo");
        ck_assert_str_eq(proto_get_str(m.msg->body, "port_uuid", ""), UUID);
        ck_assert_uint_eq(proto_get_u64(m.msg->body, "mtu", 0), 1450);
        /* a handler's error: answered with its reason, the connection stays */
        pw_init(m.w, PROTO_REQUEST, 0, 0, "echo");
        pw_str(m.w, "port_uuid", UUID);
        pw_u64(m.w, "mtu", 1234);
        ck_assert_int_eq(call(2), -EDOM);
        ck_assert_str_eq(proto_get_str(m.msg->body, "error", ""), "mtu 1234 is cursed");
        ck_assert_ptr_null(proto_get(m.msg->body, "port_uuid")); /* members of a failed call are dropped */
        /* privileged: one audit line with the identifiers and the handler's detail */
        pw_init(m.w, PROTO_REQUEST, 0, 0, "guarded");
        pw_str(m.w, "port_uuid", UUID);
        ck_assert_int_eq(call(3), 0);
        /* a descriptor */
        {
                int p[2];
                ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
                ck_assert_int_eq(write(p[1], "bytes", 5), 5);
                close(p[1]);
                pw_init(m.w, PROTO_REQUEST, 0, 0, "read_fd");
                ck_assert_int_eq(call_fd(4, p[0]), 0);
                close(p[0]);
                ck_assert_str_eq(proto_get_str(m.msg->body, "read", ""), "bytes");
        }
        /* the end of the stream: a clean exit */
        ck_assert_int_eq(peer_finish(), 0);
        ck_assert(file_has(m.log, "audit: guarded port_uuid=" UUID " dev=tst0 result=ok"));
        ck_assert(!file_has(m.log, "audit: echo"));
        (void)unlink(m.log);
}
END_TEST

/* A deferred call: the answer comes later, in between other calls are served;
 * its id stays in flight until then. */
START_TEST(test_deferred)
{
        start_and_hello();
        pw_init(m.w, PROTO_REQUEST, 0, 0, "later");
        {
                const uint8_t *buf;
                size_t len;
                pw_set_id(m.w, 10);
                ck_assert_int_eq(pw_finish(m.w, &buf, &len), 0);
                peer_send_bytes(buf, len, -1);
        }
        pw_init(m.w, PROTO_REQUEST, 0, 0, "finish");
        {
                const uint8_t *buf;
                size_t len;
                pw_set_id(m.w, 11);
                ck_assert_int_eq(pw_finish(m.w, &buf, &len), 0);
                peer_send_bytes(buf, len, -1);
        }
        /* the deferred answer (sent by finish's handler) first, then finish's own */
        ck_assert(peer_recv());
        ck_assert_uint_eq(m.msg->id, 10);
        ck_assert_str_eq(m.msg->name, "later");
        ck_assert_str_eq(proto_get_str(m.msg->body, "done", ""), "yes");
        ck_assert(peer_recv());
        ck_assert_uint_eq(m.msg->id, 11);
        ck_assert_int_eq(m.msg->status, 0);
        ck_assert_int_eq(peer_finish(), 0);
        (void)unlink(m.log);

        /* a request reusing the id of a call still deferred: a violation, not run */
        start_and_hello();
        pw_init(m.w, PROTO_REQUEST, 0, 0, "later");
        {
                const uint8_t *buf;
                size_t len;
                pw_set_id(m.w, 20);
                ck_assert_int_eq(pw_finish(m.w, &buf, &len), 0);
                peer_send_bytes(buf, len, -1);
        }
        pw_init(m.w, PROTO_REQUEST, 0, 0, "finish");
        expect_fatal(call(20), "protocol violation: request id 20 is still in flight");
}
END_TEST

START_TEST(test_request_ids)
{
        start_and_hello();
        pw_init(m.w, PROTO_REQUEST, 0, 0, "echo");
        pw_str(m.w, "port_uuid", UUID);
        ck_assert_int_eq(call(0xfffffffeu), 0);
        ck_assert_int_eq(call(0xffffffffu), 0);
        ck_assert_int_eq(call(1), 0); /* the counter wrapped: serial-number order */
        expect_fatal(call(1), "protocol violation: request id 1 after 1");

        start_and_hello();
        pw_init(m.w, PROTO_REQUEST, 0, 0, "echo");
        pw_str(m.w, "port_uuid", UUID);
        ck_assert_int_eq(call(500), 0);
        expect_fatal(call(499), "protocol violation: request id 499 after 500");

        start_and_hello();
        pw_init(m.w, PROTO_REQUEST, 0, 0, "echo");
        pw_str(m.w, "port_uuid", UUID);
        expect_fatal(call(0), "protocol violation: request with id 0");
}
END_TEST

/* Issue 20, fate-sharing: what the core's own checks would have refused is
 * not answered; the module logs it with the field and exits 1. */
START_TEST(test_fatal_schema_violations)
{
        static const struct {
                const char *name;
                const char *field, *value;
                const char *why;
        } bad[] = {
                { "echo", "port_uuid", "../../etc/passwd", "request 7: echo: port_uuid: not a canonical lowercase UUID" },
                { "echo", "ifname", "eth0", "request 7: echo: ifname" },
                { "guarded", "port_uuid", "0123ABCD-EF01-4234-8678-9ABCDEF01234", "request 7: guarded: port_uuid" },
                { "echo_all", "port_uuid", UUID, "request 7: unknown entrypoint 'echo_all'" },
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                start_and_hello();
                pw_init(m.w, PROTO_REQUEST, 0, 0, bad[i].name);
                pw_str(m.w, bad[i].field, bad[i].value);
                expect_fatal(call(7), bad[i].why);
                ck_assert(!file_has(m.log, "audit:")); /* never run, so never audited */
        }
        /* a value out of range */
        start_and_hello();
        pw_init(m.w, PROTO_REQUEST, 0, 0, "echo");
        pw_str(m.w, "port_uuid", UUID);
        pw_u64(m.w, "mtu", 65530);
        expect_fatal(call(1), "request 1: echo: mtu");
        /* a descriptor missing, or one where none is taken */
        start_and_hello();
        pw_init(m.w, PROTO_REQUEST, 0, 0, "read_fd");
        expect_fatal(call(1), "request 1: read_fd: no descriptor passed");
        start_and_hello();
        pw_init(m.w, PROTO_REQUEST, 0, 0, "echo");
        pw_str(m.w, "port_uuid", UUID);
        expect_fatal(call_fd(1, STDIN_FILENO), "request 1: echo: a descriptor passed");
}
END_TEST

START_TEST(test_bad_frames)
{
        static const uint8_t garbage[] = "GET / HTTP/1.1\r\n\r\n";
        uint8_t *big;

        start_and_hello();
        peer_send_bytes(garbage, sizeof(garbage), -1);
        expect_fatal(peer_recv() ? 0 : 1, "protocol violation:");

        start_and_hello();
        big = calloc(1, PROTO_MAX_FRAME + 100);
        ck_assert_ptr_nonnull(big);
        peer_send_bytes(big, PROTO_MAX_FRAME + 100, -1);
        free(big);
        expect_fatal(peer_recv() ? 0 : 1, "protocol violation: frame of 65636 bytes");

        start_and_hello();
        peer_send_bytes("", 0, -1);
        expect_fatal(peer_recv() ? 0 : 1, "protocol violation: empty frame (0 bytes)");

        /* a reply sent to the module */
        start_and_hello();
        pw_init(m.w, PROTO_REPLY, 1, 0, "echo");
        expect_fatal(call(1), "protocol violation: unexpected reply frame");

        /* the core refusing the module: a clean exit (it must not be restarted in a loop) */
        start_and_hello();
        pw_init(m.w, PROTO_HELLO, 0, 0, "core");
        pw_bool(m.w, "accepted", false);
        pw_str(m.w, "reason", "go away");
        {
                const uint8_t *buf;
                size_t len;
                ck_assert_int_eq(pw_finish(m.w, &buf, &len), 0);
                peer_send_bytes(buf, len, -1);
        }
        ck_assert(!peer_recv());
        ck_assert_int_eq(peer_finish(), 0);
        ck_assert(file_has(m.log, "the core refused this module: go away"));
        (void)unlink(m.log);

        /* ... but one the core ends for breaking the protocol exits 1, to be restarted */
        start_and_hello();
        pw_init(m.w, PROTO_HELLO, 0, 0, "core");
        pw_bool(m.w, "accepted", false);
        pw_str(m.w, "reason", "protocol violation: unsolicited reply 9");
        pw_bool(m.w, "restart", true);
        {
                const uint8_t *buf;
                size_t len;
                ck_assert_int_eq(pw_finish(m.w, &buf, &len), 0);
                peer_send_bytes(buf, len, -1);
        }
        expect_fatal(peer_recv() ? 0 : 1, "the core ended this module's connection: protocol violation: unsolicited "
                                          "reply 9; exiting to be restarted");
}
END_TEST


/* Send m.w with id without waiting for an answer. */
static void send_only(uint32_t id)
{
        const uint8_t *buf;
        size_t len;

        pw_set_id(m.w, id);
        ck_assert_int_eq(pw_finish(m.w, &buf, &len), 0);
        peer_send_bytes(buf, len, -1);
}

/* One audit line per privileged call, with its result: a failure names errno and the
 * handler's reason; a deferred call is audited when it is answered, not when it is taken. */
START_TEST(test_audit_lines)
{
        start_and_hello();
        pw_init(m.w, PROTO_REQUEST, 0, 0, "guarded");
        pw_str(m.w, "port_uuid", REFUSED_UUID);
        ck_assert_int_eq(call(1), -EPERM);
        ck_assert_str_eq(proto_get_str(m.msg->body, "error", ""), "refused by the test");

        pw_init(m.w, PROTO_REQUEST, 0, 0, "guarded_later");
        pw_str(m.w, "port_uuid", UUID);
        send_only(2);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "echo"); /* answered: guarded_later's handler has run */
        pw_str(m.w, "port_uuid", UUID);
        ck_assert_int_eq(call(3), 0);
        ck_assert_msg(!file_has(m.log, "audit: guarded_later"), "audited before it was answered");
        pw_init(m.w, PROTO_REQUEST, 0, 0, "finish");
        send_only(4);
        ck_assert(peer_recv());
        ck_assert_uint_eq(m.msg->id, 2);
        ck_assert_int_eq(m.msg->status, 0);
        ck_assert(peer_recv());
        ck_assert_uint_eq(m.msg->id, 4);
        ck_assert_int_eq(peer_finish(), 0);
        ck_assert_msg(file_has(m.log, "audit: guarded port_uuid=" REFUSED_UUID
                                      " dev=tst0 result=error errno=1 (refused by the test)"),
                      "no failure audit line in %s", m.log);
        ck_assert_msg(file_has(m.log, "audit: guarded_later port_uuid=" UUID " dev=tst1 result=ok"),
                      "no audit line for the deferred call in %s", m.log);
        ck_assert(!file_has(m.log, "audit: echo"));
        ck_assert(!file_has(m.log, "audit: finish"));
        (void)unlink(m.log);
}
END_TEST

/* A call served elsewhere (a thread) and answered with modrt_complete_call: its reply has the
 * members the thread wrote, a failure its reason and errno (and none of its members), and the
 * audit line carries what the thread added. */
START_TEST(test_served_elsewhere)
{
        start_and_hello();
        pw_init(m.w, PROTO_REQUEST, 0, 0, "elsewhere");
        pw_str(m.w, "port_uuid", UUID);
        send_only(5);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "finish");
        send_only(6);
        ck_assert(peer_recv());
        ck_assert_uint_eq(m.msg->id, 5);
        ck_assert_str_eq(m.msg->name, "elsewhere");
        ck_assert_int_eq(m.msg->status, 0);
        ck_assert_str_eq(proto_get_str(m.msg->body, "port_uuid", ""), UUID);
        ck_assert_str_eq(proto_get_str(m.msg->body, "served", ""), "on a thread");
        ck_assert(peer_recv());
        ck_assert_uint_eq(m.msg->id, 6);
        ck_assert_int_eq(m.msg->status, 0);

        pw_init(m.w, PROTO_REQUEST, 0, 0, "elsewhere");
        pw_str(m.w, "port_uuid", REFUSED_UUID);
        send_only(7);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "finish");
        send_only(8);
        ck_assert(peer_recv());
        ck_assert_uint_eq(m.msg->id, 7);
        ck_assert_int_eq(m.msg->status, -EPERM);
        ck_assert_str_eq(proto_get_str(m.msg->body, "error", ""), "refused on a thread");
        ck_assert_ptr_null(proto_get(m.msg->body, "dropped"));
        ck_assert(peer_recv());
        ck_assert_uint_eq(m.msg->id, 8);
        ck_assert_int_eq(peer_finish(), 0);
        ck_assert_msg(file_has(m.log, "audit: elsewhere port_uuid=" UUID " dev=tst2 result=ok"),
                      "no audit line for the call served elsewhere in %s", m.log);
        ck_assert_msg(file_has(m.log, "audit: elsewhere port_uuid=" REFUSED_UUID
                                      " dev=tst2 result=error errno=1 (refused on a thread)"),
                      "no failure audit line for the call served elsewhere in %s", m.log);
        (void)unlink(m.log);
}
END_TEST

START_TEST(test_event_from_a_handler)
{
        start_and_hello();
        pw_init(m.w, PROTO_REQUEST, 0, 0, "notify");
        send_only(5);
        ck_assert(peer_recv());
        ck_assert_int_eq(m.msg->type, PROTO_EVENT);
        ck_assert_uint_eq(m.msg->id, 0);
        ck_assert_str_eq(m.msg->name, "something_changed");
        ck_assert_str_eq(proto_get_str(m.msg->body, "what", ""), "the test");
        ck_assert(peer_recv());
        ck_assert_int_eq(m.msg->type, PROTO_REPLY);
        ck_assert_uint_eq(m.msg->id, 5);
        ck_assert_str_eq(m.msg->name, "notify");
        ck_assert_int_eq(m.msg->status, 0);
        ck_assert_int_eq(peer_finish(), 0);
        (void)unlink(m.log);
}
END_TEST

/* A module whose own loop fails (nova-libvirt when libvirt.so cannot be loaded after its
 * hello): connected to the core's module socket (--connect, as in the snap), it exits 1
 * after that one connection; only the loss of the core's connection makes it connect again.
 * (It used to connect, say hello and fail again at once, in a loop.) */
static int failing_run(struct modrt *rt, void *state)
{
        (void)rt;
        (void)state;
        return -EIO;
}

static const struct modrt_module failing_module = {
        .protocol = &test_protocol,
        .entries = test_entries,
        .n_entries = _EP_MAX,
        .init = tm_init,
        .run = failing_run,
};

START_TEST(test_failing_run_ends_the_module)
{
        char dir[] = "/tmp/nova-modrt-sock-XXXXXX", path[PATH_MAX];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = 1 };
        int lfd, cfd, status = 0;
        pid_t pid;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/modules.socket", dir), 0);
        ck_assert_int_eq(strscpy(sa.sun_path, path, sizeof(sa.sun_path)) >= 0, 1);
        lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(lfd, 0);
        ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(lfd, 8), 0);
        ck_assert_int_eq(setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char *argv[] = { "nova-test-module", "--connect", path, NULL };
                int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
                (void)dup2(devnull, 2);
                (void)unsetenv("SNAP");
                _exit(modrt_main(&failing_module, 3, argv));
        }
        cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(cfd, 0); /* the first connection, with its hello */
        for (int i = 0; i < 300 && waitpid(pid, &status, WNOHANG) == 0; i++)
                usleep(10 * 1000);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "the module did not exit 1 (status %#x)", status);
        ck_assert_int_lt(accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), 0); /* and never came back */
        close(cfd);
        close(lfd);
        unlink(path);
        rmdir(dir);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("modrt");
        TCase *tc = tcase_create("runtime");
        SRunner *sr;
        int failed;

        log_init("test", LOG_LVL_ERR);
        tcase_add_test(tc, test_dispatch);
        tcase_add_test(tc, test_deferred);
        tcase_add_test(tc, test_request_ids);
        tcase_add_test(tc, test_fatal_schema_violations);
        tcase_add_test(tc, test_bad_frames);
        tcase_add_test(tc, test_audit_lines);
        tcase_add_test(tc, test_event_from_a_handler);
        tcase_add_test(tc, test_served_elsewhere);
        tcase_add_test(tc, test_failing_run_ends_the_module);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
