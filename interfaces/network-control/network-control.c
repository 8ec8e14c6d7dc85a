/* network-control.c - nova-network-control: the module that owns the
 * network-control plug. It keeps CAP_NET_ADMIN only, takes port UUIDs, MACs
 * and MTUs, derives the tap name itself and touches nothing else. */
#include "modrt.h"
#include "names.h"
#include "netctl-protocol.h"
#include "tap.h"

#define TAP_REPLY_VALUES 9      /* values reply_tap() writes */
#define TAP_REPLY_MAX_BYTES 256 /* bytes reply_tap() writes, at most */

static void reply_tap(struct proto_writer *w, const char *key, const struct tap_info *t)
{
        char mac[MAC_STR_LEN + 1];

        mac_format(t->mac, mac);
        pw_obj_begin(w, key);
        pw_str(w, "name", t->name);
        pw_str(w, "port_uuid", t->port_uuid);
        pw_str(w, "mac", mac);
        pw_u64(w, "mtu", t->mtu);
        pw_u64(w, "ifindex", (uint64_t)t->ifindex);
        pw_bool(w, "admin_up", t->admin_up);
        pw_bool(w, "carrier", t->carrier);
        pw_str(w, "operstate", t->operstate);
        pw_obj_end(w);
}

/* Operator-facing text for the errors the tap layer returns. */
static void explain(struct modrt_call *call, int r, const char *port_uuid)
{
        char name[IFNAME_MAX] = "?";

        (void)tap_name_from_port(port_uuid, name);
        switch (r) {
        case -ENOENT:
                (void)snprintf(call->err, sizeof(call->err), "no tap %s for port %s", name, port_uuid);
                break;
        case -EEXIST:
        case -EPERM:
                (void)snprintf(call->err, sizeof(call->err),
                               "device %s exists but was not created by nova-hypervisor for port %s; not touching it",
                               name, port_uuid);
                break;
        default:
                (void)snprintf(call->err, sizeof(call->err), "%s (port %s): %s", name, port_uuid, strerror(-r));
        }
}

static int handle_tap_create(void *state, struct modrt_call *call)
{
        const char *port_uuid = proto_get_str(call->req, "port_uuid", "");
        uint8_t mac[6];
        struct tap_info info;
        int r;

        if (mac_parse(proto_get_str(call->req, "mac", ""), mac) < 0)
                return -EINVAL; /* unreachable: the schema checked it */
        (void)tap_name_from_port(port_uuid, info.name);
        (void)snprintf(call->audit, sizeof(call->audit), "tap=%s", info.name);
        r = tap_create(state, port_uuid, mac, (uint32_t)proto_get_u64(call->req, "mtu", 0), &info);
        if (r < 0) {
                explain(call, r, port_uuid);
                return r;
        }
        reply_tap(call->reply, "tap", &info);
        return 0;
}

static int handle_tap_delete(void *state, struct modrt_call *call)
{
        const char *port_uuid = proto_get_str(call->req, "port_uuid", "");
        char name[IFNAME_MAX];
        int r;

        (void)tap_name_from_port(port_uuid, name);
        (void)snprintf(call->audit, sizeof(call->audit), "tap=%s", name);
        r = tap_delete(state, port_uuid);
        if (r < 0) {
                explain(call, r, port_uuid);
                return r;
        }
        return 0;
}

static int handle_tap_get(void *state, struct modrt_call *call)
{
        const char *port_uuid = proto_get_str(call->req, "port_uuid", "");
        struct tap_info info;
        int r;

        r = tap_get(state, port_uuid, &info);
        if (r < 0) {
                explain(call, r, port_uuid);
                return r;
        }
        reply_tap(call->reply, "tap", &info);
        return 0;
}

static int handle_tap_list(void *state, struct modrt_call *call)
{
        _cleanup_free_ struct tap_info *taps = NULL;
        size_t n = 0;
        int r;

        r = tap_list(state, &taps, &n);
        if (r < 0) {
                (void)snprintf(call->err, sizeof(call->err), "cannot list taps: %s", strerror(-r));
                return r;
        }
        /* One frame holds a bounded number of values: list what fits and say
         * how many there are rather than fail the whole listing. */
        size_t shown = 0;
        pw_list_begin(call->reply, "taps");
        for (; shown < n; shown++) {
                if (call->reply->n_values + TAP_REPLY_VALUES + 4 > PROTO_MAX_NODES ||
                    call->reply->len + TAP_REPLY_MAX_BYTES + 64 > PROTO_MAX_FRAME)
                        break;
                reply_tap(call->reply, NULL, &taps[shown]);
        }
        pw_list_end(call->reply);
        pw_u64(call->reply, "total", n);
        pw_bool(call->reply, "truncated", shown < n);
        return 0;
}

static const struct modrt_entry entries[_NETCTL_MAX] = {
        [NETCTL_TAP_CREATE] = { &netctl_entrypoints[NETCTL_TAP_CREATE], handle_tap_create },
        [NETCTL_TAP_DELETE] = { &netctl_entrypoints[NETCTL_TAP_DELETE], handle_tap_delete },
        [NETCTL_TAP_LIST] = { &netctl_entrypoints[NETCTL_TAP_LIST], handle_tap_list },
        [NETCTL_TAP_GET] = { &netctl_entrypoints[NETCTL_TAP_GET], handle_tap_get },
};

static int netctl_init(struct modrt *rt, void **ret_state)
{
        struct tap_ctx *ctx;
        int r;

        (void)rt;
        r = tap_ctx_new(&ctx);
        if (r < 0)
                return r;
        *ret_state = ctx;
        return 0;
}

static void netctl_done(void *state) { tap_ctx_free(state); }

static const struct modrt_module network_control_module = {
        .protocol = &netctl_protocol,
        .entries = entries,
        .n_entries = ARRAY_SIZE(entries),
        .init = netctl_init,
        .done = netctl_done,
};

int main(int argc, char **argv) { return modrt_main(&network_control_module, argc, argv); }
