/* fw-nft.h - the nftables ruleset of nova-hypervisor's security groups, as
 * text for libnftables, built only from decoded values (UUIDs, MACs, parsed
 * addresses, numbers): no caller-supplied string ever reaches nftables.
 *
 *   table inet nova_hypervisor   (stateful filtering; br_netfilter passes bridged
 *                                 IPv4/IPv6 through its forward hook with conntrack)
 *     map ports { qbrXXXXXXXX-XX : jump port-<uuid> }
 *     chain forward  (hook forward): iifname vmap @ports
 *     chain common:  ND/MLD accept, ct invalid drop, ct established,related accept
 *     chain port-<uuid>: jump common; DHCP client out (literal matches only); [ether saddr MAC] jump sg-<g>-out...;
 *                        [ether saddr MAC] drop; DHCP server in; jump sg-<g>-in...; drop
 *     chain sg-<group uuid>-in / -out: one accept rule per security-group rule,
 *                        commented with its canonical text (secrule_format)
 *   table bridge nova_hypervisor (anti-spoofing, before br_netfilter)
 *     sets taps, vm_mac (tap . mac), vm_ip4 (tap . ip), vm_ip6 (tap . ip6), guard (qvb . mac)
 *     chain prerouting: iifname @taps jump from_vm; iifname . ether saddr @guard drop
 *     chain from_vm: source MAC/IP/ARP checks against the sets, RA and DHCP-server drop
 *
 * On the bridged path both iifname and oifname are the port's qbr, so the
 * direction is told by the source MAC: frames from the instance carry its MAC
 * (from_vm enforces it), and frames towards it never do (guard drops them). */
#ifndef NOVA_FW_NFT_H
#define NOVA_FW_NFT_H

#include "secrule.h"

#define FW_OWNER_MARK "nova-hypervisor v1" /* comment of the forward chain's dispatch rule */

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

/* Both tables with their sets, maps and fixed chains (a fresh install). */
void fw_build_skeleton(struct sbuf *b);
/* Delete both tables (repair of a damaged skeleton). Only names ours. */
void fw_build_drop_tables(struct sbuf *b, bool inet, bool bridge);

/* The chains of a group: replaced whole (flush + rules) when they exist. */
void fw_build_group(struct sbuf *b, const char *group_id, const struct secrule *rules, size_t n, bool exists);
void fw_build_group_remove(struct sbuf *b, const char *group_id);
/* The port's chain: replaced whole when it exists. */
void fw_build_port_chain(struct sbuf *b, const struct fw_port *p, bool exists);
/* The port's dispatch element and anti-spoofing elements. */
void fw_build_port_elements(struct sbuf *b, const struct fw_port *p);
/* Which of a port's elements exist (a delete of a missing one fails the batch). */
struct fw_elements {
        bool dispatch, tap, mac, guard, ll; /* the port's IPs are deleted as listed in p->ips */
};
/* Delete exactly the elements e says exist, for p as the kernel holds it. */
void fw_build_port_elements_delete(struct sbuf *b, const struct fw_port *p, const struct fw_elements *e);
void fw_build_port_chain_remove(struct sbuf *b, const char *port_uuid);

/* The nft statement of one rule (without verdict/comment), for tests. */
void fw_build_rule_match(struct sbuf *b, const struct secrule *r);

#endif
