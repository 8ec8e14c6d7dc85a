/* ovs-protocol.h - the entrypoints of the openvswitch module, as both the
 * module (dispatch) and the core (request validation) know them.
 *
 * Identifiers in, names derived inside: the OVS Port and Interface are named
 * after the port's tap (tap_name_from_port()) or, with hybrid plugging, after
 * the port's qvo veth end (port_dev_name(QVO_PREFIX, ...)); the bridge is the
 * configured integration_bridge (an allowlist fixed at start, never from a
 * request). A Port of ours carries one of those two names of its port.
 *
 * port_add {port_uuid, instance_uuid, mac, mtu, hybrid (bool, optional,
 * default false: tap<11>; true: qvo<11>)}: one OVSDB transaction that
 * creates Port + Interface on the integration bridge with external_ids
 *   iface-id=<port_uuid> attached-mac=<mac> iface-status=active
 *   vm-uuid=<instance_uuid> vm-id=<instance_uuid>
 *   nova-hypervisor-port=<port_uuid>            (our ownership mark, on Port and Interface)
 * and mtu_request=<mtu>; then waits until ovs-vswitchd has assigned an ofport
 * (or set Interface.error): port_timeout_ms, longer while the switch keeps
 * assigning ofports and when it is slow lately (ovs_wait_deadline()).
 * Idempotent: an existing port
 * of ours with that name is converged (external_ids, mtu_request). A Port of
 * ours of the same port under the other name (tap vs qvo) is removed in the
 * same transaction (one OVS port per port); it is not put back if the call
 * fails afterwards.
 * On Interface.error or timeout the port is removed again and the call fails:
 * -ENODEV (error text from ovs-vswitchd) or -ETIMEDOUT.
 * With the config key ovn: iface-id is the logical port's name, which is the
 * port UUID exactly as given; after the ofports the call also waits until
 * ovn-controller has set external_ids:ovn-installed=true on every Interface,
 * within ovn_wait_ms (counted from the last ofport). When that passes:
 * ovn_timeout_policy = fail: -ETIMEDOUT naming the logical port (the ports the
 * call inserted are removed; the core rolls the boot back); continue: success,
 * the PORTs say ovn_binding "pending".
 * port_add_many {ports: [{port_uuid, instance_uuid, mac, mtu, hybrid}...]}: the
 * same in ONE transaction for up to OVS_MAX_BATCH ports; all or nothing.
 * port_del {port_uuid}: our Port of the port under either name; -ENOENT when
 * there is none.
 * port_get {port_uuid} (either name), port_list {after?, limit?} (ours only, by
 * the mark; a page in port UUID order: schema_page_req).
 *
 * Replies: port_add, port_get: { port: PORT }; port_add_many: { ports: [PORT...] };
 * port_list: { ports: [PORT...], total, truncated, next? }; port_del: {}.
 * PORT = { port_uuid, instance_uuid, name (the OVS Port/Interface name: tap<11>,
 *          or qvo<11> when hybrid), bridge, ofport (i64, -1 = none yet),
 *          mac, mtu, iface_status, link_state, error (only when OVS reports one),
 *          ovn_binding (only with ovn: "installed" once ovn-controller set
 *          ovn-installed=true on the Interface, else "pending") }
 * -EEXIST: a Port/Interface with our derived name exists without our mark.
 * -ENOTCONN: ovsdb-server is unreachable (the module reconnects by itself).
 *
 * Events (module -> core): "ovsdb_connection" { connected: bool, socket, error } */
#ifndef NOVA_OVS_PROTOCOL_H
#define NOVA_OVS_PROTOCOL_H

#include "schema.h"

#define OVS_MARK_KEY "nova-hypervisor-port"
#define OVS_MAX_BATCH 200 /* a reply of 200 ports (~2000 values) fits one frame */

/* How long a port_add waits for its ofports. ovs-vswitchd's userspace datapath
 * takes a pass over every port it has for each batch of changes; with a
 * thousand ports on a loaded host one pass takes seconds, and a port committed
 * meanwhile waits for the next one. So the wait adapts to what the switch takes
 * now and ends when it stalls, not at a fixed time: a window of port_timeout_ms,
 * or 3 times recent_ms (how long the switch took lately from a commit to the
 * ofport: the module's running figure) when that is longer, counted from the
 * later of the request's arrival and the last ofport the module saw assigned
 * to any port it waits for (progress_at, 0 = none yet); never later than
 * OVS_WAIT_SCALE_MAX * port_timeout_ms after the arrival. The core gives an OVS
 * unit that long on top of its own timeout. */
#define OVS_WAIT_SCALE_MAX 12
long long ovs_wait_deadline(long long started, long long progress_at, long long recent_ms, unsigned int port_timeout_ms);
/* The running figure after a port took latency_ms from commit to ofport:
 * follows a rise at once, a fall by an eighth of the difference. */
long long ovs_wait_recent(long long recent_ms, long long latency_ms);

enum ovs_entrypoint_id {
        OVS_PORT_ADD,
        OVS_PORT_ADD_MANY,
        OVS_PORT_DEL,
        OVS_PORT_LIST,
        OVS_PORT_GET,
        _OVS_MAX,
};

extern const struct proto_entrypoint ovs_entrypoints[_OVS_MAX];
extern const struct module_protocol ovs_protocol;

#endif
