/* libvirt-floor.c - bench/boot-full's libvirtd floor for deletes: what libvirtd itself takes to
 * destroy and undefine N running domains of its test driver for a plain client keeping K calls
 * sequences in flight (K threads on one connection, as the core keeps K deletes in flight).
 *
 *   libvirt-floor URI N K
 *
 * Two rounds, each on N domains of its own that it defines and starts first (not timed; names
 * "floor-<6 digits>", so nothing of ours and no domain of another client is touched):
 *   minimal  virDomainDestroy + virDomainUndefine on handles looked up beforehand (2 calls a
 *            domain): libvirtd's own cost, the floor;
 *   module   the calls the libvirt module makes for a delete (domain_destroy: look up, read the
 *            mark, destroy, state, info; domain_undefine: look up, mark, is-active, undefine: 9):
 *            what the module's sequence costs when nothing else stands in its way.
 * Prints "floor <round> n=N k=K total_s=S median_ms=M" per round. Exit status 1 when a call fails. */
#include "util.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64
#define MARK_URI "urn:nova-hypervisor:instance:1"

static virConnectPtr conn;
static virDomainPtr *doms;
static double *lat_ms;
static uint32_t n_doms;
static atomic_uint next_dom;
static atomic_bool failed;
static bool module_calls;

static double now_s(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void quiet(void *userdata, virErrorPtr e)
{
        (void)userdata;
        (void)e;
}

static void call_failed(const char *what, unsigned i)
{
        virErrorPtr e = virGetLastError();

        fprintf(stderr, "libvirt-floor: %s of floor-%06u: %s\n", what, i, e && e->message ? e->message : "failed");
        atomic_store(&failed, true);
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

/* The module's domain_destroy then domain_undefine of domain i (interfaces/libvirt/libvirt.c:
 * lookup_ours, the destroy, reply_one; lookup_ours, virDomainIsActive, the undefine). */
static void module_sequence(unsigned i)
{
        char name[32];
        virDomainInfo info;
        int state, reason;
        virDomainPtr d;
        char *mark;

        (void)snprintf(name, sizeof(name), "floor-%06u", i);
        d = virDomainLookupByName(conn, name);
        if (!d)
                return call_failed("lookup", i);
        mark = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, MARK_URI, 0);
        free(mark); /* the floor's domains carry no mark: the call's cost is what counts */
        if (virDomainDestroy(d) < 0)
                call_failed("destroy", i);
        if (virDomainGetState(d, &state, &reason, 0) < 0 || virDomainGetInfo(d, &info) < 0)
                call_failed("state", i);
        (void)virDomainFree(d);
        d = virDomainLookupByName(conn, name);
        if (!d)
                return call_failed("lookup", i);
        mark = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, MARK_URI, 0);
        free(mark);
        if (virDomainIsActive(d) != 0)
                call_failed("is-active", i);
        if (virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) < 0)
                call_failed("undefine", i);
        (void)virDomainFree(d);
}

static void *delete_worker(void *unused)
{
        (void)unused;
        virSetErrorFunc(NULL, quiet);
        for (unsigned i; (i = atomic_fetch_add(&next_dom, 1)) < n_doms;) {
                double t0 = now_s();

                if (module_calls) {
                        module_sequence(i);
                } else {
                        if (virDomainDestroy(doms[i]) < 0)
                                call_failed("destroy", i);
                        if (virDomainUndefine(doms[i]) < 0)
                                call_failed("undefine", i);
                }
                lat_ms[i] = (now_s() - t0) * 1000.0;
        }
        return NULL;
}

static void *create_worker(void *unused)
{
        (void)unused;
        virSetErrorFunc(NULL, quiet);
        for (unsigned i; (i = atomic_fetch_add(&next_dom, 1)) < n_doms;) {
                char xml[512];

                (void)snprintf(xml, sizeof(xml),
                               "<domain type='test'><name>floor-%06u</name><memory unit='MiB'>64</memory>"
                               "<vcpu>1</vcpu><os><type>hvm</type></os></domain>",
                               i);
                doms[i] = virDomainDefineXML(conn, xml);
                if (!doms[i] || virDomainCreate(doms[i]) < 0)
                        call_failed("define and start", i);
        }
        return NULL;
}

/* fn on k threads over the n domains; seconds of wall time. */
static double run_threads(void *(*fn)(void *), unsigned k)
{
        pthread_t t[MAX_THREADS];
        unsigned started = 0;
        double t0 = now_s();

        atomic_store(&next_dom, 0);
        while (started < k && pthread_create(&t[started], NULL, fn, NULL) == 0)
                started++;
        if (started == 0)
                (void)fn(NULL);
        for (unsigned i = 0; i < started; i++)
                (void)pthread_join(t[i], NULL);
        return now_s() - t0;
}

int main(int argc, char **argv)
{
        static const char *const rounds[] = { "minimal", "module" };
        uint32_t k;

        if (argc != 4 || parse_u32(argv[2], 1, 100000, &n_doms) < 0 || parse_u32(argv[3], 1, MAX_THREADS, &k) < 0) {
                fprintf(stderr, "usage: libvirt-floor URI N K (N 1..100000 domains, K 1..%d in flight)\n", MAX_THREADS);
                return 2;
        }
        virSetErrorFunc(NULL, quiet);
        if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
                fprintf(stderr, "libvirt-floor: cannot initialise libvirt\n");
                return 1;
        }
        conn = virConnectOpen(argv[1]);
        doms = calloc(n_doms, sizeof(*doms));
        lat_ms = calloc(n_doms, sizeof(*lat_ms));
        if (!conn || !doms || !lat_ms) {
                fprintf(stderr, "libvirt-floor: cannot connect to %s\n", argv[1]);
                return 1;
        }
        for (int r = 0; r < 2 && !atomic_load(&failed); r++) {
                double total;

                module_calls = r == 1;
                (void)run_threads(create_worker, k);
                if (atomic_load(&failed))
                        break;
                total = run_threads(delete_worker, k);
                qsort(lat_ms, n_doms, sizeof(*lat_ms), cmp_double);
                printf("floor %s n=%u k=%u total_s=%.3f median_ms=%.2f\n", rounds[r], n_doms, k, total,
                       lat_ms[n_doms / 2]);
                for (unsigned i = 0; i < n_doms; i++)
                        if (doms[i])
                                (void)virDomainFree(doms[i]);
                memset(doms, 0, n_doms * sizeof(*doms));
        }
        (void)virConnectClose(conn);
        free(doms);
        free(lat_ms);
        return atomic_load(&failed) ? 1 : 0;
}
