/* config.c - see config.h */
#include "config.h"

#include "procfs.h"

#include <stdarg.h>
#include <stddef.h>
#include <sys/un.h>

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1)

struct config_key;

/* Parse value into field; on failure write the reason (without key) into why. */
typedef int (*config_parser)(const struct config_key *k, const char *value, void *field,
                             char *why, size_t whylen);

/* One row per key; config_parse() and config_set() both go through this table. */
struct config_key {
        const char *name;          /* key as written in the file, e.g. "run_dir" */
        config_parser parse;       /* validates and stores the value */
        size_t offset;             /* of the field in struct nova_config */
        size_t size;               /* of the field, in bytes */
        uint32_t min;              /* numbers: lowest value; paths: 0 = may be empty, 1 = required */
        uint32_t max;              /* numbers: highest value; paths: longest length */
};

static void fmt_msg(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
static void fmt_msg(char *buf, size_t size, const char *fmt, ...)
{
        va_list ap;

        if (!buf || size == 0)
                return;
        va_start(ap, fmt);
        (void)vsnprintf(buf, size, fmt, ap); /* truncating an error message is fine */
        va_end(ap);
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), 0 when invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
        size_t need;
        uint32_t cp;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                need = 2;
                cp = s[0] & 0x1f;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                need = 3;
                cp = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                need = 4;
                cp = s[0] & 0x07;
        } else {
                return 0;
        }
        if (n < need)
                return 0;
        for (size_t i = 1; i < need; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return need;
}

/* Text that may appear in a value: valid UTF-8, no control characters but TAB. */
static int check_text(const char *s, size_t n, char *why, size_t whylen)
{
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char)s[i];
                size_t k;

                if (c == '\0') {
                        fmt_msg(why, whylen, "NUL byte");
                        return -EINVAL;
                }
                if ((c < 0x20 && c != '\t') || c == 0x7f) {
                        fmt_msg(why, whylen, "control character 0x%02x", c);
                        return -EINVAL;
                }
                k = utf8_seq_len((const unsigned char *)s + i, n - i);
                if (k == 0) {
                        fmt_msg(why, whylen, "invalid UTF-8");
                        return -EINVAL;
                }
                i += k;
        }
        return 0;
}

/* Trim blanks from both ends of the NUL-terminated s in place; returns the new start. */
static char *trim(char *s)
{
        size_t n;

        while (is_blank(*s))
                s++;
        n = strlen(s);
        while (n > 0 && is_blank(s[n - 1]))
                s[--n] = '\0';
        return s;
}

static int parse_path(const struct config_key *k, const char *value, void *field, char *why,
                      size_t whylen)
{
        size_t n = strlen(value);

        if (n == 0) {
                if (k->min > 0) {
                        fmt_msg(why, whylen, "must be an absolute path, not empty");
                        return -EINVAL;
                }
        } else {
                if (value[0] != '/') {
                        fmt_msg(why, whylen, "must be an absolute path: '%.200s'", value);
                        return -EINVAL;
                }
                for (size_t i = 0; i < n; i++) {
                        unsigned char c = (unsigned char)value[i];

                        if (c < 0x20 || c == 0x7f) {
                                fmt_msg(why, whylen, "control character in path");
                                return -EINVAL;
                        }
                        /* a ".." component: "/.." "/../" */
                        if (c == '/' && value[i + 1] == '.' && value[i + 2] == '.' &&
                            (value[i + 3] == '/' || value[i + 3] == '\0')) {
                                fmt_msg(why, whylen, "must not contain '..'");
                                return -EINVAL;
                        }
                }
                if (n > k->max || n >= k->size) {
                        fmt_msg(why, whylen, "path too long (%zu bytes, max %u)", n, k->max);
                        return -EINVAL;
                }
        }
        memcpy(field, value, n + 1);
        return 0;
}

static int parse_number(const struct config_key *k, const char *value, void *field, char *why,
                        size_t whylen)
{
        uint32_t v;
        int r = parse_u32(value, k->min, k->max, &v);

        if (r == -ERANGE) {
                fmt_msg(why, whylen, "must be between %u and %u", k->min, k->max);
                return -EINVAL;
        }
        if (r < 0) {
                fmt_msg(why, whylen, "not a number: '%.64s'", value);
                return -EINVAL;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
}

static int parse_plugs(const struct config_key *k _unused_, const char *value, void *field,
                       char *why, size_t whylen)
{
        bool set[_PLUG_MAX] = {};
        bool none = false, any = false;
        const char *p = value;

        while (*p) {
                char name[64];
                size_t n;
                int id;

                if (is_blank(*p) || *p == ',') {
                        p++;
                        continue;
                }
                n = strcspn(p, " \t,");
                if (n >= sizeof(name)) {
                        fmt_msg(why, whylen, "unknown plug '%.*s...'", 32, p);
                        return -EINVAL;
                }
                memcpy(name, p, n);
                name[n] = '\0';
                p += n;

                if (streq(name, "none")) {
                        none = true;
                        continue;
                }
                id = plug_from_name(name);
                if (id < 0) {
                        fmt_msg(why, whylen, "unknown plug '%s'", name);
                        return -EINVAL;
                }
                set[id] = true;
                any = true;
        }
        if (none && any) {
                fmt_msg(why, whylen, "'none' cannot be combined with plug names");
                return -EINVAL;
        }
        memcpy(field, set, sizeof(set));
        return 0;
}

static int parse_log_level(const struct config_key *k, const char *value, void *field, char *why,
                           size_t whylen)
{
        static const char *const levels[] = { "debug", "info", "warning", "error" };

        for (size_t i = 0; i < ARRAY_SIZE(levels); i++)
                if (streq(value, levels[i]))
                        return strscpy(field, value, k->size);
        fmt_msg(why, whylen, "must be one of debug, info, warning, error");
        return -EINVAL;
}

/* A libvirt URI: scheme "://" then visible ASCII without spaces or quotes
 * (driver names and query parameters like ?root=/path or ?socket=...). */
static int parse_uri(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        const char *sep = strstr(value, "://");
        size_t n = strlen(value);

        if (!sep || sep == value || n >= k->size) {
                fmt_msg(why, whylen, "must look like driver:///path or driver+transport://host/path");
                return -EINVAL;
        }
        for (const char *p = value; p < sep; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '+')) {
                        fmt_msg(why, whylen, "invalid scheme in '%.64s'", value);
                        return -EINVAL;
                }
        for (const char *p = value; *p; p++)
                if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\'' || *p == '\\') {
                        fmt_msg(why, whylen, "invalid character in '%.64s'", value);
                        return -EINVAL;
                }
        return strscpy(field, value, k->size);
}

static int parse_orphan_policy(const struct config_key *k, const char *value, void *field, char *why,
                               size_t whylen)
{
        if (streq(value, "report") || streq(value, "reap"))
                return strscpy(field, value, k->size);
        fmt_msg(why, whylen, "must be report (log and show them) or reap (delete them)");
        return -EINVAL;
}

/* One of a fixed set of words, listed in k->name's table below. */
static int parse_word(const char *value, void *field, size_t size, const char *const *words, char *why, size_t whylen)
{
        char list[128] = "";

        for (size_t i = 0; words[i]; i++) {
                if (streq(value, words[i]))
                        return strscpy(field, value, size);
                (void)snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", words[i]);
        }
        fmt_msg(why, whylen, "must be one of %s", list);
        return -EINVAL;
}

static int parse_vif_type(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        static const char *const words[] = { "ovs", "tap", NULL };
        return parse_word(value, field, k->size, words, why, whylen);
}

static int parse_datapath_type(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        static const char *const words[] = { "system", "netdev", NULL };
        return parse_word(value, field, k->size, words, why, whylen);
}

static int parse_bool(const struct config_key *k _unused_, const char *value, void *field, char *why, size_t whylen)
{
        bool v;

        if (streq(value, "true") || streq(value, "yes"))
                v = true;
        else if (streq(value, "false") || streq(value, "no"))
                v = false;
        else {
                fmt_msg(why, whylen, "must be true or false");
                return -EINVAL;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
}

/* An OVS bridge name: 1..15 of [A-Za-z0-9_.-], not starting with '-' or '.'. */
/* A user name as useradd takes it ([a-z_][a-z0-9_-]*, '$' last for machine
 * accounts not needed here) or "+<uid>" as libvirt's qemu.conf writes one. */
static int parse_user(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        size_t n = strlen(value);
        uint32_t uid;

        if (value[0] == '+') {
                if (parse_u32(value + 1, 0, UINT32_MAX - 1, &uid) < 0 || n >= k->size) {
                        fmt_msg(why, whylen, "must be a user name or +<uid>: '%.32s'", value);
                        return -EINVAL;
                }
                return strscpy(field, value, k->size);
        }
        if (n == 0 || n >= k->size || !((value[0] >= 'a' && value[0] <= 'z') || value[0] == '_')) {
                fmt_msg(why, whylen, "must be a user name of 1..%zu characters or +<uid>: '%.32s'", k->size - 1, value);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                char c = value[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
                        fmt_msg(why, whylen, "invalid character in user name '%.32s'", value);
                        return -EINVAL;
                }
        }
        return strscpy(field, value, k->size);
}

static int parse_bridge(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        size_t n = strlen(value);

        if (n == 0 || n >= k->size || value[0] == '-' || value[0] == '.') {
                fmt_msg(why, whylen, "must be a bridge name of 1..%zu characters", k->size - 1);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                char c = value[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-' || c == '.')) {
                        fmt_msg(why, whylen, "invalid character in bridge name '%.32s'", value);
                        return -EINVAL;
                }
        }
        return strscpy(field, value, k->size);
}

/* "unix:" + an absolute path (the openvswitch plug grants a unix socket). */
static int parse_ovsdb_socket(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        char path[256];

        if (strncmp(value, "unix:", 5) != 0 || value[5] != '/' || strlen(value) >= k->size ||
            strscpy(path, value + 5, sizeof(path)) < 0 || strstr(path, "/../") || strchr(path, ' ')) {
                fmt_msg(why, whylen, "must be unix:<absolute path of the ovsdb-server socket>");
                return -EINVAL;
        }
        return strscpy(field, value, k->size);
}

/* A decimal ratio with up to 3 places ("16", "1.5", "0.125") in thousandths, within [min, max] thousandths. */
static int parse_ratio(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        uint64_t whole = 0, frac = 0;
        const char *p = value;
        unsigned digits = 0, places = 0;
        uint32_t v;

        for (; *p >= '0' && *p <= '9'; p++)
                if (++digits > 7 || (whole = whole * 10 + (uint64_t)(*p - '0')) > 10000000)
                        break;
        if (*p == '.' && digits > 0)
                for (p++; *p >= '0' && *p <= '9' && places < 4; p++, places++)
                        frac = frac * 10 + (uint64_t)(*p - '0');
        if (digits == 0 || *p != '\0' || places > 3 || (places == 0 && p[-1] == '.')) {
                fmt_msg(why, whylen, "must be a decimal number with at most 3 places, e.g. 16.0: '%.32s'", value);
                return -EINVAL;
        }
        while (places++ < 3)
                frac *= 10;
        if (whole * 1000 + frac < k->min || whole * 1000 + frac > k->max) {
                fmt_msg(why, whylen, "must be between %u.%03u and %u.%03u", k->min / 1000, k->min % 1000, k->max / 1000,
                        k->max % 1000);
                return -EINVAL;
        }
        v = (uint32_t)(whole * 1000 + frac);
        memcpy(field, &v, sizeof(v));
        return 0;
}

/* A cpu list ("0-3,6"; "" = none): ascending ranges of CPU numbers below 4096. */
static int parse_cpu_set(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        struct cpuset set;
        size_t n = strlen(value);

        if (n >= k->size || (n > 0 && (value[n - 1] == '\n' || cpuset_parse(value, n, &set) < 0 ||
                                       cpuset_count(&set) == 0))) {
                fmt_msg(why, whylen, "must be a cpu list like 0-3,6 (CPUs 0..%d), or empty: '%.32s'",
                        CPUSET_MAX_CPUS - 1, value);
                return -EINVAL;
        }
        return strscpy(field, value, k->size);
}

static int parse_ovn_timeout_policy(const struct config_key *k, const char *value, void *field, char *why,
                                    size_t whylen)
{
        static const char *const words[] = { "fail", "continue", NULL };
        return parse_word(value, field, k->size, words, why, whylen);
}

/* An MTU in k->min..k->max, or 0 for "not set". */
static int parse_mtu_or_zero(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        uint32_t v;

        if (parse_u32(value, 0, k->max, &v) < 0 || (v != 0 && v < k->min)) {
                fmt_msg(why, whylen, "must be 0 (not set) or an MTU between %u and %u: '%.32s'", k->min, k->max, value);
                return -EINVAL;
        }
        memcpy(field, &v, sizeof(v));
        return 0;
}

/* An http(s) URL: "" (off) when k->min is 0, scheme http or https, a host, no user:password@ (the
 * URL is logged and shown), visible ASCII without quotes or backslashes; a trailing '/' is dropped.
 * placement_url also takes the word "catalog" (keystone's service catalog). */
static int parse_http_url(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        size_t n = strlen(value), skip;
        const char *host, *end;
        char buf[256];

        if (n == 0 || (streq(k->name, "placement_url") && streq(value, "catalog")))
                return strscpy(field, value, k->size);
        if (strncmp(value, "http://", 7) == 0)
                skip = 7;
        else if (strncmp(value, "https://", 8) == 0)
                skip = 8;
        else {
                fmt_msg(why, whylen, "must be an http:// or https:// URL%s",
                        streq(k->name, "placement_url") ? ", \"catalog\" or empty (off)" : "");
                return -EINVAL;
        }
        if (n >= k->size || n >= sizeof(buf)) {
                fmt_msg(why, whylen, "URL too long (max %zu bytes)", k->size - 1);
                return -EINVAL;
        }
        for (const char *p = value; *p; p++)
                if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\'' || *p == '\\') {
                        fmt_msg(why, whylen, "invalid character in the URL");
                        return -EINVAL;
                }
        host = value + skip;
        end = host + strcspn(host, "/?#");
        if (end == host || memchr(host, '@', (size_t)(end - host)) || strpbrk(value, "?#")) {
                fmt_msg(why, whylen, "needs a host, and no user:password@, query or fragment (credentials go in their own keys)");
                return -EINVAL;
        }
        memcpy(buf, value, n + 1);
        while (n > skip && buf[n - 1] == '/')
                buf[--n] = '\0';
        return strscpy(field, buf, k->size);
}

static int parse_placement_auth(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        static const char *const words[] = { "noauth", "keystone", NULL };
        return parse_word(value, field, k->size, words, why, whylen);
}

/* Free text of at most k->max bytes (names, ids, the region); check_text() already refused control characters. */
static int parse_text(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        size_t n = strlen(value);

        if (n > k->max || n >= k->size) {
                fmt_msg(why, whylen, "too long (%zu bytes, max %u)", n, k->max);
                return -EINVAL;
        }
        memcpy(field, value, n + 1);
        return 0;
}

/* A secret: like text, and no error ever repeats any of it. */
static int parse_secret(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        size_t n = strlen(value);

        if (n > k->max || n >= k->size) {
                fmt_msg(why, whylen, "too long (max %u bytes; the value is not shown)", k->max);
                return -EINVAL;
        }
        memcpy(field, value, n + 1);
        return 0;
}

/* A libvirt pool name: 1..63 of [a-z0-9_-], starting with a letter (it goes into XML we write). */
static int parse_pool_name(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        size_t n = strlen(value);

        if (n < k->min || n > k->max || n >= k->size || !(value[0] >= 'a' && value[0] <= 'z')) {
                fmt_msg(why, whylen, "must be %u..%u characters of [a-z0-9_-] starting with a letter: '%.64s'",
                        k->min, k->max, value);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                char c = value[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
                        fmt_msg(why, whylen, "must be %u..%u characters of [a-z0-9_-] starting with a letter: '%.64s'",
                                k->min, k->max, value);
                        return -EINVAL;
                }
        }
        memcpy(field, value, n + 1);
        return 0;
}

/* The pool's directory: an absolute path (parse_path's rules) of [A-Za-z0-9/._-] only, not "/",
 * no "." component, no trailing or doubled '/' (it goes into XML we write and must equal the
 * path libvirt reports back). */
static int parse_pool_path(const struct config_key *k, const char *value, void *field, char *why, size_t whylen)
{
        size_t n = strlen(value);

        if (n < k->min) {
                fmt_msg(why, whylen, "must be an absolute directory other than '/': '%.200s'", value);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                char c = value[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
                      c == '.' || c == '_' || c == '-')) {
                        fmt_msg(why, whylen, "only [A-Za-z0-9/._-] allowed: '%.200s'", value);
                        return -EINVAL;
                }
                if (c == '/' && (value[i + 1] == '/' || value[i + 1] == '\0' ||
                                 (value[i + 1] == '.' && (value[i + 2] == '/' || value[i + 2] == '\0')))) {
                        fmt_msg(why, whylen, "no empty or '.' component, no trailing '/': '%.200s'", value);
                        return -EINVAL;
                }
        }
        return parse_path(k, value, field, why, whylen);
}

#define FIELD(f) offsetof(struct nova_config, f), sizeof(((struct nova_config *)NULL)->f)

static const struct config_key config_keys[] = {
        { "state_dir", parse_path, FIELD(state_dir), 1, 255 },
        { "run_dir", parse_path, FIELD(run_dir), 1, 255 },
        { "api_socket", parse_path, FIELD(api_socket), 0, SUN_PATH_MAX },
        { "module_dir", parse_path, FIELD(module_dir), 0, 255 },
        { "plugs", parse_plugs, FIELD(plugs), 0, 0 },
        { "module_timeout_ms", parse_number, FIELD(module_timeout_ms), 100, 600000 },
        { "restart_min_ms", parse_number, FIELD(restart_min_ms), 10, 60000 },
        { "restart_max_ms", parse_number, FIELD(restart_max_ms), 10, 600000 },
        { "stable_after_ms", parse_number, FIELD(stable_after_ms), 1000, 3600000 },
        { "stop_timeout_ms", parse_number, FIELD(stop_timeout_ms), 100, 60000 },
        { "log_level", parse_log_level, FIELD(log_level), 0, 0 },
        { "libvirt_uri", parse_uri, FIELD(libvirt_uri), 0, 0 },
        { "shutdown_timeout_s", parse_number, FIELD(shutdown_timeout_s), 0, 3600 },
        { "reconcile_interval_s", parse_number, FIELD(reconcile_interval_s), 0, 86400 },
        { "orphan_policy", parse_orphan_policy, FIELD(orphan_policy), 0, 0 },
        { "vif_type", parse_vif_type, FIELD(vif_type), 0, 0 },
        { "ovsdb_socket", parse_ovsdb_socket, FIELD(ovsdb_socket), 0, 0 },
        { "integration_bridge", parse_bridge, FIELD(integration_bridge), 0, 0 },
        { "bridge_create", parse_bool, FIELD(bridge_create), 0, 0 },
        { "bridge_datapath_type", parse_datapath_type, FIELD(bridge_datapath_type), 0, 0 },
        { "port_timeout_ms", parse_number, FIELD(port_timeout_ms), 100, 60000 },
        { "ovn", parse_bool, FIELD(ovn), 0, 0 },
        { "ovn_wait_ms", parse_number, FIELD(ovn_wait_ms), 100, 600000 },
        { "ovn_timeout_policy", parse_ovn_timeout_policy, FIELD(ovn_timeout_policy), 0, 0 },
        { "network_mtu", parse_mtu_or_zero, FIELD(network_mtu), 68, 65535 },
        { "cpu_allocation_ratio", parse_ratio, FIELD(cpu_allocation_ratio_milli), 1, 1000000 },
        { "ram_allocation_ratio", parse_ratio, FIELD(ram_allocation_ratio_milli), 1, 1000000 },
        { "disk_allocation_ratio", parse_ratio, FIELD(disk_allocation_ratio_milli), 1, 1000000 },
        { "cpu_set", parse_cpu_set, FIELD(cpu_set), 0, 0 },
        { "qemu_user", parse_user, FIELD(qemu_user), 0, 0 },
        { "remove_unused_base_images", parse_bool, FIELD(remove_unused_base_images), 0, 0 },
        { "remove_unused_original_minimum_age_seconds", parse_number,
          FIELD(remove_unused_original_minimum_age_seconds), 0, 31536000 },
        { "placement_url", parse_http_url, FIELD(placement_url), 0, 0 },
        { "placement_auth", parse_placement_auth, FIELD(placement_auth), 0, 0 },
        { "placement_noauth_token", parse_secret, FIELD(placement_noauth_token), 0, 127 },
        { "placement_region", parse_text, FIELD(placement_region), 0, 63 },
        { "keystone_auth_url", parse_http_url, FIELD(keystone_auth_url), 0, 0 },
        { "keystone_username", parse_text, FIELD(keystone_username), 0, 63 },
        { "keystone_user_id", parse_text, FIELD(keystone_user_id), 0, 63 },
        { "keystone_user_domain", parse_text, FIELD(keystone_user_domain), 0, 63 },
        { "keystone_password", parse_secret, FIELD(keystone_password), 0, 127 },
        { "keystone_project_name", parse_text, FIELD(keystone_project_name), 0, 63 },
        { "keystone_project_id", parse_text, FIELD(keystone_project_id), 0, 63 },
        { "keystone_project_domain", parse_text, FIELD(keystone_project_domain), 0, 63 },
        { "keystone_app_cred_id", parse_text, FIELD(keystone_app_cred_id), 0, 63 },
        { "keystone_app_cred_secret", parse_secret, FIELD(keystone_app_cred_secret), 0, 127 },
        { "provider_name", parse_text, FIELD(provider_name), 0, 200 },
        { "reserved_host_cpus", parse_number, FIELD(reserved_host_cpus), 0, 4096 },
        { "reserved_host_memory_mb", parse_number, FIELD(reserved_host_memory_mb), 0, 16777216 },
        { "reserved_host_disk_mb", parse_number, FIELD(reserved_host_disk_mb), 0, 1000000000 },
        { "placement_refresh_s", parse_number, FIELD(placement_refresh_s), 10, 86400 },
        { "storage_pool", parse_pool_name, FIELD(storage_pool), 1, 63 },
        { "storage_pool_path", parse_pool_path, FIELD(storage_pool_path), 2, 200 },
};

bool config_key_is_secret(const char *key)
{
        for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++)
                if (streq(config_keys[i].name, key))
                        return config_keys[i].parse == parse_secret;
        return false;
}

const char *config_key_name(size_t i) { return i < ARRAY_SIZE(config_keys) ? config_keys[i].name : NULL; }

static const struct config_key *find_key(const char *name)
{
        for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++)
                if (streq(config_keys[i].name, name))
                        return &config_keys[i];
        return NULL;
}

/* Strip trailing slashes of run_dir ("/" stays "/") for joining it with a name. */
static size_t dir_len(const char *dir)
{
        size_t n = strlen(dir);

        while (n > 1 && dir[n - 1] == '/')
                n--;
        if (n == 1 && dir[0] == '/')
                n = 0;
        return n;
}

/* Checks that involve more than one key; errors name the keys, not a line. */
static int check_cross(const struct nova_config *c, char *err, size_t errlen)
{
        if (c->restart_max_ms < c->restart_min_ms) {
                fmt_msg(err, errlen, "restart_max_ms (%u) must not be below restart_min_ms (%u)",
                        c->restart_max_ms, c->restart_min_ms);
                return -EINVAL;
        }
        if (c->placement_url[0] && streq(c->placement_auth, "keystone")) {
                bool app = c->keystone_app_cred_id[0] || c->keystone_app_cred_secret[0];
                if (!c->keystone_auth_url[0]) {
                        fmt_msg(err, errlen, "placement_auth keystone needs keystone_auth_url");
                        return -EINVAL;
                }
                if (app && !(c->keystone_app_cred_id[0] && c->keystone_app_cred_secret[0])) {
                        fmt_msg(err, errlen, "an application credential needs both keystone_app_cred_id and "
                                "keystone_app_cred_secret");
                        return -EINVAL;
                }
                if (!app && (!(c->keystone_username[0] || c->keystone_user_id[0]) || !c->keystone_password[0] ||
                             !(c->keystone_project_name[0] || c->keystone_project_id[0]))) {
                        fmt_msg(err, errlen, "placement_auth keystone needs keystone_username (or keystone_user_id), "
                                "keystone_password and keystone_project_name (or keystone_project_id), or an "
                                "application credential (keystone_app_cred_id, keystone_app_cred_secret)");
                        return -EINVAL;
                }
        }
        if (streq(c->placement_url, "catalog") && !streq(c->placement_auth, "keystone")) {
                fmt_msg(err, errlen, "placement_url catalog needs placement_auth keystone (the catalog comes with the token)");
                return -EINVAL;
        }
        if (c->api_socket[0] == '\0' &&
            dir_len(c->run_dir) + 1 + strlen(CONFIG_SOCKET_NAME) > SUN_PATH_MAX) {
                fmt_msg(err, errlen,
                        "run_dir: too long for the derived api_socket (max %zu bytes for a unix socket); set api_socket",
                        (size_t)SUN_PATH_MAX);
                return -EINVAL;
        }
        return 0;
}

void config_defaults(struct nova_config *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        (void)strscpy(cfg->state_dir, "/var/lib/nova-hypervisor", sizeof(cfg->state_dir));
        (void)strscpy(cfg->run_dir, "/run/nova-hypervisor", sizeof(cfg->run_dir));
        cfg->module_timeout_ms = 10000;
        cfg->restart_min_ms = 200;
        cfg->restart_max_ms = 30000;
        cfg->stable_after_ms = 60000;
        cfg->stop_timeout_ms = 5000;
        cfg->reconcile_interval_s = 60;
        (void)strscpy(cfg->log_level, "info", sizeof(cfg->log_level));
        (void)strscpy(cfg->libvirt_uri, "qemu:///system", sizeof(cfg->libvirt_uri));
        (void)strscpy(cfg->qemu_user, "libvirt-qemu", sizeof(cfg->qemu_user));
        (void)strscpy(cfg->storage_pool, "nova-hypervisor", sizeof(cfg->storage_pool));
        (void)strscpy(cfg->storage_pool_path, "/var/lib/libvirt/images/nova-hypervisor", sizeof(cfg->storage_pool_path));
        cfg->shutdown_timeout_s = 60;
        cfg->remove_unused_base_images = true;
        cfg->remove_unused_original_minimum_age_seconds = 86400;
        (void)strscpy(cfg->orphan_policy, "report", sizeof(cfg->orphan_policy));
        (void)strscpy(cfg->vif_type, "ovs", sizeof(cfg->vif_type));
        (void)strscpy(cfg->ovsdb_socket, "unix:/run/openvswitch/db.sock", sizeof(cfg->ovsdb_socket));
        (void)strscpy(cfg->integration_bridge, "br-int", sizeof(cfg->integration_bridge));
        cfg->bridge_create = false;
        (void)strscpy(cfg->bridge_datapath_type, "system", sizeof(cfg->bridge_datapath_type));
        cfg->port_timeout_ms = 5000;
        cfg->ovn = false;
        cfg->ovn_wait_ms = 30000;
        (void)strscpy(cfg->ovn_timeout_policy, "fail", sizeof(cfg->ovn_timeout_policy));
        cfg->network_mtu = 0;
        cfg->cpu_allocation_ratio_milli = 16000;
        cfg->ram_allocation_ratio_milli = 1500;
        cfg->disk_allocation_ratio_milli = 1000;
        (void)strscpy(cfg->placement_auth, "noauth", sizeof(cfg->placement_auth));
        (void)strscpy(cfg->placement_noauth_token, "admin", sizeof(cfg->placement_noauth_token));
        (void)strscpy(cfg->keystone_user_domain, "Default", sizeof(cfg->keystone_user_domain));
        (void)strscpy(cfg->keystone_project_domain, "Default", sizeof(cfg->keystone_project_domain));
        cfg->reserved_host_memory_mb = 512;
        cfg->placement_refresh_s = 300;
}

/* One line (n bytes at raw, without its newline; a trailing '\r' allowed) into
 * tmp; seen[] marks the keys set so far. 0 or -errno with "line N: ..." in err. */
static int parse_line(const char *raw, size_t n, unsigned lineno, bool seen[], struct nova_config *tmp, char *err,
                      size_t errlen)
{
        char line[CONFIG_MAX_LINE + 1], why[256];
        const struct config_key *k;
        char *s, *eq, *key, *value;
        int r;

        if (n > 0 && raw[n - 1] == '\r')
                n--;
        if (n > CONFIG_MAX_LINE) {
                fmt_msg(err, errlen, "line %u: line too long (max %d bytes)", lineno, CONFIG_MAX_LINE);
                return -EINVAL;
        }
        r = check_text(raw, n, why, sizeof(why));
        if (r < 0) {
                fmt_msg(err, errlen, "line %u: %s", lineno, why);
                return r;
        }
        memcpy(line, raw, n);
        line[n] = '\0';

        s = trim(line);
        if (*s == '\0' || *s == '#')
                return 0;
        eq = strchr(s, '=');
        if (!eq) {
                fmt_msg(err, errlen, "line %u: expected 'key = value'", lineno);
                return -EINVAL;
        }
        *eq = '\0';
        key = trim(s);
        value = trim(eq + 1);
        if (*key == '\0') {
                fmt_msg(err, errlen, "line %u: missing key before '='", lineno);
                return -EINVAL;
        }
        k = find_key(key);
        if (!k) {
                fmt_msg(err, errlen, "line %u: unknown key '%.64s'", lineno, key);
                return -EINVAL;
        }
        if (seen[k - config_keys]) {
                fmt_msg(err, errlen, "line %u: duplicate key '%s'", lineno, k->name);
                return -EINVAL;
        }
        seen[k - config_keys] = true;
        r = k->parse(k, value, (char *)tmp + k->offset, why, sizeof(why));
        if (r < 0) {
                fmt_msg(err, errlen, "line %u: %s: %s", lineno, k->name, why);
                return -EINVAL;
        }
        return 0;
}

int config_parse(const char *text, size_t len, struct nova_config *cfg, char *err, size_t errlen)
{
        bool seen[ARRAY_SIZE(config_keys)] = {};
        struct nova_config tmp;
        size_t pos = 0;
        unsigned lineno = 0;
        int r;

        if (!cfg || (!text && len > 0)) {
                fmt_msg(err, errlen, "invalid arguments");
                return -EINVAL;
        }
        if (len > CONFIG_MAX_FILE) {
                fmt_msg(err, errlen, "file too large (%zu bytes, max %d)", len, CONFIG_MAX_FILE);
                return -EFBIG;
        }
        tmp = *cfg;

        if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
                pos = 3; /* UTF-8 byte order mark */

        while (pos < len) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
                const char *raw = text + pos;

                lineno++;
                pos += n + (nl ? 1 : 0);
                r = parse_line(raw, n, lineno, seen, &tmp, err, errlen);
                if (r < 0)
                        return r;
        }

        r = check_cross(&tmp, err, errlen);
        if (r < 0)
                return r;
        *cfg = tmp;
        return 0;
}

int config_load_file(const char *path, struct nova_config *cfg, char *err, size_t errlen)
{
        _cleanup_free_ char *text = NULL;
        char why[512];
        size_t len;
        int r;

        r = read_file_bounded(path, CONFIG_MAX_FILE, &text, &len);
        if (r == -EFBIG) {
                fmt_msg(err, errlen, "%s: file too large (max %d bytes)", path, CONFIG_MAX_FILE);
                return r;
        }
        if (r < 0) {
                fmt_msg(err, errlen, "%s: %s", path, strerror(-r));
                return r;
        }
        r = config_parse(text, len, cfg, why, sizeof(why));
        if (r < 0) {
                fmt_msg(err, errlen, "%s: %s", path, why);
                return r;
        }
        return 0;
}

int config_set(struct nova_config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
        const struct config_key *k;
        struct nova_config tmp;
        char buf[CONFIG_MAX_LINE + 1], why[256];
        size_t n;
        int r;

        if (!cfg || !key || !value) {
                fmt_msg(err, errlen, "invalid arguments");
                return -EINVAL;
        }
        k = find_key(key);
        if (!k) {
                fmt_msg(err, errlen, "unknown key '%.64s'", key);
                return -EINVAL;
        }
        n = strlen(value);
        if (n > CONFIG_MAX_LINE) {
                fmt_msg(err, errlen, "%s: value too long (max %d bytes)", k->name, CONFIG_MAX_LINE);
                return -EINVAL;
        }
        r = check_text(value, n, why, sizeof(why));
        if (r < 0) {
                fmt_msg(err, errlen, "%s: %s", k->name, why);
                return -EINVAL;
        }
        memcpy(buf, value, n + 1);

        tmp = *cfg;
        r = k->parse(k, trim(buf), (char *)&tmp + k->offset, why, sizeof(why));
        if (r < 0) {
                fmt_msg(err, errlen, "%s: %s", k->name, why);
                return -EINVAL;
        }
        r = check_cross(&tmp, err, errlen);
        if (r < 0)
                return r;
        *cfg = tmp;
        return 0;
}

void config_finish(struct nova_config *cfg)
{
        char sock[sizeof(cfg->api_socket)];

        if (cfg->api_socket[0] != '\0')
                return;
        if (xsnprintf(sock, sizeof(sock), "%.*s/%s", (int)dir_len(cfg->run_dir), cfg->run_dir,
                      CONFIG_SOCKET_NAME) < 0 || strlen(sock) > SUN_PATH_MAX)
                return; /* cannot happen after check_cross(); leave it empty */
        memcpy(cfg->api_socket, sock, strlen(sock) + 1);
}
