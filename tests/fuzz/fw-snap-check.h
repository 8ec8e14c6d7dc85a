/* fw-snap-check.h - the promises of a decoded struct fw_snap (fw-state.h),
 * checked by the fuzz targets of both decoders (fuzz-fwstate: the JSON
 * listings; fuzz-fwdump: the kernel's nf_tables dumps). Any violation aborts. */
#ifndef NOVA_FW_SNAP_CHECK_H
#define NOVA_FW_SNAP_CHECK_H

#include "fw-nft.h"
#include "fw-state.h"

#define CHECK(x)                                                                             \
        do {                                                                                 \
                if (!(x)) {                                                                  \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                             \
                }                                                                            \
        } while (0)

static struct sbuf sb; /* the builders' output, reused */

static void check_port(struct fw_snap *s, struct fw_snap_port *p)
{
        char canon[IP_STR_MAX], ll[IP_STR_MAX];
        const struct fw_elements e = { .dispatch = p->has_dispatch, .tap = p->has_tap, .mac = p->has_mac,
                                       .guard = p->has_guard, .ll = p->has_ll };

        CHECK(uuid_is_valid(p->port.uuid));
        CHECK(fw_snap_port_find(s, p->port.uuid) == p);
        CHECK(p->has_chain); /* a port is known by its chain */
        CHECK(p->shard < FW_MAX_SHARDS && s->shards[p->shard].ours); /* ...in a table of ours */
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
                CHECK(p->tampered || fw_snap_group_find(s, p->shard, p->port.groups[i]) != NULL);
        }
        if (!p->tampered)
                CHECK(p->has_dispatch && p->has_mac && p->has_tap && p->has_guard && p->has_ll);

        /* the module rebuilds the chain and deletes the elements of what it read */
        sbuf_reset(&sb);
        fw_build_port_chain(&sb, p->shard, &p->port, p->has_chain);
        CHECK(sb.err == 0);
        sbuf_reset(&sb);
        fw_build_port_elements_delete(&sb, p->shard, &p->port, &e);
        CHECK(sb.err == 0);
        sbuf_reset(&sb);
        fw_build_port_elements(&sb, p->shard, &p->port);
        CHECK(sb.err == 0);
}

static void check_group(struct fw_snap *s, struct fw_snap_group *g)
{
        unsigned refs = 0;

        CHECK(uuid_is_valid(g->id));
        CHECK(g->shard < FW_MAX_SHARDS && s->shards[g->shard].ours);
        CHECK(fw_snap_group_find(s, g->shard, g->id) == g);
        CHECK(g->has_in || g->has_out); /* a group is known by its chains */
        CHECK(g->n_rules == 0 || g->rules != NULL);
        for (size_t i = 0; i < g->n_rules; i++)
                CHECK(secrule_check(&g->rules[i], NULL, 0) == 0);
        for (size_t i = 0; i < s->n_ports; i++)
                for (size_t k = 0; s->ports[i].shard == g->shard && k < s->ports[i].port.n_groups; k++)
                        refs += streq(s->ports[i].port.groups[k], g->id);
        CHECK(g->refs == refs);
        CHECK(g->digest == secrule_digest(g->rules, g->n_rules));

        sbuf_reset(&sb);
        fw_build_group(&sb, g->shard, g->id, g->rules, g->n_rules, g->has_in && g->has_out);
        CHECK(sb.err == 0);
        /* every rule comes back as its canonical comment */
        for (size_t i = 0; i < g->n_rules; i++) {
                char text[SECRULE_TEXT_MAX + 16];
                CHECK(secrule_format(&g->rules[i], text, SECRULE_TEXT_MAX) == 0);
                CHECK(strstr(sb.p, text) != NULL);
        }
}

static void check_snap(struct fw_snap *s)
{
        size_t ports = 0;

        CHECK(s->finished);
        CHECK(!s->bridge_ours || s->bridge_exists);
        CHECK(!s->bridge_complete || s->bridge_ours);
        CHECK(!fw_snap_ready(s) || (s->shards[0].complete && s->bridge_complete));
        CHECK(s->n_ports == 0 || s->ports != NULL);
        CHECK(s->n_groups == 0 || s->groups != NULL);
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++) {
                const struct fw_snap_shard *sh = &s->shards[k];
                size_t n = 0;
                CHECK(!sh->ours || sh->exists);
                CHECK(!sh->complete || sh->ours);
                for (size_t i = 0; i < s->n_ports; i++)
                        n += s->ports[i].shard == k;
                CHECK(sh->n_ports == n);
                ports += n;
        }
        CHECK(ports == s->n_ports);
        for (size_t i = 0; i < s->n_ports; i++)
                check_port(s, &s->ports[i]);
        for (size_t i = 0; i < s->n_groups; i++)
                check_group(s, &s->groups[i]);
}

#endif
