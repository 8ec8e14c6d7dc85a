/* modrt.c - see modrt.h */
#include "modrt.h"

#include "log.h"
#include "snapctl.h"

#include <cap-ng.h>
#include <getopt.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>

struct modrt {
        const struct modrt_module *mod;  /* the module's static description */
        int fd;                          /* socket to the core, -1 while disconnected */
        void *state;                     /* module state from init() */
        struct proto_msg *rx;            /* decode arena */
        struct proto_writer *tx;         /* reply/hello/event builder */
        struct proto_writer *tx_later;   /* deferred answers (modrt_complete may run inside a handler,
                                          * while tx holds that handler's reply) */
        uint8_t *rxbuf;                  /* one frame + 1 byte to detect oversize */
        struct nova_config cfg;          /* --config FILE over the defaults */
        uint64_t generation;             /* bumped per core connection: stale deferred answers are dropped */
        const struct modrt_entry *current; /* entry being dispatched (for modrt_defer) */
        uint32_t current_id;
        uint32_t last_id;                /* id of the last request on this connection */
        bool have_last_id;               /* false until the first request of a connection */
        struct modrt_deferred *deferred; /* calls answered later (every connection), newest first */
};

struct modrt_deferred {
        struct modrt_deferred *prev, *next; /* rt->deferred list */
        uint64_t generation;             /* connection it belongs to */
        uint32_t id;                     /* request id */
        char name[PROTO_MAX_NAME + 1];   /* entrypoint */
        bool privileged;                 /* audit on completion */
        char ids[512];                   /* audit identifiers of the request */
        char audit[128];                 /* audit extra from the handler */
};

const struct nova_config *modrt_config(const struct modrt *rt) { return &rt->cfg; }

static volatile sig_atomic_t exit_requested;
static volatile int signal_fd = -1; /* shut down on SIGTERM so a blocking recv returns */

static void on_exit_signal(int sig)
{
        (void)sig;
        exit_requested = 1;
        if (signal_fd >= 0)
                (void)shutdown(signal_fd, SHUT_RDWR);
}

int modrt_fd(const struct modrt *rt) { return rt->fd; }
bool modrt_should_exit(const struct modrt *rt)
{
        (void)rt;
        return exit_requested != 0;
}

int modrt_drop_privileges(uint64_t keep, char *err, size_t errlen)
{
        struct proc_security sec;
        bool can_bound;
        char want[256] = "", have[256] = "";
        int r;

        if (capng_get_caps_process() < 0) {
                (void)snprintf(err, errlen, "cannot read own capabilities");
                return -EIO;
        }
        can_bound = bounding_set_ours() && capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
        capng_clear(CAPNG_SELECT_BOTH);
        for (unsigned cap = 0; cap <= CAP_LAST_CAP; cap++)
                if (keep & (1ULL << cap))
                        (void)capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET, cap);
        (void)caps_mask_format(keep, want, sizeof(want));
        if (capng_apply(can_bound ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS) < 0) {
                (void)snprintf(err, errlen, "cannot keep capabilities [%s]: not granted to this process", want);
                return -EPERM;
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
                (void)snprintf(err, errlen, "cannot clear ambient capabilities: %s", strerror(errno));
                return -errno;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                (void)snprintf(err, errlen, "cannot set no_new_privs: %s", strerror(errno));
                return -errno;
        }
        /* Trust the kernel's word, not libcap-ng's. */
        r = proc_security_read(0, &sec);
        if (r < 0) {
                (void)snprintf(err, errlen, "cannot verify capabilities: %s", strerror(-r));
                return r;
        }
        if (sec.cap_eff != keep || sec.cap_prm != keep || sec.cap_inh != 0 || sec.cap_amb != 0 ||
            !sec.no_new_privs || (can_bound && (sec.cap_bnd & ~keep) != 0)) {
                (void)caps_mask_format(sec.cap_eff, have, sizeof(have));
                (void)snprintf(err, errlen, "capabilities after drop are [%s], wanted [%s]", have, want);
                return -EPERM;
        }
        return 0;
}

static int send_frame(struct modrt *rt, struct proto_writer *w)
{
        const uint8_t *buf;
        size_t len;
        int r = pw_finish(w, &buf, &len);

        if (r < 0)
                return r;
        if (rt->fd < 0)
                return -ENOTCONN;
        for (;;) {
                if (send(rt->fd, buf, len, MSG_NOSIGNAL) >= 0)
                        return 0;
                if (errno == EINTR && !exit_requested)
                        continue;
                return -errno;
        }
}

int modrt_send_event(struct modrt *rt, struct proto_writer *w) { return send_frame(rt, w); }

static int send_hello(struct modrt *rt)
{
        const struct module_protocol *mp = rt->mod->protocol;
        struct proc_security sec = { 0 };
        struct proto_writer *w = rt->tx;

        (void)proc_security_read(0, &sec);
        pw_init(w, PROTO_HELLO, 0, 0, plug_table[mp->plug].name);
        pw_u64(w, "version", PROTO_VERSION);
        pw_u64(w, "pid", (uint64_t)getpid());
        pw_u64(w, "caps_effective", sec.cap_eff);
        pw_bool(w, "no_new_privs", sec.no_new_privs);
        pw_list_begin(w, "entrypoints");
        for (size_t i = 0; i < rt->mod->n_entries; i++)
                pw_str(w, NULL, rt->mod->entries[i].ep->name);
        pw_list_end(w);
        return send_frame(rt, w);
}

/* "port_uuid=... mtu=1500" from the scalar members of a validated request. */
static void format_identifiers(const struct proto_value *req, char *buf, size_t size);

static void format_identifiers(const struct proto_value *req, char *buf, size_t size)
{
        size_t used = 0;

        buf[0] = '\0';
        for (const struct proto_value *m = req->child; m && used < size; m = m->next) {
                int n;
                switch (m->type) {
                case PV_STR:
                        n = snprintf(buf + used, size - used, " %s=%s", m->key, m->v.s);
                        break;
                case PV_U64:
                        n = snprintf(buf + used, size - used, " %s=%llu", m->key, (unsigned long long)m->v.u);
                        break;
                case PV_BOOL:
                        n = snprintf(buf + used, size - used, " %s=%s", m->key, m->v.b ? "true" : "false");
                        break;
                case PV_LIST:
                case PV_OBJ:
                        n = snprintf(buf + used, size - used, " %s=[%u]", m->key, m->count);
                        break;
                default:
                        n = 0;
                }
                if (n < 0)
                        return;
                used += (size_t)n;
        }
}

static int reply_error(struct modrt *rt, const struct proto_msg *req, int error, const char *text)
{
        pw_init(rt->tx, PROTO_REPLY, req->id, error, req->name);
        pw_str(rt->tx, "error", text);
        return send_frame(rt, rt->tx);
}

static void disconnect(struct modrt *rt)
{
        signal_fd = -1;
        rt->fd = safe_close(rt->fd);
        rt->generation++;
        rt->have_last_id = false;
}

/* The one audit line of a privileged call: entrypoint, identifiers, what the
 * handler added (extra, may be ""), and the result (err_text NULL: strerror). */
static void audit_line(const char *name, const char *ids, const char *extra, int status, const char *err_text)
{
        const char *sep = extra[0] ? " " : "";

        if (status < 0)
                log_audit("%s%s%s%s result=error errno=%d (%s)", name, ids, sep, extra, -status,
                          err_text ? err_text : strerror(-status));
        else
                log_audit("%s%s%s%s result=ok", name, ids, sep, extra);
}

struct modrt_deferred *modrt_defer(struct modrt *rt, struct modrt_call *call)
{
        struct modrt_deferred *d = calloc(1, sizeof(*d));

        if (!d || !rt->current)
                return free(d), NULL;
        d->generation = rt->generation;
        d->id = rt->current_id;
        (void)strscpy(d->name, rt->current->ep->name, sizeof(d->name));
        d->privileged = rt->current->ep->privileged;
        format_identifiers(call->req, d->ids, sizeof(d->ids));
        (void)strscpy(d->audit, call->audit, sizeof(d->audit));
        d->next = rt->deferred;
        if (rt->deferred)
                rt->deferred->prev = d;
        rt->deferred = d;
        return d;
}

static void deferred_unlink(struct modrt *rt, struct modrt_deferred *d)
{
        if (d->prev)
                d->prev->next = d->next;
        else if (rt->deferred == d)
                rt->deferred = d->next;
        if (d->next)
                d->next->prev = d->prev;
        d->prev = d->next = NULL;
}

/* True when request id of the current connection is deferred and not answered yet. */
static bool id_in_flight(const struct modrt *rt, uint32_t id)
{
        for (const struct modrt_deferred *d = rt->deferred; d; d = d->next)
                if (d->generation == rt->generation && d->id == id)
                        return true;
        return false;
}

/* The request ids of one connection: never 0 (hello and events carry 0),
 * never one still in flight, and each after the one before in serial-number
 * order (RFC 1982: (int32_t)(id - last) > 0, so the core's counter may wrap).
 * The core numbers its requests to a module from one counter, so a repeated
 * or older id is a replay or a confused peer: a protocol violation. 0 or
 * -EBADMSG with the reason in why. */
static int request_id_check(struct modrt *rt, uint32_t id, char *why, size_t whylen)
{
        if (id == 0) {
                (void)snprintf(why, whylen, "request with id 0 (reserved for hello and events)");
                return -EBADMSG;
        }
        if (id_in_flight(rt, id)) {
                (void)snprintf(why, whylen, "request id %u is still in flight", id);
                return -EBADMSG;
        }
        if (rt->have_last_id && (int32_t)(id - rt->last_id) <= 0) {
                (void)snprintf(why, whylen, "request id %u after %u (ids must increase on a connection)", id,
                               rt->last_id);
                return -EBADMSG;
        }
        rt->last_id = id;
        rt->have_last_id = true;
        return 0;
}

/* modrt_complete(), and modrt_complete_call() with built: the reply it sends on success. */
static int complete(struct modrt *rt, struct modrt_deferred *d, int status, const char *err_text,
                    void (*fill)(struct proto_writer *w, void *userdata), void *userdata, struct proto_writer *built)
{
        int r;

        deferred_unlink(rt, d);
        if (d->privileged)
                audit_line(d->name, d->ids, d->audit, status, err_text);
        if (d->generation != rt->generation || rt->fd < 0) {
                free(d);
                return -ENOTCONN;
        }
        if (status >= 0 && built) {
                r = send_frame(rt, built);
        } else {
                pw_init(rt->tx_later, PROTO_REPLY, d->id, status < 0 ? status : 0, d->name);
                if (status < 0)
                        pw_str(rt->tx_later, "error", err_text ? err_text : strerror(-status));
                else if (fill)
                        fill(rt->tx_later, userdata);
                r = send_frame(rt, rt->tx_later);
        }
        if (r == -EMSGSIZE || r == -EINVAL) {
                pw_init(rt->tx_later, PROTO_REPLY, d->id, r, d->name);
                pw_str(rt->tx_later, "error", "reply does not fit the protocol limits");
                r = send_frame(rt, rt->tx_later);
        }
        free(d);
        return r;
}

int modrt_complete(struct modrt *rt, struct modrt_deferred *d, int status, const char *err_text,
                   void (*fill)(struct proto_writer *w, void *userdata), void *userdata)
{
        return complete(rt, d, status, err_text, fill, userdata, NULL);
}

void modrt_deferred_reply_begin(const struct modrt_deferred *d, struct proto_writer *w)
{
        pw_init(w, PROTO_REPLY, d->id, 0, d->name);
}

int modrt_complete_call(struct modrt *rt, struct modrt_deferred *d, int status, struct modrt_call *call)
{
        if (call->audit[0])
                (void)strscpy(d->audit, call->audit, sizeof(d->audit));
        return complete(rt, d, status, call->err[0] ? call->err : NULL, NULL, NULL, status >= 0 ? call->reply : NULL);
}

/* A request the core's own checks would have refused: log it (entrypoint,
 * the field and why) and close the connection. Returns -EBADMSG. */
_printf_(2, 3) static int fatal_request(struct modrt *rt, const char *fmt, ...)
{
        char why[320];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        log_err("protocol violation: request %u: %s; the core validates every request against this schema, "
                "so it is broken or compromised: closing the connection and exiting", rt->rx->id, why);
        disconnect(rt);
        return -EBADMSG;
}

/* Read and decode one frame into rt->rx (a descriptor that came with it in
 * *ret_fd). 0: a request to serve; 1: nothing to serve (interrupted, or the
 * core's acknowledgement); -ECONNRESET, -ECANCELED (the core refused us) or
 * -EBADMSG (a protocol violation): the connection is then closed. */
static int receive_request(struct modrt *rt, int *ret_fd)
{
        char why[256];
        size_t size = 0;
        ssize_t n;

        n = proto_recv_frame_fd(rt->fd, rt->rxbuf, 0, &size, ret_fd);
        if (n == -EINTR || n == -EAGAIN)
                return 1;
        if (n == -EPROTO)
                (void)snprintf(why, sizeof(why), "more than one descriptor or unexpected ancillary data");
        else if (n == -EMSGSIZE)
                (void)snprintf(why, sizeof(why), "frame of %zu bytes (limit %d)", size, PROTO_MAX_FRAME);
        else if (n == -EBADMSG) /* not the end of the stream (see proto_recv_frame): no header at all */
                (void)snprintf(why, sizeof(why), "empty frame (0 bytes)");
        else if (n <= 0) {
                disconnect(rt);
                return -ECONNRESET;
        } else if (proto_decode(rt->rxbuf, (size_t)n, rt->rx, why, sizeof(why)) == 0) {
                if (rt->rx->type == PROTO_HELLO) {
                        if (proto_get_bool(rt->rx->body, "accepted", true))
                                return 1; /* the core's acknowledgement */
                        if (proto_get_bool(rt->rx->body, "restart", false)) {
                                /* we broke the protocol (by the core's word): exit 1, a fresh process is started */
                                log_err("the core ended this module's connection: %s; exiting to be restarted",
                                        proto_get_str(rt->rx->body, "reason", "no reason given"));
                                disconnect(rt);
                                return -EBADMSG;
                        }
                        log_err("the core refused this module: %s",
                                proto_get_str(rt->rx->body, "reason", "no reason given"));
                        disconnect(rt);
                        return -ECANCELED;
                }
                if (rt->rx->type == PROTO_REQUEST && request_id_check(rt, rt->rx->id, why, sizeof(why)) == 0)
                        return 0;
                if (rt->rx->type != PROTO_REQUEST)
                        (void)snprintf(why, sizeof(why), "unexpected %s frame", proto_type_name(rt->rx->type));
        }
        log_err("protocol violation: %s; closing the connection", why);
        disconnect(rt);
        return -EBADMSG;
}

/* The entry of the request in rt->rx, after the checks the core made before
 * sending it (see fatal_request). The entry, or NULL after a violation. */
static const struct modrt_entry *checked_entry(struct modrt *rt, int passed_fd)
{
        const struct modrt_entry *entry = NULL;
        char why[256];

        for (size_t i = 0; i < rt->mod->n_entries && !entry; i++)
                if (streq(rt->mod->entries[i].ep->name, rt->rx->name))
                        entry = &rt->mod->entries[i];
        /* The core checks every request against the same table and schema before sending it:
         * one that fails here comes from a broken or compromised core. Fate-sharing, as
         * OpenSSH's monitor does: do not answer and carry on; log it with the field and stop
         * serving (the module exits, its supervisor starts a fresh one). */
        if (!entry)
                return fatal_request(rt, "unknown entrypoint '%s'", rt->rx->name), NULL;
        if (entry->ep->takes_fd != (passed_fd >= 0))
                return fatal_request(rt, "%s: %s", entry->ep->name,
                                     entry->ep->takes_fd ? "no descriptor passed (it needs one, SCM_RIGHTS)"
                                                         : "a descriptor passed (it takes none)"),
                       NULL;
        if (schema_check(entry->ep->request, rt->rx->body, why, sizeof(why)) < 0)
                return fatal_request(rt, "%s: %s", entry->ep->name, why), NULL;
        return entry;
}

int modrt_dispatch(struct modrt *rt)
{
        const struct modrt_entry *entry;
        struct modrt_call call = { .fd = -1 };
        int r;

        _cleanup_close_ int passed_fd = -1;

        r = receive_request(rt, &passed_fd);
        if (r != 0)
                return r > 0 ? 0 : r;
        entry = checked_entry(rt, passed_fd);
        if (!entry)
                return -EBADMSG;
        pw_init(rt->tx, PROTO_REPLY, rt->rx->id, 0, rt->rx->name);
        call.req = rt->rx->body;
        call.reply = rt->tx;
        call.fd = TAKE_FD(passed_fd);
        rt->current = entry;
        rt->current_id = rt->rx->id;
        r = entry->handler(rt->state, &call);
        if (call.fd >= 0)
                (void)close(call.fd); /* not taken by the handler */
        rt->current = NULL;
        if (r == MODRT_DEFERRED)
                return 0; /* answered later with modrt_complete(); audited then */
        if (entry->ep->privileged) {
                char ids[512];
                format_identifiers(rt->rx->body, ids, sizeof(ids));
                audit_line(entry->ep->name, ids, call.audit, r, call.err[0] ? call.err : NULL);
        }
        if (r < 0)
                return reply_error(rt, rt->rx, r, call.err[0] ? call.err : strerror(-r));
        r = send_frame(rt, rt->tx);
        if (r == -EMSGSIZE || r == -EINVAL)
                return reply_error(rt, rt->rx, r, "reply does not fit the protocol limits");
        return r == -EPIPE ? -ECONNRESET : r;
}

/* Wait until the core's module socket accepts us: try, and on failure wait
 * for a change in its directory (inotify) instead of sleeping in a loop.
 * Meanwhile the module's idle fd, if any, is served. */
static int connect_to_core(struct modrt *rt, const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char dir[PATH_MAX];
        char *slash;
        _cleanup_close_ int ino = -1;

        if (strscpy(sa.sun_path, path, sizeof(sa.sun_path)) < 0 || strscpy(dir, path, sizeof(dir)) < 0)
                return -ENAMETOOLONG;
        slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return -EINVAL;
        *slash = '\0';
        ino = inotify_init1(IN_CLOEXEC);
        if (ino < 0)
                return -errno;
        for (bool said = false; !exit_requested;) {
                _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                char evbuf[4096];

                if (fd < 0)
                        return -errno;
                if (inotify_add_watch(ino, dir, IN_CREATE | IN_ATTRIB | IN_MOVED_TO) < 0 && errno != ENOENT)
                        return -errno;
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return TAKE_FD(fd);
                if (errno != ENOENT && errno != ECONNREFUSED && errno != EAGAIN)
                        return -errno;
                if (!said) {
                        log_info("waiting for the core at %s", path);
                        said = true;
                }
                int idle = rt->mod->idle_fd && rt->mod->on_idle_fd ? rt->mod->idle_fd(rt->state) : -1;
                struct pollfd p[2] = { { ino, POLLIN, 0 }, { idle, POLLIN, 0 } };
                /* The directory itself may not exist yet: then re-check every 5 s. */
                if (poll(p, 2, 5000) < 0 && errno != EINTR)
                        return -errno;
                if (p[0].revents & POLLIN)
                        if (read(ino, evbuf, sizeof(evbuf)) < 0 && errno != EAGAIN && errno != EINTR)
                                return -errno;
                if (idle >= 0 && (p[1].revents & POLLIN))
                        rt->mod->on_idle_fd(rt->state);
        }
        return -EINTR;
}

static int run_blocking(struct modrt *rt, void *state)
{
        (void)state;
        while (!exit_requested) {
                int r = modrt_dispatch(rt);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void usage(const char *prog)
{
        fprintf(stderr, "usage: %s (--fd N | --connect PATH) [--config FILE] [-v]\n"
                        "A nova-hypervisor module; started by nova-compute (or, in the snap, by systemd).\n",
                prog);
}

/* What the command line asks for. */
struct modrt_options {
        int inherited;                   /* --fd N, -1 when not given */
        const char *connect_path;        /* --connect PATH, NULL when not given */
        const char *config_path;         /* --config FILE, NULL when not given */
};

/* Parse the command line into *ret. -1 to go on, else the exit code (0 for --help). */
static int parse_options(int argc, char **argv, struct modrt_options *ret)
{
        static const struct option opts[] = {
                { "fd", required_argument, NULL, 'f' },
                { "connect", required_argument, NULL, 'c' },
                { "config", required_argument, NULL, 'C' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int c;

        *ret = (struct modrt_options){ .inherited = -1 };
        while ((c = getopt_long(argc, argv, "v", opts, NULL)) >= 0) {
                switch (c) {
                case 'f': {
                        uint32_t v;
                        if (parse_u32(optarg, 3, 1024, &v) < 0) {
                                log_err("--fd: not a descriptor number: %s", optarg);
                                return 2;
                        }
                        ret->inherited = (int)v;
                        break;
                }
                case 'c':
                        ret->connect_path = optarg;
                        break;
                case 'C':
                        ret->config_path = optarg;
                        break;
                case 'v':
                        log_set_level(LOG_LVL_DEBUG);
                        break;
                case 'h':
                        usage(argv[0]);
                        return 0;
                default:
                        usage(argv[0]);
                        return 2;
                }
        }
        if ((ret->inherited < 0) == (ret->connect_path == NULL) || optind != argc) {
                usage(argv[0]);
                return 2;
        }
        return -1;
}

/* Before serving: the configuration, the module's own consistency, signals,
 * privileges, and (in a snap) whether the plug is connected at all. -1 to go
 * on, else the exit code. */
static int prepare(struct modrt *rt, const char *config_path)
{
        const struct modrt_module *mod = rt->mod;
        const char *plug = plug_table[mod->protocol->plug].name;
        struct sigaction sa = { .sa_handler = on_exit_signal };
        char err[256];
        int r;

        config_defaults(&rt->cfg);
        if (config_path && config_load_file(config_path, &rt->cfg, err, sizeof(err)) < 0) {
                log_err("%s", err);
                return 1;
        }
        config_finish(&rt->cfg);
        if (streq(rt->cfg.log_level, "debug"))
                log_set_level(LOG_LVL_DEBUG);
        /* Safety: the module table and the shared protocol must agree. */
        if (mod->n_entries != mod->protocol->n_entrypoints) {
                log_err("internal error: dispatch table and protocol disagree");
                return 1;
        }
        for (size_t i = 0; i < mod->n_entries; i++)
                if (mod->entries[i].ep != &mod->protocol->entrypoints[i] || !mod->entries[i].handler) {
                        /* the hello lists them in this order; the core wants exactly the protocol's */
                        log_err("internal error: dispatch table entry %zu is not the protocol's %s", i,
                                mod->protocol->entrypoints[i].name);
                        return 1;
                }
        sigemptyset(&sa.sa_mask);
        (void)sigaction(SIGTERM, &sa, NULL);
        (void)sigaction(SIGINT, &sa, NULL);
        (void)signal(SIGPIPE, SIG_IGN);

        r = modrt_drop_privileges(plug_table[mod->protocol->plug].caps, err, sizeof(err));
        if (r < 0) {
                log_err("%s", err);
                return 1;
        }
        if (in_snap()) {
                r = snapctl_is_connected(plug);
                if (r == 0) {
                        log_info("plug %s is not connected; exiting (fix: sudo snap connect nova-hypervisor:%s)",
                                 plug, plug);
                        return 0;
                }
                if (r < 0)
                        log_warn("cannot ask snapctl whether %s is connected: %s", plug, strerror(-r));
        }
        return -1;
}

/* The connection to the core is gone (or could not take the hello): with --connect, connect again. */
static bool core_connection_lost(int r)
{
        return r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN;
}

/* Serve the inherited connection, or connect to the core and serve it, again
 * after each loss, until asked to stop. 0 or -errno (-EBADMSG: a protocol
 * violation ended it; -ECANCELED: the core refused us; -ECONNRESET: it went away;
 * another error: the module's own loop failed, which ends the module too, instead of
 * connecting, saying hello and failing again in a loop). */
static int serve(struct modrt *rt, const struct modrt_options *opt)
{
        int inherited = opt->inherited;
        int r;

        do {
                if (inherited >= 0) {
                        rt->fd = inherited;
                        inherited = -1;
                } else {
                        rt->fd = connect_to_core(rt, opt->connect_path);
                        if (rt->fd < 0) {
                                r = rt->fd == -EINTR ? 0 : rt->fd;
                                if (r < 0)
                                        log_err("cannot connect to the core at %s: %s", opt->connect_path,
                                                strerror(-r));
                                return r;
                        }
                }
                signal_fd = rt->fd;
                r = send_hello(rt);
                if (r < 0) {
                        log_err("cannot announce ourselves to the core: %s", strerror(-r));
                        disconnect(rt);
                        continue;
                }
                log_info("serving %zu entrypoints (pid %ld)", rt->mod->n_entries, (long)getpid());
                r = rt->mod->run ? rt->mod->run(rt, rt->state) : run_blocking(rt, rt->state);
                disconnect(rt);
                if (r == -ECONNRESET && opt->connect_path && !exit_requested)
                        log_info("connection to the core lost; waiting for the core");
        } while (opt->connect_path && !exit_requested && core_connection_lost(r));
        return r;
}

int modrt_main(const struct modrt_module *mod, int argc, char **argv)
{
        struct modrt rt = { .mod = mod, .fd = -1 };
        struct modrt_options opt;
        int r;

        log_init(plug_table[mod->protocol->plug].name, LOG_LVL_INFO);
        r = parse_options(argc, argv, &opt);
        if (r >= 0)
                return r;
        r = prepare(&rt, opt.config_path);
        if (r >= 0)
                return r;
        rt.rx = malloc(sizeof(*rt.rx));
        rt.tx = malloc(sizeof(*rt.tx));
        rt.tx_later = malloc(sizeof(*rt.tx_later));
        rt.rxbuf = malloc(PROTO_MAX_FRAME + 1);
        if (!rt.rx || !rt.tx || !rt.tx_later || !rt.rxbuf) {
                log_err("out of memory");
                r = -ENOMEM;
        } else if (mod->init && (r = mod->init(&rt, &rt.state)) < 0)
                log_err("initialisation failed: %s", strerror(-r));
        else {
                r = serve(&rt, &opt);
                /* Stopped, the core went away, or the core refused us: a clean exit
                 * (systemd must not restart a module the core does not want). */
                if (exit_requested || r == -ECONNRESET || r == -ECANCELED)
                        r = 0;
        }
        if (mod->done)
                mod->done(rt.state);
        disconnect(&rt);
        free(rt.rx);
        free(rt.tx);
        free(rt.tx_later);
        free(rt.rxbuf);
        return r < 0 ? 1 : 0;
}
