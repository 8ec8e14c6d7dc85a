/* snapconfig.c - see snapconfig.h */
#include "snapconfig.h"

#include <inttypes.h>
#include <json-c/json.h>

static const char *const fixed_keys[] = { "state_dir", "run_dir", "api_socket", "module_dir", "plugs" };

int snapconfig_snap_key(const char *config_key, char *buf, size_t size)
{
        int r = strscpy(buf, config_key, size);

        if (r < 0)
                return r;
        for (char *p = buf; *p; p++)
                if (*p == '_')
                        *p = '-';
        return 0;
}

static bool snap_key_valid(const char *k)
{
        size_t n = strlen(k);

        if (n == 0 || n > 64 || k[0] == '-' || k[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '-'))
                        return false;
        return true;
}

struct item {
        char key[72];     /* config key (underscores) */
        const char *value;
        bool owned;       /* value is malloc'd (numbers), not the JSON object's */
};

static int cmp_item(const void *a, const void *b)
{
        return strcmp(((const struct item *)a)->key, ((const struct item *)b)->key);
}

/* Rewrite config.c's error text into snap terms: "line N: " becomes the snap
 * key of line N; other config key names get their snap spelling. */
static void snap_error(const char *why, const struct item *items, size_t n_items, char *err, size_t errlen)
{
        char out[512] = "";
        const char *p = why;

        if (strncmp(p, "line ", 5) == 0) {
                char *end;
                unsigned long line = strtoul(p + 5, &end, 10);
                if (end != p + 5 && strncmp(end, ": ", 2) == 0 && line >= 1 && line <= n_items) {
                        p = end + 2;
                        /* config.c says "<key>: why" or "unknown key 'k'"; drop its key, we name ours. */
                        size_t kl = strlen(items[line - 1].key);
                        if (strncmp(p, items[line - 1].key, kl) == 0 && p[kl] == ':')
                                p += kl + 2;
                        char sk[72];
                        (void)snapconfig_snap_key(items[line - 1].key, sk, sizeof(sk));
                        if (strncmp(p, "unknown key", 11) == 0)
                                (void)snprintf(out, sizeof(out), "%s: unknown key", sk);
                        else
                                (void)snprintf(out, sizeof(out), "%s: %s", sk, p);
                        (void)strscpy(err, out, errlen);
                        return;
                }
        }
        /* Cross-field messages: translate every key name they mention. */
        for (size_t i = 0, o = 0; why[i] && o + 1 < sizeof(out); i++) {
                out[o++] = why[i] == '_' ? '-' : why[i];
                out[o] = '\0';
        }
        (void)strscpy(err, out, errlen);
}

/* The items collected so far (values point into the JSON unless owned). */
struct items {
        struct item *v;
        size_t n, cap;
};

static void items_free(struct items *l)
{
        for (size_t i = 0; i < l->n; i++)
                if (l->v[i].owned)
                        free((char *)l->v[i].value);
        free(l->v);
}

static void json_putp(struct json_object **o) { json_object_put(*o); }

/* json as one JSON object (trailing blanks allowed: snapctl ends with a newline). */
static int parse_object(const char *json, size_t len, struct json_object **ret, char *err, size_t errlen)
{
        struct json_tokener *tok;
        struct json_object *root;
        bool ok;

        if (len > SNAPCONFIG_MAX_JSON)
                return snprintf(err, errlen, "configuration too large (%zu bytes, max %d)", len, SNAPCONFIG_MAX_JSON),
                       -EFBIG;
        if (memchr(json, '\0', len))
                return snprintf(err, errlen, "configuration is not a JSON object"), -EINVAL;
        tok = json_tokener_new_ex(8);
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, json, (int)len);
        ok = root && json_tokener_get_error(tok) == json_tokener_success;
        for (size_t i = ok ? json_tokener_get_parse_end(tok) : 0; ok && i < len; i++)
                if (json[i] != ' ' && json[i] != '\n' && json[i] != '\t' && json[i] != '\r')
                        ok = false;
        json_tokener_free(tok);
        if (!ok || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return snprintf(err, errlen, "configuration is not a JSON object"), -EINVAL;
        }
        *ret = root;
        return 0;
}

/* One key of the snap's configuration as a config item: 0 (filled), 1 (not
 * set: skip it), or -errno with the reason. */
static int item_from_json(const char *key, struct json_object *val, struct item *it, char *err, size_t errlen)
{
        char numbuf[32];
        const char *s;

        if (!snap_key_valid(key))
                return snprintf(err, errlen, "%.64s: not a valid snap configuration key", key), -EINVAL;
        (void)strscpy(it->key, key, sizeof(it->key));
        for (char *p = it->key; *p; p++)
                if (*p == '-')
                        *p = '_';
        /* `snapctl get -d KEY...` answers "" for a key that is not set */
        if (json_object_is_type(val, json_type_string) && json_object_get_string_len(val) == 0)
                return 1;
        for (size_t i = 0; i < ARRAY_SIZE(fixed_keys); i++)
                if (streq(it->key, fixed_keys[i]))
                        return snprintf(err, errlen, "%s: fixed inside the snap (state under $SNAP_COMMON, "
                                        "sockets under $SNAP_DATA, plugs by snap connect); unset it", key), -EINVAL;
        switch (json_object_get_type(val)) {
        case json_type_null:
                return 1; /* unset */
        case json_type_string:
                s = json_object_get_string(val);
                if ((size_t)json_object_get_string_len(val) != strlen(s) || strpbrk(s, "\n\r"))
                        return snprintf(err, errlen, "%s: must be one line of text", key), -EINVAL;
                it->value = s;
                return 0;
        case json_type_boolean:
                it->value = json_object_get_boolean(val) ? "true" : "false";
                return 0;
        case json_type_int:
                /* numbers are formatted here: keep a copy */
                (void)snprintf(numbuf, sizeof(numbuf), "%" PRId64, json_object_get_int64(val));
                it->value = strdup(numbuf);
                if (!it->value)
                        return -ENOMEM;
                it->owned = true;
                return 0;
        case json_type_double:
                return snprintf(err, errlen, "%s: must be a whole number", key), -EINVAL;
        default:
                return snprintf(err, errlen, "%s: must be a single value, not a list or a group of keys", key), -EINVAL;
        }
}

static int items_push(struct items *l, const struct item *it)
{
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                struct item *n = realloc(l->v, cap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                l->v = n;
                l->cap = cap;
        }
        l->v[l->n++] = *it;
        return 0;
}

/* "key = value\n" lines, sorted by key. */
static int items_render(struct items *l, char **ret)
{
        size_t total = 1;
        char *text;

        for (size_t i = 0; i < l->n; i++)
                total += strlen(l->v[i].key) + strlen(l->v[i].value) + 4;
        if (l->n)
                qsort(l->v, l->n, sizeof(*l->v), cmp_item);
        text = malloc(total);
        if (!text)
                return -ENOMEM;
        text[0] = '\0';
        for (size_t i = 0, o = 0; i < l->n; i++)
                o += (size_t)snprintf(text + o, total - o, "%s = %s\n", l->v[i].key, l->v[i].value);
        *ret = text;
        return 0;
}

int snapconfig_to_config(const char *json, size_t len, char **ret_text, char *err, size_t errlen)
{
        _cleanup_(json_putp) struct json_object *root = NULL;
        _cleanup_(items_free) struct items items = { 0 };
        _cleanup_free_ char *text = NULL;
        struct nova_config cfg;
        char why[512];
        int r;

        r = parse_object(json, len, &root, err, errlen);
        if (r < 0)
                return r;
        json_object_object_foreach(root, key, val) {
                struct item it = { .value = NULL };
                r = item_from_json(key, val, &it, err, errlen);
                if (r < 0)
                        return r;
                if (r == 0 && items_push(&items, &it) < 0) {
                        if (it.owned)
                                free((char *)it.value);
                        return -ENOMEM;
                }
        }
        r = items_render(&items, &text);
        if (r < 0)
                return r;
        config_defaults(&cfg);
        if (config_parse(text, strlen(text), &cfg, why, sizeof(why)) < 0) {
                snap_error(why, items.v, items.n, err, errlen);
                return -EINVAL;
        }
        *ret_text = TAKE_PTR(text);
        return 0;
}
