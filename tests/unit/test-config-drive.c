/* test-config-drive.c - unit tests for interfaces/libvirt/config-drive.c.
 *
 * The ISO is read back with a real reader, isoinfo (genisoimage): the volume
 * label, Rock Ridge and Joliet are present, the file list is exactly ours and
 * every file, through both the Rock Ridge and the Joliet tree, has the bytes
 * the builders made. The JSON is checked against nova's shapes. */
#include <check.h>
#include <fcntl.h>
#include <sys/wait.h>

#include "config-drive.h"

#define UUID "6c3f1f6e-7f7a-4f51-9a0e-2f1d3c4b5a69"
#define PORT1 "0f1e2d3c-4b5a-4697-8877-665544332211"
#define PORT2 "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
#define NET1 "11111111-2222-4333-8444-555555555555"
#define KEY1 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx3ZQqk1vGZ1w0L5H7q8yV2nGfQp1dJ3pKxkM0a8b0c alice@host"

static const char spec_json[] =
        "{\"uuid\":\"" UUID "\",\"name\":\"web 1 \xc3\xa9t\xc3\xa9\",\"hostname\":\"web-1\","
        "\"public_keys\":[{\"name\":\"alice\",\"data\":\"" KEY1 "\"},{\"name\":\"bob key\",\"data\":\"ssh-rsa AAAAB3 b/c\"}],"
        "\"ports\":[{\"port_id\":\"" PORT1 "\",\"network_id\":\"" NET1 "\",\"mac\":\"fa:16:3e:12:34:56\",\"mtu\":1442,"
        "\"fixed_ips\":[{\"address\":\"10.0.0.5\",\"subnet\":\"10.0.0.0/24\",\"gateway\":\"10.0.0.1\"},"
        "{\"address\":\"fd00:1::5\",\"subnet\":\"fd00:1::/64\"}],\"dns\":[\"10.0.0.2\",\"10.0.0.2\"]},"
        "{\"port_id\":\"" PORT2 "\",\"network_id\":\"" NET1 "\",\"mac\":\"fa:16:3e:00:00:02\",\"mtu\":1500,"
        "\"fixed_ips\":[{\"address\":\"192.0.2.9\",\"subnet\":\"192.0.2.0/28\"}],\"dns\":[\"10.0.0.2\",\"2001:db8::53\"]}],"
        "\"user_data\":\"I2Nsb3VkLWNvbmZpZwpydW5jbWQ6IFtlY2hvLCBoaV0K\"}";
/* base64 of "#cloud-config\nruncmd: [echo, hi]\n" */
#define USER_DATA "#cloud-config\nruncmd: [echo, hi]\n"

static char tmpdir[] = "/tmp/test-config-drive.XXXXXX";

static struct config_drive_spec *decode(const char *text, char *err, size_t errlen)
{
        struct json_object *o = json_tokener_parse(text);
        struct config_drive_spec *spec = NULL;
        int r;

        ck_assert_msg(o != NULL, "test JSON does not parse: %s", text);
        r = config_drive_spec_from_json(o, &spec, err, errlen);
        json_object_put(o);
        if (r < 0) {
                ck_assert_ptr_null(spec);
                return NULL;
        }
        return spec;
}

/* ---- the decoder ---- */

START_TEST(test_decode_valid)
{
        char err[256] = "";
        struct config_drive_spec *spec = decode(spec_json, err, sizeof(err));

        ck_assert_msg(spec != NULL, "refused: %s", err);
        ck_assert_str_eq(spec->uuid, UUID);
        ck_assert_str_eq(spec->name, "web 1 \xc3\xa9t\xc3\xa9");
        ck_assert_str_eq(spec->hostname, "web-1");
        ck_assert_uint_eq(spec->n_keys, 2);
        ck_assert_str_eq(spec->keys[1].name, "bob key");
        ck_assert_uint_eq(spec->n_ports, 2);
        ck_assert_uint_eq(spec->ports[0].mtu, 1442);
        ck_assert_uint_eq(spec->ports[0].n_ips, 2);
        ck_assert_uint_eq(spec->ports[0].ips[1].family, 6);
        ck_assert(!spec->ports[0].ips[1].has_gateway);
        ck_assert_uint_eq(spec->ports[0].n_dns, 2);
        ck_assert_uint_eq(spec->user_data_len, strlen(USER_DATA));
        ck_assert_mem_eq(spec->user_data, USER_DATA, strlen(USER_DATA));
        config_drive_spec_free(spec);

        /* minimal: no keys, no ports, no user data */
        spec = decode("{\"uuid\":\"" UUID "\",\"name\":\"a\",\"hostname\":\"a\"}", err, sizeof(err));
        ck_assert_msg(spec != NULL, "refused: %s", err);
        ck_assert_uint_eq(spec->n_ports, 0);
        ck_assert_ptr_null(spec->user_data);
        config_drive_spec_free(spec);
}
END_TEST

START_TEST(test_decode_refused)
{
#define BASE "\"uuid\":\"" UUID "\",\"name\":\"n\",\"hostname\":\"h\""
#define PORT(extra) "\"ports\":[{\"port_id\":\"" PORT1 "\",\"network_id\":\"" NET1 "\",\"mac\":\"fa:16:3e:12:34:56\",\"mtu\":1500" extra "}]"
        static const char *const bad[] = {
                "[]",
                "{}",
                "{" BASE ",\"extra\":1}",
                "{\"uuid\":\"" UUID "\",\"name\":\"n\"}",
                "{\"uuid\":\"../../etc\",\"name\":\"n\",\"hostname\":\"h\"}",
                "{\"uuid\":\"6C3F1F6E-7F7A-4F51-9A0E-2F1D3C4B5A69\",\"name\":\"n\",\"hostname\":\"h\"}",
                "{\"uuid\":\"" UUID "\",\"name\":\"\",\"hostname\":\"h\"}",
                "{\"uuid\":\"" UUID "\",\"name\":\"a\\nb\",\"hostname\":\"h\"}",
                "{\"uuid\":\"" UUID "\",\"name\":\"a\\u0000b\",\"hostname\":\"h\"}",
                "{\"uuid\":\"" UUID "\",\"name\":\"\xc3\",\"hostname\":\"h\"}",
                "{\"uuid\":\"" UUID "\",\"name\":\"\xed\xa0\x80\",\"hostname\":\"h\"}",
                "{\"uuid\":\"" UUID "\",\"name\":\"\xc0\xaf\",\"hostname\":\"h\"}",
                "{\"uuid\":\"" UUID "\",\"name\":7,\"hostname\":\"h\"}",
                "{\"uuid\":\"" UUID "\",\"name\":\"n\",\"hostname\":\"Web\"}",
                "{\"uuid\":\"" UUID "\",\"name\":\"n\",\"hostname\":\"-web\"}",
                "{\"uuid\":\"" UUID "\",\"name\":\"n\",\"hostname\":\"web-\"}",
                "{\"uuid\":\"" UUID "\",\"name\":\"n\",\"hostname\":\"a..b\"}",
                "{\"uuid\":\"" UUID "\",\"name\":\"n\",\"hostname\":\"a_b\"}",
                "{\"uuid\":\"" UUID "\",\"name\":\"n\",\"hostname\":\"a b\"}",
                "{" BASE ",\"public_keys\":{}}",
                "{" BASE ",\"public_keys\":[{\"name\":\"k\"}]}",
                "{" BASE ",\"public_keys\":[{\"name\":\"k/x\",\"data\":\"ssh-rsa A\"}]}",
                "{" BASE ",\"public_keys\":[{\"name\":\"k\",\"data\":\"ssh-rsa A\\nssh-rsa B\"}]}",
                "{" BASE ",\"public_keys\":[{\"name\":\"k\",\"data\":\"a\"},{\"name\":\"k\",\"data\":\"b\"}]}",
                "{" BASE ",\"public_keys\":[{\"name\":\"k\",\"data\":\"a\",\"type\":\"x509\"}]}",
                "{" BASE ",\"user_data\":\"abc\"}",
                "{" BASE ",\"user_data\":\"ab=c\"}",
                "{" BASE ",\"user_data\":\"YR==\"}",
                "{" BASE ",\"user_data\":\"YW Jj\"}",
                "{" BASE ",\"user_data\":5}",
                "{" BASE "," PORT(",\"mtu\":67") "}",
                "{" BASE ",\"ports\":[{\"port_id\":\"" PORT1 "\",\"network_id\":\"" NET1 "\",\"mac\":\"fa:16:3e:12:34:56\",\"mtu\":9217}]}",
                "{" BASE ",\"ports\":[{\"port_id\":\"" PORT1 "\",\"network_id\":\"" NET1 "\",\"mac\":\"fa:16:3e:12:34:56\",\"mtu\":\"1500\"}]}",
                "{" BASE ",\"ports\":[{\"port_id\":\"" PORT1 "\",\"network_id\":\"" NET1 "\",\"mac\":\"ff:ff:ff:ff:ff:ff\",\"mtu\":1500}]}",
                "{" BASE ",\"ports\":[{\"port_id\":\"tap0\",\"network_id\":\"" NET1 "\",\"mac\":\"fa:16:3e:12:34:56\",\"mtu\":1500}]}",
                "{" BASE "," PORT(",\"fixed_ips\":[{\"address\":\"10.0.1.5\",\"subnet\":\"10.0.0.0/24\"}]") "}",
                "{" BASE "," PORT(",\"fixed_ips\":[{\"address\":\"10.0.0.5\",\"subnet\":\"10.0.0.1/24\"}]") "}",
                "{" BASE "," PORT(",\"fixed_ips\":[{\"address\":\"10.0.0.5\",\"subnet\":\"fd00::/64\"}]") "}",
                "{" BASE "," PORT(",\"fixed_ips\":[{\"address\":\"10.0.0.5\",\"subnet\":\"10.0.0.0/24\",\"gateway\":\"fd00::1\"}]") "}",
                "{" BASE "," PORT(",\"fixed_ips\":[{\"address\":\"10.0.0.5\",\"subnet\":\"10.0.0.0/24\",\"gateway\":\"10.0.0.5\"}]") "}",
                "{" BASE "," PORT(",\"fixed_ips\":[{\"address\":\"10.0.0.5\",\"subnet\":\"10.0.0.0/24\"},{\"address\":\"10.0.0.5\",\"subnet\":\"10.0.0.0/24\"}]") "}",
                "{" BASE "," PORT(",\"fixed_ips\":[{\"address\":\"10.0.0.5\"}]") "}",
                "{" BASE "," PORT(",\"dns\":[\"dns.example\"]") "}",
                "{" BASE "," PORT(",\"dns\":[\"1.1.1.1\",\"1.1.1.2\",\"1.1.1.3\",\"1.1.1.4\",\"1.1.1.5\"]") "}",
                "{" BASE "," PORT(",\"vlan\":5") "}",
                "{" BASE ",\"ports\":[{\"port_id\":\"" PORT1 "\",\"network_id\":\"" NET1 "\",\"mac\":\"fa:16:3e:12:34:56\",\"mtu\":1500},"
                "{\"port_id\":\"" PORT1 "\",\"network_id\":\"" NET1 "\",\"mac\":\"fa:16:3e:12:34:57\",\"mtu\":1500}]}",
        };
        char err[256];

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct config_drive_spec *spec;

                err[0] = '\0';
                spec = decode(bad[i], err, sizeof(err));
                ck_assert_msg(spec == NULL, "accepted: %s", bad[i]);
                ck_assert_msg(err[0] != '\0', "no reason given for %s", bad[i]);
        }
#undef PORT
#undef BASE
}
END_TEST

START_TEST(test_decode_limits)
{
        /* the largest user data passes, one byte more does not */
        size_t n = CD_USER_DATA_MAX, b64len = (n + 2) / 3 * 4;
        char *text = malloc(b64len + 200), err[256];
        struct config_drive_spec *spec;
        size_t off;

        ck_assert_ptr_nonnull(text);
        off = (size_t)snprintf(text, 200, "{\"uuid\":\"" UUID "\",\"name\":\"n\",\"hostname\":\"h\",\"user_data\":\"");
        memset(text + off, 'A', b64len);
        strcpy(text + off + b64len, "\"}");
        spec = decode(text, err, sizeof(err));
        ck_assert_msg(spec != NULL, "refused: %s", err);
        ck_assert_uint_eq(spec->user_data_len, n);
        config_drive_spec_free(spec);
        memcpy(text + off + b64len, "AAAA\"}", 7); /* 65538 bytes */
        spec = decode(text, err, sizeof(err));
        ck_assert_ptr_null(spec);
        ck_assert(strstr(err, "larger") != NULL);
        free(text);
}
END_TEST

/* Every port an instance can have (16) is described, in network_data.json too; 17 are refused. */
START_TEST(test_decode_sixteen_ports)
{
        char text[8192], err[256], *net = NULL;
        struct config_drive_spec *spec;
        struct json_object *o, *links;
        size_t off;

        for (int total = 16; total <= 17; total++) {
                off = (size_t)snprintf(text, sizeof(text), "{\"uuid\":\"" UUID "\",\"name\":\"n\",\"hostname\":\"h\",\"ports\":[");
                for (int i = 0; i < total; i++)
                        off += (size_t)snprintf(text + off, sizeof(text) - off,
                                                "%s{\"port_id\":\"0f1e2d3c-4b5a-4697-8877-6655443322%02x\",\"network_id\":\"" NET1
                                                "\",\"mac\":\"fa:16:3e:00:00:%02x\",\"mtu\":1500,"
                                                "\"fixed_ips\":[{\"address\":\"10.0.%d.5\",\"subnet\":\"10.0.%d.0/24\"}]}",
                                                i ? "," : "", i, i, i, i);
                (void)snprintf(text + off, sizeof(text) - off, "]}");
                spec = decode(text, err, sizeof(err));
                if (total == 17) {
                        ck_assert_ptr_null(spec);
                        break;
                }
                ck_assert_msg(spec != NULL, "16 ports refused: %s", err);
                ck_assert_uint_eq(spec->n_ports, 16);
                ck_assert_int_eq(config_drive_network_data(spec, &net), 0);
                o = json_tokener_parse(net);
                ck_assert(o && json_object_object_get_ex(o, "links", &links));
                ck_assert_uint_eq(json_object_array_length(links), 16);
                ck_assert(json_object_object_get_ex(o, "networks", &links));
                ck_assert_uint_eq(json_object_array_length(links), 16);
                json_object_put(o);
                free(net);
                config_drive_spec_free(spec);
        }
}
END_TEST

START_TEST(test_base64)
{
        static const struct {
                const char *in, *out;
        } good[] = { { "", "" }, { "YQ==", "a" }, { "YWI=", "ab" }, { "YWJj", "abc" }, { "/+8=", "\xff\xef" } };
        static const char *const bad[] = { "Y", "YQ=", "Y===", "=QQQ", "YQ=a", "YR==", "YWJ=", "YW\nJ", "YW-j", "YQ==YQ==" };
        uint8_t *out;
        size_t len;

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                ck_assert_int_eq(base64_decode_strict(good[i].in, strlen(good[i].in), 100, &out, &len), 0);
                ck_assert_uint_eq(len, strlen(good[i].out));
                ck_assert_mem_eq(out, good[i].out, len);
                free(out);
        }
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                ck_assert_msg(base64_decode_strict(bad[i], strlen(bad[i]), 100, &out, &len) == -EINVAL, "'%s' accepted",
                              bad[i]);
        ck_assert_int_eq(base64_decode_strict("YWJj", 4, 2, &out, &len), -EFBIG);
        ck_assert_int_eq(base64_decode_strict("YWI=", 4, 2, &out, &len), 0);
        free(out);
}
END_TEST

/* ---- nova's JSON ---- */

static struct json_object *get(struct json_object *o, const char *key)
{
        struct json_object *v = NULL;

        ck_assert_msg(json_object_object_get_ex(o, key, &v), "no '%s' in %s", key, json_object_to_json_string(o));
        return v;
}

static const char *get_str(struct json_object *o, const char *key)
{
        return json_object_get_string(get(o, key));
}

static void check_meta_data(const char *text)
{
        struct json_object *o = json_tokener_parse(text), *keys;

        ck_assert_ptr_nonnull(o);
        ck_assert_str_eq(get_str(o, "uuid"), UUID);
        ck_assert_str_eq(get_str(o, "name"), "web 1 \xc3\xa9t\xc3\xa9");
        ck_assert_str_eq(get_str(o, "hostname"), "web-1");
        ck_assert_int_eq(json_object_get_int(get(o, "launch_index")), 0);
        ck_assert_str_eq(get_str(get(o, "public_keys"), "alice"), KEY1);
        ck_assert_str_eq(get_str(get(o, "public_keys"), "bob key"), "ssh-rsa AAAAB3 b/c");
        keys = get(o, "keys");
        ck_assert_uint_eq(json_object_array_length(keys), 2);
        ck_assert_str_eq(get_str(json_object_array_get_idx(keys, 0), "name"), "alice");
        ck_assert_str_eq(get_str(json_object_array_get_idx(keys, 0), "type"), "ssh");
        ck_assert_str_eq(get_str(json_object_array_get_idx(keys, 0), "data"), KEY1);
        ck_assert(json_object_is_type(get(o, "meta"), json_type_object));
        json_object_put(o);
}

static void check_route(struct json_object *net, const char *network, const char *gateway)
{
        struct json_object *routes = get(net, "routes"), *r;

        if (!gateway) {
                ck_assert_uint_eq(json_object_array_length(routes), 0);
                return;
        }
        ck_assert_uint_eq(json_object_array_length(routes), 1);
        r = json_object_array_get_idx(routes, 0);
        ck_assert_str_eq(get_str(r, "network"), network);
        ck_assert_str_eq(get_str(r, "netmask"), network);
        ck_assert_str_eq(get_str(r, "gateway"), gateway);
}

static void check_network_data(const char *text)
{
        struct json_object *o = json_tokener_parse(text), *links, *nets, *svcs, *l, *n;

        ck_assert_ptr_nonnull(o);
        links = get(o, "links");
        ck_assert_uint_eq(json_object_array_length(links), 2);
        l = json_object_array_get_idx(links, 0);
        ck_assert_str_eq(get_str(l, "id"), "tap0f1e2d3c-4b");
        ck_assert_str_eq(get_str(l, "vif_id"), PORT1);
        ck_assert_str_eq(get_str(l, "type"), "ovs");
        ck_assert_int_eq(json_object_get_int(get(l, "mtu")), 1442);
        ck_assert_str_eq(get_str(l, "ethernet_mac_address"), "fa:16:3e:12:34:56");
        l = json_object_array_get_idx(links, 1);
        ck_assert_str_eq(get_str(l, "ethernet_mac_address"), "fa:16:3e:00:00:02");
        ck_assert_int_eq(json_object_get_int(get(l, "mtu")), 1500);

        nets = get(o, "networks");
        ck_assert_uint_eq(json_object_array_length(nets), 3);
        n = json_object_array_get_idx(nets, 0);
        ck_assert_str_eq(get_str(n, "id"), "network0");
        ck_assert_str_eq(get_str(n, "type"), "ipv4");
        ck_assert_str_eq(get_str(n, "link"), "tap0f1e2d3c-4b");
        ck_assert_str_eq(get_str(n, "ip_address"), "10.0.0.5");
        ck_assert_str_eq(get_str(n, "netmask"), "255.255.255.0");
        ck_assert_str_eq(get_str(n, "network_id"), NET1);
        check_route(n, "0.0.0.0", "10.0.0.1");
        /* as nova: each network lists its DNS servers too (here: the port's, each once) */
        ck_assert_uint_eq(json_object_array_length(get(n, "services")), 1);
        ck_assert_str_eq(get_str(json_object_array_get_idx(get(n, "services"), 0), "type"), "dns");
        ck_assert_str_eq(get_str(json_object_array_get_idx(get(n, "services"), 0), "address"), "10.0.0.2");
        n = json_object_array_get_idx(nets, 1);
        ck_assert_str_eq(get_str(n, "type"), "ipv6");
        ck_assert_str_eq(get_str(n, "ip_address"), "fd00:1::5");
        ck_assert_str_eq(get_str(n, "netmask"), "ffff:ffff:ffff:ffff::");
        check_route(n, "::", NULL);
        n = json_object_array_get_idx(nets, 2);
        ck_assert_str_eq(get_str(n, "id"), "network2");
        ck_assert_str_eq(get_str(n, "link"), "tap9a8b7c6d-5e");
        ck_assert_str_eq(get_str(n, "netmask"), "255.255.255.240");
        ck_assert_uint_eq(json_object_array_length(get(n, "services")), 2);
        ck_assert_str_eq(get_str(json_object_array_get_idx(get(n, "services"), 1), "address"), "2001:db8::53");

        svcs = get(o, "services"); /* 10.0.0.2 once, then 2001:db8::53 */
        ck_assert_uint_eq(json_object_array_length(svcs), 2);
        ck_assert_str_eq(get_str(json_object_array_get_idx(svcs, 0), "type"), "dns");
        ck_assert_str_eq(get_str(json_object_array_get_idx(svcs, 0), "address"), "10.0.0.2");
        ck_assert_str_eq(get_str(json_object_array_get_idx(svcs, 1), "address"), "2001:db8::53");
        json_object_put(o);
}

START_TEST(test_json_shapes)
{
        char err[256] = "", *meta = NULL, *net = NULL;
        struct config_drive_spec *spec = decode(spec_json, err, sizeof(err));

        ck_assert_msg(spec != NULL, "refused: %s", err);
        ck_assert_int_eq(config_drive_meta_data(spec, &meta), 0);
        ck_assert_int_eq(config_drive_network_data(spec, &net), 0);
        check_meta_data(meta);
        check_network_data(net);
        ck_assert_ptr_null(strstr(meta, "\\/")); /* slashes as they are */
        free(meta);
        free(net);
        config_drive_spec_free(spec);
}
END_TEST

/* ---- the ISO, read back by isoinfo ---- */

struct membuf {
        uint8_t *p;
        size_t len, cap;
        size_t calls;
        int fail_after; /* fail the n-th call with -ENOSPC; 0: never */
};

static int mem_sink(void *userdata, const void *buf, size_t len)
{
        struct membuf *m = userdata;

        m->calls++;
        if (m->fail_after && (int)m->calls >= m->fail_after)
                return -ENOSPC;
        if (m->len + len > m->cap) {
                size_t cap = (m->len + len) * 2;
                uint8_t *p = realloc(m->p, cap);

                if (!p)
                        return -ENOMEM;
                m->p = p;
                m->cap = cap;
        }
        memcpy(m->p + m->len, buf, len);
        m->len += len;
        return 0;
}

/* Run argv; return its stdout (at most 1 MiB), fail unless it exits 0. */
static char *run_capture(const char *const argv[], size_t *ret_len)
{
        int pipefd[2], status;
        size_t cap = 1 << 20, len = 0;
        char *out = malloc(cap + 1);
        pid_t pid;
        ssize_t k;

        ck_assert_ptr_nonnull(out);
        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                (void)dup2(pipefd[1], STDOUT_FILENO);
                execvp(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(pipefd[1]);
        while ((k = read(pipefd[0], out + len, cap - len)) > 0)
                len += (size_t)k;
        close(pipefd[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %s failed", argv[0], argv[1]);
        out[len] = '\0';
        if (ret_len)
                *ret_len = len;
        return out;
}

static void check_file(const char *iso, const char *tree, const char *path, const void *want, size_t want_len)
{
        size_t len;
        char *got = run_capture((const char *const[]){ "isoinfo", tree, "-i", iso, "-x", path, NULL }, &len);

        ck_assert_msg(len == want_len, "%s %s: %zu bytes, want %zu", tree, path, len, want_len);
        ck_assert_msg(memcmp(got, want, len) == 0, "%s %s differs", tree, path);
        free(got);
}

START_TEST(test_iso_round_trip)
{
        char err[256] = "", *meta = NULL, *net = NULL, *info, *list, iso[256];
        struct config_drive_spec *spec = decode(spec_json, err, sizeof(err));
        struct membuf m = { 0 };
        uint64_t size = 0;

        ck_assert_msg(spec != NULL, "refused: %s", err);
        ck_assert_int_eq(config_drive_write(spec, mem_sink, &m, &size), 0);
        ck_assert_uint_eq(size, m.len);
        ck_assert_uint_eq(m.len % 2048, 0);
        ck_assert_uint_gt(m.len, 16 * 2048);
        ck_assert_mem_eq(m.p + 16 * 2048 + 1, "CD001", 5); /* the primary volume descriptor */
        ck_assert_int_eq(xsnprintf(iso, sizeof(iso), "%s/config.iso", tmpdir), 0);
        ck_assert_int_eq(write_file_atomic(iso, m.p, m.len, 0600), 0);

        info = run_capture((const char *const[]){ "isoinfo", "-d", "-i", iso, NULL }, NULL);
        ck_assert_msg(strstr(info, "Volume id: config-2\n") != NULL, "%s", info);
        ck_assert_msg(strstr(info, "Rock Ridge signatures") != NULL, "no Rock Ridge: %s", info);
        ck_assert_msg(strstr(info, "Joliet with UCS level") != NULL, "no Joliet: %s", info);
        free(info);

        /* exactly our files, by their Rock Ridge and by their Joliet names */
        for (int t = 0; t < 2; t++) {
                list = run_capture((const char *const[]){ "isoinfo", t == 0 ? "-R" : "-J", "-f", "-i", iso, NULL },
                                   NULL);
                ck_assert_str_eq(list, "/openstack\n/openstack/latest\n/openstack/latest/meta_data.json\n"
                                       "/openstack/latest/network_data.json\n/openstack/latest/user_data\n");
                free(list);
        }
        /* Rock Ridge modes and owners: read-only files, root */
        list = run_capture((const char *const[]){ "isoinfo", "-R", "-l", "-i", iso, NULL }, NULL);
        ck_assert_msg(strstr(list, "-r--r--r--   1    0    0") != NULL, "%s", list);
        ck_assert_msg(strstr(list, "dr-xr-xr-x") != NULL, "%s", list);
        free(list);

        ck_assert_int_eq(config_drive_meta_data(spec, &meta), 0);
        ck_assert_int_eq(config_drive_network_data(spec, &net), 0);
        for (int t = 0; t < 2; t++) {
                const char *tree = t == 0 ? "-R" : "-J";

                check_file(iso, tree, "/openstack/latest/meta_data.json", meta, strlen(meta));
                check_file(iso, tree, "/openstack/latest/network_data.json", net, strlen(net));
                check_file(iso, tree, "/openstack/latest/user_data", USER_DATA, strlen(USER_DATA));
        }
        /* what a guest reads is nova's JSON */
        {
                size_t len;
                char *back = run_capture((const char *const[]){ "isoinfo", "-R", "-i", iso, "-x",
                                                                "/openstack/latest/network_data.json", NULL },
                                         &len);

                check_network_data(back);
                free(back);
        }
        free(meta);
        free(net);
        free(m.p);
        config_drive_spec_free(spec);
}
END_TEST

#define EMPTY_NET "{\"links\":[],\"networks\":[],\"services\":[]}"

START_TEST(test_iso_without_user_data)
{
        char err[256] = "", iso[256], *list;
        struct config_drive_spec *spec = decode("{\"uuid\":\"" UUID "\",\"name\":\"a\",\"hostname\":\"a\"}", err,
                                                sizeof(err));
        struct membuf m = { 0 };

        ck_assert_msg(spec != NULL, "refused: %s", err);
        ck_assert_int_eq(config_drive_write(spec, mem_sink, &m, NULL), 0);
        ck_assert_int_eq(xsnprintf(iso, sizeof(iso), "%s/min.iso", tmpdir), 0);
        ck_assert_int_eq(write_file_atomic(iso, m.p, m.len, 0600), 0);
        list = run_capture((const char *const[]){ "isoinfo", "-R", "-f", "-i", iso, NULL }, NULL);
        ck_assert_str_eq(list, "/openstack\n/openstack/latest\n/openstack/latest/meta_data.json\n"
                               "/openstack/latest/network_data.json\n");
        free(list);
        check_file(iso, "-R", "/openstack/latest/network_data.json", EMPTY_NET, strlen(EMPTY_NET));
        free(m.p);
        config_drive_spec_free(spec);
}
END_TEST

START_TEST(test_iso_sink_error)
{
        char err[256] = "";
        struct config_drive_spec *spec = decode(spec_json, err, sizeof(err));
        struct membuf m = { .fail_after = 2 };
        uint64_t size = 12345;

        ck_assert_msg(spec != NULL, "refused: %s", err);
        ck_assert_int_eq(config_drive_write(spec, mem_sink, &m, &size), -ENOSPC);
        ck_assert_uint_eq(size, 12345); /* untouched */
        ck_assert_uint_eq(m.calls, 2);  /* stopped at the failure */
        free(m.p);
        /* and the next build works (the cancelled writer thread is gone) */
        m = (struct membuf){ 0 };
        ck_assert_int_eq(config_drive_write(spec, mem_sink, &m, &size), 0);
        ck_assert_uint_eq(size, m.len);
        free(m.p);
        config_drive_spec_free(spec);
}
END_TEST

static Suite *config_drive_suite(void)
{
        Suite *s = suite_create("config-drive");
        TCase *tc;

        tc = tcase_create("decode");
        tcase_add_test(tc, test_decode_valid);
        tcase_add_test(tc, test_decode_refused);
        tcase_add_test(tc, test_decode_limits);
        tcase_add_test(tc, test_decode_sixteen_ports);
        tcase_add_test(tc, test_base64);
        suite_add_tcase(s, tc);

        tc = tcase_create("json");
        tcase_add_test(tc, test_json_shapes);
        suite_add_tcase(s, tc);

        tc = tcase_create("iso");
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_iso_round_trip);
        tcase_add_test(tc, test_iso_without_user_data);
        tcase_add_test(tc, test_iso_sink_error);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr;
        int failed;
        char path[256];

        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }
        sr = srunner_create(config_drive_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        if (xsnprintf(path, sizeof(path), "%s/config.iso", tmpdir) == 0)
                (void)unlink(path);
        if (xsnprintf(path, sizeof(path), "%s/min.iso", tmpdir) == 0)
                (void)unlink(path);
        (void)rmdir(tmpdir);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
