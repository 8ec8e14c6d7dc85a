/* vif-plug-client.c - VIF plug latency through our openvswitch module, measured
 * the way the core makes the calls: nova-openvswitch started on a
 * SOCK_SEQPACKET socketpair (`--fd 3 --config FILE`), its HELLO decoded, its
 * ovsdb_connection event awaited, then port_add / port_add_many requests built
 * with pw_*, sent, and their replies received and decoded with proto_decode().
 * A port_add reply comes once ovs-vswitchd has assigned the ofport, so a round
 * trip is request -> OVSDB commit -> ovs-vswitchd -> ofport -> reply.
 *
 *   vif-plug-client CONFIG UUID_FILE [N [PHASES]]
 *
 * N: ports of the bulk phases (default 1000); PHASES: single, bulk (sequential,
 * then batched), batched (only that) or all (default).
 *
 * CONFIG is the module's configuration (ovsdb_socket, integration_bridge,
 * port_timeout_ms); the bridge must exist. UUID_FILE holds port UUIDs, one a
 * line; the module plugs the existing tap "tap" + first 11 chars of each.
 * Environment: NOVA_BIN (default build/bin) is where nova-openvswitch is;
 * REPS (default 20): rounds of the single-port phase (after 2 warm-up rounds);
 * OVSDB (unix:/path of ovsdb-server, required): between measurements the
 * client waits until ovs-vswitchd has applied every change so far, with
 * `ovs-vsctl set Open_vSwitch . external_ids:vif-bench-sync=K` (as vif-floor.c).
 * Prints (one line each):
 *   ours single reps=20 per_port_ms_median=X min=.. p10=.. p25=.. p75=.. p90=.. max=.. cpu_ms_per_port=C
 *   ours single samples_ms=A,B,... (sorted)
 *   ours protocol_rtt n=200 median_us=X p90_us=Y  (port_list on the bridge: the round
 *       trip through the module without an OVS change; single phase only)
 *   ours sequential n=N total_s=X per_port_ms=Y cpu_ms_per_port=C
 *   ours batched n=N batch=200 total_s=X per_port_ms=Y cpu_ms_per_port=C batch_s=A,B,...
 *   ours cleanup deleted=D left=0 */
#include "benchlib.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#define PLUG_NAME "openvswitch"
#define INSTANCE_UUID "0b5e1d4c-7a2f-4c3e-9d8b-5f6a7e8c9d01" /* the same as vif-floor.c */
#define MTU 1500
#define BATCH 200           /* OVS_MAX_BATCH */
#define SINGLE_REPS 20     /* default of REPS */
#define MAX_REPS 1000
#define WARMUP_REPS 2
#define MAX_PORTS 4000
#define DEL_WINDOW 32       /* port_del requests in flight during the cleanup */
#define RTT_CALLS 200       /* port_list round trips of the protocol_rtt line */
#define WAIT_MS 120000      /* any single wait for the module */
#ifndef SETTLE_MS
#define SETTLE_MS 100       /* after ovs-vswitchd caught up: its follow-up work (~100 ms) */
#endif

struct port {
        char uuid[37];
        char mac[18];
};

static struct proto_writer writer;   /* 64 KiB: static, not on the stack */
static struct proto_msg rx;          /* ~170 KiB decode arena */
static uint32_t next_id;
static struct port ports[MAX_PORTS];
static size_t n_ports;
static const char *db_remote;
static unsigned sync_count;
static bool connected;

static void sleep_ms(long ms)
{
        struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

        while (nanosleep(&t, &t) < 0 && errno == EINTR)
                ;
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
                snprintf(p->mac, sizeof(p->mac), "fa:16:3e:%02x:%02x:%02x", (unsigned)(n_ports >> 16) & 0xff,
                         (unsigned)(n_ports >> 8) & 0xff, (unsigned)n_ports & 0xff);
                n_ports++;
        }
        fclose(f);
        if (n_ports < want)
                die("%s: %zu UUIDs, need %zu", path, n_ports, want);
}

/* The next reply (events noted on the way). */
static void recv_reply(int fd, const char *what)
{
        for (;;) {
                bench_recv_frame(fd, WAIT_MS, &rx, what);
                if (rx.type == PROTO_REPLY)
                        return;
                if (rx.type == PROTO_EVENT && streq(rx.name, "ovsdb_connection")) {
                        connected = proto_get_bool(rx.body, "connected", false);
                        if (!connected)
                                die("the module lost ovsdb-server: %s", proto_get_str(rx.body, "error", "?"));
                        continue;
                }
                if (rx.type != PROTO_EVENT)
                        die("%s: unexpected %s frame", what, proto_type_name(rx.type));
        }
}

static void check_hello(int fd, pid_t pid)
{
        static const char *const need[] = { "port_add", "port_add_many", "port_del", "port_list", NULL };

        bench_check_hello(fd, WAIT_MS, &rx, PLUG_NAME, pid, need);
        /* Then the module says when its replica of ovsdb-server is in sync. */
        while (!connected) {
                bench_recv_frame(fd, WAIT_MS, &rx, "ovsdb_connection");
                if (rx.type != PROTO_EVENT || !streq(rx.name, "ovsdb_connection"))
                        die("expected the ovsdb_connection event, got %s '%s'", proto_type_name(rx.type), rx.name);
                if (!proto_get_bool(rx.body, "connected", false))
                        die("the module cannot reach ovsdb-server: %s", proto_get_str(rx.body, "error", "?"));
                connected = true;
        }
}

static void port_fields(const struct port *p)
{
        pw_str(&writer, "port_uuid", p->uuid);
        pw_str(&writer, "instance_uuid", INSTANCE_UUID);
        pw_str(&writer, "mac", p->mac);
        pw_u64(&writer, "mtu", MTU);
}

/* Send the request in writer; its id. */
static uint32_t send_req(int fd, const char *entrypoint)
{
        const uint8_t *buf;
        size_t len;
        uint32_t id = ++next_id;

        pw_set_id(&writer, id);
        if (pw_finish(&writer, &buf, &len) < 0)
                die("%s: cannot build the request", entrypoint);
        if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
                die("send (%s): %s", entrypoint, strerror(errno));
        return id;
}

/* Send and wait for the reply to it; the reply's status (reply in rx). */
static int call(int fd, const char *entrypoint)
{
        uint32_t id = send_req(fd, entrypoint);

        recv_reply(fd, entrypoint);
        if (rx.id != id || !streq(rx.name, entrypoint))
                die("%s: expected reply %u, got %u '%s'", entrypoint, id, rx.id, rx.name);
        return rx.status;
}

static void check_port(const struct proto_value *port, const struct port *want, const char *what)
{
        const struct proto_value *of = proto_get(port, "ofport");

        if (!port || port->type != PV_OBJ)
                die("%s: reply without a port object", what);
        if (!streq(proto_get_str(port, "port_uuid", ""), want->uuid))
                die("%s: reply names port %s, expected %s", what, proto_get_str(port, "port_uuid", "?"), want->uuid);
        if (!of || of->type != PV_I64 || of->v.i <= 0)
                die("%s: port %s has no ofport in the reply", what, want->uuid);
}

/* port_add of port k; the seconds from building the request to its decoded reply. */
static double port_add(int fd, size_t k)
{
        double t0 = now_s();
        int st;

        pw_init(&writer, PROTO_REQUEST, 0, 0, "port_add");
        port_fields(&ports[k]);
        st = call(fd, "port_add");
        if (st != 0)
                die("port_add %s failed: %s (%s)", ports[k].uuid, strerror(-st), proto_get_str(rx.body, "error", "?"));
        check_port(proto_get(rx.body, "port"), &ports[k], "port_add");
        return now_s() - t0;
}

/* port_add_many of ports [first, first+n); seconds until the reply. */
static double port_add_many(int fd, size_t first, size_t n)
{
        const struct proto_value *list;
        const struct proto_value *it;
        double t0 = now_s();
        size_t k = first;
        int st;

        pw_init(&writer, PROTO_REQUEST, 0, 0, "port_add_many");
        pw_list_begin(&writer, "ports");
        for (size_t i = first; i < first + n; i++) {
                pw_obj_begin(&writer, NULL);
                port_fields(&ports[i]);
                pw_obj_end(&writer);
        }
        pw_list_end(&writer);
        st = call(fd, "port_add_many");
        if (st != 0)
                die("port_add_many of %zu failed: %s (%s)", n, strerror(-st), proto_get_str(rx.body, "error", "?"));
        list = proto_get(rx.body, "ports");
        if (!list || list->type != PV_LIST || list->count != n)
                die("port_add_many: reply with %u ports, expected %zu", list ? list->count : 0, n);
        for (it = list->child; it; it = it->next, k++)
                check_port(it, &ports[k], "port_add_many");
        return now_s() - t0;
}

static void port_del(int fd, size_t k)
{
        int st;

        pw_init(&writer, PROTO_REQUEST, 0, 0, "port_del");
        pw_str(&writer, "port_uuid", ports[k].uuid);
        st = call(fd, "port_del");
        if (st != 0)
                die("port_del %s failed: %s (%s)", ports[k].uuid, strerror(-st), proto_get_str(rx.body, "error", "?"));
}

/* port_del of ports [0, n), DEL_WINDOW in flight (not timed). */
static void port_del_all(int fd, size_t n)
{
        size_t sent = 0, done = 0;

        while (done < n) {
                while (sent < n && sent - done < DEL_WINDOW) {
                        pw_init(&writer, PROTO_REQUEST, 0, 0, "port_del");
                        pw_str(&writer, "port_uuid", ports[sent].uuid);
                        (void)send_req(fd, "port_del");
                        sent++;
                }
                recv_reply(fd, "port_del");
                if (!streq(rx.name, "port_del"))
                        die("port_del: got a reply to '%s'", rx.name);
                if (rx.status != 0)
                        die("port_del (request %u) failed: %s (%s)", rx.id, strerror(-rx.status),
                            proto_get_str(rx.body, "error", "?"));
                done++;
        }
}

/* Our ports on the bridge, by the module's port_list (total). */
static uint64_t port_count(int fd)
{
        int st;

        pw_init(&writer, PROTO_REQUEST, 0, 0, "port_list");
        st = call(fd, "port_list");
        if (st != 0)
                die("port_list failed: %s (%s)", strerror(-st), proto_get_str(rx.body, "error", "?"));
        return proto_get_u64(rx.body, "total", UINT64_MAX);
}

/* Between measurements: until ovs-vswitchd applied every change so far, then
 * SETTLE_MS more for the module to take in the last updates (as vif-floor.c).
 * ovs-vsctl returns once ovs-vswitchd reached the new next_cfg; it runs twice,
 * because ovs-vswitchd reports cur_cfg before it has finished removing ports
 * from the datapath (~12 ms a port), and the second change waits for that. */
static void settle(void)
{
        char db[512], val[64];
        int status;
        pid_t pid;

        snprintf(db, sizeof(db), "--db=%s", db_remote);
        for (int i = 0; i < 2; i++) {
                snprintf(val, sizeof(val), "external_ids:vif-bench-sync=%d-%u", (int)getpid(), ++sync_count);
                pid = fork();
                if (pid < 0)
                        die("fork: %s", strerror(errno));
                if (pid == 0) {
                        execlp("ovs-vsctl", "ovs-vsctl", db, "--timeout=120", "set", "Open_vSwitch", ".", val,
                               (char *)NULL);
                        _exit(127);
                }
                while (waitpid(pid, &status, 0) < 0)
                        if (errno != EINTR)
                                die("waitpid: %s", strerror(errno));
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        die("ovs-vsctl (waiting for ovs-vswitchd) failed with status 0x%x", status);
        }
        sleep_ms(SETTLE_MS);
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

static double cpu_now(void) { return cpu_ms(getpid()) + cpu_ms(bench_module_pid); }

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
        const char *bin = getenv("NOVA_BIN");
        double single[MAX_REPS], batch_s[MAX_PORTS / BATCH + 1], rtt[RTT_CALLS], t, seq_s, many_s;
        size_t n = 1000, nb = 0;
        double c0, cpu_single = 0, cpu_seq = 0, cpu_many = 0;
        bool do_single = true, do_bulk = true, do_seq = true;
        const char *reps_env = getenv("REPS");
        int reps = SINGLE_REPS;
        uint64_t c;
        int fd, status;

        bench_name = "vif-plug-client";
        if (argc < 3 || argc > 5)
                die("usage: %s CONFIG UUID_FILE [N]", argv[0]);
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
        if (!bin || !*bin)
                bin = "build/bin";
        db_remote = getenv("OVSDB");
        if (!db_remote || strncmp(db_remote, "unix:", 5) != 0)
                die("OVSDB=unix:/path of ovsdb-server is required (to wait for ovs-vswitchd between measurements)");
        load_uuids(argv[2], n);

        bench_module_start(bin, "nova-openvswitch", argv[1], NULL, &fd);
        check_hello(fd, bench_module_pid);
        c = port_count(fd);
        if (c != 0)
                die("the bridge already has %llu ports of ours", (unsigned long long)c);

        /* One port at a time: median of SINGLE_REPS round trips, port_del in between. */
        for (int i = -WARMUP_REPS; do_single && i < reps; i++) {
                c0 = cpu_now();
                t = port_add(fd, 0);
                if (i >= 0) {
                        single[i] = t;
                        cpu_single += cpu_now() - c0;
                }
                port_del(fd, 0);
                settle();
        }
        if (do_single) {
                qsort(single, (size_t)reps, sizeof(double), cmp_double);
                printf("ours single reps=%d per_port_ms_median=%.3f min=%.3f p10=%.3f p25=%.3f p75=%.3f p90=%.3f max=%.3f "
                       "cpu_ms_per_port=%.3f\n",
                       reps, single[reps / 2] * 1e3, single[0] * 1e3, single[reps / 10] * 1e3, single[reps / 4] * 1e3,
                       single[reps * 3 / 4] * 1e3, single[reps * 9 / 10] * 1e3, single[reps - 1] * 1e3, cpu_single / reps);
                printf("ours single samples_ms=");
                for (int i = 0; i < reps; i++)
                        printf("%s%.3f", i ? "," : "", single[i] * 1e3);
                printf("\n");

                /* What the module's hops cost by themselves: a read answered from its replica. */
                for (int i = 0; i < RTT_CALLS; i++) {
                        t = now_s();
                        if (port_count(fd) != 0)
                                die("port_list: the bridge has ports of ours after the single phase");
                        rtt[i] = now_s() - t;
                }
                qsort(rtt, RTT_CALLS, sizeof(double), cmp_double);
                printf("ours protocol_rtt n=%d median_us=%.1f p90_us=%.1f\n", RTT_CALLS, rtt[RTT_CALLS / 2] * 1e6,
                       rtt[RTT_CALLS * 9 / 10] * 1e6);
                fflush(stdout);
        }
        if (!do_bulk)
                goto out;

        if (do_seq) {
                /* n ports, one port_add each, sequential. */
                c0 = cpu_now();
                t = now_s();
                for (size_t k = 0; k < n; k++)
                        (void)port_add(fd, k);
                seq_s = now_s() - t;
                cpu_seq = cpu_now() - c0;
                c = port_count(fd);
                if (c != n)
                        die("after the sequential adds: %llu ports of ours, expected %zu", (unsigned long long)c, n);
                printf("ours sequential n=%zu total_s=%.3f per_port_ms=%.3f cpu_ms_per_port=%.3f\n", n, seq_s,
                       seq_s * 1e3 / (double)n, cpu_seq / (double)n);
                fflush(stdout);
                port_del_all(fd, n);
                settle();
        }

        /* n ports, port_add_many of BATCH each. */
        c0 = cpu_now();
        t = now_s();
        for (size_t k = 0; k < n; k += BATCH)
                batch_s[nb++] = port_add_many(fd, k, n - k < BATCH ? n - k : BATCH);
        many_s = now_s() - t;
        cpu_many = cpu_now() - c0;
        c = port_count(fd);
        if (c != n)
                die("after the batched adds: %llu ports of ours, expected %zu", (unsigned long long)c, n);
        printf("ours batched n=%zu batch=%d total_s=%.3f per_port_ms=%.3f cpu_ms_per_port=%.3f batch_s=", n, BATCH,
               many_s, many_s * 1e3 / (double)n, cpu_many / (double)n);
        for (size_t b = 0; b < nb; b++)
                printf("%s%.3f", b ? "," : "", batch_s[b]);
        printf("\n");
        fflush(stdout);

        port_del_all(fd, n);
        settle(); /* ovs-vswitchd is restarted or stopped next: let it finish first */
out:
        c = port_count(fd);
        if (c != 0)
                die("at the end: %llu ports of ours left", (unsigned long long)c);
        printf("ours cleanup deleted=%zu left=0\n", do_bulk ? n : 1);

        close(fd); /* the module sees EOF and exits */
        while (waitpid(bench_module_pid, &status, 0) < 0)
                if (errno != EINTR)
                        die("waitpid: %s", strerror(errno));
        bench_module_pid = -1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("module ended with status 0x%x", status);
        return 0;
}
