/* boot-client.c - the client half of bench/boot: against a running
 * nova-compute (it starts nothing), boot N instances with one port each
 * through POST /v1/instances?wait=1 keeping K requests in flight (the CLI's
 * bulk boot does the same with 16), read the RSS of the core, the spawner and
 * every module, delete the N again through DELETE /v1/instances/NAME?wait=1
 * the same way, and check the result through the API after each phase.
 *
 *   boot-client --socket PATH [--count N] [--in-flight K] [--prefix NAME]
 *               [--secgroup NAME] [--phase all|boot|delete]
 *
 * --secgroup: the boot requests name this security group (the request's
 * "secgroups"), else the core's default applies. --phase boot: boot and
 * check only (the instances stay, e.g. for a restart of the core);
 * --phase delete: check N are there, delete them and check.
 *
 * Latency of a request: from just before connect() to its whole response
 * parsed. Prints two tables (phases; RSS) and, for scripts, lines
 *   result: KEY=VALUE
 * Exit status: 0 when every request succeeded and the checks hold, 1 when
 * not, 2 on a usage error. */
#include "apiclient.h"

#include <getopt.h>
#include <poll.h>
#include <stdarg.h>

#define MAX_PROCS 8

struct proc {
        char name[48];
        pid_t pid;
        long rss_kib, hwm_kib;              /* after the boots */
        long rss_after_delete_kib;
        double cpu_s[3];                    /* utime+stime: before boots, after boots, after deletes */
};

struct phase {
        const char *name;
        double total_s;
        double *lat_ms;                     /* per request, in completion order */
        size_t n_ok, n_failed;
};

static const char *opt_socket;
static unsigned opt_count = 100, opt_in_flight = 16;
static const char *opt_prefix = "bench";
static const char *opt_secgroup;
static bool opt_boot = true, opt_delete = true;
static struct proc procs[MAX_PROCS];
static size_t n_procs;
static bool failed;

_printf_(1, 2) static void fail(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "boot-client: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        failed = true;
}

static const char *jstr(struct json_object *o, const char *key)
{
        struct json_object *v;

        return o && json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : NULL;
}

static int64_t jint(struct json_object *o, const char *key, int64_t def)
{
        struct json_object *v;

        return o && json_object_object_get_ex(o, key, &v) && v ? json_object_get_int64(v) : def;
}

static const char *error_text(struct json_object *resp, int status)
{
        struct json_object *e;

        if (resp && json_object_object_get_ex(resp, "error", &e) && jstr(e, "message"))
                return jstr(e, "message");
        return status < 0 ? strerror(-status) : "no error text";
}

/* ---- requests, K at a time ---- */

struct request {
        char path[160];
        char *body;                         /* NULL for DELETE */
};

/* Run the n requests with at most opt_in_flight open at once; fill ph. */
static void run_phase(struct phase *ph, const char *method, const struct request *reqs, size_t n)
{
        struct pollfd *fds = calloc(opt_in_flight, sizeof(*fds));
        size_t *slot = calloc(opt_in_flight, sizeof(*slot)), next = 0, done = 0, active = 0;
        uint64_t *sent = calloc(n, sizeof(*sent)), t0;
        unsigned reported = 0;

        ph->lat_ms = calloc(n, sizeof(*ph->lat_ms));
        if (!fds || !slot || !sent || !ph->lat_ms) {
                fprintf(stderr, "boot-client: out of memory\n");
                exit(1);
        }
        for (unsigned k = 0; k < opt_in_flight; k++)
                fds[k].fd = -1;
        t0 = now_usec();
        while (done < n) {
                for (unsigned k = 0; k < opt_in_flight && next < n; k++) {
                        if (fds[k].fd >= 0)
                                continue;
                        sent[next] = now_usec();
                        fds[k].fd = api_send_request(opt_socket, method, reqs[next].path, reqs[next].body);
                        fds[k].events = POLLIN;
                        if (fds[k].fd < 0) {
                                fail("%s %s: cannot send: %s", method, reqs[next].path, strerror(-fds[k].fd));
                                fds[k].fd = -1;
                                ph->n_failed++;
                                done++;
                                next++;
                                continue;
                        }
                        slot[k] = next++;
                        active++;
                }
                if (active == 0)
                        continue;
                if (poll(fds, opt_in_flight, 120000) <= 0) {
                        if (errno == EINTR)
                                continue;
                        fail("%s: no response within 120 s (%zu of %zu done)", ph->name, done, n);
                        exit(1);
                }
                for (unsigned k = 0; k < opt_in_flight; k++) {
                        struct json_object *resp = NULL;
                        size_t i = slot[k];
                        int status;

                        if (fds[k].fd < 0 || !fds[k].revents)
                                continue;
                        status = api_read_response(fds[k].fd, APICLIENT_TIMEOUT_MS, &resp);
                        close(fds[k].fd);
                        fds[k].fd = -1;
                        active--;
                        done++;
                        if (status >= 200 && status < 300) {
                                ph->lat_ms[ph->n_ok++] = (double)(now_usec() - sent[i]) / 1000.0;
                        } else {
                                ph->n_failed++;
                                if (reported++ < 5)
                                        fail("%s %s: HTTP %d: %s", method, reqs[i].path, status, error_text(resp, status));
                        }
                        json_object_put(resp);
                }
        }
        ph->total_s = (double)(now_usec() - t0) / 1e6;
        if (ph->n_failed)
                fail("%s: %zu of %zu requests failed", ph->name, ph->n_failed, n);
        free(fds);
        free(slot);
        free(sent);
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

/* Percentile p (0..100) of sorted v[0..n-1], linear between closest ranks. */
static double percentile(const double *v, size_t n, double p)
{
        double r, f;
        size_t i;

        if (n == 0)
                return 0;
        r = p / 100.0 * (double)(n - 1);
        i = (size_t)r;
        f = r - (double)i;
        return i + 1 < n ? v[i] + f * (v[i + 1] - v[i]) : v[n - 1];
}

/* ---- processes ---- */

/* VmRSS and VmHWM (KiB) of pid; -1 when unreadable. */
static void read_rss(pid_t pid, long *rss, long *hwm)
{
        char path[64], line[256];
        FILE *f;

        *rss = *hwm = -1;
        (void)snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
        f = fopen(path, "re");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                if (strncmp(line, "VmRSS:", 6) == 0)
                        *rss = strtol(line + 6, NULL, 10);
                else if (strncmp(line, "VmHWM:", 6) == 0)
                        *hwm = strtol(line + 6, NULL, 10);
        }
        fclose(f);
}

/* utime+stime of pid in seconds (its own threads, not its children); -1 when unreadable. */
static double read_cpu_s(pid_t pid)
{
        char path[64], *buf = NULL, *p;
        unsigned long ut, st;
        double r = -1;

        (void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        if (read_file_bounded(path, 4096, &buf, NULL) < 0)
                return -1;
        p = strrchr(buf, ')');
        /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
                r = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
        free(buf);
        return r;
}

static void add_proc(const char *name, int64_t pid)
{
        if (pid <= 0 || n_procs >= MAX_PROCS)
                return;
        (void)strscpy(procs[n_procs].name, name, sizeof(procs[n_procs].name));
        procs[n_procs].pid = (pid_t)pid;
        n_procs++;
}

/* Core, spawner and running modules from GET /v1/status. */
static int find_procs(void)
{
        struct json_object *st = NULL, *core, *plugs;
        int status = api_request(opt_socket, "GET", "/v1/status", NULL, 10000, &st);

        if (status != 200) {
                fail("GET /v1/status: %d: %s", status, error_text(st, status));
                json_object_put(st);
                return -1;
        }
        if (json_object_object_get_ex(st, "core", &core)) {
                add_proc("nova-compute (core)", jint(core, "pid", 0));
                add_proc("spawner", jint(core, "spawner_pid", 0));
        }
        if (json_object_object_get_ex(st, "plugs", &plugs))
                for (size_t i = 0; i < json_object_array_length(plugs); i++) {
                        struct json_object *p = json_object_array_get_idx(plugs, i), *m;
                        char name[48];
                        if (!json_object_object_get_ex(p, "module", &m) || jint(m, "pid", 0) <= 0)
                                continue;
                        (void)snprintf(name, sizeof(name), "%s", jstr(m, "program") ? jstr(m, "program") : jstr(p, "plug"));
                        add_proc(name, jint(m, "pid", 0));
                }
        json_object_put(st);
        if (n_procs == 0 || procs[0].pid <= 0) {
                fail("GET /v1/status: no core pid");
                return -1;
        }
        return 0;
}

static void sample_cpu(int when)
{
        for (size_t i = 0; i < n_procs; i++)
                procs[i].cpu_s[when] = read_cpu_s(procs[i].pid);
}

/* ---- checks ---- */

static int get(const char *path, struct json_object **ret)
{
        int status = api_request(opt_socket, "GET", path, NULL, 30000, ret);

        if (status != 200) {
                fail("GET %s: %d: %s", path, status, error_text(*ret, status));
                json_object_put(*ret);
                *ret = NULL;
                return -1;
        }
        return 0;
}

/* After the boots (want = N) or the deletes (want = 0). */
static void verify(unsigned want, const char *when)
{
        struct json_object *r = NULL, *list;
        unsigned ok = 0, total;
        bool failed_before = failed;

        failed = false;

        if (get("/v1/instances", &r) == 0) {
                if (!json_object_object_get_ex(r, "instances", &list) || !json_object_is_type(list, json_type_array)) {
                        fail("%s: GET /v1/instances: no instances list", when);
                } else {
                        total = (unsigned)json_object_array_length(list);
                        for (size_t i = 0; i < total; i++) {
                                struct json_object *o = json_object_array_get_idx(list, i);
                                if (streq_ptr(jstr(o, "vm_state"), "active") && streq_ptr(jstr(o, "power_state"), "running") &&
                                    !jstr(o, "task"))
                                        ok++;
                        }
                        if (total != want || ok != want)
                                fail("%s: GET /v1/instances: %u instances, %u active/running idle; want %u", when, total, ok,
                                     want);
                        printf("check %-13s instances %u (active/running %u)", when, total, ok);
                }
                json_object_put(r);
        }
        if (get("/v1/domains", &r) == 0) {
                total = (unsigned)jint(r, "total", -1);
                if (total != want)
                        fail("%s: GET /v1/domains: total %u; want %u", when, total, want);
                printf(", domains %u", total);
                json_object_put(r);
        }
        if (get("/v1/ports", &r) == 0) {
                total = (unsigned)jint(r, "total", -1);
                if (total != want)
                        fail("%s: GET /v1/ports: total %u; want %u", when, total, want);
                printf(", ports %u", total);
                json_object_put(r);
        }
        printf("%s\n", failed ? "  FAILED" : "  ok");
        fflush(stdout);
        failed = failed || failed_before;
}

/* ---- main ---- */

static void usage(void)
{
        fprintf(stderr, "usage: boot-client --socket PATH [--count N (100)] [--in-flight K (16)] [--prefix NAME (bench)]\n"
                        "                   [--secgroup NAME] [--phase all|boot|delete]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "socket", required_argument, NULL, 's' }, { "count", required_argument, NULL, 'n' },
                { "in-flight", required_argument, NULL, 'k' }, { "prefix", required_argument, NULL, 'p' },
                { "secgroup", required_argument, NULL, 'g' }, { "phase", required_argument, NULL, 'P' },
                { 0 },
        };
        struct phase phases[2] = { { .name = "boot" }, { .name = "delete" } };
        struct request *reqs;
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 's':
                        opt_socket = optarg;
                        break;
                case 'n':
                        if (parse_u32(optarg, 1, 4096, &opt_count) < 0)
                                usage();
                        break;
                case 'k':
                        if (parse_u32(optarg, 1, 60, &opt_in_flight) < 0) /* the API takes 64 connections */
                                usage();
                        break;
                case 'p':
                        opt_prefix = optarg;
                        break;
                case 'g':
                        opt_secgroup = optarg;
                        break;
                case 'P':
                        opt_boot = streq(optarg, "all") || streq(optarg, "boot");
                        opt_delete = streq(optarg, "all") || streq(optarg, "delete");
                        if (!opt_boot && !opt_delete)
                                usage();
                        break;
                default:
                        usage();
                }
        }
        if (!opt_socket || optind != argc || strlen(opt_prefix) > 40 || (opt_secgroup && strlen(opt_secgroup) > 64))
                usage();
        reqs = calloc(opt_count, sizeof(*reqs));
        if (!reqs || find_procs() < 0)
                return 1;
        verify(opt_boot ? 0 : opt_count, opt_boot ? "before boots" : "before");
        if (failed)
                return 1;

        /* boots */
        for (unsigned i = 0; i < opt_count; i++) {
                char body[256], groups[96] = "";
                if (opt_secgroup)
                        (void)snprintf(groups, sizeof(groups), ",\"secgroups\":[\"%s\"]", opt_secgroup);
                (void)snprintf(body, sizeof(body), "{\"name\":\"%s-%u\",\"vcpus\":1,\"memory_mb\":64,\"ports\":[{}]%s}",
                               opt_prefix, i + 1, groups);
                reqs[i].body = strdup(body);
                (void)snprintf(reqs[i].path, sizeof(reqs[i].path), "/v1/instances?wait=1");
        }
        sample_cpu(0);
        if (opt_boot) {
                run_phase(&phases[0], "POST", reqs, opt_count);
                verify(opt_count, "after boots");
        }
        sample_cpu(1);
        for (size_t i = 0; i < n_procs; i++)
                read_rss(procs[i].pid, &procs[i].rss_kib, &procs[i].hwm_kib);

        /* deletes (even after a failed boot: clean up what is there) */
        for (unsigned i = 0; i < opt_count; i++) {
                free(reqs[i].body);
                reqs[i].body = NULL;
                (void)snprintf(reqs[i].path, sizeof(reqs[i].path), "/v1/instances/%s-%u?wait=1", opt_prefix, i + 1);
        }
        if (opt_delete) {
                run_phase(&phases[1], "DELETE", reqs, opt_count);
                verify(0, "after deletes");
        }
        sample_cpu(2);
        for (size_t i = 0; i < n_procs; i++) {
                long hwm;
                read_rss(procs[i].pid, &procs[i].rss_after_delete_kib, &hwm);
        }

        /* tables */
        printf("\n%-8s %7s %8s %10s %8s %8s %9s %4s\n", "phase", "total s", "inst/s", "median ms", "p90 ms", "max ms",
               "wall/inst", "fail");
        for (int p = 0; p < 2; p++) {
                struct phase *ph = &phases[p];
                if (!ph->lat_ms)
                        continue; /* phase not run */
                qsort(ph->lat_ms, ph->n_ok, sizeof(double), cmp_double);
                printf("%-8s %7.3f %8.1f %10.2f %8.2f %8.2f %9.2f %4zu\n", ph->name, ph->total_s,
                       (double)opt_count / ph->total_s, percentile(ph->lat_ms, ph->n_ok, 50),
                       percentile(ph->lat_ms, ph->n_ok, 90), ph->n_ok ? ph->lat_ms[ph->n_ok - 1] : 0.0,
                       ph->total_s * 1000.0 / opt_count, ph->n_failed);
        }
        printf("(%u instances, 1 port each, %u in flight; median/p90/max: latency of one request, send to response;\n"
               " wall/inst: total / N in ms)\n",
               opt_count, opt_in_flight);

        printf("\n%-22s %7s %10s %10s %12s %11s %11s\n", "process", "pid", "VmRSS MiB", "VmHWM MiB", "RSS after del",
               "CPU s boot", "CPU s del");
        for (size_t i = 0; i < n_procs; i++) {
                struct proc *pr = &procs[i];
                char boot_cpu[16] = "-", del_cpu[16] = "-", after[16] = "-";
                /* a phase not run has no figure (not 0.00: the run with --phase boot printed its
                 * table before any delete, and boot-full showed that 0.00 as the deletes' CPU) */
                if (opt_boot)
                        (void)snprintf(boot_cpu, sizeof(boot_cpu), "%.2f", pr->cpu_s[1] - pr->cpu_s[0]);
                if (opt_delete) {
                        (void)snprintf(del_cpu, sizeof(del_cpu), "%.2f", pr->cpu_s[2] - pr->cpu_s[1]);
                        (void)snprintf(after, sizeof(after), "%.2f", pr->rss_after_delete_kib / 1024.0);
                }
                printf("%-22s %7ld %10.2f %10.2f %12s %11s %11s\n", pr->name, (long)pr->pid, pr->rss_kib / 1024.0,
                       pr->hwm_kib / 1024.0, after, boot_cpu, del_cpu);
        }
        printf("(VmRSS/VmHWM: with the %u instances up; CPU s: utime+stime of the process itself during the phase;\n"
               " -: the phase was not run by this client)\n",
               opt_count);

        for (int p = 0; p < 2; p++)
                if (phases[p].lat_ms)
                        printf("result: %s_total_s=%.3f %s_median_ms=%.2f %s_failed=%zu\n", phases[p].name, phases[p].total_s,
                       phases[p].name, percentile(phases[p].lat_ms, phases[p].n_ok, 50), phases[p].name,
                       phases[p].n_failed);
        printf("result: core_rss_kib=%ld core_hwm_kib=%ld\n", procs[0].rss_kib, procs[0].hwm_kib);
        printf("result: verified=%s\n", failed ? "no" : "yes");
        for (int p = 0; p < 2; p++)
                free(phases[p].lat_ms);
        free(reqs);
        return failed ? 1 : 0;
}
