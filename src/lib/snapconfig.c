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

int snapconfig_to_config(const char *json, size_t len, char **ret_text, char *err, size_t errlen)
{
        struct json_tokener *tok;
        struct json_object *root;
        struct item *items = NULL;
        size_t n_items = 0, cap = 0, total = 1;
        struct nova_config cfg;
        char why[512], *text = NULL;
        int r = -EINVAL;

        if (len > SNAPCONFIG_MAX_JSON) {
                (void)snprintf(err, errlen, "configuration too large (%zu bytes, max %d)", len, SNAPCONFIG_MAX_JSON);
                return -EFBIG;
        }
        if (memchr(json, '\0', len)) {
                (void)snprintf(err, errlen, "configuration is not a JSON object");
                return -EINVAL;
        }
        tok = json_tokener_new_ex(8);
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, json, (int)len);
        if (!root || json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != len) {
                /* trailing blanks (snapctl ends with a newline) are fine */
                size_t end = root ? json_tokener_get_parse_end(tok) : 0;
                bool blank_tail = root != NULL;
                for (size_t i = end; blank_tail && i < len; i++)
                        if (json[i] != ' ' && json[i] != '\n' && json[i] != '\t' && json[i] != '\r')
                                blank_tail = false;
                if (!blank_tail) {
                        json_object_put(root);
                        json_tokener_free(tok);
                        (void)snprintf(err, errlen, "configuration is not a JSON object");
                        return -EINVAL;
                }
        }
        json_tokener_free(tok);
        if (!json_object_is_type(root, json_type_object)) {
                (void)snprintf(err, errlen, "configuration is not a JSON object");
                goto out;
        }
        json_object_object_foreach(root, key, val) {
                struct item it = { .value = NULL };
                const char *s = NULL;
                char numbuf[32];

                if (!snap_key_valid(key)) {
                        (void)snprintf(err, errlen, "%.64s: not a valid snap configuration key", key);
                        goto out;
                }
                (void)strscpy(it.key, key, sizeof(it.key));
                for (char *p = it.key; *p; p++)
                        if (*p == '-')
                                *p = '_';
                /* `snapctl get -d KEY...` answers "" for a key that is not set */
                if (json_object_is_type(val, json_type_string) && json_object_get_string_len(val) == 0)
                        continue;
                for (size_t i = 0; i < ARRAY_SIZE(fixed_keys); i++)
                        if (streq(it.key, fixed_keys[i])) {
                                (void)snprintf(err, errlen, "%s: fixed inside the snap (state under $SNAP_COMMON, "
                                               "sockets under $SNAP_DATA, plugs by snap connect); unset it", key);
                                goto out;
                        }
                switch (json_object_get_type(val)) {
                case json_type_null:
                        continue; /* unset */
                case json_type_string:
                        s = json_object_get_string(val);
                        if ((size_t)json_object_get_string_len(val) != strlen(s) || strpbrk(s, "\n\r")) {
                                (void)snprintf(err, errlen, "%s: must be one line of text", key);
                                goto out;
                        }
                        break;
                case json_type_boolean:
                        s = json_object_get_boolean(val) ? "true" : "false";
                        break;
                case json_type_int:
                        (void)snprintf(numbuf, sizeof(numbuf), "%" PRId64, json_object_get_int64(val));
                        s = numbuf;
                        break;
                case json_type_double:
                        (void)snprintf(err, errlen, "%s: must be a whole number", key);
                        goto out;
                default:
                        (void)snprintf(err, errlen, "%s: must be a single value, not a list or a group of keys", key);
                        goto out;
                }
                if (n_items == cap) {
                        struct item *n = realloc(items, (cap ? cap * 2 : 16) * sizeof(*items));
                        if (!n) {
                                r = -ENOMEM;
                                goto out;
                        }
                        items = n;
                        cap = cap ? cap * 2 : 16;
                }
                it.value = s;
                /* numbers are formatted into a local buffer: keep a copy */
                if (s == numbuf) {
                        it.value = strdup(numbuf);
                        if (!it.value) {
                                r = -ENOMEM;
                                goto out;
                        }
                        it.owned = true;
                }
                items[n_items++] = it;
                total += strlen(it.key) + strlen(it.value) + 4;
        }
        if (n_items)
                qsort(items, n_items, sizeof(*items), cmp_item);
        text = malloc(total);
        if (!text) {
                r = -ENOMEM;
                goto out;
        }
        text[0] = '\0';
        for (size_t i = 0, o = 0; i < n_items; i++)
                o += (size_t)snprintf(text + o, total - o, "%s = %s\n", items[i].key, items[i].value);
        config_defaults(&cfg);
        if (config_parse(text, strlen(text), &cfg, why, sizeof(why)) < 0) {
                snap_error(why, items, n_items, err, errlen);
                r = -EINVAL;
                goto out;
        }
        *ret_text = TAKE_PTR(text);
        r = 0;
out:
        for (size_t i = 0; i < n_items; i++)
                if (items[i].owned)
                        free((char *)items[i].value);
        free(items);
        free(text);
        json_object_put(root);
        return r;
}
