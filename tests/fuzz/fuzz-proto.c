/* fuzz-proto.c - libFuzzer target for proto_decode() and the writer.
 *
 * A refused frame must come with a reason and one of the documented errors.
 * An accepted frame must satisfy every documented bound (names, keys, counts,
 * depth, clean strings); a request for a network-control entrypoint is run
 * through its schema, and what the schema accepts must be usable as is.
 * Finally the tree is written back with the pw_* writer: the writer must
 * accept it, produce the very same bytes (the encoding is canonical), and the
 * result must decode to an identical tree. */
#include "names.h"
#include "fw-protocol.h"
#include "libvirt-protocol.h"
#include "netctl-protocol.h"
#include "ovs-protocol.h"
#include "proto.h"
#include "schema.h"

#define CHECK(x)                                                                             \
        do {                                                                                 \
                if (!(x)) {                                                                  \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        __builtin_trap();                                                    \
                }                                                                            \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct proto_msg msg;     /* the input, decoded */
static struct proto_msg again;   /* the re-encoding, decoded */
static struct proto_writer w;

static bool is_key(const char *k)
{
        return k && proto_name_is_valid(k, strlen(k)) && !strchr(k, '-');
}

/* Check one value and its subtree; returns the number of values in it. */
static size_t check_tree(const struct proto_value *v, unsigned depth, bool has_key)
{
        size_t nodes = 1, n = 0;

        CHECK(has_key ? is_key(v->key) : v->key == NULL);
        switch (v->type) {
        case PV_U64:
        case PV_I64:
        case PV_BOOL:
                CHECK(v->child == NULL);
                return 1;
        case PV_STR:
                CHECK(v->child == NULL);
                CHECK(v->v.s != NULL);
                CHECK(v->count <= PROTO_MAX_STR);
                CHECK(strlen(v->v.s) == v->count);
                CHECK(proto_text_is_clean(v->v.s, v->count));
                return 1;
        case PV_LIST:
        case PV_OBJ:
                CHECK(depth <= PROTO_MAX_DEPTH);
                CHECK(v->count <= (v->type == PV_LIST ? PROTO_MAX_ITEMS : PROTO_MAX_MEMBERS));
                for (const struct proto_value *c = v->child; c; c = c->next) {
                        if (v->type == PV_OBJ)
                                for (const struct proto_value *o = v->child; o != c; o = o->next)
                                        CHECK(strcmp(o->key, c->key) != 0);
                        nodes += check_tree(c, depth + 1, v->type == PV_OBJ);
                        n++;
                }
                CHECK(n == v->count);
                return nodes;
        default:
                CHECK(!"unknown value type in a decoded tree");
        }
        return 0;
}

static void write_value(const struct proto_value *v)
{
        switch (v->type) {
        case PV_U64:
                pw_u64(&w, v->key, v->v.u);
                break;
        case PV_I64:
                pw_i64(&w, v->key, v->v.i);
                break;
        case PV_BOOL:
                pw_bool(&w, v->key, v->v.b);
                break;
        case PV_STR:
                pw_str(&w, v->key, v->v.s);
                break;
        case PV_LIST:
                pw_list_begin(&w, v->key);
                for (const struct proto_value *c = v->child; c; c = c->next)
                        write_value(c);
                pw_list_end(&w);
                break;
        case PV_OBJ:
                pw_obj_begin(&w, v->key);
                for (const struct proto_value *c = v->child; c; c = c->next)
                        write_value(c);
                pw_obj_end(&w);
                break;
        default:
                CHECK(!"unknown value type");
        }
}

static bool same_tree(const struct proto_value *a, const struct proto_value *b)
{
        const struct proto_value *ca, *cb;

        if (a->type != b->type || a->count != b->count || !streq_ptr(a->key, b->key))
                return false;
        switch (a->type) {
        case PV_U64:
        case PV_I64:
                return a->v.u == b->v.u;
        case PV_BOOL:
                return a->v.b == b->v.b;
        case PV_STR:
                return memcmp(a->v.s, b->v.s, a->count + 1) == 0;
        case PV_LIST:
        case PV_OBJ:
                for (ca = a->child, cb = b->child; ca && cb; ca = ca->next, cb = cb->next)
                        if (!same_tree(ca, cb))
                                return false;
                return ca == NULL && cb == NULL;
        }
        return false;
}

/* What a schema accepted must be usable by the handler without more checks. */
static void check_validated(const struct proto_entrypoint *ep, const struct proto_value *body)
{
        const char *uuid = proto_get_str(body, "port_uuid", NULL);
        char name[IFNAME_MAX];

        for (const struct schema_field *f = ep->request; f->name; f++)
                if (f->required)
                        CHECK(proto_get(body, f->name) != NULL);
        for (const struct proto_value *m = body->child; m; m = m->next) {
                const struct schema_field *f;
                for (f = ep->request; f->name; f++)
                        if (streq(f->name, m->key))
                                break;
                CHECK(f->name != NULL);
        }
        if (uuid) {
                CHECK(uuid_is_valid(uuid));
                CHECK(tap_name_from_port(uuid, name) == 0);
                CHECK(strlen(name) < IFNAME_MAX);
                CHECK(port_dev_name_is_ours(TAP_PREFIX, name));
        }
        if (ep == &netctl_entrypoints[NETCTL_TAP_CREATE]) {
                uint8_t mac[6];
                uint64_t mtu = proto_get_u64(body, "mtu", 0);

                CHECK(uuid != NULL);
                CHECK(mac_parse(proto_get_str(body, "mac", ""), mac) == 0);
                CHECK(!(mac[0] & 1));
                CHECK(mtu >= NETCTL_MTU_MIN && mtu <= NETCTL_MTU_MAX);
                /* the datapath the module acts on: absent, or exactly one of the two words */
                const char *dp = proto_get_str(body, "datapath", NULL);
                CHECK(!proto_get(body, "datapath") || (dp && (streq(dp, "system") || streq(dp, "netdev"))));
        }
        if (ep->request == schema_page_req || ep == &fw_entrypoints[FW_RULES_LIST]) {
                /* a page: at most its cursors and a limit, each usable as is */
                const char *after = proto_get_str(body, "after", NULL);
                const char *groups_after = proto_get_str(body, "groups_after", NULL);
                const struct proto_value *limit = proto_get(body, "limit");

                CHECK(body->count <= 3);
                CHECK(!after || uuid_is_valid(after));
                CHECK(!groups_after || (ep == &fw_entrypoints[FW_RULES_LIST] && uuid_is_valid(groups_after)));
                CHECK(!limit || (limit->type == PV_U64 && limit->v.u >= 1 && limit->v.u <= PROTO_MAX_ITEMS));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const struct proto_entrypoint *ep;
        const uint8_t *buf;
        size_t len;
        char err[256];
        int r;

        memset(err, 0, sizeof(err));
        r = proto_decode(data, size, &msg, err, sizeof(err));
        if (r < 0) {
                CHECK(err[0] != '\0');
                CHECK(r == -EBADMSG || r == -EMSGSIZE || r == -EPROTONOSUPPORT);
                CHECK((r == -EMSGSIZE) == (size > PROTO_MAX_FRAME));
                return 0;
        }
        CHECK(err[0] == '\0');
        CHECK(size >= PROTO_HEADER_SIZE + 1 + 1 + 2 && size <= PROTO_MAX_FRAME);

        /* the header */
        CHECK(msg.type >= PROTO_HELLO && msg.type <= PROTO_EVENT);
        CHECK(msg.type == PROTO_REPLY ? msg.status <= 0 && msg.status >= -4095 : msg.status == 0);
        CHECK(proto_name_is_valid(msg.name, strlen(msg.name)));

        /* the tree */
        CHECK(msg.body != NULL && msg.body->type == PV_OBJ);
        CHECK(msg.body->next == NULL);
        CHECK(msg.n_nodes <= PROTO_MAX_NODES);
        CHECK(msg.strings_used <= sizeof(msg.strings));
        CHECK(check_tree(msg.body, 0, false) == msg.n_nodes);

        /* the schema of a network-control request, or of a listing's page (any module) */
        if (msg.type == PROTO_REQUEST) {
                ep = module_protocol_find(&netctl_protocol, msg.name);
                if (!ep && streq(msg.name, "domain_list"))
                        ep = module_protocol_find(&libvirt_protocol, msg.name);
                if (!ep && streq(msg.name, "port_list"))
                        ep = module_protocol_find(&ovs_protocol, msg.name);
                if (!ep && streq(msg.name, "rules_list"))
                        ep = module_protocol_find(&fw_protocol, msg.name);
                if (ep) {
                        memset(err, 0, sizeof(err));
                        r = schema_check(ep->request, msg.body, err, sizeof(err));
                        if (r == 0)
                                check_validated(ep, msg.body);
                        else
                                CHECK(r == -EINVAL && err[0] != '\0');
                }
        }

        /* write it back: same bytes, same tree */
        pw_init(&w, msg.type, msg.id, msg.status, msg.name);
        for (const struct proto_value *m = msg.body->child; m; m = m->next)
                write_value(m);
        r = pw_finish(&w, &buf, &len);
        CHECK(r == 0);
        CHECK(len == size);
        CHECK(memcmp(buf, data, size) == 0);

        memset(err, 0, sizeof(err));
        r = proto_decode(buf, len, &again, err, sizeof(err));
        CHECK(r == 0);
        CHECK(again.type == msg.type && again.id == msg.id && again.status == msg.status);
        CHECK(streq(again.name, msg.name));
        CHECK(again.n_nodes == msg.n_nodes);
        CHECK(again.strings_used == msg.strings_used);
        CHECK(same_tree(msg.body, again.body));

        /* a copy (proto_value_dup, as a module keeps a request for a worker thread) is the same
         * tree and outlives the arena: decode something else into it first */
        {
                struct proto_value *copy = proto_value_dup(msg.body);
                CHECK(copy != NULL);
                CHECK(copy->next == NULL);
                memset(err, 0, sizeof(err));
                CHECK(proto_decode(buf, PROTO_HEADER_SIZE + 1 + (size_t)buf[16] + 2, &msg, err, sizeof(err)) == 0 ||
                      err[0] != '\0');
                memset(msg.strings, 0x5a, sizeof(msg.strings));
                CHECK(same_tree(copy, again.body));
                free(copy);
        }
        return 0;
}
