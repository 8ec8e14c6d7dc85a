/* observe-cmds.c - the CLI's host, stats and pin commands (see observe-cmds.h). */
#include "observe-cmds.h"

#include "apiclient.h"
#include "names.h"

#include <json-c/json.h>

static struct json_object *jget(struct json_object *o, const char *key)
{
        struct json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *js(struct json_object *o, const char *key)
{
        struct json_object *v = jget(o, key);
        return v ? json_object_get_string(v) : "";
}

static long long ji(struct json_object *o, const char *key)
{
        struct json_object *v = jget(o, key);
        return v ? (long long)json_object_get_int64(v) : 0;
}

/* "0x8086" -> "8086" (sysfs ids); other text unchanged. */
static const char *hex_digits(const char *s) { return strncmp(s, "0x", 2) == 0 ? s + 2 : s; }

static bool is_available(struct json_object *o)
{
        struct json_object *v = jget(o, "available");
        return o && (!v || json_object_get_boolean(v));
}

/* One request; prints the API's error (and fix) and returns 1, or 3 when the core is unreachable. */
static int request(const char *socket, bool json, const char *method, const char *path, const char *body,
                   struct json_object **ret)
{
        int status = api_request(socket, method, path, body, APICLIENT_TIMEOUT_MS, ret);

        if (status < 0) {
                fprintf(stderr, "error: cannot reach nova-compute at %s: %s\n", socket, strerror(-status));
                return 3;
        }
        if (status >= 300) {
                struct json_object *e = jget(*ret, "error");
                if (json)
                        printf("%s\n", json_object_to_json_string_ext(*ret, JSON_C_TO_STRING_PRETTY));
                fprintf(stderr, "error: %s (HTTP %d)\n", e ? js(e, "message") : "request failed", status);
                if (e && jget(e, "fix"))
                        fprintf(stderr, "fix: %s\n", js(e, "fix"));
                json_object_put(*ret);
                *ret = NULL;
                return 1;
        }
        return 0;
}

/* What a section says when its plug's module did not answer. */
static void print_unavailable(const char *what, struct json_object *o)
{
        printf("%s: not available (%s plug%s): %s\n", what, js(o, "plug"),
               jget(o, "connected") && !json_object_get_boolean(jget(o, "connected")) ? " not connected" : "",
               js(o, "error"));
        if (jget(o, "fix"))
                printf("  fix: %s\n", js(o, "fix"));
}

int cmd_host(const char *socket, bool json, int argc, char **argv)
{
        struct json_object *resp = NULL, *hw, *place, *cpu, *mem, *numa, *pci;
        static const char *const rcs[] = { "VCPU", "MEMORY_MB", "DISK_GB" };
        int r;

        (void)argv;
        if (argc != 0) {
                fprintf(stderr, "usage: nova-hypervisor host [--json]\n");
                return 2;
        }
        r = request(socket, json, "GET", "/v1/host", NULL, &resp);
        if (r)
                return r;
        if (json) {
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                json_object_put(resp);
                return 0;
        }
        hw = jget(resp, "hardware");
        place = jget(resp, "placement");
        if (is_available(hw)) {
                cpu = jget(hw, "cpu");
                mem = jget(hw, "memory");
                printf("cpu:        %s (%s)\n", js(cpu, "model"), js(cpu, "vendor"));
                printf("            %lld socket(s), %lld core(s), %lld thread(s), online %s, virtualization %s\n",
                       ji(cpu, "sockets"), ji(cpu, "cores"), ji(cpu, "threads"), js(cpu, "online"),
                       *js(cpu, "virtualization") ? js(cpu, "virtualization") : "none");
                printf("memory:     %lld MiB, huge pages %lld/%lld free (%lld kB each)\n", ji(mem, "total_kb") / 1024,
                       ji(mem, "hugepages_free"), ji(mem, "hugepages_total"), ji(mem, "hugepage_size_kb"));
                numa = jget(hw, "numa");
                for (size_t i = 0; numa && i < json_object_array_length(numa); i++) {
                        struct json_object *n = json_object_array_get_idx(numa, i);
                        printf("numa node %lld: cpus %s, %lld MiB (%lld MiB free)\n", ji(n, "node"), js(n, "cpus"),
                               ji(n, "memory_total_kb") / 1024, ji(n, "memory_free_kb") / 1024);
                }
                pci = jget(hw, "pci");
                printf("pci:        %lld device(s)\n", ji(hw, "pci_total"));
                for (size_t i = 0; pci && i < json_object_array_length(pci); i++) {
                        struct json_object *d = json_object_array_get_idx(pci, i);
                        printf("  %s class %s %s:%s numa %lld%s", js(d, "address"), js(d, "class"), hex_digits(js(d, "vendor")),
                               hex_digits(js(d, "device")), ji(d, "numa_node"),
                               json_object_get_boolean(jget(d, "sriov")) ? "" : "\n");
                        if (json_object_get_boolean(jget(d, "sriov")))
                                printf(" sr-iov %lld/%lld VFs\n", ji(d, "sriov_numvfs"), ji(d, "sriov_totalvfs"));
                }
        } else {
                print_unavailable("inventory", hw);
        }
        printf("\nresource    total  ratio  capacity  used  free\n");
        for (size_t i = 0; i < ARRAY_SIZE(rcs); i++) {
                struct json_object *rc = jget(place, rcs[i]);
                if (jget(rc, "total"))
                        printf("%-10s %6lld %6.2f %9lld %5lld %5lld\n", rcs[i], ji(rc, "total"),
                               json_object_get_double(jget(rc, "allocation_ratio")), ji(rc, "capacity"), ji(rc, "used"),
                               ji(rc, "free"));
                else
                        printf("%-10s %6s %6.2f %9s %5lld %5s  (%s)\n", rcs[i], "?",
                               json_object_get_double(jget(rc, "allocation_ratio")), "?", ji(rc, "used"), "?",
                               js(rc, "unknown"));
        }
        print_placement_line(jget(resp, "placement_sync"));
        json_object_put(resp);
        return 0;
}

void print_placement_line(struct json_object *p)
{
        if (!p)
                return;
        if (!json_object_get_boolean(jget(p, "enabled"))) {
                printf("placement:  off (%s)\n", js(p, "fix"));
                return;
        }
        printf("placement:  %s, provider %s (%s) at %s, last sync %s\n", js(p, "state"), js(p, "provider_name"),
               js(p, "provider_uuid"), js(p, "url"), *js(p, "last_sync") ? js(p, "last_sync") : "never");
        if (*js(p, "error"))
                printf("            error: %s\n            fix: %s\n", js(p, "error"), js(p, "fix"));
}

static void print_links(struct json_object *links)
{
        for (size_t i = 0; links && i < json_object_array_length(links); i++) {
                struct json_object *l = json_object_array_get_idx(links, i);
                printf("    %-15s %-6s rx %llu pkts %llu bytes %llu drop %llu err | tx %llu pkts %llu bytes %llu drop %llu err\n",
                       js(l, "name"), js(l, "kind"), (unsigned long long)ji(l, "rx_packets"),
                       (unsigned long long)ji(l, "rx_bytes"), (unsigned long long)ji(l, "rx_dropped"),
                       (unsigned long long)ji(l, "rx_errors"), (unsigned long long)ji(l, "tx_packets"),
                       (unsigned long long)ji(l, "tx_bytes"), (unsigned long long)ji(l, "tx_dropped"),
                       (unsigned long long)ji(l, "tx_errors"));
        }
}

int cmd_stats(const char *socket, bool json, int argc, char **argv)
{
        struct json_object *resp = NULL, *load, *insts;
        char path[128];
        int r;

        if (argc > 1 || (argc == 1 && strlen(argv[0]) > UUID_STR_LEN)) {
                fprintf(stderr, "usage: nova-hypervisor stats [NAME|UUID] [--json]\n");
                return 2;
        }
        (void)snprintf(path, sizeof(path), "/v1/stats%s%s", argc ? "/" : "", argc ? argv[0] : "");
        r = request(socket, json, "GET", path, NULL, &resp);
        if (r)
                return r;
        if (json) {
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                json_object_put(resp);
                return 0;
        }
        load = jget(resp, "load");
        if (is_available(load)) {
                struct json_object *m = jget(load, "memory"), *psi = jget(load, "psi");
                printf("load:   %.2f %.2f %.2f (%lld running / %lld tasks)\n", json_object_get_double(jget(load, "load1")),
                       json_object_get_double(jget(load, "load5")), json_object_get_double(jget(load, "load15")),
                       ji(load, "running"), ji(load, "tasks"));
                printf("memory: %lld MiB available of %lld MiB\n", ji(m, "available_kb") / 1024, ji(m, "total_kb") / 1024);
                static const char *const res[] = { "cpu", "memory", "io" };
                printf("pressure (some, avg10):");
                for (size_t i = 0; i < ARRAY_SIZE(res); i++) {
                        struct json_object *p = jget(psi, res[i]);
                        if (is_available(p) && json_object_get_boolean(jget(p, "available")))
                                printf(" %s %.2f%%", res[i], (double)ji(p, "some_avg10") / 100.0);
                        else
                                printf(" %s n/a", res[i]);
                }
                printf("\n");
        } else {
                print_unavailable("load", load);
        }
        insts = jget(resp, "instances");
        for (size_t i = 0; insts && i < json_object_array_length(insts); i++) {
                struct json_object *in = json_object_array_get_idx(insts, i), *p = jget(in, "process");
                struct json_object *vifs = jget(in, "vifs");
                printf("instance %s (%s)\n", js(in, "name"), js(in, "uuid"));
                if (is_available(p))
                        printf("  qemu pid %lld (%s): cpu %.3f s, rss %lld MiB, %lld threads\n", ji(p, "pid"),
                               js(p, "found_by"), (double)ji(p, "cpu_time_ms") / 1000.0, ji(p, "rss_kb") / 1024,
                               ji(p, "threads"));
                else
                        print_unavailable("  process", p);
                for (size_t v = 0; vifs && v < json_object_array_length(vifs); v++) {
                        struct json_object *vif = json_object_array_get_idx(vifs, v);
                        printf("  port %s\n", js(vif, "port_uuid"));
                        if (jget(vif, "counters"))
                                print_unavailable("    counters", jget(vif, "counters"));
                        else
                                print_links(jget(vif, "links"));
                }
        }
        if (jget(resp, "links")) {
                struct json_object *links = jget(resp, "links");
                if (is_available(links)) {
                        printf("links of ours: %lld\n", ji(links, "total"));
                        print_links(jget(links, "links"));
                } else {
                        print_unavailable("links", links);
                }
        }
        json_object_put(resp);
        return 0;
}

int cmd_pin(const char *socket, bool json, int argc, char **argv)
{
        struct json_object *resp = NULL, *body;
        char path[128];
        int r;

        if (!((argc == 3 && streq(argv[1], "--cpus")) ||
              (argc == 5 && streq(argv[1], "--cpus") && streq(argv[3], "--priority"))) ||
            strlen(argv[0]) > UUID_STR_LEN) {
                fprintf(stderr, "usage: nova-hypervisor pin NAME|UUID --cpus LIST [--priority -20..19]\n");
                return 2;
        }
        body = json_object_new_object();
        json_object_object_add(body, "cpus", json_object_new_string(argv[2]));
        if (argc == 5)
                json_object_object_add(body, "priority", json_object_new_string(argv[4]));
        (void)snprintf(path, sizeof(path), "/v1/instances/%s/pin", argv[0]);
        r = request(socket, json, "POST", path, json_object_to_json_string(body), &resp);
        json_object_put(body);
        if (r)
                return r;
        if (json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        else
                printf("pinned %s: qemu pid %lld, %lld thread(s) on cpus %s\n", argv[0], ji(resp, "pid"),
                       ji(resp, "threads"), js(resp, "cpus"));
        json_object_put(resp);
        return 0;
}
