/* sysobs-protocol.c - request schemas of the system-observe entrypoints (they take nothing). */
#include "sysobs-protocol.h"

#include "plugs.h"

const struct proto_entrypoint sysobs_entrypoints[_SYSOBS_MAX] = {
        [SYSOBS_HOST_LOAD] = { "host_load", schema_empty_req, false },
        [SYSOBS_INSTANCE_PROCS] = { "instance_procs", schema_empty_req, false },
};

const struct module_protocol sysobs_protocol = {
        .plug = PLUG_SYSTEM_OBSERVE,
        .entrypoints = sysobs_entrypoints,
        .n_entrypoints = _SYSOBS_MAX,
};
