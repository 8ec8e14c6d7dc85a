/* libvirt-protocol.h - the entrypoints of the libvirt module, as both the
 * module (dispatch) and the core (request validation) know them.
 *
 * Identifiers in, names derived inside: the domain name is
 * "nova-" + instance_uuid, each interface's tap is tap_name_from_port().
 *
 * Replies (bodies):
 *   domain_define, domain_start, domain_shutdown, domain_reboot, domain_destroy,
 *   domain_state:  { domain: DOMAIN }
 *   domain_undefine: {}                      (-ENOENT when there is no such domain of ours)
 *   domain_list:   { domains: [DOMAIN...], total: N, truncated: bool }
 *   DOMAIN = { instance_uuid, domain_name, display_name, state, reason, vcpus, memory_mb }
 *   state: nostate|running|blocked|paused|shutdown|shutoff|crashed|pmsuspended
 * Errors: -ENOENT no domain of ours for that instance; -EEXIST a domain with our
 * derived name exists but is not ours; -ENOTCONN libvirt is unreachable (the
 * module reconnects by itself); -EINVAL libvirt refused the definition.
 *
 * Events (module -> core):
 *   "domain_lifecycle" { instance_uuid, event, detail, state }  only for our domains
 *       event: defined|undefined|started|suspended|resumed|stopped|shutdown|pmsuspended|crashed
 *   "libvirt_connection" { connected: bool, uri, error }       on loss and on restore */
#ifndef NOVA_LIBVIRT_PROTOCOL_H
#define NOVA_LIBVIRT_PROTOCOL_H

#include "names.h"
#include "schema.h"

#define LIBVIRT_DOMAIN_PREFIX "nova-"
#define LIBVIRT_METADATA_URI "urn:nova-hypervisor:instance:1" /* our ownership mark's namespace */
#define LIBVIRT_METADATA_KEY "nova"
#define LIBVIRT_MAX_PORTS 16
#define LIBVIRT_MAX_VCPUS 64
#define LIBVIRT_MIN_MEMORY_MB 16
#define LIBVIRT_MAX_MEMORY_MB (1024 * 1024)
#define LIBVIRT_MAX_NAME INSTANCE_NAME_MAX /* display name: see instance_name_is_valid() (names.h) */

enum libvirt_entrypoint_id {
        LIBVIRT_DOMAIN_DEFINE,
        LIBVIRT_DOMAIN_START,
        LIBVIRT_DOMAIN_SHUTDOWN,
        LIBVIRT_DOMAIN_REBOOT,
        LIBVIRT_DOMAIN_DESTROY,
        LIBVIRT_DOMAIN_UNDEFINE,
        LIBVIRT_DOMAIN_STATE,
        LIBVIRT_DOMAIN_LIST,
        _LIBVIRT_MAX,
};

extern const struct proto_entrypoint libvirt_entrypoints[_LIBVIRT_MAX];
extern const struct module_protocol libvirt_protocol;

#endif
