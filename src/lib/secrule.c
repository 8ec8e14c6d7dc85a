/* secrule.c - see secrule.h */
#include "secrule.h"

#include <arpa/inet.h>
#include <stdarg.h>

_printf_(3, 4) static int fail(char *err, size_t errlen, const char *fmt, ...)
{
        va_list ap;

        if (err && errlen > 0) {
                va_start(ap, fmt);
                (void)vsnprintf(err, errlen, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

bool secrule_proto_has_ports(int proto)
{
        return proto == 6 || proto == 17 || proto == 33 || proto == 132 || proto == 136;
}

int secrule_icmp_proto(uint8_t family) { return family == 6 ? 58 : 1; }

int secrule_check(const struct secrule *r, char *err, size_t errlen)
{
        if (r->dir != SECRULE_INGRESS && r->dir != SECRULE_EGRESS)
                return fail(err, errlen, "direction must be ingress or egress");
        if (r->family != 4 && r->family != 6)
                return fail(err, errlen, "ethertype must be IPv4 or IPv6");
        if (r->proto < -1 || r->proto > 255)
                return fail(err, errlen, "protocol must be 0..255 or any");
        if (r->port_min || r->port_max) {
                if (!secrule_proto_has_ports(r->proto))
                        return fail(err, errlen, "a port range needs protocol tcp, udp, sctp, dccp or udplite");
                if (r->port_min < 1 || r->port_max < 1)
                        return fail(err, errlen, "port range: ports are 1..65535");
                if (r->port_min > r->port_max)
                        return fail(err, errlen, "port range: minimum %u is above maximum %u", r->port_min,
                                    r->port_max);
        }
        if (r->icmp_type < -1 || r->icmp_type > 255 || r->icmp_code < -1 || r->icmp_code > 255)
                return fail(err, errlen, "ICMP type and code are 0..255");
        if (r->icmp_type >= 0 || r->icmp_code >= 0) {
                if (r->proto != secrule_icmp_proto(r->family))
                        return fail(err, errlen, "an ICMP type/code needs protocol %s with ethertype %s",
                                    r->family == 6 ? "ipv6-icmp" : "icmp", r->family == 6 ? "IPv6" : "IPv4");
                if (r->icmp_type < 0)
                        return fail(err, errlen, "an ICMP code needs an ICMP type");
        }
        if (r->proto == 58 && r->family == 4)
                return fail(err, errlen, "protocol ipv6-icmp needs ethertype IPv6");
        if (r->proto == 1 && r->family == 6)
                return fail(err, errlen, "protocol icmp needs ethertype IPv4 (use ipv6-icmp)");
        if (r->has_remote) {
                if (r->remote.family != r->family)
                        return fail(err, errlen, "remote prefix is IPv%u but ethertype is IPv%u", r->remote.family,
                                    r->family);
                if (r->remote.prefix > (r->family == 4 ? 32 : 128))
                        return fail(err, errlen, "remote prefix length out of range");
                /* a network address (host bits and unused bytes zero), or its
                 * canonical text would not parse back: the prefix's last byte
                 * masked, then every byte after it (a byte at a time) */
                unsigned first = r->remote.prefix / 8;
                if (r->remote.prefix % 8 && (r->remote.addr[first++] & (0xffu >> (r->remote.prefix % 8))))
                        return fail(err, errlen, "remote prefix has host bits set");
                for (unsigned i = first; i < sizeof(r->remote.addr); i++)
                        if (r->remote.addr[i])
                                return fail(err, errlen, "remote prefix has host bits set");
        }
        return 0;
}

/* Append the decimal of v (>= 0), or "-" when absent. Hand-written: the
 * canonical text is formatted for every rule of every batch (and hashed for
 * the group's digest), and printf's machinery was most of the module's own
 * time on a 1000-port load. */
static char *put_num_or_dash(char *p, long v, bool present)
{
        char tmp[24];
        size_t n = 0;

        if (!present) {
                *p++ = '-';
                return p;
        }
        do
                tmp[n++] = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        while (n)
                *p++ = tmp[--n];
        return p;
}

static char *put_str(char *p, const char *s)
{
        size_t n = strlen(s);

        memcpy(p, s, n);
        return p + n;
}

int secrule_format(const struct secrule *r, char *buf, size_t size)
{
        /* "nh out 255 255 65535 65535 32767 32767 " and the remote */
        char out[48 + CIDR_STR_MAX], remote[CIDR_STR_MAX], *p = out;
        size_t len;

        p = put_str(p, r->dir == SECRULE_EGRESS ? "nh out " : "nh in ");
        p = put_num_or_dash(p, r->family, true);
        *p++ = ' ';
        p = r->proto < 0 ? put_str(p, "any") : put_num_or_dash(p, r->proto, true);
        *p++ = ' ';
        p = put_num_or_dash(p, r->port_min, r->port_min > 0);
        *p++ = ' ';
        p = put_num_or_dash(p, r->port_max, r->port_max > 0);
        *p++ = ' ';
        p = put_num_or_dash(p, r->icmp_type, r->icmp_type >= 0);
        *p++ = ' ';
        p = put_num_or_dash(p, r->icmp_code, r->icmp_code >= 0);
        *p++ = ' ';
        if (r->has_remote)
                cidr_format(&r->remote, remote);
        else
                memcpy(remote, "-", 2);
        p = put_str(p, remote);
        *p = '\0';
        len = (size_t)(p - out);
        if (len >= size)
                return -ENAMETOOLONG;
        memcpy(buf, out, len + 1);
        return 0;
}

/* A field of the canonical text: "-" (absent) or a decimal in [min, max]
 * without leading zeros or signs. */
static int field_num(const char *s, long min, long max, long *ret)
{
        uint64_t v;

        if (streq(s, "-")) {
                *ret = -1;
                return 0;
        }
        if (s[0] == '0' && s[1] != '\0')
                return -EINVAL;
        if (parse_u64(s, (uint64_t)min, (uint64_t)max, &v) < 0)
                return -EINVAL;
        *ret = (long)v;
        return 0;
}

int secrule_parse(const char *s, struct secrule *ret)
{
        char copy[SECRULE_TEXT_MAX], *f[9], *save = NULL, *tok;
        struct secrule r = { 0 };
        long v;
        size_t n = 0;

        if (!s || strscpy(copy, s, sizeof(copy)) < 0)
                return -EINVAL;
        /* Exactly single spaces between 9 fields, nothing else. */
        if (copy[0] == ' ' || strstr(copy, "  ") || (copy[0] && copy[strlen(copy) - 1] == ' '))
                return -EINVAL;
        for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                if (n == ARRAY_SIZE(f))
                        return -EINVAL;
                f[n++] = tok;
        }
        if (n != ARRAY_SIZE(f) || !streq(f[0], "nh"))
                return -EINVAL;
        if (streq(f[1], "in"))
                r.dir = SECRULE_INGRESS;
        else if (streq(f[1], "out"))
                r.dir = SECRULE_EGRESS;
        else
                return -EINVAL;
        if (streq(f[2], "4") || streq(f[2], "6"))
                r.family = (uint8_t)(f[2][0] - '0');
        else
                return -EINVAL;
        if (streq(f[3], "any"))
                r.proto = -1;
        else if (field_num(f[3], 0, 255, &v) < 0 || v < 0)
                return -EINVAL;
        else
                r.proto = (int16_t)v;
        if (field_num(f[4], 1, 65535, &v) < 0)
                return -EINVAL;
        r.port_min = v < 0 ? 0 : (uint16_t)v;
        if (field_num(f[5], 1, 65535, &v) < 0)
                return -EINVAL;
        r.port_max = v < 0 ? 0 : (uint16_t)v;
        if (field_num(f[6], 0, 255, &v) < 0)
                return -EINVAL;
        r.icmp_type = (int16_t)v;
        if (field_num(f[7], 0, 255, &v) < 0)
                return -EINVAL;
        r.icmp_code = (int16_t)v;
        if (!streq(f[8], "-")) {
                if (cidr_parse(f[8], false, &r.remote) < 0 || !cidr_is_canonical(f[8]))
                        return -EINVAL;
                r.has_remote = true;
        }
        if ((r.port_min == 0) != (r.port_max == 0))
                return -EINVAL;
        if (secrule_check(&r, NULL, 0) < 0)
                return -EINVAL;
        *ret = r;
        return 0;
}

bool secrule_equal(const struct secrule *a, const struct secrule *b)
{
        char x[SECRULE_TEXT_MAX], y[SECRULE_TEXT_MAX];

        if (secrule_format(a, x, sizeof(x)) < 0 || secrule_format(b, y, sizeof(y)) < 0)
                return false;
        return streq(x, y);
}

static const struct {
        const char *name;
        int num;
} proto_names[] = {
        { "tcp", 6 }, { "udp", 17 }, { "icmp", 1 }, { "ipv6-icmp", 58 }, { "icmpv6", 58 },
        { "sctp", 132 }, { "dccp", 33 }, { "udplite", 136 }, { "gre", 47 }, { "esp", 50 },
        { "ah", 51 }, { "vrrp", 112 },
};

int secrule_proto_parse(const char *s, int *ret)
{
        uint64_t v;

        if (!s || streq(s, "any") || streq(s, "")) {
                *ret = -1;
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(proto_names); i++)
                if (streq(proto_names[i].name, s)) {
                        *ret = proto_names[i].num;
                        return 0;
                }
        if (parse_u64(s, 0, 255, &v) < 0)
                return -EINVAL;
        *ret = (int)v;
        return 0;
}

const char *secrule_proto_name(int proto, char buf[8])
{
        if (proto < 0)
                return "any";
        for (size_t i = 0; i < ARRAY_SIZE(proto_names); i++)
                if (proto_names[i].num == proto)
                        return proto_names[i].name;
        (void)snprintf(buf, 8, "%u", (unsigned)proto & 0xffu);
        return buf;
}

int ip_parse(const char *s, uint8_t *ret_family, uint8_t ret_addr[16])
{
        uint8_t a[16] = { 0 };

        if (!s || strlen(s) >= IP_STR_MAX)
                return -EINVAL;
        if (strchr(s, ':')) {
                if (inet_pton(AF_INET6, s, a) != 1)
                        return -EINVAL;
                *ret_family = 6;
        } else {
                if (inet_pton(AF_INET, s, a) != 1)
                        return -EINVAL;
                *ret_family = 4;
        }
        memcpy(ret_addr, a, 16);
        return 0;
}

bool ip_is_valid(const char *s)
{
        uint8_t fam, a[16];

        return ip_parse(s, &fam, a) == 0;
}

int ip_canonical(const char *s, char buf[IP_STR_MAX])
{
        uint8_t fam, a[16];

        if (ip_parse(s, &fam, a) < 0)
                return -EINVAL;
        return inet_ntop(fam == 6 ? AF_INET6 : AF_INET, a, buf, IP_STR_MAX) ? 0 : -EINVAL;
}

int cidr_parse(const char *s, bool normalize, struct cidr *ret)
{
        char addr[IP_STR_MAX];
        const char *slash;
        struct cidr c = { 0 };
        uint64_t len;
        size_t alen;

        if (!s)
                return -EINVAL;
        slash = strchr(s, '/');
        alen = slash ? (size_t)(slash - s) : strlen(s);
        if (alen == 0 || alen >= sizeof(addr))
                return -EINVAL;
        memcpy(addr, s, alen);
        addr[alen] = '\0';
        if (ip_parse(addr, &c.family, c.addr) < 0)
                return -EINVAL;
        if (slash) {
                if (slash[1] == '\0' || (slash[1] == '0' && slash[2] != '\0') ||
                    parse_u64(slash + 1, 0, c.family == 4 ? 32 : 128, &len) < 0)
                        return -EINVAL;
                c.prefix = (uint8_t)len;
        } else
                c.prefix = c.family == 4 ? 32 : 128;
        for (unsigned bit = c.prefix; bit < (c.family == 4 ? 32u : 128u); bit++) {
                uint8_t mask = (uint8_t)(0x80u >> (bit % 8));
                if (c.addr[bit / 8] & mask) {
                        if (!normalize)
                                return -EINVAL;
                        c.addr[bit / 8] &= (uint8_t)~mask;
                }
        }
        *ret = c;
        return 0;
}

void cidr_format(const struct cidr *c, char buf[CIDR_STR_MAX])
{
        char a[IP_STR_MAX] = "?";

        char *p = buf;
        unsigned v = c->prefix;

        (void)inet_ntop(c->family == 6 ? AF_INET6 : AF_INET, c->addr, a, sizeof(a));
        /* "%s/%u" without printf (secrule_format): IP_STR_MAX + '/' + 3 digits fit */
        _Static_assert(CIDR_STR_MAX >= IP_STR_MAX + 4, "a CIDR's text fits");
        p = put_str(p, a);
        *p++ = '/';
        if (v >= 100)
                *p++ = (char)('0' + v / 100);
        if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p = '\0';
}

bool cidr_is_canonical(const char *s)
{
        struct cidr c;
        char back[CIDR_STR_MAX];

        if (cidr_parse(s, false, &c) < 0)
                return false;
        cidr_format(&c, back);
        return streq(back, s);
}

void ipv6_link_local_from_mac(const uint8_t mac[6], char buf[IP_STR_MAX])
{
        uint8_t a[16] = { 0xfe, 0x80 };

        a[8] = mac[0] ^ 0x02;
        a[9] = mac[1];
        a[10] = mac[2];
        a[11] = 0xff;
        a[12] = 0xfe;
        a[13] = mac[3];
        a[14] = mac[4];
        a[15] = mac[5];
        (void)inet_ntop(AF_INET6, a, buf, IP_STR_MAX);
}

/* ---- JSON ---- */

/* The text of a JSON string, or NULL when v is not a string or holds a NUL
 * (then the C string would be only a prefix of it). */
static const char *json_text(struct json_object *v)
{
        const char *s;

        if (!json_object_is_type(v, json_type_string))
                return NULL;
        s = json_object_get_string(v);
        return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

static int json_port(struct json_object *v, const char *name, long max, long *ret, char *err, size_t errlen)
{
        int64_t n;

        if (!v || json_object_is_type(v, json_type_null)) {
                *ret = -1;
                return 0;
        }
        if (!json_object_is_type(v, json_type_int))
                return fail(err, errlen, "%s: must be an integer", name);
        n = json_object_get_int64(v);
        if (n < 0 || n > max)
                return fail(err, errlen, "%s: %lld is outside 0..%ld", name, (long long)n, max);
        *ret = (long)n;
        return 0;
}

/* Every member of o is one a rule may have. */
static int rule_fields_known(struct json_object *o, char *err, size_t errlen)
{
        static const char *const known[] = { "id", "direction", "ethertype", "protocol", "port_range_min",
                                             "port_range_max", "remote_ip_prefix" };

        json_object_object_foreach(o, key, val) {
                bool ok = false;
                (void)val;
                for (size_t i = 0; i < ARRAY_SIZE(known); i++)
                        ok = ok || streq(known[i], key);
                if (!ok)
                        return fail(err, errlen, "rule: unknown field '%.32s'", key);
        }
        return 0;
}

/* id, direction, ethertype and protocol into r. */
static int rule_kind_from_json(struct json_object *o, struct secrule *r, char *err, size_t errlen)
{
        struct json_object *v;

        if (json_object_object_get_ex(o, "id", &v) && !json_object_is_type(v, json_type_null)) {
                if (!json_text(v) || !uuid_is_valid(json_text(v)))
                        return fail(err, errlen, "id: not a canonical lowercase UUID");
                memcpy(r->uuid, json_text(v), UUID_STR_LEN + 1);
        }
        if (!json_object_object_get_ex(o, "direction", &v) || !json_object_is_type(v, json_type_string))
                return fail(err, errlen, "direction: required, ingress or egress");
        if (streq_ptr(json_text(v), "ingress"))
                r->dir = SECRULE_INGRESS;
        else if (streq_ptr(json_text(v), "egress"))
                r->dir = SECRULE_EGRESS;
        else
                return fail(err, errlen, "direction: '%.16s' is not ingress or egress", json_object_get_string(v));
        if (json_object_object_get_ex(o, "ethertype", &v) && !json_object_is_type(v, json_type_null)) {
                const char *s = json_text(v) ? json_text(v) : "";
                if (streq(s, "IPv4"))
                        r->family = 4;
                else if (streq(s, "IPv6"))
                        r->family = 6;
                else
                        return fail(err, errlen, "ethertype: must be IPv4 or IPv6");
        }
        if (json_object_object_get_ex(o, "protocol", &v) && !json_object_is_type(v, json_type_null)) {
                int p;
                if (json_object_is_type(v, json_type_int)) {
                        int64_t n = json_object_get_int64(v);
                        if (n < 0 || n > 255)
                                return fail(err, errlen, "protocol: %lld is outside 0..255", (long long)n);
                        p = (int)n;
                } else if (!json_text(v) || secrule_proto_parse(json_text(v), &p) < 0)
                        return fail(err, errlen, "protocol: not a protocol name or number 0..255");
                r->proto = (int16_t)p;
        }
        /* neutron: "icmp" with IPv6 means ipv6-icmp */
        if (r->proto == 1 && r->family == 6)
                r->proto = 58;
        return 0;
}

/* port_range_min/max into r: ports, or for ICMP the type and code. */
static int rule_ports_from_json(struct json_object *o, struct secrule *r, char *err, size_t errlen)
{
        struct json_object *v = NULL;
        long pmin = -1, pmax = -1;
        int k;

        json_object_object_get_ex(o, "port_range_min", &v);
        if ((k = json_port(v, "port_range_min", 65535, &pmin, err, errlen)) < 0)
                return k;
        v = NULL;
        json_object_object_get_ex(o, "port_range_max", &v);
        if ((k = json_port(v, "port_range_max", 65535, &pmax, err, errlen)) < 0)
                return k;
        if (r->proto >= 0 && r->proto == secrule_icmp_proto(r->family)) {
                if (pmin > 255 || pmax > 255)
                        return fail(err, errlen, "ICMP type (port_range_min) and code (port_range_max) are 0..255");
                r->icmp_type = (int16_t)pmin;
                r->icmp_code = (int16_t)pmax;
        } else if (pmin >= 0 || pmax >= 0) {
                if (pmin < 0)
                        pmin = pmax;
                if (pmax < 0)
                        pmax = pmin;
                if (pmin == 0 || pmax == 0)
                        return fail(err, errlen, "port range: ports are 1..65535 (0 is not a port)");
                r->port_min = (uint16_t)pmin;
                r->port_max = (uint16_t)pmax;
        }
        return 0;
}

int secrule_from_json(struct json_object *o, struct secrule *ret, char *err, size_t errlen)
{
        struct secrule r = { .proto = -1, .icmp_type = -1, .icmp_code = -1, .family = 4 };
        struct json_object *v;
        int k;

        if (!o || !json_object_is_type(o, json_type_object))
                return fail(err, errlen, "rule: must be an object");
        if ((k = rule_fields_known(o, err, errlen)) < 0 || (k = rule_kind_from_json(o, &r, err, errlen)) < 0 ||
            (k = rule_ports_from_json(o, &r, err, errlen)) < 0)
                return k;
        if (json_object_object_get_ex(o, "remote_ip_prefix", &v) && !json_object_is_type(v, json_type_null)) {
                if (!json_text(v) || cidr_parse(json_text(v), true, &r.remote) < 0)
                        return fail(err, errlen, "remote_ip_prefix: '%.48s' is not an IPv4 or IPv6 CIDR",
                                    json_object_get_string(v));
                r.has_remote = true;
        }
        if ((k = secrule_check(&r, err, errlen)) < 0)
                return k;
        *ret = r;
        return 0;
}

struct json_object *secrule_to_json(const struct secrule *r)
{
        struct json_object *o = json_object_new_object();
        char pbuf[8], cidr[CIDR_STR_MAX];

        if (!o)
                return NULL;
        if (r->uuid[0])
                json_object_object_add(o, "id", json_object_new_string(r->uuid));
        json_object_object_add(o, "direction", json_object_new_string(r->dir == SECRULE_EGRESS ? "egress" : "ingress"));
        json_object_object_add(o, "ethertype", json_object_new_string(r->family == 6 ? "IPv6" : "IPv4"));
        json_object_object_add(o, "protocol",
                               r->proto < 0 ? NULL : json_object_new_string(secrule_proto_name(r->proto, pbuf)));
        if (r->icmp_type >= 0 || r->icmp_code >= 0) {
                json_object_object_add(o, "port_range_min", r->icmp_type < 0 ? NULL : json_object_new_int(r->icmp_type));
                json_object_object_add(o, "port_range_max", r->icmp_code < 0 ? NULL : json_object_new_int(r->icmp_code));
        } else {
                json_object_object_add(o, "port_range_min", r->port_min ? json_object_new_int(r->port_min) : NULL);
                json_object_object_add(o, "port_range_max", r->port_max ? json_object_new_int(r->port_max) : NULL);
        }
        if (r->has_remote)
                cidr_format(&r->remote, cidr);
        json_object_object_add(o, "remote_ip_prefix", r->has_remote ? json_object_new_string(cidr) : NULL);
        return o;
}

static int cmp_text(const void *a, const void *b) { return strcmp(a, b); }

uint64_t secrule_digest(const struct secrule *rules, size_t n)
{
        _cleanup_free_ char(*texts)[SECRULE_TEXT_MAX] = NULL;
        uint64_t h = 0xcbf29ce484222325ULL;

        if (n > 0) {
                texts = calloc(n, sizeof(*texts));
                if (!texts)
                        return 0;
                for (size_t i = 0; i < n; i++)
                        (void)secrule_format(&rules[i], texts[i], SECRULE_TEXT_MAX);
                qsort(texts, n, SECRULE_TEXT_MAX, cmp_text);
        }
        for (size_t i = 0; i < n; i++) {
                for (const char *p = texts[i]; *p; p++) {
                        h ^= (uint8_t)*p;
                        h *= 0x100000001b3ULL;
                }
                h ^= '\n';
                h *= 0x100000001b3ULL;
        }
        return h;
}
