/* test-names.c - unit tests for src/lib/names.c: identifier syntax and the
 * derivation of device names from port UUIDs. */
#include <check.h>
#include <net/if.h>

#include "names.h"

#define UUID_OK "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

START_TEST(test_uuid_is_valid)
{
        static const char *const good[] = {
                UUID_OK,
                "00000000-0000-0000-0000-000000000000",
                "ffffffff-ffff-ffff-ffff-ffffffffffff",
                "0123abcd-4567-89ef-0123-456789abcdef",
        };
        static const char *const bad[] = {
                "",
                "3F2504E0-4F89-41D3-9A0C-0305E82C3301",
                "3f2504e0-4f89-41d3-9a0c-0305e82c330F",
                "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}",
                "3f2504e0-4f89-41d3-9a0c-0305e82c330",
                "3f2504e0-4f89-41d3-9a0c-0305e82c33011",
                "3f2504e04f8941d39a0c0305e82c3301",
                "3f2504e0-4f89-41d3-9a0c0305e82c3301-",
                "3f2504e-04f89-41d3-9a0c-0305e82c3301",
                "3f2504e0-4f89-41d3-9a0c-0305e82c330g",
                "3f2504e0 4f89 41d3 9a0c 0305e82c3301",
                "../../etc/passwd",
                "------------------------------------",
                "3f2504e0-4f89-41d3-9a0c-0305e82c3301\n",
        };

        for (size_t i = 0; i < ARRAY_SIZE(good); i++)
                ck_assert_msg(uuid_is_valid(good[i]), "'%s' refused", good[i]);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                ck_assert_msg(!uuid_is_valid(bad[i]), "'%s' accepted", bad[i]);
        ck_assert(!uuid_is_valid(NULL));
}
END_TEST

START_TEST(test_instance_name_is_valid)
{
        static const char *const good[] = {
                "a", "web-1", "db_2.example", "A0", "x-_.", "0start",
                "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk", /* 63 */
        };
        static const char *const bad[] = {
                "", "-lead", ".lead", "with space", "slash/", "../up", "tab\t", "new\nline", "ümlaut",
                "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl", /* 64 */
        };

        for (size_t i = 0; i < ARRAY_SIZE(good); i++)
                ck_assert_msg(instance_name_is_valid(good[i]), "'%s' refused", good[i]);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                ck_assert_msg(!instance_name_is_valid(bad[i]), "'%s' accepted", bad[i]);
        ck_assert_uint_eq(strlen(good[ARRAY_SIZE(good) - 1]), INSTANCE_NAME_MAX);
}
END_TEST

START_TEST(test_ovn_chassis_name_is_valid)
{
        static const char *const good[] = {
                "host-a", "compute-1.example.org", "6d3c8b5e-2f1a-4c4b-9a57-0d2e1c3b4a59", "a", "x_y:z",
                "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl", /* 64 */
        };
        static const char *const bad[] = {
                "", "-lead", "with space", "comma,list", "quote'", "semi;colon", "slash/", "new\nline", "ümlaut",
                "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm", /* 65 */
        };

        for (size_t i = 0; i < ARRAY_SIZE(good); i++)
                ck_assert_msg(ovn_chassis_name_is_valid(good[i]), "'%s' refused", good[i]);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                ck_assert_msg(!ovn_chassis_name_is_valid(bad[i]), "'%s' accepted", bad[i]);
        ck_assert(!ovn_chassis_name_is_valid(NULL));
        ck_assert_uint_eq(strlen(good[ARRAY_SIZE(good) - 1]), OVN_CHASSIS_MAX);
}
END_TEST

START_TEST(test_mac_parse_format)
{
        static const char *const good[] = {
                "fa:16:3e:12:34:56", "02:00:00:00:00:01", "00:00:00:00:00:01", "fc:ff:ff:ff:ff:ff",
                "fa:16:3e:00:00:00", "0a:1b:2c:3d:4e:5f",
        };
        static const char *const bad[] = {
                "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "fb:16:3e:12:34:56", "00:00:00:00:00:00",
                "FA:16:3E:12:34:56", "fa-16-3e-12-34-56", "fa16.3e12.3456", "fa163e123456",
                "fa:16:3e:12:34:5", "fa:16:3e:12:34:567", "fa:16:3e:12:34:56:", "fa:16:3e:12:34:5g",
                "fa:16:3e:12:34", "", "fa:16:3e:12:34:56\n", "fe:16:3e:12:34:56", "fe:ff:ff:ff:ff:ff",
        };
        uint8_t mac[6], back[6];
        char text[MAC_STR_LEN + 1];

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                ck_assert_msg(mac_parse(good[i], mac) == 0, "'%s' refused", good[i]);
                ck_assert(mac_is_valid(good[i]));
                memset(text, 'Q', sizeof(text));
                mac_format(mac, text);
                ck_assert_str_eq(text, good[i]);
                ck_assert_int_eq(mac_parse(text, back), 0);
                ck_assert_mem_eq(mac, back, 6);
        }
        ck_assert_int_eq(mac_parse("fa:16:3e:12:34:56", mac), 0);
        ck_assert_uint_eq(mac[0], 0xfa);
        ck_assert_uint_eq(mac[1], 0x16);
        ck_assert_uint_eq(mac[2], 0x3e);
        ck_assert_uint_eq(mac[3], 0x12);
        ck_assert_uint_eq(mac[4], 0x34);
        ck_assert_uint_eq(mac[5], 0x56);

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                memset(mac, 0xaa, sizeof(mac));
                ck_assert_msg(mac_parse(bad[i], mac) == -EINVAL, "'%s' accepted", bad[i]);
                ck_assert(!mac_is_valid(bad[i]));
                for (int k = 0; k < 6; k++)
                        ck_assert_uint_eq(mac[k], 0xaa); /* untouched on failure */
        }
        ck_assert_int_eq(mac_parse(NULL, mac), -EINVAL);
        ck_assert(!mac_is_valid(NULL));

        /* every byte value formats as two lowercase digits and parses back */
        for (int v = 0; v < 256; v++) {
                uint8_t m[6] = { 0x02, (uint8_t)v, (uint8_t)v, 0, (uint8_t)(255 - v), (uint8_t)v };
                mac_format(m, text);
                ck_assert_uint_eq(strlen(text), MAC_STR_LEN);
                ck_assert_int_eq(mac_parse(text, back), 0);
                ck_assert_mem_eq(m, back, 6);
        }
}
END_TEST

START_TEST(test_tap_name_from_port)
{
        char name[IFNAME_MAX];

        memset(name, 'Q', sizeof(name));
        ck_assert_int_eq(tap_name_from_port(UUID_OK, name), 0);
        ck_assert_str_eq(name, "tap3f2504e0-4f");
        ck_assert_uint_eq(strlen(name), 14);
        ck_assert_uint_lt(strlen(name), IFNAMSIZ);
        ck_assert_int_eq(strncmp(name, "tap", 3), 0);
        ck_assert_int_eq(strncmp(name + 3, UUID_OK, 11), 0);
        ck_assert(port_dev_name_is_ours(TAP_PREFIX, name));

        ck_assert_int_eq(tap_name_from_port("00000000-0000-0000-0000-000000000000", name), 0);
        ck_assert_str_eq(name, "tap00000000-00");

        memset(name, 'Q', sizeof(name));
        ck_assert_int_eq(tap_name_from_port("3F2504E0-4F89-41D3-9A0C-0305E82C3301", name), -EINVAL);
        ck_assert_int_eq(tap_name_from_port("../../etc/passwd", name), -EINVAL);
        ck_assert_int_eq(tap_name_from_port("", name), -EINVAL);
        ck_assert_int_eq(tap_name_from_port(NULL, name), -EINVAL);
        ck_assert_uint_eq((uint8_t)name[0], 'Q'); /* untouched on failure */
}
END_TEST

START_TEST(test_port_dev_name)
{
        static const char *const prefixes[] = { "qbr", "qvb", "qvo", "tap" };
        char name[IFNAME_MAX], want[IFNAME_MAX];

        for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
                ck_assert_int_eq(port_dev_name(prefixes[i], UUID_OK, name), 0);
                (void)snprintf(want, sizeof(want), "%s3f2504e0-4f", prefixes[i]);
                ck_assert_str_eq(name, want);
                ck_assert_uint_lt(strlen(name), IFNAMSIZ);
                ck_assert(port_dev_name_is_ours(prefixes[i], name));
                for (size_t j = 0; j < ARRAY_SIZE(prefixes); j++)
                        if (j != i)
                                ck_assert(!port_dev_name_is_ours(prefixes[j], name));
        }
        /* a 4-char prefix still fits IFNAMSIZ (15 chars) */
        ck_assert_int_eq(port_dev_name("veth", UUID_OK, name), 0);
        ck_assert_str_eq(name, "veth3f2504e0-4f");
        ck_assert_uint_eq(strlen(name), IFNAMSIZ - 1);
        ck_assert(port_dev_name_is_ours("veth", name));

        memset(name, 'Q', sizeof(name));
        ck_assert_int_eq(port_dev_name("qvbxy", UUID_OK, name), -EINVAL);
        ck_assert_int_eq(port_dev_name("averylongprefix", UUID_OK, name), -EINVAL);
        ck_assert_int_eq(port_dev_name("", UUID_OK, name), -EINVAL);
        ck_assert_int_eq(port_dev_name("qbr", "not-a-uuid", name), -EINVAL);
        ck_assert_int_eq(port_dev_name("qbr", "3F2504E0-4F89-41D3-9A0C-0305E82C3301", name), -EINVAL);
        ck_assert_uint_eq((uint8_t)name[0], 'Q');
}
END_TEST

START_TEST(test_port_dev_name_is_ours)
{
        static const char *const not_ours[] = {
                "tap0",
                "tapABCDEF12-34",
                "tap3F2504E0-4f",
                "eth0",
                "lo",
                "",
                "tap",
                "tap3f2504e0-4f8",  /* 12 chars after the prefix */
                "tap3f2504e0-4",    /* 10 chars */
                "tap3f2504e04f89",  /* no dash */
                "tap3f2504e-04f",   /* dash misplaced */
                "tap3f2504e0_4f",
                "tap3f2504e0-4g",
                "qbr3f2504e0-4f",   /* another prefix */
                "xtap3f2504e0-4",
                "TAP3f2504e0-4f",
                "tap3f2504e0-4f\n",
        };

        ck_assert(port_dev_name_is_ours("tap", "tap3f2504e0-4f"));
        ck_assert(port_dev_name_is_ours("tap", "tap00000000-00"));
        ck_assert(port_dev_name_is_ours("tap", "tapffffffff-ff"));
        for (size_t i = 0; i < ARRAY_SIZE(not_ours); i++)
                ck_assert_msg(!port_dev_name_is_ours("tap", not_ours[i]), "'%s' taken as ours", not_ours[i]);
        ck_assert(!port_dev_name_is_ours("qvo", "tap3f2504e0-4f"));
        ck_assert(!port_dev_name_is_ours("tap", "tap3f2504e0-4f89-41d3-9a0c-0305e82c3301"));
}
END_TEST

/* Regression: port_dev_name_is_ours() measures the
 * name with strnlen(name, IFNAME_MAX), so for a 5-char prefix (which
 * port_dev_name() refuses) any name of 16 or more chars whose first 16 have
 * the right shape is taken as ours. Names that are not valid interface names
 * (>= IFNAMSIZ) must never be "ours". */
START_TEST(test_bug_is_ours_long_name)
{
        char name[IFNAME_MAX];

        ck_assert_int_eq(port_dev_name("abcde", UUID_OK, name), -EINVAL);
        ck_assert(!port_dev_name_is_ours("abcde", "abcde3f2504e0-4f"));
        ck_assert(!port_dev_name_is_ours("abcde", "abcde3f2504e0-4f-and-more"));
}
END_TEST

static bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

START_TEST(test_uuid_generate)
{
        char prev[UUID_STR_LEN + 1] = "";

        for (int i = 0; i < 200; i++) {
                char u[UUID_STR_LEN + 1];

                memset(u, 'Q', sizeof(u));
                ck_assert_int_eq(uuid_new_str(u), 0);
                ck_assert_uint_eq(strlen(u), UUID_STR_LEN);
                ck_assert_msg(uuid_is_valid(u), "'%s' is not a valid UUID", u);
                ck_assert_msg(u[14] == '4', "'%s': version nibble is not 4", u);
                ck_assert_msg(u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b',
                              "'%s': variant nibble is not 8..b", u);
                for (int k = 0; k < UUID_STR_LEN; k++)
                        ck_assert(k == 8 || k == 13 || k == 18 || k == 23 ? u[k] == '-' : is_lower_hex(u[k]));
                ck_assert_str_ne(u, prev);
                memcpy(prev, u, sizeof(u));
        }
}
END_TEST

START_TEST(test_mac_generate)
{
        char prev[MAC_STR_LEN + 1] = "";
        int differ = 0;

        for (int i = 0; i < 200; i++) {
                char m[MAC_STR_LEN + 1];
                uint8_t b[6];

                memset(m, 'Q', sizeof(m));
                ck_assert_int_eq(mac_generate(m), 0);
                ck_assert_uint_eq(strlen(m), MAC_STR_LEN);
                ck_assert_msg(strncmp(m, "fa:16:3e:", 9) == 0, "'%s' lacks the fa:16:3e prefix", m);
                ck_assert_msg(mac_is_valid(m), "'%s' is not a valid unicast MAC", m);
                ck_assert_int_eq(mac_parse(m, b), 0);
                ck_assert_uint_eq(b[0] & 1, 0); /* unicast */
                ck_assert_uint_eq(b[0] & 2, 2); /* locally administered */
                differ += strcmp(m, prev) != 0;
                memcpy(prev, m, sizeof(m));
        }
        /* 24 random bits: a repeat of the previous value is possible but rare */
        ck_assert_int_ge(differ, 195);
}
END_TEST

static Suite *names_suite(void)
{
        Suite *s = suite_create("names");
        TCase *tc;

        tc = tcase_create("syntax");
        tcase_add_test(tc, test_uuid_is_valid);
        tcase_add_test(tc, test_mac_parse_format);
        suite_add_tcase(s, tc);

        tc = tcase_create("derivation");
        tcase_add_test(tc, test_tap_name_from_port);
        tcase_add_test(tc, test_port_dev_name);
        tcase_add_test(tc, test_port_dev_name_is_ours);
        suite_add_tcase(s, tc);

        tc = tcase_create("generate");
        tcase_add_test(tc, test_uuid_generate);
        tcase_add_test(tc, test_mac_generate);
        tcase_add_test(tc, test_instance_name_is_valid);
        tcase_add_test(tc, test_ovn_chassis_name_is_valid);
        suite_add_tcase(s, tc);

        tc = tcase_create("regressions");
        tcase_add_test(tc, test_bug_is_ours_long_name);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(names_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
