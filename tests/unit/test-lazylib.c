/* test-lazylib.c - lazylib_load_all(): libraries loaded on request fill their
 * slots completely or not at all, say why they cannot, and a slot called
 * before its library is loaded aborts instead of running anything. libm.so.6
 * stands in for a lazily linked library (it is on every glibc system). */
#include "lazylib.h"

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>

#define N 2

static const char *const good_names[N] = { "cos", "sqrt" };
static const char *const bad_names[N] = { "cos", "nova_no_such_function" };
static void *slots_a[N], *slots_b[N];

static void reset(void)
{
        for (int i = 0; i < N; i++)
                slots_a[i] = slots_b[i] = (void *)lazylib_unloaded;
}

START_TEST(test_loads_and_fills_every_slot)
{
        const struct lazylib table[] = { { "libm.so.6", good_names, slots_a, N } };
        double (*sqrt_fn)(double);
        char err[256] = "";
        void *h;

        reset();
        ck_assert(!lazylib_loaded(table, 1));
        ck_assert_int_eq(lazylib_load_all(table, 1, err, sizeof(err)), 0);
        ck_assert(lazylib_loaded(table, 1));
        h = dlopen("libm.so.6", RTLD_NOW | RTLD_NOLOAD);
        ck_assert_ptr_nonnull(h);
        ck_assert_ptr_eq(slots_a[0], dlsym(h, "cos"));
        ck_assert_ptr_eq(slots_a[1], dlsym(h, "sqrt"));
        sqrt_fn = (double (*)(double))slots_a[1];
        ck_assert_double_eq(sqrt_fn(16.0), 4.0);
        /* a second call keeps what is there */
        ck_assert_int_eq(lazylib_load_all(table, 1, err, sizeof(err)), 0);
        ck_assert_ptr_eq(slots_a[1], dlsym(h, "sqrt"));
        dlclose(h);
}
END_TEST

START_TEST(test_missing_library_changes_nothing)
{
        const struct lazylib table[] = { { "libnova-no-such-library.so.0", good_names, slots_a, N } };
        char err[256] = "";

        reset();
        ck_assert_int_eq(lazylib_load_all(table, 1, err, sizeof(err)), -ENOENT);
        ck_assert_msg(strstr(err, "cannot load libnova-no-such-library.so.0: "), "%s", err);
        ck_assert_ptr_eq(slots_a[0], (void *)lazylib_unloaded);
        ck_assert_ptr_eq(slots_a[1], (void *)lazylib_unloaded);
        ck_assert(!lazylib_loaded(table, 1));
}
END_TEST

/* One function missing: none of that library's slots is filled (not a half-loaded library);
 * a library before it in the table stays loaded. */
START_TEST(test_missing_function_fills_nothing_of_its_library)
{
        const struct lazylib table[] = { { "libm.so.6", good_names, slots_a, N },
                                         { "libm.so.6", bad_names, slots_b, N } };
        char err[256] = "";

        reset();
        ck_assert_int_eq(lazylib_load_all(table, 2, err, sizeof(err)), -ENOENT);
        ck_assert_str_eq(err, "libm.so.6 has no function nova_no_such_function");
        ck_assert_ptr_ne(slots_a[0], (void *)lazylib_unloaded);
        ck_assert_ptr_eq(slots_b[0], (void *)lazylib_unloaded); /* cos exists, but not filled */
        ck_assert_ptr_eq(slots_b[1], (void *)lazylib_unloaded);
        ck_assert(lazylib_loaded(table, 1));
        ck_assert(!lazylib_loaded(table, 2));
}
END_TEST

/* A slot not filled leads to an abort, never into anything else. */
START_TEST(test_unfilled_slot_aborts)
{
        void (*fn)(void);

        reset();
        fn = (void (*)(void))slots_a[0];
        fn();
}
END_TEST

int main(void)
{
        Suite *s = suite_create("lazylib");
        TCase *tc = tcase_create("load");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_loads_and_fills_every_slot);
        tcase_add_test(tc, test_missing_library_changes_nothing);
        tcase_add_test(tc, test_missing_function_fills_nothing_of_its_library);
        tcase_add_test_raise_signal(tc, test_unfilled_slot_aborts, SIGABRT);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
