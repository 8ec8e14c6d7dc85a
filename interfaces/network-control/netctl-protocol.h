/* netctl-protocol.h - the entrypoints of the network-control module, as both
 * the module (dispatch) and the core (request validation) know them. */
#ifndef NOVA_NETCTL_PROTOCOL_H
#define NOVA_NETCTL_PROTOCOL_H

#include "schema.h"

#define NETCTL_MTU_MIN 68
#define NETCTL_MTU_MAX 65535

enum netctl_entrypoint_id {
        NETCTL_TAP_CREATE,
        NETCTL_TAP_DELETE,
        NETCTL_TAP_LIST,
        NETCTL_TAP_GET,
        _NETCTL_MAX,
};

extern const struct proto_entrypoint netctl_entrypoints[_NETCTL_MAX];
extern const struct module_protocol netctl_protocol;

#endif
