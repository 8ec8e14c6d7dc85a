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
#include "names.h"
#include "plugs.h"
#include "snapctl.h"

#include <getopt.h>
#include <json-c/json.h>
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

        if (argc != 2 || (!streq(argv[0], "connect") && !streq(argv[0], "disconnect"))) {
                fprintf(stderr, "usage: nova-hypervisor plug connect|disconnect PLUG\n");
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

static int cmd_port(int argc, char **argv)
{
        struct json_object *resp = NULL, *body = NULL;
        char path[128];
        int r;

        if (argc < 1)
                goto usage;
        if (streq(argv[0], "list") && argc == 1) {
                struct json_object *ports;
                r = call("GET", "/v1/ports", NULL, &resp);
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
        if ((streq(argv[0], "show") || streq(argv[0], "delete")) && argc == 2) {
                if (!uuid_is_valid(argv[1])) {
                        fprintf(stderr, "error: '%s' is not a canonical lowercase port UUID\n", argv[1]);
                        return 2;
                }
                if (xsnprintf(path, sizeof(path), "/v1/ports/%s", argv[1]) < 0)
                        return 2;
                r = call(argv[0][0] == 's' ? "GET" : "DELETE", path, NULL, &resp);
                if (r < 0)
                        return exit_for(r);
                if (opt_json)
                        printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
                else if (argv[0][0] == 's') {
                        print_port_header();
                        print_port_row(resp);
                } else
                        printf("deleted port %s\n", argv[1]);
                json_object_put(resp);
                return 0;
        }
        if (streq(argv[0], "create")) {
                static const struct option opts[] = {
                        { "port-uuid", required_argument, NULL, 'u' },
                        { "mac", required_argument, NULL, 'm' },
                        { "mtu", required_argument, NULL, 't' },
                        { 0 },
                };
                int c;
                body = json_object_new_object();
                optind = 1;
                while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                        uint32_t mtu;
                        switch (c) {
                        case 'u':
                                if (!uuid_is_valid(optarg)) {
                                        fprintf(stderr, "error: --port-uuid: not a canonical lowercase UUID\n");
                                        goto fail_usage;
                                }
                                json_object_object_add(body, "port_uuid", json_object_new_string(optarg));
                                break;
                        case 'm':
                                if (!mac_is_valid(optarg)) {
                                        fprintf(stderr, "error: --mac: not a lowercase unicast MAC address\n");
                                        goto fail_usage;
                                }
                                json_object_object_add(body, "mac", json_object_new_string(optarg));
                                break;
                        case 't':
                                if (parse_u32(optarg, 68, 65535, &mtu) < 0) {
                                        fprintf(stderr, "error: --mtu: must be a number in 68..65535\n");
                                        goto fail_usage;
                                }
                                json_object_object_add(body, "mtu", json_object_new_int((int)mtu));
                                break;
                        default:
                                goto fail_usage;
                        }
                }
                if (optind != argc)
                        goto fail_usage;
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
usage:
        fprintf(stderr, "usage: nova-hypervisor port create [--port-uuid UUID] [--mac MAC] [--mtu N]\n"
                        "       nova-hypervisor port list | show UUID | delete UUID\n");
        return 2;
fail_usage:
        json_object_put(body);
        return 2;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: nova-hypervisor [--socket PATH] [--json] COMMAND\n"
                   "commands:\n"
                   "  status                             the core and every plug: connected, module, fix\n"
                   "  plug connect|disconnect PLUG       outside a snap: stand-in for snap connect\n"
                   "  port create [--port-uuid U] [--mac M] [--mtu N]\n"
                   "  port list | show UUID | delete UUID\n"
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
        usage(stderr);
        return 2;
}
