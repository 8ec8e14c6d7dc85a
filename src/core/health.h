/* health.h - the core's view of itself, reported to snapd with
 * `snapctl set-health` (inside a snap only): okay, waiting (naming the plugs
 * to connect or the modules not yet running) or error (naming the module
 * that failed). snap info / snap services show it. */
#ifndef NOVA_HEALTH_H
#define NOVA_HEALTH_H

#include "modules.h"

#include <systemd/sd-event.h>

#define HEALTH_MESSAGE_MAX 70 /* snapd refuses longer set-health messages */

enum health_status {
        HEALTH_OKAY,
        HEALTH_WAITING,
        HEALTH_ERROR,
};

/* Pure: the health for these module statuses (one per plug, indexed by
 * plug id). Plugs needed to boot an instance: libvirt, network-control and,
 * when ovs_in_use, openvswitch. error: a connected plug whose module failed
 * (unavailable, backing off, or died and not back). waiting: a needed plug is
 * disconnected, or a connected plug's module is not running yet. Writes the
 * message (at most HEALTH_MESSAGE_MAX chars, "" for okay) into msg. */
enum health_status health_compute(const struct module_status st[_PLUG_MAX], bool ovs_in_use, char *msg,
                                  size_t msglen);

/* "okay" / "waiting" / "error": the words snapctl set-health takes. */
const char *health_status_name(enum health_status h);

/* Inside a snap: re-evaluate whenever the registry reports a change of a
 * module or plug (modules_set_status_handler: event-driven, no timer while
 * nothing changes) and run `snapctl set-health` (fork and exec, reaped from
 * the event loop, never waited for in it) when the result differs from the
 * last report; a failed report is retried after 5 s. 0 and *ret, or -errno. */
struct health;
struct modules;
int health_start(sd_event *event, struct modules *modules, bool ovs_in_use, struct health **ret);
/* Stop reporting and free (NULL accepted). Returns NULL. */
struct health *health_stop(struct health *health);

#endif
