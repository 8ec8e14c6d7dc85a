/* placement.h - this host as a resource provider in OpenStack Placement.
 *
 * When placement_url is set, the core registers the host (a provider with a
 * UUID kept in <state_dir>/placement-provider-uuid, created once), puts its
 * VCPU / MEMORY_MB / DISK_GB inventories and its traits, and keeps them
 * current: after placement_kick() (instances booted or deleted, the
 * hardware-observe module (re)started or reporting a hardware change: its
 * inventory_changed event) and every placement_refresh_s. It
 * writes only when what it would write differs from what Placement holds
 * (zero writes while nothing changes); every write carries the provider
 * generation, a stale one (409) is re-read and retried (bounded), and an
 * unreachable or failing Placement is retried with exponential backoff while
 * everything local keeps working. The requests and the timer go through a
 * transport (placement-io.h): libcurl's multi interface on the core's
 * sd-event loop (placement-curl.c); nothing here blocks.
 *
 * Nova is the reference for every request shape and microversion
 * (nova/scheduler/client/report.py). Secrets (the noauth token, keystone
 * password, application credential secret, the keystone token) are never
 * logged or shown. */
#ifndef NOVA_PLACEMENT_H
#define NOVA_PLACEMENT_H

#include "config.h"

struct json_object;

/* The client, one per core: created with the core's configuration (kept by
 * pointer: it must outlive the client), module registry (hardware-observe's
 * host inventory, libvirt's storage pool) and transport (placement-io.h:
 * placement_curl_new() on the core's loop; owned from here on, freed with
 * the client, also on failure); stopped until placement_start(). 0 and
 * *ret, or -ENOMEM. */
struct placement;
struct placement_io;
struct modules;
int placement_new(const struct nova_config *cfg, struct modules *modules, struct placement_io *io,
                  struct placement **ret);
/* Start (a no-op returning 0 when placement_url is empty). Reads or creates
 * the provider UUID file; the first sync starts at once (it waits for
 * hardware-observe's inventory if that is not there yet). 0 or -errno (the
 * UUID file is unreadable or invalid, libcurl failed to initialise): then
 * status shows the error and everything local keeps working. */
int placement_start(struct placement *pl);
/* Stop (cancel the request in flight, forget the token) and free; NULL accepted. Returns NULL. */
struct placement *placement_free(struct placement *pl);
/* Something local may have changed (why: a short word for the debug log):
 * re-read the host and push what differs. Cheap when nothing changed: no
 * Placement request at all. NULL or a client not started: nothing. */
void placement_kick(struct placement *pl, const char *why);
/* {"enabled": false} or the client's state: provider, last sync, result,
 * error and fix, request counters (caller puts it). pl may be NULL (off). */
struct json_object *placement_status_json(const struct placement *pl);
/* Prometheus text of the client's gauges and counters (malloc'd; "" when
 * disabled or pl is NULL), NULL on -ENOMEM. */
char *placement_metrics_text(const struct placement *pl);

#endif
