/* test-health.c - health_compute(): what the core reports with snapctl set-health. */
#include "health.h"

#include <check.h>

static void all_running(struct module_status st[_PLUG_MAX])
{
        memset(st, 0, sizeof(struct module_status) * _PLUG_MAX);
        for (int i = 0; i < _PLUG_MAX; i++) {
                st[i].plug = (enum plug_id)i;
                st[i].connected = true;
                st[i].state = MOD_RUNNING;
        }
}

START_TEST(test_okay)
{
        struct module_status st[_PLUG_MAX];
        char msg[HEALTH_MESSAGE_MAX + 1] = "x";

        all_running(st);
        ck_assert_int_eq(health_compute(st, true, msg, sizeof(msg)), HEALTH_OKAY);
        ck_assert_str_eq(msg, "");
        /* Optional plugs may be disconnected. */
        st[PLUG_FIREWALL_CONTROL].connected = false;
        st[PLUG_FIREWALL_CONTROL].state = MOD_OFF;
        st[PLUG_HARDWARE_OBSERVE].connected = false;
        st[PLUG_HARDWARE_OBSERVE].state = MOD_OFF;
        ck_assert_int_eq(health_compute(st, true, msg, sizeof(msg)), HEALTH_OKAY);
        /* openvswitch is needed only when ports go on OVS. */
        st[PLUG_OPENVSWITCH].connected = false;
        st[PLUG_OPENVSWITCH].state = MOD_OFF;
        ck_assert_int_eq(health_compute(st, false, msg, sizeof(msg)), HEALTH_OKAY);
        ck_assert_int_eq(health_compute(st, true, msg, sizeof(msg)), HEALTH_WAITING);
        ck_assert_str_eq(msg, "waiting for plugs: openvswitch");
        ck_assert_str_eq(health_status_name(HEALTH_WAITING), "waiting");
}
END_TEST

START_TEST(test_waiting_names_plugs_then_modules)
{
        struct module_status st[_PLUG_MAX];
        char msg[HEALTH_MESSAGE_MAX + 1];

        all_running(st);
        st[PLUG_LIBVIRT].connected = false;
        st[PLUG_LIBVIRT].state = MOD_OFF;
        st[PLUG_NETWORK_CONTROL].connected = false;
        st[PLUG_NETWORK_CONTROL].state = MOD_OFF;
        st[PLUG_SYSTEM_OBSERVE].state = MOD_STARTING;
        ck_assert_int_eq(health_compute(st, true, msg, sizeof(msg)), HEALTH_WAITING);
        ck_assert_str_eq(msg, "waiting for plugs: libvirt, network-control");
        st[PLUG_LIBVIRT].connected = st[PLUG_NETWORK_CONTROL].connected = true;
        st[PLUG_LIBVIRT].state = MOD_STARTING;
        ck_assert_int_eq(health_compute(st, true, msg, sizeof(msg)), HEALTH_WAITING);
        ck_assert_str_eq(msg, "waiting for modules: libvirt, network-control, system-observe");
}
END_TEST

START_TEST(test_error_names_failed_modules_and_fits_snapd)
{
        struct module_status st[_PLUG_MAX];
        char msg[HEALTH_MESSAGE_MAX + 1];

        all_running(st);
        st[PLUG_FIREWALL_CONTROL].state = MOD_STARTING;
        (void)strscpy(st[PLUG_FIREWALL_CONTROL].last_error, "exited with status 1", sizeof(st[0].last_error));
        st[PLUG_LIBVIRT].connected = false; /* errors win over waiting */
        ck_assert_int_eq(health_compute(st, true, msg, sizeof(msg)), HEALTH_ERROR);
        ck_assert_str_eq(msg, "module failed: firewall-control");
        for (int i = 0; i < _PLUG_MAX; i++)
                st[i].state = MOD_BACKOFF;
        st[PLUG_LIBVIRT].connected = true;
        ck_assert_int_eq(health_compute(st, true, msg, sizeof(msg)), HEALTH_ERROR);
        ck_assert_uint_le(strlen(msg), HEALTH_MESSAGE_MAX);
        ck_assert_uint_ge(strlen(msg), 7);
        ck_assert_ptr_nonnull(strstr(msg, "..."));
}
END_TEST

int main(void)
{
        Suite *s = suite_create("health");
        TCase *tc = tcase_create("compute");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_okay);
        tcase_add_test(tc, test_waiting_names_plugs_then_modules);
        tcase_add_test(tc, test_error_names_failed_modules_and_fits_snapd);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
