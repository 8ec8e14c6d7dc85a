/* tap.h - tap devices of VM ports, made through /dev/net/tun and configured
 * and read through rtnetlink (libnl-3 / libnl-route-3). No `ip`, no shell.
 *
 * Every device is named with tap_name_from_port() and carries the ownership
 * mark IFLA_IFALIAS "nova-hypervisor:port=<port_uuid>". Nothing without that
 * exact mark, or that is not a tun/tap device of type tap, is ever changed.
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
        uint8_t mac[6];                   /* current hardware address */
        bool admin_up;                    /* IFF_UP is set */
        bool carrier;                     /* IFF_LOWER_UP: false while no process holds the tap */
        char operstate[16];               /* "up", "down", "unknown", ... (RFC 2863 name) */
};

/* Create (or converge) the persistent tap (IFF_TAP|IFF_NO_PI) of port_uuid,
 * then set MTU, MAC, ownership mark and IFF_UP in one change request.
 * Idempotent: our existing tap is converged. -EEXIST if a device of that name
 * exists that is not our tap (nothing changed); -EINVAL bad uuid/mac (zero or
 * multicast); -ERANGE mtu outside 68..65535; a tap created by this call is
 * removed again when a later step fails. *ret (may be NULL) is the read-back. */
int tap_create(struct tap_ctx *ctx, const char *port_uuid, const uint8_t mac[6], uint32_t mtu,
               struct tap_info *ret);

/* Delete our tap of port_uuid. -ENOENT if absent; -EPERM if a device of that
 * name exists without our mark for exactly this port (it is not touched). */
int tap_delete(struct tap_ctx *ctx, const char *port_uuid);

/* Read our tap of port_uuid: one RTM_GETLINK round trip, no heap allocation.
 * -ENOENT if absent or not ours; -EINVAL for a bad uuid. */
int tap_get(struct tap_ctx *ctx, const char *port_uuid, struct tap_info *ret);

/* Every tap carrying our mark (one dump). *ret is a malloc'd array to free(),
 * NULL when *ret_n is 0. Both untouched on failure. */
int tap_list(struct tap_ctx *ctx, struct tap_info **ret, size_t *ret_n);

#endif
