/* domain-xml.h - the libvirt domain document of an instance, generated from
 * identifiers only, and the ownership mark that tells our domains from the
 * host's others.
 *
 * The generator is pure: no libvirt call, bounded output, every text escaped.
 * The mark is our <metadata> element in namespace LIBVIRT_METADATA_URI; it
 * names the instance uuid, the display name and the port uuids. A domain is
 * ours when its name is "nova-" + its uuid and the mark names that uuid. */
#ifndef NOVA_DOMAIN_XML_H
#define NOVA_DOMAIN_XML_H

#include "libvirt-protocol.h"
#include "names.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

/* Bytes of a derived domain name, NUL included: "nova-" + 36. */
#define DOMAIN_NAME_MAX (sizeof(LIBVIRT_DOMAIN_PREFIX) - 1 + UUID_STR_LEN + 1)
/* Buffer that always holds domain_xml_build()'s output (diskless, its worst case is under
 * half of it; with every disk at its longest it still fits: test-domain-xml checks both). */
#define DOMAIN_XML_MAX 16384

/* One network port of the instance. */
struct domain_port {
        const char *port_uuid;  /* canonical lowercase UUID; tap name derived from it */
        const char *mac;        /* canonical lowercase unicast MAC */
        uint32_t mtu;           /* 68..65535 */
        /* The guest's NIC offers no checksum offload (virtio-net csum off, so no
         * TSO either: <driver><host csum='off'/></driver>): the guest finishes
         * every checksum itself. For a plain port on Open vSwitch's userspace
         * datapath, which forwards a frame whose checksum QEMU left to the host
         * as it is (netctl-protocol.h has the hybrid port's fix). */
        bool no_csum_offload;
};

/* Disk paths (absolute, at most DOMAIN_PATH_MAX bytes, printable ASCII without XML's
 * special characters ' " < > &, no "." or ".." component or "//": the libvirt module
 * derives them from its pool path and UUIDs, never from a request). Every disk carries an explicit driver type and its full backing chain;
 * no disk is ever of type 'volume' and no format is left for libvirt to guess. */
#define DOMAIN_PATH_MAX 512
#define DOMAIN_CMDLINE_MAX 1024
struct domain_disks {
        const char *root_path;    /* qcow2 overlay (vda, virtio) or NULL: no root disk */
        const char *base_path;    /* its raw backing file; required with root_path */
        const char *config_path;  /* raw ISO 9660 config drive (IDE CD-ROM hdd, as nova) or NULL */
        const char *console_log;  /* file of the serial console's <log> or NULL */
        const char *kernel;       /* direct kernel boot: kernel and initrd files, or both NULL */
        const char *initrd;
        const char *cmdline;      /* with kernel: printable ASCII but ' " < > &, at most
                                   * DOMAIN_CMDLINE_MAX; may be NULL */
};

/* Everything the document is made of. */
struct domain_spec {
        const char *type;                 /* libvirt domain type: "qemu" or "test" (domain_type_from_uri) */
        const char *instance_uuid;        /* canonical lowercase UUID: <uuid>, name and mark */
        const char *display_name;         /* 1..LIBVIRT_MAX_NAME bytes of clean text; escaped */
        uint64_t vcpus;                   /* 1..LIBVIRT_MAX_VCPUS */
        uint64_t memory_mb;               /* LIBVIRT_MIN_MEMORY_MB..LIBVIRT_MAX_MEMORY_MB, in MiB */
        const struct domain_port *ports;  /* n_ports entries, may be NULL when n_ports is 0 */
        size_t n_ports;                   /* 0..LIBVIRT_MAX_PORTS */
        const struct domain_disks *disks; /* NULL: diskless, boots from the network */
};

/* "nova-" + instance_uuid into ret. 0 or -EINVAL for a bad UUID. */
int domain_name_from_instance(const char *instance_uuid, char ret[DOMAIN_NAME_MAX]);

/* True when name is "nova-" + a canonical UUID; the UUID goes to ret_uuid (may be NULL). */
bool domain_name_is_derived(const char *name, char ret_uuid[UUID_STR_LEN + 1]);

/* Domain type for a connection URI: "test" for test:// (and test+...), "qemu" for qemu:// (and qemu+...).
 * 0, or -EPROTONOSUPPORT for any other driver. */
int domain_type_from_uri(const char *uri, const char **ret_type);

/* True when the URI reaches libvirt over a local unix socket or in-process (driver:///path,
 * driver+unix://...), false for a host or a network transport (tls, tcp, ssh, libssh, ext).
 * The module keeps libvirt's keepalive off on local sockets: the kernel tells a closed peer
 * at once, and pings would wake an idle module every few seconds. */
bool libvirt_uri_is_local_socket(const char *uri);

/* True for libvirt's in-process test driver (test:///default, test:///PATH): its calls are work
 * of this process under one driver lock, with nothing to wait for, so the module serves them on
 * its main thread (worker threads would only add handoffs and contention). */
bool libvirt_uri_is_in_process_test(const char *uri);

/* XML-escape s (& < > " ') into buf, NUL-terminated. 0 or -EMSGSIZE (buf then holds ""). */
int domain_xml_escape(const char *s, char *buf, size_t size);

/* Write the domain document for spec into buf (NUL-terminated). 0; -EINVAL for a bad
 * field; -ENAMETOOLONG for a display name over LIBVIRT_MAX_NAME; -EMSGSIZE when the
 * document does not fit size (buf then holds "", never a truncated document). */
int domain_xml_build(const struct domain_spec *spec, char *buf, size_t size);

/* True when metadata (our element as virDomainGetMetadata returns it) names instance_uuid. No parser:
 * an exact <uuid>...</uuid> match, which escaped text elsewhere cannot forge. */
bool domain_metadata_names(const char *metadata, const char *instance_uuid);

/* Display name stored in our element, unescaped into ret. 0, -ENOENT when absent,
 * -EBADMSG when malformed or not a valid display name. */
int domain_metadata_display_name(const char *metadata, char ret[LIBVIRT_MAX_NAME + 1]);

/* Is dom ours? Its name must be "nova-" + its uuid and our metadata element must name that uuid.
 * 1 (and the display name in ret_display_name when not NULL, "" when unreadable), 0 when not ours,
 * -ENOENT when the domain is gone, -EIO for another libvirt failure (virGetLastError() holds it). */
int domain_is_ours(virDomainPtr dom, char ret_display_name[LIBVIRT_MAX_NAME + 1]);

#endif
