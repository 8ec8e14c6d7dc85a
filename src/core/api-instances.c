/* api-instances.c - instances (boot, show, list, delete, stop/start/reboot),
 * their CPU pinning, and the host/stats/metrics views that join the store
 * with the observe modules. Operations go to lifecycle.c; ?wait=1 answers
 * when the operation ends, else 202 at once. */
#include "api-internal.h"

#include "firewall.h"
#include "images.h"
#include "lifecycle.h"
#include "observe.h"
#include "procctl-protocol.h"
#include "secgroups.h"

#include <assert.h>

struct instance *api_find_instance(const struct api_conn *c, const char *id)
{
        const struct instance_store *store = api_context_of(c)->instances;

        assert(id);
        return uuid_is_valid(id) ? instance_find(store, id) : instance_find_by_name(store, id);
}

/* The API view of an instance: the store's, with each port's group names
 * and, for an unfiltered port, why and what to do about it. */
struct json_object *api_instance_json(const struct api_conn *c, const struct instance *inst)
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
                        const struct secgroup *g = secgroup_find(api_context_of(c)->groups, inst->ports[i].secgroups[k]);
                        json_object_array_add(names, json_object_new_string(g ? g->name : "(deleted)"));
                }
                json_object_object_add(p, "secgroup_names", names);
                if (!inst->ports[i].filtered)
                        json_object_object_add(p, "unfiltered_reason",
                                               json_object_new_string(firewall_connected(api_context_of(c)->firewall)
                                                                              ? "booted before firewall-control was "
                                                                                "connected; being re-plumbed"
                                                                              : "firewall-control is not connected"));
                if (!inst->ports[i].filtered && !firewall_connected(api_context_of(c)->firewall) && fix[0])
                        json_object_object_add(p, "fix", json_object_new_string(fix));
        }
        return o;
}

struct instance *api_instance_arg(struct api_conn *c, const char *id)
{
        struct instance *inst = strlen(id) < API_ID_MAX ? api_find_instance(c, id) : NULL;

        if (!inst)
                api_respond_error(c, 404, "no such instance", -1);
        return inst;
}

static void on_instance_done(int status, const char *error, int plug, struct instance *inst, void *userdata)
{
        struct api_conn *c = userdata;
        struct json_object *root;

        c->waiter = NULL;
        if (status < 0)
                return api_respond_error(c, status == -ECANCELED ? 503 : api_status_for_errno(status), error, plug);
        if (inst)
                return api_respond_json(c, 200, api_instance_json(c, inst));
        root = json_object_new_object();
        json_object_object_add(root, "deleted", json_object_new_string(c->port_uuid));
        api_respond_json(c, 200, root);
}

static bool port_in_use(const struct api_conn *c, const char *port_uuid)
{
        return instance_find_port(api_context_of(c)->instances, port_uuid, NULL) != NULL;
}

static void handle_instance_create(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        const struct nova_config *cfg = api_context_of(c)->cfg;
        struct json_object *body = NULL;
        struct instance tmpl, *inst = NULL;
        bool wait = api_query_wait(req);
        char err[512];
        int r, plug;

        (void)a;
        if (api_read_body(c, req, &body) < 0)
                return;
        r = instance_parse_boot_request(body, secgroup_resolve, api_context_of(c)->groups, images_resolve,
                                        api_context_of(c)->images, cfg->cpu_set, &tmpl, err, sizeof(err));
        if (r == 0) {
                r = instance_apply_network_mtu(body, cfg->network_mtu, &tmpl, err, sizeof(err));
                if (r < 0)
                        instance_template_clear(&tmpl);
        }
        json_object_put(body);
        if (r < 0)
                return api_respond_error(c, 400, err, -1);
        for (size_t i = 0; i < tmpl.n_ports; i++)
                if (port_in_use(c, tmpl.ports[i].port_uuid)) {
                        /* the message first: clearing the template frees its ports */
                        (void)snprintf(err, sizeof(err), "port %s belongs to another instance", tmpl.ports[i].port_uuid);
                        instance_template_clear(&tmpl);
                        return api_respond_error(c, 409, err, -1);
                }
        r = lifecycle_boot(api_context_of(c)->lifecycle, &tmpl, wait ? on_instance_done : NULL, c, &c->waiter, &inst, err, sizeof(err), &plug);
        instance_template_clear(&tmpl); /* the store has its own copy */
        if (r < 0)
                return api_respond_error(c, api_status_for_errno(r), err, plug);
        if (!wait)
                api_respond_json(c, 202, api_instance_json(c, inst));
}

/* delete (op < 0) or a power action. */
static void instance_op(struct api_conn *c, const struct http_request *req, const char *id, int action)
{
        struct instance *inst;
        bool wait = api_query_wait(req);
        char err[512];
        int r, plug;

        if (!id[0] || strlen(id) >= API_ID_MAX)
                return api_respond_error(c, 404, "no such instance", -1);
        inst = api_find_instance(c, id);
        if (!inst) {
                (void)snprintf(err, sizeof(err), "no instance '%.64s'", id);
                return api_respond_error(c, 404, err, -1);
        }
        memcpy(c->port_uuid, inst->uuid, sizeof(c->port_uuid)); /* for the "deleted" answer */
        if (action < 0)
                r = lifecycle_delete(api_context_of(c)->lifecycle, inst, wait ? on_instance_done : NULL, c, &c->waiter, err, sizeof(err), &plug);
        else
                r = lifecycle_power(api_context_of(c)->lifecycle, inst, (enum power_action)action, wait ? on_instance_done : NULL, c, &c->waiter, err,
                                    sizeof(err), &plug);
        if (r < 0)
                return api_respond_error(c, api_status_for_errno(r), err, plug);
        if (!wait)
                api_respond_json(c, 202, api_instance_json(c, inst));
}

static void handle_instance_delete(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        instance_op(c, req, a->arg[0], -1);
}

static void handle_instance_stop(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        instance_op(c, req, a->arg[0], POWER_STOP);
}

static void handle_instance_start(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        instance_op(c, req, a->arg[0], POWER_START);
}

static void handle_instance_reboot(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        instance_op(c, req, a->arg[0], POWER_REBOOT);
}

static void handle_instance_show(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        struct instance *inst = api_instance_arg(c, a->arg[0]);

        (void)req;
        if (inst)
                api_respond_json(c, 200, api_instance_json(c, inst));
}

static void handle_instance_list(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        static const char start[] = "{\"instances\":[", end[] = "]}";
        struct api_body b;

        (void)req;
        (void)a;
        /* One instance's tree at a time, its text added to the response as it is made. */
        api_body_init(&b);
        api_body_add(&b, start, strlen(start));
        for (struct instance *i = instances_first(api_context_of(c)->instances); i; i = i->next) {
                if (i != instances_first(api_context_of(c)->instances))
                        api_body_add(&b, ",", 1);
                api_body_add_json(&b, api_instance_json(c, i));
        }
        api_body_add(&b, end, strlen(end));
        api_respond_body(c, 200, "application/json", &b);
}

/* Any other method or sub-path of /v1/instances/<id>...: 404 for an unusable id, else 405. */
static void handle_instance_other(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        size_t n = strcspn(a->arg[0], "/");

        (void)req;
        if (n == 0 || n >= API_ID_MAX)
                return api_respond_error(c, 404, "no such instance", -1);
        api_respond_error(c, 405, "method not allowed", -1);
}

/* ---- CPU pinning (process-control) ---- */

static void on_pin_reply(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;

        c->call = NULL;
        if (res->status < 0)
                return api_respond_module_error(c, res, PLUG_PROCESS_CONTROL);
        api_respond_json(c, 200, proto_value_to_json(res->body));
}

/* The fields of a pin body (cpus, priority: strings) into w: 0, or -EINVAL after answering 400. */
static int pin_fields(struct api_conn *c, struct json_object *body, struct proto_writer *w)
{
        char err[256];

        json_object_object_foreach(body, key, val) {
                if ((!streq(key, "cpus") && !streq(key, "priority")) || !json_object_is_type(val, json_type_string)) {
                        (void)snprintf(err, sizeof(err),
                                       "%.32s: unknown field or not a string (pin takes cpus and priority; "
                                       "the process is found from the instance, never given)", key);
                        api_respond_error(c, 400, err, -1);
                        return -EINVAL;
                }
                pw_str(w, key, json_object_get_string(val));
        }
        return 0;
}

/* POST /v1/instances/<id>/pin {"cpus": "0-1", "priority"?: "-5"}: the instance
 * names the process; process-control finds it. GET .../affinity reads it back. */
static void instance_pin(struct api_conn *c, const struct http_request *req, const char *id, bool pin)
{
        _cleanup_free_ struct proto_writer *w = NULL;
        struct instance *inst = api_instance_arg(c, id);
        struct json_object *body = NULL;
        int r;

        if (!inst)
                return;
        if (!(w = malloc(sizeof(*w))))
                return api_respond_error(c, 500, "out of memory", -1);
        module_request_init(w, pin ? (struct module_ep)EP_PROCCTL(INSTANCE_PIN)
                                   : (struct module_ep)EP_PROCCTL(INSTANCE_AFFINITY));
        pw_str(w, "instance_uuid", inst->uuid);
        if (pin) {
                if (api_read_body(c, req, &body) < 0)
                        return;
                r = pin_fields(c, body, w);
                json_object_put(body);
                if (r < 0)
                        return;
        }
        api_call_module(c, PLUG_PROCESS_CONTROL, w, on_pin_reply);
}

static void handle_instance_pin(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        instance_pin(c, req, a->arg[0], true);
}

static void handle_instance_affinity(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        instance_pin(c, req, a->arg[0], false);
}

/* ---- host, stats, metrics (observe.c) ---- */

static void on_observe_done(int status, const char *content_type, const char *body, void *userdata)
{
        struct api_conn *c = userdata;

        c->observe = NULL;
        api_respond_typed(c, status, content_type, body);
}

static void observe(struct api_conn *c, enum observe_kind kind, const char *instance_id)
{
        struct instance *inst = NULL;

        if (instance_id && !(inst = api_find_instance(c, instance_id)))
                return api_respond_error(c, 404, "no such instance", -1);
        if (observe_start(api_context_of(c)->cfg, api_context_of(c)->modules, api_context_of(c)->instances, api_context_of(c)->placement, kind, inst, on_observe_done, c, &c->observe) < 0)
                api_respond_error(c, 500, "out of memory", -1);
}

static void handle_host(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        (void)a;
        observe(c, OBSERVE_HOST, NULL);
}

static void handle_stats(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        (void)a;
        observe(c, OBSERVE_STATS, NULL);
}

static void handle_stats_one(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        const char *id = a->arg[0];

        (void)req;
        if (!id[0] || strlen(id) > UUID_STR_LEN || strchr(id, '/'))
                return api_respond_error(c, 404, "no such instance", -1);
        observe(c, OBSERVE_STATS, id);
}

static void handle_metrics(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        (void)a;
        observe(c, OBSERVE_METRICS, NULL);
}

/* ---- console: the serial log's tail, read by the libvirt module through the storage API ---- */

static void on_console(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;
        struct json_object *root, *text = NULL;
        const struct proto_value *chunks;
        size_t len = 0;
        char *all;

        c->call = NULL;
        if (res->status < 0)
                return api_respond_module_error(c, res, PLUG_LIBVIRT);
        chunks = proto_get(res->body, "text");
        for (const struct proto_value *e = chunks ? chunks->child : NULL; e; e = e->next)
                len += e->type == PV_STR ? e->count + 1 : 0;
        all = malloc(len + 1);
        if (!all)
                return api_respond_error(c, 500, "out of memory", -1);
        len = 0;
        for (const struct proto_value *e = chunks ? chunks->child : NULL; e; e = e->next)
                if (e->type == PV_STR) { /* one item per line */
                        memcpy(all + len, e->v.s, e->count);
                        len += e->count;
                        if (e->next)
                                all[len++] = '\n';
                }
        all[len] = '\0';
        text = json_object_new_string_len(all, (int)len);
        free(all);
        root = json_object_new_object();
        json_object_object_add(root, "text", text);
        json_object_object_add(root, "size", json_object_new_uint64(proto_get_u64(res->body, "size", 0)));
        json_object_object_add(root, "offset", json_object_new_uint64(proto_get_u64(res->body, "offset", 0)));
        api_respond_json(c, 200, root);
}

/* GET /v1/instances/{id}/console?tail=BYTES (default 16 KiB, at most LIBVIRT_CONSOLE_MAX_BYTES). */
static void handle_instance_console(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        _cleanup_free_ struct proto_writer *w = NULL;
        struct instance *inst = api_instance_arg(c, a->arg[0]);
        uint64_t tail = 16 * 1024;
        const char *q;

        if (!inst)
                return;
        if (!inst->image_uuid[0])
                return api_respond_error(c, 409, "a diskless instance has no console log (boot it with an image)", -1);
        q = strstr(req->query, "tail=");
        if (q && (q == req->query || q[-1] == '&')) {
                char *end;
                errno = 0;
                tail = strtoull(q + 5, &end, 10);
                if (errno || end == q + 5 || (*end && *end != '&') || tail < 1 || tail > LIBVIRT_CONSOLE_MAX_BYTES)
                        return api_respond_error(c, 400, "tail: bytes, 1..49152", -1);
        }
        w = malloc(sizeof(*w));
        if (!w)
                return api_respond_error(c, 500, "out of memory", -1);
        module_request_init(w, (struct module_ep)EP_LIBVIRT(CONSOLE_READ));
        pw_str(w, "instance_uuid", inst->uuid);
        pw_u64(w, "tail_bytes", tail);
        api_call_module(c, PLUG_LIBVIRT, w, on_console);
}

const struct api_route api_instance_routes[] = {
        { "GET", "/v1/instances", handle_instance_list },
        { "POST", "/v1/instances", handle_instance_create },
        { NULL, "/v1/instances", api_method_not_allowed },
        { "GET", "/v1/instances/{id}", handle_instance_show },
        { "DELETE", "/v1/instances/{id}", handle_instance_delete },
        { "POST", "/v1/instances/{id}/stop", handle_instance_stop },
        { "POST", "/v1/instances/{id}/start", handle_instance_start },
        { "POST", "/v1/instances/{id}/reboot", handle_instance_reboot },
        { "POST", "/v1/instances/{id}/pin", handle_instance_pin },
        { "GET", "/v1/instances/{id}/affinity", handle_instance_affinity },
        { "GET", "/v1/instances/{id}/console", handle_instance_console },
        { NULL, "/v1/instances/*", handle_instance_other },
        { "GET", "/v1/host", handle_host },
        { "GET", "/v1/stats", handle_stats },
        { "GET", "/v1/stats/*", handle_stats_one },
        { "GET", "/metrics", handle_metrics },
        { "GET", "/v1/metrics", handle_metrics },
        { NULL, NULL, NULL },
};
