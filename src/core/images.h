/* images.h - the image store: what was imported (name, id, sizes, sha256),
 * in one JSON file, <state_dir>/images.json, written atomically on every
 * change. The bytes are the libvirt module's base volumes (image-<id>.raw);
 * the store is what names them. An import in progress holds its name (an
 * "uploading" entry, never written) so two imports cannot take one name. */
#ifndef NOVA_IMAGES_H
#define NOVA_IMAGES_H

#include "names.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#define IMAGES_MAX 1024
#define IMAGE_NAME_MAX INSTANCE_NAME_MAX /* same syntax as instance names */
#define IMAGE_SHA256_LEN 64

struct image {
        struct image *next;
        char uuid[UUID_STR_LEN + 1];
        char name[IMAGE_NAME_MAX + 1];
        char format[8];                 /* what was imported: "raw" (stored raw) */
        uint64_t size;                  /* bytes stored (= the virtual size of a raw image) */
        uint64_t virtual_size;
        char sha256[IMAGE_SHA256_LEN + 1]; /* of the bytes imported */
        uint64_t created_at;            /* unix seconds */
        uint64_t unused_since;          /* unix seconds since no instance uses it (root disk, kernel or
                                         * ramdisk); 0 = in use. Stored: the image cache's expiry counts
                                         * from it across restarts (images_mark_usage) */
        bool uploading;                 /* an import in progress: not written, not usable */
        bool expiring;                  /* the image cache is deleting its base: not usable, not written
                                         * differently (image-cache.c) */
};

struct image_store;

/* Load <state_dir>/images.json (none: an empty store). A file that does not
 * parse is -EBADMSG with the reason in why. 0 and *ret, or -errno. */
int images_load(const char *state_dir, struct image_store **ret, char *why, size_t whylen);
/* NULL accepted. Returns NULL. */
struct image_store *images_free(struct image_store *store);

struct image *images_first(const struct image_store *store);
/* By uuid, else by name (ready or uploading); NULL when none. */
struct image *image_find(const struct image_store *store, const char *ref);
/* Resolver for instance_parse_boot_request() (store: a struct image_store): the
 * uuid of a ready image named or identified by ref. 0 or -ENOENT. */
int images_resolve(const void *store, const char *ref, char ret_id[UUID_STR_LEN + 1]);

/* Begin an import: a new uploading entry with a fresh uuid. -EINVAL (bad
 * name), -EEXIST (name taken), -ENOSPC (IMAGES_MAX). */
int image_begin(struct image_store *store, const char *name, struct image **ret);
/* The import succeeded: record what the module reported and write the store.
 * 0 or the write error (then the entry is still uploading). */
int image_commit(struct image_store *store, struct image *img, const char *format, uint64_t size, uint64_t virtual_size,
                 const char *sha256);
/* Drop an entry (an import that failed, or a deleted image) and write the
 * store when it was a recorded one. 0 or the write error (then it is kept). */
int image_remove(struct image_store *store, struct image *img);

/* The decoder of images.json (fuzzed): a list of ready images (each checked:
 * uuid, name syntax, format, sha256, sizes; nothing repeated). 0 with
 * *ret_list (images_list_free) and *ret_n, or -EBADMSG with why; outputs
 * untouched on error. */
int images_parse_stored(const char *text, size_t len, struct image **ret_list, size_t *ret_n, char *why, size_t whylen);
void images_list_free(struct image *list);

/* Told after every write of the store (an import recorded, an image removed): the image
 * cache re-arms its timer. One hook; fn NULL removes it. */
typedef void (*images_changed_fn)(void *userdata);
void images_set_change_hook(struct image_store *store, images_changed_fn fn, void *userdata);

/* Image cache bookkeeping: each ready image that in_use(uuid) says is used gets
 * unused_since 0, each other one whose unused_since is 0 gets now. Writes the
 * store when something changed: 0, or the write error (memory has the new
 * marks; the next call writes them). */
typedef bool (*images_in_use_fn)(const char *image_uuid, void *userdata);
int images_mark_usage(struct image_store *store, images_in_use_fn in_use, void *userdata, uint64_t now);
/* When the first unused ready image (not expiring) is age_s old: min(unused_since +
 * age_s), UINT64_MAX when there is none. */
uint64_t images_next_expiry(const struct image_store *store, uint64_t age_s);

/* The API view (caller puts it). */
struct json_object *image_to_json(const struct image *img);

#endif
