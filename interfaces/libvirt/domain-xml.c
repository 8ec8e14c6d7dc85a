/* domain-xml.c - see domain-xml.h */
#include "domain-xml.h"

#include "proto.h"

#include <stdarg.h>

#define PREFIX_LEN (sizeof(LIBVIRT_DOMAIN_PREFIX) - 1)

int domain_name_from_instance(const char *instance_uuid, char ret[DOMAIN_NAME_MAX])
{
        if (!uuid_is_valid(instance_uuid))
                return -EINVAL;
        memcpy(ret, LIBVIRT_DOMAIN_PREFIX, PREFIX_LEN);
        memcpy(ret + PREFIX_LEN, instance_uuid, UUID_STR_LEN + 1);
        return 0;
}

bool domain_name_is_derived(const char *name, char ret_uuid[UUID_STR_LEN + 1])
{
        if (!name || strncmp(name, LIBVIRT_DOMAIN_PREFIX, PREFIX_LEN) != 0 || !uuid_is_valid(name + PREFIX_LEN))
                return false;
        if (ret_uuid)
                memcpy(ret_uuid, name + PREFIX_LEN, UUID_STR_LEN + 1);
        return true;
}

int domain_type_from_uri(const char *uri, const char **ret_type)
{
        static const char *const drivers[] = { "qemu", "test" };
        size_t n = strcspn(uri, "+:");

        if (!streq(uri + n, "") && (uri[n] == '+' || strncmp(uri + n, "://", 3) == 0))
                for (size_t i = 0; i < ARRAY_SIZE(drivers); i++)
                        if (strlen(drivers[i]) == n && strncmp(uri, drivers[i], n) == 0) {
                                *ret_type = drivers[i];
                                return 0;
                        }
        return -EPROTONOSUPPORT;
}

bool libvirt_uri_is_local_socket(const char *uri)
{
        size_t n = strcspn(uri, "+:"), t, h;
        const char *rest;

        if (uri[n] == '+') {
                t = strcspn(uri + n + 1, ":");
                if (strncmp(uri + n + 1 + t, "://", 3) != 0)
                        return false;
                /* an explicit transport: only unix is a local socket (tcp, tls, ssh, libssh, ext are not) */
                return t == 4 && strncmp(uri + n + 1, "unix", 4) == 0;
        }
        if (strncmp(uri + n, "://", 3) != 0)
                return false;
        rest = uri + n + 3;
        h = strcspn(rest, "/?");
        /* no transport: a host means TLS over TCP; none, the local daemon's unix socket (or in-process) */
        return h == 0;
}

bool libvirt_uri_is_in_process_test(const char *uri)
{
        /* no transport ("test+unix://" goes to a daemon) and no host ("test://host/" too) */
        return strncmp(uri, "test:///", 8) == 0;
}

/* An append-only bounded buffer; the first overflow is sticky. */
struct xbuf {
        char *p;       /* destination */
        size_t size;   /* bytes available, NUL included */
        size_t len;    /* bytes written, NUL excluded */
        int err;       /* 0 or -EMSGSIZE */
};

_printf_(2, 3) static void xb_printf(struct xbuf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (b->err)
                return;
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->size - b->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= b->size - b->len) {
                b->err = -EMSGSIZE;
                return;
        }
        b->len += (size_t)n;
}

static void xb_escaped(struct xbuf *b, const char *s)
{
        for (; *s && !b->err; s++) {
                const char *rep;
                switch (*s) {
                case '&':
                        rep = "&amp;";
                        break;
                case '<':
                        rep = "&lt;";
                        break;
                case '>':
                        rep = "&gt;";
                        break;
                case '"':
                        rep = "&quot;";
                        break;
                case '\'':
                        rep = "&apos;";
                        break;
                default:
                        if (b->size - b->len < 2) {
                                b->err = -EMSGSIZE;
                                return;
                        }
                        b->p[b->len++] = *s;
                        b->p[b->len] = '\0';
                        continue;
                }
                xb_printf(b, "%s", rep);
        }
}

int domain_xml_escape(const char *s, char *buf, size_t size)
{
        struct xbuf b = { .p = buf, .size = size };

        if (size == 0)
                return -EMSGSIZE;
        buf[0] = '\0';
        xb_escaped(&b, s);
        if (b.err)
                buf[0] = '\0';
        return b.err;
}

/* Printable ASCII that XML carries as it is (so the output stays bounded). */
static bool xml_plain_char(char c, bool space_ok)
{
        return (c > 0x20 || (space_ok && c == 0x20)) && c <= 0x7e && !strchr("'\"<>&", c);
}

/* A path the module derived: absolute, bounded, plain characters, no "." or ".." component. */
static bool disk_path_ok(const char *path)
{
        size_t len;

        if (!path || path[0] != '/')
                return false;
        len = strnlen(path, DOMAIN_PATH_MAX + 1);
        if (len > DOMAIN_PATH_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!xml_plain_char(path[i], false))
                        return false;
        for (const char *c = path; c; c = strchr(c + 1, '/'))
                if (streq(c, "/.") || streq(c, "/..") || strncmp(c, "/./", 3) == 0 || strncmp(c, "/../", 4) == 0 ||
                    strncmp(c, "//", 2) == 0)
                        return false;
        return true;
}

static int disks_check(const struct domain_disks *d)
{
        if (!d)
                return 0;
        if (!d->root_path != !d->base_path)
                return -EINVAL; /* an overlay without its base, or a base alone */
        if (d->root_path && (!disk_path_ok(d->root_path) || !disk_path_ok(d->base_path) ||
                             streq(d->root_path, d->base_path)))
                return -EINVAL;
        if (d->config_path && !disk_path_ok(d->config_path))
                return -EINVAL;
        if (d->console_log && !disk_path_ok(d->console_log))
                return -EINVAL;
        if (!d->kernel != !d->initrd || (!d->kernel && d->cmdline))
                return -EINVAL;
        if (d->kernel && (!disk_path_ok(d->kernel) || !disk_path_ok(d->initrd)))
                return -EINVAL;
        if (d->cmdline) {
                size_t len = strnlen(d->cmdline, DOMAIN_CMDLINE_MAX + 1);

                if (len > DOMAIN_CMDLINE_MAX)
                        return -EINVAL;
                for (size_t i = 0; i < len; i++)
                        if (!xml_plain_char(d->cmdline[i], true))
                                return -EINVAL;
        }
        return 0;
}

static int spec_check(const struct domain_spec *spec)
{
        size_t name_len;

        if (!spec->type || !(streq(spec->type, "qemu") || streq(spec->type, "test")))
                return -EINVAL;
        if (!uuid_is_valid(spec->instance_uuid) || !spec->display_name)
                return -EINVAL;
        name_len = strnlen(spec->display_name, LIBVIRT_MAX_NAME + 1);
        if (name_len > LIBVIRT_MAX_NAME)
                return -ENAMETOOLONG;
        if (name_len == 0 || !proto_text_is_clean(spec->display_name, name_len))
                return -EINVAL;
        if (spec->vcpus < 1 || spec->vcpus > LIBVIRT_MAX_VCPUS || spec->memory_mb < LIBVIRT_MIN_MEMORY_MB ||
            spec->memory_mb > LIBVIRT_MAX_MEMORY_MB)
                return -EINVAL;
        if (spec->n_ports > LIBVIRT_MAX_PORTS || (spec->n_ports > 0 && !spec->ports))
                return -EINVAL;
        for (size_t i = 0; i < spec->n_ports; i++) {
                const struct domain_port *p = &spec->ports[i];
                if (!uuid_is_valid(p->port_uuid) || !mac_is_valid(p->mac) || p->mtu < 68 || p->mtu > 65535)
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (streq(spec->ports[j].port_uuid, p->port_uuid))
                                return -EINVAL; /* one tap per port: a duplicate would clash */
        }
        return disks_check(spec->disks);
}

static void xb_attr_path(struct xbuf *b, const char *before, const char *path, const char *after)
{
        xb_printf(b, "%s", before);
        xb_escaped(b, path);
        xb_printf(b, "%s", after);
}

/* <os> boot source: direct kernel, the root disk, or the network. */
static void build_os_boot(struct xbuf *b, const struct domain_disks *d)
{
        if (d && d->kernel) {
                xb_attr_path(b, "    <kernel>", d->kernel, "</kernel>\n");
                xb_attr_path(b, "    <initrd>", d->initrd, "</initrd>\n");
                if (d->cmdline)
                        xb_attr_path(b, "    <cmdline>", d->cmdline, "</cmdline>\n");
        } else if (d && d->root_path)
                xb_printf(b, "    <boot dev='hd'/>\n");
        else
                xb_printf(b, "    <boot dev='network'/>\n");
}

static void build_disks(struct xbuf *b, const struct domain_disks *d)
{
        if (!d)
                return;
        if (d->root_path) {
                xb_printf(b, "    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n");
                xb_attr_path(b, "      <source file='", d->root_path, "'/>\n");
                xb_printf(b, "      <backingStore type='file'>\n        <format type='raw'/>\n");
                xb_attr_path(b, "        <source file='", d->base_path, "'/>\n");
                xb_printf(b, "        <backingStore/>\n      </backingStore>\n"
                             "      <target dev='vda' bus='virtio'/>\n    </disk>\n");
        }
        if (d->config_path) {
                xb_printf(b, "    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n");
                xb_attr_path(b, "      <source file='", d->config_path, "'/>\n");
                xb_printf(b, "      <backingStore/>\n      <target dev='hdd' bus='ide'/>\n      <readonly/>\n"
                             "    </disk>\n");
        }
}

int domain_xml_build(const struct domain_spec *spec, char *buf, size_t size)
{
        struct xbuf b = { .p = buf, .size = size };
        char name[DOMAIN_NAME_MAX];
        int r;

        r = spec_check(spec);
        if (r < 0)
                return r;
        if (size == 0)
                return -EMSGSIZE;
        buf[0] = '\0';
        (void)domain_name_from_instance(spec->instance_uuid, name);

        xb_printf(&b, "<domain type='%s'>\n", spec->type);
        xb_printf(&b, "  <name>%s</name>\n  <uuid>%s</uuid>\n", name, spec->instance_uuid);
        xb_printf(&b, "  <title>");
        xb_escaped(&b, spec->display_name);
        xb_printf(&b, "</title>\n");
        /* The ownership mark. */
        xb_printf(&b, "  <metadata>\n    <%s:instance xmlns:%s='%s'>\n", LIBVIRT_METADATA_KEY, LIBVIRT_METADATA_KEY,
                  LIBVIRT_METADATA_URI);
        xb_printf(&b, "      <%s:uuid>%s</%s:uuid>\n", LIBVIRT_METADATA_KEY, spec->instance_uuid,
                  LIBVIRT_METADATA_KEY);
        xb_printf(&b, "      <%s:name>", LIBVIRT_METADATA_KEY);
        xb_escaped(&b, spec->display_name);
        xb_printf(&b, "</%s:name>\n", LIBVIRT_METADATA_KEY);
        xb_printf(&b, "      <%s:ports>\n", LIBVIRT_METADATA_KEY);
        for (size_t i = 0; i < spec->n_ports; i++)
                xb_printf(&b, "        <%s:port uuid='%s'/>\n", LIBVIRT_METADATA_KEY, spec->ports[i].port_uuid);
        xb_printf(&b, "      </%s:ports>\n    </%s:instance>\n  </metadata>\n", LIBVIRT_METADATA_KEY,
                  LIBVIRT_METADATA_KEY);

        xb_printf(&b, "  <memory unit='MiB'>%llu</memory>\n", (unsigned long long)spec->memory_mb);
        xb_printf(&b, "  <vcpu placement='static'>%llu</vcpu>\n", (unsigned long long)spec->vcpus);
        xb_printf(&b, "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n");
        build_os_boot(&b, spec->disks);
        xb_printf(&b, "  </os>\n");
        /* ACPI: without it libvirt starts QEMU with -no-acpi and a graceful shutdown never reaches the guest. */
        xb_printf(&b, "  <features>\n    <acpi/>\n    <apic/>\n  </features>\n");
        xb_printf(&b, "  <clock offset='utc'/>\n  <on_poweroff>destroy</on_poweroff>\n"
                      "  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n");
        xb_printf(&b, "  <devices>\n");
        build_disks(&b, spec->disks);
        for (size_t i = 0; i < spec->n_ports; i++) {
                const struct domain_port *p = &spec->ports[i];
                char tap[IFNAME_MAX];

                (void)tap_name_from_port(p->port_uuid, tap);
                xb_printf(&b,
                          "    <interface type='ethernet'>\n"
                          "      <mac address='%s'/>\n"
                          "      <target dev='%s' managed='no'/>\n"
                          "      <model type='virtio'/>\n"
                          "%s"
                          "      <mtu size='%u'/>\n"
                          "    </interface>\n",
                          p->mac, tap, p->no_csum_offload ? "      <driver>\n        <host csum='off'/>\n      </driver>\n" : "",
                          (unsigned)p->mtu);
        }
        xb_printf(&b, "    <serial type='pty'>\n");
        if (spec->disks && spec->disks->console_log) /* libvirt's <log>: virtlogd writes and bounds it */
                xb_attr_path(&b, "      <log file='", spec->disks->console_log, "' append='off'/>\n");
        xb_printf(&b, "      <target port='0'/>\n    </serial>\n"
                      "    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n");
        xb_printf(&b, "  </devices>\n</domain>\n");
        if (b.err) {
                buf[0] = '\0';
                return b.err;
        }
        return 0;
}

/* Our element's child `local` (with or without the "nova:" prefix, as
 * libvirt may hand it back either way): its text in [*ret_begin, *ret_end). */
static bool find_element_text(const char *md, const char *local, const char **ret_begin, const char **ret_end)
{
        static const char *const prefixes[] = { LIBVIRT_METADATA_KEY ":", "" };

        for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
                char open[48], close[48];
                const char *b, *e;

                if (xsnprintf(open, sizeof(open), "<%s%s>", prefixes[i], local) < 0 ||
                    xsnprintf(close, sizeof(close), "</%s%s>", prefixes[i], local) < 0)
                        return false;
                b = strstr(md, open);
                if (!b)
                        continue;
                b += strlen(open);
                e = strstr(b, close);
                if (!e)
                        return false;
                *ret_begin = b;
                *ret_end = e;
                return true;
        }
        return false;
}

bool domain_metadata_names(const char *metadata, const char *instance_uuid)
{
        const char *b, *e;

        if (!metadata || !uuid_is_valid(instance_uuid) || !find_element_text(metadata, "uuid", &b, &e))
                return false;
        return e - b == UUID_STR_LEN && memcmp(b, instance_uuid, UUID_STR_LEN) == 0;
}

int domain_metadata_display_name(const char *metadata, char ret[LIBVIRT_MAX_NAME + 1])
{
        static const struct {
                const char *entity;
                char c;
        } entities[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' } };
        char name[LIBVIRT_MAX_NAME + 1];
        const char *b, *e;
        size_t n = 0;

        if (!metadata || !find_element_text(metadata, "name", &b, &e))
                return -ENOENT;
        while (b < e) {
                char c = *b;
                if (c == '&') {
                        size_t i;
                        for (i = 0; i < ARRAY_SIZE(entities); i++) {
                                size_t l = strlen(entities[i].entity);
                                if ((size_t)(e - b) >= l && strncmp(b, entities[i].entity, l) == 0) {
                                        c = entities[i].c;
                                        b += l;
                                        break;
                                }
                        }
                        if (i == ARRAY_SIZE(entities))
                                return -EBADMSG;
                } else {
                        if (c == '<')
                                return -EBADMSG;
                        b++;
                }
                if (n >= LIBVIRT_MAX_NAME)
                        return -EBADMSG;
                name[n++] = c;
        }
        name[n] = '\0';
        if (n == 0 || !proto_text_is_clean(name, n))
                return -EBADMSG;
        memcpy(ret, name, n + 1);
        return 0;
}

int domain_is_ours(virDomainPtr dom, char ret_display_name[LIBVIRT_MAX_NAME + 1])
{
        char uuid[VIR_UUID_STRING_BUFLEN], derived[DOMAIN_NAME_MAX];
        const char *name;
        char *md;
        bool ours;

        if (virDomainGetUUIDString(dom, uuid) < 0)
                return -EIO;
        name = virDomainGetName(dom);
        if (!name || domain_name_from_instance(uuid, derived) < 0 || !streq(name, derived))
                return 0;
        md = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, LIBVIRT_METADATA_URI, 0);
        if (!md) {
                virErrorPtr e = virGetLastError();
                if (e && e->code == VIR_ERR_NO_DOMAIN_METADATA)
                        return 0;
                if (e && e->code == VIR_ERR_NO_DOMAIN)
                        return -ENOENT;
                return -EIO;
        }
        ours = domain_metadata_names(md, uuid);
        if (ours && ret_display_name) {
                char display[LIBVIRT_MAX_NAME + 1];
                if (domain_metadata_display_name(md, display) == 0)
                        memcpy(ret_display_name, display, strlen(display) + 1);
                else
                        ret_display_name[0] = '\0';
        }
        free(md);
        return ours ? 1 : 0;
}
