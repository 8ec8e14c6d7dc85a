/* observe.h - the host's resources and load, as the observe modules report
 * them, joined with the instance store: the data of `nova-hypervisor host`,
 * `nova-hypervisor stats` and the Prometheus endpoint.
 *
 * A query asks the modules it needs in parallel (hardware-observe:
 * host_inventory; system-observe: host_load, instance_procs; network-observe:
 * link_stats), then renders once every answer is in. A plug that is not
 * connected (or whose module is not running, or fails) is never a blank or a
 * zero: its section says {"available": false, "plug", "error", "fix"}. */
#ifndef NOVA_OBSERVE_H
#define NOVA_OBSERVE_H

#include "config.h"
#include "instances.h"

enum observe_kind {
        OBSERVE_HOST,    /* JSON: inventory + placement summary */
        OBSERVE_STATS,   /* JSON: load, per-instance CPU/RSS, per-VIF counters */
        OBSERVE_METRICS, /* Prometheus text format 0.0.4: all of the above */
};

/* The rendered answer: HTTP status, content type and body (owned by the
 * callee; valid during the call). */
typedef void (*observe_done_cb)(int status, const char *content_type, const char *body, void *userdata);

struct observe_query;

/* Start a query. placement (the core's Placement client; may be NULL: off)
 * adds its state to host and metrics. instance (OBSERVE_STATS only, may be NULL) limits the
 * per-instance part to one instance of the store. 0 and cb called exactly once
 * later (unless cancelled), or -errno (-ENOMEM) and cb never called. */
struct modules;
struct placement;
int observe_start(const struct nova_config *cfg, struct modules *modules, const struct instance_store *instances,
                  const struct placement *placement, enum observe_kind kind, const struct instance *instance,
                  observe_done_cb cb, void *userdata, struct observe_query **ret);
/* Forget a query: its callback will not run (accepts NULL). */
void observe_cancel(struct observe_query *q);

#endif
