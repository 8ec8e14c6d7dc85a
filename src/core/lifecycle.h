/* lifecycle.h - instance operations as pipelines of idempotent steps.
 *
 * Boot: for each port a tap (network-control), then the domain is defined
 * and started (libvirt). Later plugs slot in as more steps between the taps
 * and the definition (an OVS port, security-group rules) without reshaping
 * anything. If a step fails, every completed step is undone in reverse.
 * Delete runs the undo of every step, in reverse, and tolerates what is
 * already gone. Stop/start/reboot go to libvirt only. Every plug an
 * operation needs must be ready before anything changes.
 *
 * Pinning: an instance with a cpu_set gets a PIN step after START (boot,
 * start, reboot, repair: QEMU is a new process each time) that asks
 * process-control to pin every QEMU thread. That plug is optional: when it is
 * not connected (or its module not ready) the step is skipped and the
 * instance records pin_state "unplugged" (or "failed" with why); when it
 * becomes ready, running instances not pinned are pinned. No QEMU process
 * under libvirt's test driver is recorded ("no QEMU process found"), not a
 * failure; any other pin error fails (and rolls back) a boot, while a start,
 * reboot or repair keeps the guest running unpinned and records why.
 *
 * Reconcile runs whenever the libvirt or network-control module becomes ready
 * (core start, module restart): instances in the store are compared with the
 * domains and taps that exist; power state is synced, instances missing their
 * domain or taps are repaired, resources of ours without an instance are
 * reported or reaped (orphan_policy). */
#ifndef NOVA_LIFECYCLE_H
#define NOVA_LIFECYCLE_H

#include "config.h"
#include "instances.h"
#include "libvirt-protocol.h"

#include <systemd/sd-event.h>

struct lifecycle_waiter;

/* Called once when the operation ends: status 0 or -errno, the operator text,
 * the plug to blame (-1 none), and the instance (NULL once deleted). */
typedef void (*lifecycle_done_cb)(int status, const char *error, int plug, struct instance *inst, void *userdata);

/* The engine: one per core. It keeps a pointer to cfg (which must outlive it)
 * and installs itself as the module registry's event and ready handler. 0 and
 * *ret, or -errno (-EINVAL: a bad NOVA_TEST_FAULT_STEP). */
struct lifecycle;
struct modules;
int lifecycle_new(sd_event *event, const struct nova_config *cfg, struct modules *modules,
                  struct instance_store *instances, struct lifecycle **ret);
/* The firewall unit, synced after every reconcile pass (set once, before the loop runs). */
struct firewall;
void lifecycle_set_firewall(struct lifecycle *lc, struct firewall *fw);
/* Told (why: a short word for the debug log) when local capacity may have
 * changed: a boot or delete finished, hardware-observe became ready or
 * reported a hardware change. The core points it at its Placement client
 * (placement_kick, userdata the client); NULL: nobody. */
typedef void (*lifecycle_capacity_fn)(void *userdata, const char *why);
void lifecycle_set_capacity_hook(struct lifecycle *lc, lifecycle_capacity_fn fn, void *userdata);
/* Cancel every operation left (waiters hear -ECANCELED), free (NULL accepted).
 * Call it once no module call is in flight (after modules_free: the callbacks
 * of the calls it fails still reach the engine); it does not touch the
 * registry. Returns NULL. */
struct lifecycle *lifecycle_free(struct lifecycle *lc);

/* Start an operation. On error: -errno, err filled, *ret_plug the plug that is
 * missing (or -1), and nothing changed. On 0 the operation runs; cb (may be
 * NULL) is called when it ends unless the waiter is cancelled. */
int lifecycle_boot(struct lifecycle *lc, const struct instance *tmpl, lifecycle_done_cb cb, void *userdata, struct lifecycle_waiter **ret_waiter,
                   struct instance **ret_inst, char *err, size_t errlen, int *ret_plug);
int lifecycle_delete(struct lifecycle *lc, struct instance *inst, lifecycle_done_cb cb, void *userdata, struct lifecycle_waiter **ret_waiter,
                     char *err, size_t errlen, int *ret_plug);
enum power_action {
        POWER_STOP,
        POWER_START,   /* of an instance in error: a repair (the boot plan again) */
        POWER_REBOOT,
        _POWER_ACTION_MAX,
};

int lifecycle_power(struct lifecycle *lc, struct instance *inst, enum power_action action, lifecycle_done_cb cb, void *userdata,
                    struct lifecycle_waiter **ret_waiter, char *err, size_t errlen, int *ret_plug);
void lifecycle_waiter_cancel(struct lifecycle_waiter *w);
/* Mark every port of an idle instance filtered and converge it (tap into a
 * qbr bridge, qvo on OVS, rules applied): what firewall-control's arrival
 * means for instances booted without it. 0 launched, -EBUSY (busy or in
 * error), -EAGAIN (a plug the plan needs is not ready; nothing changed). */
int lifecycle_refilter(struct lifecycle *lc, struct instance *inst);

/* Live migration (docs/MIGRATION.md). Where an instance goes: checked by the libvirt
 * protocol's schema when the request is built (migrate_dest_uri_is_valid() & co). */
struct lifecycle_migrate_target {
        char dest_uri[LIBVIRT_MAX_URI + 1];
        char migrate_host[48];
        char dest_pool[64];
        uint64_t timeout_s;
        uint64_t bandwidth_mib;      /* 0: libvirt's default */
};
/* What libvirt reported at the end of the last migration from here. */
struct lifecycle_migration_report {
        char instance_uuid[UUID_STR_LEN + 1];
        uint64_t elapsed_ms, data_total, data_processed, disk_total, disk_processed, memory_iteration;
        int64_t downtime_ms;         /* the guest's downtime as libvirt measured it; -1: not reported */
};
/* Destination: record tmpl (a source's stored instance; same uuid, ports, image) with task
 * migrating_in and run the boot plan without define and start. Refused when the image is
 * not here (the caller checks), the uuid or a port is taken, or a plug is missing. */
int lifecycle_migrate_prepare(struct lifecycle *lc, const struct instance *tmpl, lifecycle_done_cb cb, void *userdata,
                              struct lifecycle_waiter **ret_waiter, struct instance **ret_inst, char *err, size_t errlen,
                              int *ret_plug);
/* Source: migrate inst live to target, then remove its ports, rules and volumes here and
 * forget it (cb gets inst NULL). On a failed migration the instance stays, running here. */
int lifecycle_migrate(struct lifecycle *lc, struct instance *inst, const struct lifecycle_migrate_target *target,
                      lifecycle_done_cb cb, void *userdata, struct lifecycle_waiter **ret_waiter, char *err, size_t errlen,
                      int *ret_plug);
/* Destination: the domain must be here and running; then the instance is recorded active. */
int lifecycle_migrate_finish(struct lifecycle *lc, struct instance *inst, lifecycle_done_cb cb, void *userdata,
                             struct lifecycle_waiter **ret_waiter, char *err, size_t errlen, int *ret_plug);
/* Destination: the domain must not be here; then the prepared resources go and the record too. */
int lifecycle_migrate_abort(struct lifecycle *lc, struct instance *inst, lifecycle_done_cb cb, void *userdata,
                            struct lifecycle_waiter **ret_waiter, char *err, size_t errlen, int *ret_plug);
void lifecycle_last_migration(const struct lifecycle *lc, struct lifecycle_migration_report *ret);

/* What the last reconcile found, for status. */
struct reconcile_report {
        uint64_t runs;                /* completed reconcile passes */
        uint64_t last_usec;           /* monotonic time of the last completed pass, 0 = never */
        unsigned orphan_domains;      /* domains of ours without an instance (last pass) */
        unsigned orphan_taps;         /* taps of ours without an instance (last pass) */
        unsigned orphan_vifs;         /* OVS ports of ours without an instance (last pass) */
        unsigned orphan_volumes;      /* instances (by uuid) with volumes of ours but no instance (last pass) */
        unsigned reaped;              /* orphans removed (last pass, orphan_policy = reap) */
        unsigned repaired;            /* instances whose domain or taps were re-created (last pass) */
        char last_error[256];
};
void lifecycle_reconcile_report(const struct lifecycle *lc, struct reconcile_report *ret);

#endif
