/* test-schema.c - unit tests for src/lib/schema.c against the real
 * network-control request schemas and a few local ones. Bodies are built with
 * the writer and decoded, exactly as the module runtime sees them. */
#include <check.h>

#include "names.h"
#include "libvirt-protocol.h"
#include "netctl-protocol.h"
#include "fw-protocol.h"
#include "ovs-protocol.h"
#include "plugs.h"
#include "schema.h"

#define UUID_OK "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
#define MAC_OK "fa:16:3e:12:34:56"

static struct proto_writer pw;
static struct proto_msg msg;
static char err[256];

static const struct schema_field *req_schema(enum netctl_entrypoint_id id)
{
        return netctl_entrypoints[id].request;
}

/* Finish the writer and decode: the body to check. */
static const struct proto_value *body(void)
{
        const uint8_t *buf;
        size_t len;
        char why[256];
        int r;

        r = pw_finish(&pw, &buf, &len);
        ck_assert_msg(r == 0, "pw_finish: %d", r);
        r = proto_decode(buf, len, &msg, why, sizeof(why));
        ck_assert_msg(r == 0, "proto_decode: %s", why);
        return msg.body;
}

static int check(const struct schema_field *fields)
{
        const struct proto_value *b = body();

        memset(err, 0, sizeof(err));
        return schema_check(fields, b, err, sizeof(err));
}

#define OK(fields)                                                                                 \
        do {                                                                                       \
                int _r = check(fields);                                                            \
                ck_assert_msg(_r == 0, "refused: %s", err);                                        \
        } while (0)

/* Refused with -EINVAL and exactly the given reason. */
#define BAD(fields, why)                                                                           \
        do {                                                                                       \
                int _r = check(fields);                                                            \
                ck_assert_msg(_r == -EINVAL, "schema_check returned %d (err '%s'), want -EINVAL", _r, err); \
                ck_assert_str_eq(err, (why));                                                      \
        } while (0)

/* A tap_create request with the given values; NULL / UINT64_MAX-1 leave a field out. */
#define NO_MTU (UINT64_MAX - 1)
static void tap_create(const char *uuid, const char *mac, uint64_t mtu)
{
        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_create");
        if (uuid)
                pw_str(&pw, "port_uuid", uuid);
        if (mac)
                pw_str(&pw, "mac", mac);
        if (mtu != NO_MTU)
                pw_u64(&pw, "mtu", mtu);
}

/* ---- network-control schemas ---- */

START_TEST(test_tap_create_valid)
{
        tap_create(UUID_OK, MAC_OK, 1500);
        OK(req_schema(NETCTL_TAP_CREATE));
        ck_assert_str_eq(err, "");

        /* member order does not matter */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_create");
        pw_u64(&pw, "mtu", 9000);
        pw_str(&pw, "mac", "02:00:00:00:00:01");
        pw_str(&pw, "port_uuid", "00000000-0000-0000-0000-000000000000");
        OK(req_schema(NETCTL_TAP_CREATE));
}
END_TEST

/* datapath: the Open vSwitch datapath type, "system" or "netdev", nothing else */
START_TEST(test_tap_create_datapath)
{
        static const char *const bad[] = { "Netdev", "netdev ", "kernel", "dpdk", "../../", "netde", "systemd" };

        tap_create(UUID_OK, MAC_OK, 1500);
        pw_str(&pw, "datapath", "netdev");
        OK(req_schema(NETCTL_TAP_CREATE));
        tap_create(UUID_OK, MAC_OK, 1500);
        pw_bool(&pw, "hybrid", true);
        pw_str(&pw, "datapath", "system");
        OK(req_schema(NETCTL_TAP_CREATE));
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                tap_create(UUID_OK, MAC_OK, 1500);
                pw_str(&pw, "datapath", bad[i]);
                ck_assert_msg(check(req_schema(NETCTL_TAP_CREATE)) == -EINVAL, "datapath '%s' accepted", bad[i]);
                ck_assert_msg(strstr(err, "datapath"), "%s", err);
        }
        tap_create(UUID_OK, MAC_OK, 1500);
        pw_bool(&pw, "datapath", true);
        ck_assert_int_eq(check(req_schema(NETCTL_TAP_CREATE)), -EINVAL);
}
END_TEST

START_TEST(test_tap_create_missing)
{
        tap_create(NULL, MAC_OK, 1500);
        BAD(req_schema(NETCTL_TAP_CREATE), "port_uuid: required field missing");
        tap_create(UUID_OK, NULL, 1500);
        BAD(req_schema(NETCTL_TAP_CREATE), "mac: required field missing");
        tap_create(UUID_OK, MAC_OK, NO_MTU);
        BAD(req_schema(NETCTL_TAP_CREATE), "mtu: required field missing");
        tap_create(NULL, NULL, NO_MTU);
        BAD(req_schema(NETCTL_TAP_CREATE), "port_uuid: required field missing");

        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_get");
        BAD(req_schema(NETCTL_TAP_GET), "port_uuid: required field missing");
        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_delete");
        BAD(req_schema(NETCTL_TAP_DELETE), "port_uuid: required field missing");
}
END_TEST

START_TEST(test_unknown_field)
{
        static const char *const extras[] = { "path", "name", "ifname", "dev", "port_uuids", "mac_", "m" };

        for (size_t i = 0; i < ARRAY_SIZE(extras); i++) {
                char want[64];

                tap_create(UUID_OK, MAC_OK, 1500);
                pw_str(&pw, extras[i], "/etc/passwd");
                (void)snprintf(want, sizeof(want), "%s: unknown field", extras[i]);
                BAD(req_schema(NETCTL_TAP_CREATE), want);
        }
        /* unknown before a missing required field: still unknown */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_get");
        pw_str(&pw, "path", "../../etc/passwd");
        BAD(req_schema(NETCTL_TAP_GET), "path: unknown field");
        /* tap_list takes nothing at all */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_list");
        OK(req_schema(NETCTL_TAP_LIST));
        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_list");
        pw_str(&pw, "port_uuid", UUID_OK);
        BAD(req_schema(NETCTL_TAP_LIST), "port_uuid: unknown field");
        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_list");
        pw_bool(&pw, "all", true);
        BAD(req_schema(NETCTL_TAP_LIST), "all: unknown field");
}
END_TEST

START_TEST(test_wrong_types)
{
        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_create");
        pw_str(&pw, "port_uuid", UUID_OK);
        pw_str(&pw, "mac", MAC_OK);
        pw_str(&pw, "mtu", "1500");
        BAD(req_schema(NETCTL_TAP_CREATE), "mtu: must be an unsigned integer");

        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_create");
        pw_str(&pw, "port_uuid", UUID_OK);
        pw_str(&pw, "mac", MAC_OK);
        pw_i64(&pw, "mtu", 1500);
        BAD(req_schema(NETCTL_TAP_CREATE), "mtu: must be an unsigned integer");

        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_create");
        pw_str(&pw, "port_uuid", UUID_OK);
        pw_str(&pw, "mac", MAC_OK);
        pw_obj_begin(&pw, "mtu");
        pw_u64(&pw, "value", 1500);
        pw_obj_end(&pw);
        BAD(req_schema(NETCTL_TAP_CREATE), "mtu: must be an unsigned integer");

        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_create");
        pw_u64(&pw, "port_uuid", 1);
        BAD(req_schema(NETCTL_TAP_CREATE), "port_uuid: must be a string");

        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_create");
        pw_list_begin(&pw, "port_uuid");
        pw_str(&pw, NULL, UUID_OK);
        pw_list_end(&pw);
        BAD(req_schema(NETCTL_TAP_CREATE), "port_uuid: must be a string");

        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_create");
        pw_str(&pw, "port_uuid", UUID_OK);
        pw_bool(&pw, "mac", true);
        BAD(req_schema(NETCTL_TAP_CREATE), "mac: must be a string");

        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_get");
        pw_obj_begin(&pw, "port_uuid");
        pw_obj_end(&pw);
        BAD(req_schema(NETCTL_TAP_GET), "port_uuid: must be a string");
}
END_TEST

START_TEST(test_mtu_bounds)
{
        /* 65522..65535: a tap's max_mtu is 65535 - ETH_HLEN (the probe's 65530 was refused by the kernel only after changes) */
        static const uint64_t bad[] = { 0, 1, 67, 65522, 65530, 65535, 65536, 65537, 1ULL << 32, UINT64_MAX };
        static const uint64_t good[] = { 68, 69, 576, 1500, 9000, 65520, 65521 };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                char want[128];

                tap_create(UUID_OK, MAC_OK, bad[i]);
                (void)snprintf(want, sizeof(want), "mtu: %llu is outside 68..65521", (unsigned long long)bad[i]);
                BAD(req_schema(NETCTL_TAP_CREATE), want);
        }
        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                tap_create(UUID_OK, MAC_OK, good[i]);
                OK(req_schema(NETCTL_TAP_CREATE));
        }
}
END_TEST

START_TEST(test_port_uuid_syntax)
{
        static const char *const bad[] = {
                "../../etc/passwd",
                "3F2504E0-4F89-41D3-9A0C-0305E82C3301",          /* uppercase */
                "3f2504e0-4f89-41d3-9A0c-0305e82c3301",          /* one uppercase digit */
                "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}",        /* braces */
                "{3f2504e0-4f89-41d3-9a0c-0305e82c330}",         /* braces, 38 chars */
                "3f2504e0-4f89-41d3-9a0c-0305e82c330",           /* 35 chars */
                "3f2504e0-4f89-41d3-9a0c-0305e82c33011",         /* 37 chars */
                "3f2504e0-4f89-41d3-9a0c-0305e82c3301/",         /* 37 chars, path */
                "urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301",
                "3f2504e04f8941d39a0c0305e82c3301",              /* no dashes */
                "3f2504e0-4f89-41d3-9a0c0-305e82c3301",          /* dash misplaced */
                "3f2504e0_4f89_41d3_9a0c_0305e82c3301",
                "3f2504e0-4f89-41d3-9a0c-0305e82c330g",
                "3f2504e0-4f89-41d3-9a0c-0305e82c33 1",
                " 3f2504e0-4f89-41d3-9a0c-0305e82c3301",
                "------------------------------------",
                "",
                "tap3f2504e0-4f",
        };
        static const enum netctl_entrypoint_id eps[] = { NETCTL_TAP_CREATE, NETCTL_TAP_DELETE, NETCTL_TAP_GET };

        for (size_t e = 0; e < ARRAY_SIZE(eps); e++)
                for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                        pw_init(&pw, PROTO_REQUEST, 1, 0, netctl_entrypoints[eps[e]].name);
                        pw_str(&pw, "port_uuid", bad[i]);
                        if (eps[e] == NETCTL_TAP_CREATE) {
                                pw_str(&pw, "mac", MAC_OK);
                                pw_u64(&pw, "mtu", 1500);
                        }
                        BAD(req_schema(eps[e]), "port_uuid: not a canonical lowercase UUID");
                }
        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_get");
        pw_str(&pw, "port_uuid", UUID_OK);
        OK(req_schema(NETCTL_TAP_GET));
        pw_init(&pw, PROTO_REQUEST, 1, 0, "tap_delete");
        pw_str(&pw, "port_uuid", "ffffffff-ffff-ffff-ffff-ffffffffffff");
        OK(req_schema(NETCTL_TAP_DELETE));
}
END_TEST

START_TEST(test_mac_syntax)
{
        static const char *const bad[] = {
                "01:00:5e:00:00:01", /* IPv4 multicast */
                "33:33:00:00:00:01", /* IPv6 multicast */
                "fb:16:3e:12:34:56", /* group bit */
                "ff:ff:ff:ff:ff:ff", /* broadcast */
                "00:00:00:00:00:00",
                "FA:16:3E:12:34:56",
                "fa:16:3e:12:34:5A",
                "fa-16-3e-12-34-56",
                "fa.16.3e.12.34.56",
                "fa:16:3e-12:34:56",
                "fa163e123456",
                "fa16.3e12.3456",
                "fa:16:3e:12:34:5",
                "fa:16:3e:12:34:567",
                "fa:16:3e:12:34:56:",
                ":fa:16:3e:12:34:56",
                "fa:16:3e:12:34:5g",
                "fa:16:3e:12:34: 6",
                "f:a16:3e:12:34:56",
                "",
                "fe:ff:ff:ff:ff:ff", /* the taps' own range (fe + a port MAC's last five bytes) */
        };
        static const char *const good[] = {
                MAC_OK, "fa:16:3e:00:00:00", "02:00:00:00:00:01", "00:00:00:00:00:01", "fc:ff:ff:ff:ff:ff",
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                tap_create(UUID_OK, bad[i], 1500);
                BAD(req_schema(NETCTL_TAP_CREATE), "mac: " MAC_RULE_TEXT);
        }
        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                tap_create(UUID_OK, good[i], 1500);
                OK(req_schema(NETCTL_TAP_CREATE));
        }
}
END_TEST

START_TEST(test_not_an_object)
{
        const struct proto_value *l;

        ck_assert_int_eq(schema_check(req_schema(NETCTL_TAP_LIST), NULL, err, sizeof(err)), -EINVAL);
        ck_assert_str_eq(err, "body: must be an object");
        pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
        pw_list_begin(&pw, "l");
        pw_list_end(&pw);
        pw_str(&pw, "s", "a");
        l = proto_get(body(), "l");
        ck_assert_int_eq(schema_check(req_schema(NETCTL_TAP_LIST), l, err, sizeof(err)), -EINVAL);
        ck_assert_str_eq(err, "body: must be an object");
        ck_assert_int_eq(schema_check(req_schema(NETCTL_TAP_LIST), proto_get(msg.body, "s"), err, sizeof(err)),
                         -EINVAL);
}
END_TEST

START_TEST(test_err_buffer)
{
        char small[5];
        const struct proto_value *b;

        tap_create("nope", MAC_OK, 1500);
        b = body();
        ck_assert_int_eq(schema_check(req_schema(NETCTL_TAP_CREATE), b, NULL, 0), -EINVAL);
        memset(small, 'Q', sizeof(small));
        ck_assert_int_eq(schema_check(req_schema(NETCTL_TAP_CREATE), b, small, sizeof(small)), -EINVAL);
        ck_assert_str_eq(small, "port");
}
END_TEST

/* ---- libvirt storage schemas: identifiers and sizes only ---- */

static const struct schema_field *lv_schema(const char *name)
{
        const struct proto_entrypoint *ep = module_protocol_find(&libvirt_protocol, name);

        ck_assert_ptr_nonnull(ep);
        return ep->request;
}

static void upload(const char *uuid, uint64_t size, const char *format)
{
        pw_init(&pw, PROTO_REQUEST, 1, 0, "image_upload");
        if (uuid)
                pw_str(&pw, "image_uuid", uuid);
        if (size != NO_MTU)
                pw_u64(&pw, "size", size);
        if (format)
                pw_str(&pw, "format", format);
}

START_TEST(test_libvirt_storage_schemas)
{
        const struct schema_field *up = lv_schema("image_upload");
        const struct schema_field *rd = lv_schema("root_disk_create");

        /* only the entrypoints that stream bytes take a descriptor */
        for (size_t i = 0; i < libvirt_protocol.n_entrypoints; i++) {
                const struct proto_entrypoint *ep = &libvirt_entrypoints[i];
                ck_assert_int_eq(ep->takes_fd,
                                 streq(ep->name, "image_upload") || streq(ep->name, "config_drive_create"));
        }
        upload(UUID_OK, 1, NULL);
        OK(up);
        upload(UUID_OK, LIBVIRT_MAX_IMAGE_BYTES, "raw");
        OK(up);
        upload(UUID_OK, 4096, "qcow2");
        OK(up);
        upload(UUID_OK, 0, "raw");
        ck_assert_int_eq(check(up), -EINVAL);
        upload(UUID_OK, LIBVIRT_MAX_IMAGE_BYTES + 1, "raw");
        ck_assert_int_eq(check(up), -EINVAL);
        upload(UUID_OK, 4096, "vmdk");
        ck_assert_int_eq(check(up), -EINVAL);
        upload(UUID_OK, 4096, "Raw");
        ck_assert_int_eq(check(up), -EINVAL);
        upload("../../etc/shadow", 4096, "raw");
        ck_assert_int_eq(check(up), -EINVAL);
        upload("3F2504E0-4F89-41D3-9A0C-0305E82C3301", 4096, "raw"); /* not canonical */
        ck_assert_int_eq(check(up), -EINVAL);
        upload(NULL, 4096, "raw");
        ck_assert_int_eq(check(up), -EINVAL);
        upload(UUID_OK, NO_MTU, "raw");
        ck_assert_int_eq(check(up), -EINVAL);
        upload(UUID_OK, 4096, "raw");
        pw_str(&pw, "path", "/etc/shadow"); /* names and paths are never taken from a request */
        ck_assert_int_eq(check(up), -EINVAL);
        upload(UUID_OK, 4096, "raw");
        pw_str(&pw, "volume", "x");
        ck_assert_int_eq(check(up), -EINVAL);

        pw_init(&pw, PROTO_REQUEST, 1, 0, "root_disk_create");
        pw_str(&pw, "instance_uuid", UUID_OK);
        pw_str(&pw, "image_uuid", UUID_OK);
        pw_u64(&pw, "size_gb", LIBVIRT_MAX_DISK_GB);
        OK(rd);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "root_disk_create");
        pw_str(&pw, "instance_uuid", UUID_OK);
        pw_str(&pw, "image_uuid", UUID_OK);
        pw_u64(&pw, "size_gb", LIBVIRT_MAX_DISK_GB + 1);
        ck_assert_int_eq(check(rd), -EINVAL);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "root_disk_create");
        pw_str(&pw, "instance_uuid", UUID_OK);
        pw_u64(&pw, "size_gb", 1);
        ck_assert_int_eq(check(rd), -EINVAL); /* image_uuid missing */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "root_disk_create");
        pw_str(&pw, "instance_uuid", UUID_OK);
        pw_str(&pw, "image_uuid", UUID_OK);
        pw_u64(&pw, "size_gb", 1);
        pw_str(&pw, "backing", "/etc/shadow");
        ck_assert_int_eq(check(rd), -EINVAL);

        pw_init(&pw, PROTO_REQUEST, 1, 0, "config_drive_create");
        pw_str(&pw, "instance_uuid", UUID_OK);
        OK(lv_schema("config_drive_create"));
        pw_init(&pw, PROTO_REQUEST, 1, 0, "config_drive_create");
        pw_str(&pw, "instance_uuid", UUID_OK);
        pw_str(&pw, "user_data", "aGk=");
        ck_assert_int_eq(check(lv_schema("config_drive_create")), -EINVAL); /* the description comes by descriptor */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "pool_info");
        pw_str(&pw, "pool", "default");
        ck_assert_int_eq(check(lv_schema("pool_info")), -EINVAL);
        pw_init(&pw, PROTO_REQUEST, 1, 0, "image_delete");
        pw_str(&pw, "image_uuid", "x");
        ck_assert_int_eq(check(lv_schema("image_delete")), -EINVAL);
}
END_TEST

START_TEST(test_module_protocol_find)
{
        static const char *const absent[] = {
                "", "tap", "tap_destroy", "TAP_CREATE", "tap_create ", "tap_creat", "tap_create_", "tap-create",
        };
        static const struct proto_entrypoint one[] = { { "ping", NULL, false, false } };
        static const struct module_protocol empty = { .plug = PLUG_LIBVIRT, .entrypoints = NULL, .n_entrypoints = 0 };
        static const struct module_protocol single = { .plug = PLUG_LIBVIRT, .entrypoints = one, .n_entrypoints = 1 };

        ck_assert_int_eq(netctl_protocol.plug, PLUG_NETWORK_CONTROL);
        ck_assert_uint_eq(netctl_protocol.n_entrypoints, _NETCTL_MAX);
        for (int i = 0; i < _NETCTL_MAX; i++) {
                const struct proto_entrypoint *ep = module_protocol_find(&netctl_protocol, netctl_entrypoints[i].name);
                ck_assert_ptr_eq(ep, &netctl_entrypoints[i]);
                ck_assert_ptr_nonnull(ep->request);
                ck_assert(proto_name_is_valid(ep->name, strlen(ep->name)));
        }
        ck_assert_ptr_eq(module_protocol_find(&netctl_protocol, "tap_create"), &netctl_entrypoints[NETCTL_TAP_CREATE]);
        ck_assert_ptr_eq(module_protocol_find(&netctl_protocol, "tap_get"), &netctl_entrypoints[NETCTL_TAP_GET]);
        ck_assert(netctl_entrypoints[NETCTL_TAP_CREATE].privileged);
        ck_assert(netctl_entrypoints[NETCTL_TAP_DELETE].privileged);
        ck_assert(!netctl_entrypoints[NETCTL_TAP_LIST].privileged);
        ck_assert(!netctl_entrypoints[NETCTL_TAP_GET].privileged);
        for (size_t i = 0; i < ARRAY_SIZE(absent); i++)
                ck_assert_ptr_null(module_protocol_find(&netctl_protocol, absent[i]));
        ck_assert_ptr_null(module_protocol_find(&empty, "tap_create"));
        ck_assert_ptr_eq(module_protocol_find(&single, "ping"), &one[0]);
        ck_assert_ptr_null(module_protocol_find(&single, "pong"));
}
END_TEST

/* ---- local schemas: lists, nested objects, strings ---- */

static bool no_x(const char *s) { return strchr(s, 'x') == NULL; }

static const struct schema_field tap_obj[] = {
        { .name = "port_uuid", .kind = SCH_UUID, .required = true },
        { .name = "mtu", .kind = SCH_U64, .min = 68, .max = 9000 },
        { .name = NULL },
};

static const struct schema_field local[] = {
        { .name = "ids", .kind = SCH_LIST, .min = 1, .max = 3, .item = SCH_U64, .item_min = 1, .item_max = 100 },
        { .name = "names", .kind = SCH_LIST, .max = 4, .item = SCH_STR, .item_min = 1, .item_max = 8, .str_ok = no_x },
        { .name = "uuids", .kind = SCH_LIST, .max = 2, .item = SCH_UUID },
        { .name = "macs", .kind = SCH_LIST, .max = 2, .item = SCH_MAC },
        { .name = "flags", .kind = SCH_LIST, .max = 2, .item = SCH_BOOL },
        { .name = "taps", .kind = SCH_LIST, .max = 2, .item = SCH_OBJ, .fields = tap_obj },
        { .name = "nested", .kind = SCH_LIST, .max = 2, .item = SCH_LIST },
        { .name = "label", .kind = SCH_STR, .min = 2, .max = 5, .str_ok = no_x },
        { .name = "any", .kind = SCH_STR, .max = PROTO_MAX_STR },
        { .name = "enabled", .kind = SCH_BOOL },
        { .name = "inner", .kind = SCH_OBJ, .fields = tap_obj },
        { .name = NULL },
};

static void begin(void) { pw_init(&pw, PROTO_REQUEST, 1, 0, "local"); }

static void u64_list(const char *key, int n, uint64_t v)
{
        pw_list_begin(&pw, key);
        for (int i = 0; i < n; i++)
                pw_u64(&pw, NULL, v);
        pw_list_end(&pw);
}

START_TEST(test_list_counts)
{
        begin();
        OK(local); /* nothing is required */

        begin();
        u64_list("ids", 0, 5);
        BAD(local, "ids: 0 items, allowed 1..3");
        begin();
        u64_list("ids", 4, 5);
        BAD(local, "ids: 4 items, allowed 1..3");
        begin();
        u64_list("ids", PROTO_MAX_ITEMS, 5);
        BAD(local, "ids: 1024 items, allowed 1..3");
        for (int n = 1; n <= 3; n++) {
                begin();
                u64_list("ids", n, 5);
                OK(local);
        }
        begin();
        pw_list_begin(&pw, "names");
        pw_list_end(&pw);
        OK(local);
        begin();
        pw_u64(&pw, "ids", 5);
        BAD(local, "ids: must be a list");
        begin();
        pw_obj_begin(&pw, "ids");
        pw_obj_end(&pw);
        BAD(local, "ids: must be a list");
}
END_TEST

START_TEST(test_list_items)
{
        /* U64 items in bounds */
        begin();
        u64_list("ids", 1, 0);
        BAD(local, "ids: 0 is outside 1..100");
        begin();
        u64_list("ids", 1, 101);
        BAD(local, "ids: 101 is outside 1..100");
        begin();
        pw_list_begin(&pw, "ids");
        pw_u64(&pw, NULL, 1);
        pw_u64(&pw, NULL, 100);
        pw_u64(&pw, NULL, 1000); /* only the last one is bad */
        pw_list_end(&pw);
        BAD(local, "ids: 1000 is outside 1..100");
        begin();
        pw_list_begin(&pw, "ids");
        pw_u64(&pw, NULL, 1);
        pw_str(&pw, NULL, "2");
        pw_list_end(&pw);
        BAD(local, "ids: must be an unsigned integer");
        begin();
        pw_list_begin(&pw, "ids");
        pw_i64(&pw, NULL, 2);
        pw_list_end(&pw);
        BAD(local, "ids: must be an unsigned integer");

        /* STR items: length bounds and syntax check */
        begin();
        pw_list_begin(&pw, "names");
        pw_str(&pw, NULL, "a");
        pw_str(&pw, NULL, "abcdefgh");
        pw_list_end(&pw);
        OK(local);
        begin();
        pw_list_begin(&pw, "names");
        pw_str(&pw, NULL, "");
        pw_list_end(&pw);
        BAD(local, "names: length 0 is outside 1..8");
        begin();
        pw_list_begin(&pw, "names");
        pw_str(&pw, NULL, "abcdefghi");
        pw_list_end(&pw);
        BAD(local, "names: length 9 is outside 1..8");
        begin();
        pw_list_begin(&pw, "names");
        pw_str(&pw, NULL, "ok");
        pw_str(&pw, NULL, "xx");
        pw_list_end(&pw);
        BAD(local, "names: invalid value");
        begin();
        pw_list_begin(&pw, "names");
        pw_bool(&pw, NULL, true);
        pw_list_end(&pw);
        BAD(local, "names: must be a string");

        /* UUID, MAC and BOOL items */
        begin();
        pw_list_begin(&pw, "uuids");
        pw_str(&pw, NULL, UUID_OK);
        pw_str(&pw, NULL, "../x");
        pw_list_end(&pw);
        BAD(local, "uuids: not a canonical lowercase UUID");
        begin();
        pw_list_begin(&pw, "macs");
        pw_str(&pw, NULL, MAC_OK);
        pw_str(&pw, NULL, "01:00:5e:00:00:01");
        pw_list_end(&pw);
        BAD(local, "macs: " MAC_RULE_TEXT);
        begin();
        pw_list_begin(&pw, "flags");
        pw_bool(&pw, NULL, true);
        pw_u64(&pw, NULL, 1);
        pw_list_end(&pw);
        BAD(local, "flags: must be a boolean");
        begin();
        pw_list_begin(&pw, "uuids");
        pw_str(&pw, NULL, UUID_OK);
        pw_str(&pw, NULL, UUID_OK);
        pw_list_end(&pw);
        pw_list_begin(&pw, "macs");
        pw_str(&pw, NULL, MAC_OK);
        pw_list_end(&pw);
        pw_list_begin(&pw, "flags");
        pw_bool(&pw, NULL, false);
        pw_list_end(&pw);
        OK(local);

        /* a list of lists is not a supported schema */
        begin();
        pw_list_begin(&pw, "nested");
        pw_list_end(&pw);
        OK(local);
        begin();
        pw_list_begin(&pw, "nested");
        pw_list_begin(&pw, NULL);
        pw_list_end(&pw);
        pw_list_end(&pw);
        BAD(local, "nested: unsupported schema");
}
END_TEST

static void tap_item(const char *uuid, uint64_t mtu, const char *extra)
{
        pw_obj_begin(&pw, NULL);
        if (uuid)
                pw_str(&pw, "port_uuid", uuid);
        if (mtu)
                pw_u64(&pw, "mtu", mtu);
        if (extra)
                pw_bool(&pw, extra, true);
        pw_obj_end(&pw);
}

START_TEST(test_list_of_objects)
{
        begin();
        pw_list_begin(&pw, "taps");
        tap_item(UUID_OK, 1500, NULL);
        tap_item(UUID_OK, 0, NULL);
        pw_list_end(&pw);
        OK(local);

        begin();
        pw_list_begin(&pw, "taps");
        tap_item(UUID_OK, 1500, NULL);
        tap_item(NULL, 1500, NULL);
        pw_list_end(&pw);
        BAD(local, "port_uuid: required field missing");

        begin();
        pw_list_begin(&pw, "taps");
        tap_item(UUID_OK, 1500, "bogus");
        pw_list_end(&pw);
        BAD(local, "bogus: unknown field");

        begin();
        pw_list_begin(&pw, "taps");
        tap_item(UUID_OK, 9001, NULL);
        pw_list_end(&pw);
        BAD(local, "mtu: 9001 is outside 68..9000");

        begin();
        pw_list_begin(&pw, "taps");
        tap_item("BAD", 1500, NULL);
        pw_list_end(&pw);
        BAD(local, "port_uuid: not a canonical lowercase UUID");

        begin();
        pw_list_begin(&pw, "taps");
        pw_u64(&pw, NULL, 1);
        pw_list_end(&pw);
        BAD(local, "taps: must be an object");

        begin();
        pw_list_begin(&pw, "taps");
        pw_list_begin(&pw, NULL);
        pw_list_end(&pw);
        pw_list_end(&pw);
        BAD(local, "taps: must be an object");

        begin();
        pw_list_begin(&pw, "taps");
        for (int i = 0; i < 3; i++)
                tap_item(UUID_OK, 1500, NULL);
        pw_list_end(&pw);
        BAD(local, "taps: 3 items, allowed 0..2");
}
END_TEST

START_TEST(test_nested_object)
{
        begin();
        pw_obj_begin(&pw, "inner");
        pw_str(&pw, "port_uuid", UUID_OK);
        pw_obj_end(&pw);
        OK(local);

        begin();
        pw_obj_begin(&pw, "inner");
        pw_obj_end(&pw);
        BAD(local, "port_uuid: required field missing");

        begin();
        pw_obj_begin(&pw, "inner");
        pw_str(&pw, "port_uuid", UUID_OK);
        pw_str(&pw, "path", "/");
        pw_obj_end(&pw);
        BAD(local, "path: unknown field");

        begin();
        pw_obj_begin(&pw, "inner");
        pw_str(&pw, "port_uuid", UUID_OK);
        pw_u64(&pw, "mtu", 67);
        pw_obj_end(&pw);
        BAD(local, "mtu: 67 is outside 68..9000");

        begin();
        pw_str(&pw, "inner", UUID_OK);
        BAD(local, "inner: must be an object");

        begin();
        pw_list_begin(&pw, "inner");
        pw_list_end(&pw);
        BAD(local, "inner: must be an object");
}
END_TEST

START_TEST(test_strings_and_bools)
{
        static char big[PROTO_MAX_STR + 1];

        begin();
        pw_str(&pw, "label", "a");
        BAD(local, "label: length 1 is outside 2..5");
        begin();
        pw_str(&pw, "label", "abcdef");
        BAD(local, "label: length 6 is outside 2..5");
        begin();
        pw_str(&pw, "label", "ab");
        OK(local);
        begin();
        pw_str(&pw, "label", "abcde");
        OK(local);
        begin();
        pw_str(&pw, "label", "abx");
        BAD(local, "label: invalid value");
        /* length counts bytes, not characters */
        begin();
        pw_str(&pw, "label", "\xe2\x82\xac\xe2\x82\xac");
        BAD(local, "label: length 6 is outside 2..5");
        begin();
        pw_u64(&pw, "label", 2);
        BAD(local, "label: must be a string");

        memset(big, 'a', PROTO_MAX_STR);
        begin();
        pw_str(&pw, "any", "");
        pw_str(&pw, "label", big + PROTO_MAX_STR - 3);
        OK(local);
        begin();
        pw_str(&pw, "any", big);
        OK(local);

        begin();
        pw_bool(&pw, "enabled", false);
        OK(local);
        begin();
        pw_u64(&pw, "enabled", 1);
        BAD(local, "enabled: must be a boolean");
        begin();
        pw_str(&pw, "enabled", "true");
        BAD(local, "enabled: must be a boolean");
}
END_TEST

/* The listings reconcile reads take a page: after (a canonical UUID) and limit (1..PROTO_MAX_ITEMS), nothing else. */
static void page_req(const char *ep, const char *after_key, const char *after, uint64_t limit)
{
        pw_init(&pw, PROTO_REQUEST, 1, 0, ep);
        if (after)
                pw_str(&pw, after_key, after);
        if (limit != NO_MTU)
                pw_u64(&pw, "limit", limit);
}

START_TEST(test_page_schemas)
{
        const struct schema_field *pages[] = {
                netctl_entrypoints[NETCTL_TAP_LIST].request, lv_schema("domain_list"),
                ovs_entrypoints[OVS_PORT_LIST].request, fw_entrypoints[FW_RULES_LIST].request,
        };

        ck_assert_ptr_eq(pages[0], schema_page_req);
        ck_assert_ptr_eq(pages[1], schema_page_req);
        ck_assert_ptr_eq(pages[2], schema_page_req);
        for (size_t i = 0; i < ARRAY_SIZE(pages); i++) {
                page_req("x", "after", NULL, NO_MTU);
                OK(pages[i]);
                page_req("x", "after", UUID_OK, 1);
                OK(pages[i]);
                page_req("x", "after", UUID_OK, PROTO_MAX_ITEMS);
                OK(pages[i]);
                page_req("x", "after", "../../etc/passwd", NO_MTU);
                BAD(pages[i], "after: not a canonical lowercase UUID");
                page_req("x", "after", "3F2504E0-4F89-41D3-9A0C-0305E82C3301", NO_MTU);
                BAD(pages[i], "after: not a canonical lowercase UUID");
                page_req("x", "after", NULL, 0);
                ck_assert_int_eq(check(pages[i]), -EINVAL);
                page_req("x", "after", NULL, PROTO_MAX_ITEMS + 1);
                ck_assert_int_eq(check(pages[i]), -EINVAL);
                page_req("x", "after", UUID_OK, NO_MTU);
                pw_str(&pw, "port_uuid", UUID_OK);
                BAD(pages[i], "port_uuid: unknown field");
                pw_init(&pw, PROTO_REQUEST, 1, 0, "x");
                pw_u64(&pw, "after", 7);
                ck_assert_int_eq(check(pages[i]), -EINVAL);
        }
        /* rules_list pages its groups too */
        page_req("rules_list", "groups_after", UUID_OK, NO_MTU);
        OK(pages[3]);
        page_req("rules_list", "groups_after", "default", NO_MTU);
        BAD(pages[3], "groups_after: not a canonical lowercase UUID");
        page_req("tap_list", "groups_after", UUID_OK, NO_MTU);
        BAD(pages[0], "groups_after: unknown field");
}
END_TEST

static Suite *schema_suite(void)
{
        Suite *s = suite_create("schema");
        TCase *tc;

        tc = tcase_create("netctl");
        tcase_add_test(tc, test_tap_create_valid);
        tcase_add_test(tc, test_tap_create_missing);
        tcase_add_test(tc, test_tap_create_datapath);
        tcase_add_test(tc, test_unknown_field);
        tcase_add_test(tc, test_wrong_types);
        tcase_add_test(tc, test_mtu_bounds);
        tcase_add_test(tc, test_port_uuid_syntax);
        tcase_add_test(tc, test_mac_syntax);
        tcase_add_test(tc, test_not_an_object);
        tcase_add_test(tc, test_page_schemas);
        tcase_add_test(tc, test_err_buffer);
        tcase_add_test(tc, test_module_protocol_find);
        tcase_add_test(tc, test_libvirt_storage_schemas);
        suite_add_tcase(s, tc);

        tc = tcase_create("local");
        tcase_add_test(tc, test_list_counts);
        tcase_add_test(tc, test_list_items);
        tcase_add_test(tc, test_list_of_objects);
        tcase_add_test(tc, test_nested_object);
        tcase_add_test(tc, test_strings_and_bools);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(schema_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
