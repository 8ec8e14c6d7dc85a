/* image-cache.h - expiry of unused images, as nova's image cache manager does
 * (remove_unused_base_images, remove_unused_original_minimum_age_seconds).
 *
 * An image no instance uses (as root disk base, kernel or ramdisk) is marked
 * with the time it became unused (images.json keeps it across restarts); once
 * it has been unused for remove_unused_original_minimum_age_seconds, its base
 * volume is deleted through the libvirt module and its store entry removed,
 * and one log line says which image went and why. Here the base is the only
 * copy (there is no Glance to fetch it from again), so an expired image is gone:
 * false or 0 keeps images forever.
 *
 * No polling: one CLOCK_REALTIME timer armed for the next expiry, re-armed
 * whenever the instances (a boot or delete done, the capacity hook) or the
 * image store (an import recorded, an image removed) change, and when the
 * libvirt module becomes ready. */
#ifndef NOVA_IMAGE_CACHE_H
#define NOVA_IMAGE_CACHE_H

#include "config.h"
#include "images.h"
#include "instances.h"
#include "modules.h"

#include <systemd/sd-event.h>

/* How long a failed removal (module not ready, libvirt error) waits before the next try. */
#define IMAGE_CACHE_RETRY_S 60

struct image_cache;

/* The cache over images and instances (all the core's; they outlive it). It
 * installs itself as the image store's change hook, marks usage once and arms
 * its timer. 0 and *ret, or -errno. */
int image_cache_new(sd_event *event, const struct nova_config *cfg, struct modules *modules,
                    struct image_store *images, struct instance_store *instances, struct image_cache **ret);
/* The instances changed (why: a word for the debug log): mark usage, re-arm. NULL accepted. */
void image_cache_update(struct image_cache *ic, const char *why);
/* Cancels its timer and a removal in flight (the image stays), unhooks. NULL accepted; returns NULL. */
struct image_cache *image_cache_free(struct image_cache *ic);

/* Does any instance of store use image_uuid (root disk base, kernel or ramdisk)? (images_in_use_fn) */
bool image_cache_instances_use(const char *image_uuid, void *instance_store);

#endif
