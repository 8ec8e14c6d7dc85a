/* netobs-protocol.h - the entrypoint of the network-observe module, as both
 * the module (dispatch) and the core (request validation) know it.
 *
 * link_stats {} -> { links: [LINK...], total, truncated }
 *   LINK = { name, kind ("tap" | "bridge" | "veth"), port_uuid, ifindex,
 *            operstate, rx_packets, rx_bytes, rx_dropped, rx_errors,
 *            tx_packets, tx_bytes, tx_dropped, tx_errors }
 *   Only our links: a name of the per-port scheme (tap/qbr/qvb/qvo + 11
 *   characters of the port UUID) whose alias is the mark
 *   "nova-hypervisor:port=<port_uuid>" for a UUID with that prefix. Counters
 *   are the kernel's 64-bit link statistics (IFLA_STATS64), read over one
 *   rtnetlink dump. */
#ifndef NOVA_NETOBS_PROTOCOL_H
#define NOVA_NETOBS_PROTOCOL_H

#include "schema.h"

#define NETOBS_MAX_LINKS_REPLY 120 /* links listed in one reply (15 values each) */

enum netobs_entrypoint_id {
        NETOBS_LINK_STATS,
        _NETOBS_MAX,
};

extern const struct proto_entrypoint netobs_entrypoints[_NETOBS_MAX];
extern const struct module_protocol netobs_protocol;

#endif
