/* instances.h - the instance store: what the operator asked for (intent),
 * one JSON file per instance under <state_dir>/instances/, each written
 * atomically (temp file, fsync, rename). libvirt, the kernel and OVS hold the
 * facts; reconcile brings the two together. */
#ifndef NOVA_INSTANCES_H
#define NOVA_INSTANCES_H

#include "libvirt-protocol.h"
#include "names.h"
#include "secrule.h"

#include <json-c/json.h>

struct op;

#define INSTANCES_MAX 4096
#define INSTANCE_CPU_SET_MAX 256 /* bytes of a canonical cpu list, with the NUL */
#define INSTANCE_KEY_MAX 2048    /* one OpenSSH public key line ("ssh-ed25519 AAAA... comment"), without the NUL */
#define INSTANCE_USER_DATA_MAX 87380 /* base64 text of at most 65535 bytes (nova's limit), without the NUL */
#define INSTANCE_DISK_GB_MAX LIBVIRT_MAX_DISK_GB

struct instance_port {
        char port_uuid[UUID_STR_LEN + 1];
        char mac[MAC_STR_LEN + 1];
        uint32_t mtu;
        char ips[PORT_MAX_IPS][IP_STR_MAX];                 /* fixed IPs, canonical text (anti-spoofing) */
        size_t n_ips;
        char secgroups[PORT_MAX_GROUPS][UUID_STR_LEN + 1]; /* security group ids */
        size_t n_secgroups;
        bool filtered;  /* plumbed through a qbr bridge and under firewall-control's rules;
                         * false: the tap sits on OVS directly and nothing filters it */
};

/* Resolves a security group name or id to its id (data: the resolver's own,
 * e.g. the group store): 0 or -ENOENT. */
typedef int (*secgroup_resolve_fn)(const void *data, const char *ref, char ret_id[UUID_STR_LEN + 1]);

/* The intent: active (should run), stopped (defined, off), error (an
 * operation failed; resources were rolled back or are being repaired). */
enum vm_state {
        VM_ACTIVE,
        VM_STOPPED,
        VM_ERROR,
        _VM_STATE_MAX,
};

/* The operation in progress (TASK_NONE: none). Stored, so that an
 * interrupted build or delete is finished by reconcile. */
enum instance_task {
        TASK_NONE,
        TASK_BUILDING,
        TASK_DELETING,
        TASK_STOPPING,
        TASK_STARTING,
        TASK_REBOOTING,
        TASK_PINNING,
        TASK_MIGRATING,     /* source: libvirt's live migration runs, or ran and the clean-up is left */
        TASK_MIGRATING_IN,  /* destination: prepared (ports, disks), waiting for the migration and finish */
        _TASK_MAX,
};

/* CPU pinning of an instance with a cpu_set (PIN_NONE without one). */
enum pin_state {
        PIN_NONE,       /* no cpu_set */
        PIN_PENDING,    /* not pinned yet: not running, or the pin step has not run */
        PIN_APPLIED,
        PIN_UNPLUGGED,  /* process-control is not connected */
        PIN_FAILED,     /* pin_detail says why */
        _PIN_STATE_MAX,
};

/* The words of the store and the API ("active", "building", "applied", ...;
 * "" for TASK_NONE and PIN_NONE); NULL for a value out of range. */
const char *vm_state_to_string(enum vm_state s);
const char *instance_task_to_string(enum instance_task t);
const char *pin_state_to_string(enum pin_state s);
/* The value a word names, or -EINVAL. */
int vm_state_from_string(const char *s);
int instance_task_from_string(const char *s);
int pin_state_from_string(const char *s);

/* vm_state: the intent. active (should run), stopped (defined, off), error
 * (an operation failed; resources were rolled back or are being repaired).
 * task: the operation in progress, "" when none. */
struct instance {
        struct instance *next;                  /* store list */
        char uuid[UUID_STR_LEN + 1];
        char name[LIBVIRT_MAX_NAME + 1];        /* display name, unique on this host */
        uint32_t vcpus;
        uint32_t memory_mb;
        /* The ports: n_ports (at most LIBVIRT_MAX_PORTS) entries, malloc'd (NULL when n_ports is 0),
         * owned by the instance like user_data (a template's are the caller's: instance_add copies
         * them, instance_template_clear frees them). Allocated by count: a port is 704 bytes, and
         * 16 fixed slots made every instance 12 KB whatever its ports. */
        struct instance_port *ports;
        size_t n_ports;
        enum vm_state vm_state;
        enum instance_task task;
        char power_state[16];                   /* from libvirt: running | shutoff | ... | unknown */
        char fault[256];                        /* why the last operation failed, "" when none */
        uint64_t created_at;                    /* unix seconds */
        /* CPU pinning of the instance's QEMU threads (process-control), redone each
         * time QEMU starts (boot, start, reboot, repair). cpu_set: canonical cpu
         * list, "" = no pinning (then pin_state is "" too). pin_state: pending (not
         * pinned yet: not running, or the pin step has not run) | applied |
         * unplugged (process-control is not connected) | failed (pin_detail says
         * why; e.g. no QEMU process under libvirt's test driver): enum pin_state. pin_detail:
         * applied: "pid N, T threads"; unplugged/failed: the reason. */
        char cpu_set[INSTANCE_CPU_SET_MAX];
        enum pin_state pin_state;
        char pin_detail[192];
        /* Disks (issue 17). image_uuid: the base image of the root disk (a qcow2 overlay
         * of max(disk_gb, the image's size)) and of a config drive; "" = diskless, as
         * before. key: one public key line for the config drive, NULL = none. user_data:
         * strict base64. key, cmdline and user_data are owned by the instance (malloc'd;
         * NULL = none: a fixed array for each made every instance 3 KiB larger, 3 MiB of
         * the core with 1000 instances); a template's are the caller's (instance_add
         * copies them, instance_template_clear frees them). */
        char image_uuid[UUID_STR_LEN + 1];
        /* Direct kernel boot (with an image only): the images holding the kernel and the
         * initrd, both or neither ("" = boot the root disk), and the command line (NULL = none,
         * at most LIBVIRT_MAX_CMDLINE bytes). */
        char kernel_uuid[UUID_STR_LEN + 1];
        char ramdisk_uuid[UUID_STR_LEN + 1];
        char *cmdline;
        uint32_t disk_gb;
        /* The root disk was made on this host and has not been removed since (set when a
         * root_disk unit succeeds, cleared when its undo does). A disk that went missing while
         * this is set held the guest's data: it is never made again (lifecycle.c), the instance
         * goes to error instead. Stored as "root_disk"; a record written before it was known
         * says true when it has an image and is idle and not in error (its boot finished). */
        bool root_disk;
        char *key;                              /* at most INSTANCE_KEY_MAX bytes */
        char *user_data;
        struct op *op;                          /* the operation in progress (lifecycle.c), not stored */
        uint64_t changed_seq;                   /* the lifecycle's change count when its last operation ended
                                                 * or a domain event changed it (lifecycle.c; 0: not since the
                                                 * core started), not stored: a reconcile pass that began
                                                 * listing before that does not judge it */
        int unsaved;                            /* 0, or -errno of the last failed write of this record
                                                 * (memory is newer than the file; instance_save retries) */
        struct instance_store *store;           /* the store it is in; NULL for a template */
};

/* The store: one per core. */
struct instance_store;

/* A store of every instance file under <state_dir>/instances (created if
 * missing). A file that does not parse is logged and skipped, never deleted
 * (*ret_skipped counts them; may be NULL). 0 and *ret, or -errno. */
int instances_load(const char *state_dir, struct instance_store **ret, unsigned *ret_skipped);
/* Free the store and its instances (NULL accepted). Returns NULL. */
struct instance_store *instances_free(struct instance_store *store);

/* NULL when there is none (a NULL uuid or name finds nothing). */
struct instance *instance_find(const struct instance_store *store, const char *uuid);
struct instance *instance_find_by_name(const struct instance_store *store, const char *name);
/* First instance, then instance->next; NULL at the end. */
struct instance *instances_first(const struct instance_store *store);
size_t instances_count(const struct instance_store *store);

/* Add a new instance (copied) and write it. 0, -EEXIST (uuid or name taken),
 * -ENOSPC (INSTANCES_MAX) or the write error (then nothing was added). */
int instance_add(struct instance_store *store, const struct instance *tmpl, struct instance **ret);
/* Write the current state of inst (in its store). 0 or -errno. */
int instance_save(struct instance *inst);
/* How many instances have a record that is older than memory (the last write failed). */
size_t instances_unsaved(const struct instance_store *store);
/* Write the records whose last write failed, until one fails again; how many
 * are still unsaved (NULL store: 0). The caller retries on a timer. */
size_t instances_save_unsaved(struct instance_store *store);
/* Remove the file and free inst. 0 or -errno (then inst is kept). */
int instance_remove(struct instance *inst);

/* Free what a template (a parsed request or stored file not added to a store)
 * owns: its user_data. NULL accepted. */
void instance_template_clear(struct instance *tmpl);

/* Decoders (fuzzed): a stored instance file, and an API boot request body
 * {"name","uuid"?,"vcpus"?,"memory_mb"?,"secgroups"?:[ref...],"cpu_set"?,
 *  "image"?:ref,"disk"?:GB,"key"?:TEXT,"user_data"?:BASE64,
 *  "kernel"?:ref,"ramdisk"?:ref,"cmdline"?:TEXT (direct kernel boot: both images, with "image"),
 *  "ports"?:[{"port_uuid"?,"mac"?,"mtu"?,"ips"?:[ip...],"secgroups"?:[ref...]}]}
 * (missing identifiers are generated). "cpu_set": a cpu list ("2-3,6"),
 * stored canonical, "" = no pinning; when absent, default_cpu_set applies
 * (the config key cpu_set; NULL or "" = none). Whether the CPUs are online is
 * the lifecycle's check; pin_state starts "pending" when a cpu_set is set. Security groups are names or ids,
 * resolved with resolve (NULL: none exist); a port without its own list gets
 * the request's, else the group "default" when it resolves. The filtered
 * flag is left false (lifecycle decides). "image" is a name or id, resolved
 * with image_resolve (NULL: no image exists); "disk" (1..LIBVIRT_MAX_DISK_GB),
 * "key" and "user_data" need an image (they go on its disks). 0, or
 * -EBADMSG/-EINVAL with the reason; *ret untouched on error; on 0 the caller
 * owns *ret's user_data (instance_template_clear). */
int instance_parse_stored(const char *text, size_t len, struct instance *ret, char *why, size_t whylen);
/* The stored form of inst (what instance_parse_stored() takes), new reference: what a
 * migration's destination is prepared from (docs/MIGRATION.md). */
struct json_object *instance_stored_json(const struct instance *inst);
int instance_parse_boot_request(struct json_object *body, secgroup_resolve_fn resolve, const void *resolve_data,
                                secgroup_resolve_fn image_resolve, const void *image_data, const char *default_cpu_set,
                                struct instance *ret, char *err, size_t errlen);
/* The network's MTU (config key network_mtu; 0 = not set: nothing to do) on
 * a parsed boot request: ports of body that give no "mtu" get network_mtu;
 * one that gives more is refused (an overlay such as Geneve needs 58 bytes of
 * the underlay's MTU, so a larger port MTU breaks TCP silently). body is the
 * request instance_parse_boot_request() accepted into *inst. 0, or -EINVAL
 * with the reason in err and *inst unchanged. */
int instance_apply_network_mtu(struct json_object *body, uint32_t network_mtu, struct instance *inst, char *err,
                               size_t errlen);
/* Canonical form of a non-empty cpu list into ret: 0, or -EINVAL (syntax,
 * empty, too long). */
int instance_cpu_set_canonical(const char *s, char ret[INSTANCE_CPU_SET_MAX]);
/* "cpu_set 2-3 applied (pid 12, 3 threads)" / "cpu_set 2-3 not applied: <why>"
 * into buf ("" when the instance has no cpu_set). */
void instance_pin_message(const struct instance *inst, char *buf, size_t size);
/* Set a port's groups from a JSON list of refs (API "port set"). Checks
 * count, duplicates and resolution. 0 or -EINVAL/-ENOENT with the reason. */
int instance_port_parse_secgroups(struct json_object *list, secgroup_resolve_fn resolve, const void *resolve_data,
                                  char ret[PORT_MAX_GROUPS][UUID_STR_LEN + 1], size_t *ret_n, char *err,
                                  size_t errlen);
struct instance_port *instance_find_port(const struct instance_store *store, const char *port_uuid,
                                        struct instance **ret_inst);

/* JSON view of an instance for the API (caller puts it). */
struct json_object *instance_to_json(const struct instance *inst);

#endif
