/* migrate.c - see migrate.h */
#include "migrate.h"

#include "log.h"
#include "proto.h"
#include "util.h"

#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct migration {
        struct migrate_request req;
        virConnectPtr *conn_ref;                 /* the event loop's connection (main thread only) */
        migration_done_fn done;
        void *opaque;
        pthread_t thread;
        bool thread_started, active, timed_out, cancelled;
        int sample_timer, deadline_timer;        /* libvirt timeout ids, -1 when none */
        uint64_t started_usec, ended_usec;
        struct migrate_progress progress;        /* main thread only */
        /* written by the thread before it signals */
        int status;
        char err[256];
        size_t paths_moved;
        uint64_t downtime_ms;                    /* completed_downtime() */
        bool downtime_known;
};

static void thread_error(struct migration *m, int status, const char *what)
{
        virErrorPtr e = virGetLastError();

        m->status = status;
        proto_text_printf(m->err, sizeof(m->err), "%s: %s", what, e && e->message ? e->message : "unknown libvirt error");
}

/* The destination's pool directory, read on its own libvirtd. 0 or -errno with m->err. */
static int dest_pool_dir(struct migration *m, virConnectPtr dconn, char ret[MIGRATE_DIR_MAX])
{
        virStoragePoolPtr pool = virStoragePoolLookupByName(dconn, m->req.dest_pool);
        char *xml;
        int r;

        if (!pool) {
                thread_error(m, -ENOENT, "the destination has no storage pool of that name");
                return m->status;
        }
        xml = virStoragePoolGetXMLDesc(pool, 0);
        (void)virStoragePoolFree(pool);
        if (!xml) {
                thread_error(m, -EIO, "cannot read the destination's storage pool");
                return m->status;
        }
        r = migrate_pool_dir_from_xml(xml, ret);
        free(xml);
        if (r < 0) {
                m->status = r;
                proto_text_printf(m->err, sizeof(m->err), "the destination's pool %s is not a dir pool with a usable path",
                                  m->req.dest_pool);
        }
        return r;
}

/* The destination's root overlay (made empty by its prepare) gets the source's exact capacity:
 * libvirt's disk copy needs equal sizes, and the destination rounds a request to whole GiB
 * while the source's may be an image's own size. An instance without a root disk here has
 * nothing to match. 0 or -errno with m->err. */
static int match_root_capacity(struct migration *m, virConnectPtr conn, virConnectPtr dconn)
{
        virStoragePoolPtr spool = NULL, dpool = NULL;
        virStorageVolPtr svol = NULL, dvol = NULL;
        virStorageVolInfo si, di;
        int r = 0;

        spool = virStoragePoolLookupByName(conn, m->req.src_pool);
        if (spool)
                (void)virStoragePoolRefresh(spool, 0);
        svol = spool ? virStorageVolLookupByName(spool, m->req.root_vol) : NULL;
        if (!svol)
                goto out; /* diskless (or no pool): nothing to copy */
        dpool = virStoragePoolLookupByName(dconn, m->req.dest_pool);
        if (dpool)
                (void)virStoragePoolRefresh(dpool, 0);
        dvol = dpool ? virStorageVolLookupByName(dpool, m->req.root_vol) : NULL;
        if (!dvol) {
                r = m->status = -ENOENT;
                proto_text_printf(m->err, sizeof(m->err),
                                  "the destination has no root disk for the instance: run `migrate prepare` there first");
                goto out;
        }
        if (virStorageVolGetInfo(svol, &si) < 0 || virStorageVolGetInfo(dvol, &di) < 0) {
                thread_error(m, -EIO, "cannot read the root disks' sizes");
                r = m->status;
                goto out;
        }
        if (si.capacity != di.capacity) {
                if (di.allocation > (1ULL << 20) && di.capacity > si.capacity) {
                        r = m->status = -EEXIST;
                        proto_text_printf(m->err, sizeof(m->err), "the destination's root disk holds data already "
                                          "(%llu bytes allocated): not shrinking it", di.allocation);
                        goto out;
                }
                if (virStorageVolResize(dvol, si.capacity, si.capacity < di.capacity ? VIR_STORAGE_VOL_RESIZE_SHRINK : 0) < 0) {
                        thread_error(m, -EIO, "cannot give the destination's root disk the source's size");
                        r = m->status;
                        goto out;
                }
                log_info("migration of %s: the destination's root disk resized from %llu to %llu bytes (the source's)",
                         m->req.instance_uuid, di.capacity, si.capacity);
        }
out:
        if (svol)
                (void)virStorageVolFree(svol);
        if (dvol)
                (void)virStorageVolFree(dvol);
        if (spool)
                (void)virStoragePoolFree(spool);
        if (dpool)
                (void)virStoragePoolFree(dpool);
        return r;
}

/* After the job: the downtime libvirt measured. The source's domain is gone (undefined with
 * the migration), but the destination's libvirtd keeps the completed job's statistics that
 * came with the migration cookie (virDomainGetJobStats with VIR_DOMAIN_JOB_STATS_COMPLETED,
 * as `virsh domjobinfo --completed` there; kept there for the operator: a plain read discards
 * them). Unknown when it cannot be read: only logged. */
static void completed_downtime(struct migration *m)
{
        virConnectPtr dconn = virConnectOpen(m->req.dest_uri);
        virDomainPtr dom = dconn ? virDomainLookupByName(dconn, m->req.domain_name) : NULL;
        virTypedParameterPtr params = NULL;
        int nparams = 0, type;
        unsigned long long v;
        virErrorPtr e;

        if (!dconn || !dom) {
                e = virGetLastError();
                log_warn("migration of %s: cannot read the downtime on the destination: %s", m->req.instance_uuid,
                         e && e->message ? e->message : "unknown libvirt error");
                goto out;
        }
        virResetLastError();
        if (virDomainGetJobStats(dom, &type, &params, &nparams,
                                 VIR_DOMAIN_JOB_STATS_COMPLETED | VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) == 0 &&
            virTypedParamsGetULLong(params, nparams, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1) {
                m->downtime_ms = v;
                m->downtime_known = true;
        } else {
                e = virGetLastError();
                log_warn("migration of %s: the destination did not report the downtime: %s", m->req.instance_uuid,
                         e && e->message ? e->message : "no downtime in its completed-job statistics");
        }
out:
        virTypedParamsFree(params, nparams);
        if (dom)
                (void)virDomainFree(dom);
        if (dconn)
                (void)virConnectClose(dconn);
}

/* Everything the job does, on the thread: 0 or -errno with m->err. */
static int migration_run(struct migration *m)
{
        const unsigned int flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
                                   VIR_MIGRATE_UNDEFINE_SOURCE | VIR_MIGRATE_NON_SHARED_INC;
        virConnectPtr conn = NULL, dconn = NULL;
        virDomainPtr dom = NULL;
        virTypedParameterPtr params = NULL;
        int nparams = 0, maxparams = 0;
        char dst_dir[MIGRATE_DIR_MAX], data_uri[64];
        char *xml = NULL, *dest_xml = NULL;
        int r;

        conn = virConnectOpen(m->req.src_uri);
        if (!conn) {
                thread_error(m, -ENOTCONN, "libvirt here is unreachable");
                goto out;
        }
        dconn = virConnectOpen(m->req.dest_uri);
        if (!dconn) {
                thread_error(m, -ENOTCONN, "the destination's libvirt is unreachable");
                goto out;
        }
        if (dest_pool_dir(m, dconn, dst_dir) < 0 || match_root_capacity(m, conn, dconn) < 0)
                goto out;
        (void)virConnectClose(dconn);
        dconn = NULL;
        dom = virDomainLookupByName(conn, m->req.domain_name);
        if (!dom) {
                thread_error(m, -ENOENT, "cannot look up the domain");
                goto out;
        }
        xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_MIGRATABLE | VIR_DOMAIN_XML_SECURE);
        if (!xml) {
                thread_error(m, -EIO, "cannot read the domain's migratable XML");
                goto out;
        }
        r = migrate_rewrite_dirs(xml, m->req.src_pool_dir, dst_dir, &dest_xml, &m->paths_moved);
        if (r < 0) {
                m->status = r;
                proto_text_printf(m->err, sizeof(m->err), "cannot move the domain's paths from %s to the destination's %s",
                                  m->req.src_pool_dir, dst_dir);
                goto out;
        }
        (void)snprintf(data_uri, sizeof(data_uri), strchr(m->req.migrate_host, ':') ? "tcp://[%s]" : "tcp://%s",
                       m->req.migrate_host);
        if (virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_URI, data_uri) < 0 ||
            virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_DEST_XML, dest_xml) < 0 ||
            virTypedParamsAddString(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_PERSIST_XML, dest_xml) < 0 ||
            (m->req.bandwidth_mib &&
             virTypedParamsAddULLong(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_BANDWIDTH, m->req.bandwidth_mib) < 0)) {
                m->status = -ENOMEM;
                proto_text_printf(m->err, sizeof(m->err), "out of memory");
                goto out;
        }
        if (virDomainMigrateToURI3(dom, m->req.dest_uri, params, (unsigned int)nparams, flags) < 0) {
                virErrorPtr e = virGetLastError();
                thread_error(m, e && e->code == VIR_ERR_OPERATION_ABORTED ? -ECANCELED : -EIO, "libvirt's migration failed");
                goto out;
        }
        m->status = 0;
        completed_downtime(m);
out:
        virTypedParamsFree(params, nparams);
        free(xml);
        free(dest_xml);
        if (dom)
                (void)virDomainFree(dom);
        if (dconn)
                (void)virConnectClose(dconn);
        if (conn)
                (void)virConnectClose(conn);
        return m->status;
}

static void on_thread_done(int timer, void *opaque);

static void *migration_thread(void *opaque)
{
        struct migration *m = opaque;

        (void)migration_run(m);
        if (virEventAddTimeout(0, on_thread_done, m, NULL) < 0)
                log_err("migration of %s: cannot signal its end; the request stays unanswered", m->req.instance_uuid);
        return NULL;
}

static void stop_timers(struct migration *m)
{
        if (m->sample_timer >= 0)
                (void)virEventRemoveTimeout(m->sample_timer);
        if (m->deadline_timer >= 0)
                (void)virEventRemoveTimeout(m->deadline_timer);
        m->sample_timer = m->deadline_timer = -1;
}

static void on_thread_done(int timer, void *opaque)
{
        struct migration *m = opaque;

        (void)virEventRemoveTimeout(timer);
        (void)pthread_join(m->thread, NULL);
        m->thread_started = false;
        stop_timers(m);
        m->active = false;
        m->ended_usec = now_usec();
        m->progress.downtime_ms = m->downtime_ms;
        m->progress.downtime_known = m->downtime_known;
        if (m->status < 0 && m->timed_out) {
                m->status = -ETIMEDOUT;
                proto_text_printf(m->err, sizeof(m->err), "the migration ran longer than %llu s and was aborted; the guest runs here",
                                  (unsigned long long)m->req.timeout_s);
        } else if (m->status < 0 && m->cancelled) {
                m->status = -ECANCELED;
                proto_text_printf(m->err, sizeof(m->err), "the migration was aborted (migrate_abort); the guest runs here");
        }
        m->done(m, m->opaque);
}

/* The domain on the event loop's connection, or NULL. */
static virDomainPtr loop_domain(struct migration *m)
{
        virConnectPtr conn = *m->conn_ref;

        return conn ? virDomainLookupByName(conn, m->req.domain_name) : NULL;
}

static void sample(struct migration *m)
{
        virDomainPtr dom = loop_domain(m);
        virTypedParameterPtr params = NULL;
        int nparams = 0, type;
        unsigned long long v;
        struct migrate_progress *p = &m->progress;

        if (!dom)
                return;
        if (virDomainGetJobStats(dom, &type, &params, &nparams, 0) == 0 && type != VIR_DOMAIN_JOB_NONE) {
#define GET(key, field) \
                if (virTypedParamsGetULLong(params, nparams, key, &v) == 1) \
                        p->field = v
                GET(VIR_DOMAIN_JOB_DATA_TOTAL, data_total);
                GET(VIR_DOMAIN_JOB_DATA_PROCESSED, data_processed);
                GET(VIR_DOMAIN_JOB_DATA_REMAINING, data_remaining);
                GET(VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, memory_dirty_rate);
                GET(VIR_DOMAIN_JOB_MEMORY_ITERATION, memory_iteration);
                GET(VIR_DOMAIN_JOB_DISK_TOTAL, disk_total);
                GET(VIR_DOMAIN_JOB_DISK_PROCESSED, disk_processed);
#undef GET
                p->samples++;
                if (p->samples % 4 == 1)
                        log_info("migration of %s: %llu of %llu bytes processed, %llu remaining, dirty rate %llu pages/s, "
                                 "memory iteration %llu, disk %llu/%llu",
                                 m->req.instance_uuid, (unsigned long long)p->data_processed,
                                 (unsigned long long)p->data_total, (unsigned long long)p->data_remaining,
                                 (unsigned long long)p->memory_dirty_rate, (unsigned long long)p->memory_iteration,
                                 (unsigned long long)p->disk_processed, (unsigned long long)p->disk_total);
        }
        virTypedParamsFree(params, nparams);
        (void)virDomainFree(dom);
}

static void on_sample(int timer, void *opaque)
{
        (void)timer;
        sample(opaque);
}

static void on_deadline(int timer, void *opaque)
{
        struct migration *m = opaque;
        char err[256];

        (void)virEventRemoveTimeout(timer);
        m->deadline_timer = -1;
        m->timed_out = true;
        log_warn("migration of %s: still running after %llu s; aborting it", m->req.instance_uuid,
                 (unsigned long long)m->req.timeout_s);
        if (migration_abort(m, err, sizeof(err)) < 0)
                log_err("migration of %s: %s", m->req.instance_uuid, err);
        m->cancelled = false; /* a timeout, not an operator's abort */
}

int migration_start(const struct migrate_request *req, virConnectPtr *conn_ref, migration_done_fn done, void *opaque,
                    struct migration **ret)
{
        struct migration *m = calloc(1, sizeof(*m));
        int r;

        if (!m)
                return -ENOMEM;
        m->req = *req;
        m->conn_ref = conn_ref;
        m->done = done;
        m->opaque = opaque;
        m->sample_timer = m->deadline_timer = -1;
        m->started_usec = now_usec();
        m->active = true;
        m->sample_timer = virEventAddTimeout(MIGRATE_SAMPLE_MS, on_sample, m, NULL);
        m->deadline_timer = virEventAddTimeout((int)(req->timeout_s * 1000), on_deadline, m, NULL);
        if (m->sample_timer < 0 || m->deadline_timer < 0) {
                stop_timers(m);
                free(m);
                return -ENOMEM;
        }
        r = pthread_create(&m->thread, NULL, migration_thread, m);
        if (r != 0) {
                stop_timers(m);
                free(m);
                return -r;
        }
        m->thread_started = true;
        *ret = m;
        return 0;
}

const char *migration_instance(const struct migration *m) { return m->req.instance_uuid; }
bool migration_active(const struct migration *m) { return m->active; }
const struct migrate_progress *migration_progress(const struct migration *m) { return &m->progress; }
size_t migration_paths_moved(const struct migration *m) { return m->paths_moved; }

int migration_status(const struct migration *m, const char **ret_err)
{
        if (ret_err)
                *ret_err = m->err;
        return m->status;
}

uint64_t migration_elapsed_ms(const struct migration *m)
{
        return ((m->active ? now_usec() : m->ended_usec) - m->started_usec) / 1000;
}

int migration_abort(struct migration *m, char *err, size_t errlen)
{
        virDomainPtr dom;
        virErrorPtr e;

        if (!m->active) {
                proto_text_printf(err, errlen, "the migration of %s has ended already", m->req.instance_uuid);
                return -ENOENT;
        }
        dom = loop_domain(m);
        if (!dom) {
                e = virGetLastError();
                proto_text_printf(err, errlen, "cannot look up the domain to abort its job: %s",
                                  e && e->message ? e->message : "libvirt is unreachable");
                return -EIO;
        }
        m->cancelled = true;
        if (virDomainAbortJob(dom) < 0) {
                e = virGetLastError();
                proto_text_printf(err, errlen, "libvirt did not abort the job: %s",
                                  e && e->message ? e->message : "unknown libvirt error");
                (void)virDomainFree(dom);
                return -EIO;
        }
        (void)virDomainFree(dom);
        return 0;
}

void migration_free(struct migration *m)
{
        if (!m)
                return;
        stop_timers(m);
        if (m->thread_started)
                (void)pthread_join(m->thread, NULL);
        free(m);
}
