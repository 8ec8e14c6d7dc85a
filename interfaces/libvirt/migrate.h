/* migrate.h - a live migration driven from the source's libvirt module (docs/MIGRATION.md).
 *
 * One struct migration per instance being migrated: virDomainMigrateToURI3 (peer to peer,
 * live, persistent on the destination, undefined here, the root disk copied incrementally)
 * blocks, so it runs on a thread of its own with its own libvirt connections; the event loop
 * samples the job's progress every MIGRATE_SAMPLE_MS, aborts the job at the deadline or on
 * request, and is told the end through a zero timeout (libvirt's event loop is thread-safe). */
#ifndef NOVA_MIGRATE_H
#define NOVA_MIGRATE_H

#include "libvirt-protocol.h"
#include "migrate-xml.h"

#include <libvirt/libvirt.h>
#include <stdbool.h>
#include <stdint.h>

#define MIGRATE_SAMPLE_MS 500

/* What one migration needs; copied, so the thread reads no shared state. */
struct migrate_request {
        char instance_uuid[UUID_STR_LEN + 1];
        char domain_name[80];                    /* derived by the caller from instance_uuid */
        char src_uri[256];                       /* this host's libvirt (libvirt_uri) */
        char src_pool_dir[MIGRATE_DIR_MAX];      /* this host's pool directory (storage_pool_path) */
        char src_pool[64];                       /* this host's pool name (storage_pool) */
        char root_vol[80];                       /* the root disk's volume name, derived from instance_uuid */
        char dest_uri[LIBVIRT_MAX_URI + 1];      /* checked by migrate_dest_uri_is_valid() */
        char migrate_host[48];                   /* checked by migrate_host_is_valid() */
        char dest_pool[64];                      /* checked by pool_name_is_valid() */
        uint64_t timeout_s;                      /* abort the job after this long */
        uint64_t bandwidth_mib;                  /* 0: libvirt's default */
};

/* The job as libvirt last reported it (virDomainGetJobStats), bytes and pages/s. */
struct migrate_progress {
        uint64_t data_total, data_processed, data_remaining;
        uint64_t memory_dirty_rate, memory_iteration;
        uint64_t disk_total, disk_processed;
        uint64_t samples;                        /* samples taken so far */
        /* After a successful job: the guest's downtime as libvirt measured it
         * (VIR_DOMAIN_JOB_DOWNTIME of the destination's completed-job stats), ms. */
        uint64_t downtime_ms;
        bool downtime_known;                     /* false: the destination did not report it */
};

struct migration;
/* Called on the event loop when the job has ended (either way); m stays valid until migration_free(). */
typedef void (*migration_done_fn)(struct migration *m, void *opaque);

/* Start the job. conn_ref points at the module's event-loop connection (sampling and
 * aborting use it; it may be NULL while libvirt is unreachable). 0 and *ret, or -errno. */
int migration_start(const struct migrate_request *req, virConnectPtr *conn_ref, migration_done_fn done, void *opaque,
                    struct migration **ret);
/* The instance it migrates. */
const char *migration_instance(const struct migration *m);
/* true until the done callback ran. */
bool migration_active(const struct migration *m);
/* After done: 0 (the domain runs on the destination), -ETIMEDOUT, -ECANCELED or -errno with *ret_err. */
int migration_status(const struct migration *m, const char **ret_err);
uint64_t migration_elapsed_ms(const struct migration *m);
const struct migrate_progress *migration_progress(const struct migration *m);
/* How many of our paths the destination XML had moved to the destination's pool (after done). */
size_t migration_paths_moved(const struct migration *m);
/* Ask libvirt to abort the job (virDomainAbortJob): 0, or -errno with err. */
int migration_abort(struct migration *m, char *err, size_t errlen);
/* Free an ended migration (joins its thread). NULL is fine. */
void migration_free(struct migration *m);

#endif
