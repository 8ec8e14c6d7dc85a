/* test-store-io.c - the core's store writes under I/O errors, through the API
 * (issue 20, item 5), against the real core, nova-network-control (taps in a
 * private network namespace, checked through netlink) and nova-libvirt on
 * libvirt's test:///default driver. The state dir is a real tmpfs of 256 KiB
 * mounted in a private mount namespace of the test (the core inherits it):
 * filling it gives ENOSPC, remounting it read-only gives EROFS.
 *
 * Every write path the API drives is tried while the store cannot be written:
 * boot, delete, stop, start, reboot, security group create/delete, rule
 * add/delete, port set, plug connect/disconnect. Each must answer the errno's
 * status with a message naming it, and leave the state dir byte for byte as
 * it was, the core's answers (list, show, secgroups, status) as they were, and
 * the kernel's taps and libvirt's domains as they were. Then, space back, the
 * same requests work. */
#include "harness.h"

#include "apiclient.h"
#include "fw-protocol.h"
#include "names.h"
#include "statefs.h"
#include "tmpdir.h"

#include <check.h>
#include <sys/stat.h>
#include <unistd.h>

#define PLUGS "plugs = network-control libvirt\nlibvirt_uri = test:///default\nvif_type = tap\nmodule_timeout_ms = 3000\n"
#define TMPFS_SIZE "256k"

static struct core core;
static struct statefs statefs;

/* The core's dir, with its state dir on a small tmpfs in the test's own mount namespace. */
static void state_on_tmpfs(void)
{
        char dir[PATH_MAX];
        int r = statefs_private_namespace();

        ck_assert_msg(r == 0, "private mount namespace: %s", strerror(-r));
        ck_assert_int_eq(test_tmpdir_make("nova-it", core.dir, sizeof(core.dir)), 0);
        ck_assert_int_eq(xsnprintf(dir, sizeof(dir), "%s/state", core.dir), 0);
        ck_assert_int_eq(mkdir(dir, 0700), 0);
        ck_assert_int_eq(statefs_mount(&statefs, dir, TMPFS_SIZE), 0);
}

static void setup(void)
{
        memset(&core, 0, sizeof(core));
        state_on_tmpfs();
        core_start(&core, PLUGS);
        ck_assert_int_gt(core_wait_module_running(&core, "network-control", 0, 5000), 0);
        ck_assert_int_gt(core_wait_module_running(&core, "libvirt", 0, 5000), 0);
}

static void teardown(void)
{
        core_stop(&core);
        statefs_umount(&statefs);
}

static void fill(void) { ck_assert_int_eq(statefs_fill(&statefs), 0); }
static void unfill(void) { ck_assert_int_eq(statefs_unfill(&statefs), 0); }
static void remount(bool read_only) { ck_assert_int_eq(statefs_remount(&statefs, read_only), 0); }

/* What can be seen: the state dir's bytes, and the API's answers (volatile
 * fields such as uptime left out: only instances, groups and plugs). */
static char *world(void)
{
        static char buf[3][262144];
        static int next;
        char *b = buf[next++ % 3];
        struct json_object *resp = NULL, *v;
        static const char *const gets[] = { "/v1/instances", "/v1/secgroups", "/v1/ports", "/v1/domains" };
        size_t len;

        b[0] = '\0';
        ck_assert_int_eq(statefs_snapshot(statefs.dir, b, sizeof(buf[0])), 0);
        for (size_t i = 0; i < ARRAY_SIZE(gets); i++) {
                int got = core_api(&core, "GET", gets[i], NULL, &resp);
                ck_assert_msg(got == 200, "GET %s: %d %s", gets[i], got, resp ? json_object_to_json_string(resp) : "");
                len = strlen(b);
                (void)snprintf(b + len, sizeof(buf[0]) - len, "%s %s\n", gets[i], json_object_to_json_string(resp));
                json_object_put(resp);
        }
        ck_assert_int_eq(core_api(&core, "GET", "/v1/status", NULL, &resp), 200);
        ck_assert(json_object_object_get_ex(resp, "plugs", &v));
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                struct json_object *p = json_object_array_get_idx(v, i), *name, *conn;
                ck_assert(json_object_object_get_ex(p, "plug", &name));
                ck_assert(json_object_object_get_ex(p, "connected", &conn));
                len = strlen(b);
                (void)snprintf(b + len, sizeof(buf[0]) - len, "plug %s %d\n", json_object_get_string(name),
                               json_object_get_boolean(conn));
        }
        json_object_put(resp);
        ck_assert_uint_lt(strlen(b), sizeof(buf[0]) - 1);
        return b;
}

static const char *jstr(struct json_object *o, const char *k1, const char *k2)
{
        struct json_object *v;

        if (!json_object_object_get_ex(o, k1, &v))
                return NULL;
        if (k2 && !json_object_object_get_ex(v, k2, &v))
                return NULL;
        return json_object_get_string(v);
}

/* The request fails with status and a message containing reason. */
static void expect_error(const char *method, const char *path, const char *body, int status, const char *reason)
{
        struct json_object *resp = NULL;
        int got = core_api(&core, method, path, body, &resp);
        const char *msg = resp ? jstr(resp, "error", "message") : NULL;

        ck_assert_msg(got == status, "%s %s: %d, want %d (%s)", method, path, got, status, msg ? msg : "no message");
        ck_assert_msg(msg && strstr(msg, reason), "%s %s: message '%s' does not say '%s'", method, path,
                      msg ? msg : "", reason);
        json_object_put(resp);
}

static void expect_ok(const char *method, const char *path, const char *body, struct json_object **ret)
{
        struct json_object *resp = NULL;
        int got = core_api(&core, method, path, body, &resp);

        ck_assert_msg(got >= 200 && got < 300, "%s %s: %d (%s)", method, path, got,
                      resp ? json_object_to_json_string(resp) : "");
        if (ret)
                *ret = resp;
        else
                json_object_put(resp);
}

/* _i: 0 full (ENOSPC, 507), 1 read-only (EROFS, 500). */
START_TEST(test_every_write_under_io_error)
{
        const char *reason = _i == 0 ? "No space left on device" : "Read-only file system";
        int status = _i == 0 ? 507 : 500;
        char port[37], body[512], path[256], rule_id[37], *before, *after;
        struct json_object *resp = NULL;
        struct link_facts f;
        char tap[IFNAME_MAX];
        int links;
        pid_t libvirt_pid;

        /* a world to keep: one instance with a port in group web, which has a rule */
        expect_ok("POST", "/v1/secgroups", "{\"name\":\"web\"}", NULL);
        expect_ok("POST", "/v1/secgroups/web/rules", "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":80,\"port_range_max\":80}", &resp);
        ck_assert_int_eq(strscpy(rule_id, jstr(resp, "result", "id") ? jstr(resp, "result", "id") : "", sizeof(rule_id)), 0);
        json_object_put(resp);
        random_port_uuid(port);
        (void)snprintf(body, sizeof(body),
                       "{\"name\":\"keep\",\"vcpus\":1,\"memory_mb\":64,\"ports\":[{\"port_uuid\":\"%s\"}]}", port);
        expect_ok("POST", "/v1/instances?wait=1", body, NULL);
        ck_assert_int_eq(tap_name_from_port(port, tap), 0);
        ck_assert_int_eq(link_facts_get(tap, &f), 0);
        links = link_count();

        if (_i == 0)
                fill();
        else
                remount(true);
        before = world();

        expect_error("POST", "/v1/instances?wait=1", "{\"name\":\"new\",\"vcpus\":1,\"memory_mb\":64,\"ports\":[{}]}",
                     status, reason);
        expect_error("POST", "/v1/instances", "{\"name\":\"new\",\"vcpus\":1,\"memory_mb\":64,\"ports\":[{}]}", status,
                     reason);
        expect_error("DELETE", "/v1/instances/keep?wait=1", NULL, status, reason);
        expect_error("DELETE", "/v1/instances/keep", NULL, status, reason);
        expect_error("POST", "/v1/instances/keep/stop?wait=1", NULL, status, reason);
        expect_error("POST", "/v1/instances/keep/reboot", NULL, status, reason);
        expect_error("POST", "/v1/secgroups", "{\"name\":\"db\"}", status, reason);
        expect_error("POST", "/v1/secgroups/web/rules", "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":443,\"port_range_max\":443}",
                     status, reason);
        (void)snprintf(path, sizeof(path), "/v1/secgroup-rules/%s", rule_id);
        expect_error("DELETE", path, NULL, status, reason);
        (void)snprintf(path, sizeof(path), "/v1/ports/%s/secgroups", port);
        expect_error("PUT", path, "{\"secgroups\":[\"web\"]}", status, reason);
        expect_error("POST", "/v1/plugs/libvirt/disconnect", NULL, status, reason);

        after = world();
        ck_assert_msg(streq(after, before), "the world changed:\n--- before\n%.4000s\n--- after\n%.4000s", before, after);
        ck_assert_int_eq(link_facts_get(tap, &f), 0);
        ck_assert_int_eq(link_count(), links); /* nothing was created */
        libvirt_pid = core_module_pid(&core, "libvirt");
        ck_assert_int_gt(libvirt_pid, 0);

        /* space back: the same requests work */
        if (_i == 0)
                unfill();
        else
                remount(false);
        expect_ok("POST", "/v1/instances?wait=1", "{\"name\":\"new\",\"vcpus\":1,\"memory_mb\":64,\"ports\":[{}]}", NULL);
        expect_ok("POST", "/v1/instances/keep/stop?wait=1", NULL, &resp);
        ck_assert_str_eq(jstr(resp, "vm_state", NULL), "stopped");
        json_object_put(resp);
        expect_ok("POST", "/v1/secgroups", "{\"name\":\"db\"}", NULL);
        expect_ok("POST", "/v1/secgroups/web/rules", "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":443,\"port_range_max\":443}", NULL);
        expect_ok("PUT", path, "{\"secgroups\":[\"web\"]}", NULL);
        (void)snprintf(path, sizeof(path), "/v1/secgroup-rules/%s", rule_id);
        expect_ok("DELETE", path, NULL, NULL);
        expect_ok("DELETE", "/v1/instances/keep?wait=1", NULL, NULL);
        ck_assert_int_eq(link_facts_get(tap, &f), -ENOENT);
        ck_assert_msg(!streq(world(), before), "the requests that work again changed nothing");
        expect_ok("POST", "/v1/plugs/libvirt/disconnect", NULL, NULL);
        ck_assert(wait_process_gone(libvirt_pid, 5000));
        ck_assert_int_eq(core_api(&core, "GET", "/v1/status", NULL, &resp), 200);
        ck_assert_str_eq(jstr(resp, "core", "unsaved_records"), "0");
        json_object_put(resp);
        ck_assert(process_alive(core.pid));
}
END_TEST

/* ---- with the firewall: the kernel follows the store ---- */

static struct ovs_fixture ovs;

static void setup_fw(void)
{
        char lines[8192];

        memset(&core, 0, sizeof(core));
        memset(&ovs, 0, sizeof(ovs));
        ck_assert_int_eq(ovs_fixture_start(&ovs), 0);
        state_on_tmpfs();
        ck_assert_int_eq(xsnprintf(lines, sizeof(lines),
                       "plugs = network-control libvirt openvswitch firewall-control\nlibvirt_uri = test:///default\n"
                       "vif_type = ovs\novsdb_socket = unix:%s\nintegration_bridge = br-int\nbridge_datapath_type = netdev\n"
                       "bridge_create = true\nmodule_timeout_ms = 5000\nport_timeout_ms = 5000\n",
                       ovs.db_sock), 0);
        core_start(&core, lines);
        ck_assert_int_gt(core_wait_module_running(&core, "firewall-control", 0, 5000), 0);
        ck_assert_int_gt(core_wait_module_running(&core, "openvswitch", 0, 5000), 0);
        ck_assert_int_gt(core_wait_module_running(&core, "libvirt", 0, 5000), 0);
}

static void teardown_fw(void)
{
        teardown();
        ovs_fixture_stop(&ovs);
        (void)sh("nft delete table inet " FW_TABLE "; nft delete table bridge " FW_TABLE);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Our nftables tables as the kernel lists them, in a canonical form: each line
 * as "<table> <chain> <n>: <line>", sorted, so that a chain created again (the
 * kernel lists chains in creation order) compares equal while a rule moved,
 * added or lost does not. */
static char *ruleset(void)
{
        _cleanup_free_ char *text = sh_out("nft list table inet " FW_TABLE " 2>&1; nft list table bridge " FW_TABLE " 2>&1");
        char table[128] = "", chain[160] = "", *save = NULL, **lines = NULL, *out;
        size_t n = 0, cap = 0, len = 0, at = 0;

        for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                const char *t = l + strspn(l, "\t ");
                char buf[512];
                if (streq(t, "}"))
                        continue; /* the end of a chain or table: which one depends on the order */
                if (strncmp(t, "table ", 6) == 0) {
                        (void)snprintf(table, sizeof(table), "%.120s", t);
                        chain[0] = '\0';
                        at = 0;
                } else if (strncmp(t, "chain ", 6) == 0 || strncmp(t, "set ", 4) == 0) {
                        (void)snprintf(chain, sizeof(chain), "%.150s", t);
                        at = 0;
                }
                (void)snprintf(buf, sizeof(buf), "%s %s %04zu: %s", table, chain, at++, t);
                if (n == cap) {
                        cap = cap ? 2 * cap : 64;
                        lines = realloc(lines, cap * sizeof(*lines));
                        ck_assert_ptr_nonnull(lines);
                }
                lines[n] = strdup(buf);
                ck_assert_ptr_nonnull(lines[n]);
                len += strlen(buf) + 1;
                n++;
        }
        qsort(lines, n, sizeof(*lines), cmp_str);
        out = calloc(1, len + 1);
        ck_assert_ptr_nonnull(out);
        len = 0;
        for (size_t i = 0; i < n; i++) {
                size_t k = strlen(lines[i]);
                memcpy(out + len, lines[i], k);
                out[len + k] = '\n';
                len += k + 1;
                free(lines[i]);
        }
        free(lines);
        return out;
}

/* The kernel's ruleset comes back to want within 5 s (a change the store
 * refused is taken back by a sync). */
static bool ruleset_back_to(const char *want)
{
        for (int i = 0; i < 100; i++) {
                _cleanup_free_ char *now = ruleset();
                if (streq(now, want))
                        return true;
                sleep_ms(50);
        }
        return false;
}

/* Rule add, rule delete and port set go to the kernel first: when the store
 * then cannot be written, the API says why and the kernel's rules are taken
 * back to what the store says. */
START_TEST(test_firewall_follows_store_on_full_disk)
{
        char port[37], body[512], path[256], rule_id[37], *before;
        struct json_object *resp = NULL;
        _cleanup_free_ char *rules_before = NULL, *rules_after = NULL;

        expect_ok("POST", "/v1/secgroups", "{\"name\":\"web\"}", NULL);
        expect_ok("POST", "/v1/secgroups/web/rules",
                  "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":80,\"port_range_max\":80}", &resp);
        ck_assert_int_eq(strscpy(rule_id, jstr(resp, "result", "id") ? jstr(resp, "result", "id") : "", sizeof(rule_id)), 0);
        json_object_put(resp);
        random_port_uuid(port);
        (void)snprintf(body, sizeof(body),
                       "{\"name\":\"keep\",\"vcpus\":1,\"memory_mb\":64,\"ports\":[{\"port_uuid\":\"%s\",\"secgroups\":[\"web\"]}]}",
                       port);
        expect_ok("POST", "/v1/instances?wait=1", body, NULL);
        rules_before = ruleset();
        ck_assert_msg(strstr(rules_before, "dport 80"), "no rule for port 80 in:\n%s", rules_before);

        fill();
        before = world();
        expect_error("POST", "/v1/secgroups/web/rules",
                     "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":443,\"port_range_max\":443}", 507,
                     "No space left on device");
        ck_assert_msg(ruleset_back_to(rules_before), "the kernel kept a rule the store refused");
        (void)snprintf(path, sizeof(path), "/v1/secgroup-rules/%s", rule_id);
        expect_error("DELETE", path, NULL, 507, "No space left on device");
        ck_assert_msg(ruleset_back_to(rules_before), "the kernel lost a rule the store kept");
        (void)snprintf(path, sizeof(path), "/v1/ports/%s/secgroups", port);
        expect_error("PUT", path, "{\"secgroups\":[\"default\"]}", 507, "No space left on device");
        ck_assert_msg(ruleset_back_to(rules_before), "the kernel changed the port's groups the store kept");
        ck_assert_msg(streq(world(), before), "the store or the API's answers changed");

        unfill();
        expect_ok("POST", "/v1/secgroups/web/rules",
                  "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":443,\"port_range_max\":443}", NULL);
        rules_after = ruleset();
        ck_assert_msg(strstr(rules_after, "dport 443"), "no rule for port 443 in:\n%s", rules_after);
        expect_ok("DELETE", "/v1/instances/keep?wait=1", NULL, NULL);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("store-io");
        TCase *tc = tcase_create("tmpfs"), *fw = tcase_create("firewall");
        SRunner *sr;
        int failed;

        harness_enter_netns("test-store-io");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, test_every_write_under_io_error, 0, 2);
        suite_add_tcase(s, tc);
        tcase_add_checked_fixture(fw, setup_fw, teardown_fw);
        tcase_set_timeout(fw, 120);
        tcase_add_test(fw, test_firewall_follows_store_on_full_disk);
        suite_add_tcase(s, fw);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
