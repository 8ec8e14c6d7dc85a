/* core.h - nova-compute as one object.
 *
 * struct core holds what the daemon is made of: the configuration (the one
 * copy; every unit keeps a pointer to it), the event loop, the sockets, the
 * spawner, and the API server. It is created, started and freed here, in
 * one place and one order:
 *
 *   core_setup   as root: configuration, state/run dirs, plug state, API and
 *                module sockets, the spawner (outside a snap), then every
 *                capability dropped and no_new_privs set
 *   core_start   event loop and signals; the module registry (the modules of
 *                connected plugs are spawned now, so they start while the rest
 *                is set up); stores (instances, security groups, images);
 *                units: lifecycle, firewall (each given the other), Placement
 *                client (given its libcurl transport), API, health; then
 *                Placement starts. No module is heard before core_run's loop,
 *                when every handler is in place
 *   core_run     the event loop, until SIGTERM/SIGINT
 *   core_free    the reverse: health, API, sockets, Placement, modules (in-flight calls
 *                fail), lifecycle (operations left are cancelled), firewall,
 *                the stores, then the spawner (which stops the modules) is
 *                waited for
 *
 * Every unit (module registry, stores, lifecycle engine, firewall, Placement
 * client, API, health) is an object owned here and handed explicitly to the units that
 * use it. docs/ARCHITECTURE.md has the map. */
#ifndef NOVA_CORE_H
#define NOVA_CORE_H

#include "api.h"
#include "config.h"
#include "plugs.h"
#include "startup.h"

#include <limits.h>
#include <systemd/sd-event.h>

#define CORE_MAX_OVERRIDES 8

/* What the command line asks for. */
struct core_options {
        const char *config_path;        /* NULL: defaults (and the snap's paths) only */
        struct {
                const char *key;        /* a config key (state_dir, run_dir, api_socket, module_dir, plugs) */
                const char *value;
        } overrides[CORE_MAX_OVERRIDES];
        size_t n_overrides;
        bool spawn_modules;             /* inside a snap too, start the modules ourselves (remove hook) */
        bool verbose;
        struct core_startup startup;    /* main()'s start (startup_begin); the phases are added by the core */
};

struct core {
        sd_event *event;
        struct nova_config cfg;          /* the configuration: the one copy */
        bool snap;                       /* running inside a snap */
        bool supervise;                  /* we start the modules (outside a snap, or spawn_modules) */
        char config_path[PATH_MAX];      /* absolute, handed to the modules; "" for none */
        char module_dir[PATH_MAX];       /* where the nova-<plug> programs are */
        char module_socket[PATH_MAX];    /* inside a snap: where module apps connect; "" otherwise */
        bool plugs_connected[_PLUG_MAX]; /* the plug set at start */
        int api_fd;                      /* listening; -1 once the API server owns it */
        int module_fd;                   /* listening (inside a snap); -1 once the registry owns it */
        int spawner_fd;                  /* our end of the spawner's socketpair, -1 inside a snap */
        pid_t spawner_pid;               /* 0 inside a snap */
        uint64_t started_usec;
        struct core_startup startup;     /* main()'s start and the end of each start-up phase */
        struct instance_store *instances; /* intent: one file per instance */
        struct secgroup_store *groups;   /* security groups: secgroups.json */
        struct image_store *images;      /* imported images: images.json */
        struct modules *modules;         /* the module registry */
        struct lifecycle *lifecycle;     /* the pipeline engine */
        struct firewall *firewall;       /* security groups -> firewall-control */
        struct placement *placement;     /* this host as a provider in OpenStack Placement */
        struct image_cache *image_cache; /* expiry of unused images; NULL in the remove hook's run */
        struct api_server *api;
        struct health *health;           /* inside a snap: snapctl set-health */
};

/* As root: everything that needs privilege, then drop it (see above). 0 and
 * *ret, or -errno after logging why (*ret untouched). */
int core_setup(const struct core_options *opt, struct core **ret);
/* Start every unit. 0 or -errno after logging why. */
int core_start(struct core *c);
/* Serve until asked to stop. 0 on a clean stop. */
int core_run(struct core *c);
/* Stop every unit in reverse order, close, wait for the spawner, free (NULL accepted). Returns NULL. */
struct core *core_free(struct core *c);

#endif
