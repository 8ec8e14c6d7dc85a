/* ovs-protocol.c - request schemas of the openvswitch module's entrypoints. */
#include "ovs-protocol.h"

#include "plugs.h"

static const struct schema_field port_fields[] = {
        { .name = "port_uuid", .kind = SCH_UUID, .required = true },
        { .name = "instance_uuid", .kind = SCH_UUID, .required = true },
        { .name = "mac", .kind = SCH_MAC, .required = true },
        { .name = "mtu", .kind = SCH_U64, .required = true, .min = 68, .max = 65535 },
        /* hybrid plugging: the OVS port is the qvo veth end, not the tap */
        { .name = "hybrid", .kind = SCH_BOOL, .required = false },
        { .name = NULL },
};

static const struct schema_field add_many_req[] = {
        { .name = "ports", .kind = SCH_LIST, .required = true, .min = 1, .max = OVS_MAX_BATCH, .item = SCH_OBJ,
          .fields = port_fields },
        { .name = NULL },
};

/* Adding and removing ports uses the plug's privilege (the ovsdb socket is
 * root-equivalent for networking): audited. Reads are not. */
const struct proto_entrypoint ovs_entrypoints[_OVS_MAX] = {
        [OVS_PORT_ADD] = { "port_add", port_fields, true },
        [OVS_PORT_ADD_MANY] = { "port_add_many", add_many_req, true },
        [OVS_PORT_DEL] = { "port_del", schema_port_only_req, true },
        [OVS_PORT_LIST] = { "port_list", schema_page_req, false },
        [OVS_PORT_GET] = { "port_get", schema_port_only_req, false },
};

const struct module_protocol ovs_protocol = {
        .plug = PLUG_OPENVSWITCH,
        .entrypoints = ovs_entrypoints,
        .n_entrypoints = _OVS_MAX,
};

long long ovs_wait_deadline(long long started, long long progress_at, long long recent_ms, unsigned int port_timeout_ms)
{
        long long t = port_timeout_ms;
        long long cap = started + (long long)OVS_WAIT_SCALE_MAX * t;
        /* (3 * recent_ms cannot overflow: recent_ms is below the cap's span there) */
        long long window = recent_ms <= 0 ? 0 : recent_ms < cap - started ? 3 * recent_ms : cap - started;
        long long d;

        if (window < t)
                window = t;
        d = (progress_at > started ? progress_at : started) + window;
        return d < cap ? d : cap;
}

long long ovs_wait_recent(long long recent_ms, long long latency_ms)
{
        if (latency_ms < 0)
                latency_ms = 0;
        if (latency_ms >= recent_ms)
                return latency_ms;
        return recent_ms - (recent_ms - latency_ms) / 8;
}
