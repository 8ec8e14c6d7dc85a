/* api-secgroups.c - security groups and their rules, and a port's group list.
 * Thin: a change goes through secgroup-change.c (kernel first, then store);
 * this file parses the request and shapes the answer. */
#include "api-internal.h"

#include "secgroup-change.h"
#include "secgroups.h"
#include "log.h"

#include <assert.h>

static struct json_object *secgroup_json(const struct api_conn *c, const struct secgroup *g)
{
        struct json_object *o = secgroup_to_json(g), *ports = json_object_new_array();

        for (struct instance *i = instances_first(api_context_of(c)->instances); i; i = i->next)
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

static void handle_secgroup_list(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        struct json_object *root = json_object_new_object(), *list = json_object_new_array();

        (void)req;
        (void)a;
        for (const struct secgroup *g = secgroups_first(api_context_of(c)->groups); g; g = g->next)
                json_object_array_add(list, secgroup_json(c, g));
        json_object_object_add(root, "secgroups", list);
        api_respond_json(c, 200, root);
}

static void handle_secgroup_create(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        struct json_object *body = NULL;
        const char *name = NULL, *desc = "";
        struct secgroup *g;
        char err[256];
        int r;

        (void)a;
        if (api_read_body(c, req, &body) < 0)
                return;
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
                        return api_respond_error(c, 400, err, -1);
                }
        }
        if (!name || !secgroup_name_is_valid(name)) {
                json_object_put(body);
                return api_respond_error(c, 400, "name: required, 1..63 characters of A-Z a-z 0-9 . _ - (not starting "
                                             "with . or -, not a UUID)", -1);
        }
        r = secgroup_create(api_context_of(c)->groups, name, desc, &g);
        if (r < 0) {
                /* -ENOSPC is the group limit or a full disk: the count tells which */
                bool limit = r == -ENOSPC && secgroups_count(api_context_of(c)->groups) >= SECGROUPS_MAX;
                if (r == -EEXIST || r == -EINVAL || limit)
                        (void)snprintf(err, sizeof(err),
                                       r == -EEXIST   ? "a security group named '%s' exists"
                                       : r == -EINVAL ? "description: at most 255 printable characters (group '%s')"
                                                      : "no room for group '%s': at most 256 security groups",
                                       name);
                else
                        (void)snprintf(err, sizeof(err), "cannot record security group '%s': %s", name, strerror(-r));
                json_object_put(body);
                return api_respond_error(c, api_status_for_errno(r), err, -1);
        }
        json_object_put(body);
        log_info("security group %s (%s) created", g->name, g->id);
        api_respond_json(c, 201, secgroup_json(c, g));
}

static void handle_secgroup_delete(struct api_conn *c, struct secgroup *g)
{
        char err[256], id[UUID_STR_LEN + 1], name[SECGROUP_NAME_MAX + 1];
        struct json_object *root;
        int r;

        for (struct instance *i = instances_first(api_context_of(c)->instances); i; i = i->next)
                for (size_t p = 0; p < i->n_ports; p++)
                        for (size_t k = 0; k < i->ports[p].n_secgroups; k++)
                                if (streq(i->ports[p].secgroups[k], g->id)) {
                                        (void)snprintf(err, sizeof(err),
                                                       "security group '%s' is in use by port %s of instance %s",
                                                       g->name, i->ports[p].port_uuid, i->name);
                                        return api_respond_error(c, 409, err, -1);
                                }
        memcpy(id, g->id, sizeof(id));
        memcpy(name, g->name, sizeof(name));
        r = secgroup_delete(api_context_of(c)->groups, g);
        if (r == -EPERM)
                return api_respond_error(c, 409, "the group 'default' cannot be deleted", -1);
        if (r < 0) {
                (void)snprintf(err, sizeof(err), "cannot record the change: %s", strerror(-r));
                return api_respond_error(c, api_status_for_errno(r), err, -1);
        }
        log_info("security group %s (%s) deleted", name, id);
        root = json_object_new_object();
        json_object_object_add(root, "deleted", json_object_new_string(id));
        api_respond_json(c, 200, root);
}

/* What a change works on, from the API's context. */
static struct sg_context sg_ctx(const struct api_conn *c)
{
        const struct api_context *ctx = api_context_of(c);

        return (struct sg_context){ ctx->firewall, ctx->groups, ctx->instances };
}

static void on_change_done(const struct sg_change_result *res, void *userdata)
{
        struct api_conn *c = userdata;
        struct json_object *root, *result = NULL;

        c->change = NULL;
        if (res->status < 0)
                return api_respond_error(c, api_status_for_errno(res->status), res->error, res->plug);
        switch (res->kind) {
        case SG_CHANGE_RULE_ADD:
                result = secrule_to_json(res->rule);
                break;
        case SG_CHANGE_RULE_DELETE:
                result = json_object_new_object();
                json_object_object_add(result, "deleted", json_object_new_string(res->rule_id));
                break;
        case SG_CHANGE_PORT_SET:
                result = api_instance_json(c, res->inst);
                break;
        }
        root = json_object_new_object();
        json_object_object_add(root, "result", result);
        json_object_object_add(root, "applied", json_object_new_boolean(!res->pending));
        if (res->pending)
                json_object_object_add(root, "pending", json_object_new_string(res->pending));
        api_respond_json(c, res->kind == SG_CHANGE_RULE_ADD ? 201 : 200, root);
}

/* A change could not start: say why. */
static void change_refused(struct api_conn *c, int r, const char *err, int plug)
{
        api_respond_error(c, api_status_for_errno(r), err, plug);
}

static void rule_add(struct api_conn *c, const struct http_request *req, struct secgroup *g)
{
        const struct sg_context sg = sg_ctx(c);
        struct json_object *body = NULL;
        struct secrule rule;
        char err[512];
        int r, plug;

        if (api_read_body(c, req, &body) < 0)
                return;
        r = secrule_from_json(body, &rule, err, sizeof(err));
        json_object_put(body);
        if (r < 0)
                return api_respond_error(c, 400, err, -1);
        r = sg_change_rule_add(&sg, g, &rule, on_change_done, c, &c->change, err, sizeof(err), &plug);
        if (r < 0)
                change_refused(c, r, err, plug);
}

static void handle_rule_delete(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        const struct sg_context sg = sg_ctx(c);
        char err[512];
        int r, plug;

        (void)req;
        r = sg_change_rule_delete(&sg, a->arg[0], on_change_done, c, &c->change, err, sizeof(err), &plug);
        if (r < 0)
                change_refused(c, r, err, plug);
}

static void handle_port_secgroups(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        const struct sg_context sg = sg_ctx(c);
        char groups[PORT_MAX_GROUPS][UUID_STR_LEN + 1];
        struct json_object *body = NULL, *list = NULL;
        const char *port_uuid = a->arg[0];
        size_t n_groups = 0;
        char err[512];
        int r, plug;

        r = sg_change_port_check(&sg, port_uuid, err, sizeof(err));
        if (r < 0)
                return api_respond_error(c, r == -ENOENT ? 404 : 409, err, -1);
        if (api_read_body(c, req, &body) < 0)
                return;
        json_object_object_foreach(body, key, val) {
                if (!streq(key, "secgroups")) {
                        (void)snprintf(err, sizeof(err), "%.32s: unknown field", key);
                        json_object_put(body);
                        return api_respond_error(c, 400, err, -1);
                }
                list = val;
        }
        r = list ? instance_port_parse_secgroups(list, secgroup_resolve, api_context_of(c)->groups, groups, &n_groups, err, sizeof(err))
                 : (snprintf(err, sizeof(err), "secgroups: required (a list; [] leaves the port with no group: "
                                               "all traffic dropped)"), -EINVAL);
        json_object_put(body);
        if (r < 0)
                return api_respond_error(c, r == -ENOENT ? 404 : 400, err, -1);
        r = sg_change_port_set(&sg, port_uuid, groups, n_groups, on_change_done, c, &c->change, err, sizeof(err), &plug);
        if (r < 0)
                change_refused(c, r, err, plug);
}

/* ---- routes ---- */

/* The group a route's first argument names, or NULL after answering 404. */
static struct secgroup *group_arg(struct api_conn *c, const char *ref)
{
        size_t n = strcspn(ref, "/");
        char id[API_ID_MAX];
        struct secgroup *g = NULL;

        if (n > 0 && n < sizeof(id)) {
                memcpy(id, ref, n);
                id[n] = '\0';
                g = secgroup_find(api_context_of(c)->groups, id);
        }
        if (!g)
                api_respond_error(c, 404, "no such security group", -1);
        return g;
}

static void handle_secgroup_show(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        struct secgroup *g = group_arg(c, a->arg[0]);

        (void)req;
        if (g)
                api_respond_json(c, 200, secgroup_json(c, g));
}

static void handle_secgroup_remove(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        struct secgroup *g = group_arg(c, a->arg[0]);

        (void)req;
        if (g)
                handle_secgroup_delete(c, g);
}

static void handle_rule_add(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        struct secgroup *g = group_arg(c, a->arg[0]);

        if (g)
                rule_add(c, req, g);
}

/* Any other method or sub-path of /v1/secgroups/<ref>...: 404 for an unknown group, else 405. */
static void handle_secgroup_other(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        if (group_arg(c, a->arg[0]))
                api_method_not_allowed(c, req, a);
}

const struct api_route api_secgroup_routes[] = {
        { "GET", "/v1/secgroups", handle_secgroup_list },
        { "POST", "/v1/secgroups", handle_secgroup_create },
        { NULL, "/v1/secgroups", api_method_not_allowed },
        { "GET", "/v1/secgroups/{ref}", handle_secgroup_show },
        { "DELETE", "/v1/secgroups/{ref}", handle_secgroup_remove },
        { "POST", "/v1/secgroups/{ref}/rules", handle_rule_add },
        { NULL, "/v1/secgroups/*", handle_secgroup_other },
        { "DELETE", "/v1/secgroup-rules/*", handle_rule_delete },
        { NULL, "/v1/secgroup-rules/*", api_method_not_allowed },
        { "POST", "/v1/ports/{port_uuid}/secgroups", handle_port_secgroups },
        { "PUT", "/v1/ports/{port_uuid}/secgroups", handle_port_secgroups },
        { NULL, "/v1/ports/{port_uuid}/secgroups", api_method_not_allowed },
        { NULL, NULL, NULL },
};
