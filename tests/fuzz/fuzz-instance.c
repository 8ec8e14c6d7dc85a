/* fuzz-instance.c - the two decoders of instance data: a stored instance
 * file (byte 0 even) and an API boot request body (byte 0 odd; bit 1 set:
 * with a config default cpu_set). Anything
 * accepted must be fully valid; anything refused must leave the output
 * untouched. */
#include "instances.h"

#include <json-c/json.h>

static void check_valid(const struct instance *i)
{
        if (!uuid_is_valid(i->uuid) || !instance_name_is_valid(i->name) || i->vcpus < 1 ||
            i->vcpus > LIBVIRT_MAX_VCPUS || i->memory_mb < LIBVIRT_MIN_MEMORY_MB ||
            i->memory_mb > LIBVIRT_MAX_MEMORY_MB || i->n_ports > LIBVIRT_MAX_PORTS || (i->n_ports > 0) != (i->ports != NULL))
                __builtin_trap();
        /* cpu_set: "" or a canonical non-empty cpu list; a pin state exactly when there is one */
        if (memchr(i->cpu_set, '\0', sizeof(i->cpu_set)) == NULL || memchr(i->pin_detail, '\0', sizeof(i->pin_detail)) == NULL)
                __builtin_trap();
        if (!vm_state_to_string(i->vm_state) || !instance_task_to_string(i->task) || !pin_state_to_string(i->pin_state))
                __builtin_trap();
        if (i->cpu_set[0]) {
                char canon[INSTANCE_CPU_SET_MAX];
                if (instance_cpu_set_canonical(i->cpu_set, canon) != 0 || !streq(canon, i->cpu_set) ||
                    i->pin_state == PIN_NONE)
                        __builtin_trap();
        } else if (i->pin_state != PIN_NONE)
                __builtin_trap();
        /* disks: key, user_data, a size and the root disk's mark only with an image */
        /* key and cmdline: NULL for none, never "" */
        if ((i->key && (!i->key[0] || strlen(i->key) > INSTANCE_KEY_MAX)) || (i->image_uuid[0] && !uuid_is_valid(i->image_uuid)) ||
            (!i->image_uuid[0] && (i->key || i->user_data || i->disk_gb || i->root_disk)) || i->disk_gb > INSTANCE_DISK_GB_MAX ||
            (i->user_data && (strlen(i->user_data) == 0 || strlen(i->user_data) % 4 != 0)))
                __builtin_trap();
        /* direct kernel boot: kernel and ramdisk both or neither, only with an image; a cmdline only with them */
        if ((i->cmdline && strlen(i->cmdline) > LIBVIRT_MAX_CMDLINE) || !i->kernel_uuid[0] != !i->ramdisk_uuid[0] ||
            (i->kernel_uuid[0] && (!uuid_is_valid(i->kernel_uuid) || !uuid_is_valid(i->ramdisk_uuid) || !i->image_uuid[0])) ||
            (i->cmdline && (!i->kernel_uuid[0] || !kernel_cmdline_is_valid(i->cmdline))))
                __builtin_trap();
        for (size_t p = 0; p < i->n_ports; p++) {
                char tap[IFNAME_MAX];
                if (!uuid_is_valid(i->ports[p].port_uuid) || !mac_is_valid(i->ports[p].mac) || i->ports[p].mtu < 68 ||
                    i->ports[p].mtu > 65535 || tap_name_from_port(i->ports[p].port_uuid, tap) != 0)
                        __builtin_trap();
        }
}

/* One image exists: "img" (and its id). */
#define FUZZ_IMAGE_UUID "3f2504e0-4f89-41d3-9a0c-0305e82c3399"
static int image_resolve(const void *data, const char *ref, char ret_id[UUID_STR_LEN + 1])
{
        (void)data;
        if (!streq(ref, "img") && !streq(ref, FUZZ_IMAGE_UUID))
                return -ENOENT;
        memcpy(ret_id, FUZZ_IMAGE_UUID, UUID_STR_LEN + 1);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct instance out, sentinel;
        char why[256];
        int r;

        if (size < 1 || size > 64 * 1024)
                return 0;
        memset(&sentinel, 0xa5, sizeof(sentinel));
        out = sentinel;
        if ((data[0] & 1) == 0) {
                r = instance_parse_stored((const char *)data + 1, size - 1, &out, why, sizeof(why));
        } else {
                struct json_tokener *tok = json_tokener_new_ex(8);
                struct json_object *o = json_tokener_parse_ex(tok, (const char *)data + 1, (int)(size - 1));
                json_tokener_free(tok);
                if (!o || !json_object_is_type(o, json_type_object)) {
                        json_object_put(o);
                        return 0;
                }
                r = instance_parse_boot_request(o, NULL, NULL, image_resolve, NULL, (data[0] & 2) ? "3,1-2" : NULL, &out, why, sizeof(why));
                if (r == 0 && (data[0] & 4)) {
                        /* network_mtu: ports end at or below it, or the request is refused unchanged */
                        struct instance before = out;
                        struct instance_port ports_before[LIBVIRT_MAX_PORTS];
                        int m;

                        if (out.n_ports > LIBVIRT_MAX_PORTS || (out.n_ports > 0) != (out.ports != NULL))
                                __builtin_trap();
                        if (out.n_ports > 0)
                                memcpy(ports_before, out.ports, out.n_ports * sizeof(ports_before[0]));
                        m = instance_apply_network_mtu(o, 1442, &out, why, sizeof(why));
                        if (m < 0 && (memcmp(&out, &before, sizeof(out)) != 0 ||
                                      (out.n_ports > 0 &&
                                       memcmp(out.ports, ports_before, out.n_ports * sizeof(ports_before[0])) != 0)))
                                __builtin_trap();
                        for (size_t i = 0; m == 0 && i < out.n_ports; i++)
                                if (out.ports[i].mtu > 1442)
                                        __builtin_trap();
                }
                json_object_put(o);
        }
        if (r == 0) {
                check_valid(&out);
                instance_template_clear(&out);
        }
        else if (memcmp(&out, &sentinel, sizeof(out)) != 0)
                __builtin_trap();
        return 0;
}
