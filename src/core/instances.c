/* instances.c - see instances.h */
#include "instances.h"

#include "log.h"
#include "plugs.h"
#include "procfs.h"

#include <assert.h>
#include <dirent.h>
#include <json-c/json.h>
#include <limits.h>
#include <time.h>

struct instance_store {
        char dir[PATH_MAX];             /* <state_dir>/instances */
        struct instance *list;
        size_t count;
};

struct instance *instances_first(const struct instance_store *store)
{
        assert(store);
        return store->list;
}

size_t instances_count(const struct instance_store *store)
{
        assert(store);
        return store->count;
}

struct instance *instance_find(const struct instance_store *store, const char *uuid)
{
        if (!uuid)
                return NULL;
        for (struct instance *i = store->list; i; i = i->next)
                if (streq(i->uuid, uuid))
                        return i;
        return NULL;
}

struct instance *instance_find_by_name(const struct instance_store *store, const char *name)
{
        if (!name)
                return NULL;
        for (struct instance *i = store->list; i; i = i->next)
                if (streq(i->name, name))
                        return i;
        return NULL;
}

static int instance_path(const struct instance_store *store, const char *uuid, char *buf, size_t size)
{
        return xsnprintf(buf, size, "%s/%s.json", store->dir, uuid);
}

struct instance_port *instance_find_port(const struct instance_store *store, const char *port_uuid,
                                        struct instance **ret_inst)
{
        if (!port_uuid)
                return NULL;
        for (struct instance *i = store->list; i; i = i->next)
                for (size_t p = 0; p < i->n_ports; p++)
                        if (streq(i->ports[p].port_uuid, port_uuid)) {
                                if (ret_inst)
                                        *ret_inst = i;
                                return &i->ports[p];
                        }
        return NULL;
}

int instance_cpu_set_canonical(const char *s, char ret[INSTANCE_CPU_SET_MAX])
{
        struct cpuset set;
        char canon[INSTANCE_CPU_SET_MAX];
        size_t n = strlen(s);

        assert(s && ret);
        if (n == 0 || n >= INSTANCE_CPU_SET_MAX || s[n - 1] == '\n' || cpuset_parse(s, n, &set) < 0 ||
            cpuset_count(&set) == 0 || cpuset_format(&set, canon, sizeof(canon)) < 0)
                return -EINVAL;
        memcpy(ret, canon, sizeof(canon));
        return 0;
}

/* One public key line: 1..INSTANCE_KEY_MAX printable ASCII bytes (no control characters). */
static bool key_is_valid(const char *s)
{
        size_t n = strnlen(s, INSTANCE_KEY_MAX + 1);

        if (n == 0 || n > INSTANCE_KEY_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        return false;
        return true;
}

/* Strict base64 (RFC 4648, padding, no whitespace) of 1..INSTANCE_USER_DATA_MAX characters. */
static bool user_data_is_valid(const char *s)
{
        size_t n = strnlen(s, INSTANCE_USER_DATA_MAX + 1), pad = 0;

        if (n == 0 || n > INSTANCE_USER_DATA_MAX || n % 4 != 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == '=') {
                        if (i < n - 2)
                                return false;
                        pad++;
                } else if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                    c == '+' || c == '/'))
                        return false;
        }
        return true;
}

void instance_template_clear(struct instance *tmpl)
{
        if (!tmpl)
                return;
        free(tmpl->user_data);
        tmpl->user_data = NULL;
        free(tmpl->key);
        tmpl->key = NULL;
        free(tmpl->cmdline);
        tmpl->cmdline = NULL;
        free(tmpl->ports);
        tmpl->ports = NULL;
        tmpl->n_ports = 0;
}

static const char *const vm_state_names[_VM_STATE_MAX] = {
        [VM_ACTIVE] = "active", [VM_STOPPED] = "stopped", [VM_ERROR] = "error",
};
static const char *const task_names[_TASK_MAX] = {
        [TASK_NONE] = "", [TASK_BUILDING] = "building", [TASK_DELETING] = "deleting", [TASK_STOPPING] = "stopping",
        [TASK_STARTING] = "starting", [TASK_REBOOTING] = "rebooting", [TASK_PINNING] = "pinning",
        [TASK_MIGRATING] = "migrating", [TASK_MIGRATING_IN] = "migrating_in",
};
static const char *const pin_state_names[_PIN_STATE_MAX] = {
        [PIN_NONE] = "", [PIN_PENDING] = "pending", [PIN_APPLIED] = "applied", [PIN_UNPLUGGED] = "unplugged",
        [PIN_FAILED] = "failed",
};

static int name_lookup(const char *const *names, size_t n, const char *s)
{
        for (size_t i = 0; s && i < n; i++)
                if (streq(names[i], s))
                        return (int)i;
        return -EINVAL;
}

const char *vm_state_to_string(enum vm_state s) { return (unsigned)s < _VM_STATE_MAX ? vm_state_names[s] : NULL; }
const char *instance_task_to_string(enum instance_task t) { return (unsigned)t < _TASK_MAX ? task_names[t] : NULL; }
const char *pin_state_to_string(enum pin_state s) { return (unsigned)s < _PIN_STATE_MAX ? pin_state_names[s] : NULL; }
int vm_state_from_string(const char *s) { return name_lookup(vm_state_names, _VM_STATE_MAX, s); }
int instance_task_from_string(const char *s) { return name_lookup(task_names, _TASK_MAX, s); }
int pin_state_from_string(const char *s) { return name_lookup(pin_state_names, _PIN_STATE_MAX, s); }

void instance_pin_message(const struct instance *inst, char *buf, size_t size)
{
        enum pin_state st = inst->pin_state;

        assert(inst && buf);
        if (!inst->cpu_set[0])
                (void)snprintf(buf, size, "%s", "");
        else if (st == PIN_APPLIED)
                (void)snprintf(buf, size, "cpu_set %s applied (%s)", inst->cpu_set, inst->pin_detail);
        else if (st == PIN_UNPLUGGED)
                (void)snprintf(buf, size, "cpu_set %s not applied: process-control is not connected", inst->cpu_set);
        else if (st == PIN_FAILED)
                (void)snprintf(buf, size, "cpu_set %s not applied: %s", inst->cpu_set, inst->pin_detail);
        else
                (void)snprintf(buf, size, "cpu_set %s not applied yet: %s", inst->cpu_set,
                               inst->vm_state == VM_ACTIVE ? "pinned once the instance's QEMU runs"
                                                               : "the instance is not running");
}

/* "cpu_set" and "pinning" of the API view. */
static void pinning_to_json(const struct instance *inst, struct json_object *o)
{
        struct json_object *p;
        char msg[512], fix[128];

        if (!inst->cpu_set[0]) {
                json_object_object_add(o, "cpu_set", NULL);
                json_object_object_add(o, "pinning", NULL);
                return;
        }
        json_object_object_add(o, "cpu_set", json_object_new_string(inst->cpu_set));
        p = json_object_new_object();
        instance_pin_message(inst, msg, sizeof(msg));
        json_object_object_add(p, "state", json_object_new_string(pin_state_to_string(inst->pin_state)));
        json_object_object_add(p, "applied", json_object_new_boolean(inst->pin_state == PIN_APPLIED));
        json_object_object_add(p, "message", json_object_new_string(msg));
        if (inst->pin_state == PIN_UNPLUGGED && plug_fix_text(PLUG_PROCESS_CONTROL, fix, sizeof(fix)) == 0) {
                json_object_object_add(p, "plug", json_object_new_string(plug_table[PLUG_PROCESS_CONTROL].name));
                json_object_object_add(p, "fix", json_object_new_string(fix));
        } else
                json_object_object_add(p, "fix", NULL);
        json_object_object_add(o, "pinning", p);
}

/* ips, secgroups, filtered: the same members in the API view and the store-> */
static void port_security_to_json(const struct instance_port *ip, struct json_object *p)
{
        struct json_object *ips = json_object_new_array(), *groups = json_object_new_array();

        for (size_t k = 0; k < ip->n_ips; k++)
                json_object_array_add(ips, json_object_new_string(ip->ips[k]));
        for (size_t k = 0; k < ip->n_secgroups; k++)
                json_object_array_add(groups, json_object_new_string(ip->secgroups[k]));
        json_object_object_add(p, "ips", ips);
        json_object_object_add(p, "secgroups", groups);
        json_object_object_add(p, "filtered", json_object_new_boolean(ip->filtered));
}

/* "ips" of a port: canonical addresses, no repeats. 0 or -EINVAL with the reason. */
static int parse_ips(struct json_object *list, struct instance_port *ip, char *err, size_t errlen)
{
        size_t n;

        if (!json_object_is_type(list, json_type_array) || (n = json_object_array_length(list)) > PORT_MAX_IPS)
                return snprintf(err, errlen, "ips: must be a list of at most %d IP addresses", PORT_MAX_IPS), -EINVAL;
        for (size_t k = 0; k < n; k++) {
                struct json_object *v = json_object_array_get_idx(list, k);
                const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
                if (ip_canonical(s, ip->ips[k]) < 0)
                        return snprintf(err, errlen, "ips[%zu]: '%.48s' is not an IPv4 or IPv6 address", k, s), -EINVAL;
                for (size_t j = 0; j < k; j++)
                        if (streq(ip->ips[j], ip->ips[k]))
                                return snprintf(err, errlen, "ips[%zu]: %s is listed twice", k, ip->ips[k]), -EINVAL;
        }
        ip->n_ips = n;
        return 0;
}

/* A group resolver and its data. */
struct resolver {
        secgroup_resolve_fn fn;         /* NULL: no group resolves */
        const void *data;
};

static int port_parse_secgroups(struct json_object *list, const struct resolver *res,
                                  char ret[PORT_MAX_GROUPS][UUID_STR_LEN + 1], size_t *ret_n, char *err, size_t errlen)
{
        char ids[PORT_MAX_GROUPS][UUID_STR_LEN + 1];
        size_t n;

        assert(ret && ret_n && err); /* list may be JSON null: refused below */
        if (!json_object_is_type(list, json_type_array) || (n = json_object_array_length(list)) > PORT_MAX_GROUPS)
                return snprintf(err, errlen, "secgroups: must be a list of at most %d group names or ids",
                                PORT_MAX_GROUPS), -EINVAL;
        for (size_t k = 0; k < n; k++) {
                struct json_object *v = json_object_array_get_idx(list, k);
                const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
                if (!s)
                        return snprintf(err, errlen, "secgroups[%zu]: must be a group name or id", k), -EINVAL;
                if (!res->fn || res->fn(res->data, s, ids[k]) < 0)
                        return snprintf(err, errlen, "secgroups[%zu]: no security group '%.64s'", k, s), -ENOENT;
                for (size_t j = 0; j < k; j++)
                        if (streq(ids[j], ids[k]))
                                return snprintf(err, errlen, "secgroups[%zu]: group '%.64s' is listed twice", k, s),
                                       -EINVAL;
        }
        memcpy(ret, ids, n * sizeof(ids[0]));
        *ret_n = n;
        return 0;
}

int instance_port_parse_secgroups(struct json_object *list, secgroup_resolve_fn resolve, const void *resolve_data,
                                  char ret[PORT_MAX_GROUPS][UUID_STR_LEN + 1], size_t *ret_n, char *err, size_t errlen)
{
        const struct resolver res = { resolve, resolve_data };

        return port_parse_secgroups(list, &res, ret, ret_n, err, errlen);
}

struct json_object *instance_to_json(const struct instance *inst)
{
        struct json_object *o = json_object_new_object(), *ports = json_object_new_array();
        char domain[64], tap[IFNAME_MAX];

        assert(inst);
        json_object_object_add(o, "uuid", json_object_new_string(inst->uuid));
        json_object_object_add(o, "name", json_object_new_string(inst->name));
        json_object_object_add(o, "vcpus", json_object_new_int((int)inst->vcpus));
        json_object_object_add(o, "memory_mb", json_object_new_int64(inst->memory_mb));
        json_object_object_add(o, "vm_state", json_object_new_string(vm_state_to_string(inst->vm_state)));
        json_object_object_add(o, "task",
                               inst->task != TASK_NONE ? json_object_new_string(instance_task_to_string(inst->task))
                                                       : NULL);
        json_object_object_add(o, "power_state", json_object_new_string(inst->power_state));
        json_object_object_add(o, "fault", inst->fault[0] ? json_object_new_string(inst->fault) : NULL);
        json_object_object_add(o, "created_at", json_object_new_int64((int64_t)inst->created_at));
        pinning_to_json(inst, o);
        json_object_object_add(o, "image_uuid", inst->image_uuid[0] ? json_object_new_string(inst->image_uuid) : NULL);
        json_object_object_add(o, "disk_gb", json_object_new_int64(inst->disk_gb));
        if (inst->kernel_uuid[0]) {
                json_object_object_add(o, "kernel_uuid", json_object_new_string(inst->kernel_uuid));
                json_object_object_add(o, "ramdisk_uuid", json_object_new_string(inst->ramdisk_uuid));
                json_object_object_add(o, "cmdline", json_object_new_string(inst->cmdline ? inst->cmdline : ""));
        }
        json_object_object_add(o, "key", json_object_new_boolean(inst->key != NULL));
        json_object_object_add(o, "user_data", json_object_new_boolean(inst->user_data != NULL));
        (void)snprintf(domain, sizeof(domain), "%s%s", LIBVIRT_DOMAIN_PREFIX, inst->uuid);
        json_object_object_add(o, "domain", json_object_new_string(domain));
        for (size_t i = 0; i < inst->n_ports; i++) {
                struct json_object *p = json_object_new_object();
                json_object_object_add(p, "port_uuid", json_object_new_string(inst->ports[i].port_uuid));
                json_object_object_add(p, "mac", json_object_new_string(inst->ports[i].mac));
                json_object_object_add(p, "mtu", json_object_new_int((int)inst->ports[i].mtu));
                if (tap_name_from_port(inst->ports[i].port_uuid, tap) == 0)
                        json_object_object_add(p, "tap", json_object_new_string(tap));
                if (inst->ports[i].filtered && port_dev_name("qbr", inst->ports[i].port_uuid, tap) == 0)
                        json_object_object_add(p, "bridge", json_object_new_string(tap));
                port_security_to_json(&inst->ports[i], p);
                json_object_array_add(ports, p);
        }
        json_object_object_add(o, "ports", ports);
        return o;
}

/* The stored form: intent only (no task, no power state). */
static struct json_object *instance_to_stored_json(const struct instance *inst)
{
        struct json_object *o = json_object_new_object(), *ports = json_object_new_array();

        json_object_object_add(o, "version", json_object_new_int(1));
        json_object_object_add(o, "uuid", json_object_new_string(inst->uuid));
        json_object_object_add(o, "name", json_object_new_string(inst->name));
        json_object_object_add(o, "vcpus", json_object_new_int((int)inst->vcpus));
        json_object_object_add(o, "memory_mb", json_object_new_int64(inst->memory_mb));
        json_object_object_add(o, "vm_state", json_object_new_string(vm_state_to_string(inst->vm_state)));
        json_object_object_add(o, "task", json_object_new_string(instance_task_to_string(inst->task)));
        json_object_object_add(o, "fault", json_object_new_string(inst->fault));
        json_object_object_add(o, "created_at", json_object_new_int64((int64_t)inst->created_at));
        json_object_object_add(o, "cpu_set", json_object_new_string(inst->cpu_set));
        json_object_object_add(o, "pin_state", json_object_new_string(pin_state_to_string(inst->pin_state)));
        json_object_object_add(o, "pin_detail", json_object_new_string(inst->pin_detail));
        if (inst->image_uuid[0]) {
                json_object_object_add(o, "image_uuid", json_object_new_string(inst->image_uuid));
                json_object_object_add(o, "disk_gb", json_object_new_int64(inst->disk_gb));
                json_object_object_add(o, "root_disk", json_object_new_boolean(inst->root_disk));
                json_object_object_add(o, "key", json_object_new_string(inst->key ? inst->key : ""));
                if (inst->user_data)
                        json_object_object_add(o, "user_data", json_object_new_string(inst->user_data));
                if (inst->kernel_uuid[0]) {
                        json_object_object_add(o, "kernel_uuid", json_object_new_string(inst->kernel_uuid));
                        json_object_object_add(o, "ramdisk_uuid", json_object_new_string(inst->ramdisk_uuid));
                        json_object_object_add(o, "cmdline", json_object_new_string(inst->cmdline ? inst->cmdline : ""));
                }
        }
        for (size_t i = 0; i < inst->n_ports; i++) {
                struct json_object *p = json_object_new_object();
                json_object_object_add(p, "port_uuid", json_object_new_string(inst->ports[i].port_uuid));
                json_object_object_add(p, "mac", json_object_new_string(inst->ports[i].mac));
                json_object_object_add(p, "mtu", json_object_new_int((int)inst->ports[i].mtu));
                port_security_to_json(&inst->ports[i], p);
                json_object_array_add(ports, p);
        }
        json_object_object_add(o, "ports", ports);
        return o;
}

static const char *get_str(struct json_object *o, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static bool get_u32(struct json_object *o, const char *key, uint32_t min, uint32_t max, uint32_t *ret)
{
        struct json_object *v;
        int64_t n;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return false;
        n = json_object_get_int64(v);
        if (n < min || n > max)
                return false;
        *ret = (uint32_t)n;
        return true;
}


/* One stored port (ports[i]) into *ip. 0 or -EBADMSG with the reason. */
static int stored_port_from_json(struct json_object *p, size_t i, struct instance_port *ip, char *why, size_t whylen)
{
        const char *pu = get_str(p, "port_uuid"), *mac = get_str(p, "mac");
        struct json_object *v;

#define BAD(...) do { (void)snprintf(why, whylen, __VA_ARGS__); return -EBADMSG; } while (0)
        if (!pu || !uuid_is_valid(pu) || !mac || !mac_is_valid(mac) || !get_u32(p, "mtu", 68, 65535, &ip->mtu))
                BAD("ports[%zu]", i);
        memcpy(ip->port_uuid, pu, UUID_STR_LEN + 1);
        memcpy(ip->mac, mac, MAC_STR_LEN + 1);
        /* ips, secgroups, filtered: absent in files written before security groups */
        if (json_object_object_get_ex(p, "ips", &v) && parse_ips(v, ip, why, whylen) < 0)
                BAD("ports[%zu].ips", i);
        if (json_object_object_get_ex(p, "secgroups", &v)) {
                size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : SIZE_MAX;
                if (n > PORT_MAX_GROUPS)
                        BAD("ports[%zu].secgroups", i);
                for (size_t k = 0; k < n; k++) {
                        struct json_object *g = json_object_array_get_idx(v, k);
                        const char *gs = json_object_is_type(g, json_type_string) ? json_object_get_string(g) : "";
                        if (!uuid_is_valid(gs))
                                BAD("ports[%zu].secgroups[%zu]", i, k);
                        for (size_t j = 0; j < k; j++)
                                if (streq(ip->secgroups[j], gs))
                                        BAD("ports[%zu].secgroups[%zu] repeated", i, k);
                        memcpy(ip->secgroups[k], gs, UUID_STR_LEN + 1);
                }
                ip->n_secgroups = n;
        }
        if (json_object_object_get_ex(p, "filtered", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        BAD("ports[%zu].filtered", i);
                ip->filtered = json_object_get_boolean(v);
        }
#undef BAD
        return 0;
}

/* cpu_set, pin_state, pin_detail of a stored instance: absent in files written before
 * pinning. 0 or -EBADMSG with the reason. */
static int stored_pinning_from_json(struct json_object *o, struct instance *inst, char *why, size_t whylen)
{
        struct json_object *v;
        const char *s;
        int r;

#define BAD(...) do { (void)snprintf(why, whylen, __VA_ARGS__); return -EBADMSG; } while (0)
        if (!json_object_object_get_ex(o, "cpu_set", &v))
                return 0;
        s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
        if (!s || (s[0] && (instance_cpu_set_canonical(s, inst->cpu_set) < 0 || !streq(s, inst->cpu_set))))
                BAD("cpu_set");
        r = pin_state_from_string(get_str(o, "pin_state"));
        if (r < 0 || (inst->cpu_set[0] ? r == PIN_NONE : r != PIN_NONE))
                BAD("pin_state");
        inst->pin_state = (enum pin_state)r;
        s = get_str(o, "pin_detail");
        if (!s || strscpy(inst->pin_detail, s, sizeof(inst->pin_detail)) < 0)
                BAD("pin_detail");
#undef BAD
        return 0;
}

/* image_uuid, disk_gb, root_disk, key, user_data of a stored instance: absent for a diskless instance
 * (and before disks). user_data, key and cmdline go to *ret_user_data, *ret_key, *ret_cmdline (copies,
 * or NULL for none or ""; the caller frees them whatever the result). 0, -ENOMEM or -EBADMSG with the
 * reason. */
static int stored_disk_from_json(struct json_object *o, struct instance *inst, char **ret_user_data, char **ret_key,
                                 char **ret_cmdline, char *why, size_t whylen)
{
        struct json_object *v;
        const char *s;

#define BAD(...) do { (void)snprintf(why, whylen, __VA_ARGS__); return -EBADMSG; } while (0)
        s = get_str(o, "image_uuid");
        if (!s) {
                if (json_object_object_get_ex(o, "disk_gb", NULL) || json_object_object_get_ex(o, "key", NULL) ||
                    json_object_object_get_ex(o, "root_disk", NULL) ||
                    json_object_object_get_ex(o, "user_data", NULL) || json_object_object_get_ex(o, "kernel_uuid", NULL) ||
                    json_object_object_get_ex(o, "ramdisk_uuid", NULL) || json_object_object_get_ex(o, "cmdline", NULL))
                        BAD("disk_gb, key, user_data or a kernel without image_uuid");
                return 0;
        }
        if (!uuid_is_valid(s))
                BAD("image_uuid");
        memcpy(inst->image_uuid, s, UUID_STR_LEN + 1);
        if (!get_u32(o, "disk_gb", 0, INSTANCE_DISK_GB_MAX, &inst->disk_gb))
                BAD("disk_gb");
        if (json_object_object_get_ex(o, "root_disk", &v)) {
                if (!json_object_is_type(v, json_type_boolean))
                        BAD("root_disk");
                inst->root_disk = json_object_get_boolean(v);
        } else {
                /* written before the mark existed: an idle instance not in error finished its boot */
                inst->root_disk = inst->task == TASK_NONE && inst->vm_state != VM_ERROR;
        }
        s = get_str(o, "key");
        if (!s || (s[0] && !key_is_valid(s)))
                BAD("key");
        if (s[0] && !(*ret_key = strdup(s)))
                return -ENOMEM;
        s = get_str(o, "user_data");
        if (s && !user_data_is_valid(s))
                BAD("user_data");
        if (json_object_object_get_ex(o, "kernel_uuid", NULL) || json_object_object_get_ex(o, "ramdisk_uuid", NULL) ||
            json_object_object_get_ex(o, "cmdline", NULL)) {
                const char *k = get_str(o, "kernel_uuid"), *rd = get_str(o, "ramdisk_uuid"), *c = get_str(o, "cmdline");

                if (!k || !uuid_is_valid(k) || !rd || !uuid_is_valid(rd) || !c || (c[0] && !kernel_cmdline_is_valid(c)))
                        BAD("kernel_uuid, ramdisk_uuid, cmdline");
                memcpy(inst->kernel_uuid, k, UUID_STR_LEN + 1);
                memcpy(inst->ramdisk_uuid, rd, UUID_STR_LEN + 1);
                if (c[0] && !(*ret_cmdline = strdup(c)))
                        return -ENOMEM;
        }
        if (s)
                *ret_user_data = strdup(s);
        if (s && !*ret_user_data)
                return -ENOMEM;
#undef BAD
        return 0;
}

/* Parse a stored instance strictly. 0 or -EBADMSG with the reason. */
static int instance_from_json(struct json_object *o, struct instance *ret, char *why, size_t whylen)
{
        struct instance inst = { 0 };
        _cleanup_free_ char *user_data = NULL, *key = NULL, *cmdline = NULL;
        _cleanup_free_ struct instance_port *port_array = NULL;
        struct json_object *ports, *v;
        const char *s;
        uint32_t version;
        int r;

#define BAD(...) do { (void)snprintf(why, whylen, __VA_ARGS__); return -EBADMSG; } while (0)
        if (!json_object_is_type(o, json_type_object))
                BAD("not a JSON object");
        if (!get_u32(o, "version", 1, 1, &version))
                BAD("unsupported version");
        s = get_str(o, "uuid");
        if (!s || !uuid_is_valid(s))
                BAD("uuid");
        memcpy(inst.uuid, s, UUID_STR_LEN + 1);
        s = get_str(o, "name");
        if (!s || !instance_name_is_valid(s))
                BAD("name");
        (void)strscpy(inst.name, s, sizeof(inst.name));
        if (!get_u32(o, "vcpus", 1, LIBVIRT_MAX_VCPUS, &inst.vcpus))
                BAD("vcpus");
        if (!get_u32(o, "memory_mb", LIBVIRT_MIN_MEMORY_MB, LIBVIRT_MAX_MEMORY_MB, &inst.memory_mb))
                BAD("memory_mb");
        r = vm_state_from_string(get_str(o, "vm_state"));
        if (r < 0)
                BAD("vm_state");
        inst.vm_state = (enum vm_state)r;
        r = instance_task_from_string(get_str(o, "task"));
        if (r < 0)
                BAD("task");
        inst.task = (enum instance_task)r;
        s = get_str(o, "fault");
        if (!s || strscpy(inst.fault, s, sizeof(inst.fault)) < 0)
                BAD("fault");
        if (!json_object_object_get_ex(o, "created_at", &v) || !json_object_is_type(v, json_type_int))
                BAD("created_at");
        inst.created_at = (uint64_t)json_object_get_int64(v);
        r = stored_pinning_from_json(o, &inst, why, whylen);
        if (r < 0)
                return r;
        r = stored_disk_from_json(o, &inst, &user_data, &key, &cmdline, why, whylen);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(o, "ports", &ports) || !json_object_is_type(ports, json_type_array) ||
            json_object_array_length(ports) > LIBVIRT_MAX_PORTS)
                BAD("ports");
        inst.n_ports = json_object_array_length(ports);
        if (inst.n_ports > 0) {
                port_array = calloc(inst.n_ports, sizeof(*port_array));
                if (!port_array)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < inst.n_ports; i++) {
                r = stored_port_from_json(json_object_array_get_idx(ports, i), i, &port_array[i], why, whylen);
                if (r < 0)
                        return r;
        }
#undef BAD
        (void)strscpy(inst.power_state, "unknown", sizeof(inst.power_state));
        inst.user_data = TAKE_PTR(user_data);
        inst.key = TAKE_PTR(key);
        inst.cmdline = TAKE_PTR(cmdline);
        inst.ports = TAKE_PTR(port_array);
        *ret = inst;
        return 0;
}

static int instance_write(struct instance *inst)
{
        struct json_object *o = instance_to_stored_json(inst);
        const char *text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
        char path[PATH_MAX];
        int r = instance_path(inst->store, inst->uuid, path, sizeof(path));

        if (r == 0)
                r = text ? write_file_atomic(path, text, strlen(text), 0600) : -ENOMEM;
        json_object_put(o);
        if (r < 0 && r != inst->unsaved) /* logged once per cause, not at every retry */
                log_err("cannot record instance %s (%s): %s", inst->name, inst->uuid, strerror(-r));
        if (r == 0 && inst->unsaved)
                log_info("instance %s (%s): its record is written again", inst->name, inst->uuid);
        inst->unsaved = r;
        return r;
}

/* Write the record of inst (temp file, fsync, rename: the old record or the
 * new one, never half of one). On success, the records of other instances
 * whose last write failed are written too (the store has room again). */
int instance_save(struct instance *inst)
{
        int r;

        assert(inst && inst->store);
        r = instance_write(inst);
        if (r < 0)
                return r;
        (void)instances_save_unsaved(inst->store);
        return 0;
}

size_t instances_save_unsaved(struct instance_store *store)
{
        for (struct instance *i = store ? store->list : NULL; i; i = i->next)
                if (i->unsaved && instance_write(i) < 0)
                        break;
        return instances_unsaved(store);
}

size_t instances_unsaved(const struct instance_store *store)
{
        size_t n = 0;

        for (const struct instance *i = store ? store->list : NULL; i; i = i->next)
                n += i->unsaved != 0;
        return n;
}

int instance_add(struct instance_store *store, const struct instance *tmpl, struct instance **ret)
{
        struct instance *inst;
        int r;

        assert(store && tmpl);
        if (instance_find(store, tmpl->uuid) || instance_find_by_name(store, tmpl->name))
                return -EEXIST;
        if (store->count >= INSTANCES_MAX)
                return -ENOSPC;
        inst = malloc(sizeof(*inst));
        if (!inst)
                return -ENOMEM;
        *inst = *tmpl;
        inst->user_data = NULL;
        inst->key = NULL;
        inst->cmdline = NULL;
        inst->ports = NULL;
        if (tmpl->n_ports > 0) {
                inst->ports = reallocarray(NULL, tmpl->n_ports, sizeof(tmpl->ports[0]));
                if (!inst->ports) {
                        free(inst);
                        return -ENOMEM;
                }
                memcpy(inst->ports, tmpl->ports, tmpl->n_ports * sizeof(tmpl->ports[0]));
        }
        if ((tmpl->user_data && !(inst->user_data = strdup(tmpl->user_data))) ||
            (tmpl->key && !(inst->key = strdup(tmpl->key))) ||
            (tmpl->cmdline && !(inst->cmdline = strdup(tmpl->cmdline)))) {
                instance_template_clear(inst);
                free(inst);
                return -ENOMEM;
        }
        inst->next = NULL;
        inst->op = NULL;
        inst->unsaved = 0;
        inst->store = store;
        if (inst->created_at == 0)
                inst->created_at = (uint64_t)time(NULL);
        r = instance_save(inst);
        if (r < 0) {
                instance_template_clear(inst);
                free(inst);
                return r;
        }
        inst->next = store->list;
        store->list = inst;
        store->count++;
        if (ret)
                *ret = inst;
        return 0;
}

int instance_remove(struct instance *inst)
{
        char path[PATH_MAX];
        struct instance_store *store = inst->store;
        int r = instance_path(store, inst->uuid, path, sizeof(path));

        assert(inst && store);
        if (r < 0)
                return r;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        for (struct instance **pp = &store->list; *pp; pp = &(*pp)->next)
                if (*pp == inst) {
                        *pp = inst->next;
                        break;
                }
        store->count--;
        instance_template_clear(inst);
        free(inst);
        return 0;
}

/* Every instance file of the store's directory into the store. */
static int load_dir(struct instance_store *store, unsigned *ret_skipped)
{
        /* instance_parse_stored() is declared in instances.h */
        _cleanup_(closedirp) DIR *d = NULL;
        unsigned skipped = 0;
        struct dirent *de;
        int r;

        d = opendir(store->dir);
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                _cleanup_free_ char *text = NULL;
                struct instance tmp, *inst;
                bool parsed;
                char path[PATH_MAX], why[128] = "";
                size_t n = strlen(de->d_name);

                if (n != UUID_STR_LEN + 5 || strcmp(de->d_name + UUID_STR_LEN, ".json") != 0)
                        continue; /* temp files of an interrupted write, or foreign files */
                if (xsnprintf(path, sizeof(path), "%s/%s", store->dir, de->d_name) < 0)
                        continue;
                size_t len = 0;
                r = read_file_bounded(path, 256 * 1024, &text, &len); /* user_data: up to 85 KiB */
                if (r == 0)
                        r = instance_parse_stored(text, len, &tmp, why, sizeof(why));
                parsed = r == 0;
                if (r == 0 && strncmp(de->d_name, tmp.uuid, UUID_STR_LEN) != 0)
                        r = -EBADMSG, (void)snprintf(why, sizeof(why), "file name and uuid differ");
                if (r == 0 && (instance_find(store, tmp.uuid) || instance_find_by_name(store, tmp.name)))
                        r = -EBADMSG, (void)snprintf(why, sizeof(why), "duplicate uuid or name");
                if (r == 0 && store->count >= INSTANCES_MAX)
                        r = -EBADMSG, (void)snprintf(why, sizeof(why), "more than %d instances", INSTANCES_MAX);
                if (r < 0) {
                        if (parsed)
                                instance_template_clear(&tmp);
                        log_err("instance store: %s is unusable (%s); left in place, not loaded", path,
                                why[0] ? why : "unreadable or not JSON");
                        skipped++;
                        continue;
                }
                inst = malloc(sizeof(*inst));
                if (!inst) {
                        instance_template_clear(&tmp);
                        return -ENOMEM;
                }
                *inst = tmp;
                inst->unsaved = 0;
                inst->store = store;
                inst->next = store->list;
                store->list = inst;
                store->count++;
        }
        if (ret_skipped)
                *ret_skipped = skipped;
        return 0;
}

int instances_load(const char *state_dir, struct instance_store **ret, unsigned *ret_skipped)
{
        struct instance_store *store;
        int r;

        assert(state_dir && ret);
        store = calloc(1, sizeof(*store));
        if (!store)
                return -ENOMEM;
        r = xsnprintf(store->dir, sizeof(store->dir), "%s/instances", state_dir);
        if (r == 0)
                r = mkdir_p(store->dir, 0700);
        if (r == 0)
                r = load_dir(store, ret_skipped);
        if (r < 0) {
                instances_free(store);
                return r;
        }
        *ret = store;
        return 0;
}

struct instance_store *instances_free(struct instance_store *store)
{
        if (!store)
                return NULL;
        while (store->list) {
                struct instance *next = store->list->next;
                instance_template_clear(store->list);
                free(store->list);
                store->list = next;
        }
        free(store);
        return NULL;
}

struct json_object *instance_stored_json(const struct instance *inst) { return instance_to_stored_json(inst); }

int instance_parse_stored(const char *text, size_t len, struct instance *ret, char *why, size_t whylen)
{
        struct json_tokener *tok = json_tokener_new_ex(8);
        struct json_object *o;
        int r;

        assert(text && ret && why);
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, text, (int)len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len) {
                (void)snprintf(why, whylen, "not a single JSON document");
                json_object_put(o);
                json_tokener_free(tok);
                return -EBADMSG;
        }
        json_tokener_free(tok);
        r = instance_from_json(o, ret, why, whylen);
        json_object_put(o);
        return r;
}

/* One port object of a boot request (ports[i]) into *ip, identifiers generated
 * where not given. *ret_own_groups: it lists its own groups. 0 or -errno with the reason. */
static int parse_request_port(struct json_object *p, size_t i, const struct resolver *res, struct instance_port *ip,
                              bool *ret_own_groups, char *err, size_t errlen)
{
        char why[160];
        int r;

        if (!json_object_is_type(p, json_type_object))
                return snprintf(err, errlen, "ports[%zu]: must be an object", i), -EINVAL;
        if (uuid_new_str(ip->port_uuid) < 0 || mac_generate(ip->mac) < 0)
                return -EIO;
        ip->mtu = 1500;
        json_object_object_foreach(p, pk, pv) {
                const char *ps = json_object_is_type(pv, json_type_string) ? json_object_get_string(pv) : NULL;
                int64_t pn = json_object_is_type(pv, json_type_int) ? json_object_get_int64(pv) : -1;

                if (streq(pk, "port_uuid") && ps && uuid_is_valid(ps))
                        memcpy(ip->port_uuid, ps, sizeof(ip->port_uuid));
                else if (streq(pk, "mac") && ps && mac_is_valid(ps))
                        memcpy(ip->mac, ps, sizeof(ip->mac));
                else if (streq(pk, "mtu") && pn >= 68 && pn <= 65535)
                        ip->mtu = (uint32_t)pn;
                else if (streq(pk, "ips")) {
                        if (parse_ips(pv, ip, why, sizeof(why)) < 0)
                                return snprintf(err, errlen, "ports[%zu].%s", i, why), -EINVAL;
                } else if (streq(pk, "secgroups")) {
                        r = port_parse_secgroups(pv, res, ip->secgroups, &ip->n_secgroups, why,
                                                          sizeof(why));
                        if (r < 0)
                                return snprintf(err, errlen, "ports[%zu].%s", i, why), r;
                        *ret_own_groups = true;
                } else
                        return snprintf(err, errlen, "ports[%zu].%.32s: %s", i, pk,
                                        streq(pk, "port_uuid") ? "not a canonical lowercase UUID"
                                        : streq(pk, "mac")     ? MAC_RULE_TEXT
                                        : streq(pk, "mtu")     ? "must be an integer in 68..65535"
                                                               : "unknown field"), -EINVAL;
        }
        return 0;
}

/* The "ports" list of a boot request into t (at most LIBVIRT_MAX_PORTS, checked by the caller); the
 * array goes to *ret_ports too (the caller's to free), t->ports borrows it. */
static int parse_request_ports(struct json_object *list, const struct resolver *res, struct instance *t,
                               struct instance_port **ret_ports, bool own_groups[LIBVIRT_MAX_PORTS], char *err,
                               size_t errlen)
{
        size_t n = json_object_array_length(list);
        int r;

        assert(n <= LIBVIRT_MAX_PORTS);
        if (t->ports)
                return snprintf(err, errlen, "ports: given twice"), -EINVAL;
        if (n > 0) {
                *ret_ports = calloc(n, sizeof(**ret_ports));
                if (!*ret_ports)
                        return -ENOMEM;
                t->ports = *ret_ports;
        }
        for (size_t i = 0; i < n; i++) {
                r = parse_request_port(json_object_array_get_idx(list, i), i, res, &t->ports[i], &own_groups[i],
                                       err, errlen);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < i; k++)
                        if (streq(t->ports[k].port_uuid, t->ports[i].port_uuid))
                                return snprintf(err, errlen, "ports[%zu]: port %s is listed twice", i,
                                                t->ports[i].port_uuid), -EINVAL;
        }
        t->n_ports = n;
        return 0;
}

/* Why a top-level field of a boot request was refused. */
static const char *boot_field_problem(const char *key)
{
        return streq(key, "name")        ? "1..63 characters of A-Z a-z 0-9 . _ - (not starting with . or -)"
               : streq(key, "uuid")      ? "not a canonical lowercase UUID"
               : streq(key, "vcpus")     ? "must be an integer in 1..64"
               : streq(key, "memory_mb") ? "must be an integer in 16..1048576"
               : streq(key, "ports")     ? "must be a list of at most 16 port objects"
               : streq(key, "cpu_set")   ? "must be a cpu list like \"2-3,6\" (ascending ranges, "
                                           "CPUs below 4096), or \"\" for no pinning"
               : streq(key, "image")     ? "must name a stored image (name or id; see `image list`)"
               : streq(key, "disk")      ? "must be an integer in 1..16384 (GiB)"
               : streq(key, "key")       ? "must be one public key line of at most 2048 printable characters"
               : streq(key, "user_data") ? "must be strict base64 (padded, no whitespace) of at most 65535 bytes"
               : streq(key, "kernel") || streq(key, "ramdisk")
                       ? "must name a stored image (name or id; see `image list`)"
               : streq(key, "cmdline") ? "must be 1..1024 printable ASCII characters without ' \" < > &"
                                         : "unknown field";
}

/* The request's own groups ("secgroups"): at least one when given. */
static int parse_request_groups(struct json_object *val, const struct resolver *res,
                                char groups[PORT_MAX_GROUPS][UUID_STR_LEN + 1], size_t *n_groups, char *err,
                                size_t errlen)
{
        int r = port_parse_secgroups(val, res, groups, n_groups, err, errlen);

        if (r < 0)
                return r;
        if (*n_groups == 0)
                return snprintf(err, errlen, "secgroups: give at least one group, or leave it out for the group "
                                             "'default'"), -EINVAL;
        return 0;
}

/* Ports without their own list get the request's groups, else "default" (when it exists). */
static void give_ports_request_groups(struct instance_port *ports, size_t n_ports, const bool own_groups[],
                                      char groups[PORT_MAX_GROUPS][UUID_STR_LEN + 1], size_t n_groups,
                                      const struct resolver *res)
{
        if (n_groups == 0 && res->fn && res->fn(res->data, "default", groups[0]) == 0)
                n_groups = 1;
        for (size_t i = 0; i < n_ports; i++)
                if (!own_groups[i]) {
                        memcpy(ports[i].secgroups, groups, n_groups * sizeof(groups[0]));
                        ports[i].n_secgroups = n_groups;
                }
}

/* The fields of a boot request that only make sense together: disk, key and user data need an
 * image; kernel and ramdisk come both or neither, cmdline only with them, and only with an image
 * (the root disk of a direct kernel boot). 0, or -EINVAL with the reason in err. */
static int check_boot_fields_together(const struct instance *t, bool have_disk, bool have_user_data, char *err,
                                      size_t errlen)
{
        if (!t->image_uuid[0] && (have_disk || t->key || have_user_data))
                return snprintf(err, errlen, "%s: needs an image (a diskless instance has no disk and no config drive)",
                                have_disk ? "disk" : t->key ? "key" : "user_data"), -EINVAL;
        if (!t->kernel_uuid[0] != !t->ramdisk_uuid[0] || (t->cmdline && !t->kernel_uuid[0]))
                return snprintf(err, errlen, "%s", t->cmdline && t->kernel_uuid[0] == t->ramdisk_uuid[0]
                                                           ? "cmdline: needs kernel and ramdisk (direct kernel boot)"
                                                           : "kernel and ramdisk: give both (direct kernel boot)"),
                       -EINVAL;
        if (t->kernel_uuid[0] && !t->image_uuid[0])
                return snprintf(err, errlen, "kernel: needs an image (the root disk of a direct kernel boot)"), -EINVAL;
        return 0;
}

/* Parse {"name","uuid"?,"vcpus"?,"memory_mb"?,"ports"?:[{"port_uuid"?,"mac"?,"mtu"?}]} strictly. */
int instance_parse_boot_request(struct json_object *body, secgroup_resolve_fn resolve, const void *resolve_data,
                                secgroup_resolve_fn image_resolve, const void *image_data, const char *default_cpu_set,
                                struct instance *ret, char *err, size_t errlen)
{
        const struct resolver res = { resolve, resolve_data };
        struct instance t = { .vcpus = 1, .memory_mb = 64 };
        _cleanup_free_ char *user_data = NULL, *key_line = NULL, *cmdline = NULL;
        _cleanup_free_ struct instance_port *ports = NULL;
        bool have_disk = false;
        bool have_name = false, have_cpu_set = false, own_groups[LIBVIRT_MAX_PORTS] = { false };
        char groups[PORT_MAX_GROUPS][UUID_STR_LEN + 1];
        size_t n_groups = 0;
        int r = 0;

        assert(body && ret && err);
        if (uuid_new_str(t.uuid) < 0)
                return -EIO;
        json_object_object_foreach(body, key, val) {
                const char *s = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : NULL;
                int64_t n = json_object_is_type(val, json_type_int) ? json_object_get_int64(val) : -1;

                if (streq(key, "name") && s && instance_name_is_valid(s)) {
                        (void)strscpy(t.name, s, sizeof(t.name));
                        have_name = true;
                } else if (streq(key, "uuid") && s && uuid_is_valid(s))
                        memcpy(t.uuid, s, sizeof(t.uuid));
                else if (streq(key, "vcpus") && n >= 1 && n <= LIBVIRT_MAX_VCPUS)
                        t.vcpus = (uint32_t)n;
                else if (streq(key, "memory_mb") && n >= LIBVIRT_MIN_MEMORY_MB && n <= LIBVIRT_MAX_MEMORY_MB)
                        t.memory_mb = (uint32_t)n;
                else if (streq(key, "cpu_set") && s && (!s[0] || instance_cpu_set_canonical(s, t.cpu_set) == 0))
                        have_cpu_set = true;
                else if (streq(key, "image") && s && image_resolve && strlen(s) <= INSTANCE_NAME_MAX &&
                         image_resolve(image_data, s, t.image_uuid) == 0)
                        ;
                else if (streq(key, "kernel") && s && image_resolve && strlen(s) <= INSTANCE_NAME_MAX &&
                         image_resolve(image_data, s, t.kernel_uuid) == 0)
                        ;
                else if (streq(key, "ramdisk") && s && image_resolve && strlen(s) <= INSTANCE_NAME_MAX &&
                         image_resolve(image_data, s, t.ramdisk_uuid) == 0)
                        ;
                else if (streq(key, "cmdline") && s && kernel_cmdline_is_valid(s) && !cmdline) {
                        cmdline = strdup(s);
                        if (!cmdline)
                                return -ENOMEM;
                }
                else if (streq(key, "disk") && n >= 1 && n <= INSTANCE_DISK_GB_MAX) {
                        t.disk_gb = (uint32_t)n;
                        have_disk = true;
                } else if (streq(key, "key") && s && key_is_valid(s) && !key_line) {
                        key_line = strdup(s);
                        if (!key_line)
                                return -ENOMEM;
                }
                else if (streq(key, "user_data") && s && user_data_is_valid(s) && !user_data) {
                        user_data = strdup(s);
                        if (!user_data)
                                return -ENOMEM;
                } else if (streq(key, "secgroups"))
                        r = parse_request_groups(val, &res, groups, &n_groups, err, errlen);
                else if (streq(key, "ports") && json_object_is_type(val, json_type_array) &&
                         json_object_array_length(val) <= LIBVIRT_MAX_PORTS)
                        r = parse_request_ports(val, &res, &t, &ports, own_groups, err, errlen);
                else
                        r = (snprintf(err, errlen, "%.32s: %s", key, boot_field_problem(key)), -EINVAL);
                if (r < 0)
                        return r;
        }
        if (!have_name)
                return snprintf(err, errlen, "name: required"), -EINVAL;
        t.key = key_line; /* borrowed for the checks; taken below */
        t.cmdline = cmdline;
        r = check_boot_fields_together(&t, have_disk, user_data != NULL, err, errlen);
        if (r < 0)
                return r;
        if (!have_cpu_set && default_cpu_set && default_cpu_set[0] &&
            instance_cpu_set_canonical(default_cpu_set, t.cpu_set) < 0)
                return snprintf(err, errlen, "cpu_set: the config default '%.64s' is not a cpu list",
                                default_cpu_set), -EINVAL;
        if (t.cpu_set[0])
                t.pin_state = PIN_PENDING;
        give_ports_request_groups(ports, t.n_ports, own_groups, groups, n_groups, &res);
        t.user_data = TAKE_PTR(user_data);
        t.key = TAKE_PTR(key_line);
        t.cmdline = TAKE_PTR(cmdline);
        t.ports = TAKE_PTR(ports);
        *ret = t;
        return 0;
}

int instance_apply_network_mtu(struct json_object *body, uint32_t network_mtu, struct instance *inst, char *err,
                               size_t errlen)
{
        struct json_object *ports, *mtu;
        uint32_t want[LIBVIRT_MAX_PORTS];

        assert(body && inst && err);
        if (network_mtu == 0 || !json_object_object_get_ex(body, "ports", &ports) ||
            !json_object_is_type(ports, json_type_array))
                return 0;
        for (size_t i = 0; i < inst->n_ports; i++) {
                struct json_object *p = json_object_array_get_idx(ports, i);

                want[i] = network_mtu;
                if (!p || !json_object_object_get_ex(p, "mtu", &mtu))
                        continue;
                if (inst->ports[i].mtu > network_mtu) {
                        (void)snprintf(err, errlen,
                                       "ports[%zu].mtu: %u exceeds the network's MTU %u (config key network_mtu; "
                                       "an overlay needs room for its header, Geneve 58 bytes)",
                                       i, inst->ports[i].mtu, network_mtu);
                        return -EINVAL;
                }
                want[i] = inst->ports[i].mtu;
        }
        for (size_t i = 0; i < inst->n_ports; i++)
                inst->ports[i].mtu = want[i];
        return 0;
}
