/* test-domain-xml.c - unit tests for interfaces/libvirt/domain-xml.c: every
 * generated document is checked against libvirt's own domain schema with
 * virt-xml-validate (a missing validator is a failure, not a skip), plus the
 * derived names, escaping, the ownership mark and the output bounds. The mark
 * check on live domains uses libvirt's in-process test:///default driver. */
#include <check.h>
#include <fcntl.h>
#include <sys/wait.h>

#include "domain-xml.h"

#define IID "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
#define OTHER "0123abcd-4567-89ef-0123-456789abcdef"

struct ports16 {
        char uuid[LIBVIRT_MAX_PORTS + 1][UUID_STR_LEN + 1];
        char mac[LIBVIRT_MAX_PORTS + 1][MAC_STR_LEN + 1];
        struct domain_port p[LIBVIRT_MAX_PORTS + 1];
};

static void make_ports(struct ports16 *ps, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                (void)snprintf(ps->uuid[i], sizeof(ps->uuid[i]), "%08zx-1111-4222-8333-%012zx", 0xa0000000 + i, i);
                (void)snprintf(ps->mac[i], sizeof(ps->mac[i]), "fa:16:3e:00:01:%02zx", i);
                ps->p[i] = (struct domain_port){ .port_uuid = ps->uuid[i], .mac = ps->mac[i], .mtu = (uint32_t)(1400 + i) };
        }
}

static struct domain_spec make_spec(const char *type, const struct ports16 *ps, size_t n)
{
        return (struct domain_spec){
                .type = type,
                .instance_uuid = IID,
                .display_name = "web-1",
                .vcpus = 2,
                .memory_mb = 256,
                .ports = ps ? ps->p : NULL,
                .n_ports = n,
        };
}

/* Run virt-xml-validate on the document; its exit status (127: could not run it)
 * and what it said in ret_out. */
static int validate(const char *xml, char *ret_out, size_t outsize)
{
        char path[] = "/tmp/test-domain-xml-XXXXXX", out[] = "/tmp/test-domain-xml-out-XXXXXX";
        int fd = mkstemp(path), ofd = mkstemp(out), status;
        ssize_t n;
        pid_t pid;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(ofd, 0);
        ck_assert_int_eq(write_all(fd, xml, strlen(xml)), 0);
        close(fd);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                dup2(ofd, 1);
                dup2(ofd, 2);
                execlp("virt-xml-validate", "virt-xml-validate", path, "domain", (char *)NULL);
                _exit(127);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        n = pread(ofd, ret_out, outsize - 1, 0);
        ret_out[n > 0 ? n : 0] = '\0';
        close(ofd);
        unlink(path);
        unlink(out);
        ck_assert(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static void assert_valid(const char *xml)
{
        char out[2048];
        int st = validate(xml, out, sizeof(out));

        ck_assert_msg(st != 127, "virt-xml-validate could not be run (package libvirt-clients missing?)");
        ck_assert_msg(st == 0, "libvirt's schema refuses the document (%s):\n%s", out, xml);
        ck_assert_msg(strstr(out, "validates"), "virt-xml-validate said: %s", out);
}

static int count(const char *hay, const char *needle)
{
        int n = 0;

        for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
                n++;
        return n;
}

static void assert_contains(const char *xml, const char *needle)
{
        ck_assert_msg(strstr(xml, needle), "missing '%s' in:\n%s", needle, xml);
}

START_TEST(test_port_counts_validate)
{
        static const char *const types[] = { "qemu", "test" };
        static const size_t counts[] = { 0, 1, LIBVIRT_MAX_PORTS };
        static char xml[DOMAIN_XML_MAX];
        struct ports16 ps;
        char needle[256], tap[IFNAME_MAX];

        make_ports(&ps, LIBVIRT_MAX_PORTS);
        for (size_t t = 0; t < ARRAY_SIZE(types); t++)
                for (size_t c = 0; c < ARRAY_SIZE(counts); c++) {
                        struct domain_spec spec = make_spec(types[t], &ps, counts[c]);

                        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
                        assert_valid(xml);
                        (void)snprintf(needle, sizeof(needle), "<domain type='%s'>", types[t]);
                        assert_contains(xml, needle);
                        assert_contains(xml, "<name>nova-" IID "</name>");
                        assert_contains(xml, "<uuid>" IID "</uuid>");
                        assert_contains(xml, "<type arch='x86_64' machine='pc'>hvm</type>");
                        assert_contains(xml, "<boot dev='network'/>");
                        ck_assert_int_eq(count(xml, "<disk"), 0);
                        ck_assert_int_eq(count(xml, "<interface type='ethernet'>"), (int)counts[c]);
                        ck_assert_int_eq(count(xml, "<model type='virtio'/>"), (int)counts[c]);
                        ck_assert_int_eq(count(xml, "<nova:port uuid="), (int)counts[c]);
                        for (size_t i = 0; i < counts[c]; i++) {
                                ck_assert_int_eq(tap_name_from_port(ps.uuid[i], tap), 0);
                                (void)snprintf(needle, sizeof(needle), "<target dev='%s' managed='no'/>", tap);
                                assert_contains(xml, needle);
                                (void)snprintf(needle, sizeof(needle), "<mac address='%s'/>", ps.mac[i]);
                                assert_contains(xml, needle);
                                (void)snprintf(needle, sizeof(needle), "<mtu size='%u'/>", ps.p[i].mtu);
                                assert_contains(xml, needle);
                                (void)snprintf(needle, sizeof(needle), "<nova:port uuid='%s'/>", ps.uuid[i]);
                                assert_contains(xml, needle);
                        }
                }
}
END_TEST

/* A port without checksum offload (a plain port on OVS's userspace datapath):
 * <driver><host csum='off'/></driver> on that interface only, valid for
 * libvirt's schema. */
START_TEST(test_port_without_csum_offload)
{
        static char xml[DOMAIN_XML_MAX];
        struct ports16 ps;
        struct domain_spec spec;
        const char *second;

        make_ports(&ps, 2);
        ps.p[1].no_csum_offload = true;
        spec = make_spec("qemu", &ps, 2);
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        assert_valid(xml);
        ck_assert_int_eq(count(xml, "<host csum='off'/>"), 1);
        second = strstr(xml, "<interface type='ethernet'>");
        ck_assert_ptr_nonnull(second);
        second = strstr(second + 1, "<interface type='ethernet'>");
        ck_assert_ptr_nonnull(second);
        ck_assert_ptr_nonnull(strstr(second, "<driver>\n        <host csum='off'/>\n      </driver>"));
        ps.p[1].no_csum_offload = false;
        spec = make_spec("qemu", &ps, 2);
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        ck_assert_int_eq(count(xml, "csum"), 0);
}
END_TEST

START_TEST(test_min_max_resources)
{
        static char xml[DOMAIN_XML_MAX];
        struct ports16 ps;
        struct domain_spec spec;

        make_ports(&ps, 1);
        spec = make_spec("qemu", &ps, 1);
        spec.vcpus = 1;
        spec.memory_mb = LIBVIRT_MIN_MEMORY_MB;
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        assert_valid(xml);
        assert_contains(xml, "<vcpu placement='static'>1</vcpu>");
        assert_contains(xml, "<memory unit='MiB'>16</memory>");

        spec.vcpus = LIBVIRT_MAX_VCPUS;
        spec.memory_mb = LIBVIRT_MAX_MEMORY_MB;
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        assert_valid(xml);
        assert_contains(xml, "<vcpu placement='static'>64</vcpu>");
        assert_contains(xml, "<memory unit='MiB'>1048576</memory>");

        /* Just outside the bounds: refused, nothing written. */
        static const uint64_t bad[][2] = { { 0, 256 }, { LIBVIRT_MAX_VCPUS + 1, 256 },
                                           { 1, LIBVIRT_MIN_MEMORY_MB - 1 }, { 1, LIBVIRT_MAX_MEMORY_MB + 1 } };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                spec.vcpus = bad[i][0];
                spec.memory_mb = bad[i][1];
                strcpy(xml, "untouched");
                ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
                ck_assert_str_eq(xml, "untouched");
        }
}
END_TEST

START_TEST(test_display_names)
{
        /* Every character the contract allows, at the shortest and longest lengths. */
        static const char *const names[] = {
                "a",
                "Z",
                "0",
                "ABCDEFGHIJKLMNOPQRSTUVWXYZ._-0123456789",
                "abcdefghijklmnopqrstuvwxyz._-0123456789",
                "x-_._-_._-_._-_._-_._-_._-_._-_._-_._-_._-_._-_._-_._-_._-_._-_",
                "Az09.-_Az09.-_Az09.-_Az09.-_Az09.-_Az09.-_Az09.-_Az09.-_Az09.-_",
        };
        static char xml[DOMAIN_XML_MAX];
        char needle[128];

        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                struct domain_spec spec = make_spec("qemu", NULL, 0);

                ck_assert_msg(instance_name_is_valid(names[i]), "contract refuses %s", names[i]);
                ck_assert_uint_le(strlen(names[i]), LIBVIRT_MAX_NAME);
                spec.display_name = names[i];
                ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
                assert_valid(xml);
                (void)snprintf(needle, sizeof(needle), "<nova:name>%s</nova:name>", names[i]);
                assert_contains(xml, needle);
                (void)snprintf(needle, sizeof(needle), "<title>%s</title>", names[i]);
                assert_contains(xml, needle);
        }
        ck_assert_uint_eq(strlen(names[5]), LIBVIRT_MAX_NAME);
}
END_TEST

START_TEST(test_escaping)
{
        static char xml[DOMAIN_XML_MAX];
        struct domain_spec spec = make_spec("test", NULL, 0);
        char buf[64];

        ck_assert_int_eq(domain_xml_escape("a<b>&\"c'", buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "a&lt;b&gt;&amp;&quot;c&apos;");
        ck_assert_int_eq(domain_xml_escape("plain-name_1.0", buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "plain-name_1.0");
        ck_assert_int_eq(domain_xml_escape("&&&", buf, 15), -EMSGSIZE);
        ck_assert_str_eq(buf, "");
        ck_assert_int_eq(domain_xml_escape("&&&", buf, 16), 0);
        ck_assert_int_eq(domain_xml_escape("abc", buf, 3), -EMSGSIZE);
        ck_assert_int_eq(domain_xml_escape("abc", buf, 0), -EMSGSIZE);

        /* Markup in a name stays text: the document is still valid and cannot forge the mark. */
        spec.display_name = "<uuid>" OTHER "</uuid>&'\"";
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        assert_valid(xml);
        assert_contains(xml, "<nova:name>&lt;uuid&gt;" OTHER "&lt;/uuid&gt;&amp;&apos;&quot;</nova:name>");
        ck_assert_int_eq(count(xml, "<uuid>"), 1);
        ck_assert(!strstr(xml, "<uuid>" OTHER));
        ck_assert(!domain_metadata_names(strstr(xml, "<nova:instance"), OTHER));

        /* Control characters are not text at all. */
        spec.display_name = "a\nb";
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        spec.display_name = "";
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
}
END_TEST

START_TEST(test_derived_names)
{
        char name[DOMAIN_NAME_MAX], uuid[UUID_STR_LEN + 1];
        const char *type = NULL;

        ck_assert_int_eq(domain_name_from_instance(IID, name), 0);
        ck_assert_str_eq(name, "nova-" IID);
        ck_assert_uint_eq(strlen(name) + 1, DOMAIN_NAME_MAX);
        ck_assert_int_eq(domain_name_from_instance("../../etc/passwd", name), -EINVAL);
        ck_assert_int_eq(domain_name_from_instance("3F2504E0-4F89-41D3-9A0C-0305E82C3301", name), -EINVAL);

        ck_assert(domain_name_is_derived("nova-" IID, uuid));
        ck_assert_str_eq(uuid, IID);
        ck_assert(domain_name_is_derived("nova-" IID, NULL));
        ck_assert(!domain_name_is_derived("test", NULL));
        ck_assert(!domain_name_is_derived("nova-", NULL));
        ck_assert(!domain_name_is_derived("nova-" IID "x", NULL));
        ck_assert(!domain_name_is_derived("Nova-" IID, NULL));
        ck_assert(!domain_name_is_derived("instance-00000001", NULL));
        ck_assert(!domain_name_is_derived(NULL, NULL));

        ck_assert_int_eq(domain_type_from_uri("qemu:///system", &type), 0);
        ck_assert_str_eq(type, "qemu");
        ck_assert_int_eq(domain_type_from_uri("qemu+unix:///system?socket=/run/x", &type), 0);
        ck_assert_str_eq(type, "qemu");
        ck_assert_int_eq(domain_type_from_uri("qemu:///embed?root=/tmp/x", &type), 0);
        ck_assert_int_eq(domain_type_from_uri("test:///default", &type), 0);
        ck_assert_str_eq(type, "test");
        ck_assert_int_eq(domain_type_from_uri("xen:///system", &type), -EPROTONOSUPPORT);
        ck_assert_int_eq(domain_type_from_uri("qemux:///system", &type), -EPROTONOSUPPORT);
        ck_assert_int_eq(domain_type_from_uri("qemu", &type), -EPROTONOSUPPORT);
        ck_assert_int_eq(domain_type_from_uri("", &type), -EPROTONOSUPPORT);

        /* keepalive only where a dead peer can go unnoticed: not on a local socket */
        ck_assert(libvirt_uri_is_local_socket("qemu:///system"));
        ck_assert(libvirt_uri_is_local_socket("qemu:///session"));
        ck_assert(libvirt_uri_is_local_socket("qemu+unix:///system?socket=/run/x"));
        ck_assert(libvirt_uri_is_local_socket("test:///default"));
        ck_assert(libvirt_uri_is_local_socket("qemu:///embed?root=/tmp/x"));
        ck_assert(!libvirt_uri_is_local_socket("qemu://host.example/system"));
        ck_assert(!libvirt_uri_is_local_socket("qemu://localhost/system"));
        ck_assert(!libvirt_uri_is_local_socket("qemu+tls://host/system"));
        ck_assert(!libvirt_uri_is_local_socket("qemu+tcp://host/system"));
        ck_assert(!libvirt_uri_is_local_socket("qemu+ssh://root@host/system"));
        ck_assert(!libvirt_uri_is_local_socket("qemu+libssh2://host/system"));
        ck_assert(!libvirt_uri_is_local_socket("qemu+ext:///system?command=/bin/x"));
        ck_assert(!libvirt_uri_is_local_socket("qemu+unixx:///system"));

        /* worker threads for every driver but the in-process test driver */
        ck_assert(libvirt_uri_is_in_process_test("test:///default"));
        ck_assert(libvirt_uri_is_in_process_test("test:///tmp/node.xml"));
        ck_assert(!libvirt_uri_is_in_process_test("test+unix:///default?socket=/run/x"));
        ck_assert(!libvirt_uri_is_in_process_test("test://host/default"));
        ck_assert(!libvirt_uri_is_in_process_test("qemu:///system"));
        ck_assert(!libvirt_uri_is_in_process_test("qemu:///embed?root=/tmp/x"));
        ck_assert(!libvirt_uri_is_in_process_test("tes:///default"));
        ck_assert(!libvirt_uri_is_local_socket("qemu"));
        ck_assert(!libvirt_uri_is_local_socket(""));
}
END_TEST

START_TEST(test_metadata_mark_text)
{
        static char xml[DOMAIN_XML_MAX];
        struct ports16 ps;
        struct domain_spec spec;
        char display[LIBVIRT_MAX_NAME + 1];

        /* The element as the generator writes it (prefixed) ... */
        make_ports(&ps, 2);
        spec = make_spec("qemu", &ps, 2);
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        assert_contains(xml, "<nova:instance xmlns:nova='" LIBVIRT_METADATA_URI "'>");
        assert_contains(xml, "<nova:uuid>" IID "</nova:uuid>");
        const char *el = strstr(xml, "<nova:instance");
        ck_assert(domain_metadata_names(el, IID));
        ck_assert(!domain_metadata_names(el, OTHER));
        ck_assert(!domain_metadata_names(el, ps.uuid[0])); /* port uuids are not the instance */
        ck_assert_int_eq(domain_metadata_display_name(el, display), 0);
        ck_assert_str_eq(display, "web-1");

        /* ... and as virDomainGetMetadata hands it back (prefix dropped). */
        static const char *const md = "<instance>\n  <uuid>" IID "</uuid>\n  <name>a&amp;b&lt;&gt;&quot;&apos;</name>\n"
                                      "  <ports>\n    <port uuid=\"" OTHER "\"/>\n  </ports>\n</instance>";
        ck_assert(domain_metadata_names(md, IID));
        ck_assert(!domain_metadata_names(md, OTHER));
        ck_assert(!domain_metadata_names(md, "not-a-uuid"));
        ck_assert(!domain_metadata_names(NULL, IID));
        ck_assert(!domain_metadata_names("<instance><uuid>" IID "x</uuid></instance>", IID));
        ck_assert(!domain_metadata_names("<instance><uuid>" IID, IID));
        ck_assert_int_eq(domain_metadata_display_name(md, display), 0);
        ck_assert_str_eq(display, "a&b<>\"'");
        ck_assert_int_eq(domain_metadata_display_name("<instance/>", display), -ENOENT);
        ck_assert_int_eq(domain_metadata_display_name("<instance><name>a&#10;</name></instance>", display), -EBADMSG);
        ck_assert_int_eq(domain_metadata_display_name("<instance><name></name></instance>", display), -EBADMSG);
        ck_assert_int_eq(domain_metadata_display_name("<instance><name>"
                                                      "0123456789012345678901234567890123456789012345678901234567890123"
                                                      "</name></instance>",
                                                      display),
                         -EBADMSG);
}
END_TEST

static void silent(void *data, virErrorPtr e)
{
        (void)data;
        (void)e;
}

START_TEST(test_metadata_mark_live)
{
        static char xml[DOMAIN_XML_MAX];
        struct ports16 ps;
        struct domain_spec spec;
        char display[LIBVIRT_MAX_NAME + 1];
        virConnectPtr conn;
        virDomainPtr dom;

        virSetErrorFunc(NULL, silent);
        conn = virConnectOpen("test:///default");
        ck_assert_ptr_nonnull(conn);

        /* libvirt's own default domain is not ours. */
        dom = virDomainLookupByName(conn, "test");
        ck_assert_ptr_nonnull(dom);
        ck_assert_int_eq(domain_is_ours(dom, display), 0);
        virDomainFree(dom);

        make_ports(&ps, 2);
        spec = make_spec("test", &ps, 2);
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        dom = virDomainDefineXMLFlags(conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
        ck_assert_ptr_nonnull(dom);
        ck_assert_int_eq(domain_is_ours(dom, display), 1);
        ck_assert_str_eq(display, "web-1");
        ck_assert_int_eq(virDomainUndefine(dom), 0);
        ck_assert_int_eq(domain_is_ours(dom, display), -ENOENT);
        virDomainFree(dom);

        /* Our derived name without the mark, and a mark naming another instance: not ours. */
        static const char *const foreign[] = {
                "<domain type='test'><name>nova-" IID "</name><uuid>" IID "</uuid><memory unit='MiB'>64</memory>"
                "<os><type>hvm</type></os></domain>",
                "<domain type='test'><name>nova-" IID "</name><uuid>" IID "</uuid><metadata>"
                "<nova:instance xmlns:nova='" LIBVIRT_METADATA_URI "'><nova:uuid>" OTHER "</nova:uuid>"
                "</nova:instance></metadata><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>",
                "<domain type='test'><name>nova-" IID "</name><uuid>" IID "</uuid><metadata>"
                "<x:instance xmlns:x='urn:someone-else'><x:uuid>" IID "</x:uuid>"
                "</x:instance></metadata><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>",
                "<domain type='test'><name>nova-" OTHER "</name><uuid>" IID "</uuid><metadata>"
                "<nova:instance xmlns:nova='" LIBVIRT_METADATA_URI "'><nova:uuid>" IID "</nova:uuid>"
                "</nova:instance></metadata><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>",
        };
        for (size_t i = 0; i < ARRAY_SIZE(foreign); i++) {
                dom = virDomainDefineXML(conn, foreign[i]);
                ck_assert_msg(dom != NULL, "test driver refused %s", foreign[i]);
                ck_assert_msg(domain_is_ours(dom, display) == 0, "foreign domain %zu taken for ours", i);
                ck_assert_int_eq(virDomainUndefine(dom), 0);
                virDomainFree(dom);
        }
        virConnectClose(conn);
}
END_TEST

START_TEST(test_bounded_output)
{
        static char xml[DOMAIN_XML_MAX], small[DOMAIN_XML_MAX];
        struct ports16 ps;
        struct domain_spec spec;
        size_t need;

        make_ports(&ps, LIBVIRT_MAX_PORTS + 1);
        spec = make_spec("qemu", &ps, LIBVIRT_MAX_PORTS);
        spec.display_name = "&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&";
        ck_assert_uint_eq(strlen(spec.display_name), LIBVIRT_MAX_NAME);
        /* The worst case fits DOMAIN_XML_MAX with room to spare. */
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        need = strlen(xml) + 1;
        ck_assert_uint_lt(need, DOMAIN_XML_MAX / 2);
        assert_valid(xml);
        /* Any smaller buffer: -EMSGSIZE and an empty string, never a cut document. */
        for (size_t size = 0; size < need; size++) {
                memset(small, 'x', sizeof(small));
                ck_assert_int_eq(domain_xml_build(&spec, small, size), -EMSGSIZE);
                if (size > 0)
                        ck_assert_str_eq(small, "");
                ck_assert_int_eq(small[size], 'x'); /* nothing past the buffer */
        }
        ck_assert_int_eq(domain_xml_build(&spec, small, need), 0);
        ck_assert_str_eq(small, xml);

        /* A name over the limit is too long; bad fields are refused. */
        spec.display_name = "0123456789012345678901234567890123456789012345678901234567890123";
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -ENAMETOOLONG);
        spec.display_name = "ok";
        spec.n_ports = LIBVIRT_MAX_PORTS + 1;
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        spec.n_ports = 2;
        ps.p[1].port_uuid = ps.p[0].port_uuid; /* two interfaces on one tap */
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        ps.p[1].port_uuid = ps.uuid[1];
        ps.p[1].mac = "ff:ff:ff:ff:ff:ff";
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        ps.p[1].mac = ps.mac[1];
        ps.p[1].mtu = 67;
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        ps.p[1].mtu = 1500;
        ps.p[1].port_uuid = "../../etc/passwd";
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        ps.p[1].port_uuid = ps.uuid[1];
        spec.instance_uuid = "nova-" IID;
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        spec.instance_uuid = IID;
        spec.type = "xen";
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        spec.type = "qemu";
        spec.ports = NULL;
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        spec.ports = ps.p;
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
}
END_TEST


#define POOL "/var/lib/libvirt/images/nova"

START_TEST(test_disks_validate)
{
        static char xml[DOMAIN_XML_MAX];
        struct ports16 ps;
        struct domain_disks disks = {
                .root_path = POOL "/" IID ".root.qcow2",
                .base_path = POOL "/base-0123.raw",
                .config_path = POOL "/" IID ".config.iso",
                .console_log = "/var/log/libvirt/qemu/nova-" IID ".console.log",
        };
        struct domain_spec spec;

        make_ports(&ps, 1);
        spec = make_spec("qemu", &ps, 1);
        spec.disks = &disks;
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        assert_valid(xml);
        assert_contains(xml, "<boot dev='hd'/>");
        ck_assert_int_eq(count(xml, "<boot dev='network'/>"), 0);
        /* the root disk: explicit qcow2 over explicit raw, and the chain ends there */
        assert_contains(xml, "<disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n"
                             "      <source file='" POOL "/" IID ".root.qcow2'/>\n"
                             "      <backingStore type='file'>\n        <format type='raw'/>\n"
                             "        <source file='" POOL "/base-0123.raw'/>\n        <backingStore/>\n"
                             "      </backingStore>\n      <target dev='vda' bus='virtio'/>");
        /* the config drive: raw, read-only CD-ROM, no backing store */
        assert_contains(xml, "<disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n"
                             "      <source file='" POOL "/" IID ".config.iso'/>\n      <backingStore/>\n"
                             "      <target dev='hdd' bus='ide'/>\n      <readonly/>");
        assert_contains(xml, "<log file='/var/log/libvirt/qemu/nova-" IID ".console.log' append='off'/>");
        ck_assert_int_eq(count(xml, "<driver name='qemu' type="), 2); /* every disk says its format */
        ck_assert_int_eq(count(xml, "type='volume'"), 0);

        /* a config drive and a console log only (diskless, network boot) */
        disks.root_path = disks.base_path = NULL;
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        assert_valid(xml);
        assert_contains(xml, "<boot dev='network'/>");
        ck_assert_int_eq(count(xml, "<disk "), 1);

        /* direct kernel boot */
        disks.kernel = POOL "/kernel-1";
        disks.initrd = POOL "/ramdisk-1";
        disks.cmdline = "console=ttyS0 root=/dev/vda quiet";
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        assert_valid(xml);
        assert_contains(xml, "<kernel>" POOL "/kernel-1</kernel>\n    <initrd>" POOL "/ramdisk-1</initrd>\n"
                             "    <cmdline>console=ttyS0 root=/dev/vda quiet</cmdline>");
        ck_assert_int_eq(count(xml, "<boot dev="), 0);
}
END_TEST

START_TEST(test_disks_refused)
{
        static char xml[DOMAIN_XML_MAX], longpath[DOMAIN_PATH_MAX + 2];
        static const char *const bad_paths[] = {
                "relative/root.qcow2", "", "/a/../etc/shadow", "/a/./b", "/a//b", "/a/..", "/a/.",
                "/a b", "/a'b", "/a\"b", "/a<b", "/a>b", "/a&b", "/a\tb", "/a\nb", "/a\x7f", "/a\xc3\xa9",
        };
        struct ports16 ps;
        struct domain_disks good = { .root_path = POOL "/r.qcow2", .base_path = POOL "/b.raw",
                                     .config_path = POOL "/c.iso", .console_log = POOL "/c.log" };
        struct domain_disks d;
        struct domain_spec spec;

        make_ports(&ps, 1);
        spec = make_spec("qemu", &ps, 1);
        spec.disks = &d;
        for (size_t i = 0; i < ARRAY_SIZE(bad_paths); i++) {
                const char **fields[] = { &d.root_path, &d.base_path, &d.config_path, &d.console_log };

                for (size_t f = 0; f < ARRAY_SIZE(fields); f++) {
                        d = good;
                        *fields[f] = bad_paths[i];
                        memset(xml, 'x', 16);
                        ck_assert_msg(domain_xml_build(&spec, xml, sizeof(xml)) == -EINVAL, "path '%s' (field %zu) accepted",
                                      bad_paths[i], f);
                }
        }
        memset(longpath, 'a', sizeof(longpath) - 1);
        longpath[0] = '/';
        d = good;
        d.base_path = longpath;
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        longpath[DOMAIN_PATH_MAX] = '\0'; /* exactly the limit */
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);

        d = good;
        d.base_path = NULL; /* an overlay without its base */
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        d = good;
        d.root_path = NULL; /* a base alone */
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        d = good;
        d.base_path = d.root_path; /* its own backing file */
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        d = good;
        d.kernel = POOL "/k"; /* a kernel without initrd */
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        d = good;
        d.cmdline = "console=ttyS0"; /* a command line without a kernel */
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        d.kernel = POOL "/k";
        d.initrd = POOL "/i";
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        d.cmdline = "init=/bin/sh\n";
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
        d.cmdline = "a='b'";
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), -EINVAL);
}
END_TEST

START_TEST(test_disks_bounded)
{
        static char xml[DOMAIN_XML_MAX];
        static char paths[6][DOMAIN_PATH_MAX + 1], cmdline[DOMAIN_CMDLINE_MAX + 1];
        struct ports16 ps;
        struct domain_disks d;
        struct domain_spec spec;

        for (int i = 0; i < 6; i++) {
                memset(paths[i], 'a' + i, DOMAIN_PATH_MAX);
                paths[i][0] = '/';
                paths[i][DOMAIN_PATH_MAX] = '\0';
        }
        memset(cmdline, 'c', DOMAIN_CMDLINE_MAX);
        cmdline[DOMAIN_CMDLINE_MAX] = '\0';
        d = (struct domain_disks){ paths[0], paths[1], paths[2], paths[3], paths[4], paths[5], cmdline };
        make_ports(&ps, LIBVIRT_MAX_PORTS);
        spec = make_spec("qemu", &ps, LIBVIRT_MAX_PORTS);
        spec.display_name = "&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&&";
        spec.disks = &d;
        /* the worst case with every disk still fits DOMAIN_XML_MAX */
        ck_assert_int_eq(domain_xml_build(&spec, xml, sizeof(xml)), 0);
        ck_assert_uint_lt(strlen(xml) + 1, DOMAIN_XML_MAX);
        assert_valid(xml);
}
END_TEST

static Suite *domain_xml_suite(void)
{
        Suite *s = suite_create("domain-xml");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_port_counts_validate);
        tcase_add_test(tc, test_port_without_csum_offload);
        tcase_add_test(tc, test_min_max_resources);
        tcase_add_test(tc, test_display_names);
        tcase_add_test(tc, test_escaping);
        tcase_add_test(tc, test_derived_names);
        tcase_add_test(tc, test_metadata_mark_text);
        tcase_add_test(tc, test_metadata_mark_live);
        tcase_add_test(tc, test_bounded_output);
        tcase_add_test(tc, test_disks_validate);
        tcase_add_test(tc, test_disks_refused);
        tcase_add_test(tc, test_disks_bounded);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(domain_xml_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
