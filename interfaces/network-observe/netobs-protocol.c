/* netobs-protocol.c - request schema of the network-observe entrypoint (it takes nothing). */
#include "netobs-protocol.h"

#include "plugs.h"

const struct proto_entrypoint netobs_entrypoints[_NETOBS_MAX] = {
        [NETOBS_LINK_STATS] = { "link_stats", schema_empty_req, false },
};

const struct module_protocol netobs_protocol = {
        .plug = PLUG_NETWORK_OBSERVE,
        .entrypoints = netobs_entrypoints,
        .n_entrypoints = _NETOBS_MAX,
};
