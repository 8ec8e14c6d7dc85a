/* image-cache.c - see image-cache.h */
#include "image-cache.h"

#include "log.h"

#include <assert.h>
#include <stdlib.h>
#include <time.h>

struct image_cache {
        sd_event *event;
        const struct nova_config *cfg;
        struct modules *modules;
        struct image_store *images;
        struct instance_store *instances;
        sd_event_source *timer;                 /* CLOCK_REALTIME, one shot: the next expiry or a retry */
        struct module_call *call;               /* the image_delete in flight, NULL when none */
        char removing[UUID_STR_LEN + 1];        /* its image */
        uint64_t retry_at;                      /* unix seconds: no removal attempt before (after a failure) */
        bool updating;                          /* inside image_cache_update (the store's hook calls back) */
};

bool image_cache_instances_use(const char *image_uuid, void *instance_store)
{
        for (const struct instance *i = instances_first(instance_store); i; i = i->next)
                if (streq(i->image_uuid, image_uuid) || streq(i->kernel_uuid, image_uuid) ||
                    streq(i->ramdisk_uuid, image_uuid))
                        return true;
        return false;
}

static bool enabled(const struct image_cache *ic)
{
        return ic->cfg->remove_unused_base_images && ic->cfg->remove_unused_original_minimum_age_seconds > 0;
}

/* The timer at the next expiry (or the retry time, whichever is later), off when none. */
static void arm(struct image_cache *ic)
{
        uint64_t next = enabled(ic) ? images_next_expiry(ic->images, ic->cfg->remove_unused_original_minimum_age_seconds)
                                    : UINT64_MAX;

        if (next == UINT64_MAX || ic->call) {
                (void)sd_event_source_set_enabled(ic->timer, SD_EVENT_OFF);
                return;
        }
        if (next < ic->retry_at)
                next = ic->retry_at;
        if (next > UINT64_MAX / 1000000ULL)
                next = UINT64_MAX / 1000000ULL;
        (void)sd_event_source_set_time(ic->timer, next * 1000000ULL);
        (void)sd_event_source_set_enabled(ic->timer, SD_EVENT_ONESHOT);
        log_debug("image cache: next expiry check at unix time %llu", (unsigned long long)next);
}

void image_cache_update(struct image_cache *ic, const char *why)
{
        if (!ic || ic->updating)
                return;
        ic->updating = true;
        (void)images_mark_usage(ic->images, image_cache_instances_use, ic->instances, (uint64_t)time(NULL));
        arm(ic);
        ic->updating = false;
        log_debug("image cache: usage marked (%s)", why);
}

static void on_image_deleted(const struct module_result *res, void *userdata)
{
        struct image_cache *ic = userdata;
        struct image *img = image_find(ic->images, ic->removing);
        uint64_t now = (uint64_t)time(NULL);

        ic->call = NULL;
        if (img && !streq(img->uuid, ic->removing))
                img = NULL; /* the name of another image: ours is gone already */
        if (img)
                img->expiring = false;
        if (res->status < 0) {
                log_warn("image cache: cannot remove unused image %s (%s): %s; trying again in %d s",
                         img ? img->name : "?", ic->removing, res->error, IMAGE_CACHE_RETRY_S);
                ic->retry_at = now + IMAGE_CACHE_RETRY_S;
        } else if (img) {
                char name[IMAGE_NAME_MAX + 1];
                uint64_t since = img->unused_since;
                int r;

                (void)strscpy(name, img->name, sizeof(name));
                r = image_remove(ic->images, img); /* the store's hook marks and re-arms */
                if (r < 0)
                        log_warn("image cache: base of image %s (%s) deleted, but the store cannot be written: %s",
                                 name, ic->removing, strerror(-r));
                else
                        log_info("image cache: removed image %s (%s): unused since unix time %llu (%llu s, "
                                 "remove_unused_original_minimum_age_seconds %u)",
                                 name, ic->removing, (unsigned long long)since, (unsigned long long)(now - since),
                                 ic->cfg->remove_unused_original_minimum_age_seconds);
        }
        ic->removing[0] = '\0';
        image_cache_update(ic, "removal done");
}

/* The first image whose time has come, not in use (checked again now), not busy. */
static struct image *due_image(struct image_cache *ic, uint64_t now)
{
        uint64_t age = ic->cfg->remove_unused_original_minimum_age_seconds;

        for (struct image *i = images_first(ic->images); i; i = i->next)
                if (!i->uploading && !i->expiring && i->unused_since && i->unused_since <= now &&
                    now - i->unused_since >= age && !image_cache_instances_use(i->uuid, ic->instances))
                        return i;
        return NULL;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct image_cache *ic = userdata;
        struct proto_writer *w;
        struct image *img;
        uint64_t now = (uint64_t)time(NULL);
        char err[256];
        int r;

        (void)s;
        (void)usec;
        image_cache_update(ic, "timer");
        /* a module not ready yet: its becoming ready (the capacity hook) re-arms */
        if (!enabled(ic) || ic->call || now < ic->retry_at || !modules_ready(ic->modules, PLUG_LIBVIRT))
                return 0;
        img = due_image(ic, now);
        if (!img)
                return 0;
        w = malloc(sizeof(*w));
        if (!w) {
                ic->retry_at = now + IMAGE_CACHE_RETRY_S;
                arm(ic);
                return 0;
        }
        module_request_init(w, (struct module_ep)EP_LIBVIRT(IMAGE_DELETE));
        pw_str(w, "image_uuid", img->uuid);
        memcpy(ic->removing, img->uuid, sizeof(ic->removing));
        img->expiring = true; /* no boot can resolve it from now on */
        r = modules_call(ic->modules, PLUG_LIBVIRT, w, 0, on_image_deleted, ic, &ic->call, err, sizeof(err));
        free(w);
        if (r < 0) {
                struct module_result res = { .status = r, .error = err };
                ic->call = NULL;
                on_image_deleted(&res, ic);
                return 0;
        }
        arm(ic); /* off while the call runs */
        return 0;
}

static void on_images_changed(void *userdata) { image_cache_update(userdata, "image store changed"); }

int image_cache_new(sd_event *event, const struct nova_config *cfg, struct modules *modules,
                    struct image_store *images, struct instance_store *instances, struct image_cache **ret)
{
        struct image_cache *ic;
        int r;

        assert(event && cfg && modules && images && instances && ret);
        ic = calloc(1, sizeof(*ic));
        if (!ic)
                return -ENOMEM;
        *ic = (struct image_cache){ .event = event, .cfg = cfg, .modules = modules, .images = images,
                                    .instances = instances };
        r = sd_event_add_time(event, &ic->timer, CLOCK_REALTIME, UINT64_MAX, 0, on_timer, ic);
        if (r < 0) {
                free(ic);
                return r;
        }
        (void)sd_event_source_set_enabled(ic->timer, SD_EVENT_OFF);
        images_set_change_hook(images, on_images_changed, ic);
        image_cache_update(ic, "start");
        if (enabled(ic))
                log_info("image cache: images unused for %u s are removed", cfg->remove_unused_original_minimum_age_seconds);
        *ret = ic;
        return 0;
}

struct image_cache *image_cache_free(struct image_cache *ic)
{
        if (!ic)
                return NULL;
        images_set_change_hook(ic->images, NULL, NULL);
        if (ic->call) {
                struct image *img = image_find(ic->images, ic->removing);
                module_call_cancel(ic->call);
                if (img)
                        img->expiring = false;
        }
        sd_event_source_unref(ic->timer);
        free(ic);
        return NULL;
}
