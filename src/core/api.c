/* api.c - see api.h */
#include "api.h"

#include "firewall.h"
#include "secgroups.h"
#include "http.h"
#include "instances.h"
#include "lifecycle.h"
#include "log.h"
#include "modules.h"
#include "placement.h" /* issue 18 hook */
#include "names.h"
#include "netctl-protocol.h"
#include "observe.h"
#include "snapctl.h"

#include <json-c/json.h>
#include <sys/socket.h>

#define API_VERSION "0.1.0"
#define API_MAX_CONNECTIONS 64
#define API_IDLE_TIMEOUT_USEC (30 * 1000000ULL) /* a client that sends nothing for this long is dropped */

/* A security-group change: sent to firewall-control first, stored when it
 * took (or at once when no filtered port is affected). */
enum sg_change_kind { SGC_RULE_ADD, SGC_RULE_DELETE, SGC_PORT_SET };
struct sg_change {
        struct api_conn *c;                     /* NULL once the client is gone */
        enum sg_change_kind kind;
        char group_id[UUID_STR_LEN + 1];        /* rule add */
        struct secrule rule;                    /* rule add: with its new id */
        char rule_id[UUID_STR_LEN + 1];         /* rule delete */
        char port_uuid[UUID_STR_LEN + 1];       /* port set */
        char groups[PORT_MAX_GROUPS][UUID_STR_LEN + 1];
        size_t n_groups;
        char pending[512];                      /* why the kernel was not updated ("" when it was) */
};

struct api_conn {
        struct api_conn *next;          /* in the connection list */
        int fd;
        sd_event_source *io;
        sd_event_source *idle;          /* closes a connection that stays silent */
        char *in;                       /* received bytes not yet consumed */
        size_t in_len;
        char *out;                      /* response being written */
        size_t out_len, out_off;
        bool busy;                      /* a request is being handled */
        bool keep_alive;                /* of the request being handled */
        size_t consumed;                /* bytes of `in` the current request used */
        struct module_call *call;       /* pending module call, cancelled if we go away */
        struct lifecycle_waiter *waiter; /* pending instance operation (?wait=1), cancelled likewise */
        char port_uuid[UUID_STR_LEN + 1]; /* request context for module replies */
        struct sg_change *change;       /* security-group change in flight; it outlives us */
        struct observe_query *observe;  /* host/stats/metrics query in flight, cancelled if we go away */
};

static struct {
        sd_event *event;
        int listen_fd;
        sd_event_source *listen_io;
        struct api_context ctx;
        struct api_conn *conns;
        unsigned n_conns;
} api = { .listen_fd = -1 };

static void conn_free(struct api_conn *c)
{
        for (struct api_conn **pp = &api.conns; *pp; pp = &(*pp)->next)
                if (*pp == c) {
                        *pp = c->next;
                        break;
                }
        module_call_cancel(c->call);
        lifecycle_waiter_cancel(c->waiter);
        observe_cancel(c->observe);
        if (c->change)
                c->change->c = NULL; /* the change still lands in the store; nobody hears of it */
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->idle);
        safe_close(c->fd);
        free(c->in);
        free(c->out);
        free(c);
        api.n_conns--;
}

static void conn_process(struct api_conn *c);
static struct json_object *instance_json(const struct instance *inst);

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static void conn_update_events(struct api_conn *c)
{
        uint32_t ev = c->out ? EPOLLOUT : (c->busy ? 0 : EPOLLIN);
        (void)sd_event_source_set_io_events(c->io, ev | EPOLLRDHUP);
}

/* Queue a response of content_type; ownership of body stays with the caller. */
static void conn_respond_typed(struct api_conn *c, int status, const char *content_type, const char *body)
{
        size_t len;
        int r;

        c->call = NULL;
        r = http_format_response(status, content_type, body, strlen(body), c->keep_alive, &c->out, &len);
        if (r < 0) {
                static const char fallback[] = "HTTP/1.1 500 Internal Server Error\r\n"
                                               "Content-Length: 0\r\nConnection: close\r\n\r\n";
                log_err("api: cannot format a response: %s", strerror(-r));
                c->keep_alive = false;
                c->out = strdup(fallback);
                len = c->out ? strlen(fallback) : 0;
        }
        c->out_len = len;
        c->out_off = 0;
        conn_update_events(c);
}

static void conn_respond(struct api_conn *c, int status, const char *body)
{
        conn_respond_typed(c, status, "application/json", body);
}

static void respond_json(struct api_conn *c, int status, struct json_object *obj)
{
        conn_respond(c, status, json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
        json_object_put(obj);
}

static void respond_error(struct api_conn *c, int status, const char *message, int plug)
{
        struct json_object *root = json_object_new_object(), *e = json_object_new_object();
        char fix[128];

        json_object_object_add(e, "code", json_object_new_int(status));
        json_object_object_add(e, "message", json_object_new_string(message));
        if (plug >= 0) {
                json_object_object_add(e, "plug", json_object_new_string(plug_table[plug].name));
                if (plug_fix_text((enum plug_id)plug, fix, sizeof(fix)) == 0)
                        json_object_object_add(e, "fix", json_object_new_string(fix));
        }
        json_object_object_add(root, "error", e);
        respond_json(c, status, root);
}

/* HTTP status for an -errno from a module call. */
static int status_for_errno(int r)
{
        switch (r) {
        case -EINVAL:
        case -ERANGE:
                return 400;
        case -ENOENT:
                return 404;
        case -EEXIST:
        case -EPERM:
        case -EBUSY:
                return 409;
        case -ENOSPC:
                return 507;
        case -ENOTCONN:
        case -EAGAIN:
                return 503;
        case -ETIMEDOUT:
                return 504;
        case -ECONNRESET:
                return 502;
        case -ENOSYS:
                return 501;
        default:
                return 500;
        }
}

/* ---- status ---- */

static struct json_object *module_json(enum plug_id plug)
{
        struct module_status st;
        struct json_object *o = json_object_new_object(), *plugo = json_object_new_object();
        char caps[256] = "", fix[128];

        modules_get_status(plug, &st);
        (void)caps_mask_format(st.caps_effective, caps, sizeof(caps));
        json_object_object_add(plugo, "plug", json_object_new_string(plug_table[plug].name));
        json_object_object_add(plugo, "summary", json_object_new_string(plug_table[plug].summary));
        json_object_object_add(plugo, "connected", json_object_new_boolean(st.connected));
        json_object_object_add(o, "program", json_object_new_string(plug_table[plug].program));
        json_object_object_add(o, "state", json_object_new_string(module_state_name(st.state)));
        json_object_object_add(o, "running", json_object_new_boolean(st.state == MOD_RUNNING));
        json_object_object_add(o, "pid", json_object_new_int64(st.pid));
        json_object_object_add(o, "capabilities", json_object_new_string(caps));
        json_object_object_add(o, "caps_effective", json_object_new_uint64(st.caps_effective));
        json_object_object_add(o, "no_new_privs", json_object_new_boolean(st.no_new_privs));
        json_object_object_add(o, "restarts", json_object_new_int(st.restarts));
        json_object_object_add(o, "uptime_ms", json_object_new_uint64(st.uptime_usec / 1000));
        if (st.state == MOD_BACKOFF)
                json_object_object_add(o, "restart_in_ms", json_object_new_uint64(st.restart_in_usec / 1000));
        json_object_object_add(o, "last_error", st.last_error[0] ? json_object_new_string(st.last_error) : NULL);
        json_object_object_add(plugo, "module", o);
        if (!st.connected && plug_fix_text(plug, fix, sizeof(fix)) == 0)
                json_object_object_add(plugo, "fix", json_object_new_string(fix));
        else
                json_object_object_add(plugo, "fix", NULL);
        return plugo;
}

static void handle_status(struct api_conn *c)
{
        struct json_object *root = json_object_new_object(), *core = json_object_new_object();
        struct json_object *plugs = json_object_new_array();
        struct proc_security sec = { 0 };
        char caps[256] = "";
        unsigned waiting = 0;

        (void)proc_security_read(0, &sec);
        (void)caps_mask_format(sec.cap_eff, caps, sizeof(caps));
        json_object_object_add(core, "version", json_object_new_string(API_VERSION));
        json_object_object_add(core, "pid", json_object_new_int64(getpid()));
        json_object_object_add(core, "snap", json_object_new_boolean(api.ctx.snap));
        json_object_object_add(core, "spawner_pid", json_object_new_int64(api.ctx.spawner_pid));
        json_object_object_add(core, "capabilities", json_object_new_string(caps));
        json_object_object_add(core, "caps_effective", json_object_new_uint64(sec.cap_eff));
        json_object_object_add(core, "caps_permitted", json_object_new_uint64(sec.cap_prm));
        json_object_object_add(core, "no_new_privs", json_object_new_boolean(sec.no_new_privs));
        json_object_object_add(core, "uptime_ms", json_object_new_uint64((now_usec() - api.ctx.started_usec) / 1000));
        json_object_object_add(core, "state_dir", json_object_new_string(api.ctx.cfg->state_dir));
        json_object_object_add(core, "api_socket", json_object_new_string(api.ctx.cfg->api_socket));
        for (int i = 0; i < _PLUG_MAX; i++) {
                struct module_status st;
                modules_get_status((enum plug_id)i, &st);
                if (!st.connected)
                        waiting++;
                json_object_array_add(plugs, module_json((enum plug_id)i));
        }
        json_object_object_add(core, "plugs_disconnected", json_object_new_int((int)waiting));
        json_object_object_add(root, "placement", placement_status_json()); /* issue 18 hook */
        {
                struct json_object *inst = json_object_new_object(), *rec = json_object_new_object();
                struct reconcile_report rr;
                int active = 0, stopped = 0, error = 0, busy = 0;
                for (struct instance *i = instances_first(); i; i = i->next) {
                        active += streq(i->vm_state, "active");
                        stopped += streq(i->vm_state, "stopped");
                        error += streq(i->vm_state, "error");
                        busy += i->task[0] != '\0';
                }
                json_object_object_add(inst, "total", json_object_new_int64((int64_t)instances_count()));
                json_object_object_add(inst, "active", json_object_new_int(active));
                json_object_object_add(inst, "stopped", json_object_new_int(stopped));
                json_object_object_add(inst, "error", json_object_new_int(error));
                json_object_object_add(inst, "busy", json_object_new_int(busy));
                json_object_object_add(root, "instances", inst);
                lifecycle_reconcile_report(&rr);
                json_object_object_add(rec, "runs", json_object_new_uint64(rr.runs));
                json_object_object_add(rec, "seconds_ago", rr.last_usec ? json_object_new_uint64((now_usec() - rr.last_usec) / 1000000)
                                                                       : NULL);
                json_object_object_add(rec, "orphan_domains", json_object_new_int((int)rr.orphan_domains));
                json_object_object_add(rec, "orphan_taps", json_object_new_int((int)rr.orphan_taps));
                json_object_object_add(rec, "orphan_vifs", json_object_new_int((int)rr.orphan_vifs));
                json_object_object_add(rec, "reaped", json_object_new_int((int)rr.reaped));
                json_object_object_add(rec, "repaired", json_object_new_int((int)rr.repaired));
                json_object_object_add(rec, "last_error", rr.last_error[0] ? json_object_new_string(rr.last_error) : NULL);
                json_object_object_add(root, "reconcile", rec);
        }
        {
                struct json_object *fwo = json_object_new_object();
                struct firewall_report fr;
                firewall_report(&fr);
                json_object_object_add(fwo, "secgroups", json_object_new_int64((int64_t)secgroups_count()));
                json_object_object_add(fwo, "runs", json_object_new_uint64(fr.runs));
                json_object_object_add(fwo, "applied", json_object_new_int((int)fr.applied));
                json_object_object_add(fwo, "removed", json_object_new_int((int)fr.removed));
                json_object_object_add(fwo, "replumbed", json_object_new_int((int)fr.replumbed));
                json_object_object_add(fwo, "unfiltered_ports", json_object_new_int((int)fr.unfiltered));
                json_object_object_add(fwo, "last_error", fr.last_error[0] ? json_object_new_string(fr.last_error) : NULL);
                json_object_object_add(root, "firewall", fwo);
        }
        json_object_object_add(root, "core", core);
        json_object_object_add(root, "plugs", plugs);
        respond_json(c, 200, root);
}

/* ---- plugs ---- */

static void handle_plug_change(struct api_conn *c, const char *name, bool connect)
{
        int plug = plug_from_name(name);
        char msg[256];
        int r;

        if (plug < 0) {
                (void)snprintf(msg, sizeof(msg), "unknown plug '%.64s'", name);
                return respond_error(c, 404, msg, -1);
        }
        if (api.ctx.snap) {
                (void)snprintf(msg, sizeof(msg), "inside the snap plugs are managed by snapd: sudo snap %s nova-hypervisor:%s",
                               connect ? "connect" : "disconnect", plug_table[plug].name);
                return respond_error(c, 409, msg, -1);
        }
        r = modules_set_connected((enum plug_id)plug, connect);
        if (r == 0 && api.ctx.save_plugs)
                r = api.ctx.save_plugs();
        if (r < 0) {
                (void)snprintf(msg, sizeof(msg), "cannot record the plug state: %s", strerror(-r));
                return respond_error(c, 500, msg, -1);
        }
        respond_json(c, 200, module_json((enum plug_id)plug));
}

/* Inside the snap: the disconnect-plug hook says snapd is taking the plug
 * away. `snapctl is-connected` still says connected while that hook runs, so
 * the hook's word is what the core goes by; the next refresh re-reads snapd. */
static void handle_plug_disconnecting(struct api_conn *c, const char *name)
{
        int plug = plug_from_name(name);
        char msg[256];

        if (plug < 0) {
                (void)snprintf(msg, sizeof(msg), "unknown plug '%.64s'", name);
                return respond_error(c, 404, msg, -1);
        }
        if (!api.ctx.snap)
                return respond_error(c, 409, "outside a snap use /v1/plugs/<plug>/disconnect", -1);
        (void)modules_set_connected((enum plug_id)plug, false);
        respond_json(c, 200, module_json((enum plug_id)plug));
}

static void handle_plug_refresh(struct api_conn *c)
{
        bool connected[_PLUG_MAX];
        char msg[256];
        int r;

        if (!api.ctx.snap)
                return respond_error(c, 409, "outside a snap use /v1/plugs/<plug>/connect or disconnect", -1);
        r = snapctl_connected_plugs(connected);
        if (r < 0) {
                (void)snprintf(msg, sizeof(msg), "snapctl is-connected failed: %s", strerror(-r));
                return respond_error(c, 502, msg, -1);
        }
        for (int i = 0; i < _PLUG_MAX; i++)
                (void)modules_set_connected((enum plug_id)i, connected[i]);
        handle_status(c);
}

/* ---- ports ---- */

static void on_port_reply(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;
        const struct proto_value *tap;

        c->call = NULL;
        if (res->status < 0)
                return respond_error(c, status_for_errno(res->status), res->error,
                                     res->status == -ENOTCONN ? PLUG_NETWORK_CONTROL : -1);
        tap = proto_get(res->body, "tap");
        if (tap)
                return respond_json(c, 200, proto_value_to_json(tap));
        if (proto_get(res->body, "taps")) {
                struct json_object *root = json_object_new_object();
                json_object_object_add(root, "ports", proto_value_to_json(proto_get(res->body, "taps")));
                json_object_object_add(root, "total", json_object_new_uint64(proto_get_u64(res->body, "total", 0)));
                json_object_object_add(root, "truncated",
                                       json_object_new_boolean(proto_get_bool(res->body, "truncated", false)));
                return respond_json(c, 200, root);
        }
        /* tap_delete */
        struct json_object *root = json_object_new_object();
        json_object_object_add(root, "deleted", json_object_new_string(c->port_uuid));
        respond_json(c, 200, root);
}

static void call_netctl(struct api_conn *c, struct proto_writer *w)
{
        char err[512];
        int r;

        r = modules_call(PLUG_NETWORK_CONTROL, w, 0, on_port_reply, c, &c->call, err, sizeof(err));
        if (r < 0)
                respond_error(c, status_for_errno(r), err,
                              r == -ENOTCONN || r == -EAGAIN ? PLUG_NETWORK_CONTROL : -1);
}

/* Parse a JSON object body strictly: at most 64 KiB, depth 6, fully consumed. */
static int parse_body(const struct http_request *req, struct json_object **ret, char *err, size_t errlen)
{
        struct json_tokener *tok;
        struct json_object *obj;

        if (!req->body || req->body_len == 0) {
                *ret = json_object_new_object();
                return 0;
        }
        if (req->body_len > 64 * 1024) {
                (void)snprintf(err, errlen, "request body larger than 64 KiB");
                return -EMSGSIZE;
        }
        tok = json_tokener_new_ex(6); /* {ports: [{ips: [...]}]} */
        if (!tok)
                return -ENOMEM;
        obj = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
        if (!obj || json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != req->body_len || !json_object_is_type(obj, json_type_object)) {
                (void)snprintf(err, errlen, "request body is not a single JSON object");
                json_object_put(obj);
                json_tokener_free(tok);
                return -EINVAL;
        }
        json_tokener_free(tok);
        *ret = obj;
        return 0;
}

static void handle_port_create(struct api_conn *c, const struct http_request *req)
{
        struct json_object *body = NULL;
        char err[256], uuid[UUID_STR_LEN + 1], mac[MAC_STR_LEN + 1];
        int64_t mtu = 1500;
        struct proto_writer *w;
        int r;

        r = parse_body(req, &body, err, sizeof(err));
        if (r < 0)
                return respond_error(c, r == -EMSGSIZE ? 413 : 400, err, -1);
        if (uuid_new_str(uuid) < 0 || mac_generate(mac) < 0) {
                json_object_put(body);
                return respond_error(c, 500, "cannot generate identifiers", -1);
        }
        json_object_object_foreach(body, key, val) {
                const char *s = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : NULL;
                if (streq(key, "port_uuid") && s && uuid_is_valid(s))
                        memcpy(uuid, s, sizeof(uuid));
                else if (streq(key, "mac") && s && mac_is_valid(s))
                        memcpy(mac, s, sizeof(mac));
                else if (streq(key, "mtu") && json_object_is_type(val, json_type_int) &&
                         (mtu = json_object_get_int64(val)) >= NETCTL_MTU_MIN && mtu <= NETCTL_MTU_MAX)
                        ;
                else {
                        if (streq(key, "port_uuid"))
                                (void)snprintf(err, sizeof(err), "port_uuid: not a canonical lowercase UUID");
                        else if (streq(key, "mac"))
                                (void)snprintf(err, sizeof(err), "mac: not a lowercase unicast MAC address");
                        else if (streq(key, "mtu"))
                                (void)snprintf(err, sizeof(err), "mtu: must be an integer in %d..%d", NETCTL_MTU_MIN,
                                               NETCTL_MTU_MAX);
                        else
                                (void)snprintf(err, sizeof(err), "%.64s: unknown field", key);
                        json_object_put(body);
                        return respond_error(c, 400, err, -1);
                }
        }
        json_object_put(body);
        w = malloc(sizeof(*w));
        if (!w)
                return respond_error(c, 500, "out of memory", -1);
        memcpy(c->port_uuid, uuid, sizeof(uuid));
        pw_init(w, PROTO_REQUEST, 0, 0, "tap_create");
        pw_str(w, "port_uuid", uuid);
        pw_str(w, "mac", mac);
        pw_u64(w, "mtu", (uint64_t)mtu);
        call_netctl(c, w);
        free(w);
}

static void handle_port_one(struct api_conn *c, const char *entrypoint, const char *port_uuid)
{
        struct proto_writer *w;
        char msg[128];

        if (!uuid_is_valid(port_uuid)) {
                (void)snprintf(msg, sizeof(msg), "'%.40s' is not a canonical lowercase port UUID", port_uuid);
                return respond_error(c, 400, msg, -1);
        }
        w = malloc(sizeof(*w));
        if (!w)
                return respond_error(c, 500, "out of memory", -1);
        memcpy(c->port_uuid, port_uuid, UUID_STR_LEN + 1);
        pw_init(w, PROTO_REQUEST, 0, 0, entrypoint);
        if (entrypoint[4] != 'l') /* tap_list takes no identifier */
                pw_str(w, "port_uuid", port_uuid);
        call_netctl(c, w);
        free(w);
}

static void handle_port_list(struct api_conn *c)
{
        struct proto_writer *w = malloc(sizeof(*w));

        if (!w)
                return respond_error(c, 500, "out of memory", -1);
        pw_init(w, PROTO_REQUEST, 0, 0, "tap_list");
        call_netctl(c, w);
        free(w);
}

/* ---- instances ---- */

static bool query_wait(const struct http_request *req)
{
        char q[sizeof(req->query)], *save = NULL;

        if (strscpy(q, req->query, sizeof(q)) < 0)
                return false;
        for (char *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save))
                if (streq(kv, "wait=1") || streq(kv, "wait=true"))
                        return true;
        return false;
}

static void on_instance_done(int status, const char *error, int plug, struct instance *inst, void *userdata)
{
        struct api_conn *c = userdata;

        c->waiter = NULL;
        if (status < 0)
                return respond_error(c, status == -ECANCELED ? 503 : status_for_errno(status),
                                     error, plug);
        if (!inst) {
                struct json_object *root = json_object_new_object();
                json_object_object_add(root, "deleted", json_object_new_string(c->port_uuid));
                return respond_json(c, 200, root);
        }
        respond_json(c, 200, instance_json(inst));
}

/* The API view of an instance: the store's, with each port's group names
 * and, for an unfiltered port, why and what to do about it. */
static struct json_object *instance_json(const struct instance *inst)
{
        struct json_object *o = instance_to_json(inst), *ports;
        char fix[128];

        if (!json_object_object_get_ex(o, "ports", &ports))
                return o;
        if (plug_fix_text(PLUG_FIREWALL_CONTROL, fix, sizeof(fix)) < 0)
                fix[0] = '\0';
        for (size_t i = 0; i < inst->n_ports && i < json_object_array_length(ports); i++) {
                struct json_object *p = json_object_array_get_idx(ports, i), *names = json_object_new_array();
                for (size_t k = 0; k < inst->ports[i].n_secgroups; k++) {
                        const struct secgroup *g = secgroup_find(inst->ports[i].secgroups[k]);
                        json_object_array_add(names, json_object_new_string(g ? g->name : "(deleted)"));
                }
                json_object_object_add(p, "secgroup_names", names);
                if (!inst->ports[i].filtered)
                        json_object_object_add(p, "unfiltered_reason",
                                               json_object_new_string(firewall_connected()
                                                                              ? "booted before firewall-control was "
                                                                                "connected; being re-plumbed"
                                                                              : "firewall-control is not connected"));
                if (!inst->ports[i].filtered && !firewall_connected() && fix[0])
                        json_object_object_add(p, "fix", json_object_new_string(fix));
        }
        return o;
}

static struct instance *find_instance(const char *id)
{
        return uuid_is_valid(id) ? instance_find(id) : instance_find_by_name(id);
}

static bool port_in_use(const char *port_uuid)
{
        for (struct instance *i = instances_first(); i; i = i->next)
                for (size_t p = 0; p < i->n_ports; p++)
                        if (streq(i->ports[p].port_uuid, port_uuid))
                                return true;
        return false;
}

static void handle_instance_create(struct api_conn *c, const struct http_request *req)
{
        struct json_object *body = NULL;
        struct instance tmpl, *inst = NULL;
        bool wait = query_wait(req);
        char err[512];
        int r, plug;

        r = parse_body(req, &body, err, sizeof(err));
        if (r < 0)
                return respond_error(c, r == -EMSGSIZE ? 413 : 400, err, -1);
        r = instance_parse_boot_request(body, secgroup_resolve, api.ctx.cfg->cpu_set, &tmpl, err, sizeof(err));
        if (r == 0)
                r = instance_apply_network_mtu(body, api.ctx.cfg->network_mtu, &tmpl, err, sizeof(err));
        json_object_put(body);
        if (r < 0)
                return respond_error(c, 400, err, -1);
        for (size_t i = 0; i < tmpl.n_ports; i++)
                if (port_in_use(tmpl.ports[i].port_uuid)) {
                        (void)snprintf(err, sizeof(err), "port %s belongs to another instance", tmpl.ports[i].port_uuid);
                        return respond_error(c, 409, err, -1);
                }
        r = lifecycle_boot(&tmpl, wait ? on_instance_done : NULL, c, &c->waiter, &inst, err, sizeof(err), &plug);
        if (r < 0)
                return respond_error(c, status_for_errno(r), err, plug);
        if (!wait)
                respond_json(c, 202, instance_json(inst));
}

static void handle_instance_op(struct api_conn *c, const struct http_request *req, const char *id, const char *action)
{
        struct instance *inst = find_instance(id);
        bool wait = query_wait(req);
        char err[512];
        int r, plug;

        if (!inst) {
                (void)snprintf(err, sizeof(err), "no instance '%.64s'", id);
                return respond_error(c, 404, err, -1);
        }
        memcpy(c->port_uuid, inst->uuid, sizeof(c->port_uuid)); /* for the "deleted" answer */
        if (streq(action, "delete"))
                r = lifecycle_delete(inst, wait ? on_instance_done : NULL, c, &c->waiter, err, sizeof(err), &plug);
        else
                r = lifecycle_power(inst, action, wait ? on_instance_done : NULL, c, &c->waiter, err, sizeof(err), &plug);
        if (r < 0)
                return respond_error(c, status_for_errno(r), err, plug);
        if (!wait)
                respond_json(c, 202, instance_json(inst));
}

static void handle_instance_list(struct api_conn *c)
{
        struct json_object *root = json_object_new_object(), *list = json_object_new_array();

        for (struct instance *i = instances_first(); i; i = i->next)
                json_object_array_add(list, instance_json(i));
        json_object_object_add(root, "instances", list);
        respond_json(c, 200, root);
}

static void on_domains_reply(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;
        struct json_object *root;

        c->call = NULL;
        if (res->status < 0)
                return respond_error(c, status_for_errno(res->status), res->error,
                                     res->status == -ENOTCONN ? PLUG_LIBVIRT : -1);
        root = json_object_new_object();
        json_object_object_add(root, "domains", proto_value_to_json(proto_get(res->body, "domains")));
        json_object_object_add(root, "total", json_object_new_uint64(proto_get_u64(res->body, "total", 0)));
        json_object_object_add(root, "truncated", json_object_new_boolean(proto_get_bool(res->body, "truncated", false)));
        respond_json(c, 200, root);
}

/* What libvirt has of ours, as the libvirt module lists it. */
static void handle_domain_list(struct api_conn *c)
{
        struct proto_writer *w = malloc(sizeof(*w));
        char err[512];
        int r;

        if (!w)
                return respond_error(c, 500, "out of memory", -1);
        pw_init(w, PROTO_REQUEST, 0, 0, "domain_list");
        r = modules_call(PLUG_LIBVIRT, w, 0, on_domains_reply, c, &c->call, err, sizeof(err));
        free(w);
        if (r < 0)
                respond_error(c, status_for_errno(r), err, r == -ENOTCONN || r == -EAGAIN ? PLUG_LIBVIRT : -1);
}

static void on_vifs_reply(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;
        struct json_object *root, *ports;

        c->call = NULL;
        if (res->status < 0)
                return respond_error(c, status_for_errno(res->status), res->error,
                                     res->status == -ENOTCONN ? PLUG_OPENVSWITCH : -1);
        root = json_object_new_object();
        ports = proto_value_to_json(proto_get(res->body, "ports"));
        /* Join with the store: which instance each port belongs to. */
        for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
                struct json_object *p = json_object_array_get_idx(ports, i), *v;
                struct instance *inst = json_object_object_get_ex(p, "instance_uuid", &v)
                                                ? instance_find(json_object_get_string(v))
                                                : NULL;
                json_object_object_add(p, "instance_name", inst ? json_object_new_string(inst->name) : NULL);
        }
        json_object_object_add(root, "ports", ports);
        json_object_object_add(root, "total", json_object_new_uint64(proto_get_u64(res->body, "total", 0)));
        json_object_object_add(root, "truncated", json_object_new_boolean(proto_get_bool(res->body, "truncated", false)));
        respond_json(c, 200, root);
}

/* Our ports on the integration bridge, as the openvswitch module lists them. */
static void handle_vif_list(struct api_conn *c)
{
        struct proto_writer *w = malloc(sizeof(*w));
        char err[512];
        int r;

        if (!w)
                return respond_error(c, 500, "out of memory", -1);
        pw_init(w, PROTO_REQUEST, 0, 0, "port_list");
        r = modules_call(PLUG_OPENVSWITCH, w, 0, on_vifs_reply, c, &c->call, err, sizeof(err));
        free(w);
        if (r < 0)
                respond_error(c, status_for_errno(r), err, r == -ENOTCONN || r == -EAGAIN ? PLUG_OPENVSWITCH : -1);
}


/* ---- security groups ---- */

static struct json_object *secgroup_json(const struct secgroup *g)
{
        struct json_object *o = secgroup_to_json(g), *ports = json_object_new_array();

        for (struct instance *i = instances_first(); i; i = i->next)
                for (size_t p = 0; p < i->n_ports; p++)
                        for (size_t k = 0; k < i->ports[p].n_secgroups; k++)
                                if (streq(i->ports[p].secgroups[k], g->id)) {
                                        struct json_object *e = json_object_new_object();
                                        json_object_object_add(e, "port_uuid",
                                                               json_object_new_string(i->ports[p].port_uuid));
                                        json_object_object_add(e, "instance", json_object_new_string(i->name));
                                        json_object_object_add(e, "filtered",
                                                               json_object_new_boolean(i->ports[p].filtered));
                                        json_object_array_add(ports, e);
                                }
        json_object_object_add(o, "ports", ports);
        return o;
}

static void handle_secgroup_list(struct api_conn *c)
{
        struct json_object *root = json_object_new_object(), *list = json_object_new_array();

        for (const struct secgroup *g = secgroups_first(); g; g = g->next)
                json_object_array_add(list, secgroup_json(g));
        json_object_object_add(root, "secgroups", list);
        respond_json(c, 200, root);
}

static void handle_secgroup_create(struct api_conn *c, const struct http_request *req)
{
        struct json_object *body = NULL;
        const char *name = NULL, *desc = "";
        struct secgroup *g;
        char err[256];
        int r;

        r = parse_body(req, &body, err, sizeof(err));
        if (r < 0)
                return respond_error(c, r == -EMSGSIZE ? 413 : 400, err, -1);
        json_object_object_foreach(body, key, val) {
                const char *str = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : NULL;
                if (streq(key, "name") && str)
                        name = str;
                else if (streq(key, "description") && str)
                        desc = str;
                else {
                        (void)snprintf(err, sizeof(err), "%.32s: %s", key,
                                       streq(key, "name") || streq(key, "description") ? "must be a string"
                                                                                     : "unknown field");
                        json_object_put(body);
                        return respond_error(c, 400, err, -1);
                }
        }
        if (!name || !secgroup_name_is_valid(name)) {
                json_object_put(body);
                return respond_error(c, 400, "name: required, 1..63 characters of A-Z a-z 0-9 . _ - (not starting "
                                             "with . or -, not a UUID)", -1);
        }
        r = secgroup_create(name, desc, &g);
        if (r < 0) {
                (void)snprintf(err, sizeof(err),
                               r == -EEXIST   ? "a security group named '%s' exists"
                               : r == -EINVAL ? "description: at most 255 printable characters (group '%s')"
                               : r == -ENOSPC ? "no room for group '%s': at most 256 security groups"
                                              : "cannot record security group '%s'",
                               name);
                json_object_put(body);
                return respond_error(c, status_for_errno(r), err, -1);
        }
        json_object_put(body);
        log_info("security group %s (%s) created", g->name, g->id);
        respond_json(c, 201, secgroup_json(g));
}

static void handle_secgroup_delete(struct api_conn *c, struct secgroup *g)
{
        char err[256], id[UUID_STR_LEN + 1], name[SECGROUP_NAME_MAX + 1];
        struct json_object *root;
        int r;

        for (struct instance *i = instances_first(); i; i = i->next)
                for (size_t p = 0; p < i->n_ports; p++)
                        for (size_t k = 0; k < i->ports[p].n_secgroups; k++)
                                if (streq(i->ports[p].secgroups[k], g->id)) {
                                        (void)snprintf(err, sizeof(err),
                                                       "security group '%s' is in use by port %s of instance %s",
                                                       g->name, i->ports[p].port_uuid, i->name);
                                        return respond_error(c, 409, err, -1);
                                }
        memcpy(id, g->id, sizeof(id));
        memcpy(name, g->name, sizeof(name));
        r = secgroup_delete(g);
        if (r == -EPERM)
                return respond_error(c, 409, "the group 'default' cannot be deleted", -1);
        if (r < 0)
                return respond_error(c, 500, "cannot record the change", -1);
        log_info("security group %s (%s) deleted", name, id);
        root = json_object_new_object();
        json_object_object_add(root, "deleted", json_object_new_string(id));
        respond_json(c, 200, root);
}

/* Put the change into the store (the kernel has it, or nothing needed it). */
static int sg_change_store(struct sg_change *ch, struct json_object **ret, char *err, size_t errlen)
{
        struct secgroup *g;
        size_t idx;
        int r;

        switch (ch->kind) {
        case SGC_RULE_ADD: {
                const struct secrule *stored;
                g = secgroup_find(ch->group_id);
                if (!g)
                        return snprintf(err, errlen, "the group was deleted meanwhile"), -ENOENT;
                r = secgroup_rule_add(g, &ch->rule, NULL, &stored);
                if (r < 0)
                        return snprintf(err, errlen, "cannot record the rule: %s", strerror(-r)), r;
                *ret = secrule_to_json(stored);
                log_info("security group %s: rule %s added", g->name, stored->uuid);
                return 0;
        }
        case SGC_RULE_DELETE:
                g = secgroup_find_rule(ch->rule_id, &idx);
                if (!g)
                        return snprintf(err, errlen, "the rule was deleted meanwhile"), -ENOENT;
                r = secgroup_rule_delete(g, idx);
                if (r < 0)
                        return snprintf(err, errlen, "cannot record the change: %s", strerror(-r)), r;
                *ret = json_object_new_object();
                json_object_object_add(*ret, "deleted", json_object_new_string(ch->rule_id));
                log_info("security group %s: rule %s deleted", g->name, ch->rule_id);
                return 0;
        case SGC_PORT_SET: {
                struct instance *inst;
                struct instance_port *ip = instance_find_port(ch->port_uuid, &inst), saved;
                if (!ip)
                        return snprintf(err, errlen, "the port's instance was deleted meanwhile"), -ENOENT;
                saved = *ip;
                memcpy(ip->secgroups, ch->groups, ch->n_groups * sizeof(ch->groups[0]));
                ip->n_secgroups = ch->n_groups;
                r = instance_save(inst);
                if (r < 0) {
                        *ip = saved;
                        return snprintf(err, errlen, "cannot record the change: %s", strerror(-r)), r;
                }
                *ret = instance_json(inst);
                log_info("port %s of instance %s: %zu security group(s) set", ch->port_uuid, inst->name, ch->n_groups);
                return 0;
        }
        }
        return -EINVAL;
}

static void sg_change_finish(struct sg_change *ch, int status, const char *error, int plug)
{
        struct api_conn *c = ch->c;
        struct json_object *result = NULL;
        char err[256];
        int r = status;

        if (status == 0) {
                r = sg_change_store(ch, &result, err, sizeof(err));
                if (r < 0) {
                        error = err;
                        plug = -1;
                        firewall_sync(); /* the kernel has a change the store does not: take it back */
                }
        }
        if (c) {
                c->change = NULL;
                if (r < 0)
                        respond_error(c, status_for_errno(r), error, plug);
                else {
                        struct json_object *root = json_object_new_object();
                        json_object_object_add(root, "result", result);
                        json_object_object_add(root, "applied", json_object_new_boolean(!ch->pending[0]));
                        if (ch->pending[0])
                                json_object_object_add(root, "pending", json_object_new_string(ch->pending));
                        result = NULL;
                        respond_json(c, ch->kind == SGC_RULE_ADD ? 201 : 200, root);
                }
        }
        json_object_put(result);
        free(ch);
}

static void on_sg_pushed(int status, const char *error, int plug, void *userdata)
{
        sg_change_finish(userdata, status, error, plug);
}

/* Send the change to the kernel when a filtered port needs it, then store it. */
static void sg_change_run(struct api_conn *c, struct sg_change *ch, const struct instance_port *port,
                          const struct secgroup *next)
{
        char err[512];
        int r, plug = -1;

        ch->c = c;
        if (port && !port->filtered) {
                r = 1;
                (void)snprintf(ch->pending, sizeof(ch->pending), "the port is unfiltered (%s)",
                               firewall_connected() ? "it is being re-plumbed" : "firewall-control is not connected");
        } else if (port)
                r = firewall_push_port(port, ch->groups, ch->n_groups, on_sg_pushed, ch, err, sizeof(err), &plug);
        else
                r = firewall_push_group(next, on_sg_pushed, ch, err, sizeof(err), &plug);
        if (r < 0 && (r == -ENOTCONN || r == -EAGAIN)) {
                /* Stored now; the firewall sync applies it when the module is back. */
                (void)snprintf(ch->pending, sizeof(ch->pending), "not in the kernel yet: %.480s", err);
                r = 1;
        }
        if (r < 0) {
                free(ch);
                return respond_error(c, status_for_errno(r), err, plug);
        }
        if (r == 1)
                return sg_change_finish(ch, 0, NULL, -1);
        c->change = ch;
}

static void handle_rule_add(struct api_conn *c, const struct http_request *req, struct secgroup *g)
{
        _cleanup_free_ struct secgroup *next = NULL;
        struct json_object *body = NULL;
        struct sg_change *ch;
        char err[256];
        int r;

        r = parse_body(req, &body, err, sizeof(err));
        if (r < 0)
                return respond_error(c, r == -EMSGSIZE ? 413 : 400, err, -1);
        ch = calloc(1, sizeof(*ch));
        next = malloc(sizeof(*next));
        if (!ch || !next) {
                free(ch);
                json_object_put(body);
                return respond_error(c, 500, "out of memory", -1);
        }
        ch->kind = SGC_RULE_ADD;
        r = secrule_from_json(body, &ch->rule, err, sizeof(err));
        json_object_put(body);
        if (r < 0) {
                free(ch);
                return respond_error(c, 400, err, -1);
        }
        for (size_t i = 0; i < g->n_rules; i++)
                if (secrule_equal(&g->rules[i], &ch->rule)) {
                        (void)snprintf(err, sizeof(err), "security group '%s' already has this rule (%s)", g->name,
                                       g->rules[i].uuid);
                        free(ch);
                        return respond_error(c, 409, err, -1);
                }
        if (g->n_rules >= SECGROUP_MAX_RULES) {
                (void)snprintf(err, sizeof(err), "security group '%s' has %d rules, the most a group holds", g->name,
                               SECGROUP_MAX_RULES);
                free(ch);
                return respond_error(c, 409, err, -1);
        }
        if ((ch->rule.uuid[0] && secgroup_find_rule(ch->rule.uuid, NULL)) ||
            (!ch->rule.uuid[0] && uuid_new_str(ch->rule.uuid) < 0)) {
                free(ch);
                return respond_error(c, 409, "id: a rule with this id exists", -1);
        }
        memcpy(ch->group_id, g->id, sizeof(ch->group_id));
        secgroup_with_rule(g, &ch->rule, SIZE_MAX, next);
        sg_change_run(c, ch, NULL, next);
}

static void handle_rule_delete(struct api_conn *c, const char *rule_id)
{
        _cleanup_free_ struct secgroup *next = NULL;
        struct secgroup *g;
        struct sg_change *ch;
        size_t idx;

        g = uuid_is_valid(rule_id) ? secgroup_find_rule(rule_id, &idx) : NULL;
        if (!g)
                return respond_error(c, 404, "no such security-group rule", -1);
        ch = calloc(1, sizeof(*ch));
        next = malloc(sizeof(*next));
        if (!ch || !next) {
                free(ch);
                return respond_error(c, 500, "out of memory", -1);
        }
        ch->kind = SGC_RULE_DELETE;
        memcpy(ch->rule_id, rule_id, sizeof(ch->rule_id));
        secgroup_with_rule(g, NULL, idx, next);
        sg_change_run(c, ch, NULL, next);
}

static void handle_port_secgroups(struct api_conn *c, const struct http_request *req, const char *port_uuid)
{
        struct json_object *body = NULL, *list = NULL;
        struct instance *inst = NULL;
        struct instance_port *ip = uuid_is_valid(port_uuid) ? instance_find_port(port_uuid, &inst) : NULL;
        struct sg_change *ch;
        char err[256];
        int r;

        if (!ip)
                return respond_error(c, 404, "no instance has this port", -1);
        if (inst->op) {
                (void)snprintf(err, sizeof(err), "instance %s is busy (%s); retry when it is done", inst->name,
                               inst->task);
                return respond_error(c, 409, err, -1);
        }
        r = parse_body(req, &body, err, sizeof(err));
        if (r < 0)
                return respond_error(c, r == -EMSGSIZE ? 413 : 400, err, -1);
        json_object_object_foreach(body, key, val) {
                if (!streq(key, "secgroups")) {
                        (void)snprintf(err, sizeof(err), "%.32s: unknown field", key);
                        json_object_put(body);
                        return respond_error(c, 400, err, -1);
                }
                list = val;
        }
        ch = calloc(1, sizeof(*ch));
        if (!ch) {
                json_object_put(body);
                return respond_error(c, 500, "out of memory", -1);
        }
        r = list ? instance_port_parse_secgroups(list, secgroup_resolve, ch->groups, &ch->n_groups, err, sizeof(err))
                 : (snprintf(err, sizeof(err), "secgroups: required (a list; [] leaves the port with no group: "
                                               "all traffic dropped)"), -EINVAL);
        json_object_put(body);
        if (r < 0) {
                free(ch);
                return respond_error(c, r == -ENOENT ? 404 : 400, err, -1);
        }
        ch->kind = SGC_PORT_SET;
        memcpy(ch->port_uuid, ip->port_uuid, sizeof(ch->port_uuid));
        sg_change_run(c, ch, ip, NULL);
}

/* ---- host, stats, metrics (observe.c) ---- */

static void on_observe_done(int status, const char *content_type, const char *body, void *userdata)
{
        struct api_conn *c = userdata;

        c->observe = NULL;
        conn_respond_typed(c, status, content_type, body);
}

static void handle_observe(struct api_conn *c, enum observe_kind kind, const char *instance_id)
{
        struct instance *inst = NULL;

        if (instance_id && !(inst = find_instance(instance_id)))
                return respond_error(c, 404, "no such instance", -1);
        if (observe_start(api.ctx.cfg, kind, inst, on_observe_done, c, &c->observe) < 0)
                respond_error(c, 500, "out of memory", -1);
}

/* ---- CPU pinning (process-control) ---- */

static void on_pin_reply(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;

        c->call = NULL;
        if (res->status < 0)
                return respond_error(c, status_for_errno(res->status), res->error,
                                     res->status == -ENOTCONN ? PLUG_PROCESS_CONTROL : -1);
        respond_json(c, 200, proto_value_to_json(res->body));
}

/* POST /v1/instances/<id>/pin {"cpus": "0-1", "priority"?: "-5"}: the instance
 * names the process; process-control finds it. GET .../affinity reads it back. */
static void handle_instance_pin(struct api_conn *c, const struct http_request *req, const char *id, bool pin)
{
        struct instance *inst = find_instance(id);
        struct json_object *body = NULL;
        struct proto_writer *w;
        char err[512];
        int r;

        if (!inst)
                return respond_error(c, 404, "no such instance", -1);
        if (!(w = malloc(sizeof(*w))))
                return respond_error(c, 500, "out of memory", -1);
        pw_init(w, PROTO_REQUEST, 0, 0, pin ? "instance_pin" : "instance_affinity");
        pw_str(w, "instance_uuid", inst->uuid);
        if (pin) {
                r = parse_body(req, &body, err, sizeof(err));
                if (r < 0) {
                        free(w);
                        return respond_error(c, r == -EMSGSIZE ? 413 : 400, err, -1);
                }
                json_object_object_foreach(body, key, val) {
                        if ((!streq(key, "cpus") && !streq(key, "priority")) || !json_object_is_type(val, json_type_string)) {
                                (void)snprintf(err, sizeof(err),
                                               "%.32s: unknown field or not a string (pin takes cpus and priority; "
                                               "the process is found from the instance, never given)", key);
                                json_object_put(body);
                                free(w);
                                return respond_error(c, 400, err, -1);
                        }
                        pw_str(w, key, json_object_get_string(val));
                }
                json_object_put(body);
        }
        r = modules_call(PLUG_PROCESS_CONTROL, w, 0, on_pin_reply, c, &c->call, err, sizeof(err));
        free(w);
        if (r < 0)
                respond_error(c, status_for_errno(r), err, r == -ENOTCONN || r == -EAGAIN ? PLUG_PROCESS_CONTROL : -1);
}

/* ---- routing ---- */

static void route(struct api_conn *c, const struct http_request *req)
{
        const char *p = req->path;
        bool get = streq(req->method, "GET"), post = streq(req->method, "POST");
        bool del = streq(req->method, "DELETE");

        if (streq(p, "/v1/status") && get)
                return handle_status(c);
        if (streq(p, "/v1/plugs/refresh") && post)
                return handle_plug_refresh(c);
        if (strncmp(p, "/v1/plugs/", 10) == 0 && post) {
                char name[64];
                const char *slash = strchr(p + 10, '/');
                size_t n = slash ? (size_t)(slash - (p + 10)) : 0;
                if (slash && n < sizeof(name)) {
                        memcpy(name, p + 10, n);
                        name[n] = '\0';
                        if (streq(slash, "/connect"))
                                return handle_plug_change(c, name, true);
                        if (streq(slash, "/disconnect"))
                                return handle_plug_change(c, name, false);
                        if (streq(slash, "/disconnecting"))
                                return handle_plug_disconnecting(c, name);
                }
        }
        if (streq(p, "/v1/ports")) {
                if (get)
                        return handle_port_list(c);
                if (post)
                        return handle_port_create(c, req);
                return respond_error(c, 405, "method not allowed", -1);
        }
        if (strncmp(p, "/v1/ports/", 10) == 0 && strlen(p + 10) == UUID_STR_LEN + 10 &&
            streq(p + 10 + UUID_STR_LEN, "/secgroups")) {
                char port[UUID_STR_LEN + 1];
                memcpy(port, p + 10, UUID_STR_LEN);
                port[UUID_STR_LEN] = '\0';
                if (post || streq(req->method, "PUT"))
                        return handle_port_secgroups(c, req, port);
                return respond_error(c, 405, "method not allowed", -1);
        }
        if (streq(p, "/v1/secgroups")) {
                if (get)
                        return handle_secgroup_list(c);
                if (post)
                        return handle_secgroup_create(c, req);
                return respond_error(c, 405, "method not allowed", -1);
        }
        if (strncmp(p, "/v1/secgroups/", 14) == 0) {
                char ref[80];
                const char *rest = p + 14, *slash = strchr(rest, '/');
                size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
                struct secgroup *g;
                if (n == 0 || n >= sizeof(ref))
                        return respond_error(c, 404, "no such security group", -1);
                memcpy(ref, rest, n);
                ref[n] = '\0';
                g = secgroup_find(ref);
                if (!g)
                        return respond_error(c, 404, "no such security group", -1);
                if (!slash && get)
                        return respond_json(c, 200, secgroup_json(g));
                if (!slash && del)
                        return handle_secgroup_delete(c, g);
                if (slash && streq(slash, "/rules") && post)
                        return handle_rule_add(c, req, g);
                return respond_error(c, 405, "method not allowed", -1);
        }
        if (strncmp(p, "/v1/secgroup-rules/", 19) == 0) {
                if (del)
                        return handle_rule_delete(c, p + 19);
                return respond_error(c, 405, "method not allowed", -1);
        }
        if (strncmp(p, "/v1/ports/", 10) == 0 && !strchr(p + 10, '/')) {
                if (get)
                        return handle_port_one(c, "tap_get", p + 10);
                if (del)
                        return handle_port_one(c, "tap_delete", p + 10);
                return respond_error(c, 405, "method not allowed", -1);
        }
        if (streq(p, "/v1/host") && get)
                return handle_observe(c, OBSERVE_HOST, NULL);
        if (streq(p, "/v1/stats") && get)
                return handle_observe(c, OBSERVE_STATS, NULL);
        if (strncmp(p, "/v1/stats/", 10) == 0 && get) {
                if (strlen(p + 10) == 0 || strlen(p + 10) > UUID_STR_LEN || strchr(p + 10, '/'))
                        return respond_error(c, 404, "no such instance", -1);
                return handle_observe(c, OBSERVE_STATS, p + 10);
        }
        if ((streq(p, "/metrics") || streq(p, "/v1/metrics")) && get)
                return handle_observe(c, OBSERVE_METRICS, NULL);
        if (streq(p, "/v1/domains") && get)
                return handle_domain_list(c);
        if (streq(p, "/v1/vifs") && get)
                return handle_vif_list(c);
        if (streq(p, "/v1/instances")) {
                if (get)
                        return handle_instance_list(c);
                if (post)
                        return handle_instance_create(c, req);
                return respond_error(c, 405, "method not allowed", -1);
        }
        if (strncmp(p, "/v1/instances/", 14) == 0) {
                char id[80];
                const char *rest = p + 14, *slash = strchr(rest, '/');
                size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
                if (n == 0 || n >= sizeof(id))
                        return respond_error(c, 404, "no such instance", -1);
                memcpy(id, rest, n);
                id[n] = '\0';
                if (!slash && get) {
                        struct instance *inst = find_instance(id);
                        if (!inst)
                                return respond_error(c, 404, "no such instance", -1);
                        return respond_json(c, 200, instance_json(inst));
                }
                if (!slash && del)
                        return handle_instance_op(c, req, id, "delete");
                if (slash && post && streq(slash, "/pin"))
                        return handle_instance_pin(c, req, id, true);
                if (slash && get && streq(slash, "/affinity"))
                        return handle_instance_pin(c, req, id, false);
                if (slash && post && (streq(slash, "/stop") || streq(slash, "/start") || streq(slash, "/reboot")))
                        return handle_instance_op(c, req, id, slash + 1);
                return respond_error(c, 405, "method not allowed", -1);
        }
        respond_error(c, 404, "no such endpoint", -1);
}

/* Parse and handle the next buffered request, if any. */
static void conn_process(struct api_conn *c)
{
        struct http_request req;
        size_t consumed;
        int r;

        if (c->busy || c->out)
                return;
        r = http_parse_request(c->in, c->in_len, &req, &consumed);
        if (r == -EAGAIN) {
                conn_update_events(c);
                return;
        }
        c->busy = true;
        if (r < 0) {
                c->keep_alive = false;
                c->consumed = c->in_len;
                return respond_error(c, http_status_for_error(r), "malformed HTTP request", -1);
        }
        c->keep_alive = req.keep_alive;
        c->consumed = consumed;
        route(c, &req);
        /* The handler either responded or left a module call pending. */
        conn_update_events(c);
}

static int on_conn_idle(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct api_conn *c = userdata;

        (void)s;
        (void)usec;
        if (c->busy) /* working for it: the module call has its own timeout */
                return sd_event_source_set_time_relative(c->idle, API_IDLE_TIMEOUT_USEC) < 0 ? 0 :
                       sd_event_source_set_enabled(c->idle, SD_EVENT_ONESHOT);
        conn_free(c);
        return 0;
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct api_conn *c = userdata;

        (void)s;
        (void)sd_event_source_set_time_relative(c->idle, API_IDLE_TIMEOUT_USEC);
        (void)sd_event_source_set_enabled(c->idle, SD_EVENT_ONESHOT);
        if (c->out && (revents & EPOLLOUT)) {
                ssize_t k = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0 && errno != EAGAIN && errno != EINTR) {
                        conn_free(c);
                        return 0;
                }
                if (k > 0)
                        c->out_off += (size_t)k;
                if (c->out_off < c->out_len)
                        return 0;
                c->out = (free(c->out), NULL);
                c->busy = false;
                if (!c->keep_alive) {
                        conn_free(c);
                        return 0;
                }
                memmove(c->in, c->in + c->consumed, c->in_len - c->consumed);
                c->in_len -= c->consumed;
                c->consumed = 0;
                conn_process(c);
                return 0;
        }
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) {
                size_t cap = HTTP_MAX_HEAD + HTTP_MAX_BODY;
                ssize_t k;
                if (c->busy) {
                        /* Client went away while we were working: drop everything. */
                        if (revents & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))
                                conn_free(c);
                        return 0;
                }
                if (c->in_len >= cap) {
                        c->busy = true;
                        c->keep_alive = false;
                        respond_error(c, 413, "request too large", -1);
                        return 0;
                }
                k = recv(fd, c->in + c->in_len, cap - c->in_len, MSG_DONTWAIT);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (k <= 0) {
                        conn_free(c);
                        return 0;
                }
                c->in_len += (size_t)k;
                conn_process(c);
        }
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct api_conn *c;
        int cfd;

        (void)s;
        (void)revents;
        (void)userdata;
        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        if (api.n_conns >= API_MAX_CONNECTIONS) {
                static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10 * 1000000ULL, 5);
                log_ratelimited(&rl, LOG_LVL_WARN, "api: too many connections; refusing one");
                safe_close(cfd);
                return 0;
        }
        c = calloc(1, sizeof(*c));
        if (c)
                c->in = malloc(HTTP_MAX_HEAD + HTTP_MAX_BODY);
        if (!c || !c->in || sd_event_add_io(api.event, &c->io, cfd, EPOLLIN | EPOLLRDHUP, on_conn_io, c) < 0 ||
            sd_event_add_time_relative(api.event, &c->idle, CLOCK_MONOTONIC, API_IDLE_TIMEOUT_USEC, 1000000,
                                       on_conn_idle, c) < 0) {
                if (c) {
                        sd_event_source_disable_unref(c->io);
                        free(c->in);
                }
                free(c);
                safe_close(cfd);
                return 0;
        }
        c->fd = cfd;
        c->next = api.conns;
        api.conns = c;
        api.n_conns++;
        return 0;
}

int api_start(sd_event *event, int listen_fd, const struct api_context *ctx)
{
        int r;

        api.event = event;
        api.ctx = *ctx;
        api.listen_fd = listen_fd;
        r = sd_event_add_io(event, &api.listen_io, listen_fd, EPOLLIN, on_accept, NULL);
        if (r < 0) {
                api.listen_fd = safe_close(api.listen_fd);
                return r;
        }
        return 0;
}

void api_stop(void)
{
        while (api.conns)
                conn_free(api.conns);
        api.listen_io = sd_event_source_disable_unref(api.listen_io);
        api.listen_fd = safe_close(api.listen_fd);
}
