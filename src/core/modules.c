/* modules.c - see modules.h */
#include "modules.h"

#include <json-c/json.h>

#include "log.h"
#include "spawner.h"

#include <assert.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>

struct module;

struct module_call {
        struct module_call *next;       /* in the module's pending list */
        struct module *m;               /* owner */
        uint32_t id;                    /* request id on the wire */
        char entrypoint[PROTO_MAX_NAME + 1];
        sd_event_source *timer;         /* timeout */
        module_call_cb cb;
        void *userdata;
};

struct modules;

struct module {
        struct modules *reg;            /* the registry it belongs to */
        enum plug_id plug;
        bool connected;                 /* plug state */
        enum module_state state;
        pid_t pid;                      /* process, 0 when none */
        int fd;                         /* connection, -1 when none */
        sd_event_source *io;            /* reads fd */
        sd_event_source *timer;         /* hello timeout or restart backoff */
        uint64_t hello_usec;            /* when the hello was accepted */
        uint64_t first_spawned_usec;    /* start-up: when the spawner first reported it forked; 0: not yet */
        uint64_t first_hello_usec;      /* start-up: when its first hello was accepted; 0: not yet */
        uint64_t restart_at;            /* MOD_BACKOFF: monotonic usec of the next start */
        uint32_t backoff_ms;            /* last backoff used */
        unsigned restarts;              /* crash restarts since connect */
        uint64_t caps_effective;        /* kernel's view at hello time */
        bool no_new_privs;
        bool start_after_stop;          /* reconnected while stopping: start again on exit */
        char last_error[256];
        struct module_call *calls;      /* pending calls */
        uint32_t next_id;
        /* Ids of calls that timed out on this connection: a late reply to one is dropped
         * quietly; any other reply to a call that is not pending is unsolicited (a
         * protocol violation). When the ring is full the oldest goes and late_floor
         * remembers it: late replies up to that id are then dropped quietly too. */
        uint32_t timed_out[32];
        unsigned n_timed_out;
        uint32_t late_floor;            /* 0: none */
};

struct modules {
        sd_event *event;
        const struct nova_config *cfg;   /* the core's configuration (struct core owns it) */
        int spawner_fd;
        sd_event_source *spawner_io;
        char module_dir[PATH_MAX];
        struct module mods[_PLUG_MAX];
        struct proto_msg *rx;           /* decode arena shared by all connections (one loop) */
        struct proto_msg *check;        /* arena for validating outgoing requests */
        uint8_t *rxbuf;
        module_event_cb on_event;
        module_ready_cb on_ready;
        void *handlers_userdata;
        module_status_cb on_status;     /* any module's state or plug changed (health) */
        void *status_userdata;
        uint64_t started_usec;          /* monotonic, when the registry started its modules */
        uint64_t all_ready_usec;        /* monotonic, when every connected plug's module first ran; 0: not yet */
        uint64_t all_ready_realtime_usec; /* the same moment, wall clock (for a caller's own start time) */
        struct pending_conn *pending_conns; /* module apps connected, hello not yet judged */
        sd_event_source *listen_io;     /* inside a snap: accepts module apps */
        int listen_fd;
        sd_event_source *trim;          /* one-shot: the heap's free pages back to the kernel once no call is in flight */
};

void modules_set_status_handler(struct modules *reg, module_status_cb on_status, void *userdata)
{
        assert(reg);
        reg->on_status = on_status;
        reg->status_userdata = userdata;
}

void modules_startup_times(const struct modules *reg, uint64_t *ret_started_usec, struct module_startup ret[_PLUG_MAX])
{
        assert(reg && ret_started_usec && ret);
        *ret_started_usec = reg->started_usec;
        for (int i = 0; i < _PLUG_MAX; i++) {
                const struct module *m = &reg->mods[i];
                ret[i].spawned_usec = m->first_spawned_usec ? m->first_spawned_usec - reg->started_usec : 0;
                ret[i].hello_usec = m->first_hello_usec ? m->first_hello_usec - reg->started_usec : 0;
        }
}

void modules_startup_report(const struct modules *reg, uint64_t *ret_ready_ms, uint64_t *ret_ready_realtime_usec)
{
        assert(reg);
        *ret_ready_ms = reg->all_ready_usec ? (reg->all_ready_usec - reg->started_usec) / 1000 : 0;
        *ret_ready_realtime_usec = reg->all_ready_realtime_usec;
}

/* The first time every connected plug's module runs: note when (start-up time). */
static void note_all_ready(struct modules *reg)
{
        unsigned n = 0;
        struct timespec ts;

        if (reg->all_ready_usec)
                return;
        for (int i = 0; i < _PLUG_MAX; i++) {
                if (!reg->mods[i].connected)
                        continue;
                if (reg->mods[i].state != MOD_RUNNING)
                        return;
                n++;
        }
        if (n == 0)
                return;
        reg->all_ready_usec = now_usec();
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        reg->all_ready_realtime_usec = (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
        log_info("modules: all %u running, %.1f ms after the registry started", n,
                 (double)(reg->all_ready_usec - reg->started_usec) / 1000.0);
}

/* Every change of a module's state goes through here, so that the health
 * report follows events instead of polling. */
static void module_set_state(struct module *m, enum module_state state)
{
        bool changed = m->state != state;

        m->state = state;
        if (changed && m->reg->on_status)
                m->reg->on_status(m->reg->status_userdata);
}

void modules_set_handlers(struct modules *reg, module_event_cb on_event, module_ready_cb on_ready, void *userdata)
{
        assert(reg);
        reg->on_event = on_event;
        reg->on_ready = on_ready;
        reg->handlers_userdata = userdata;
}

bool modules_ready(const struct modules *reg, enum plug_id plug)
{
        assert(reg);
        return (unsigned)plug < _PLUG_MAX && reg->mods[plug].connected && reg->mods[plug].state == MOD_RUNNING &&
               reg->mods[plug].fd >= 0;
}

const char *module_state_name(enum module_state s)
{
        switch (s) {
        case MOD_OFF:
                return "stopped";
        case MOD_STARTING:
                return "starting";
        case MOD_RUNNING:
                return "running";
        case MOD_BACKOFF:
                return "restarting";
        case MOD_STOPPING:
                return "stopping";
        case MOD_UNAVAILABLE:
                return "unavailable";
        }
        return "?";
}

_printf_(2, 3) static void set_error(struct module *m, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(m->last_error, sizeof(m->last_error), fmt, ap);
        va_end(ap);
        if (m->reg->on_status) /* a starting module with an error counts as failed for the health */
                m->reg->on_status(m->reg->status_userdata);
}

static bool calls_in_flight(const struct modules *reg)
{
        for (int i = 0; i < _PLUG_MAX; i++)
                if (reg->mods[i].calls)
                        return true;
        return false;
}

/* A burst of operations (a thousand boots, a reconcile pass) leaves the heap
 * grown and holed: request frames, replies, operations freed between the
 * instances that stay. Once nothing is in flight, free pages go back to the
 * kernel (malloc_trim also releases whole free pages inside the heap), so the
 * core's RSS follows what it holds rather than its busiest moment. Deferred
 * to the next loop iteration, and skipped when calls started meanwhile. */
static int on_trim(sd_event_source *s, void *userdata)
{
        struct modules *reg = userdata;

        (void)s;
        if (!calls_in_flight(reg))
                (void)malloc_trim(0);
        return 0;
}

static void finish_call(struct module_call *call, int status, const char *error, const struct proto_value *body)
{
        struct module *m = call->m;
        struct module_result res = { .status = status, .error = error, .body = body };

        for (struct module_call **pp = &m->calls; *pp; pp = &(*pp)->next)
                if (*pp == call) {
                        *pp = call->next;
                        break;
                }
        sd_event_source_disable_unref(call->timer);
        if (call->cb)
                call->cb(&res, call->userdata);
        free(call);
        if (m->reg->trim && !calls_in_flight(m->reg))
                (void)sd_event_source_set_enabled(m->reg->trim, SD_EVENT_ONESHOT);
}

void module_call_cancel(struct module_call *call)
{
        if (call)
                call->cb = NULL; /* completes silently (reply, timeout or connection loss) */
}

static void fail_all_calls(struct module *m, int status, const char *why)
{
        while (m->calls) {
                char text[512];
                (void)snprintf(text, sizeof(text), "module %s %s while handling %s; the request was not completed",
                               plug_table[m->plug].program, why, m->calls->entrypoint);
                finish_call(m->calls, status, text, NULL);
        }
}

static void spawner_send(struct modules *reg, enum spawner_op op, enum plug_id plug)
{
        struct spawner_request req = { .op = op, .plug = plug };

        if (reg->spawner_fd < 0)
                return;
        if (send(reg->spawner_fd, &req, sizeof(req), MSG_NOSIGNAL) < 0)
                log_err("cannot reach the spawner: %s", strerror(errno));
}

/* Tell a module whether the core accepts it. A refused module exits cleanly
 * instead of reconnecting, unless restart is set: a running module that broke
 * the protocol exits 1 (a failure, not a clean stop; its supervisor starts a
 * fresh one). */
static void send_hello_reply(int fd, bool accepted, const char *reason, bool restart)
{
        _cleanup_free_ struct proto_writer *w = malloc(sizeof(*w));
        const uint8_t *buf;
        size_t len;

        if (!w)
                return;
        pw_init(w, PROTO_HELLO, 0, 0, "core");
        pw_bool(w, "accepted", accepted);
        if (reason)
                pw_str(w, "reason", reason);
        if (restart)
                pw_bool(w, "restart", true);
        if (pw_finish(w, &buf, &len) == 0)
                (void)send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Close m's connection; its pending calls fail with status (-ECONNRESET: the
 * module went; -ESHUTDOWN: the core is shutting down, nothing went wrong). */
static void close_connection_status(struct module *m, const char *why, int status)
{
        struct modules *reg = m->reg;
        if (m->fd < 0)
                return;
        m->io = sd_event_source_disable_unref(m->io);
        m->fd = safe_close(m->fd);
        fail_all_calls(m, status, why);
        m->n_timed_out = 0;
        m->late_floor = 0;
        if (reg->spawner_fd < 0) {
                /* Inside a snap there is no exit report: the connection is the process. */
                m->pid = 0;
                m->hello_usec = 0;
                if (m->connected) {
                        module_set_state(m, MOD_STARTING);
                        if (m->last_error[0] == '\0')
                                set_error(m, "module connection lost (%s); systemd restarts nova-hypervisor.%s",
                                          why, plug_table[m->plug].name);
                } else
                        module_set_state(m, MOD_OFF);
        }
}

static void close_connection(struct module *m, const char *why) { close_connection_status(m, why, -ECONNRESET); }

static void stop_timer(struct module *m) { m->timer = sd_event_source_disable_unref(m->timer); }

static int start_module(struct module *m);

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct module *m = userdata;
        struct modules *reg = m->reg;

        (void)s;
        (void)usec;
        stop_timer(m);
        if (m->state == MOD_BACKOFF && m->connected)
                (void)start_module(m);
        else if (m->state == MOD_STARTING) {
                set_error(m, "no hello from the module within %u ms", reg->cfg->module_timeout_ms);
                log_err("%s: %s; stopping it", plug_table[m->plug].name, m->last_error);
                close_connection(m, "did not start in time");
                spawner_send(m->reg, SPAWNER_STOP, m->plug);
        }
        return 0;
}

static void arm_timer(struct module *m, uint64_t delay_usec)
{
        struct modules *reg = m->reg;
        stop_timer(m);
        if (sd_event_add_time_relative(reg->event, &m->timer, CLOCK_MONOTONIC, delay_usec, 1000, on_timer, m) < 0)
                log_err("%s: cannot arm a timer", plug_table[m->plug].name);
}

static bool program_available(const struct module *m, char *path, size_t size)
{
        struct modules *reg = m->reg;
        if (xsnprintf(path, size, "%s/%s", reg->module_dir, plug_table[m->plug].program) < 0)
                return false;
        return module_protocols[m->plug] && access(path, X_OK) == 0;
}

static int start_module(struct module *m)
{
        struct modules *reg = m->reg;
        char path[PATH_MAX];

        if (reg->spawner_fd < 0) {
                /* Inside a snap systemd starts the module app; we wait for it. */
                module_set_state(m, MOD_STARTING);
                return 0;
        }
        if (!program_available(m, path, sizeof(path))) {
                module_set_state(m, MOD_UNAVAILABLE);
                if (module_protocols[m->plug])
                        set_error(m, "module program %s is not installed or not executable", path);
                else
                        set_error(m, "this build of nova-hypervisor has no %s module yet", plug_table[m->plug].name);
                log_warn("%s: %s", plug_table[m->plug].name, m->last_error);
                return -ENOENT;
        }
        module_set_state(m, MOD_STARTING);
        spawner_send(m->reg, SPAWNER_START, m->plug);
        arm_timer(m, (uint64_t)reg->cfg->module_timeout_ms * 1000);
        return 0;
}

static void schedule_restart(struct module *m)
{
        struct modules *reg = m->reg;
        uint64_t now = now_usec();
        bool was_stable = m->hello_usec && now - m->hello_usec >= (uint64_t)reg->cfg->stable_after_ms * 1000;

        if (was_stable || m->backoff_ms == 0)
                m->backoff_ms = reg->cfg->restart_min_ms;
        else
                m->backoff_ms = m->backoff_ms * 2 > reg->cfg->restart_max_ms ? reg->cfg->restart_max_ms
                                                                           : m->backoff_ms * 2;
        m->restarts++;
        m->hello_usec = 0;
        module_set_state(m, MOD_BACKOFF);
        m->restart_at = now + (uint64_t)m->backoff_ms * 1000;
        arm_timer(m, (uint64_t)m->backoff_ms * 1000);
        log_warn("%s: %s; restarting in %u ms (restart %u)", plug_table[m->plug].name, m->last_error,
                 m->backoff_ms, m->restarts);
}

static void on_module_exit(struct module *m, pid_t pid, int status)
{
        if (pid != m->pid)
                return;
        m->pid = 0;
        close_connection(m, "exited");
        stop_timer(m);
        if (m->connected && m->start_after_stop) {
                m->start_after_stop = false;
                module_set_state(m, MOD_OFF);
                (void)start_module(m);
                return;
        }
        if (!m->connected) {
                module_set_state(m, MOD_OFF);
                m->hello_usec = 0;
                log_info("%s: module stopped", plug_table[m->plug].name);
                return;
        }
        if (m->state != MOD_STOPPING || m->last_error[0] == '\0') {
                if (WIFSIGNALED(status))
                        set_error(m, "module killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
                else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                        set_error(m, "module program could not be executed");
                else if (WIFEXITED(status))
                        set_error(m, "module exited with status %d", WEXITSTATUS(status));
        }
        schedule_restart(m);
}

_printf_(2, 3) static void protocol_violation(struct module *m, const char *fmt, ...)
{
        char why[256];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        set_error(m, "protocol violation: %s", why);
        log_err("%s: %s; closing the connection", plug_table[m->plug].name, m->last_error);
        if (m->fd >= 0)
                send_hello_reply(m->fd, false, m->last_error, m->state == MOD_RUNNING);
        close_connection(m, "broke the protocol");
        module_set_state(m, MOD_STOPPING);
        spawner_send(m->reg, SPAWNER_STOP, m->plug);
}

static void handle_hello(struct module *m, const struct proto_msg *msg)
{
        struct modules *reg = m->reg;
        const struct module_protocol *mp = module_protocols[m->plug];
        const struct proto_value *eps = proto_get(msg->body, "entrypoints");
        struct proc_security sec;
        char have[256], want[256];
        size_t n = 0;

        if (m->state != MOD_STARTING)
                return protocol_violation(m, "second hello");
        if (!streq(msg->name, plug_table[m->plug].name))
                return protocol_violation(m, "hello from plug '%s' on the %s channel", msg->name,
                                          plug_table[m->plug].name);
        if (proto_get_u64(msg->body, "version", 0) != PROTO_VERSION)
                return protocol_violation(m, "unsupported protocol version");
        if (!eps || eps->type != PV_LIST)
                return protocol_violation(m, "hello without an entrypoint list");
        /* Exactly the protocol's list, in its order (both sides are built from the same table):
         * a changed list is a different or tampered module, refused, not served in part. */
        for (const struct proto_value *e = eps->child; e; e = e->next, n++) {
                if (e->type != PV_STR || !module_protocol_find(mp, e->v.s))
                        return protocol_violation(m, "module announces an entrypoint this core does not know");
                if (n >= mp->n_entrypoints || !streq(e->v.s, mp->entrypoints[n].name))
                        return protocol_violation(m, "entrypoint list changed: entry %zu is %s, expected %s", n,
                                                  e->v.s, n < mp->n_entrypoints ? mp->entrypoints[n].name : "none");
        }
        if (n != mp->n_entrypoints)
                return protocol_violation(m, "module announces %zu entrypoints, expected %zu", n, mp->n_entrypoints);
        if (proto_get_u64(msg->body, "pid", 0) != (uint64_t)m->pid)
                return protocol_violation(m, "hello names another pid");
        /* Do not take the module's word for its privileges: ask the kernel. */
        if (proc_security_read(m->pid, &sec) < 0)
                return protocol_violation(m, "cannot read the module's capabilities");
        if (sec.cap_eff != plug_table[m->plug].caps || sec.cap_prm != plug_table[m->plug].caps ||
            !sec.no_new_privs) {
                (void)caps_mask_format(sec.cap_eff, have, sizeof(have));
                (void)caps_mask_format(plug_table[m->plug].caps, want, sizeof(want));
                return protocol_violation(m, "module holds capabilities [%s] (no_new_privs %d), expected exactly [%s]",
                                          have, sec.no_new_privs, want);
        }
        stop_timer(m);
        send_hello_reply(m->fd, true, NULL, false);
        m->caps_effective = sec.cap_eff;
        m->no_new_privs = sec.no_new_privs;
        module_set_state(m, MOD_RUNNING);
        m->hello_usec = now_usec();
        if (!m->first_hello_usec)
                m->first_hello_usec = m->hello_usec;
        m->last_error[0] = '\0';
        (void)caps_mask_format(sec.cap_eff, have, sizeof(have));
        log_info("%s: module running (pid %ld, capabilities [%s])", plug_table[m->plug].name, (long)m->pid,
                 have[0] ? have : "none");
        note_all_ready(reg);
        if (reg->on_ready)
                reg->on_ready(m->plug, reg->handlers_userdata);
}

/* Remember that the call with id timed out: its reply may still come. */
static void note_timed_out(struct module *m, uint32_t id)
{
        if (m->n_timed_out == ARRAY_SIZE(m->timed_out)) {
                m->late_floor = m->timed_out[0];
                memmove(m->timed_out, m->timed_out + 1, (m->n_timed_out - 1) * sizeof(m->timed_out[0]));
                m->n_timed_out--;
        }
        m->timed_out[m->n_timed_out++] = id;
}

/* A reply to id, which is not pending: true (and forgotten) when it is a
 * late answer to a call that timed out; false when it is unsolicited. */
static bool late_reply(struct module *m, uint32_t id)
{
        for (unsigned i = 0; i < m->n_timed_out; i++)
                if (m->timed_out[i] == id) {
                        memmove(m->timed_out + i, m->timed_out + i + 1,
                                (m->n_timed_out - i - 1) * sizeof(m->timed_out[0]));
                        m->n_timed_out--;
                        return true;
                }
        /* serial-number order, as the ids are issued (the counter may wrap) */
        return id != 0 && m->late_floor != 0 && (int32_t)(m->late_floor - id) >= 0;
}

static void handle_reply(struct module *m, const struct proto_msg *msg)
{
        struct module_call *call;

        for (call = m->calls; call; call = call->next)
                if (call->id == msg->id)
                        break;
        if (!call) {
                if (!late_reply(m, msg->id))
                        /* never asked, or answered already: the module is confused or lying */
                        return protocol_violation(m, "unsolicited reply %u (%s): no such request is pending",
                                                  msg->id, msg->name);
                log_debug("%s: late reply to request %u (%s), which timed out", plug_table[m->plug].name, msg->id,
                          msg->name);
                return;
        }
        if (!streq(call->entrypoint, msg->name))
                return protocol_violation(m, "reply to %s names %s", call->entrypoint, msg->name);
        if (msg->status < 0)
                finish_call(call, msg->status, proto_get_str(msg->body, "error", strerror(-msg->status)), NULL);
        else
                finish_call(call, 0, NULL, msg->body);
}

/* Read one frame from a module connection and decode it into reg->rx.
 * 0; -EAGAIN (nothing yet); -ECONNRESET (peer gone); -EBADMSG with why. */
static int read_frame(struct modules *reg, int fd, char *why, size_t whylen)
{
        size_t size = 0;
        ssize_t n = proto_recv_frame(fd, reg->rxbuf, MSG_DONTWAIT, &size);

        if (n == -EAGAIN || n == -EINTR)
                return -EAGAIN;
        if (n == -EMSGSIZE) {
                (void)snprintf(why, whylen, "frame of %zu bytes (limit %d)", size, PROTO_MAX_FRAME);
                return -EBADMSG;
        }
        if (n == -EBADMSG) {
                (void)snprintf(why, whylen, "empty frame (0 bytes)");
                return -EBADMSG;
        }
        if (n <= 0)
                return -ECONNRESET;
        if (proto_decode(reg->rxbuf, (size_t)n, reg->rx, why, whylen) < 0)
                return -EBADMSG;
        return 0;
}

static int on_module_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct module *m = userdata;
        struct modules *reg = m->reg;
        char why[256];
        int r;

        (void)s;
        (void)revents;
        r = read_frame(m->reg, fd, why, sizeof(why));
        if (r == -EAGAIN)
                return 0;
        if (r == -ECONNRESET) {
                close_connection(m, "went away");
                /* Outside a snap the exit report follows from the spawner. */
                return 0;
        }
        if (r < 0) {
                protocol_violation(m, "%s", why);
                return 0;
        }
        switch (reg->rx->type) {
        case PROTO_HELLO:
                handle_hello(m, reg->rx);
                break;
        case PROTO_REPLY:
                /* A module being stopped (its plug just disconnected) may still answer what it
                 * was asked while running: that call completes (the chaos suite saw such an
                 * answer taken for a protocol violation, and the work it reported orphaned). */
                if (m->state == MOD_RUNNING || (m->state == MOD_STOPPING && m->hello_usec))
                        handle_reply(m, reg->rx);
                else
                        protocol_violation(m, "reply before hello");
                break;
        case PROTO_EVENT:
                if (m->state == MOD_STOPPING && m->hello_usec) {
                        log_debug("%s: event %s while stopping; ignored", plug_table[m->plug].name, reg->rx->name);
                        break;
                }
                if (m->state != MOD_RUNNING) {
                        protocol_violation(m, "event before hello");
                        break;
                }
                log_debug("%s: event %s", plug_table[m->plug].name, reg->rx->name);
                if (reg->on_event)
                        reg->on_event(m->plug, reg->rx->name, reg->rx->body, reg->handlers_userdata);
                break;
        default:
                protocol_violation(m, "unexpected %s frame", proto_type_name(reg->rx->type));
        }
        return 0;
}

static void attach_connection(struct module *m, int fd, pid_t pid)
{
        struct modules *reg = m->reg;
        if (sd_event_add_io(reg->event, &m->io, fd, EPOLLIN, on_module_io, m) < 0) {
                log_err("%s: cannot watch the module connection", plug_table[m->plug].name);
                safe_close(fd);
                spawner_send(m->reg, SPAWNER_STOP, m->plug);
                return;
        }
        m->fd = fd;
        m->pid = pid;
}

/* ---- inside a snap: module apps connect to <run_dir>/modules.socket ---- */

struct pending_conn {
        struct modules *reg;
        struct pending_conn *next;
        int fd;
        pid_t pid;                      /* SO_PEERCRED at connect time */
        char label[256];                /* SO_PEERSEC without the mode suffix, "" when no LSM */
        sd_event_source *io, *timer;
};


static void pending_free(struct pending_conn *p)
{
        struct modules *reg = p->reg;
        for (struct pending_conn **pp = &reg->pending_conns; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        sd_event_source_disable_unref(p->io);
        sd_event_source_disable_unref(p->timer);
        safe_close(p->fd);
        free(p);
}

_printf_(2, 3) static void pending_refuse(struct pending_conn *p, const char *fmt, ...)
{
        char why[256];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        log_warn("refused a module connection (pid %ld, label '%s'): %s", (long)p->pid, p->label, why);
        send_hello_reply(p->fd, false, why, false);
        pending_free(p);
}

static int on_pending_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct pending_conn *p = userdata;
        struct modules *reg = p->reg;
        char why[256], expected[128];
        struct module *m;
        int plug, r;

        (void)s;
        (void)revents;
        r = read_frame(p->reg, fd, why, sizeof(why));
        if (r == -EAGAIN)
                return 0;
        if (r == -ECONNRESET) {
                pending_free(p);
                return 0;
        }
        if (r < 0) {
                pending_refuse(p, "%s", why);
                return 0;
        }
        if (reg->rx->type != PROTO_HELLO) {
                pending_refuse(p, "expected a hello, got a %s", proto_type_name(reg->rx->type));
                return 0;
        }
        plug = plug_from_name(reg->rx->name);
        if (plug < 0 || !module_protocols[plug]) {
                pending_refuse(p, "no module protocol for plug '%s'", reg->rx->name);
                return 0;
        }
        /* The kernel's word on who this is: the app's AppArmor label names its plug. */
        (void)snprintf(expected, sizeof(expected), "snap.nova-hypervisor.%s", plug_table[plug].name);
        if (p->label[0] && !streq(p->label, "unconfined") && !streq(p->label, expected)) {
                pending_refuse(p, "label '%s' may not serve plug %s (expected %s)", p->label,
                               plug_table[plug].name, expected);
                return 0;
        }
        m = &reg->mods[plug];
        if (!m->connected) {
                pending_refuse(p, "plug %s is not connected (fix: sudo snap connect nova-hypervisor:%s)",
                               plug_table[plug].name, plug_table[plug].name);
                return 0;
        }
        if (m->fd >= 0) {
                pending_refuse(p, "a module for plug %s is already connected (pid %ld)", plug_table[plug].name,
                               (long)m->pid);
                return 0;
        }
        /* One epoll registration per fd: hand the fd over from the pending source. */
        p->io = sd_event_source_disable_unref(p->io);
        p->timer = sd_event_source_disable_unref(p->timer);
        if (sd_event_add_io(reg->event, &m->io, p->fd, EPOLLIN, on_module_io, m) < 0) {
                pending_refuse(p, "cannot watch the connection");
                return 0;
        }
        m->fd = TAKE_FD(p->fd);
        m->pid = p->pid;
        module_set_state(m, MOD_STARTING);
        m->last_error[0] = '\0';
        pending_free(p);
        handle_hello(m, reg->rx);
        return 0;
}

static int on_pending_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void)s;
        (void)usec;
        pending_refuse(userdata, "no hello within %u ms", ((struct pending_conn *)userdata)->reg->cfg->module_timeout_ms);
        return 0;
}

static int on_module_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct modules *reg = userdata;
        struct pending_conn *p;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int cfd;

        (void)s;
        (void)revents;
        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
                log_warn("refused a module connection from uid %ld: modules run as root",
                         len == sizeof(cred) ? (long)cred.uid : -1L);
                safe_close(cfd);
                return 0;
        }
        p = calloc(1, sizeof(*p));
        if (!p) {
                safe_close(cfd);
                return 0;
        }
        p->reg = reg;
        p->fd = cfd;
        p->pid = cred.pid;
        len = sizeof(p->label) - 1;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERSEC, p->label, &len) == 0) {
                p->label[len] = '\0';
                char *mode = strstr(p->label, " (");
                if (mode)
                        *mode = '\0'; /* "snap.x.y (enforce)" */
        } else
                p->label[0] = '\0';
        p->next = reg->pending_conns;
        reg->pending_conns = p;
        if (sd_event_add_io(reg->event, &p->io, cfd, EPOLLIN, on_pending_io, p) < 0 ||
            sd_event_add_time_relative(reg->event, &p->timer, CLOCK_MONOTONIC,
                                       (uint64_t)reg->cfg->module_timeout_ms * 1000, 1000, on_pending_timeout, p) < 0)
                pending_free(p);
        return 0;
}

int modules_listen(struct modules *reg, int listen_fd)
{
        int r = sd_event_add_io(reg->event, &reg->listen_io, listen_fd, EPOLLIN, on_module_accept, reg);

        if (r < 0)
                return r;
        reg->listen_fd = listen_fd;
        return 0;
}

static int on_spawner_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct modules *reg = userdata;
        struct spawner_msg msg;
        struct module *m;
        int mfd, r;

        (void)s;
        (void)revents;
        (void)userdata;
        r = spawner_recv(fd, &msg, &mfd);
        if (r == -EAGAIN)
                return 0;
        if (r < 0) {
                log_err("the spawner went away (%s); modules can no longer be supervised, exiting",
                        r == -EBADMSG ? "bad message" : "connection closed");
                return sd_event_exit(reg->event, 1);
        }
        m = &reg->mods[msg.plug];
        switch (msg.event) {
        case SPAWNER_STARTED:
                if (m->fd >= 0) {
                        safe_close(mfd);
                        break;
                }
                attach_connection(m, mfd, msg.pid);
                if (!m->first_spawned_usec) /* when the spawner forked it, not when we read that */
                        m->first_spawned_usec = msg.usec >= reg->started_usec ? msg.usec : now_usec();
                log_debug("%s: spawned pid %d", plug_table[m->plug].name, msg.pid);
                if (!m->connected) /* disconnected while starting */
                        spawner_send(m->reg, SPAWNER_STOP, m->plug);
                break;
        case SPAWNER_FAILED:
                set_error(m, "cannot start the module: %s", strerror(-msg.status));
                if (m->connected && msg.status != -EALREADY)
                        schedule_restart(m);
                break;
        case SPAWNER_EXITED:
                on_module_exit(m, msg.pid, msg.status);
                break;
        default:
                break;
        }
        return 0;
}

/* Set up reg (zeroed): 0 or -errno (then modules_free cleans up). */
static int registry_init(struct modules *reg, sd_event *event, const struct nova_config *cfg, int spawner_fd,
                         const char *module_dir)
{
        int r;

        /* First, so that modules_free() can run on a registry set up halfway. */
        for (int i = 0; i < _PLUG_MAX; i++) {
                struct module *m = &reg->mods[i];
                m->reg = reg;
                m->plug = (enum plug_id)i;
                m->fd = -1;
                module_set_state(m, MOD_OFF);
        }
        reg->listen_fd = -1;
        reg->event = event;
        reg->cfg = cfg;
        reg->spawner_fd = spawner_fd;
        r = strscpy(reg->module_dir, module_dir, sizeof(reg->module_dir));
        if (r < 0)
                return r;
        reg->rx = malloc(sizeof(*reg->rx));
        reg->check = malloc(sizeof(*reg->check));
        reg->rxbuf = malloc(PROTO_MAX_FRAME + 1);
        if (!reg->rx || !reg->check || !reg->rxbuf)
                return -ENOMEM;
        if (spawner_fd >= 0) {
                r = sd_event_add_io(event, &reg->spawner_io, spawner_fd, EPOLLIN, on_spawner_io, reg);
                if (r < 0)
                        return r;
        }
        r = sd_event_add_defer(event, &reg->trim, on_trim, reg);
        if (r < 0)
                return r;
        (void)sd_event_source_set_enabled(reg->trim, SD_EVENT_OFF);
        return 0;
}

int modules_new(sd_event *event, const struct nova_config *cfg, int spawner_fd, const bool initial[_PLUG_MAX],
                const char *module_dir, struct modules **ret)
{
        struct modules *reg;
        int r;

        assert(event && cfg && initial && module_dir && ret);
        reg = calloc(1, sizeof(*reg));
        if (!reg)
                return -ENOMEM;
        reg->started_usec = now_usec();
        r = registry_init(reg, event, cfg, spawner_fd, module_dir);
        if (r < 0) {
                modules_free(reg);
                return r;
        }
        for (int i = 0; i < _PLUG_MAX; i++)
                if (initial[i])
                        (void)modules_set_connected(reg, (enum plug_id)i, true);
        *ret = reg;
        return 0;
}

struct modules *modules_free(struct modules *reg)
{
        if (!reg)
                return NULL;
        while (reg->pending_conns)
                pending_free(reg->pending_conns);
        reg->listen_io = sd_event_source_disable_unref(reg->listen_io);
        reg->listen_fd = safe_close(reg->listen_fd);
        for (int i = 0; i < _PLUG_MAX; i++) {
                struct module *m = &reg->mods[i];
                close_connection_status(m, "was shut down with the core", -ESHUTDOWN);
                stop_timer(m);
        }
        reg->spawner_io = sd_event_source_disable_unref(reg->spawner_io);
        reg->trim = sd_event_source_disable_unref(reg->trim);
        free(reg->rx);
        free(reg->check);
        free(reg->rxbuf);
        free(reg);
        return NULL;
}

int modules_set_connected(struct modules *reg, enum plug_id plug, bool connected)
{
        struct module *m;

        if ((unsigned)plug >= _PLUG_MAX)
                return -EINVAL;
        m = &reg->mods[plug];
        if (m->connected == connected)
                return 0;
        m->connected = connected;
        log_info("plug %s %s", plug_table[plug].name, connected ? "connected" : "disconnected");
        if (reg->on_status)
                reg->on_status(reg->status_userdata);
        if (connected) {
                m->restarts = 0;
                m->backoff_ms = 0;
                m->last_error[0] = '\0';
                if (m->state == MOD_OFF || m->state == MOD_UNAVAILABLE)
                        (void)start_module(m);
                else if (m->state == MOD_STOPPING)
                        m->start_after_stop = true; /* started again once the old one exited */
                return 0;
        }
        stop_timer(m);
        m->start_after_stop = false;
        if (m->pid > 0 || m->fd >= 0) {
                module_set_state(m, MOD_STOPPING);
                m->last_error[0] = '\0';
                spawner_send(reg, SPAWNER_STOP, plug);
        } else
                module_set_state(m, MOD_OFF);
        return 0;
}

void modules_get_status(const struct modules *reg, enum plug_id plug, struct module_status *ret)
{
        const struct module *m = &reg->mods[plug];
        uint64_t now = now_usec();

        assert((unsigned)plug < _PLUG_MAX && ret);
        memset(ret, 0, sizeof(*ret));
        ret->plug = plug;
        ret->connected = m->connected;
        ret->state = m->state;
        ret->pid = m->pid;
        ret->caps_effective = m->state == MOD_RUNNING ? m->caps_effective : 0;
        ret->no_new_privs = m->state == MOD_RUNNING && m->no_new_privs;
        ret->restarts = m->restarts;
        ret->uptime_usec = m->state == MOD_RUNNING && m->hello_usec ? now - m->hello_usec : 0;
        ret->restart_in_usec = m->state == MOD_BACKOFF && m->restart_at > now ? m->restart_at - now : 0;
        memcpy(ret->last_error, m->last_error, sizeof(ret->last_error));
}

int modules_check_ready(const struct modules *reg, enum plug_id plug, char *err, size_t errlen)
{
        const struct module *m = &reg->mods[plug];
        const char *name = plug_table[plug].name;

        assert((unsigned)plug < _PLUG_MAX && err);
        if (!m->connected) {
                (void)snprintf(err, errlen,
                               "the %s plug is not connected, so nova-hypervisor cannot manage %s; "
                               "fix: sudo snap connect nova-hypervisor:%s",
                               name, plug_table[plug].summary, name);
                return -ENOTCONN;
        }
        if (m->state == MOD_RUNNING && m->fd >= 0)
                return 0;
        if (m->state == MOD_BACKOFF)
                (void)snprintf(err, errlen, "module %s is restarting after a failure (%s); retry in %llu ms",
                               plug_table[plug].program, m->last_error,
                               (unsigned long long)((m->restart_at > now_usec() ? m->restart_at - now_usec() : 0) / 1000));
        else if (m->state == MOD_UNAVAILABLE)
                (void)snprintf(err, errlen, "the %s plug is connected but %s", name, m->last_error);
        else
                (void)snprintf(err, errlen, "module %s is %s; retry shortly", plug_table[plug].program,
                               module_state_name(m->state));
        return -EAGAIN;
}

static int on_call_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct module_call *call = userdata;
        char text[256];

        (void)s;
        (void)usec;
        (void)snprintf(text, sizeof(text), "module %s did not answer %s in time", plug_table[call->m->plug].program,
                       call->entrypoint);
        log_warn("%s", text);
        note_timed_out(call->m, call->id);
        finish_call(call, -ETIMEDOUT, text, NULL);
        return 0;
}

int modules_call(struct modules *reg, enum plug_id plug, struct proto_writer *w, uint64_t timeout_usec, module_call_cb cb,
                 void *userdata, struct module_call **ret_call, char *err, size_t errlen)
{
        return modules_call_fd(reg, plug, w, -1, timeout_usec, cb, userdata, ret_call, err, errlen);
}

int modules_call_fd(struct modules *reg, enum plug_id plug, struct proto_writer *w, int passed_fd, uint64_t timeout_usec,
                    module_call_cb cb, void *userdata, struct module_call **ret_call, char *err, size_t errlen)
{
        const struct proto_entrypoint *ep;
        struct module_call *call;
        struct module *m;
        const uint8_t *buf;
        size_t len;
        int r;

        assert(w && cb && err);
        if ((unsigned)plug >= _PLUG_MAX)
                return -EINVAL;
        m = &reg->mods[plug];
        r = modules_check_ready(reg, plug, err, errlen);
        if (r < 0)
                return r;
        if (m->next_id == 0)
                m->next_id = 1;
        pw_set_id(w, m->next_id);
        r = pw_finish(w, &buf, &len);
        if (r < 0) {
                (void)snprintf(err, errlen, "request does not fit the module protocol: %s", strerror(-r));
                return r;
        }
        /* The core checks its own requests exactly as the module will. */
        r = proto_decode(buf, len, reg->check, err, errlen);
        if (r < 0)
                return r;
        ep = module_protocol_find(module_protocols[plug], reg->check->name);
        if (!ep) {
                (void)snprintf(err, errlen, "module %s has no entrypoint %s", plug_table[plug].program,
                               reg->check->name);
                return -ENOSYS;
        }
        r = schema_check(ep->request, reg->check->body, err, errlen);
        if (r < 0)
                return r;
        if (ep->takes_fd != (passed_fd >= 0)) {
                (void)snprintf(err, errlen, "%s %s", ep->name, ep->takes_fd ? "needs a descriptor" : "takes no descriptor");
                return -EINVAL;
        }
        /* Everything that can fail is done before the frame goes out: once the
         * module has the request, the call must be pending, or its reply would
         * be taken as unsolicited (a protocol violation that restarts the
         * module). So a failure here leaves nothing sent and nothing pending. */
        call = calloc(1, sizeof(*call));
        if (!call)
                return -ENOMEM;
        call->m = m;
        call->id = m->next_id;
        call->cb = cb;
        call->userdata = userdata;
        memcpy(call->entrypoint, reg->check->name, sizeof(call->entrypoint));
        r = sd_event_add_time_relative(reg->event, &call->timer, CLOCK_MONOTONIC,
                                       timeout_usec ? timeout_usec : (uint64_t)reg->cfg->module_timeout_ms * 1000,
                                       1000, on_call_timeout, call);
        if (r < 0) {
                free(call);
                (void)snprintf(err, errlen, "cannot arm the request timeout: %s", strerror(-r));
                return r;
        }
        r = passed_fd >= 0 ? proto_send_frame_fd(m->fd, buf, len, passed_fd)
                           : send(m->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? -errno : 0;
        if (r < 0) {
                sd_event_source_disable_unref(call->timer);
                free(call);
                (void)snprintf(err, errlen, "cannot send to module %s: %s", plug_table[plug].program,
                               r == -EAGAIN ? "it is not keeping up" : strerror(-r));
                return r == -EAGAIN ? -EBUSY : r;
        }
        m->next_id++;
        call->next = m->calls;
        m->calls = call;
        if (ret_call)
                *ret_call = call;
        return 0;
}

struct json_object *proto_value_to_json(const struct proto_value *v)
{
        struct json_object *o;

        switch (v->type) {
        case PV_U64:
                return json_object_new_uint64(v->v.u);
        case PV_I64:
                return json_object_new_int64(v->v.i);
        case PV_BOOL:
                return json_object_new_boolean(v->v.b);
        case PV_STR:
                return json_object_new_string_len(v->v.s, (int)v->count);
        case PV_LIST:
                o = json_object_new_array();
                for (const struct proto_value *i = v->child; i; i = i->next)
                        json_object_array_add(o, proto_value_to_json(i));
                return o;
        case PV_OBJ:
                o = json_object_new_object();
                for (const struct proto_value *m = v->child; m; m = m->next)
                        json_object_object_add(o, m->key, proto_value_to_json(m));
                return o;
        default:
                return NULL;
        }
}
