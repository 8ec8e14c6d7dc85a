/* fw-protocol.h - the entrypoints of the firewall-control module, as both the
 * module (dispatch) and the core (request validation) know them.
 *
 * Identifiers and rule fields in; every chain, set element and device name is
 * derived inside the module from the port UUID (port-<uuid>, sg-<uuid>-in|out,
 * qbr/tap/qvb + 11 chars), and every nftables statement is built from the
 * decoded numbers and addresses, never from a string passed through.
 *
 * RULE = { direction: "ingress"|"egress", ethertype: 4|6, protocol?: 0..255
 *          (absent: any), port_min?, port_max?: 1..65535, icmp_type?, icmp_code?:
 *          0..255, remote?: canonical CIDR }
 * GROUP = { id: uuid, rules: [RULE...] }  or  { id: uuid, rule_texts: [TEXT...] }
 *          TEXT: a rule in secrule.h's canonical text ("nh in 4 6 22 22 - - 10.0.0.0/8"), the
 *          form the module writes as each rule's comment; one value per rule instead of up to
 *          eight, so that a bulk ports_rules_apply carries 4-5 times as many rules per frame
 *          (PROTO_MAX_NODES). A group gives exactly one of the two.
 *
 * port_rules_apply {port_uuid, mac, ips: [ip...], groups: [GROUP...]}
 *     One atomic nftables batch: the port's chain, its anti-spoofing set
 *     elements, and the chains of the groups it names (shared by every port
 *     of the group, so changing a group changes it for all its ports at once).
 *     Replaces what was there whole, or changes nothing.
 * ports_rules_apply {groups: [GROUP...], ports: [{port_uuid, mac, ips, groups: [id...]}...]}
 *     The same for up to FW_MAX_BATCH ports in one batch (bulk and reconcile).
 * port_rules_remove {port_uuid}: -ENOENT when the port has no rules of ours.
 * rules_list {after?, groups_after?, limit?}: a page of both lists, each in
 *     ascending order of its UUID (as schema_page_req: groups above groups_after,
 *     at most half a frame of them, then ports above after with the rest):
 *     { ports: [{port_uuid, complete, shard, groups: [id...]}...],
 *       groups: [{id, rules, digest, shards}...], total (ports), truncated (more
 *       ports), next? (the ports' cursor), groups_truncated, groups_next? }
 *     The first page (no cursor) reads the kernel; later pages read the snapshot
 *     it made, kept current by the module's commits and the guard.
 *     (digest: secrule_digest() in hex, or "tampered" when a copy is, or the
 *     copies of a group in different shards disagree; shards: how many hold one)
 * rules_get {port_uuid}: { port_uuid, mac, complete, shard, table, ips: [...], groups: [GROUP...] }
 *     read from the kernel (table: the inet table that holds the port's chain).
 *
 * Errors: -EINVAL bad rule (the reason in the error text), -EEXIST our table
 * name is taken by a table that is not ours, -ENOPKG br_netfilter is missing,
 * -ENOSPC every shard table is full or taken, -EIO nftables refused the batch
 * (its message in the error text). */
#ifndef NOVA_FW_PROTOCOL_H
#define NOVA_FW_PROTOCOL_H

#include "schema.h"
#include "secrule.h"

#define FW_TABLE "nova_hypervisor"
#define FW_MAX_BATCH 100          /* ports of one ports_rules_apply */
#define FW_MAX_BATCH_GROUPS 64    /* groups of one ports_rules_apply (with rule_texts, ~60 groups of 20
                                   * rules and their ports fill a frame) */

enum fw_entrypoint_id {
        FW_PORT_RULES_APPLY,
        FW_PORTS_RULES_APPLY,
        FW_PORT_RULES_REMOVE,
        FW_RULES_LIST,
        FW_RULES_GET,
        _FW_MAX,
};

extern const struct proto_entrypoint fw_entrypoints[_FW_MAX];
extern const struct module_protocol fw_protocol;

/* Write one rule as RULE (members only, inside an object the caller opened). */
void fw_rule_write(struct proto_writer *w, const struct secrule *r);
/* Read a RULE the schema accepted; checks the cross-field rules too.
 * 0 or -EINVAL with the reason. */
int fw_rule_read(const struct proto_value *o, struct secrule *ret, char *err, size_t errlen);

#endif
