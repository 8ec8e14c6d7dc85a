/* api-migrate.c - live migration's three steps (docs/MIGRATION.md):
 *   GET  /v1/instances/{id}/migration   source: the instance as the destination is prepared from
 *   POST /v1/migrations                 destination: prepare (body: that description)
 *   POST /v1/instances/{id}/migrate     source: {to, host, pool?, timeout_s?, bandwidth_mib?}
 *   GET  /v1/instances/{id}/migrate     source: the running job's progress (the libvirt module's)
 *   POST /v1/instances/{id}/migrate/abort  source: abort the running job
 *   POST /v1/migrations/{id}/finish     destination: record the arrived instance
 *   POST /v1/migrations/{id}/abort      destination: remove what prepare made
 * ?wait=1 answers when the operation ends, else 202 at once. */
#include "api-internal.h"

#include "images.h"
#include "lifecycle.h"
#include "libvirt-protocol.h"
#include "ovs-protocol.h"
#include "secgroups.h"

#define MIGRATE_DEFAULT_TIMEOUT_S 600

/* Ask the openvswitch module for this host's OVN chassis (port_list's "chassis", one port's
 * page: the name is the reply's, not a port's); cb gets the answer. 0, or -errno when the module
 * cannot be asked (not connected): the caller goes on without the name. */
static int ask_chassis(struct api_conn *c, module_call_cb cb)
{
        _cleanup_free_ struct proto_writer *w = malloc(sizeof(*w));
        char err[256];

        if (!w)
                return -ENOMEM;
        module_request_init(w, (struct module_ep)EP_OVS(PORT_LIST));
        pw_u64(w, "limit", 1);
        return modules_call(api_context_of(c)->modules, PLUG_OPENVSWITCH, w, 0, cb, c, &c->call, err, sizeof(err));
}

/* The chassis a port_list reply names, NULL when it names none (no ovn, no valid system-id, an error). */
static const char *reply_chassis(const struct module_result *res)
{
        const char *ch = res->status == 0 && res->body ? proto_get_str(res->body, "chassis", NULL) : NULL;

        return ch && ovn_chassis_name_is_valid(ch) ? ch : NULL;
}

/* {"instance": the stored form, "secgroups": {id: name} of its ports' groups, "source_chassis":
 * this host's OVN chassis when known}: security groups are each host's own (no control plane
 * shares their ids), so the destination finds a group by the source's id, else by its name
 * there; the chassis names the source in the binding the destination's prepare asks for. */
static void respond_description(struct api_conn *c, const struct instance *inst, const char *chassis)
{
        struct json_object *root, *names;

        root = json_object_new_object();
        names = json_object_new_object();
        for (size_t p = 0; p < inst->n_ports; p++)
                for (size_t k = 0; k < inst->ports[p].n_secgroups; k++) {
                        const struct secgroup *g = secgroup_find(api_context_of(c)->groups, inst->ports[p].secgroups[k]);
                        if (g)
                                json_object_object_add(names, g->id, json_object_new_string(g->name));
                }
        json_object_object_add(root, "instance", instance_stored_json(inst));
        json_object_object_add(root, "secgroups", names);
        if (chassis)
                json_object_object_add(root, "source_chassis", json_object_new_string(chassis));
        api_respond_json(c, 200, root);
}

static void on_description_chassis(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;
        const struct instance *inst = instance_find(api_context_of(c)->instances, c->port_uuid);

        c->call = NULL;
        if (!inst)
                return api_respond_error(c, 404, "the instance was removed meanwhile", -1);
        respond_description(c, inst, reply_chassis(res));
}

static void handle_description(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        struct instance *inst = api_instance_arg(c, a->arg[0]);

        (void)req;
        if (!inst)
                return;
        memcpy(c->port_uuid, inst->uuid, sizeof(c->port_uuid));
        if (!api_context_of(c)->cfg->ovn || inst->n_ports == 0 || ask_chassis(c, on_description_chassis) < 0)
                respond_description(c, inst, NULL);
}

/* Each port's groups as this host has them: by id, else by the source's name for it. 0, or
 * -ENOENT with err naming the group missing here. */
static int map_groups(struct api_conn *c, struct instance *tmpl, struct json_object *names, char *err, size_t errlen)
{
        const struct secgroup_store *groups = api_context_of(c)->groups;

        for (size_t p = 0; p < tmpl->n_ports; p++)
                for (size_t k = 0; k < tmpl->ports[p].n_secgroups; k++) {
                        char *id = tmpl->ports[p].secgroups[k];
                        struct json_object *v;
                        const struct secgroup *g = secgroup_find(groups, id);

                        if (g && streq(g->id, id))
                                continue;
                        g = NULL;
                        if (names && json_object_object_get_ex(names, id, &v) && json_object_is_type(v, json_type_string) &&
                            secgroup_name_is_valid(json_object_get_string(v)))
                                g = secgroup_find(groups, json_object_get_string(v));
                        if (!g) {
                                (void)snprintf(err, errlen, "port %s: security group %s (%s on the source) is not on this host: "
                                               "create it here first, so the port is filtered before the switch-over",
                                               tmpl->ports[p].port_uuid, id,
                                               names && json_object_object_get_ex(names, id, &v) ? json_object_get_string(v) : "?");
                                return -ENOENT;
                        }
                        (void)strscpy(id, g->id, UUID_STR_LEN + 1);
                }
        return 0;
}

static void on_done(int status, const char *error, int plug, struct instance *inst, void *userdata)
{
        struct api_conn *c = userdata;
        struct json_object *root;
        struct lifecycle_migration_report m;

        c->waiter = NULL;
        if (status < 0)
                return api_respond_error(c, status == -ECANCELED ? 503 : api_status_for_errno(status), error, plug);
        if (inst)
                return api_respond_json(c, 200, api_instance_json(c, inst));
        /* the instance left (migrated, or the prepare aborted) */
        root = json_object_new_object();
        json_object_object_add(root, "removed", json_object_new_string(c->port_uuid));
        lifecycle_last_migration(api_context_of(c)->lifecycle, &m);
        if (streq(m.instance_uuid, c->port_uuid)) {
                json_object_object_add(root, "elapsed_ms", json_object_new_int64((int64_t)m.elapsed_ms));
                json_object_object_add(root, "data_total", json_object_new_int64((int64_t)m.data_total));
                json_object_object_add(root, "data_processed", json_object_new_int64((int64_t)m.data_processed));
                json_object_object_add(root, "disk_total", json_object_new_int64((int64_t)m.disk_total));
                json_object_object_add(root, "disk_processed", json_object_new_int64((int64_t)m.disk_processed));
                json_object_object_add(root, "memory_iteration", json_object_new_int64((int64_t)m.memory_iteration));
                if (m.downtime_ms >= 0)
                        json_object_object_add(root, "downtime_ms", json_object_new_int64(m.downtime_ms));
        }
        api_respond_json(c, 200, root);
}

/* The prepared instance, and with OVN "ovn": {source_chassis, destination_chassis (this host's),
 * requested_chassis "SOURCE,DESTINATION" when both are known}: the binding the control plane
 * writes before the switch-over. */
static void on_prepared_chassis(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;
        const struct instance *inst = instance_find(api_context_of(c)->instances, c->port_uuid);
        const char *here = reply_chassis(res);
        struct json_object *root, *ovn;
        char both[2 * OVN_CHASSIS_MAX + 2];

        c->call = NULL;
        if (!inst)
                return api_respond_error(c, 409, "the prepared instance was removed meanwhile (aborted?)", -1);
        root = api_instance_json(c, inst);
        ovn = json_object_new_object();
        if (c->chassis[0])
                json_object_object_add(ovn, "source_chassis", json_object_new_string(c->chassis));
        if (here)
                json_object_object_add(ovn, "destination_chassis", json_object_new_string(here));
        if (c->chassis[0] && here) {
                (void)snprintf(both, sizeof(both), "%s,%s", c->chassis, here);
                json_object_object_add(ovn, "requested_chassis", json_object_new_string(both));
        }
        json_object_object_add(root, "ovn", ovn);
        api_respond_json(c, 200, root);
}

static void on_prepared(int status, const char *error, int plug, struct instance *inst, void *userdata)
{
        struct api_conn *c = userdata;
        static const struct module_result none = { .status = -ENOTCONN };

        if (status < 0 || !inst || !api_context_of(c)->cfg->ovn)
                return on_done(status, error, plug, inst, userdata);
        c->waiter = NULL;
        if (ask_chassis(c, on_prepared_chassis) < 0)
                on_prepared_chassis(&none, c);
}

static void handle_prepare(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        const struct api_context *ctx = api_context_of(c);
        struct json_object *body = NULL, *desc = NULL, *names = NULL, *v;
        struct instance tmpl, *inst = NULL;
        bool wait = api_query_wait(req);
        char err[512], why[256], image_id[UUID_STR_LEN + 1];
        const char *text;
        int r, plug;

        (void)a;
        if (api_read_body(c, req, &body) < 0)
                return;
        if (!json_object_object_get_ex(body, "instance", &desc)) {
                json_object_put(body);
                return api_respond_error(c, 400, "not a migration description (GET /v1/instances/ID/migration on the source)", -1);
        }
        c->chassis[0] = '\0';
        if (json_object_object_get_ex(body, "source_chassis", &v)) {
                if (!json_object_is_type(v, json_type_string) || !ovn_chassis_name_is_valid(json_object_get_string(v))) {
                        json_object_put(body);
                        return api_respond_error(c, 400, "source_chassis: an OVN chassis name (1..64 of A-Z a-z 0-9 . _ : -)",
                                                 -1);
                }
                (void)strscpy(c->chassis, json_object_get_string(v), sizeof(c->chassis));
        }
        text = json_object_to_json_string_ext(desc, JSON_C_TO_STRING_PLAIN);
        r = instance_parse_stored(text, strlen(text), &tmpl, why, sizeof(why));
        if (r == 0) {
                (void)json_object_object_get_ex(body, "secgroups", &names);
                r = map_groups(c, &tmpl, names, err, sizeof(err));
                if (r < 0) {
                        json_object_put(body);
                        instance_template_clear(&tmpl);
                        return api_respond_error(c, 409, err, -1);
                }
        }
        json_object_put(body);
        if (r < 0) {
                (void)snprintf(err, sizeof(err), "not an instance description (GET /v1/instances/ID/migration on the source): %s",
                               why);
                return api_respond_error(c, 400, err, -1);
        }
        if (tmpl.image_uuid[0] && images_resolve(ctx->images, tmpl.image_uuid, image_id) < 0) {
                (void)snprintf(err, sizeof(err), "image %s is not here: import it first with the same id "
                               "(nova-hypervisor image import NAME FILE --id %s)", tmpl.image_uuid, tmpl.image_uuid);
                instance_template_clear(&tmpl);
                return api_respond_error(c, 409, err, -1);
        }
        for (struct instance *i = instances_first(ctx->instances); i; i = i->next)
                for (size_t p = 0; p < i->n_ports; p++)
                        for (size_t q = 0; q < tmpl.n_ports; q++)
                                if (streq(i->ports[p].port_uuid, tmpl.ports[q].port_uuid)) {
                                        (void)snprintf(err, sizeof(err), "port %s belongs to instance %s here",
                                                       tmpl.ports[q].port_uuid, i->name);
                                        instance_template_clear(&tmpl);
                                        return api_respond_error(c, 409, err, -1);
                                }
        memcpy(c->port_uuid, tmpl.uuid, sizeof(c->port_uuid)); /* before: an empty plan answers at once */
        r = lifecycle_migrate_prepare(ctx->lifecycle, &tmpl, wait ? on_prepared : NULL, c, &c->waiter, &inst, err, sizeof(err),
                                      &plug);
        instance_template_clear(&tmpl);
        if (r < 0)
                return api_respond_error(c, api_status_for_errno(r), err, plug);
        if (!wait)
                api_respond_json(c, 202, api_instance_json(c, inst));
}

static int parse_target(struct json_object *body, struct lifecycle_migrate_target *t, char *err, size_t errlen)
{
        struct json_object *v;

        memset(t, 0, sizeof(*t));
        t->timeout_s = MIGRATE_DEFAULT_TIMEOUT_S;
        json_object_object_foreach(body, key, val) {
                (void)val;
                if (!streq(key, "to") && !streq(key, "host") && !streq(key, "pool") && !streq(key, "timeout_s") &&
                    !streq(key, "bandwidth_mib"))
                        return snprintf(err, errlen, "%.32s: unknown field", key), -EINVAL;
        }
        if (!json_object_object_get_ex(body, "to", &v) || !json_object_is_type(v, json_type_string) ||
            !migrate_dest_uri_is_valid(json_object_get_string(v)))
                return snprintf(err, errlen, "to: the destination's libvirt URI: qemu+tcp://HOST/system, "
                                             "qemu+tls://HOST/system or qemu+unix:///system?socket=/PATH"), -EINVAL;
        (void)strscpy(t->dest_uri, json_object_get_string(v), sizeof(t->dest_uri));
        if (!json_object_object_get_ex(body, "host", &v) || !json_object_is_type(v, json_type_string) ||
            !migrate_host_is_valid(json_object_get_string(v)))
                return snprintf(err, errlen, "host: the destination's IP address for the migration's data"), -EINVAL;
        (void)strscpy(t->migrate_host, json_object_get_string(v), sizeof(t->migrate_host));
        if (json_object_object_get_ex(body, "pool", &v)) {
                if (!json_object_is_type(v, json_type_string) || !pool_name_is_valid(json_object_get_string(v)))
                        return snprintf(err, errlen, "pool: the destination's storage pool name"), -EINVAL;
                (void)strscpy(t->dest_pool, json_object_get_string(v), sizeof(t->dest_pool));
        }
        if (json_object_object_get_ex(body, "timeout_s", &v)) {
                if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
                    json_object_get_int64(v) > LIBVIRT_MAX_MIGRATE_S)
                        return snprintf(err, errlen, "timeout_s: 1..%d", LIBVIRT_MAX_MIGRATE_S), -EINVAL;
                t->timeout_s = (uint64_t)json_object_get_int64(v);
        }
        if (json_object_object_get_ex(body, "bandwidth_mib", &v)) {
                if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
                    json_object_get_int64(v) > (1 << 20))
                        return snprintf(err, errlen, "bandwidth_mib: 1..1048576 (MiB/s)"), -EINVAL;
                t->bandwidth_mib = (uint64_t)json_object_get_int64(v);
        }
        return 0;
}

static void handle_migrate(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        const struct api_context *ctx = api_context_of(c);
        struct lifecycle_migrate_target t;
        struct json_object *body = NULL;
        struct instance *inst;
        bool wait = api_query_wait(req);
        char err[512];
        int r, plug;

        inst = api_instance_arg(c, a->arg[0]);
        if (!inst || api_read_body(c, req, &body) < 0)
                return;
        r = parse_target(body, &t, err, sizeof(err));
        json_object_put(body);
        if (r < 0)
                return api_respond_error(c, 400, err, -1);
        if (!t.dest_pool[0])
                (void)strscpy(t.dest_pool, ctx->cfg->storage_pool, sizeof(t.dest_pool));
        memcpy(c->port_uuid, inst->uuid, sizeof(c->port_uuid));
        r = lifecycle_migrate(ctx->lifecycle, inst, &t, wait ? on_done : NULL, c, &c->waiter, err, sizeof(err), &plug);
        if (r < 0)
                return api_respond_error(c, api_status_for_errno(r), err, plug);
        if (!wait)
                api_respond_json(c, 202, api_instance_json(c, inst));
}

static void on_module_answer(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;
        struct json_object *root;

        c->call = NULL;
        if (res->status < 0)
                return api_respond_module_error(c, res, PLUG_LIBVIRT);
        root = json_object_new_object();
        for (const struct proto_value *v = res->body ? res->body->child : NULL; v; v = v->next) {
                if (v->type == PV_U64)
                        json_object_object_add(root, v->key, json_object_new_int64((int64_t)v->v.u));
                else if (v->type == PV_I64)
                        json_object_object_add(root, v->key, json_object_new_int64(v->v.i));
                else if (v->type == PV_BOOL)
                        json_object_object_add(root, v->key, json_object_new_boolean(v->v.b));
                else if (v->type == PV_STR)
                        json_object_object_add(root, v->key, json_object_new_string(v->v.s));
        }
        api_respond_json(c, 200, root);
}

static void job_call(struct api_conn *c, const char *id, enum libvirt_entrypoint_id ep)
{
        _cleanup_free_ struct proto_writer *w = NULL;
        struct instance *inst = api_instance_arg(c, id);

        if (!inst)
                return;
        w = malloc(sizeof(*w));
        if (!w)
                return api_respond_error(c, 500, "out of memory", -1);
        module_request_init(w, (struct module_ep){ PLUG_LIBVIRT, ep });
        pw_str(w, "instance_uuid", inst->uuid);
        api_call_module(c, PLUG_LIBVIRT, w, on_module_answer);
}

static void handle_job(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        job_call(c, a->arg[0], LIBVIRT_MIGRATE_JOB);
}

static void handle_job_abort(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        job_call(c, a->arg[0], LIBVIRT_MIGRATE_ABORT);
}

static void finish_or_abort(struct api_conn *c, const struct http_request *req, const char *id, bool finish)
{
        const struct api_context *ctx = api_context_of(c);
        struct instance *inst = api_instance_arg(c, id);
        bool wait = api_query_wait(req);
        char err[512];
        int r, plug;

        if (!inst)
                return;
        memcpy(c->port_uuid, inst->uuid, sizeof(c->port_uuid));
        r = finish ? lifecycle_migrate_finish(ctx->lifecycle, inst, wait ? on_done : NULL, c, &c->waiter, err, sizeof(err), &plug)
                   : lifecycle_migrate_abort(ctx->lifecycle, inst, wait ? on_done : NULL, c, &c->waiter, err, sizeof(err), &plug);
        if (r < 0)
                return api_respond_error(c, api_status_for_errno(r), err, plug);
        if (!wait)
                api_respond_json(c, 202, api_instance_json(c, inst));
}

static void handle_finish(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        finish_or_abort(c, req, a->arg[0], true);
}

static void handle_abort(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        finish_or_abort(c, req, a->arg[0], false);
}

const struct api_route api_migrate_routes[] = {
        { "GET", "/v1/instances/{id}/migration", handle_description },
        { "POST", "/v1/instances/{id}/migrate", handle_migrate },
        { "GET", "/v1/instances/{id}/migrate", handle_job },
        { "POST", "/v1/instances/{id}/migrate/abort", handle_job_abort },
        { "POST", "/v1/migrations", handle_prepare },
        { NULL, "/v1/migrations", api_method_not_allowed },
        { "POST", "/v1/migrations/{id}/finish", handle_finish },
        { "POST", "/v1/migrations/{id}/abort", handle_abort },
        { NULL, NULL, NULL },
};
