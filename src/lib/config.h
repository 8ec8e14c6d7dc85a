/* config.h - the core's configuration file and command-line overrides.
 *
 * Format: UTF-8 text, one "key = value" per line, '#' comment lines and blank
 * lines allowed, whitespace around key and value trimmed, no sections, no
 * quotes, no trailing comments. At most CONFIG_MAX_FILE bytes and
 * CONFIG_MAX_LINE bytes per line. Every key is parsed and validated by one
 * table shared by config_parse() and config_set(). */
#ifndef NOVA_CONFIG_H
#define NOVA_CONFIG_H

#include "util.h"
#include "plugs.h"

#define CONFIG_MAX_FILE (64 * 1024) /* bytes per config file */
#define CONFIG_MAX_LINE 4096        /* bytes per line, without the line end */
#define CONFIG_SOCKET_NAME "nova-hypervisor.socket" /* api_socket default, inside run_dir */

struct nova_config {
        char state_dir[256];          /* absolute; default /var/lib/nova-hypervisor */
        char run_dir[256];            /* absolute; default /run/nova-hypervisor */
        char api_socket[256];         /* absolute, fits sockaddr_un; "" until config_finish() derives <run_dir>/nova-hypervisor.socket */
        char module_dir[256];         /* absolute dir of nova-<plug> programs; default "" = directory of the running nova-compute */
        bool plugs[_PLUG_MAX];        /* outside a snap: connected plugs; key "plugs", comma/space separated plug names, "" or "none" = none (default) */
        uint32_t module_timeout_ms;   /* per request; 100..600000; default 10000 */
        uint32_t restart_min_ms;      /* first restart delay after a crash; 10..60000; default 200 */
        uint32_t restart_max_ms;      /* cap of the exponential backoff; restart_min_ms..600000; default 30000 */
        uint32_t stable_after_ms;     /* a module running this long resets its backoff; 1000..3600000; default 60000 */
        uint32_t stop_timeout_ms;     /* SIGTERM→SIGKILL delay when stopping a module; 100..60000; default 5000 */
        char log_level[8];            /* debug|info|warning|error; default info */
        char libvirt_uri[256];        /* libvirt module: scheme://..., default qemu:///system (sandbox: test:///default) */
        uint32_t shutdown_timeout_s;  /* graceful shutdown before destroy; 0..3600; default 60 */
        uint32_t reconcile_interval_s; /* a reconcile pass at least this often, for damage no event announces (a tap
                                        * or OVS port deleted behind our back); 0 = only at start and on module
                                        * (re)connects; 0..86400; default 60 */
        char orphan_policy[8];        /* domains/taps of ours without an instance: report|reap; default report */
        char vif_type[8];             /* how ports are plugged: ovs (tap + OVS port) | tap (tap only); default ovs */
        char ovsdb_socket[256];       /* openvswitch module: unix:<absolute path>; default unix:/run/openvswitch/db.sock */
        char integration_bridge[16];  /* the one bridge ports go on (allowlist); default br-int */
        bool bridge_create;           /* create the integration bridge when missing; default false */
        char bridge_datapath_type[8]; /* system | netdev (userspace datapath, the sandbox); default system */
        uint32_t port_timeout_ms;     /* wait for ovs-vswitchd to assign an ofport; 100..60000; default 5000 */
        bool ovn;                     /* OVN plugging: iface-id is the logical port (the port UUID) and port_add
                                       * also waits for ovn-controller's external_ids:ovn-installed=true; default false */
        uint32_t ovn_wait_ms;         /* with ovn: how long port_add waits for ovn-installed after the ofport;
                                       * 100..600000; default 30000 */
        char ovn_timeout_policy[12];  /* with ovn, when ovn_wait_ms passes: fail (the boot fails and is rolled back)
                                       * | continue (the boot succeeds, the port shows ovn_binding "pending"); default fail */
        uint32_t network_mtu;         /* the network's MTU (e.g. 1442 on a Geneve overlay of a 1500 underlay): the MTU of
                                       * ports that give none, and the most a port may give; 0 = unset (ports default
                                       * to 1500, any 68..65535 allowed; default); else 68..65535 */
        /* Placement (`nova-hypervisor host`): capacity = total * ratio. Stored in
         * thousandths ("16.0" -> 16000); written as decimals with up to 3 places, 0.001..1000. */
        uint32_t cpu_allocation_ratio_milli;  /* key cpu_allocation_ratio; default 16.0 (nova's) */
        uint32_t ram_allocation_ratio_milli;  /* key ram_allocation_ratio; default 1.5 (nova's) */
        uint32_t disk_allocation_ratio_milli; /* key disk_allocation_ratio; default 1.0 (nova's) */
        /* ---- OpenStack Placement (src/core/placement.c; docs/PLACEMENT.md) ---- */
        char placement_url[256];      /* "" = off (default); http(s)://host[:port][/path] of the Placement API
                                       * (no user:password@), or "catalog" with keystone auth: the placement
                                       * endpoint of the token's service catalog (in placement_region) */
        char placement_auth[12];      /* noauth (X-Auth-Token: placement_noauth_token, Placement's noauth2) |
                                       * keystone (a token from keystone_auth_url, renewed before expiry and on 401) */
        char placement_noauth_token[128]; /* SECRET; noauth's token; default "admin" (noauth2's admin) */
        char placement_region[64];    /* keystone catalog region of the placement endpoint; "" = any */
        char keystone_auth_url[256];  /* http(s)://host[:port]/v3 (the identity API; /auth/tokens is appended) */
        char keystone_username[64];   /* password auth: user name (with keystone_user_domain) ... */
        char keystone_user_id[64];    /* ... or user id */
        char keystone_user_domain[64]; /* user's domain name; default Default */
        char keystone_password[128];  /* SECRET */
        char keystone_project_name[64]; /* password auth: project scope by name (with keystone_project_domain) ... */
        char keystone_project_id[64];  /* ... or by id */
        char keystone_project_domain[64]; /* default Default */
        char keystone_app_cred_id[64]; /* application credential auth (instead of a user): its id ... */
        char keystone_app_cred_secret[128]; /* ... and SECRET */
        char provider_name[201];      /* the resource provider's name; "" = the host name (default) */
        uint32_t reserved_host_cpus;  /* VCPU reserved; 0..4096; default 0 (nova's) */
        uint32_t reserved_host_memory_mb; /* MEMORY_MB reserved; 0..16777216; default 512 (nova's) */
        uint32_t reserved_host_disk_mb;   /* DISK_GB reserved, rounded up to GiB; 0..1000000000; default 0 (nova's) */
        uint32_t placement_refresh_s; /* re-read the provider from Placement this often; 10..86400; default 300 */
        char cpu_set[256];            /* default CPUs for instance pinning (process-control); a cpu list "0-3,6",
                                       * "" = no pinning (default). Applies to boots that give no "cpu_set"
                                       * (--cpu-set): the boot's PIN step (after START, again on start, reboot
                                       * and repair) pins every QEMU thread; without process-control connected
                                       * the instance runs unpinned and says so (pinning.state "unplugged") */
        char storage_pool[64];        /* libvirt module: name of the one dir pool it owns (images, root disks, config
                                       * drives); 1..63 of [a-z0-9_-], starting with a letter; default nova-hypervisor */
        char storage_pool_path[256];  /* that pool's directory, as the libvirt daemon sees it: absolute, no '..',
                                       * only [A-Za-z0-9/._-]; default /var/lib/libvirt/images/nova-hypervisor
                                       * (a place virt-aa-helper and the host's AppArmor allow for disks) */
        bool remove_unused_base_images; /* the image cache removes images no instance has used for
                                         * remove_unused_original_minimum_age_seconds (base volume and store entry,
                                         * as nova's image cache manager does); false = keep them; default true */
        uint32_t remove_unused_original_minimum_age_seconds; /* that age; 0 = keep; 0..31536000; default 86400 */
        char qemu_user[33];           /* the user the host's libvirt runs QEMU as (qemu.conf "user"): a user name
                                       * or "+<uid>"; default libvirt-qemu (Debian's). process-control and
                                       * system-observe accept a process as an instance's QEMU only when all its
                                       * uids are 0 or this user's (and libvirt's machine cgroup holds it) */
};

/* Fill *cfg with the built-in defaults (every byte defined, so structs compare with memcmp). */
void config_defaults(struct nova_config *cfg);

/* Parse text over *cfg (which holds defaults or earlier values). On any error nothing in *cfg changes
 * and err gets e.g. "line 3: unknown key 'foo'" / "line 5: module_timeout_ms: must be between 100 and 600000" /
 * "line 2: duplicate key 'run_dir'" / "line 4: plugs: unknown plug 'bogus'". Cross-field errors
 * (restart_max_ms < restart_min_ms, derived socket path too long) carry no line number.
 * err may be NULL. Returns 0 or -EINVAL (-EFBIG when len > CONFIG_MAX_FILE). */
int config_parse(const char *text, size_t len, struct nova_config *cfg, char *err, size_t errlen);

/* Read path (at most CONFIG_MAX_FILE bytes) and config_parse() it; err is prefixed with the path.
 * Returns 0, -EINVAL, -EFBIG or the -errno of opening/reading the file (*cfg unchanged then). */
int config_load_file(const char *path, struct nova_config *cfg, char *err, size_t errlen);

/* Set one key (used for command-line overrides like --state-dir and later `snap set`); same validation,
 * including the cross-field checks against the other current values. 0 or -EINVAL, *cfg unchanged on error. */
int config_set(struct nova_config *cfg, const char *key, const char *value, char *err, size_t errlen);
/* The i-th key of the table (every key config_parse() knows), NULL past the end. */
const char *config_key_name(size_t i);
/* A key whose value is a secret (passwords, tokens): never shown, logged or echoed in an error. */
bool config_key_is_secret(const char *key);

/* Fill derived values (api_socket from run_dir when empty) after all sources are applied. */
void config_finish(struct nova_config *cfg);

#endif
