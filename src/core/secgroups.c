/* secgroups.c - see secgroups.h */
#include "secgroups.h"

#include "log.h"

#include <assert.h>
#include <limits.h>

struct secgroup_store {
        char path[PATH_MAX];     /* <state_dir>/secgroups.json */
        struct secgroup *list;   /* in creation order */
        size_t count;
};

struct secgroup *secgroups_first(const struct secgroup_store *store)
{
        assert(store);
        return store->list;
}

size_t secgroups_count(const struct secgroup_store *store)
{
        assert(store);
        return store->count;
}

struct secgroup *secgroup_find(const struct secgroup_store *store, const char *ref)
{
        if (!ref)
                return NULL;
        for (struct secgroup *g = store->list; g; g = g->next)
                if (streq(g->id, ref))
                        return g;
        for (struct secgroup *g = store->list; g; g = g->next)
                if (streq(g->name, ref))
                        return g;
        return NULL;
}

int secgroup_resolve(const void *store, const char *ref, char ret_id[UUID_STR_LEN + 1])
{
        const struct secgroup *g = secgroup_find(store, ref);

        assert(ret_id);
        if (!g)
                return -ENOENT;
        memcpy(ret_id, g->id, UUID_STR_LEN + 1);
        return 0;
}

bool secgroup_name_is_valid(const char *name)
{
        size_t n = name ? strlen(name) : 0;

        if (n < 1 || n > SECGROUP_NAME_MAX || name[0] == '.' || name[0] == '-' || uuid_is_valid(name))
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-'))
                        return false;
        }
        return true;
}

static bool desc_is_valid(const char *s)
{
        if (!s || strlen(s) > SECGROUP_DESC_MAX)
                return false;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

struct json_object *secgroup_to_json(const struct secgroup *sg)
{
        struct json_object *o = json_object_new_object(), *rules = json_object_new_array();

        assert(sg);
        json_object_object_add(o, "id", json_object_new_string(sg->id));
        json_object_object_add(o, "name", json_object_new_string(sg->name));
        json_object_object_add(o, "description", json_object_new_string(sg->description));
        for (size_t i = 0; i < sg->n_rules; i++)
                json_object_array_add(rules, secrule_to_json(&sg->rules[i]));
        json_object_object_add(o, "rules", rules);
        return o;
}

/* ---- the stored file ---- */

static void list_append(struct secgroup **list, struct secgroup *g)
{
        struct secgroup **pp = list;

        while (*pp)
                pp = &(*pp)->next;
        g->next = NULL;
        *pp = g;
}

void secgroups_list_free(struct secgroup *list)
{
        while (list) {
                struct secgroup *next = list->next;
                free(list);
                list = next;
        }
}

static int group_from_json(struct json_object *o, struct secgroup *g, char *why, size_t whylen)
{
        struct json_object *v, *rules;
        char err[160];

        if (!json_object_is_type(o, json_type_object))
                return snprintf(why, whylen, "a group is not an object"), -EBADMSG;
        json_object_object_foreach(o, key, val) {
                (void)val;
                if (!streq(key, "id") && !streq(key, "name") && !streq(key, "description") && !streq(key, "rules"))
                        return snprintf(why, whylen, "group: unknown field '%.32s'", key), -EBADMSG;
        }
        if (!json_object_object_get_ex(o, "id", &v) || !json_object_is_type(v, json_type_string) ||
            !uuid_is_valid(json_object_get_string(v)))
                return snprintf(why, whylen, "group id"), -EBADMSG;
        memcpy(g->id, json_object_get_string(v), UUID_STR_LEN + 1);
        if (!json_object_object_get_ex(o, "name", &v) || !json_object_is_type(v, json_type_string) ||
            !secgroup_name_is_valid(json_object_get_string(v)))
                return snprintf(why, whylen, "group %s: name", g->id), -EBADMSG;
        (void)strscpy(g->name, json_object_get_string(v), sizeof(g->name));
        if (!json_object_object_get_ex(o, "description", &v) || !json_object_is_type(v, json_type_string) ||
            !desc_is_valid(json_object_get_string(v)))
                return snprintf(why, whylen, "group %s: description", g->id), -EBADMSG;
        (void)strscpy(g->description, json_object_get_string(v), sizeof(g->description));
        if (!json_object_object_get_ex(o, "rules", &rules) || !json_object_is_type(rules, json_type_array) ||
            json_object_array_length(rules) > SECGROUP_MAX_RULES)
                return snprintf(why, whylen, "group %s: rules must be a list of at most %d", g->id,
                                SECGROUP_MAX_RULES), -EBADMSG;
        g->n_rules = 0;
        for (size_t i = 0; i < json_object_array_length(rules); i++) {
                struct secrule *r = &g->rules[g->n_rules];
                if (secrule_from_json(json_object_array_get_idx(rules, i), r, err, sizeof(err)) < 0)
                        return snprintf(why, whylen, "group %s: rules[%zu]: %s", g->id, i, err), -EBADMSG;
                if (!r->uuid[0])
                        return snprintf(why, whylen, "group %s: rules[%zu] has no id", g->id, i), -EBADMSG;
                for (size_t k = 0; k < g->n_rules; k++)
                        if (streq(g->rules[k].uuid, r->uuid) || secrule_equal(&g->rules[k], r))
                                return snprintf(why, whylen, "group %s: rules[%zu] repeats rules[%zu]", g->id, i, k),
                                       -EBADMSG;
                g->n_rules++;
        }
        return 0;
}

static void json_putp(struct json_object **o) { json_object_put(*o); }
static void tokener_freep(struct json_tokener **t) { if (*t) json_tokener_free(*t); }
static void group_listp(struct secgroup **list) { secgroups_list_free(*list); }

/* The "groups" list into a new list (appended in order). 0 or -errno with the reason. */
static int groups_from_json(struct json_object *groups, struct secgroup **ret_list, size_t *ret_n, char *why,
                            size_t whylen)
{
        _cleanup_(group_listp) struct secgroup *list = NULL;
        size_t n = 0;

        for (size_t i = 0; i < json_object_array_length(groups); i++) {
                struct secgroup *g = calloc(1, sizeof(*g));
                if (!g)
                        return -ENOMEM;
                list_append(&list, g);
                n++;
                if (group_from_json(json_object_array_get_idx(groups, i), g, why, whylen) < 0)
                        return -EBADMSG;
                for (struct secgroup *k = list; k != g; k = k->next)
                        if (streq(k->id, g->id) || streq(k->name, g->name))
                                return snprintf(why, whylen, "group %s: id or name repeated", g->id), -EBADMSG;
        }
        *ret_list = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}

int secgroups_parse_stored(const char *text, size_t len, struct secgroup **ret_list, size_t *ret_n, char *why,
                           size_t whylen)
{
        _cleanup_(tokener_freep) struct json_tokener *tok = json_tokener_new_ex(8);
        _cleanup_(json_putp) struct json_object *o = NULL;
        struct json_object *v, *groups;

        assert(text && ret_list && ret_n && why);
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, text, (int)len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len ||
            !json_object_is_type(o, json_type_object))
                return snprintf(why, whylen, "not a single JSON object"), -EBADMSG;
        if (!json_object_object_get_ex(o, "version", &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) != 1)
                return snprintf(why, whylen, "unsupported version"), -EBADMSG;
        if (!json_object_object_get_ex(o, "groups", &groups) || !json_object_is_type(groups, json_type_array) ||
            json_object_array_length(groups) > SECGROUPS_MAX)
                return snprintf(why, whylen, "groups must be a list of at most %d", SECGROUPS_MAX), -EBADMSG;
        return groups_from_json(groups, ret_list, ret_n, why, whylen);
}

/* Write the store as it would be with old replaced by new (new NULL: old
 * removed; old NULL: new appended). Memory is not touched. */
static int store_write(const struct secgroup_store *store, const struct secgroup *old, const struct secgroup *new)
{
        struct json_object *root = json_object_new_object(), *groups = json_object_new_array();
        const char *text;
        int r;

        json_object_object_add(root, "version", json_object_new_int(1));
        for (const struct secgroup *g = store->list; g; g = g->next) {
                if (g == old) {
                        if (new)
                                json_object_array_add(groups, secgroup_to_json(new));
                        continue;
                }
                json_object_array_add(groups, secgroup_to_json(g));
        }
        if (!old && new)
                json_object_array_add(groups, secgroup_to_json(new));
        json_object_object_add(root, "groups", groups);
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
        r = text ? write_file_atomic(store->path, text, strlen(text), 0600) : -ENOMEM;
        json_object_put(root);
        if (r < 0)
                log_err("cannot record security groups in %s: %s", store->path, strerror(-r));
        return r;
}

static void default_rules(struct secgroup *g)
{
        for (uint8_t fam = 4; fam <= 6; fam += 2) {
                struct secrule *r = &g->rules[g->n_rules++];
                *r = (struct secrule){ .dir = SECRULE_EGRESS, .family = fam, .proto = -1, .icmp_type = -1,
                                       .icmp_code = -1 };
                if (uuid_new_str(r->uuid) < 0)
                        r->uuid[0] = '\0';
        }
}

static int group_new(const char *name, const char *description, struct secgroup **ret)
{
        struct secgroup *g = calloc(1, sizeof(*g));

        if (!g)
                return -ENOMEM;
        if (uuid_new_str(g->id) < 0) {
                free(g);
                return -EIO;
        }
        (void)strscpy(g->name, name, sizeof(g->name));
        (void)strscpy(g->description, description, sizeof(g->description));
        default_rules(g);
        for (size_t i = 0; i < g->n_rules; i++)
                if (!g->rules[i].uuid[0]) {
                        free(g);
                        return -EIO;
                }
        *ret = g;
        return 0;
}

/* The file into store (created with the group "default" when missing). */
static int load_file(struct secgroup_store *store, char *why, size_t whylen)
{
        _cleanup_free_ char *text = NULL;
        struct secgroup *list = NULL;
        size_t len = 0, n = 0;
        int r;

        r = read_file_bounded(store->path, 4 * 1024 * 1024, &text, &len);
        if (r == -ENOENT) {
                struct secgroup *g;
                r = group_new(SECGROUP_DEFAULT, "Default security group: all egress, no ingress", &g);
                if (r < 0)
                        return r;
                r = store_write(store, NULL, g);
                if (r < 0) {
                        free(g);
                        (void)snprintf(why, whylen, "cannot write %s: %s", store->path, strerror(-r));
                        return r;
                }
                store->list = g;
                store->count = 1;
                log_info("security groups: created %s with the group '%s'", store->path, SECGROUP_DEFAULT);
                return 0;
        }
        if (r < 0) {
                (void)snprintf(why, whylen, "cannot read %s: %s", store->path, strerror(-r));
                return r;
        }
        r = secgroups_parse_stored(text, len, &list, &n, why, whylen);
        if (r < 0)
                return r;
        store->list = list;
        store->count = n;
        return 0;
}

int secgroups_load(const char *state_dir, struct secgroup_store **ret, char *why, size_t whylen)
{
        struct secgroup_store *store;
        int r;

        assert(state_dir && ret && why);
        store = calloc(1, sizeof(*store));
        if (!store)
                return -ENOMEM;
        r = xsnprintf(store->path, sizeof(store->path), "%s/secgroups.json", state_dir);
        if (r == 0)
                r = load_file(store, why, whylen);
        if (r < 0) {
                secgroups_free(store);
                return r;
        }
        *ret = store;
        return 0;
}

struct secgroup_store *secgroups_free(struct secgroup_store *store)
{
        if (!store)
                return NULL;
        secgroups_list_free(store->list);
        free(store);
        return NULL;
}

int secgroup_create(struct secgroup_store *store, const char *name, const char *description, struct secgroup **ret)
{
        struct secgroup *g;
        int r;

        if (!secgroup_name_is_valid(name) || !desc_is_valid(description ? description : ""))
                return -EINVAL;
        assert(store);
        if (secgroup_find(store, name))
                return -EEXIST;
        if (store->count >= SECGROUPS_MAX)
                return -ENOSPC;
        r = group_new(name, description ? description : "", &g);
        if (r < 0)
                return r;
        r = store_write(store, NULL, g);
        if (r < 0) {
                free(g);
                return r;
        }
        list_append(&store->list, g);
        store->count++;
        if (ret)
                *ret = g;
        return 0;
}

int secgroup_delete(struct secgroup_store *store, struct secgroup *sg)
{
        int r;

        assert(store && sg);
        if (streq(sg->name, SECGROUP_DEFAULT))
                return -EPERM;
        r = store_write(store, sg, NULL);
        if (r < 0)
                return r;
        for (struct secgroup **pp = &store->list; *pp; pp = &(*pp)->next)
                if (*pp == sg) {
                        *pp = sg->next;
                        break;
                }
        store->count--;
        free(sg);
        return 0;
}

void secgroup_with_rule(const struct secgroup *sg, const struct secrule *add, size_t remove_index, struct secgroup *ret)
{
        assert(sg && ret && (add || remove_index < sg->n_rules));
        *ret = *sg;
        ret->next = NULL;
        if (remove_index < ret->n_rules) {
                memmove(&ret->rules[remove_index], &ret->rules[remove_index + 1],
                        (ret->n_rules - remove_index - 1) * sizeof(ret->rules[0]));
                ret->n_rules--;
        }
        if (add && ret->n_rules < SECGROUP_MAX_RULES)
                ret->rules[ret->n_rules++] = *add;
}

int secgroup_rule_add(struct secgroup_store *store, struct secgroup *sg, const struct secrule *rule, char ret_dup_id[UUID_STR_LEN + 1],
                      const struct secrule **ret)
{
        _cleanup_free_ struct secgroup *next = NULL;
        struct secrule r = *rule;
        int k;

        assert(store && sg && rule);
        for (size_t i = 0; i < sg->n_rules; i++)
                if (secrule_equal(&sg->rules[i], &r)) {
                        if (ret_dup_id)
                                memcpy(ret_dup_id, sg->rules[i].uuid, UUID_STR_LEN + 1);
                        return -EEXIST;
                }
        if (sg->n_rules >= SECGROUP_MAX_RULES)
                return -ENOSPC;
        if (!r.uuid[0] && uuid_new_str(r.uuid) < 0)
                return -EIO;
        if (secgroup_find_rule(store, r.uuid, NULL))
                return -EEXIST;
        next = malloc(sizeof(*next));
        if (!next)
                return -ENOMEM;
        secgroup_with_rule(sg, &r, SIZE_MAX, next);
        k = store_write(store, sg, next);
        if (k < 0)
                return k;
        sg->rules[sg->n_rules++] = r;
        if (ret)
                *ret = &sg->rules[sg->n_rules - 1];
        return 0;
}

struct secgroup *secgroup_find_rule(const struct secgroup_store *store, const char *rule_id, size_t *ret_index)
{
        assert(store && rule_id);
        for (struct secgroup *g = store->list; g; g = g->next)
                for (size_t i = 0; i < g->n_rules; i++)
                        if (streq(g->rules[i].uuid, rule_id)) {
                                if (ret_index)
                                        *ret_index = i;
                                return g;
                        }
        return NULL;
}

int secgroup_rule_delete(struct secgroup_store *store, struct secgroup *sg, size_t index)
{
        _cleanup_free_ struct secgroup *next = NULL;
        struct secgroup *keep;
        int r;

        assert(store && sg);
        if (index >= sg->n_rules)
                return -ENOENT;
        next = malloc(sizeof(*next));
        if (!next)
                return -ENOMEM;
        secgroup_with_rule(sg, NULL, index, next);
        r = store_write(store, sg, next);
        if (r < 0)
                return r;
        keep = sg->next;
        *sg = *next;
        sg->next = keep;
        return 0;
}
