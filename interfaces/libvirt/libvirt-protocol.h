/* libvirt-protocol.h - the entrypoints of the libvirt module, as both the
 * module (dispatch) and the core (request validation) know them.
 *
 * Identifiers in, names derived inside: the domain name is
 * "nova-" + instance_uuid, each interface's tap is tap_name_from_port().
 *
 * Replies (bodies):
 *   domain_define, domain_start, domain_shutdown, domain_reboot, domain_destroy,
 *   domain_state:  { domain: DOMAIN }
 *   domain_undefine: {}                      (-ENOENT when there is no such domain of ours)
 *   domain_list:   request { after?, limit? } (a page, schema_page_req) ->
 *                  { domains: [DOMAIN...] (by instance_uuid), total: N, truncated: bool, next? }
 *                  total counts the domains named as ours ("nova-" + a UUID); the mark is
 *                  checked for those of the page, so a page may list fewer than it read
 *   DOMAIN = { instance_uuid, domain_name, display_name, state, reason, vcpus, memory_mb }
 *   state: nostate|running|blocked|paused|shutdown|shutoff|crashed|pmsuspended
 * Errors: -ENOENT no domain of ours for that instance; -EEXIST a domain with our
 * derived name exists but is not ours; -ENOTCONN libvirt is unreachable (the
 * module reconnects by itself); -EINVAL libvirt refused the definition.
 *
 * Storage (one dir pool of ours, config storage_pool / storage_pool_path; names derived here):
 *   base image   "image-" + image_uuid + ".raw"       (always raw)
 *   root disk    "nova-" + instance_uuid + "-root.qcow2" (qcow2 overlay, backing: the base, format raw)
 *   config drive "nova-" + instance_uuid + "-config.iso"  (raw, ISO 9660 config-2)
 *   console log  "nova-" + instance_uuid + "-console.log" (the serial console's <log>, written by
 *                QEMU or virtlogd into the pool's directory; read back as a volume)
 *   domain_define with image_uuid: root disk (vda, qcow2 on the base, explicit chain) and the console
 *                log; with config_drive: true, the config drive (IDE CD-ROM, raw); with
 *                kernel_image_uuid + ramdisk_image_uuid (+ cmdline?; needs image_uuid): direct
 *                kernel boot from those images' raw bases
 *   pool_info:      { pool, path, capacity, allocation, available }          (bytes)
 *   volumes_purge:  {} -> { deleted, failed, kept, kept_images: [image_uuid...], kept_images_truncated,
 *                   pool_removed, error }: every volume of ours in the pool (bases, root disks, config
 *                   drives, console logs, import leftovers) is deleted, except an instance's whose domain of
 *                   ours still exists, the bases those root disks use, and what an upload in progress
 *                   writes; an empty pool is then stopped, its directory removed and undefined (the remove
 *                   hook, snap remove)
 *   image_upload:   request { image_uuid, size, format? raw|qcow2 } + ONE descriptor (SCM_RIGHTS):
 *                   the read end of the image bytes (pipe, socket or file), exactly `size` bytes.
 *                   reply { image_uuid, volume, size, virtual_size, format, sha256 }
 *                   (a qcow2 is converted into the raw base; format says what was imported)
 *                   -EINVAL refused image (nothing created), -EOPNOTSUPP qcow2 (bases are raw; not
 *                   converted yet), -ENOSPC larger than the pool's free space, -EEXIST already stored,
 *                   -EBUSY the same image is being uploaded or too many uploads, -EPIPE short stream.
 *   image_delete:   { image_uuid } -> { deleted: bool }
 *   image_list:     {} -> { images: [{ image_uuid, volume, capacity, allocation }], total, truncated }
 *   root_disk_create: { instance_uuid, image_uuid, size_gb, existing? } -> { volume, path, capacity, backing_path,
 *                   created: bool }   capacity = max(size_gb GiB, the base's capacity)
 *                   existing: true: the disk was made before and holds the guest's data; it must be
 *                   there (-ENOENT, nothing created, when it is not: never an empty disk in its place)
 *   config_drive_create: request { instance_uuid } + ONE descriptor: the drive's description (JSON as
 *                   config_drive_spec_from_json takes it, at most 256 KiB, its uuid = instance_uuid);
 *                   reply { volume, path, size }: "nova-" + instance_uuid + "-config.iso", raw,
 *                   rebuilt when it exists (idempotent)
 *   volumes_delete: { instance_uuid, kind? root|config|console } -> { deleted: N }  (absent: all three)
 *   console_read:   { instance_uuid, tail_bytes } -> { text: [line...], size, offset }  the last tail_bytes
 *                   (at most LIBVIRT_CONSOLE_MAX_BYTES, at most 1000 lines) of the console log, one item per
 *                   line (a line over 4000 bytes in pieces), tab -> space, other control bytes and non-ASCII
 *                   -> '?', a '\r' ends its line; -ENOENT no log yet
 *   volume_list:    {} -> { volumes: [{ kind: image|root|config|console, uuid, volume, capacity, allocation }], total,
 *                   truncated }
 *
 * Live migration (docs/MIGRATION.md; the source's module drives it, peer to peer):
 *   domain_migrate: { instance_uuid, dest_uri, migrate_host, dest_pool, timeout_s, bandwidth_mib? }
 *                   -> { elapsed_ms, timed_out: false, PROGRESS } when libvirt finished the job (the domain
 *                   runs on the destination, persistent there, undefined here); deferred, answered at the end.
 *                   dest_uri: migrate_dest_uri_is_valid(); migrate_host: an IP address literal (data and NBD
 *                   go to tcp://ADDRESS); dest_pool: the destination's storage pool, by name: the module reads
 *                   its directory there and derives every path of the destination XML from the UUIDs.
 *                   -ETIMEDOUT the job ran longer than timeout_s and was aborted (the guest runs here);
 *                   -ECANCELED aborted by migrate_abort; -EBUSY a migration of it is running; -ENOENT no
 *                   domain of ours; -EINVAL/-EIO libvirt refused (its text in the error).
 *   migrate_job:    { instance_uuid } -> { active: bool, elapsed_ms, PROGRESS }  (-ENOENT no migration
 *                   of it was started by this module process)
 *   migrate_abort:  { instance_uuid } -> { aborted: bool }  (virDomainAbortJob; -ENOENT none running)
 *   PROGRESS = { data_total, data_processed, data_remaining, memory_dirty_rate, memory_iteration,
 *                disk_total, disk_processed, samples }  (bytes, pages/s; the last 500 ms sample)
 *
 * Events (module -> core):
 *   "domain_lifecycle" { instance_uuid, event, detail, state }  only for our domains
 *       event: defined|undefined|started|suspended|resumed|stopped|shutdown|pmsuspended|crashed
 *   "libvirt_connection" { connected: bool, uri, error }       on loss and on restore */
#ifndef NOVA_LIBVIRT_PROTOCOL_H
#define NOVA_LIBVIRT_PROTOCOL_H

#include "names.h"
#include "schema.h"

#define LIBVIRT_DOMAIN_PREFIX "nova-"
#define LIBVIRT_ROOT_VOL_SUFFIX "-root.qcow2" /* root disk: LIBVIRT_DOMAIN_PREFIX + instance_uuid + this */
#define LIBVIRT_METADATA_URI "urn:nova-hypervisor:instance:1" /* our ownership mark's namespace */
#define LIBVIRT_METADATA_KEY "nova"
#define LIBVIRT_MAX_PORTS 16
#define LIBVIRT_MAX_VCPUS 64
#define LIBVIRT_MIN_MEMORY_MB 16
#define LIBVIRT_MAX_MEMORY_MB (1024 * 1024)
#define LIBVIRT_MAX_NAME INSTANCE_NAME_MAX /* display name: see instance_name_is_valid() (names.h) */
#define LIBVIRT_MAX_IMAGE_BYTES (1ull << 40)   /* 1 TiB: the largest image an upload announces */
#define LIBVIRT_MAX_DISK_GB 16384                /* root disk request limit */
#define LIBVIRT_CONSOLE_MAX_BYTES (48u * 1024)   /* console_read: the most one reply carries */
#define LIBVIRT_MAX_URI 200                      /* domain_migrate: dest_uri */
#define LIBVIRT_MAX_MIGRATE_S 86400              /* domain_migrate: timeout_s */

#define LIBVIRT_MAX_CMDLINE 1024                 /* direct kernel boot's command line, bytes */
#define LIBVIRT_PURGE_MAX_LISTED 256             /* volumes_purge: kept images listed in one reply, at most */

enum libvirt_entrypoint_id {
        LIBVIRT_DOMAIN_DEFINE,
        LIBVIRT_DOMAIN_START,
        LIBVIRT_DOMAIN_SHUTDOWN,
        LIBVIRT_DOMAIN_REBOOT,
        LIBVIRT_DOMAIN_DESTROY,
        LIBVIRT_DOMAIN_UNDEFINE,
        LIBVIRT_DOMAIN_STATE,
        LIBVIRT_DOMAIN_LIST,
        LIBVIRT_POOL_INFO,
        LIBVIRT_IMAGE_UPLOAD,
        LIBVIRT_IMAGE_DELETE,
        LIBVIRT_IMAGE_LIST,
        LIBVIRT_ROOT_DISK_CREATE,
        LIBVIRT_CONFIG_DRIVE_CREATE,
        LIBVIRT_VOLUMES_DELETE,
        LIBVIRT_VOLUME_LIST,
        LIBVIRT_CONSOLE_READ,
        LIBVIRT_DOMAIN_MIGRATE,
        LIBVIRT_MIGRATE_JOB,
        LIBVIRT_MIGRATE_ABORT,

        LIBVIRT_VOLUMES_PURGE,
        _LIBVIRT_MAX,
};

extern const struct proto_entrypoint libvirt_entrypoints[_LIBVIRT_MAX];

/* A direct kernel boot's command line: 1..LIBVIRT_MAX_CMDLINE bytes of printable ASCII (space
 * allowed) without ' " < > & (what the domain document carries unescaped). */
bool kernel_cmdline_is_valid(const char *s);
extern const struct module_protocol libvirt_protocol;

/* "raw" or "qcow2": the formats an upload may declare. */
bool image_format_word_is_valid(const char *s);
/* "root", "config" or "console": one kind of an instance's volumes (volumes_delete). */
bool volume_kind_word_is_valid(const char *s);
/* A destination libvirt URI a migration may go to: qemu+tcp://HOST[:PORT]/system,
 * qemu+tls://HOST[:PORT]/system (HOST: letters, digits, '.', '-', or a bracketed IPv6
 * literal), or qemu+unix:///system?socket=/ABS/PATH ([A-Za-z0-9._/-], no "..", for two
 * hosts on one machine). At most LIBVIRT_MAX_URI characters. */
bool migrate_dest_uri_is_valid(const char *s);
/* An IPv4 or IPv6 address literal (inet_pton): where migration data goes. */
bool migrate_host_is_valid(const char *s);
/* A storage pool name as the config takes it: [a-z][a-z0-9_-]{0,62}. */
bool pool_name_is_valid(const char *s);

#endif
