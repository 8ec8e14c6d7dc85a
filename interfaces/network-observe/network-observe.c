/* network-observe.c - nova-network-observe: the module that holds the
 * network-observe plug. It keeps no capability and only reads: one
 * rtnetlink link dump (libnl-route-3), filtered to our devices (tap, qbr,
 * qvb, qvo of a port, carrying the port's mark), with their 64-bit counters. */
#include "modrt.h"
#include "names.h"
#include "netobs-protocol.h"

#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include <fcntl.h>

#define PORT_MARK_PREFIX "nova-hypervisor:port="

static const struct {
        const char *prefix;
        const char *kind;      /* what we call it */
        const char *link_type; /* rtnl_link_get_type() it must have */
} dev_kinds[] = {
        { TAP_PREFIX, "tap", "tun" },
        { QBR_PREFIX, "bridge", "bridge" },
        { QVB_PREFIX, "veth", "veth" },
        { QVO_PREFIX, "veth", "veth" },
};

/* Our device: derived name for the UUID in its mark, and of the right type. The port UUID into ret. */
static const char *link_is_ours(struct rtnl_link *link, char ret_port[UUID_STR_LEN + 1])
{
        const char *name = rtnl_link_get_name(link), *alias = rtnl_link_get_ifalias(link);
        const char *type = rtnl_link_get_type(link);

        if (!name || !alias || strncmp(alias, PORT_MARK_PREFIX, strlen(PORT_MARK_PREFIX)) != 0)
                return NULL;
        alias += strlen(PORT_MARK_PREFIX);
        if (!uuid_is_valid(alias))
                return NULL;
        for (size_t i = 0; i < ARRAY_SIZE(dev_kinds); i++) {
                char derived[IFNAME_MAX];

                if (port_dev_name(dev_kinds[i].prefix, alias, derived) < 0 || !streq(derived, name))
                        continue;
                if (!type || !streq(type, dev_kinds[i].link_type))
                        return NULL;
                memcpy(ret_port, alias, UUID_STR_LEN + 1);
                return dev_kinds[i].kind;
        }
        return NULL;
}

static int handle_link_stats(void *state, struct modrt_call *call)
{
        struct nl_sock *sk = state;
        struct nl_cache *cache = NULL;
        size_t total = 0, listed = 0;
        int r;

        r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
        if (r < 0) {
                (void)snprintf(call->err, sizeof(call->err), "cannot dump links: %s", nl_geterror(r));
                return -EIO;
        }
        pw_list_begin(call->reply, "links");
        for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
                struct rtnl_link *link = (struct rtnl_link *)o;
                static const struct {
                        const char *key;
                        rtnl_link_stat_id_t id;
                } stats[] = {
                        { "rx_packets", RTNL_LINK_RX_PACKETS }, { "rx_bytes", RTNL_LINK_RX_BYTES },
                        { "rx_dropped", RTNL_LINK_RX_DROPPED }, { "rx_errors", RTNL_LINK_RX_ERRORS },
                        { "tx_packets", RTNL_LINK_TX_PACKETS }, { "tx_bytes", RTNL_LINK_TX_BYTES },
                        { "tx_dropped", RTNL_LINK_TX_DROPPED }, { "tx_errors", RTNL_LINK_TX_ERRORS },
                };
                char port[UUID_STR_LEN + 1], oper[32];
                const char *kind = link_is_ours(link, port);

                if (!kind)
                        continue;
                total++;
                if (listed >= NETOBS_MAX_LINKS_REPLY)
                        continue;
                rtnl_link_operstate2str(rtnl_link_get_operstate(link), oper, sizeof(oper));
                pw_obj_begin(call->reply, NULL);
                pw_str(call->reply, "name", rtnl_link_get_name(link));
                pw_str(call->reply, "kind", kind);
                pw_str(call->reply, "port_uuid", port);
                pw_u64(call->reply, "ifindex", (uint64_t)rtnl_link_get_ifindex(link));
                pw_str(call->reply, "operstate", oper);
                for (size_t i = 0; i < ARRAY_SIZE(stats); i++)
                        pw_u64(call->reply, stats[i].key, rtnl_link_get_stat(link, stats[i].id));
                pw_obj_end(call->reply);
                listed++;
        }
        pw_list_end(call->reply);
        nl_cache_free(cache);
        pw_u64(call->reply, "total", total);
        pw_bool(call->reply, "truncated", listed < total);
        return 0;
}

static const struct modrt_entry entries[_NETOBS_MAX] = {
        [NETOBS_LINK_STATS] = { &netobs_entrypoints[NETOBS_LINK_STATS], handle_link_stats },
};

static int netobs_init(struct modrt *rt, void **ret_state)
{
        struct nl_sock *sk = nl_socket_alloc();
        int r;

        (void)rt;
        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0) {
                nl_socket_free(sk);
                return -EIO;
        }
        /* libnl opens its socket without close-on-exec; we never exec, but say so. */
        (void)fcntl(nl_socket_get_fd(sk), F_SETFD, FD_CLOEXEC);
        *ret_state = sk;
        return 0;
}

static void netobs_done(void *state) { nl_socket_free(state); }

static const struct modrt_module network_observe_module = {
        .protocol = &netobs_protocol,
        .entries = entries,
        .n_entries = ARRAY_SIZE(entries),
        .init = netobs_init,
        .done = netobs_done,
};

int main(int argc, char **argv) { return modrt_main(&network_observe_module, argc, argv); }
