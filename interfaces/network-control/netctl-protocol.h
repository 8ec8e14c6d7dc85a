/* netctl-protocol.h - the entrypoints of the network-control module, as both
 * the module (dispatch) and the core (request validation) know them.
 *
 * tap_create {port_uuid, mac, mtu, hybrid (bool, optional, default false),
 *             datapath ("system" | "netdev", optional, default "system")}:
 *   the tap tap<11> (MTU, MAC, mark, up). hybrid true: also the per-port
 *   bridge qbr<11> and the veth pair qvb<11> (in qbr) / qvo<11> (for OVS),
 *   the tap in qbr. hybrid false: hybrid pieces of ours are removed.
 *   datapath is the type of the Open vSwitch bridge that plugs the port;
 *   "netdev" (the userspace datapath, which forwards unfinished checksums as
 *   they are) turns qvb's tx checksum offload off, "system" leaves it on.
 * tap_delete {port_uuid}: the tap and the port's hybrid pieces of ours.
 * tap_get {port_uuid}, tap_list {after?, limit?} (a page: schema_page_req).
 *
 * Replies: tap_create, tap_get: { tap: TAP }; tap_list: { taps: [TAP...]
 * by port_uuid, total, truncated, next? }; tap_delete: {}.
 * TAP = { name, port_uuid, mac, mtu, ifindex, admin_up, carrier, operstate,
 *         hybrid (bool), ovs_dev (the device OVS plugs: qvo<11> when hybrid,
 *         else the tap name), bridge (qbr<11>, present only when hybrid) }
 * -EEXIST: a device with one of the derived names is not ours (create);
 * -EPERM: the tap's name is taken by a device not ours (delete);
 * -EBUSY: a device of the port is held by a foreign master (hybrid: the tap
 *   or qvb in anything but our qbr; plain: the tap in anything but our qbr or
 *   Open vSwitch's datapath), or a foreign device sits in our qbr, which a
 *   plain tap_create or tap_delete would delete; the error names the device.
 * -ERANGE: the MTU is outside what the kernel allows for a device of the port.
 * A refused tap_create changes nothing; an update that fails part-way is
 * rolled back. */
#ifndef NOVA_NETCTL_PROTOCOL_H
#define NOVA_NETCTL_PROTOCOL_H

#include "schema.h"

/* The kernel's MTU limits of a tap (tap.h: TAP_MTU_MIN/TAP_MTU_MAX; a tap's
 * max_mtu is 65535 - ETH_HLEN), the tightest of a port's devices. */
#define NETCTL_MTU_MIN 68
#define NETCTL_MTU_MAX 65521

enum netctl_entrypoint_id {
        NETCTL_TAP_CREATE,
        NETCTL_TAP_DELETE,
        NETCTL_TAP_LIST,
        NETCTL_TAP_GET,
        _NETCTL_MAX,
};

/* tap_create's datapath: "system" or "netdev". */
bool netctl_datapath_is_valid(const char *s);

extern const struct proto_entrypoint netctl_entrypoints[_NETCTL_MAX];
extern const struct module_protocol netctl_protocol;

#endif
