/* fuzz-images.c - the decoder of the image store file (<state_dir>/images.json).
 * Anything accepted must be fully valid (ids, names, format, sha256, nothing
 * repeated) and must come back the same through the API view; anything
 * refused leaves the outputs alone. */
#include "images.h"

#include <json-c/json.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct image *list = NULL;
        size_t n = 0, seen = 0;
        char why[256];

        if (size > 256 * 1024)
                return 0;
        if (images_parse_stored((const char *)data, size, &list, &n, why, sizeof(why)) < 0) {
                if (list || n)
                        __builtin_trap();
                return 0;
        }
        for (const struct image *i = list; i; i = i->next, seen++) {
                struct json_object *o = image_to_json(i), *v;
                if (!uuid_is_valid(i->uuid) || !instance_name_is_valid(i->name) || strlen(i->sha256) != IMAGE_SHA256_LEN ||
                    (!streq(i->format, "raw") && !streq(i->format, "qcow2")) || i->uploading)
                        __builtin_trap();
                if (!json_object_object_get_ex(o, "name", &v) || !streq(json_object_get_string(v), i->name))
                        __builtin_trap();
                json_object_put(o);
                for (const struct image *k = i->next; k; k = k->next)
                        if (streq(k->uuid, i->uuid) || streq(k->name, i->name))
                                __builtin_trap();
        }
        if (seen != n || n > IMAGES_MAX)
                __builtin_trap();
        images_list_free(list);
        return 0;
}
