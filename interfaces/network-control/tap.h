/* tap.h - tap devices of VM ports, made through /dev/net/tun and configured
 * and read through rtnetlink (libnl-3 / libnl-route-3). No `ip`, no shell.
 *
 * Every device is named with port_dev_name() from the port UUID and carries
 * the ownership mark IFLA_IFALIAS "nova-hypervisor:port=<port_uuid>". Nothing
 * without that exact mark, or not of the expected kind, is ever changed.
 *
 * Hybrid plugging (neutron's, for stateful filtering: packets of a tap on an
 * OVS bridge never reach netfilter): the tap is enslaved to a per-port Linux
 * bridge qbr<11> (forward delay 0, no STP), which also holds qvb<11>, one end
 * of a veth pair whose other end qvo<11> is what OVS plugs instead of the tap.
 * All four have the same MTU and the mark; qbr, qvb and qvo have IPv6
 * addr_gen_mode none (no link-local address).
 *
 * Library code: functions return 0 or -errno and never log.
 * A tap_ctx is not thread-safe: use one per thread. */
#ifndef NOVA_TAP_H
#define NOVA_TAP_H

#include "names.h"

/* Prefix of the ownership mark; the full mark is TAP_MARK_PREFIX + port UUID. */
#define TAP_MARK_PREFIX "nova-hypervisor:port="
/* Lowest and highest MTU tap_create accepts (the kernel may refuse more). */
#define TAP_MTU_MIN 68u
#define TAP_MTU_MAX 65535u

/* Owns one NETLINK_ROUTE libnl socket (opened once, O_CLOEXEC) and one
 * receive buffer reused by every request. */
struct tap_ctx;

/* Open the netlink socket. 0 or -errno; *ret untouched on failure. */
int tap_ctx_new(struct tap_ctx **ret);
/* Close the socket and free ctx. Accepts NULL. */
void tap_ctx_free(struct tap_ctx *ctx);

/* One of our taps as the kernel reports it. */
struct tap_info {
        char name[IFNAME_MAX];            /* tapXXXXXXXX-XX, from tap_name_from_port() */
        char port_uuid[UUID_STR_LEN + 1]; /* port UUID taken from our ownership mark */
        int ifindex;                      /* kernel interface index */
        uint32_t mtu;                     /* current MTU */
        uint8_t mac[6];                   /* current hardware address (fe:..., tap_mac_from_port) */
        bool admin_up;                    /* IFF_UP is set */
        bool carrier;                     /* IFF_LOWER_UP: false while no process holds the tap */
        char operstate[16];               /* "up", "down", "unknown", ... (RFC 2863 name) */
        int master;                       /* ifindex of the tap's master device, 0 when none */
        bool hybrid;                      /* qbr, qvb and qvo are ours and wired: tap and qvb in qbr, qvb-qvo peers */
        char bridge[IFNAME_MAX];          /* the qbr name when hybrid, "" otherwise */
        char ovs_dev[IFNAME_MAX];         /* the device OVS plugs: the qvo name when hybrid, else the tap name */
};

/* Create (or converge) the persistent tap (IFF_TAP|IFF_NO_PI) of port_uuid,
 * then set MTU, MAC, ownership mark and IFF_UP in one change request. mac is
 * the port's (the guest's, mac_parse() rules); the tap itself gets
 * tap_mac_from_port(mac): fe + its last five bytes.
 * hybrid: also create (or converge) qbr, the qvb/qvo pair, the tap and qvb as
 * ports of qbr, same MTU and mark on all, addr_gen_mode none on qbr/qvb/qvo,
 * all up. !hybrid: our qbr and qvb/qvo of this port, if any, are removed (the
 * tap stays, plain). Idempotent: what exists and is ours is converged.
 * -EEXIST if a device of one of the names exists that is not ours (for a
 * veth: not our pair), nothing changed; -EBUSY (hybrid) if the tap or qvb
 * already has a master other than our qbr (e.g. OVS's datapath), nothing
 * changed; -EINVAL bad uuid/mac (zero, multicast, or fe:...); -ERANGE mtu outside
 * 68..65535. When a later step fails, every device this call created is
 * removed again (devices that existed before are left). *ret (may be NULL)
 * is the read-back, untouched on failure. */
int tap_create(struct tap_ctx *ctx, const char *port_uuid, const uint8_t mac[6], uint32_t mtu, bool hybrid,
               struct tap_info *ret);

/* Delete our tap of port_uuid and, when present and ours, its qbr and its
 * qvb/qvo pair (a pair only as a whole; devices of those names that are not
 * ours are left alone). -ENOENT if none of ours exists; -EPERM if a device
 * with the tap's name exists without our mark for exactly this port (then
 * nothing is touched). */
int tap_delete(struct tap_ctx *ctx, const char *port_uuid);

/* Read our tap of port_uuid, no heap allocation: one RTM_GETLINK round trip
 * for a tap without master, up to three more to judge hybrid plumbing.
 * -ENOENT if absent or not ours; -EINVAL for a bad uuid. */
int tap_get(struct tap_ctx *ctx, const char *port_uuid, struct tap_info *ret);

/* Every tap carrying our mark (one dump, then the hybrid lookups of tap_get
 * for taps that have a master). *ret is a malloc'd array to free(),
 * NULL when *ret_n is 0. Both untouched on failure. */
int tap_list(struct tap_ctx *ctx, struct tap_info **ret, size_t *ret_n);

#endif
