/* network-control.c - nova-network-control: the module that owns the
 * network-control plug. It keeps CAP_NET_ADMIN only, takes port UUIDs, MACs
 * and MTUs, derives the device names itself (tap, and for hybrid plugging
 * qbr, qvb, qvo) and touches nothing else. */
#include "modrt.h"
#include "names.h"
#include "netctl-protocol.h"
#include "tap.h"

#include <poll.h>

/* The module's state: the tap layer, and the tap_delete calls checked and
 * waiting for their batch. Deletes are batched (tap.h: one RCU wait for the
 * whole batch instead of one per device) without any timer: a delete is
 * checked when it arrives and its reply deferred; the batch is run as soon
 * as no further request is waiting on the core's socket, when it is full,
 * and before any other request is handled (so requests keep their order:
 * a tap_create after a tap_delete of the same port sees it deleted). The
 * core keeps up to 16 operations in flight, so the deletes that arrive while
 * one batch runs make the next one. */
struct netctl {
        struct modrt *rt;
        struct tap_ctx *tap;
        size_t n_pending;
        struct tap_delete_plan plans[TAP_DELETE_BATCH_MAX];
        struct modrt_deferred *calls[TAP_DELETE_BATCH_MAX];
};

#define TAP_REPLY_VALUES_MAX 12u /* values reply_tap() writes, at most (11, and bridge when hybrid) */
#define TAP_REPLY_MAX_BYTES 256 /* bytes reply_tap() writes, at most (about 240) */

/* TAP = { name, port_uuid, mac, mtu, ifindex, admin_up, carrier, operstate,
 *         hybrid, ovs_dev (qvo name when hybrid, else the tap name),
 *         bridge (qbr name, only when hybrid) } */
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
        pw_bool(w, "hybrid", t->hybrid);
        pw_str(w, "ovs_dev", t->ovs_dev);
        if (t->hybrid)
                pw_str(w, "bridge", t->bridge);
        pw_obj_end(w);
}

/* Operator-facing text for the errors the tap layer returns; detail is
 * tap_ctx_detail() (the device concerned), "" when it has none. */
static void explain(struct modrt_call *call, int r, const char *port_uuid, bool hybrid, const char *detail)
{
        char name[IFNAME_MAX] = "?", qbr[IFNAME_MAX] = "?", qvb[IFNAME_MAX] = "?", qvo[IFNAME_MAX] = "?";

        (void)tap_name_from_port(port_uuid, name);
        (void)port_dev_name(QBR_PREFIX, port_uuid, qbr);
        (void)port_dev_name(QVB_PREFIX, port_uuid, qvb);
        (void)port_dev_name(QVO_PREFIX, port_uuid, qvo);
        switch (r) {
        case -ENOENT:
                (void)snprintf(call->err, sizeof(call->err), "no tap %s for port %s", name, port_uuid);
                break;
        case -EEXIST:
        case -EPERM:
                if (hybrid)
                        (void)snprintf(call->err, sizeof(call->err),
                                       "one of the devices %s, %s, %s/%s exists but was not created by nova-hypervisor "
                                       "for port %s; not touching it",
                                       name, qbr, qvb, qvo, port_uuid);
                else
                        (void)snprintf(call->err, sizeof(call->err),
                                       "device %s exists but was not created by nova-hypervisor for port %s; not touching it",
                                       name, port_uuid);
                break;
        case -EBUSY:
                if (detail[0]) {
                        (void)snprintf(call->err, sizeof(call->err), "port %s: %s; not touching it", port_uuid, detail);
                        break;
                }
                (void)snprintf(call->err, sizeof(call->err),
                               "%s or %s is a port of another master (e.g. Open vSwitch's datapath); remove it from there "
                               "before plugging port %s hybrid",
                               name, qvb, port_uuid);
                break;
        case -ERANGE:
                (void)snprintf(call->err, sizeof(call->err), "%s (port %s): %s", name, port_uuid,
                               detail[0] ? detail : strerror(-r));
                break;
        default:
                (void)snprintf(call->err, sizeof(call->err), "%s (port %s): %s", name, port_uuid, strerror(-r));
        }
}

/* Run the waiting deletes as one batch and answer each of them. */
static void netctl_flush_deletes(struct netctl *nc)
{
        size_t n = nc->n_pending;

        if (n == 0)
                return;
        nc->n_pending = 0;
        tap_delete_batch(nc->tap, nc->plans, n);
        for (size_t i = 0; i < n; i++) {
                struct modrt_call c = { .fd = -1 };
                int r = nc->plans[i].result;

                if (r < 0)
                        explain(&c, r, nc->plans[i].port_uuid, false, "");
                (void)modrt_complete(nc->rt, nc->calls[i], r, r < 0 ? c.err : NULL, NULL, NULL);
        }
}

static int handle_tap_create(void *state, struct modrt_call *call)
{
        struct netctl *nc = state;
        const char *port_uuid = proto_get_str(call->req, "port_uuid", "");
        bool hybrid = proto_get_bool(call->req, "hybrid", false);
        char qbr[IFNAME_MAX] = "", qvo[IFNAME_MAX] = "";
        struct tap_options opts;
        uint8_t mac[6];
        struct tap_info info;
        int r;

        if (mac_parse(proto_get_str(call->req, "mac", ""), mac) < 0)
                return -EINVAL; /* unreachable: the schema checked it */
        (void)tap_name_from_port(port_uuid, info.name);
        if (hybrid) {
                (void)port_dev_name(QBR_PREFIX, port_uuid, qbr);
                (void)port_dev_name(QVO_PREFIX, port_uuid, qvo);
                (void)snprintf(call->audit, sizeof(call->audit), "tap=%s bridge=%s ovs_dev=%s", info.name, qbr, qvo);
        } else {
                (void)snprintf(call->audit, sizeof(call->audit), "tap=%s", info.name);
        }
        netctl_flush_deletes(nc);
        opts.hybrid = hybrid;
        opts.netdev_datapath = streq(proto_get_str(call->req, "datapath", "system"), "netdev");
        r = tap_create_opts(nc->tap, port_uuid, mac, (uint32_t)proto_get_u64(call->req, "mtu", 0), &opts, &info);
        if (r < 0) {
                explain(call, r, port_uuid, hybrid, tap_ctx_detail(nc->tap));
                return r;
        }
        reply_tap(call->reply, "tap", &info);
        return 0;
}

static int handle_tap_delete(void *state, struct modrt_call *call)
{
        struct netctl *nc = state;
        const char *port_uuid = proto_get_str(call->req, "port_uuid", "");
        struct tap_delete_plan *plan;
        char name[IFNAME_MAX];
        int r;

        (void)tap_name_from_port(port_uuid, name);
        (void)snprintf(call->audit, sizeof(call->audit), "tap=%s", name);
        /* The same port twice in one batch: the second must see the first done. */
        for (size_t i = 0; i < nc->n_pending; i++)
                if (streq(nc->plans[i].port_uuid, port_uuid)) {
                        netctl_flush_deletes(nc);
                        break;
                }
        plan = &nc->plans[nc->n_pending];
        r = tap_delete_prepare(nc->tap, port_uuid, plan);
        if (r < 0) {
                explain(call, r, port_uuid, false, tap_ctx_detail(nc->tap));
                return r;
        }
        nc->calls[nc->n_pending] = modrt_defer(nc->rt, call);
        if (!nc->calls[nc->n_pending]) {
                /* No memory to wait: this one alone, now. */
                tap_delete_batch(nc->tap, plan, 1);
                if (plan->result < 0)
                        explain(call, plan->result, port_uuid, false, "");
                return plan->result;
        }
        if (++nc->n_pending == TAP_DELETE_BATCH_MAX)
                netctl_flush_deletes(nc);
        return MODRT_DEFERRED;
}

static int handle_tap_get(void *state, struct modrt_call *call)
{
        const char *port_uuid = proto_get_str(call->req, "port_uuid", "");
        struct netctl *nc = state;
        struct tap_info info;
        int r;

        netctl_flush_deletes(nc);
        r = tap_get(nc->tap, port_uuid, &info);
        if (r < 0) {
                explain(call, r, port_uuid, false, "");
                return r;
        }
        reply_tap(call->reply, "tap", &info);
        return 0;
}

static int handle_tap_list(void *state, struct modrt_call *call)
{
        struct netctl *nc = state;
        _cleanup_free_ struct tap_info *taps = NULL;
        const char *after = proto_get_str(call->req, "after", NULL);
        /* One frame holds a bounded number of values: a page is what surely fits. */
        size_t max = (PROTO_MAX_NODES - 8) / TAP_REPLY_VALUES_MAX;
        size_t n = 0, total = 0, remaining = 0, shown = 0;
        int r;

        if ((PROTO_MAX_FRAME - 256) / TAP_REPLY_MAX_BYTES < max)
                max = (PROTO_MAX_FRAME - 256) / TAP_REPLY_MAX_BYTES;
        if (proto_get_u64(call->req, "limit", max) < max)
                max = proto_get_u64(call->req, "limit", max);
        netctl_flush_deletes(nc);
        r = tap_list_page(nc->tap, after, max, &taps, &n, &total, &remaining);
        if (r < 0) {
                (void)snprintf(call->err, sizeof(call->err), "cannot list taps: %s", strerror(-r));
                return r;
        }
        pw_list_begin(call->reply, "taps");
        for (; shown < n; shown++) {
                if (call->reply->n_values + TAP_REPLY_VALUES_MAX + 4 > PROTO_MAX_NODES ||
                    call->reply->len + TAP_REPLY_MAX_BYTES + 64 > PROTO_MAX_FRAME)
                        break; /* not reached with the page size above; the next page starts here */
                reply_tap(call->reply, NULL, &taps[shown]);
        }
        pw_list_end(call->reply);
        pw_u64(call->reply, "total", total);
        pw_bool(call->reply, "truncated", shown < remaining);
        if (shown > 0 && shown < remaining)
                pw_str(call->reply, "next", taps[shown - 1].port_uuid);
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
        struct netctl *nc;
        int r;

        nc = calloc(1, sizeof(*nc));
        if (!nc)
                return -ENOMEM;
        r = tap_ctx_new(&nc->tap);
        if (r < 0) {
                free(nc);
                return r;
        }
        nc->rt = rt;
        *ret_state = nc;
        return 0;
}

static void netctl_done(void *state)
{
        struct netctl *nc = state;

        if (!nc)
                return;
        tap_ctx_free(nc->tap);
        free(nc);
}

/* The runtime's blocking loop, plus the delete batch: run it whenever the
 * core's socket has nothing more to read right now. */
static int netctl_run(struct modrt *rt, void *state)
{
        struct netctl *nc = state;

        while (!modrt_should_exit(rt)) {
                struct pollfd p = { .fd = modrt_fd(rt), .events = POLLIN };
                int r = poll(&p, 1, nc->n_pending > 0 ? 0 : -1);

                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0) {
                        netctl_flush_deletes(nc);
                        continue;
                }
                r = modrt_dispatch(rt);
                if (r < 0) {
                        /* Checked deletes still run; their answers have nowhere to go. */
                        netctl_flush_deletes(nc);
                        return r;
                }
        }
        netctl_flush_deletes(nc);
        return 0;
}

static const struct modrt_module network_control_module = {
        .protocol = &netctl_protocol,
        .entries = entries,
        .n_entries = ARRAY_SIZE(entries),
        .init = netctl_init,
        .done = netctl_done,
        .run = netctl_run,
};

int main(int argc, char **argv) { return modrt_main(&network_control_module, argc, argv); }
