/* tap.h - tap devices of VM ports, made through /dev/net/tun and configured
 * and read through rtnetlink (libnl-3 / libnl-route-3). No `ip`, no shell.
 *
 * Every device is named with port_dev_name() from the port UUID and carries
 * the ownership mark IFLA_IFALIAS "nova-hypervisor:port=<port_uuid>". Nothing
 * without that exact mark, or not of the expected kind, is ever changed.
 *
 * What the mark proves: that whoever made or last changed the device meant it
 * to be ours for that port. Anyone with CAP_NET_ADMIN in the namespace can
 * write it, so it does not prove that we made the device. The second proof is
 * the device's kind and shape, which the alias cannot give: a tap must be a
 * tun device in tap mode that is persistent, single-queue and has no owner or
 * group (as tap_ensure() makes it); qbr a bridge; qvb/qvo a veth pair whose
 * ends are each other's peer. A forger who also makes a device of exactly
 * that shape (holding CAP_NET_ADMIN already) is adopted: that is no
 * escalation, and the MANIFEST says so.
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
/* The device group (IFLA_GROUP) our bridges and veth pairs are created in, in
 * the RTM_NEWLINK that creates them: the kernel takes IFLA_GROUP at creation
 * but not IFLA_IFALIAS, so the mark follows in a later request. A device of a
 * derived name and the expected kind, without an alias and in this group, is
 * one we created and did not get to mark (the module died in between): ours
 * to finish or delete. A foreign device of our names (the default group 0) is
 * still left alone. They stay in it (tap_delete_batch() uses other groups). */
#define TAP_BORN_GROUP 0x6e6f7661u /* "nova" */
/* Lowest and highest MTU tap_create accepts: the kernel's limits of a tap
 * (drivers/net/tun.c: min_mtu MIN_MTU 68, max_mtu MAX_MTU 65535 - ETH_HLEN =
 * 65521); bridges and veths allow 68..65535, so the tap's limit binds a
 * hybrid port too. Devices that exist are also checked against the
 * IFLA_MIN_MTU/IFLA_MAX_MTU the kernel reports for them. */
#define TAP_MTU_MIN 68u
#define TAP_MTU_MAX 65521u
/* Bytes of tap_ctx_detail()'s text, NUL included. */
#define TAP_DETAIL_MAX 160

/* Owns one NETLINK_ROUTE libnl socket (opened once, O_CLOEXEC) and one
 * receive buffer reused by every request. */
struct tap_ctx;

/* Open the netlink socket. 0 or -errno; *ret untouched on failure. */
int tap_ctx_new(struct tap_ctx **ret);
/* Close the socket and free ctx. Accepts NULL. */
void tap_ctx_free(struct tap_ctx *ctx);
/* Why the last tap_create/tap_delete on ctx failed, naming the device
 * (e.g. "veth-admin0 is a port of qbr0a0b0c0d-11, which would be deleted"),
 * or "" when there is nothing to add to the error number. Valid until the
 * next call on ctx. */
const char *tap_ctx_detail(const struct tap_ctx *ctx);
/* Tests only (the module never calls it): make the n-th changing rtnetlink
 * request (RTM_NEWLINK/SETLINK/DELLINK) from now on fail with -EIO without
 * being sent, once, as a kernel refusal at that step would. Lets a test
 * check that a failure at every step of tap_create leaves the port as it
 * was. n = 0 disarms. */
void tap_ctx_fail_request(struct tap_ctx *ctx, unsigned n);

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
 * Everything the kernel is known to refuse is checked before anything is
 * changed; an update of existing devices is all or nothing: when a later
 * step fails, the attributes changed so far (MTU, MAC, up state, master,
 * bridge options, IPv6 address generation) are set back as they were and
 * the devices this call created are removed. (The deletions of hybrid
 * pieces by a plain call come last and cannot be taken back.)
 * hybrid: also create (or converge) qbr, the qvb/qvo pair, the tap and qvb as
 * ports of qbr, same MTU and mark on all, addr_gen_mode none on qbr/qvb/qvo,
 * all up. !hybrid: our qbr and qvb/qvo of this port, if any, are removed (the
 * tap stays, plain). Idempotent: what exists and is ours is converged.
 * -EEXIST if a device of one of the names exists that is not ours (for a
 * veth: not our pair), nothing changed; -EBUSY, nothing changed, when a
 * device of ours is held by a foreign master: hybrid, the tap or qvb has a
 * master other than our qbr (e.g. OVS's datapath); plain, the tap has a
 * master that is neither our qbr nor Open vSwitch's datapath (a foreign
 * bridge would follow the tap's MTU); either, qvo has a master other than
 * OVS's datapath, or qbr has one; and (plain) our qbr, which a plain call
 * removes, holds a device that is neither our tap nor our qvb.
 * tap_ctx_detail() names the device. -EINVAL bad uuid/mac (zero,
 * multicast, or fe:...); -ERANGE mtu outside TAP_MTU_MIN..TAP_MTU_MAX or
 * outside the limits the kernel reports for an existing device of the port.
 * When a later step fails, every device this call created is
 * removed again (devices that existed before are left). *ret (may be NULL)
 * is the read-back, untouched on failure. */
int tap_create(struct tap_ctx *ctx, const char *port_uuid, const uint8_t mac[6], uint32_t mtu, bool hybrid,
               struct tap_info *ret);

/* What tap_create_opts() is asked beyond MAC and MTU. */
struct tap_options {
        bool hybrid;          /* tap_create()'s hybrid */
        /* Open vSwitch's userspace datapath (datapath_type netdev) plugs the
         * port. It reads its ports with packet sockets and forwards a frame
         * whose checksum its sender left unfinished (a guest's virtio-net
         * with checksum offload) as it is, so TCP from the guest fails. When
         * set, a hybrid port's qvb gets tx checksum offload off (SIOCETHTOOL
         * ETHTOOL_STXCSUM), so the kernel finishes such checksums where qbr
         * sends the frame into the veth pair; when not set, qvb's is on (the
         * kernel's default, set back if it was off). A failed call sets it back
         * as it was, like the other attributes. A plain port (the tap on OVS)
         * has no device where the kernel would finish them: the frame enters
         * OVS as the tap receives it from QEMU (see the MANIFEST). */
        bool netdev_datapath;
};

/* tap_create() with options (NULL: none). */
int tap_create_opts(struct tap_ctx *ctx, const char *port_uuid, const uint8_t mac[6], uint32_t mtu,
                    const struct tap_options *opts, struct tap_info *ret);

/* Delete our tap of port_uuid and, when present and ours, its qbr and its
 * qvb/qvo pair (a pair only as a whole; devices of those names that are not
 * ours are left alone). -ENOENT if none of ours exists; -EPERM if a device
 * with the tap's name exists without our mark for exactly this port; -EBUSY
 * if our qbr holds a device that is neither our tap nor our qvb (an
 * administrator's, which deleting the bridge would release; tap_ctx_detail()
 * names it). Nothing is touched in either case. */
int tap_delete(struct tap_ctx *ctx, const char *port_uuid);

/* Deleting ports in batches. Each device the kernel unregisters on its own
 * costs an RCU grace period (tens of ms, mostly waiting); a batch puts every
 * device it deletes into one device group of its own and deletes the group
 * with one RTM_DELLINK, which the kernel unregisters in one go.
 * tap_delete(ctx, u) is tap_delete_prepare() + tap_delete_batch() of one. */

/* Most ports the module puts in one batch. */
#define TAP_DELETE_BATCH_MAX 64

/* One port's deletion, checked by tap_delete_prepare(); the devices are
 * named by ifindex (the device checked is the device deleted). */
struct tap_delete_plan {
        char port_uuid[UUID_STR_LEN + 1];
        unsigned n;             /* devices in ifindex[] */
        int ifindex[3];         /* in order: our qvb (its peer qvo goes with it), our qbr, our tap */
        uint32_t group[3];      /* their device group (IFLA_GROUP) when checked */
        bool in_group[3];       /* tap_delete_batch() internal: moved to the batch's group */
        int result;             /* set by tap_delete_batch(): 0 or -errno for this port alone */
};

/* Every check of tap_delete() for port_uuid, nothing changed: the same
 * errors (-ENOENT, -EPERM, -EBUSY with tap_ctx_detail()), else 0 and *ret
 * says what to delete. */
int tap_delete_prepare(struct tap_ctx *ctx, const char *port_uuid, struct tap_delete_plan *ret);

/* Delete the devices of n prepared plans (n <= TAP_DELETE_BATCH_MAX is what
 * the module uses; any n works) and set each plan's result. One RTM_SETLINK
 * per device moves it into a device group no device had (random, nonzero);
 * a dump then checks that the group holds only those devices, and one
 * RTM_DELLINK deletes the group. A port whose move fails has its devices set
 * back to their group and fails alone (the others go on); a device gone
 * meanwhile is skipped (-ENOENT for a port whose every device went). When
 * the group holds a device not put there by the batch, or the kernel refuses
 * the group's deletion, the devices are deleted one by one as tap_delete()
 * did, each port with its own result; the foreign device is not touched. */
void tap_delete_batch(struct tap_ctx *ctx, struct tap_delete_plan *plans, size_t n);

/* Tests only: the device group tap_delete_batch() uses (0: a random one,
 * the default). Lets a test put a foreign device into it first. */
void tap_ctx_set_delete_group(struct tap_ctx *ctx, uint32_t group);

/* Read our tap of port_uuid, no heap allocation: one RTM_GETLINK round trip
 * for a tap without master, up to three more to judge hybrid plumbing.
 * -ENOENT if absent or not ours; -EINVAL for a bad uuid. */
int tap_get(struct tap_ctx *ctx, const char *port_uuid, struct tap_info *ret);

/* Every tap carrying our mark (one dump, then the hybrid lookups of tap_get
 * for taps that have a master). *ret is a malloc'd array to free(),
 * NULL when *ret_n is 0. Both untouched on failure. */
int tap_list(struct tap_ctx *ctx, struct tap_info **ret, size_t *ret_n);

/* One page of tap_list(): our taps in ascending order of port UUID, only
 * those above after (NULL: from the first), at most max (the hybrid lookups
 * run for these only). *ret_total: every tap of ours; *ret_remaining: those
 * above after (so more follow when it exceeds *ret_n). Outputs untouched on
 * failure. */
int tap_list_page(struct tap_ctx *ctx, const char *after, size_t max, struct tap_info **ret, size_t *ret_n,
                  size_t *ret_total, size_t *ret_remaining);

#endif
