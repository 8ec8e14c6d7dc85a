/* netctl-protocol.c - request schemas of the network-control entrypoints.
 * Requests carry identifiers only: the module derives the device name. */
#include "netctl-protocol.h"

#include "plugs.h"

bool netctl_datapath_is_valid(const char *s) { return s && (streq(s, "system") || streq(s, "netdev")); }

static const struct schema_field tap_create_req[] = {
        { .name = "port_uuid", .kind = SCH_UUID, .required = true },
        { .name = "mac", .kind = SCH_MAC, .required = true },
        { .name = "mtu", .kind = SCH_U64, .required = true, .min = NETCTL_MTU_MIN, .max = NETCTL_MTU_MAX },
        /* hybrid plugging: tap -> qbr bridge -> qvb/qvo veth pair (qvo goes to OVS) */
        { .name = "hybrid", .kind = SCH_BOOL, .required = false },
        /* Open vSwitch's datapath type (the core's bridge_datapath_type): "netdev"
         * (userspace) makes a hybrid port's qvb finish the guest's checksums */
        { .name = "datapath", .kind = SCH_STR, .required = false, .min = 6, .max = 6, .str_ok = netctl_datapath_is_valid },
        { .name = NULL },
};

const struct proto_entrypoint netctl_entrypoints[_NETCTL_MAX] = {
        [NETCTL_TAP_CREATE] = { "tap_create", tap_create_req, true },
        [NETCTL_TAP_DELETE] = { "tap_delete", schema_port_only_req, true },
        [NETCTL_TAP_LIST] = { "tap_list", schema_page_req, false },
        [NETCTL_TAP_GET] = { "tap_get", schema_port_only_req, false },
};

const struct module_protocol netctl_protocol = {
        .plug = PLUG_NETWORK_CONTROL,
        .entrypoints = netctl_entrypoints,
        .n_entrypoints = _NETCTL_MAX,
};
