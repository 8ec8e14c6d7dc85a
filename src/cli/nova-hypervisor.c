/* nova-hypervisor - the command-line client of the nova-compute API.
 *
 *   nova-hypervisor [--socket PATH] [--json] status
 *   nova-hypervisor plug connect|disconnect PLUG      (outside a snap)
 *   nova-hypervisor port create [--port-uuid U] [--mac M] [--mtu N]
 *   nova-hypervisor port list | show UUID | delete UUID
 *
 * Human tables by default, --json for scripts (the API's JSON, unchanged).
 * Exit status: 0 ok, 1 the request failed, 2 usage, 3 the core is unreachable. */
#include "apiclient.h"
#include "snap-commands.h"
#include "names.h"
#include "image-cmds.h"
#include "migrate-cmds.h"
#include "observe-cmds.h"
#include "plugs.h"
#include "secrule.h"
#include "snapctl.h"

#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <limits.h>

static bool opt_json;
static const char *opt_socket;

static const char *default_socket(void)
{
        static char buf[PATH_MAX];
        const char *env = getenv("NOVA_HYPERVISOR_SOCKET"), *data = getenv("SNAP_DATA");

        if (env && *env)
                return env;
        if (in_snap() && data && xsnprintf(buf, sizeof(buf), "%s/run/nova-hypervisor.socket", data) == 0)
                return buf;
        return "/run/nova-hypervisor/nova-hypervisor.socket";
}

static const char *jstr(struct json_object *o, const char *key)
{
        struct json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !v)
                return NULL;
        return json_object_get_string(v);
}

static int64_t jint(struct json_object *o, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) && v ? json_object_get_int64(v) : 0;
}

static bool jbool(struct json_object *o, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) && v && json_object_get_boolean(v);
}

static struct json_object *jobj(struct json_object *o, const char *key)
{
        struct json_object *v;
        return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* Print an API error: the message, and the fix when a plug is the cause. */
static int print_error(int status, struct json_object *resp)
{
        struct json_object *e = jobj(resp, "error");
        const char *msg = e ? jstr(e, "message") : NULL, *fix = e ? jstr(e, "fix") : NULL;

        if (opt_json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        fprintf(stderr, "error: %s (HTTP %d)\n", msg ? msg : "request failed", status);
        if (fix)
                fprintf(stderr, "fix: %s\n", fix);
        return 1;
}

static int call(const char *method, const char *path, const char *body, struct json_object **ret)
{
        int status = api_request(opt_socket, method, path, body, APICLIENT_TIMEOUT_MS, ret);

        if (status < 0) {
                fprintf(stderr, "error: cannot reach nova-compute at %s: %s\n", opt_socket, strerror(-status));
                if (status == -ENOENT || status == -ECONNREFUSED)
                        fprintf(stderr, "is the service running? (snap services nova-hypervisor, or make run KEEP=1)\n");
                return -3;
        }
        if (status >= 300) {
                print_error(status, *ret);
                json_object_put(*ret);
                *ret = NULL;
                return -1;
        }
        return 0;
}

static int exit_for(int r) { return r == -3 ? 3 : r < 0 ? 1 : 0; }

static int cmd_status(void)
{
        struct json_object *resp = NULL, *core, *plugs;
        int r = call("GET", "/v1/status", NULL, &resp);

        if (r < 0)
                return exit_for(r);
        if (opt_json) {
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                json_object_put(resp);
                return 0;
        }
        core = jobj(resp, "core");
        plugs = jobj(resp, "plugs");
        printf("core: nova-compute %s, pid %lld, %s, capabilities [%s], no_new_privs %s\n", jstr(core, "version"),
               (long long)jint(core, "pid"), jbool(core, "snap") ? "inside a snap" : "outside a snap",
               jstr(core, "capabilities") ? jstr(core, "capabilities") : "", jbool(core, "no_new_privs") ? "yes" : "no");
        {
                struct json_object *inst = jobj(resp, "instances"), *rec = jobj(resp, "reconcile");
                if (inst)
                        printf("instances: %lld (%lld active, %lld stopped, %lld error, %lld busy)\n",
                               (long long)jint(inst, "total"), (long long)jint(inst, "active"),
                               (long long)jint(inst, "stopped"), (long long)jint(inst, "error"),
                               (long long)jint(inst, "busy"));
                if (rec && jint(rec, "runs") > 0)
                        printf("reconcile: %lld passes, last %llds ago: %lld orphan domains, %lld orphan taps, "
                               "%lld reaped, %lld repaired%s%s\n",
                               (long long)jint(rec, "runs"), (long long)jint(rec, "seconds_ago"),
                               (long long)jint(rec, "orphan_domains"), (long long)jint(rec, "orphan_taps"),
                               (long long)jint(rec, "reaped"), (long long)jint(rec, "repaired"),
                               jstr(rec, "last_error") ? "; error: " : "",
                               jstr(rec, "last_error") ? jstr(rec, "last_error") : "");
                else if (rec)
                        printf("reconcile: not yet (needs the libvirt and network-control modules)\n");
        }
        {
                struct json_object *fw = jobj(resp, "firewall");
                if (fw)
                        printf("security groups: %lld groups, %lld unfiltered ports%s%s%s\n", (long long)jint(fw, "secgroups"),
                               (long long)jint(fw, "unfiltered_ports"),
                               jint(fw, "unfiltered_ports") ? " (connect firewall-control to filter them)" : "",
                               jstr(fw, "last_error") ? "; error: " : "",
                               jstr(fw, "last_error") ? jstr(fw, "last_error") : "");
        }
        print_placement_line(jobj(resp, "placement"));
        printf("\n%-17s %-9s %-11s %-7s %-16s %s\n", "PLUG", "CONNECTED", "MODULE", "PID", "CAPABILITIES",
               "NOTE");
        for (size_t i = 0; plugs && i < json_object_array_length(plugs); i++) {
                struct json_object *p = json_object_array_get_idx(plugs, i), *m = jobj(p, "module");
                const char *caps = jstr(m, "capabilities"), *err = jstr(m, "last_error"), *fix = jstr(p, "fix");
                char pid[16] = "-", note[512] = "";

                if (jint(m, "pid") > 0)
                        (void)snprintf(pid, sizeof(pid), "%lld", (long long)jint(m, "pid"));
                if (fix)
                        (void)snprintf(note, sizeof(note), "fix: %s", fix);
                else if (err)
                        (void)snprintf(note, sizeof(note), "%s%s", err,
                                       jint(m, "restarts") ? " (restarted)" : "");
                printf("%-17s %-9s %-11s %-7s %-16s %s\n", jstr(p, "plug"), jbool(p, "connected") ? "yes" : "no",
                       jstr(m, "state"), pid, caps && *caps ? caps : "-", note);
        }
        json_object_put(resp);
        return 0;
}

static int cmd_plug(int argc, char **argv)
{
        struct json_object *resp = NULL;
        char path[128];
        int r;

        if (argc == 1 && streq(argv[0], "names")) {
                /* The plug table, for the snap's hooks. */
                for (int i = 0; i < _PLUG_MAX; i++)
                        printf("%s\n", plug_table[i].name);
                return 0;
        }
        if (argc == 1 && streq(argv[0], "refresh")) {
                /* Inside the snap: re-read `snapctl is-connected --list` (the hooks call this). */
                r = call("POST", "/v1/plugs/refresh", NULL, &resp);
                if (r < 0)
                        return exit_for(r);
                json_object_put(resp);
                return 0;
        }
        if (argc != 2 || (!streq(argv[0], "connect") && !streq(argv[0], "disconnect") &&
                          !streq(argv[0], "disconnecting"))) {
                fprintf(stderr, "usage: nova-hypervisor plug connect|disconnect PLUG | plug names | plug refresh\n");
                return 2;
        }
        if (plug_from_name(argv[1]) < 0) {
                fprintf(stderr, "error: unknown plug '%s'; plugs are:", argv[1]);
                for (int i = 0; i < _PLUG_MAX; i++)
                        fprintf(stderr, " %s", plug_table[i].name);
                fprintf(stderr, "\n");
                return 2;
        }
        if (xsnprintf(path, sizeof(path), "/v1/plugs/%s/%s", argv[1], argv[0]) < 0)
                return 2;
        r = call("POST", path, NULL, &resp);
        if (r < 0)
                return exit_for(r);
        if (opt_json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        else if (streq(argv[0], "disconnecting"))
                printf("plug %s being disconnected by snapd; module %s\n", argv[1], jstr(jobj(resp, "module"), "state"));
        else
                printf("plug %s %s; module %s\n", argv[1], argv[0][0] == 'c' ? "connected" : "disconnected",
                       jstr(jobj(resp, "module"), "state"));
        json_object_put(resp);
        return 0;
}

static void print_port_row(struct json_object *p)
{
        printf("%-36s %-15s %-17s %-5lld %-5s %s\n", jstr(p, "port_uuid"), jstr(p, "name"), jstr(p, "mac"),
               (long long)jint(p, "mtu"), jbool(p, "admin_up") ? "up" : "down", jstr(p, "operstate"));
}

static void print_port_header(void)
{
        printf("%-36s %-15s %-17s %-5s %-5s %s\n", "PORT", "TAP", "MAC", "MTU", "ADMIN", "OPERSTATE");
}


/* ---- security groups ---- */

static void print_instance_detail(struct json_object *i);

static void print_rule_row(struct json_object *r)
{
        const char *proto = jstr(r, "protocol"), *remote = jstr(r, "remote_ip_prefix");
        char range[32] = "-";
        struct json_object *mn = jobj(r, "port_range_min"), *mx = jobj(r, "port_range_max");
        bool icmp = proto && (streq(proto, "icmp") || streq(proto, "ipv6-icmp"));

        if (mn && mx)
                (void)snprintf(range, sizeof(range), icmp ? "type %lld code %lld" : "%lld-%lld",
                               (long long)json_object_get_int64(mn), (long long)json_object_get_int64(mx));
        else if (mn)
                (void)snprintf(range, sizeof(range), icmp ? "type %lld" : "%lld", (long long)json_object_get_int64(mn));
        printf("  %-36s %-8s %-5s %-9s %-16s %s\n", jstr(r, "id"), jstr(r, "direction"), jstr(r, "ethertype"),
               proto ? proto : "any", range, remote ? remote : "any");
}

static void print_secgroup(struct json_object *g, bool rules)
{
        struct json_object *list = jobj(g, "rules"), *ports = jobj(g, "ports");

        printf("%-20s %-36s %3zu rules %3zu ports  %s\n", jstr(g, "name"), jstr(g, "id"),
               list ? json_object_array_length(list) : 0, ports ? json_object_array_length(ports) : 0,
               jstr(g, "description") ? jstr(g, "description") : "");
        if (!rules)
                return;
        if (list && json_object_array_length(list) > 0)
                printf("  %-36s %-8s %-5s %-9s %-16s %s\n", "RULE", "DIR", "ETHER", "PROTOCOL", "PORTS", "REMOTE");
        for (size_t i = 0; list && i < json_object_array_length(list); i++)
                print_rule_row(json_object_array_get_idx(list, i));
        for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
                struct json_object *p = json_object_array_get_idx(ports, i);
                printf("  port %s (instance %s)%s\n", jstr(p, "port_uuid"), jstr(p, "instance"),
                       jbool(p, "filtered") ? "" : " UNFILTERED");
        }
}

/* After a change: say when the kernel does not have it yet. */
static void print_pending(struct json_object *resp)
{
        if (!jbool(resp, "applied") && jstr(resp, "pending"))
                fprintf(stderr, "note: stored, %s\n", jstr(resp, "pending"));
}

/* --port N or N:M (or N-M) into the rule body b. 0 or -EINVAL. */
static int port_option(const char *arg, struct json_object *b)
{
        uint32_t lo, hi;
        char buf[32], *sep;

        if (strscpy(buf, arg, sizeof(buf)) < 0)
                return -EINVAL;
        sep = strpbrk(buf, ":-");
        if (sep)
                *sep++ = '\0';
        if (parse_u32(buf, 0, 65535, &lo) < 0 || (sep && parse_u32(sep, 0, 65535, &hi) < 0))
                return -EINVAL;
        json_object_object_add(b, "port_range_min", json_object_new_int((int)lo));
        json_object_object_add(b, "port_range_max", json_object_new_int((int)(sep ? hi : lo)));
        return 0;
}

/* The rule options of `secgroup rule add` into the request body b; optind is
 * left at the first operand. 0, or the exit code 2 after saying why. */
static int rule_options(int argc, char **argv, struct json_object *b)
{
        static const struct option opts[] = {
                { "direction", required_argument, NULL, 'd' }, { "ethertype", required_argument, NULL, 'e' },
                { "protocol", required_argument, NULL, 'p' },  { "port", required_argument, NULL, 'P' },
                { "icmp-type", required_argument, NULL, 't' }, { "icmp-code", required_argument, NULL, 'c' },
                { "remote", required_argument, NULL, 'r' },    { 0 },
        };
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                uint32_t lo;
                switch (c) {
                case 'd':
                        json_object_object_add(b, "direction", json_object_new_string(optarg));
                        break;
                case 'e':
                        json_object_object_add(b, "ethertype", json_object_new_string(optarg));
                        break;
                case 'p':
                        json_object_object_add(b, "protocol", json_object_new_string(optarg));
                        break;
                case 'r':
                        json_object_object_add(b, "remote_ip_prefix", json_object_new_string(optarg));
                        break;
                case 'P':
                        if (port_option(optarg, b) < 0) {
                                fprintf(stderr, "error: --port: N or N:M with ports 1..65535\n");
                                return 2;
                        }
                        break;
                case 't':
                case 'c':
                        if (parse_u32(optarg, 0, 255, &lo) < 0) {
                                fprintf(stderr, "error: --icmp-%s: 0..255\n", c == 't' ? "type" : "code");
                                return 2;
                        }
                        json_object_object_add(b, c == 't' ? "port_range_min" : "port_range_max",
                                               json_object_new_int((int)lo));
                        break;
                default:
                        return 2;
                }
        }
        return 0;
}

static int rule_add(int argc, char **argv)
{
        struct json_object *b = json_object_new_object(), *resp = NULL;
        char path[160];
        int r;

        r = rule_options(argc, argv, b);
        if (r == 0 && (optind != argc - 1 || !jobj(b, "direction"))) {
                fprintf(stderr, "usage: nova-hypervisor secgroup rule add GROUP --direction ingress|egress\n"
                                "         [--ethertype IPv4|IPv6] [--protocol tcp|udp|icmp|icmpv6|any|N]\n"
                                "         [--port N[:M]] [--icmp-type T [--icmp-code C]] [--remote CIDR]\n");
                r = 2;
        }
        if (r == 0 && (strlen(argv[optind]) > 80 ||
                       xsnprintf(path, sizeof(path), "/v1/secgroups/%s/rules", argv[optind]) < 0))
                r = 2;
        if (r != 0) {
                json_object_put(b);
                return r;
        }
        r = call("POST", path, json_object_to_json_string(b), &resp);
        json_object_put(b);
        if (r < 0)
                return exit_for(r);
        if (opt_json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        else {
                printf("  %-36s %-8s %-5s %-9s %-16s %s\n", "RULE", "DIR", "ETHER", "PROTOCOL", "PORTS", "REMOTE");
                print_rule_row(jobj(resp, "result"));
        }
        print_pending(resp);
        json_object_put(resp);
        return 0;
}

static bool ref_ok(const char *ref)
{
        size_t n = strlen(ref);
        if (n == 0 || n > 63)
                return false;
        for (const char *p = ref; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
                      *p == '_' || *p == '-'))
                        return false;
        return true;
}

static int cmd_secgroup(int argc, char **argv)
{
        struct json_object *resp = NULL;
        char path[160];
        int r;

        if (argc >= 1 && streq(argv[0], "list") && argc == 1) {
                struct json_object *list;
                r = call("GET", "/v1/secgroups", NULL, &resp);
                if (r < 0)
                        return exit_for(r);
                if (opt_json)
                        printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                else
                        for (size_t i = 0; (list = jobj(resp, "secgroups")) && i < json_object_array_length(list); i++)
                                print_secgroup(json_object_array_get_idx(list, i), false);
                json_object_put(resp);
                return 0;
        }
        if (argc >= 2 && streq(argv[0], "create") && (argc == 2 || (argc == 4 && streq(argv[2], "--description")))) {
                struct json_object *b = json_object_new_object();
                json_object_object_add(b, "name", json_object_new_string(argv[1]));
                if (argc == 4)
                        json_object_object_add(b, "description", json_object_new_string(argv[3]));
                r = call("POST", "/v1/secgroups", json_object_to_json_string(b), &resp);
                json_object_put(b);
                if (r < 0)
                        return exit_for(r);
                if (opt_json)
                        printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                else
                        print_secgroup(resp, true);
                json_object_put(resp);
                return 0;
        }
        if (argc == 2 && (streq(argv[0], "show") || streq(argv[0], "delete"))) {
                if (!ref_ok(argv[1]) || xsnprintf(path, sizeof(path), "/v1/secgroups/%s", argv[1]) < 0) {
                        fprintf(stderr, "error: '%s' is not a group name or id\n", argv[1]);
                        return 2;
                }
                r = call(argv[0][0] == 's' ? "GET" : "DELETE", path, NULL, &resp);
                if (r < 0)
                        return exit_for(r);
                if (opt_json)
                        printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                else if (argv[0][0] == 's')
                        print_secgroup(resp, true);
                else
                        printf("deleted security group %s\n", argv[1]);
                json_object_put(resp);
                return 0;
        }
        if (argc >= 2 && streq(argv[0], "rule") && streq(argv[1], "add"))
                return rule_add(argc - 1, argv + 1);
        if (argc == 3 && streq(argv[0], "rule") && streq(argv[1], "delete")) {
                if (!uuid_is_valid(argv[2])) {
                        fprintf(stderr, "error: '%s' is not a rule id (a lowercase UUID)\n", argv[2]);
                        return 2;
                }
                (void)snprintf(path, sizeof(path), "/v1/secgroup-rules/%s", argv[2]);
                r = call("DELETE", path, NULL, &resp);
                if (r < 0)
                        return exit_for(r);
                if (opt_json)
                        printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                else
                        printf("deleted rule %s\n", argv[2]);
                print_pending(resp);
                json_object_put(resp);
                return 0;
        }
        fprintf(stderr, "usage: nova-hypervisor secgroup list | show GROUP | delete GROUP\n"
                        "       nova-hypervisor secgroup create NAME [--description TEXT]\n"
                        "       nova-hypervisor secgroup rule add GROUP --direction ingress|egress [...]\n"
                        "       nova-hypervisor secgroup rule delete RULE_ID\n");
        return 2;
}

/* port set UUID --secgroup G [--secgroup G]... | --no-secgroup */
static int port_set(int argc, char **argv)
{
        struct json_object *groups = json_object_new_array(), *b, *resp = NULL;
        bool none = false;
        char path[128];
        int r;

        for (int i = 2; i < argc; i++) {
                if (streq(argv[i], "--secgroup") && i + 1 < argc)
                        json_object_array_add(groups, json_object_new_string(argv[++i]));
                else if (streq(argv[i], "--no-secgroup"))
                        none = true;
                else {
                        json_object_put(groups);
                        goto usage;
                }
        }
        if (argc < 3 || !uuid_is_valid(argv[1]) || (none == (json_object_array_length(groups) > 0))) {
                json_object_put(groups);
                goto usage;
        }
        b = json_object_new_object();
        json_object_object_add(b, "secgroups", groups);
        (void)snprintf(path, sizeof(path), "/v1/ports/%s/secgroups", argv[1]);
        r = call("POST", path, json_object_to_json_string(b), &resp);
        json_object_put(b);
        if (r < 0)
                return exit_for(r);
        if (opt_json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        else
                print_instance_detail(jobj(resp, "result"));
        print_pending(resp);
        json_object_put(resp);
        return 0;
usage:
        fprintf(stderr, "usage: nova-hypervisor port set PORT_UUID --secgroup GROUP [--secgroup GROUP]... | --no-secgroup\n");
        return 2;
}

static int port_list(void)
{
        struct json_object *resp = NULL, *ports;
        int r = call("GET", "/v1/ports", NULL, &resp);

        if (r < 0)
                return exit_for(r);
        if (opt_json) {
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        } else {
                ports = jobj(resp, "ports");
                print_port_header();
                for (size_t i = 0; ports && i < json_object_array_length(ports); i++)
                        print_port_row(json_object_array_get_idx(ports, i));
                if (jbool(resp, "truncated"))
                        printf("(%lld ports in all; the first %zu are shown)\n", (long long)jint(resp, "total"),
                               ports ? json_object_array_length(ports) : 0);
        }
        json_object_put(resp);
        return 0;
}

/* port show UUID | port delete UUID */
static int port_show_or_delete(bool show, const char *port_uuid)
{
        struct json_object *resp = NULL;
        char path[128];
        int r;

        if (!uuid_is_valid(port_uuid)) {
                fprintf(stderr, "error: '%s' is not a canonical lowercase port UUID\n", port_uuid);
                return 2;
        }
        if (xsnprintf(path, sizeof(path), "/v1/ports/%s", port_uuid) < 0)
                return 2;
        r = call(show ? "GET" : "DELETE", path, NULL, &resp);
        if (r < 0)
                return exit_for(r);
        if (opt_json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        else if (show) {
                print_port_header();
                print_port_row(resp);
        } else
                printf("deleted port %s\n", port_uuid);
        json_object_put(resp);
        return 0;
}

/* One option of port create into body: 0, or -EINVAL (said why, or a usage error). */
static int port_create_option(int c, const char *arg, struct json_object *body)
{
        uint32_t mtu;

        switch (c) {
        case 'u':
                if (!uuid_is_valid(arg))
                        return fprintf(stderr, "error: --port-uuid: not a canonical lowercase UUID\n"), -EINVAL;
                json_object_object_add(body, "port_uuid", json_object_new_string(arg));
                return 0;
        case 'm':
                if (!mac_is_valid(arg))
                        return fprintf(stderr, "error: --mac: " MAC_RULE_TEXT "\n"), -EINVAL;
                json_object_object_add(body, "mac", json_object_new_string(arg));
                return 0;
        case 't':
                if (parse_u32(arg, 68, 65535, &mtu) < 0)
                        return fprintf(stderr, "error: --mtu: must be a number in 68..65535\n"), -EINVAL;
                json_object_object_add(body, "mtu", json_object_new_int((int)mtu));
                return 0;
        default:
                return -EINVAL;
        }
}

static int port_create(int argc, char **argv)
{
        static const struct option opts[] = {
                { "port-uuid", required_argument, NULL, 'u' },
                { "mac", required_argument, NULL, 'm' },
                { "mtu", required_argument, NULL, 't' },
                { 0 },
        };
        struct json_object *body = json_object_new_object(), *resp = NULL;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                if (port_create_option(c, optarg, body) < 0) {
                        json_object_put(body);
                        return 2;
                }
        if (optind != argc) {
                json_object_put(body);
                return 2;
        }
        r = call("POST", "/v1/ports", json_object_to_json_string(body), &resp);
        json_object_put(body);
        if (r < 0)
                return exit_for(r);
        if (opt_json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        else {
                print_port_header();
                print_port_row(resp);
        }
        json_object_put(resp);
        return 0;
}

static int cmd_port(int argc, char **argv)
{
        if (argc >= 1 && streq(argv[0], "set"))
                return port_set(argc, argv);
        if (argc == 1 && streq(argv[0], "list"))
                return port_list();
        if (argc == 2 && (streq(argv[0], "show") || streq(argv[0], "delete")))
                return port_show_or_delete(streq(argv[0], "show"), argv[1]);
        if (argc >= 1 && streq(argv[0], "create"))
                return port_create(argc, argv);
        fprintf(stderr, "usage: nova-hypervisor port create [--port-uuid UUID] [--mac MAC] [--mtu N]\n"
                        "       nova-hypervisor port list | show UUID | delete UUID\n"
                        "       nova-hypervisor port set UUID --secgroup GROUP... | --no-secgroup\n");
        return 2;
}


/* ---- instances ---- */

#define BULK_IN_FLIGHT 16

static void print_instance_header(void)
{
        printf("%-20s %-36s %-8s %-10s %-8s %5s %7s %s\n", "NAME", "UUID", "STATE", "TASK", "POWER", "VCPUS",
               "MEM_MB", "PORTS");
}

static void print_instance_row(struct json_object *i)
{
        struct json_object *ports = jobj(i, "ports");
        const char *task = jstr(i, "task");

        printf("%-20s %-36s %-8s %-10s %-8s %5lld %7lld %zu\n", jstr(i, "name"), jstr(i, "uuid"), jstr(i, "vm_state"),
               task ? task : "-", jstr(i, "power_state"), (long long)jint(i, "vcpus"), (long long)jint(i, "memory_mb"),
               ports ? json_object_array_length(ports) : 0);
}

static void print_instance_detail(struct json_object *i)
{
        struct json_object *ports = jobj(i, "ports");
        const char *task = jstr(i, "task"), *fault = jstr(i, "fault");

        printf("name:        %s\nuuid:        %s\ndomain:      %s\nstate:       %s\ntask:        %s\n"
               "power:       %s\nvcpus:       %lld\nmemory_mb:   %lld\n",
               jstr(i, "name"), jstr(i, "uuid"), jstr(i, "domain"), jstr(i, "vm_state"), task ? task : "-",
               jstr(i, "power_state"), (long long)jint(i, "vcpus"), (long long)jint(i, "memory_mb"));
        if (fault)
                printf("fault:       %s\n", fault);
        if (jstr(i, "cpu_set")) {
                struct json_object *pin = jobj(i, "pinning");
                printf("cpu_set:     %s\npinning:     %s%s%s\n", jstr(i, "cpu_set"),
                       pin && jstr(pin, "message") ? jstr(pin, "message") : "-",
                       pin && jstr(pin, "fix") ? "; fix: " : "", pin && jstr(pin, "fix") ? jstr(pin, "fix") : "");
        }
        for (size_t k = 0; ports && k < json_object_array_length(ports); k++) {
                struct json_object *p = json_object_array_get_idx(ports, k);
                struct json_object *ips = jobj(p, "ips"), *names = jobj(p, "secgroup_names");
                printf("port %zu:      %s tap %s mac %s mtu %lld\n", k, jstr(p, "port_uuid"), jstr(p, "tap"),
                       jstr(p, "mac"), (long long)jint(p, "mtu"));
                printf("             ips:");
                for (size_t j = 0; ips && j < json_object_array_length(ips); j++)
                        printf(" %s", json_object_get_string(json_object_array_get_idx(ips, j)));
                printf("%s\n             security groups:", ips && json_object_array_length(ips) ? "" : " -");
                for (size_t j = 0; names && j < json_object_array_length(names); j++)
                        printf(" %s", json_object_get_string(json_object_array_get_idx(names, j)));
                if (!names || json_object_array_length(names) == 0)
                        printf(" - (all traffic dropped once filtered)");
                if (jbool(p, "filtered"))
                        printf("\n             filtered: yes (bridge %s)\n", jstr(p, "bridge") ? jstr(p, "bridge") : "-");
                else
                        printf("\n             filtered: NO: %s%s%s\n", jstr(p, "unfiltered_reason"),
                               jstr(p, "fix") ? "; fix: " : "", jstr(p, "fix") ? jstr(p, "fix") : "");
        }
}

/* Port spec: "" or comma-separated uuid=..., mac=..., mtu=..., ip=... (ip repeatable) */
static int parse_port_spec(const char *spec, struct json_object *port)
{
        char buf[256], *save = NULL;

        if (strscpy(buf, spec, sizeof(buf)) < 0)
                return -EINVAL;
        for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(kv, '=');
                uint32_t mtu;
                if (!eq)
                        return -EINVAL;
                *eq++ = '\0';
                if (streq(kv, "uuid") && uuid_is_valid(eq))
                        json_object_object_add(port, "port_uuid", json_object_new_string(eq));
                else if (streq(kv, "mac") && mac_is_valid(eq))
                        json_object_object_add(port, "mac", json_object_new_string(eq));
                else if (streq(kv, "mtu") && parse_u32(eq, 68, 65535, &mtu) == 0)
                        json_object_object_add(port, "mtu", json_object_new_int((int)mtu));
                else if (streq(kv, "ip") && ip_is_valid(eq)) {
                        struct json_object *ips = jobj(port, "ips");
                        if (!ips) {
                                ips = json_object_new_array();
                                json_object_object_add(port, "ips", ips);
                        }
                        json_object_array_add(ips, json_object_new_string(eq));
                } else
                        return -EINVAL;
        }
        return 0;
}

struct bulk_item {
        char label[80];                  /* what the progress line names */
        char method[8];
        char path[160];
        char *body;                      /* owned */
};

/* Run requests with ?wait=1, at most BULK_IN_FLIGHT at once, printing one
 * progress line per completion. Returns the number that failed. */
static int run_bulk(struct bulk_item *items, size_t n, const char *verb)
{
        struct pollfd fds[BULK_IN_FLIGHT];
        size_t slot_item[BULK_IN_FLIGHT], next = 0, done = 0;
        unsigned failed = 0, active = 0;
        uint64_t t0 = now_usec();

        for (int k = 0; k < BULK_IN_FLIGHT; k++)
                fds[k].fd = -1;
        while (done < n) {
                for (int k = 0; k < BULK_IN_FLIGHT && next < n; k++) {
                        if (fds[k].fd >= 0)
                                continue;
                        fds[k].fd = api_send_request(opt_socket, items[next].method, items[next].path, items[next].body);
                        fds[k].events = POLLIN;
                        if (fds[k].fd < 0) {
                                fprintf(stderr, "error: cannot reach nova-compute at %s: %s\n", opt_socket,
                                        strerror(-fds[k].fd));
                                fds[k].fd = -1;
                                failed++;
                                done++;
                                next++;
                                continue;
                        }
                        slot_item[k] = next++;
                        active++;
                }
                if (active == 0)
                        continue;
                if (poll(fds, BULK_IN_FLIGHT, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return (int)(n - done + failed);
                }
                for (int k = 0; k < BULK_IN_FLIGHT; k++) {
                        struct json_object *resp = NULL, *e;
                        const struct bulk_item *it;
                        int status;

                        if (fds[k].fd < 0 || !fds[k].revents)
                                continue;
                        it = &items[slot_item[k]];
                        status = api_read_response(fds[k].fd, APICLIENT_TIMEOUT_MS, &resp);
                        close(fds[k].fd);
                        fds[k].fd = -1;
                        active--;
                        done++;
                        if (status >= 200 && status < 300) {
                                if (!opt_json)
                                        printf("[%zu/%zu] %s %s: %s\n", done, n, verb, it->label,
                                               jstr(resp, "vm_state") ? jstr(resp, "vm_state") : "done");
                        } else {
                                failed++;
                                e = resp ? jobj(resp, "error") : NULL;
                                printf("[%zu/%zu] %s %s: FAILED: %s\n", done, n, verb, it->label,
                                       e && jstr(e, "message") ? jstr(e, "message") : strerror(status < 0 ? -status : EIO));
                                if (e && jstr(e, "fix"))
                                        printf("        fix: %s\n", jstr(e, "fix"));
                        }
                        json_object_put(resp);
                }
        }
        if (!opt_json)
                printf("%s: %zu done, %u failed, %.2f s\n", verb, n - failed, failed, (double)(now_usec() - t0) / 1e6);
        return (int)failed;
}

/* Say on stderr, once per instance, that its ports are not filtered and how to fix it. */
static void warn_unfiltered(struct json_object *inst)
{
        struct json_object *ports = jobj(inst, "ports");

        for (size_t k = 0; ports && k < json_object_array_length(ports); k++) {
                struct json_object *p = json_object_array_get_idx(ports, k);
                if (jbool(p, "filtered"))
                        continue;
                fprintf(stderr, "warning: port %s of %s is UNFILTERED (no security groups apply): %s\n",
                        jstr(p, "port_uuid"), jstr(inst, "name"), jstr(p, "unfiltered_reason"));
                if (jstr(p, "fix"))
                        fprintf(stderr, "fix: %s\n", jstr(p, "fix"));
                return;
        }
}

/* Say on stderr that the instance's cpu_set could not be applied, and the fix. */
static void warn_unpinned(struct json_object *inst)
{
        struct json_object *pin = jobj(inst, "pinning");
        const char *state = pin ? jstr(pin, "state") : NULL;

        if (!state || streq(state, "applied") || streq(state, "pending"))
                return;
        fprintf(stderr, "warning: %s of %s: the instance runs UNPINNED\n", jstr(pin, "message"), jstr(inst, "name"));
        if (jstr(pin, "fix"))
                fprintf(stderr, "fix: %s\n", jstr(pin, "fix"));
}

/* What `boot` was asked for. */
struct boot_args {
        struct json_object *ports;      /* the port objects of each instance */
        struct json_object *groups;     /* --secgroup, NULL: the core's default */
        uint32_t vcpus, memory, nports, count;
        bool wait, explicit_ports;
        const char *cpu_set;            /* NULL: the config default; "": no pinning */
        const char *name;
        const char *image;              /* --image NAME|UUID, NULL: diskless */
        uint32_t disk_gb;               /* --disk GB, 0: the image's size */
        char *key;                      /* --key-file: its first line (malloc'd) */
        char *user_data;                /* --user-data: the file, base64 (malloc'd) */
        const char *kernel, *ramdisk;   /* --kernel/--ramdisk NAME|UUID: direct kernel boot, NULL: none */
        const char *cmdline;            /* --cmdline TEXT (checked by nova-compute), NULL: none */
};

/* Standard base64 with padding of len bytes (malloc'd, NUL-terminated), or NULL. */
static char *base64_encode(const unsigned char *in, size_t len)
{
        static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                             (i + 2 < len ? in[i + 2] : 0);
                *o++ = abc[v >> 18 & 63];
                *o++ = abc[v >> 12 & 63];
                *o++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
                *o++ = i + 2 < len ? abc[v & 63] : '=';
        }
        *o = '\0';
        return out;
}

/* --key-file: one public key line; --user-data: at most 65535 bytes (nova's limit). 0 or -EINVAL after saying why. */
static int read_boot_file(int c, const char *path, struct boot_args *a)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file_bounded(path, c == 'k' ? 16384 : 65535, &text, &len);

        if (r < 0) {
                fprintf(stderr, "error: %s: %s\n", path, r == -EFBIG ? (c == 'k' ? "too large for a public key" : "user data over 65535 bytes") : strerror(-r));
                return -EINVAL;
        }
        if (c == 'k') {
                text[strcspn(text, "\r\n")] = '\0';
                if (!text[0] || strlen(text) > 2048) {
                        fprintf(stderr, "error: %s: the first line must be one public key (at most 2048 characters)\n", path);
                        return -EINVAL;
                }
                free(a->key);
                a->key = TAKE_PTR(text);
                return 0;
        }
        if (len == 0) {
                fprintf(stderr, "error: %s: empty user data\n", path);
                return -EINVAL;
        }
        free(a->user_data);
        a->user_data = base64_encode((const unsigned char *)text, len);
        return a->user_data ? 0 : -ENOMEM;
}

/* One boot option into a: 0, or -EINVAL after saying why. */
static int boot_option(int c, const char *arg, struct boot_args *a)
{
        struct json_object *port;

        switch (c) {
        case 'c':
                return parse_u32(arg, 1, 64, &a->vcpus) < 0 ? (fprintf(stderr, "error: --vcpus: 1..64\n"), -EINVAL) : 0;
        case 'm':
                return parse_u32(arg, 16, 1048576, &a->memory) < 0
                               ? (fprintf(stderr, "error: --memory: MiB, 16..1048576\n"), -EINVAL)
                               : 0;
        case 'p':
                port = json_object_new_object();
                if (parse_port_spec(arg, port) < 0) {
                        json_object_put(port);
                        fprintf(stderr, "error: --port: uuid=UUID,mac=MAC,mtu=N (each optional)\n");
                        return -EINVAL;
                }
                json_object_array_add(a->ports, port);
                a->explicit_ports = true;
                return 0;
        case 'n':
                return parse_u32(arg, 0, 16, &a->nports) < 0 ? (fprintf(stderr, "error: --ports: 0..16\n"), -EINVAL) : 0;
        case 'N':
                return parse_u32(arg, 1, 4096, &a->count) < 0 ? (fprintf(stderr, "error: --count: 1..4096\n"), -EINVAL)
                                                                : 0;
        case 'w':
                a->wait = true;
                return 0;
        case 's': /* checked by nova-compute (syntax and online CPUs); "" = no pinning */
                a->cpu_set = arg;
                return 0;
        case 'g':
                if (!a->groups)
                        a->groups = json_object_new_array();
                json_object_array_add(a->groups, json_object_new_string(arg));
                return 0;
        case 'i':
                a->image = arg;
                return 0;
        case 'd':
                return parse_u32(arg, 1, 16384, &a->disk_gb) < 0 ? (fprintf(stderr, "error: --disk: GiB, 1..16384\n"), -EINVAL)
                                                                   : 0;
        case 'k':
        case 'u':
                return read_boot_file(c, arg, a);
        case 'K':
                a->kernel = arg;
                return 0;
        case 'R':
                a->ramdisk = arg;
                return 0;
        case 'C':
                if (!arg[0] || strlen(arg) > 1024) {
                        fprintf(stderr, "error: --cmdline: 1..1024 characters\n");
                        return -EINVAL;
                }
                a->cmdline = arg;
                return 0;
        default:
                return -EINVAL;
        }
}

static int boot_parse_args(int argc, char **argv, struct boot_args *a)
{
        static const struct option opts[] = {
                { "vcpus", required_argument, NULL, 'c' }, { "memory", required_argument, NULL, 'm' },
                { "port", required_argument, NULL, 'p' },  { "ports", required_argument, NULL, 'n' },
                { "count", required_argument, NULL, 'N' }, { "wait", no_argument, NULL, 'w' },
                { "secgroup", required_argument, NULL, 'g' }, { "cpu-set", required_argument, NULL, 's' },
                { "image", required_argument, NULL, 'i' }, { "disk", required_argument, NULL, 'd' },
                { "key-file", required_argument, NULL, 'k' }, { "user-data", required_argument, NULL, 'u' },
                { "kernel", required_argument, NULL, 'K' },   { "ramdisk", required_argument, NULL, 'R' },
                { "cmdline", required_argument, NULL, 'C' },
                { 0 },
        };
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                if (boot_option(c, optarg, a) < 0)
                        return -EINVAL;
        if (optind != argc - 1 || !instance_name_is_valid(argv[optind])) {
                fprintf(stderr, "usage: nova-hypervisor boot NAME [--vcpus N] [--memory MB] [--port uuid=..,mac=..,mtu=..,ip=..]...\n"
                                "                            [--ports N] [--secgroup NAME]... [--cpu-set LIST] [--count N] [--wait]\n"
                                "                            [--image IMG [--disk GB] [--key-file FILE] [--user-data FILE]\n"
                                "                             [--kernel IMG --ramdisk IMG [--cmdline TEXT]]]\n"
                                "NAME: 1..63 characters of A-Z a-z 0-9 . _ -\n");
                return -EINVAL;
        }
        a->name = argv[optind];
        if (!a->explicit_ports)
                for (uint32_t k = 0; k < a->nports; k++)
                        json_object_array_add(a->ports, json_object_new_object());
        return 0;
}

/* The boot request body of one instance named name (caller puts it). */
static struct json_object *boot_body(const struct boot_args *a, const char *name)
{
        struct json_object *b = json_object_new_object();

        json_object_object_add(b, "name", json_object_new_string(name));
        json_object_object_add(b, "vcpus", json_object_new_int((int)a->vcpus));
        json_object_object_add(b, "memory_mb", json_object_new_int((int)a->memory));
        json_object_object_add(b, "ports", json_object_get(a->ports));
        if (a->groups)
                json_object_object_add(b, "secgroups", json_object_get(a->groups));
        if (a->cpu_set)
                json_object_object_add(b, "cpu_set", json_object_new_string(a->cpu_set));
        if (a->image)
                json_object_object_add(b, "image", json_object_new_string(a->image));
        if (a->disk_gb)
                json_object_object_add(b, "disk", json_object_new_int64(a->disk_gb));
        if (a->key)
                json_object_object_add(b, "key", json_object_new_string(a->key));
        if (a->user_data)
                json_object_object_add(b, "user_data", json_object_new_string(a->user_data));
        if (a->kernel)
                json_object_object_add(b, "kernel", json_object_new_string(a->kernel));
        if (a->ramdisk)
                json_object_object_add(b, "ramdisk", json_object_new_string(a->ramdisk));
        if (a->cmdline)
                json_object_object_add(b, "cmdline", json_object_new_string(a->cmdline));
        return b;
}

/* Bulk: NAME-1..NAME-N, with progress; explicit port ids cannot repeat. Exit code. */
static int boot_bulk(const struct boot_args *a)
{
        struct bulk_item *items = calloc(a->count, sizeof(*items));
        int r;

        if (!items || (a->explicit_ports && a->count > 1)) {
                if (items)
                        fprintf(stderr, "error: --port cannot be combined with --count (ports are unique); use --ports N\n");
                free(items);
                return 2;
        }
        for (uint32_t k = 0; k < a->count; k++) {
                struct json_object *b;
                (void)snprintf(items[k].label, sizeof(items[k].label), "%s-%u", a->name, k + 1);
                b = boot_body(a, items[k].label);
                items[k].body = strdup(json_object_to_json_string(b));
                json_object_put(b);
                (void)strscpy(items[k].method, "POST", sizeof(items[k].method));
                (void)strscpy(items[k].path, "/v1/instances?wait=1", sizeof(items[k].path));
        }
        r = run_bulk(items, a->count, "boot") ? 1 : 0;
        for (uint32_t k = 0; k < a->count; k++)
                free(items[k].body);
        free(items);
        return r;
}

/* One instance: the answer shown, with the warnings about filtering and pinning. Exit code. */
static int boot_one(const struct boot_args *a)
{
        struct json_object *b = boot_body(a, a->name), *resp = NULL;
        int r;

        r = call("POST", a->wait ? "/v1/instances?wait=1" : "/v1/instances", json_object_to_json_string(b), &resp);
        json_object_put(b);
        if (r < 0)
                return exit_for(r);
        if (opt_json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        else
                print_instance_detail(resp);
        warn_unfiltered(resp);
        warn_unpinned(resp);
        json_object_put(resp);
        return 0;
}

static int cmd_boot(int argc, char **argv)
{
        struct boot_args a = { .ports = json_object_new_array(), .vcpus = 1, .memory = 64, .nports = 1 };
        int r = 2;

        if (boot_parse_args(argc, argv, &a) == 0)
                r = a.count > 0 ? boot_bulk(&a) : boot_one(&a);
        json_object_put(a.ports);
        json_object_put(a.groups);
        free(a.key);
        free(a.user_data);
        return r;
}

static int cmd_list(void)
{
        struct json_object *resp = NULL, *list;
        int r = call("GET", "/v1/instances", NULL, &resp);

        if (r < 0)
                return exit_for(r);
        if (opt_json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        else {
                list = jobj(resp, "instances");
                print_instance_header();
                for (size_t i = 0; list && i < json_object_array_length(list); i++)
                        print_instance_row(json_object_array_get_idx(list, i));
        }
        json_object_put(resp);
        return 0;
}

static bool instance_id_ok(const char *id) { return uuid_is_valid(id) || instance_name_is_valid(id); }

static int cmd_show(int argc, char **argv)
{
        struct json_object *resp = NULL;
        char path[160];
        int r;

        if (argc != 1 || !instance_id_ok(argv[0])) {
                fprintf(stderr, "usage: nova-hypervisor show NAME|UUID\n");
                return 2;
        }
        (void)snprintf(path, sizeof(path), "/v1/instances/%s", argv[0]);
        r = call("GET", path, NULL, &resp);
        if (r < 0)
                return exit_for(r);
        if (opt_json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        else
                print_instance_detail(resp);
        json_object_put(resp);
        return 0;
}

/* stop|start|reboot|delete ID... [--wait]; several ids (or delete --all) run as a bulk with progress. */
static int cmd_instance_action(const char *action, int argc, char **argv)
{
        struct bulk_item *items;
        struct json_object *all = NULL;
        bool wait = false, every = false;
        size_t n = 0, cap;
        int r;

        for (int k = 0; k < argc; k++) {
                if (streq(argv[k], "--wait"))
                        wait = true;
                else if (streq(argv[k], "--all") && streq(action, "delete"))
                        every = true;
                else if (!instance_id_ok(argv[k])) {
                        fprintf(stderr, "error: '%s' is not an instance name or UUID\n", argv[k]);
                        return 2;
                }
        }
        if (every) {
                r = call("GET", "/v1/instances", NULL, &all);
                if (r < 0)
                        return exit_for(r);
        }
        cap = (size_t)argc + (all ? json_object_array_length(jobj(all, "instances")) : 0);
        items = calloc(cap ? cap : 1, sizeof(*items));
        if (!items)
                return 1;
        for (int k = 0; k < argc; k++)
                if (argv[k][0] != '-')
                        (void)strscpy(items[n++].label, argv[k], sizeof(items[0].label));
        for (size_t k = 0; all && k < json_object_array_length(jobj(all, "instances")); k++)
                (void)strscpy(items[n++].label, jstr(json_object_array_get_idx(jobj(all, "instances"), k), "name"),
                              sizeof(items[0].label));
        json_object_put(all);
        if (n == 0) {
                free(items);
                if (every) {
                        printf("no instances\n");
                        return 0;
                }
                fprintf(stderr, "usage: nova-hypervisor %s NAME|UUID... [--wait]%s\n", action,
                        streq(action, "delete") ? " | delete --all" : "");
                return 2;
        }
        for (size_t k = 0; k < n; k++) {
                (void)strscpy(items[k].method, streq(action, "delete") ? "DELETE" : "POST", sizeof(items[k].method));
                if (streq(action, "delete"))
                        (void)snprintf(items[k].path, sizeof(items[k].path), "/v1/instances/%s%s", items[k].label,
                                       wait || n > 1 ? "?wait=1" : "");
                else
                        (void)snprintf(items[k].path, sizeof(items[k].path), "/v1/instances/%s/%s%s", items[k].label,
                                       action, wait || n > 1 ? "?wait=1" : "");
        }
        if (n > 1) {
                r = run_bulk(items, n, action) ? 1 : 0;
        } else {
                struct json_object *resp = NULL;
                r = call(items[0].method, items[0].path, NULL, &resp);
                if (r < 0) {
                        free(items);
                        return exit_for(r);
                }
                if (opt_json)
                        printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                else if (jstr(resp, "deleted"))
                        printf("deleted %s\n", items[0].label);
                else
                        printf("%s %s: %s%s%s\n", action, jstr(resp, "name"), jstr(resp, "vm_state"),
                               jstr(resp, "task") ? ", " : "", jstr(resp, "task") ? jstr(resp, "task") : "");
                json_object_put(resp);
                r = 0;
        }
        free(items);
        return r;
}

/* Our ports on the integration bridge, in the shape of `ovs-vsctl show`. */
static int cmd_ports(void)
{
        struct json_object *resp = NULL, *ports;
        const char *bridge = NULL;
        int r = call("GET", "/v1/vifs", NULL, &resp);

        if (r < 0)
                return exit_for(r);
        if (opt_json) {
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                json_object_put(resp);
                return 0;
        }
        ports = jobj(resp, "ports");
        if (!ports || json_object_array_length(ports) == 0)
                printf("(no ports of nova-hypervisor on the integration bridge)\n");
        for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
                struct json_object *p = json_object_array_get_idx(ports, i);
                const char *err = jstr(p, "error"), *inst = jstr(p, "instance_name");

                if (!bridge || !streq(bridge, jstr(p, "bridge"))) {
                        bridge = jstr(p, "bridge");
                        printf("Bridge %s\n", bridge);
                }
                printf("    Port %s\n        Interface %s\n", jstr(p, "name"), jstr(p, "name"));
                printf("            ofport: %lld, link_state: %s, mtu_request: %lld\n", (long long)jint(p, "ofport"),
                       jstr(p, "link_state") ? jstr(p, "link_state") : "-", (long long)jint(p, "mtu"));
                printf("            external_ids: {attached-mac=\"%s\", iface-id=\"%s\", iface-status=%s, vm-uuid=\"%s\"}\n",
                       jstr(p, "mac"), jstr(p, "port_uuid"), jstr(p, "iface_status"), jstr(p, "instance_uuid"));
                printf("            instance: %s\n", inst ? inst : "(none: an orphan)");
                if (jstr(p, "ovn_binding"))
                        printf("            ovn: logical port %s, %s\n", jstr(p, "port_uuid"),
                               streq(jstr(p, "ovn_binding"), "installed")
                                       ? "ovn-installed (bound to this chassis, flows in)"
                                       : "not installed yet (ovn-controller has not bound it: is it running, does the "
                                         "logical port exist?)");
                if (err)
                        printf("            error: \"%s\"\n", err);
        }
        if (jbool(resp, "truncated"))
                printf("(%lld ports in all; the first %zu are shown)\n", (long long)jint(resp, "total"),
                       json_object_array_length(ports));
        json_object_put(resp);
        return 0;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: nova-hypervisor [--socket PATH] [--json] COMMAND\n"
                   "commands:\n"
                   "  status                             the core and every plug: connected, module, fix\n"
                   "  plug connect|disconnect PLUG       outside a snap: stand-in for snap connect\n"
                   "  plug names | refresh | disconnecting PLUG   for the snap's hooks\n"
                   "  config-check                       snap configuration (snapctl get -d) on stdin -> config file\n"
                   "  explain-denial [FILE]              which snap interface grants each AppArmor/seccomp denial\n"
                   "  boot NAME [--vcpus N] [--memory MB] [--port uuid=..,mac=..,mtu=..,ip=..]... [--ports N]\n"
                   "            [--secgroup G]... [--cpu-set LIST] [--count N] [--wait]\n"
                   "            [--image IMG [--disk GB] [--key-file FILE] [--user-data FILE]\n"
                   "             [--kernel IMG --ramdisk IMG [--cmdline TEXT]]]\n"
                   "            boot one instance (or NAME-1..NAME-N); --cpu-set pins its QEMU (default: config cpu_set);\n"
                   "            --image: a root disk on the image (qcow2 overlay, max(--disk, its size)) and a config drive;\n"
                   "            --kernel/--ramdisk: direct kernel boot from those images (imported as raw)\n"
                   "  image import NAME FILE|- [--format raw|qcow2] [--size BYTES]   import an image (progress on a terminal)\n"
                   "  image list | show NAME|UUID | delete NAME|UUID | purge (the remove hook: every volume of ours)\n"
                   "  console NAME|UUID [--tail BYTES]       the guest's serial console log (its last BYTES)\n"
                   "  migrate describe NAME | prepare FILE|- | NAME --to URI --host IP [--pool P] [--timeout S]\n"
                   "          | progress NAME | finish NAME | abort NAME [--source]   live migration (docs/MIGRATION.md)\n"
                   "  list | show NAME|UUID                  instances\n"
                   "  stop|start|reboot NAME|UUID... [--wait]\n"
                   "  delete NAME|UUID... [--wait] | delete --all\n"
                   "  ports                                  our ports on the integration bridge (OVS)\n"
                   "  port create [--port-uuid U] [--mac M] [--mtu N]\n"
                   "  port list | show UUID | delete UUID\n"
                   "  port set UUID --secgroup GROUP... | --no-secgroup   the port's security groups\n"
                   "  secgroup list | show G | delete G | create NAME [--description TEXT]\n"
                   "  secgroup rule add G --direction ingress|egress [--ethertype IPv4|IPv6]\n"
                   "           [--protocol P] [--port N[:M]] [--icmp-type T] [--icmp-code C] [--remote CIDR]\n"
                   "  secgroup rule delete RULE_ID\n"
                   "  host                                   inventory and placement (VCPU, MEMORY_MB, DISK_GB)\n"
                   "  stats [NAME|UUID]                      load, instance CPU/RSS, per-VIF counters\n"
                   "  pin NAME|UUID --cpus LIST [--priority N]  pin the instance's QEMU threads\n"
                   "socket: --socket, $NOVA_HYPERVISOR_SOCKET, or the default of the install\n");
}

int main(int argc, char **argv)
{
        int i = 1;

        for (; i < argc && argv[i][0] == '-'; i++) {
                if (streq(argv[i], "--json"))
                        opt_json = true;
                else if (streq(argv[i], "--socket") && i + 1 < argc)
                        opt_socket = argv[++i];
                else if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
                        usage(stdout);
                        return 0;
                } else {
                        usage(stderr);
                        return 2;
                }
        }
        /* --json may also follow the command. */
        for (int k = i; k < argc; k++)
                if (streq(argv[k], "--json")) {
                        opt_json = true;
                        memmove(&argv[k], &argv[k + 1], (size_t)(argc - k) * sizeof(char *));
                        argc--;
                        k--;
                }
        if (!opt_socket)
                opt_socket = default_socket();
        if (i < argc && streq(argv[i], "config-check"))
                return cmd_config_check(argc - i - 1, argv + i + 1);
        if (i < argc && streq(argv[i], "explain-denial"))
                return cmd_explain_denial(argc - i - 1, argv + i + 1);
        if (i >= argc) {
                usage(stderr);
                return 2;
        }
        if (streq(argv[i], "status") && argc == i + 1)
                return cmd_status();
        if (streq(argv[i], "plug"))
                return cmd_plug(argc - i - 1, argv + i + 1);
        if (streq(argv[i], "port"))
                return cmd_port(argc - i - 1, argv + i + 1);
        if (streq(argv[i], "secgroup"))
                return cmd_secgroup(argc - i - 1, argv + i + 1);
        if (streq(argv[i], "ports") && argc == i + 1)
                return cmd_ports();
        if (streq(argv[i], "host"))
                return cmd_host(opt_socket, opt_json, argc - i - 1, argv + i + 1);
        if (streq(argv[i], "stats"))
                return cmd_stats(opt_socket, opt_json, argc - i - 1, argv + i + 1);
        if (streq(argv[i], "pin"))
                return cmd_pin(opt_socket, opt_json, argc - i - 1, argv + i + 1);
        if (streq(argv[i], "boot"))
                return cmd_boot(argc - i, argv + i);
        if (streq(argv[i], "image"))
                return cmd_image(opt_socket, opt_json, argc - i - 1, argv + i + 1);
        if (streq(argv[i], "migrate"))
                return cmd_migrate(opt_socket, opt_json, argc - i - 1, argv + i + 1);
        if (streq(argv[i], "console"))
                return cmd_console(opt_socket, opt_json, argc - i - 1, argv + i + 1);
        if (streq(argv[i], "list") && argc == i + 1)
                return cmd_list();
        if (streq(argv[i], "show"))
                return cmd_show(argc - i - 1, argv + i + 1);
        if (streq(argv[i], "stop") || streq(argv[i], "start") || streq(argv[i], "reboot") || streq(argv[i], "delete"))
                return cmd_instance_action(argv[i], argc - i - 1, argv + i + 1);
        usage(stderr);
        return 2;
}
