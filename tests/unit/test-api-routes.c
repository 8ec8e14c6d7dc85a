/* test-api-routes.c - the API's route table: the pattern matcher, and the
 * shape of every resource table (src/core/api*.c). */
#include <check.h>

#include "api-internal.h"

static const struct api_route *const tables[] = {
        api_status_routes, api_port_routes, api_instance_routes, api_secgroup_routes,
};

static bool match(const char *pattern, const char *path, struct api_args *a)
{
        static char buf[API_MAX_ARGS][HTTP_PATH_MAX];
        return api_route_match(pattern, path, buf, a);
}

START_TEST(test_literal)
{
        struct api_args a;

        ck_assert(match("/v1/status", "/v1/status", &a));
        ck_assert_ptr_null(a.arg[0]);
        ck_assert(!match("/v1/status", "/v1/statu", &a));
        ck_assert(!match("/v1/status", "/v1/statuss", &a));
        ck_assert(!match("/v1/status", "/v1/status/", &a));
        ck_assert(!match("/v1/status", "/v1", &a));
        ck_assert(!match("/v1/status", "", &a));
        ck_assert(!match("/v1/status", "v1/status", &a));
        ck_assert(!match("/metrics", "/v1/metrics", &a));
}
END_TEST

START_TEST(test_segment_capture)
{
        struct api_args a;

        ck_assert(match("/v1/instances/{id}/pin", "/v1/instances/web-1/pin", &a));
        ck_assert_str_eq(a.arg[0], "web-1");
        ck_assert_ptr_null(a.arg[1]);
        /* an empty segment is captured (the handler says what it names: nothing) */
        ck_assert(match("/v1/ports/{port}", "/v1/ports/", &a));
        ck_assert_str_eq(a.arg[0], "");
        /* one segment only */
        ck_assert(!match("/v1/ports/{port}", "/v1/ports/a/b", &a));
        ck_assert(!match("/v1/ports/{port}", "/v1/ports", &a));
        ck_assert(!match("/v1/instances/{id}/pin", "/v1/instances/x/stop", &a));
        ck_assert(match("/v1/plugs/{plug}/connect", "/v1/plugs/libvirt/connect", &a));
        ck_assert_str_eq(a.arg[0], "libvirt");
}
END_TEST

START_TEST(test_rest_capture)
{
        struct api_args a;

        ck_assert(match("/v1/secgroup-rules/*", "/v1/secgroup-rules/abc", &a));
        ck_assert_str_eq(a.arg[0], "abc");
        ck_assert(match("/v1/secgroup-rules/*", "/v1/secgroup-rules/a/b/c", &a));
        ck_assert_str_eq(a.arg[0], "a/b/c");
        ck_assert(match("/v1/secgroup-rules/*", "/v1/secgroup-rules/", &a));
        ck_assert_str_eq(a.arg[0], "");
        ck_assert(!match("/v1/secgroup-rules/*", "/v1/secgroup-rules", &a));
        ck_assert(!match("/v1/secgroup-rules/*", "/v1/secgroups/x", &a));
}
END_TEST

START_TEST(test_long_path)
{
        char path[HTTP_PATH_MAX];
        struct api_args a;

        memset(path, 'x', sizeof(path) - 1);
        path[sizeof(path) - 1] = '\0';
        memcpy(path, "/v1/stats/", 10);
        ck_assert(match("/v1/stats/*", path, &a));
        ck_assert_uint_eq(strlen(a.arg[0]), sizeof(path) - 11);
}
END_TEST

/* Every row: a pattern from the root, a "*" only as the last segment, at most
 * API_MAX_ARGS captures, a handler; no row repeats an earlier one; a fallback
 * row (any method) follows a row of the same prefix, so it backs something up. */
START_TEST(test_tables_well_formed)
{
        size_t rows = 0;

        for (size_t t = 0; t < ARRAY_SIZE(tables); t++)
                for (const struct api_route *r = tables[t]; r->pattern; r++, rows++) {
                        const char *star = strchr(r->pattern, '*');
                        size_t captures = 0;

                        ck_assert_msg(r->pattern[0] == '/', "%s", r->pattern);
                        ck_assert_ptr_nonnull(r->handler);
                        ck_assert_msg(!star || (star[1] == '\0' && star[-1] == '/'), "%s", r->pattern);
                        for (const char *p = r->pattern; *p; p++)
                                captures += *p == '{' || *p == '*';
                        ck_assert_msg(captures <= API_MAX_ARGS, "%s", r->pattern);
                        ck_assert_msg(!r->method || streq(r->method, "GET") || streq(r->method, "POST") ||
                                              streq(r->method, "PUT") || streq(r->method, "DELETE"),
                                      "%s %s", r->method, r->pattern);
                        for (size_t u = 0; u <= t; u++)
                                for (const struct api_route *q = tables[u]; q->pattern && q != r; q++)
                                        ck_assert_msg(!(streq(q->pattern, r->pattern) &&
                                                        ((!q->method && !r->method) ||
                                                         (q->method && r->method && streq(q->method, r->method)))),
                                                      "%s %s twice", r->method ? r->method : "*", r->pattern);
                        if (!r->method)
                                ck_assert_msg(r != tables[t], "fallback %s backs up nothing", r->pattern);
                }
        ck_assert_uint_ge(rows, 30);
}
END_TEST

static Suite *routes_suite(void)
{
        Suite *s = suite_create("api-routes");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_literal);
        tcase_add_test(tc, test_segment_capture);
        tcase_add_test(tc, test_rest_capture);
        tcase_add_test(tc, test_long_path);
        tcase_add_test(tc, test_tables_well_formed);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(routes_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
