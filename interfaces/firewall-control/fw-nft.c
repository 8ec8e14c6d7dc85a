/* fw-nft.c - see fw-nft.h */
#include "fw-nft.h"

#include "fw-protocol.h"

#include <stdarg.h>

#define B "bridge " FW_TABLE
/* the guard's pass on every accept (fw-nft.h) */
#define PASS "meta mark set meta mark | 0x01000000 "
_Static_assert(FW_ACCEPT_MARK == 0x01000000u, "PASS spells FW_ACCEPT_MARK");
/* an accept in the inet shards: through the chain that gives the pass */
#define ACCEPTED "jump " FW_ACCEPTED_CHAIN
/* from_vm's own pass (FW_VM_MARK), alone on IP (the inet filter gives the
 * other) and with the guard's on ARP and RARP (the inet hooks never see them) */
#define VM_PASS "meta mark set meta mark | 0x02000000 "
#define BOTH_PASS "meta mark set meta mark | 0x03000000 "
_Static_assert(FW_VM_MARK == 0x02000000u && FW_GUARD_MARKS == 0x03000000u, "VM_PASS, BOTH_PASS spell the marks");

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (b->err)
                return;
        for (;;) {
                size_t room = b->cap - b->len;
                va_start(ap, fmt);
                n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->err = -EINVAL;
                        return;
                }
                if ((size_t)n < room) {
                        b->len += (size_t)n;
                        return;
                }
                size_t cap = b->cap ? b->cap * 2 : 4096;
                while (cap - b->len <= (size_t)n)
                        cap *= 2;
                char *p = realloc(b->p, cap);
                if (!p) {
                        b->err = -ENOMEM;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
}

void sbuf_reset(struct sbuf *b)
{
        b->len = 0;
        b->err = 0;
        if (b->p)
                b->p[0] = '\0';
}

void sbuf_free(struct sbuf *b)
{
        free(b->p);
        *b = (struct sbuf){ 0 };
}

/* The builders write only validated values; anything else fails the batch. */
static bool refuse(struct sbuf *b)
{
        if (!b->err)
                b->err = -EINVAL;
        return false;
}

static bool id_ok(struct sbuf *b, const char *id)
{
        return uuid_is_valid(id) || refuse(b);
}

bool fw_port_valid(const struct fw_port *p, bool groups, bool ips)
{
        char canon[IP_STR_MAX];

        if (!uuid_is_valid(p->uuid))
                return false;
        if (groups) {
                if (p->n_groups > PORT_MAX_GROUPS)
                        return false;
                for (size_t i = 0; i < p->n_groups; i++)
                        if (!uuid_is_valid(p->groups[i]))
                                return false;
        }
        if (ips) {
                if (p->n_ips > PORT_MAX_IPS)
                        return false;
                for (size_t i = 0; i < p->n_ips; i++)
                        if (ip_canonical(p->ips[i], canon) < 0 || !streq(canon, p->ips[i]))
                                return false;
        }
        return true;
}

static bool port_ok(struct sbuf *b, const struct fw_port *p, bool groups, bool ips)
{
        return fw_port_valid(p, groups, ips) || refuse(b);
}

void fw_shard_table(unsigned shard, char ret[FW_TABLE_NAME_MAX])
{
        if (shard == 0)
                (void)snprintf(ret, FW_TABLE_NAME_MAX, "%s", FW_TABLE);
        else
                (void)snprintf(ret, FW_TABLE_NAME_MAX, "%s_%u", FW_TABLE, shard);
}

int fw_shard_from_table(const char *name)
{
        size_t pl = strlen(FW_TABLE), len;
        unsigned k = 0;

        if (!name || strncmp(name, FW_TABLE, pl) != 0)
                return -1;
        if (name[pl] == '\0')
                return 0;
        name += pl;
        len = strlen(name);
        if (name[0] != '_' || len < 2 || len > 4 || name[1] == '0')
                return -1;
        for (size_t i = 1; i < len; i++) {
                if (name[i] < '0' || name[i] > '9')
                        return -1;
                k = k * 10 + (unsigned)(name[i] - '0');
        }
        return k < FW_MAX_SHARDS ? (int)k : -1;
}

/* "inet <shard's table>", or false (then b carries the error). */
static bool shard_ok(struct sbuf *b, unsigned shard, char ret[FW_TABLE_NAME_MAX + 8])
{
        char name[FW_TABLE_NAME_MAX];

        if (shard >= FW_MAX_SHARDS)
                return refuse(b);
        fw_shard_table(shard, name);
        (void)snprintf(ret, FW_TABLE_NAME_MAX + 8, "inet %s", name);
        return true;
}

/* The fixed chains' rules: the skeleton writes them, the decoder counts them. */
static const char *const accepted_rules[] = {
        PASS "accept",
};
static const char *const common_rules[] = {
        "icmpv6 type @nd " ACCEPTED,
        "ct state invalid drop",
        "ct state established,related " ACCEPTED,
};
static const char *const forward_rules[] = {
        "iifname vmap @ports comment \"" FW_OWNER_MARK "\"",
};
static const char *const prerouting_rules[] = {
        "iifname @taps jump from_vm comment \"" FW_OWNER_MARK "\"",
        "iifname . ether saddr @guard drop",
};
/* An instance port is not a trunk: a VLAN-tagged frame (802.1Q, 802.1ad)
 * would pass neither the inet hooks (br_netfilter hands them only untagged
 * IP, bridge-nf-filter-vlan-tagged being 0) nor these IP checks as IP. The
 * kernel moves the outer tag into the skb's metadata on receive; nftables'
 * `ether type` still reads it where the wire has it. */
static const char *const from_vm_rules[] = {
        "ether type { 8021q, 8021ad } drop",
        "iifname . ether saddr != @vm_mac drop",
        "icmpv6 type nd-router-advert drop",
        "udp sport 67 drop",
        "udp sport 547 drop",
        "ether type arp iifname . arp saddr ether != @vm_mac drop",
        /* ARP never reaches the inet hooks: its pass for the guard is given here */
        "ether type arp iifname . arp saddr ip @vm_ip4 " BOTH_PASS "accept",
        "ether type arp arp saddr ip 0.0.0.0 " BOTH_PASS "accept",
        "ether type arp drop",
        /* RARP: QEMU announces a guest with it after a live migration, and OVN's
         * activation-strategy=rarp binds the port on the new chassis when it sees it.
         * Its Ethernet source passed the vm_mac check above: only the port's own MAC. */
        "ether type 0x8035 " BOTH_PASS "accept",
        /* IP: the anti-spoofing pass; the inet filter gives the guard's */
        "iifname . ip saddr @vm_ip4 " VM_PASS "accept",
        "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 " VM_PASS "accept",
        "iifname . ip6 saddr @vm_ip6 " VM_PASS "accept",
        "ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } " VM_PASS "accept",
        "drop",
};

/* Towards an instance (from qvb, or flooded), where frames leave for its tap:
 * tagged frames are dropped, and so is every protocol but IPv4, IPv6 and ARP
 * (security groups speak IP only; from_vm allows no more outwards; neutron's
 * own OVS firewall does the same, its iptables one lets them in only because
 * iptables never sees them). */
static const char *const bridge_forward_rules[] = {
        "oifname @taps ether type { 8021q, 8021ad } drop",
        "oifname @taps ether type != { ip, ip6, arp } drop",
        /* Fail closed: a frame crossing a port bridge of ours (between its tap
         * and its qvb, either way) whose tap has no rules in place: between
         * the plumbing and the firewall step, after port_rules_remove, after
         * a repair that dropped its shard. A port's tap joins @taps in the
         * transaction that writes its chain and leaves it in the one that
         * deletes it. */
        "iifname \"tap*\" oifname \"qvb*\" iifname != @taps drop",
        "iifname \"qvb*\" oifname \"tap*\" oifname != @taps drop",
        /* ARP towards a port: the guard's pass (the inet hooks never see it) */
        "oifname @taps ether type arp " PASS,
};

static const struct {
        bool inet;
        const char *name, *base; /* base: the hook, type and policy of a base chain */
        const char *const *rules;
        size_t n_rules;
} fixed_chains[] = {
        /* in creation order: a chain exists before a rule jumps to it */
        { true, FW_ACCEPTED_CHAIN, NULL, accepted_rules, ARRAY_SIZE(accepted_rules) },
        { true, "common", NULL, common_rules, ARRAY_SIZE(common_rules) },
        { true, "forward", "type filter hook forward priority filter; policy accept; ", forward_rules,
          ARRAY_SIZE(forward_rules) },
        { false, "from_vm", NULL, from_vm_rules, ARRAY_SIZE(from_vm_rules) },
        { false, "prerouting", "type filter hook prerouting priority filter; policy accept; ", prerouting_rules,
          ARRAY_SIZE(prerouting_rules) },
        { false, "forward", "type filter hook forward priority filter; policy accept; ", bridge_forward_rules,
          ARRAY_SIZE(bridge_forward_rules) },
};

size_t fw_fixed_chain_rules(bool inet, const char *chain)
{
        for (size_t i = 0; i < ARRAY_SIZE(fixed_chains); i++)
                if (fixed_chains[i].inet == inet && streq(fixed_chains[i].name, chain))
                        return fixed_chains[i].n_rules;
        return 0;
}

size_t fw_fixed_chain_passes(bool inet, const char *chain)
{
        size_t n = 0;

        for (size_t i = 0; i < ARRAY_SIZE(fixed_chains); i++)
                if (fixed_chains[i].inet == inet && streq(fixed_chains[i].name, chain))
                        for (size_t k = 0; k < fixed_chains[i].n_rules; k++) {
                                const char *r = fixed_chains[i].rules[k];
                                n += strstr(r, PASS) || strstr(r, BOTH_PASS) || strstr(r, ACCEPTED)
                                             ? FW_PASS_WEIGHT_ACCEPT
                                             : 0;
                                n += strstr(r, VM_PASS) || strstr(r, BOTH_PASS) ? FW_PASS_WEIGHT_VM : 0;
                        }
        return n;
}

static void fixed_chains_build(struct sbuf *b, bool inet, const char *table)
{
        for (size_t i = 0; i < ARRAY_SIZE(fixed_chains); i++) {
                if (fixed_chains[i].inet != inet)
                        continue;
                sbuf_printf(b, "add chain %s %s { %s", table, fixed_chains[i].name,
                            fixed_chains[i].base ? fixed_chains[i].base : "");
                for (size_t k = 0; k < fixed_chains[i].n_rules; k++)
                        sbuf_printf(b, "%s; ", fixed_chains[i].rules[k]);
                sbuf_printf(b, "}\n");
        }
}

void fw_build_shard_skeleton(struct sbuf *b, unsigned shard)
{
        char t[FW_TABLE_NAME_MAX + 8];

        if (!shard_ok(b, shard, t))
                return;
        sbuf_printf(b,
                "add table %s { comment \"nova-hypervisor: security groups (firewall-control module); do not edit\"; }\n"
                "add set %s nd { type icmpv6_type; elements = { nd-neighbor-solicit, nd-neighbor-advert, "
                "nd-router-advert, mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report }; }\n"
                "add map %s ports { type ifname : verdict; }\n",
                t, t, t);
        fixed_chains_build(b, true, t);
}

void fw_build_bridge_skeleton(struct sbuf *b)
{
        sbuf_printf(b,
                "add table " B " { comment \"nova-hypervisor: anti-spoofing (firewall-control module); do not edit\"; }\n"
                "add set " B " taps { type ifname; }\n"
                "add set " B " vm_mac { type ifname . ether_addr; }\n"
                "add set " B " vm_ip4 { type ifname . ipv4_addr; }\n"
                "add set " B " vm_ip6 { type ifname . ipv6_addr; }\n"
                "add set " B " guard { type ifname . ether_addr; }\n");
        fixed_chains_build(b, false, B);
}

void fw_build_skeleton(struct sbuf *b)
{
        fw_build_shard_skeleton(b, 0);
        fw_build_bridge_skeleton(b);
}

void fw_build_drop_shard(struct sbuf *b, unsigned shard)
{
        char t[FW_TABLE_NAME_MAX + 8];

        if (shard_ok(b, shard, t))
                sbuf_printf(b, "delete table %s\n", t);
}

void fw_build_drop_bridge(struct sbuf *b) { sbuf_printf(b, "delete table " B "\n"); }

void fw_build_drop_guard(struct sbuf *b) { sbuf_printf(b, "delete table bridge " FW_GUARD_TABLE "\n"); }

int fw_group_family(const struct secrule *rules, size_t n, enum secrule_dir dir)
{
        size_t count = 0;
        int family = 0;

        for (size_t i = 0; i < n; i++) {
                if (rules[i].dir != dir)
                        continue;
                if (count++ && rules[i].family != family)
                        return 0;
                family = rules[i].family;
        }
        return count >= 2 && (family == 4 || family == 6) ? family : 0;
}

void fw_cidr_load(const struct cidr *c, bool daddr, struct fw_cidr_load *ret)
{
        memset(ret, 0, sizeof(*ret));
        ret->off = c->family == 6 ? (daddr ? 24 : 8) : (daddr ? 16 : 12);
        if (c->prefix % 8 == 0) {
                ret->len = c->prefix / 8u;
                return;
        }
        ret->len = c->family == 6 ? 16 : 4;
        ret->masked = true;
        for (unsigned i = 0; i < c->prefix; i++)
                ret->mask[i / 8] |= (uint8_t)(0x80u >> (i % 8));
}

static void put_hex(struct sbuf *b, const uint8_t *v, unsigned n)
{
        sbuf_printf(b, "0x");
        for (unsigned i = 0; i < n; i++)
                sbuf_printf(b, "%02x", v[i]);
}

/* `ip[6] saddr|daddr CIDR` as the raw payload (fw_build_rule_match) */
static void raw_cidr(struct sbuf *b, const struct cidr *c, bool daddr)
{
        struct fw_cidr_load l;

        fw_cidr_load(c, daddr, &l);
        sbuf_printf(b, "@nh,%u,%u ", l.off * 8, l.len * 8);
        if (l.masked) {
                sbuf_printf(b, "& ");
                put_hex(b, l.mask, l.len);
                sbuf_printf(b, " == ");
        }
        put_hex(b, c->addr, l.len);
}

void fw_build_rule_match(struct sbuf *b, const struct secrule *r, bool family_checked)
{
        const char *l3 = r->family == 6 ? "ip6" : "ip", *sep = "";

        if (!family_checked) {
                sbuf_printf(b, "meta nfproto %s", r->family == 6 ? "ipv6" : "ipv4");
                sep = " ";
        }
        if (r->has_remote && r->remote.prefix > 0) {
                char cidr[CIDR_STR_MAX];
                sbuf_printf(b, "%s", sep);
                if (family_checked)
                        raw_cidr(b, &r->remote, r->dir == SECRULE_EGRESS);
                else {
                        cidr_format(&r->remote, cidr);
                        sbuf_printf(b, "%s %s %s", l3, r->dir == SECRULE_EGRESS ? "daddr" : "saddr", cidr);
                }
                sep = " ";
        }
        if (r->proto >= 0) {
                sbuf_printf(b, "%smeta l4proto %d", sep, r->proto);
                sep = " ";
        }
        if (r->port_min) {
                if (r->port_min == r->port_max)
                        sbuf_printf(b, "%sth dport %u", sep, r->port_min);
                else
                        sbuf_printf(b, "%sth dport %u-%u", sep, r->port_min, r->port_max);
                sep = " ";
        }
        if (r->icmp_type >= 0) {
                sbuf_printf(b, "%s%s type %d", sep, r->family == 6 ? "icmpv6" : "icmp", r->icmp_type);
                sep = " ";
        }
        if (r->icmp_code >= 0)
                sbuf_printf(b, "%s%s code %d", sep, r->family == 6 ? "icmpv6" : "icmp", r->icmp_code);
}

static void group_chain(struct sbuf *b, const char *t, const char *gid, const char *dir, enum secrule_dir want,
                        const struct secrule *rules, size_t n, bool exists)
{
        if (exists)
                sbuf_printf(b, "flush chain %s sg-%s-%s\n", t, gid, dir);
        int family = fw_group_family(rules, n, want);

        sbuf_printf(b, "add chain %s sg-%s-%s { comment \"nova-hypervisor:group=%s\"; ", t, gid, dir, gid);
        if (family)
                sbuf_printf(b, "meta nfproto != %s return comment \"" FW_FAMILY_COMMENT "%d\"; ",
                            family == 6 ? "ipv6" : "ipv4", family);
        for (size_t i = 0; i < n; i++) {
                char text[SECRULE_TEXT_MAX];
                if (rules[i].dir != want)
                        continue;
                if (secrule_check(&rules[i], NULL, 0) < 0 || secrule_format(&rules[i], text, sizeof(text)) < 0) {
                        refuse(b); /* never leave a rule out silently */
                        return;
                }
                size_t before = b->len;
                fw_build_rule_match(b, &rules[i], family != 0);
                sbuf_printf(b, "%s" ACCEPTED " comment \"%s\"; ", b->len == before ? "" : " ", text);
        }
        sbuf_printf(b, "}\n");
}

void fw_build_group(struct sbuf *b, unsigned shard, const char *group_id, const struct secrule *rules, size_t n,
                    bool exists)
{
        char t[FW_TABLE_NAME_MAX + 8];

        if (!shard_ok(b, shard, t) || !id_ok(b, group_id))
                return;
        group_chain(b, t, group_id, "in", SECRULE_INGRESS, rules, n, exists);
        group_chain(b, t, group_id, "out", SECRULE_EGRESS, rules, n, exists);
}

void fw_build_group_chain_remove(struct sbuf *b, unsigned shard, const char *group_id, const char *dir)
{
        char t[FW_TABLE_NAME_MAX + 8];

        if (!shard_ok(b, shard, t) || !id_ok(b, group_id))
                return;
        if (!streq(dir, "in") && !streq(dir, "out")) {
                refuse(b);
                return;
        }
        sbuf_printf(b, "delete chain %s sg-%s-%s\n", t, group_id, dir);
}

void fw_build_group_remove(struct sbuf *b, unsigned shard, const char *group_id)
{
        fw_build_group_chain_remove(b, shard, group_id, "in");
        fw_build_group_chain_remove(b, shard, group_id, "out");
}

void fw_build_port_chain(struct sbuf *b, unsigned shard, const struct fw_port *p, bool exists)
{
        char mac[MAC_STR_LEN + 1], t[FW_TABLE_NAME_MAX + 8];

        if (!shard_ok(b, shard, t) || !port_ok(b, p, true, false))
                return;
        mac_format(p->mac, mac);
        if (exists)
                sbuf_printf(b, "flush chain %s port-%s\n", t, p->uuid);
        /* Only literal matches and jumps here: a named-set reference would make
         * libnftables fetch every set (and chain) to resolve it, and a port
         * change must cost the same whatever the number of ports. */
        sbuf_printf(b, "add chain %s port-%s { comment \"nova-hypervisor:port=%s\"; jump common; "
                       "ether saddr %s udp sport 68 udp dport 67 " ACCEPTED "; "
                       "ether saddr %s udp sport 546 udp dport 547 " ACCEPTED "; ", t, p->uuid, p->uuid, mac, mac);
        for (size_t i = 0; i < p->n_groups; i++)
                sbuf_printf(b, "ether saddr %s jump sg-%s-out comment \"nh group %s\"; ", mac, p->groups[i],
                            p->groups[i]);
        sbuf_printf(b, "ether saddr %s drop comment \"nh mac %s\"; udp sport 67 udp dport 68 " ACCEPTED "; "
                       "udp sport 547 udp dport 546 " ACCEPTED "; ", mac, mac);
        for (size_t i = 0; i < p->n_groups; i++)
                sbuf_printf(b, "jump sg-%s-in; ", p->groups[i]);
        sbuf_printf(b, "drop; }\n");
}

void fw_build_port_chain_remove(struct sbuf *b, unsigned shard, const char *port_uuid)
{
        char t[FW_TABLE_NAME_MAX + 8];

        if (!shard_ok(b, shard, t) || !id_ok(b, port_uuid))
                return;
        sbuf_printf(b, "delete chain %s port-%s\n", t, port_uuid);
}

/* The port's three device names, or false (then b carries the error). */
static bool port_devs(struct sbuf *b, const char *uuid, char tap[IFNAME_MAX], char qbr[IFNAME_MAX],
                      char qvb[IFNAME_MAX])
{
        if (port_dev_name("tap", uuid, tap) < 0 || port_dev_name("qbr", uuid, qbr) < 0 ||
            port_dev_name("qvb", uuid, qvb) < 0) {
                b->err = -EINVAL;
                return false;
        }
        return true;
}

/* Elements are added with `add set|map` of the existing set and its type
 * (the set is left as it is, the elements are added): unlike `add element`,
 * that needs no chain or set cache in libnftables. One command per set for
 * all the ports of a batch: libnftables' cost is per command. */
void fw_build_elements(struct sbuf *b, const struct fw_port *const *ports, const unsigned *shards, size_t n)
{
        static const struct {
                const char *set, *type;
        } bridge_sets[] = {
                { "taps", "ifname" }, { "vm_mac", "ifname . ether_addr" }, { "guard", "ifname . ether_addr" },
                { "vm_ip6", "ifname . ipv6_addr" }, { "vm_ip4", "ifname . ipv4_addr" },
        };
        char t[FW_TABLE_NAME_MAX + 8];

        for (size_t i = 0; i < n; i++) {
                char tap[IFNAME_MAX], qbr[IFNAME_MAX], qvb[IFNAME_MAX];
                if (!shard_ok(b, shards[i], t) || !port_ok(b, ports[i], false, true) ||
                    !port_devs(b, ports[i]->uuid, tap, qbr, qvb))
                        return;
        }
        /* the dispatch elements, one command per shard (in order of first use) */
        for (size_t i = 0; i < n; i++) {
                bool first = true;
                for (size_t k = 0; k < i && first; k++)
                        first = shards[k] != shards[i];
                if (!first)
                        continue;
                (void)shard_ok(b, shards[i], t);
                sbuf_printf(b, "add map %s ports { type ifname : verdict; elements = { ", t);
                for (size_t k = i, m = 0; k < n; k++) {
                        char qbr[IFNAME_MAX];
                        if (shards[k] != shards[i] || port_dev_name("qbr", ports[k]->uuid, qbr) < 0)
                                continue;
                        sbuf_printf(b, "%s\"%s\" : jump port-%s", m++ ? ", " : "", qbr, ports[k]->uuid);
                }
                sbuf_printf(b, " }; }\n");
        }
        /* the anti-spoofing elements, one command per set */
        for (size_t s = 0; s < ARRAY_SIZE(bridge_sets); s++) {
                size_t m = 0;
                for (size_t i = 0; i < n; i++) {
                        const struct fw_port *p = ports[i];
                        char tap[IFNAME_MAX], qvb[IFNAME_MAX], mac[MAC_STR_LEN + 1], ll[IP_STR_MAX];
                        (void)port_dev_name("tap", p->uuid, tap);
                        (void)port_dev_name("qvb", p->uuid, qvb);
                        mac_format(p->mac, mac);
                        ipv6_link_local_from_mac(p->mac, ll);
#define ELEM(...)                                                                                               \
        do {                                                                                                    \
                sbuf_printf(b, m++ ? ", " : "add set " B " %s { type %s; elements = { ", bridge_sets[s].set,     \
                            bridge_sets[s].type);                                                               \
                sbuf_printf(b, __VA_ARGS__);                                                                    \
        } while (0)
                        switch (s) {
                        case 0:
                                ELEM("\"%s\"", tap);
                                break;
                        case 1:
                                ELEM("\"%s\" . %s", tap, mac);
                                break;
                        case 2:
                                ELEM("\"%s\" . %s", qvb, mac);
                                break;
                        case 3:
                                ELEM("\"%s\" . %s", tap, ll);
                                for (size_t k = 0; k < p->n_ips; k++)
                                        if (strchr(p->ips[k], ':') && !streq(p->ips[k], ll))
                                                ELEM("\"%s\" . %s", tap, p->ips[k]);
                                break;
                        default:
                                for (size_t k = 0; k < p->n_ips; k++)
                                        if (!strchr(p->ips[k], ':'))
                                                ELEM("\"%s\" . %s", tap, p->ips[k]);
                                break;
                        }
#undef ELEM
                }
                if (m)
                        sbuf_printf(b, " }; }\n");
        }
}

void fw_build_port_elements(struct sbuf *b, unsigned shard, const struct fw_port *p)
{
        fw_build_elements(b, &p, &shard, 1);
}

void fw_build_port_elements_delete(struct sbuf *b, unsigned shard, const struct fw_port *p,
                                   const struct fw_elements *e)
{
        char tap[IFNAME_MAX], qbr[IFNAME_MAX], qvb[IFNAME_MAX], mac[MAC_STR_LEN + 1], ll[IP_STR_MAX];
        char t[FW_TABLE_NAME_MAX + 8];

        if (!shard_ok(b, shard, t) || !port_ok(b, p, false, true) || !port_devs(b, p->uuid, tap, qbr, qvb))
                return;
        mac_format(p->mac, mac);
        ipv6_link_local_from_mac(p->mac, ll);
        if (e->dispatch)
                sbuf_printf(b, "delete element %s ports { \"%s\" }\n", t, qbr);
        if (e->tap)
                sbuf_printf(b, "delete element " B " taps { \"%s\" }\n", tap);
        if (e->mac)
                sbuf_printf(b, "delete element " B " vm_mac { \"%s\" . %s }\n", tap, mac);
        if (e->guard)
                sbuf_printf(b, "delete element " B " guard { \"%s\" . %s }\n", qvb, mac);
        if (e->ll)
                sbuf_printf(b, "delete element " B " vm_ip6 { \"%s\" . %s }\n", tap, ll);
        for (size_t i = 0; i < p->n_ips; i++)
                sbuf_printf(b, "delete element " B " %s { \"%s\" . %s }\n", strchr(p->ips[i], ':') ? "vm_ip6" : "vm_ip4",
                            tap, p->ips[i]);
}
