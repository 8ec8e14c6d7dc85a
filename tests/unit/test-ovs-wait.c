/* test-ovs-wait.c - unit tests for ovs_wait_deadline() (ovs-protocol.c): how
 * long a port_add waits for its ofports while ovs-vswitchd works through the
 * ports it was given (issue 22: 1000 concurrent filtered boots failed when a
 * port waited longer than a fixed port_timeout_ms behind the others). */
#include <check.h>
#include <stdlib.h>

#include "ovs-protocol.h"

#define T 5000 /* port_timeout_ms */

/* No ofport seen yet, or the last one before the request came: the plain
 * timeout from the arrival. */
START_TEST(test_stalled_switch_keeps_the_plain_timeout)
{
        ck_assert_int_eq(ovs_wait_deadline(1000, 0, 0, T), 1000 + T);
        ck_assert_int_eq(ovs_wait_deadline(1000, 400, 0, T), 1000 + T);
        ck_assert_int_eq(ovs_wait_deadline(1000, 1000, 0, T), 1000 + T);
}
END_TEST

/* A switch that keeps assigning ofports to other ports keeps the wait going:
 * port_timeout_ms after the last one it assigned. */
START_TEST(test_progress_extends_the_wait)
{
        ck_assert_int_eq(ovs_wait_deadline(1000, 5900, 0, T), 5900 + T);
        ck_assert_int_eq(ovs_wait_deadline(1000, 20000, 0, T), 20000 + T);
}
END_TEST

/* Never longer than OVS_WAIT_SCALE_MAX times port_timeout_ms from the arrival,
 * whatever the progress. */
START_TEST(test_the_wait_is_bounded)
{
        long long cap = 1000 + (long long)OVS_WAIT_SCALE_MAX * T;

        ck_assert_int_eq(ovs_wait_deadline(1000, cap, 0, T), cap);
        ck_assert_int_eq(ovs_wait_deadline(1000, cap - T + 1, 0, T), cap);
        ck_assert_int_eq(ovs_wait_deadline(1000, cap - T - 1, 0, T), cap - 1);
        ck_assert_int_eq(ovs_wait_deadline(1000, 10LL * cap, 0, T), cap);
        /* the configuration's largest timeout does not overflow */
        ck_assert_int_eq(ovs_wait_deadline(0, 0, 0, 60000), 60000);
        ck_assert_int_eq(ovs_wait_deadline(0, 1LL << 40, 0, 60000), (long long)OVS_WAIT_SCALE_MAX * 60000);
}
END_TEST

/* The window follows what the switch takes lately: three times its recent
 * commit-to-ofport time when that is longer than port_timeout_ms (a pass over
 * a thousand ports on a loaded host takes seconds), still bounded. */
START_TEST(test_window_follows_the_switch)
{
        long long cap = 1000 + (long long)OVS_WAIT_SCALE_MAX * T;

        ck_assert_int_eq(ovs_wait_deadline(1000, 0, 1000, T), 1000 + T); /* fast switch: the plain window */
        ck_assert_int_eq(ovs_wait_deadline(1000, 0, 7000, T), 1000 + 21000);
        ck_assert_int_eq(ovs_wait_deadline(1000, 9000, 7000, T), 9000 + 21000);
        ck_assert_int_eq(ovs_wait_deadline(1000, 9000, 40000, T), cap);
        ck_assert_int_eq(ovs_wait_deadline(1000, 0, 1LL << 60, T), cap); /* no overflow */
        ck_assert_int_eq(ovs_wait_deadline(1000, 0, -5, T), 1000 + T);
}
END_TEST

/* The running figure rises at once and falls slowly. */
START_TEST(test_recent_figure)
{
        ck_assert_int_eq(ovs_wait_recent(0, 40), 40);
        ck_assert_int_eq(ovs_wait_recent(40, 6000), 6000);
        ck_assert_int_eq(ovs_wait_recent(6000, 2000), 5500);
        ck_assert_int_eq(ovs_wait_recent(5500, 5500), 5500);
        ck_assert_int_eq(ovs_wait_recent(5500, -3), 5500 - 5500 / 8);
        long long r = 8000;
        for (int i = 0; i < 200; i++)
                r = ovs_wait_recent(r, 10);
        ck_assert_int_le(r, 20);
}
END_TEST

static Suite *ovs_wait_suite(void)
{
        Suite *s = suite_create("ovs-wait");
        TCase *tc = tcase_create("deadline");

        tcase_add_test(tc, test_stalled_switch_keeps_the_plain_timeout);
        tcase_add_test(tc, test_progress_extends_the_wait);
        tcase_add_test(tc, test_the_wait_is_bounded);
        tcase_add_test(tc, test_window_follows_the_switch);
        tcase_add_test(tc, test_recent_figure);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(ovs_wait_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
