/* test-secgroup-lifecycle.c - security groups end to end through the core: the real
 * nova-compute with network-control, openvswitch, libvirt (test:///default)
 * and firewall-control, a private ovsdb-server/ovs-vswitchd (userspace
 * datapath), all in this test's network namespace.
 *
 * What the core promises, checked from outside it: a port booted while
 * firewall-control is connected is plumbed tap -> qbr -> qvb/qvo with qvo on
 * OVS and its rules in the kernel; without the plug the tap sits on OVS and
 * the API says the port is unfiltered and how to fix it, and connecting the
 * plug re-plumbs and filters it live; group and port changes reach the
 * kernel's chains; bad input changes neither store nor kernel; restarts
 * leave the ruleset as it was; rules nobody owns are removed and rules
 * removed behind our back come back. Facts come from netlink (link_facts),
 * ovs-vsctl and `nft list`, never from the core's own word.
 * (Packet-level filtering through the same plumbing: test-firewall-module.) */
#include "harness.h"

#include "apiclient.h"
#include "fw-protocol.h"
#include "names.h"

#include <check.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static struct core core;
static struct ovs_fixture ovs;

#define PLUGS3 "network-control libvirt openvswitch"
#define PLUGS4 "network-control libvirt openvswitch firewall-control"

static void start_core(const char *plugs)
{
        char lines[8192];

        (void)snprintf(lines, sizeof(lines),
                       "plugs = %s\nlibvirt_uri = test:///default\nvif_type = ovs\novsdb_socket = unix:%s\n"
                       "integration_bridge = br-int\nbridge_datapath_type = netdev\nbridge_create = true\n"
                       "module_timeout_ms = 5000\nport_timeout_ms = 5000\n",
                       plugs, ovs.db_sock);
        core_start(&core, lines);
        ck_assert_int_gt(core_wait_module_running(&core, "network-control", 0, 5000), 0);
        ck_assert_int_gt(core_wait_module_running(&core, "libvirt", 0, 5000), 0);
        ck_assert_int_gt(core_wait_module_running(&core, "openvswitch", 0, 5000), 0);
        if (strstr(plugs, "firewall-control"))
                ck_assert_int_gt(core_wait_module_running(&core, "firewall-control", 0, 5000), 0);
}

static void setup(void)
{
        memset(&core, 0, sizeof(core));
        memset(&ovs, 0, sizeof(ovs));
        ck_assert_int_eq(ovs_fixture_start(&ovs), 0);
}

static void unicast_cleanup(void);

static void teardown(void)
{
        unicast_cleanup();
        core_stop(&core);
        ovs_fixture_stop(&ovs);
        (void)sh("nft delete table inet " FW_TABLE "; nft delete table bridge " FW_TABLE);
}

/* ---- facts from outside the core ---- */

static struct json_object *jget(struct json_object *o, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *jstr(struct json_object *o, const char *key)
{
        struct json_object *v = jget(o, key);
        return v ? json_object_get_string(v) : NULL;
}

static bool on_bridge(const char *name)
{
        _cleanup_free_ char *out = NULL;
        bool found = false;
        char *save = NULL;

        ck_assert_int_eq(ovs_vsctl(&ovs, &out, "list-ports", "br-int", (char *)NULL), 0);
        for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                found |= streq(l, name);
        return found;
}

static bool link_exists(const char *name)
{
        struct link_facts f;
        return link_facts_get(name, &f) == 0;
}

/* The master of a link, from `ip -o link show` ("" when none). */
static void link_master(const char *name, char ret[IFNAME_MAX])
{
        _cleanup_free_ char *out = sh_out("ip -o link show dev %s 2>/dev/null", name);
        const char *m = strstr(out, " master ");

        ret[0] = '\0';
        if (m)
                (void)sscanf(m + 8, "%15s", ret);
}

/* `nft list chain` text of one of our chains ("" when absent). */
static char *chain_text(const char *chain)
{
        return sh_out("nft list chain inet " FW_TABLE " %s 2>/dev/null", chain);
}

static bool chain_exists(const char *chain)
{
        _cleanup_free_ char *t = chain_text(chain);
        return strstr(t, "chain ") != NULL;
}

static size_t ruleset_lines(void)
{
        _cleanup_free_ char *out = sh_out("nft list table inet " FW_TABLE " 2>/dev/null; nft list table bridge " FW_TABLE
                                          " 2>/dev/null");
        size_t n = 0;

        for (char *p = out; *p; p++)
                n += *p == '\n';
        return n;
}

static void port_chain(const char *port, char ret[64])
{
        (void)snprintf(ret, 64, "port-%s", port);
}

/* ---- API helpers ---- */

static int api(const char *method, const char *path, const char *body, struct json_object **ret)
{
        struct json_object *tmp = NULL;
        int st = core_api(&core, method, path, body, ret ? ret : &tmp);
        json_object_put(tmp);
        return st;
}

/* Create a group; its id in ret. */
static void group_create(const char *name, char ret[37])
{
        struct json_object *resp = NULL;
        char body[128];

        (void)snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
        ck_assert_int_eq(api("POST", "/v1/secgroups", body, &resp), 201);
        ck_assert_ptr_nonnull(jstr(resp, "id"));
        memcpy(ret, jstr(resp, "id"), 37);
        json_object_put(resp);
}

static const char *group_id(const char *name, char ret[37])
{
        struct json_object *resp = NULL;
        char path[128];

        (void)snprintf(path, sizeof(path), "/v1/secgroups/%s", name);
        ck_assert_int_eq(api("GET", path, NULL, &resp), 200);
        memcpy(ret, jstr(resp, "id"), 37);
        json_object_put(resp);
        return ret;
}

static int rule_add(const char *group, const char *rule, struct json_object **ret)
{
        char path[128];

        (void)snprintf(path, sizeof(path), "/v1/secgroups/%s/rules", group);
        return api("POST", path, rule, ret);
}

static size_t group_rules(const char *group)
{
        struct json_object *resp = NULL;
        char path[128];
        size_t n;

        (void)snprintf(path, sizeof(path), "/v1/secgroups/%s", group);
        ck_assert_int_eq(api("GET", path, NULL, &resp), 200);
        n = json_object_array_length(jget(resp, "rules"));
        json_object_put(resp);
        return n;
}

/* Boot one instance with one port; groups: JSON list or NULL. Returns the port's API view (put it). */
static struct json_object *boot(const char *name, const char *port, const char *groups)
{
        struct json_object *resp = NULL, *p;
        char body[1024];

        (void)snprintf(body, sizeof(body),
                       "{\"name\":\"%s\",%s%s%s\"ports\":[{\"port_uuid\":\"%s\",\"mac\":\"fa:16:3e:%c%c:%c%c:%c%c\","
                       "\"ips\":[\"10.1.%d.%d\"]}]}",
                       name, groups ? "\"secgroups\":" : "", groups ? groups : "", groups ? "," : "", port, port[0],
                       port[1], port[2], port[3], port[4], port[5], (unsigned char)port[6] % 200,
                       (unsigned char)port[7] % 200 + 2);
        {
                int st = api("POST", "/v1/instances?wait=1", body, &resp);
                ck_assert_msg(st == 200, "boot %s: HTTP %d %s", body, st, json_object_to_json_string(resp));
        }
        p = json_object_get(json_object_array_get_idx(jget(resp, "ports"), 0));
        json_object_put(resp);
        return p;
}

static bool port_filtered(const char *inst)
{
        struct json_object *resp = NULL;
        char path[128];
        bool f;

        (void)snprintf(path, sizeof(path), "/v1/instances/%s", inst);
        ck_assert_int_eq(api("GET", path, NULL, &resp), 200);
        f = json_object_get_boolean(jget(json_object_array_get_idx(jget(resp, "ports"), 0), "filtered"));
        json_object_put(resp);
        return f;
}

static void wait_until(bool (*cond)(const void *), const void *arg, int timeout_ms, const char *what)
{
        for (int t = 0; t < timeout_ms; t += 20) {
                if (cond(arg))
                        return;
                sleep_ms(20);
        }
        ck_abort_msg("timed out waiting for %s (core log: %s)", what, core.log);
}

static bool cond_chain(const void *chain) { return chain_exists(chain); }
static bool cond_no_chain(const void *chain) { return !chain_exists(chain); }
static bool cond_lines(const void *n) { return ruleset_lines() == *(const size_t *)n; }
static bool cond_on_bridge(const void *name) { return on_bridge(name); }

/* The core's firewall sync has completed a pass since it started (GET /v1/status). */
static bool cond_synced(const void *unused)
{
        struct json_object *resp = NULL;
        bool done;

        (void)unused;
        ck_assert_int_eq(api("GET", "/v1/status", NULL, &resp), 200);
        done = json_object_get_int64(jget(jget(resp, "firewall"), "runs")) > 0;
        json_object_put(resp);
        return done;
}

/* ---- tests ---- */

START_TEST(test_boot_filtered_plumbing_and_rules)
{
        char port[37], tap[IFNAME_MAX], qbr[IFNAME_MAX], qvb[IFNAME_MAX], qvo[IFNAME_MAX], master[IFNAME_MAX];
        char chain[64], def[37], sg_out[64];
        struct json_object *p, *resp = NULL;
        struct link_facts f;

        start_core(PLUGS4);
        random_port_uuid(port);
        ck_assert_int_eq(port_dev_name("tap", port, tap), 0);
        ck_assert_int_eq(port_dev_name("qbr", port, qbr), 0);
        ck_assert_int_eq(port_dev_name("qvb", port, qvb), 0);
        ck_assert_int_eq(port_dev_name("qvo", port, qvo), 0);
        p = boot("web1", port, NULL);
        ck_assert(json_object_get_boolean(jget(p, "filtered")));
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(jget(p, "secgroup_names"), 0)), "default");
        json_object_put(p);

        /* the plumbing, as the kernel and OVS report it */
        ck_assert_int_eq(link_facts_get(qbr, &f), 0);
        ck_assert_str_eq(f.kind, "bridge");
        ck_assert_int_eq(link_facts_get(qvo, &f), 0);
        ck_assert_str_eq(f.kind, "veth");
        link_master(tap, master);
        ck_assert_str_eq(master, qbr);
        link_master(qvb, master);
        ck_assert_str_eq(master, qbr);
        ck_assert(on_bridge(qvo));
        ck_assert(!on_bridge(tap));

        /* the rules: the port's chain jumps to the default group's egress chain */
        port_chain(port, chain);
        ck_assert(chain_exists(chain));
        (void)snprintf(sg_out, sizeof(sg_out), "sg-%s-out", group_id("default", def));
        {
                _cleanup_free_ char *t = chain_text(chain);
                ck_assert_msg(strstr(t, sg_out), "port chain does not use the default group:\n%s", t);
        }
        ck_assert(chain_exists(sg_out));

        /* delete: rules, bridge, veths, tap and OVS port all gone */
        ck_assert_int_eq(api("DELETE", "/v1/instances/web1?wait=1", NULL, &resp), 200);
        json_object_put(resp);
        ck_assert(!chain_exists(chain));
        ck_assert(!link_exists(qbr));
        ck_assert(!link_exists(qvb));
        ck_assert(!link_exists(qvo));
        ck_assert(!link_exists(tap));
        ck_assert(!on_bridge(qvo));
}
END_TEST

START_TEST(test_unfiltered_without_plug_then_connect_filters_live)
{
        char port[37], tap[IFNAME_MAX], qvo[IFNAME_MAX], qbr[IFNAME_MAX], chain[64], master[IFNAME_MAX];
        struct json_object *p, *resp = NULL;

        start_core(PLUGS3);
        random_port_uuid(port);
        ck_assert_int_eq(port_dev_name("tap", port, tap), 0);
        ck_assert_int_eq(port_dev_name("qvo", port, qvo), 0);
        ck_assert_int_eq(port_dev_name("qbr", port, qbr), 0);
        p = boot("plain1", port, NULL);
        ck_assert(!json_object_get_boolean(jget(p, "filtered")));
        ck_assert_ptr_nonnull(strstr(jstr(p, "unfiltered_reason"), "firewall-control is not connected"));
        ck_assert_ptr_nonnull(strstr(jstr(p, "fix"), "snap connect nova-hypervisor:firewall-control"));
        json_object_put(p);
        ck_assert(on_bridge(tap));
        ck_assert(!link_exists(qbr));

        /* connect the plug: the instance is re-plumbed and its rules applied */
        ck_assert_int_eq(api("POST", "/v1/plugs/firewall-control/connect", NULL, &resp), 200);
        json_object_put(resp);
        port_chain(port, chain);
        wait_until(cond_chain, chain, 15000, "the port's chain after connecting firewall-control");
        wait_until(cond_on_bridge, qvo, 15000, "qvo on br-int after the re-plumb");
        for (int t = 0; t < 5000 && !port_filtered("plain1"); t += 20)
                sleep_ms(20);
        ck_assert(port_filtered("plain1"));
        ck_assert(!on_bridge(tap));
        link_master(tap, master);
        ck_assert_str_eq(master, qbr);
}
END_TEST

START_TEST(test_group_changes_reach_kernel_bad_input_changes_nothing)
{
        static const char *const bad[] = {
                "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":0,\"port_range_max\":0}",
                "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":1,\"port_range_max\":70000}",
                "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":90,\"port_range_max\":80}",
                "{\"direction\":\"ingress\",\"remote_ip_prefix\":\"10.0.0.0/33\"}",
                "{\"direction\":\"ingress\",\"remote_ip_prefix\":\"garbage\"}",
                "{\"direction\":\"ingress\",\"ethertype\":\"IPv6\",\"remote_ip_prefix\":\"10.0.0.0/8\"}",
                "{\"direction\":\"sideways\"}",
                "{\"direction\":\"ingress\",\"protocol\":\"bogus\"}",
                "{\"direction\":\"ingress\",\"protocol\":\"udp\",\"port_range_min\":53,\"extra\":1}",
                "not json",
        };
        char port[37], web[37], chain[64], sg_in[64], path[PATH_MAX];
        struct json_object *p, *resp = NULL;
        size_t lines, nrules;
        _cleanup_free_ char *store_before = NULL, *store_after = NULL;
        size_t len;

        start_core(PLUGS4);
        group_create("web", web);
        ck_assert_int_eq(rule_add("web", "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":80,"
                                         "\"port_range_max\":80}", NULL), 201);
        random_port_uuid(port);
        p = boot("web2", port, "[\"web\"]");
        ck_assert(json_object_get_boolean(jget(p, "filtered")));
        json_object_put(p);
        (void)snprintf(sg_in, sizeof(sg_in), "sg-%s-in", web);
        {
                _cleanup_free_ char *t = chain_text(sg_in);
                ck_assert_msg(strstr(t, "tcp dport 80"), "rule not in the group's chain:\n%s", t);
        }
        /* a change to the group reaches the chain its port already uses, and the answer says so */
        ck_assert_int_eq(rule_add("web", "{\"direction\":\"ingress\",\"protocol\":\"udp\",\"port_range_min\":53,"
                                         "\"port_range_max\":53,\"remote_ip_prefix\":\"10.2.0.0/16\"}", &resp), 201);
        ck_assert(json_object_get_boolean(jget(resp, "applied")));
        json_object_put(resp);
        {
                _cleanup_free_ char *t = chain_text(sg_in);
                ck_assert_msg(strstr(t, "udp dport 53") && strstr(t, "10.2.0.0/16"), "new rule missing:\n%s", t);
        }

        /* bad input: refused with a reason; store and kernel unchanged */
        lines = ruleset_lines();
        nrules = group_rules("web");
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/state/secgroups.json", core.dir), 0);
        ck_assert_int_eq(read_file_bounded(path, 1 << 22, &store_before, &len), 0);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                int st = rule_add("web", bad[i], &resp);
                ck_assert_msg(st == 400, "%s: HTTP %d", bad[i], st);
                ck_assert_ptr_nonnull(jstr(jget(resp, "error"), "message"));
                json_object_put(resp);
        }
        /* a duplicate rule is a conflict, not a second copy */
        ck_assert_int_eq(rule_add("web", "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":80,"
                                         "\"port_range_max\":80}", NULL), 409);
        /* a port cannot reference more than PORT_MAX_GROUPS groups, nor one that does not exist */
        (void)snprintf(path, sizeof(path), "/v1/ports/%s/secgroups", port);
        ck_assert_int_eq(api("POST", path, "{\"secgroups\":[\"web\",\"web\"]}", NULL), 400);
        ck_assert_int_eq(api("POST", path, "{\"secgroups\":[\"nosuchgroup\"]}", NULL), 404);
        ck_assert_int_eq(api("POST", path, "{\"secgroups\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}", NULL),
                         400);
        /* the group in use cannot be deleted */
        ck_assert_int_eq(api("DELETE", "/v1/secgroups/web", NULL, NULL), 409);
        ck_assert_int_eq(api("DELETE", "/v1/secgroups/default", NULL, NULL), 409);
        ck_assert_uint_eq(group_rules("web"), nrules);
        ck_assert_uint_eq(ruleset_lines(), lines);
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/state/secgroups.json", core.dir), 0);
        ck_assert_int_eq(read_file_bounded(path, 1 << 22, &store_after, &len), 0);
        ck_assert_str_eq(store_before, store_after);

        /* at most SECGROUP_MAX_RULES rules in a group */
        for (int i = 0; i < SECGROUP_MAX_RULES - (int)nrules; i++) {
                char rule[160];
                (void)snprintf(rule, sizeof(rule), "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":%d,"
                                                   "\"port_range_max\":%d}", 1000 + i, 1000 + i);
                ck_assert_int_eq(rule_add("web", rule, NULL), 201);
        }
        ck_assert_int_eq(rule_add("web", "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":9999,"
                                         "\"port_range_max\":9999}", NULL), 409);
        ck_assert_uint_eq(group_rules("web"), SECGROUP_MAX_RULES);
        port_chain(port, chain);
        ck_assert(chain_exists(chain));
}
END_TEST

START_TEST(test_port_set_switches_groups)
{
        char port[37], web[37], def[37], chain[64], sg[64];
        struct json_object *p, *resp = NULL;
        char path[PATH_MAX];

        start_core(PLUGS4);
        group_create("ssh", web);
        random_port_uuid(port);
        p = boot("sw1", port, NULL);
        json_object_put(p);
        port_chain(port, chain);
        (void)snprintf(path, sizeof(path), "/v1/ports/%s/secgroups", port);
        ck_assert_int_eq(api("POST", path, "{\"secgroups\":[\"ssh\"]}", &resp), 200);
        ck_assert(json_object_get_boolean(jget(resp, "applied")));
        json_object_put(resp);
        {
                _cleanup_free_ char *t = chain_text(chain);
                (void)snprintf(sg, sizeof(sg), "sg-%s-out", web);
                ck_assert_msg(strstr(t, sg), "port chain does not jump to the new group:\n%s", t);
                (void)snprintf(sg, sizeof(sg), "sg-%s-out", group_id("default", def));
                ck_assert_msg(!strstr(t, sg), "port chain still jumps to the old group:\n%s", t);
        }
        /* the store has it too */
        ck_assert_int_eq(api("GET", "/v1/instances/sw1", NULL, &resp), 200);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(
                                 jget(json_object_array_get_idx(jget(resp, "ports"), 0), "secgroups"), 0)),
                         web);
        json_object_put(resp);
}
END_TEST

START_TEST(test_restart_keeps_ruleset_and_repairs_drift)
{
        char port[37], port2[37], chain[64], chain2[64], path[PATH_MAX];
        struct json_object *p;
        pid_t fwpid;
        size_t lines;

        start_core(PLUGS4);
        random_port_uuid(port);
        random_port_uuid(port2);
        p = boot("r1", port, NULL);
        json_object_put(p);
        p = boot("r2", port2, NULL);
        json_object_put(p);
        port_chain(port, chain);
        port_chain(port2, chain2);
        lines = ruleset_lines();
        ck_assert_uint_gt(lines, 10);

        /* core restart: same ruleset, nothing duplicated */
        core_stop(&core);
        ck_assert_uint_eq(ruleset_lines(), lines);
        start_core(PLUGS4);
        wait_until(cond_synced, NULL, 10000, "a firewall sync pass after the restart");
        ck_assert_uint_eq(ruleset_lines(), lines);

        /* drift: a port's chain flushed behind our back; the module sees it happen and restores it */
        ck_assert_int_eq(sh("nft flush chain inet " FW_TABLE " %s", chain), 0);
        wait_until(cond_lines, &lines, 10000, "the module to restore the flushed chain");

        /* the same while the module cannot see it (stopped, then killed): the restarted module
         * reads the damage and the core's sync re-applies the port */
        fwpid = core_module_pid(&core, "firewall-control");
        ck_assert_int_gt(fwpid, 0);
        ck_assert_int_eq(kill(fwpid, SIGSTOP), 0);
        ck_assert_int_eq(sh("nft flush chain inet " FW_TABLE " %s", chain), 0);
        ck_assert_uint_lt(ruleset_lines(), lines);
        ck_assert_int_eq(kill(fwpid, SIGKILL), 0);
        ck_assert_int_gt(core_wait_module_running(&core, "firewall-control", fwpid, 10000), 0);
        wait_until(cond_lines, &lines, 10000, "the flushed chain to be re-applied");

        /* a rule slipped into a fixed chain (a bypass for every port) while the module is
         * stopped: the notification waits for it, and it rebuilds the table when it runs again */
        fwpid = core_module_pid(&core, "firewall-control");
        ck_assert_int_gt(fwpid, 0);
        ck_assert_int_eq(kill(fwpid, SIGSTOP), 0);
        ck_assert_int_eq(sh("nft insert rule inet " FW_TABLE " forward accept"), 0);
        ck_assert_uint_eq(ruleset_lines(), lines + 1);
        ck_assert_int_eq(kill(fwpid, SIGCONT), 0);
        wait_until(cond_lines, &lines, 10000, "the table to be rebuilt with every port");
        {
                _cleanup_free_ char *fwd = chain_text("forward");
                ck_assert_msg(!strstr(fwd, "\t\taccept\n"), "the foreign rule survived:\n%s", fwd);
        }
        ck_assert(chain_exists(chain));
        ck_assert(chain_exists(chain2));

        /* rules of a port no instance owns are removed: drop r2 from the store while the core is down */
        core_stop(&core);
        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/state/instances", core.dir), 0);
        {
                _cleanup_free_ char *out = sh_out("grep -l '\"name\":\"r2\"' %s/*.json", path);
                out[strcspn(out, "\n")] = '\0';
                ck_assert_int_eq(unlink(out), 0);
        }
        start_core(PLUGS4);
        wait_until(cond_no_chain, chain2, 10000, "the orphan port's chain to be removed");
        ck_assert(chain_exists(chain));
}
END_TEST

/* ---- unicast through a filtered port (a guest on the real tap) ---- */

#define UNI_MAC "fa:16:3e:5a:5a:01"
#define UNI_VM_IP "10.1.0.5"
#define UNI_REM_IP "10.1.0.9"
static pid_t wire_pid;
static char uni_vm_ns[32], uni_rem_ns[32], uni_rem_dev[IFNAME_MAX];

static void unicast_cleanup(void)
{
        guest_wire_stop(wire_pid);
        wire_pid = 0;
        if (uni_vm_ns[0])
                (void)sh("ip netns del %s; ip netns del %s; ip link del %s", uni_vm_ns, uni_rem_ns, uni_rem_dev);
        uni_vm_ns[0] = '\0';
}

/* Replies to `count` pings from ns to ip, one every 0.2 s. */
static int pings_answered(const char *ns, const char *ip, int count)
{
        _cleanup_free_ char *out = sh_out("ip netns exec %s ping -n -c %d -i 0.2 -W 1 %s 2>&1", ns, count, ip);
        const char *p = strstr(out, " received");
        const char *q = p;

        if (!p)
                return -1;
        while (q > out && q[-1] >= '0' && q[-1] <= '9')
                q--;
        return (int)strtol(q, NULL, 10);
}

/* A TCP SYN from ns reaches ip:port's kernel (accepted or refused) within 1 s. */
static bool tcp_reaches(const char *ns, const char *ip, unsigned port)
{
        return sh("ip netns exec %s /usr/bin/python3 -c \"\n"
                  "import socket,sys\n"
                  "s=socket.socket(); s.settimeout(1.0)\n"
                  "try:\n s.connect(('%s',%u)); sys.exit(0)\n"
                  "except ConnectionRefusedError: sys.exit(0)\n"
                  "except OSError: sys.exit(1)\n\"",
                  ns, ip, port) == 0;
}

START_TEST(test_filtered_port_carries_unicast_both_ways)
{
        char port[37], tap[IFNAME_MAX], web[37], body[1024];
        struct json_object *resp = NULL;
        struct link_facts f;
        int n;

        start_core(PLUGS4);
        group_create("ssh", web);
        ck_assert_int_eq(rule_add("ssh", "{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":22,"
                                         "\"port_range_max\":22}", NULL), 201);
        ck_assert_int_eq(rule_add("ssh", "{\"direction\":\"ingress\",\"protocol\":\"icmp\"}", NULL), 201);
        random_port_uuid(port);
        ck_assert_int_eq(port_dev_name("tap", port, tap), 0);
        (void)snprintf(body, sizeof(body),
                       "{\"name\":\"uni1\",\"secgroups\":[\"ssh\",\"default\"],\"ports\":[{\"port_uuid\":\"%s\","
                       "\"mac\":\"" UNI_MAC "\",\"ips\":[\"" UNI_VM_IP "\"]}]}", port);
        ck_assert_int_eq(api("POST", "/v1/instances?wait=1", body, &resp), 200);
        json_object_put(resp);
        /* the tap is not the guest: fe + the port MAC's last five bytes */
        ck_assert_int_eq(link_facts_get(tap, &f), 0);
        ck_assert_str_eq(f.mac, "fe:16:3e:5a:5a:01");

        /* the guest: eth0 with the port's MAC and IP, wired to the port's tap */
        (void)snprintf(uni_vm_ns, sizeof(uni_vm_ns), "sgvm%d", (int)getpid());
        (void)snprintf(uni_rem_ns, sizeof(uni_rem_ns), "sgrem%d", (int)getpid());
        (void)snprintf(uni_rem_dev, sizeof(uni_rem_dev), "rem%d", (int)getpid() % 100000);
        ck_assert_int_eq(sh("ip netns add %s && ip netns add %s", uni_vm_ns, uni_rem_ns), 0);
        wire_pid = guest_wire_start(tap, uni_vm_ns);
        ck_assert_int_eq(sh("ip netns exec %s sh -c 'ip link set lo up; ip link set eth0 address " UNI_MAC "; "
                            "ip addr add " UNI_VM_IP "/24 dev eth0; ip link set eth0 up'", uni_vm_ns), 0);
        /* a remote host on br-int */
        ck_assert_int_eq(sh("ip link add %s type veth peer name eth0 netns %s && ip link set %s up", uni_rem_dev,
                            uni_rem_ns, uni_rem_dev), 0);
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "add-port", "br-int", uni_rem_dev, (char *)NULL), 0);
        ck_assert_int_eq(sh("ip netns exec %s sh -c 'ip link set lo up; ip addr add " UNI_REM_IP "/24 dev eth0; "
                            "ethtool -K eth0 tx off; ip link set eth0 up'", uni_rem_ns), 0);

        /* remote -> guest: ICMP (allowed) and TCP 22 (allowed) arrive; TCP 23 does not (filtered) */
        (void)pings_answered(uni_rem_ns, UNI_VM_IP, 2); /* the first may go while ARP is learned */
        n = pings_answered(uni_rem_ns, UNI_VM_IP, 5);
        ck_assert_msg(n == 5, "remote -> guest: %d of 5 unicast pings answered", n);
        ck_assert_msg(tcp_reaches(uni_rem_ns, UNI_VM_IP, 22), "remote -> guest: TCP 22 did not arrive");
        ck_assert_msg(!tcp_reaches(uni_rem_ns, UNI_VM_IP, 23), "remote -> guest: TCP 23 passed the filter");
        /* guest -> remote: egress allowed by default, the answers come back through conntrack */
        n = pings_answered(uni_vm_ns, UNI_REM_IP, 5);
        ck_assert_msg(n == 5, "guest -> remote: %d of 5 unicast pings answered", n);
        ck_assert_msg(tcp_reaches(uni_vm_ns, UNI_REM_IP, 80), "guest -> remote: TCP got no answer");
        unicast_cleanup();
}
END_TEST

/* Big datagrams through a filtered port at its MTU (1450, an overlay's): a
 * guest that uses the port's MTU (libvirt passes it to virtio-net as
 * <mtu size='1450'/>) fragments a 1600-byte datagram itself and both ways
 * work; a guest left at 1500 sends frames the port cannot carry: the Linux
 * bridge's netfilter reassembles and refuses to fragment again above the
 * size of the guest's own fragments (br_netfilter), so nothing of it
 * arrives: the guest must use the port's MTU (what it is told). */
START_TEST(test_filtered_port_mtu_and_fragments)
{
        char port[37], tap[IFNAME_MAX], grp[37], body[1024];
        struct json_object *resp = NULL;
        long first, rest;
        int n;

        start_core(PLUGS4);
        group_create("icmp", grp);
        ck_assert_int_eq(rule_add("icmp", "{\"direction\":\"ingress\",\"protocol\":\"icmp\"}", NULL), 201);
        random_port_uuid(port);
        ck_assert_int_eq(port_dev_name("tap", port, tap), 0);
        (void)snprintf(body, sizeof(body),
                       "{\"name\":\"mtu1\",\"secgroups\":[\"icmp\",\"default\"],\"ports\":[{\"port_uuid\":\"%s\","
                       "\"mac\":\"" UNI_MAC "\",\"mtu\":1450,\"ips\":[\"" UNI_VM_IP "\"]}]}", port);
        ck_assert_int_eq(api("POST", "/v1/instances?wait=1", body, &resp), 200);
        json_object_put(resp);
        (void)snprintf(uni_vm_ns, sizeof(uni_vm_ns), "sgvm%d", (int)getpid());
        (void)snprintf(uni_rem_ns, sizeof(uni_rem_ns), "sgrem%d", (int)getpid());
        (void)snprintf(uni_rem_dev, sizeof(uni_rem_dev), "rem%d", (int)getpid() % 100000);
        ck_assert_int_eq(sh("ip netns add %s && ip netns add %s", uni_vm_ns, uni_rem_ns), 0);
        wire_pid = guest_wire_start(tap, uni_vm_ns);
        ck_assert_int_eq(sh("ip netns exec %s sh -c 'ip link set lo up; ip link set eth0 address " UNI_MAC "; "
                            "ip link set eth0 mtu 1450; ip addr add " UNI_VM_IP "/24 dev eth0; ip link set eth0 up'",
                            uni_vm_ns), 0);
        /* the remote on the same network: the same MTU */
        ck_assert_int_eq(sh("ip link add %s mtu 1450 type veth peer name eth0 mtu 1450 netns %s && ip link set %s up",
                            uni_rem_dev, uni_rem_ns, uni_rem_dev), 0);
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "add-port", "br-int", uni_rem_dev, (char *)NULL), 0);
        ck_assert_int_eq(sh("ip netns exec %s sh -c 'ip link set lo up; ip addr add " UNI_REM_IP "/24 dev eth0; "
                            "ethtool -K eth0 tx off; ip link set eth0 up'", uni_rem_ns), 0);
        /* what arrives at the remote: first (or middle) fragments and the rest, of echo requests from the guest */
        ck_assert_int_eq(sh("ip netns exec %s nft -f - <<'EOF'\n"
                            "table ip fragcnt {\n counter head {}\n counter tail {}\n"
                            " chain pre { type filter hook prerouting priority -450;\n"
                            "  ip saddr " UNI_VM_IP " ip frag-off & 0x1fff == 0 ip frag-off & 0x2000 != 0 counter name head\n"
                            "  ip saddr " UNI_VM_IP " ip frag-off & 0x1fff != 0 counter name tail\n }\n}\nEOF",
                            uni_rem_ns), 0);
        (void)pings_answered(uni_vm_ns, UNI_REM_IP, 2);

        /* the guest at the port's MTU: 1600-byte datagrams (no DF) both ways */
        _cleanup_free_ char *out = sh_out("ip netns exec %s ping -n -M dont -s 1572 -c 5 -i 0.2 -W 1 " UNI_REM_IP " 2>&1",
                                          uni_vm_ns);
        ck_assert_msg(strstr(out, " 5 received"), "guest at MTU 1450 -> remote, 1600 bytes:\n%s", out);
        _cleanup_free_ char *back = sh_out("ip netns exec %s ping -n -M dont -s 1572 -c 5 -i 0.2 -W 1 " UNI_VM_IP " 2>&1",
                                           uni_rem_ns);
        ck_assert_msg(strstr(back, " 5 received"), "remote -> guest at MTU 1450, 1600 bytes:\n%s", back);

        /* the guest at 1500: its 1500-byte first fragments do not fit the port */
        ck_assert_int_eq(sh("ip netns exec %s ip link set eth0 mtu 1500", uni_vm_ns), 0);
        _cleanup_free_ char *before = sh_out("ip netns exec %s nft list table ip fragcnt", uni_rem_ns);
        (void)sh("ip netns exec %s ping -n -M dont -s 1572 -c 5 -i 0.2 -W 1 " UNI_REM_IP, uni_vm_ns);
        _cleanup_free_ char *after = sh_out("ip netns exec %s nft list table ip fragcnt", uni_rem_ns);
        n = sscanf(strstr(after, "counter head") ? strstr(after, "counter head") : "", "counter head { packets %ld", &first);
        ck_assert_int_eq(n, 1);
        n = sscanf(strstr(after, "counter tail") ? strstr(after, "counter tail") : "", "counter tail { packets %ld", &rest);
        ck_assert_int_eq(n, 1);
        {
                long first0 = 0, rest0 = 0;
                (void)sscanf(strstr(before, "counter head"), "counter head { packets %ld", &first0);
                (void)sscanf(strstr(before, "counter tail"), "counter tail { packets %ld", &rest0);
                fprintf(stderr, "test-secgroup-lifecycle: guest at MTU 1500, port 1450: of 5 datagrams of 1600 bytes "
                                "the remote got %ld first and %ld last fragments\n", first - first0, rest - rest0);
                ck_assert_int_eq(first - first0, 0); /* nothing larger than the port's MTU crosses it */
        }
        unicast_cleanup();
}
END_TEST

/* A boot that fails after the firewall step (here: define) rolls its rules
 * back, and the firewall sync of later passes must not put them back for the
 * instance left in error (the chaos suite saw its chain come back at once). */
START_TEST(test_failed_boot_leaves_no_rules)
{
        char port[37], chain[64], tap[IFNAME_MAX], lines[8192], body[512];
        struct json_object *resp = NULL;
        int st;

        (void)snprintf(lines, sizeof(lines),
                       "plugs = " PLUGS4 "\nlibvirt_uri = test:///default\nvif_type = ovs\novsdb_socket = unix:%s\n"
                       "integration_bridge = br-int\nbridge_datapath_type = netdev\nbridge_create = true\n"
                       "module_timeout_ms = 5000\nport_timeout_ms = 5000\nreconcile_interval_s = 1\n",
                       ovs.db_sock);
        ck_assert_int_eq(setenv("NOVA_TEST_FAULT_STEP", "define", 1), 0);
        core_start(&core, lines);
        ck_assert_int_eq(unsetenv("NOVA_TEST_FAULT_STEP"), 0);
        ck_assert_int_gt(core_wait_module_running(&core, "firewall-control", 0, 5000), 0);
        ck_assert_int_gt(core_wait_module_running(&core, "libvirt", 0, 5000), 0);
        ck_assert_int_gt(core_wait_module_running(&core, "openvswitch", 0, 5000), 0);
        random_port_uuid(port);
        port_chain(port, chain);
        ck_assert_int_eq(port_dev_name("tap", port, tap), 0);
        (void)snprintf(body, sizeof(body),
                       "{\"name\":\"fails\",\"ports\":[{\"port_uuid\":\"%s\",\"mac\":\"fa:16:3e:00:11:22\","
                       "\"ips\":[\"10.1.2.3\"]}]}", port);
        st = api("POST", "/v1/instances?wait=1", body, &resp);
        ck_assert_msg(st >= 400, "boot with a failing define answered %d", st);
        json_object_put(resp);
        ck_assert(!link_exists(tap));
        ck_assert(!chain_exists(chain));
        /* three periodic passes (reconcile, then the firewall sync): still nothing */
        sleep_ms(3500);
        ck_assert_msg(!chain_exists(chain), "the sync put back the rules of a failed boot (core log %s)", core.log);
        ck_assert(!link_exists(tap));
        ck_assert_int_eq(api("DELETE", "/v1/instances/fails?wait=1", NULL, NULL), 200);
        ck_assert(!chain_exists(chain));
}
END_TEST

static Suite *suite(void)
{
        Suite *s = suite_create("secgroup-lifecycle");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 180);
        tcase_add_test(tc, test_boot_filtered_plumbing_and_rules);
        tcase_add_test(tc, test_unfiltered_without_plug_then_connect_filters_live);
        tcase_add_test(tc, test_group_changes_reach_kernel_bad_input_changes_nothing);
        tcase_add_test(tc, test_port_set_switches_groups);
        tcase_add_test(tc, test_restart_keeps_ruleset_and_repairs_drift);
        tcase_add_test(tc, test_filtered_port_carries_unicast_both_ways);
        tcase_add_test(tc, test_filtered_port_mtu_and_fragments);
        tcase_add_test(tc, test_failed_boot_leaves_no_rules);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr;
        int failed;

        harness_enter_netns("test-secgroup-lifecycle");
        sr = srunner_create(suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
