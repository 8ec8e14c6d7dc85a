/* fuzz-secrule.c - libFuzzer target for the security-group rule decoders of
 * src/lib/secrule.c: the canonical text (secrule_parse), the neutron JSON
 * (secrule_from_json), CIDRs, addresses and protocol names. Every input is
 * tried as each of them.
 *
 * What is accepted must be valid and stable: the canonical text formats back
 * to the very input; a rule survives to_json -> from_json, the module's wire
 * form (fw_rule_write -> frame -> schema -> fw_rule_read) and the group-chain
 * builder; a CIDR or address formats to a canonical form that parses to the
 * same value. What is refused leaves the output untouched. Any violation
 * aborts. */
#include "fw-nft.h"
#include "fw-protocol.h"
#include "proto.h"
#include "schema.h"
#include "secrule.h"

#define CHECK(x)                                                                             \
        do {                                                                                 \
                if (!(x)) {                                                                  \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                             \
                }                                                                            \
        } while (0)

#define GROUP "11111111-2222-4333-8444-555555555555"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct proto_writer pw;
static struct proto_msg msg;
static struct sbuf sb;

static const struct schema_field *rule_schema(void)
{
        const struct schema_field *f = fw_entrypoints[FW_PORT_RULES_APPLY].request;

        while (f->name && !streq(f->name, "groups"))
                f++;
        for (f = f->fields; f->name && !streq(f->name, "rules"); f++)
                ;
        return f->fields;
}

static void same_rule(const struct secrule *a, const struct secrule *b)
{
        char x[SECRULE_TEXT_MAX], y[SECRULE_TEXT_MAX];

        CHECK(secrule_format(a, x, sizeof(x)) == 0);
        CHECK(secrule_format(b, y, sizeof(y)) == 0);
        CHECK(streq(x, y));
        CHECK(secrule_equal(a, b));
        CHECK(a->dir == b->dir && a->family == b->family && a->proto == b->proto);
        CHECK(a->port_min == b->port_min && a->port_max == b->port_max);
        CHECK(a->icmp_type == b->icmp_type && a->icmp_code == b->icmp_code);
        CHECK(a->has_remote == b->has_remote);
        CHECK(!a->has_remote || memcmp(&a->remote, &b->remote, sizeof(a->remote)) == 0);
        CHECK(secrule_digest(a, 1) == secrule_digest(b, 1));
}

/* Everything a valid rule must get through. */
static void valid_rule(const struct secrule *r)
{
        char text[SECRULE_TEXT_MAX], err[256];
        struct secrule back;
        struct json_object *o, *again;
        const uint8_t *buf;
        size_t len;

        CHECK(secrule_check(r, NULL, 0) == 0);
        CHECK(r->dir <= SECRULE_EGRESS && (r->family == 4 || r->family == 6));
        CHECK(r->proto >= -1 && r->proto <= 255);
        CHECK((r->port_min == 0) == (r->port_max == 0));
        CHECK(r->port_min <= r->port_max);
        CHECK(r->port_min == 0 || secrule_proto_has_ports(r->proto));
        CHECK(r->icmp_type < 0 || r->proto == secrule_icmp_proto(r->family));
        CHECK(r->icmp_code < 0 || r->icmp_type >= 0);
        CHECK(!r->has_remote || r->remote.family == r->family);

        /* canonical text */
        CHECK(secrule_format(r, text, sizeof(text)) == 0);
        CHECK(secrule_parse(text, &back) == 0);
        same_rule(r, &back);

        /* JSON, through its text */
        o = secrule_to_json(r);
        CHECK(o != NULL);
        again = json_tokener_parse(json_object_to_json_string(o));
        CHECK(again != NULL);
        memset(err, 0, sizeof(err));
        CHECK(secrule_from_json(again, &back, err, sizeof(err)) == 0);
        same_rule(r, &back);
        CHECK(streq(back.uuid, r->uuid));
        json_object_put(again);
        json_object_put(o);

        /* the module's wire form */
        pw_init(&pw, PROTO_REQUEST, 1, 0, "port_rules_apply");
        fw_rule_write(&pw, r);
        CHECK(pw_finish(&pw, &buf, &len) == 0);
        CHECK(proto_decode(buf, len, &msg, err, sizeof(err)) == 0);
        CHECK(schema_check(rule_schema(), msg.body, err, sizeof(err)) == 0);
        CHECK(fw_rule_read(msg.body, &back, err, sizeof(err)) == 0);
        same_rule(r, &back);

        /* the group chain: built, commented with the canonical text */
        sbuf_reset(&sb);
        fw_build_group(&sb, 0, GROUP, r, 1, true);
        CHECK(sb.err == 0);
        CHECK(strstr(sb.p, text) != NULL);
}

static void fuzz_text(const char *s)
{
        struct secrule r, sentinel;
        char text[SECRULE_TEXT_MAX];

        memset(&sentinel, 0xa5, sizeof(sentinel));
        r = sentinel;
        if (secrule_parse(s, &r) < 0) {
                CHECK(memcmp(&r, &sentinel, sizeof(r)) == 0);
                return;
        }
        CHECK(r.uuid[0] == '\0');
        valid_rule(&r);
        /* strict: only the canonical text is accepted */
        CHECK(secrule_format(&r, text, sizeof(text)) == 0);
        CHECK(streq(text, s));
}

static void fuzz_json(const uint8_t *data, size_t size)
{
        struct json_tokener *tok;
        struct json_object *o;
        struct secrule r, sentinel;
        char err[256];
        int k;

        if (size > INT32_MAX)
                return;
        tok = json_tokener_new_ex(8);
        CHECK(tok != NULL);
        o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
        json_tokener_free(tok);
        if (!o)
                return;
        memset(&sentinel, 0xa5, sizeof(sentinel));
        r = sentinel;
        memset(err, 0, sizeof(err));
        k = secrule_from_json(o, &r, err, sizeof(err));
        if (k < 0) {
                CHECK(k == -EINVAL);
                CHECK(err[0] != '\0');
                CHECK(memcmp(&r, &sentinel, sizeof(r)) == 0);
        } else {
                CHECK(k == 0);
                CHECK(r.uuid[0] == '\0' || uuid_is_valid(r.uuid));
                valid_rule(&r);
        }
        json_object_put(o);
}

static void fuzz_cidr(const char *s)
{
        struct cidr c, n, back, sentinel;
        char buf[CIDR_STR_MAX], nbuf[CIDR_STR_MAX];
        int strict, norm;

        memset(&sentinel, 0xa5, sizeof(sentinel));
        c = n = sentinel;
        strict = cidr_parse(s, false, &c);
        norm = cidr_parse(s, true, &n);
        CHECK(strict == 0 || strict == -EINVAL);
        CHECK(norm == 0 || norm == -EINVAL);
        CHECK(strict < 0 || norm == 0); /* strict acceptance implies normalized acceptance */
        if (strict < 0)
                CHECK(memcmp(&c, &sentinel, sizeof(c)) == 0);
        if (norm < 0) {
                CHECK(memcmp(&n, &sentinel, sizeof(n)) == 0);
                CHECK(!cidr_is_canonical(s));
                return;
        }
        CHECK(n.family == 4 || n.family == 6);
        CHECK(n.prefix <= (n.family == 4 ? 32 : 128));
        for (unsigned bit = n.prefix; bit < 128; bit++)
                CHECK(!(n.addr[bit / 8] & (0x80u >> (bit % 8))));
        cidr_format(&n, nbuf);
        CHECK(cidr_is_canonical(nbuf));
        back = sentinel;
        CHECK(cidr_parse(nbuf, false, &back) == 0);
        CHECK(memcmp(&back, &n, sizeof(n)) == 0);
        if (strict == 0) {
                CHECK(memcmp(&c, &n, sizeof(c)) == 0); /* no host bits: nothing to clear */
                cidr_format(&c, buf);
                CHECK(streq(buf, nbuf));
                CHECK(cidr_is_canonical(s) == streq(s, buf));
        } else
                CHECK(!cidr_is_canonical(s));
}

static void fuzz_ip(const char *s)
{
        uint8_t fam = 0xa5, a[16], fam2, b[16], sentinel[16];
        char canon[IP_STR_MAX], again[IP_STR_MAX];
        struct cidr c;

        memset(sentinel, 0xa5, sizeof(sentinel));
        memcpy(a, sentinel, sizeof(a));
        if (ip_parse(s, &fam, a) < 0) {
                CHECK(fam == 0xa5 && memcmp(a, sentinel, sizeof(a)) == 0);
                CHECK(!ip_is_valid(s));
                CHECK(ip_canonical(s, canon) == -EINVAL);
                return;
        }
        CHECK(fam == 4 || fam == 6);
        CHECK(ip_is_valid(s));
        CHECK(ip_canonical(s, canon) == 0);
        CHECK(ip_parse(canon, &fam2, b) == 0);
        CHECK(fam2 == fam && memcmp(a, b, 16) == 0);
        CHECK(ip_canonical(canon, again) == 0 && streq(again, canon));
        /* a bare address is a host prefix */
        CHECK(cidr_parse(s, false, &c) == 0);
        CHECK(c.family == fam && c.prefix == (fam == 4 ? 32 : 128) && memcmp(c.addr, a, 16) == 0);
}

static void fuzz_proto(const char *s)
{
        char buf[8];
        int p = -99, q = -99;

        if (secrule_proto_parse(s, &p) < 0) {
                CHECK(p == -99);
                return;
        }
        CHECK(p >= -1 && p <= 255);
        CHECK(secrule_proto_parse(secrule_proto_name(p, buf), &q) == 0);
        CHECK(q == p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *s;

        if (size > 4096)
                return 0;
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0'; /* as a C string: up to the first NUL */
        fuzz_text(s);
        fuzz_cidr(s);
        fuzz_ip(s);
        fuzz_proto(s);
        fuzz_json(data, size);
        free(s);
        return 0;
}
