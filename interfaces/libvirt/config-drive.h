/* config-drive.h - an OpenStack config drive: ISO 9660 (Rock Ridge + Joliet,
 * as nova's `genisoimage -R -J -V config-2`), volume label "config-2", with
 *   openstack/latest/meta_data.json     uuid, name, hostname, public_keys, keys
 *   openstack/latest/network_data.json  links (tap, MAC, MTU), static networks
 *                                       from the ports' fixed IPs, DNS services
 *   openstack/latest/user_data          when given
 * in the JSON shapes of nova/api/metadata/base.py and nova/virt/netutils.py,
 * so cloud-init and other guests read it unchanged.
 *
 * The description arrives as JSON (config_drive_spec_from_json: strict, every
 * field bounded and checked, unknown fields refused); the ISO is produced by
 * libisofs into a caller's sink in 2 KiB blocks, so it can be streamed into a
 * libvirt volume without a file. */
#ifndef NOVA_CONFIG_DRIVE_H
#define NOVA_CONFIG_DRIVE_H

#include <json-c/json.h>

#include "libvirt-protocol.h"
#include "names.h"
#include "secrule.h"

#define CONFIG_DRIVE_LABEL "config-2"
#define CD_MAX_PORTS LIBVIRT_MAX_PORTS /* every port an instance can have */
#define CD_MAX_IPS PORT_MAX_IPS     /* fixed IPs of one port */
#define CD_MAX_DNS 4                /* DNS servers of one port */
#define CD_MAX_KEYS 8
#define CD_NAME_MAX 255             /* instance display name, bytes of UTF-8 */
#define CD_HOSTNAME_MAX 253
#define CD_KEY_NAME_MAX 255
#define CD_KEY_DATA_MAX 8192        /* one public key line */
#define CD_USER_DATA_MAX 65535      /* decoded bytes, nova's limit */
#define CD_MTU_MIN 68
#define CD_MTU_MAX 9216

/* One fixed IP of a port, with its subnet and optional gateway. */
struct cd_fixed_ip {
        uint8_t family;        /* 4 or 6 */
        uint8_t addr[16];      /* the port's address */
        struct cidr subnet;    /* the subnet it is in (host bits zero) */
        bool has_gateway;
        uint8_t gateway[16];
};

/* One port of the instance. */
struct cd_port {
        char port_id[UUID_STR_LEN + 1];
        char network_id[UUID_STR_LEN + 1];
        char mac[MAC_STR_LEN + 1];
        uint32_t mtu;
        size_t n_ips;
        struct cd_fixed_ip ips[CD_MAX_IPS];
        size_t n_dns;
        struct {
                uint8_t family;
                uint8_t addr[16];
        } dns[CD_MAX_DNS];
};

struct cd_key {
        char name[CD_KEY_NAME_MAX + 1];
        char data[CD_KEY_DATA_MAX + 1];
};

/* What goes on the drive. Owned by whoever config_drive_spec_from_json gave it to. */
struct config_drive_spec {
        char uuid[UUID_STR_LEN + 1];   /* the domain's UUID */
        char name[CD_NAME_MAX + 1];
        char hostname[CD_HOSTNAME_MAX + 1];
        size_t n_keys;
        struct cd_key keys[CD_MAX_KEYS];
        size_t n_ports;
        struct cd_port ports[CD_MAX_PORTS];
        uint8_t *user_data;            /* malloc'd, NULL when none */
        size_t user_data_len;
};

/* Decode and check the description:
 *   {"uuid": U, "name": S, "hostname": H,
 *    "public_keys": [{"name": S, "data": "ssh-... AAAA..."}],              (optional)
 *    "ports": [{"port_id": U, "network_id": U, "mac": M, "mtu": N,
 *               "fixed_ips": [{"address": IP, "subnet": CIDR, "gateway": IP}],  (gateway optional)
 *               "dns": [IP]}],                                            (optional)
 *    "user_data": BASE64}                                                 (optional)
 * 0 with *ret (free with config_drive_spec_free), or -EINVAL with err set. */
int config_drive_spec_from_json(struct json_object *o, struct config_drive_spec **ret, char *err, size_t errlen)
        _warn_unused_result_;
void config_drive_spec_free(struct config_drive_spec *spec);
static inline void config_drive_spec_freep(struct config_drive_spec **p) { config_drive_spec_free(*p); }

/* The files' contents (malloc'd NUL-terminated JSON). 0 or -ENOMEM. */
int config_drive_meta_data(const struct config_drive_spec *spec, char **ret) _warn_unused_result_;
int config_drive_network_data(const struct config_drive_spec *spec, char **ret) _warn_unused_result_;

/* Receives the ISO in order; returns 0 to go on or -errno to stop. */
typedef int (*config_drive_sink_fn)(void *userdata, const void *buf, size_t len);

/* Build the ISO and hand it to sink block by block (a multiple of 2048
 * bytes in all). *ret_size (may be NULL) gets its size. 0, -ENOMEM, -EIO
 * (libisofs failed) or the sink's -errno (the build is cancelled). */
int config_drive_write(const struct config_drive_spec *spec, config_drive_sink_fn sink, void *userdata,
                       uint64_t *ret_size) _warn_unused_result_;

/* Strict RFC 4648 base64 (padding required, no whitespace) of at most max
 * decoded bytes. 0 with a malloc'd *ret (NUL-terminated for convenience), or
 * -EINVAL / -EFBIG / -ENOMEM. */
int base64_decode_strict(const char *s, size_t len, size_t max, uint8_t **ret, size_t *ret_len)
        _warn_unused_result_;

#endif
