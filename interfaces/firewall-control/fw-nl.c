/* fw-nl.c - see fw-nl.h */
#include "fw-nl.h"

#include "fw-protocol.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_arp.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

/* Room reserved before each message: libnftnl writes without bounds. A rule
 * has at most 12 expressions of < 100 bytes and a comment of < 140; a set
 * element < 200 bytes (a 48-byte key, a verdict naming a 41-byte chain). */
#define MSG_ROOM 8192
#define ELEM_ROOM 512
#define CHAIN_NAME_MAX 64

static bool fail(struct fw_nl *b, int err)
{
        if (!b->err)
                b->err = err;
        return false;
}

static bool reserve(struct fw_nl *b, size_t need)
{
        size_t cap;
        uint8_t *p;

        if (b->err)
                return false;
        if (b->len + need <= b->cap)
                return true;
        cap = b->cap ? b->cap : 65536;
        while (cap < b->len + need)
                cap *= 2;
        p = realloc(b->buf, cap);
        if (!p)
                return fail(b, -ENOMEM);
        /* libnftnl leaves padding bytes as they are: no stale bytes on the wire */
        memset(p + b->cap, 0, cap - b->cap);
        b->buf = p;
        b->cap = cap;
        return true;
}

static struct nlmsghdr *msg_start(struct fw_nl *b, uint16_t type, uint16_t family, uint16_t flags, size_t room)
{
        if (b->ended)
                return fail(b, -EINVAL), NULL;
        if (!reserve(b, room))
                return NULL;
        return nftnl_nlmsg_build_hdr((char *)b->buf + b->len, type, family, flags, b->seq++);
}

static void msg_done(struct fw_nl *b, struct nlmsghdr *h, size_t room)
{
        if (h->nlmsg_len > room) /* cannot happen with the sizes above; never send it */
                abort();
        b->last = b->len;
        b->len += NLMSG_ALIGN(h->nlmsg_len);
        b->n_msgs++;
}

void fw_nl_begin(struct fw_nl *b, uint32_t seq)
{
        b->len = b->last = 0;
        b->n_msgs = 0;
        b->err = 0;
        b->ended = false;
        b->seq0 = seq;
        b->seq = seq + 1;
        b->set_id = 0;
        b->has_genid = false;
        if (!reserve(b, NLMSG_SPACE(sizeof(struct nfgenmsg))))
                return;
        struct nlmsghdr *h = nftnl_batch_begin((char *)b->buf, seq);
        b->len = NLMSG_ALIGN(h->nlmsg_len);
}

int fw_nl_end(struct fw_nl *b)
{
        if (b->err)
                return b->err;
        if (b->ended || !b->n_msgs)
                return 0;
        if (!reserve(b, NLMSG_SPACE(sizeof(struct nfgenmsg))))
                return b->err;
        ((struct nlmsghdr *)(b->buf + b->last))->nlmsg_flags |= NLM_F_ACK;
        struct nlmsghdr *h = nftnl_batch_end((char *)b->buf + b->len, b->seq++);
        b->len += NLMSG_ALIGN(h->nlmsg_len);
        b->ended = true;
        return 0;
}

bool fw_nl_empty(const struct fw_nl *b) { return b->n_msgs == 0; }

int fw_nl_set_genid(struct fw_nl *b, uint32_t gen)
{
        const size_t at = NLMSG_SPACE(sizeof(struct nfgenmsg)), add = NLA_ALIGN(NLA_HDRLEN + sizeof(uint32_t));
        uint32_t be = htonl(gen);
        struct nlattr a = { .nla_len = NLA_HDRLEN + sizeof(uint32_t), .nla_type = NFNL_BATCH_GENID };

        if (b->err)
                return b->err;
        if (b->len < at) /* no BATCH_BEGIN: fw_nl_begin ran out of memory */
                return fail(b, -ENOMEM), b->err;
        if (!b->has_genid) {
                if (!reserve(b, add))
                        return b->err;
                memmove(b->buf + at + add, b->buf + at, b->len - at);
                memset(b->buf + at, 0, add);
                memcpy(b->buf + at, &a, sizeof(a));
                ((struct nlmsghdr *)b->buf)->nlmsg_len += (uint32_t)add;
                b->len += add;
                if (b->last)
                        b->last += add;
                b->has_genid = true;
        }
        memcpy(b->buf + at + NLA_HDRLEN, &be, sizeof(be));
        return 0;
}

void fw_nl_free(struct fw_nl *b)
{
        free(b->buf);
        *b = (struct fw_nl){ 0 };
}

void fw_nl_describe(const struct fw_nl *b, uint32_t seq, char *buf, size_t size)
{
        static const char *const names[NFT_MSG_MAX] = {
                [NFT_MSG_NEWTABLE] = "NEWTABLE", [NFT_MSG_DELTABLE] = "DELTABLE", [NFT_MSG_NEWCHAIN] = "NEWCHAIN",
                [NFT_MSG_DELCHAIN] = "DELCHAIN", [NFT_MSG_NEWRULE] = "NEWRULE",   [NFT_MSG_DELRULE] = "DELRULE",
                [NFT_MSG_NEWSETELEM] = "NEWSETELEM", [NFT_MSG_DELSETELEM] = "DELSETELEM",
        };
        size_t off = 0;

        while (off + sizeof(struct nlmsghdr) <= b->len) {
                const struct nlmsghdr *h = (const void *)(b->buf + off);
                if (h->nlmsg_len < sizeof(*h) || off + h->nlmsg_len > b->len)
                        break;
                if (h->nlmsg_seq == seq && seq == b->seq0) {
                        (void)snprintf(buf, size, "BATCH_BEGIN%s", b->has_genid ? ", bound to a generation" : "");
                        return;
                }
                if (h->nlmsg_seq == seq) {
                        unsigned t = h->nlmsg_type & 0xff;
                        const struct nfgenmsg *g = NLMSG_DATA(h);
                        (void)snprintf(buf, size, "%s %s (message %u of %u)",
                                       t < NFT_MSG_MAX && names[t] ? names[t] : "message",
                                       g->nfgen_family == NFPROTO_BRIDGE ? "bridge" : "inet", seq - b->seq0,
                                       b->n_msgs);
                        return;
                }
                off += NLMSG_ALIGN(h->nlmsg_len);
        }
        (void)snprintf(buf, size, "?");
}

/* ---- names ---- */

static bool shard_table(struct fw_nl *b, unsigned shard, char t[FW_TABLE_NAME_MAX])
{
        if (shard >= FW_MAX_SHARDS)
                return fail(b, -EINVAL);
        fw_shard_table(shard, t);
        return true;
}

static bool id_ok(struct fw_nl *b, const char *id) { return uuid_is_valid(id) || fail(b, -EINVAL); }

static bool port_ok(struct fw_nl *b, const struct fw_port *p, bool groups, bool ips)
{
        return fw_port_valid(p, groups, ips) || fail(b, -EINVAL);
}

/* ---- expressions: the same ones libnftables emits for the builders' text ---- */

struct rule {
        struct nftnl_rule *r;
        bool oom;
};

static struct nftnl_expr *expr(struct rule *r, const char *name)
{
        struct nftnl_expr *e = r->oom ? NULL : nftnl_expr_alloc(name);

        if (!e)
                r->oom = true;
        return e;
}

static void add(struct rule *r, struct nftnl_expr *e)
{
        if (e)
                nftnl_rule_add_expr(r->r, e);
}

static void e_meta(struct rule *r, uint32_t key)
{
        struct nftnl_expr *e = expr(r, "meta");

        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
                nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
        }
        add(r, e);
}

static void e_payload(struct rule *r, uint32_t base, uint32_t offset, uint32_t len)
{
        struct nftnl_expr *e = expr(r, "payload");

        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
                nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
                nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
                nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
        }
        add(r, e);
}

static void e_cmp(struct rule *r, enum nft_cmp_ops op, const void *data, uint32_t len)
{
        struct nftnl_expr *e = expr(r, "cmp");

        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
                nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
                nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
        }
        add(r, e);
}

/* register 1 = (register 1 & mask) ^ xor */
static void e_bitwise(struct rule *r, const void *mask, const void *xor, uint32_t len)
{
        struct nftnl_expr *e = expr(r, "bitwise");

        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
                nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
                nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
                nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
                nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xor, len);
        }
        add(r, e);
}

static void e_mask(struct rule *r, const uint8_t *mask, uint32_t len)
{
        static const uint8_t zero[16];

        e_bitwise(r, mask, zero, len);
}

/* `meta mark set meta mark | bits` (set true) or `& ~bits` (false): the
 * mark is one host-order u32, as libnftables writes it */
static void m_mark_bits(struct rule *r, uint32_t bits, bool set)
{
        uint32_t mask = ~bits, xor = set ? bits : 0;
        struct nftnl_expr *e;

        e_meta(r, NFT_META_MARK);
        e_bitwise(r, &mask, &xor, sizeof(mask));
        if ((e = expr(r, "meta"))) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
                nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
        }
        add(r, e);
}

/* What every accept of a port's frames carries: the guard's pass (fw-nl.h);
 * in the inet shards through their chain FW_ACCEPTED_CHAIN (fw-nft.h) */
static void m_accepted(struct rule *r) { m_mark_bits(r, FW_ACCEPT_MARK, true); }
/* from_vm's accepts: its own pass (FW_VM_MARK), with the guard's where the inet hooks never look */
static void m_vm_checked(struct rule *r) { m_mark_bits(r, FW_VM_MARK, true); }
static void m_vm_checked_accepted(struct rule *r) { m_mark_bits(r, FW_GUARD_MARKS, true); }

static void e_verdict(struct rule *r, int verdict, const char *chain)
{
        struct nftnl_expr *e = expr(r, "immediate");

        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
                nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
                if (chain)
                        nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
        }
        add(r, e);
}

/* `meta KEY VALUE` of a one-byte key (nfproto, l4proto) */
static void m_meta8(struct rule *r, uint32_t key, uint8_t value)
{
        e_meta(r, key);
        e_cmp(r, NFT_CMP_EQ, &value, 1);
}

/* `ether saddr MAC` in the inet family: libnftables adds `meta iiftype ether` */
static void m_ether_saddr(struct rule *r, const uint8_t mac[6])
{
        uint16_t ether = ARPHRD_ETHER;

        e_meta(r, NFT_META_IIFTYPE);
        e_cmp(r, NFT_CMP_EQ, &ether, sizeof(ether));
        e_payload(r, NFT_PAYLOAD_LL_HEADER, 6, 6);
        e_cmp(r, NFT_CMP_EQ, mac, 6);
}

/* `udp sport S udp dport D`: the l4proto dependency, then one 4-byte load
 * (libnftables merges the two adjacent fields) */
static void m_udp_ports(struct rule *r, uint16_t sport, uint16_t dport)
{
        uint8_t v[4] = { (uint8_t)(sport >> 8), (uint8_t)sport, (uint8_t)(dport >> 8), (uint8_t)dport };

        m_meta8(r, NFT_META_L4PROTO, IPPROTO_UDP);
        e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 4);
        e_cmp(r, NFT_CMP_EQ, v, sizeof(v));
}

/* `ip[6] saddr|daddr CIDR` (fw_cidr_load) */
static void m_cidr(struct rule *r, const struct cidr *c, bool daddr)
{
        struct fw_cidr_load l;

        fw_cidr_load(c, daddr, &l);
        e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, l.off, l.len);
        if (l.masked)
                e_mask(r, l.mask, l.len);
        e_cmp(r, NFT_CMP_EQ, c->addr, l.len);
}

/* fw_build_rule_match's statement (family_checked: its chain checked the family) */
static void m_secrule(struct rule *r, const struct secrule *s, bool family_checked)
{
        if (!family_checked)
                m_meta8(r, NFT_META_NFPROTO, s->family == 6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
        if (s->has_remote && s->remote.prefix > 0)
                m_cidr(r, &s->remote, s->dir == SECRULE_EGRESS);
        if (s->proto >= 0)
                m_meta8(r, NFT_META_L4PROTO, (uint8_t)s->proto);
        if (s->port_min) {
                uint8_t lo[2] = { (uint8_t)(s->port_min >> 8), (uint8_t)s->port_min };
                uint8_t hi[2] = { (uint8_t)(s->port_max >> 8), (uint8_t)s->port_max };
                e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
                if (s->port_min == s->port_max)
                        e_cmp(r, NFT_CMP_EQ, lo, 2);
                else {
                        e_cmp(r, NFT_CMP_GTE, lo, 2);
                        e_cmp(r, NFT_CMP_LTE, hi, 2);
                }
        }
        if (s->icmp_type >= 0 && s->icmp_code >= 0) { /* type and code: one 2-byte load */
                uint8_t v[2] = { (uint8_t)s->icmp_type, (uint8_t)s->icmp_code };
                e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2);
                e_cmp(r, NFT_CMP_EQ, v, 2);
        } else if (s->icmp_type >= 0) {
                uint8_t v = (uint8_t)s->icmp_type;
                e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
                e_cmp(r, NFT_CMP_EQ, &v, 1);
        }
}

/* ---- messages ---- */

static struct rule rule_new_family(struct fw_nl *b, uint16_t family, const char *table, const char *chain)
{
        struct rule r = { .r = b->err ? NULL : nftnl_rule_alloc() };

        if (!r.r) {
                fail(b, -ENOMEM);
                return r;
        }
        nftnl_rule_set_u32(r.r, NFTNL_RULE_FAMILY, family);
        nftnl_rule_set_str(r.r, NFTNL_RULE_TABLE, table);
        nftnl_rule_set_str(r.r, NFTNL_RULE_CHAIN, chain);
        return r;
}

static struct rule rule_new(struct fw_nl *b, const char *table, const char *chain)
{
        return rule_new_family(b, NFPROTO_INET, table, chain);
}

/* Append the rule (with its comment, when there is one) and free it. */
static void rule_put(struct fw_nl *b, struct rule *r, const char *comment)
{
        struct nlmsghdr *h;

        if (!r->r)
                return;
        if (r->oom)
                fail(b, -ENOMEM);
        if (comment && !b->err) {
                struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
                if (!u || !nftnl_udata_put_strz(u, NFTNL_UDATA_RULE_COMMENT, comment))
                        fail(b, u ? -EINVAL : -ENOMEM);
                else
                        nftnl_rule_set_data(r->r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u),
                                            nftnl_udata_buf_len(u));
                nftnl_udata_buf_free(u);
        }
        h = msg_start(b, NFT_MSG_NEWRULE, (uint16_t)nftnl_rule_get_u32(r->r, NFTNL_RULE_FAMILY),
                      NLM_F_CREATE | NLM_F_APPEND, MSG_ROOM);
        if (h) {
                nftnl_rule_nlmsg_build_payload(h, r->r);
                msg_done(b, h, MSG_ROOM);
        }
        nftnl_rule_free(r->r);
        r->r = NULL;
}

static void rule_verdict(struct fw_nl *b, const char *table, const char *chain, int verdict, const char *target,
                         const char *comment)
{
        struct rule r = rule_new(b, table, chain);

        e_verdict(&r, verdict, target);
        rule_put(b, &r, comment);
}

/* NEWCHAIN (add: an existing chain is left as it is) with our comment,
 * DELCHAIN, or DELRULE of every rule (flush). */
static void chain_msg(struct fw_nl *b, uint16_t type, const char *table, const char *chain, const char *comment)
{
        struct nftnl_chain *c = b->err ? NULL : nftnl_chain_alloc();
        struct nlmsghdr *h;

        if (!c) {
                fail(b, -ENOMEM);
                return;
        }
        nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
        nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
        nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chain);
        if (comment) {
                struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
                if (!u || !nftnl_udata_put_strz(u, NFTNL_UDATA_CHAIN_COMMENT, comment))
                        fail(b, u ? -EINVAL : -ENOMEM);
                else
                        nftnl_chain_set_data(c, NFTNL_CHAIN_USERDATA, nftnl_udata_buf_data(u),
                                             nftnl_udata_buf_len(u));
                nftnl_udata_buf_free(u);
        }
        if (type == NFT_MSG_DELRULE) {
                struct nftnl_rule *r = nftnl_rule_alloc();
                if (!r)
                        fail(b, -ENOMEM);
                else {
                        nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
                        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
                        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
                        if ((h = msg_start(b, type, NFPROTO_INET, 0, MSG_ROOM))) {
                                nftnl_rule_nlmsg_build_payload(h, r);
                                msg_done(b, h, MSG_ROOM);
                        }
                        nftnl_rule_free(r);
                }
        } else if ((h = msg_start(b, type, NFPROTO_INET, type == NFT_MSG_NEWCHAIN ? NLM_F_CREATE : 0, MSG_ROOM))) {
                nftnl_chain_nlmsg_build_payload(h, c);
                msg_done(b, h, MSG_ROOM);
        }
        nftnl_chain_free(c);
}

static void group_chain(struct fw_nl *b, const char *t, const char *gid, const char *dir, enum secrule_dir want,
                        const struct secrule *rules, size_t n, bool exists)
{
        char chain[CHAIN_NAME_MAX], comment[CHAIN_NAME_MAX];

        int family = fw_group_family(rules, n, want);

        (void)snprintf(chain, sizeof(chain), "sg-%s-%s", gid, dir);
        (void)snprintf(comment, sizeof(comment), "nova-hypervisor:group=%s", gid);
        if (exists)
                chain_msg(b, NFT_MSG_DELRULE, t, chain, NULL);
        chain_msg(b, NFT_MSG_NEWCHAIN, t, chain, comment);
        if (family) { /* `meta nfproto != ipvF return`: the rules below check no family of their own */
                uint8_t proto = family == 6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
                struct rule r = rule_new(b, t, chain);
                e_meta(&r, NFT_META_NFPROTO);
                e_cmp(&r, NFT_CMP_NEQ, &proto, 1);
                e_verdict(&r, NFT_RETURN, NULL);
                rule_put(b, &r, family == 6 ? FW_FAMILY_COMMENT "6" : FW_FAMILY_COMMENT "4");
        }
        for (size_t i = 0; i < n && !b->err; i++) {
                char text[SECRULE_TEXT_MAX];
                struct rule r;
                if (rules[i].dir != want)
                        continue;
                if (secrule_check(&rules[i], NULL, 0) < 0 || secrule_format(&rules[i], text, sizeof(text)) < 0) {
                        fail(b, -EINVAL); /* never leave a rule out silently */
                        return;
                }
                r = rule_new(b, t, chain);
                m_secrule(&r, &rules[i], family != 0);
                e_verdict(&r, NFT_JUMP, FW_ACCEPTED_CHAIN);
                rule_put(b, &r, text);
        }
}

void fw_nl_group(struct fw_nl *b, unsigned shard, const char *group_id, const struct secrule *rules, size_t n,
                 bool exists)
{
        char t[FW_TABLE_NAME_MAX];

        if (!shard_table(b, shard, t) || !id_ok(b, group_id))
                return;
        group_chain(b, t, group_id, "in", SECRULE_INGRESS, rules, n, exists);
        group_chain(b, t, group_id, "out", SECRULE_EGRESS, rules, n, exists);
}

void fw_nl_group_chain_remove(struct fw_nl *b, unsigned shard, const char *group_id, const char *dir)
{
        char t[FW_TABLE_NAME_MAX], chain[CHAIN_NAME_MAX];

        if (!shard_table(b, shard, t) || !id_ok(b, group_id))
                return;
        if (!streq(dir, "in") && !streq(dir, "out")) {
                fail(b, -EINVAL);
                return;
        }
        (void)snprintf(chain, sizeof(chain), "sg-%s-%s", group_id, dir);
        chain_msg(b, NFT_MSG_DELCHAIN, t, chain, NULL);
}

void fw_nl_port_chain(struct fw_nl *b, unsigned shard, const struct fw_port *p, bool exists)
{
        char t[FW_TABLE_NAME_MAX], chain[CHAIN_NAME_MAX], comment[CHAIN_NAME_MAX], target[CHAIN_NAME_MAX];
        char mac[MAC_STR_LEN + 1];
        struct rule r;

        if (!shard_table(b, shard, t) || !port_ok(b, p, true, false))
                return;
        mac_format(p->mac, mac);
        (void)snprintf(chain, sizeof(chain), "port-%s", p->uuid);
        (void)snprintf(comment, sizeof(comment), "nova-hypervisor:port=%s", p->uuid);
        if (exists)
                chain_msg(b, NFT_MSG_DELRULE, t, chain, NULL);
        chain_msg(b, NFT_MSG_NEWCHAIN, t, chain, comment);
        rule_verdict(b, t, chain, NFT_JUMP, "common", NULL);
        /* DHCP and DHCPv6 client requests from the port's MAC */
        r = rule_new(b, t, chain);
        m_ether_saddr(&r, p->mac);
        m_udp_ports(&r, 68, 67);
        e_verdict(&r, NFT_JUMP, FW_ACCEPTED_CHAIN);
        rule_put(b, &r, NULL);
        r = rule_new(b, t, chain);
        m_ether_saddr(&r, p->mac);
        m_udp_ports(&r, 546, 547);
        e_verdict(&r, NFT_JUMP, FW_ACCEPTED_CHAIN);
        rule_put(b, &r, NULL);
        for (size_t i = 0; i < p->n_groups; i++) {
                char c[CHAIN_NAME_MAX];
                (void)snprintf(target, sizeof(target), "sg-%s-out", p->groups[i]);
                (void)snprintf(c, sizeof(c), "nh group %s", p->groups[i]);
                r = rule_new(b, t, chain);
                m_ether_saddr(&r, p->mac);
                e_verdict(&r, NFT_JUMP, target);
                rule_put(b, &r, c);
        }
        {
                char c[CHAIN_NAME_MAX];
                (void)snprintf(c, sizeof(c), "nh mac %s", mac);
                r = rule_new(b, t, chain);
                m_ether_saddr(&r, p->mac);
                e_verdict(&r, NF_DROP, NULL);
                rule_put(b, &r, c);
        }
        /* DHCP and DHCPv6 server replies towards the port */
        r = rule_new(b, t, chain);
        m_udp_ports(&r, 67, 68);
        e_verdict(&r, NFT_JUMP, FW_ACCEPTED_CHAIN);
        rule_put(b, &r, NULL);
        r = rule_new(b, t, chain);
        m_udp_ports(&r, 547, 546);
        e_verdict(&r, NFT_JUMP, FW_ACCEPTED_CHAIN);
        rule_put(b, &r, NULL);
        for (size_t i = 0; i < p->n_groups; i++) {
                (void)snprintf(target, sizeof(target), "sg-%s-in", p->groups[i]);
                rule_verdict(b, t, chain, NFT_JUMP, target, NULL);
        }
        rule_verdict(b, t, chain, NF_DROP, NULL, NULL);
}

void fw_nl_port_chain_remove(struct fw_nl *b, unsigned shard, const char *port_uuid)
{
        char t[FW_TABLE_NAME_MAX], chain[CHAIN_NAME_MAX];

        if (!shard_table(b, shard, t) || !id_ok(b, port_uuid))
                return;
        (void)snprintf(chain, sizeof(chain), "port-%s", port_uuid);
        chain_msg(b, NFT_MSG_DELCHAIN, t, chain, NULL);
}

void fw_nl_drop_shard(struct fw_nl *b, unsigned shard)
{
        char t[FW_TABLE_NAME_MAX];
        struct nftnl_table *tb;
        struct nlmsghdr *h;

        if (!shard_table(b, shard, t))
                return;
        if (!(tb = nftnl_table_alloc())) {
                fail(b, -ENOMEM);
                return;
        }
        nftnl_table_set_u32(tb, NFTNL_TABLE_FAMILY, NFPROTO_INET);
        nftnl_table_set_str(tb, NFTNL_TABLE_NAME, t);
        if ((h = msg_start(b, NFT_MSG_DELTABLE, NFPROTO_INET, 0, MSG_ROOM))) {
                nftnl_table_nlmsg_build_payload(h, tb);
                msg_done(b, h, MSG_ROOM);
        }
        nftnl_table_free(tb);
}

/* ---- set and map elements ---- */

/* A set's key (concatenations: each field padded to 4 bytes), and for the
 * dispatch map the chain an element jumps to. */
struct key {
        uint8_t data[48];
        uint32_t len;
};

static void key_ifname(struct key *k, const char *name)
{
        memset(k->data, 0, sizeof(k->data));
        k->len = IFNAME_MAX;
        memcpy(k->data, name, strnlen(name, IFNAME_MAX - 1));
}

static void key_add(struct key *k, const void *v, uint32_t len)
{
        memcpy(k->data + k->len, v, len);
        k->len += (len + 3u) & ~3u;
}

static void key_ip(struct key *k, const char *ip)
{
        uint8_t a[16];
        bool v6 = strchr(ip, ':') != NULL;

        if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, a) == 1)
                key_add(k, a, v6 ? 16 : 4);
        else
                k->len = 0; /* not reached: port_ok checked it */
}

struct elems {
        struct nftnl_set *s;
        uint16_t family;
        size_t n;
        bool oom;
};

static void elems_open(struct fw_nl *b, struct elems *e, uint16_t family, const char *table, const char *set)
{
        *e = (struct elems){ .family = family, .s = b->err ? NULL : nftnl_set_alloc() };
        if (!e->s) {
                fail(b, -ENOMEM);
                return;
        }
        nftnl_set_set_u32(e->s, NFTNL_SET_FAMILY, family);
        nftnl_set_set_str(e->s, NFTNL_SET_TABLE, table);
        nftnl_set_set_str(e->s, NFTNL_SET_NAME, set);
}

static void elem(struct elems *e, const struct key *k, const char *jump)
{
        struct nftnl_set_elem *x;

        if (!e->s || e->oom || !k->len) {
                e->oom |= e->s && !k->len;
                return;
        }
        if (!(x = nftnl_set_elem_alloc())) {
                e->oom = true;
                return;
        }
        nftnl_set_elem_set(x, NFTNL_SET_ELEM_KEY, k->data, k->len);
        if (jump) {
                nftnl_set_elem_set_u32(x, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_JUMP);
                nftnl_set_elem_set_str(x, NFTNL_SET_ELEM_CHAIN, jump);
        }
        nftnl_set_elem_add(e->s, x);
        e->n++;
}

/* One NEWSETELEM (add: present elements are fine) or DELSETELEM message. */
static void elems_close(struct fw_nl *b, struct elems *e, uint16_t type)
{
        struct nlmsghdr *h;
        size_t room = 1024 + e->n * ELEM_ROOM;

        if (!e->s)
                return;
        if (e->oom)
                fail(b, -ENOMEM);
        if (e->n && (h = msg_start(b, type, e->family, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0, room))) {
                nftnl_set_elems_nlmsg_build_payload(h, e->s);
                msg_done(b, h, room);
        }
        nftnl_set_free(e->s);
        e->s = NULL;
}

struct port_keys {
        char tap[IFNAME_MAX], qbr[IFNAME_MAX], qvb[IFNAME_MAX], ll[IP_STR_MAX];
};

static bool port_keys(struct fw_nl *b, const struct fw_port *p, struct port_keys *k)
{
        if (port_dev_name("tap", p->uuid, k->tap) < 0 || port_dev_name("qbr", p->uuid, k->qbr) < 0 ||
            port_dev_name("qvb", p->uuid, k->qvb) < 0)
                return fail(b, -EINVAL);
        ipv6_link_local_from_mac(p->mac, k->ll);
        return true;
}

enum { S_TAPS, S_MAC, S_GUARD, S_IP6, S_IP4, N_BRIDGE_SETS };
static const char *const bridge_sets[N_BRIDGE_SETS] = { "taps", "vm_mac", "guard", "vm_ip6", "vm_ip4" };

/* The elements of set s for port p; all of them, or (delete) what e says exists. */
static void bridge_elems(struct elems *x, unsigned s, const struct fw_port *p, const struct port_keys *pk,
                         const struct fw_elements *e)
{
        struct key k;

        switch (s) {
        case S_TAPS:
                if (!e || e->tap) {
                        key_ifname(&k, pk->tap);
                        elem(x, &k, NULL);
                }
                break;
        case S_MAC:
        case S_GUARD:
                if (!e || (s == S_MAC ? e->mac : e->guard)) {
                        key_ifname(&k, s == S_MAC ? pk->tap : pk->qvb);
                        key_add(&k, p->mac, 6);
                        elem(x, &k, NULL);
                }
                break;
        case S_IP6:
                if (!e || e->ll) {
                        key_ifname(&k, pk->tap);
                        key_ip(&k, pk->ll);
                        elem(x, &k, NULL);
                }
                for (size_t i = 0; i < p->n_ips; i++)
                        if (strchr(p->ips[i], ':') && (e || !streq(p->ips[i], pk->ll))) {
                                key_ifname(&k, pk->tap);
                                key_ip(&k, p->ips[i]);
                                elem(x, &k, NULL);
                        }
                break;
        default:
                for (size_t i = 0; i < p->n_ips; i++)
                        if (!strchr(p->ips[i], ':')) {
                                key_ifname(&k, pk->tap);
                                key_ip(&k, p->ips[i]);
                                elem(x, &k, NULL);
                        }
                break;
        }
}

/* The dispatch elements (one message per shard, in the order of first use)
 * and/or the anti-spoofing elements (one message per set) of n ports. */
static void elements(struct fw_nl *b, const struct fw_port *const *ports, const unsigned *shards, size_t n,
                     bool dispatch, bool bridge)
{
        char t[FW_TABLE_NAME_MAX];
        bool used[FW_MAX_SHARDS] = { false };
        struct elems x;

        for (size_t i = 0; i < n; i++) {
                struct port_keys pk;
                if (!shard_table(b, shards[i], t) || !port_ok(b, ports[i], false, true) ||
                    !port_keys(b, ports[i], &pk))
                        return;
        }
        for (size_t i = 0; dispatch && i < n; i++) {
                if (used[shards[i]])
                        continue;
                used[shards[i]] = true;
                fw_shard_table(shards[i], t);
                elems_open(b, &x, NFPROTO_INET, t, "ports");
                for (size_t k = i; k < n; k++) {
                        struct port_keys pk;
                        struct key key;
                        char jump[CHAIN_NAME_MAX];
                        if (shards[k] != shards[i] || !port_keys(b, ports[k], &pk))
                                continue;
                        key_ifname(&key, pk.qbr);
                        (void)snprintf(jump, sizeof(jump), "port-%s", ports[k]->uuid);
                        elem(&x, &key, jump);
                }
                elems_close(b, &x, NFT_MSG_NEWSETELEM);
        }
        for (unsigned s = 0; bridge && s < N_BRIDGE_SETS; s++) {
                elems_open(b, &x, NFPROTO_BRIDGE, FW_TABLE, bridge_sets[s]);
                for (size_t i = 0; i < n; i++) {
                        struct port_keys pk;
                        if (port_keys(b, ports[i], &pk))
                                bridge_elems(&x, s, ports[i], &pk, NULL);
                }
                elems_close(b, &x, NFT_MSG_NEWSETELEM);
        }
}

void fw_nl_elements(struct fw_nl *b, const struct fw_port *const *ports, const unsigned *shards, size_t n)
{
        elements(b, ports, shards, n, true, true);
}

void fw_nl_dispatch_elements(struct fw_nl *b, const struct fw_port *const *ports, const unsigned *shards, size_t n)
{
        elements(b, ports, shards, n, true, false);
}

void fw_nl_bridge_elements(struct fw_nl *b, const struct fw_port *const *ports, const unsigned *shards, size_t n)
{
        elements(b, ports, shards, n, false, true);
}

void fw_nl_port_elements_delete(struct fw_nl *b, unsigned shard, const struct fw_port *p,
                                const struct fw_elements *e)
{
        char t[FW_TABLE_NAME_MAX];
        struct port_keys pk;
        struct elems x;

        if (!shard_table(b, shard, t) || !port_ok(b, p, false, true) || !port_keys(b, p, &pk))
                return;
        if (e->dispatch) {
                struct key k;
                key_ifname(&k, pk.qbr);
                elems_open(b, &x, NFPROTO_INET, t, "ports");
                elem(&x, &k, NULL);
                elems_close(b, &x, NFT_MSG_DELSETELEM);
        }
        for (unsigned s = 0; s < N_BRIDGE_SETS; s++) {
                elems_open(b, &x, NFPROTO_BRIDGE, FW_TABLE, bridge_sets[s]);
                bridge_elems(&x, s, p, &pk, e);
                elems_close(b, &x, NFT_MSG_DELSETELEM);
        }
}

/* ---- the skeletons: tables, their sets and fixed chains ----
 *
 * The same messages libnftables sends for fw-nft.c's skeleton text (read
 * with `nft --debug=mnl`; test-fw-nl compares the kernel's objects): the
 * sets' key types and the user data libnftables writes beside them (byte
 * order, `typeof` of anonymous sets), so that `nft list` and the decoder see
 * no difference. Sets made in the batch are numbered (NFTA_SET_ID): a rule
 * or an element message refers to an anonymous one by that number. */

/* nftables' datatypes (src/datatype.h there), and its concatenation of two */
enum { DT_ETHERADDR = 9, DT_ETHERTYPE = 10, DT_IPADDR = 7, DT_IP6ADDR = 8, DT_ICMP6_TYPE = 29, DT_IFNAME = 41 };
#define DT_CONCAT(a, b) (((a) << 6) | (b))
/* nftables' byte order codes in a set's user data */
enum { BO_INVALID = 0, BO_HOST = 1, BO_BIG = 2 };
/* the bridge family's hooks and filter priority (linux/netfilter_bridge.h,
 * whose includes clash with glibc's net/if_arp.h) */
enum { BR_HOOK_PRE_ROUTING = 0, BR_HOOK_FORWARD = 2, BR_PRIO_FILTER = -200 };

struct set_def {
        const char *name;    /* NULL: anonymous ("__set%d", constant) */
        uint32_t flags, key_type, key_len, data_type, data_len;
        uint32_t key_order;  /* BO_* */
        bool map;            /* a verdict map: data byte order and interval in the user data */
        bool concat;         /* a concatenation: an empty `typeof` in the user data */
        /* anonymous sets: the payload field they match, as libnftables records it */
        uint32_t typeof_proto, typeof_field;
};

static bool set_udata(const struct set_def *d, struct nftnl_udata_buf *u)
{
        bool ok = nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, d->key_order);

        if (d->map)
                ok = ok && nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATABYTEORDER, BO_INVALID) &&
                     nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATA_INTERVAL, 0);
        if (d->concat || !d->name) {
                struct nftnl_udata *outer = nftnl_udata_nest_start(u, NFTNL_UDATA_SET_KEY_TYPEOF), *inner;
                ok = ok && outer && nftnl_udata_put_u32(u, NFTNL_UDATA_SET_TYPEOF_EXPR, d->concat ? 13 : 7);
                inner = ok ? nftnl_udata_nest_start(u, NFTNL_UDATA_SET_TYPEOF_DATA) : NULL;
                if (inner && !d->concat) /* payload: protocol, field */
                        ok = nftnl_udata_put_u32(u, 0, d->typeof_proto) && nftnl_udata_put_u32(u, 1, d->typeof_field);
                if (inner)
                        nftnl_udata_nest_end(u, inner);
                if (outer)
                        nftnl_udata_nest_end(u, outer);
                ok = ok && inner;
        }
        return ok;
}

/* NEWSET; its number in the batch (0 on failure). */
static uint32_t set_msg(struct fw_nl *b, uint16_t family, const char *table, const struct set_def *d,
                        uint32_t n_elements)
{
        struct nftnl_set *s = b->err ? NULL : nftnl_set_alloc();
        struct nftnl_udata_buf *u = s ? nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN) : NULL;
        uint32_t id = ++b->set_id;
        struct nlmsghdr *h;

        if (!s || !u || !set_udata(d, u)) {
                fail(b, -ENOMEM);
                goto out;
        }
        nftnl_set_set_u32(s, NFTNL_SET_FAMILY, family);
        nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
        nftnl_set_set_str(s, NFTNL_SET_NAME, d->name ? d->name : "__set%d");
        nftnl_set_set_u32(s, NFTNL_SET_FLAGS, d->flags);
        nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, d->key_type);
        nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, d->key_len);
        if (d->map) {
                nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, d->data_type);
                nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, d->data_len);
        }
        nftnl_set_set_u32(s, NFTNL_SET_ID, id);
        if (!d->name)
                nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, n_elements);
        nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
        if ((h = msg_start(b, NFT_MSG_NEWSET, family, NLM_F_CREATE, MSG_ROOM))) {
                nftnl_set_nlmsg_build_payload(h, s);
                msg_done(b, h, MSG_ROOM);
        }
out:
        nftnl_udata_buf_free(u);
        if (s)
                nftnl_set_free(s);
        return b->err ? 0 : id;
}

/* A set made in this batch with its constant elements (each key len bytes). */
static uint32_t const_set(struct fw_nl *b, uint16_t family, const char *table, const struct set_def *d,
                          const void *keys, size_t n, uint32_t len)
{
        uint32_t id = set_msg(b, family, table, d, (uint32_t)n);
        struct elems x;

        if (!id || !n)
                return id;
        elems_open(b, &x, family, table, d->name ? d->name : "__set%d");
        if (x.s)
                nftnl_set_set_u32(x.s, NFTNL_SET_ID, id);
        for (size_t i = 0; i < n; i++) {
                struct key k = { .len = len };
                memcpy(k.data, (const uint8_t *)keys + i * len, len);
                elem(&x, &k, NULL);
        }
        elems_close(b, &x, NFT_MSG_NEWSETELEM);
        return id;
}

static void e_payload_to(struct rule *r, uint32_t base, uint32_t offset, uint32_t len, uint32_t reg)
{
        struct nftnl_expr *e = expr(r, "payload");

        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, reg);
                nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
                nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
                nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
        }
        add(r, e);
}

/* lookup of register 1 in a set (by name, and by number when made in this
 * batch); verdict: a map's verdict goes to the verdict register */
static void e_lookup(struct rule *r, const char *set, uint32_t id, bool verdict, bool invert)
{
        struct nftnl_expr *e = expr(r, "lookup");

        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
                if (verdict)
                        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_VERDICT);
                nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
                if (id)
                        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, id);
                if (invert)
                        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
        }
        add(r, e);
}

/* `ct state S` (a bit of the state register) */
static void m_ct_state(struct rule *r, uint32_t bits)
{
        static const uint32_t zero;
        struct nftnl_expr *e = expr(r, "ct");

        if (e) {
                nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
                nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
        }
        add(r, e);
        e_mask(r, (const uint8_t *)&bits, sizeof(bits));
        e_cmp(r, NFT_CMP_NEQ, &zero, sizeof(zero));
}

/* a 2-byte ether type, as on the wire */
static void m_ethertype(struct rule *r, uint16_t type)
{
        uint16_t be = htons(type);

        e_payload(r, NFT_PAYLOAD_LL_HEADER, 12, 2);
        e_cmp(r, NFT_CMP_EQ, &be, 2);
}

static void m_protocol(struct rule *r, uint16_t type)
{
        uint16_t be = htons(type);

        e_meta(r, NFT_META_PROTOCOL);
        e_cmp(r, NFT_CMP_EQ, &be, 2);
}

/* a NEWCHAIN of a fixed chain: a regular one, or a base chain of type filter
 * with policy accept on hook at prio */
static void fixed_chain(struct fw_nl *b, uint16_t family, const char *table, const char *name, bool base,
                        uint32_t hook, int32_t prio)
{
        struct nftnl_chain *c = b->err ? NULL : nftnl_chain_alloc();
        struct nlmsghdr *h;

        if (!c) {
                fail(b, -ENOMEM);
                return;
        }
        nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, family);
        nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
        nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
        if (base) {
                nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
                nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
                nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
                nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
        }
        if ((h = msg_start(b, NFT_MSG_NEWCHAIN, family, NLM_F_CREATE, MSG_ROOM))) {
                nftnl_chain_nlmsg_build_payload(h, c);
                msg_done(b, h, MSG_ROOM);
        }
        nftnl_chain_free(c);
}

/* NEWTABLE (comment: NULL for a bare `add table`, which leaves a table that
 * exists as it is) or DELTABLE */
#define NO_FLAGS UINT32_MAX /* a NEWTABLE without the flags attribute */

static void table_msg_flags(struct fw_nl *b, uint16_t type, uint16_t family, const char *name, const char *comment,
                            uint32_t flags)
{
        struct nftnl_table *t = b->err ? NULL : nftnl_table_alloc();
        struct nftnl_udata_buf *u = NULL;
        struct nlmsghdr *h;

        if (!t) {
                fail(b, -ENOMEM);
                return;
        }
        nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, family);
        nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
        if (type == NFT_MSG_NEWTABLE && flags != NO_FLAGS)
                nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, flags);
        if (comment) {
                u = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
                if (!u || !nftnl_udata_put_strz(u, NFTNL_UDATA_TABLE_COMMENT, comment))
                        fail(b, -ENOMEM);
                else
                        nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
        }
        if ((h = msg_start(b, type, family, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0, MSG_ROOM))) {
                nftnl_table_nlmsg_build_payload(h, t);
                msg_done(b, h, MSG_ROOM);
        }
        nftnl_udata_buf_free(u);
        nftnl_table_free(t);
}

static void table_msg(struct fw_nl *b, uint16_t type, uint16_t family, const char *name, const char *comment)
{
        table_msg_flags(b, type, family, name, comment, 0);
}

void fw_nl_shard_skeleton(struct fw_nl *b, unsigned shard)
{
        static const uint8_t nd_types[] = { 135, 136, 134, 130, 131, 132, 143 }; /* the set nd, in its order */
        static const struct set_def nd = { .name = "nd", .key_type = DT_ICMP6_TYPE, .key_len = 1, .key_order = BO_BIG };
        static const struct set_def ports = { .name = "ports", .flags = NFT_SET_MAP, .key_type = DT_IFNAME,
                                              .key_len = IFNAME_MAX, .data_type = NFT_DATA_VERDICT, .map = true,
                                              .key_order = BO_HOST };
        char t[FW_TABLE_NAME_MAX];
        uint32_t nd_id, ports_id;
        struct rule r;

        if (!shard_table(b, shard, t))
                return;
        table_msg(b, NFT_MSG_NEWTABLE, NFPROTO_INET, t,
                  "nova-hypervisor: security groups (firewall-control module); do not edit");
        nd_id = const_set(b, NFPROTO_INET, t, &nd, nd_types, sizeof(nd_types), 1);
        ports_id = set_msg(b, NFPROTO_INET, t, &ports, 0);
        /* accepted: the guard's pass, accept (every accept of the shard jumps here) */
        fixed_chain(b, NFPROTO_INET, t, FW_ACCEPTED_CHAIN, false, 0, 0);
        r = rule_new(b, t, FW_ACCEPTED_CHAIN);
        m_accepted(&r);
        e_verdict(&r, NF_ACCEPT, NULL);
        rule_put(b, &r, NULL);
        /* common: ND/MLD accept, ct invalid drop, ct established,related accept */
        fixed_chain(b, NFPROTO_INET, t, "common", false, 0, 0);
        r = rule_new(b, t, "common");
        m_meta8(&r, NFT_META_NFPROTO, NFPROTO_IPV6);
        m_meta8(&r, NFT_META_L4PROTO, IPPROTO_ICMPV6);
        e_payload(&r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
        e_lookup(&r, "nd", nd_id, false, false);
        e_verdict(&r, NFT_JUMP, FW_ACCEPTED_CHAIN);
        rule_put(b, &r, NULL);
        r = rule_new(b, t, "common");
        m_ct_state(&r, 1u /* invalid */);
        e_verdict(&r, NF_DROP, NULL);
        rule_put(b, &r, NULL);
        r = rule_new(b, t, "common");
        m_ct_state(&r, 2u | 4u /* established, related */);
        e_verdict(&r, NFT_JUMP, FW_ACCEPTED_CHAIN);
        rule_put(b, &r, NULL);
        /* forward: iifname vmap @ports, with the owner mark */
        fixed_chain(b, NFPROTO_INET, t, "forward", true, NF_INET_FORWARD, 0);
        r = rule_new(b, t, "forward");
        e_meta(&r, NFT_META_IIFNAME);
        e_lookup(&r, "ports", ports_id, true, false);
        rule_put(b, &r, FW_OWNER_MARK);
}

/* The bridge table's named sets, by their ids in the batch. */
struct bridge_set_ids {
        uint32_t taps, mac, ip4, ip6, guard;
};

/* anonymous: ether types (typeof `ether type`: protocol 17, field 3), ICMPv6 types (14, 1) */
static const struct set_def bridge_ethertypes = { .flags = NFT_SET_ANONYMOUS | NFT_SET_CONSTANT,
                                                  .key_type = DT_ETHERTYPE, .key_len = 2, .key_order = BO_BIG,
                                                  .typeof_proto = 17, .typeof_field = 3 };
static const uint8_t bridge_tagged[] = { 0x81, 0x00, 0x88, 0xa8 }; /* 8021q, 8021ad */
static const uint8_t bridge_zero16[16];

#define BR(chain) (r = rule_new_family(b, NFPROTO_BRIDGE, FW_TABLE, chain))

/* The bridge table and its named sets (taps, vm_mac, vm_ip4, vm_ip6, guard). */
static void bridge_table_and_sets(struct fw_nl *b, struct bridge_set_ids *ids)
{
        static const struct set_def taps = { .name = "taps", .key_type = DT_IFNAME, .key_len = IFNAME_MAX,
                                             .key_order = BO_HOST };
#define CONCAT_SET(n, type, len) { .name = n, .key_type = DT_CONCAT(DT_IFNAME, type), .key_len = IFNAME_MAX + (len), \
                                   .concat = true }
        static const struct set_def vm_mac = CONCAT_SET("vm_mac", DT_ETHERADDR, 8),
                                    vm_ip4 = CONCAT_SET("vm_ip4", DT_IPADDR, 4),
                                    vm_ip6 = CONCAT_SET("vm_ip6", DT_IP6ADDR, 16),
                                    guard = CONCAT_SET("guard", DT_ETHERADDR, 8);
#undef CONCAT_SET
        const char *t = FW_TABLE;

        table_msg(b, NFT_MSG_NEWTABLE, NFPROTO_BRIDGE, t,
                  "nova-hypervisor: anti-spoofing (firewall-control module); do not edit");
        ids->taps = set_msg(b, NFPROTO_BRIDGE, t, &taps, 0);
        ids->mac = set_msg(b, NFPROTO_BRIDGE, t, &vm_mac, 0);
        ids->ip4 = set_msg(b, NFPROTO_BRIDGE, t, &vm_ip4, 0);
        ids->ip6 = set_msg(b, NFPROTO_BRIDGE, t, &vm_ip6, 0);
        ids->guard = set_msg(b, NFPROTO_BRIDGE, t, &guard, 0);
}

/* The from_vm chain, its first part: what a VM may never send whatever its
 * addresses (tagged frames, a foreign source MAC, router adverts, DHCP
 * server replies). */
static void bridge_from_vm_frames(struct fw_nl *b, const struct bridge_set_ids *ids)
{
        const char *t = FW_TABLE;
        uint32_t id;
        struct rule r;

        fixed_chain(b, NFPROTO_BRIDGE, t, "from_vm", false, 0, 0);
        /* ether type { 8021q, 8021ad } drop */
        id = const_set(b, NFPROTO_BRIDGE, t, &bridge_ethertypes, bridge_tagged, 2, 2);
        BR("from_vm");
        e_payload(&r, NFT_PAYLOAD_LL_HEADER, 12, 2);
        e_lookup(&r, "__set%d", id, false, false);
        e_verdict(&r, NF_DROP, NULL);
        rule_put(b, &r, NULL);
        /* iifname . ether saddr != @vm_mac drop */
        BR("from_vm");
        e_meta(&r, NFT_META_IIFNAME);
        e_payload_to(&r, NFT_PAYLOAD_LL_HEADER, 6, 6, NFT_REG_2);
        e_lookup(&r, "vm_mac", ids->mac, false, true);
        e_verdict(&r, NF_DROP, NULL);
        rule_put(b, &r, NULL);
        /* icmpv6 type nd-router-advert drop */
        BR("from_vm");
        m_ethertype(&r, 0x86dd);
        m_meta8(&r, NFT_META_L4PROTO, IPPROTO_ICMPV6);
        {
                uint8_t ra = 134;
                e_payload(&r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
                e_cmp(&r, NFT_CMP_EQ, &ra, 1);
        }
        e_verdict(&r, NF_DROP, NULL);
        rule_put(b, &r, NULL);
        /* udp sport 67 drop; udp sport 547 drop */
        for (int i = 0; i < 2; i++) {
                uint16_t sport = htons(i ? 547 : 67);
                BR("from_vm");
                m_meta8(&r, NFT_META_L4PROTO, IPPROTO_UDP);
                e_payload(&r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2);
                e_cmp(&r, NFT_CMP_EQ, &sport, 2);
                e_verdict(&r, NF_DROP, NULL);
                rule_put(b, &r, NULL);
        }
}

/* The from_vm chain, ARP: only from the port's MAC, for its IPv4 addresses
 * (or 0.0.0.0, a probe); any other ARP drops. */
static void bridge_from_vm_arp(struct fw_nl *b, const struct bridge_set_ids *ids)
{
        struct rule r;

        /* ether type arp iifname . arp saddr ether != @vm_mac drop */
        BR("from_vm");
        m_ethertype(&r, 0x0806);
        e_meta(&r, NFT_META_IIFNAME);
        e_payload_to(&r, NFT_PAYLOAD_NETWORK_HEADER, 8, 6, NFT_REG_2);
        e_lookup(&r, "vm_mac", ids->mac, false, true);
        e_verdict(&r, NF_DROP, NULL);
        rule_put(b, &r, NULL);
        /* ether type arp iifname . arp saddr ip @vm_ip4 accept */
        BR("from_vm");
        m_ethertype(&r, 0x0806);
        e_meta(&r, NFT_META_IIFNAME);
        e_payload_to(&r, NFT_PAYLOAD_NETWORK_HEADER, 14, 4, NFT_REG_2);
        e_lookup(&r, "vm_ip4", ids->ip4, false, false);
        m_vm_checked_accepted(&r); /* ARP never reaches the inet hooks: its pass is given here */
        e_verdict(&r, NF_ACCEPT, NULL);
        rule_put(b, &r, NULL);
        /* ether type arp arp saddr ip 0.0.0.0 accept */
        BR("from_vm");
        m_ethertype(&r, 0x0806);
        e_payload(&r, NFT_PAYLOAD_NETWORK_HEADER, 14, 4);
        e_cmp(&r, NFT_CMP_EQ, bridge_zero16, 4);
        m_vm_checked_accepted(&r);
        e_verdict(&r, NF_ACCEPT, NULL);
        rule_put(b, &r, NULL);
        /* ether type arp drop */
        BR("from_vm");
        m_ethertype(&r, 0x0806);
        e_verdict(&r, NF_DROP, NULL);
        rule_put(b, &r, NULL);
        /* ether type 0x8035 accept: RARP, the guest's announcement after a live migration
         * (OVN's activation-strategy=rarp); its source MAC passed the vm_mac check */
        BR("from_vm");
        m_ethertype(&r, 0x8035);
        m_vm_checked_accepted(&r);
        e_verdict(&r, NF_ACCEPT, NULL);
        rule_put(b, &r, NULL);
}

/* The from_vm chain, IP: IPv4 and IPv6 from the port's addresses, the
 * address-less DHCP request and neighbour solicitation / MLD report;
 * everything else drops. */
static void bridge_from_vm_ip(struct fw_nl *b, const struct bridge_set_ids *ids)
{
        static const struct set_def icmp6_types = { .flags = NFT_SET_ANONYMOUS | NFT_SET_CONSTANT,
                                                    .key_type = DT_ICMP6_TYPE, .key_len = 1, .key_order = BO_BIG,
                                                    .typeof_proto = 14, .typeof_field = 1 };
        static const uint8_t unspecified_ns[] = { 135, 143 }; /* nd-neighbor-solicit, mld2-listener-report */
        static const uint8_t ones4[4] = { 0xff, 0xff, 0xff, 0xff };
        uint32_t id;
        struct rule r;

        /* iifname . ip saddr @vm_ip4 accept */
        BR("from_vm");
        m_protocol(&r, 0x0800);
        e_meta(&r, NFT_META_IIFNAME);
        e_payload_to(&r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_2);
        e_lookup(&r, "vm_ip4", ids->ip4, false, false);
        m_vm_checked(&r);
        e_verdict(&r, NF_ACCEPT, NULL);
        rule_put(b, &r, NULL);
        /* ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept */
        BR("from_vm");
        m_protocol(&r, 0x0800);
        e_payload(&r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
        e_cmp(&r, NFT_CMP_EQ, bridge_zero16, 4);
        e_payload(&r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4);
        e_cmp(&r, NFT_CMP_EQ, ones4, 4);
        m_udp_ports(&r, 68, 67);
        m_vm_checked(&r);
        e_verdict(&r, NF_ACCEPT, NULL);
        rule_put(b, &r, NULL);
        /* iifname . ip6 saddr @vm_ip6 accept */
        BR("from_vm");
        m_protocol(&r, 0x86dd);
        e_meta(&r, NFT_META_IIFNAME);
        e_payload_to(&r, NFT_PAYLOAD_NETWORK_HEADER, 8, 16, NFT_REG_2);
        e_lookup(&r, "vm_ip6", ids->ip6, false, false);
        m_vm_checked(&r);
        e_verdict(&r, NF_ACCEPT, NULL);
        rule_put(b, &r, NULL);
        /* ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } accept */
        id = const_set(b, NFPROTO_BRIDGE, FW_TABLE, &icmp6_types, unspecified_ns, 2, 1);
        BR("from_vm");
        m_protocol(&r, 0x86dd);
        e_payload(&r, NFT_PAYLOAD_NETWORK_HEADER, 8, 16);
        e_cmp(&r, NFT_CMP_EQ, bridge_zero16, 16);
        m_meta8(&r, NFT_META_L4PROTO, IPPROTO_ICMPV6);
        e_payload(&r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1);
        e_lookup(&r, "__set%d", id, false, false);
        m_vm_checked(&r);
        e_verdict(&r, NF_ACCEPT, NULL);
        rule_put(b, &r, NULL);
        /* drop */
        BR("from_vm");
        e_verdict(&r, NF_DROP, NULL);
        rule_put(b, &r, NULL);
}

/* prerouting: iifname @taps jump from_vm (the owner mark); iifname . ether saddr @guard drop */
static void bridge_prerouting(struct fw_nl *b, const struct bridge_set_ids *ids)
{
        struct rule r;

        fixed_chain(b, NFPROTO_BRIDGE, FW_TABLE, "prerouting", true, BR_HOOK_PRE_ROUTING, BR_PRIO_FILTER);
        BR("prerouting");
        e_meta(&r, NFT_META_IIFNAME);
        e_lookup(&r, "taps", ids->taps, false, false);
        e_verdict(&r, NFT_JUMP, "from_vm");
        rule_put(b, &r, FW_OWNER_MARK);
        BR("prerouting");
        e_meta(&r, NFT_META_IIFNAME);
        e_payload_to(&r, NFT_PAYLOAD_LL_HEADER, 6, 6, NFT_REG_2);
        e_lookup(&r, "guard", ids->guard, false, false);
        e_verdict(&r, NF_DROP, NULL);
        rule_put(b, &r, NULL);
}

/* forward: towards a tap, tagged frames and what is not IPv4, IPv6 or ARP
 * drop; and fail closed across a port bridge whose tap has no rules. */
static void bridge_forward(struct fw_nl *b, const struct bridge_set_ids *ids)
{
        static const uint8_t ip_arp[] = { 0x08, 0x00, 0x86, 0xdd, 0x08, 0x06 }; /* ip, ip6, arp */
        const char *t = FW_TABLE;
        uint32_t id;
        struct rule r;

        fixed_chain(b, NFPROTO_BRIDGE, t, "forward", true, BR_HOOK_FORWARD, BR_PRIO_FILTER);
        for (int i = 0; i < 2; i++) {
                id = i ? const_set(b, NFPROTO_BRIDGE, t, &bridge_ethertypes, ip_arp, 3, 2)
                       : const_set(b, NFPROTO_BRIDGE, t, &bridge_ethertypes, bridge_tagged, 2, 2);
                BR("forward");
                e_meta(&r, NFT_META_OIFNAME);
                e_lookup(&r, "taps", ids->taps, false, false);
                e_payload(&r, NFT_PAYLOAD_LL_HEADER, 12, 2);
                e_lookup(&r, "__set%d", id, false, i == 1);
                e_verdict(&r, NF_DROP, NULL);
                rule_put(b, &r, NULL);
        }
        /* fail closed: tap* <-> qvb* across a port bridge, the tap without rules */
        for (int i = 0; i < 2; i++) {
                static const char tap[3] = { 't', 'a', 'p' }, qvb[3] = { 'q', 'v', 'b' };
                BR("forward");
                e_meta(&r, NFT_META_IIFNAME);
                e_cmp(&r, NFT_CMP_EQ, i ? qvb : tap, 3);
                e_meta(&r, NFT_META_OIFNAME);
                e_cmp(&r, NFT_CMP_EQ, i ? tap : qvb, 3);
                e_meta(&r, i ? NFT_META_OIFNAME : NFT_META_IIFNAME);
                e_lookup(&r, "taps", ids->taps, false, true);
                e_verdict(&r, NF_DROP, NULL);
                rule_put(b, &r, NULL);
        }
        /* ARP towards a port (the inet hooks never see it) gets the guard's pass here */
        BR("forward");
        e_meta(&r, NFT_META_OIFNAME);
        e_lookup(&r, "taps", ids->taps, false, false);
        m_ethertype(&r, 0x0806);
        m_accepted(&r);
        rule_put(b, &r, NULL);
}

#undef BR

void fw_nl_bridge_skeleton(struct fw_nl *b)
{
        struct bridge_set_ids ids;

        bridge_table_and_sets(b, &ids);
        bridge_from_vm_frames(b, &ids);
        bridge_from_vm_arp(b, &ids);
        bridge_from_vm_ip(b, &ids);
        bridge_prerouting(b, &ids);
        bridge_forward(b, &ids);
}

void fw_nl_table_touch(struct fw_nl *b, bool bridge, unsigned shard)
{
        char t[FW_TABLE_NAME_MAX];

        if (bridge)
                table_msg(b, NFT_MSG_NEWTABLE, NFPROTO_BRIDGE, FW_TABLE, NULL);
        else if (shard_table(b, shard, t))
                table_msg(b, NFT_MSG_NEWTABLE, NFPROTO_INET, t, NULL);
}

void fw_nl_drop_bridge(struct fw_nl *b) { table_msg(b, NFT_MSG_DELTABLE, NFPROTO_BRIDGE, FW_TABLE, NULL); }

void fw_nl_quarantine(struct fw_nl *b, const struct fw_port *const *ports, size_t n)
{
        static const struct set_def q = { .name = FW_QUARANTINE, .key_type = DT_IFNAME, .key_len = IFNAME_MAX,
                                          .key_order = BO_HOST };
        uint32_t id;
        struct elems x;
        struct rule r;

        for (size_t i = 0; i < n; i++)
                if (!port_ok(b, ports[i], false, false))
                        return;
        id = set_msg(b, NFPROTO_BRIDGE, FW_TABLE, &q, 0);
        elems_open(b, &x, NFPROTO_BRIDGE, FW_TABLE, FW_QUARANTINE);
        if (x.s)
                nftnl_set_set_u32(x.s, NFTNL_SET_ID, id);
        for (size_t i = 0; i < n; i++) {
                char tap[IFNAME_MAX];
                struct key k;
                if (port_dev_name("tap", ports[i]->uuid, tap) < 0) {
                        fail(b, -EINVAL);
                        break;
                }
                key_ifname(&k, tap);
                elem(&x, &k, NULL);
        }
        elems_close(b, &x, NFT_MSG_NEWSETELEM);
        fixed_chain(b, NFPROTO_BRIDGE, FW_TABLE, FW_QUARANTINE, true, BR_HOOK_FORWARD, BR_PRIO_FILTER - 100);
        for (int i = 0; i < 2; i++) {
                r = rule_new_family(b, NFPROTO_BRIDGE, FW_TABLE, FW_QUARANTINE);
                e_meta(&r, i ? NFT_META_OIFNAME : NFT_META_IIFNAME);
                e_lookup(&r, FW_QUARANTINE, id, false, false);
                e_verdict(&r, NF_DROP, NULL);
                rule_put(b, &r, NULL);
        }
}

void fw_nl_quarantine_remove(struct fw_nl *b)
{
        struct nftnl_chain *c = b->err ? NULL : nftnl_chain_alloc();
        struct nftnl_set *s = c ? nftnl_set_alloc() : NULL;
        struct nlmsghdr *h;

        if (!c || !s) {
                fail(b, -ENOMEM);
                goto out;
        }
        nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_BRIDGE);
        nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, FW_TABLE);
        nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, FW_QUARANTINE);
        if ((h = msg_start(b, NFT_MSG_DELCHAIN, NFPROTO_BRIDGE, 0, MSG_ROOM))) {
                nftnl_chain_nlmsg_build_payload(h, c);
                msg_done(b, h, MSG_ROOM);
        }
        nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_BRIDGE);
        nftnl_set_set_str(s, NFTNL_SET_TABLE, FW_TABLE);
        nftnl_set_set_str(s, NFTNL_SET_NAME, FW_QUARANTINE);
        if ((h = msg_start(b, NFT_MSG_DELSET, NFPROTO_BRIDGE, 0, MSG_ROOM))) {
                nftnl_set_nlmsg_build_payload(h, s);
                msg_done(b, h, MSG_ROOM);
        }
out:
        if (c)
                nftnl_chain_free(c);
        if (s)
                nftnl_set_free(s);
}

/* ---- the guard ---- */

static bool guard_flags_ok(struct fw_nl *b, uint32_t flags)
{
        return flags == FW_GUARD_F_OWNER || flags == (FW_GUARD_F_OWNER | FW_GUARD_F_PERSIST) || fail(b, -EINVAL);
}

/* `iifname "tap*"` and the like: a prefix of a device name (no NUL) */
static void m_ifname_prefix(struct rule *r, uint32_t key, const char *prefix)
{
        e_meta(r, key);
        e_cmp(r, NFT_CMP_EQ, prefix, (uint32_t)strlen(prefix));
}

void fw_nl_guard(struct fw_nl *b, uint32_t flags)
{
        static const char *const ends[2][2] = { { "tap", "qvb" }, { "qvb", "tap" } };
        /* from a tap: both passes (the filter's and the anti-spoofing check's): `meta mark &
         * 0x03000000 != 0x03000000 drop`; towards one, the filter's: `meta mark & 0x01000000 == 0 drop` */
        const uint32_t need[2] = { FW_GUARD_MARKS, FW_ACCEPT_MARK }, zero = 0;
        const char *t = FW_GUARD_TABLE;
        struct rule r;

        if (!guard_flags_ok(b, flags))
                return;
        table_msg_flags(b, NFT_MSG_NEWTABLE, NFPROTO_BRIDGE, t,
                        "nova-hypervisor: fail-closed guard (firewall-control module); do not edit", flags);
        /* prerouting, before everything: no frame of a port bridge arrives with a pass */
        fixed_chain(b, NFPROTO_BRIDGE, t, "prerouting", true, BR_HOOK_PRE_ROUTING, FW_GUARD_PRIO_CLEAR);
        for (int i = 0; i < 2; i++) {
                r = rule_new_family(b, NFPROTO_BRIDGE, t, "prerouting");
                m_ifname_prefix(&r, NFT_META_IIFNAME, ends[i][0]);
                m_mark_bits(&r, FW_GUARD_MARKS, false);
                rule_put(b, &r, i ? NULL : FW_OWNER_MARK);
        }
        /* forward, after br_netfilter's inet forward hook: across a port bridge, only with the pass */
        fixed_chain(b, NFPROTO_BRIDGE, t, "forward", true, BR_HOOK_FORWARD, FW_GUARD_PRIO_CHECK);
        for (int i = 0; i < 2; i++) {
                r = rule_new_family(b, NFPROTO_BRIDGE, t, "forward");
                m_ifname_prefix(&r, NFT_META_IIFNAME, ends[i][0]);
                m_ifname_prefix(&r, NFT_META_OIFNAME, ends[i][1]);
                e_meta(&r, NFT_META_MARK);
                e_mask(&r, (const uint8_t *)&need[i], sizeof(need[i]));
                if (i == 0)
                        e_cmp(&r, NFT_CMP_NEQ, &need[i], sizeof(need[i]));
                else
                        e_cmp(&r, NFT_CMP_EQ, &zero, sizeof(zero));
                e_verdict(&r, NF_DROP, NULL);
                rule_put(b, &r, NULL);
        }
        /* and the passes do not leave the port bridge (towards OVS, or the instance) */
        for (int i = 0; i < 2; i++) {
                r = rule_new_family(b, NFPROTO_BRIDGE, t, "forward");
                m_ifname_prefix(&r, NFT_META_IIFNAME, ends[i][0]);
                m_mark_bits(&r, FW_GUARD_MARKS, false);
                rule_put(b, &r, NULL);
        }
}

void fw_nl_guard_touch(struct fw_nl *b, uint32_t flags)
{
        if (guard_flags_ok(b, flags))
                table_msg_flags(b, NFT_MSG_NEWTABLE, NFPROTO_BRIDGE, FW_GUARD_TABLE, NULL, flags);
}

void fw_nl_guard_drop(struct fw_nl *b)
{
        /* `add table` without flags first (an update with flags would have to repeat an
         * orphan's PERSIST): as fw_nl_table_touch, a delete after it cannot miss */
        table_msg_flags(b, NFT_MSG_NEWTABLE, NFPROTO_BRIDGE, FW_GUARD_TABLE, NULL, NO_FLAGS);
        table_msg(b, NFT_MSG_DELTABLE, NFPROTO_BRIDGE, FW_GUARD_TABLE, NULL);
}

/* ---- sending ---- */

int fw_nl_socket(void)
{
        int size = 16 * 1024 * 1024, on = 1;
        struct sockaddr_nl local = { .nl_family = AF_NETLINK };
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);

        if (fd < 0)
                return -errno;
        /* a batch goes in one sendmsg: the send buffer must hold the largest */
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
                (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        /* an error names the message it refuses by its header, not a copy of it */
        (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof(on));
        if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
                int e = -errno;
                close(fd);
                return e;
        }
        return fd;
}

int fw_nl_commit(int fd, struct fw_nl *b, uint8_t *rbuf, size_t rlen, char *err, size_t errlen)
{
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        uint32_t last_seq;
        bool acked = false;
        ssize_t n;
        int r;

        if ((r = fw_nl_end(b)) < 0) {
                (void)snprintf(err, errlen, "cannot build the nftables batch: %s", strerror(-r));
                return r;
        }
        if (fw_nl_empty(b))
                return 0;
        last_seq = ((const struct nlmsghdr *)(b->buf + b->last))->nlmsg_seq;
        do
                n = sendto(fd, b->buf, b->len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t)b->len) {
                r = n < 0 ? -errno : -EIO;
                (void)snprintf(err, errlen, "cannot send an nftables batch of %zu bytes: %s", b->len, strerror(-r));
                return r;
        }
        /* The kernel handles a batch inside sendmsg(): its answers (the ACK
         * of the last message, an error for each message it refused, and
         * then nothing was applied) are all queued by now. */
        for (;;) {
                n = recv(fd, rbuf, rlen, MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                if (n <= 0) {
                        if (!r) {
                                r = n < 0 ? -errno : -EIO;
                                (void)snprintf(err, errlen, "cannot read nftables' answer: %s", strerror(-r));
                        }
                        break;
                }
                size_t left = (size_t)n;
                for (struct nlmsghdr *h = (void *)rbuf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
                        const struct nlmsgerr *e = NLMSG_DATA(h);
                        char what[96];
                        if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                                continue;
                        /* a late answer to an earlier batch (its reading cut short by ENOBUFS):
                         * the socket lives on (the guard's owner), its leftovers are not ours */
                        if (h->nlmsg_seq < b->seq0 || h->nlmsg_seq >= b->seq)
                                continue;
                        if (e->error == 0) {
                                acked |= h->nlmsg_seq == last_seq;
                                continue;
                        }
                        if (r)
                                continue; /* the first refusal is the one to report */
                        r = e->error < 0 ? e->error : -EIO;
                        fw_nl_describe(b, h->nlmsg_seq, what, sizeof(what));
                        (void)snprintf(err, errlen, "nftables refused the change (%s of a batch of %zu bytes): %s",
                                       what, b->len, strerror(-r));
                }
        }
        if (r == 0 && !acked) {
                (void)snprintf(err, errlen, "nftables did not acknowledge a batch of %u messages", b->n_msgs);
                r = -EIO;
        }
        return r;
}
