/* images.c - see images.h */
#include "images.h"

#include "log.h"
#include "util.h"

#include <assert.h>
#include <limits.h>
#include <time.h>

struct image_store {
        char path[PATH_MAX];
        struct image *list;
        size_t count;
        images_changed_fn changed;      /* told after each write */
        void *changed_userdata;
};

void images_set_change_hook(struct image_store *store, images_changed_fn fn, void *userdata)
{
        store->changed = fn;
        store->changed_userdata = userdata;
}

struct image *images_first(const struct image_store *store) { return store ? store->list : NULL; }

struct image *image_find(const struct image_store *store, const char *ref)
{
        if (!store || !ref)
                return NULL;
        for (struct image *i = store->list; i; i = i->next)
                if (streq(i->uuid, ref))
                        return i;
        for (struct image *i = store->list; i; i = i->next)
                if (streq(i->name, ref))
                        return i;
        return NULL;
}

int images_resolve(const void *store, const char *ref, char ret_id[UUID_STR_LEN + 1])
{
        const struct image *img = image_find(store, ref);

        if (!img || img->uploading || img->expiring)
                return -ENOENT;
        memcpy(ret_id, img->uuid, UUID_STR_LEN + 1);
        return 0;
}

static bool sha256_is_valid(const char *s)
{
        if (strlen(s) != IMAGE_SHA256_LEN)
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
                        return false;
        return true;
}

struct json_object *image_to_json(const struct image *img)
{
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "uuid", json_object_new_string(img->uuid));
        json_object_object_add(o, "name", json_object_new_string(img->name));
        json_object_object_add(o, "status", json_object_new_string(img->uploading ? "uploading" : "active"));
        json_object_object_add(o, "format", json_object_new_string(img->format));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)img->size));
        json_object_object_add(o, "virtual_size", json_object_new_int64((int64_t)img->virtual_size));
        json_object_object_add(o, "sha256", img->sha256[0] ? json_object_new_string(img->sha256) : NULL);
        json_object_object_add(o, "created_at", json_object_new_int64((int64_t)img->created_at));
        json_object_object_add(o, "unused_since",
                               img->unused_since ? json_object_new_int64((int64_t)img->unused_since) : NULL);
        return o;
}

static int store_write(const struct image_store *store)
{
        struct json_object *root = json_object_new_object(), *list = json_object_new_array();
        const char *text;
        int r;

        json_object_object_add(root, "version", json_object_new_int(1));
        for (const struct image *i = store->list; i; i = i->next)
                if (!i->uploading) {
                        struct json_object *o = image_to_json(i);
                        json_object_object_del(o, "status");
                        json_object_array_add(list, o);
                }
        json_object_object_add(root, "images", list);
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
        r = text ? write_file_atomic(store->path, text, strlen(text), 0600) : -ENOMEM;
        json_object_put(root);
        if (r < 0)
                log_err("cannot write the image store %s: %s", store->path, strerror(-r));
        else if (store->changed)
                store->changed(store->changed_userdata);
        return r;
}

static bool get_u64(struct json_object *o, const char *key, uint64_t *ret)
{
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) < 0)
                return false;
        *ret = (uint64_t)json_object_get_int64(v);
        return true;
}

static const char *get_str(struct json_object *o, const char *key)
{
        struct json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

/* One stored image: 0, or -EBADMSG with why. */
static int image_from_json(struct json_object *o, size_t idx, struct image *ret, char *why, size_t whylen)
{
        struct image img = { 0 };
        struct json_object *v = NULL;
        const char *uuid = get_str(o, "uuid"), *name = get_str(o, "name"), *format = get_str(o, "format"),
                   *sha = get_str(o, "sha256");

        if (!json_object_is_type(o, json_type_object) || !uuid || !uuid_is_valid(uuid) || !name ||
            !instance_name_is_valid(name) || !format || (!streq(format, "raw") && !streq(format, "qcow2")) || !sha ||
            !sha256_is_valid(sha) || !get_u64(o, "size", &img.size) || !get_u64(o, "virtual_size", &img.virtual_size) ||
            !get_u64(o, "created_at", &img.created_at)) {
                (void)snprintf(why, whylen, "images[%zu] is malformed", idx);
                return -EBADMSG;
        }
        memcpy(img.uuid, uuid, sizeof(img.uuid));
        (void)strscpy(img.name, name, sizeof(img.name));
        (void)strscpy(img.format, format, sizeof(img.format));
        memcpy(img.sha256, sha, sizeof(img.sha256));
        /* absent (a store of before the image cache) or null: in use until marked */
        if (json_object_object_get_ex(o, "unused_since", &v) && v && !get_u64(o, "unused_since", &img.unused_since)) {
                (void)snprintf(why, whylen, "images[%zu] is malformed", idx);
                return -EBADMSG;
        }
        *ret = img;
        return 0;
}

void images_list_free(struct image *list)
{
        while (list) {
                struct image *next = list->next;
                free(list);
                list = next;
        }
}

static const struct image *list_find(const struct image *list, const char *ref)
{
        for (const struct image *i = list; i; i = i->next)
                if (streq(i->uuid, ref) || streq(i->name, ref))
                        return i;
        return NULL;
}

int images_parse_stored(const char *text, size_t len, struct image **ret_list, size_t *ret_n, char *why, size_t whylen)
{
        struct json_tokener *tok = json_tokener_new_ex(8);
        struct json_object *root, *list;
        struct image *head = NULL;
        size_t n = 0;
        int r = 0;

        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, text, (int)len);
        if (!root || json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len ||
            !json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "images", &list) ||
            !json_object_is_type(list, json_type_array) || json_object_array_length(list) > IMAGES_MAX) {
                json_tokener_free(tok);
                json_object_put(root);
                (void)snprintf(why, whylen, "not an image store");
                return -EBADMSG;
        }
        json_tokener_free(tok);
        for (size_t i = 0; i < json_object_array_length(list) && r == 0; i++) {
                struct image tmp, *img;

                r = image_from_json(json_object_array_get_idx(list, i), i, &tmp, why, whylen);
                if (r == 0 && (list_find(head, tmp.uuid) || list_find(head, tmp.name))) {
                        (void)snprintf(why, whylen, "images[%zu]: uuid or name repeated", i);
                        r = -EBADMSG;
                }
                if (r == 0 && !(img = malloc(sizeof(*img))))
                        r = -ENOMEM;
                if (r == 0) {
                        *img = tmp;
                        img->next = head;
                        head = img;
                        n++;
                }
        }
        json_object_put(root);
        if (r < 0) {
                images_list_free(head);
                return r;
        }
        *ret_list = head;
        *ret_n = n;
        return 0;
}

static int load_file(struct image_store *store, char *why, size_t whylen)
{
        _cleanup_free_ char *text = NULL;
        size_t len;
        char inner[200];
        int r = read_file_bounded(store->path, 1024 * 1024, &text, &len);

        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                (void)snprintf(why, whylen, "cannot read %s: %s", store->path, strerror(-r));
                return r;
        }
        r = images_parse_stored(text, len, &store->list, &store->count, inner, sizeof(inner));
        if (r < 0)
                (void)snprintf(why, whylen, "%s: %s", store->path, inner);
        return r;
}

int images_load(const char *state_dir, struct image_store **ret, char *why, size_t whylen)
{
        struct image_store *store;
        int r;

        assert(state_dir && ret && why);
        store = calloc(1, sizeof(*store));
        if (!store)
                return -ENOMEM;
        r = xsnprintf(store->path, sizeof(store->path), "%s/images.json", state_dir);
        if (r == 0)
                r = load_file(store, why, whylen);
        if (r < 0) {
                images_free(store);
                return r;
        }
        *ret = store;
        return 0;
}

struct image_store *images_free(struct image_store *store)
{
        if (!store)
                return NULL;
        images_list_free(store->list);
        free(store);
        return NULL;
}

int image_begin(struct image_store *store, const char *name, struct image **ret)
{
        struct image *img;

        assert(store && name && ret);
        if (!instance_name_is_valid(name) || uuid_is_valid(name))
                return -EINVAL;
        if (image_find(store, name))
                return -EEXIST;
        if (store->count >= IMAGES_MAX)
                return -ENOSPC;
        img = calloc(1, sizeof(*img));
        if (!img)
                return -ENOMEM;
        if (uuid_new_str(img->uuid) < 0) {
                free(img);
                return -EIO;
        }
        (void)strscpy(img->name, name, sizeof(img->name));
        (void)strscpy(img->format, "raw", sizeof(img->format));
        img->uploading = true;
        img->created_at = (uint64_t)time(NULL);
        img->next = store->list;
        store->list = img;
        store->count++;
        *ret = img;
        return 0;
}

int image_commit(struct image_store *store, struct image *img, const char *format, uint64_t size, uint64_t virtual_size,
                 const char *sha256)
{
        int r;

        assert(store && img && img->uploading);
        if (!sha256_is_valid(sha256) || (!streq(format, "raw") && !streq(format, "qcow2")))
                return -EINVAL;
        (void)strscpy(img->format, format, sizeof(img->format));
        img->size = size;
        img->virtual_size = virtual_size;
        memcpy(img->sha256, sha256, sizeof(img->sha256));
        img->unused_since = (uint64_t)time(NULL); /* no instance uses it yet */
        img->uploading = false;
        r = store_write(store);
        if (r < 0)
                img->uploading = true;
        return r;
}

int images_mark_usage(struct image_store *store, images_in_use_fn in_use, void *userdata, uint64_t now)
{
        bool changed = false;

        assert(store && in_use && now > 0);
        for (struct image *i = store->list; i; i = i->next) {
                if (i->uploading)
                        continue;
                if (in_use(i->uuid, userdata)) {
                        changed |= i->unused_since != 0;
                        i->unused_since = 0;
                } else if (i->unused_since == 0) {
                        i->unused_since = now;
                        changed = true;
                }
        }
        return changed ? store_write(store) : 0;
}

uint64_t images_next_expiry(const struct image_store *store, uint64_t age_s)
{
        uint64_t next = UINT64_MAX;

        for (const struct image *i = store ? store->list : NULL; i; i = i->next)
                if (!i->uploading && !i->expiring && i->unused_since &&
                    (i->unused_since > UINT64_MAX - age_s ? UINT64_MAX : i->unused_since + age_s) < next)
                        next = i->unused_since > UINT64_MAX - age_s ? UINT64_MAX : i->unused_since + age_s;
        return next;
}

int image_remove(struct image_store *store, struct image *img)
{
        bool was_recorded = !img->uploading;
        struct image **pp;

        assert(store && img);
        for (pp = &store->list; *pp && *pp != img; pp = &(*pp)->next)
                ;
        if (!*pp)
                return -ENOENT;
        *pp = img->next;
        if (was_recorded) {
                int r = store_write(store);
                if (r < 0) {
                        img->next = *pp; /* put it back: nothing changed */
                        *pp = img;
                        return r;
                }
        }
        store->count--;
        free(img);
        return 0;
}
