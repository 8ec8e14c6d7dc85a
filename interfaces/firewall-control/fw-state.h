/* fw-state.h - what the kernel holds in our nftables tables: read by the
 * module from the kernel's nf_tables dumps (fw_snap_read, below), or decoded
 * from libnftables' JSON listings (`list table inet nova_hypervisor[_<k>]`,
 * one per shard, and `list table bridge nova_hypervisor`: fw_snap_parse, the
 * reference the tests compare the netlink read with, on the real kernel in
 * test-fw-nl); and which of our tables exist, decoded from the kernel's
 * NFT_MSG_GETTABLE dump.
 * The decoder trusts nothing: names must have our exact shapes, rule comments
 * must be canonical secrule texts, addresses must parse; anything else marks
 * the snapshot (tampered) instead of being used. Only tables that carry our
 * owner mark are decoded into ports and groups. (Fuzzed.) */
#ifndef NOVA_FW_STATE_H
#define NOVA_FW_STATE_H

#include "fw-nft.h"

/* One shard's copy of a group's chains (a group has one per shard that has
 * one of its ports). */
struct fw_snap_group {
        char id[UUID_STR_LEN + 1];
        unsigned shard;            /* the shard table holding these chains */
        bool has_in, has_out;      /* both chains exist */
        bool tampered;             /* a rule in its chains is not one of ours */
        uint8_t family_in, family_out; /* the family check first in that chain (fw_group_family): 4, 6; 0 none */
        struct secrule *rules;     /* decoded from the rule comments, in chain order */
        size_t n_rules;
        uint64_t digest;           /* secrule_digest(rules, n_rules), kept current with them */
        unsigned refs;             /* port chains of the same shard that jump to it */
};

struct fw_snap_port {
        struct fw_port port;       /* uuid, mac, ips (without the derived link-local), groups */
        unsigned shard;            /* the shard table holding port-<uuid> */
        bool has_chain;            /* port-<uuid> exists */
        bool has_dispatch;         /* its shard's ports map: qbr -> jump port-<uuid> */
        bool has_mac;              /* vm_mac element (tap . mac) */
        bool has_tap, has_guard;   /* taps element; guard element (qvb . mac) */
        bool has_ll;               /* vm_ip6 element of the derived link-local */
        bool tampered;             /* port chain or elements disagree */
};

/* Open-addressing hash of array positions (slot: index + 1, 0 empty), keyed
 * by port UUID / group id and shard; n is how many entries it holds (rebuilt
 * when it does not match the array). */
struct fw_snap_index {
        uint32_t *slot;
        size_t cap, n;
};

struct fw_snap_shard {
        bool exists;               /* a table of family inet and the shard's name exists */
        bool ours;                 /* ...and carries our owner mark (else: foreign, never touched) */
        bool complete;             /* ours, with every fixed set, map and chain, the fixed chains exact,
                                    * and no port chain that another shard holds too */
        unsigned n_ports;          /* port records in it */
};

struct fw_snap {
        struct fw_snap_shard shards[FW_MAX_SHARDS];
        bool bridge_exists;                /* the bridge table exists */
        bool bridge_ours;                  /* ...and carries our owner mark */
        bool bridge_complete;              /* ...with every fixed set and chain, the fixed chains exact */
        bool finished;                     /* fw_snap_finish() ran */
        struct fw_snap_port *ports;
        size_t n_ports;
        struct fw_snap_group *groups;
        size_t n_groups;
        unsigned orphan_elements;          /* bridge elements of taps without a port chain */
        struct fw_snap_index port_ix, group_ix; /* lookups by uuid/id (private to fw-state.c) */
};

/* Decode one inet listing into s (start from a zeroed s). Its shard comes
 * from the name of the table it lists; a listing of no shard table, or of a
 * shard already decoded, adds nothing. Call before fw_snap_finish().
 * 0, -ENOMEM, or -EBADMSG when the text is not an nftables JSON document. */
int fw_snap_add_inet(struct fw_snap *s, const char *json);
/* Decode the bridge listing (NULL or "" when the table does not exist) and
 * settle what needs every table: references, elements, completeness. Once. */
int fw_snap_finish(struct fw_snap *s, const char *bridge_json);
/* Both at once: n inet listings (any may be NULL or ""), then the bridge
 * listing. On error ret is untouched. */
int fw_snap_parse(const char *const *inet_json, size_t n, const char *bridge_json, struct fw_snap *ret);
void fw_snap_free(struct fw_snap *s);

/* The shards and bridge table complete, shard 0 among them; no foreign shard table is ours to fix. */
bool fw_snap_ready(const struct fw_snap *s);

struct fw_snap_port *fw_snap_port_find(struct fw_snap *s, const char *uuid);
struct fw_snap_group *fw_snap_group_find(struct fw_snap *s, unsigned shard, const char *id);
/* Find or append a zeroed record with that uuid (shard 0) / id and shard; NULL on -ENOMEM. */
struct fw_snap_port *fw_snap_port_get(struct fw_snap *s, const char *uuid);
struct fw_snap_group *fw_snap_group_get(struct fw_snap *s, unsigned shard, const char *id);
/* Remove record i; the last record takes its place (O(1): the index is kept,
 * not rebuilt). A group's rules are freed. */
void fw_snap_port_remove(struct fw_snap *s, size_t i);
void fw_snap_group_remove(struct fw_snap *s, size_t i);

/* Which of our tables exist, from an NFT_MSG_GETTABLE dump. */
struct fw_tables {
        bool bridge;                       /* bridge nova_hypervisor */
        bool guard;                        /* bridge nova_hypervisor_guard (FW_GUARD_TABLE) */
        uint32_t guard_flags;              /* ...its table flags (FW_GUARD_F_PERSIST without _OWNER: an orphan) */
        bool inet[FW_MAX_SHARDS];          /* inet nova_hypervisor[_<k>] */
};
/* Feed the netlink messages of one recv() of the dump whose requests carried
 * seq. 1 once the dump is done, 0 when more is to come, -EBADMSG for anything
 * malformed, -EINTR when the dump was interrupted by a change (ask again),
 * or the -errno of the kernel's NLMSG_ERROR. */
int fw_tables_feed(struct fw_tables *t, const void *buf, size_t len, uint32_t seq);

/* ---- our tables read back over netlink (what the module uses) ----
 *
 * The kernel's nf_tables dumps, decoded datagram by datagram into a
 * fw_snap: the table list (GETTABLE); for each shard table and the bridge
 * table, the rules of its dispatch chain (the owner mark); the chains of
 * each family (one dump: the kernel has no table filter for chains); then
 * for each table of ours its rules (GETRULE filtered by table), its sets
 * (GETSET) and the elements of the sets that say something about ports
 * (GETSETELEM: a shard's `ports` map, the bridge table's anti-spoofing
 * sets). The result is what fw_snap_parse makes of the same tables' JSON
 * listings, but a port chain's rules are checked against exactly the
 * expressions fw-nl.c writes (the dependencies included), not against
 * libnftables' rendering of them. Memory: the snapshot, the caller's recv
 * buffer and a few kB of state; nothing grows with a table's size but the
 * snapshot. Every message must carry the generation of the first one, and
 * the table list, read again at the end, must not have changed (else the read
 * starts again: the ruleset changed between two dumps). (Fuzzed.) */

struct fw_dump;

/* The caller's side of a dump: send the request req (len bytes, a complete
 * netlink message with NLM_F_DUMP), then pass every datagram of the answer
 * to fw_dump_feed() until it returns non-zero, and return that value (1:
 * done); or -errno of the socket. */
typedef int (*fw_dump_io_fn)(void *userdata, const void *req, size_t len, struct fw_dump *d);

/* Decode one datagram of the answer to the request last sent: 1 once the
 * dump is done, 0 when more is to come, -EBADMSG for anything malformed or
 * not what was asked for, -EINTR when the ruleset changed meanwhile, -ENOMEM,
 * or the -errno of the kernel's NLMSG_ERROR. */
int fw_dump_feed(struct fw_dump *d, const void *buf, size_t len);

/* Read our tables: all of them, or (only != NULL) the shards k with only[k]
 * and the bridge table. Requests are numbered from *seq + 1 (*seq is left at
 * the last). A read that sees the ruleset change is done again, up to three
 * times (then -EAGAIN). 0 with *ret (and, when not NULL, *ret_tables: which
 * of our tables exist), or -errno with both untouched. */
int fw_snap_read(fw_dump_io_fn io, void *userdata, uint32_t *seq, const bool *only, struct fw_snap *ret,
                 struct fw_tables *ret_tables);

/* ---- changes made by others, as they happen ----
 *
 * The kernel publishes every committed nftables transaction on the netlink
 * multicast group NFNLGRP_NFTABLES: one message per object it created or
 * deleted (tables, chains, rules, sets, elements, ...; each names its table
 * in attribute 1), then one NFT_MSG_NEWGEN carrying the new generation and
 * the pid and name of the process that committed. fw_watch reads that stream
 * and reports, per transaction, what it did to tables with our names. */

enum fw_watch_mark {
        FW_WATCH_NONE = 0,     /* not named by the transaction */
        FW_WATCH_TOUCHED,      /* something in it was added, changed or deleted */
        FW_WATCH_CREATED,      /* a table of that name was created, or its flags changed (e.g. dormant) */
        FW_WATCH_DELETED,      /* the table was deleted (last word on it) */
        FW_WATCH_RECREATED,    /* deleted, then a table of that name created again: not ours any more */
};

/* One committed transaction. */
struct fw_watch_commit {
        uint32_t gen;                    /* the ruleset generation it made */
        uint32_t pid;                    /* the committing process (0 when not reported) */
        char proc[32];                   /* its name ("" when not reported) */
        uint8_t bridge;                  /* enum fw_watch_mark of bridge nova_hypervisor */
        uint8_t inet[FW_MAX_SHARDS];     /* ... of inet nova_hypervisor[_<k>] */
        bool any;                        /* one of them is not FW_WATCH_NONE */
};

struct fw_watch {
        struct fw_watch_commit cur;      /* the transaction being read */
};

/* Feed the messages of one datagram from the multicast socket. Each
 * NFT_MSG_NEWGEN ends a transaction: on_commit gets it (then the state starts
 * afresh). Messages of other subsystems or kinds are skipped. 0, or -EBADMSG
 * for a malformed datagram (the transaction being read is then dropped: the
 * caller must treat it as unknown damage). */
int fw_watch_feed(struct fw_watch *w, const void *buf, size_t len,
                  void (*on_commit)(const struct fw_watch_commit *c, void *userdata), void *userdata);
/* Forget the transaction being read (after a lost datagram: ENOBUFS). */
void fw_watch_reset(struct fw_watch *w);

#endif
