/* libvirt-protocol.c - request schemas of the libvirt module's entrypoints. */
#include "libvirt-protocol.h"

#include "plugs.h"

bool image_format_word_is_valid(const char *s) { return streq(s, "raw") || streq(s, "qcow2"); }

bool volume_kind_word_is_valid(const char *s) { return streq(s, "root") || streq(s, "config") || streq(s, "console"); }

static const struct schema_field port_fields[] = {
        { .name = "port_uuid", .kind = SCH_UUID, .required = true },
        { .name = "mac", .kind = SCH_MAC, .required = true },
        { .name = "mtu", .kind = SCH_U64, .required = true, .min = 68, .max = 65535 },
        { .name = NULL },
};

static const struct schema_field define_req[] = {
        { .name = "instance_uuid", .kind = SCH_UUID, .required = true },
        { .name = "name", .kind = SCH_STR, .required = true, .min = 1, .max = LIBVIRT_MAX_NAME,
          .str_ok = instance_name_is_valid },
        { .name = "vcpus", .kind = SCH_U64, .required = true, .min = 1, .max = LIBVIRT_MAX_VCPUS },
        { .name = "memory_mb", .kind = SCH_U64, .required = true, .min = LIBVIRT_MIN_MEMORY_MB,
          .max = LIBVIRT_MAX_MEMORY_MB },
        { .name = "ports", .kind = SCH_LIST, .required = true, .min = 0, .max = LIBVIRT_MAX_PORTS,
          .item = SCH_OBJ, .fields = port_fields },
        /* disks: the root disk (an overlay on this image's base) and, with it, the serial
         * console's log; the config drive. Paths are derived by the module. */
        { .name = "image_uuid", .kind = SCH_UUID, .required = false },
        { .name = "config_drive", .kind = SCH_BOOL, .required = false },
        { .name = NULL },
};

static const struct schema_field volumes_delete_req[] = {
        { .name = "instance_uuid", .kind = SCH_UUID, .required = true },
        /* only this one of the instance's volumes; absent: all of them */
        { .name = "kind", .kind = SCH_STR, .required = false, .min = 4, .max = 7, .str_ok = volume_kind_word_is_valid },
        { .name = NULL },
};

static const struct schema_field console_req[] = {
        { .name = "instance_uuid", .kind = SCH_UUID, .required = true },
        { .name = "tail_bytes", .kind = SCH_U64, .required = true, .min = 1, .max = LIBVIRT_CONSOLE_MAX_BYTES },
        { .name = NULL },
};

static const struct schema_field shutdown_req[] = {
        { .name = "instance_uuid", .kind = SCH_UUID, .required = true },
        /* seconds to wait for the guest before destroying it; absent: shutdown_timeout_s */
        { .name = "timeout_s", .kind = SCH_U64, .required = false, .min = 0, .max = 3600 },
        { .name = NULL },
};

static const struct schema_field upload_req[] = {
        { .name = "image_uuid", .kind = SCH_UUID, .required = true },
        { .name = "size", .kind = SCH_U64, .required = true, .min = 1, .max = LIBVIRT_MAX_IMAGE_BYTES },
        { .name = "format", .kind = SCH_STR, .required = false, .min = 3, .max = 5,
          .str_ok = image_format_word_is_valid },
        { .name = NULL },
};

static const struct schema_field image_req[] = {
        { .name = "image_uuid", .kind = SCH_UUID, .required = true },
        { .name = NULL },
};

static const struct schema_field root_disk_req[] = {
        { .name = "instance_uuid", .kind = SCH_UUID, .required = true },
        { .name = "image_uuid", .kind = SCH_UUID, .required = true },
        { .name = "size_gb", .kind = SCH_U64, .required = true, .min = 0, .max = LIBVIRT_MAX_DISK_GB },
        { .name = NULL },
};

/* Mutating calls use the plug's privilege (the libvirt socket is root-
 * equivalent): each writes an audit line. Queries do not. */
const struct proto_entrypoint libvirt_entrypoints[_LIBVIRT_MAX] = {
        [LIBVIRT_DOMAIN_DEFINE] = { "domain_define", define_req, true },
        [LIBVIRT_DOMAIN_START] = { "domain_start", schema_instance_only_req, true },
        [LIBVIRT_DOMAIN_SHUTDOWN] = { "domain_shutdown", shutdown_req, true },
        [LIBVIRT_DOMAIN_REBOOT] = { "domain_reboot", schema_instance_only_req, true },
        [LIBVIRT_DOMAIN_DESTROY] = { "domain_destroy", schema_instance_only_req, true },
        [LIBVIRT_DOMAIN_UNDEFINE] = { "domain_undefine", schema_instance_only_req, true },
        [LIBVIRT_DOMAIN_STATE] = { "domain_state", schema_instance_only_req, false },
        [LIBVIRT_DOMAIN_LIST] = { "domain_list", schema_page_req, false },
        [LIBVIRT_POOL_INFO] = { "pool_info", schema_empty_req, false },
        [LIBVIRT_IMAGE_UPLOAD] = { "image_upload", upload_req, true, .takes_fd = true },
        [LIBVIRT_IMAGE_DELETE] = { "image_delete", image_req, true },
        [LIBVIRT_IMAGE_LIST] = { "image_list", schema_empty_req, false },
        [LIBVIRT_ROOT_DISK_CREATE] = { "root_disk_create", root_disk_req, true },
        [LIBVIRT_CONFIG_DRIVE_CREATE] = { "config_drive_create", schema_instance_only_req, true, .takes_fd = true },
        [LIBVIRT_VOLUMES_DELETE] = { "volumes_delete", volumes_delete_req, true },
        [LIBVIRT_VOLUME_LIST] = { "volume_list", schema_empty_req, false },
        [LIBVIRT_CONSOLE_READ] = { "console_read", console_req, false },
};

const struct module_protocol libvirt_protocol = {
        .plug = PLUG_LIBVIRT,
        .entrypoints = libvirt_entrypoints,
        .n_entrypoints = _LIBVIRT_MAX,
};
