/* fw-nft.h - the nftables ruleset of nova-hypervisor's security groups, as
 * text for libnftables, built only from decoded values (UUIDs, MACs, parsed
 * addresses, numbers): no caller-supplied string ever reaches nftables.
 *
 *   table inet nova_hypervisor[_<k>]  shard k (0: no suffix; 1..255): stateful filtering
 *                                 (br_netfilter passes bridged IPv4/IPv6 through its
 *                                 forward hook with conntrack); at most FW_SHARD_PORTS
 *                                 ports each, every shard a complete skeleton:
 *     set nd, map ports { qbrXXXXXXXX-XX : jump port-<uuid> }
 *     chain forward  (hook forward): iifname vmap @ports (the owner mark)
 *     chain common:  ND/MLD accept, ct invalid drop, ct established,related accept
 *     chain port-<uuid>: jump common; DHCP client out (literal matches only); [ether saddr MAC] jump sg-<g>-out...;
 *                        [ether saddr MAC] drop; DHCP server in; jump sg-<g>-in...; drop
 *     chain sg-<group uuid>-in / -out: one accept rule per security-group rule,
 *                        commented with its canonical text (secrule_format); in
 *                        each shard that has a port of the group
 *   table bridge nova_hypervisor (anti-spoofing, before br_netfilter; one for all shards)
 *     sets taps, vm_mac (tap . mac), vm_ip4 (tap . ip), vm_ip6 (tap . ip6), guard (qvb . mac)
 *     chain prerouting: iifname @taps jump from_vm; iifname . ether saddr @guard drop
 *     chain from_vm: VLAN-tagged drop; source MAC/IP/ARP checks against the sets, RA and DHCP-server drop
 *     chain forward (hook forward): oifname @taps: VLAN-tagged (802.1Q, 802.1ad) drop; not IPv4/IPv6/ARP drop;
 *                        tap* <-> qvb* with the tap not in @taps drop (fail closed: no rules, no frames)
 *     during a restore only: set quarantine (taps), chain quarantine (hook forward, before
 *                        the filter chains): iifname/oifname @quarantine drop (fw-nl.h)
 *   table bridge nova_hypervisor_guard (flags owner[, persist]: the module's socket owns it; fw-nl.h)
 *     chain prerouting (priority -300): iifname "tap*"|"qvb*": meta mark &= ~FW_GUARD_MARKS
 *     chain forward (priority 100, after br_netfilter's inet hook): tap* -> qvb* without both
 *                        bits drop, qvb* -> tap* without FW_ACCEPT_MARK drop; then both are cleared
 *   Every accept above of a port's frames (inet: group rules, the port chain's DHCP rules, common;
 *   bridge: ARP and RARP from a port, ARP towards one) sets FW_ACCEPT_MARK: the guard's pass;
 *   every accept of from_vm sets FW_VM_MARK: the anti-spoofing check's own pass. In the inet
 *   shards an accept is `jump accepted`, whose one rule sets the pass and accepts: three
 *   expressions fewer in every group rule (the kernel's cost of a rule is mostly per expression:
 *   it looks each one's type up by name), the same verdict and mark for the packet.
 *
 * Why shards: the kernel re-validates every chain of a table on each commit
 * that adds a rule to it, so a port's change costs what its table holds; a
 * packet goes through every shard's forward chain (same hook and priority),
 * and only its own shard's map has its qbr (the others fall through, policy
 * accept). A port stays in the shard that holds its chain.
 *
 * The text here is what libnftables runs for --purge, and the reference of
 * fw-nl.c: every change the module makes (skeletons, repairs, port and group
 * chains, set and map elements, their removal) is sent as a libnftnl netlink
 * batch built by fw-nl.c, which test-fw-nl checks against this text in the
 * kernel. libnftables costs about 40 us per rule and, for `add rule`/`add
 * element`/deletes, reads every chain and set of the network namespace
 * first; a netlink batch reads nothing.
 *
 * On the bridged path both iifname and oifname are the port's qbr, so the
 * direction is told by the source MAC: frames from the instance carry its MAC
 * (from_vm enforces it), and frames towards it never do (guard drops them). */
#ifndef NOVA_FW_NFT_H
#define NOVA_FW_NFT_H

#include "secrule.h"

#define FW_OWNER_MARK "nova-hypervisor v1" /* comment of the forward chain's dispatch rule */
#define FW_QUARANTINE "quarantine" /* the bridge table's set and chain of ports closed during a restore (fw-nl.h) */
#define FW_SHARD_PORTS 64   /* ports of one shard table at most */
/* The fail-closed guard (fw-nl.h): a bridge table owned by the module's
 * netlink socket, which drops every frame across a port bridge (tap* <->
 * qvb*) that does not carry FW_ACCEPT_MARK in its skb mark (and, from a
 * tap, FW_VM_MARK too: below). Every accept of the filter (inet shards: group
 * rules, the port chains' DHCP, the common chain; the bridge table: ARP and
 * RARP) sets that bit; the guard clears the bits when such a frame enters
 * (bridge prerouting, before everything) and after its check. Bits 24-25:
 * the project sets no other skb mark, Open vSwitch only when a flow sets
 * pkt_mark (such a bit is cleared before our filter); kube-proxy's are
 * 0x4000/0x8000. Whoever else uses them loses them on frames across our port
 * bridges only. */
#define FW_GUARD_TABLE FW_TABLE "_guard"
#define FW_ACCEPT_MARK 0x01000000u
#define FW_ACCEPTED_CHAIN "accepted" /* a shard's chain of the pass and accept (above) */
/* The bridge table's own pass: every accept of from_vm (the anti-spoofing
 * check of a frame from a port: its MAC, its source IP, ARP, RARP, the
 * address-less DHCP request and ND/MLD) sets it, and the guard lets a frame
 * from a tap* into a qvb* through only with both bits. Without it a spoofed
 * source IP from the port's own MAC crossed while the bridge table alone was
 * gone (the inet filter's egress rules accept it and give FW_ACCEPT_MARK:
 * they do not check the source IP, from_vm does). */
#define FW_VM_MARK 0x02000000u
#define FW_GUARD_MARKS (FW_ACCEPT_MARK | FW_VM_MARK)
#define FW_GUARD_PRIO_CLEAR (-300) /* bridge prerouting: before the bridge table (-200) */
#define FW_GUARD_PRIO_CHECK 100    /* bridge forward: after br_netfilter's inet forward hook (0) */
#define FW_GUARD_F_OWNER 0x2u      /* NFT_TABLE_F_OWNER (Linux 5.12) */
#define FW_GUARD_F_PERSIST 0x4u    /* NFT_TABLE_F_PERSIST (Linux 6.9): stays, orphaned, when the owner goes */
#define FW_MAX_SHARDS 256   /* shard indexes 0..255 */
#define FW_TABLE_NAME_MAX 32 /* "nova_hypervisor_255" and its NUL, with room */

/* The inet table of shard k (k < FW_MAX_SHARDS): FW_TABLE, or FW_TABLE "_<k>". */
void fw_shard_table(unsigned shard, char ret[FW_TABLE_NAME_MAX]);
/* The shard whose inet table is called name, or -1 (not one of our names:
 * exactly FW_TABLE, or FW_TABLE "_" and 1..255 without leading zeros). */
int fw_shard_from_table(const char *name);

/* A growing text buffer; the first error is sticky. */
struct sbuf {
        char *p;
        size_t len, cap;
        int err; /* 0 or -ENOMEM */
};
void sbuf_printf(struct sbuf *b, const char *fmt, ...) _printf_(2, 3);
void sbuf_reset(struct sbuf *b);
void sbuf_free(struct sbuf *b);

/* What a port looks like to the firewall. */
struct fw_port {
        char uuid[UUID_STR_LEN + 1];
        uint8_t mac[6];
        char ips[PORT_MAX_IPS][IP_STR_MAX]; /* canonical text (ip_canonical) */
        size_t n_ips;
        char groups[PORT_MAX_GROUPS][UUID_STR_LEN + 1];
        size_t n_groups;
};

/* One shard's inet table with its set, map and fixed chains. */
void fw_build_shard_skeleton(struct sbuf *b, unsigned shard);
/* The bridge table with its sets and fixed chains. */
void fw_build_bridge_skeleton(struct sbuf *b);
/* Shard 0 and the bridge table (a fresh install). */
void fw_build_skeleton(struct sbuf *b);
/* Delete a shard's table, or the bridge table (repair, or a shard's last port
 * gone). Only names ours. */
void fw_build_drop_shard(struct sbuf *b, unsigned shard);
void fw_build_drop_bridge(struct sbuf *b);
/* Delete the guard table (only its owner, or anyone once it is orphaned). */
void fw_build_drop_guard(struct sbuf *b);
/* Rules the skeleton puts in a fixed chain ("common", "forward" of a shard;
 * "prerouting", "from_vm" of the bridge table); 0 for any other name. */
size_t fw_fixed_chain_rules(bool inet, const char *chain);
/* The guard's passes those carry, weighed: FW_PASS_WEIGHT_ACCEPT for each
 * rule that sets FW_ACCEPT_MARK, FW_PASS_WEIGHT_VM for each that sets
 * FW_VM_MARK (the decoders add up the same). A table written before the guard,
 * or before FW_VM_MARK, adds up to less, and is rebuilt. */
#define FW_PASS_WEIGHT_ACCEPT 1u
#define FW_PASS_WEIGHT_VM 256u
size_t fw_fixed_chain_passes(bool inet, const char *chain);

/* The chains of a group in a shard: replaced whole (flush + rules) when they exist. */
void fw_build_group(struct sbuf *b, unsigned shard, const char *group_id, const struct secrule *rules, size_t n,
                    bool exists);
/* Delete one chain of a group ("in" or "out"), or both. */
void fw_build_group_chain_remove(struct sbuf *b, unsigned shard, const char *group_id, const char *dir);
void fw_build_group_remove(struct sbuf *b, unsigned shard, const char *group_id);
/* The port's chain in its shard: replaced whole when it exists. */
void fw_build_port_chain(struct sbuf *b, unsigned shard, const struct fw_port *p, bool exists);
/* The port's dispatch element (in its shard) and anti-spoofing elements. */
void fw_build_port_elements(struct sbuf *b, unsigned shard, const struct fw_port *p);
/* The same for n ports (ports[i] in shards[i]), one command per map and set. */
void fw_build_elements(struct sbuf *b, const struct fw_port *const *ports, const unsigned *shards, size_t n);
/* Which of a port's elements exist (a delete of a missing one fails the batch). */
struct fw_elements {
        bool dispatch, tap, mac, guard, ll; /* the port's IPs are deleted as listed in p->ips */
};
/* Delete exactly the elements e says exist, for p as the kernel holds it. */
void fw_build_port_elements_delete(struct sbuf *b, unsigned shard, const struct fw_port *p,
                                   const struct fw_elements *e);
void fw_build_port_chain_remove(struct sbuf *b, unsigned shard, const char *port_uuid);

/* What every builder (text and netlink) checks before naming a port: its
 * UUID, and (when asked) its group UUIDs and canonical IPs, within bounds. */
bool fw_port_valid(const struct fw_port *p, bool groups, bool ips);

/* The nft statement of one rule (without verdict/comment). family_checked:
 * the rule is in a chain that lets only its family through (below), so it
 * carries no `meta nfproto` of its own, and a remote prefix is matched as
 * the raw payload (`@nh,96,16 0xa01` for `ip saddr 10.1.0.0/16`: the same
 * load and compare, without the family dependency libnftables puts before
 * `ip saddr`; the rule's comment still says it plainly). */
void fw_build_rule_match(struct sbuf *b, const struct secrule *r, bool family_checked);

/* The family check of a group chain (`sg-<id>-in|out`). When two or more of
 * the group's rules of that direction are all of one family, the chain
 * starts with `meta nfproto != ipv4|ipv6 return comment "nh family 4|6"`
 * and its rules carry no family check of their own: two expressions fewer
 * per rule (the kernel's cost of loading a rule is mostly per expression).
 * The family (4 or 6) of that check for those rules, or 0: none (a mixed
 * direction, or fewer than two rules: each rule checks its own family). */
#define FW_FAMILY_COMMENT "nh family " /* then "4" or "6" */

/* How `ip[6] saddr|daddr CIDR` is matched on the packet, the same in the
 * text (fw_build_rule_match) and the netlink (fw-nl.c) builders: len bytes
 * loaded at off in the network header, masked with mask when masked, and
 * compared with the CIDR's first len bytes. A whole-byte prefix loads just
 * its bytes; any other prefix loads the whole address and masks it. */
struct fw_cidr_load {
        unsigned off, len;
        bool masked;
        uint8_t mask[16];
};
void fw_cidr_load(const struct cidr *c, bool daddr, struct fw_cidr_load *ret);
int fw_group_family(const struct secrule *rules, size_t n, enum secrule_dir dir);

#endif
