/* vif-floor.c - the floor of bench/vif-plug: how long ovs-vswitchd itself takes
 * from an OVSDB commit to the ofport, seen by the smallest possible client.
 * No module, no protocol: one libopenvswitch IDL (the same tables and columns
 * nova-openvswitch replicates), transactions that write exactly what its
 * port_add writes (Interface name, external_ids, mtu_request; Port name,
 * interfaces, external_ids mark; Bridge.ports mutated), then the IDL is run
 * until every inserted Interface has ofport > 0.
 *
 *   vif-floor DB_SOCKET UUID_FILE [N [PHASES]]
 *
 * DB_SOCKET: unix:/path; N: ports of the bulk phases (default 1000); PHASES:
 * single, bulk (sequential, then batched), batched (only that) or all (default).
 *
 * UUID_FILE holds port UUIDs, one a line; port i is "tap" + the first 11
 * chars of line i, a tap that must exist in ovs-vswitchd's namespace.
 * Environment: REPS (default 20): rounds of the single-port phase (after 2
 * warm-up rounds).
 * Between measurements the program waits until ovs-vswitchd has applied every
 * change so far (so a deletion does not land in the next measurement): it runs
 * `ovs-vsctl set Open_vSwitch . external_ids:vif-bench-sync=K`, which returns
 * once ovs-vswitchd reached the new next_cfg (vif-plug-client does the same).
 * Prints (one line each):
 *   floor single reps=20 per_port_ms_median=X min=.. p10=.. p25=.. p75=.. p90=.. max=.. cpu_ms_per_port=C
 *   floor single samples_ms=A,B,... (sorted)
 *   floor sequential n=N total_s=X per_port_ms=Y cpu_ms_per_port=C
 *   floor batched n=N batch=200 total_s=X per_port_ms=Y cpu_ms_per_port=C batch_s=A,B,... */

/* OVS's build configuration precedes every OVS header (as in openvswitch.c). */
#include <openvswitch/../../config.h>
#ifndef PACKAGE_NAME
#error "OVS's config.h was not found"
#endif

#include "openvswitch/poll-loop.h"
#include "openvswitch/util.h"
#include "openvswitch/vlog.h"
#include "ovsdb-idl.h"
#include "smap.h"
#include "timeval.h"
#include "uuid.h"
#include "vswitch-idl.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define BRIDGE "br-int"
#define MARK_KEY "nova-hypervisor-port" /* OVS_MARK_KEY of ovs-protocol.h */
#define INSTANCE_UUID "0b5e1d4c-7a2f-4c3e-9d8b-5f6a7e8c9d01"
#define MTU 1500
#define BATCH 200          /* OVS_MAX_BATCH */
#define SINGLE_REPS 20     /* default of REPS */
#define MAX_REPS 1000
#define WARMUP_REPS 2
#define MAX_PORTS 4000
#define WAIT_MS 120000     /* any single wait */
#ifndef SETTLE_MS
#define SETTLE_MS 100      /* after ovs-vswitchd caught up: its follow-up work (~100 ms) */
#endif

struct port {
        char uuid[37];
        char name[16];
        char mac[18];
        struct uuid iface_row, port_row; /* real row UUIDs once committed */
        bool live;
};

static struct ovsdb_idl *idl;
static struct port ports[MAX_PORTS];
static size_t n_ports;
static const char *db_remote;
static unsigned sync_count;

OVS_NO_RETURN static void die(const char *fmt, ...) OVS_PRINTF_FORMAT(1, 2);
static void die(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "vif-floor: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

static double now_s(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void load_uuids(const char *path, size_t want)
{
        char line[128];
        FILE *f = fopen(path, "r");

        if (!f)
                die("%s: %s", path, strerror(errno));
        while (n_ports < want && fgets(line, sizeof(line), f)) {
                struct port *p = &ports[n_ports];

                line[strcspn(line, "\r\n")] = '\0';
                if (strlen(line) != 36)
                        die("%s: line %zu is not a UUID", path, n_ports + 1);
                memcpy(p->uuid, line, 37);
                snprintf(p->name, sizeof(p->name), "tap%.11s", line);
                snprintf(p->mac, sizeof(p->mac), "fa:16:3e:%02x:%02x:%02x", (unsigned)(n_ports >> 16) & 0xff,
                         (unsigned)(n_ports >> 8) & 0xff, (unsigned)n_ports & 0xff);
                n_ports++;
        }
        fclose(f);
        if (n_ports < want)
                die("%s: %zu UUIDs, need %zu", path, n_ports, want);
}

static const struct ovsrec_bridge *bridge_find(void)
{
        const struct ovsrec_bridge *br;

        OVSREC_BRIDGE_FOR_EACH (br, idl)
                if (br->name && !strcmp(br->name, BRIDGE))
                        return br;
        return NULL;
}

/* Run the IDL until cond() holds; die after WAIT_MS. */
static void run_until(bool (*cond)(void *), void *arg, const char *what)
{
        long long deadline = time_msec() + WAIT_MS;

        for (;;) {
                ovsdb_idl_run(idl);
                if (cond(arg))
                        return;
                if (time_msec() >= deadline)
                        die("timed out waiting for %s", what);
                ovsdb_idl_wait(idl);
                poll_timer_wait_until(deadline);
                poll_block();
        }
}

/* Keep the replica current for ms milliseconds. */
static void run_for(long long ms)
{
        long long until = time_msec() + ms;

        while (time_msec() < until) {
                ovsdb_idl_run(idl);
                ovsdb_idl_wait(idl);
                poll_timer_wait_until(until);
                poll_block();
        }
}

/* Start `ovs-vsctl set Open_vSwitch . external_ids:vif-bench-sync=K` (waits for ovs-vswitchd). */
static pid_t sync_start(void)
{
        char db[512], val[64];
        pid_t pid;

        snprintf(db, sizeof(db), "--db=%s", db_remote);
        snprintf(val, sizeof(val), "external_ids:vif-bench-sync=%d-%u", (int)getpid(), ++sync_count);
        pid = fork();
        if (pid < 0)
                die("fork: %s", strerror(errno));
        if (pid == 0) {
                execlp("ovs-vsctl", "ovs-vsctl", db, "--timeout=120", "set", "Open_vSwitch", ".", val, (char *)NULL);
                _exit(127);
        }
        return pid;
}

/* Between measurements: until ovs-vswitchd applied every change so far, then
 * SETTLE_MS more; the replica is kept current meanwhile, so that no update of
 * the previous step is processed inside the next measurement. ovs-vsctl runs
 * twice, because ovs-vswitchd reports cur_cfg before it has finished removing
 * ports from the datapath (~12 ms a port), and the second change waits for that. */
static void settle(void)
{
        for (int i = 0; i < 2; i++) {
                pid_t pid = sync_start();
                int status;

                for (;;) {
                        pid_t r;

                        ovsdb_idl_run(idl);
                        r = waitpid(pid, &status, WNOHANG);
                        if (r == pid)
                                break;
                        if (r < 0 && errno != EINTR)
                                die("waitpid: %s", strerror(errno));
                        ovsdb_idl_wait(idl);
                        poll_timer_wait(5);
                        poll_block();
                }
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        die("ovs-vsctl (waiting for ovs-vswitchd) failed with status 0x%x", status);
        }
        run_for(SETTLE_MS);
}

struct range {
        size_t first, n;
};

static bool ofports_ready(void *arg)
{
        const struct range *r = arg;

        for (size_t k = r->first; k < r->first + r->n; k++) {
                const struct ovsrec_interface *i = ovsrec_interface_get_for_uuid(idl, &ports[k].iface_row);

                if (!i)
                        return false;
                if (i->error && i->error[0])
                        die("ovs-vswitchd cannot add %s: %s", ports[k].name, i->error);
                if (!i->n_ofport || i->ofport[0] <= 0)
                        return false;
        }
        return true;
}

static bool ports_gone(void *arg)
{
        const struct range *r = arg;

        for (size_t k = r->first; k < r->first + r->n; k++)
                if (ovsrec_port_get_for_uuid(idl, &ports[k].port_row))
                        return false;
        return true;
}

static bool replica_ready(void *arg OVS_UNUSED)
{
        return ovsdb_idl_has_ever_connected(idl) && bridge_find();
}

/* One transaction inserting ports [first, first+n) on the bridge; returns the
 * seconds from the start of the commit until every one of them has an ofport. */
static double add_ports(size_t first, size_t n)
{
        const struct ovsrec_bridge *br = bridge_find();
        struct ovsrec_interface *ni[BATCH];
        struct ovsrec_port *np[BATCH];
        struct uuid ni_tmp[BATCH], np_tmp[BATCH]; /* the rows are freed by the commit */
        struct range r = { first, n };
        struct ovsdb_idl_txn *txn;
        enum ovsdb_idl_txn_status st;
        double t0;

        if (!br)
                die("bridge %s vanished", BRIDGE);
        if (n > BATCH)
                die("batch too large");
        t0 = now_s();
        txn = ovsdb_idl_txn_create(idl);
        ovsdb_idl_txn_add_comment(txn, "vif-floor: add %s +%zu", ports[first].name, n - 1);
        for (size_t k = 0; k < n; k++) {
                const struct port *p = &ports[first + k];
                struct smap ids = SMAP_INITIALIZER(&ids), mark = SMAP_INITIALIZER(&mark);
                int64_t mtu = MTU;

                smap_add(&ids, "iface-id", p->uuid);
                smap_add(&ids, "attached-mac", p->mac);
                smap_add(&ids, "iface-status", "active");
                smap_add(&ids, "vm-uuid", INSTANCE_UUID);
                smap_add(&ids, "vm-id", INSTANCE_UUID);
                smap_add(&ids, MARK_KEY, p->uuid);
                smap_add(&mark, MARK_KEY, p->uuid);
                ni[k] = ovsrec_interface_insert(txn);
                np[k] = ovsrec_port_insert(txn);
                ovsrec_interface_set_name(ni[k], p->name);
                ovsrec_interface_set_external_ids(ni[k], &ids);
                ovsrec_interface_set_mtu_request(ni[k], &mtu, 1);
                ovsrec_port_set_name(np[k], p->name);
                ovsrec_port_set_interfaces(np[k], &ni[k], 1);
                ovsrec_port_set_external_ids(np[k], &mark);
                ovsrec_bridge_update_ports_addvalue(br, np[k]);
                ni_tmp[k] = ni[k]->header_.uuid;
                np_tmp[k] = np[k]->header_.uuid;
                smap_destroy(&ids);
                smap_destroy(&mark);
        }
        st = ovsdb_idl_txn_commit_block(txn);
        if (st != TXN_SUCCESS)
                die("add %s: %s (%s)", ports[first].name, ovsdb_idl_txn_status_to_string(st),
                    ovsdb_idl_txn_get_error(txn));
        for (size_t k = 0; k < n; k++) {
                const struct uuid *iu = ovsdb_idl_txn_get_insert_uuid(txn, &ni_tmp[k]);
                const struct uuid *pu = ovsdb_idl_txn_get_insert_uuid(txn, &np_tmp[k]);

                if (!iu || !pu)
                        die("add %s: no row UUID after the commit", ports[first + k].name);
                ports[first + k].iface_row = *iu;
                ports[first + k].port_row = *pu;
                ports[first + k].live = true;
        }
        ovsdb_idl_txn_destroy(txn);
        run_until(ofports_ready, &r, "ofports");
        return now_s() - t0;
}

/* Remove ports [first, first+n) in one transaction (not timed). */
static void del_ports(size_t first, size_t n)
{
        const struct ovsrec_bridge *br = bridge_find();
        struct range r = { first, n };
        struct ovsdb_idl_txn *txn;
        enum ovsdb_idl_txn_status st;

        if (!br)
                die("bridge %s vanished", BRIDGE);
        txn = ovsdb_idl_txn_create(idl);
        ovsdb_idl_txn_add_comment(txn, "vif-floor: delete %zu", n);
        for (size_t k = first; k < first + n; k++) {
                const struct ovsrec_port *p = ovsrec_port_get_for_uuid(idl, &ports[k].port_row);

                if (!p)
                        die("delete: %s is not in the replica", ports[k].name);
                ovsrec_bridge_update_ports_delvalue(br, p);
                ports[k].live = false;
        }
        st = ovsdb_idl_txn_commit_block(txn);
        if (st != TXN_SUCCESS)
                die("delete: %s (%s)", ovsdb_idl_txn_status_to_string(st), ovsdb_idl_txn_get_error(txn));
        ovsdb_idl_txn_destroy(txn);
        run_until(ports_gone, &r, "the deletion");
}

/* Ports on the bridge carrying the mark (every one of this program's). */
static size_t count_marked(void)
{
        const struct ovsrec_bridge *br = bridge_find();
        size_t n = 0;

        for (size_t k = 0; br && k < br->n_ports; k++)
                if (smap_get(&br->ports[k]->external_ids, MARK_KEY))
                        n++;
        return n;
}

/* CPU time of every thread of pid so far, in ms (schedstat: ns on a CPU). */
static double cpu_ms(pid_t pid)
{
        char path[96];
        struct dirent *e;
        double ms = 0;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        d = opendir(path);
        if (!d)
                return 0;
        while ((e = readdir(d))) {
                unsigned long long ns;
                FILE *f;

                if (e->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", (int)pid, e->d_name);
                f = fopen(path, "r");
                if (!f)
                        continue;
                if (fscanf(f, "%llu", &ns) == 1)
                        ms += (double)ns / 1e6;
                fclose(f);
        }
        closedir(d);
        return ms;
}

static double cpu_now(void) { return cpu_ms(getpid()); }

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

static void monitor_columns(void)
{
        /* The set nova-openvswitch replicates (monitor_columns() there). */
        static const struct ovsdb_idl_column *const cols[] = {
                &ovsrec_open_vswitch_col_bridges,  &ovsrec_bridge_col_name,
                &ovsrec_bridge_col_ports,          &ovsrec_port_col_name,
                &ovsrec_port_col_interfaces,       &ovsrec_port_col_external_ids,
                &ovsrec_interface_col_name,        &ovsrec_interface_col_type,
                &ovsrec_interface_col_external_ids, &ovsrec_interface_col_ofport,
                &ovsrec_interface_col_error,       &ovsrec_interface_col_mtu_request,
                &ovsrec_interface_col_link_state,
        };

        ovsdb_idl_add_table(idl, &ovsrec_table_open_vswitch);
        ovsdb_idl_add_table(idl, &ovsrec_table_bridge);
        ovsdb_idl_add_table(idl, &ovsrec_table_port);
        ovsdb_idl_add_table(idl, &ovsrec_table_interface);
        for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
                ovsdb_idl_add_column(idl, cols[i]);
}

int main(int argc, char **argv)
{
        double single[MAX_REPS], batch_s[MAX_PORTS / BATCH + 1], t, seq_s, many_s;
        size_t n = 1000, nb = 0;
        double c0, cpu_single = 0, cpu_seq = 0, cpu_many = 0;
        bool do_single = true, do_bulk = true, do_seq = true;
        const char *reps_env = getenv("REPS");
        int reps = SINGLE_REPS;

        if (argc < 3 || argc > 5)
                die("usage: %s unix:DB_SOCKET UUID_FILE [N]", argv[0]);
        if (argc >= 4) {
                char *end;
                n = strtoul(argv[3], &end, 10);
                if (*end || n == 0 || n > MAX_PORTS)
                        die("N must be 1..%d", MAX_PORTS);
        }
        if (argc == 5) {
                do_single = !strcmp(argv[4], "single") || !strcmp(argv[4], "all");
                do_bulk = !strcmp(argv[4], "bulk") || !strcmp(argv[4], "all") || !strcmp(argv[4], "batched");
                do_seq = strcmp(argv[4], "batched") != 0;
                if (!do_single && !do_bulk)
                        die("PHASES is single, bulk, batched or all");
        }
        if (reps_env && *reps_env) {
                char *end;
                reps = (int)strtol(reps_env, &end, 10);
                if (*end || reps < 1 || reps > MAX_REPS)
                        die("REPS must be 1..%d", MAX_REPS);
        }
        db_remote = argv[1];
        load_uuids(argv[2], n);

        set_program_name("vif-floor");
        vlog_set_levels(NULL, VLF_ANY_DESTINATION, VLL_ERR);
        idl = ovsdb_idl_create(argv[1], &ovsrec_idl_class, false, true);
        monitor_columns();
        run_until(replica_ready, NULL, "the replica with bridge " BRIDGE);
        if (count_marked() != 0)
                die("bridge %s already has %zu marked ports", BRIDGE, count_marked());

        /* One port at a time: median of SINGLE_REPS adds, deleted in between. */
        for (int i = -WARMUP_REPS; do_single && i < reps; i++) {
                c0 = cpu_now();
                t = add_ports(0, 1);
                if (i >= 0) {
                        single[i] = t;
                        cpu_single += cpu_now() - c0;
                }
                del_ports(0, 1);
                settle();
        }
        if (do_single) {
                qsort(single, (size_t)reps, sizeof(double), cmp_double);
                printf("floor single reps=%d per_port_ms_median=%.3f min=%.3f p10=%.3f p25=%.3f p75=%.3f p90=%.3f max=%.3f "
                       "cpu_ms_per_port=%.3f\n",
                       reps, single[reps / 2] * 1e3, single[0] * 1e3, single[reps / 10] * 1e3, single[reps / 4] * 1e3,
                       single[reps * 3 / 4] * 1e3, single[reps * 9 / 10] * 1e3, single[reps - 1] * 1e3, cpu_single / reps);
                printf("floor single samples_ms=");
                for (int i = 0; i < reps; i++)
                        printf("%s%.3f", i ? "," : "", single[i] * 1e3);
                printf("\n");
                fflush(stdout);
        }
        if (!do_bulk)
                goto out;

        if (do_seq) {
                /* n ports, one transaction each, sequential. */
                c0 = cpu_now();
                t = now_s();
                for (size_t k = 0; k < n; k++)
                        (void)add_ports(k, 1);
                seq_s = now_s() - t;
                cpu_seq = cpu_now() - c0;
                if (count_marked() != n)
                        die("after the sequential adds: %zu marked ports, expected %zu", count_marked(), n);
                printf("floor sequential n=%zu total_s=%.3f per_port_ms=%.3f cpu_ms_per_port=%.3f\n", n, seq_s,
                       seq_s * 1e3 / (double)n, cpu_seq / (double)n);
                fflush(stdout);
                del_ports(0, n);
                settle();
        }

        /* n ports in transactions of BATCH. */
        c0 = cpu_now();
        t = now_s();
        for (size_t k = 0; k < n; k += BATCH)
                batch_s[nb++] = add_ports(k, n - k < BATCH ? n - k : BATCH);
        many_s = now_s() - t;
        cpu_many = cpu_now() - c0;
        if (count_marked() != n)
                die("after the batched adds: %zu marked ports, expected %zu", count_marked(), n);
        printf("floor batched n=%zu batch=%d total_s=%.3f per_port_ms=%.3f cpu_ms_per_port=%.3f batch_s=", n, BATCH,
               many_s, many_s * 1e3 / (double)n, cpu_many / (double)n);
        for (size_t b = 0; b < nb; b++)
                printf("%s%.3f", b ? "," : "", batch_s[b]);
        printf("\n");
        fflush(stdout);
        del_ports(0, n);
        settle(); /* ovs-vswitchd is restarted or stopped next: let it finish first */
out:
        if (count_marked() != 0)
                die("at the end: %zu marked ports left", count_marked());
        ovsdb_idl_destroy(idl);
        return 0;
}
