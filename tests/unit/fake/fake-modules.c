/* fake-modules.c - see fake-modules.h */
#include "fake-modules.h"


#include <assert.h>
#include <unistd.h>

#define FAKE_MAX_RULES 16
#define FAKE_LOG_MAX 8192

struct module_call {
        struct module_call *next;
        enum plug_id plug;
        int status;
        char entrypoint[PROTO_MAX_NAME + 1];
        uint8_t *frame;                   /* the request as sent */
        size_t frame_len;
        module_call_cb cb;
        void *userdata;
};

static struct {
        bool connected[_PLUG_MAX], ready[_PLUG_MAX];
        struct { char entrypoint[PROTO_MAX_NAME + 1]; int nth, status; } fail[FAKE_MAX_RULES];
        size_t n_fail;
        struct { char entrypoint[PROTO_MAX_NAME + 1]; fake_reply_fn fn; } reply[FAKE_MAX_RULES];
        size_t n_reply;
        struct { char entrypoint[PROTO_MAX_NAME + 1]; int count; } seen[64];
        size_t n_seen;
        struct module_call *head, **tail;
        char log[FAKE_LOG_MAX];
        unsigned rejected;
        module_event_cb on_event;
        module_ready_cb on_ready;
        void *handlers_userdata;
} fake;

static struct proto_msg msg_req, msg_reply; /* large: static */

void fake_modules_init(void)
{
        memset(&fake, 0, sizeof(fake));
        fake.tail = &fake.head;
        for (int p = 0; p < _PLUG_MAX; p++)
                fake.connected[p] = fake.ready[p] = true;
}

void fake_set_plug(enum plug_id plug, bool connected, bool ready)
{
        fake.connected[plug] = connected;
        fake.ready[plug] = connected && ready;
}

void fake_fail(const char *entrypoint, int nth, int status)
{
        assert(fake.n_fail < FAKE_MAX_RULES);
        (void)strscpy(fake.fail[fake.n_fail].entrypoint, entrypoint, sizeof(fake.fail[0].entrypoint));
        fake.fail[fake.n_fail].nth = nth;
        fake.fail[fake.n_fail++].status = status;
}

void fake_set_reply(const char *entrypoint, fake_reply_fn fn)
{
        assert(fake.n_reply < FAKE_MAX_RULES);
        (void)strscpy(fake.reply[fake.n_reply].entrypoint, entrypoint, sizeof(fake.reply[0].entrypoint));
        fake.reply[fake.n_reply++].fn = fn;
}

const char *fake_log(void) { return fake.log; }
void fake_log_clear(void) { fake.log[0] = '\0'; }
unsigned fake_rejected(void) { return fake.rejected; }

unsigned fake_pending(void)
{
        unsigned n = 0;
        for (struct module_call *c = fake.head; c; c = c->next)
                n++;
        return n;
}

/* The how-manyth call of entrypoint this is (0-based). */
static int count_call(const char *entrypoint)
{
        for (size_t i = 0; i < fake.n_seen; i++)
                if (streq(fake.seen[i].entrypoint, entrypoint))
                        return fake.seen[i].count++;
        assert(fake.n_seen < ARRAY_SIZE(fake.seen));
        (void)strscpy(fake.seen[fake.n_seen].entrypoint, entrypoint, sizeof(fake.seen[0].entrypoint));
        fake.seen[fake.n_seen++].count = 1;
        return 0;
}

static int planned_status(const char *entrypoint, int nth)
{
        for (size_t i = 0; i < fake.n_fail; i++)
                if (streq(fake.fail[i].entrypoint, entrypoint) && (fake.fail[i].nth < 0 || fake.fail[i].nth == nth))
                        return fake.fail[i].status;
        return 0;
}

static void log_call(const struct proto_msg *m)
{
        const char *port = proto_get_str(m->body, "port_uuid", "");
        size_t len = strlen(fake.log), n = strlen(port);
        char item[PROTO_MAX_NAME + 24];

        const char *kind = proto_get_str(m->body, "kind", "");

        (void)snprintf(item, sizeof(item), "%s%s%s%s%s", m->name, n ? "/" : "", n >= 2 ? port + n - 2 : "",
                       kind[0] ? ":" : "", kind);
        (void)snprintf(fake.log + len, sizeof(fake.log) - len, "%s%s", len ? " " : "", item);
}

/* The registry the engine is handed: all state is in `fake` (one per test process). */
struct modules {
        int unused;
};

static struct modules registry;

struct modules *fake_modules(void) { return &registry; }

int modules_check_ready(const struct modules *reg, enum plug_id plug, char *err, size_t errlen)
{
        assert(reg == &registry);
        if (!fake.connected[plug]) {
                (void)snprintf(err, errlen, "the %s plug is not connected (fake)", plug_table[plug].name);
                return -ENOTCONN;
        }
        if (!fake.ready[plug]) {
                (void)snprintf(err, errlen, "the %s module is not running (fake)", plug_table[plug].name);
                return -EAGAIN;
        }
        return 0;
}

bool modules_ready(const struct modules *reg, enum plug_id plug)
{
        assert(reg == &registry);
        return fake.ready[plug];
}

void modules_get_status(const struct modules *reg, enum plug_id plug, struct module_status *ret)
{
        assert(reg == &registry);
        memset(ret, 0, sizeof(*ret));
        ret->plug = plug;
        ret->connected = fake.connected[plug];
        ret->state = fake.ready[plug] ? MOD_RUNNING : fake.connected[plug] ? MOD_STARTING : MOD_OFF;
}

void modules_set_handlers(struct modules *reg, module_event_cb on_event, module_ready_cb on_ready, void *userdata)
{
        assert(reg == &registry);
        fake.on_event = on_event;
        fake.on_ready = on_ready;
        fake.handlers_userdata = userdata;
}

void fake_module_ready(enum plug_id plug)
{
        fake.ready[plug] = fake.connected[plug] = true;
        if (fake.on_ready)
                fake.on_ready(plug, fake.handlers_userdata);
}

void fake_module_connection_event(enum plug_id plug, const char *event, bool connected)
{
        static struct proto_writer w;
        static struct proto_msg msg;
        const uint8_t *buf;
        size_t len;
        char err[256];
        int r;

        pw_init(&w, PROTO_EVENT, 0, 0, event);
        pw_bool(&w, "connected", connected);
        r = pw_finish(&w, &buf, &len);
        assert(r == 0);
        r = proto_decode(buf, len, &msg, err, sizeof(err));
        assert(r == 0);
        if (fake.on_event)
                fake.on_event(plug, event, msg.body, fake.handlers_userdata);
}

int modules_call(struct modules *reg, enum plug_id plug, struct proto_writer *w, uint64_t timeout_usec, module_call_cb cb,
                 void *userdata, struct module_call **ret_call, char *err, size_t errlen)
{
        return modules_call_fd(reg, plug, w, -1, timeout_usec, cb, userdata, ret_call, err, errlen);
}

static char fd_data[512 * 1024];
static size_t fd_data_len;

const char *fake_last_fd_data(size_t *ret_len)
{
        if (ret_len)
                *ret_len = fd_data_len;
        return fd_data;
}

/* What the descriptor holds, read now (as the module would), into fd_data. */
static void read_passed(int fd)
{
        ssize_t n;

        fd_data_len = 0;
        while (fd_data_len < sizeof(fd_data) - 1 &&
               (n = read(fd, fd_data + fd_data_len, sizeof(fd_data) - 1 - fd_data_len)) > 0)
                fd_data_len += (size_t)n;
        fd_data[fd_data_len] = '\0';
}

int modules_call_fd(struct modules *reg, enum plug_id plug, struct proto_writer *w, int passed_fd, uint64_t timeout_usec,
                    module_call_cb cb, void *userdata, struct module_call **ret_call, char *err, size_t errlen)
{
        const struct proto_entrypoint *ep;
        struct module_call *call;
        const uint8_t *buf;
        size_t len;
        int r;

        (void)timeout_usec;
        r = modules_check_ready(reg, plug, err, errlen);
        if (r < 0)
                return r;
        pw_set_id(w, 1);
        r = pw_finish(w, &buf, &len);
        if (r == 0)
                r = proto_decode(buf, len, &msg_req, err, errlen);
        ep = r == 0 ? module_protocol_find(module_protocols[plug], msg_req.name) : NULL;
        if (r == 0 && !ep)
                r = -ENOSYS;
        if (r == 0)
                r = schema_check(ep->request, msg_req.body, err, errlen);
        if (r == 0 && ep->takes_fd != (passed_fd >= 0))
                r = -EINVAL; /* as the real registry and the module refuse it */
        if (r < 0) {
                fake.rejected++;
                return r;
        }
        if (passed_fd >= 0)
                read_passed(passed_fd);
        call = calloc(1, sizeof(*call));
        assert(call);
        call->frame = malloc(len);
        assert(call->frame);
        memcpy(call->frame, buf, len);
        call->frame_len = len;
        call->plug = plug;
        call->cb = cb;
        call->userdata = userdata;
        memcpy(call->entrypoint, msg_req.name, sizeof(call->entrypoint));
        call->status = planned_status(call->entrypoint, count_call(call->entrypoint));
        log_call(&msg_req);
        *fake.tail = call;
        fake.tail = &call->next;
        if (ret_call)
                *ret_call = call;
        return 0;
}

static void unlink_call(struct module_call *call)
{
        for (struct module_call **pp = &fake.head; *pp; pp = &(*pp)->next)
                if (*pp == call) {
                        *pp = call->next;
                        break;
                }
        fake.tail = &fake.head;
        while (*fake.tail)
                fake.tail = &(*fake.tail)->next;
}

void module_call_cancel(struct module_call *call)
{
        if (!call)
                return;
        unlink_call(call);
        free(call->frame);
        free(call);
}

/* Default bodies: what a module answers when all is well. */
static void default_reply(const struct module_call *call, const struct proto_value *req, struct proto_writer *w)
{
        if (streq(call->entrypoint, "domain_define") || streq(call->entrypoint, "domain_start") ||
            streq(call->entrypoint, "domain_reboot") || streq(call->entrypoint, "domain_shutdown") ||
            streq(call->entrypoint, "domain_destroy")) {
                pw_obj_begin(w, "domain");
                pw_str(w, "instance_uuid", proto_get_str(req, "instance_uuid", ""));
                pw_str(w, "state", streq(call->entrypoint, "domain_define") ? "shutoff"
                                   : streq(call->entrypoint, "domain_shutdown") || streq(call->entrypoint, "domain_destroy")
                                           ? "shutoff"
                                           : "running");
                pw_obj_end(w);
        } else if (streq(call->entrypoint, "instance_pin")) {
                pw_u64(w, "pid", 4242);
                pw_u64(w, "threads", 3);
        } else if (streq(call->entrypoint, "domain_list")) {
                pw_list_begin(w, "domains");
                pw_list_end(w);
        } else if (streq(call->entrypoint, "tap_list")) {
                pw_list_begin(w, "taps");
                pw_list_end(w);
        } else if (streq(call->entrypoint, "port_list")) {
                pw_list_begin(w, "ports");
                pw_list_end(w);
        } else if (streq(call->entrypoint, "rules_list")) {
                pw_list_begin(w, "ports");
                pw_list_end(w);
        }
}

static void deliver(struct module_call *call)
{
        static struct proto_writer w;
        struct module_result res = { .status = call->status };
        const uint8_t *buf;
        size_t len;
        char err[256];
        fake_reply_fn fn = NULL;
        int r;

        r = proto_decode(call->frame, call->frame_len, &msg_req, err, sizeof(err));
        assert(r == 0);
        pw_init(&w, PROTO_REPLY, 1, call->status, call->entrypoint);
        if (call->status == 0) {
                for (size_t i = 0; i < fake.n_reply; i++)
                        if (streq(fake.reply[i].entrypoint, call->entrypoint))
                                fn = fake.reply[i].fn;
                if (fn)
                        fn(msg_req.body, &w);
                else
                        default_reply(call, msg_req.body, &w);
        }
        r = pw_finish(&w, &buf, &len);
        assert(r == 0);
        r = proto_decode(buf, len, &msg_reply, err, sizeof(err));
        assert(r == 0);
        res.body = call->status == 0 ? msg_reply.body : NULL;
        (void)snprintf(err, sizeof(err), "%s failed (fake): %s", call->entrypoint, strerror(-call->status));
        res.error = call->status ? err : NULL;
        call->cb(&res, call->userdata);
}

unsigned fake_flush(void)
{
        unsigned n = 0;

        while (fake.head) {
                struct module_call *call = fake.head;
                unlink_call(call);
                deliver(call);
                free(call->frame);
                free(call);
                n++;
        }
        return n;
}
