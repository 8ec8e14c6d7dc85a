/* migrate-cmds.c - see migrate-cmds.h */
#include "migrate-cmds.h"

#include "apiclient.h"
#include "names.h"

#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#define MIGRATE_BODY_MAX (512 * 1024)

static const char *js(struct json_object *o, const char *key)
{
        struct json_object *v;
        return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                                     : "";
}

static long long ji(struct json_object *o, const char *key)
{
        struct json_object *v;
        return o && json_object_object_get_ex(o, key, &v) ? (long long)json_object_get_int64(v) : 0;
}

/* Print the outcome of status/resp: 0, 1 (an error answer) or 3 (unreachable). Takes resp. */
static int outcome(const char *socket, bool json, int status, struct json_object *resp, bool print_json)
{
        struct json_object *e, *v;

        if (status < 0) {
                fprintf(stderr, "error: cannot reach nova-compute at %s: %s\n", socket, strerror(-status));
                return 3;
        }
        if (status >= 300) {
                e = NULL;
                if (resp && json_object_object_get_ex(resp, "error", &e) && json_object_object_get_ex(e, "message", &v))
                        fprintf(stderr, "error: %s (HTTP %d)\n", json_object_get_string(v), status);
                else
                        fprintf(stderr, "error: HTTP %d\n", status);
                json_object_put(resp);
                return 1;
        }
        if (json || print_json)
                printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
        return 0;
}

static int read_all(const char *path, char **ret)
{
        FILE *f = streq(path, "-") ? stdin : fopen(path, "re");
        size_t len = 0, k;
        char *buf;

        if (!f)
                return -errno;
        buf = malloc(MIGRATE_BODY_MAX + 1);
        if (!buf) {
                if (f != stdin)
                        fclose(f);
                return -ENOMEM;
        }
        while ((k = fread(buf + len, 1, MIGRATE_BODY_MAX + 1 - len, f)) > 0 && len < MIGRATE_BODY_MAX + 1)
                len += k;
        if (f != stdin)
                fclose(f);
        if (len > MIGRATE_BODY_MAX) {
                free(buf);
                return -EFBIG;
        }
        buf[len] = '\0';
        *ret = buf;
        return 0;
}

static int prepare(const char *socket, bool json, const char *path)
{
        struct json_object *resp = NULL, *ports, *v, *ovn;
        const char *from, *here;
        char *body = NULL;
        int r = read_all(path, &body), status;

        if (r < 0) {
                fprintf(stderr, "error: %s: %s\n", path, strerror(-r));
                return 1;
        }
        status = api_request(socket, "POST", "/v1/migrations?wait=1", body, 10 * APICLIENT_TIMEOUT_MS, &resp);
        free(body);
        r = outcome(socket, json, status, resp, false);
        if (r != 0 || json) {
                if (r == 0)
                        json_object_put(resp);
                return r;
        }
        printf("prepared %s (%s): %s; waiting for the migration\n", js(resp, "name"), js(resp, "uuid"), js(resp, "task"));
        /* the chassis names the core reported (the source's from its description, this host's
         * from its openvswitch module); a placeholder for one it could not name */
        if (!json_object_object_get_ex(resp, "ovn", &ovn))
                ovn = NULL;
        from = ovn && json_object_object_get_ex(ovn, "source_chassis", &v) ? json_object_get_string(v) : "SOURCE";
        here = ovn && json_object_object_get_ex(ovn, "destination_chassis", &v) ? json_object_get_string(v) : "THIS-CHASSIS";
        if (json_object_object_get_ex(resp, "ports", &ports))
                for (size_t i = 0; i < json_object_array_length(ports); i++) {
                        v = json_object_array_get_idx(ports, i);
                        printf("port %s: tap %s ready here; with OVN bind it on both chassis: "
                               "options:requested-chassis=%s,%s options:activation-strategy=rarp\n",
                               js(v, "port_uuid"), js(v, "tap"), from, here);
                }
        json_object_put(resp);
        return 0;
}

static void print_progress(struct json_object *p)
{
        long long total = ji(p, "data_total"), done = ji(p, "data_processed");

        printf("migrating: %lld ms, %lld of %lld MiB processed (%lld%%), %lld MiB remaining, dirty rate %lld pages/s, "
               "memory pass %lld, disk %lld/%lld MiB\n",
               ji(p, "elapsed_ms"), done >> 20, total >> 20, total ? done * 100 / total : 0, ji(p, "data_remaining") >> 20,
               ji(p, "memory_dirty_rate"), ji(p, "memory_iteration"), ji(p, "disk_processed") >> 20, ji(p, "disk_total") >> 20);
        fflush(stdout);
}

static int migrate(const char *socket, bool json, const char *id, int argc, char **argv)
{
        static const struct option opts[] = {
                { "to", required_argument, NULL, 't' },      { "host", required_argument, NULL, 'h' },
                { "pool", required_argument, NULL, 'p' },    { "timeout", required_argument, NULL, 'T' },
                { "bandwidth", required_argument, NULL, 'b' }, { 0 },
        };
        struct json_object *body = json_object_new_object(), *resp = NULL;
        char path[256], job[256];
        uint64_t timeout_s = 600, n;
        int c, fd, status, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                if (c == 't')
                        json_object_object_add(body, "to", json_object_new_string(optarg));
                else if (c == 'h')
                        json_object_object_add(body, "host", json_object_new_string(optarg));
                else if (c == 'p')
                        json_object_object_add(body, "pool", json_object_new_string(optarg));
                else if (c == 'T' && parse_u64(optarg, 1, 86400, &timeout_s) == 0)
                        json_object_object_add(body, "timeout_s", json_object_new_int64((int64_t)timeout_s));
                else if (c == 'b' && parse_u64(optarg, 1, 1 << 20, &n) == 0)
                        json_object_object_add(body, "bandwidth_mib", json_object_new_int64((int64_t)n));
                else {
                        json_object_put(body);
                        fprintf(stderr, "usage: nova-hypervisor migrate NAME --to URI --host IP [--pool P] [--timeout S] "
                                        "[--bandwidth MIB]\n");
                        return 2;
                }
        }
        if (optind != argc || strlen(id) > 80) {
                json_object_put(body);
                fprintf(stderr, "usage: nova-hypervisor migrate NAME --to URI --host IP [--pool P] [--timeout S]\n");
                return 2;
        }
        (void)snprintf(path, sizeof(path), "/v1/instances/%s/migrate?wait=1", id);
        (void)snprintf(job, sizeof(job), "/v1/instances/%s/migrate", id);
        fd = api_send_request(socket, "POST", path, json_object_to_json_string(body));
        json_object_put(body);
        if (fd < 0)
                return outcome(socket, json, fd, NULL, false);
        /* progress each second while the answer has not come */
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                r = poll(&p, 1, 1000);
                if (r != 0)
                        break;
                if (!json && api_request(socket, "GET", job, NULL, 5000, &resp) == 200)
                        print_progress(resp);
                json_object_put(resp);
                resp = NULL;
        }
        status = api_read_response(fd, (int)(timeout_s + 120) * 1000, &resp);
        (void)close(fd);
        r = outcome(socket, json, status, resp, false);
        if (r != 0 || json) {
                if (r == 0)
                        json_object_put(resp);
                return r;
        }
        printf("migrated %s in %lld ms: %lld MiB processed of %lld (disk %lld of %lld MiB, %lld memory passes); "
               "forgotten here\n",
               js(resp, "removed"), ji(resp, "elapsed_ms"), ji(resp, "data_processed") >> 20, ji(resp, "data_total") >> 20,
               ji(resp, "disk_processed") >> 20, ji(resp, "disk_total") >> 20, ji(resp, "memory_iteration"));
        if (json_object_object_get_ex(resp, "downtime_ms", NULL))
                printf("downtime %lld ms (libvirt's measure, the destination's completed-job statistics)\n",
                       ji(resp, "downtime_ms"));
        else
                printf("downtime: not reported by the destination's libvirt\n");
        json_object_put(resp);
        return 0;
}

/* method PREFIX ID SUFFIX */
static int simple(const char *socket, bool json, const char *method, const char *prefix, const char *id, const char *suffix,
                  const char *done)
{
        struct json_object *resp = NULL;
        char path[256];
        int status, r;

        if (strlen(id) > 80) {
                fprintf(stderr, "error: no such instance\n");
                return 1;
        }
        (void)snprintf(path, sizeof(path), "%s%s%s", prefix, id, suffix);
        status = api_request(socket, method, path, NULL, 10 * APICLIENT_TIMEOUT_MS, &resp);
        r = outcome(socket, json, status, resp, done == NULL);
        if (r == 0 && done && !json)
                printf("%s %s\n", done, id);
        if (r == 0)
                json_object_put(resp);
        return r;
}

int cmd_migrate(const char *socket, bool json, int argc, char **argv)
{
        if (argc == 2 && streq(argv[0], "describe"))
                return simple(socket, json, "GET", "/v1/instances/", argv[1], "/migration", NULL);
        if (argc == 2 && streq(argv[0], "prepare"))
                return prepare(socket, json, argv[1]);
        if (argc == 2 && streq(argv[0], "finish"))
                return simple(socket, json, "POST", "/v1/migrations/", argv[1], "/finish?wait=1", "finished: recorded here:");
        if (argc == 2 && streq(argv[0], "abort"))
                return simple(socket, json, "POST", "/v1/migrations/", argv[1], "/abort?wait=1",
                              "aborted: prepared resources removed for");
        if (argc == 3 && streq(argv[0], "abort") && streq(argv[2], "--source"))
                return simple(socket, json, "POST", "/v1/instances/", argv[1], "/migrate/abort", "abort requested for");
        if (argc == 2 && streq(argv[0], "progress"))
                return simple(socket, json, "GET", "/v1/instances/", argv[1], "/migrate", NULL);
        if (argc >= 1 && argv[0][0] != '-' && !streq(argv[0], "describe") && !streq(argv[0], "prepare") &&
            !streq(argv[0], "finish") && !streq(argv[0], "abort") && !streq(argv[0], "progress"))
                return migrate(socket, json, argv[0], argc, argv);
        fprintf(stderr, "usage: nova-hypervisor migrate describe NAME | prepare FILE|- | NAME --to URI --host IP [--pool P] "
                        "[--timeout S] | progress NAME | finish NAME | abort NAME [--source]\n");
        return 2;
}
