/* fw-state.c - see fw-state.h */
#include "fw-state.h"

#include "fw-protocol.h"

#include <arpa/inet.h>
#include <json-c/json.h>
#include <limits.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>

static void json_putp(struct json_object **o)
{
        if (*o)
                json_object_put(*o);
}

static const char *jstr(struct json_object *o, const char *key)
{
        struct json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* "<prefix><uuid><suffix>" -> uuid (copied), or false. */
static bool name_uuid(const char *name, const char *prefix, const char *suffix, char ret[UUID_STR_LEN + 1])
{
        size_t pl = strlen(prefix), sl = strlen(suffix);

        if (!name || strlen(name) != pl + UUID_STR_LEN + sl || strncmp(name, prefix, pl) != 0 ||
            !streq(name + pl + UUID_STR_LEN, suffix))
                return false;
        memcpy(ret, name + pl, UUID_STR_LEN);
        ret[UUID_STR_LEN] = '\0';
        return uuid_is_valid(ret);
}

static size_t hash_mem(const char *k, size_t len)
{
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */

        for (size_t i = 0; i < len; i++)
                h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
        return (size_t)(h ^ (h >> 29));
}

/* How records are hashed and matched, for one index. */
struct ix_ops {
        size_t (*hash)(const struct fw_snap *s, size_t i);               /* of record i */
        bool (*match)(const struct fw_snap *s, size_t i, const void *key); /* record i has key */
};

struct group_key {
        const char *id;
        unsigned shard;
};

static size_t group_hash_of(const char *id, unsigned shard)
{
        return hash_mem(id, strlen(id)) ^ ((size_t)shard * 0x9e3779b97f4a7c15ULL);
}

static size_t port_hash(const struct fw_snap *s, size_t i)
{
        return hash_mem(s->ports[i].port.uuid, strlen(s->ports[i].port.uuid));
}

static bool port_match(const struct fw_snap *s, size_t i, const void *key) { return streq(s->ports[i].port.uuid, key); }

static size_t group_hash(const struct fw_snap *s, size_t i) { return group_hash_of(s->groups[i].id, s->groups[i].shard); }

static bool group_match(const struct fw_snap *s, size_t i, const void *key)
{
        const struct group_key *k = key;

        return s->groups[i].shard == k->shard && streq(s->groups[i].id, k->id);
}

/* By the first PORT_NAME_CHARS of the uuid: what a device name carries. */
static size_t dev_hash(const struct fw_snap *s, size_t i) { return hash_mem(s->ports[i].port.uuid, PORT_NAME_CHARS); }

static bool dev_match(const struct fw_snap *s, size_t i, const void *key)
{
        return strncmp(s->ports[i].port.uuid, key, PORT_NAME_CHARS) == 0;
}

static const struct ix_ops port_ops = { port_hash, port_match };
static const struct ix_ops group_ops = { group_hash, group_match };
static const struct ix_ops dev_ops = { dev_hash, dev_match };

/* Index the first n records. Records with equal keys: the first one is
 * found first. */
static int ix_build(struct fw_snap_index *ix, const struct fw_snap *s, size_t n, const struct ix_ops *ops)
{
        size_t cap = 64;

        while (cap < 2 * n + 2)
                cap *= 2;
        if (cap != ix->cap || !ix->slot) {
                uint32_t *slot = calloc(cap, sizeof(*slot));
                if (!slot)
                        return -ENOMEM;
                free(ix->slot);
                ix->slot = slot;
                ix->cap = cap;
        } else
                memset(ix->slot, 0, cap * sizeof(*ix->slot));
        for (size_t i = 0; i < n; i++) {
                size_t h = ops->hash(s, i) & (cap - 1);
                while (ix->slot[h])
                        h = (h + 1) & (cap - 1);
                ix->slot[h] = (uint32_t)i + 1;
        }
        ix->n = n;
        return 0;
}

/* Position of the first record that matches key (whose hash is h), -1 if
 * none, -2 when the index cannot be built (the caller scans). */
static long ix_find(struct fw_snap_index *ix, const struct fw_snap *s, size_t n, const struct ix_ops *ops,
                    const void *key, size_t h)
{
        if (n > UINT32_MAX - 1)
                return -2;
        if ((ix->n != n || !ix->slot) && ix_build(ix, s, n, ops) < 0)
                return -2;
        for (h &= ix->cap - 1; ix->slot[h]; h = (h + 1) & (ix->cap - 1))
                if (ops->match(s, ix->slot[h] - 1, key))
                        return (long)(ix->slot[h] - 1);
        return -1;
}

/* Record that position n - 1 was just appended (keeps the index current
 * without a rebuild when there is room). */
static void ix_append(struct fw_snap_index *ix, const struct fw_snap *s, size_t n, const struct ix_ops *ops)
{
        size_t h;

        if (!ix->slot || ix->n != n - 1 || 2 * n + 2 > ix->cap)
                return; /* rebuilt at the next lookup */
        for (h = ops->hash(s, n - 1) & (ix->cap - 1); ix->slot[h]; h = (h + 1) & (ix->cap - 1))
                ;
        ix->slot[h] = (uint32_t)n;
        ix->n = n;
}

/* The slot that holds position pos (whose record hashes to h), or SIZE_MAX. */
static size_t ix_slot_of(const struct fw_snap_index *ix, size_t pos, size_t h)
{
        for (h &= ix->cap - 1; ix->slot[h]; h = (h + 1) & (ix->cap - 1))
                if (ix->slot[h] == pos + 1)
                        return h;
        return SIZE_MAX;
}

/* Record pos is about to be removed and the last one (n - 1) to take its
 * place: the index follows (linear probing's backward-shift deletion, then
 * the moved record's slot renumbered), or is marked for a rebuild when it is
 * not current. */
static void ix_remove(struct fw_snap_index *ix, const struct fw_snap *s, size_t n, const struct ix_ops *ops,
                      size_t pos)
{
        size_t mask = ix->cap - 1, hole, j, last;

        if (!ix->slot || ix->n != n || (hole = ix_slot_of(ix, pos, ops->hash(s, pos))) == SIZE_MAX) {
                ix->n = SIZE_MAX;
                return;
        }
        for (j = (hole + 1) & mask; ix->slot[j]; j = (j + 1) & mask) {
                size_t home = ops->hash(s, ix->slot[j] - 1) & mask;
                /* the entry at j may fill the hole unless its home lies cyclically in (hole, j] */
                bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
                if (!stays) {
                        ix->slot[hole] = ix->slot[j];
                        hole = j;
                }
        }
        ix->slot[hole] = 0;
        if (pos != n - 1) {
                if ((last = ix_slot_of(ix, n - 1, ops->hash(s, n - 1))) == SIZE_MAX) {
                        ix->n = SIZE_MAX;
                        return;
                }
                ix->slot[last] = (uint32_t)pos + 1;
        }
        ix->n = n - 1;
}

void fw_snap_port_remove(struct fw_snap *s, size_t i)
{
        ix_remove(&s->port_ix, s, s->n_ports, &port_ops, i);
        s->ports[i] = s->ports[--s->n_ports];
}

void fw_snap_group_remove(struct fw_snap *s, size_t i)
{
        ix_remove(&s->group_ix, s, s->n_groups, &group_ops, i);
        free(s->groups[i].rules);
        s->groups[i] = s->groups[--s->n_groups];
}

struct fw_snap_port *fw_snap_port_find(struct fw_snap *s, const char *uuid)
{
        long i = ix_find(&s->port_ix, s, s->n_ports, &port_ops, uuid, hash_mem(uuid, strlen(uuid)));

        if (i >= 0)
                return &s->ports[i];
        if (i == -1)
                return NULL;
        for (size_t k = 0; k < s->n_ports; k++)
                if (streq(s->ports[k].port.uuid, uuid))
                        return &s->ports[k];
        return NULL;
}

struct fw_snap_group *fw_snap_group_find(struct fw_snap *s, unsigned shard, const char *id)
{
        const struct group_key key = { id, shard };
        long i = ix_find(&s->group_ix, s, s->n_groups, &group_ops, &key, group_hash_of(id, shard));

        if (i >= 0)
                return &s->groups[i];
        if (i == -1)
                return NULL;
        for (size_t k = 0; k < s->n_groups; k++)
                if (s->groups[k].shard == shard && streq(s->groups[k].id, id))
                        return &s->groups[k];
        return NULL;
}

struct fw_snap_port *fw_snap_port_get(struct fw_snap *s, const char *uuid)
{
        struct fw_snap_port *p = fw_snap_port_find(s, uuid);

        if (p)
                return p;
        if (s->n_ports % 64 == 0) {
                p = reallocarray(s->ports, s->n_ports + 64, sizeof(*p));
                if (!p)
                        return NULL;
                s->ports = p;
        }
        p = &s->ports[s->n_ports++];
        *p = (struct fw_snap_port){ 0 };
        memcpy(p->port.uuid, uuid, UUID_STR_LEN + 1);
        ix_append(&s->port_ix, s, s->n_ports, &port_ops);
        return p;
}

struct fw_snap_group *fw_snap_group_get(struct fw_snap *s, unsigned shard, const char *id)
{
        struct fw_snap_group *g = fw_snap_group_find(s, shard, id);

        if (g)
                return g;
        if (s->n_groups % 64 == 0) {
                g = reallocarray(s->groups, s->n_groups + 64, sizeof(*g));
                if (!g)
                        return NULL;
                s->groups = g;
        }
        g = &s->groups[s->n_groups++];
        *g = (struct fw_snap_group){ .shard = shard };
        memcpy(g->id, id, UUID_STR_LEN + 1);
        ix_append(&s->group_ix, s, s->n_groups, &group_ops);
        return g;
}

/* The device names of the ports (prefix + the first PORT_NAME_CHARS of the
 * uuid), indexed once per bridge pass. */
struct dev_index {
        struct fw_snap_index ix;
        bool ok;
};

/* The port whose derived device name (prefix + 11 chars) is name: the first
 * one in array order, as a scan would find. */
static struct fw_snap_port *port_by_dev(struct fw_snap *s, struct dev_index *di, const char *prefix, const char *name)
{
        char dev[IFNAME_MAX];
        size_t pl = strlen(prefix);

        if (!name)
                return NULL;
        if (di->ok) {
                if (strlen(name) != pl + PORT_NAME_CHARS || strncmp(name, prefix, pl) != 0)
                        return NULL;
                long i = ix_find(&di->ix, s, s->n_ports, &dev_ops, name + pl, hash_mem(name + pl, PORT_NAME_CHARS));
                if (i >= 0 && port_dev_name(prefix, s->ports[i].port.uuid, dev) == 0 && streq(dev, name))
                        return &s->ports[i];
                if (i != -2)
                        return NULL;
        }
        for (size_t i = 0; i < s->n_ports; i++)
                if (port_dev_name(prefix, s->ports[i].port.uuid, dev) == 0 && streq(dev, name))
                        return &s->ports[i];
        return NULL;
}

/* Flags of the fixed objects, to tell whether a table's skeleton is complete. */
enum {
        SK_ND = 1 << 0, SK_PORTS = 1 << 1, SK_COMMON = 1 << 2, SK_FORWARD = 1 << 3, SK_ACCEPTED = 1 << 4,
        SK_INET_ALL = (1 << 5) - 1,
        SK_TAPS = 1 << 0, SK_VM_MAC = 1 << 1, SK_VM_IP4 = 1 << 2, SK_VM_IP6 = 1 << 3, SK_GUARD = 1 << 4,
        SK_FROM_VM = 1 << 5, SK_PREROUTING = 1 << 6, SK_BR_FORWARD = 1 << 7,
        SK_BRIDGE_ALL = (1 << 8) - 1,
        SK_BR_EXTRA = 1 << 8, /* a chain the skeleton does not have: the bridge table is not complete */
};

/* The member key of items[i] (the item's only kind: "chain", "rule", ...) if
 * it belongs to table, else NULL. */
static struct json_object *item_of(struct json_object *items, size_t i, const char *kind, const char *table)
{
        struct json_object *o;

        if (!json_object_object_get_ex(json_object_array_get_idx(items, i), kind, &o) ||
            !streq_ptr(jstr(o, "table"), table))
                return NULL;
        return o;
}

/* One JSON document, wholly consumed (nft ends it with a newline). */
static int parse_doc(const char *text, struct json_object **ret_root)
{
        struct json_object *root, *items;
        struct json_tokener *tok;
        size_t len = strlen(text), end;
        bool ok;

        if (len > INT_MAX)
                return -EBADMSG;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, text, (int)len);
        ok = root && json_tokener_get_error(tok) == json_tokener_success;
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        for (; ok && end < len; end++)
                ok = strchr(" \t\r\n", text[end]) != NULL;
        if (!ok || !json_object_is_type(root, json_type_object) ||
            !json_object_object_get_ex(root, "nftables", &items) || !json_object_is_type(items, json_type_array)) {
                json_object_put(root);
                return -EBADMSG;
        }
        *ret_root = root;
        return 0;
}

/* Chains of one table: the fixed ones set their flag; in a shard (shard >=
 * 0), port and group chains create their records. A port chain that another
 * shard holds already marks that port and *dup. */
static int pass_chains(struct fw_snap *s, struct json_object *items, const char *table, int shard, unsigned *sk,
                       bool *dup)
{
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                struct json_object *c = item_of(items, i, "chain", table);
                char id[UUID_STR_LEN + 1];
                const char *name = jstr(c, "name");

                if (!name)
                        continue;
                if (shard < 0) {
                        if (streq(name, "from_vm"))
                                *sk |= SK_FROM_VM;
                        else if (streq(name, "prerouting"))
                                *sk |= SK_PREROUTING;
                        else if (streq(name, "forward"))
                                *sk |= SK_BR_FORWARD;
                        else /* e.g. a quarantine left behind by a restore that did not finish */
                                *sk |= SK_BR_EXTRA;
                        continue;
                }
                if (streq(name, "common"))
                        *sk |= SK_COMMON;
                else if (streq(name, "forward"))
                        *sk |= SK_FORWARD;
                else if (streq(name, FW_ACCEPTED_CHAIN))
                        *sk |= SK_ACCEPTED;
                else if (name_uuid(name, "port-", "", id)) {
                        struct fw_snap_port *p = fw_snap_port_find(s, id);
                        if (p) {
                                if (p->shard != (unsigned)shard) {
                                        p->tampered = true;
                                        *dup = true;
                                }
                                continue;
                        }
                        p = fw_snap_port_get(s, id);
                        if (!p)
                                return -ENOMEM;
                        p->shard = (unsigned)shard;
                        p->has_chain = true;
                } else if (name_uuid(name, "sg-", "-in", id) || name_uuid(name, "sg-", "-out", id)) {
                        struct fw_snap_group *g = fw_snap_group_get(s, (unsigned)shard, id);
                        if (!g)
                                return -ENOMEM;
                        if (name[strlen(name) - 1] == 'n')
                                g->has_in = true;
                        else
                                g->has_out = true;
                }
        }
        return 0;
}

static int group_add_rule(struct fw_snap_group *g, const struct secrule *r)
{
        if (g->n_rules % 16 == 0) {
                struct secrule *p = reallocarray(g->rules, g->n_rules + 16, sizeof(*p));
                if (!p)
                        return -ENOMEM;
                g->rules = p;
        }
        g->rules[g->n_rules++] = *r;
        return 0;
}

/* The family of a group chain's family check from its comment
 * (FW_FAMILY_COMMENT "4" or "6"), or 0 when the comment is not one. */
static int family_comment(const char *comment)
{
        size_t n = strlen(FW_FAMILY_COMMENT);

        if (!comment || strncmp(comment, FW_FAMILY_COMMENT, n) != 0 || comment[n + 1] != '\0')
                return 0;
        return comment[n] == '4' ? 4 : comment[n] == '6' ? 6 : 0;
}

/* A group chain's family check, read with the rules of its direction so far:
 * first in the chain, once, and of the right shape (shape_ok) - or the
 * group is not as we wrote it. */
static void group_family_rule(struct fw_snap_group *g, bool in, int family, bool shape_ok)
{
        uint8_t *f = in ? &g->family_in : &g->family_out;
        bool first = *f == 0;

        for (size_t i = 0; first && i < g->n_rules; i++)
                first = g->rules[i].dir != (in ? SECRULE_INGRESS : SECRULE_EGRESS);
        if (!first || !shape_ok)
                g->tampered = true;
        *f = (uint8_t)family;
}

/* Is the owner mark on a rule of the table's dispatching chain? */
static bool owner_marked(struct json_object *items, const char *table, const char *chain)
{
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                struct json_object *ru = item_of(items, i, "rule", table);
                if (ru && streq_ptr(jstr(ru, "chain"), chain) && streq_ptr(jstr(ru, "comment"), FW_OWNER_MARK))
                        return true;
        }
        return false;
}

static bool rule_has_pass(struct json_object *rule, bool pass_accept);
static bool family_rule_ok(struct json_object *rule, int family);

/* Rules of a shard's port and group chains: the port's groups and MAC from
 * the comments of its chain, the groups' rules from theirs. */
static int pass_rules(struct fw_snap *s, struct json_object *items, const char *table, unsigned shard)
{
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                struct json_object *ru = item_of(items, i, "rule", table);
                const char *chain = jstr(ru, "chain"), *comment = jstr(ru, "comment");
                char id[UUID_STR_LEN + 1];

                if (!chain)
                        continue;
                if (name_uuid(chain, "port-", "", id)) {
                        struct fw_snap_port *p = fw_snap_port_find(s, id);
                        char gid[UUID_STR_LEN + 1];
                        if (!p || p->shard != shard || !comment)
                                continue;
                        if (strncmp(comment, "nh group ", 9) == 0) {
                                if (!uuid_is_valid(comment + 9) || p->port.n_groups == PORT_MAX_GROUPS) {
                                        p->tampered = true;
                                        continue;
                                }
                                memcpy(gid, comment + 9, UUID_STR_LEN + 1);
                                memcpy(p->port.groups[p->port.n_groups++], gid, UUID_STR_LEN + 1);
                        } else if (strncmp(comment, "nh mac ", 7) == 0) {
                                if (mac_parse(comment + 7, p->port.mac) < 0)
                                        p->tampered = true;
                        } else
                                p->tampered = true;
                        continue;
                }
                bool in = name_uuid(chain, "sg-", "-in", id);
                if (in || name_uuid(chain, "sg-", "-out", id)) {
                        struct fw_snap_group *g = fw_snap_group_find(s, shard, id);
                        struct secrule r;
                        int family = family_comment(comment);
                        if (!g)
                                continue;
                        if (family) {
                                group_family_rule(g, in, family, family_rule_ok(ru, family));
                                continue;
                        }
                        if (!comment || secrule_parse(comment, &r) < 0 ||
                            r.dir != (in ? SECRULE_INGRESS : SECRULE_EGRESS) || !rule_has_pass(ru, true)) {
                                g->tampered = true;
                                continue;
                        }
                        if (group_add_rule(g, &r) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

/* The two members of {"concat": [a, b]} as strings. */
static bool concat2(struct json_object *e, const char **a, const char **b)
{
        struct json_object *c;

        if (json_object_is_type(e, json_type_object) && json_object_object_get_ex(e, "elem", &c))
                e = json_object_object_get_ex(c, "val", &c) ? c : e; /* element with a comment */
        if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "concat", &c) ||
            !json_object_is_type(c, json_type_array) || json_object_array_length(c) != 2)
                return false;
        struct json_object *x = json_object_array_get_idx(c, 0), *y = json_object_array_get_idx(c, 1);
        if (!json_object_is_type(x, json_type_string) || !json_object_is_type(y, json_type_string))
                return false;
        *a = json_object_get_string(x);
        *b = json_object_get_string(y);
        return true;
}

static void port_add_ip(struct fw_snap_port *p, const char *ip)
{
        char canon[IP_STR_MAX], ll[IP_STR_MAX];

        if (ip_canonical(ip, canon) < 0) {
                p->tampered = true;
                return;
        }
        ipv6_link_local_from_mac(p->port.mac, ll);
        if (streq(canon, ll)) {
                p->has_ll = true;
                return;
        }
        if (p->port.n_ips == PORT_MAX_IPS) {
                p->tampered = true;
                return;
        }
        memcpy(p->port.ips[p->port.n_ips++], canon, IP_STR_MAX);
}

/* The SK_* flag of one of our fixed sets or maps by its table kind (inet
 * or bridge), kind (map or set) and name; 0 for any other. */
static unsigned fixed_set_flag(bool inet, bool is_map, const char *name)
{
        static const struct {
                bool inet, map;
                const char *name;
                unsigned flag;
        } fixed[] = {
                { true, false, "nd", SK_ND },        { true, true, "ports", SK_PORTS },
                { false, false, "taps", SK_TAPS },   { false, false, "vm_mac", SK_VM_MAC },
                { false, false, "vm_ip4", SK_VM_IP4 }, { false, false, "vm_ip6", SK_VM_IP6 },
                { false, false, "guard", SK_GUARD },
        };
        unsigned flag = 0;

        for (size_t k = 0; k < ARRAY_SIZE(fixed); k++)
                if (fixed[k].inet == inet && fixed[k].map == is_map && streq(fixed[k].name, name))
                        flag |= fixed[k].flag;
        return flag;
}

/* One element of a shard's ports map ("qbr<11 uuid chars>" : jump port-<uuid>): marks the
 * port's dispatch element present when it is that port's, in that shard.
 * Anything else is ignored. */
static void ports_map_element(struct fw_snap *s, struct json_object *el, int shard)
{
        struct json_object *data, *jump;
        char id[UUID_STR_LEN + 1], qbr[IFNAME_MAX];
        struct fw_snap_port *p;
        const char *a;

        if (!json_object_is_type(el, json_type_array) || json_object_array_length(el) != 2)
                return;
        a = json_object_get_string(json_object_array_get_idx(el, 0));
        data = json_object_array_get_idx(el, 1);
        if (!json_object_is_type(data, json_type_object) || !json_object_object_get_ex(data, "jump", &jump) ||
            !name_uuid(jstr(jump, "target"), "port-", "", id))
                return;
        p = fw_snap_port_find(s, id);
        if (p && p->shard == (unsigned)shard && port_dev_name("qbr", id, qbr) == 0 && streq_ptr(a, qbr))
                p->has_dispatch = true;
}

/* One element of the bridge table's set name (taps, vm_mac, vm_ip4, vm_ip6,
 * guard): marks what it shows of its port, or counts it as an orphan when it
 * names no port of ours; a MAC that is not the port's marks it tampered. */
static void bridge_set_element(struct fw_snap *s, struct dev_index *di, const char *name,
                               struct json_object *el)
{
        const char *a = NULL, *b = NULL;
        struct fw_snap_port *p;

        if (streq(name, "taps")) {
                if (json_object_is_type(el, json_type_string) &&
                    (p = port_by_dev(s, di, "tap", json_object_get_string(el))))
                        p->has_tap = true;
                else
                        s->orphan_elements++;
                return;
        }
        if (!concat2(el, &a, &b)) {
                s->orphan_elements++;
                return;
        }
        p = port_by_dev(s, di, streq(name, "guard") ? "qvb" : "tap", a);
        if (!p) {
                s->orphan_elements++;
                return;
        }
        if (streq(name, "vm_mac") || streq(name, "guard")) {
                uint8_t mac[6];
                if (mac_parse(b, mac) < 0 || memcmp(mac, p->port.mac, 6) != 0)
                        p->tampered = true;
                else if (streq(name, "guard"))
                        p->has_guard = true;
                else
                        p->has_mac = true;
        } else if (streq(name, "vm_ip4") || streq(name, "vm_ip6"))
                port_add_ip(p, b);
}

/* Sets and maps of one table: a shard's (shard >= 0: the ports map's
 * elements) or the bridge table's (shard < 0: the anti-spoofing elements). */
static void pass_sets(struct fw_snap *s, struct json_object *items, const char *table, int shard, unsigned *sk)
{
        struct dev_index di = { 0 };
        bool inet = shard >= 0;

        /* no port record is added from here on: index the device names once */
        di.ok = !inet && s->n_ports < UINT32_MAX - 1 && ix_build(&di.ix, s, s->n_ports, &dev_ops) == 0;
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                struct json_object *set = item_of(items, i, "map", table), *elems;
                bool is_map = set != NULL;
                const char *name;

                if (!is_map && !(set = item_of(items, i, "set", table)))
                        continue;
                name = jstr(set, "name");
                if (!name)
                        continue;
                *sk |= fixed_set_flag(inet, is_map, name);
                if (!json_object_object_get_ex(set, "elem", &elems) || !json_object_is_type(elems, json_type_array))
                        continue;
                for (size_t e = 0; e < json_object_array_length(elems); e++) {
                        struct json_object *el = json_object_array_get_idx(elems, e);

                        if (inet && is_map && streq(name, "ports"))
                                ports_map_element(s, el, shard);
                        else if (!inet)
                                bridge_set_element(s, &di, name, el);
                }
        }
        free(di.ix.slot);
}

/* o is an object with exactly one member, key; its value in *ret. */
static bool obj1(struct json_object *o, const char *key, struct json_object **ret)
{
        return json_object_is_type(o, json_type_object) && json_object_object_length(o) == 1 &&
               json_object_object_get_ex(o, key, ret);
}

/* nft's JSON of "<proto> <field> <value>": {"match": {"op": "==", "left":
 * {"payload": {"protocol", "field"}}, "right": value}}; a string value when
 * str is set, else the number num. */
static bool is_match(struct json_object *e, const char *proto, const char *field, const char *str, int num)
{
        struct json_object *m, *v, *pl;

        if (!obj1(e, "match", &m) || !json_object_is_type(m, json_type_object) || json_object_object_length(m) != 3 ||
            !streq_ptr(jstr(m, "op"), "==") || !json_object_object_get_ex(m, "left", &v) || !obj1(v, "payload", &pl) ||
            !json_object_is_type(pl, json_type_object) || json_object_object_length(pl) != 2 ||
            !streq_ptr(jstr(pl, "protocol"), proto) || !streq_ptr(jstr(pl, "field"), field) ||
            !json_object_object_get_ex(m, "right", &v))
                return false;
        if (str)
                return streq_ptr(jstr(m, "right"), str);
        return json_object_is_type(v, json_type_int) && json_object_get_int64(v) == num;
}

/* {"accept": null} / {"drop": null} / {"jump": {"target": target}} */
static bool is_verdict(struct json_object *e, const char *verdict, const char *target)
{
        struct json_object *v;

        if (!obj1(e, verdict, &v))
                return false;
        if (!target)
                return v == NULL;
        return json_object_is_type(v, json_type_object) && json_object_object_length(v) == 1 &&
               streq_ptr(jstr(v, "target"), target);
}

/* nft's JSON of the guard's pass, `meta mark set meta mark | FW_ACCEPT_MARK`:
 * {"mangle": {"key": {"meta": {"key": "mark"}}, "value": {"|": [{"meta": {"key": "mark"}}, BIT]}}} */
static bool is_meta_mark(struct json_object *o)
{
        struct json_object *m;

        return obj1(o, "meta", &m) && json_object_is_type(m, json_type_object) && json_object_object_length(m) == 1 &&
               streq_ptr(jstr(m, "key"), "mark");
}

/* The bits of `meta mark set meta mark | BITS` when BITS is one of the
 * guard's passes (FW_ACCEPT_MARK, FW_VM_MARK or both), else 0. */
static uint32_t pass_bits(struct json_object *e)
{
        struct json_object *mg, *k, *v, *or;
        int64_t bits;

        if (!obj1(e, "mangle", &mg) || !json_object_is_type(mg, json_type_object) ||
            json_object_object_length(mg) != 2 || !json_object_object_get_ex(mg, "key", &k) || !is_meta_mark(k) ||
            !json_object_object_get_ex(mg, "value", &v) || !obj1(v, "|", &or) ||
            !json_object_is_type(or, json_type_array) || json_object_array_length(or) != 2 ||
            !is_meta_mark(json_object_array_get_idx(or, 0)))
                return 0;
        v = json_object_array_get_idx(or, 1);
        if (!json_object_is_type(v, json_type_int))
                return 0;
        bits = json_object_get_int64(v);
        return bits == FW_ACCEPT_MARK || bits == FW_VM_MARK || bits == FW_GUARD_MARKS ? (uint32_t)bits : 0;
}

static bool is_pass(struct json_object *e) { return pass_bits(e) == FW_ACCEPT_MARK; }

/* `meta nfproto != ipv4|ipv6 return`, nft's JSON:
 * [{"match": {"op": "!=", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}}, {"return": null}] */
static bool family_rule_ok(struct json_object *rule, int family)
{
        struct json_object *ex, *m, *l, *k;

        return json_object_object_get_ex(rule, "expr", &ex) && json_object_is_type(ex, json_type_array) &&
               json_object_array_length(ex) == 2 && obj1(json_object_array_get_idx(ex, 0), "match", &m) &&
               json_object_is_type(m, json_type_object) && json_object_object_length(m) == 3 &&
               streq_ptr(jstr(m, "op"), "!=") && streq_ptr(jstr(m, "right"), family == 6 ? "ipv6" : "ipv4") &&
               json_object_object_get_ex(m, "left", &l) && obj1(l, "meta", &k) &&
               json_object_is_type(k, json_type_object) && json_object_object_length(k) == 1 &&
               streq_ptr(jstr(k, "key"), "nfproto") && is_verdict(json_object_array_get_idx(ex, 1), "return", NULL);
}

/* `jump accepted`: an accept of the inet shards, with the pass (fw-nft.h) */
static bool is_accepted(struct json_object *e) { return is_verdict(e, "jump", FW_ACCEPTED_CHAIN); }

/* A fixed chain's rule's passes, weighed as fw_fixed_chain_passes counts them. */
static size_t rule_pass_weight(struct json_object *rule)
{
        struct json_object *ex;
        size_t w = 0;

        if (!json_object_object_get_ex(rule, "expr", &ex) || !json_object_is_type(ex, json_type_array))
                return 0;
        for (size_t i = 0; i < json_object_array_length(ex); i++) {
                struct json_object *e = json_object_array_get_idx(ex, i);
                uint32_t bits = pass_bits(e);
                w += (bits & FW_ACCEPT_MARK ? FW_PASS_WEIGHT_ACCEPT : 0) + (bits & FW_VM_MARK ? FW_PASS_WEIGHT_VM : 0);
                w += is_accepted(e) ? FW_PASS_WEIGHT_ACCEPT : 0;
        }
        return w;
}

/* The rule's expressions end with an accept of the inet shards, `jump
 * accepted` (pass_accept), or hold the pass somewhere (returns whether, when
 * pass_accept is false). */
static bool rule_has_pass(struct json_object *rule, bool pass_accept)
{
        struct json_object *ex;
        size_t len;

        if (!json_object_object_get_ex(rule, "expr", &ex) || !json_object_is_type(ex, json_type_array))
                return false;
        len = json_object_array_length(ex);
        if (pass_accept)
                return len >= 1 && is_accepted(json_object_array_get_idx(ex, len - 1));
        for (size_t i = 0; i < len; i++)
                if (is_pass(json_object_array_get_idx(ex, i)))
                        return true;
        return false;
}

/* Is rule the k-th rule of p's chain as fw_build_port_chain writes it and
 * nft lists it back (its expressions and comment)? */
static bool port_rule_ok(const struct fw_port *p, size_t k, struct json_object *rule)
{
        struct json_object *ex, *e[5];
        char mac[MAC_STR_LEN + 1], want[64] = "", target[UUID_STR_LEN + 16];
        size_t n = p->n_groups, len;

        if (!json_object_object_get_ex(rule, "expr", &ex) || !json_object_is_type(ex, json_type_array))
                return false;
        len = json_object_array_length(ex);
        for (size_t i = 0; i < ARRAY_SIZE(e); i++)
                e[i] = i < len ? json_object_array_get_idx(ex, i) : NULL;
        mac_format(p->mac, mac);
        if (k == 3 + n)
                (void)snprintf(want, sizeof(want), "nh mac %s", mac);
        else if (k >= 3 && k < 3 + n)
                (void)snprintf(want, sizeof(want), "nh group %s", p->groups[k - 3]);
        if (!streq_ptr(jstr(rule, "comment"), want[0] ? want : NULL))
                return false;
        if (k == 0) /* jump common */
                return len == 1 && is_verdict(e[0], "jump", "common");
        if (k == 1 || k == 2) /* DHCP client out, from the port's MAC */
                return len == 4 && is_match(e[0], "ether", "saddr", mac, 0) &&
                       is_match(e[1], "udp", "sport", NULL, k == 1 ? 68 : 546) &&
                       is_match(e[2], "udp", "dport", NULL, k == 1 ? 67 : 547) && is_accepted(e[3]);
        if (k < 3 + n) { /* the groups' egress rules, for frames from the port's MAC */
                (void)snprintf(target, sizeof(target), "sg-%s-out", p->groups[k - 3]);
                return len == 2 && is_match(e[0], "ether", "saddr", mac, 0) && is_verdict(e[1], "jump", target);
        }
        if (k == 3 + n) /* nothing else from the port's MAC */
                return len == 2 && is_match(e[0], "ether", "saddr", mac, 0) && is_verdict(e[1], "drop", NULL);
        if (k == 4 + n || k == 5 + n) /* DHCP server in */
                return len == 3 && is_match(e[0], "udp", "sport", NULL, k == 4 + n ? 67 : 547) &&
                       is_match(e[1], "udp", "dport", NULL, k == 4 + n ? 68 : 546) && is_accepted(e[2]);
        if (k < 6 + 2 * n) { /* the groups' ingress rules */
                (void)snprintf(target, sizeof(target), "sg-%s-in", p->groups[k - 6 - n]);
                return len == 1 && is_verdict(e[0], "jump", target);
        }
        if (k == 6 + 2 * n) /* everything else */
                return len == 1 && is_verdict(e[0], "drop", NULL);
        return false; /* past the last rule */
}

/* Every rule of every port chain of the shard (its records from first on),
 * in order, is exactly one the builder wrote for the port's MAC and groups
 * (read from the comments), and none is missing: a rule added, changed or
 * removed anywhere in a port chain marks the port. */
static int pass_port_chains(struct fw_snap *s, struct json_object *items, const char *table, size_t first)
{
        _cleanup_free_ size_t *seen = calloc(s->n_ports - first + 1, sizeof(*seen));
        struct fw_snap_port *p = NULL; /* nft lists the rules of a chain together: look up once per chain */

        if (!seen)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                struct json_object *ru = item_of(items, i, "rule", table);
                char id[UUID_STR_LEN + 1];

                if (!ru || !name_uuid(jstr(ru, "chain"), "port-", "", id))
                        continue;
                if (!p || !streq(p->port.uuid, id))
                        p = fw_snap_port_find(s, id);
                if (!p || (size_t)(p - s->ports) < first)
                        continue; /* another shard's port */
                if (!port_rule_ok(&p->port, seen[p - s->ports - first]++, ru))
                        p->tampered = true;
        }
        for (size_t i = first; i < s->n_ports; i++)
                if (seen[i - first] != 7 + 2 * s->ports[i].port.n_groups)
                        s->ports[i].tampered = true;
        return 0;
}

/* The fixed chains of a table hold exactly the skeleton's rules (a rule
 * slipped into forward, common, prerouting or from_vm would bypass every
 * port of the table). */
static bool fixed_chains_ok(struct json_object *items, const char *table, bool inet)
{
        static const char *const inet_chains[] = { FW_ACCEPTED_CHAIN, "common", "forward" };
        static const char *const bridge_chains[] = { "prerouting", "from_vm", "forward" };
        const char *const *chains = inet ? inet_chains : bridge_chains;
        size_t n = inet ? ARRAY_SIZE(inet_chains) : ARRAY_SIZE(bridge_chains);

        for (size_t f = 0; f < n; f++) {
                size_t have = 0, passes = 0;
                for (size_t i = 0; i < json_object_array_length(items); i++) {
                        struct json_object *ru = item_of(items, i, "rule", table);
                        if (ru && streq_ptr(jstr(ru, "chain"), chains[f])) {
                                have++;
                                passes += rule_pass_weight(ru);
                        }
                }
                if (have != fw_fixed_chain_rules(inet, chains[f]) || passes != fw_fixed_chain_passes(inet, chains[f]))
                        return false;
        }
        return true;
}

/* The first table of that family the listing names (whose name our shard's
 * or bridge table's must be), or NULL. */
static const char *doc_table(struct json_object *items, const char *family)
{
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                struct json_object *t;
                if (json_object_object_get_ex(json_object_array_get_idx(items, i), "table", &t) &&
                    streq_ptr(jstr(t, "family"), family) && jstr(t, "name"))
                        return jstr(t, "name");
        }
        return NULL;
}

int fw_snap_add_inet(struct fw_snap *s, const char *json)
{
        _cleanup_(json_putp) struct json_object *root = NULL;
        struct json_object *items;
        struct fw_snap_shard *sh;
        char table[FW_TABLE_NAME_MAX];
        unsigned sk = 0;
        bool dup = false;
        size_t first = s->n_ports;
        int shard, r;

        if (!json || !json[0])
                return 0;
        if ((r = parse_doc(json, &root)) < 0)
                return r;
        (void)json_object_object_get_ex(root, "nftables", &items);
        shard = fw_shard_from_table(doc_table(items, "inet"));
        if (shard < 0 || s->shards[shard].exists)
                return 0;
        sh = &s->shards[shard];
        fw_shard_table((unsigned)shard, table);
        sh->exists = true;
        /* a table of our name without the mark is not ours: nothing in it is read as ours */
        sh->ours = owner_marked(items, table, "forward");
        if (!sh->ours)
                return 0;
        if ((r = pass_chains(s, items, table, shard, &sk, &dup)) < 0 ||
            (r = pass_rules(s, items, table, (unsigned)shard)) < 0 ||
            (r = pass_port_chains(s, items, table, first)) < 0)
                return r;
        pass_sets(s, items, table, shard, &sk);
        sh->n_ports = (unsigned)(s->n_ports - first);
        sh->complete = sk == SK_INET_ALL && fixed_chains_ok(items, table, true) && !dup;
        return 0;
}

static void snap_settle(struct fw_snap *s);

int fw_snap_finish(struct fw_snap *s, const char *bridge_json)
{
        _cleanup_(json_putp) struct json_object *root = NULL;
        struct json_object *items = NULL;
        unsigned sk = 0;
        int r;

        if (bridge_json && bridge_json[0]) {
                if ((r = parse_doc(bridge_json, &root)) < 0)
                        return r;
                (void)json_object_object_get_ex(root, "nftables", &items);
                s->bridge_exists = streq_ptr(doc_table(items, "bridge"), FW_TABLE);
                s->bridge_ours = s->bridge_exists && owner_marked(items, FW_TABLE, "prerouting");
                if ((r = pass_chains(s, items, FW_TABLE, -1, &sk, NULL)) < 0)
                        return r;
                pass_sets(s, items, FW_TABLE, -1, &sk);
                s->bridge_complete = s->bridge_ours && sk == SK_BRIDGE_ALL && fixed_chains_ok(items, FW_TABLE, false);
        }
        snap_settle(s);
        return 0;
}

/* What needs every table: digests, references, ports missing a part. */
static void snap_settle(struct fw_snap *s)
{
        for (size_t i = 0; i < s->n_groups; i++) {
                struct fw_snap_group *g = &s->groups[i];
                g->digest = secrule_digest(g->rules, g->n_rules);
                /* the family check is there exactly when the builder writes one */
                if (g->family_in != fw_group_family(g->rules, g->n_rules, SECRULE_INGRESS) ||
                    g->family_out != fw_group_family(g->rules, g->n_rules, SECRULE_EGRESS))
                        g->tampered = true;
        }
        for (size_t i = 0; i < s->n_ports; i++) {
                struct fw_snap_port *p = &s->ports[i];
                for (size_t k = 0; k < p->port.n_groups; k++) {
                        struct fw_snap_group *g = fw_snap_group_find(s, p->shard, p->port.groups[k]);
                        if (g)
                                g->refs++;
                        else
                                p->tampered = true; /* jumps to a group chain that is gone */
                }
                if (!p->has_dispatch || !p->has_mac || !p->has_tap || !p->has_guard || !p->has_ll)
                        p->tampered = true;
        }
        s->finished = true;
}

int fw_snap_parse(const char *const *inet_json, size_t n, const char *bridge_json, struct fw_snap *ret)
{
        struct fw_snap s = { 0 };
        int r = 0;

        for (size_t i = 0; i < n && r == 0; i++)
                r = fw_snap_add_inet(&s, inet_json[i]);
        if (r == 0)
                r = fw_snap_finish(&s, bridge_json);
        if (r < 0) {
                fw_snap_free(&s);
                return r;
        }
        *ret = s;
        return 0;
}

bool fw_snap_ready(const struct fw_snap *s)
{
        if (!s->shards[0].complete || !s->bridge_complete)
                return false;
        for (size_t k = 1; k < FW_MAX_SHARDS; k++)
                if (s->shards[k].ours && !s->shards[k].complete)
                        return false;
        return true;
}

void fw_snap_free(struct fw_snap *s)
{
        for (size_t i = 0; i < s->n_groups; i++)
                free(s->groups[i].rules);
        free(s->groups);
        free(s->ports);
        free(s->port_ix.slot);
        free(s->group_ix.slot);
        *s = (struct fw_snap){ 0 };
}

/* ---- which tables exist: the kernel's NFT_MSG_GETTABLE dump ---- */

/* The table name of a NEWTABLE message's attributes, or NULL. */
static const char *table_name_attr(const uint8_t *a, size_t len, char ret[FW_TABLE_NAME_MAX])
{
        while (len >= (size_t)NLA_HDRLEN) {
                struct nlattr nla;
                memcpy(&nla, a, sizeof(nla));
                if (nla.nla_len < (size_t)NLA_HDRLEN || nla.nla_len > len)
                        return NULL;
                if ((nla.nla_type & NLA_TYPE_MASK) == NFTA_TABLE_NAME) {
                        size_t n = (size_t)nla.nla_len - (size_t)NLA_HDRLEN;
                        const char *v = (const char *)a + NLA_HDRLEN;
                        /* NUL-terminated within the attribute, and short */
                        if (n == 0 || n > FW_TABLE_NAME_MAX || v[n - 1] != '\0' || strlen(v) != n - 1)
                                return NULL;
                        memcpy(ret, v, n);
                        return ret;
                }
                size_t step = NLA_ALIGN((size_t)nla.nla_len);
                if (step >= len)
                        break;
                a += step;
                len -= step;
        }
        return NULL;
}

static bool nl_attr_be32(const uint8_t *a, size_t len, uint16_t type, uint32_t *ret);

int fw_tables_feed(struct fw_tables *t, const void *buf, size_t len, uint32_t seq)
{
        const uint8_t *p = buf;

        while (len > 0) {
                struct nlmsghdr h;
                if (len < sizeof(h))
                        return -EBADMSG;
                memcpy(&h, p, sizeof(h));
                if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len || h.nlmsg_seq != seq)
                        return -EBADMSG;
                if (h.nlmsg_flags & NLM_F_DUMP_INTR)
                        return -EINTR;
                if (h.nlmsg_type == NLMSG_DONE)
                        return 1;
                if (h.nlmsg_type == NLMSG_ERROR) {
                        struct nlmsgerr e;
                        if (h.nlmsg_len < (size_t)NLMSG_HDRLEN + sizeof(e))
                                return -EBADMSG;
                        memcpy(&e, p + NLMSG_HDRLEN, sizeof(e));
                        if (e.error < 0 && e.error > -4096)
                                return e.error;
                        if (e.error != 0)
                                return -EBADMSG;
                } else if (h.nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE)) {
                        struct nfgenmsg g;
                        char name[FW_TABLE_NAME_MAX];
                        if (h.nlmsg_len < (size_t)NLMSG_HDRLEN + sizeof(g))
                                return -EBADMSG;
                        memcpy(&g, p + NLMSG_HDRLEN, sizeof(g));
                        size_t off = (size_t)NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(g));
                        const char *n = h.nlmsg_len > off ? table_name_attr(p + off, h.nlmsg_len - off, name) : NULL;
                        int k = fw_shard_from_table(n);
                        if (g.nfgen_family == NFPROTO_INET && k >= 0)
                                t->inet[k] = true;
                        else if (g.nfgen_family == NFPROTO_BRIDGE && streq_ptr(n, FW_TABLE))
                                t->bridge = true;
                        else if (g.nfgen_family == NFPROTO_BRIDGE && streq_ptr(n, FW_GUARD_TABLE)) {
                                t->guard = true;
                                if (!nl_attr_be32(p + off, h.nlmsg_len - off, NFTA_TABLE_FLAGS, &t->guard_flags))
                                        t->guard_flags = 0;
                        }
                }
                if (NLMSG_ALIGN(h.nlmsg_len) >= len)
                        break;
                p += NLMSG_ALIGN(h.nlmsg_len);
                len -= NLMSG_ALIGN(h.nlmsg_len);
        }
        return 0;
}

/* ---- changes made by others: the NFNLGRP_NFTABLES stream ---- */

/* Attribute `type` of a message's attributes (a..a+len): its payload and length, or NULL. */
static const uint8_t *nl_attr(const uint8_t *a, size_t len, uint16_t type, size_t *ret_len)
{
        while (len >= (size_t)NLA_HDRLEN) {
                struct nlattr nla;
                memcpy(&nla, a, sizeof(nla));
                if (nla.nla_len < (size_t)NLA_HDRLEN || nla.nla_len > len)
                        return NULL;
                if ((nla.nla_type & NLA_TYPE_MASK) == type) {
                        *ret_len = (size_t)nla.nla_len - (size_t)NLA_HDRLEN;
                        return a + NLA_HDRLEN;
                }
                size_t step = NLA_ALIGN((size_t)nla.nla_len);
                if (step >= len)
                        break;
                a += step;
                len -= step;
        }
        return NULL;
}

/* A NUL-terminated string attribute of at most max bytes (with the NUL) into ret. */
static bool nl_attr_str(const uint8_t *a, size_t len, uint16_t type, char *ret, size_t max)
{
        size_t n;
        const uint8_t *v = nl_attr(a, len, type, &n);

        if (!v || n == 0 || n > max || v[n - 1] != '\0' || strnlen((const char *)v, n) != n - 1)
                return false;
        memcpy(ret, v, n);
        return true;
}

static bool nl_attr_be32(const uint8_t *a, size_t len, uint16_t type, uint32_t *ret)
{
        size_t n;
        const uint8_t *v = nl_attr(a, len, type, &n);

        if (!v || n != 4)
                return false;
        *ret = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
        return true;
}

void fw_watch_reset(struct fw_watch *w) { w->cur = (struct fw_watch_commit){ 0 }; }

/* NFT_MSG_DESTROYTABLE (kernel 6.3+: delete if it exists); its notification is a DELTABLE. */
#define FW_NFT_MSG_DESTROYTABLE 26

static void watch_mark(struct fw_watch_commit *c, uint8_t *m, int msg)
{
        if (msg == NFT_MSG_DELTABLE || msg == FW_NFT_MSG_DESTROYTABLE)
                *m = FW_WATCH_DELETED;
        else if (msg == NFT_MSG_NEWTABLE)
                *m = *m == FW_WATCH_DELETED || *m == FW_WATCH_RECREATED ? FW_WATCH_RECREATED : FW_WATCH_CREATED;
        else if (*m == FW_WATCH_NONE)
                *m = FW_WATCH_TOUCHED;
        c->any = true;
}

int fw_watch_feed(struct fw_watch *w, const void *buf, size_t len,
                  void (*on_commit)(const struct fw_watch_commit *c, void *userdata), void *userdata)
{
        const uint8_t *p = buf;

        while (len > 0) {
                struct nlmsghdr h;
                struct nfgenmsg g;
                size_t off = (size_t)NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(g));

                if (len < sizeof(h))
                        goto bad;
                memcpy(&h, p, sizeof(h));
                if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len)
                        goto bad;
                if ((h.nlmsg_type >> 8) == NFNL_SUBSYS_NFTABLES && h.nlmsg_len >= off) {
                        int msg = h.nlmsg_type & 0xff;
                        const uint8_t *a = p + off;
                        size_t alen = h.nlmsg_len - off;

                        memcpy(&g, p + NLMSG_HDRLEN, sizeof(g));
                        if (msg == NFT_MSG_NEWGEN) {
                                struct fw_watch_commit *c = &w->cur;
                                if (!nl_attr_be32(a, alen, NFTA_GEN_ID, &c->gen))
                                        c->gen = 0;
                                if (!nl_attr_be32(a, alen, NFTA_GEN_PROC_PID, &c->pid))
                                        c->pid = 0;
                                if (!nl_attr_str(a, alen, NFTA_GEN_PROC_NAME, c->proc, sizeof(c->proc)))
                                        c->proc[0] = '\0';
                                if (on_commit)
                                        on_commit(c, userdata);
                                fw_watch_reset(w);
                        } else {
                                /* attribute 1 is the table's name in every object kind (NFTA_TABLE_NAME,
                                 * NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE, ...) */
                                char name[FW_TABLE_NAME_MAX];
                                int k;
                                if (nl_attr_str(a, alen, NFTA_TABLE_NAME, name, sizeof(name))) {
                                        k = fw_shard_from_table(name);
                                        if (g.nfgen_family == NFPROTO_INET && k >= 0)
                                                watch_mark(&w->cur, &w->cur.inet[k], msg);
                                        else if (g.nfgen_family == NFPROTO_BRIDGE && streq(name, FW_TABLE))
                                                watch_mark(&w->cur, &w->cur.bridge, msg);
                                }
                        }
                }
                if (NLMSG_ALIGN(h.nlmsg_len) >= len)
                        break;
                p += NLMSG_ALIGN(h.nlmsg_len);
                len -= NLMSG_ALIGN(h.nlmsg_len);
        }
        return 0;
bad:
        fw_watch_reset(w);
        return -EBADMSG;
}

/* ---- our tables read back from the kernel's nf_tables dumps ----
 *
 * The same picture as the JSON decoder above, read without libnftables: its
 * listing of a 64-port shard with a group each is megabytes of text and
 * then a JSON tree of several times that (37 MB at the module's peak with
 * 3000 ports). Here every datagram of a dump is decoded as it arrives, into
 * the snapshot only: what the read holds besides the snapshot is one recv
 * buffer (the caller's), this state, and the rules of one port chain. */

#define DUMP_NAME_MAX 256      /* NFT_NAME_MAXLEN / NFT_CHAIN_MAXNAMELEN: any name the kernel holds */
#define DUMP_EXPRS_MAX 12      /* expressions of one rule we decode; more: not a rule of ours */
#define DUMP_CHAIN_RULES (7 + 2 * PORT_MAX_GROUPS + 1) /* rules of a port chain we keep; more: tampered */
#define DUMP_TEXT_MAX 64       /* a port rule's comment or jump target we compare ("nh group <uuid>" fits) */

enum dump_kind { D_TABLES, D_OWNER, D_CHAINS, D_RULES, D_SETS, D_ELEMS };

/* One expression, as far as the port chains need it. */
enum { X_OTHER, X_META, X_CMP, X_PAYLOAD, X_IMM, X_META_SET, X_BITWISE };
struct dump_expr {
        uint8_t kind;
        uint32_t reg;          /* dreg (meta, payload, immediate) or sreg (cmp, meta set, bitwise) */
        uint32_t a, b, c;      /* meta, meta set: key; cmp: op; payload: base, offset, len; bitwise: -, dreg, len */
        int32_t verdict;       /* immediate */
        uint8_t data[16];      /* cmp's value; bitwise of 4 bytes: its mask, then its xor */
        uint32_t dlen;
        char chain[DUMP_TEXT_MAX]; /* immediate's jump target ("" none; too long: "?") */
};

/* A port chain's rule, by its shape. */
enum { R_OTHER, R_JUMP, R_DROP, R_MAC_UDP, R_MAC_JUMP, R_MAC_DROP, R_UDP };
struct dump_rule {
        uint8_t shape;
        uint8_t mac[6];
        uint16_t sport, dport;
        char target[DUMP_TEXT_MAX];  /* R_JUMP, R_MAC_JUMP */
        bool has_comment, long_comment;
        char comment[DUMP_TEXT_MAX];
};

struct fw_dump {
        struct fw_snap *s;
        struct fw_tables t;            /* D_TABLES */
        const bool *only;              /* shards to read (NULL: all) */
        enum dump_kind kind;
        uint32_t seq;                  /* of the request being answered */
        uint8_t family;                /* of the request (NFPROTO_INET, _BRIDGE) */
        int shard;                     /* table being read: a shard, or -1 for the bridge table */
        char table[FW_TABLE_NAME_MAX];
        const char *set;               /* D_ELEMS: its set */
        bool have_gen;
        uint16_t gen;                  /* the ruleset generation every message must carry */
        bool owner;                    /* D_OWNER: the mark was seen */
        bool ours[FW_MAX_SHARDS], bridge_ours;
        unsigned sk[FW_MAX_SHARDS], bridge_sk; /* SK_* of each table */
        unsigned fixed[3];             /* rules of the table's fixed chains (fixed_chain_names order) */
        unsigned fixed_pass[3];        /* ...of them with the guard's pass */
        bool dup[FW_MAX_SHARDS];       /* holds a port chain another shard holds too */
        bool set_seen[8];              /* D_SETS: which of the sets to dump exist (dump_sets order) */
        /* D_RULES of a shard: the port chain being read */
        struct fw_snap_port *port;     /* NULL: none, or not this shard's */
        char port_chain[UUID_STR_LEN + 8];
        size_t n_rules;                /* rules seen in it (may exceed the kept ones) */
        struct dump_rule rules[DUMP_CHAIN_RULES];
        uint8_t *port_seen;            /* per port record: its chain's rules were checked */
        size_t n_port_seen;
        struct dev_index di;           /* D_ELEMS of the bridge table */
};

static const char *const inet_fixed_chains[] = { FW_ACCEPTED_CHAIN, "common", "forward" };
static const char *const bridge_fixed_chains[] = { "prerouting", "from_vm", "forward" };
/* the sets whose elements are read: a shard's dispatch map, the bridge table's anti-spoofing sets */
static const char *const inet_dump_sets[] = { "ports" };
static const char *const bridge_dump_sets[] = { "taps", "vm_mac", "vm_ip4", "vm_ip6", "guard" };

/* ---- attributes ---- */

/* The next attribute of a..a+len: its type, payload and length; false at
 * the end, and *bad for a malformed one. */
static bool attr_next(const uint8_t **a, size_t *len, uint16_t *type, const uint8_t **val, size_t *vlen, bool *bad)
{
        struct nlattr nla;

        if (*len < (size_t)NLA_HDRLEN) {
                *bad = *bad || *len != 0;
                return false;
        }
        memcpy(&nla, *a, sizeof(nla));
        if (nla.nla_len < (size_t)NLA_HDRLEN || nla.nla_len > *len) {
                *bad = true;
                return false;
        }
        *type = nla.nla_type & NLA_TYPE_MASK;
        *val = *a + NLA_HDRLEN;
        *vlen = (size_t)nla.nla_len - (size_t)NLA_HDRLEN;
        size_t step = NLA_ALIGN((size_t)nla.nla_len);
        if (step >= *len) {
                *a += *len;
                *len = 0;
        } else {
                *a += step;
                *len -= step;
        }
        return true;
}

/* The payload of nested attribute `type` inside a..a+len (NFTA_DATA_VALUE in a DATA). */
static const uint8_t *nested(const uint8_t *a, size_t len, uint16_t outer, uint16_t inner, size_t *ret_len)
{
        size_t olen;
        const uint8_t *o = nl_attr(a, len, outer, &olen);

        return o ? nl_attr(o, olen, inner, ret_len) : NULL;
}

/* A string attribute of any length up to max (with its NUL) into ret; false when absent or not a C string. */
static bool attr_str(const uint8_t *a, size_t len, uint16_t type, char *ret, size_t max)
{
        return nl_attr_str(a, len, type, ret, max);
}

/* A verdict (NFTA_DATA_VERDICT's code and chain) inside a data attribute's payload. */
static bool verdict_of(const uint8_t *data, size_t len, int32_t *ret_code, char *chain, size_t chain_max)
{
        size_t vlen;
        const uint8_t *v = nl_attr(data, len, NFTA_DATA_VERDICT, &vlen);
        uint32_t code;

        if (!v || !nl_attr_be32(v, vlen, NFTA_VERDICT_CODE, &code))
                return false;
        *ret_code = (int32_t)code;
        if (!nl_attr(v, vlen, NFTA_VERDICT_CHAIN, &(size_t){ 0 }))
                chain[0] = '\0';
        else if (!attr_str(v, vlen, NFTA_VERDICT_CHAIN, chain, chain_max))
                (void)snprintf(chain, chain_max, "?"); /* too long for one of ours */
        return true;
}

/* ---- rules ---- */

static void expr_decode(const uint8_t *a, size_t len, struct dump_expr *e)
{
        char name[16];
        size_t dlen = 0, vlen = 0;
        const uint8_t *d = nl_attr(a, len, NFTA_EXPR_DATA, &dlen), *v;
        uint32_t x;

        *e = (struct dump_expr){ .kind = X_OTHER };
        if (!attr_str(a, len, NFTA_EXPR_NAME, name, sizeof(name)) || !d)
                return;
        if (streq(name, "meta")) {
                if (nl_attr_be32(d, dlen, NFTA_META_DREG, &e->reg) && nl_attr_be32(d, dlen, NFTA_META_KEY, &e->a) &&
                    !nl_attr(d, dlen, NFTA_META_SREG, &vlen))
                        e->kind = X_META;
                else if (nl_attr_be32(d, dlen, NFTA_META_SREG, &e->reg) && nl_attr_be32(d, dlen, NFTA_META_KEY, &e->a) &&
                         !nl_attr(d, dlen, NFTA_META_DREG, &vlen))
                        e->kind = X_META_SET;
        } else if (streq(name, "bitwise")) {
                const uint8_t *mask = nested(d, dlen, NFTA_BITWISE_MASK, NFTA_DATA_VALUE, &vlen), *xor;
                size_t xlen = 0;
                uint32_t op = 0; /* NFT_BITWISE_BOOL (mask and xor) when the kernel does not say */
                size_t olen = 0;
                xor = nested(d, dlen, NFTA_BITWISE_XOR, NFTA_DATA_VALUE, &xlen);
                if (nl_attr(d, dlen, NFTA_BITWISE_OP, &olen) && !nl_attr_be32(d, dlen, NFTA_BITWISE_OP, &op))
                        op = 1;
                if (op == 0 && nl_attr_be32(d, dlen, NFTA_BITWISE_SREG, &e->reg) &&
                    nl_attr_be32(d, dlen, NFTA_BITWISE_DREG, &e->b) && nl_attr_be32(d, dlen, NFTA_BITWISE_LEN, &e->c) &&
                    mask && xor && vlen == 4 && xlen == 4 && e->c == 4) {
                        memcpy(e->data, mask, 4);
                        memcpy(e->data + 4, xor, 4);
                        e->kind = X_BITWISE;
                }
        } else if (streq(name, "cmp")) {
                v = nested(d, dlen, NFTA_CMP_DATA, NFTA_DATA_VALUE, &vlen);
                if (nl_attr_be32(d, dlen, NFTA_CMP_SREG, &e->reg) && nl_attr_be32(d, dlen, NFTA_CMP_OP, &e->a) && v &&
                    vlen <= sizeof(e->data)) {
                        memcpy(e->data, v, vlen);
                        e->dlen = (uint32_t)vlen;
                        e->kind = X_CMP;
                }
        } else if (streq(name, "payload")) {
                if (nl_attr_be32(d, dlen, NFTA_PAYLOAD_DREG, &e->reg) && nl_attr_be32(d, dlen, NFTA_PAYLOAD_BASE, &e->a) &&
                    nl_attr_be32(d, dlen, NFTA_PAYLOAD_OFFSET, &e->b) && nl_attr_be32(d, dlen, NFTA_PAYLOAD_LEN, &e->c) &&
                    !nl_attr(d, dlen, NFTA_PAYLOAD_SREG, &vlen))
                        e->kind = X_PAYLOAD;
        } else if (streq(name, "immediate")) {
                v = nl_attr(d, dlen, NFTA_IMMEDIATE_DATA, &vlen);
                if (nl_attr_be32(d, dlen, NFTA_IMMEDIATE_DREG, &x) && x == NFT_REG_VERDICT && v &&
                    verdict_of(v, vlen, &e->verdict, e->chain, sizeof(e->chain)))
                        e->kind = X_IMM;
        }
}

static bool x_meta(const struct dump_expr *e, uint32_t key) { return e->kind == X_META && e->reg == NFT_REG_1 && e->a == key; }

static bool x_cmp(const struct dump_expr *e, const void *v, uint32_t len)
{
        return e->kind == X_CMP && e->reg == NFT_REG_1 && e->a == NFT_CMP_EQ && e->dlen == len && memcmp(e->data, v, len) == 0;
}

static bool x_payload(const struct dump_expr *e, uint32_t base, uint32_t off, uint32_t len)
{
        return e->kind == X_PAYLOAD && e->reg == NFT_REG_1 && e->a == base && e->b == off && e->c == len;
}

/* `meta mark set meta mark | BITS` at e[0..2], BITS one of the guard's
 * passes (FW_ACCEPT_MARK, FW_VM_MARK or both): BITS, else 0. */
static uint32_t x_pass_bits(const struct dump_expr *e)
{
        static const uint32_t passes[] = { FW_ACCEPT_MARK, FW_VM_MARK, FW_GUARD_MARKS };

        if (!x_meta(&e[0], NFT_META_MARK) || e[1].kind != X_BITWISE || e[1].reg != NFT_REG_1 ||
            e[1].b != NFT_REG_1 || e[2].kind != X_META_SET || e[2].a != NFT_META_MARK || e[2].reg != NFT_REG_1)
                return 0;
        for (size_t i = 0; i < ARRAY_SIZE(passes); i++) {
                const uint32_t mask = ~passes[i];
                if (memcmp(e[1].data, &mask, 4) == 0 && memcmp(e[1].data + 4, &passes[i], 4) == 0)
                        return passes[i];
        }
        return 0;
}

/* `jump accepted`: an accept of the inet shards, with the pass (fw-nft.h) */
static bool x_accepted(const struct dump_expr *e)
{
        return e->kind == X_IMM && e->verdict == NFT_JUMP && streq(e->chain, FW_ACCEPTED_CHAIN);
}

/* `ether saddr MAC` (with the `meta iiftype ether` libnftables puts before it) at e[0..3]. */
static bool x_ether_saddr(const struct dump_expr *e, uint8_t mac[6])
{
        const uint16_t ether = 1; /* ARPHRD_ETHER, host byte order */

        if (!x_meta(&e[0], NFT_META_IIFTYPE) || !x_cmp(&e[1], &ether, sizeof(ether)) ||
            !x_payload(&e[2], NFT_PAYLOAD_LL_HEADER, 6, 6) || e[3].kind != X_CMP || e[3].reg != NFT_REG_1 ||
            e[3].a != NFT_CMP_EQ || e[3].dlen != 6)
                return false;
        memcpy(mac, e[3].data, 6);
        return true;
}

/* `udp sport S udp dport D` at e[0..3]. */
static bool x_udp_ports(const struct dump_expr *e, uint16_t *sport, uint16_t *dport)
{
        const uint8_t udp = 17;

        if (!x_meta(&e[0], NFT_META_L4PROTO) || !x_cmp(&e[1], &udp, 1) ||
            !x_payload(&e[2], NFT_PAYLOAD_TRANSPORT_HEADER, 0, 4) || e[3].kind != X_CMP || e[3].reg != NFT_REG_1 ||
            e[3].a != NFT_CMP_EQ || e[3].dlen != 4)
                return false;
        *sport = (uint16_t)(e[3].data[0] << 8 | e[3].data[1]);
        *dport = (uint16_t)(e[3].data[2] << 8 | e[3].data[3]);
        return true;
}

static bool x_verdict(const struct dump_expr *e, int32_t code, char *ret_target)
{
        if (e->kind != X_IMM || e->verdict != code)
                return false;
        if (ret_target)
                memcpy(ret_target, e->chain, DUMP_TEXT_MAX);
        return ret_target ? e->chain[0] != '\0' : e->chain[0] == '\0';
}

/* `meta nfproto != ipv4|ipv6 return`: a group chain's family check, whole. */
static bool x_family_rule(const uint8_t *a, size_t len, int family)
{
        struct dump_expr e[4] = { 0 };
        size_t exlen = 0, vlen, n = 0;
        const uint8_t *ex = nl_attr(a, len, NFTA_RULE_EXPRESSIONS, &exlen), *v;
        const uint8_t proto = family == 6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
        bool bad = false;
        uint16_t type;

        while (ex && attr_next(&ex, &exlen, &type, &v, &vlen, &bad)) {
                if (type != NFTA_LIST_ELEM || n == ARRAY_SIZE(e))
                        return false;
                expr_decode(v, vlen, &e[n++]);
        }
        return !bad && n == 3 && x_meta(&e[0], NFT_META_NFPROTO) && e[1].kind == X_CMP && e[1].reg == NFT_REG_1 &&
               e[1].a == NFT_CMP_NEQ && e[1].dlen == 1 && e[1].data[0] == proto && e[2].kind == X_IMM &&
               e[2].verdict == NFT_RETURN && e[2].chain[0] == '\0';
}

/* What the guard needs of a rule: the pass anywhere in it (pass), or its
 * end an accept of the inet shards, `jump accepted` (pass_accept). */
struct rule_tail {
        bool pass, pass_accept;
        unsigned pass_weight; /* the passes anywhere in it, weighed as fw_fixed_chain_passes counts them */
};

static struct rule_tail rule_tail(const uint8_t *a, size_t len)
{
        struct dump_expr last[4] = { 0 }; /* the newest at [3] */
        struct rule_tail t = { 0 };
        size_t exlen = 0, vlen, n = 0;
        const uint8_t *ex = nl_attr(a, len, NFTA_RULE_EXPRESSIONS, &exlen), *v;
        bool bad = false;
        uint16_t type;

        while (ex && attr_next(&ex, &exlen, &type, &v, &vlen, &bad)) {
                if (type != NFTA_LIST_ELEM)
                        return (struct rule_tail){ 0 };
                memmove(&last[0], &last[1], 3 * sizeof(last[0]));
                expr_decode(v, vlen, &last[3]);
                if (x_accepted(&last[3])) {
                        t.pass = true;
                        t.pass_weight += FW_PASS_WEIGHT_ACCEPT;
                }
                if (++n >= 3) {
                        uint32_t bits = x_pass_bits(&last[1]);
                        t.pass |= bits == FW_ACCEPT_MARK;
                        t.pass_weight += (bits & FW_ACCEPT_MARK ? FW_PASS_WEIGHT_ACCEPT : 0) +
                                         (bits & FW_VM_MARK ? FW_PASS_WEIGHT_VM : 0);
                }
        }
        if (bad)
                return (struct rule_tail){ 0 };
        t.pass_accept = n >= 1 && x_accepted(&last[3]);
        return t;
}

/* The shape of a rule from its expressions (a port chain has six; accepts
 * are `jump accepted`, the chain that gives the guard's pass). */
static void rule_shape(const struct dump_expr *e, size_t n, struct dump_rule *r)
{
        r->shape = R_OTHER;
        if (n == 1 && x_verdict(&e[0], NFT_JUMP, r->target))
                r->shape = R_JUMP;
        else if (n == 1 && x_verdict(&e[0], NF_DROP, NULL))
                r->shape = R_DROP;
        else if (n == 5 && x_udp_ports(e, &r->sport, &r->dport) && x_accepted(&e[4]))
                r->shape = R_UDP;
        else if (n >= 5 && x_ether_saddr(e, r->mac)) {
                if (n == 9 && x_udp_ports(&e[4], &r->sport, &r->dport) && x_accepted(&e[8]))
                        r->shape = R_MAC_UDP;
                else if (n == 5 && x_verdict(&e[4], NFT_JUMP, r->target))
                        r->shape = R_MAC_JUMP;
                else if (n == 5 && x_verdict(&e[4], NF_DROP, NULL))
                        r->shape = R_MAC_DROP;
        }
}

/* Is r the k-th rule of p's chain as fw_nl_port_chain writes it (the
 * netlink counterpart of port_rule_ok)? */
static bool dump_port_rule_ok(const struct fw_port *p, size_t k, const struct dump_rule *r)
{
        char mac[MAC_STR_LEN + 1], want[DUMP_TEXT_MAX] = "", target[DUMP_TEXT_MAX];
        size_t n = p->n_groups;
        bool same_mac = memcmp(r->mac, p->mac, 6) == 0;

        mac_format(p->mac, mac);
        if (k == 3 + n)
                (void)snprintf(want, sizeof(want), "nh mac %s", mac);
        else if (k >= 3 && k < 3 + n)
                (void)snprintf(want, sizeof(want), "nh group %s", p->groups[k - 3]);
        if (r->long_comment || r->has_comment != (want[0] != '\0') || (want[0] && !streq(r->comment, want)))
                return false;
        if (k == 0)
                return r->shape == R_JUMP && streq(r->target, "common");
        if (k == 1 || k == 2)
                return r->shape == R_MAC_UDP && same_mac && r->sport == (k == 1 ? 68 : 546) &&
                       r->dport == (k == 1 ? 67 : 547);
        if (k < 3 + n) {
                (void)snprintf(target, sizeof(target), "sg-%s-out", p->groups[k - 3]);
                return r->shape == R_MAC_JUMP && same_mac && streq(r->target, target);
        }
        if (k == 3 + n)
                return r->shape == R_MAC_DROP && same_mac;
        if (k == 4 + n || k == 5 + n)
                return r->shape == R_UDP && r->sport == (k == 4 + n ? 67 : 547) && r->dport == (k == 4 + n ? 68 : 546);
        if (k < 6 + 2 * n) {
                (void)snprintf(target, sizeof(target), "sg-%s-in", p->groups[k - 6 - n]);
                return r->shape == R_JUMP && streq(r->target, target);
        }
        if (k == 6 + 2 * n)
                return r->shape == R_DROP;
        return false;
}

/* The port chain read so far is complete: its comments give the port's
 * groups and MAC (as pass_rules reads them), then every rule is checked
 * (as pass_port_chains does). */
static void port_chain_done(struct fw_dump *d)
{
        struct fw_snap_port *p = d->port;
        size_t kept = d->n_rules < DUMP_CHAIN_RULES ? d->n_rules : DUMP_CHAIN_RULES;

        d->port = NULL;
        if (!p)
                return;
        for (size_t i = 0; i < kept; i++) {
                const struct dump_rule *r = &d->rules[i];
                if (!r->has_comment)
                        continue;
                if (!r->long_comment && strncmp(r->comment, "nh group ", 9) == 0) {
                        if (!uuid_is_valid(r->comment + 9) || p->port.n_groups == PORT_MAX_GROUPS)
                                p->tampered = true;
                        else
                                memcpy(p->port.groups[p->port.n_groups++], r->comment + 9, UUID_STR_LEN + 1);
                } else if (!r->long_comment && strncmp(r->comment, "nh mac ", 7) == 0) {
                        if (mac_parse(r->comment + 7, p->port.mac) < 0)
                                p->tampered = true;
                } else
                        p->tampered = true;
        }
        for (size_t i = 0; i < kept; i++)
                if (!dump_port_rule_ok(&p->port, i, &d->rules[i]))
                        p->tampered = true;
        if (d->n_rules != 7 + 2 * p->port.n_groups)
                p->tampered = true;
        d->port_seen[p - d->s->ports] = 1;
}

/* The comment of a rule's user data (NFTNL_UDATA_RULE_COMMENT: type 0,
 * length, a NUL-terminated string): 1 found (in ret, or long), 0 none, -1 malformed. */
static int rule_comment(const uint8_t *u, size_t len, char *ret, size_t max, bool *ret_long)
{
        while (len >= 2) {
                uint8_t type = u[0], n = u[1];
                if ((size_t)n + 2 > len)
                        return -1;
                if (type == 0) {
                        if (n == 0 || u[2 + n - 1] != '\0' || strnlen((const char *)u + 2, n) != (size_t)n - 1)
                                return -1;
                        *ret_long = n > max;
                        if (!*ret_long)
                                memcpy(ret, u + 2, n);
                        return 1;
                }
                u += 2 + n;
                len -= 2 + (size_t)n;
        }
        return len == 0 ? 0 : -1;
}

static int fixed_chain_index(bool inet, const char *chain)
{
        const char *const *names = inet ? inet_fixed_chains : bridge_fixed_chains;
        size_t n = inet ? ARRAY_SIZE(inet_fixed_chains) : ARRAY_SIZE(bridge_fixed_chains);

        for (size_t i = 0; i < n; i++)
                if (streq(names[i], chain))
                        return (int)i;
        return -1;
}

/* One NEWRULE of a D_OWNER or D_RULES dump. */
static int dump_rule(struct fw_dump *d, const uint8_t *a, size_t len)
{
        char chain[DUMP_NAME_MAX], comment[DUMP_NAME_MAX], id[UUID_STR_LEN + 1];
        bool inet = d->shard >= 0, long_comment = false;
        const uint8_t *u, *ex;
        size_t ulen = 0, exlen = 0;
        int has_comment = 0, f;

        if (!attr_str(a, len, NFTA_RULE_CHAIN, chain, sizeof(chain)) ||
            !attr_str(a, len, NFTA_RULE_TABLE, comment, sizeof(comment)))
                return -EBADMSG;
        if (!streq(comment, d->table))
                return 0; /* not the table asked for */
        comment[0] = '\0';
        if ((u = nl_attr(a, len, NFTA_RULE_USERDATA, &ulen)) &&
            (has_comment = rule_comment(u, ulen, comment, sizeof(comment), &long_comment)) < 0)
                has_comment = 0; /* user data we cannot read carries no comment of ours */
        if (d->kind == D_OWNER) {
                if (streq(chain, inet ? "forward" : "prerouting") && has_comment && !long_comment &&
                    streq(comment, FW_OWNER_MARK))
                        d->owner = true;
                return 0;
        }
        if ((f = fixed_chain_index(inet, chain)) >= 0) {
                d->fixed[f]++;
                d->fixed_pass[f] += rule_tail(a, len).pass_weight;
        }
        if (!inet)
                return 0;
        if (name_uuid(chain, "port-", "", id)) {
                if (!d->port_chain[0] || !streq(d->port_chain, chain)) {
                        struct fw_snap_port *p;
                        port_chain_done(d);
                        memcpy(d->port_chain, chain, strlen("port-") + UUID_STR_LEN + 1);
                        d->n_rules = 0;
                        p = fw_snap_port_find(d->s, id);
                        /* another shard's port (the chain here is a duplicate), or a chain made during the read */
                        d->port = p && p->shard == (unsigned)d->shard && !d->port_seen[p - d->s->ports] ? p : NULL;
                }
                if (d->port && d->n_rules < DUMP_CHAIN_RULES) {
                        struct dump_rule *r = &d->rules[d->n_rules];
                        struct dump_expr e[DUMP_EXPRS_MAX];
                        size_t n = 0;
                        bool bad = false;
                        uint16_t type;
                        const uint8_t *v;
                        size_t vlen;
                        *r = (struct dump_rule){ .has_comment = has_comment > 0, .long_comment = long_comment };
                        if (has_comment > 0 && !long_comment && strlen(comment) < sizeof(r->comment))
                                memcpy(r->comment, comment, strlen(comment) + 1);
                        else if (has_comment > 0)
                                r->long_comment = true;
                        if ((ex = nl_attr(a, len, NFTA_RULE_EXPRESSIONS, &exlen))) {
                                while (attr_next(&ex, &exlen, &type, &v, &vlen, &bad)) {
                                        if (type != NFTA_LIST_ELEM || n == DUMP_EXPRS_MAX)
                                                bad = true;
                                        else
                                                expr_decode(v, vlen, &e[n++]);
                                }
                        }
                        if (!bad)
                                rule_shape(e, n, r);
                }
                d->n_rules++;
                return 0;
        }
        bool in = name_uuid(chain, "sg-", "-in", id);
        if (in || name_uuid(chain, "sg-", "-out", id)) {
                struct fw_snap_group *g = fw_snap_group_find(d->s, (unsigned)d->shard, id);
                struct secrule r;
                int family = has_comment > 0 && !long_comment ? family_comment(comment) : 0;
                if (!g)
                        return 0;
                if (family) {
                        group_family_rule(g, in, family, x_family_rule(a, len, family));
                        return 0;
                }
                /* its comment says which rule; its accept must carry the guard's pass (a table
                 * written before the guard existed has none: rewritten by the core's sync) */
                if (has_comment <= 0 || long_comment || secrule_parse(comment, &r) < 0 ||
                    r.dir != (in ? SECRULE_INGRESS : SECRULE_EGRESS) || !rule_tail(a, len).pass_accept) {
                        g->tampered = true;
                        return 0;
                }
                return group_add_rule(g, &r);
        }
        return 0;
}

/* ---- chains, sets, elements ---- */

/* One NEWCHAIN of the family's chain dump (every table's: the kernel has no filter). */
static int dump_chain(struct fw_dump *d, const uint8_t *a, size_t len)
{
        char table[DUMP_NAME_MAX], name[DUMP_NAME_MAX], id[UUID_STR_LEN + 1];
        int shard;

        if (!attr_str(a, len, NFTA_CHAIN_TABLE, table, sizeof(table)) ||
            !attr_str(a, len, NFTA_CHAIN_NAME, name, sizeof(name)))
                return -EBADMSG;
        if (d->family == NFPROTO_BRIDGE) {
                if (!streq(table, FW_TABLE) || !d->bridge_ours)
                        return 0;
                if (streq(name, "from_vm"))
                        d->bridge_sk |= SK_FROM_VM;
                else if (streq(name, "prerouting"))
                        d->bridge_sk |= SK_PREROUTING;
                else if (streq(name, "forward"))
                        d->bridge_sk |= SK_BR_FORWARD;
                else /* e.g. a quarantine left behind by a restore that did not finish */
                        d->bridge_sk |= SK_BR_EXTRA;
                return 0;
        }
        shard = fw_shard_from_table(table);
        if (shard < 0 || !d->ours[shard])
                return 0;
        if (streq(name, "common"))
                d->sk[shard] |= SK_COMMON;
        else if (streq(name, "forward"))
                d->sk[shard] |= SK_FORWARD;
        else if (streq(name, FW_ACCEPTED_CHAIN))
                d->sk[shard] |= SK_ACCEPTED;
        else if (name_uuid(name, "port-", "", id)) {
                struct fw_snap_port *p = fw_snap_port_find(d->s, id);
                if (p) {
                        /* the lowest shard holds the port; every other one holding its chain is not complete */
                        unsigned lo = p->shard < (unsigned)shard ? p->shard : (unsigned)shard;
                        d->dup[p->shard == lo ? (unsigned)shard : p->shard] = true;
                        p->shard = lo;
                        p->tampered = true;
                        return 0;
                }
                if (!(p = fw_snap_port_get(d->s, id)))
                        return -ENOMEM;
                p->shard = (unsigned)shard;
                p->has_chain = true;
        } else if (name_uuid(name, "sg-", "-in", id) || name_uuid(name, "sg-", "-out", id)) {
                struct fw_snap_group *g = fw_snap_group_get(d->s, (unsigned)shard, id);
                if (!g)
                        return -ENOMEM;
                if (name[strlen(name) - 1] == 'n')
                        g->has_in = true;
                else
                        g->has_out = true;
        }
        return 0;
}

/* One NEWSET of a table's set dump: the fixed ones, and which to read the elements of. */
static int dump_set(struct fw_dump *d, const uint8_t *a, size_t len)
{
        char table[DUMP_NAME_MAX], name[DUMP_NAME_MAX];
        uint32_t flags = 0;
        bool inet = d->shard >= 0;
        const char *const *sets = inet ? inet_dump_sets : bridge_dump_sets;
        size_t n = inet ? ARRAY_SIZE(inet_dump_sets) : ARRAY_SIZE(bridge_dump_sets);

        if (!attr_str(a, len, NFTA_SET_TABLE, table, sizeof(table)) ||
            !attr_str(a, len, NFTA_SET_NAME, name, sizeof(name)))
                return -EBADMSG;
        if (!streq(table, d->table))
                return 0;
        (void)nl_attr_be32(a, len, NFTA_SET_FLAGS, &flags);
        bool is_map = (flags & NFT_SET_MAP) != 0;
        unsigned flag = fixed_set_flag(inet, is_map, name);
        if (inet)
                d->sk[d->shard] |= flag;
        else
                d->bridge_sk |= flag;
        for (size_t i = 0; i < n; i++)
                if (streq(sets[i], name) && (!inet || is_map))
                        d->set_seen[i] = true;
        return 0;
}

/* An interface name key (IFNAMSIZ bytes, NUL-padded) at k: into name, or false. */
static bool key_ifname(const uint8_t *k, size_t len, char name[IFNAME_MAX])
{
        if (len < IFNAME_MAX || strnlen((const char *)k, IFNAME_MAX) == IFNAME_MAX)
                return false;
        memcpy(name, k, IFNAME_MAX);
        return true;
}

/* One element of the set being dumped (the netlink counterparts of
 * ports_map_element and bridge_set_element). */
static void dump_element(struct fw_dump *d, const uint8_t *a, size_t len)
{
        size_t klen, dlen;
        const uint8_t *k = nested(a, len, NFTA_SET_ELEM_KEY, NFTA_DATA_VALUE, &klen);
        char dev[IFNAME_MAX], want[IFNAME_MAX], id[UUID_STR_LEN + 1];
        struct fw_snap *s = d->s;
        struct fw_snap_port *p;

        if (d->shard >= 0) { /* the ports map: "qbr<11>" : jump port-<uuid> */
                const uint8_t *data = nl_attr(a, len, NFTA_SET_ELEM_DATA, &dlen);
                char chain[DUMP_TEXT_MAX];
                int32_t code;
                if (!k || !key_ifname(k, klen, dev) || !data || !verdict_of(data, dlen, &code, chain, sizeof(chain)) ||
                    code != NFT_JUMP || !name_uuid(chain, "port-", "", id))
                        return;
                p = fw_snap_port_find(s, id);
                if (p && p->shard == (unsigned)d->shard && port_dev_name("qbr", id, want) == 0 && streq(dev, want))
                        p->has_dispatch = true;
                return;
        }
        if (!k || !key_ifname(k, klen, dev)) {
                s->orphan_elements++;
                return;
        }
        if (streq(d->set, "taps")) {
                if (klen == IFNAME_MAX && (p = port_by_dev(s, &d->di, "tap", dev)))
                        p->has_tap = true;
                else
                        s->orphan_elements++;
                return;
        }
        p = port_by_dev(s, &d->di, streq(d->set, "guard") ? "qvb" : "tap", dev);
        if (!p) {
                s->orphan_elements++;
                return;
        }
        if (streq(d->set, "vm_mac") || streq(d->set, "guard")) {
                if (klen != IFNAME_MAX + 8 || memcmp(k + IFNAME_MAX, p->port.mac, 6) != 0)
                        p->tampered = true;
                else if (streq(d->set, "guard"))
                        p->has_guard = true;
                else
                        p->has_mac = true;
        } else {
                bool v6 = streq(d->set, "vm_ip6");
                char ip[IP_STR_MAX];
                if (klen != IFNAME_MAX + (v6 ? 16u : 4u) ||
                    !inet_ntop(v6 ? AF_INET6 : AF_INET, k + IFNAME_MAX, ip, sizeof(ip)))
                        p->tampered = true;
                else
                        port_add_ip(p, ip);
        }
}

static int dump_elements(struct fw_dump *d, const uint8_t *a, size_t len)
{
        char table[DUMP_NAME_MAX], set[DUMP_NAME_MAX];
        const uint8_t *list, *v;
        size_t llen, vlen;
        uint16_t type;
        bool bad = false;

        if (!attr_str(a, len, NFTA_SET_ELEM_LIST_TABLE, table, sizeof(table)) ||
            !attr_str(a, len, NFTA_SET_ELEM_LIST_SET, set, sizeof(set)))
                return -EBADMSG;
        if (!streq(table, d->table) || !streq(set, d->set) || !(list = nl_attr(a, len, NFTA_SET_ELEM_LIST_ELEMENTS, &llen)))
                return 0;
        while (attr_next(&list, &llen, &type, &v, &vlen, &bad))
                if (type == NFTA_LIST_ELEM)
                        dump_element(d, v, vlen);
        return bad ? -EBADMSG : 0;
}

/* ---- the dumps ---- */

int fw_dump_feed(struct fw_dump *d, const void *buf, size_t len)
{
        static const uint8_t want[] = {
                [D_TABLES] = NFT_MSG_NEWTABLE, [D_OWNER] = NFT_MSG_NEWRULE, [D_CHAINS] = NFT_MSG_NEWCHAIN,
                [D_RULES] = NFT_MSG_NEWRULE,   [D_SETS] = NFT_MSG_NEWSET,   [D_ELEMS] = NFT_MSG_NEWSETELEM,
        };
        const uint8_t *p = buf;
        int r = 0;

        while (len > 0 && r == 0) {
                struct nlmsghdr h;
                struct nfgenmsg g;
                size_t off = (size_t)NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(g));

                if (len < sizeof(h))
                        return -EBADMSG;
                memcpy(&h, p, sizeof(h));
                if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len || h.nlmsg_seq != d->seq)
                        return -EBADMSG;
                if (h.nlmsg_flags & NLM_F_DUMP_INTR)
                        return -EINTR;
                if (h.nlmsg_type == NLMSG_DONE)
                        return 1;
                if (h.nlmsg_type == NLMSG_ERROR) {
                        struct nlmsgerr e;
                        if (h.nlmsg_len < (size_t)NLMSG_HDRLEN + sizeof(e))
                                return -EBADMSG;
                        memcpy(&e, p + NLMSG_HDRLEN, sizeof(e));
                        if (e.error < 0 && e.error > -4096)
                                return e.error;
                        return -EBADMSG; /* a dump is never acknowledged */
                }
                if (h.nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | want[d->kind]) || h.nlmsg_len < off)
                        return -EBADMSG;
                memcpy(&g, p + NLMSG_HDRLEN, sizeof(g));
                /* every object of one read must come from the same ruleset generation */
                if (!d->have_gen) {
                        d->have_gen = true;
                        d->gen = g.res_id;
                } else if (g.res_id != d->gen)
                        return -EINTR;
                const uint8_t *a = p + off;
                size_t alen = h.nlmsg_len - off;
                if (d->kind == D_TABLES) {
                        char name[FW_TABLE_NAME_MAX] = "";
                        int k = nl_attr_str(a, alen, NFTA_TABLE_NAME, name, sizeof(name)) ? fw_shard_from_table(name) : -1;
                        if (g.nfgen_family == NFPROTO_INET && k >= 0)
                                d->t.inet[k] = true;
                        else if (g.nfgen_family == NFPROTO_BRIDGE && k == 0)
                                d->t.bridge = true;
                        else if (g.nfgen_family == NFPROTO_BRIDGE && k < 0 && streq(name, FW_GUARD_TABLE)) {
                                d->t.guard = true;
                                if (!nl_attr_be32(a, alen, NFTA_TABLE_FLAGS, &d->t.guard_flags))
                                        d->t.guard_flags = 0;
                        }
                } else if (g.nfgen_family != d->family)
                        return -EBADMSG;
                else if (d->kind == D_CHAINS)
                        r = dump_chain(d, a, alen);
                else if (d->kind == D_SETS)
                        r = dump_set(d, a, alen);
                else if (d->kind == D_ELEMS)
                        r = dump_elements(d, a, alen);
                else
                        r = dump_rule(d, a, alen);
                if (NLMSG_ALIGN(h.nlmsg_len) >= len)
                        break;
                p += NLMSG_ALIGN(h.nlmsg_len);
                len -= NLMSG_ALIGN(h.nlmsg_len);
        }
        return r;
}

/* A dump request: header, nfgenmsg, then string attributes (type, value) until a 0 type. */
static int dump_request(struct fw_dump *d, fw_dump_io_fn io, void *userdata, uint32_t *seq, enum dump_kind kind,
                        uint8_t family, uint16_t msg, uint16_t t1, const char *v1, uint16_t t2, const char *v2)
{
        uint8_t req[NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)) + 2 * NLA_ALIGN(NLA_HDRLEN + DUMP_NAME_MAX)];
        struct nlmsghdr h = { .nlmsg_type = (uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | msg),
                              .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = ++*seq };
        struct nfgenmsg g = { .nfgen_family = family, .version = NFNETLINK_V0 };
        size_t len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(g));
        const uint16_t types[2] = { t1, t2 };
        const char *vals[2] = { v1, v2 };
        int r;

        memset(req, 0, sizeof(req));
        memcpy(req + NLMSG_HDRLEN, &g, sizeof(g));
        for (size_t i = 0; i < 2 && vals[i]; i++) {
                size_t n = strlen(vals[i]) + 1;
                struct nlattr nla = { .nla_len = (uint16_t)(NLA_HDRLEN + n), .nla_type = types[i] };
                if (n > DUMP_NAME_MAX)
                        return -EINVAL;
                memcpy(req + len, &nla, sizeof(nla));
                memcpy(req + len + NLA_HDRLEN, vals[i], n);
                len += NLA_ALIGN(NLA_HDRLEN + n);
        }
        h.nlmsg_len = (uint32_t)len;
        memcpy(req, &h, sizeof(h));
        d->kind = kind;
        d->seq = h.nlmsg_seq;
        d->family = family;
        r = io(userdata, req, len, d);
        if (kind == D_RULES)
                port_chain_done(d); /* the last chain of the dump */
        return r < 0 ? r : 0;
}

/* Read one table of ours (d->shard, d->table set): its rules, sets, and
 * the elements of the sets that matter. */
static int read_table(struct fw_dump *d, fw_dump_io_fn io, void *userdata, uint32_t *seq)
{
        bool inet = d->shard >= 0;
        uint8_t family = inet ? NFPROTO_INET : NFPROTO_BRIDGE;
        const char *const *sets = inet ? inet_dump_sets : bridge_dump_sets;
        size_t n = inet ? ARRAY_SIZE(inet_dump_sets) : ARRAY_SIZE(bridge_dump_sets);
        int r;

        memset(d->fixed, 0, sizeof(d->fixed));
        memset(d->fixed_pass, 0, sizeof(d->fixed_pass));
        memset(d->set_seen, 0, sizeof(d->set_seen));
        d->port = NULL;
        d->port_chain[0] = '\0';
        if ((r = dump_request(d, io, userdata, seq, D_RULES, family, NFT_MSG_GETRULE, NFTA_RULE_TABLE, d->table, 0,
                              NULL)) < 0 ||
            (r = dump_request(d, io, userdata, seq, D_SETS, family, NFT_MSG_GETSET, NFTA_SET_TABLE, d->table, 0,
                              NULL)) < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (!d->set_seen[i])
                        continue;
                d->set = sets[i];
                if ((r = dump_request(d, io, userdata, seq, D_ELEMS, family, NFT_MSG_GETSETELEM,
                                      NFTA_SET_ELEM_LIST_TABLE, d->table, NFTA_SET_ELEM_LIST_SET, sets[i])) < 0)
                        return r;
        }
        for (size_t f = 0; f < (inet ? ARRAY_SIZE(inet_fixed_chains) : ARRAY_SIZE(bridge_fixed_chains)); f++)
                if (d->fixed[f] != fw_fixed_chain_rules(inet, (inet ? inet_fixed_chains : bridge_fixed_chains)[f]) ||
                    d->fixed_pass[f] != fw_fixed_chain_passes(inet, (inet ? inet_fixed_chains : bridge_fixed_chains)[f]))
                        return 1; /* not complete */
        return 0;
}

static int snap_read_once(struct fw_dump *d, fw_dump_io_fn io, void *userdata, uint32_t *seq)
{
        struct fw_snap *s = d->s;
        int r;

        if ((r = dump_request(d, io, userdata, seq, D_TABLES, NFPROTO_UNSPEC, NFT_MSG_GETTABLE, 0, NULL, 0, NULL)) < 0)
                return r;
        /* which of our tables carry the mark (a table of our name without it is never read) */
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++) {
                if (!d->t.inet[k] || (d->only && !d->only[k]))
                        continue;
                s->shards[k].exists = true;
                fw_shard_table(k, d->table);
                d->shard = (int)k;
                d->owner = false;
                if ((r = dump_request(d, io, userdata, seq, D_OWNER, NFPROTO_INET, NFT_MSG_GETRULE, NFTA_RULE_TABLE,
                                      d->table, NFTA_RULE_CHAIN, "forward")) < 0)
                        return r;
                d->ours[k] = s->shards[k].ours = d->owner;
        }
        if (d->t.bridge) {
                s->bridge_exists = true;
                (void)snprintf(d->table, sizeof(d->table), "%s", FW_TABLE);
                d->shard = -1;
                d->owner = false;
                if ((r = dump_request(d, io, userdata, seq, D_OWNER, NFPROTO_BRIDGE, NFT_MSG_GETRULE, NFTA_RULE_TABLE,
                                      d->table, NFTA_RULE_CHAIN, "prerouting")) < 0)
                        return r;
                d->bridge_ours = s->bridge_ours = d->owner;
        }
        /* chains: one dump per family (every table's), records for ours */
        if ((r = dump_request(d, io, userdata, seq, D_CHAINS, NFPROTO_INET, NFT_MSG_GETCHAIN, 0, NULL, 0, NULL)) < 0 ||
            (d->bridge_ours &&
             (r = dump_request(d, io, userdata, seq, D_CHAINS, NFPROTO_BRIDGE, NFT_MSG_GETCHAIN, 0, NULL, 0, NULL)) < 0))
                return r;
        d->n_port_seen = s->n_ports;
        if (!(d->port_seen = calloc(s->n_ports + 1, 1)))
                return -ENOMEM;
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++) {
                bool fixed_ok;
                if (!d->ours[k])
                        continue;
                fw_shard_table(k, d->table);
                d->shard = (int)k;
                if ((r = read_table(d, io, userdata, seq)) < 0)
                        return r;
                fixed_ok = r == 0;
                for (size_t i = 0; i < s->n_ports; i++)
                        if (s->ports[i].shard == k) {
                                s->shards[k].n_ports++;
                                if (!d->port_seen[i]) /* its chain has no rule at all */
                                        s->ports[i].tampered = true;
                        }
                s->shards[k].complete = d->sk[k] == SK_INET_ALL && fixed_ok && !d->dup[k];
        }
        if (d->bridge_ours) {
                (void)snprintf(d->table, sizeof(d->table), "%s", FW_TABLE);
                d->shard = -1;
                /* no port record is added from here on: index the device names once */
                d->di.ok = s->n_ports < UINT32_MAX - 1 && ix_build(&d->di.ix, s, s->n_ports, &dev_ops) == 0;
                if ((r = read_table(d, io, userdata, seq)) < 0)
                        return r;
                s->bridge_complete = d->bridge_sk == SK_BRIDGE_ALL && r == 0;
        }
        /* the table list again: the same tables, of the same generation (a table deleted between two
         * dumps answers an empty dump, which carries no generation, and would read as not ours) */
        struct fw_tables first = d->t;
        memset(&d->t, 0, sizeof(d->t));
        if ((r = dump_request(d, io, userdata, seq, D_TABLES, NFPROTO_UNSPEC, NFT_MSG_GETTABLE, 0, NULL, 0, NULL)) < 0)
                return r;
        if (memcmp(&first, &d->t, sizeof(first)) != 0)
                return -EINTR;
        snap_settle(s);
        return 0;
}

int fw_snap_read(fw_dump_io_fn io, void *userdata, uint32_t *seq, const bool *only, struct fw_snap *ret,
                 struct fw_tables *ret_tables)
{
        int r = -EAGAIN;

        for (int attempt = 0; attempt < 3; attempt++) {
                struct fw_dump *d = calloc(1, sizeof(*d));
                struct fw_snap s = { 0 };
                if (!d)
                        return -ENOMEM;
                d->s = &s;
                d->only = only;
                r = snap_read_once(d, io, userdata, seq);
                if (r == 0 && ret_tables)
                        *ret_tables = d->t;
                free(d->port_seen);
                free(d->di.ix.slot);
                free(d);
                if (r == 0) {
                        *ret = s;
                        return 0;
                }
                fw_snap_free(&s);
                /* the ruleset changed during the read (a dump interrupted, another generation, a table or set
                 * gone between two dumps): read it again */
                if (r != -EINTR && r != -ENOENT)
                        return r;
        }
        return r == -ENOENT || r == -EINTR ? -EAGAIN : r;
}
