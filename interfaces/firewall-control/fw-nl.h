/* fw-nl.h - the per-port and per-group part of the ruleset (group chains,
 * port chains, their set and map elements, a shard's removal) as one
 * nf_tables netlink batch, built with libnftnl from decoded values only.
 *
 * Why not libnftables here: it parses text (about 40 us per rule on this
 * machine: 1.2 s for 1000 ports with 20 rules each) and reads parts of the
 * kernel's ruleset before each batch (a cost that grows with the number of
 * ports). A batch built here costs a few microseconds per rule and reads
 * nothing. The objects are exactly those libnftables makes from the text of
 * fw-nft.c's builders (test-fw-nl checks it against the kernel: both
 * batches applied, the listings compared), so the decoder (fw-state.c) and
 * `nft list` see no difference. The skeletons (tables, sets, fixed chains)
 * are built here too, so that a new shard or a restore after someone flushed
 * the ruleset is one batch with the ports (libnftables took 30-200 ms for
 * them, most of it reading the ruleset into its cache first).
 *
 * A batch is begun, filled, ended, then sent whole (one sendmsg): the kernel
 * applies all of it or none. The first error is sticky. */
#ifndef NOVA_FW_NL_H
#define NOVA_FW_NL_H

#include "fw-nft.h"

#include <stdint.h>

struct fw_nl {
        uint8_t *buf;
        size_t len, cap;
        size_t last;      /* offset of the last message after BATCH_BEGIN (0: none) */
        uint32_t seq;     /* sequence number of the next message */
        uint32_t seq0;    /* of BATCH_BEGIN */
        unsigned n_msgs;  /* messages between BATCH_BEGIN and BATCH_END */
        uint32_t set_id;  /* the last set made in the batch is numbered so (0: none) */
        bool ended;
        bool has_genid;   /* BATCH_BEGIN carries NFNL_BATCH_GENID (fw_nl_set_genid) */
        int err;          /* 0, -EINVAL (a value that is not valid), -ENOMEM */
};

/* Start a batch whose messages are numbered from seq. */
void fw_nl_begin(struct fw_nl *b, uint32_t seq);
/* Close it: the last message asks for an ACK (the kernel reports errors of
 * any message by itself). b->err, or 0. A batch with no message is empty:
 * nothing to send (fw_nl_empty). */
int fw_nl_end(struct fw_nl *b);
bool fw_nl_empty(const struct fw_nl *b);
/* Make the batch conditional: the kernel applies it only while the ruleset's
 * generation is still gen (NFNL_BATCH_GENID), else refuses all of it with
 * -ERESTART; 0 takes the condition back. The attribute goes into BATCH_BEGIN
 * (the first call moves the messages after it); b->err, or 0. */
int fw_nl_set_genid(struct fw_nl *b, uint32_t gen);
void fw_nl_free(struct fw_nl *b);
/* The message of a batch with that sequence number, as "NEWRULE inet
 * nova_hypervisor_3" for error messages; "?" when not found. */
void fw_nl_describe(const struct fw_nl *b, uint32_t seq, char *buf, size_t size);

/* The same objects as fw_build_group / _group_chain_remove / _port_chain /
 * _port_chain_remove / _elements / _port_elements_delete / _drop_shard. */
void fw_nl_group(struct fw_nl *b, unsigned shard, const char *group_id, const struct secrule *rules, size_t n,
                 bool exists);
void fw_nl_group_chain_remove(struct fw_nl *b, unsigned shard, const char *group_id, const char *dir);
void fw_nl_port_chain(struct fw_nl *b, unsigned shard, const struct fw_port *p, bool exists);
void fw_nl_port_chain_remove(struct fw_nl *b, unsigned shard, const char *port_uuid);
void fw_nl_elements(struct fw_nl *b, const struct fw_port *const *ports, const unsigned *shards, size_t n);
/* Its two halves: the shards' dispatch elements; the bridge table's anti-spoofing elements. */
void fw_nl_dispatch_elements(struct fw_nl *b, const struct fw_port *const *ports, const unsigned *shards, size_t n);
void fw_nl_bridge_elements(struct fw_nl *b, const struct fw_port *const *ports, const unsigned *shards, size_t n);
void fw_nl_port_elements_delete(struct fw_nl *b, unsigned shard, const struct fw_port *p,
                                const struct fw_elements *e);
void fw_nl_drop_shard(struct fw_nl *b, unsigned shard);

/* The skeletons, as fw_build_shard_skeleton / _bridge_skeleton write them
 * (the same messages libnftables sends for that text), and fw_build_drop_bridge.
 * fw_nl_table_touch: `add table` without anything (a table that exists is
 * left as it is; one that does not is made empty), so that a delete that
 * follows in the batch cannot fail on a table that is gone. */
void fw_nl_shard_skeleton(struct fw_nl *b, unsigned shard);
void fw_nl_bridge_skeleton(struct fw_nl *b);
void fw_nl_table_touch(struct fw_nl *b, bool bridge, unsigned shard);
void fw_nl_drop_bridge(struct fw_nl *b);

/* Fail closed while tables are restored: in the bridge table (which must
 * exist, or be made earlier in the batch), the set FW_QUARANTINE of the
 * ports' taps and a base chain of that name on the bridge forward hook,
 * before the filter chains, that drops every frame from or to them. A
 * restore commits this first (a few messages, whatever the number of ports),
 * then the rest with fw_nl_quarantine_remove in the same batch as the
 * rebuilt tables. Left behind (the second batch failed, the module died),
 * it keeps those ports closed; the decoder then reads the bridge table as
 * incomplete, and it is rebuilt. */
void fw_nl_quarantine(struct fw_nl *b, const struct fw_port *const *ports, size_t n);
void fw_nl_quarantine_remove(struct fw_nl *b);

/* The fail-closed guard (fw-nft.h): the table FW_GUARD_TABLE of family
 * bridge with flags (FW_GUARD_F_OWNER, with FW_GUARD_F_PERSIST or not; any
 * other value fails the batch with -EINVAL), so that only the socket that
 * sends the batch may change or delete it and `nft flush ruleset` leaves
 * it; its chains: prerouting (FW_GUARD_PRIO_CLEAR) clears FW_GUARD_MARKS on
 * frames from tap* and qvb*, forward (FW_GUARD_PRIO_CHECK) drops tap* ->
 * qvb* frames without both FW_ACCEPT_MARK and FW_VM_MARK (the bridge table's
 * from_vm gives the latter) and qvb* -> tap* frames without FW_ACCEPT_MARK,
 * then clears both. Derived from the
 * device names of the port bridges, so a flush cannot open it and no port
 * change has to touch it; a bridge with no rules in the filter passes
 * nothing (the bridge table's own fail-closed rule says the same).
 * fw_nl_guard_touch: `add table` with the flags alone: adopts an orphan
 * (PERSIST, its owner gone), leaves our own as it is. fw_nl_guard_drop:
 * `add table` without flags, then its delete (ours, or an orphan: anyone's). */
void fw_nl_guard(struct fw_nl *b, uint32_t flags);
void fw_nl_guard_touch(struct fw_nl *b, uint32_t flags);
void fw_nl_guard_drop(struct fw_nl *b);

/* A NETLINK_NETFILTER socket for batches, or -errno. */
int fw_nl_socket(void);
/* End b if needed, send it, read the kernel's answer into rbuf: 0 when the
 * whole batch was applied (an empty batch sends nothing), else -errno with
 * the refused message and the reason in err (then nothing was applied).
 * Answers to other batches (left behind by an earlier one cut short by
 * ENOBUFS) are skipped: the socket stays usable, as the guard's owner must. */
int fw_nl_commit(int fd, struct fw_nl *b, uint8_t *rbuf, size_t rlen, char *err, size_t errlen);

#endif
