/* snapd-policy.c - see snapd-policy.h */
#include "snapd-policy.h"

#include "aaglob.h"

#include <json-c/json.h>

/* data/snapd-policy.json, embedded at build time. */
__asm__(".section .rodata\n"
        ".balign 16\n"
        "nova_snapd_policy_json:\n"
        ".incbin \"data/snapd-policy.json\"\n"
        ".byte 0\n"
        ".previous\n");
extern const char nova_snapd_policy_json[] __asm__("nova_snapd_policy_json");

static struct json_object *policy;
static char source[160];

int snapd_policy_load(void)
{
        struct json_object *src, *v;

        if (policy)
                return 0;
        policy = json_tokener_parse(nova_snapd_policy_json);
        if (!policy || !json_object_object_get_ex(policy, "interfaces", NULL)) {
                json_object_put(policy);
                policy = NULL;
                return -EBADMSG;
        }
        if (json_object_object_get_ex(policy, "_source", &src)) {
                const char *d = json_object_object_get_ex(src, "snapd_describe", &v) ? json_object_get_string(v) : "?";
                const char *c = json_object_object_get_ex(src, "snapd_commit", &v) ? json_object_get_string(v) : "?";
                (void)snprintf(source, sizeof(source), "snapd %s (%.12s)", d, c);
        }
        return 0;
}

const char *snapd_policy_source(void)
{
        return snapd_policy_load() == 0 ? source : "snapd policy data unavailable";
}

static bool in_string_array(struct json_object *arr, const char *s)
{
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
                if (streq(json_object_get_string(json_object_array_get_idx(arr, i)), s))
                        return true;
        return false;
}

/* The rule of iface granting a, or NULL. Writes composite rules into buf. */
static const char *iface_rule(struct json_object *iface, const struct access *a, char *buf, size_t size)
{
        struct json_object *arr;

        switch (a->kind) {
        case ACCESS_CAPABILITY:
                if (json_object_object_get_ex(iface, "capabilities", &arr) && in_string_array(arr, a->name)) {
                        struct json_object *denied = NULL;
                        (void)json_object_object_get_ex(iface, "capabilities_denied", &denied);
                        if (in_string_array(denied, a->name))
                                return NULL;
                        (void)snprintf(buf, size, "capability %s,", a->name);
                        return buf;
                }
                return NULL;
        case ACCESS_FILE:
                if (!json_object_object_get_ex(iface, "files", &arr))
                        return NULL;
                for (size_t i = 0; i < json_object_array_length(arr); i++) {
                        struct json_object *r = json_object_array_get_idx(arr, i), *p, *m, *o;
                        if (!json_object_object_get_ex(r, "path", &p) || !json_object_object_get_ex(r, "perms", &m))
                                continue;
                        if (aaperms_grant(json_object_get_string(m), a->arg) &&
                            aaglob_match(json_object_get_string(p), a->name)) {
                                (void)snprintf(buf, size, "%s%s %s,",
                                               json_object_object_get_ex(r, "owner", &o) && json_object_get_boolean(o)
                                                       ? "owner "
                                                       : "",
                                               json_object_get_string(p), json_object_get_string(m));
                                return buf;
                        }
                }
                return NULL;
        case ACCESS_NETWORK:
                if (!json_object_object_get_ex(iface, "network", &arr))
                        return NULL;
                for (size_t i = 0; i < json_object_array_length(arr); i++) {
                        const char *rule = json_object_get_string(json_object_array_get_idx(arr, i));
                        char fam[64], want[96];
                        (void)snprintf(fam, sizeof(fam), "network %s", a->name);
                        (void)snprintf(want, sizeof(want), "network %s %s", a->name, a->arg ? a->arg : "");
                        if (streq(rule, fam) || (a->arg && streq(rule, want)))
                                return rule;
                }
                return NULL;
        case ACCESS_SYSCALL:
        case ACCESS_NETLINK:
                if (!json_object_object_get_ex(iface, "syscalls", &arr))
                        return NULL;
                for (size_t i = 0; i < json_object_array_length(arr); i++) {
                        const char *rule = json_object_get_string(json_object_array_get_idx(arr, i));
                        size_t n = strlen(a->name);
                        if (a->kind == ACCESS_SYSCALL) {
                                if (strncmp(rule, a->name, n) == 0 && (rule[n] == '\0' || rule[n] == ' '))
                                        return rule;
                        } else if (strncmp(rule, "socket AF_NETLINK - ", 20) == 0 && streq(rule + 20, a->name))
                                return rule;
                }
                return NULL;
        }
        return NULL;
}

size_t snapd_policy_grants(const struct access *a, policy_grant_cb cb, void *userdata)
{
        struct json_object *ifaces;
        size_t n = 0;

        if (snapd_policy_load() < 0 || !json_object_object_get_ex(policy, "interfaces", &ifaces))
                return 0;
        json_object_object_foreach(ifaces, name, iface) {
                char buf[512];
                const char *rule = iface_rule(iface, a, buf, sizeof(buf));
                if (rule) {
                        n++;
                        if (cb)
                                cb(name, rule, userdata);
                }
        }
        return n;
}

bool snapd_policy_iface_grants(const char *iface_name, const struct access *a)
{
        struct json_object *ifaces, *iface;
        char buf[512];

        if (snapd_policy_load() < 0 || !json_object_object_get_ex(policy, "interfaces", &ifaces) ||
            !json_object_object_get_ex(ifaces, iface_name, &iface))
                return false;
        return iface_rule(iface, a, buf, sizeof(buf)) != NULL;
}

bool snapd_policy_has_iface(const char *iface_name)
{
        struct json_object *ifaces;

        return snapd_policy_load() == 0 && json_object_object_get_ex(policy, "interfaces", &ifaces) &&
               json_object_object_get_ex(ifaces, iface_name, NULL);
}
