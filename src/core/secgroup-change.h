/* secgroup-change.h - a security-group change as one transaction: the kernel
 * first, then the store.
 *
 * A rule added to or removed from a group, or a port's group list replaced,
 * is first pushed to firewall-control (firewall.c: one nftables commit that
 * every port of the group sees) and stored only when the module took it; a
 * refused change leaves both the kernel and the store as they were. When no
 * filtered port is affected, or the module is not running, the change is
 * stored at once and the result says it is not in the kernel yet (pending):
 * the firewall sync applies it when the module is back. If the store write
 * fails after the kernel took the change, a firewall sync takes it back. */
#ifndef NOVA_SECGROUP_CHANGE_H
#define NOVA_SECGROUP_CHANGE_H

#include "instances.h"
#include "secgroups.h"

enum sg_change_kind {
        SG_CHANGE_RULE_ADD,
        SG_CHANGE_RULE_DELETE,
        SG_CHANGE_PORT_SET,
};

/* The outcome, valid during the callback only. */
struct sg_change_result {
        int status;                     /* 0 or -errno */
        const char *error;              /* status < 0: operator text */
        int plug;                       /* status < 0: the plug to blame, -1 none */
        enum sg_change_kind kind;
        const struct secrule *rule;     /* RULE_ADD: the stored rule */
        const char *rule_id;            /* RULE_DELETE: the removed rule's id */
        struct instance *inst;          /* PORT_SET: the port's instance */
        const char *pending;            /* NULL: the kernel has the change; else why not yet */
};

typedef void (*sg_change_done_cb)(const struct sg_change_result *res, void *userdata);
struct sg_change;

/* Start a change. On error: -errno (-EEXIST: the group has this rule, a rule
 * with its id exists, or the group is full; -ENOENT: no such rule or port;
 * -E2BIG: a port would exceed PORT_MAX_RULES; -EBUSY: the port's instance
 * is busy, or another change is in flight), the reason in err, *ret_plug the
 * plug to blame (or -1), nothing changed and cb never called. On 0, cb is
 * called exactly once, perhaps before this returns (then *ret is NULL), else
 * later (then *ret is the change in flight, for sg_change_detach). */
/* What a change works on: the kernel side and both stores (the core's). */
struct sg_context {
        struct firewall *firewall;
        struct secgroup_store *groups;
        struct instance_store *instances;
};

int sg_change_rule_add(const struct sg_context *ctx, const struct secgroup *g, const struct secrule *rule, sg_change_done_cb cb, void *userdata,
                       struct sg_change **ret, char *err, size_t errlen, int *ret_plug);
int sg_change_rule_delete(const struct sg_context *ctx, const char *rule_id, sg_change_done_cb cb, void *userdata, struct sg_change **ret, char *err,
                          size_t errlen, int *ret_plug);
/* Could the groups of port_uuid change now: 0, or -ENOENT (no instance has
 * it) / -EBUSY (its instance is busy) with the reason in err. */
int sg_change_port_check(const struct sg_context *ctx, const char *port_uuid, char *err, size_t errlen);
/* Replace the group list of port_uuid with groups[0..n) (ids, resolved already). */
int sg_change_port_set(const struct sg_context *ctx, const char *port_uuid, char groups[][UUID_STR_LEN + 1], size_t n_groups, sg_change_done_cb cb,
                       void *userdata, struct sg_change **ret, char *err, size_t errlen, int *ret_plug);

/* The caller goes away: the change still lands, nobody hears of it (NULL accepted). */
void sg_change_detach(struct sg_change *ch);

#endif
