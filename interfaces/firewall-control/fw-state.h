/* fw-state.h - what the kernel holds in our two nftables tables, decoded from
 * libnftables' JSON listing (`list table inet|bridge nova_hypervisor`).
 * The decoder trusts nothing: names must have our exact shapes, rule comments
 * must be canonical secrule texts, addresses must parse; anything else marks
 * the snapshot (tampered) instead of being used. (Fuzzed.) */
#ifndef NOVA_FW_STATE_H
#define NOVA_FW_STATE_H

#include "fw-nft.h"

struct fw_snap_group {
        char id[UUID_STR_LEN + 1];
        bool has_in, has_out;      /* both chains exist */
        bool tampered;             /* a rule in its chains is not one of ours */
        struct secrule *rules;     /* decoded from the rule comments, in chain order */
        size_t n_rules;
        unsigned refs;             /* port chains that jump to it */
};

struct fw_snap_port {
        struct fw_port port;       /* uuid, mac, ips (without the derived link-local), groups */
        bool has_chain;            /* port-<uuid> exists */
        bool has_dispatch;         /* ports map: qbr -> jump port-<uuid> */
        bool has_mac;              /* vm_mac element (tap . mac) */
        bool has_tap, has_guard;   /* taps element; guard element (qvb . mac) */
        bool has_ll;               /* vm_ip6 element of the derived link-local */
        bool tampered;             /* port chain or elements disagree */
};

/* Open-addressing hash of array positions (slot: index + 1, 0 empty), keyed
 * by port UUID / group id; n is how many entries it holds (rebuilt when it
 * does not match the array). */
struct fw_snap_index {
        uint32_t *slot;
        size_t cap, n;
};

struct fw_snap {
        bool inet_exists, bridge_exists;   /* a table of that family and name exists */
        bool inet_ours, bridge_ours;       /* ...and carries our owner mark */
        bool skeleton_ok;                  /* every fixed set, map and chain is there */
        struct fw_snap_port *ports;
        size_t n_ports;
        struct fw_snap_group *groups;
        size_t n_groups;
        unsigned orphan_elements;          /* bridge elements of taps without a port chain */
        struct fw_snap_index port_ix, group_ix; /* lookups by uuid/id (private to fw-state.c) */
};

/* Decode the JSON texts of the two listings (either may be NULL or "" when
 * the table does not exist). 0, -ENOMEM, or -EBADMSG when a text is not an
 * nftables JSON document at all. */
int fw_snap_parse(const char *inet_json, const char *bridge_json, struct fw_snap *ret);
void fw_snap_free(struct fw_snap *s);

struct fw_snap_port *fw_snap_port_find(struct fw_snap *s, const char *uuid);
struct fw_snap_group *fw_snap_group_find(struct fw_snap *s, const char *id);
/* Find or append a zeroed record with that uuid/id; NULL on -ENOMEM. */
struct fw_snap_port *fw_snap_port_get(struct fw_snap *s, const char *uuid);
struct fw_snap_group *fw_snap_group_get(struct fw_snap *s, const char *id);
/* Call after moving or removing records of s->ports/s->groups in place. */
void fw_snap_reindex(struct fw_snap *s);

#endif
