/* api-ports.c - ports (a tap of network-control, without an instance), and
 * what the libvirt and openvswitch modules list of ours (/v1/domains,
 * /v1/vifs). Thin: each route is one module call, answered as it replies. */
#include "api-internal.h"

#include "netctl-protocol.h"
#include "ovs-protocol.h"

#include <assert.h>

/* {as_key: <body's list>, total, truncated}: the shape of every listing. */
static struct json_object *listing_json(const struct proto_value *body, const char *list_key, const char *as_key,
                                        struct json_object **ret_list)
{
        struct json_object *root = json_object_new_object(), *list = proto_value_to_json(proto_get(body, list_key));

        json_object_object_add(root, as_key, list);
        json_object_object_add(root, "total", json_object_new_uint64(proto_get_u64(body, "total", 0)));
        json_object_object_add(root, "truncated", json_object_new_boolean(proto_get_bool(body, "truncated", false)));
        if (ret_list)
                *ret_list = list;
        return root;
}

static void on_port_reply(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;
        struct json_object *root;
        const struct proto_value *tap;

        c->call = NULL;
        if (res->status < 0)
                return api_respond_module_error(c, res, PLUG_NETWORK_CONTROL);
        tap = proto_get(res->body, "tap");
        if (tap)
                return api_respond_json(c, 200, proto_value_to_json(tap));
        if (proto_get(res->body, "taps"))
                return api_respond_json(c, 200, listing_json(res->body, "taps", "ports", NULL));
        /* tap_delete */
        root = json_object_new_object();
        json_object_object_add(root, "deleted", json_object_new_string(c->port_uuid));
        api_respond_json(c, 200, root);
}

/* One field of a port create body into uuid/mac/mtu: 0, or -EINVAL with the reason. */
static int port_create_field(const char *key, struct json_object *val, char uuid[UUID_STR_LEN + 1],
                             char mac[MAC_STR_LEN + 1], int64_t *mtu, char *err, size_t errlen)
{
        const char *s = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : NULL;

        if (streq(key, "port_uuid")) {
                if (!s || !uuid_is_valid(s))
                        return snprintf(err, errlen, "port_uuid: not a canonical lowercase UUID"), -EINVAL;
                memcpy(uuid, s, UUID_STR_LEN + 1);
        } else if (streq(key, "mac")) {
                if (!s || !mac_is_valid(s))
                        return snprintf(err, errlen, "mac: " MAC_RULE_TEXT), -EINVAL;
                memcpy(mac, s, MAC_STR_LEN + 1);
        } else if (streq(key, "mtu")) {
                if (!json_object_is_type(val, json_type_int) || (*mtu = json_object_get_int64(val)) < NETCTL_MTU_MIN ||
                    *mtu > NETCTL_MTU_MAX)
                        return snprintf(err, errlen, "mtu: must be an integer in %d..%d", NETCTL_MTU_MIN,
                                        NETCTL_MTU_MAX), -EINVAL;
        } else
                return snprintf(err, errlen, "%.64s: unknown field", key), -EINVAL;
        return 0;
}

static void handle_port_create(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        _cleanup_free_ struct proto_writer *w = NULL;
        struct json_object *body = NULL;
        char err[256], uuid[UUID_STR_LEN + 1], mac[MAC_STR_LEN + 1];
        int64_t mtu = 1500;

        (void)a;
        if (api_read_body(c, req, &body) < 0)
                return;
        if (uuid_new_str(uuid) < 0 || mac_generate(mac) < 0) {
                json_object_put(body);
                return api_respond_error(c, 500, "cannot generate identifiers", -1);
        }
        json_object_object_foreach(body, key, val)
                if (port_create_field(key, val, uuid, mac, &mtu, err, sizeof(err)) < 0) {
                        json_object_put(body);
                        return api_respond_error(c, 400, err, -1);
                }
        json_object_put(body);
        w = malloc(sizeof(*w));
        if (!w)
                return api_respond_error(c, 500, "out of memory", -1);
        memcpy(c->port_uuid, uuid, sizeof(uuid));
        module_request_init(w, (struct module_ep)EP_NETCTL(TAP_CREATE));
        pw_str(w, "port_uuid", uuid);
        pw_str(w, "mac", mac);
        pw_u64(w, "mtu", (uint64_t)mtu);
        api_call_module(c, PLUG_NETWORK_CONTROL, w, on_port_reply);
}

/* A request naming one port (tap_get, tap_delete) or none (tap_list, port_uuid NULL). */
static void port_call(struct api_conn *c, enum netctl_entrypoint_id ep, const char *port_uuid)
{
        _cleanup_free_ struct proto_writer *w = NULL;
        char msg[128];

        if (port_uuid && !uuid_is_valid(port_uuid)) {
                (void)snprintf(msg, sizeof(msg), "'%.40s' is not a canonical lowercase port UUID", port_uuid);
                return api_respond_error(c, 400, msg, -1);
        }
        w = malloc(sizeof(*w));
        if (!w)
                return api_respond_error(c, 500, "out of memory", -1);
        module_request_init(w, (struct module_ep){ PLUG_NETWORK_CONTROL, ep });
        if (port_uuid) {
                memcpy(c->port_uuid, port_uuid, UUID_STR_LEN + 1);
                pw_str(w, "port_uuid", port_uuid);
        }
        api_call_module(c, PLUG_NETWORK_CONTROL, w, on_port_reply);
}

static void handle_port_list(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        (void)a;
        port_call(c, NETCTL_TAP_LIST, NULL);
}

static void handle_port_get(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        port_call(c, NETCTL_TAP_GET, a->arg[0]);
}

static void handle_port_delete(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        port_call(c, NETCTL_TAP_DELETE, a->arg[0]);
}

/* ---- listings of other modules ---- */

static void on_domains_reply(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;

        c->call = NULL;
        if (res->status < 0)
                return api_respond_module_error(c, res, PLUG_LIBVIRT);
        api_respond_json(c, 200, listing_json(res->body, "domains", "domains", NULL));
}

static void on_vifs_reply(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;
        struct json_object *root, *ports;

        c->call = NULL;
        if (res->status < 0)
                return api_respond_module_error(c, res, PLUG_OPENVSWITCH);
        root = listing_json(res->body, "ports", "ports", &ports);
        /* Join with the store: which instance each port belongs to. */
        for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
                struct json_object *p = json_object_array_get_idx(ports, i), *v;
                struct instance *inst = json_object_object_get_ex(p, "instance_uuid", &v)
                                                ? instance_find(api_context_of(c)->instances, json_object_get_string(v))
                                                : NULL;
                json_object_object_add(p, "instance_name", inst ? json_object_new_string(inst->name) : NULL);
        }
        api_respond_json(c, 200, root);
}

/* A request without fields to ep, answered by cb. */
static void list_call(struct api_conn *c, struct module_ep ep, module_call_cb cb)
{
        _cleanup_free_ struct proto_writer *w = malloc(sizeof(*w));

        if (!w)
                return api_respond_error(c, 500, "out of memory", -1);
        module_request_init(w, ep);
        api_call_module(c, ep.plug, w, cb);
}

/* What libvirt has of ours, as the libvirt module lists it. */
static void handle_domain_list(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        (void)a;
        list_call(c, (struct module_ep)EP_LIBVIRT(DOMAIN_LIST), on_domains_reply);
}

/* Our ports on the integration bridge, as the openvswitch module lists them. */
static void handle_vif_list(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        (void)a;
        list_call(c, (struct module_ep)EP_OVS(PORT_LIST), on_vifs_reply);
}

const struct api_route api_port_routes[] = {
        { "GET", "/v1/ports", handle_port_list },
        { "POST", "/v1/ports", handle_port_create },
        { NULL, "/v1/ports", api_method_not_allowed },
        { "GET", "/v1/ports/{port_uuid}", handle_port_get },
        { "DELETE", "/v1/ports/{port_uuid}", handle_port_delete },
        { NULL, "/v1/ports/{port_uuid}", api_method_not_allowed },
        { "GET", "/v1/domains", handle_domain_list },
        { "GET", "/v1/vifs", handle_vif_list },
        { NULL, NULL, NULL },
};
