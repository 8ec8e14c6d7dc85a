/* test-ovs-lifecycle.c - instances with their ports on a real Open vSwitch:
 * a private ovsdb-server + ovs-vswitchd (userspace datapath) in this test's
 * network namespace, the core with network-control, openvswitch and libvirt
 * (test:///default). OVS state is read with ovs-vsctl, never through the
 * module; taps through netlink. */
#include "harness.h"

#include "apiclient.h"
#include "names.h"

#include <check.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static struct core core;
static struct ovs_fixture ovs;

static void msleep(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static void start_core(const char *extra)
{
        char lines[8192];

        (void)snprintf(lines, sizeof(lines),
                       "plugs = network-control libvirt openvswitch\nlibvirt_uri = test:///default\n"
                       "vif_type = ovs\novsdb_socket = unix:%s\nintegration_bridge = br-int\n"
                       "bridge_datapath_type = netdev\nmodule_timeout_ms = 5000\nport_timeout_ms = 5000\n%s",
                       ovs.db_sock, extra ? extra : "bridge_create = true\n");
        core_start(&core, lines);
        ck_assert_int_gt(core_wait_module_running(&core, "network-control", 0, 5000), 0);
        ck_assert_int_gt(core_wait_module_running(&core, "libvirt", 0, 5000), 0);
        ck_assert_int_gt(core_wait_module_running(&core, "openvswitch", 0, 5000), 0);
}

static void setup(void)
{
        memset(&core, 0, sizeof(core));
        memset(&ovs, 0, sizeof(ovs));
        unsetenv("NOVA_TEST_FAULT_STEP");
        ck_assert_int_eq(ovs_fixture_start(&ovs), 0);
}

static void teardown(void)
{
        core_stop(&core);
        ovs_fixture_stop(&ovs);
}

static const char *jget(struct json_object *o, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : NULL;
}

static int bridge_ports(char ***ret, size_t *ret_n)
{
        char *out = NULL, *save = NULL;
        size_t n = 0;
        char **names = calloc(512, sizeof(char *));

        if (ovs_vsctl(&ovs, &out, "list-ports", "br-int", NULL) < 0) {
                free(names);
                return -EIO;
        }
        for (char *line = strtok_r(out, "\n", &save); line && n < 512; line = strtok_r(NULL, "\n", &save))
                names[n++] = strdup(line);
        free(out);
        *ret = names;
        *ret_n = n;
        return 0;
}

static void free_names(char **names, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

static bool on_bridge(const char *name)
{
        char **names;
        size_t n;
        bool found = false;

        ck_assert_int_eq(bridge_ports(&names, &n), 0);
        for (size_t i = 0; i < n; i++)
                found |= streq(names[i], name);
        free_names(names, n);
        return found;
}

static int boot(const char *name, const char *ports, int *ret_status)
{
        struct json_object *resp = NULL;
        char body[1024];

        (void)snprintf(body, sizeof(body), "{\"name\":\"%s\",\"ports\":%s}", name, ports);
        *ret_status = core_api(&core, "POST", "/v1/instances?wait=1", body, &resp);
        json_object_put(resp);
        return *ret_status;
}

START_TEST(test_boot_plugs_port_with_external_ids)
{
        char port[37], ports[256], tap[IFNAME_MAX], *out = NULL, want[512];
        struct json_object *resp = NULL, *inst;
        struct link_facts f;
        int status;

        start_core(NULL);
        random_port_uuid(port);
        ck_assert_int_eq(tap_name_from_port(port, tap), 0);
        (void)snprintf(ports, sizeof(ports), "[{\"port_uuid\":\"%s\",\"mac\":\"fa:16:3e:aa:bb:cc\",\"mtu\":1450}]",
                       port);
        ck_assert_int_eq(boot("ovs1", ports, &status), 200);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/instances/ovs1", NULL, &inst), 200);

        ck_assert(on_bridge(tap));
        ck_assert_int_eq(ovs_vsctl(&ovs, &out, "get", "Interface", tap, "ofport", NULL), 0);
        ck_assert_int_gt(atoi(out), 0);
        free(out);
        ck_assert_int_eq(ovs_vsctl(&ovs, &out, "get", "Interface", tap, "mtu_request", NULL), 0);
        ck_assert_str_eq(out, "1450");
        free(out);
        /* Exactly what os-vif and libvirt write, plus our mark. */
        ck_assert_int_eq(ovs_vsctl(&ovs, &out, "get", "Interface", tap, "external_ids", NULL), 0);
        (void)snprintf(want, sizeof(want),
                       "{attached-mac=\"fa:16:3e:aa:bb:cc\", iface-id=\"%s\", iface-status=active, "
                       "nova-hypervisor-port=\"%s\", vm-id=\"%s\", vm-uuid=\"%s\"}",
                       port, port, jget(inst, "uuid"), jget(inst, "uuid"));
        ck_assert_str_eq(out, want);
        free(out);
        ck_assert_int_eq(link_facts_get(tap, &f), 0);

        ck_assert_int_eq(core_api(&core, "GET", "/v1/vifs", NULL, &resp), 200);
        ck_assert_ptr_nonnull(strstr(json_object_to_json_string(resp), "\"instance_name\": \"ovs1\""));
        json_object_put(resp);

        ck_assert_int_eq(core_api(&core, "DELETE", "/v1/instances/ovs1?wait=1", NULL, &resp), 200);
        json_object_put(resp);
        json_object_put(inst);
        ck_assert(!on_bridge(tap));
        ck_assert_int_eq(link_facts_get(tap, &f), -ENOENT);
}
END_TEST

START_TEST(test_missing_bridge_rolls_back_the_taps)
{
        char port[37], ports[128], tap[IFNAME_MAX];
        struct link_facts f;
        int status;

        start_core("bridge_create = false\n"); /* and no bridge exists */
        random_port_uuid(port);
        ck_assert_int_eq(tap_name_from_port(port, tap), 0);
        (void)snprintf(ports, sizeof(ports), "[{\"port_uuid\":\"%s\"}]", port);
        ck_assert_int_ge(boot("nobridge", ports, &status), 400);
        ck_assert_int_eq(link_facts_get(tap, &f), -ENOENT);
        ck_assert_int_ne(ovs_vsctl(&ovs, NULL, "br-exists", "br-int", NULL), 0);
}
END_TEST

START_TEST(test_failure_after_ovs_rolls_back_ovs_port)
{
        char port[37], ports[128], tap[IFNAME_MAX];
        struct link_facts f;
        int status;

        setenv("NOVA_TEST_FAULT_STEP", "define", 1);
        start_core(NULL);
        random_port_uuid(port);
        ck_assert_int_eq(tap_name_from_port(port, tap), 0);
        (void)snprintf(ports, sizeof(ports), "[{\"port_uuid\":\"%s\"}]", port);
        ck_assert_int_eq(boot("doomed", ports, &status), 500);
        ck_assert(!on_bridge(tap));
        ck_assert_int_eq(link_facts_get(tap, &f), -ENOENT);
        unsetenv("NOVA_TEST_FAULT_STEP");
}
END_TEST

START_TEST(test_openvswitch_plug_missing)
{
        struct json_object *resp = NULL, *e;
        int status;

        start_core(NULL);
        ck_assert_int_eq(core_api(&core, "POST", "/v1/plugs/openvswitch/disconnect", NULL, &resp), 200);
        json_object_put(resp);
        ck_assert_int_eq(core_api(&core, "POST", "/v1/instances?wait=1", "{\"name\":\"x\",\"ports\":[{}]}", &resp), 503);
        ck_assert(json_object_object_get_ex(resp, "error", &e));
        ck_assert_str_eq(jget(e, "plug"), "openvswitch");
        ck_assert_str_eq(jget(e, "fix"), "sudo snap connect nova-hypervisor:openvswitch");
        json_object_put(resp);
        (void)status;
}
END_TEST

START_TEST(test_ovsdb_restart_mid_run)
{
        struct json_object *resp = NULL;
        int status = 0;

        start_core(NULL);
        ck_assert_int_eq(boot("before", "[{}]", &status), 200);
        ck_assert_int_eq(ovs_fixture_restart_ovsdb(&ovs), 0);
        /* The module reconnects by itself; once it has, requests go through. */
        for (int t = 0; t < 300; t++) {
                int s = core_api(&core, "GET", "/v1/vifs", NULL, &resp);
                json_object_put(resp);
                if (s == 200)
                        break;
                msleep(10);
        }
        ck_assert_int_eq(boot("after", "[{}]", &status), 200);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/vifs", NULL, &resp), 200);
        ck_assert_int_eq(json_object_get_int(json_object_object_get(resp, "total")), 2);
        json_object_put(resp);
        /* Leave nothing for the tests that share this namespace. */
        ck_assert_int_eq(core_api(&core, "DELETE", "/v1/instances/before?wait=1", NULL, &resp), 200);
        json_object_put(resp);
        ck_assert_int_eq(core_api(&core, "DELETE", "/v1/instances/after?wait=1", NULL, &resp), 200);
        json_object_put(resp);
}
END_TEST

/* A tap and an OVS port deleted behind the service's back, with no module
 * restarting afterwards: the periodic reconcile puts both back (found by the
 * chaos suite: before it, nothing noticed until some module restarted). */
START_TEST(test_port_deleted_behind_our_back_comes_back)
{
        struct json_object *resp = NULL, *ports;
        char tap[IFNAME_MAX];
        struct link_facts f;
        int status = 0, waited;
        pid_t netctl, ovsmod;

        start_core("bridge_create = true\nreconcile_interval_s = 1\n");
        ck_assert_int_eq(boot("victim", "[{}]", &status), 200);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/instances/victim", NULL, &resp), 200);
        ck_assert(json_object_object_get_ex(resp, "ports", &ports));
        ck_assert_int_eq(tap_name_from_port(jget(json_object_array_get_idx(ports, 0), "port_uuid"), tap), 0);
        json_object_put(resp);
        ck_assert(on_bridge(tap));
        netctl = core_module_pid(&core, "network-control");
        ovsmod = core_module_pid(&core, "openvswitch");
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "del-port", "br-int", tap, NULL), 0);
        ck_assert_int_eq(sh("ip link del %s", tap), 0);
        ck_assert_int_ne(link_facts_get(tap, &f), 0);
        for (waited = 0; waited < 10000; waited += 50) {
                if (link_facts_get(tap, &f) == 0 && on_bridge(tap))
                        break;
                msleep(50);
        }
        ck_assert_msg(waited < 10000, "tap %s %s, %s on br-int after 10 s", tap,
                      link_facts_get(tap, &f) == 0 ? "back" : "still gone", on_bridge(tap) ? "back" : "not");
        /* repaired by the core's pass, not by a restart */
        ck_assert_int_eq(core_module_pid(&core, "network-control"), netctl);
        ck_assert_int_eq(core_module_pid(&core, "openvswitch"), ovsmod);
        ck_assert_int_eq(core_api(&core, "DELETE", "/v1/instances/victim?wait=1", NULL, &resp), 200);
        json_object_put(resp);
}
END_TEST

/* The child of pid named comm (from /proc), 0 when none. */
static pid_t child_named(pid_t parent, const char *comm)
{
        _cleanup_free_ char *out = sh_out("ps -o pid= -o comm= --ppid %ld", (long)parent);
        char *save = NULL;

        for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                long pid;
                char name[64];
                if (sscanf(l, "%ld %63s", &pid, name) == 2 && streq(name, comm))
                        return (pid_t)pid;
        }
        return 0;
}

/* A module answers a request it got while running after its plug was
 * disconnected (the stop not delivered yet): the call completes. The chaos
 * suite saw the core take that answer for "reply before hello", fail the boot
 * as a protocol violation and leave the OVS port the module had made. Made
 * deterministic here: ovs-vswitchd frozen holds port_add (it waits for an
 * ofport), the spawner frozen holds the stop. */
START_TEST(test_reply_after_disconnect_completes_the_call)
{
        struct json_object *resp = NULL;
        pid_t spawner;
        int fd, st = 0, t;

        start_core(NULL);
        spawner = child_named(core.pid, "nova-spawner");
        ck_assert_int_gt(spawner, 0);
        ck_assert_int_eq(kill(ovs.vswitchd_pid, SIGSTOP), 0);
        fd = api_send_request(core.socket, "POST", "/v1/instances?wait=1", "{\"name\":\"late\",\"ports\":[{}]}");
        ck_assert_int_ge(fd, 0);
        /* port_add is in: its row is in the database (ovsdb-server answers), no ofport yet */
        for (t = 0; t < 500; t++) {
                char **names;
                size_t n;
                bool found = false;
                ck_assert_int_eq(bridge_ports(&names, &n), 0);
                for (size_t i = 0; i < n; i++)
                        found |= strncmp(names[i], "tap", 3) == 0;
                free_names(names, n);
                if (found)
                        break;
                msleep(10);
        }
        ck_assert_int_lt(t, 500);
        ck_assert_int_eq(kill(spawner, SIGSTOP), 0);
        ck_assert_int_eq(core_api(&core, "POST", "/v1/plugs/openvswitch/disconnect", NULL, &resp), 200);
        json_object_put(resp);
        ck_assert_int_eq(kill(ovs.vswitchd_pid, SIGCONT), 0);
        st = api_read_response(fd, 30000, &resp);
        close(fd);
        ck_assert_msg(st == 200, "boot answered %d: %s (core log %s)", st, json_object_to_json_string(resp), core.log);
        json_object_put(resp);
        ck_assert_int_eq(kill(spawner, SIGCONT), 0);
        ck_assert(!file_contains(core.log, "reply before hello"));
        ck_assert_int_eq(core_api(&core, "POST", "/v1/plugs/openvswitch/connect", NULL, &resp), 200);
        json_object_put(resp);
        ck_assert_int_gt(core_wait_module_running(&core, "openvswitch", 0, 10000), 0);
        ck_assert_int_eq(core_api(&core, "DELETE", "/v1/instances/late?wait=1", NULL, &resp), 200);
        json_object_put(resp);
}
END_TEST

START_TEST(test_core_killed_with_50_instances)
{
        struct json_object *resp = NULL, *list;
        char **names;
        size_t n;
        int fds[50];

        start_core(NULL);
        for (int i = 0; i < 50; i++) {
                char body[96];
                (void)snprintf(body, sizeof(body), "{\"name\":\"k%02d\",\"ports\":[{}]}", i);
                fds[i] = api_send_request(core.socket, "POST", "/v1/instances?wait=1", body);
                ck_assert_int_ge(fds[i], 0);
        }
        for (int i = 0; i < 50; i++) {
                ck_assert_int_eq(api_read_response(fds[i], 60000, &resp), 200);
                json_object_put(resp);
                close(fds[i]);
        }
        ck_assert_int_eq(bridge_ports(&names, &n), 0);
        ck_assert_uint_eq(n, 50);
        free_names(names, n);

        /* SIGKILL: no goodbye. The spawner stops the modules when the core's channel closes. */
        ck_assert_int_eq(kill(core.pid, SIGKILL), 0);
        ck_assert_int_eq(waitpid(core.pid, NULL, 0), core.pid);
        core.pid = 0;
        start_core(NULL);
        for (int t = 0; t < 600; t++) {
                int busy = 0, running = 0;
                ck_assert_int_eq(core_api(&core, "GET", "/v1/instances", NULL, &resp), 200);
                list = json_object_object_get(resp, "instances");
                for (size_t i = 0; i < json_object_array_length(list); i++) {
                        struct json_object *inst = json_object_array_get_idx(list, i);
                        busy += jget(inst, "task") != NULL;
                        running += streq(jget(inst, "power_state"), "running");
                }
                json_object_put(resp);
                if (!busy && running == 50)
                        break;
                msleep(50);
        }
        /* Nothing lost, leaked or duplicated: 50 instances, 50 distinct ports, 50 domains. */
        ck_assert_int_eq(core_api(&core, "GET", "/v1/instances", NULL, &resp), 200);
        ck_assert_int_eq((int)json_object_array_length(json_object_object_get(resp, "instances")), 50);
        json_object_put(resp);
        ck_assert_int_eq(bridge_ports(&names, &n), 0);
        ck_assert_uint_eq(n, 50);
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < i; j++)
                        ck_assert_str_ne(names[i], names[j]);
        free_names(names, n);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/domains", NULL, &resp), 200);
        ck_assert_int_eq(json_object_get_int(json_object_object_get(resp, "total")), 50);
        json_object_put(resp);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/status", NULL, &resp), 200);
        struct json_object *rec = json_object_object_get(resp, "reconcile");
        ck_assert_int_eq(json_object_get_int(json_object_object_get(rec, "orphan_vifs")), 0);
        ck_assert_int_eq(json_object_get_int(json_object_object_get(rec, "orphan_taps")), 0);
        json_object_put(resp);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("ovs-lifecycle");
        TCase *tc = tcase_create("ovs");
        SRunner *sr;
        int failed;

        harness_enter_netns("test-ovs-lifecycle");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 180);
        tcase_add_test(tc, test_boot_plugs_port_with_external_ids);
        tcase_add_test(tc, test_missing_bridge_rolls_back_the_taps);
        tcase_add_test(tc, test_failure_after_ovs_rolls_back_ovs_port);
        tcase_add_test(tc, test_openvswitch_plug_missing);
        tcase_add_test(tc, test_ovsdb_restart_mid_run);
        tcase_add_test(tc, test_core_killed_with_50_instances);
        tcase_add_test(tc, test_port_deleted_behind_our_back_comes_back);
        tcase_add_test(tc, test_reply_after_disconnect_completes_the_call);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
