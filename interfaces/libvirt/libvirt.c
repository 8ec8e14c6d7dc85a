/* libvirt.c - nova-libvirt: the module that owns the libvirt plug. It keeps
 * no capability; its privilege is the host's libvirt socket. It takes
 * instance and port identifiers, generates the domain document itself
 * (domain-xml.c), touches only domains carrying our ownership mark, forwards
 * their lifecycle events, and survives libvirt going away by reconnecting
 * with a backoff. libvirt's default event loop drives everything: the core
 * socket, libvirt's own callbacks and our timers. */
#include "config-drive.h"
#include "domain-xml.h"
#include "libvirt-protocol.h"
#include "log.h"
#include "migrate.h"
#include "modrt.h"
#include "names.h"

#include "image-inspect.h"
#include "lanes.h"
#include "lazylib.h"

#include <inttypes.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/stat.h>

#define BACKOFF_MIN_MS 100          /* first reconnect attempt after a loss */
#define BACKOFF_MAX_MS 10000        /* cap of the doubling backoff */
#define KEEPALIVE_INTERVAL_S 5      /* remote connections: ping every 5 s ... */
#define KEEPALIVE_COUNT 3           /* ... and give up after 3 unanswered */
#define DOMAIN_REPLY_VALUES 9       /* values reply_domain() writes, at most */
/* Bytes write_domain() writes, at most: the object (tag, count: 3) and its members, each
 * key length + key + tag (+ u16 length for strings) + value: instance_uuid 1+13+3+36, domain_name
 * 1+11+3+41, display_name 1+12+3+63, state 1+5+3+11 ("pmsuspended"), reason 1+6+3+18
 * ("migration_canceled"), vcpus 1+5+1+8, memory_mb 1+9+1+8, job 1+3+3+13 ("migration_out"): 293.
 * (It was 512: 127 domains a page, 8 pages and 8 listings of every domain for 1000; now 217 a page.) */
#define DOMAIN_REPLY_MAX_BYTES 300
#define ERROR_TEXT_MAX 200          /* libvirt error text kept for messages */
#define LIST_CALLS_IN_FLIGHT 4      /* domain_list: per-domain libvirt calls in flight at once (libvirtd
                                     * serves 5 of a client's calls at a time by default) */
#define LIST_THREAD_STACK (256u * 1024) /* stack of each helper thread of domain_list */
#define DOMAIN_WORKERS 4            /* threads serving domain calls and events (see "Domain calls on
                                     * workers" below); libvirtd serves 5 of a client's calls at once */
#define DOMAIN_WORKER_STACK (512u * 1024)

struct lv;
struct lv_job;
struct upload;
struct lv_migration;

/* A graceful shutdown in progress: destroy the domain if it still runs when this fires. In
 * lv->timers (under lv->lock) until cancelled or served; freed by libvirt's event loop once the
 * timeout is removed (its free callback), so the loop never calls back into freed memory. */
struct shutdown_timer {
        struct lv *lv;                            /* owner */
        char instance_uuid[UUID_STR_LEN + 1];     /* whose domain */
        uint64_t timeout_s;                       /* the grace period, for the log line */
        uint64_t id;                              /* unique in this process: a served deadline names it */
        int timer;                                /* libvirt timeout id */
        bool fired;                               /* the grace period is over: its deadline job is queued */
        bool cancelled;                           /* out of lv->timers: the callback does nothing */
        struct shutdown_timer *next;              /* list of pending ones */
};

/* The module's state. */
struct lv {
        struct modrt *rt;                         /* runtime: core socket, config */
        const char *uri;                          /* libvirt_uri from the config */
        const char *domain_type;                  /* "qemu"/"test"; NULL: the URI's driver is unsupported */
        uint64_t shutdown_timeout_s;              /* default grace period of domain_shutdown */
        /* conn, lost, conn_gen, last_error and timers are written by the main thread (the event
         * loop's) under lock; workers read them under lock when a job starts. */
        pthread_mutex_t lock;
        pthread_t main_thread;                    /* the event loop's: the core's socket and events */
        virConnectPtr conn;                       /* NULL while disconnected */
        bool lost;                                /* conn is dead (close callback); dropped on the next retry */
        uint64_t conn_gen;                        /* bumped per connection opened: a job's report of a dead
                                                   * connection counts only for the one it used */
        atomic_int close_reason;                  /* close callback run on a worker: reason + 1, 0 when none */
        _Atomic uint64_t close_gen;               /* ... and the conn_gen of the connection it closed */
        struct lanes *lanes;                      /* domain calls and events, one lane per instance */
        int lanes_watch;                          /* watch on lanes_done_fd(), -1 when none */
        uint64_t next_timer_id;
        bool close_cb;                            /* our close callback is registered on conn */
        int lifecycle_cb;                         /* lifecycle callback id on conn, -1 when none */
        int retry_timer;                          /* reconnect timer, -1 when none armed */
        bool tried;                               /* the first connection attempt was made (lv_run) */
        unsigned backoff_ms;                      /* delay of the next reconnect attempt */
        char last_error[ERROR_TEXT_MAX];          /* why libvirt is unreachable */
        int watch;                                /* handle watching the core socket, -1 when none */
        bool stop;                                /* leave the run loop */
        int result;                               /* what run() returns */
        struct shutdown_timer *timers;            /* pending shutdown deadlines */
        struct proto_writer *ev;                  /* builder of event frames */
        const char *pool_name, *pool_path;        /* storage_pool, storage_pool_path from the config */
        struct upload *uploads;                   /* uploads in progress (each on its own thread) */
        bool imports_swept;                       /* temporary import volumes left by an earlier process deleted */
        int n_uploads;
        struct lv_migration *migrations;          /* live migrations started here, running or ended (migrate.c) */
};

/* A libvirt error, captured before the next libvirt call resets it. */
struct lv_err {
        int code;                                 /* virErrorNumber, VIR_ERR_OK when none */
        char msg[ERROR_TEXT_MAX];                 /* libvirt's text */
};

/* What a worker serves (see "Domain calls on workers"). */
enum lv_job_kind {
        JOB_CALL,                                 /* a request of the core: handler, answered on the main thread */
        JOB_EVENT,                                /* a lifecycle event: judged on the worker, sent on the main thread */
        JOB_DEADLINE,                             /* a shutdown grace period is over: destroy if still running */
};

/* One job of the lanes, keyed by instance UUID: jobs of one instance run one at a time, in order. */
struct lv_job {
        struct lane_job lane;                     /* first: the lanes hand this back */
        struct lv *lv;
        enum lv_job_kind kind;
        /* JOB_CALL */
        modrt_handler_t handler;                  /* the entrypoint's own handler */
        struct modrt_deferred *deferred;          /* the call to answer */
        struct proto_value *req;                  /* the request, copied out of the runtime's arena */
        struct modrt_call call;                   /* req, reply (w), err and audit for the handler */
        int status;                               /* the handler's result */
        /* JOB_CALL reply, JOB_EVENT event frame */
        struct proto_writer *w;
        bool have_event;                          /* JOB_EVENT: w holds an event to send */
        /* JOB_EVENT */
        virDomainPtr dom;                         /* a reference of the event's domain */
        int event, detail;
        /* JOB_DEADLINE */
        uint64_t timer_id, timeout_s;
        /* while it runs */
        virConnectPtr conn;                       /* a reference of lv->conn taken at start, NULL when unusable */
        uint64_t conn_gen;                        /* lv->conn_gen then */
        char last_error[ERROR_TEXT_MAX];          /* lv->last_error then */
        bool conn_dead;                           /* conn was found dead: the main thread reports the loss */
};

/* The job the current thread serves; NULL on the main thread (and domain_list's helpers). */
static __thread struct lv_job *worker_job;

static inline void domain_freep(virDomainPtr *d)
{
        if (*d)
                (void)virDomainFree(*d);
}
#define _cleanup_domain_ _cleanup_(domain_freep)

/* Protocol strings must be clean UTF-8 without control characters; libvirt's
 * (possibly translated, possibly cut) text is made so. */

static void capture_error(struct lv_err *e)
{
        virErrorPtr v = virGetLastError();

        e->code = v ? v->code : VIR_ERR_OK;
        proto_text_printf(e->msg, sizeof(e->msg), "%s", v && v->message ? v->message : "unknown libvirt error");
}

/* Set call->err (cleaned) and return r. */
_printf_(3, 4) static int fail(struct modrt_call *call, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(call->err, sizeof(call->err), fmt, ap);
        va_end(ap);
        proto_text_sanitize(call->err);
        return r;
}

/* Our errno for a libvirt error code; dflt for codes without a closer match. */
static int errno_from_libvirt(int code, int dflt)
{
        switch (code) {
        case VIR_ERR_NO_DOMAIN:
                return -ENOENT;
        case VIR_ERR_OPERATION_INVALID:
        case VIR_ERR_INVALID_ARG:
        case VIR_ERR_XML_ERROR:
        case VIR_ERR_XML_DETAIL:
        case VIR_ERR_XML_INVALID_SCHEMA:
        case VIR_ERR_CONFIG_UNSUPPORTED:
                return -EINVAL;
        case VIR_ERR_NO_SUPPORT:
        case VIR_ERR_ARGUMENT_UNSUPPORTED:
                return -EOPNOTSUPP;
        case VIR_ERR_OPERATION_TIMEOUT:
        case VIR_ERR_AGENT_UNRESPONSIVE:
                return -ETIMEDOUT;
        case VIR_ERR_OPERATION_DENIED:
        case VIR_ERR_AUTH_FAILED:
        case VIR_ERR_AUTH_CANCELLED:
        case VIR_ERR_ACCESS_DENIED:
                return -EACCES;
        case VIR_ERR_NO_CONNECT:
        case VIR_ERR_INVALID_CONN:
        case VIR_ERR_RPC:
                return -ENOTCONN;
        case VIR_ERR_OPERATION_UNSUPPORTED:
                return -EOPNOTSUPP;
        default:
                return dflt;
        }
}

/* Fail the call with libvirt's error e: "<what> <domain>: <libvirt text>". */
static int fail_libvirt(struct modrt_call *call, const struct lv_err *e, int dflt, const char *what,
                        const char *domain)
{
        return fail(call, errno_from_libvirt(e->code, dflt), "%s %s: %s", what, domain, e->msg);
}

static const char *state_word(int state)
{
        static const char *const words[] = {
                [VIR_DOMAIN_NOSTATE] = "nostate",   [VIR_DOMAIN_RUNNING] = "running",
                [VIR_DOMAIN_BLOCKED] = "blocked",   [VIR_DOMAIN_PAUSED] = "paused",
                [VIR_DOMAIN_SHUTDOWN] = "shutdown", [VIR_DOMAIN_SHUTOFF] = "shutoff",
                [VIR_DOMAIN_CRASHED] = "crashed",   [VIR_DOMAIN_PMSUSPENDED] = "pmsuspended",
        };

        return state >= 0 && (size_t)state < ARRAY_SIZE(words) && words[state] ? words[state] : "nostate";
}

/* One word for the reason of a state (virDomainGetState's reason). */
static const char *reason_word(int state, int reason)
{
        static const char *const running[] = {
                "unknown", "booted", "migrated", "restored", "from_snapshot", "unpaused",
                "migration_canceled", "save_canceled", "wakeup", "crashed", "postcopy", "postcopy_failed",
        };
        static const char *const paused[] = {
                "unknown", "user", "migration", "save", "dump", "ioerror", "watchdog",
                "from_snapshot", "shutting_down", "snapshot", "crashed", "starting_up", "postcopy", "postcopy_failed",
        };
        static const char *const shutdown[] = { "unknown", "user" };
        static const char *const shutoff[] = {
                "unknown", "shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "from_snapshot", "daemon",
        };
        static const char *const crashed[] = { "unknown", "panicked" };
        const char *const *t = NULL;
        size_t n = 0;

        switch (state) {
        case VIR_DOMAIN_RUNNING:
                t = running, n = ARRAY_SIZE(running);
                break;
        case VIR_DOMAIN_PAUSED:
                t = paused, n = ARRAY_SIZE(paused);
                break;
        case VIR_DOMAIN_SHUTDOWN:
                t = shutdown, n = ARRAY_SIZE(shutdown);
                break;
        case VIR_DOMAIN_SHUTOFF:
                t = shutoff, n = ARRAY_SIZE(shutoff);
                break;
        case VIR_DOMAIN_CRASHED:
                t = crashed, n = ARRAY_SIZE(crashed);
                break;
        default:
                break;
        }
        return t && reason >= 0 && (size_t)reason < n ? t[reason] : "unknown";
}

/* The contract's words for a lifecycle event and its detail. */
static const char *event_word(int event)
{
        static const char *const words[] = {
                [VIR_DOMAIN_EVENT_DEFINED] = "defined",     [VIR_DOMAIN_EVENT_UNDEFINED] = "undefined",
                [VIR_DOMAIN_EVENT_STARTED] = "started",     [VIR_DOMAIN_EVENT_SUSPENDED] = "suspended",
                [VIR_DOMAIN_EVENT_RESUMED] = "resumed",     [VIR_DOMAIN_EVENT_STOPPED] = "stopped",
                [VIR_DOMAIN_EVENT_SHUTDOWN] = "shutdown",   [VIR_DOMAIN_EVENT_PMSUSPENDED] = "pmsuspended",
                [VIR_DOMAIN_EVENT_CRASHED] = "crashed",
        };

        return event >= 0 && (size_t)event < ARRAY_SIZE(words) ? words[event] : NULL;
}

static const char *event_detail_word(int event, int detail)
{
        static const char *const defined[] = { "added", "updated", "renamed", "from_snapshot" };
        static const char *const undefined[] = { "removed", "renamed" };
        static const char *const started[] = { "booted", "migrated", "restored", "from_snapshot", "wakeup" };
        static const char *const suspended[] = { "paused",   "migrated",      "ioerror",  "watchdog",       "restored",
                                                 "from_snapshot", "api_error", "postcopy", "postcopy_failed" };
        static const char *const resumed[] = { "unpaused", "migrated", "from_snapshot", "postcopy", "postcopy_failed" };
        static const char *const stopped[] = { "shutdown", "destroyed", "crashed", "migrated",
                                               "saved",    "failed",    "from_snapshot" };
        static const char *const shutdown[] = { "finished", "guest", "host" };
        static const char *const pmsuspended[] = { "memory", "disk" };
        static const char *const crashed[] = { "panicked", "crashloaded" };
        static const struct {
                const char *const *words;
                size_t n;
        } tables[] = {
                [VIR_DOMAIN_EVENT_DEFINED] = { defined, ARRAY_SIZE(defined) },
                [VIR_DOMAIN_EVENT_UNDEFINED] = { undefined, ARRAY_SIZE(undefined) },
                [VIR_DOMAIN_EVENT_STARTED] = { started, ARRAY_SIZE(started) },
                [VIR_DOMAIN_EVENT_SUSPENDED] = { suspended, ARRAY_SIZE(suspended) },
                [VIR_DOMAIN_EVENT_RESUMED] = { resumed, ARRAY_SIZE(resumed) },
                [VIR_DOMAIN_EVENT_STOPPED] = { stopped, ARRAY_SIZE(stopped) },
                [VIR_DOMAIN_EVENT_SHUTDOWN] = { shutdown, ARRAY_SIZE(shutdown) },
                [VIR_DOMAIN_EVENT_PMSUSPENDED] = { pmsuspended, ARRAY_SIZE(pmsuspended) },
                [VIR_DOMAIN_EVENT_CRASHED] = { crashed, ARRAY_SIZE(crashed) },
        };

        if (event < 0 || (size_t)event >= ARRAY_SIZE(tables) || detail < 0 || (size_t)detail >= tables[event].n)
                return "unknown";
        return tables[event].words[detail];
}

/* ---- events to the core ---- */

static void send_event(struct lv *lv)
{
        int r = modrt_send_event(lv->rt, lv->ev);

        if (r < 0)
                log_debug("event %s not sent: %s", lv->ev->err ? "(malformed)" : "", strerror(-r));
}

static void emit_connection(struct lv *lv, bool connected)
{
        pw_init(lv->ev, PROTO_EVENT, 0, 0, "libvirt_connection");
        pw_bool(lv->ev, "connected", connected);
        pw_str(lv->ev, "uri", lv->uri);
        pw_str(lv->ev, "error", connected ? "" : lv->last_error);
        send_event(lv);
}

/* ---- the connection and its reconnect loop ---- */

static void on_close(virConnectPtr conn, int reason, void *opaque);
static void on_retry(int timer, void *opaque);
static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque);

static void set_last_error(struct lv *lv, const char *prefix)
{
        struct lv_err e;

        capture_error(&e);
        pthread_mutex_lock(&lv->lock);
        proto_text_printf(lv->last_error, sizeof(lv->last_error), "%s%s", prefix, e.msg);
        pthread_mutex_unlock(&lv->lock);
}

/* The connection a handler uses: its job's reference on a worker, lv->conn on the main thread. */
static virConnectPtr lv_conn(const struct lv *lv)
{
        return worker_job ? worker_job->conn : lv->conn;
}

/* Main thread. Workers that hold a reference keep using it until their job ends. */
static void conn_drop(struct lv *lv)
{
        virConnectPtr conn = lv->conn;

        if (!conn)
                return;
        pthread_mutex_lock(&lv->lock);
        lv->conn = NULL;
        lv->lost = false;
        pthread_mutex_unlock(&lv->lock);
        if (lv->lifecycle_cb >= 0)
                (void)virConnectDomainEventDeregisterAny(conn, lv->lifecycle_cb);
        if (lv->close_cb)
                (void)virConnectUnregisterCloseCallback(conn, on_close);
        (void)virConnectClose(conn);
        lv->lifecycle_cb = -1;
        lv->close_cb = false;
        virResetLastError();
}

/* Open the URI and subscribe (main thread). 0, or -ENOTCONN with the reason in lv->last_error. */
static int conn_open(struct lv *lv)
{
        virConnectPtr conn = virConnectOpen(lv->uri);

        if (!conn) {
                set_last_error(lv, "");
                return -ENOTCONN;
        }
        pthread_mutex_lock(&lv->lock);
        lv->conn = conn;
        lv->lost = false;
        lv->conn_gen++;
        pthread_mutex_unlock(&lv->lock);
        /* Drivers without close notification (test://) accept the call and never call it. */
        lv->close_cb = virConnectRegisterCloseCallback(conn, on_close, lv, NULL) == 0;
        lv->lifecycle_cb = virConnectDomainEventRegisterAny(
                conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK((void (*)(void))on_lifecycle),
                lv, NULL);
        if (lv->lifecycle_cb < 0) {
                set_last_error(lv, "cannot subscribe to domain events: ");
                conn_drop(lv);
                return -ENOTCONN;
        }
        /* Connections over a network notice a dead daemon by keepalive. On a local unix socket
         * the kernel tells a closed peer at once (the close callback runs), so pings would only
         * wake an idle module: an interval <= 0 sends none (virConnectSetKeepAlive's contract). */
        (void)virConnectSetKeepAlive(conn, libvirt_uri_is_local_socket(lv->uri) ? -1 : KEEPALIVE_INTERVAL_S,
                                     KEEPALIVE_COUNT);
        virResetLastError();
        pthread_mutex_lock(&lv->lock);
        lv->last_error[0] = '\0';
        pthread_mutex_unlock(&lv->lock);
        return 0;
}

static void arm_retry(struct lv *lv)
{
        if (lv->retry_timer >= 0)
                return;
        lv->retry_timer = virEventAddTimeout((int)lv->backoff_ms, on_retry, lv, NULL);
        if (lv->retry_timer < 0) {
                log_err("cannot arm the libvirt reconnect timer; libvirt stays unreachable");
                return;
        }
        lv->backoff_ms = lv->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : lv->backoff_ms * 2;
}

static void on_retry(int timer, void *opaque)
{
        struct lv *lv = opaque;

        (void)virEventRemoveTimeout(timer);
        lv->retry_timer = -1;
        conn_drop(lv); /* a dead connection from a loss */
        if (conn_open(lv) < 0) {
                log_debug("libvirt at %s still unreachable (%s); next attempt in %u ms", lv->uri, lv->last_error,
                          lv->backoff_ms);
                arm_retry(lv);
                return;
        }
        lv->backoff_ms = BACKOFF_MIN_MS;
        log_info("connected to libvirt at %s", lv->uri);
        emit_connection(lv, true);
}

/* The connection is gone: say so once, then reconnect in the background. Main thread. */
static void connection_lost(struct lv *lv, const char *why)
{
        if (lv->lost)
                return;
        pthread_mutex_lock(&lv->lock);
        lv->lost = true;
        proto_text_printf(lv->last_error, sizeof(lv->last_error), "%s", why);
        pthread_mutex_unlock(&lv->lock);
        log_warn("lost libvirt at %s (%s); reconnecting", lv->uri, why);
        emit_connection(lv, false);
        lv->backoff_ms = BACKOFF_MIN_MS;
        arm_retry(lv);
}

static const char *close_reason_text(int reason);

/* The close callback of a close noticed by a worker's call: handled on the main thread. */
static void on_close_later(int timer, void *opaque)
{
        struct lv *lv = opaque;
        uint64_t gen = atomic_load(&lv->close_gen);
        int reason = atomic_exchange(&lv->close_reason, 0);

        (void)virEventRemoveTimeout(timer);
        /* only if the connection that closed is still the current one (a job's report may have
         * had it replaced meanwhile) */
        if (reason > 0 && lv->conn && gen == lv->conn_gen)
                connection_lost(lv, close_reason_text(reason - 1));
}

/* libvirt calls it from the thread that noticed the close: the event loop's, or a worker whose
 * call found the socket closed (then the main thread takes it over: connection_lost sends an
 * event and arms the reconnect timer, which only the main thread does). */
static void on_close(virConnectPtr conn, int reason, void *opaque)
{
        struct lv *lv = opaque;

        if (!pthread_equal(pthread_self(), lv->main_thread)) {
                bool current;
                uint64_t gen;

                pthread_mutex_lock(&lv->lock);
                current = conn == lv->conn;
                gen = lv->conn_gen;
                pthread_mutex_unlock(&lv->lock);
                if (!current)
                        return; /* an older connection's late close */
                atomic_store(&lv->close_gen, gen);
                if (atomic_exchange(&lv->close_reason, reason + 1) == 0 &&
                    virEventAddTimeout(0, on_close_later, lv, NULL) < 0) {
                        /* the next job that finds the connection dead reports it instead */
                        atomic_store(&lv->close_reason, 0);
                        log_warn("cannot hand the libvirt connection's close to the event loop");
                }
                return;
        }
        if (conn != lv->conn)
                return;
        connection_lost(lv, close_reason_text(reason));
}

static const char *close_reason_text(int reason)
{
        const char *why;

        switch (reason) {
        case VIR_CONNECT_CLOSE_REASON_EOF:
                why = "the libvirt daemon closed the connection";
                break;
        case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
                why = "the libvirt daemon stopped answering keepalives";
                break;
        case VIR_CONNECT_CLOSE_REASON_ERROR:
                why = "I/O error on the libvirt connection";
                break;
        default:
                why = "the libvirt connection was closed";
        }
        return why;
}

/* 0 when libvirt is usable, else fail the call with -ENOTCONN. On a worker: its job's
 * connection (a dead one is reported by the main thread when the job is done). */
static int need_conn(struct lv *lv, struct modrt_call *call)
{
        struct lv_job *j = worker_job;

        if (j) {
                if (j->conn && virConnectIsAlive(j->conn) == 1)
                        return 0;
                if (j->conn) {
                        j->conn_dead = true;
                        (void)strscpy(j->last_error, "the libvirt connection is no longer alive", sizeof(j->last_error));
                }
                return fail(call, -ENOTCONN, "libvirt at %s is unreachable (%s); reconnecting", lv->uri,
                            j->last_error[0] ? j->last_error : "not connected");
        }
        if (lv->conn && !lv->lost) {
                if (virConnectIsAlive(lv->conn) == 1)
                        return 0;
                connection_lost(lv, "the libvirt connection is no longer alive");
        }
        return fail(call, -ENOTCONN, "libvirt at %s is unreachable (%s); reconnecting", lv->uri,
                    lv->last_error[0] ? lv->last_error : "not connected");
}

/* ---- graceful shutdown deadlines ---- */

static int job_submit(struct lv *lv, struct lv_job *j);
static struct lv_job *job_new(struct lv *lv, enum lv_job_kind kind, const char *instance_uuid, bool writer);
static void job_free(struct lv_job *j);
static void jobs_quiesce(struct lv *lv);

/* Take t out of the list and remove its timeout (libvirt frees it). Lock held. */
static void shutdown_timer_unlink(struct shutdown_timer **p)
{
        struct shutdown_timer *t = *p;

        *p = t->next;
        t->cancelled = true;
        (void)virEventRemoveTimeout(t->timer);
}

/* Any thread. */
static void shutdown_timer_cancel(struct lv *lv, const char *instance_uuid)
{
        pthread_mutex_lock(&lv->lock);
        for (struct shutdown_timer **p = &lv->timers; *p; p = &(*p)->next)
                if (streq((*p)->instance_uuid, instance_uuid)) {
                        shutdown_timer_unlink(p);
                        break;
                }
        pthread_mutex_unlock(&lv->lock);
}

/* The deadline's work, in the instance's lane (after the calls on it that came before): destroy
 * the domain if it still runs, unless the deadline was cancelled meanwhile (a start, destroy,
 * undefine or new shutdown of the instance cancels it, as before they were on workers). */
static void shutdown_deadline(struct lv *lv, const char *uuid, uint64_t timer_id, uint64_t timeout_s)
{
        _cleanup_domain_ virDomainPtr dom = NULL;
        char name[DOMAIN_NAME_MAX];
        virConnectPtr conn = lv_conn(lv);
        bool pending = false;
        struct lv_err e;

        pthread_mutex_lock(&lv->lock);
        for (struct shutdown_timer **p = &lv->timers; *p; p = &(*p)->next)
                if ((*p)->id == timer_id) {
                        shutdown_timer_unlink(p);
                        pending = true;
                        break;
                }
        pthread_mutex_unlock(&lv->lock);
        if (!pending)
                return; /* cancelled by a call served before this */
        (void)domain_name_from_instance(uuid, name);
        if (!conn || (!worker_job && lv->lost)) {
                log_warn("domain %s: shutdown grace of %llu s over but libvirt is unreachable; not destroyed", name,
                         (unsigned long long)timeout_s);
                return;
        }
        dom = virDomainLookupByName(conn, name);
        if (!dom || domain_is_ours(dom, NULL) != 1 || virDomainIsActive(dom) != 1) {
                virResetLastError();
                return; /* gone, not ours any more, or stopped in time */
        }
        if (virDomainDestroy(dom) < 0) {
                capture_error(&e);
                if (virDomainIsActive(dom) == 0)
                        return;
                log_audit("shutdown_timeout instance_uuid=%s domain=%s timeout_s=%llu action=destroy result=error (%s)",
                          uuid, name, (unsigned long long)timeout_s, e.msg);
                return;
        }
        log_audit("shutdown_timeout instance_uuid=%s domain=%s timeout_s=%llu action=destroy result=ok", uuid, name,
                  (unsigned long long)timeout_s);
}

/* Main thread (libvirt's event loop): the grace period is over. The destroy goes into the
 * instance's lane, behind its calls already queued; here when no job can be made. */
static void on_shutdown_timeout(int timer, void *opaque)
{
        struct shutdown_timer *t = opaque;
        struct lv *lv = t->lv;
        char uuid[UUID_STR_LEN + 1];
        uint64_t id, timeout_s;
        struct lv_job *j;

        pthread_mutex_lock(&lv->lock);
        if (t->cancelled || t->fired) {
                pthread_mutex_unlock(&lv->lock);
                return;
        }
        t->fired = true;
        virEventUpdateTimeout(timer, -1); /* once */
        memcpy(uuid, t->instance_uuid, sizeof(uuid));
        id = t->id;
        timeout_s = t->timeout_s;
        pthread_mutex_unlock(&lv->lock);
        j = lv->lanes ? job_new(lv, JOB_DEADLINE, uuid, false) : NULL;
        if (j) {
                j->timer_id = id;
                j->timeout_s = timeout_s;
                if (job_submit(lv, j) == 0)
                        return;
                job_free(j);
        }
        /* here, after the instance's calls already queued (one at a time per instance) */
        jobs_quiesce(lv);
        shutdown_deadline(lv, uuid, id, timeout_s);
}

static void shutdown_timer_free(void *opaque) { free(opaque); }

/* Any thread. */
static int shutdown_timer_arm(struct lv *lv, const char *instance_uuid, uint64_t timeout_s)
{
        struct shutdown_timer *t;

        shutdown_timer_cancel(lv, instance_uuid); /* a newer request restarts the grace period */
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->lv = lv;
        memcpy(t->instance_uuid, instance_uuid, UUID_STR_LEN + 1);
        t->timeout_s = timeout_s;
        pthread_mutex_lock(&lv->lock);
        t->id = ++lv->next_timer_id;
        t->timer = virEventAddTimeout((int)(timeout_s * 1000), on_shutdown_timeout, t, shutdown_timer_free);
        if (t->timer < 0) {
                pthread_mutex_unlock(&lv->lock);
                free(t);
                return -EIO;
        }
        t->next = lv->timers;
        lv->timers = t;
        pthread_mutex_unlock(&lv->lock);
        return 0;
}

/* ---- lifecycle events ---- */

/* The event frame of a lifecycle event of our domain dom (instance uuid) into w; false when
 * there is none to send (not ours). Any thread: on a worker, in the instance's lane. */
static bool lifecycle_event_build(struct lv *lv, virDomainPtr dom, const char *uuid, int event, int detail,
                                  struct proto_writer *w)
{
        const char *word = event_word(event);
        int state, reason, r;

        r = domain_is_ours(dom, NULL);
        /* A domain already gone (undefined, transient stopped) cannot show its mark any more:
         * its derived name and matching uuid are what is left of it. */
        if (r == 0 || (r < 0 && r != -ENOENT)) {
                virResetLastError();
                return false;
        }
        /* gone (its mark could not be read: no such domain): shut off, without asking again */
        if (r == -ENOENT || virDomainGetState(dom, &state, &reason, 0) < 0) {
                state = VIR_DOMAIN_SHUTOFF;
                virResetLastError();
        }
        if (event == VIR_DOMAIN_EVENT_STOPPED)
                shutdown_timer_cancel(lv, uuid);
        pw_init(w, PROTO_EVENT, 0, 0, "domain_lifecycle");
        pw_str(w, "instance_uuid", uuid);
        pw_str(w, "event", word);
        pw_str(w, "detail", event_detail_word(event, detail));
        pw_str(w, "state", state_word(state));
        log_debug("domain %s%s: %s (%s)", LIBVIRT_DOMAIN_PREFIX, uuid, word, event_detail_word(event, detail));
        return true;
}

/* Main thread. What the domain is (its mark, its state: calls to libvirtd) is read in the
 * instance's lane, so the event follows the answers of the calls on it that came before. */
static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
        struct lv *lv = opaque;
        char uuid[UUID_STR_LEN + 1], dom_uuid[VIR_UUID_STRING_BUFLEN];
        struct lv_job *j;

        (void)conn;
        if (!event_word(event) || !domain_name_is_derived(virDomainGetName(dom), uuid) ||
            virDomainGetUUIDString(dom, dom_uuid) < 0 || !streq(uuid, dom_uuid)) {
                virResetLastError();
                return 0;
        }
        j = lv->lanes ? job_new(lv, JOB_EVENT, uuid, true) : NULL;
        if (j && virDomainRef(dom) == 0) {
                j->dom = dom;
                j->event = event;
                j->detail = detail;
                if (job_submit(lv, j) == 0)
                        return 0;
        }
        job_free(j);
        /* here, after the answers of the instance's calls already queued (an answer precedes the
         * event it caused) */
        jobs_quiesce(lv);
        if (lifecycle_event_build(lv, dom, uuid, event, detail, lv->ev))
                send_event(lv);
        return 0;
}

/* ---- requests ---- */

/* "migration" for a domain paused for a migration (the destination's incoming domain until
 * the switch-over, the source's in its last phase), "migration_out" while libvirt runs an
 * outgoing migration job of a running domain (whichever connection started it: a module started
 * again after its core's crash sees the job of the one before), else NULL. Job statistics are
 * read only for a running domain: libvirt lets no other job in during an incoming migration,
 * and a query there would wait for its job lock (30 s). */
static const char *migration_job_word(virDomainPtr dom, int state, int reason)
{
        virTypedParameterPtr params = NULL;
        int nparams = 0, type, op = 0;
        const char *word = NULL;

        if (state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_MIGRATION)
                return "migration";
        if (state != VIR_DOMAIN_RUNNING)
                return NULL;
        if (virDomainGetJobStats(dom, &type, &params, &nparams, 0) == 0 && type != VIR_DOMAIN_JOB_NONE &&
            virTypedParamsGetInt(params, nparams, VIR_DOMAIN_JOB_OPERATION, &op) == 1 &&
            op == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT)
                word = "migration_out";
        virTypedParamsFree(params, nparams);
        virResetLastError();
        return word;
}

/* DOMAIN of the contract from what was read of it; job: migration_job_word()'s, or NULL. */
static void write_domain(struct proto_writer *w, const char *key, const char *instance_uuid, const char *display_name,
                         int state, int reason, uint64_t vcpus, uint64_t max_mem_kib, const char *job)
{
        char name[DOMAIN_NAME_MAX];

        (void)domain_name_from_instance(instance_uuid, name);
        pw_obj_begin(w, key);
        pw_str(w, "instance_uuid", instance_uuid);
        pw_str(w, "domain_name", name);
        pw_str(w, "display_name", display_name);
        pw_str(w, "state", state_word(state));
        pw_str(w, "reason", reason_word(state, reason));
        pw_u64(w, "vcpus", vcpus);
        pw_u64(w, "memory_mb", max_mem_kib / 1024);
        if (job)
                pw_str(w, "job", job);
        pw_obj_end(w);
}

/* DOMAIN of the contract. 0, or -EIO (nothing written) when the domain cannot be read. */
static int reply_domain(struct proto_writer *w, const char *key, virDomainPtr dom, const char *instance_uuid,
                        const char *display_name)
{
        virDomainInfo info;
        int state, reason;

        if (virDomainGetState(dom, &state, &reason, 0) < 0 || virDomainGetInfo(dom, &info) < 0)
                return -EIO;
        write_domain(w, key, instance_uuid, display_name, state, reason, info.nrVirtCpu, info.maxMem,
                     migration_job_word(dom, state, reason));
        return 0;
}

static int reply_one(struct modrt_call *call, virDomainPtr dom, const char *instance_uuid, const char *display_name)
{
        char name[DOMAIN_NAME_MAX];
        struct lv_err e;

        if (reply_domain(call->reply, "domain", dom, instance_uuid, display_name) < 0) {
                capture_error(&e);
                (void)domain_name_from_instance(instance_uuid, name);
                return fail_libvirt(call, &e, -EIO, "cannot read the state of domain", name);
        }
        return 0;
}

/* Our domain for instance_uuid. 0 and *ret_dom; otherwise the call failed with
 * -ENOTCONN, -ENOENT (none of ours), -EEXIST (the derived name is taken by a
 * domain without our mark) or a translated libvirt error. */
static int lookup_ours(struct lv *lv, struct modrt_call *call, const char *instance_uuid, virDomainPtr *ret_dom,
                       char ret_display[LIBVIRT_MAX_NAME + 1])
{
        _cleanup_domain_ virDomainPtr dom = NULL;
        char name[DOMAIN_NAME_MAX];
        struct lv_err e;
        int r;

        r = need_conn(lv, call);
        if (r < 0)
                return r;
        (void)domain_name_from_instance(instance_uuid, name);
        dom = virDomainLookupByName(lv_conn(lv), name);
        if (!dom) {
                capture_error(&e);
                if (e.code == VIR_ERR_NO_DOMAIN)
                        return fail(call, -ENOENT, "no domain of ours for instance %s", instance_uuid);
                return fail_libvirt(call, &e, -EIO, "cannot look up domain", name);
        }
        r = domain_is_ours(dom, ret_display);
        if (r == 0)
                return fail(call, -EEXIST,
                            "domain %s exists but does not carry nova-hypervisor's mark for instance %s; "
                            "not touching it",
                            name, instance_uuid);
        if (r == -ENOENT)
                return fail(call, -ENOENT, "no domain of ours for instance %s", instance_uuid);
        if (r < 0) {
                capture_error(&e);
                return fail_libvirt(call, &e, -EIO, "cannot read the metadata of domain", name);
        }
        *ret_dom = TAKE_PTR(dom);
        return 0;
}

/* ---- volume names, derived from UUIDs only ---- */

#define IMAGE_VOL_PREFIX "image-"
#define IMAGE_VOL_SUFFIX ".raw"
#define IMPORT_VOL_SUFFIX ".import.qcow2" /* a qcow2 import's temporary volume, converted to the .raw base */
#define ROOT_VOL_SUFFIX LIBVIRT_ROOT_VOL_SUFFIX
#define CONFIG_VOL_SUFFIX "-config.iso"
#define CONSOLE_VOL_SUFFIX "-console.log"
#define VOL_NAME_MAX 80

static void image_vol_name(const char *image_uuid, char ret[VOL_NAME_MAX])
{
        (void)xsnprintf(ret, VOL_NAME_MAX, IMAGE_VOL_PREFIX "%s" IMAGE_VOL_SUFFIX, image_uuid);
}

static void import_vol_name(const char *image_uuid, char ret[VOL_NAME_MAX])
{
        (void)xsnprintf(ret, VOL_NAME_MAX, IMAGE_VOL_PREFIX "%s" IMPORT_VOL_SUFFIX, image_uuid);
}

static void root_vol_name(const char *instance_uuid, char ret[VOL_NAME_MAX])
{
        (void)xsnprintf(ret, VOL_NAME_MAX, LIBVIRT_DOMAIN_PREFIX "%s" ROOT_VOL_SUFFIX, instance_uuid);
}

static void config_vol_name(const char *instance_uuid, char ret[VOL_NAME_MAX])
{
        (void)xsnprintf(ret, VOL_NAME_MAX, LIBVIRT_DOMAIN_PREFIX "%s" CONFIG_VOL_SUFFIX, instance_uuid);
}

static void console_vol_name(const char *instance_uuid, char ret[VOL_NAME_MAX])
{
        (void)xsnprintf(ret, VOL_NAME_MAX, LIBVIRT_DOMAIN_PREFIX "%s" CONSOLE_VOL_SUFFIX, instance_uuid);
}

static void set_audit(struct modrt_call *call, const char *instance_uuid)
{
        (void)snprintf(call->audit, sizeof(call->audit), "domain=%s%s", LIBVIRT_DOMAIN_PREFIX, instance_uuid);
}

/* The request's ports into ports[LIBVIRT_MAX_PORTS]; *ret_n of them. */
static int define_read_ports(struct modrt_call *call, struct domain_port *ports, size_t *ret_n)
{
        const struct proto_value *plist = proto_get(call->req, "ports");
        size_t n = 0;

        for (const struct proto_value *p = plist ? plist->child : NULL; p; p = p->next) {
                if (n == LIBVIRT_MAX_PORTS)
                        return fail(call, -EINVAL, "more than %d ports", LIBVIRT_MAX_PORTS);
                ports[n].port_uuid = proto_get_str(p, "port_uuid", "");
                ports[n].mac = proto_get_str(p, "mac", "");
                ports[n].mtu = (uint32_t)proto_get_u64(p, "mtu", 0);
                ports[n].no_csum_offload = !proto_get_bool(p, "checksum_offload", true);
                n++;
        }
        *ret_n = n;
        return 0;
}

/* The disks' paths, which disks points into. */
struct define_paths {
        char root[400], base[400], config[400], console[400], kernel[400], initrd[400];
};

/* Disks: every path derived here from the pool's path and the UUIDs. false when the domain has
 * none (no image, no config drive). */
static bool define_disks(const struct lv *lv, const char *uuid, const char *image_uuid, bool config_drive,
                         struct define_paths *paths, struct domain_disks *disks)
{
        char vol[VOL_NAME_MAX];

        if (image_uuid[0]) {
                root_vol_name(uuid, vol);
                (void)xsnprintf(paths->root, sizeof(paths->root), "%s/%s", lv->pool_path, vol);
                image_vol_name(image_uuid, vol);
                (void)xsnprintf(paths->base, sizeof(paths->base), "%s/%s", lv->pool_path, vol);
                console_vol_name(uuid, vol);
                (void)xsnprintf(paths->console, sizeof(paths->console), "%s/%s", lv->pool_path, vol);
                disks->root_path = paths->root;
                disks->base_path = paths->base;
                disks->console_log = paths->console;
        }
        if (config_drive) {
                config_vol_name(uuid, vol);
                (void)xsnprintf(paths->config, sizeof(paths->config), "%s/%s", lv->pool_path, vol);
                disks->config_path = paths->config;
        }
        return image_uuid[0] || config_drive;
}

/* Direct kernel boot: the kernel's and the initrd's bases (paths derived from their image UUIDs)
 * and the command line, into disks. Both images or neither, and only with a root disk; 0 or the
 * call failed with -EINVAL. */
static int define_kernel(struct lv *lv, struct modrt_call *call, const char *image_uuid, struct define_paths *paths,
                         struct domain_disks *disks)
{
        const char *kernel = proto_get_str(call->req, "kernel_image_uuid", "");
        const char *ramdisk = proto_get_str(call->req, "ramdisk_image_uuid", "");
        const char *cmdline = proto_get_str(call->req, "cmdline", "");
        char vol[VOL_NAME_MAX];

        if (!kernel[0] && !ramdisk[0] && !cmdline[0])
                return 0;
        if (!kernel[0] || !ramdisk[0] || !image_uuid[0])
                return fail(call, -EINVAL, "direct kernel boot needs kernel_image_uuid, ramdisk_image_uuid and image_uuid");
        image_vol_name(kernel, vol);
        (void)xsnprintf(paths->kernel, sizeof(paths->kernel), "%s/%s", lv->pool_path, vol);
        image_vol_name(ramdisk, vol);
        (void)xsnprintf(paths->initrd, sizeof(paths->initrd), "%s/%s", lv->pool_path, vol);
        disks->kernel = paths->kernel;
        disks->initrd = paths->initrd;
        disks->cmdline = cmdline[0] ? cmdline : NULL;
        return 0;
}

/* Redefine our own domain; never take over a foreign one. 0 and *ret_existing (our domain
 * `name`, or NULL when there is none and the uuid is free); otherwise the call failed. */
static int define_check_existing(struct lv *lv, struct modrt_call *call, const char *name, const char *uuid,
                                 virDomainPtr *ret_existing)
{
        _cleanup_domain_ virDomainPtr existing = NULL;
        struct lv_err e;
        int r;

        existing = virDomainLookupByName(lv_conn(lv), name);
        if (!existing) {
                capture_error(&e);
                if (e.code != VIR_ERR_NO_DOMAIN)
                        return fail_libvirt(call, &e, -EIO, "cannot look up domain", name);
                existing = virDomainLookupByUUIDString(lv_conn(lv), uuid);
                if (existing)
                        return fail(call, -EEXIST, "uuid %s is already used by domain '%s'; not touching it", uuid,
                                    virDomainGetName(existing));
                capture_error(&e);
                if (e.code != VIR_ERR_NO_DOMAIN)
                        return fail_libvirt(call, &e, -EIO, "cannot look up the uuid of domain", name);
        } else {
                r = domain_is_ours(existing, NULL);
                if (r == 0)
                        return fail(call, -EEXIST,
                                    "domain %s exists but does not carry nova-hypervisor's mark; not touching it",
                                    name);
                if (r < 0 && r != -ENOENT) {
                        capture_error(&e);
                        return fail_libvirt(call, &e, -EIO, "cannot read the metadata of domain", name);
                }
        }
        virResetLastError();
        *ret_existing = TAKE_PTR(existing);
        return 0;
}

static int handle_define(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *uuid = proto_get_str(call->req, "instance_uuid", "");
        const char *display = proto_get_str(call->req, "name", "");
        const char *image_uuid = proto_get_str(call->req, "image_uuid", "");
        bool config_drive = proto_get_bool(call->req, "config_drive", false);
        struct domain_port ports[LIBVIRT_MAX_PORTS];
        _cleanup_domain_ virDomainPtr existing = NULL, dom = NULL;
        _cleanup_free_ char *xml = NULL;
        char name[DOMAIN_NAME_MAX];
        struct define_paths paths;
        struct domain_disks disks = { 0 };
        struct domain_spec spec;
        struct lv_err e;
        size_t n = 0;
        int r;

        set_audit(call, uuid);
        (void)domain_name_from_instance(uuid, name);
        r = define_read_ports(call, ports, &n);
        if (r < 0)
                return r;
        if (!lv->domain_type)
                return fail(call, -EPROTONOSUPPORT,
                            "libvirt_uri %s: domains are only generated for the qemu:// and test:// drivers", lv->uri);
        spec = (struct domain_spec){
                .type = lv->domain_type,
                .instance_uuid = uuid,
                .display_name = display,
                .vcpus = proto_get_u64(call->req, "vcpus", 0),
                .memory_mb = proto_get_u64(call->req, "memory_mb", 0),
                .ports = ports,
                .n_ports = n,
        };
        if (define_disks(lv, uuid, image_uuid, config_drive, &paths, &disks))
                spec.disks = &disks;
        r = define_kernel(lv, call, image_uuid, &paths, &disks);
        if (r < 0)
                return r;
        xml = malloc(DOMAIN_XML_MAX);
        if (!xml)
                return fail(call, -ENOMEM, "out of memory");
        r = domain_xml_build(&spec, xml, DOMAIN_XML_MAX);
        if (r < 0)
                return fail(call, r, "cannot generate the document of domain %s: %s", name, strerror(-r));
        r = need_conn(lv, call);
        if (r < 0)
                return r;
        r = define_check_existing(lv, call, name, uuid, &existing);
        if (r < 0)
                return r;

        /* No VIR_DOMAIN_DEFINE_VALIDATE: it re-reads and re-parses libvirt's RNG
         * schemas on every call (most of the cost of a boot, see bench/boot).
         * Every document domain-xml.c can produce is validated against those
         * schemas by tests/unit/test-domain-xml.c; libvirt still parses and
         * checks the definition semantically here. */
        dom = virDomainDefineXMLFlags(lv_conn(lv), xml, 0);
        if (!dom) {
                capture_error(&e);
                return fail_libvirt(call, &e, -EINVAL, "libvirt refused the definition of domain", name);
        }
        log_info("domain %s %s (%zu ports, %llu vcpus, %llu MiB%s%s%s)", name, existing ? "redefined" : "defined", n,
                 (unsigned long long)spec.vcpus, (unsigned long long)spec.memory_mb,
                 image_uuid[0] ? ", root disk" : ", diskless", config_drive ? ", config drive" : "",
                 disks.kernel ? ", direct kernel boot" : "");
        return reply_one(call, dom, uuid, display);
}

static int handle_start(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *uuid = proto_get_str(call->req, "instance_uuid", "");
        _cleanup_domain_ virDomainPtr dom = NULL;
        char display[LIBVIRT_MAX_NAME + 1] = "", name[DOMAIN_NAME_MAX];
        struct lv_err e;
        int r;

        set_audit(call, uuid);
        (void)domain_name_from_instance(uuid, name);
        r = lookup_ours(lv, call, uuid, &dom, display);
        if (r < 0)
                return r;
        shutdown_timer_cancel(lv, uuid); /* an explicit start overrides a pending shutdown deadline */
        if (virDomainIsActive(dom) != 1 && virDomainCreate(dom) < 0) {
                capture_error(&e);
                if (virDomainIsActive(dom) != 1) /* lost a race with another start: fine */
                        return fail_libvirt(call, &e, -EIO, "cannot start domain", name);
        }
        return reply_one(call, dom, uuid, display);
}

static int handle_shutdown(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *uuid = proto_get_str(call->req, "instance_uuid", "");
        uint64_t timeout_s = proto_get_u64(call->req, "timeout_s", lv->shutdown_timeout_s);
        _cleanup_domain_ virDomainPtr dom = NULL;
        char display[LIBVIRT_MAX_NAME + 1] = "", name[DOMAIN_NAME_MAX];
        struct lv_err e;
        int r;

        set_audit(call, uuid);
        (void)domain_name_from_instance(uuid, name);
        r = lookup_ours(lv, call, uuid, &dom, display);
        if (r < 0)
                return r;
        if (virDomainIsActive(dom) != 1)
                return reply_one(call, dom, uuid, display); /* already stopped */
        if (virDomainShutdown(dom) < 0) {
                capture_error(&e);
                if (virDomainIsActive(dom) == 0)
                        return reply_one(call, dom, uuid, display);
                return fail_libvirt(call, &e, -EIO, "cannot shut down domain", name);
        }
        if (virDomainIsActive(dom) == 1) {
                r = shutdown_timer_arm(lv, uuid, timeout_s);
                if (r < 0)
                        log_warn("domain %s: cannot arm the %llu s shutdown deadline: %s", name,
                                 (unsigned long long)timeout_s, strerror(-r));
                else
                        log_info("domain %s: shutdown requested; destroying it in %llu s if still running", name,
                                 (unsigned long long)timeout_s);
        }
        return reply_one(call, dom, uuid, display);
}

static int handle_reboot(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *uuid = proto_get_str(call->req, "instance_uuid", "");
        _cleanup_domain_ virDomainPtr dom = NULL;
        char display[LIBVIRT_MAX_NAME + 1] = "", name[DOMAIN_NAME_MAX];
        struct lv_err e;
        int r;

        set_audit(call, uuid);
        (void)domain_name_from_instance(uuid, name);
        r = lookup_ours(lv, call, uuid, &dom, display);
        if (r < 0)
                return r;
        if (virDomainReboot(dom, 0) < 0) {
                capture_error(&e);
                return fail_libvirt(call, &e, -EIO, "cannot reboot domain", name);
        }
        return reply_one(call, dom, uuid, display);
}

static int handle_destroy(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *uuid = proto_get_str(call->req, "instance_uuid", "");
        _cleanup_domain_ virDomainPtr dom = NULL;
        char display[LIBVIRT_MAX_NAME + 1] = "", name[DOMAIN_NAME_MAX];
        struct lv_err e;
        int r;

        set_audit(call, uuid);
        (void)domain_name_from_instance(uuid, name);
        r = lookup_ours(lv, call, uuid, &dom, display);
        if (r < 0)
                return r;
        shutdown_timer_cancel(lv, uuid);
        /* Destroy at once (one round trip less than asking first); a domain that is not running
         * refuses it, and is fine. */
        if (virDomainDestroy(dom) < 0) {
                capture_error(&e);
                if (virDomainIsActive(dom) != 0)
                        return fail_libvirt(call, &e, -EIO, "cannot destroy domain", name);
                virResetLastError();
        }
        return reply_one(call, dom, uuid, display);
}

static int handle_undefine(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *uuid = proto_get_str(call->req, "instance_uuid", "");
        _cleanup_domain_ virDomainPtr dom = NULL;
        char name[DOMAIN_NAME_MAX];
        struct lv_err e;
        int r;

        set_audit(call, uuid);
        (void)domain_name_from_instance(uuid, name);
        r = lookup_ours(lv, call, uuid, &dom, NULL);
        if (r < 0)
                return r;
        /* libvirt would turn a running domain into a transient one that vanishes
         * when it stops: refuse, the caller destroys first. */
        if (virDomainIsActive(dom) == 1)
                return fail(call, -EBUSY, "domain %s is running; destroy it before undefining it", name);
        shutdown_timer_cancel(lv, uuid);
        if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                                VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) < 0) {
                capture_error(&e);
                return fail_libvirt(call, &e, -EIO, "cannot undefine domain", name);
        }
        log_info("domain %s undefined", name);
        return 0;
}

static int handle_state(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *uuid = proto_get_str(call->req, "instance_uuid", "");
        _cleanup_domain_ virDomainPtr dom = NULL;
        char display[LIBVIRT_MAX_NAME + 1] = "";
        int r;

        r = lookup_ours(lv, call, uuid, &dom, display);
        if (r < 0)
                return r;
        return reply_one(call, dom, uuid, display);
}

/* A domain named as ours, as domain_list sorts them. */
struct listed_domain {
        char uuid[UUID_STR_LEN + 1];
        char display[LIBVIRT_MAX_NAME + 1]; /* from its mark, once judged ours */
        virDomainPtr dom;
        bool ours;                          /* judged: its mark names its uuid (domain_is_ours() == 1) */
};

/* Work shared by the threads of for_each_in_flight(). */
struct in_flight_work {
        void (*fn)(void *item);
        char *items;
        size_t size, n;
        atomic_size_t next; /* the next item nobody has taken */
};

static void *in_flight_worker(void *userdata)
{
        struct in_flight_work *w = userdata;

        for (size_t i; (i = atomic_fetch_add(&w->next, 1)) < w->n;)
                w->fn(w->items + i * w->size);
        return NULL;
}

/* fn(item) for each of the n items (of size bytes each), with up to LIST_CALLS_IN_FLIGHT of them
 * running at once: the calling thread and helper threads that end before this returns. Each fn
 * makes its own libvirt calls on the shared connection (libvirt's remote client is thread-safe and
 * keeps several calls in flight; its error is per thread). A round trip to libvirtd costs mostly
 * waiting for the two processes to be scheduled, which calls in flight together share: 1000
 * virDomainGetMetadata calls took 1.9-2.6 s one at a time and 0.3-0.5 s two or more at a time
 * against a private libvirtd (bench/boot-full's, load 12). A helper that cannot be created leaves
 * its share to the others. */
static void for_each_in_flight(void (*fn)(void *item), void *items, size_t size, size_t n)
{
        struct in_flight_work w = { .fn = fn, .items = items, .size = size, .n = n };
        pthread_t helpers[LIST_CALLS_IN_FLIGHT - 1];
        size_t n_helpers = 0, want = n < LIST_CALLS_IN_FLIGHT ? (n > 0 ? n - 1 : 0) : LIST_CALLS_IN_FLIGHT - 1;
        pthread_attr_t attr;
        bool attr_ok = pthread_attr_init(&attr) == 0;

        atomic_init(&w.next, 0);
        if (attr_ok)
                (void)pthread_attr_setstacksize(&attr, LIST_THREAD_STACK);
        while (n_helpers < want && pthread_create(&helpers[n_helpers], attr_ok ? &attr : NULL, in_flight_worker, &w) == 0)
                n_helpers++;
        if (attr_ok)
                (void)pthread_attr_destroy(&attr);
        (void)in_flight_worker(&w);
        for (size_t i = 0; i < n_helpers; i++)
                (void)pthread_join(helpers[i], NULL);
}

/* for_each_in_flight(): is this listed domain ours (the mark, one libvirt call)? */
static void judge_listed(void *item)
{
        struct listed_domain *l = item;

        l->display[0] = '\0';
        l->ours = domain_is_ours(l->dom, l->display) == 1;
        virResetLastError();
}

/* What domain_list replies of one domain of a page. */
struct page_values {
        virDomainPtr dom;
        int state, reason;
        unsigned vcpus;
        unsigned long long max_kib;
        bool need_info; /* the stats had no vcpus or memory: virDomainGetInfo */
        const char *job; /* migration_job_word()'s (one more call for a running domain), or NULL */
        int r;          /* 0, or -EIO: the domain could not be read */
};

/* for_each_in_flight(): the domain's migration job, if any. */
static void page_values_job(void *item)
{
        struct page_values *v = item;

        v->job = migration_job_word(v->dom, v->state, v->reason);
}

/* for_each_in_flight(): vcpus and maximum memory from virDomainGetInfo. */
static void page_values_info(void *item)
{
        struct page_values *v = item;
        virDomainInfo info;

        if (virDomainGetInfo(v->dom, &info) < 0) {
                v->r = -EIO;
        } else {
                v->vcpus = info.nrVirtCpu;
                v->max_kib = info.maxMem;
        }
        virResetLastError();
}

/* DOMAINs of a page from one stats call (state, vcpus, maximum memory). 0, or -EIO with
 * nothing written (the driver has no stats, or a domain of the page is missing from them). */
static int reply_page_stats(struct proto_writer *w, struct listed_domain *const *page, size_t n)
{
        _cleanup_free_ virDomainPtr *doms = calloc(n + 1, sizeof(*doms));
        _cleanup_free_ struct page_values *vals = calloc(n, sizeof(*vals));
        _cleanup_free_ struct page_values *need = calloc(n, sizeof(*need));
        virDomainStatsRecordPtr *recs = NULL;
        size_t n_need = 0;
        int nrec, r = 0;

        if (!doms || !vals || !need)
                return -EIO;
        for (size_t i = 0; i < n; i++)
                doms[i] = page[i]->dom;
        /* NOWAIT: vcpu and balloon statistics need a query job, which libvirt admits to no domain
         * in an incoming migration: without it the listing (reconcile's) waited 30 s for the job
         * lock, and this single-threaded module answered nothing else meanwhile (a `migrate abort`
         * on the destination timed out). Missing figures come from virDomainGetInfo below. */
        nrec = virDomainListGetStats(doms, VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_VCPU | VIR_DOMAIN_STATS_BALLOON,
                                     &recs, VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT);
        if (nrec < 0 || (size_t)nrec != n) {
                if (recs)
                        virDomainStatsRecordListFree(recs);
                virResetLastError();
                return -EIO;
        }
        /* Every domain of the page has its record, in the page's order (as libvirt answers), with
         * its state: otherwise the caller reads the page one domain at a time. vcpus and maximum
         * memory come with it where the driver reports them (QEMU), else from virDomainGetInfo
         * (libvirt's test driver reports the state only), LIST_CALLS_IN_FLIGHT at a time. */
        for (size_t i = 0; i < n && r == 0; i++) {
                virTypedParameterPtr p = recs[i]->params;
                int np = recs[i]->nparams;

                vals[i].dom = page[i]->dom;
                if (!streq_ptr(virDomainGetName(recs[i]->dom), virDomainGetName(page[i]->dom)) ||
                    virTypedParamsGetInt(p, np, "state.state", &vals[i].state) != 1 ||
                    virTypedParamsGetInt(p, np, "state.reason", &vals[i].reason) != 1)
                        r = -EIO;
                else if (virTypedParamsGetUInt(p, np, "vcpu.current", &vals[i].vcpus) != 1 ||
                         virTypedParamsGetULLong(p, np, "balloon.maximum", &vals[i].max_kib) != 1)
                        vals[i].need_info = true;
        }
        virDomainStatsRecordListFree(recs);
        virResetLastError();
        for (size_t i = 0; i < n && r == 0; i++)
                if (vals[i].need_info)
                        need[n_need++] = vals[i];
        if (r == 0 && n_need > 0)
                for_each_in_flight(page_values_info, need, sizeof(*need), n_need);
        for (size_t i = 0, j = 0; i < n && r == 0; i++)
                if (vals[i].need_info) {
                        r = need[j].r;
                        vals[i].vcpus = need[j].vcpus;
                        vals[i].max_kib = need[j].max_kib;
                        j++;
                }
        if (r == 0)
                for_each_in_flight(page_values_job, vals, sizeof(*vals), n);
        for (size_t i = 0; i < n && r == 0; i++)
                write_domain(w, NULL, page[i]->uuid, page[i]->display, vals[i].state, vals[i].reason, vals[i].vcpus,
                             vals[i].max_kib, vals[i].job);
        return r;
}

static int listed_by_uuid(const void *a, const void *b)
{
        return strcmp(((const struct listed_domain *)a)->uuid, ((const struct listed_domain *)b)->uuid);
}

static int handle_list(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *after = proto_get_str(call->req, "after", NULL);
        uint64_t limit = proto_get_u64(call->req, "limit", PROTO_MAX_ITEMS);
        _cleanup_free_ struct listed_domain *named = NULL;
        struct listed_domain *page[PROTO_MAX_NODES / DOMAIN_REPLY_VALUES];
        size_t max = (PROTO_MAX_NODES - 16) / DOMAIN_REPLY_VALUES, n_page = 0;
        virDomainPtr *doms = NULL;
        size_t n_named = 0, k = 0;
        struct lv_err e;
        int n, r;

        r = need_conn(lv, call);
        if (r < 0)
                return r;
        n = virConnectListAllDomains(lv->conn, &doms, 0);
        if (n < 0) {
                capture_error(&e);
                return fail(call, errno_from_libvirt(e.code, -EIO), "cannot list domains: %s", e.msg);
        }
        named = n > 0 ? calloc((size_t)n, sizeof(*named)) : NULL;
        if (n > 0 && !named) {
                for (int i = 0; i < n; i++)
                        (void)virDomainFree(doms[i]);
                free(doms);
                return fail(call, -ENOMEM, "out of memory");
        }
        /* Named as ours: sorted by UUID, so pages follow one another. */
        for (int i = 0; i < n; i++) {
                if (domain_name_is_derived(virDomainGetName(doms[i]), named[n_named].uuid))
                        named[n_named++].dom = TAKE_PTR(doms[i]);
                else
                        (void)virDomainFree(doms[i]);
        }
        free(doms);
        if (n_named > 1)
                qsort(named, n_named, sizeof(*named), listed_by_uuid);
        while (after && k < n_named && strcmp(named[k].uuid, after) <= 0)
                k++;
        if ((PROTO_MAX_FRAME - 256) / DOMAIN_REPLY_MAX_BYTES < max)
                max = (PROTO_MAX_FRAME - 256) / DOMAIN_REPLY_MAX_BYTES;
        if (limit < max)
                max = limit;
        /* Ours (the mark: one call each, LIST_CALLS_IN_FLIGHT at a time) among them, from the
         * cursor on, as many as one frame surely holds: judged in runs no longer than the room left,
         * so every domain judged is in the page or not ours, and the cursor is the last judged; then
         * their state, vcpus and memory in one call for the page (virDomainListGetStats), or one
         * domain at a time where the driver has no stats. */
        while (k < n_named && n_page < max) {
                size_t run = n_named - k < max - n_page ? n_named - k : max - n_page;

                for_each_in_flight(judge_listed, &named[k], sizeof(named[k]), run);
                for (size_t end = k + run; k < end; k++)
                        if (named[k].ours)
                                page[n_page++] = &named[k];
        }
        pw_list_begin(call->reply, "domains");
        if (n_page > 0 && reply_page_stats(call->reply, page, n_page) < 0)
                for (size_t i = 0; i < n_page; i++)
                        (void)reply_domain(call->reply, NULL, page[i]->dom, page[i]->uuid, page[i]->display);
        pw_list_end(call->reply);
        pw_u64(call->reply, "total", n_named);
        pw_bool(call->reply, "truncated", k < n_named);
        if (k > 0 && k < n_named)
                pw_str(call->reply, "next", named[k - 1].uuid);
        for (size_t i = 0; i < n_named; i++)
                (void)virDomainFree(named[i].dom);
        virResetLastError();
        return 0;
}

/* ---- storage: one dir pool of ours, volumes named from UUIDs ---- */

#define UPLOAD_CHUNK (256u * 1024)   /* bytes read and sent at a time: memory stays bounded */
#define UPLOADS_MAX 2                /* concurrent uploads (each has a thread and a connection) */
#define VOL_REPLY_MAX_BYTES 320      /* bytes one listed volume takes in a reply, at most */

static inline void pool_freep(virStoragePoolPtr *p)
{
        if (*p)
                (void)virStoragePoolFree(*p);
}
#define _cleanup_pool_ _cleanup_(pool_freep)
static inline void vol_freep(virStorageVolPtr *v)
{
        if (*v)
                (void)virStorageVolFree(*v);
}
#define _cleanup_vol_ _cleanup_(vol_freep)

/* Which of our names is this: "image", "import" (a qcow2 import's temporary volume), "root",
 * "config", "console" with its UUID, or NULL (not ours). */
static const char *vol_kind(const char *name, char ret_uuid[UUID_STR_LEN + 1])
{
        static const struct {
                const char *prefix, *suffix, *kind;
        } kinds[] = {
                { IMAGE_VOL_PREFIX, IMAGE_VOL_SUFFIX, "image" },
                { IMAGE_VOL_PREFIX, IMPORT_VOL_SUFFIX, "import" },
                { LIBVIRT_DOMAIN_PREFIX, ROOT_VOL_SUFFIX, "root" },
                { LIBVIRT_DOMAIN_PREFIX, CONFIG_VOL_SUFFIX, "config" },
                { LIBVIRT_DOMAIN_PREFIX, CONSOLE_VOL_SUFFIX, "console" },
        };
        size_t n = name ? strnlen(name, VOL_NAME_MAX) : VOL_NAME_MAX;

        for (size_t i = 0; n < VOL_NAME_MAX && i < ARRAY_SIZE(kinds); i++) {
                size_t p = strlen(kinds[i].prefix), s = strlen(kinds[i].suffix);
                char uuid[UUID_STR_LEN + 1];

                if (n != p + UUID_STR_LEN + s || strncmp(name, kinds[i].prefix, p) != 0 ||
                    strcmp(name + p + UUID_STR_LEN, kinds[i].suffix) != 0)
                        continue;
                memcpy(uuid, name + p, UUID_STR_LEN);
                uuid[UUID_STR_LEN] = '\0';
                if (!uuid_is_valid(uuid))
                        continue;
                memcpy(ret_uuid, uuid, sizeof(uuid));
                return kinds[i].kind;
        }
        return NULL;
}

/* The pool's XML has our directory as its target path (and is a dir pool). */
static bool pool_xml_matches(const char *xml, const char *path)
{
        char want[300];
        const char *target;

        if (!xml || strncmp(xml, "<pool type='dir'", 16) != 0 ||
            xsnprintf(want, sizeof(want), "<path>%s</path>", path) < 0)
                return false;
        target = strstr(xml, "<target>");
        return target && strstr(target, want) != NULL;
}

/* Our pool on conn: defined, built, started, autostarted (idempotent). A pool of
 * that name that is not a dir pool on our path is refused (-EEXIST), never changed.
 * 0 and *ret, or -errno with a reason in err. */
static int pool_ensure(virConnectPtr conn, const char *name, const char *path, virStoragePoolPtr *ret, char *err,
                       size_t errlen)
{
        _cleanup_pool_ virStoragePoolPtr pool = virStoragePoolLookupByName(conn, name);
        _cleanup_free_ char *xml = NULL;
        struct lv_err e;
        int active, autostart = 0;

        if (!pool) {
                char def[512];

                capture_error(&e);
                if (e.code != VIR_ERR_NO_STORAGE_POOL) {
                        proto_text_printf(err, errlen, "cannot look up storage pool %s: %s", name, e.msg);
                        return errno_from_libvirt(e.code, -EIO);
                }
                if (xsnprintf(def, sizeof(def),
                              "<pool type='dir'><name>%s</name><target><path>%s</path>"
                              "<permissions><mode>0711</mode></permissions></target></pool>",
                              name, path) < 0)
                        return -ENAMETOOLONG;
                pool = virStoragePoolDefineXML(conn, def, 0);
                if (!pool) {
                        capture_error(&e);
                        proto_text_printf(err, errlen, "cannot define storage pool %s at %s: %s", name, path, e.msg);
                        return errno_from_libvirt(e.code, -EIO);
                }
                log_info("defined storage pool %s at %s", name, path);
        }
        xml = virStoragePoolGetXMLDesc(pool, VIR_STORAGE_XML_INACTIVE);
        if (!xml) /* a driver that takes no flags here (libvirt's test driver): the live XML has the same target */
                xml = virStoragePoolGetXMLDesc(pool, 0);
        if (!pool_xml_matches(xml, path)) {
                proto_text_printf(err, errlen,
                                  "storage pool %s exists but is not a dir pool at %s: not ours, left alone "
                                  "(set storage_pool to another name or storage_pool_path to its path)",
                                  name, path);
                return -EEXIST;
        }
        active = virStoragePoolIsActive(pool);
        if (active == 0) {
                /* Build makes the directory when missing (no overwrite: an existing one is kept). */
                (void)virStoragePoolBuild(pool, 0);
                virResetLastError();
                if (virStoragePoolCreate(pool, 0) < 0) {
                        capture_error(&e);
                        proto_text_printf(err, errlen, "cannot start storage pool %s: %s", name, e.msg);
                        return errno_from_libvirt(e.code, -EIO);
                }
        } else if (active < 0) {
                capture_error(&e);
                proto_text_printf(err, errlen, "storage pool %s: %s", name, e.msg);
                return errno_from_libvirt(e.code, -EIO);
        }
        if (virStoragePoolGetAutostart(pool, &autostart) < 0 || !autostart)
                (void)virStoragePoolSetAutostart(pool, 1);
        virResetLastError();
        *ret = TAKE_PTR(pool);
        return 0;
}

static bool upload_running(const struct lv *lv, const char *image_uuid);

/* Once per module process: temporary import volumes no upload of this process owns are what a
 * module that died during a qcow2 import left; delete them. */
static void sweep_imports(struct lv *lv, virStoragePoolPtr pool)
{
        virStorageVolPtr *vols = NULL;
        int n;

        if (lv->imports_swept)
                return;
        (void)virStoragePoolRefresh(pool, 0);
        n = virStoragePoolListAllVolumes(pool, &vols, 0);
        if (n < 0) {
                virResetLastError();
                return;
        }
        lv->imports_swept = true;
        for (int i = 0; i < n; i++) {
                char uuid[UUID_STR_LEN + 1];
                const char *name = virStorageVolGetName(vols[i]);
                const char *kind = vol_kind(name, uuid);

                if (kind && streq(kind, "import") && !upload_running(lv, uuid)) {
                        if (virStorageVolDelete(vols[i], 0) == 0)
                                log_info("deleted %s, left by an import that did not finish", name);
                        else
                                log_warn("cannot delete %s, left by an import that did not finish", name);
                }
                (void)virStorageVolFree(vols[i]);
        }
        free(vols);
        virResetLastError();
}

static int need_pool(struct lv *lv, struct modrt_call *call, virStoragePoolPtr *ret)
{
        int r = need_conn(lv, call);

        if (r < 0)
                return r;
        r = pool_ensure(lv->conn, lv->pool_name, lv->pool_path, ret, call->err, sizeof(call->err));
        if (r == 0)
                sweep_imports(lv, *ret);
        return r;
}

/* The volume `name` of our pool: 0 and *ret, -ENOENT when absent, or -errno with err set. */
static int vol_lookup(virStoragePoolPtr pool, const char *name, virStorageVolPtr *ret, char *err, size_t errlen)
{
        virStorageVolPtr v = virStorageVolLookupByName(pool, name);
        struct lv_err e;

        if (v) {
                *ret = v;
                return 0;
        }
        capture_error(&e);
        if (e.code == VIR_ERR_NO_STORAGE_VOL)
                return -ENOENT;
        proto_text_printf(err, errlen, "cannot look up volume %s: %s", name, e.msg);
        return errno_from_libvirt(e.code, -EIO);
}

static int handle_pool_info(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        _cleanup_pool_ virStoragePoolPtr pool = NULL;
        virStoragePoolInfo info;
        struct lv_err e;
        int r = need_pool(lv, call, &pool);

        if (r < 0)
                return r;
        (void)virStoragePoolRefresh(pool, 0);
        if (virStoragePoolGetInfo(pool, &info) < 0) {
                capture_error(&e);
                return fail(call, errno_from_libvirt(e.code, -EIO), "storage pool %s: %s", lv->pool_name, e.msg);
        }
        virResetLastError();
        pw_str(call->reply, "pool", lv->pool_name);
        pw_str(call->reply, "path", lv->pool_path);
        pw_u64(call->reply, "capacity", info.capacity);
        pw_u64(call->reply, "allocation", info.allocation);
        pw_u64(call->reply, "available", info.available);
        return 0;
}

/* An upload in progress: its own thread and libvirt connection, so the module's
 * other requests are served meanwhile. The thread touches only this struct (and
 * libvirt through its own connection); it hands the result to the event loop
 * with a zero timeout (libvirt's event loop is thread-safe), where the call is
 * answered. */
struct upload {
        struct lv *lv;                               /* owner (main thread only) */
        struct modrt_deferred *deferred;             /* the call to answer */
        pthread_t thread;
        int fd;                                      /* the image bytes; owned by the thread */
        char image_uuid[UUID_STR_LEN + 1];
        uint64_t size;                               /* announced bytes */
        enum image_format declared;
        char uri[256], pool_name[64], pool_path[256];/* copies: the thread reads no shared state */
        /* results, written by the thread before it signals */
        int status;
        char err[256];
        char volume[VOL_NAME_MAX];
        bool qcow2;                                  /* the image is a qcow2: converted to the raw base */
        char import_volume[VOL_NAME_MAX];            /* qcow2: the temporary volume its bytes go to */
        char sha256[65];
        uint64_t virtual_size;
        struct upload *next;
};

/* Read up to n bytes (fewer only at the end of the stream); waits on a non-blocking fd. */
static ssize_t read_some(int fd, uint8_t *buf, size_t n)
{
        size_t have = 0;

        while (have < n) {
                ssize_t k = read(fd, buf + have, n - have);
                if (k > 0) {
                        have += (size_t)k;
                        continue;
                }
                if (k == 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        struct pollfd p = { .fd = fd, .events = POLLIN };
                        if (poll(&p, 1, -1) < 0 && errno != EINTR)
                                return -errno;
                        continue;
                }
                return -errno;
        }
        return (ssize_t)have;
}

static int stream_send_all(virStreamPtr st, const uint8_t *buf, size_t n)
{
        while (n > 0) {
                int k = virStreamSend(st, (const char *)buf, n);
                if (k <= 0)
                        return -EIO;
                buf += k;
                n -= (size_t)k;
        }
        return 0;
}

#define upload_fail(u, r, ...)                                                   \
        ({                                                                       \
                proto_text_printf((u)->err, sizeof((u)->err), __VA_ARGS__);      \
                (u)->status = (r);                                               \
                (r);                                                             \
        })

/* Step 1: read the header into head (IMAGE_HEAD_MAX bytes) and inspect it before libvirt
 * sees any byte; *have is how much was read. Raw, or a qcow2 the inspector accepts (v2/v3,
 * no backing file, no data file, no encryption, no unknown incompatible bit); its virtual
 * size (the header's, for a qcow2) is what the space checks use. */
static int upload_read_head(struct upload *u, uint8_t *head, size_t *have)
{
        struct image_info info;
        struct image_error ierr = { 0 };
        size_t want, need = 0;
        int r;

        want = u->size < IMAGE_HEAD_MIN ? (size_t)u->size : IMAGE_HEAD_MIN;
        for (;;) {
                ssize_t k = read_some(u->fd, head + *have, want - *have);
                if (k < 0)
                        return upload_fail(u, (int)k, "cannot read the image stream: %s", strerror((int)-k));
                *have += (size_t)k;
                if (*have < want)
                        return upload_fail(u, -EPIPE, "the image stream ended after %zu of %" PRIu64 " bytes", *have,
                                           u->size);
                r = image_inspect(head, *have, u->size, u->declared, &info, &need, &ierr);
                if (r == -EAGAIN && need > *have && need <= IMAGE_HEAD_MAX) {
                        want = need;
                        continue;
                }
                if (r == -EINVAL)
                        return upload_fail(u, -EINVAL, "image %s refused: %s", u->image_uuid, ierr.text);
                if (r < 0)
                        return upload_fail(u, -EINVAL, "image %s: header cannot be inspected (%s)", u->image_uuid,
                                           strerror(-r));
                break;
        }
        u->qcow2 = info.format == IMAGE_FORMAT_QCOW2;
        u->virtual_size = info.virtual_size;
        if (u->qcow2 && (u->virtual_size == 0 || u->virtual_size > LIBVIRT_MAX_IMAGE_BYTES))
                return upload_fail(u, -EINVAL, "image %s refused: a qcow2 of virtual size %" PRIu64 " bytes (at most %llu)",
                                   u->image_uuid, u->virtual_size, (unsigned long long)LIBVIRT_MAX_IMAGE_BYTES);
        return 0;
}

/* Step 2: the pool (created if need be) into *pool, with room for the image and no volume of
 * that name yet. Nothing is created here but the pool. */
static int upload_check_space(struct upload *u, virConnectPtr conn, virStoragePoolPtr *pool)
{
        virStorageVolPtr vol = NULL;
        virStoragePoolInfo pinfo;
        struct lv_err e;
        uint64_t need;
        char err[256];
        int r;

        r = pool_ensure(conn, u->pool_name, u->pool_path, pool, err, sizeof(err));
        if (r < 0)
                return upload_fail(u, r, "%s", err);
        (void)virStoragePoolRefresh(*pool, 0);
        if (virStoragePoolGetInfo(*pool, &pinfo) < 0) {
                capture_error(&e);
                return upload_fail(u, -EIO, "storage pool %s: %s", u->pool_name, e.msg);
        }
        /* a qcow2 is held twice for a moment: its own bytes, then the raw base of its virtual size */
        need = u->virtual_size + (u->qcow2 ? u->size : 0);
        if (need > pinfo.available)
                return upload_fail(u, -ENOSPC, "image %s needs %" PRIu64 " bytes, pool %s has %llu free",
                                   u->image_uuid, need, u->pool_name, pinfo.available);
        for (int i = 0; i < (u->qcow2 ? 2 : 1); i++) {
                const char *name = i == 0 ? u->volume : u->import_volume;

                r = vol_lookup(*pool, name, &vol, err, sizeof(err));
                if (r == 0) {
                        virStorageVolFree(vol);
                        return upload_fail(u, -EEXIST, "image %s is already stored (volume %s)", u->image_uuid, name);
                }
                if (r != -ENOENT)
                        return upload_fail(u, r, "%s", err);
        }
        return 0;
}

/* Step 3a: the empty volume the bytes go to, mode 0600, into *vol: the raw base itself, or for
 * a qcow2 the temporary volume, created with an explicit qcow2 format (never left to a probe)
 * and the header's virtual size. */
static int upload_create_volume(struct upload *u, virStoragePoolPtr pool, virStorageVolPtr *vol)
{
        const char *name = u->qcow2 ? u->import_volume : u->volume;
        struct lv_err e;
        char volxml[512];

        if (xsnprintf(volxml, sizeof(volxml),
                      "<volume><name>%s</name><capacity unit='bytes'>%" PRIu64 "</capacity>"
                      "<allocation unit='bytes'>0</allocation><target><format type='%s'/>"
                      "<permissions><mode>0600</mode></permissions></target></volume>",
                      name, u->qcow2 ? u->virtual_size : u->size, u->qcow2 ? "qcow2" : "raw") < 0)
                return upload_fail(u, -ENAMETOOLONG, "volume definition too long");
        *vol = virStorageVolCreateXML(pool, volxml, 0);
        if (!*vol) {
                capture_error(&e);
                return upload_fail(u, errno_from_libvirt(e.code, -EIO), "cannot create volume %s: %s", name, e.msg);
        }
        return 0;
}

/* Step 3b, the bytes after the header: exactly u->size in all, no more, hashed on the way.
 * 0, or the failure recorded by upload_fail (the stream is then to be aborted). */
static int upload_send_rest(struct upload *u, virStreamPtr st, EVP_MD_CTX *md, uint8_t *chunk, uint64_t sent)
{
        struct lv_err e;
        ssize_t k;

        while (sent < u->size) {
                size_t n = u->size - sent < UPLOAD_CHUNK ? (size_t)(u->size - sent) : UPLOAD_CHUNK;
                k = read_some(u->fd, chunk, n);
                if (k < 0)
                        return upload_fail(u, (int)k, "cannot read the image stream: %s", strerror((int)-k));
                if ((size_t)k < n)
                        return upload_fail(u, -EPIPE, "the image stream ended after %" PRIu64 " of %" PRIu64 " bytes",
                                           sent + (uint64_t)k, u->size);
                (void)EVP_DigestUpdate(md, chunk, n);
                if (stream_send_all(st, chunk, n) < 0) {
                        capture_error(&e);
                        return upload_fail(u, -EIO, "upload into %s failed: %s", u->volume, e.msg);
                }
                sent += n;
        }
        k = read_some(u->fd, chunk, 1);
        if (k != 0)
                return upload_fail(u, k < 0 ? (int)k : -EFBIG,
                                   "the image stream is longer than the announced %" PRIu64 " bytes", u->size);
        return 0;
}

/* Step 3b: stream the header already read and the rest of the image into vol, and record its
 * SHA-256. On failure the stream is aborted; the caller deletes the volume. */
static int upload_stream(struct upload *u, virConnectPtr conn, virStorageVolPtr vol, const uint8_t *head,
                         size_t have, uint8_t *chunk)
{
        virStreamPtr st = NULL;
        EVP_MD_CTX *md = NULL;
        struct lv_err e;
        int r;

        md = EVP_MD_CTX_new();
        st = virStreamNew(conn, 0);
        if (!md || !st || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
                r = upload_fail(u, -ENOMEM, "cannot set up the upload");
                goto out;
        }
        if (virStorageVolUpload(vol, st, 0, u->size, 0) < 0) {
                capture_error(&e);
                r = upload_fail(u, errno_from_libvirt(e.code, -EIO), "cannot upload into %s: %s", u->volume, e.msg);
                goto out;
        }
        (void)EVP_DigestUpdate(md, head, have);
        if (stream_send_all(st, head, have) < 0)
                goto fail_stream;
        r = upload_send_rest(u, st, md, chunk, have);
        if (r < 0)
                goto fail_abort;
        if (virStreamFinish(st) < 0)
                goto fail_stream;
        {
                unsigned char dg[EVP_MAX_MD_SIZE];
                unsigned dlen = 0;
                (void)EVP_DigestFinal_ex(md, dg, &dlen);
                for (unsigned i = 0; i < dlen && i < 32; i++)
                        (void)snprintf(u->sha256 + 2 * i, 3, "%02x", dg[i]);
        }
        r = 0;
        goto out;

fail_stream:
        capture_error(&e);
        r = upload_fail(u, -EIO, "upload into %s failed: %s", u->volume, e.msg);
fail_abort:
        (void)virStreamAbort(st);
out:
        if (st)
                (void)virStreamFree(st);
        EVP_MD_CTX_free(md);
        return r;
}

/* Step 4: what libvirt now says the volume is: raw (or iso: libvirt's probe names an ISO 9660 so,
 * and it has no backing chain), without a backing store. */
static int upload_verify_raw(struct upload *u, virStorageVolPtr vol)
{
        _cleanup_free_ char *x = virStorageVolGetXMLDesc(vol, 0);

        if (!x || !(strstr(x, "<format type='raw'/>") || strstr(x, "<format type='iso'/>")) ||
            strstr(x, "<backingStore>"))
                return upload_fail(u, -EINVAL, "volume %s is not reported as plain raw after the upload; deleted",
                                   u->volume);
        return 0;
}

/* qcow2, step 4: what libvirt now says the temporary volume is, after a refresh (libvirt
 * re-probes a dir pool's volumes from their bytes on refresh): qcow2, without a backing store,
 * with the virtual size our inspector read. libvirt's conversion (below) takes its source format
 * from exactly this description, so it is checked before anything reads the bytes as qcow2. */
static int upload_verify_qcow2(struct upload *u, virStoragePoolPtr pool, virStorageVolPtr vol)
{
        _cleanup_free_ char *x = NULL;
        virStorageVolInfo vi;

        (void)virStoragePoolRefresh(pool, 0);
        x = virStorageVolGetXMLDesc(vol, 0);
        if (!x || !strstr(x, "<format type='qcow2'/>") || strstr(x, "<backingStore>") || strstr(x, "<encryption"))
                return upload_fail(u, -EINVAL,
                                   "image %s: libvirt does not report the uploaded qcow2 as a plain qcow2 (no backing "
                                   "store, no encryption); refused",
                                   u->image_uuid);
        if (virStorageVolGetInfo(vol, &vi) < 0 || vi.capacity != u->virtual_size)
                return upload_fail(u, -EINVAL,
                                   "image %s: libvirt reads another virtual size from the qcow2 than its header "
                                   "declares (%" PRIu64 " bytes); refused",
                                   u->image_uuid, u->virtual_size);
        return 0;
}

/* qcow2, step 5: the raw base from the temporary volume, into *ret.
 *
 * virStorageVolCreateXMLFrom on a dir pool runs `qemu-img convert -f <fmt> -O raw IN OUT`, and
 * <fmt> is the source volume's format as the pool describes it, not a probe of its bytes:
 * libvirt 9.0's src/storage/storage_util.c, virStorageBackendGetBuildVolFromFunction() picks
 * storageBackendCreateQemuImg because the input is a non-raw file volume, and
 * virStorageBackendCreateQemuImgCmdFromVol() adds "convert", "-f", info.inputFormatStr, "-O",
 * info.type, where storageBackendCreateQemuImgSetInput() sets inputFormatStr from
 * inputvol->target.format; a backing path is dropped when converting (checked on this machine's
 * libvirt 9.0.0-4+deb12u2 with its util.command debug log: "qemu-img convert -f qcow2 -O raw
 * <pool>/t.qcow2 <pool>/b.raw" for a volume created as qcow2). That description is the one
 * upload_verify_qcow2() checked (qcow2, no backing store), and our inspector refused a backing
 * file, a data file, encryption and unknown incompatible bits in the header before libvirt saw a
 * byte, so qemu-img opens nothing but the temporary volume. */
static int upload_convert(struct upload *u, virStoragePoolPtr pool, virStorageVolPtr src, virStorageVolPtr *ret)
{
        struct lv_err e;
        char volxml[512];

        if (xsnprintf(volxml, sizeof(volxml),
                      "<volume><name>%s</name><capacity unit='bytes'>%" PRIu64 "</capacity>"
                      "<target><format type='raw'/><permissions><mode>0600</mode></permissions></target></volume>",
                      u->volume, u->virtual_size) < 0)
                return upload_fail(u, -ENAMETOOLONG, "volume definition too long");
        *ret = virStorageVolCreateXMLFrom(pool, volxml, src, 0);
        if (!*ret) {
                capture_error(&e);
                return upload_fail(u, errno_from_libvirt(e.code, -EIO), "cannot convert image %s to raw: %s",
                                   u->image_uuid, e.msg);
        }
        return 0;
}

/* qcow2, step 6: the converted base's first bytes, read back through libvirt and inspected as
 * a raw image, as an imported raw image is: a qcow2 whose guest-visible content starts with
 * another format's header (a qcow2 with a backing file, a VMDK descriptor, ...) is refused here
 * as it would be as a raw import. */
static int upload_inspect_base(struct upload *u, virConnectPtr conn, virStorageVolPtr vol, uint8_t *buf)
{
        size_t want = u->virtual_size < IMAGE_HEAD_MIN ? (size_t)u->virtual_size : IMAGE_HEAD_MIN, have = 0;
        virStreamPtr st = virStreamNew(conn, 0);
        struct image_error ierr = { 0 };
        struct image_info info;
        size_t need = 0;
        int r = 0;

        if (!st)
                return upload_fail(u, -ENOMEM, "cannot set up a download");
        if (virStorageVolDownload(vol, st, 0, want, 0) < 0) {
                r = -EIO;
        } else {
                while (have < want) {
                        int k = virStreamRecv(st, (char *)buf + have, want - have);
                        if (k <= 0) {
                                r = k == 0 ? -EPIPE : -EIO;
                                break;
                        }
                        have += (size_t)k;
                }
                if (r == 0 ? virStreamFinish(st) < 0 : virStreamAbort(st) < 0)
                        r = r ? r : -EIO;
        }
        (void)virStreamFree(st);
        if (r < 0)
                return upload_fail(u, r, "cannot read back the converted image %s", u->image_uuid);
        r = image_inspect(buf, have, u->virtual_size, IMAGE_FORMAT_RAW, &info, &need, &ierr);
        if (r == -EINVAL)
                return upload_fail(u, -EINVAL, "image %s refused: its content, as a raw disk: %s", u->image_uuid,
                                   ierr.text);
        if (r < 0)
                return upload_fail(u, -EINVAL, "image %s: the converted disk cannot be inspected (%s)", u->image_uuid,
                                   strerror(-r));
        return 0;
}

static void upload_delete_volume(virStorageVolPtr vol, const char *name)
{
        struct lv_err e;

        if (vol && virStorageVolDelete(vol, 0) < 0) {
                capture_error(&e);
                log_err("cannot delete the upload's volume %s: %s", name, e.msg);
        }
}

/* qcow2: steps 4-6 on the uploaded temporary volume tmp; the base in *ret_base. The temporary
 * volume is the caller's to delete, whatever happens; a base that fails a check is deleted here. */
static int upload_qcow2_to_base(struct upload *u, virConnectPtr conn, virStoragePoolPtr pool, virStorageVolPtr tmp,
                                uint8_t *buf, virStorageVolPtr *ret_base)
{
        virStorageVolPtr base = NULL;

        if (upload_verify_qcow2(u, pool, tmp) < 0 || upload_convert(u, pool, tmp, &base) < 0)
                return u->status;
        if (upload_verify_raw(u, base) < 0 || upload_inspect_base(u, conn, base, buf) < 0) {
                upload_delete_volume(base, u->volume);
                (void)virStorageVolFree(base);
                return u->status;
        }
        *ret_base = base;
        return 0;
}

/* The thread's work: inspect, check space, create, stream, verify (and for a qcow2: verify what
 * libvirt reports, convert to the raw base, verify that, delete the temporary volume). Any failure
 * after a volume exists deletes it. */
static int upload_run(struct upload *u)
{
        _cleanup_free_ uint8_t *head = NULL, *chunk = NULL;
        virConnectPtr conn = NULL;
        virStoragePoolPtr pool = NULL;
        virStorageVolPtr vol = NULL;
        struct lv_err e;
        size_t have = 0;

        image_vol_name(u->image_uuid, u->volume);
        import_vol_name(u->image_uuid, u->import_volume);
        head = malloc(IMAGE_HEAD_MAX);
        chunk = malloc(UPLOAD_CHUNK);
        if (!head || !chunk)
                return upload_fail(u, -ENOMEM, "out of memory");
        if (upload_read_head(u, head, &have) < 0)
                return u->status;

        /* Our own connection: the thread shares none with the event loop. */
        conn = virConnectOpen(u->uri);
        if (!conn) {
                capture_error(&e);
                return upload_fail(u, -ENOTCONN, "libvirt at %s is unreachable: %s", u->uri, e.msg);
        }
        if (upload_check_space(u, conn, &pool) < 0 || upload_create_volume(u, pool, &vol) < 0)
                goto out;
        if (upload_stream(u, conn, vol, head, have, chunk) < 0) {
                upload_delete_volume(vol, u->qcow2 ? u->import_volume : u->volume);
                goto out;
        }
        if (u->qcow2) {
                virStorageVolPtr base = NULL;

                (void)upload_qcow2_to_base(u, conn, pool, vol, head, &base);
                upload_delete_volume(vol, u->import_volume);
                if (base)
                        (void)virStorageVolFree(base);
                if (!base)
                        goto out;
        } else if (upload_verify_raw(u, vol) < 0) {
                upload_delete_volume(vol, u->volume);
                goto out;
        }
        u->status = 0;

out:
        if (vol)
                (void)virStorageVolFree(vol);
        if (pool)
                (void)virStoragePoolFree(pool);
        if (conn)
                (void)virConnectClose(conn);
        return u->status;
}

static void on_upload_done(int timer, void *opaque);

static void *upload_thread(void *opaque)
{
        struct upload *u = opaque;

        (void)upload_run(u);
        (void)close(u->fd);
        u->fd = -1;
        /* Hand over to the event loop (the default implementation takes this from any thread and wakes up). */
        if (virEventAddTimeout(0, on_upload_done, u, NULL) < 0)
                log_err("cannot signal the end of an upload; request stays unanswered");
        return NULL;
}

static void upload_fill(struct proto_writer *w, void *userdata)
{
        struct upload *u = userdata;

        pw_str(w, "image_uuid", u->image_uuid);
        pw_str(w, "volume", u->volume);
        pw_u64(w, "size", u->size);
        pw_u64(w, "virtual_size", u->virtual_size);
        pw_str(w, "format", u->qcow2 ? "qcow2" : "raw"); /* what was imported; the base is raw either way */
        pw_str(w, "sha256", u->sha256);
}

static void on_upload_done(int timer, void *opaque)
{
        struct upload *u = opaque;
        struct lv *lv = u->lv;

        (void)virEventRemoveTimeout(timer);
        (void)pthread_join(u->thread, NULL);
        for (struct upload **p = &lv->uploads; *p; p = &(*p)->next)
                if (*p == u) {
                        *p = u->next;
                        break;
                }
        lv->n_uploads--;
        if (u->status == 0)
                log_info("image %s stored as %s (%" PRIu64 " bytes, sha256 %s)", u->image_uuid, u->volume, u->size,
                         u->sha256);
        (void)modrt_complete(lv->rt, u->deferred, u->status, u->err, u->status == 0 ? upload_fill : NULL, u);
        free(u);
}

static bool upload_running(const struct lv *lv, const char *image_uuid)
{
        for (const struct upload *o = lv->uploads; o; o = o->next)
                if (streq(o->image_uuid, image_uuid))
                        return true;
        return false;
}

static int handle_image_upload(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *image_uuid = proto_get_str(call->req, "image_uuid", "");
        const char *format = proto_get_str(call->req, "format", "");
        struct upload *u;
        struct stat sb;
        int r;

        (void)xsnprintf(call->audit, sizeof(call->audit), "volume=" IMAGE_VOL_PREFIX "%s" IMAGE_VOL_SUFFIX,
                        image_uuid);
        if (fstat(call->fd, &sb) < 0)
                return fail(call, -errno, "cannot use the passed descriptor: %s", strerror(errno));
        if (!S_ISFIFO(sb.st_mode) && !S_ISSOCK(sb.st_mode) && !S_ISREG(sb.st_mode))
                return fail(call, -EINVAL, "the image must come as a pipe, socket or regular file");
        r = need_conn(lv, call);
        if (r < 0)
                return r;
        for (struct upload *o = lv->uploads; o; o = o->next)
                if (streq(o->image_uuid, image_uuid))
                        return fail(call, -EBUSY, "image %s is being uploaded already", image_uuid);
        if (lv->n_uploads >= UPLOADS_MAX)
                return fail(call, -EBUSY, "%d uploads are running; try again when one ends", UPLOADS_MAX);
        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->lv = lv;
        u->fd = call->fd;
        memcpy(u->image_uuid, image_uuid, UUID_STR_LEN);
        u->size = proto_get_u64(call->req, "size", 0);
        u->declared = streq(format, "raw") ? IMAGE_FORMAT_RAW : streq(format, "qcow2") ? IMAGE_FORMAT_QCOW2
                                                                                       : IMAGE_FORMAT_UNSPECIFIED;
        (void)strscpy(u->uri, lv->uri, sizeof(u->uri));
        (void)strscpy(u->pool_name, lv->pool_name, sizeof(u->pool_name));
        (void)strscpy(u->pool_path, lv->pool_path, sizeof(u->pool_path));
        u->deferred = modrt_defer(lv->rt, call);
        if (!u->deferred) {
                free(u);
                return -ENOMEM;
        }
        r = pthread_create(&u->thread, NULL, upload_thread, u);
        if (r != 0) {
                /* The deferred token is answered here, at once. */
                (void)modrt_complete(lv->rt, u->deferred, -r, "cannot start the upload thread", NULL, NULL);
                free(u);
                return MODRT_DEFERRED;
        }
        call->fd = -1; /* the thread owns it now */
        u->next = lv->uploads;
        lv->uploads = u;
        lv->n_uploads++;
        return MODRT_DEFERRED;
}

/* Is any root disk of ours backed by base_path? 1 yes (its name in ret_user), 0 no, -errno. */
static int base_in_use(virStoragePoolPtr pool, const char *base_path, char ret_user[VOL_NAME_MAX])
{
        virStorageVolPtr *vols = NULL;
        char want[400];
        int n = virStoragePoolListAllVolumes(pool, &vols, 0), found = 0;

        if (n < 0)
                return -EIO;
        (void)xsnprintf(want, sizeof(want), "<path>%s</path>", base_path);
        for (int i = 0; i < n; i++) {
                char uuid[UUID_STR_LEN + 1];
                const char *name = virStorageVolGetName(vols[i]);
                const char *kind = vol_kind(name, uuid);

                if (!found && kind && streq(kind, "root")) {
                        _cleanup_free_ char *x = virStorageVolGetXMLDesc(vols[i], 0);
                        const char *bs = x ? strstr(x, "<backingStore>") : NULL;
                        if (bs && strstr(bs, want)) {
                                (void)strscpy(ret_user, name, VOL_NAME_MAX);
                                found = 1;
                        }
                }
                (void)virStorageVolFree(vols[i]);
        }
        free(vols);
        virResetLastError();
        return found;
}

static int handle_image_delete(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *image_uuid = proto_get_str(call->req, "image_uuid", "");
        _cleanup_pool_ virStoragePoolPtr pool = NULL;
        _cleanup_vol_ virStorageVolPtr vol = NULL;
        char name[VOL_NAME_MAX], path[400], user[VOL_NAME_MAX] = "";
        struct lv_err e;
        int r;

        image_vol_name(image_uuid, name);
        (void)xsnprintf(call->audit, sizeof(call->audit), "volume=%s", name);
        for (struct upload *o = lv->uploads; o; o = o->next)
                if (streq(o->image_uuid, image_uuid))
                        return fail(call, -EBUSY, "image %s is being uploaded", image_uuid);
        r = need_pool(lv, call, &pool);
        if (r < 0)
                return r;
        r = vol_lookup(pool, name, &vol, call->err, sizeof(call->err));
        if (r == -ENOENT) {
                pw_bool(call->reply, "deleted", false);
                return 0;
        }
        if (r < 0)
                return r;
        (void)xsnprintf(path, sizeof(path), "%s/%s", lv->pool_path, name);
        r = base_in_use(pool, path, user);
        if (r < 0)
                return fail(call, r, "cannot list the volumes of pool %s", lv->pool_name);
        if (r > 0)
                return fail(call, -EBUSY, "image %s is the base of root disk %s: delete that instance first", image_uuid,
                            user);
        if (virStorageVolDelete(vol, 0) < 0) {
                capture_error(&e);
                return fail(call, errno_from_libvirt(e.code, -EIO), "cannot delete volume %s: %s", name, e.msg);
        }
        pw_bool(call->reply, "deleted", true);
        return 0;
}

/* List our volumes (of one kind, or all with kind NULL) into list `key`; total/truncated after it. */
static int reply_volumes(struct lv *lv, struct modrt_call *call, const char *key, const char *only_kind)
{
        _cleanup_pool_ virStoragePoolPtr pool = NULL;
        virStorageVolPtr *vols = NULL;
        uint64_t total = 0, shown = 0;
        struct lv_err e;
        int n, r = need_pool(lv, call, &pool);

        if (r < 0)
                return r;
        (void)virStoragePoolRefresh(pool, 0);
        n = virStoragePoolListAllVolumes(pool, &vols, 0);
        if (n < 0) {
                capture_error(&e);
                return fail(call, errno_from_libvirt(e.code, -EIO), "cannot list pool %s: %s", lv->pool_name, e.msg);
        }
        pw_list_begin(call->reply, key);
        for (int i = 0; i < n; i++) {
                char uuid[UUID_STR_LEN + 1];
                const char *name = virStorageVolGetName(vols[i]);
                const char *kind = vol_kind(name, uuid);
                virStorageVolInfo vi;

                /* a qcow2 import's temporary volume is the upload's, never an instance's */
                if (kind && (only_kind ? streq(kind, only_kind) : !streq(kind, "import"))) {
                        total++;
                        if (shown == total - 1 && call->reply->n_values + 12 <= PROTO_MAX_NODES &&
                            call->reply->len + VOL_REPLY_MAX_BYTES + 64 <= PROTO_MAX_FRAME &&
                            virStorageVolGetInfo(vols[i], &vi) == 0) {
                                pw_obj_begin(call->reply, NULL);
                                if (only_kind) {
                                        pw_str(call->reply, "image_uuid", uuid);
                                } else {
                                        pw_str(call->reply, "kind", kind);
                                        pw_str(call->reply, "uuid", uuid);
                                }
                                pw_str(call->reply, "volume", name);
                                pw_u64(call->reply, "capacity", vi.capacity);
                                pw_u64(call->reply, "allocation", vi.allocation);
                                pw_obj_end(call->reply);
                                shown++;
                        }
                }
                (void)virStorageVolFree(vols[i]);
        }
        free(vols);
        virResetLastError();
        pw_list_end(call->reply);
        pw_u64(call->reply, "total", total);
        pw_bool(call->reply, "truncated", shown < total);
        return 0;
}

static int handle_image_list(void *state, struct modrt_call *call)
{
        return reply_volumes(state, call, "images", "image");
}

static int handle_volume_list(void *state, struct modrt_call *call)
{
        return reply_volumes(state, call, "volumes", NULL);
}

static int handle_root_disk_create(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *instance_uuid = proto_get_str(call->req, "instance_uuid", "");
        const char *image_uuid = proto_get_str(call->req, "image_uuid", "");
        uint64_t size_gb = proto_get_u64(call->req, "size_gb", 0), capacity;
        bool existing = proto_get_bool(call->req, "existing", false);
        _cleanup_pool_ virStoragePoolPtr pool = NULL;
        _cleanup_vol_ virStorageVolPtr base = NULL, root = NULL;
        char base_name[VOL_NAME_MAX], root_name[VOL_NAME_MAX], base_path[400], root_path[400], xml[1024];
        virStorageVolInfo bi, ri;
        virStoragePoolInfo pi;
        bool created = false;
        struct lv_err e;
        int r;

        image_vol_name(image_uuid, base_name);
        root_vol_name(instance_uuid, root_name);
        (void)xsnprintf(call->audit, sizeof(call->audit), "volume=%s base=%s", root_name, base_name);
        r = need_pool(lv, call, &pool);
        if (r < 0)
                return r;
        r = vol_lookup(pool, base_name, &base, call->err, sizeof(call->err));
        if (r == -ENOENT)
                return fail(call, -ENOENT, "image %s is not stored", image_uuid);
        if (r < 0)
                return r;
        if (virStorageVolGetInfo(base, &bi) < 0) {
                capture_error(&e);
                return fail(call, -EIO, "volume %s: %s", base_name, e.msg);
        }
        capacity = size_gb << 30;
        if (capacity < bi.capacity)
                capacity = bi.capacity;
        (void)xsnprintf(base_path, sizeof(base_path), "%s/%s", lv->pool_path, base_name);
        (void)xsnprintf(root_path, sizeof(root_path), "%s/%s", lv->pool_path, root_name);
        r = vol_lookup(pool, root_name, &root, call->err, sizeof(call->err));
        if (r < 0 && r != -ENOENT)
                return r;
        if (r == -ENOENT && existing) {
                /* put back by hand into the directory (a restore): the pool knows it after a refresh */
                (void)virStoragePoolRefresh(pool, 0);
                r = vol_lookup(pool, root_name, &root, call->err, sizeof(call->err));
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        if (r == -ENOENT && existing) /* an empty overlay in its place would pass for the guest's disk */
                return fail(call, -ENOENT, "volume %s is missing: it held the guest's data and is not made again "
                            "(restore it, or delete the instance)", root_name);
        if (r == -ENOENT) {
                /* The overlay starts nearly empty, but the guest may fill it: refuse what the pool cannot hold. */
                (void)virStoragePoolRefresh(pool, 0);
                if (virStoragePoolGetInfo(pool, &pi) == 0 && capacity > pi.available + bi.allocation)
                        log_warn("root disk %s: %" PRIu64 " bytes on a pool with %llu free (thin, overcommitted)",
                                 root_name, capacity, pi.available);
                if (xsnprintf(xml, sizeof(xml),
                              "<volume><name>%s</name><capacity unit='bytes'>%" PRIu64 "</capacity>"
                              "<target><format type='qcow2'/><permissions><mode>0600</mode></permissions></target>"
                              "<backingStore><path>%s</path><format type='raw'/></backingStore></volume>",
                              root_name, capacity, base_path) < 0)
                        return fail(call, -ENAMETOOLONG, "volume definition too long");
                root = virStorageVolCreateXML(pool, xml, 0);
                if (!root) {
                        capture_error(&e);
                        return fail(call, errno_from_libvirt(e.code, -EIO), "cannot create root disk %s: %s",
                                    root_name, e.msg);
                }
                created = true;
        } else {
                /* Idempotent: an existing overlay must be ours in shape (qcow2 on this base, raw). */
                _cleanup_free_ char *x = virStorageVolGetXMLDesc(root, 0);
                char want[450];
                const char *bs = x ? strstr(x, "<backingStore>") : NULL;

                (void)xsnprintf(want, sizeof(want), "<path>%s</path>", base_path);
                if (!x || !strstr(x, "<format type='qcow2'/>") || !bs || !strstr(bs, want) ||
                    !strstr(bs, "<format type='raw'/>"))
                        return fail(call, -EEXIST, "volume %s exists but is not a qcow2 overlay on %s", root_name,
                                    base_name);
        }
        if (virStorageVolGetInfo(root, &ri) < 0) {
                capture_error(&e);
                return fail(call, -EIO, "volume %s: %s", root_name, e.msg);
        }
        virResetLastError();
        pw_str(call->reply, "volume", root_name);
        pw_str(call->reply, "path", root_path);
        pw_u64(call->reply, "capacity", ri.capacity);
        pw_str(call->reply, "backing_path", base_path);
        pw_bool(call->reply, "created", created);
        return 0;
}

static int handle_volumes_delete(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *instance_uuid = proto_get_str(call->req, "instance_uuid", "");
        const char *only = proto_get_str(call->req, "kind", "");
        static const char *const kinds[] = { "root", "config", "console" };
        _cleanup_pool_ virStoragePoolPtr pool = NULL;
        char names[3][VOL_NAME_MAX];
        uint64_t deleted = 0;
        struct lv_err e;
        int r;

        root_vol_name(instance_uuid, names[0]);
        config_vol_name(instance_uuid, names[1]);
        console_vol_name(instance_uuid, names[2]);
        (void)xsnprintf(call->audit, sizeof(call->audit), "volumes=%s%s", LIBVIRT_DOMAIN_PREFIX, instance_uuid);
        if (only[0])
                (void)xsnprintf(call->audit, sizeof(call->audit), "volume=%s%s-%s", LIBVIRT_DOMAIN_PREFIX,
                                instance_uuid, only);
        r = need_pool(lv, call, &pool);
        if (r < 0)
                return r;
        /* the console log is a file QEMU made: the pool knows it only after a refresh */
        if (!only[0] || streq(only, "console"))
                (void)virStoragePoolRefresh(pool, 0);
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                _cleanup_vol_ virStorageVolPtr v = NULL;

                if (only[0] && !streq(only, kinds[i]))
                        continue;
                r = vol_lookup(pool, names[i], &v, call->err, sizeof(call->err));
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                if (virStorageVolDelete(v, 0) < 0) {
                        capture_error(&e);
                        return fail(call, errno_from_libvirt(e.code, -EIO), "cannot delete volume %s: %s", names[i],
                                    e.msg);
                }
                deleted++;
        }
        pw_u64(call->reply, "deleted", deleted);
        return 0;
}

/* ---- purge: every volume of ours (the remove hook) ---- */

struct purge {
        uint64_t deleted, failed, kept;
        char error[200];                                          /* the first failure */
        char kept_images[LIBVIRT_PURGE_MAX_LISTED][UUID_STR_LEN + 1];
        size_t n_kept_images;
        bool kept_images_truncated;
};

static void purge_delete(struct purge *p, virStorageVolPtr v, const char *name)
{
        struct lv_err e;

        if (virStorageVolDelete(v, 0) == 0) {
                p->deleted++;
                return;
        }
        capture_error(&e);
        if (!p->failed)
                proto_text_printf(p->error, sizeof(p->error), "cannot delete volume %s: %s", name, e.msg);
        p->failed++;
}

/* An instance's volume: kept while its domain of ours exists. */
static bool purge_keeps_instance_volume(struct lv *lv, const char *uuid)
{
        _cleanup_domain_ virDomainPtr dom = NULL;
        char name[DOMAIN_NAME_MAX];

        (void)domain_name_from_instance(uuid, name);
        dom = virDomainLookupByName(lv->conn, name);
        virResetLastError();
        return dom && domain_is_ours(dom, NULL) == 1;
}

/* Pass 1 (instance volumes) or 2 (bases and import leftovers) over the pool's volumes. */
static void purge_pass(struct lv *lv, virStoragePoolPtr pool, int pass, struct purge *p)
{
        virStorageVolPtr *vols = NULL;
        int n = virStoragePoolListAllVolumes(pool, &vols, 0);

        for (int i = 0; i < n; i++) {
                char uuid[UUID_STR_LEN + 1], path[400], user[VOL_NAME_MAX];
                const char *name = virStorageVolGetName(vols[i]);
                const char *kind = vol_kind(name, uuid);
                bool base = kind && (streq(kind, "image") || streq(kind, "import"));

                if (!kind || base != (pass == 2)) {
                        (void)virStorageVolFree(vols[i]);
                        continue;
                }
                (void)xsnprintf(path, sizeof(path), "%s/%s", lv->pool_path, name);
                if (base ? upload_running(lv, uuid) || (streq(kind, "image") && base_in_use(pool, path, user) != 0)
                         : purge_keeps_instance_volume(lv, uuid)) {
                        p->kept++;
                        if (streq(kind, "image") && p->n_kept_images < LIBVIRT_PURGE_MAX_LISTED)
                                memcpy(p->kept_images[p->n_kept_images++], uuid, UUID_STR_LEN + 1);
                        else if (streq(kind, "image"))
                                p->kept_images_truncated = true;
                } else
                        purge_delete(p, vols[i], name);
                (void)virStorageVolFree(vols[i]);
        }
        free(vols);
        virResetLastError();
}

/* The pool once nothing is left in it: stopped, its (empty) directory removed, undefined. */
static bool purge_pool(struct lv *lv, virStoragePoolPtr pool)
{
        (void)virStoragePoolRefresh(pool, 0);
        if (virStoragePoolNumOfVolumes(pool) != 0 || lv->n_uploads > 0) {
                virResetLastError();
                return false;
        }
        if (virStoragePoolDestroy(pool) < 0 || virStoragePoolDelete(pool, VIR_STORAGE_POOL_DELETE_NORMAL) < 0 ||
            virStoragePoolUndefine(pool) < 0) {
                virResetLastError();
                log_warn("storage pool %s: emptied, but not removed", lv->pool_name);
                return false;
        }
        log_info("storage pool %s removed (%s)", lv->pool_name, lv->pool_path);
        lv->imports_swept = false; /* a new pool next time */
        return true;
}

static int handle_volumes_purge(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        _cleanup_pool_ virStoragePoolPtr pool = NULL;
        _cleanup_free_ struct purge *p = calloc(1, sizeof(*p));
        bool removed;
        int r;

        (void)xsnprintf(call->audit, sizeof(call->audit), "pool=%s", lv->pool_name);
        if (!p)
                return fail(call, -ENOMEM, "out of memory");
        r = need_pool(lv, call, &pool);
        if (r < 0)
                return r;
        (void)virStoragePoolRefresh(pool, 0);
        purge_pass(lv, pool, 1, p); /* instance volumes first: then bases are free unless a kept root disk uses them */
        purge_pass(lv, pool, 2, p);
        removed = p->failed == 0 && p->kept == 0 && purge_pool(lv, pool);
        log_info("purge of storage pool %s: %" PRIu64 " volumes deleted, %" PRIu64 " kept, %" PRIu64 " failed%s%s",
                 lv->pool_name, p->deleted, p->kept, p->failed, p->failed ? ": " : "", p->error);
        pw_u64(call->reply, "deleted", p->deleted);
        pw_u64(call->reply, "failed", p->failed);
        pw_u64(call->reply, "kept", p->kept);
        pw_list_begin(call->reply, "kept_images");
        for (size_t i = 0; i < p->n_kept_images; i++)
                pw_str(call->reply, NULL, p->kept_images[i]);
        pw_list_end(call->reply);
        pw_bool(call->reply, "kept_images_truncated", p->kept_images_truncated);
        pw_bool(call->reply, "pool_removed", removed);
        pw_str(call->reply, "error", p->error);
        return 0;
}

/* ---- config drive: the description comes as a descriptor (JSON, bounded), the ISO is
 * written by config-drive.c twice: once to learn its size, once into the volume's stream. ---- */

#define CONFIG_DRIVE_JSON_MAX (256u * 1024) /* user_data (64 KiB, base64) and keys fit with room */

static int count_sink(void *userdata, const void *buf, size_t len)
{
        (void)buf;
        *(uint64_t *)userdata += len;
        return 0;
}

struct stream_sink {
        virStreamPtr st;
        uint64_t sent, limit;
};

static int stream_sink(void *userdata, const void *buf, size_t len)
{
        struct stream_sink *s = userdata;

        if (s->sent + len > s->limit)
                return -EFBIG; /* the second build differs from the first: stop */
        if (stream_send_all(s->st, buf, len) < 0)
                return -EIO;
        s->sent += len;
        return 0;
}

/* Read the whole description (at most CONFIG_DRIVE_JSON_MAX bytes) and decode it strictly. */
static int read_drive_spec(int fd, struct config_drive_spec **ret, char *err, size_t errlen)
{
        _cleanup_free_ uint8_t *buf = malloc(CONFIG_DRIVE_JSON_MAX + 1);
        struct json_tokener *tok;
        struct json_object *o;
        ssize_t n;
        int r;

        if (!buf)
                return -ENOMEM;
        n = read_some(fd, buf, CONFIG_DRIVE_JSON_MAX + 1);
        if (n < 0) {
                proto_text_printf(err, errlen, "cannot read the description: %s", strerror((int)-n));
                return (int)n;
        }
        if ((size_t)n > CONFIG_DRIVE_JSON_MAX) {
                proto_text_printf(err, errlen, "the description is longer than %u bytes", CONFIG_DRIVE_JSON_MAX);
                return -EFBIG;
        }
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, (const char *)buf, (int)n);
        if (!o || json_tokener_get_parse_end(tok) != (size_t)n) {
                json_tokener_free(tok);
                json_object_put(o);
                proto_text_printf(err, errlen, "the description is not one JSON document");
                return -EINVAL;
        }
        json_tokener_free(tok);
        r = config_drive_spec_from_json(o, ret, err, errlen);
        json_object_put(o);
        return r;
}

/* Idempotent by replacement: our volume `name` (by name only) is deleted if it exists and
 * created anew, empty, with size bytes, into *ret_vol. */
static int config_drive_replace_volume(struct modrt_call *call, virStoragePoolPtr pool, const char *name,
                                       uint64_t size, virStorageVolPtr *ret_vol)
{
        _cleanup_vol_ virStorageVolPtr vol = NULL;
        struct lv_err e;
        char xml[512];
        int r;

        r = vol_lookup(pool, name, &vol, call->err, sizeof(call->err));
        if (r < 0 && r != -ENOENT)
                return r;
        if (r == 0) {
                if (virStorageVolDelete(vol, 0) < 0) {
                        capture_error(&e);
                        return fail(call, -EIO, "cannot replace volume %s: %s", name, e.msg);
                }
                (void)virStorageVolFree(vol);
                vol = NULL;
        }
        if (xsnprintf(xml, sizeof(xml),
                      "<volume><name>%s</name><capacity unit='bytes'>%" PRIu64 "</capacity>"
                      "<allocation unit='bytes'>0</allocation><target><format type='raw'/>"
                      "<permissions><mode>0600</mode></permissions></target></volume>",
                      name, size) < 0)
                return fail(call, -ENAMETOOLONG, "volume definition too long");
        vol = virStorageVolCreateXML(pool, xml, 0);
        if (!vol) {
                capture_error(&e);
                return fail(call, errno_from_libvirt(e.code, -EIO), "cannot create volume %s: %s", name, e.msg);
        }
        *ret_vol = TAKE_PTR(vol);
        return 0;
}

/* The drive built from spec, exactly size bytes, streamed into vol (named name). On failure
 * the stream is aborted and freed; the caller deletes the volume. */
static int config_drive_upload(struct lv *lv, struct modrt_call *call, const struct config_drive_spec *spec,
                               virStorageVolPtr vol, const char *name, uint64_t size)
{
        struct stream_sink sink = { 0 };
        uint64_t size2 = 0;
        struct lv_err e;
        int r;

        sink.st = virStreamNew(lv->conn, 0);
        sink.limit = size;
        if (!sink.st || virStorageVolUpload(vol, sink.st, 0, size, 0) < 0) {
                capture_error(&e);
                r = fail(call, -EIO, "cannot upload into %s: %s", name, e.msg);
                goto out;
        }
        r = config_drive_write(spec, stream_sink, &sink, &size2);
        if (r < 0 || sink.sent != size) {
                (void)virStreamAbort(sink.st);
                r = fail(call, r < 0 ? r : -EIO, "writing the config drive into %s failed", name);
                goto out;
        }
        if (virStreamFinish(sink.st) < 0) {
                capture_error(&e);
                r = fail(call, -EIO, "upload into %s failed: %s", name, e.msg);
                goto out;
        }
        r = 0;
out:
        if (sink.st)
                (void)virStreamFree(sink.st);
        return r;
}

static int handle_config_drive_create(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *instance_uuid = proto_get_str(call->req, "instance_uuid", "");
        _cleanup_(config_drive_spec_freep) struct config_drive_spec *spec = NULL;
        _cleanup_pool_ virStoragePoolPtr pool = NULL;
        _cleanup_vol_ virStorageVolPtr vol = NULL;
        char name[VOL_NAME_MAX], path[400];
        uint64_t size = 0;
        int r;

        config_vol_name(instance_uuid, name);
        (void)xsnprintf(call->audit, sizeof(call->audit), "volume=%s", name);
        r = read_drive_spec(call->fd, &spec, call->err, sizeof(call->err));
        if (r < 0)
                return r;
        if (!streq(spec->uuid, instance_uuid))
                return fail(call, -EINVAL, "the description's uuid %s is not the instance's %s", spec->uuid,
                            instance_uuid);
        r = config_drive_write(spec, count_sink, &size, NULL);
        if (r < 0)
                return fail(call, r, "cannot build the config drive: %s", strerror(-r));
        r = need_pool(lv, call, &pool);
        if (r < 0)
                return r;
        r = config_drive_replace_volume(call, pool, name, size, &vol);
        if (r < 0)
                return r;
        r = config_drive_upload(lv, call, spec, vol, name, size);
        if (r < 0) {
                if (virStorageVolDelete(vol, 0) < 0)
                        log_err("cannot delete the failed config drive %s", name);
                virResetLastError();
                return r;
        }
        (void)xsnprintf(path, sizeof(path), "%s/%s", lv->pool_path, name);
        pw_str(call->reply, "volume", name);
        pw_str(call->reply, "path", path);
        pw_u64(call->reply, "size", size);
        return 0;
}

/* ---- console: the serial log (a file in our pool, written by QEMU or virtlogd) read back
 * through the storage API, so no plug but libvirt is needed. ---- */

#define CONSOLE_CHUNK 4000 /* < PROTO_MAX_STR */
#define CONSOLE_MAX_LINES 1000 /* < PROTO_MAX_ITEMS, and the nodes of one reply */

struct console_buf {
        char *buf;
        size_t len, cap;
};

static int console_sink(virStreamPtr st, const char *data, size_t n, void *opaque)
{
        struct console_buf *b = opaque;

        (void)st;
        if (n > b->cap - b->len)
                n = b->cap - b->len; /* the log grew since we asked for its size: keep what fits */
        memcpy(b->buf + b->len, data, n);
        b->len += n;
        return (int)n;
}

/* b->cap bytes of vol (named name) from offset into b->buf (fewer if the log shrank). */
static int console_download(struct lv *lv, struct modrt_call *call, virStorageVolPtr vol, const char *name,
                            uint64_t offset, struct console_buf *b)
{
        virStreamPtr st = NULL;
        struct lv_err e;

        if (b->cap == 0)
                return 0;
        st = virStreamNew(lv->conn, 0);
        if (!st || virStorageVolDownload(vol, st, offset, b->cap, 0) < 0 ||
            virStreamRecvAll(st, console_sink, b) < 0 || virStreamFinish(st) < 0) {
                capture_error(&e);
                if (st) {
                        (void)virStreamAbort(st);
                        (void)virStreamFree(st);
                }
                return fail(call, -EIO, "cannot read %s: %s", name, e.msg);
        }
        (void)virStreamFree(st);
        return 0;
}

/* The guest writes what it likes: only clean text goes into the reply, one list item
 * per line (protocol strings hold no control character), the last lines when there
 * are more than a reply holds; a line longer than a string is cut into pieces.
 * text holds len bytes and room for one more; it is changed in place. */
static void console_reply_lines(struct modrt_call *call, char *text, size_t len)
{
        size_t n_lines = 0, skip, line = 0, start = 0;

        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)text[i];
                if (ch == '\n')
                        n_lines++;
                else if (ch < 0x20 || ch > 0x7e)
                        text[i] = ch == '\t' ? ' ' : ch == '\r' ? '\0' : '?';
        }
        n_lines++;
        skip = n_lines > CONSOLE_MAX_LINES ? n_lines - CONSOLE_MAX_LINES : 0;
        pw_list_begin(call->reply, "text");
        for (size_t i = 0; i <= len; i++) {
                if (i < len && text[i] != '\n')
                        continue;
                text[i] = '\0'; /* ends the line ('\r's inside end it early: a terminal's overwrite) */
                if (line++ >= skip) {
                        size_t llen = strlen(text + start);
                        for (size_t at = 0; at < llen || at == 0; at += CONSOLE_CHUNK) {
                                char saved = at + CONSOLE_CHUNK < llen ? text[start + at + CONSOLE_CHUNK] : '\0';
                                if (at + CONSOLE_CHUNK < llen)
                                        text[start + at + CONSOLE_CHUNK] = '\0';
                                pw_str(call->reply, NULL, text + start + at);
                                if (at + CONSOLE_CHUNK < llen)
                                        text[start + at + CONSOLE_CHUNK] = saved;
                                if (llen == 0)
                                        break;
                        }
                }
                start = i + 1;
        }
        pw_list_end(call->reply);
}

static int handle_console_read(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *instance_uuid = proto_get_str(call->req, "instance_uuid", "");
        uint64_t tail = proto_get_u64(call->req, "tail_bytes", 0), offset;
        _cleanup_pool_ virStoragePoolPtr pool = NULL;
        _cleanup_vol_ virStorageVolPtr vol = NULL;
        _cleanup_free_ char *text = NULL;
        struct console_buf b = { 0 };
        virStorageVolInfo vi;
        char name[VOL_NAME_MAX];
        struct lv_err e;
        int r;

        console_vol_name(instance_uuid, name);
        r = need_pool(lv, call, &pool);
        if (r < 0)
                return r;
        (void)virStoragePoolRefresh(pool, 0);
        r = vol_lookup(pool, name, &vol, call->err, sizeof(call->err));
        if (r == -ENOENT)
                return fail(call, -ENOENT, "no console log for instance %s (yet)", instance_uuid);
        if (r < 0)
                return r;
        if (virStorageVolGetInfo(vol, &vi) < 0) {
                capture_error(&e);
                return fail(call, -EIO, "volume %s: %s", name, e.msg);
        }
        if (tail > LIBVIRT_CONSOLE_MAX_BYTES)
                tail = LIBVIRT_CONSOLE_MAX_BYTES;
        offset = vi.capacity > tail ? vi.capacity - tail : 0;
        b.cap = (size_t)(vi.capacity - offset);
        text = b.buf = malloc(b.cap + 1);
        if (!text)
                return fail(call, -ENOMEM, "out of memory");
        r = console_download(lv, call, vol, name, offset, &b);
        if (r < 0)
                return r;
        virResetLastError();
        console_reply_lines(call, text, b.len);
        pw_u64(call->reply, "size", vi.capacity);
        pw_u64(call->reply, "offset", offset);
        return 0;
}

/* ---- live migration (the job itself is in migrate.c) ---- */

#define MIGRATIONS_KEPT 16 /* ended migrations kept for migrate_job, at most */

/* A migration started by this process: running (deferred set) or ended (kept for migrate_job). */
struct lv_migration {
        struct lv *lv;
        struct migration *m;
        struct modrt_deferred *deferred;          /* the domain_migrate call, NULL once answered */
        struct lv_migration *next;
};

static struct lv_migration *migration_find(struct lv *lv, const char *instance_uuid)
{
        for (struct lv_migration *x = lv->migrations; x; x = x->next)
                if (streq(migration_instance(x->m), instance_uuid))
                        return x;
        return NULL;
}

static void migration_unlink(struct lv *lv, struct lv_migration *x)
{
        for (struct lv_migration **p = &lv->migrations; *p; p = &(*p)->next)
                if (*p == x) {
                        *p = x->next;
                        break;
                }
        migration_free(x->m);
        free(x);
}

static void reply_progress(struct proto_writer *w, const struct migration *m)
{
        const struct migrate_progress *p = migration_progress(m);

        pw_u64(w, "elapsed_ms", migration_elapsed_ms(m));
        pw_u64(w, "data_total", p->data_total);
        pw_u64(w, "data_processed", p->data_processed);
        pw_u64(w, "data_remaining", p->data_remaining);
        pw_u64(w, "memory_dirty_rate", p->memory_dirty_rate);
        pw_u64(w, "memory_iteration", p->memory_iteration);
        pw_u64(w, "disk_total", p->disk_total);
        pw_u64(w, "disk_processed", p->disk_processed);
        pw_u64(w, "samples", p->samples);
        if (p->downtime_known)
                pw_u64(w, "downtime_ms", p->downtime_ms);
}

static void migrate_fill(struct proto_writer *w, void *userdata)
{
        const struct migration *m = userdata;

        reply_progress(w, m);
        pw_u64(w, "paths_moved", migration_paths_moved(m));
}

static void on_migration_done(struct migration *m, void *opaque)
{
        struct lv_migration *x = opaque;
        const char *err;
        int status = migration_status(m, &err);

        if (status == 0)
                log_info("migration of %s done in %llu ms: the domain runs on the destination", migration_instance(m),
                         (unsigned long long)migration_elapsed_ms(m));
        else
                log_warn("migration of %s failed after %llu ms: %s", migration_instance(m),
                         (unsigned long long)migration_elapsed_ms(m), err);
        if (x->deferred)
                (void)modrt_complete(x->lv->rt, x->deferred, status, err, status == 0 ? migrate_fill : NULL, m);
        x->deferred = NULL;
}

static int handle_migrate(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *uuid = proto_get_str(call->req, "instance_uuid", "");
        _cleanup_domain_ virDomainPtr dom = NULL;
        struct migrate_request req = { 0 };
        struct lv_migration *x, *old;
        size_t kept = 0;
        int r;

        set_audit(call, uuid);
        old = migration_find(lv, uuid);
        if (old && migration_active(old->m))
                return fail(call, -EBUSY, "a migration of instance %s is running", uuid);
        r = lookup_ours(lv, call, uuid, &dom, NULL);
        if (r < 0)
                return r;
        if (old)
                migration_unlink(lv, old);
        for (struct lv_migration *o = lv->migrations; o; o = o->next)
                kept++;
        if (kept >= MIGRATIONS_KEPT) {
                struct lv_migration *oldest = NULL;
                for (struct lv_migration *o = lv->migrations; o; o = o->next)
                        if (!migration_active(o->m))
                                oldest = o;
                if (!oldest)
                        return fail(call, -EBUSY, "%d migrations are running; try again when one ends", MIGRATIONS_KEPT);
                migration_unlink(lv, oldest);
        }
        (void)strscpy(req.instance_uuid, uuid, sizeof(req.instance_uuid));
        (void)domain_name_from_instance(uuid, req.domain_name);
        (void)strscpy(req.src_uri, lv->uri, sizeof(req.src_uri));
        (void)strscpy(req.src_pool_dir, lv->pool_path, sizeof(req.src_pool_dir));
        (void)strscpy(req.src_pool, lv->pool_name, sizeof(req.src_pool));
        root_vol_name(uuid, req.root_vol);
        (void)strscpy(req.dest_uri, proto_get_str(call->req, "dest_uri", ""), sizeof(req.dest_uri));
        (void)strscpy(req.migrate_host, proto_get_str(call->req, "migrate_host", ""), sizeof(req.migrate_host));
        (void)strscpy(req.dest_pool, proto_get_str(call->req, "dest_pool", ""), sizeof(req.dest_pool));
        req.timeout_s = proto_get_u64(call->req, "timeout_s", 0);
        req.bandwidth_mib = proto_get_u64(call->req, "bandwidth_mib", 0);
        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->lv = lv;
        x->deferred = modrt_defer(lv->rt, call);
        if (!x->deferred) {
                free(x);
                return -ENOMEM;
        }
        r = migration_start(&req, &lv->conn, on_migration_done, x, &x->m);
        if (r < 0) {
                (void)modrt_complete(lv->rt, x->deferred, r, "cannot start the migration", NULL, NULL);
                free(x);
                return MODRT_DEFERRED;
        }
        x->next = lv->migrations;
        lv->migrations = x;
        log_info("migration of %s to %s (data to %s, pool %s) started, timeout %llu s", uuid, req.dest_uri,
                 req.migrate_host, req.dest_pool, (unsigned long long)req.timeout_s);
        return MODRT_DEFERRED;
}

static int handle_migrate_job(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *uuid = proto_get_str(call->req, "instance_uuid", "");
        struct lv_migration *x = migration_find(lv, uuid);
        const char *err;
        int status;

        if (!x)
                return fail(call, -ENOENT, "no migration of instance %s was started here", uuid);
        status = migration_status(x->m, &err);
        pw_bool(call->reply, "active", migration_active(x->m));
        if (!migration_active(x->m)) {
                pw_i64(call->reply, "status", status);
                pw_str(call->reply, "error", status ? err : "");
        }
        reply_progress(call->reply, x->m);
        return 0;
}

static int handle_migrate_abort(void *state, struct modrt_call *call)
{
        struct lv *lv = state;
        const char *uuid = proto_get_str(call->req, "instance_uuid", "");
        struct lv_migration *x = migration_find(lv, uuid);
        int r;

        set_audit(call, uuid);
        if (!x || !migration_active(x->m))
                return fail(call, -ENOENT, "no migration of instance %s is running here", uuid);
        r = migration_abort(x->m, call->err, sizeof(call->err));
        if (r < 0)
                return r;
        pw_bool(call->reply, "aborted", true);
        return 0;
}

/* ---- Domain calls on workers ----
 *
 * The calls on one domain (define, start, shutdown, reboot, destroy, undefine, state), the
 * lifecycle events and the shutdown deadlines are served by DOMAIN_WORKERS threads (src/lib/lanes.h),
 * so that the calls of different instances wait for libvirtd together instead of each behind
 * the ones before it (a delete makes about ten round trips; with 16 deletes in flight each used to
 * wait for all of them). Jobs of one instance run one at a time, in the order they came, and
 * come back in that order: a call's answer always precedes the event it caused, as when one
 * thread did everything. Each job holds its own reference of the connection taken when it
 * starts (libvirt's connections are thread-safe; the main thread may drop and reopen its own
 * meanwhile); a job that finds it dead tells the main thread, which reports the loss and
 * reconnects as before. Answers, events and the core's socket stay on the main thread.
 * Every other request (listings, storage, console, migrations) runs on the main thread as
 * before, after the jobs that came before it have finished and been answered, so requests keep
 * the order they had with one thread. */

/* Writers of finished jobs, kept for the next ones (main thread only: jobs are made and freed
 * there): a frame buffer is 64 KiB, and allocating one per call made the heap grow and shrink. */
#define WRITERS_KEPT 32
static struct proto_writer *writers_kept[WRITERS_KEPT];
static size_t n_writers_kept;

static void job_free(struct lv_job *j)
{
        if (!j)
                return;
        if (j->dom)
                (void)virDomainFree(j->dom);
        free(j->req);
        if (j->w && n_writers_kept < WRITERS_KEPT)
                writers_kept[n_writers_kept++] = j->w;
        else
                free(j->w);
        free(j);
}

static void writers_kept_free(void)
{
        while (n_writers_kept > 0)
                free(writers_kept[--n_writers_kept]);
}

static struct lv_job *job_new(struct lv *lv, enum lv_job_kind kind, const char *instance_uuid, bool writer)
{
        struct lv_job *j = calloc(1, sizeof(*j));

        if (!j)
                return NULL;
        if (writer)
                j->w = n_writers_kept > 0 ? writers_kept[--n_writers_kept] : malloc(sizeof(*j->w));
        if (strscpy(j->lane.key, instance_uuid, sizeof(j->lane.key)) < 0 || (writer && !j->w)) {
                job_free(j);
                return NULL;
        }
        j->lv = lv;
        j->kind = kind;
        return j;
}

/* On a worker. */
static void job_run(struct lane_job *lane)
{
        struct lv_job *j = (struct lv_job *)lane;
        struct lv *lv = j->lv;

        pthread_mutex_lock(&lv->lock);
        if (lv->conn && !lv->lost && virConnectRef(lv->conn) == 0)
                j->conn = lv->conn;
        j->conn_gen = lv->conn_gen;
        memcpy(j->last_error, lv->last_error, sizeof(j->last_error));
        pthread_mutex_unlock(&lv->lock);
        worker_job = j;
        switch (j->kind) {
        case JOB_CALL:
                j->status = j->handler(lv, &j->call);
                if (j->status == MODRT_DEFERRED) /* not one of the handlers served here */
                        j->status = fail(&j->call, -EIO, "internal error: a deferred handler on a worker");
                break;
        case JOB_EVENT:
                j->have_event = lifecycle_event_build(lv, j->dom, j->lane.key, j->event, j->detail, j->w);
                break;
        case JOB_DEADLINE:
                shutdown_deadline(lv, j->lane.key, j->timer_id, j->timeout_s);
                break;
        }
        worker_job = NULL;
        if (j->conn)
                (void)virConnectClose(j->conn);
        j->conn = NULL;
        virResetLastError();
}

static int job_submit(struct lv *lv, struct lv_job *j)
{
        if (!lv->lanes)
                return -ENOTCONN;
        j->lane.run = job_run;
        return lanes_submit(lv->lanes, &j->lane);
}

/* Main thread: answer what the workers finished, in the order they finished. */
static void jobs_done(struct lv *lv)
{
        struct lane_job *lane;

        while (lv->lanes && (lane = lanes_take_done(lv->lanes))) {
                struct lv_job *j = (struct lv_job *)lane;

                if (j->conn_dead && j->conn_gen == lv->conn_gen && lv->conn)
                        connection_lost(lv, "the libvirt connection is no longer alive");
                if (j->kind == JOB_CALL)
                        (void)modrt_complete_call(lv->rt, j->deferred, j->status, &j->call);
                else if (j->kind == JOB_EVENT && j->have_event) {
                        int r = modrt_send_event(lv->rt, j->w);
                        if (r < 0)
                                log_debug("event not sent: %s", strerror(-r));
                }
                job_free(j);
        }
}

static void on_jobs_done(int watch, int fd, int events, void *opaque)
{
        (void)watch;
        (void)fd;
        (void)events;
        jobs_done(opaque);
}

/* Main thread, before a request it serves itself: let the jobs that came before it finish and
 * answer them first. Blocks the loop meanwhile (the workers need nothing from it). */
static void jobs_quiesce(struct lv *lv)
{
        if (!lv->lanes)
                return;
        lanes_wait_idle(lv->lanes);
        jobs_done(lv);
}

/* A domain call: into its instance's lane, answered when done. When no job can be made the
 * call is served here, after the jobs before it, as before there were workers. */
static int queue_call(struct lv *lv, struct modrt_call *call, modrt_handler_t handler)
{
        struct lv_job *j = lv->lanes ? job_new(lv, JOB_CALL, proto_get_str(call->req, "instance_uuid", ""), true) : NULL;

        if (j && (j->req = proto_value_dup(call->req)) && (j->deferred = modrt_defer(lv->rt, call))) {
                modrt_deferred_reply_begin(j->deferred, j->w);
                j->call = (struct modrt_call){ .req = j->req, .reply = j->w, .fd = -1 };
                j->handler = handler;
                if (job_submit(lv, j) == 0)
                        return MODRT_DEFERRED;
                /* no worker can run: here, answered through the same path */
                jobs_quiesce(lv);
                j->status = handler(lv, &j->call);
                (void)modrt_complete_call(lv->rt, j->deferred, j->status, &j->call);
                job_free(j);
                return MODRT_DEFERRED;
        }
        job_free(j);
        jobs_quiesce(lv);
        return handler(lv, call);
}

/* The entry table's handlers: X_on_worker queues X; X_in_order runs X here after the jobs. */
#define ON_WORKER(fn)                                                                 \
        static int fn##_on_worker(void *state, struct modrt_call *call)               \
        {                                                                             \
                return queue_call(state, call, fn);                                   \
        }
#define IN_ORDER(fn)                                                                  \
        static int fn##_in_order(void *state, struct modrt_call *call)                \
        {                                                                             \
                jobs_quiesce(state);                                                  \
                return fn(state, call);                                               \
        }
ON_WORKER(handle_define)
ON_WORKER(handle_start)
ON_WORKER(handle_shutdown)
ON_WORKER(handle_reboot)
ON_WORKER(handle_destroy)
ON_WORKER(handle_undefine)
ON_WORKER(handle_state)
IN_ORDER(handle_list)
IN_ORDER(handle_pool_info)
IN_ORDER(handle_image_upload)
IN_ORDER(handle_image_delete)
IN_ORDER(handle_image_list)
IN_ORDER(handle_root_disk_create)
IN_ORDER(handle_config_drive_create)
IN_ORDER(handle_volumes_delete)
IN_ORDER(handle_volume_list)
IN_ORDER(handle_console_read)
IN_ORDER(handle_migrate)
IN_ORDER(handle_migrate_job)
IN_ORDER(handle_migrate_abort)
IN_ORDER(handle_volumes_purge)

static const struct modrt_entry entries[_LIBVIRT_MAX] = {
        [LIBVIRT_DOMAIN_DEFINE] = { &libvirt_entrypoints[LIBVIRT_DOMAIN_DEFINE], handle_define_on_worker },
        [LIBVIRT_DOMAIN_START] = { &libvirt_entrypoints[LIBVIRT_DOMAIN_START], handle_start_on_worker },
        [LIBVIRT_DOMAIN_SHUTDOWN] = { &libvirt_entrypoints[LIBVIRT_DOMAIN_SHUTDOWN], handle_shutdown_on_worker },
        [LIBVIRT_DOMAIN_REBOOT] = { &libvirt_entrypoints[LIBVIRT_DOMAIN_REBOOT], handle_reboot_on_worker },
        [LIBVIRT_DOMAIN_DESTROY] = { &libvirt_entrypoints[LIBVIRT_DOMAIN_DESTROY], handle_destroy_on_worker },
        [LIBVIRT_DOMAIN_UNDEFINE] = { &libvirt_entrypoints[LIBVIRT_DOMAIN_UNDEFINE], handle_undefine_on_worker },
        [LIBVIRT_DOMAIN_STATE] = { &libvirt_entrypoints[LIBVIRT_DOMAIN_STATE], handle_state_on_worker },
        [LIBVIRT_DOMAIN_LIST] = { &libvirt_entrypoints[LIBVIRT_DOMAIN_LIST], handle_list_in_order },
        [LIBVIRT_POOL_INFO] = { &libvirt_entrypoints[LIBVIRT_POOL_INFO], handle_pool_info_in_order },
        [LIBVIRT_IMAGE_UPLOAD] = { &libvirt_entrypoints[LIBVIRT_IMAGE_UPLOAD], handle_image_upload_in_order },
        [LIBVIRT_IMAGE_DELETE] = { &libvirt_entrypoints[LIBVIRT_IMAGE_DELETE], handle_image_delete_in_order },
        [LIBVIRT_IMAGE_LIST] = { &libvirt_entrypoints[LIBVIRT_IMAGE_LIST], handle_image_list_in_order },
        [LIBVIRT_ROOT_DISK_CREATE] = { &libvirt_entrypoints[LIBVIRT_ROOT_DISK_CREATE], handle_root_disk_create_in_order },
        [LIBVIRT_CONFIG_DRIVE_CREATE] = { &libvirt_entrypoints[LIBVIRT_CONFIG_DRIVE_CREATE],
                                          handle_config_drive_create_in_order },
        [LIBVIRT_VOLUMES_DELETE] = { &libvirt_entrypoints[LIBVIRT_VOLUMES_DELETE], handle_volumes_delete_in_order },
        [LIBVIRT_VOLUME_LIST] = { &libvirt_entrypoints[LIBVIRT_VOLUME_LIST], handle_volume_list_in_order },
        [LIBVIRT_CONSOLE_READ] = { &libvirt_entrypoints[LIBVIRT_CONSOLE_READ], handle_console_read_in_order },
        [LIBVIRT_DOMAIN_MIGRATE] = { &libvirt_entrypoints[LIBVIRT_DOMAIN_MIGRATE], handle_migrate_in_order },
        [LIBVIRT_MIGRATE_JOB] = { &libvirt_entrypoints[LIBVIRT_MIGRATE_JOB], handle_migrate_job_in_order },
        [LIBVIRT_MIGRATE_ABORT] = { &libvirt_entrypoints[LIBVIRT_MIGRATE_ABORT], handle_migrate_abort_in_order },

        [LIBVIRT_VOLUMES_PURGE] = { &libvirt_entrypoints[LIBVIRT_VOLUMES_PURGE], handle_volumes_purge_in_order },
};

/* ---- module life ---- */

/* We report libvirt's errors ourselves, once, with context. */
static void silent_error(void *data, virErrorPtr error)
{
        (void)data;
        (void)error;
}

static void on_core_readable(int watch, int fd, int events, void *opaque)
{
        struct lv *lv = opaque;
        int r;

        (void)fd;
        (void)events;
        r = modrt_dispatch(lv->rt);
        if (r < 0) {
                /* The runtime closed the socket: stop watching it before poll sees a stale fd. */
                (void)virEventRemoveHandle(watch);
                lv->watch = -1;
                lv->result = r;
                lv->stop = true;
        }
}

/* libvirt (and libisofs, libcrypto) are linked lazily (src/lib/lazylib.h): loaded here, after
 * the hello, once. Nothing calls them before: lv_init and the runtime do not, and requests
 * are read only from the loop below. 0 or -EIO after logging why. */
static int lv_load_libvirt(void)
{
        char err[256];

        if (lazylib_loaded(lazylib_program_table, lazylib_program_table_n))
                return 0;
        if (lazylib_load_all(lazylib_program_table, lazylib_program_table_n, err, sizeof(err)) < 0) {
                log_err("%s", err);
                return -EIO;
        }
        if (virInitialize() < 0) {
                log_err("cannot initialise libvirt");
                return -EIO;
        }
        virSetErrorFunc(NULL, silent_error);
        if (virEventRegisterDefaultImpl() < 0) {
                log_err("cannot set up libvirt's event loop");
                return -EIO;
        }
        return 0;
}

static int lv_init(struct modrt *rt, void **ret_state)
{
        const struct nova_config *cfg = modrt_config(rt);
        struct lv *lv;

        lv = calloc(1, sizeof(*lv));
        if (!lv)
                return -ENOMEM;
        lv->ev = malloc(sizeof(*lv->ev));
        if (!lv->ev) {
                free(lv);
                return -ENOMEM;
        }
        lv->rt = rt;
        pthread_mutex_init(&lv->lock, NULL);
        lv->lanes_watch = -1;
        lv->uri = cfg->libvirt_uri;
        lv->pool_name = cfg->storage_pool;
        lv->pool_path = cfg->storage_pool_path;
        lv->shutdown_timeout_s = cfg->shutdown_timeout_s;
        lv->lifecycle_cb = -1;
        lv->retry_timer = -1;
        lv->watch = -1;
        lv->backoff_ms = BACKOFF_MIN_MS;
        if (domain_type_from_uri(lv->uri, &lv->domain_type) < 0) {
                lv->domain_type = NULL;
                log_warn("libvirt_uri %s: domains are only generated for the qemu:// and test:// drivers", lv->uri);
        }
        /* Neither loaded nor connected yet: the module says hello first (lv_run loads libvirt,
         * then connects), so the core sees it running without waiting for libvirt's libraries
         * (~40 ms of CPU) or for libvirtd, which may take a second or more to answer its first
         * client (a fresh daemon probes QEMU first). Requests that arrive meanwhile wait in the
         * socket until the attempt is over, then are served or get -ENOTCONN. */
        *ret_state = lv;
        return 0;
}

static int lv_run(struct modrt *rt, void *state)
{
        struct lv *lv = state;

        lv->stop = false;
        lv->result = 0;
        lv->main_thread = pthread_self();
        if (lv_load_libvirt() < 0)
                return -EIO;
        /* The workers, once (they outlive a lost core: answers for it are dropped). Without them
         * (and with the in-process test driver, which has nothing to wait for) every call is
         * served here, as before. */
        if (!lv->lanes && !libvirt_uri_is_in_process_test(lv->uri)) {
                int r = lanes_new(DOMAIN_WORKERS, DOMAIN_WORKER_STACK, &lv->lanes);
                if (r == 0) {
                        lv->lanes_watch = virEventAddHandle(lanes_done_fd(lv->lanes), VIR_EVENT_HANDLE_READABLE,
                                                            on_jobs_done, lv, NULL);
                        if (lv->lanes_watch < 0) {
                                lanes_free(lv->lanes, NULL);
                                lv->lanes = NULL;
                        }
                }
                if (!lv->lanes)
                        log_warn("cannot start the worker threads; serving every call on the main thread");
        }
        if (!lv->tried) {
                lv->tried = true;
                if (conn_open(lv) < 0) {
                        log_warn("libvirt at %s is unreachable (%s); retrying in the background", lv->uri,
                                 lv->last_error);
                        arm_retry(lv);
                } else {
                        log_info("connected to libvirt at %s", lv->uri);
                }
        }
        lv->watch = virEventAddHandle(modrt_fd(rt), VIR_EVENT_HANDLE_READABLE, on_core_readable, lv, NULL);
        if (lv->watch < 0) {
                log_err("cannot watch the core's socket in libvirt's event loop");
                return -EIO;
        }
        /* A (new) core learns at once that libvirt is out of reach. */
        if (!lv->conn || lv->lost)
                emit_connection(lv, false);
        while (!lv->stop && !modrt_should_exit(rt))
                if (virEventRunDefaultImpl() < 0) {
                        log_err("libvirt's event loop failed");
                        lv->result = -EIO;
                        break;
                }
        if (lv->watch >= 0) {
                (void)virEventRemoveHandle(lv->watch);
                lv->watch = -1;
        }
        return lv->result;
}

/* lanes_free()'s: a job finished while the module stops. */
static void job_release(struct lane_job *lane)
{
        struct lv_job *j = (struct lv_job *)lane;

        if (j->kind == JOB_CALL)
                (void)modrt_complete_call(j->lv->rt, j->deferred, j->status, &j->call);
        job_free(j);
}

static void lv_done(void *state)
{
        struct lv *lv = state;

        if (!lv)
                return;
        if (lv->lanes) {
                /* the watch first (lanes_free closes its descriptor); the queued jobs finish, their
                 * answers go nowhere (the core's connection is closed) */
                if (lv->lanes_watch >= 0)
                        (void)virEventRemoveHandle(lv->lanes_watch);
                lv->lanes_watch = -1;
                lanes_free(lv->lanes, job_release);
                lv->lanes = NULL;
        }
        while (lv->timers)
                shutdown_timer_cancel(lv, lv->timers->instance_uuid);
        while (lv->migrations)
                migration_unlink(lv, lv->migrations); /* joins a running job's thread */
        if (lv->retry_timer >= 0)
                (void)virEventRemoveTimeout(lv->retry_timer);
        conn_drop(lv);
        writers_kept_free();
        pthread_mutex_destroy(&lv->lock);
        free(lv->ev);
        free(lv);
}

static const struct modrt_module libvirt_module = {
        .protocol = &libvirt_protocol,
        .entries = entries,
        .n_entries = ARRAY_SIZE(entries),
        .init = lv_init,
        .done = lv_done,
        .run = lv_run,
};

int main(int argc, char **argv) { return modrt_main(&libvirt_module, argc, argv); }
