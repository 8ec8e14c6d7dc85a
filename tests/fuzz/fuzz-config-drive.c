/* fuzz-config-drive.c - libFuzzer target for the config drive's decoders
 * (interfaces/libvirt/config-drive.c): the JSON description
 * (config_drive_spec_from_json) and strict base64.
 *
 * What is accepted must be valid and produce nova's JSON: meta_data.json and
 * network_data.json parse back, carry the uuid, name and hostname, one link
 * per port and one network per fixed IP; base64 that decodes re-encodes to
 * the very input. A refusal says why and hands nothing out. (The ISO writer
 * itself runs a libisofs thread per image: it is exercised by
 * test-config-drive, not here.) Any violation aborts. */
#include "config-drive.h"

#define CHECK(x)                                                                             \
        do {                                                                                 \
                if (!(x)) {                                                                  \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                             \
                }                                                                            \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void fuzz_base64(const uint8_t *data, size_t size)
{
        uint8_t *out = (uint8_t *)0x1;
        size_t len = 7, n = 0;
        char *again;
        int r;

        r = base64_decode_strict((const char *)data, size, 4096, &out, &len);
        if (r < 0) {
                CHECK(r == -EINVAL || r == -EFBIG);
                CHECK(out == (uint8_t *)0x1 && len == 7);
                return;
        }
        CHECK(len <= 4096 && len == size / 4 * 3 - (size && data[size - 1] == '=') - (size > 1 && data[size - 2] == '='));
        again = malloc(size + 1);
        CHECK(again);
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t)out[i] << 16 | (i + 1 < len ? (uint32_t)out[i + 1] << 8 : 0) |
                             (i + 2 < len ? out[i + 2] : 0);

                again[n++] = b64chars[v >> 18 & 63];
                again[n++] = b64chars[v >> 12 & 63];
                again[n++] = i + 1 < len ? b64chars[v >> 6 & 63] : '=';
                again[n++] = i + 2 < len ? b64chars[v & 63] : '=';
        }
        CHECK(n == size && memcmp(again, data, size) == 0);
        free(again);
        free(out);
}

static void accepted(const struct config_drive_spec *spec)
{
        char *meta = NULL, *net = NULL;
        struct json_object *m, *n, *v;
        size_t n_ips = 0;

        CHECK(uuid_is_valid(spec->uuid));
        CHECK(spec->n_keys <= CD_MAX_KEYS && spec->n_ports <= CD_MAX_PORTS);
        CHECK(spec->user_data_len <= CD_USER_DATA_MAX);
        for (size_t i = 0; i < spec->n_ports; i++) {
                CHECK(uuid_is_valid(spec->ports[i].port_id) && mac_is_valid(spec->ports[i].mac));
                CHECK(spec->ports[i].mtu >= CD_MTU_MIN && spec->ports[i].mtu <= CD_MTU_MAX);
                n_ips += spec->ports[i].n_ips;
        }
        CHECK(config_drive_meta_data(spec, &meta) == 0);
        CHECK(config_drive_network_data(spec, &net) == 0);
        m = json_tokener_parse(meta);
        n = json_tokener_parse(net);
        CHECK(m && n);
        CHECK(json_object_object_get_ex(m, "uuid", &v) && streq(json_object_get_string(v), spec->uuid));
        CHECK(json_object_object_get_ex(m, "name", &v) && streq(json_object_get_string(v), spec->name));
        CHECK(json_object_object_get_ex(m, "hostname", &v) && streq(json_object_get_string(v), spec->hostname));
        CHECK(json_object_object_get_ex(m, "public_keys", &v) &&
              (size_t)json_object_object_length(v) == spec->n_keys);
        CHECK(json_object_object_get_ex(n, "links", &v) && json_object_array_length(v) == spec->n_ports);
        CHECK(json_object_object_get_ex(n, "networks", &v) && json_object_array_length(v) == n_ips);
        json_object_put(m);
        json_object_put(n);
        free(meta);
        free(net);
}

static void fuzz_spec(const uint8_t *data, size_t size)
{
        struct json_tokener *tok;
        struct json_object *o;
        struct config_drive_spec *spec = (struct config_drive_spec *)0x1;
        char err[256];
        int r;

        if (size > INT32_MAX)
                return;
        tok = json_tokener_new_ex(16);
        CHECK(tok);
        o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
        json_tokener_free(tok);
        if (!o)
                return;
        err[0] = '\0';
        r = config_drive_spec_from_json(o, &spec, err, sizeof(err));
        if (r < 0) {
                CHECK(r == -EINVAL);
                CHECK(err[0] != '\0');
                CHECK(spec == (struct config_drive_spec *)0x1);
        } else {
                accepted(spec);
                config_drive_spec_free(spec);
        }
        json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > 128 * 1024)
                return 0;
        fuzz_spec(data, size);
        if (size <= 8192)
                fuzz_base64(data, size);
        return 0;
}
