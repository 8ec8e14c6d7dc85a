/* api-images.c - images: import, list, show, delete.
 *
 * An import's bytes never pass through the core: the client sends the
 * request {"name", "size", "format"?} with one descriptor attached
 * (SCM_RIGHTS on the API socket; in practice the read end of a pipe the CLI
 * fills), and the core hands that descriptor on to the libvirt module with
 * image_upload (modules_call_fd), which inspects the header before libvirt
 * sees a byte and streams the rest into a raw base volume. So the core needs
 * no capability and no file access for an import, holds no image bytes (its
 * memory does not grow with the image), and its event loop stays free; flow
 * control is the pipe's. An import whose client goes away still finishes:
 * the store records what the module stored, so no volume is left unnamed. */
#include "api-internal.h"

#include "images.h"
#include "libvirt-protocol.h"
#include "log.h"

#include <assert.h>

#define UPLOAD_MIN_RATE (4u * 1000 * 1000) /* bytes/s the module's timeout allows for, at the least */

/* One import in flight: it outlives the connection that asked for it. */
struct image_import {
        struct api_conn *conn;            /* NULL once the client went away */
        struct image_store *store;
        struct image *img;                /* the uploading entry */
};

static struct image_store *store_of(const struct api_conn *c) { return api_context_of(c)->images; }

static struct image *image_arg(struct api_conn *c, const char *ref)
{
        struct image *img = strlen(ref) < API_ID_MAX ? image_find(store_of(c), ref) : NULL;

        if (!img)
                api_respond_error(c, 404, "no such image", -1);
        return img;
}

static void handle_image_list(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        struct json_object *root = json_object_new_object(), *list = json_object_new_array();

        (void)req;
        (void)a;
        for (const struct image *i = images_first(store_of(c)); i; i = i->next)
                json_object_array_add(list, image_to_json(i));
        json_object_object_add(root, "images", list);
        api_respond_json(c, 200, root);
}

static void handle_image_show(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        struct image *img = image_arg(c, a->arg[0]);
        struct json_object *o, *users;

        (void)req;
        if (!img)
                return;
        o = image_to_json(img);
        users = json_object_new_array();
        for (const struct instance *i = instances_first(api_context_of(c)->instances); i; i = i->next)
                if (streq(i->image_uuid, img->uuid))
                        json_object_array_add(users, json_object_new_string(i->name));
        json_object_object_add(o, "instances", users);
        api_respond_json(c, 200, o);
}

/* ---- delete: refused while an instance uses the image ---- */

static void on_image_deleted(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;
        struct image *img = c->deleting;
        struct json_object *root;
        int r;

        c->call = NULL;
        c->deleting = NULL;
        if (res->status < 0 && res->status != -ENOENT)
                return api_respond_module_error(c, res, PLUG_LIBVIRT);
        /* the image may have gone meanwhile (another delete): find it again by pointer */
        for (struct image *i = images_first(store_of(c)); i; i = i->next)
                if (i == img) {
                        r = image_remove(store_of(c), img);
                        if (r < 0)
                                return api_respond_error(c, 500, "the volume is deleted but the image store cannot be "
                                                                 "written", -1);
                        break;
                }
        root = json_object_new_object();
        json_object_object_add(root, "deleted", json_object_new_boolean(true));
        api_respond_json(c, 200, root);
}

static void handle_image_delete(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        _cleanup_free_ struct proto_writer *w = NULL;
        struct image *img = image_arg(c, a->arg[0]);
        char err[256];

        (void)req;
        if (!img)
                return;
        if (img->uploading)
                return api_respond_error(c, 409, "the image is being imported", -1);
        for (const struct instance *i = instances_first(api_context_of(c)->instances); i; i = i->next)
                if (streq(i->image_uuid, img->uuid) || streq(i->kernel_uuid, img->uuid) ||
                    streq(i->ramdisk_uuid, img->uuid)) {
                        (void)snprintf(err, sizeof(err), "image %s is in use by instance %s; delete the instance first",
                                       img->name, i->name);
                        return api_respond_error(c, 409, err, -1);
                }
        w = malloc(sizeof(*w));
        if (!w)
                return api_respond_error(c, 500, "out of memory", -1);
        module_request_init(w, (struct module_ep)EP_LIBVIRT(IMAGE_DELETE));
        pw_str(w, "image_uuid", img->uuid);
        c->deleting = img;
        api_call_module(c, PLUG_LIBVIRT, w, on_image_deleted);
}

/* ---- import ---- */

void api_image_upload_abandon(struct api_conn *c)
{
        if (c->import)
                c->import->conn = NULL; /* it finishes without us */
        c->import = NULL;
}

static int upload_status(int r)
{
        switch (r) {
        case -EINVAL: /* refused image: the inspector's reason */
        case -EPIPE:  /* fewer bytes than announced */
        case -EFBIG:  /* more */
                return 400;
        case -EOPNOTSUPP:
                return 415;
        default:
                return api_status_for_errno(r);
        }
}

static void on_image_uploaded(const struct module_result *res, void *userdata)
{
        struct image_import *imp = userdata;
        struct api_conn *c = imp->conn;
        const char *sha = proto_get_str(res->body, "sha256", "");
        int r = res->status;

        if (c)
                c->import = NULL;
        if (r == 0)
                r = image_commit(imp->store, imp->img, proto_get_str(res->body, "format", "raw"),
                                 proto_get_u64(res->body, "size", 0), proto_get_u64(res->body, "virtual_size", 0), sha);
        if (r == 0)
                log_info("image %s (%s) imported: %llu bytes, sha256 %s", imp->img->name, imp->img->uuid,
                         (unsigned long long)imp->img->size, imp->img->sha256);
        else
                log_warn("image %s (%s): import failed: %s", imp->img->name, imp->img->uuid,
                         res->status < 0 ? res->error : "the image store cannot be written");
        if (c && r == 0)
                api_respond_json(c, 201, image_to_json(imp->img));
        else if (c)
                api_respond_error(c, res->status < 0 ? upload_status(res->status) : 500,
                                  res->status < 0 ? res->error : "the image store cannot be written", -1);
        if (r < 0)
                (void)image_remove(imp->store, imp->img); /* an uploading entry: nothing is written */
        free(imp);
}

/* The import request's body: {"name": N, "size": BYTES, "format"?: raw|qcow2}. */
static int parse_import(struct json_object *body, const char **ret_name, uint64_t *ret_size, const char **ret_format,
                        char *err, size_t errlen)
{
        struct json_object *v;

        *ret_format = NULL;
        json_object_object_foreach(body, key, val) {
                if (!streq(key, "name") && !streq(key, "size") && !streq(key, "format") && !streq(key, "id"))
                        return snprintf(err, errlen, "%.32s: unknown field", key), -EINVAL;
                (void)val;
        }
        if (!json_object_object_get_ex(body, "name", &v) || !json_object_is_type(v, json_type_string) ||
            !instance_name_is_valid(json_object_get_string(v)) || uuid_is_valid(json_object_get_string(v)))
                return snprintf(err, errlen, "name: 1..63 characters of A-Z a-z 0-9 . _ - (not starting with . or -, "
                                             "not a UUID)"), -EINVAL;
        *ret_name = json_object_get_string(v);
        if (!json_object_object_get_ex(body, "size", &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) < 1 || (uint64_t)json_object_get_int64(v) > LIBVIRT_MAX_IMAGE_BYTES)
                return snprintf(err, errlen, "size: the image's length in bytes, 1..%llu",
                                (unsigned long long)LIBVIRT_MAX_IMAGE_BYTES), -EINVAL;
        *ret_size = (uint64_t)json_object_get_int64(v);
        if (json_object_object_get_ex(body, "format", &v)) {
                if (!json_object_is_type(v, json_type_string) || !image_format_word_is_valid(json_object_get_string(v)))
                        return snprintf(err, errlen, "format: raw or qcow2"), -EINVAL;
                *ret_format = json_object_get_string(v);
        }
        return 0;
}

static void handle_image_import(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        _cleanup_free_ struct proto_writer *w = NULL;
        _cleanup_close_ int fd = api_take_passed_fd(c);
        struct json_object *body = NULL;
        struct image_import *imp;
        struct json_object *idv;
        char want_id[UUID_STR_LEN + 1] = "";
        const char *name, *format;
        struct image *img;
        uint64_t size;
        char err[512];
        int r;

        (void)a;
        if (api_read_body(c, req, &body) < 0)
                return;
        r = parse_import(body, &name, &size, &format, err, sizeof(err));
        if (r == 0 && fd < 0) {
                (void)snprintf(err, sizeof(err), "the image's bytes must come as one descriptor passed with the request "
                                                 "(SCM_RIGHTS); use `nova-hypervisor image import`");
                r = -EINVAL;
        }
        if (r < 0) {
                json_object_put(body);
                return api_respond_error(c, 400, err, -1);
        }
        /* "id": the image's uuid as another host has it (a migration's destination needs the
         * source's image by id); otherwise a fresh one */
        if (r == 0 && json_object_object_get_ex(body, "id", &idv)) {
                const char *id = json_object_get_string(idv);
                if (!json_object_is_type(idv, json_type_string) || !uuid_is_valid(id)) {
                        json_object_put(body);
                        return api_respond_error(c, 400, "id: an image uuid", -1);
                }
                if (image_find(store_of(c), id)) {
                        (void)snprintf(err, sizeof(err), "image %s exists already", id);
                        json_object_put(body);
                        return api_respond_error(c, 409, err, -1);
                }
                (void)strscpy(want_id, id, sizeof(want_id));
        }
        r = image_begin(store_of(c), name, &img);
        if (r == 0 && want_id[0])
                memcpy(img->uuid, want_id, sizeof(want_id));
        if (r < 0) {
                (void)snprintf(err, sizeof(err), "image %s: %s", name,
                               r == -EEXIST ? "the name is taken" : r == -ENOSPC ? "too many images" : strerror(-r));
                json_object_put(body);
                return api_respond_error(c, api_status_for_errno(r), err, -1);
        }
        w = malloc(sizeof(*w));
        imp = calloc(1, sizeof(*imp));
        if (!w || !imp) {
                free(imp);
                (void)image_remove(store_of(c), img);
                json_object_put(body);
                return api_respond_error(c, 500, "out of memory", -1);
        }
        module_request_init(w, (struct module_ep)EP_LIBVIRT(IMAGE_UPLOAD));
        pw_str(w, "image_uuid", img->uuid);
        pw_u64(w, "size", size);
        if (format)
                pw_str(w, "format", format);
        json_object_put(body);
        imp->conn = c;
        imp->store = store_of(c);
        imp->img = img;
        /* the module reads at the pipe's pace: allow for a slow writer, plus the inspection and the checks */
        r = modules_call_fd(api_context_of(c)->modules, PLUG_LIBVIRT, w, fd,
                            (size / UPLOAD_MIN_RATE + 120) * 1000000ULL, on_image_uploaded, imp, NULL, err, sizeof(err));
        if (r < 0) {
                free(imp);
                (void)image_remove(store_of(c), img);
                return api_respond_error(c, api_status_for_errno(r), err,
                                         r == -ENOTCONN || r == -EAGAIN ? (int)PLUG_LIBVIRT : -1);
        }
        c->import = imp;
        log_info("image %s (%s): importing %llu bytes", img->name, img->uuid, (unsigned long long)size);
}

/* ---- purge (the remove hook): every volume of ours in the pool, then the images whose base went ---- */

static bool kept_image(const struct proto_value *kept, const char *uuid)
{
        for (const struct proto_value *k = kept ? kept->child : NULL; k; k = k->next)
                if (k->type == PV_STR && streq(k->v.s, uuid))
                        return true;
        return false;
}

static void on_volumes_purged(const struct module_result *res, void *userdata)
{
        struct api_conn *c = userdata;
        struct image_store *store = store_of(c);
        const struct proto_value *kept;
        struct json_object *root;
        uint64_t removed = 0;
        struct image *i, *next;

        c->call = NULL;
        if (res->status < 0)
                return api_respond_module_error(c, res, PLUG_LIBVIRT);
        kept = proto_get(res->body, "kept_images");
        /* the store forgets the images whose base is gone (all but the kept ones; none when the
         * module could not list every kept one) */
        for (i = images_first(store); i && !proto_get_bool(res->body, "kept_images_truncated", true); i = next) {
                next = i->next;
                if (!i->uploading && !i->expiring && !kept_image(kept, i->uuid) && image_remove(store, i) == 0)
                        removed++;
        }
        root = json_object_new_object();
        json_object_object_add(root, "deleted", json_object_new_int64((int64_t)proto_get_u64(res->body, "deleted", 0)));
        json_object_object_add(root, "kept", json_object_new_int64((int64_t)proto_get_u64(res->body, "kept", 0)));
        json_object_object_add(root, "failed", json_object_new_int64((int64_t)proto_get_u64(res->body, "failed", 0)));
        json_object_object_add(root, "error", json_object_new_string(proto_get_str(res->body, "error", "")));
        json_object_object_add(root, "pool_removed",
                               json_object_new_boolean(proto_get_bool(res->body, "pool_removed", false)));
        json_object_object_add(root, "images_removed", json_object_new_int64((int64_t)removed));
        log_info("volumes purged: %llu deleted, %llu kept, %llu failed; %llu images forgotten",
                 (unsigned long long)proto_get_u64(res->body, "deleted", 0),
                 (unsigned long long)proto_get_u64(res->body, "kept", 0),
                 (unsigned long long)proto_get_u64(res->body, "failed", 0), (unsigned long long)removed);
        api_respond_json(c, 200, root);
}

static void handle_volumes_purge(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        _cleanup_free_ struct proto_writer *w = malloc(sizeof(*w));

        (void)req;
        (void)a;
        if (!w)
                return api_respond_error(c, 500, "out of memory", -1);
        module_request_init(w, (struct module_ep)EP_LIBVIRT(VOLUMES_PURGE));
        api_call_module(c, PLUG_LIBVIRT, w, on_volumes_purged);
}

const struct api_route api_image_routes[] = {
        { "POST", "/v1/volumes/purge", handle_volumes_purge },
        { NULL, "/v1/volumes/purge", api_method_not_allowed },
        { "GET", "/v1/images", handle_image_list },
        { "POST", "/v1/images", handle_image_import },
        { NULL, "/v1/images", api_method_not_allowed },
        { "GET", "/v1/images/{ref}", handle_image_show },
        { "DELETE", "/v1/images/{ref}", handle_image_delete },
        { NULL, "/v1/images/{ref}", api_method_not_allowed },
        { NULL, NULL, NULL },
};
