/* libvirt-protocol.c - request schemas of the libvirt module's entrypoints. */
#include "libvirt-protocol.h"

#include "plugs.h"

#include <arpa/inet.h>
#include <string.h>

bool image_format_word_is_valid(const char *s) { return streq(s, "raw") || streq(s, "qcow2"); }

bool kernel_cmdline_is_valid(const char *s)
{
        size_t n = s ? strnlen(s, LIBVIRT_MAX_CMDLINE + 1) : 0;

        if (n == 0 || n > LIBVIRT_MAX_CMDLINE)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] > 0x7e || strchr("'\"<>&", s[i]))
                        return false;
        return true;
}

bool volume_kind_word_is_valid(const char *s) { return streq(s, "root") || streq(s, "config") || streq(s, "console"); }

bool pool_name_is_valid(const char *s)
{
        size_t n = strlen(s);

        if (n < 1 || n > 63 || !(s[0] >= 'a' && s[0] <= 'z'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
                        return false;
        return true;
}

bool migrate_host_is_valid(const char *s)
{
        unsigned char buf[16];

        return strlen(s) < 46 && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

/* HOST[:PORT] of a tcp/tls URI, up to the '/' that starts its path: true when well formed. */
static bool uri_authority_ok(const char *s, size_t n)
{
        size_t i = 0;

        if (n == 0)
                return false;
        if (s[0] == '[') {
                char addr[48];
                unsigned char buf[16];
                const char *close = memchr(s, ']', n);
                size_t len;

                if (!close)
                        return false;
                len = (size_t)(close - s) - 1;
                if (len == 0 || len >= sizeof(addr))
                        return false;
                memcpy(addr, s + 1, len);
                addr[len] = '\0';
                if (inet_pton(AF_INET6, addr, buf) != 1)
                        return false;
                i = (size_t)(close - s) + 1;
        } else {
                /* a host name: dot-separated labels of letters, digits and '-', none empty
                 * (no "..", no leading or trailing dot), none starting or ending with '-' */
                for (; i < n && s[i] != ':'; i++) {
                        bool dot = s[i] == '.';
                        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                              (s[i] >= '0' && s[i] <= '9') || dot || s[i] == '-'))
                                return false;
                        if (dot && (i == 0 || s[i - 1] == '.' || s[i - 1] == '-'))
                                return false;
                        if (s[i] == '-' && (i == 0 || s[i - 1] == '.'))
                                return false;
                }
                if (i == 0 || s[i - 1] == '.' || s[i - 1] == '-')
                        return false;
        }
        if (i == n)
                return true;
        if (s[i] != ':' || i + 1 == n || n - i - 1 > 5)
                return false;
        for (size_t j = i + 1; j < n; j++)
                if (s[j] < '0' || s[j] > '9')
                        return false;
        return true;
}

bool migrate_dest_uri_is_valid(const char *s)
{
        static const char unix_prefix[] = "qemu+unix:///system?socket=";
        size_t n = strlen(s);

        if (n > LIBVIRT_MAX_URI)
                return false;
        if (strncmp(s, unix_prefix, sizeof(unix_prefix) - 1) == 0) {
                const char *path = s + sizeof(unix_prefix) - 1;

                if (path[0] != '/' || path[1] == '\0' || strstr(path, "..") || strstr(path, "//"))
                        return false;
                for (const char *p = path; *p; p++)
                        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                              *p == '.' || *p == '_' || *p == '/' || *p == '-'))
                                return false;
                return true;
        }
        for (int tls = 0; tls < 2; tls++) {
                const char *prefix = tls ? "qemu+tls://" : "qemu+tcp://";
                size_t plen = strlen(prefix);
                const char *slash;

                if (strncmp(s, prefix, plen) != 0)
                        continue;
                slash = strchr(s + plen, '/');
                return slash && streq(slash, "/system") && uri_authority_ok(s + plen, (size_t)(slash - s) - plen);
        }
        return false;
}

static const struct schema_field migrate_req[] = {
        { .name = "instance_uuid", .kind = SCH_UUID, .required = true },
        { .name = "dest_uri", .kind = SCH_STR, .required = true, .min = 10, .max = LIBVIRT_MAX_URI,
          .str_ok = migrate_dest_uri_is_valid },
        { .name = "migrate_host", .kind = SCH_STR, .required = true, .min = 2, .max = 45,
          .str_ok = migrate_host_is_valid },
        { .name = "dest_pool", .kind = SCH_STR, .required = true, .min = 1, .max = 63, .str_ok = pool_name_is_valid },
        { .name = "timeout_s", .kind = SCH_U64, .required = true, .min = 1, .max = LIBVIRT_MAX_MIGRATE_S },
        { .name = "bandwidth_mib", .kind = SCH_U64, .required = false, .min = 1, .max = 1u << 20 },
        { .name = NULL },
};

static const struct schema_field port_fields[] = {
        { .name = "port_uuid", .kind = SCH_UUID, .required = true },
        { .name = "mac", .kind = SCH_MAC, .required = true },
        { .name = "mtu", .kind = SCH_U64, .required = true, .min = 68, .max = 65535 },
        /* false: the guest's NIC offers no checksum offload (a plain port on OVS's userspace datapath) */
        { .name = "checksum_offload", .kind = SCH_BOOL, .required = false },
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
        /* direct kernel boot: the kernel's and the initrd's images (their raw bases), both or none */
        { .name = "kernel_image_uuid", .kind = SCH_UUID, .required = false },
        { .name = "ramdisk_image_uuid", .kind = SCH_UUID, .required = false },
        { .name = "cmdline", .kind = SCH_STR, .required = false, .min = 1, .max = LIBVIRT_MAX_CMDLINE,
          .str_ok = kernel_cmdline_is_valid },
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
        /* the disk was made before (it holds the guest's data): find it, never make a new one */
        { .name = "existing", .kind = SCH_BOOL, .required = false },
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
        [LIBVIRT_DOMAIN_MIGRATE] = { "domain_migrate", migrate_req, true },
        [LIBVIRT_MIGRATE_JOB] = { "migrate_job", schema_instance_only_req, false },
        [LIBVIRT_MIGRATE_ABORT] = { "migrate_abort", schema_instance_only_req, true },

        [LIBVIRT_VOLUMES_PURGE] = { "volumes_purge", schema_empty_req, true },
};

const struct module_protocol libvirt_protocol = {
        .plug = PLUG_LIBVIRT,
        .entrypoints = libvirt_entrypoints,
        .n_entrypoints = _LIBVIRT_MAX,
};
