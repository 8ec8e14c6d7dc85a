/* firewall.h - the core's side of security groups.
 *
 * Requests to the firewall-control module are built here from the two stores
 * (instances: which groups and IPs a port has; secgroups: the rules). A
 * group is installed once in the kernel and shared by its ports, so a change
 * to a group is pushed with one port_rules_apply for one port that uses it:
 * every port of the group sees the new rules in the same nftables commit.
 * Changes reach the kernel first and the store after: a refused change
 * leaves both as they were.
 *
 * firewall_sync() compares the kernel (rules_list) with the stores and
 * converges: missing or stale ports are re-applied, rules of ports no
 * instance has are removed, and ports that were plumbed without a firewall
 * (firewall-control was not connected at boot) are re-plumbed through a
 * per-port bridge and filtered. It runs when firewall-control becomes ready,
 * after every instance reconcile pass, and after every group change. */
#ifndef NOVA_FIREWALL_H
#define NOVA_FIREWALL_H

#include "instances.h"
#include "proto.h"
#include "secgroups.h"

#include <systemd/sd-event.h>

/* The plug is connected: new ports are plumbed for filtering. */
struct firewall;
bool firewall_connected(const struct firewall *fw);

/* Rules of all groups of p, with override standing in for the group of the
 * same id (may be NULL), or -ENOENT with the reason for a missing group. */
int firewall_port_rule_count(const struct firewall *fw, const struct instance_port *p, const struct secgroup *override, char *err,
                             size_t errlen);

/* Write port_rules_apply for p (w initialised here). 0, -ENOENT (a group
 * is gone) or -E2BIG (more than PORT_MAX_RULES rules), reason in err. */
int firewall_port_request(const struct firewall *fw, const struct instance_port *p, const struct secgroup *override, struct proto_writer *w,
                          char *err, size_t errlen);

/* Called with the outcome of a push: status 0 or -errno, operator text, plug to blame (-1). */
typedef void (*firewall_done_cb)(int status, const char *error, int plug, void *userdata);

/* Push a group's new content (next, same id as a stored group) to the
 * kernel. 1: no filtered port uses the group (nothing to push, cb not
 * called); 0: cb will be called; <0: error in err (-ENOTCONN/-EAGAIN with
 * the plug text, -E2BIG when a port would exceed PORT_MAX_RULES, -EBUSY while
 * another change is in flight). */
int firewall_push_group(struct firewall *fw, const struct secgroup *next, firewall_done_cb cb, void *userdata, char *err, size_t errlen,
                        int *ret_plug);
/* Push one port with the group list groups (instead of its stored one). Same returns. */
int firewall_push_port(struct firewall *fw, const struct instance_port *p, char groups[][UUID_STR_LEN + 1], size_t n_groups,
                       firewall_done_cb cb, void *userdata, char *err, size_t errlen, int *ret_plug);

/* Start a reconcile pass (coalesced when one is running). */
void firewall_sync(struct firewall *fw);

/* What the last pass found, for status. */
struct firewall_report {
        uint64_t runs;
        unsigned applied;       /* ports (re)applied by the last pass */
        unsigned removed;       /* ports of no instance whose rules were removed */
        unsigned replumbed;     /* instances re-plumbed to be filtered */
        unsigned unfiltered;    /* ports not filtered now */
        char last_error[256];
};
void firewall_report(const struct firewall *fw, struct firewall_report *ret);

/* The unit: one per core. lifecycle re-plumbs the instances booted without
 * firewall-control; it must outlive the firewall. 0 and *ret, or -ENOMEM. */
struct lifecycle;
struct instance_store;
struct modules;
int firewall_new(sd_event *event, struct modules *modules, struct lifecycle *lifecycle,
                 struct instance_store *instances, const struct secgroup_store *groups, struct firewall **ret);
/* NULL accepted. Returns NULL. */
struct firewall *firewall_free(struct firewall *fw);

#endif
