/* fuzz-fwstate.c - libFuzzer target for fw_snap_parse(), the decoder of the
 * `nft -j list table` listings of the firewall-control module's two tables.
 *
 * The input is the inet listing, a NUL byte, then the bridge listing (no NUL:
 * the bridge table is absent). A refusal is -EBADMSG or -ENOMEM and leaves
 * the result untouched. A decoded snapshot must keep every promise of
 * fw-state.h (only well-formed names, canonical addresses, checked rules,
 * consistent flags and reference counts), and everything in it must be
 * usable as is by the builders, as the module uses it: rebuilding a port's
 * chain, deleting its elements, rewriting a group. Any violation aborts. */
#include "fw-nft.h"
#include "fw-state.h"

#define CHECK(x)                                                                             \
        do {                                                                                 \
                if (!(x)) {                                                                  \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                             \
                }                                                                            \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sbuf sb;

static void check_port(struct fw_snap *s, struct fw_snap_port *p)
{
        char canon[IP_STR_MAX], ll[IP_STR_MAX];
        const struct fw_elements e = { .dispatch = p->has_dispatch, .tap = p->has_tap, .mac = p->has_mac,
                                       .guard = p->has_guard, .ll = p->has_ll };

        CHECK(uuid_is_valid(p->port.uuid));
        CHECK(fw_snap_port_find(s, p->port.uuid) == p);
        CHECK(p->has_chain); /* a port is known by its chain */
        CHECK(p->port.n_ips <= PORT_MAX_IPS);
        ipv6_link_local_from_mac(p->port.mac, ll);
        for (size_t i = 0; i < p->port.n_ips; i++) {
                CHECK(ip_canonical(p->port.ips[i], canon) == 0);
                CHECK(streq(canon, p->port.ips[i]));
                CHECK(!streq(canon, ll));
        }
        CHECK(p->port.n_groups <= PORT_MAX_GROUPS);
        for (size_t i = 0; i < p->port.n_groups; i++) {
                CHECK(uuid_is_valid(p->port.groups[i]));
                CHECK(p->tampered || fw_snap_group_find(s, p->port.groups[i]) != NULL);
        }
        if (!p->tampered)
                CHECK(p->has_dispatch && p->has_mac && p->has_tap && p->has_guard && p->has_ll);

        /* the module rebuilds the chain and deletes the elements of what it read */
        sbuf_reset(&sb);
        fw_build_port_chain(&sb, &p->port, p->has_chain);
        CHECK(sb.err == 0);
        sbuf_reset(&sb);
        fw_build_port_elements_delete(&sb, &p->port, &e);
        CHECK(sb.err == 0);
        sbuf_reset(&sb);
        fw_build_port_elements(&sb, &p->port);
        CHECK(sb.err == 0);
}

static void check_group(struct fw_snap *s, struct fw_snap_group *g)
{
        unsigned refs = 0;

        CHECK(uuid_is_valid(g->id));
        CHECK(fw_snap_group_find(s, g->id) == g);
        CHECK(g->has_in || g->has_out); /* a group is known by its chains */
        CHECK(g->n_rules == 0 || g->rules != NULL);
        for (size_t i = 0; i < g->n_rules; i++)
                CHECK(secrule_check(&g->rules[i], NULL, 0) == 0);
        for (size_t i = 0; i < s->n_ports; i++)
                for (size_t k = 0; k < s->ports[i].port.n_groups; k++)
                        refs += streq(s->ports[i].port.groups[k], g->id);
        CHECK(g->refs == refs);
        (void)secrule_digest(g->rules, g->n_rules);

        sbuf_reset(&sb);
        fw_build_group(&sb, g->id, g->rules, g->n_rules, g->has_in && g->has_out);
        CHECK(sb.err == 0);
        /* every rule comes back as its canonical comment */
        for (size_t i = 0; i < g->n_rules; i++) {
                char text[SECRULE_TEXT_MAX + 16];
                CHECK(secrule_format(&g->rules[i], text, SECRULE_TEXT_MAX) == 0);
                CHECK(strstr(sb.p, text) != NULL);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fw_snap s, sentinel;
        char *inet, *bridge = NULL;
        const uint8_t *nul;
        int r;

        if (size > 256 * 1024)
                return 0;
        inet = malloc(size + 1);
        if (!inet)
                return 0;
        memcpy(inet, data, size);
        inet[size] = '\0';
        nul = memchr(data, '\0', size);
        if (nul)
                bridge = inet + (nul - data) + 1; /* up to the next NUL or the end */

        memset(&sentinel, 0xa5, sizeof(sentinel));
        s = sentinel;
        r = fw_snap_parse(inet, bridge, &s);
        if (r < 0) {
                CHECK(r == -EBADMSG || r == -ENOMEM);
                CHECK(memcmp(&s, &sentinel, sizeof(s)) == 0);
                free(inet);
                return 0;
        }
        CHECK(r == 0);
        CHECK(!s.inet_ours || s.inet_exists);
        CHECK(!s.bridge_ours || s.bridge_exists);
        CHECK(!s.skeleton_ok || (s.inet_ours && s.bridge_ours));
        CHECK(s.n_ports == 0 || s.ports != NULL);
        CHECK(s.n_groups == 0 || s.groups != NULL);
        for (size_t i = 0; i < s.n_ports; i++)
                check_port(&s, &s.ports[i]);
        for (size_t i = 0; i < s.n_groups; i++)
                check_group(&s, &s.groups[i]);
        fw_snap_free(&s);
        CHECK(s.n_ports == 0 && s.ports == NULL && s.n_groups == 0 && s.groups == NULL);
        free(inet);
        return 0;
}
