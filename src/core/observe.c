/* observe.c - see observe.h */
#include "observe.h"

#include "log.h"
#include "modules.h"
#include "hw-protocol.h"
#include "libvirt-protocol.h"
#include "netobs-protocol.h"
#include "sysobs-protocol.h"
#include "placement.h" /* issue 18 hook */

#include <assert.h>
#include <json-c/json.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/statvfs.h>

enum part_id {
        PART_INVENTORY, /* hardware-observe host_inventory */
        PART_LOAD,      /* system-observe host_load */
        PART_PROCS,     /* system-observe instance_procs */
        PART_LINKS,     /* network-observe link_stats */
        PART_POOL,      /* libvirt pool_info: the storage pool of the instances' disks */
        _PART_MAX,
};

static const struct module_ep parts[_PART_MAX] = {
        [PART_INVENTORY] = EP_HW(HOST_INVENTORY),
        [PART_LOAD] = EP_SYSOBS(HOST_LOAD),
        [PART_PROCS] = EP_SYSOBS(INSTANCE_PROCS),
        [PART_LINKS] = EP_NETOBS(LINK_STATS),
        [PART_POOL] = EP_LIBVIRT(POOL_INFO),
};
struct observe_query;

struct part {
        struct observe_query *q;
        enum part_id id;
        bool wanted;
        struct module_call *call;    /* in flight */
        struct json_object *body;    /* reply body, or {"available": false, ...} */
};

struct observe_query {
        enum observe_kind kind;
        char instance_uuid[UUID_STR_LEN + 1]; /* "" = every instance */
        const struct nova_config *cfg;   /* the core's configuration: outlives every query */
        const struct instance_store *instances; /* the instance store: outlives every query */
        struct modules *modules;         /* the registry: outlives every query */
        const struct placement *placement; /* the Placement client (NULL: off): outlives every query */
        observe_done_cb cb;
        void *userdata;
        unsigned pending;
        struct part parts[_PART_MAX];
};


/* {"available": false, "plug", "error", "fix"}: what a section says instead of blanks. */
static struct json_object *unavailable(const struct observe_query *q, enum plug_id plug, const char *error)
{
        struct json_object *o = json_object_new_object();
        struct module_status st;
        char fix[128];

        modules_get_status(q->modules, plug, &st);
        json_object_object_add(o, "available", json_object_new_boolean(false));
        json_object_object_add(o, "plug", json_object_new_string(plug_table[plug].name));
        json_object_object_add(o, "connected", json_object_new_boolean(st.connected));
        json_object_object_add(o, "error", json_object_new_string(error));
        if (!st.connected && plug_fix_text(plug, fix, sizeof(fix)) == 0)
                json_object_object_add(o, "fix", json_object_new_string(fix));
        return o;
}

static bool available(const struct json_object *o)
{
        struct json_object *v;
        /* {"available": false} marks a section we could not get; pool_info's "available" is a
         * byte count (0 on a full pool is still an answer) */
        return o && !(json_object_object_get_ex(o, "available", &v) && json_object_is_type(v, json_type_boolean) &&
                      !json_object_get_boolean(v));
}

static struct json_object *get(struct json_object *o, const char *key)
{
        struct json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static uint64_t get_u64(struct json_object *o, const char *key)
{
        struct json_object *v = get(o, key);
        return v ? (uint64_t)json_object_get_uint64(v) : 0;
}

static const char *get_str(struct json_object *o, const char *key)
{
        struct json_object *v = get(o, key);
        return v ? json_object_get_string(v) : "";
}

/* ---- rendering: host ---- */

static struct json_object *ratio_json(uint32_t milli) { return json_object_new_double(milli / 1000.0); }

/* One placement resource class: total, reserved, ratio, capacity = (total - reserved) * ratio as Placement
 * computes it, used, free (null when total is unknown). */
static struct json_object *resource_json(bool known, uint64_t total, uint64_t reserved, uint32_t ratio_milli,
                                         uint64_t used, const char *unknown_why)
{
        struct json_object *o = json_object_new_object();
        uint64_t capacity = (total > reserved ? total - reserved : 0) * ratio_milli / 1000;

        json_object_object_add(o, "total", known ? json_object_new_uint64(total) : NULL);
        json_object_object_add(o, "reserved", json_object_new_uint64(reserved));
        json_object_object_add(o, "allocation_ratio", ratio_json(ratio_milli));
        json_object_object_add(o, "capacity", known ? json_object_new_uint64(capacity) : NULL);
        json_object_object_add(o, "used", json_object_new_uint64(used));
        json_object_object_add(o, "free", known ? json_object_new_int64((int64_t)capacity - (int64_t)used) : NULL);
        if (!known)
                json_object_object_add(o, "unknown", json_object_new_string(unknown_why));
        return o;
}

static struct json_object *placement_json(struct observe_query *q, struct json_object *inv, struct json_object *pool)
{
        struct json_object *o = json_object_new_object();
        bool hw = available(inv);
        uint64_t vcpus_used = 0, mem_used = 0, disk_total = 0, disk_used = 0;
        struct statvfs vfs;
        bool pool_known = available(pool) && get(pool, "capacity");
        bool disk_known = pool_known || statvfs(q->cfg->state_dir, &vfs) == 0;
        char why[160];

        for (struct instance *i = instances_first(q->instances); i; i = i->next) {
                vcpus_used += i->vcpus;
                mem_used += i->memory_mb;
                disk_used += i->image_uuid[0] ? i->disk_gb : 0; /* the root disk's size, as nova counts root_gb */
        }
        /* The disks live in the libvirt module's storage pool: its size, when the module can tell. */
        if (pool_known)
                disk_total = get_u64(pool, "capacity") / (1024ULL * 1024 * 1024);
        else if (disk_known)
                disk_total = (uint64_t)vfs.f_blocks * vfs.f_frsize / (1024ULL * 1024 * 1024);
        (void)snprintf(why, sizeof(why), "the hardware-observe plug's inventory is not available");
        json_object_object_add(o, "VCPU", resource_json(hw, get_u64(get(inv, "cpu"), "threads"), q->cfg->reserved_host_cpus,
                                                        q->cfg->cpu_allocation_ratio_milli, vcpus_used, why));
        json_object_object_add(o, "MEMORY_MB", resource_json(hw, get_u64(get(inv, "memory"), "total_kb") / 1024,
                                                             q->cfg->reserved_host_memory_mb,
                                                             q->cfg->ram_allocation_ratio_milli, mem_used, why));
        /* DISK_GB used: the instances' root disks. Reserved: nova rounds MB up to GiB. */
        json_object_object_add(o, "DISK_GB", resource_json(disk_known, disk_total,
                                                           ((uint64_t)q->cfg->reserved_host_disk_mb + 1023) / 1024,
                                                           q->cfg->disk_allocation_ratio_milli, disk_used,
                                                           "cannot statvfs the state directory"));
        json_object_object_add(o, "instances", json_object_new_uint64(instances_count(q->instances)));
        json_object_object_add(o, "disk_path", json_object_new_string(pool_known ? get_str(pool, "path") : q->cfg->state_dir));
        if (pool_known) {
                json_object_object_add(o, "storage_pool", json_object_new_string(get_str(pool, "pool")));
                json_object_object_add(o, "pool_available_bytes", json_object_new_uint64(get_u64(pool, "available")));
        }
        return o;
}

static struct json_object *render_host(struct observe_query *q)
{
        struct json_object *root = json_object_new_object();
        struct json_object *inv = q->parts[PART_INVENTORY].body;

        if (available(inv))
                json_object_object_add(inv, "available", json_object_new_boolean(true));
        json_object_object_add(root, "placement", placement_json(q, inv, q->parts[PART_POOL].body));
        json_object_object_add(root, "placement_sync", placement_status_json(q->placement)); /* issue 18 hook */
        json_object_object_add(root, "hardware", json_object_get(inv));
        /* where DISK_GB comes from: the pool (name, path, sizes), or why it cannot be told */
        json_object_object_add(root, "storage_pool", json_object_get(q->parts[PART_POOL].body));
        return root;
}

/* ---- rendering: stats ---- */

/* The process entry of an instance from instance_procs, or the reason there is none. */
static struct json_object *process_for(struct observe_query *q, const struct instance *inst)
{
        struct json_object *procs = q->parts[PART_PROCS].body, *list = get(procs, "procs");

        if (!available(procs))
                return json_object_get(procs);
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                struct json_object *p = json_object_array_get_idx(list, i);
                if (streq(get_str(p, "instance_uuid"), inst->uuid)) {
                        struct json_object *o = json_object_new_object();
                        json_object_object_add(o, "available", json_object_new_boolean(true));
                        json_object_object_foreach(p, k, v) json_object_object_add(o, k, json_object_get(v));
                        return o;
                }
        }
        struct json_object *o = json_object_new_object(), *unverified = get(procs, "unverified");
        json_object_object_add(o, "available", json_object_new_boolean(false));
        json_object_object_add(o, "plug", json_object_new_string(plug_table[PLUG_SYSTEM_OBSERVE].name));
        json_object_object_add(o, "connected", json_object_new_boolean(true));
        for (size_t i = 0; unverified && i < json_object_array_length(unverified); i++) {
                struct json_object *p = json_object_array_get_idx(unverified, i);
                char msg[320];
                if (!streq(get_str(p, "instance_uuid"), inst->uuid))
                        continue;
                (void)snprintf(msg, sizeof(msg),
                               "QEMU process %lld carries this instance's mark but not libvirt's evidence (uid 0 or "
                               "qemu_user, and libvirt's machine cgroup of the domain): not taken as its QEMU (a libvirtd "
                               "that runs QEMU without cgroups, or not libvirt's process)",
                               (long long)json_object_get_int64(get(p, "pid")));
                json_object_object_add(o, "error", json_object_new_string(msg));
                return o;
        }
        json_object_object_add(o, "error", json_object_new_string(
                                                   "no QEMU process carries this instance's mark (not running, or a "
                                                   "libvirt driver without processes such as test:///)"));
        return o;
}

/* The links of one port (tap, and for hybrid plugging qbr/qvb/qvo). */
static struct json_object *vifs_for(struct observe_query *q, const struct instance *inst)
{
        struct json_object *links = q->parts[PART_LINKS].body, *list = get(links, "links");
        struct json_object *vifs = json_object_new_array();

        for (size_t p = 0; p < inst->n_ports; p++) {
                struct json_object *v = json_object_new_object(), *mine = json_object_new_array();

                json_object_object_add(v, "port_uuid", json_object_new_string(inst->ports[p].port_uuid));
                if (!available(links)) {
                        json_object_put(mine);
                        json_object_object_add(v, "counters", json_object_get(links));
                } else {
                        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                                struct json_object *l = json_object_array_get_idx(list, i);
                                if (streq(get_str(l, "port_uuid"), inst->ports[p].port_uuid))
                                        json_object_array_add(mine, json_object_get(l));
                        }
                        json_object_object_add(v, "links", mine);
                }
                json_object_array_add(vifs, v);
        }
        return vifs;
}

static struct json_object *load_json(struct observe_query *q)
{
        struct json_object *load = q->parts[PART_LOAD].body, *o;

        if (!available(load))
                return json_object_get(load);
        o = json_object_new_object();
        json_object_object_add(o, "available", json_object_new_boolean(true));
        json_object_object_foreach(load, k, v) {
                if (streq(k, "load1") || streq(k, "load5") || streq(k, "load15"))
                        json_object_object_add(o, k, json_object_new_double((double)json_object_get_uint64(v) / 1000.0));
                else
                        json_object_object_add(o, k, json_object_get(v));
        }
        return o;
}

static struct json_object *render_stats(struct observe_query *q)
{
        struct json_object *root = json_object_new_object(), *insts = json_object_new_array();
        struct json_object *links = q->parts[PART_LINKS].body;

        json_object_object_add(root, "load", load_json(q));
        for (struct instance *i = instances_first(q->instances); i; i = i->next) {
                struct json_object *o;

                if (q->instance_uuid[0] && !streq(q->instance_uuid, i->uuid))
                        continue;
                o = json_object_new_object();
                json_object_object_add(o, "uuid", json_object_new_string(i->uuid));
                json_object_object_add(o, "name", json_object_new_string(i->name));
                json_object_object_add(o, "vm_state", json_object_new_string(vm_state_to_string(i->vm_state)));
                json_object_object_add(o, "power_state", json_object_new_string(i->power_state));
                json_object_object_add(o, "process", process_for(q, i));
                json_object_object_add(o, "vifs", vifs_for(q, i));
                json_object_array_add(insts, o);
        }
        json_object_object_add(root, "instances", insts);
        if (!q->instance_uuid[0]) {
                /* Every link of ours, also those of no instance (orphans, API-made ports). */
                if (available(links))
                        json_object_object_add(links, "available", json_object_new_boolean(true));
                json_object_object_add(root, "links", json_object_get(links));
        }
        return root;
}

/* ---- rendering: Prometheus text ---- */

struct text {
        char *buf;
        size_t len, cap;
        bool failed;
};

static void text_add(struct text *t, const char *fmt, ...) _printf_(2, 3);
static void text_add(struct text *t, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (t->failed)
                return;
        for (;;) {
                va_start(ap, fmt);
                n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        t->failed = true;
                        return;
                }
                if (t->buf && (size_t)n < t->cap - t->len) {
                        t->len += (size_t)n;
                        return;
                }
                size_t cap = t->cap ? t->cap * 2 : 16384;
                while (cap < t->len + (size_t)n + 1)
                        cap *= 2;
                char *nb = realloc(t->buf, cap);
                if (!nb) {
                        t->failed = true;
                        return;
                }
                t->buf = nb;
                t->cap = cap;
        }
}

static void metric_help(struct text *t, const char *name, const char *type, const char *help)
{
        text_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_placement(struct text *t, struct json_object *place, const struct instance_store *store)
{
        static const char *const rcs[] = { "VCPU", "MEMORY_MB", "DISK_GB" };

        metric_help(t, "nova_placement_total", "gauge", "inventory of a resource class (hardware-observe; DISK_GB: state dir)");
        for (size_t i = 0; i < ARRAY_SIZE(rcs); i++)
                if (get(get(place, rcs[i]), "total"))
                        text_add(t, "nova_placement_total{resource_class=\"%s\"} %" PRIu64 "\n", rcs[i],
                                 get_u64(get(place, rcs[i]), "total"));
        metric_help(t, "nova_placement_capacity", "gauge", "total times the allocation ratio of the configuration");
        for (size_t i = 0; i < ARRAY_SIZE(rcs); i++)
                if (get(get(place, rcs[i]), "capacity"))
                        text_add(t, "nova_placement_capacity{resource_class=\"%s\"} %" PRIu64 "\n", rcs[i],
                                 get_u64(get(place, rcs[i]), "capacity"));
        metric_help(t, "nova_placement_used", "gauge", "what the instances in the store claim");
        for (size_t i = 0; i < ARRAY_SIZE(rcs); i++)
                text_add(t, "nova_placement_used{resource_class=\"%s\"} %" PRIu64 "\n", rcs[i],
                         get_u64(get(place, rcs[i]), "used"));
        metric_help(t, "nova_instances", "gauge", "instances in the store");
        text_add(t, "nova_instances %zu\n", instances_count(store));
}

static void metrics_hardware(struct text *t, struct json_object *hw)
{
        metric_help(t, "nova_host_cpus", "gauge", "online logical CPUs");
        text_add(t, "nova_host_cpus %" PRIu64 "\n", get_u64(get(hw, "cpu"), "threads"));
        metric_help(t, "nova_host_numa_nodes", "gauge", "NUMA nodes");
        text_add(t, "nova_host_numa_nodes %zu\n", get(hw, "numa") ? json_object_array_length(get(hw, "numa")) : (size_t)0);
        metric_help(t, "nova_host_memory_total_bytes", "gauge", "physical memory");
        text_add(t, "nova_host_memory_total_bytes %" PRIu64 "\n", get_u64(get(hw, "memory"), "total_kb") * 1024);
}

/* raw: system-observe's host_load reply */
static void metrics_load(struct text *t, struct json_object *raw)
{
        static const char *const avgs[] = { "load1", "load5", "load15" };
        static const char *const res[] = { "cpu", "memory", "io" };

        metric_help(t, "nova_host_load", "gauge", "load average");
        for (size_t i = 0; i < ARRAY_SIZE(avgs); i++)
                text_add(t, "nova_host_load{period=\"%s\"} %.3f\n", avgs[i] + 4, (double)get_u64(raw, avgs[i]) / 1000.0);
        metric_help(t, "nova_host_memory_available_bytes", "gauge", "MemAvailable");
        text_add(t, "nova_host_memory_available_bytes %" PRIu64 "\n", get_u64(get(raw, "memory"), "available_kb") * 1024);
        metric_help(t, "nova_host_pressure_some_avg10", "gauge", "PSI: share of time some task stalled, last 10 s (percent)");
        for (size_t i = 0; i < ARRAY_SIZE(res); i++) {
                struct json_object *p = get(get(raw, "psi"), res[i]);
                if (p && get(p, "available") && json_object_get_boolean(get(p, "available")))
                        text_add(t, "nova_host_pressure_some_avg10{resource=\"%s\"} %.2f\n", res[i],
                                 (double)get_u64(p, "some_avg10") / 100.0);
        }
}

static void metrics_instances(struct text *t, struct json_object *stats)
{
        struct json_object *list = get(stats, "instances");

        metric_help(t, "nova_instance_cpu_seconds_total", "counter", "CPU time of the instance's QEMU process");
        metric_help(t, "nova_instance_rss_bytes", "gauge", "resident memory of the instance's QEMU process");
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                struct json_object *inst = json_object_array_get_idx(list, i), *p = get(inst, "process");
                if (!available(p))
                        continue;
                text_add(t, "nova_instance_cpu_seconds_total{instance_uuid=\"%s\",name=\"%s\"} %.3f\n",
                         get_str(inst, "uuid"), get_str(inst, "name"), (double)get_u64(p, "cpu_time_ms") / 1000.0);
                text_add(t, "nova_instance_rss_bytes{instance_uuid=\"%s\",name=\"%s\"} %" PRIu64 "\n",
                         get_str(inst, "uuid"), get_str(inst, "name"), get_u64(p, "rss_kb") * 1024);
        }
}

/* links: network-observe's link list */
static void metrics_links(struct text *t, struct json_object *links, const struct instance_store *store)
{
        static const char *const counters[] = { "rx_packets", "rx_bytes", "rx_dropped", "rx_errors",
                                                "tx_packets", "tx_bytes", "tx_dropped", "tx_errors" };

        for (size_t c = 0; c < ARRAY_SIZE(counters); c++) {
                char name[64];
                (void)snprintf(name, sizeof(name), "nova_vif_%s_total", counters[c]);
                metric_help(t, name, "counter", "kernel link counter of one of our devices (network-observe)");
                for (size_t i = 0; links && i < json_object_array_length(links); i++) {
                        struct json_object *l = json_object_array_get_idx(links, i);
                        struct instance *owner = NULL;
                        (void)instance_find_port(store, get_str(l, "port_uuid"), &owner);
                        text_add(t, "%s{device=\"%s\",kind=\"%s\",port_uuid=\"%s\",instance_uuid=\"%s\"} %" PRIu64 "\n",
                                 name, get_str(l, "name"), get_str(l, "kind"), get_str(l, "port_uuid"),
                                 owner ? owner->uuid : "", get_u64(l, counters[c]));
                }
        }
}

/* Label values here are UUIDs, plug and device names, and instance names
 * ([A-Za-z0-9._-]): nothing that needs escaping. */
static char *render_metrics(struct observe_query *q)
{
        struct text t = {};
        struct json_object *host = render_host(q), *stats = render_stats(q);
        struct json_object *hw = get(host, "hardware"), *load = get(stats, "load");

        metric_help(&t, "nova_observe_available", "gauge",
                    "1 when the plug's module answered this scrape, 0 when its data is missing (plug disconnected, module down)");
        text_add(&t, "nova_observe_available{plug=\"hardware-observe\"} %d\n", available(hw) ? 1 : 0);
        text_add(&t, "nova_observe_available{plug=\"system-observe\"} %d\n", available(load) ? 1 : 0);
        text_add(&t, "nova_observe_available{plug=\"network-observe\"} %d\n",
                 available(q->parts[PART_LINKS].body) ? 1 : 0);
        metrics_placement(&t, get(host, "placement"), q->instances);
        if (available(hw))
                metrics_hardware(&t, hw);
        if (available(load))
                metrics_load(&t, q->parts[PART_LOAD].body);
        metrics_instances(&t, stats);
        metrics_links(&t, get(q->parts[PART_LINKS].body, "links"), q->instances);
        {
                /* issue 18 hook: the Placement client's gauges and counters */
                char *sync = placement_metrics_text(q->placement);
                if (sync)
                        text_add(&t, "%s", sync);
                else
                        t.failed = true;
                free(sync);
        }
        json_object_put(host);
        json_object_put(stats);
        if (t.failed || !t.buf) {
                free(t.buf);
                return NULL;
        }
        return t.buf;
}

/* ---- the query ---- */

static void query_free(struct observe_query *q)
{
        for (int i = 0; i < _PART_MAX; i++) {
                module_call_cancel(q->parts[i].call);
                json_object_put(q->parts[i].body);
        }
        free(q);
}

static void query_finish(struct observe_query *q)
{
        if (q->kind == OBSERVE_METRICS) {
                char *text = render_metrics(q);
                if (text)
                        q->cb(200, "text/plain; version=0.0.4; charset=utf-8", text, q->userdata);
                else
                        q->cb(500, "application/json", "{\"error\":{\"code\":500,\"message\":\"out of memory\"}}",
                              q->userdata);
                free(text);
        } else {
                struct json_object *root = q->kind == OBSERVE_HOST ? render_host(q) : render_stats(q);
                q->cb(200, "application/json", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN),
                      q->userdata);
                json_object_put(root);
        }
        query_free(q);
}

static void on_part_reply(const struct module_result *res, void *userdata)
{
        struct part *p = userdata;
        struct observe_query *q = p->q;

        p->call = NULL;
        if (res->status < 0)
                p->body = unavailable(p->q, parts[p->id].plug, res->error ? res->error : strerror(-res->status));
        else
                p->body = proto_value_to_json(res->body);
        if (--q->pending == 0)
                query_finish(q);
}

int observe_start(const struct nova_config *cfg, struct modules *modules, const struct instance_store *instances,
                  const struct placement *placement, enum observe_kind kind, const struct instance *instance,
                  observe_done_cb cb, void *userdata, struct observe_query **ret)
{
        _cleanup_free_ struct proto_writer *w = malloc(sizeof(*w));
        struct observe_query *q;

        assert(cfg && modules && instances && cb && ret);
        q = w ? calloc(1, sizeof(*q)) : NULL;
        if (!q)
                return -ENOMEM;
        q->kind = kind;
        q->cfg = cfg;
        q->instances = instances;
        q->modules = modules;
        q->placement = placement;
        q->cb = cb;
        q->userdata = userdata;
        if (instance)
                memcpy(q->instance_uuid, instance->uuid, sizeof(q->instance_uuid));
        q->pending = 1; /* held until every call is sent */
        for (int i = 0; i < _PART_MAX; i++) {
                struct part *p = &q->parts[i];
                char err[512];

                p->q = q;
                p->id = (enum part_id)i;
                p->wanted = kind == OBSERVE_METRICS ||
                            (kind == OBSERVE_HOST && (i == PART_INVENTORY || i == PART_POOL)) ||
                            (kind == OBSERVE_STATS && i != PART_INVENTORY && i != PART_POOL);
                if (!p->wanted)
                        continue;
                module_request_init(w, parts[i]);
                q->pending++;
                if (modules_call(q->modules, parts[i].plug, w, 0, on_part_reply, p, &p->call, err, sizeof(err)) < 0) {
                        p->body = unavailable(q, parts[i].plug, err);
                        q->pending--;
                }
        }
        *ret = q;
        if (--q->pending == 0) {
                *ret = NULL;
                query_finish(q);
        }
        return 0;
}

void observe_cancel(struct observe_query *q)
{
        if (q)
                query_free(q);
}
