/* test-secrule.c - unit tests for src/lib/secrule.c: the security-group rule
 * model, its canonical text (the nftables comment the module reads back), the
 * neutron-style JSON of the API and store, protocol names, CIDR and address
 * parsing, the EUI-64 link-local address and the rule-set digest. */
#include <check.h>

#include "secrule.h"

#define RULE_ID "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

static char err[256];

/* A rule from its canonical text (which must parse). */
static struct secrule R(const char *text)
{
        struct secrule r;
        int k = secrule_parse(text, &r);

        ck_assert_msg(k == 0, "'%s' refused: %d", text, k);
        return r;
}

static const char *fmt(const struct secrule *r)
{
        static char buf[SECRULE_TEXT_MAX];

        ck_assert_int_eq(secrule_format(r, buf, sizeof(buf)), 0);
        return buf;
}

/* A rule built field by field (unchecked). */
static struct secrule mk(uint8_t dir, uint8_t family, int proto, unsigned pmin, unsigned pmax, int itype, int icode,
                         const char *cidr)
{
        struct secrule r = { .dir = dir, .family = family, .proto = (int16_t)proto, .port_min = (uint16_t)pmin,
                             .port_max = (uint16_t)pmax, .icmp_type = (int16_t)itype, .icmp_code = (int16_t)icode };

        if (cidr) {
                ck_assert_msg(cidr_parse(cidr, false, &r.remote) == 0, "cidr '%s' refused", cidr);
                r.has_remote = true;
        }
        return r;
}

static int check_rule(const struct secrule *r)
{
        memset(err, 0, sizeof(err));
        return secrule_check(r, err, sizeof(err));
}

/* Refused by secrule_check with a reason containing `why`. */
#define CHECK_BAD(rule, why)                                                                              \
        do {                                                                                              \
                struct secrule _r = (rule);                                                               \
                int _k = check_rule(&_r);                                                                 \
                ck_assert_msg(_k == -EINVAL, "rule accepted (%d), want '%s'", _k, why);                   \
                ck_assert_msg(strstr(err, why), "reason '%s' does not say '%s'", err, why);               \
        } while (0)

/* ---- secrule_check ---- */

START_TEST(test_check_accepts)
{
        const struct secrule good[] = {
                mk(SECRULE_INGRESS, 4, -1, 0, 0, -1, -1, NULL),
                mk(SECRULE_EGRESS, 6, -1, 0, 0, -1, -1, NULL),
                mk(SECRULE_INGRESS, 4, 6, 22, 22, -1, -1, "10.0.0.0/8"),
                mk(SECRULE_INGRESS, 4, 6, 1, 65535, -1, -1, NULL),
                mk(SECRULE_INGRESS, 6, 17, 1000, 2000, -1, -1, "2001:db8::/32"),
                mk(SECRULE_INGRESS, 4, 132, 5, 5, -1, -1, NULL),  /* sctp */
                mk(SECRULE_INGRESS, 4, 33, 5, 6, -1, -1, NULL),   /* dccp */
                mk(SECRULE_INGRESS, 6, 136, 5, 6, -1, -1, NULL),  /* udplite */
                mk(SECRULE_INGRESS, 4, 6, 0, 0, -1, -1, NULL),    /* tcp without ports */
                mk(SECRULE_INGRESS, 4, 1, 0, 0, -1, -1, NULL),    /* any icmp */
                mk(SECRULE_INGRESS, 4, 1, 0, 0, 8, -1, NULL),     /* echo request, any code */
                mk(SECRULE_INGRESS, 4, 1, 0, 0, 3, 4, NULL),
                mk(SECRULE_INGRESS, 4, 1, 0, 0, 255, 255, NULL),
                mk(SECRULE_INGRESS, 6, 58, 0, 0, 128, 0, NULL),
                mk(SECRULE_EGRESS, 4, 47, 0, 0, -1, -1, "0.0.0.0/0"), /* gre */
                mk(SECRULE_EGRESS, 4, 0, 0, 0, -1, -1, NULL),     /* protocol number 0 */
                mk(SECRULE_EGRESS, 6, 255, 0, 0, -1, -1, "::/0"),
                mk(SECRULE_EGRESS, 6, -1, 0, 0, -1, -1, "fe80::1/128"),
        };

        for (size_t i = 0; i < ARRAY_SIZE(good); i++)
                ck_assert_msg(check_rule(&good[i]) == 0, "rule %zu refused: %s", i, err);
        /* err may be NULL */
        ck_assert_int_eq(secrule_check(&good[2], NULL, 0), 0);
}
END_TEST

START_TEST(test_check_rejects)
{
        struct secrule r;

        /* direction and ethertype */
        r = mk(SECRULE_INGRESS, 4, -1, 0, 0, -1, -1, NULL);
        r.dir = 2;
        CHECK_BAD(r, "direction");
        CHECK_BAD(mk(SECRULE_INGRESS, 5, -1, 0, 0, -1, -1, NULL), "ethertype");
        CHECK_BAD(mk(SECRULE_INGRESS, 0, -1, 0, 0, -1, -1, NULL), "ethertype");
        /* protocol range */
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 256, 0, 0, -1, -1, NULL), "protocol must be 0..255");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, -2, 0, 0, -1, -1, NULL), "protocol must be 0..255");

        /* ports: only with a port-carrying protocol, 1..65535, min <= max */
        CHECK_BAD(mk(SECRULE_INGRESS, 4, -1, 22, 22, -1, -1, NULL), "a port range needs protocol");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 1, 22, 22, -1, -1, NULL), "a port range needs protocol");
        CHECK_BAD(mk(SECRULE_INGRESS, 6, 58, 22, 22, -1, -1, NULL), "a port range needs protocol");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 47, 22, 22, -1, -1, NULL), "a port range needs protocol");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 6, 0, 22, -1, -1, NULL), "ports are 1..65535");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 6, 22, 0, -1, -1, NULL), "ports are 1..65535");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 6, 2000, 1000, -1, -1, NULL), "minimum 2000 is above maximum 1000");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 17, 65535, 1, -1, -1, NULL), "minimum 65535 is above maximum 1");

        /* ICMP type/code */
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 1, 0, 0, 256, -1, NULL), "ICMP type and code are 0..255");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 1, 0, 0, 8, 256, NULL), "ICMP type and code are 0..255");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 1, 0, 0, -2, -1, NULL), "ICMP type and code are 0..255");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 1, 0, 0, -1, 0, NULL), "an ICMP code needs an ICMP type");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 6, 0, 0, 8, -1, NULL), "needs protocol icmp with ethertype IPv4");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, -1, 0, 0, 8, -1, NULL), "needs protocol icmp");
        CHECK_BAD(mk(SECRULE_INGRESS, 6, 1, 0, 0, 8, -1, NULL), "needs protocol ipv6-icmp with ethertype IPv6");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 58, 0, 0, 128, -1, NULL), "needs protocol icmp with ethertype IPv4");
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 6, 22, 22, 8, 0, NULL), "needs protocol icmp");

        /* the ICMP protocol of the other family */
        CHECK_BAD(mk(SECRULE_INGRESS, 4, 58, 0, 0, -1, -1, NULL), "ipv6-icmp needs ethertype IPv6");
        CHECK_BAD(mk(SECRULE_INGRESS, 6, 1, 0, 0, -1, -1, NULL), "icmp needs ethertype IPv4");

        /* remote prefix of the other family or out of range */
        CHECK_BAD(mk(SECRULE_INGRESS, 4, -1, 0, 0, -1, -1, "2001:db8::/32"), "remote prefix is IPv6 but ethertype is IPv4");
        CHECK_BAD(mk(SECRULE_INGRESS, 6, -1, 0, 0, -1, -1, "10.0.0.0/8"), "remote prefix is IPv4 but ethertype is IPv6");
        r = mk(SECRULE_INGRESS, 4, -1, 0, 0, -1, -1, "10.0.0.0/8");
        r.remote.prefix = 33;
        CHECK_BAD(r, "remote prefix length out of range");
        r = mk(SECRULE_INGRESS, 6, -1, 0, 0, -1, -1, "::/0");
        r.remote.prefix = 129;
        CHECK_BAD(r, "remote prefix length out of range");
        r = mk(SECRULE_INGRESS, 4, -1, 0, 0, -1, -1, "10.0.0.0/8");
        r.remote.family = 5;
        CHECK_BAD(r, "remote prefix is IPv5");
        /* not a network address: its text would not parse back */
        r = mk(SECRULE_INGRESS, 4, -1, 0, 0, -1, -1, "10.0.0.0/8");
        r.remote.addr[3] = 1;
        CHECK_BAD(r, "remote prefix has host bits set");
        r = mk(SECRULE_INGRESS, 4, -1, 0, 0, -1, -1, "10.0.0.0/8");
        r.remote.addr[4] = 1; /* beyond an IPv4 address */
        CHECK_BAD(r, "remote prefix has host bits set");
        r = mk(SECRULE_INGRESS, 6, -1, 0, 0, -1, -1, "2001:db8::/32");
        r.remote.addr[15] = 1;
        CHECK_BAD(r, "remote prefix has host bits set");
        r = mk(SECRULE_INGRESS, 6, -1, 0, 0, -1, -1, "::/0");
        r.remote.addr[0] = 0x80;
        CHECK_BAD(r, "remote prefix has host bits set");
}
END_TEST

/* Whatever passes secrule_check has a canonical text that parses back to
 * the same rule (the module relies on it: the text is the comment it reads
 * back). Random rules, many of them invalid. */
START_TEST(test_check_implies_round_trip)
{
        static const int protos[] = { -1, 0, 1, 6, 17, 33, 47, 58, 132, 136, 255 };
        static const int ports[] = { 0, 1, 22, 80, 1024, 65535 };
        static const int icmps[] = { -1, 0, 3, 8, 128, 255 };
        unsigned seed = 12345, accepted = 0;

        for (int i = 0; i < 200000; i++) {
                struct secrule r = { 0 }, back;
                char text[SECRULE_TEXT_MAX], again[SECRULE_TEXT_MAX];

                seed = seed * 1103515245u + 12345u;
                unsigned x = seed >> 4;
                r.dir = (uint8_t)(x % 2);
                r.family = (x >> 1) % 5 == 0 ? 6 : 4;
                r.proto = (int16_t)protos[(x >> 4) % ARRAY_SIZE(protos)];
                r.port_min = (uint16_t)ports[(x >> 8) % ARRAY_SIZE(ports)];
                r.port_max = (uint16_t)ports[(x >> 11) % ARRAY_SIZE(ports)];
                r.icmp_type = (int16_t)icmps[(x >> 14) % ARRAY_SIZE(icmps)];
                r.icmp_code = (int16_t)icmps[(x >> 17) % ARRAY_SIZE(icmps)];
                if ((x >> 20) % 2) {
                        seed = seed * 1103515245u + 12345u;
                        r.has_remote = true;
                        r.remote.family = (x >> 21) % 4 == 0 ? (uint8_t)(10 - r.family) : r.family;
                        r.remote.prefix = (uint8_t)((seed >> 8) % (r.remote.family == 4 ? 33 : 129));
                        for (int b = 0; b < 16; b++) {
                                seed = seed * 1103515245u + 12345u;
                                r.remote.addr[b] = (uint8_t)(seed >> 16);
                        }
                        if (r.remote.family == 4)
                                memset(r.remote.addr + 4, 0, 12);
                }
                if (secrule_check(&r, NULL, 0) < 0)
                        continue;
                accepted++;
                ck_assert_int_eq(secrule_format(&r, text, sizeof(text)), 0);
                ck_assert_msg(secrule_parse(text, &back) == 0, "checked rule's text '%s' does not parse", text);
                ck_assert_msg(secrule_equal(&r, &back), "'%s' parses to '%s'", text, fmt(&back));
                ck_assert_int_eq(secrule_format(&back, again, sizeof(again)), 0);
                ck_assert_str_eq(again, text);
                ck_assert_int_eq(memcmp(&back.remote, &r.remote, sizeof(r.remote)), 0);
        }
        ck_assert_uint_gt(accepted, 1000);
}
END_TEST

START_TEST(test_proto_has_ports)
{
        static const int with[] = { 6, 17, 33, 132, 136 };
        int n = 0;

        for (size_t i = 0; i < ARRAY_SIZE(with); i++)
                ck_assert(secrule_proto_has_ports(with[i]));
        for (int p = -1; p <= 256; p++)
                n += secrule_proto_has_ports(p);
        ck_assert_int_eq(n, (int)ARRAY_SIZE(with));
        ck_assert_int_eq(secrule_icmp_proto(4), 1);
        ck_assert_int_eq(secrule_icmp_proto(6), 58);
}
END_TEST

/* ---- canonical text ---- */

START_TEST(test_format_canonical)
{
        static const struct {
                struct secrule r;
                const char *text;
        } cases[] = {
                { { .dir = SECRULE_INGRESS, .family = 4, .proto = -1, .icmp_type = -1, .icmp_code = -1 },
                  "nh in 4 any - - - - -" },
                { { .dir = SECRULE_EGRESS, .family = 6, .proto = -1, .icmp_type = -1, .icmp_code = -1 },
                  "nh out 6 any - - - - -" },
                { { .dir = SECRULE_INGRESS, .family = 4, .proto = 6, .port_min = 22, .port_max = 22, .icmp_type = -1,
                    .icmp_code = -1, .has_remote = true, .remote = { 4, 8, { 10 } } },
                  "nh in 4 6 22 22 - - 10.0.0.0/8" },
                { { .dir = SECRULE_INGRESS, .family = 6, .proto = 58, .icmp_type = 128, .icmp_code = 0 },
                  "nh in 6 58 - - 128 0 -" },
                { { .dir = SECRULE_EGRESS, .family = 6, .proto = 17, .port_min = 1, .port_max = 65535, .icmp_type = -1,
                    .icmp_code = -1, .has_remote = true, .remote = { 6, 32, { 0x20, 0x01, 0x0d, 0xb8 } } },
                  "nh out 6 17 1 65535 - - 2001:db8::/32" },
                { { .dir = SECRULE_EGRESS, .family = 4, .proto = 0, .icmp_type = -1, .icmp_code = -1, .has_remote = true,
                    .remote = { 4, 0, { 0 } } },
                  "nh out 4 0 - - - - 0.0.0.0/0" },
                { { .dir = SECRULE_INGRESS, .family = 4, .proto = 1, .icmp_type = 8, .icmp_code = -1 },
                  "nh in 4 1 - - 8 - -" },
        };
        char buf[SECRULE_TEXT_MAX];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct secrule back;
                ck_assert_int_eq(check_rule(&cases[i].r), 0);
                ck_assert_int_eq(secrule_format(&cases[i].r, buf, sizeof(buf)), 0);
                ck_assert_str_eq(buf, cases[i].text);
                ck_assert_int_eq(secrule_parse(buf, &back), 0);
                ck_assert(secrule_equal(&back, &cases[i].r));
                ck_assert_int_eq(memcmp(&back.remote, &cases[i].r.remote, sizeof(back.remote)), 0);
        }
        /* too small a buffer is reported, not cut silently */
        ck_assert_int_eq(secrule_format(&cases[2].r, buf, 10), -ENAMETOOLONG);
        /* the longest checked rule fits a comment */
        struct secrule big = mk(SECRULE_EGRESS, 6, 136, 65535, 65535, -1, -1,
                                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
        ck_assert_int_eq(check_rule(&big), 0);
        ck_assert_int_eq(secrule_format(&big, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "nh out 6 136 65535 65535 - - ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
}
END_TEST

START_TEST(test_parse_rejects)
{
        static const char *const bad[] = {
                "",
                "nh",
                "nh in 4 any - - - -",               /* 8 fields */
                "nh in 4 any - - - - - -",           /* 10 fields */
                "nx in 4 any - - - - -",
                "NH in 4 any - - - - -",
                "nh ingress 4 any - - - - -",
                "nh IN 4 any - - - - -",
                "nh in 5 any - - - - -",
                "nh in 04 any - - - - -",
                "nh in IPv4 any - - - - -",
                "nh in 4 tcp - - - - -",             /* names are not canonical, numbers are */
                "nh in 4 - - - - - -",
                "nh in 4 256 - - - - -",
                "nh in 4 06 - - - - -",
                "nh in 4 -1 - - - - -",
                "nh in 4 +6 - - - - -",
                " nh in 4 any - - - - -",
                "nh in 4 any - - - - - ",
                "nh  in 4 any - - - - -",
                "nh\tin 4 any - - - - -",
                "nh in 4 any - - - - -\n",
                /* ports */
                "nh in 4 6 0 22 - - -",
                "nh in 4 6 22 0 - - -",
                "nh in 4 6 0 0 - - -",
                "nh in 4 6 65536 65536 - - -",
                "nh in 4 6 22 65536 - - -",
                "nh in 4 6 022 22 - - -",
                "nh in 4 6 22 - - - -",
                "nh in 4 6 - 22 - - -",
                "nh in 4 6 2000 1000 - - -",
                "nh in 4 any 22 22 - - -",
                "nh in 4 1 22 22 - - -",
                "nh in 6 58 22 22 - - -",
                "nh in 4 6 99999999999999999999999 1 - - -",
                /* ICMP */
                "nh in 4 1 - - 256 - -",
                "nh in 4 1 - - 8 256 -",
                "nh in 4 1 - - - 0 -",
                "nh in 4 1 - - 08 - -",
                "nh in 4 6 - - 8 - -",
                "nh in 4 any - - 8 - -",
                "nh in 6 1 - - 8 - -",
                "nh in 4 58 - - - - -",
                "nh in 6 1 - - - - -",
                /* remote */
                "nh in 4 any - - - - 10.0.0.1/8",     /* host bits: the text is canonical or refused */
                "nh in 4 any - - - - 10.0.0.0/33",
                "nh in 4 any - - - - 10.0.0.0/08",
                "nh in 4 any - - - - 10.0.0.0",       /* a bare address is not the canonical form */
                "nh in 4 any - - - - 10.0.0.0/",
                "nh in 4 any - - - - /8",
                "nh in 4 any - - - - 1.2.3/24",
                "nh in 4 any - - - - 010.0.0.0/8",
                "nh in 4 any - - - - 10.0.0.0/8x",
                "nh in 6 any - - - - 2001:DB8::/32",
                "nh in 6 any - - - - 2001:db8:0::/32",
                "nh in 6 any - - - - ::/129",
                "nh in 4 any - - - - 2001:db8::/32",   /* family mismatch */
                "nh in 6 any - - - - 10.0.0.0/8",
                /* longer than a comment */
                "nh in 4 any - - - - -                                                                                                                                  ",
        };
        struct secrule r, untouched;

        memset(&untouched, 0x5a, sizeof(untouched));
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                r = untouched;
                ck_assert_msg(secrule_parse(bad[i], &r) == -EINVAL, "'%s' accepted", bad[i]);
                ck_assert_msg(memcmp(&r, &untouched, sizeof(r)) == 0, "'%s' touched the result", bad[i]);
        }
        ck_assert_int_eq(secrule_parse(NULL, &r), -EINVAL);
}
END_TEST

START_TEST(test_equal)
{
        struct secrule a = R("nh in 4 6 22 22 - - 10.0.0.0/8"), b = a;

        ck_assert(secrule_equal(&a, &b));
        memcpy(b.uuid, RULE_ID, sizeof(RULE_ID));
        ck_assert(secrule_equal(&a, &b)); /* the id does not count */
        b.port_max = 23;
        ck_assert(!secrule_equal(&a, &b));
        b = a;
        b.dir = SECRULE_EGRESS;
        ck_assert(!secrule_equal(&a, &b));
        b = a;
        b.remote.prefix = 16;
        ck_assert(!secrule_equal(&a, &b));
        b = a;
        b.has_remote = false;
        ck_assert(!secrule_equal(&a, &b));
        /* "any" and /0: different rules as text, though they match the same packets */
        a = R("nh in 4 any - - - - -");
        b = R("nh in 4 any - - - - 0.0.0.0/0");
        ck_assert(!secrule_equal(&a, &b));
}
END_TEST

/* ---- protocols ---- */

START_TEST(test_proto_names)
{
        static const struct {
                const char *name;
                int num;
        } names[] = {
                { "tcp", 6 }, { "udp", 17 }, { "icmp", 1 }, { "icmpv6", 58 }, { "ipv6-icmp", 58 }, { "sctp", 132 },
                { "dccp", 33 }, { "udplite", 136 }, { "gre", 47 }, { "esp", 50 }, { "ah", 51 }, { "vrrp", 112 },
                { "any", -1 }, { "", -1 }, { "0", 0 }, { "6", 6 }, { "255", 255 }, { "99", 99 },
        };
        static const char *const bad[] = { "TCP", "Tcp", "tcp ", " tcp", "256", "-1", "06", "+6", "0x6", "ip",
                                           "icmp6", "1000000000000000000000" };
        char buf[8];
        int p;

        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                p = -99;
                ck_assert_msg(secrule_proto_parse(names[i].name, &p) == 0, "'%s' refused", names[i].name);
                ck_assert_int_eq(p, names[i].num);
        }
        ck_assert_int_eq(secrule_proto_parse(NULL, &p), 0);
        ck_assert_int_eq(p, -1);
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                ck_assert_msg(secrule_proto_parse(bad[i], &p) == -EINVAL, "'%s' accepted", bad[i]);

        ck_assert_str_eq(secrule_proto_name(-1, buf), "any");
        ck_assert_str_eq(secrule_proto_name(6, buf), "tcp");
        ck_assert_str_eq(secrule_proto_name(17, buf), "udp");
        ck_assert_str_eq(secrule_proto_name(1, buf), "icmp");
        ck_assert_str_eq(secrule_proto_name(58, buf), "ipv6-icmp");
        ck_assert_str_eq(secrule_proto_name(132, buf), "sctp");
        ck_assert_str_eq(secrule_proto_name(99, buf), "99");
        ck_assert_str_eq(secrule_proto_name(0, buf), "0");
        ck_assert_str_eq(secrule_proto_name(255, buf), "255");
        /* every number: name -> parse gives it back */
        for (int n = -1; n <= 255; n++) {
                ck_assert_int_eq(secrule_proto_parse(secrule_proto_name(n, buf), &p), 0);
                ck_assert_int_eq(p, n);
        }
}
END_TEST

/* ---- addresses ---- */

START_TEST(test_ip_parse)
{
        static const struct {
                const char *in, *canon;
                uint8_t family;
        } good[] = {
                { "10.0.0.1", "10.0.0.1", 4 },
                { "0.0.0.0", "0.0.0.0", 4 },
                { "255.255.255.255", "255.255.255.255", 4 },
                { "::", "::", 6 },
                { "::1", "::1", 6 },
                { "2001:db8::1", "2001:db8::1", 6 },
                { "2001:DB8::1", "2001:db8::1", 6 },
                { "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", 6 },
                { "fe80::f816:3eff:fe00:1", "fe80::f816:3eff:fe00:1", 6 },
                { "::ffff:10.0.0.1", "::ffff:10.0.0.1", 6 },
                { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 6 },
        };
        static const char *const bad[] = {
                "", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1.2.3.04", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4/32",
                "0x1.2.3.4", "1.2.3.-4", "10.0.0.1\n", ":::", "2001:db8::1::2", "2001:db8::g", "fe80::1%eth0",
                "12345::", "::1/128", "localhost", "1.2.3.4:80",
                /* a valid address longer than IP_STR_MAX-1 characters: refused, not cut */
                "0000:0000:0000:0000:0000:ffff:255.255.255.255",
        };
        uint8_t fam, a[16];
        char buf[IP_STR_MAX];

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                ck_assert_msg(ip_parse(good[i].in, &fam, a) == 0, "'%s' refused", good[i].in);
                ck_assert_uint_eq(fam, good[i].family);
                ck_assert(ip_is_valid(good[i].in));
                memset(buf, 'Q', sizeof(buf));
                ck_assert_int_eq(ip_canonical(good[i].in, buf), 0);
                ck_assert_str_eq(buf, good[i].canon);
        }
        ck_assert_int_eq(ip_parse("10.1.2.3", &fam, a), 0);
        ck_assert_uint_eq(a[0], 10);
        ck_assert_uint_eq(a[3], 3);
        for (int i = 4; i < 16; i++)
                ck_assert_uint_eq(a[i], 0); /* IPv4: the rest of the buffer is zero */
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                ck_assert_msg(ip_parse(bad[i], &fam, a) == -EINVAL, "'%s' accepted", bad[i]);
                ck_assert(!ip_is_valid(bad[i]));
                ck_assert_int_eq(ip_canonical(bad[i], buf), -EINVAL);
        }
        ck_assert(!ip_is_valid(NULL));
}
END_TEST

START_TEST(test_cidr_parse)
{
        static const struct {
                const char *in, *out;
        } good[] = {
                { "10.0.0.0/8", "10.0.0.0/8" },
                { "10.0.0.0/32", "10.0.0.0/32" },
                { "0.0.0.0/0", "0.0.0.0/0" },
                { "192.168.1.128/25", "192.168.1.128/25" },
                { "10.1.2.3", "10.1.2.3/32" },
                { "::/0", "::/0" },
                { "2001:db8::/32", "2001:db8::/32" },
                { "2001:DB8::/32", "2001:db8::/32" },
                { "2001:db8:0:0::/64", "2001:db8::/64" },
                { "fe80::1", "fe80::1/128" },
                { "::1/128", "::1/128" },
        };
        static const char *const bad[] = {
                "", "/", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/08", "10.0.0.0/8/8",
                "10.0.0.0/8x", "10.0.0.0/8 ", "10.0.0.0 /8", "1.2.3/24", "1.2.3", "01.0.0.0/8", "256.0.0.0/8",
                "::/129", "::/1280", "2001:db8::/", "2001:db8::g/32", "10.0.0.0/99999999999999999999999",
                "10.0.0.0/4294967304", /* 2^32 + 8: no wrap-around to /8 */
                "0000:0000:0000:0000:0000:ffff:255.255.255.0/120",
        };
        struct cidr c, untouched;
        char buf[CIDR_STR_MAX];

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                ck_assert_msg(cidr_parse(good[i].in, false, &c) == 0, "'%s' refused", good[i].in);
                cidr_format(&c, buf);
                ck_assert_str_eq(buf, good[i].out);
                ck_assert(cidr_is_canonical(good[i].out));
                ck_assert(cidr_is_canonical(good[i].in) == streq(good[i].in, good[i].out));
        }
        ck_assert_int_eq(cidr_parse("192.168.1.128/25", false, &c), 0);
        ck_assert_uint_eq(c.family, 4);
        ck_assert_uint_eq(c.prefix, 25);
        ck_assert_uint_eq(c.addr[3], 128);
        ck_assert_int_eq(cidr_parse("2001:db8::/32", false, &c), 0);
        ck_assert_uint_eq(c.family, 6);
        ck_assert_uint_eq(c.prefix, 32);

        memset(&untouched, 0x5a, sizeof(untouched));
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                for (int norm = 0; norm < 2; norm++) {
                        c = untouched;
                        ck_assert_msg(cidr_parse(bad[i], norm, &c) == -EINVAL, "'%s' accepted (normalize=%d)",
                                      bad[i], norm);
                        ck_assert(memcmp(&c, &untouched, sizeof(c)) == 0);
                        ck_assert(!cidr_is_canonical(bad[i]));
                }
        ck_assert_int_eq(cidr_parse(NULL, true, &c), -EINVAL);
}
END_TEST

/* Host bits: refused in strict mode (the module, the canonical text),
 * cleared in normalize mode (the API, like neutron). */
START_TEST(test_cidr_host_bits)
{
        static const struct {
                const char *in, *normalized;
        } cases[] = {
                { "10.0.0.1/8", "10.0.0.0/8" },
                { "10.255.255.255/8", "10.0.0.0/8" },
                { "192.168.1.129/25", "192.168.1.128/25" },
                { "1.2.3.4/0", "0.0.0.0/0" },
                { "10.0.0.1/31", "10.0.0.0/31" },
                { "2001:db8::1/64", "2001:db8::/64" },
                { "2001:db9:ffff::/31", "2001:db8::/31" },
                { "2001:db8:ffff::/33", "2001:db8:8000::/33" },
                { "::1/127", "::/127" },
                { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/1", "8000::/1" },
        };
        struct cidr c;
        char buf[CIDR_STR_MAX];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                ck_assert_msg(cidr_parse(cases[i].in, false, &c) == -EINVAL, "'%s' accepted strictly", cases[i].in);
                ck_assert(!cidr_is_canonical(cases[i].in));
                ck_assert_int_eq(cidr_parse(cases[i].in, true, &c), 0);
                cidr_format(&c, buf);
                ck_assert_str_eq(buf, cases[i].normalized);
                ck_assert(cidr_is_canonical(buf));
        }
}
END_TEST

START_TEST(test_link_local_from_mac)
{
        static const struct {
                uint8_t mac[6];
                const char *ll;
        } cases[] = {
                { { 0xfa, 0x16, 0x3e, 0x00, 0x00, 0x01 }, "fe80::f816:3eff:fe00:1" },
                { { 0xfa, 0x16, 0x3e, 0xab, 0xcd, 0xef }, "fe80::f816:3eff:feab:cdef" },
                { { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }, "fe80::5054:ff:fe12:3456" },
                { { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 }, "fe80::200:ff:fe00:0" },
                { { 0x02, 0x00, 0x00, 0x00, 0x00, 0x00 }, "fe80::ff:fe00:0" },
                { { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, "fe80::fdff:ffff:feff:ffff" },
        };
        char buf[IP_STR_MAX], canon[IP_STR_MAX];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                memset(buf, 'Q', sizeof(buf));
                ipv6_link_local_from_mac(cases[i].mac, buf);
                ck_assert_str_eq(buf, cases[i].ll);
                /* already canonical: compares equal to a canonicalized request IP */
                ck_assert_int_eq(ip_canonical(buf, canon), 0);
                ck_assert_str_eq(canon, buf);
        }
}
END_TEST

/* ---- JSON ---- */

static struct json_object *J(const char *text)
{
        struct json_object *o = json_tokener_parse(text);

        ck_assert_msg(o, "bad test JSON: %s", text);
        return o;
}

/* from_json of a text: 0 and the canonical text in *out, or the error. */
static int from_text(const char *json, struct secrule *r)
{
        struct json_object *o = J(json);
        int k;

        memset(err, 0, sizeof(err));
        k = secrule_from_json(o, r, err, sizeof(err));
        json_object_put(o);
        return k;
}

#define JSON_OK(json, text)                                                                          \
        do {                                                                                         \
                struct secrule _r;                                                                   \
                int _k = from_text(json, &_r);                                                       \
                ck_assert_msg(_k == 0, "%s refused: %s", json, err);                                 \
                ck_assert_str_eq(fmt(&_r), text);                                                    \
        } while (0)

#define JSON_BAD(json, why)                                                                          \
        do {                                                                                         \
                struct secrule _r;                                                                   \
                int _k = from_text(json, &_r);                                                       \
                ck_assert_msg(_k == -EINVAL, "%s accepted as '%s'", json, _k == 0 ? fmt(&_r) : "?"); \
                ck_assert_msg(strstr(err, why), "%s: reason '%s' does not say '%s'", json, err, why); \
        } while (0)

START_TEST(test_from_json)
{
        struct secrule r;

        JSON_OK("{\"direction\":\"ingress\"}", "nh in 4 any - - - - -");
        JSON_OK("{\"direction\":\"egress\",\"ethertype\":\"IPv6\"}", "nh out 6 any - - - - -");
        JSON_OK("{\"direction\":\"ingress\",\"ethertype\":null,\"protocol\":null,\"port_range_min\":null,"
                "\"port_range_max\":null,\"remote_ip_prefix\":null,\"id\":null}",
                "nh in 4 any - - - - -");
        JSON_OK("{\"direction\":\"ingress\",\"ethertype\":\"IPv4\",\"protocol\":\"tcp\",\"port_range_min\":22,"
                "\"port_range_max\":22,\"remote_ip_prefix\":\"10.0.0.0/8\"}",
                "nh in 4 6 22 22 - - 10.0.0.0/8");
        JSON_OK("{\"direction\":\"ingress\",\"protocol\":6,\"port_range_min\":80,\"port_range_max\":443}",
                "nh in 4 6 80 443 - - -");
        JSON_OK("{\"direction\":\"ingress\",\"protocol\":\"6\"}", "nh in 4 6 - - - - -");
        JSON_OK("{\"direction\":\"ingress\",\"protocol\":\"any\"}", "nh in 4 any - - - - -");
        /* one bound given: a single port */
        JSON_OK("{\"direction\":\"ingress\",\"protocol\":\"udp\",\"port_range_min\":53}", "nh in 4 17 53 53 - - -");
        JSON_OK("{\"direction\":\"ingress\",\"protocol\":\"udp\",\"port_range_max\":53}", "nh in 4 17 53 53 - - -");
        /* ICMP: port_range_min/max are type/code, as in neutron */
        JSON_OK("{\"direction\":\"ingress\",\"protocol\":\"icmp\",\"port_range_min\":8}", "nh in 4 1 - - 8 - -");
        JSON_OK("{\"direction\":\"ingress\",\"protocol\":\"icmp\",\"port_range_min\":3,\"port_range_max\":4}",
                "nh in 4 1 - - 3 4 -");
        JSON_OK("{\"direction\":\"ingress\",\"protocol\":\"icmp\",\"port_range_min\":0,\"port_range_max\":0}",
                "nh in 4 1 - - 0 0 -");
        /* neutron: "icmp" with IPv6 is ipv6-icmp */
        JSON_OK("{\"direction\":\"ingress\",\"ethertype\":\"IPv6\",\"protocol\":\"icmp\",\"port_range_min\":128}",
                "nh in 6 58 - - 128 - -");
        JSON_OK("{\"direction\":\"ingress\",\"ethertype\":\"IPv6\",\"protocol\":1}", "nh in 6 58 - - - - -");
        JSON_OK("{\"direction\":\"ingress\",\"ethertype\":\"IPv6\",\"protocol\":\"icmpv6\"}", "nh in 6 58 - - - - -");
        /* a CIDR with host bits is normalized, a bare address is /32 or /128 */
        JSON_OK("{\"direction\":\"ingress\",\"remote_ip_prefix\":\"10.0.0.1/8\"}", "nh in 4 any - - - - 10.0.0.0/8");
        JSON_OK("{\"direction\":\"ingress\",\"remote_ip_prefix\":\"10.0.0.1\"}", "nh in 4 any - - - - 10.0.0.1/32");
        JSON_OK("{\"direction\":\"egress\",\"ethertype\":\"IPv6\",\"remote_ip_prefix\":\"2001:DB8::1/32\"}",
                "nh out 6 any - - - - 2001:db8::/32");

        /* the id is kept */
        ck_assert_int_eq(from_text("{\"id\":\"" RULE_ID "\",\"direction\":\"egress\"}", &r), 0);
        ck_assert_str_eq(r.uuid, RULE_ID);
        ck_assert_int_eq(from_text("{\"direction\":\"egress\"}", &r), 0);
        ck_assert_str_eq(r.uuid, "");
}
END_TEST

START_TEST(test_from_json_rejects)
{
        struct secrule r, untouched;
        struct json_object *o;

        JSON_BAD("[]", "must be an object");
        JSON_BAD("\"ingress\"", "must be an object");
        JSON_BAD("{}", "direction: required");
        JSON_BAD("{\"direction\":null}", "direction: required");
        JSON_BAD("{\"direction\":\"in\"}", "is not ingress or egress");
        JSON_BAD("{\"direction\":\"INGRESS\"}", "is not ingress or egress");
        JSON_BAD("{\"direction\":1}", "direction: required");
        JSON_BAD("{\"direction\":\"ingress\",\"name\":\"x\"}", "unknown field 'name'");
        JSON_BAD("{\"direction\":\"ingress\",\"security_group_id\":\"x\"}", "unknown field");
        JSON_BAD("{\"direction\":\"ingress\",\"id\":\"3F2504E0-4F89-41D3-9A0C-0305E82C3301\"}", "id: not a canonical");
        JSON_BAD("{\"direction\":\"ingress\",\"id\":5}", "id: not a canonical");
        JSON_BAD("{\"direction\":\"ingress\",\"ethertype\":\"ipv4\"}", "ethertype: must be IPv4 or IPv6");
        JSON_BAD("{\"direction\":\"ingress\",\"ethertype\":4}", "ethertype: must be IPv4 or IPv6");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"TCP\"}", "protocol: not a protocol");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":256}", "protocol: 256 is outside 0..255");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":-1}", "protocol: -1 is outside 0..255");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":6.0}", "protocol: not a protocol");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":true}", "protocol: not a protocol");
        /* ports */
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":0,\"port_range_max\":22}",
                 "0 is not a port");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":0}", "0 is not a port");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":1,\"port_range_max\":65536}",
                 "port_range_max: 65536 is outside 0..65535");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":-1}", "outside 0..65535");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":2000,\"port_range_max\":1000}",
                 "minimum 2000 is above maximum 1000");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":\"22\"}", "must be an integer");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":22.5}", "must be an integer");
        JSON_BAD("{\"direction\":\"ingress\",\"port_range_min\":22,\"port_range_max\":22}", "a port range needs protocol");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"gre\",\"port_range_min\":22}", "a port range needs protocol");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":99999999999999999999}",
                 "outside 0..65535");
        /* ICMP type/code */
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"icmp\",\"port_range_min\":256}", "ICMP type");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"icmp\",\"port_range_min\":8,\"port_range_max\":256}",
                 "ICMP type");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"icmp\",\"port_range_max\":0}", "an ICMP code needs an ICMP type");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"ipv6-icmp\"}", "ipv6-icmp needs ethertype IPv6");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"ipv6-icmp\",\"port_range_min\":128}", "port range");
        /* remote prefix */
        JSON_BAD("{\"direction\":\"ingress\",\"remote_ip_prefix\":\"10.0.0.0/33\"}", "is not an IPv4 or IPv6 CIDR");
        JSON_BAD("{\"direction\":\"ingress\",\"remote_ip_prefix\":\"1.2.3\"}", "is not an IPv4 or IPv6 CIDR");
        JSON_BAD("{\"direction\":\"ingress\",\"remote_ip_prefix\":\"10.0.0.0/8 \"}", "is not an IPv4 or IPv6 CIDR");
        JSON_BAD("{\"direction\":\"ingress\",\"remote_ip_prefix\":\"\"}", "is not an IPv4 or IPv6 CIDR");
        JSON_BAD("{\"direction\":\"ingress\",\"remote_ip_prefix\":8}", "is not an IPv4 or IPv6 CIDR");
        JSON_BAD("{\"direction\":\"ingress\",\"ethertype\":\"IPv6\",\"remote_ip_prefix\":\"::/129\"}",
                 "is not an IPv4 or IPv6 CIDR");
        JSON_BAD("{\"direction\":\"ingress\",\"remote_ip_prefix\":\"2001:db8::/32\"}",
                 "remote prefix is IPv6 but ethertype is IPv4");
        JSON_BAD("{\"direction\":\"ingress\",\"ethertype\":\"IPv6\",\"remote_ip_prefix\":\"10.0.0.0/8\"}",
                 "remote prefix is IPv4 but ethertype is IPv6");

        /* the result is untouched on error; NULL and non-objects are refused */
        memset(&untouched, 0x5a, sizeof(untouched));
        r = untouched;
        ck_assert_int_eq(from_text("{\"direction\":\"ingress\",\"protocol\":\"tcp\",\"port_range_min\":0}", &r),
                         -EINVAL);
        ck_assert(memcmp(&r, &untouched, sizeof(r)) == 0);
        ck_assert_int_eq(secrule_from_json(NULL, &r, err, sizeof(err)), -EINVAL);
        o = json_object_new_int(5);
        ck_assert_int_eq(secrule_from_json(o, &r, NULL, 0), -EINVAL);
        json_object_put(o);
}
END_TEST

/* A JSON string is not a C string: one with a NUL inside is not the text
 * before the NUL. */
START_TEST(test_from_json_embedded_nul)
{
        JSON_BAD("{\"direction\":\"ingress\",\"remote_ip_prefix\":\"10.0.0.0/8\\u0000junk\"}",
                 "is not an IPv4 or IPv6 CIDR");
        JSON_BAD("{\"direction\":\"ingress\\u0000x\"}", "is not ingress or egress");
        JSON_BAD("{\"direction\":\"ingress\",\"ethertype\":\"IPv6\\u0000\"}", "ethertype: must be IPv4 or IPv6");
        JSON_BAD("{\"direction\":\"ingress\",\"protocol\":\"tcp\\u0000;drop\"}", "protocol: not a protocol");
        JSON_BAD("{\"direction\":\"ingress\",\"id\":\"" RULE_ID "\\u0000x\"}", "id: not a canonical");
}
END_TEST

START_TEST(test_to_json)
{
        struct secrule r = R("nh in 4 6 22 22 - - 10.0.0.0/8");
        struct json_object *o;

        memcpy(r.uuid, RULE_ID, sizeof(RULE_ID));
        o = secrule_to_json(&r);
        ck_assert_ptr_nonnull(o);
        ck_assert_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                         "{\"id\":\"" RULE_ID "\",\"direction\":\"ingress\",\"ethertype\":\"IPv4\",\"protocol\":\"tcp\","
                         "\"port_range_min\":22,\"port_range_max\":22,\"remote_ip_prefix\":\"10.0.0.0/8\"}");
        json_object_put(o);

        r = R("nh out 6 any - - - - -");
        o = secrule_to_json(&r);
        ck_assert_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                         "{\"direction\":\"egress\",\"ethertype\":\"IPv6\",\"protocol\":null,\"port_range_min\":null,"
                         "\"port_range_max\":null,\"remote_ip_prefix\":null}");
        json_object_put(o);

        r = R("nh in 6 58 - - 128 - -");
        o = secrule_to_json(&r);
        ck_assert_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                         "{\"direction\":\"ingress\",\"ethertype\":\"IPv6\",\"protocol\":\"ipv6-icmp\","
                         "\"port_range_min\":128,\"port_range_max\":null,\"remote_ip_prefix\":null}");
        json_object_put(o);

        r = R("nh in 4 99 - - - - -");
        o = secrule_to_json(&r);
        ck_assert_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                         "{\"direction\":\"ingress\",\"ethertype\":\"IPv4\",\"protocol\":\"99\","
                         "\"port_range_min\":null,\"port_range_max\":null,\"remote_ip_prefix\":null}");
        json_object_put(o);
}
END_TEST

/* to_json -> text -> parse -> from_json gives the same rule, id included,
 * for every shape of rule. */
START_TEST(test_json_round_trip)
{
        static const char *const texts[] = {
                "nh in 4 any - - - - -", "nh out 6 any - - - - -", "nh in 4 6 22 22 - - 10.0.0.0/8",
                "nh in 4 6 1 65535 - - -", "nh out 6 17 1000 2000 - - 2001:db8::/32", "nh in 4 132 5 6 - - -",
                "nh in 4 33 7 7 - - -", "nh in 6 136 9 10 - - ::/0", "nh in 4 1 - - - - -", "nh in 4 1 - - 8 - -",
                "nh in 4 1 - - 3 4 192.168.0.0/16", "nh in 4 1 - - 0 0 -", "nh in 6 58 - - - - -",
                "nh in 6 58 - - 128 0 -", "nh in 6 58 - - 255 255 fe80::/10", "nh out 4 47 - - - - -",
                "nh out 4 0 - - - - 0.0.0.0/0", "nh out 6 255 - - - - ::1/128", "nh in 4 6 - - - - -",
                "nh in 4 17 53 53 - - 10.0.0.1/32",
        };

        for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
                struct secrule r = R(texts[i]), back;
                struct json_object *o, *again;

                memcpy(r.uuid, RULE_ID, sizeof(RULE_ID));
                ck_assert_str_eq(fmt(&r), texts[i]);
                o = secrule_to_json(&r);
                ck_assert_ptr_nonnull(o);
                /* through the text, as the store does */
                again = json_tokener_parse(json_object_to_json_string(o));
                ck_assert_ptr_nonnull(again);
                memset(err, 0, sizeof(err));
                ck_assert_msg(secrule_from_json(again, &back, err, sizeof(err)) == 0, "%s: %s", texts[i], err);
                ck_assert_msg(secrule_equal(&r, &back), "'%s' came back as '%s'", texts[i], fmt(&back));
                ck_assert_str_eq(back.uuid, RULE_ID);
                ck_assert_int_eq(memcmp(&r, &back, sizeof(r)), 0);
                json_object_put(again);
                json_object_put(o);
        }
}
END_TEST

/* ---- digest ---- */

static uint64_t fnv(const char *const *texts, size_t n)
{
        uint64_t h = 0xcbf29ce484222325ULL;

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

START_TEST(test_digest)
{
        struct secrule rules[4] = {
                R("nh in 4 6 22 22 - - 10.0.0.0/8"),
                R("nh out 4 any - - - - -"),
                R("nh out 6 any - - - - -"),
                R("nh in 6 58 - - 128 - -"),
        };
        /* the same set sorted by text */
        static const char *const sorted[] = { "nh in 4 6 22 22 - - 10.0.0.0/8", "nh in 6 58 - - 128 - -",
                                              "nh out 4 any - - - - -", "nh out 6 any - - - - -" };
        struct secrule perm[4], other[4];
        uint64_t d = secrule_digest(rules, 4);

        /* documented value: FNV-1a 64 of the sorted texts, one per line */
        ck_assert_uint_eq(d, fnv(sorted, 4));
        ck_assert_uint_eq(secrule_digest(NULL, 0), 0xcbf29ce484222325ULL);
        ck_assert_uint_eq(secrule_digest(rules, 1), fnv(sorted, 1));

        /* order-independent: every permutation */
        static const int p[24][4] = {
                { 0, 1, 2, 3 }, { 0, 1, 3, 2 }, { 0, 2, 1, 3 }, { 0, 2, 3, 1 }, { 0, 3, 1, 2 }, { 0, 3, 2, 1 },
                { 1, 0, 2, 3 }, { 1, 0, 3, 2 }, { 1, 2, 0, 3 }, { 1, 2, 3, 0 }, { 1, 3, 0, 2 }, { 1, 3, 2, 0 },
                { 2, 0, 1, 3 }, { 2, 0, 3, 1 }, { 2, 1, 0, 3 }, { 2, 1, 3, 0 }, { 2, 3, 0, 1 }, { 2, 3, 1, 0 },
                { 3, 0, 1, 2 }, { 3, 0, 2, 1 }, { 3, 1, 0, 2 }, { 3, 1, 2, 0 }, { 3, 2, 0, 1 }, { 3, 2, 1, 0 },
        };
        for (int i = 0; i < 24; i++) {
                for (int k = 0; k < 4; k++)
                        perm[k] = rules[p[i][k]];
                ck_assert_uint_eq(secrule_digest(perm, 4), d);
        }

        /* ids do not count */
        memcpy(other, rules, sizeof(other));
        memcpy(other[0].uuid, RULE_ID, sizeof(RULE_ID));
        ck_assert_uint_eq(secrule_digest(other, 4), d);

        /* any change of any field of any rule changes it */
        for (int f = 0; f < 7; f++)
                for (int i = 0; i < 4; i++) {
                        memcpy(other, rules, sizeof(other));
                        switch (f) {
                        case 0:
                                other[i].dir ^= 1;
                                break;
                        case 1:
                                other[i].proto = other[i].proto == 6 ? 17 : 6;
                                other[i].icmp_type = other[i].icmp_code = -1;
                                break;
                        case 2:
                                other[i].has_remote = !other[i].has_remote;
                                other[i].remote = (struct cidr){ .family = other[i].family, .prefix = 0 };
                                break;
                        case 3:
                                other[i].family = (uint8_t)(10 - other[i].family);
                                break;
                        case 4:
                                other[i].port_min = other[i].port_max = 443;
                                other[i].proto = 6;
                                other[i].icmp_type = other[i].icmp_code = -1;
                                break;
                        case 5:
                                other[i].icmp_type = 3;
                                break;
                        case 6:
                                other[i].remote.prefix = 24;
                                other[i].has_remote = true;
                                other[i].remote.family = other[i].family;
                                break;
                        }
                        if (secrule_equal(&other[i], &rules[i]))
                                continue;
                        ck_assert_msg(secrule_digest(other, 4) != d, "field %d of rule %d: same digest", f, i);
                }
        /* a subset, a duplicate, or the rule moved to the other list differ */
        ck_assert_uint_ne(secrule_digest(rules, 3), d);
        memcpy(other, rules, sizeof(other));
        other[3] = other[2];
        ck_assert_uint_ne(secrule_digest(other, 4), d);
        ck_assert_uint_ne(secrule_digest(other, 4), secrule_digest(rules, 3));
}
END_TEST

static Suite *secrule_suite(void)
{
        Suite *s = suite_create("secrule");
        TCase *tc;

        tc = tcase_create("model");
        tcase_add_test(tc, test_check_accepts);
        tcase_add_test(tc, test_check_rejects);
        tcase_add_test(tc, test_check_implies_round_trip);
        tcase_add_test(tc, test_proto_has_ports);
        tcase_add_test(tc, test_equal);
        tcase_add_test(tc, test_digest);
        suite_add_tcase(s, tc);

        tc = tcase_create("text");
        tcase_add_test(tc, test_format_canonical);
        tcase_add_test(tc, test_parse_rejects);
        tcase_add_test(tc, test_proto_names);
        suite_add_tcase(s, tc);

        tc = tcase_create("addresses");
        tcase_add_test(tc, test_ip_parse);
        tcase_add_test(tc, test_cidr_parse);
        tcase_add_test(tc, test_cidr_host_bits);
        tcase_add_test(tc, test_link_local_from_mac);
        suite_add_tcase(s, tc);

        tc = tcase_create("json");
        tcase_add_test(tc, test_from_json);
        tcase_add_test(tc, test_from_json_rejects);
        tcase_add_test(tc, test_from_json_embedded_nul);
        tcase_add_test(tc, test_to_json);
        tcase_add_test(tc, test_json_round_trip);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(secrule_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
