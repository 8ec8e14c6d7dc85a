/* test-migrate-xml.c - the text work of a live migration (interfaces/libvirt/migrate-xml.c)
 * and the validators of domain_migrate's fields (libvirt-protocol.c): the destination XML
 * gets every path of ours moved to the destination pool's directory and nothing else; a
 * path of the source's pool left anywhere refuses the XML; URIs, hosts and pool names
 * outside the documented grammar are refused. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libvirt-protocol.h"
#include "migrate-xml.h"
#include "schema.h"
#include "proto.h"

#define SRC "/var/lib/nova/a/pool"
#define DST "/srv/b/pool-b"

static const char domain_xml[] =
        "<domain type='qemu'>\n  <name>nova-x</name>\n  <devices>\n"
        "    <disk type='file' device='disk'>\n      <source file='" SRC "/nova-x-root.qcow2'/>\n"
        "      <backingStore type='file'><format type='raw'/><source file='" SRC "/image-y.raw'/></backingStore>\n"
        "    </disk>\n    <disk type='file' device='cdrom'><source file=\"" SRC "/nova-x-config.iso\"/></disk>\n"
        "    <serial type='pty'><log file='" SRC "/nova-x-console.log' append='off'/></serial>\n"
        "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n  </devices>\n</domain>\n";

START_TEST(test_rewrite_moves_every_path_of_ours)
{
        char *out = NULL;
        size_t n = 0;

        ck_assert_int_eq(migrate_rewrite_dirs(domain_xml, SRC, DST, &out, &n), 0);
        ck_assert_uint_eq(n, 4);
        ck_assert_ptr_null(strstr(out, SRC));
        ck_assert_ptr_nonnull(strstr(out, "<source file='" DST "/nova-x-root.qcow2'/>"));
        ck_assert_ptr_nonnull(strstr(out, "<source file='" DST "/image-y.raw'/>"));
        ck_assert_ptr_nonnull(strstr(out, "<source file=\"" DST "/nova-x-config.iso\"/>"));
        ck_assert_ptr_nonnull(strstr(out, "<log file='" DST "/nova-x-console.log'"));
        ck_assert_ptr_nonnull(strstr(out, "<emulator>/usr/bin/qemu-system-x86_64</emulator>")); /* not ours: kept */
        free(out);
}
END_TEST

START_TEST(test_rewrite_refuses_what_it_cannot_move)
{
        char *out = NULL;
        size_t n = 0;
        static const char text_path[] = "<domain><description>" SRC "/nova-x-root.qcow2</description></domain>";

        /* a source path outside an attribute would make the destination open the source's file */
        ck_assert_int_eq(migrate_rewrite_dirs(text_path, SRC, DST, &out, &n), -EINVAL);
        ck_assert_int_eq(migrate_rewrite_dirs(domain_xml, "relative/pool", DST, &out, &n), -EINVAL);
        ck_assert_int_eq(migrate_rewrite_dirs(domain_xml, SRC, "/b/it's", &out, &n), -EINVAL);
        ck_assert_int_eq(migrate_rewrite_dirs(domain_xml, SRC, "/b/<x", &out, &n), -EINVAL);
        ck_assert_int_eq(migrate_rewrite_dirs(domain_xml, SRC, "/b/../etc", &out, &n), -EINVAL);
        ck_assert_int_eq(migrate_rewrite_dirs(domain_xml, SRC, "/b/", &out, &n), -EINVAL);
        /* a prefix of a longer directory is not the directory */
        ck_assert_int_eq(migrate_rewrite_dirs("<d><s file='" SRC "2/v'/></d>", SRC, DST, &out, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_str_eq(out, "<d><s file='" SRC "2/v'/></d>");
        free(out);
}
END_TEST

START_TEST(test_pool_dir)
{
        char dir[MIGRATE_DIR_MAX];

        ck_assert_int_eq(migrate_pool_dir_from_xml("<pool type='dir'>\n  <name>nova-b</name>\n  <target>\n"
                                                   "    <path>/srv/b/pool-b</path>\n  </target>\n</pool>\n", dir), 0);
        ck_assert_str_eq(dir, "/srv/b/pool-b");
        ck_assert_int_eq(migrate_pool_dir_from_xml("<pool type='logical'><target><path>/dev/vg</path></target></pool>", dir),
                         -EINVAL);
        ck_assert_int_eq(migrate_pool_dir_from_xml("<pool type='dir'><target><path>pool</path></target></pool>", dir),
                         -EINVAL);
        ck_assert_int_eq(migrate_pool_dir_from_xml("<pool type='dir'><target><path>/a/../b</path></target></pool>", dir),
                         -EINVAL);
        ck_assert_int_eq(migrate_pool_dir_from_xml("<pool type='dir'><source><path>/x</path></source></pool>", dir), -EINVAL);
}
END_TEST

START_TEST(test_validators)
{
        ck_assert(migrate_dest_uri_is_valid("qemu+tcp://host-b.example/system"));
        ck_assert(migrate_dest_uri_is_valid("qemu+tls://192.0.2.2:16514/system"));
        ck_assert(migrate_dest_uri_is_valid("qemu+tcp://[2001:db8::2]/system"));
        ck_assert(migrate_dest_uri_is_valid("qemu+unix:///system?socket=/tmp/b/sock/libvirt-sock"));
        ck_assert(!migrate_dest_uri_is_valid("qemu+ssh://root@b/system"));           /* runs a command on b */
        ck_assert(!migrate_dest_uri_is_valid("qemu+tcp://b/system?command=/bin/sh"));
        ck_assert(!migrate_dest_uri_is_valid("qemu+tcp://b/session"));
        ck_assert(!migrate_dest_uri_is_valid("qemu+tcp://b:99999x/system"));
        ck_assert(!migrate_dest_uri_is_valid("qemu+tcp://-b/system"));
        /* host names: no empty label, no label starting or ending with '-' (fuzz-migrate-xml found "a..b") */
        ck_assert(!migrate_dest_uri_is_valid("qemu+tcp://host..b/system"));
        ck_assert(!migrate_dest_uri_is_valid("qemu+tcp://host-b./system"));
        ck_assert(!migrate_dest_uri_is_valid("qemu+tcp://host-.b/system"));
        ck_assert(!migrate_dest_uri_is_valid("qemu+tcp://host.-b/system"));
        ck_assert(!migrate_dest_uri_is_valid("qemu+tcp://host-b-:16509/system"));
        ck_assert(migrate_dest_uri_is_valid("qemu+tcp://a.b-c.d:16509/system"));
        ck_assert(!migrate_dest_uri_is_valid("qemu+unix:///system?socket=../x"));
        ck_assert(!migrate_dest_uri_is_valid("qemu+unix:///system?socket=/a/../x"));
        ck_assert(!migrate_dest_uri_is_valid("qemu+unix:///system?socket=/a;b"));
        ck_assert(!migrate_dest_uri_is_valid("qemu:///system"));
        ck_assert(migrate_host_is_valid("192.0.2.2"));
        ck_assert(migrate_host_is_valid("2001:db8::2"));
        ck_assert(!migrate_host_is_valid("host-b"));
        ck_assert(!migrate_host_is_valid("192.0.2.2:49152"));
        ck_assert(pool_name_is_valid("nova-b"));
        ck_assert(!pool_name_is_valid("Nova"));
        ck_assert(!pool_name_is_valid("a/b"));
}
END_TEST

/* domain_migrate's schema refuses a request whose fields break the grammar, and nothing unknown. */
START_TEST(test_schema)
{
        static struct proto_msg msg;
        struct proto_writer w;
        const uint8_t *buf;
        size_t len;
        char err[256];
        const struct proto_entrypoint *ep = &libvirt_entrypoints[LIBVIRT_DOMAIN_MIGRATE];
        const char *hosts[] = { "192.0.2.2", "b.example" };

        for (int i = 0; i < 2; i++) {
                pw_init(&w, PROTO_REQUEST, 1, 0, ep->name);
                pw_str(&w, "instance_uuid", "0c0c0c0c-3333-4c33-8c33-00000000000c");
                pw_str(&w, "dest_uri", "qemu+tcp://b/system");
                pw_str(&w, "migrate_host", hosts[i]);
                pw_str(&w, "dest_pool", "nova-b");
                pw_u64(&w, "timeout_s", 60);
                ck_assert_int_eq(pw_finish(&w, &buf, &len), 0);
                ck_assert_int_eq(proto_decode(buf, len, &msg, err, sizeof(err)), 0);
                ck_assert_int_eq(schema_check(ep->request, msg.body, err, sizeof(err)), i == 0 ? 0 : -EINVAL);
        }
}
END_TEST

int main(void)
{
        Suite *s = suite_create("migrate-xml");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_rewrite_moves_every_path_of_ours);
        tcase_add_test(tc, test_rewrite_refuses_what_it_cannot_move);
        tcase_add_test(tc, test_pool_dir);
        tcase_add_test(tc, test_validators);
        tcase_add_test(tc, test_schema);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
