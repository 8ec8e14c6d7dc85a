/* config-drive.c - the config drive of config-drive.h: a strict decoder of
 * its description, nova's JSON shapes, and the ISO built by libisofs. */
#include <arpa/inet.h>
#include <inttypes.h>
/* libisofs declares struct burn_source itself when libburn is not used. */
#define LIBISOFS_WITHOUT_LIBBURN 1
#include <libisofs/libisofs.h>
#include <pthread.h>
#include <stdarg.h>

#include "config-drive.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) _printf_(3, 4);
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
        va_list ap;

        if (err && errlen > 0) {
                va_start(ap, fmt);
                (void)vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

/* ---- base64 ---- */

static int b64_value(unsigned char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int base64_decode_strict(const char *s, size_t len, size_t max, uint8_t **ret, size_t *ret_len)
{
        _cleanup_free_ uint8_t *out = NULL;
        size_t n = 0, pad = 0;

        if (!s || len % 4 != 0)
                return -EINVAL;
        if (len > 0 && s[len - 1] == '=')
                pad = (len > 1 && s[len - 2] == '=') ? 2 : 1;
        if (len / 4 * 3 - pad > max)
                return -EFBIG;
        out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i += 4) {
                int v[4];
                bool last = i + 4 == len;

                for (int k = 0; k < 4; k++) {
                        if (last && k >= 4 - (int)pad) {
                                if (s[i + k] != '=')
                                        return -EINVAL;
                                v[k] = 0;
                                continue;
                        }
                        v[k] = b64_value((unsigned char)s[i + k]);
                        if (v[k] < 0)
                                return -EINVAL;
                }
                /* canonical: the bits that padding drops must be zero */
                if (last && pad == 2 && (v[1] & 0x0f))
                        return -EINVAL;
                if (last && pad == 1 && (v[2] & 0x03))
                        return -EINVAL;
                out[n++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
                if (!(last && pad == 2))
                        out[n++] = (uint8_t)((v[1] & 0x0f) << 4 | v[2] >> 2);
                if (!(last && pad >= 1))
                        out[n++] = (uint8_t)((v[2] & 0x03) << 6 | v[3]);
        }
        out[n] = '\0';
        *ret = TAKE_PTR(out);
        *ret_len = n;
        return 0;
}

/* ---- the description ---- */

void config_drive_spec_free(struct config_drive_spec *spec)
{
        if (!spec)
                return;
        free(spec->user_data);
        free(spec);
}

/* Valid UTF-8 without control characters (C0, DEL), 1..max bytes. */
static bool text_is_clean(const char *s, size_t max)
{
        size_t len = strlen(s);
        const unsigned char *p = (const unsigned char *)s;

        if (len == 0 || len > max)
                return false;
        for (size_t i = 0; i < len;) {
                unsigned c = p[i], n, cp;

                if (c < 0x20 || c == 0x7f)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        n = 1, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        n = 2, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        n = 3, cp = c & 0x07;
                else
                        return false;
                if (len - i - 1 < n) /* continuation bytes i+1 .. i+n must exist */
                        return false;
                for (unsigned k = 1; k <= n; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (p[i + k] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
                        return false;
                i += n + 1;
        }
        return true;
}

/* RFC 1123 host name: dot-separated labels of [a-z0-9-], 1..63 each, no
 * leading or trailing '-', at most 253 in all. Lowercase only. */
static bool hostname_is_valid(const char *s)
{
        size_t len = strlen(s), label = 0;

        if (len == 0 || len > CD_HOSTNAME_MAX)
                return false;
        for (size_t i = 0; i <= len; i++) {
                char c = s[i];

                if (c == '.' || c == '\0') {
                        if (label == 0 || label > 63 || s[i - 1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                        return false;
                if (label == 0 && c == '-')
                        return false;
                label++;
        }
        return true;
}

/* A key name: [A-Za-z0-9 ._@-], 1..255 (nova's keypair names). */
static bool key_name_is_valid(const char *s)
{
        size_t len = strlen(s);

        if (len == 0 || len > CD_KEY_NAME_MAX || s[0] == ' ' || s[len - 1] == ' ')
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' ||
                      c == '.' || c == '_' || c == '@' || c == '-'))
                        return false;
        }
        return true;
}

/* A public key line: printable ASCII, 1..8192. */
static bool key_data_is_valid(const char *s)
{
        size_t len = strlen(s);

        if (len == 0 || len > CD_KEY_DATA_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        return false;
        return true;
}

/* Fetch a string member; -EINVAL unless it is a string (or absent when optional). */
static int get_string(struct json_object *o, const char *key, bool optional, const char **ret, char *err,
                      size_t errlen)
{
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
                if (optional) {
                        *ret = NULL;
                        return 0;
                }
                return fail(err, errlen, "'%s' is missing", key);
        }
        if (!json_object_is_type(v, json_type_string))
                return fail(err, errlen, "'%s' must be a string", key);
        *ret = json_object_get_string(v);
        if (strlen(*ret) != (size_t)json_object_get_string_len(v))
                return fail(err, errlen, "'%s' contains a NUL byte", key);
        return 0;
}

static int get_array(struct json_object *o, const char *key, size_t max, struct json_object **ret, size_t *ret_n,
                     char *err, size_t errlen)
{
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (!json_object_is_type(v, json_type_array))
                return fail(err, errlen, "'%s' must be an array", key);
        if (json_object_array_length(v) > max)
                return fail(err, errlen, "'%s' has more than %zu entries", key, max);
        *ret = v;
        *ret_n = json_object_array_length(v);
        return 0;
}

/* Refuse members other than the allowed ones (NULL-terminated list). */
static int only_keys(struct json_object *o, const char *what, const char *const *allowed, char *err, size_t errlen)
{
        if (!json_object_is_type(o, json_type_object))
                return fail(err, errlen, "%s must be an object", what);
        json_object_object_foreach(o, key, val) {
                const char *const *a;

                (void)val;
                for (a = allowed; *a && !streq(*a, key); a++)
                        ;
                if (!*a)
                        return fail(err, errlen, "%s: unknown field '%.32s'", what, key);
        }
        return 0;
}

static int copy_checked(char *dst, size_t size, const char *src, bool ok, const char *what, char *err,
                        size_t errlen)
{
        if (!ok || strscpy(dst, src, size) < 0)
                return fail(err, errlen, "%s is not valid", what);
        return 0;
}

static bool in_subnet(const struct cidr *c, const uint8_t addr[16])
{
        for (unsigned bit = 0; bit < c->prefix; bit++) {
                uint8_t m = 0x80u >> (bit % 8);

                if ((addr[bit / 8] & m) != (c->addr[bit / 8] & m))
                        return false;
        }
        return true;
}

static int fixed_ip_from_json(struct json_object *o, struct cd_fixed_ip *ip, char *err, size_t errlen)
{
        static const char *const keys[] = { "address", "subnet", "gateway", NULL };
        const char *address, *subnet, *gateway;
        uint8_t fam;
        int r;

        r = only_keys(o, "fixed_ip", keys, err, errlen);
        if (r < 0)
                return r;
        if (get_string(o, "address", false, &address, err, errlen) < 0 ||
            get_string(o, "subnet", false, &subnet, err, errlen) < 0 ||
            get_string(o, "gateway", true, &gateway, err, errlen) < 0)
                return -EINVAL;
        if (ip_parse(address, &ip->family, ip->addr) < 0)
                return fail(err, errlen, "fixed_ip address '%.64s' is not an IP address", address);
        if (cidr_parse(subnet, false, &ip->subnet) < 0)
                return fail(err, errlen, "fixed_ip subnet '%.64s' is not a network CIDR", subnet);
        if (ip->subnet.family != ip->family || !in_subnet(&ip->subnet, ip->addr))
                return fail(err, errlen, "fixed_ip address '%.64s' is not in subnet '%.64s'", address, subnet);
        ip->has_gateway = gateway != NULL;
        if (gateway) {
                if (ip_parse(gateway, &fam, ip->gateway) < 0 || fam != ip->family)
                        return fail(err, errlen, "fixed_ip gateway '%.64s' is not an IPv%u address", gateway,
                                    ip->family);
                if (memcmp(ip->gateway, ip->addr, 16) == 0)
                        return fail(err, errlen, "fixed_ip gateway is the port's own address");
        }
        return 0;
}

static int port_from_json(struct json_object *o, struct cd_port *port, char *err, size_t errlen)
{
        static const char *const keys[] = { "port_id", "network_id", "mac", "mtu", "fixed_ips", "dns", NULL };
        struct json_object *mtu, *arr;
        const char *s;
        size_t n;
        int64_t m;
        int r;

        r = only_keys(o, "port", keys, err, errlen);
        if (r < 0)
                return r;
        if (get_string(o, "port_id", false, &s, err, errlen) < 0 ||
            copy_checked(port->port_id, sizeof(port->port_id), s, uuid_is_valid(s), "port_id", err, errlen) < 0)
                return -EINVAL;
        if (get_string(o, "network_id", false, &s, err, errlen) < 0 ||
            copy_checked(port->network_id, sizeof(port->network_id), s, uuid_is_valid(s), "network_id", err,
                         errlen) < 0)
                return -EINVAL;
        if (get_string(o, "mac", false, &s, err, errlen) < 0 ||
            copy_checked(port->mac, sizeof(port->mac), s, mac_is_valid(s), "mac", err, errlen) < 0)
                return -EINVAL;
        if (!json_object_object_get_ex(o, "mtu", &mtu) || !json_object_is_type(mtu, json_type_int))
                return fail(err, errlen, "port mtu must be an integer");
        m = json_object_get_int64(mtu);
        if (m < CD_MTU_MIN || m > CD_MTU_MAX)
                return fail(err, errlen, "port mtu %" PRId64 " out of range %d..%d", m, CD_MTU_MIN, CD_MTU_MAX);
        port->mtu = (uint32_t)m;

        r = get_array(o, "fixed_ips", CD_MAX_IPS, &arr, &n, err, errlen);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = fixed_ip_from_json(json_object_array_get_idx(arr, i), &port->ips[i], err, errlen);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < i; k++)
                        if (port->ips[k].family == port->ips[i].family &&
                            memcmp(port->ips[k].addr, port->ips[i].addr, 16) == 0)
                                return fail(err, errlen, "port has the same fixed IP twice");
        }
        port->n_ips = n;

        r = get_array(o, "dns", CD_MAX_DNS, &arr, &n, err, errlen);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                struct json_object *v = json_object_array_get_idx(arr, i);

                if (!json_object_is_type(v, json_type_string) ||
                    ip_parse(json_object_get_string(v), &port->dns[i].family, port->dns[i].addr) < 0)
                        return fail(err, errlen, "port dns entries must be IP addresses");
        }
        port->n_dns = n;
        return 0;
}

int config_drive_spec_from_json(struct json_object *o, struct config_drive_spec **ret, char *err, size_t errlen)
{
        static const char *const keys[] = { "uuid", "name", "hostname", "public_keys", "ports", "user_data", NULL };
        _cleanup_(config_drive_spec_freep) struct config_drive_spec *spec = NULL;
        struct json_object *arr;
        const char *s;
        size_t n;
        int r;

        if (!o || !ret)
                return fail(err, errlen, "no config drive description");
        r = only_keys(o, "config drive", keys, err, errlen);
        if (r < 0)
                return r;
        spec = calloc(1, sizeof(*spec));
        if (!spec)
                return -ENOMEM;

        if (get_string(o, "uuid", false, &s, err, errlen) < 0 ||
            copy_checked(spec->uuid, sizeof(spec->uuid), s, uuid_is_valid(s), "uuid", err, errlen) < 0)
                return -EINVAL;
        if (get_string(o, "name", false, &s, err, errlen) < 0 ||
            copy_checked(spec->name, sizeof(spec->name), s, text_is_clean(s, CD_NAME_MAX), "name", err, errlen) < 0)
                return -EINVAL;
        if (get_string(o, "hostname", false, &s, err, errlen) < 0 ||
            copy_checked(spec->hostname, sizeof(spec->hostname), s, hostname_is_valid(s), "hostname", err,
                         errlen) < 0)
                return -EINVAL;

        r = get_array(o, "public_keys", CD_MAX_KEYS, &arr, &n, err, errlen);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                static const char *const key_keys[] = { "name", "data", NULL };
                struct json_object *k = json_object_array_get_idx(arr, i);

                if (only_keys(k, "public key", key_keys, err, errlen) < 0)
                        return -EINVAL;
                if (get_string(k, "name", false, &s, err, errlen) < 0 ||
                    copy_checked(spec->keys[i].name, sizeof(spec->keys[i].name), s, key_name_is_valid(s),
                                 "public key name", err, errlen) < 0)
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (streq(spec->keys[j].name, spec->keys[i].name))
                                return fail(err, errlen, "public key name '%.64s' given twice", s);
                if (get_string(k, "data", false, &s, err, errlen) < 0 ||
                    copy_checked(spec->keys[i].data, sizeof(spec->keys[i].data), s, key_data_is_valid(s),
                                 "public key data", err, errlen) < 0)
                        return -EINVAL;
        }
        spec->n_keys = n;

        r = get_array(o, "ports", CD_MAX_PORTS, &arr, &n, err, errlen);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = port_from_json(json_object_array_get_idx(arr, i), &spec->ports[i], err, errlen);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (streq(spec->ports[j].port_id, spec->ports[i].port_id) ||
                            streq(spec->ports[j].mac, spec->ports[i].mac))
                                return fail(err, errlen, "two ports with the same port_id or mac");
        }
        spec->n_ports = n;

        if (get_string(o, "user_data", true, &s, err, errlen) < 0)
                return -EINVAL;
        if (s) {
                r = base64_decode_strict(s, strlen(s), CD_USER_DATA_MAX, &spec->user_data, &spec->user_data_len);
                if (r == -EFBIG)
                        return fail(err, errlen, "user_data is larger than %d bytes", CD_USER_DATA_MAX);
                if (r < 0)
                        return r == -ENOMEM ? r : fail(err, errlen, "user_data is not canonical base64");
        }
        *ret = TAKE_PTR(spec);
        return 0;
}

/* ---- nova's JSON ---- */

static void json_free(struct json_object **o)
{
        if (*o)
                json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_free)

/* json-c's add/new fail only on allocation; collect that in one flag. */
struct jb {
        bool oom;
};

static struct json_object *jb_check(struct jb *b, struct json_object *o)
{
        if (!o)
                b->oom = true;
        return o;
}

static void jb_add(struct jb *b, struct json_object *obj, const char *key, struct json_object *v)
{
        if (!v || !obj || json_object_object_add(obj, key, v) < 0) {
                json_object_put(v);
                b->oom = true;
        }
}

static void jb_append(struct jb *b, struct json_object *arr, struct json_object *v)
{
        if (!v || !arr || json_object_array_add(arr, v) < 0) {
                json_object_put(v);
                b->oom = true;
        }
}

static struct json_object *jb_str(struct jb *b, const char *s)
{
        return jb_check(b, json_object_new_string(s));
}

static int to_text(struct jb *b, struct json_object *o, char **ret)
{
        const char *text;
        char *copy;

        if (b->oom || !o)
                return -ENOMEM;
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

int config_drive_meta_data(const struct config_drive_spec *spec, char **ret)
{
        struct jb b = { false };
        _cleanup_json_ struct json_object *root = jb_check(&b, json_object_new_object());
        struct json_object *pub = jb_check(&b, json_object_new_object());
        struct json_object *keys = jb_check(&b, json_object_new_array());

        for (size_t i = 0; i < spec->n_keys; i++) {
                struct json_object *k = jb_check(&b, json_object_new_object());

                jb_add(&b, pub, spec->keys[i].name, jb_str(&b, spec->keys[i].data));
                jb_add(&b, k, "name", jb_str(&b, spec->keys[i].name));
                jb_add(&b, k, "type", jb_str(&b, "ssh"));
                jb_add(&b, k, "data", jb_str(&b, spec->keys[i].data));
                jb_append(&b, keys, k);
        }
        jb_add(&b, root, "uuid", jb_str(&b, spec->uuid));
        jb_add(&b, root, "name", jb_str(&b, spec->name));
        jb_add(&b, root, "hostname", jb_str(&b, spec->hostname));
        jb_add(&b, root, "launch_index", jb_check(&b, json_object_new_int(0)));
        jb_add(&b, root, "availability_zone", jb_str(&b, "nova"));
        jb_add(&b, root, "meta", jb_check(&b, json_object_new_object()));
        jb_add(&b, root, "public_keys", pub);
        jb_add(&b, root, "keys", keys);
        jb_add(&b, root, "devices", jb_check(&b, json_object_new_array()));
        return to_text(&b, root, ret);
}

static void format_addr(uint8_t family, const uint8_t addr[16], char buf[IP_STR_MAX])
{
        if (!inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, buf, IP_STR_MAX))
                buf[0] = '\0';
}

/* The netmask of a prefix in address form, as nova writes it
 * ("255.255.255.0", "ffff:ffff:ffff:ffff::"). */
static void format_netmask(uint8_t family, unsigned prefix, char buf[IP_STR_MAX])
{
        uint8_t mask[16] = { 0 };

        for (unsigned bit = 0; bit < prefix; bit++)
                mask[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
        format_addr(family, mask, buf);
}

static struct json_object *route(struct jb *b, uint8_t family, const uint8_t gateway[16])
{
        struct json_object *r = jb_check(b, json_object_new_object());
        char gw[IP_STR_MAX];

        format_addr(family, gateway, gw);
        jb_add(b, r, "network", jb_str(b, family == 4 ? "0.0.0.0" : "::"));
        jb_add(b, r, "netmask", jb_str(b, family == 4 ? "0.0.0.0" : "::"));
        jb_add(b, r, "gateway", jb_str(b, gw));
        return r;
}

/* The DNS servers of port as network_data.json's services ({"type": "dns", "address"}), each
 * once, in the port's order: nova lists a subnet's servers in each of its networks (and all of
 * them, once each, at the top level); a port here has its servers, not a subnet. */
static struct json_object *port_dns_services(struct jb *b, const struct cd_port *port)
{
        struct json_object *list = jb_check(b, json_object_new_array());

        for (size_t i = 0; i < port->n_dns; i++) {
                struct json_object *svc;
                char addr[IP_STR_MAX];
                size_t k;

                for (k = 0; k < i; k++)
                        if (port->dns[k].family == port->dns[i].family && memcmp(port->dns[k].addr, port->dns[i].addr, 16) == 0)
                                break;
                if (k < i)
                        continue;
                format_addr(port->dns[i].family, port->dns[i].addr, addr);
                svc = jb_check(b, json_object_new_object());
                jb_add(b, svc, "type", jb_str(b, "dns"));
                jb_add(b, svc, "address", jb_str(b, addr));
                jb_append(b, list, svc);
        }
        return list;
}

int config_drive_network_data(const struct config_drive_spec *spec, char **ret)
{
        struct jb b = { false };
        _cleanup_json_ struct json_object *root = jb_check(&b, json_object_new_object());
        struct json_object *links = jb_check(&b, json_object_new_array());
        struct json_object *networks = jb_check(&b, json_object_new_array());
        struct json_object *services = jb_check(&b, json_object_new_array());
        struct {
                uint8_t family, addr[16];
        } seen[CD_MAX_PORTS * CD_MAX_DNS];
        size_t n_seen = 0, net_num = 0;

        for (size_t p = 0; p < spec->n_ports; p++) {
                const struct cd_port *port = &spec->ports[p];
                struct json_object *link = jb_check(&b, json_object_new_object());
                char tap[IFNAME_MAX];

                if (tap_name_from_port(port->port_id, tap) < 0)
                        b.oom = true; /* cannot happen: port_id was checked */
                jb_add(&b, link, "id", jb_str(&b, tap));
                jb_add(&b, link, "vif_id", jb_str(&b, port->port_id));
                jb_add(&b, link, "type", jb_str(&b, "ovs"));
                jb_add(&b, link, "mtu", jb_check(&b, json_object_new_int((int32_t)port->mtu)));
                jb_add(&b, link, "ethernet_mac_address", jb_str(&b, port->mac));
                jb_append(&b, links, link);

                for (size_t i = 0; i < port->n_ips; i++) {
                        const struct cd_fixed_ip *ip = &port->ips[i];
                        struct json_object *net = jb_check(&b, json_object_new_object());
                        struct json_object *routes = jb_check(&b, json_object_new_array());
                        char id[32], addr[IP_STR_MAX], mask[IP_STR_MAX];

                        (void)xsnprintf(id, sizeof(id), "network%zu", net_num++);
                        format_addr(ip->family, ip->addr, addr);
                        format_netmask(ip->family, ip->subnet.prefix, mask);
                        if (ip->has_gateway)
                                jb_append(&b, routes, route(&b, ip->family, ip->gateway));
                        jb_add(&b, net, "id", jb_str(&b, id));
                        jb_add(&b, net, "type", jb_str(&b, ip->family == 4 ? "ipv4" : "ipv6"));
                        jb_add(&b, net, "link", jb_str(&b, tap));
                        jb_add(&b, net, "ip_address", jb_str(&b, addr));
                        jb_add(&b, net, "netmask", jb_str(&b, mask));
                        jb_add(&b, net, "routes", routes);
                        jb_add(&b, net, "network_id", jb_str(&b, port->network_id));
                        jb_add(&b, net, "services", port_dns_services(&b, port));
                        jb_append(&b, networks, net);
                }
                for (size_t i = 0; i < port->n_dns; i++) {
                        struct json_object *svc;
                        char addr[IP_STR_MAX];
                        size_t k;

                        for (k = 0; k < n_seen; k++)
                                if (seen[k].family == port->dns[i].family &&
                                    memcmp(seen[k].addr, port->dns[i].addr, 16) == 0)
                                        break;
                        if (k < n_seen)
                                continue;
                        seen[n_seen].family = port->dns[i].family;
                        memcpy(seen[n_seen].addr, port->dns[i].addr, 16);
                        n_seen++;
                        format_addr(port->dns[i].family, port->dns[i].addr, addr);
                        svc = jb_check(&b, json_object_new_object());
                        jb_add(&b, svc, "type", jb_str(&b, "dns"));
                        jb_add(&b, svc, "address", jb_str(&b, addr));
                        jb_append(&b, services, svc);
                }
        }
        jb_add(&b, root, "links", links);
        jb_add(&b, root, "networks", networks);
        jb_add(&b, root, "services", services);
        return to_text(&b, root, ret);
}

/* ---- the ISO ---- */

static pthread_once_t iso_once = PTHREAD_ONCE_INIT;
static int iso_init_result;

static void iso_init_once(void)
{
        iso_init_result = iso_init();
        if (iso_init_result >= 0) /* library code: nothing on stderr, errors come back as codes */
                (void)iso_set_msgs_severities((char *)"NEVER", (char *)"NEVER", (char *)"nova-config-drive");
}

static void iso_image_unrefp(IsoImage **image)
{
        if (*image)
                iso_image_unref(*image);
}

static void iso_write_opts_freep(IsoWriteOpts **opts)
{
        if (*opts)
                iso_write_opts_free(*opts);
}

/* Add a file whose bytes are copied into a memory stream that libisofs owns. */
static int add_file(IsoDir *dir, const char *name, const void *data, size_t len)
{
        unsigned char *copy = malloc(len > 0 ? len : 1);
        IsoStream *stream = NULL;

        if (!copy)
                return -ENOMEM;
        if (len > 0)
                memcpy(copy, data, len);
        if (iso_memory_stream_new(copy, len, &stream) < 0) {
                free(copy);
                return -ENOMEM;
        }
        if (iso_tree_add_new_file(dir, name, stream, NULL) < 0) {
                iso_stream_unref(stream);
                return -EIO;
        }
        return 0; /* the new file took our reference to the stream */
}

/* The image: openstack/latest/ with meta_data.json, network_data.json and user_data (when
 * given), into *ret. */
static int build_image(const struct config_drive_spec *spec, const char *meta, const char *net, IsoImage **ret)
{
        _cleanup_(iso_image_unrefp) IsoImage *image = NULL;
        IsoDir *openstack, *latest;
        int r;

        if (iso_image_new(CONFIG_DRIVE_LABEL, &image) < 0)
                return -ENOMEM;
        iso_image_set_application_id(image, "nova-hypervisor");
        if (iso_tree_add_new_dir(iso_image_get_root(image), "openstack", &openstack) < 0 ||
            iso_tree_add_new_dir(openstack, "latest", &latest) < 0)
                return -ENOMEM;
        r = add_file(latest, "meta_data.json", meta, strlen(meta));
        if (r >= 0)
                r = add_file(latest, "network_data.json", net, strlen(net));
        if (r >= 0 && spec->user_data)
                r = add_file(latest, "user_data", spec->user_data, spec->user_data_len);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(image);
        return 0;
}

/* -R -J as genisoimage: Rock Ridge and Joliet; modes and owners
 * replaced (files 0444, dirs 0555, root), as -r would. */
static int make_write_opts(IsoWriteOpts **ret)
{
        _cleanup_(iso_write_opts_freep) IsoWriteOpts *opts = NULL;

        if (iso_write_opts_new(&opts, 0) < 0 || iso_write_opts_set_rockridge(opts, 1) < 0 ||
            iso_write_opts_set_joliet(opts, 1) < 0 ||
            /* the label stays "config-2" (lowercase, '-'), as genisoimage writes it */
            iso_write_opts_set_relaxed_vol_atts(opts, 1) < 0 ||
            /* Joliet names without ";1" or a forced trailing dot
             * ("user_data"), as genisoimage writes them */
            iso_write_opts_set_omit_version_numbers(opts, 2) < 0 || iso_write_opts_set_no_force_dots(opts, 2) < 0 || iso_write_opts_set_replace_mode(opts, 2, 2, 2, 2) < 0 ||
            iso_write_opts_set_default_dir_mode(opts, 0555) < 0 ||
            iso_write_opts_set_default_file_mode(opts, 0444) < 0 || iso_write_opts_set_default_uid(opts, 0) < 0 ||
            iso_write_opts_set_default_gid(opts, 0) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(opts);
        return 0;
}

/* The image's bytes, block by block, to sink; *ret_total of them. */
static int stream_image(IsoImage *image, IsoWriteOpts *opts, config_drive_sink_fn sink, void *userdata,
                        uint64_t *ret_total)
{
        _cleanup_free_ unsigned char *block = NULL;
        struct burn_source *src = NULL;
        uint64_t total = 0;
        int r = 0;

        block = malloc(2048);
        if (!block)
                return -ENOMEM;
        if (iso_image_create_burn_source(image, opts, &src) < 0)
                return -EIO;
        for (;;) {
                /* One 2 KiB block per call: libisofs's ring buffer reports
                 * EOF, dropping what it had copied, when a larger read
                 * meets the end of the image. */
                int n = src->read_xt(src, block, 2048);

                if (n == 0)
                        break;
                if (n < 0) {
                        r = -EIO;
                        break;
                }
                r = sink(userdata, block, (size_t)n);
                if (r < 0) {
                        src->cancel(src);
                        break;
                }
                total += (uint64_t)n;
        }
        src->free_data(src);
        free(src);
        if (r < 0)
                return r;
        *ret_total = total;
        return 0;
}

int config_drive_write(const struct config_drive_spec *spec, config_drive_sink_fn sink, void *userdata,
                       uint64_t *ret_size)
{
        _cleanup_(iso_image_unrefp) IsoImage *image = NULL;
        _cleanup_(iso_write_opts_freep) IsoWriteOpts *opts = NULL;
        _cleanup_free_ char *meta = NULL, *net = NULL;
        uint64_t total = 0;
        int r;

        if (!spec || !sink)
                return -EINVAL;
        r = config_drive_meta_data(spec, &meta);
        if (r < 0)
                return r;
        r = config_drive_network_data(spec, &net);
        if (r < 0)
                return r;

        (void)pthread_once(&iso_once, iso_init_once);
        if (iso_init_result < 0)
                return -EIO;
        r = build_image(spec, meta, net, &image);
        if (r < 0)
                return r;
        r = make_write_opts(&opts);
        if (r < 0)
                return r;
        r = stream_image(image, opts, sink, userdata, &total);
        if (r < 0)
                return r;
        if (total == 0 || total % 2048 != 0)
                return -EIO;
        if (ret_size)
                *ret_size = total;
        return 0;
}
