/* test-snapconfig.c - src/lib/snapconfig.c: the snap's configuration
 * (`snapctl get -d`, a JSON object) to the core's config file text. */
#include <check.h>

#include "snapconfig.h"

static int convert(const char *json, char **ret, char *err, size_t errlen)
{
        *ret = NULL;
        err[0] = '\0';
        return snapconfig_to_config(json, strlen(json), ret, err, errlen);
}

START_TEST(test_accepts_sorted_lines)
{
        char *text = NULL, err[256];

        ck_assert_int_eq(convert("{\"vif-type\":\"tap\",\"module-timeout-ms\":5000,\"ovn\":true,"
                                 "\"log-level\":\"\",\"orphan-policy\":null}\n",
                                 &text, err, sizeof(err)), 0);
        /* sorted by key, '-' as '_', "" and null are unset, numbers and booleans as text */
        ck_assert_str_eq(text, "module_timeout_ms = 5000\novn = true\nvif_type = tap\n");
        free(text);
        ck_assert_int_eq(convert("{}", &text, err, sizeof(err)), 0);
        ck_assert_str_eq(text, "");
        free(text);
}
END_TEST

START_TEST(test_refusals_name_the_snap_key)
{
        static const struct {
                const char *json;
                int r;
                const char *err;
        } cases[] = {
                { "{\"state-dir\":\"/x\"}", -EINVAL, "state-dir: fixed inside the snap" },
                { "{\"plugs\":\"libvirt\"}", -EINVAL, "plugs: fixed inside the snap" },
                { "{\"module-timeout-ms\":1.5}", -EINVAL, "module-timeout-ms: must be a whole number" },
                { "{\"module-timeout-ms\":[1]}", -EINVAL, "module-timeout-ms: must be a single value" },
                { "{\"libvirt-uri\":\"a\\nb\"}", -EINVAL, "libvirt-uri: must be one line of text" },
                { "{\"Bad_Key\":1}", -EINVAL, "Bad_Key: not a valid snap configuration key" },
                { "{\"module-timeout-ms\":5}", -EINVAL, "module-timeout-ms: " },
                { "{\"no-such-key\":1}", -EINVAL, "no-such-key: unknown key" },
                { "[1,2]", -EINVAL, "configuration is not a JSON object" },
                { "{} x", -EINVAL, "configuration is not a JSON object" },
                { "{\"a\":", -EINVAL, "configuration is not a JSON object" },
        };
        char *text, err[256];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                ck_assert_int_eq(convert(cases[i].json, &text, err, sizeof(err)), cases[i].r);
                ck_assert_ptr_null(text);
                ck_assert_msg(strncmp(err, cases[i].err, strlen(cases[i].err)) == 0, "%s: %s", cases[i].json, err);
        }
}
END_TEST

START_TEST(test_size_and_nul)
{
        static char big[SNAPCONFIG_MAX_JSON + 2];
        char *text = NULL, err[256];

        memset(big, ' ', sizeof(big) - 1);
        big[0] = '{';
        big[sizeof(big) - 2] = '}';
        ck_assert_int_eq(snapconfig_to_config(big, sizeof(big) - 1, &text, err, sizeof(err)), -EFBIG);
        ck_assert_ptr_null(text);
        ck_assert_int_eq(snapconfig_to_config("{}\0{}", 5, &text, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_null(text);
}
END_TEST

static Suite *snapconfig_suite(void)
{
        Suite *s = suite_create("snapconfig");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_accepts_sorted_lines);
        tcase_add_test(tc, test_refusals_name_the_snap_key);
        tcase_add_test(tc, test_size_and_nul);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(snapconfig_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
