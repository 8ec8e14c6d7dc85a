/* disks.h - what the core hands the libvirt module for an instance's disks:
 * the config drive's description (the JSON config_drive_spec_from_json()
 * takes, interfaces/libvirt/config-drive.h) and the pipe that carries it.
 *
 * The description is built from the instance's intent only: its uuid and
 * name, a hostname derived from the name, its public key, its ports (MAC,
 * MTU, fixed IPs) and its user data. We have no network model: each port's
 * network_id is the port's own UUID, and a fixed IP's subnet is the /24
 * (IPv4) or /64 (IPv6) around it with no gateway (DISKS_DEFAULT_PREFIX_*). */
#ifndef NOVA_DISKS_H
#define NOVA_DISKS_H

#include "instances.h"

#define DISKS_DEFAULT_PREFIX_V4 24
#define DISKS_DEFAULT_PREFIX_V6 64
#define DISKS_CONFIG_DRIVE_MAX_PORTS LIBVIRT_MAX_PORTS /* the config drive's limit (CD_MAX_PORTS): every port */
#define DISKS_DESCRIPTION_MAX (256u * 1024) /* the module reads at most this much */

/* A hostname (RFC 1123 label, lowercase) from an instance name: letters
 * lowercased, '_' and '.' become '-', leading and trailing '-' dropped;
 * "instance" when nothing is left. */
void disks_hostname_from_name(const char *name, char ret[INSTANCE_NAME_MAX + 1]);

/* The config drive's description of inst (malloc'd JSON text, NUL-terminated).
 * 0, -E2BIG (more ports than a config drive holds, or longer than
 * DISKS_DESCRIPTION_MAX) or -ENOMEM. */
int disks_config_drive_json(const struct instance *inst, char **ret_text, size_t *ret_len);

/* A pipe whose read end holds exactly len bytes of text, then EOF: the
 * descriptor to pass with config_drive_create. The pipe is sized so the
 * write never blocks (len <= DISKS_DESCRIPTION_MAX; F_SETPIPE_SZ, no
 * privilege needed up to /proc/sys/fs/pipe-max-size). 0 and *ret_fd
 * (O_CLOEXEC, the caller closes it), or -errno. */
int disks_pipe_with(const char *text, size_t len, int *ret_fd);

#endif
