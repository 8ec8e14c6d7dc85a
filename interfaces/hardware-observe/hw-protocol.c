/* hw-protocol.c - request schema of the hardware-observe entrypoint (it takes nothing). */
#include "hw-protocol.h"

#include "plugs.h"

const struct proto_entrypoint hw_entrypoints[_HW_MAX] = {
        [HW_HOST_INVENTORY] = { "host_inventory", schema_empty_req, false },
};

const struct module_protocol hw_protocol = {
        .plug = PLUG_HARDWARE_OBSERVE,
        .entrypoints = hw_entrypoints,
        .n_entrypoints = _HW_MAX,
};
