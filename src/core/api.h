/* api.h - the REST/JSON API on a unix socket (curl --unix-socket works).
 *
 *   GET    /v1/status                     core and every plug: connected, module, fix
 *   POST   /v1/plugs/<plug>/connect       outside a snap: stands in for `snap connect`
 *   POST   /v1/plugs/<plug>/disconnect    outside a snap: stands in for `snap disconnect`
 *   POST   /v1/plugs/refresh              inside a snap: re-read `snapctl is-connected --list`
 *   POST   /v1/plugs/<plug>/disconnecting inside a snap: the disconnect-plug hook says the plug is going
 *   GET    /v1/ports                      taps of our ports (network-control)
 *   POST   /v1/ports                      {"port_uuid"?, "mac"?, "mtu"?} create a port's tap
 *   GET    /v1/ports/<port_uuid>
 *   DELETE /v1/ports/<port_uuid>
 *   GET    /v1/host                       inventory (hardware-observe) and placement summary
 *   GET    /v1/stats[/<instance>]         load, instance CPU/RSS (system-observe), VIF counters (network-observe)
 *   POST   /v1/instances/<id>/pin         {"cpus", "priority"?}: pin the instance's QEMU threads (process-control)
 *   GET    /v1/instances/<id>/affinity    the threads' affinity, as the kernel reports it
 *   GET    /metrics                       the same in Prometheus text format (also /v1/metrics)
 *   GET|POST /v1/instances, GET|DELETE /v1/instances/<id>, POST /v1/instances/<id>/{stop,start,reboot}
 *   GET|POST /v1/secgroups, GET|DELETE /v1/secgroups/<ref>, POST /v1/secgroups/<ref>/rules,
 *   DELETE /v1/secgroup-rules/<id>, POST|PUT /v1/ports/<port_uuid>/secgroups
 *   GET    /v1/domains, /v1/vifs           what the libvirt and openvswitch modules list of ours
 *
 * The route tables (one per resource file, api-*.c) are the authority.
 *
 * Errors: {"error": {"code": N, "message": "...", "plug": "...", "fix": "..."}}
 * (plug and fix only when a plug is the cause). */
#ifndef NOVA_API_H
#define NOVA_API_H

#include "config.h"

#include <systemd/sd-event.h>

struct core_startup;

struct api_context {
        const struct nova_config *cfg;  /* the core's configuration */
        struct lifecycle *lifecycle;    /* instance operations */
        struct firewall *firewall;      /* security groups in the kernel */
        struct instance_store *instances; /* the instance store */
        struct secgroup_store *groups;  /* the security-group store */
        struct image_store *images;     /* the image store */
        struct modules *modules;        /* the module registry */
        struct placement *placement;    /* the Placement client (status, host, metrics); may be NULL */
        bool snap;                      /* running inside a snap */
        pid_t spawner_pid;              /* 0 inside a snap */
        uint64_t started_usec;          /* monotonic start time of the core */
        const struct core_startup *startup; /* main()'s start and the core's start-up phases; may be NULL */
        /* Persist the connected-plug set as it will be once plug is (dis)connected,
         * before the change is made (outside a snap). 0 or the write's -errno. */
        int (*save_plugs)(const struct nova_config *cfg, const struct modules *modules, enum plug_id plug, bool connected);
};

struct api_server;

/* Serve the API on listen_fd (bound, listening, non-blocking; ownership taken,
 * also on error). ctx is copied. 0 and *ret set, or -errno. */
int api_start(sd_event *event, int listen_fd, const struct api_context *ctx, struct api_server **ret);
/* Close the listener and every client connection (pending module calls are
 * cancelled) and free srv (NULL accepted). Returns NULL. */
struct api_server *api_stop(struct api_server *srv);

#endif
