/* test-fw-nl.c - the netlink batches of fw-nl.c make exactly the objects
 * libnftables makes from fw-nft.c's text, in the real kernel.
 *
 * Two private network namespaces get the same skeleton (text). Then every
 * step is applied twice: as text through libnftables in one, as a libnftnl
 * batch through fw_nl_commit in the other, and the two `nft list ruleset`
 * texts must be equal (and hold what the step wrote, so two empty listings
 * never pass). Steps: the skeletons (tables, sets with their elements and
 * user data, fixed and base chains),  groups with every rule shape (families, protocols,
 * port ranges, ICMP type/code, remote prefixes on and off byte boundaries)
 * and 400 random rules, port chains new and replaced, the dispatch and
 * anti-spoofing elements of ports in two shards, their deletes, chain and
 * shard removal. Then a batch the kernel refuses changes nothing, and a
 * builder given a bad value sends nothing. Root only. */
#include "fw-nft.h"
#include "fw-nl.h"
#include "fw-protocol.h"
#include "fw-state.h"
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <nftables/libnftables.h>
#include <sched.h>

#define NS_TEXT "nova-fwnl-text"
#define NS_NL "nova-fwnl-nl"

static struct nft_ctx *text_ctx, *nl_list_ctx;
static int nl_fd = -1;
static struct fw_nl batch;
static uint8_t rbuf[65536];

static const char *const G1 = "11111111-2222-4333-8444-555555555555";
static const char *const G2 = "21111111-2222-4333-8444-555555555555";
static const char *const G3 = "31111111-2222-4333-8444-555555555555";
static const char *const G4 = "41111111-2222-4333-8444-555555555555";
static const char *const P1 = "a1b2c3d4-e5f6-4789-8abc-def012345678";
static const char *const P2 = "b1b2c3d4-e5f6-4789-8abc-def012345678";

static const char *const shapes[] = {
        "nh in 4 any - - - - -",           "nh out 6 any - - - - -",
        "nh in 4 6 22 22 - - 10.0.0.0/8",   "nh in 4 6 80 443 - - -",
        "nh in 4 17 53 53 - - -",           "nh in 4 1 - - 8 - -",
        "nh in 4 1 - - 3 4 -",              "nh in 4 1 - - 0 0 -",
        "nh in 6 58 - - 128 - -",           "nh in 6 58 - - 128 0 -",
        "nh in 6 58 - - - - -",             "nh in 4 any - - - - 10.0.0.1/32",
        "nh out 6 any - - - - 2001:db8::/32", "nh in 6 17 1000 2000 - - 2001:db8::/32",
        "nh out 6 6 443 443 - - ::/0",      "nh in 4 any - - - - 10.1.128.0/17",
        "nh out 4 132 5 6 - - 10.1.2.0/23", "nh in 6 6 1 65535 - - 2001:db8:0:0:8000::/65",
        "nh in 6 any - - - - 2000::/4",     "nh out 4 47 - - - - 192.168.7.0/24",
        "nh in 4 6 65535 65535 - - 0.0.0.0/0", "nh out 6 any - - - - fe80::1/128",
};

static struct secrule rule_of(const char *text)
{
        struct secrule r;

        ck_assert_msg(secrule_parse(text, &r) == 0, "bad rule text in the test: %s", text);
        return r;
}

static int ns_fd(const char *name)
{
        char path[128];

        (void)snprintf(path, sizeof(path), "/run/netns/%s", name);
        return open(path, O_RDONLY | O_CLOEXEC);
}

static struct nft_ctx *ctx_in(const char *ns)
{
        int fd = ns_fd(ns);
        struct nft_ctx *c;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(setns(fd, CLONE_NEWNET), 0);
        close(fd);
        c = nft_ctx_new(NFT_CTX_DEFAULT); /* its netlink socket lives in ns */
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(nft_ctx_buffer_output(c), 0);
        ck_assert_int_eq(nft_ctx_buffer_error(c), 0);
        return c;
}

static void setup(void)
{
        int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

        if (geteuid() != 0) {
                fprintf(stderr, "test-fw-nl: needs root (network namespaces, nftables)\n");
                exit(77);
        }
        (void)sh("ip netns del " NS_TEXT " 2>/dev/null; ip netns del " NS_NL " 2>/dev/null");
        ck_assert_int_eq(sh("ip netns add " NS_TEXT " && ip netns add " NS_NL), 0);
        text_ctx = ctx_in(NS_TEXT);
        nl_list_ctx = ctx_in(NS_NL);
        nl_fd = fw_nl_socket(); /* in NS_NL, where setns left us */
        ck_assert_int_ge(nl_fd, 0);
        ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
        close(home);
}

static void teardown(void)
{
        nft_ctx_free(text_ctx);
        nft_ctx_free(nl_list_ctx);
        close(nl_fd);
        fw_nl_free(&batch);
        (void)sh("ip netns del " NS_TEXT "; ip netns del " NS_NL);
}

static void run_text(struct nft_ctx *c, const struct sbuf *b)
{
        ck_assert_int_eq(b->err, 0);
        ck_assert_msg(nft_run_cmd_from_buffer(c, b->p) == 0, "libnftables refused:\n%s\n%s",
                      nft_ctx_get_error_buffer(c), b->p);
}

static char *listing(struct nft_ctx *c)
{
        ck_assert_int_eq(nft_run_cmd_from_buffer(c, "list ruleset"), 0);
        return strdup(nft_ctx_get_output_buffer(c));
}

/* The kernel's objects as nft prints them at the netlink level (every
 * expression with its bytes, every element's key), without the handles:
 * `list ruleset` alone prints some different objects alike (a /8 prefix
 * loaded as one byte or as a masked word). Sorted: a hash set lists its
 * elements in an order of its own (the order of rules is compared by the
 * plain listing). */
static char *netlink_listing(const char *ns)
{
        char *out = sh_out("ip netns exec %s nft --debug=netlink list ruleset 2>&1 | "
                           "sed -E 's/^((inet|bridge) [^ ]+ [^ ]+)( [0-9]+)+$/\\1/' | sort", ns);

        ck_assert_ptr_nonnull(out);
        return out;
}

static int set_line(const struct nlmsghdr *h, void *data)
{
        struct sbuf *out = data;
        struct nftnl_set *s = nftnl_set_alloc();
        const uint8_t *ud;
        uint32_t len = 0;

        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(nftnl_set_nlmsg_parse(h, s), 0);
        sbuf_printf(out, "%u %s %s flags=%u key=%u/%u data=%u/%u udata=", nftnl_set_get_u32(s, NFTNL_SET_FAMILY),
                    nftnl_set_get_str(s, NFTNL_SET_TABLE), nftnl_set_get_str(s, NFTNL_SET_NAME),
                    nftnl_set_get_u32(s, NFTNL_SET_FLAGS), nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE),
                    nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE),
                    nftnl_set_get_u32(s, NFTNL_SET_DATA_LEN));
        ud = nftnl_set_get_data(s, NFTNL_SET_USERDATA, &len);
        for (uint32_t i = 0; ud && i < len; i++)
                sbuf_printf(out, "%02x", ud[i]);
        sbuf_printf(out, "\n");
        nftnl_set_free(s);
        return MNL_CB_OK;
}

/* Every set of the namespace as the kernel holds it, with what `nft list`
 * does not print: key and data types, flags and the user data (byte order,
 * `typeof`) byte for byte. */
static char *sets_dump(const char *ns)
{
        int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd = ns_fd(ns);
        struct mnl_socket *nl;
        struct sbuf out = { 0 };
        char buf[MNL_SOCKET_BUFFER_SIZE];
        struct nlmsghdr *h;
        int n, r = 1;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(setns(fd, CLONE_NEWNET), 0);
        close(fd);
        nl = mnl_socket_open(NETLINK_NETFILTER);
        ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
        close(home);
        ck_assert_ptr_nonnull(nl);
        ck_assert_int_eq(mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID), 0);
        h = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSET, NFPROTO_UNSPEC, NLM_F_DUMP | NLM_F_ACK, 1);
        ck_assert_int_ge(mnl_socket_sendto(nl, h, h->nlmsg_len), 0);
        while (r > 0 && (n = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf))) > 0)
                r = mnl_cb_run(buf, (size_t)n, 1, mnl_socket_get_portid(nl), set_line, &out);
        ck_assert_int_eq(r, 0);
        mnl_socket_close(nl);
        ck_assert_int_eq(out.err, 0);
        return out.p ? out.p : strdup("");
}

/* Both namespaces hold the same ruleset, and it contains each of must. */
static void same(const char *step, const char *const *must)
{
        _cleanup_free_ char *a = listing(text_ctx), *b = listing(nl_list_ctx);
        _cleanup_free_ char *na = netlink_listing(NS_TEXT), *nb = netlink_listing(NS_NL);

        if (!streq(a, b) || !streq(na, nb)) { /* the difference, not megabytes of listing */
                FILE *f;
                if ((f = fopen("/tmp/test-fw-nl.text", "w")))
                        fprintf(f, "%s\n%s", a, na), fclose(f);
                if ((f = fopen("/tmp/test-fw-nl.netlink", "w")))
                        fprintf(f, "%s\n%s", b, nb), fclose(f);
                (void)sh("diff /tmp/test-fw-nl.text /tmp/test-fw-nl.netlink | head -40 >&2");
        }
        ck_assert_msg(streq(a, b), "%s: the listings differ (diff above)", step);
        ck_assert_msg(strstr(na, "[ immediate reg 0"), "%s: no netlink-level listing", step);
        ck_assert_msg(streq(na, nb), "%s: the netlink-level listings differ (diff above)", step);
        {
                _cleanup_free_ char *sa = sets_dump(NS_TEXT), *sb = sets_dump(NS_NL);
                ck_assert_msg(streq(sa, sb), "%s: the sets differ:\n%s\n---\n%s", step, sa, sb);
                ck_assert_msg(strstr(sa, "__set"), "%s: no anonymous set in\n%s", step, sa);
        }
        for (size_t i = 0; must && must[i]; i++)
                ck_assert_msg(strstr(a, must[i]), "%s: '%s' not in the listing\n%s", step, must[i], a);
}

static void commit_ok(void)
{
        char err[256] = "";

        ck_assert_msg(fw_nl_commit(nl_fd, &batch, rbuf, sizeof(rbuf), err, sizeof(err)) == 0, "commit: %s", err);
}

/* Shard 0, shard 1 and the bridge table: as text in one namespace, as one
 * netlink batch in the other. */
static void skeleton_both(void)
{
        _cleanup_(sbuf_free) struct sbuf t = { 0 };

        fw_build_skeleton(&t);
        fw_build_shard_skeleton(&t, 1);
        run_text(text_ctx, &t);
        fw_nl_begin(&batch, 1);
        fw_nl_shard_skeleton(&batch, 0);
        fw_nl_bridge_skeleton(&batch);
        fw_nl_shard_skeleton(&batch, 1);
        commit_ok();
}

static struct fw_port port_of(const char *uuid, uint8_t last, const char *g0, const char *g1)
{
        struct fw_port p = { .mac = { 0xfa, 0x16, 0x3e, 0x00, 0x01, last } };

        (void)snprintf(p.uuid, sizeof(p.uuid), "%s", uuid);
        (void)snprintf(p.ips[p.n_ips++], IP_STR_MAX, "10.0.0.%u", last);
        (void)snprintf(p.ips[p.n_ips++], IP_STR_MAX, "2001:db8::%u", last);
        (void)snprintf(p.groups[p.n_groups++], UUID_STR_LEN + 1, "%s", g0);
        if (g1)
                (void)snprintf(p.groups[p.n_groups++], UUID_STR_LEN + 1, "%s", g1);
        return p;
}

/* A random checked rule in canonical text. */
static void random_rule(unsigned *seed, char out[SECRULE_TEXT_MAX])
{
        static const int protos[] = { -1, 6, 17, 132, 1, 47 };
        int fam = rand_r(seed) % 2 ? 6 : 4, proto = protos[rand_r(seed) % ARRAY_SIZE(protos)];
        char pmin[12] = "-", pmax[12] = "-", type[12] = "-", code[12] = "-", remote[CIDR_STR_MAX + 8] = "-", pr[12] = "any";

        if (proto == 1 && fam == 6)
                proto = 58;
        if (proto >= 0)
                (void)snprintf(pr, sizeof(pr), "%d", proto);
        if ((proto == 6 || proto == 17 || proto == 132) && rand_r(seed) % 2) {
                unsigned lo = 1 + (unsigned)rand_r(seed) % 65535, hi = lo + (unsigned)rand_r(seed) % 3 * (unsigned)rand_r(seed) % 2000;
                (void)snprintf(pmin, sizeof(pmin), "%u", lo);
                (void)snprintf(pmax, sizeof(pmax), "%u", hi > 65535 ? 65535 : hi);
        }
        if ((proto == 1 || proto == 58) && rand_r(seed) % 2) {
                (void)snprintf(type, sizeof(type), "%d", rand_r(seed) % 256);
                if (rand_r(seed) % 2)
                        (void)snprintf(code, sizeof(code), "%d", rand_r(seed) % 256);
        }
        if (rand_r(seed) % 3) {
                uint8_t a[16];
                unsigned len = fam == 6 ? 128 : 32, prefix = (unsigned)rand_r(seed) % (len + 1);
                char txt[INET6_ADDRSTRLEN];
                for (size_t i = 0; i < sizeof(a); i++)
                        a[i] = (uint8_t)rand_r(seed);
                for (unsigned bit = prefix; bit < 128; bit++)
                        a[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
                ck_assert_ptr_nonnull(inet_ntop(fam == 6 ? AF_INET6 : AF_INET, a, txt, sizeof(txt)));
                (void)snprintf(remote, sizeof(remote), "%s/%u", txt, prefix);
        }
        (void)snprintf(out, SECRULE_TEXT_MAX, "nh %s %d %s %s %s %s %s %s", rand_r(seed) % 2 ? "in" : "out", fam,
                       pr, pmin, pmax, type, code, remote);
}

START_TEST(test_same_objects_as_libnftables)
{
        static struct secrule rules[SECGROUP_MAX_RULES];
        _cleanup_(sbuf_free) struct sbuf t = { 0 };
        size_t n = 0;

        skeleton_both();
        same("skeleton", (const char *const[]){ "table inet nova_hypervisor_1", "table bridge nova_hypervisor", NULL });

        /* every rule shape, in shard 0; G2 with no rules, in both shards */
        for (size_t i = 0; i < ARRAY_SIZE(shapes); i++)
                rules[n++] = rule_of(shapes[i]);
        sbuf_reset(&t);
        fw_build_group(&t, 0, G1, rules, n, false);
        fw_build_group(&t, 0, G2, NULL, 0, false);
        fw_build_group(&t, 1, G2, NULL, 0, false);
        run_text(text_ctx, &t);
        fw_nl_begin(&batch, 100);
        fw_nl_group(&batch, 0, G1, rules, n, false);
        fw_nl_group(&batch, 0, G2, NULL, 0, false);
        fw_nl_group(&batch, 1, G2, NULL, 0, false);
        commit_ok();
        same("groups", (const char *const[]){ "tcp dport 80-443", "icmpv6 type echo-request icmpv6 code",
                                              "ip6 saddr 2001:db8:0:0:8000::/65", "ip saddr 10.1.128.0/17",
                                              "sctp dport 5-6", "chain sg-21111111-2222-4333-8444-555555555555-out",
                                              NULL });

        /* one-family chains (fw_group_family): a family check first, then the rules without
         * theirs, every remote prefix shape as the raw payload */
        {
                struct secrule f4[ARRAY_SIZE(shapes)], f6[ARRAY_SIZE(shapes)];
                size_t n4 = 0, n6 = 0;
                for (size_t i = 0; i < ARRAY_SIZE(shapes); i++) {
                        struct secrule r = rule_of(shapes[i]);
                        if (r.family == 4)
                                f4[n4++] = r;
                        else
                                f6[n6++] = r;
                }
                ck_assert_int_eq(fw_group_family(f4, n4, SECRULE_INGRESS), 4);
                ck_assert_int_eq(fw_group_family(f4, n4, SECRULE_EGRESS), 4);
                ck_assert_int_eq(fw_group_family(f6, n6, SECRULE_INGRESS), 6);
                ck_assert_int_eq(fw_group_family(f6, n6, SECRULE_EGRESS), 6);
                sbuf_reset(&t);
                fw_build_group(&t, 0, G3, f4, n4, false);
                fw_build_group(&t, 0, G4, f6, n6, false);
                run_text(text_ctx, &t);
                fw_nl_begin(&batch, 150);
                fw_nl_group(&batch, 0, G3, f4, n4, false);
                fw_nl_group(&batch, 0, G4, f6, n6, false);
                commit_ok();
                same("one-family groups", (const char *const[]){ "meta nfproto != ipv4 return comment \"nh family 4\"",
                                                                 "meta nfproto != ipv6 return comment \"nh family 6\"",
                                                                 "@nh,96,8 ", "@nh,96,32 & ", "@nh,128,", "@nh,64,128 & ",
                                                                 "@nh,192,", NULL });
        }

        /* 400 random rules: four groups of 100 in shard 1, then rewritten (exists) */
        unsigned seed = 20261123;
        for (int round = 0; round < 2; round++) {
                sbuf_reset(&t);
                fw_nl_begin(&batch, 200 + (uint32_t)round * 1000);
                for (unsigned g = 0; g < 4; g++) {
                        char gid[UUID_STR_LEN + 1];
                        (void)snprintf(gid, sizeof(gid), "3111111%u-2222-4333-8444-555555555555", g);
                        for (n = 0; n < SECGROUP_MAX_RULES; n++) {
                                char text[SECRULE_TEXT_MAX];
                                random_rule(&seed, text);
                                rules[n] = rule_of(text);
                        }
                        fw_build_group(&t, 1, gid, rules, n, round > 0);
                        fw_nl_group(&batch, 1, gid, rules, n, round > 0);
                }
                run_text(text_ctx, &t);
                commit_ok();
                same(round ? "random rules rewritten" : "random rules", NULL);
        }

        /* ports in both shards, their chains and elements in one batch each */
        struct fw_port p1 = port_of(P1, 1, G1, G2), p2 = port_of(P2, 2, G2, NULL);
        const struct fw_port *ports[] = { &p1, &p2 };
        const unsigned shards[] = { 0, 1 };
        sbuf_reset(&t);
        fw_build_port_chain(&t, 0, &p1, false);
        fw_build_port_chain(&t, 1, &p2, false);
        fw_build_elements(&t, ports, shards, 2);
        run_text(text_ctx, &t);
        fw_nl_begin(&batch, 3000);
        fw_nl_port_chain(&batch, 0, &p1, false);
        fw_nl_port_chain(&batch, 1, &p2, false);
        fw_nl_elements(&batch, ports, shards, 2);
        commit_ok();
        same("ports", (const char *const[]){ "\"qbra1b2c3d4-e5\" : jump port-" "a1b2c3d4-e5f6-4789-8abc-def012345678",
                                             "\"tapb1b2c3d4-e5\" . 10.0.0.2", "fe80::f816:3eff:fe00:102",
                                             "\"qvba1b2c3d4-e5\" . fa:16:3e:00:01:01",
                                             "ether saddr fa:16:3e:00:01:01 udp sport 68 udp dport 67 jump accepted", NULL });

        /* p1 replaced: other groups (the chain flushed and written again) */
        p1 = port_of(P1, 1, G2, NULL);
        sbuf_reset(&t);
        fw_build_port_chain(&t, 0, &p1, true);
        run_text(text_ctx, &t);
        fw_nl_begin(&batch, 4000);
        fw_nl_port_chain(&batch, 0, &p1, true);
        commit_ok();
        same("port replaced", NULL);

        /* p2 goes: its elements, its chain, its shard's G2 chains; then shard 1 */
        const struct fw_elements all = { .dispatch = true, .tap = true, .mac = true, .guard = true, .ll = true };
        sbuf_reset(&t);
        fw_build_port_elements_delete(&t, 1, &p2, &all);
        fw_build_port_chain_remove(&t, 1, P2);
        fw_build_group_chain_remove(&t, 1, G2, "in");
        fw_build_group_chain_remove(&t, 1, G2, "out");
        run_text(text_ctx, &t);
        fw_nl_begin(&batch, 5000);
        fw_nl_port_elements_delete(&batch, 1, &p2, &all);
        fw_nl_port_chain_remove(&batch, 1, P2);
        fw_nl_group_chain_remove(&batch, 1, G2, "in");
        fw_nl_group_chain_remove(&batch, 1, G2, "out");
        commit_ok();
        same("port removed", (const char *const[]){ "\"tapa1b2c3d4-e5\"", NULL });
        {
                _cleanup_free_ char *l = listing(nl_list_ctx);
                ck_assert_ptr_null(strstr(l, "tapb1b2c3d4-e5"));
                ck_assert_ptr_null(strstr(l, "port-b1b2c3d4"));
        }
        sbuf_reset(&t);
        fw_build_drop_shard(&t, 1);
        run_text(text_ctx, &t);
        fw_nl_begin(&batch, 6000);
        fw_nl_drop_shard(&batch, 1);
        commit_ok();
        same("shard dropped", (const char *const[]){ "table inet nova_hypervisor {", NULL });
        {
                _cleanup_free_ char *l = listing(nl_list_ctx);
                ck_assert_ptr_null(strstr(l, "nova_hypervisor_1"));
        }
}
END_TEST

/* What the module's guard sends after someone damaged our tables: for each
 * table, `add table` (a no-op when it exists), its delete, its skeleton, and
 * the ports and groups, all in one batch, whatever state each table is in
 * (intact, damaged, gone). The result is the ruleset as first written. */
START_TEST(test_restore_is_one_batch)
{
        struct fw_port p1 = port_of(P1, 1, G1, NULL), p2 = port_of(P2, 2, G2, NULL);
        const struct fw_port *ports[] = { &p1, &p2 };
        const unsigned shards[] = { 0, 1 };
        struct secrule rules[] = { rule_of(shapes[2]), rule_of(shapes[8]) };
        _cleanup_(sbuf_free) struct sbuf t = { 0 };

        skeleton_both();
        same("skeleton", (const char *const[]){ "type filter hook prerouting priority filter; policy accept;",
                                                "ether type { 8021q, 8021ad } drop",
                                                "ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } meta mark set meta mark | 0x02000000 accept",
                                                "type icmpv6_type", "type ifname . ether_addr", NULL });
        fw_build_group(&t, 0, G1, rules, ARRAY_SIZE(rules), false);
        fw_build_group(&t, 1, G2, rules, 1, false);
        fw_build_port_chain(&t, 0, &p1, false);
        fw_build_port_chain(&t, 1, &p2, false);
        fw_build_elements(&t, ports, shards, 2);
        run_text(text_ctx, &t);
        run_text(nl_list_ctx, &t);
        same("ports", (const char *const[]){ "jump port-" "a1b2c3d4-e5f6-4789-8abc-def012345678", NULL });

        /* damage in the netlink namespace: shard 1 gone, shard 0's forward chain gone, a set flushed */
        ck_assert_int_eq(sh("ip netns exec " NS_NL " nft 'delete table inet nova_hypervisor_1; "
                            "flush chain inet nova_hypervisor forward; delete chain inet nova_hypervisor forward; "
                            "flush set bridge nova_hypervisor vm_mac'"), 0);
        {
                _cleanup_free_ char *l = listing(nl_list_ctx);
                ck_assert_ptr_null(strstr(l, "nova_hypervisor_1"));
        }
        fw_nl_begin(&batch, 7000);
        fw_nl_table_touch(&batch, false, 0);
        fw_nl_drop_shard(&batch, 0);
        fw_nl_shard_skeleton(&batch, 0);
        fw_nl_table_touch(&batch, true, 0);
        fw_nl_drop_bridge(&batch);
        fw_nl_bridge_skeleton(&batch);
        fw_nl_shard_skeleton(&batch, 1); /* was deleted: no delete (after the bridge: the listings' order) */
        fw_nl_group(&batch, 0, G1, rules, ARRAY_SIZE(rules), false);
        fw_nl_group(&batch, 1, G2, rules, 1, false);
        fw_nl_port_chain(&batch, 0, &p1, false);
        fw_nl_port_chain(&batch, 1, &p2, false);
        fw_nl_elements(&batch, ports, shards, 2);
        commit_ok();
        same("restored", (const char *const[]){ "\"tapa1b2c3d4-e5\" . fa:16:3e:00:01:01", "table inet nova_hypervisor_1",
                                                "iifname vmap @ports", NULL });
}
END_TEST

START_TEST(test_refused_batch_changes_nothing)
{
        struct fw_port p1 = port_of(P1, 1, G2, NULL);
        struct fw_port bad = p1;
        char err[256] = "";
        int r;

        skeleton_both();
        fw_nl_begin(&batch, 10);
        fw_nl_group(&batch, 0, G2, NULL, 0, false);
        commit_ok();
        _cleanup_free_ char *before = listing(nl_list_ctx);

        /* a valid port chain, then a chain the kernel does not have: nothing applied */
        fw_nl_begin(&batch, 20);
        fw_nl_port_chain(&batch, 0, &p1, false);
        fw_nl_group_chain_remove(&batch, 0, G1, "in");
        r = fw_nl_commit(nl_fd, &batch, rbuf, sizeof(rbuf), err, sizeof(err));
        ck_assert_int_eq(r, -ENOENT);
        ck_assert_msg(strstr(err, "DELCHAIN inet") && strstr(err, "No such file"), "message: %s", err);
        _cleanup_free_ char *after = listing(nl_list_ctx);
        ck_assert_str_eq(before, after);

        /* a value no builder accepts: the batch is not sent at all */
        (void)snprintf(bad.uuid, sizeof(bad.uuid), "not-a-uuid; flush ruleset");
        fw_nl_begin(&batch, 30);
        fw_nl_port_chain(&batch, 0, &p1, false);
        fw_nl_port_chain(&batch, 0, &bad, false);
        r = fw_nl_commit(nl_fd, &batch, rbuf, sizeof(rbuf), err, sizeof(err));
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strstr(err, "cannot build"), "message: %s", err);
        fw_nl_begin(&batch, 40);
        fw_nl_drop_shard(&batch, FW_MAX_SHARDS);
        ck_assert_int_eq(fw_nl_end(&batch), -EINVAL);
        _cleanup_free_ char *last = listing(nl_list_ctx);
        ck_assert_str_eq(before, last);

        /* an empty batch sends nothing and succeeds */
        fw_nl_begin(&batch, 50);
        ck_assert_int_eq(fw_nl_commit(nl_fd, &batch, rbuf, sizeof(rbuf), err, sizeof(err)), 0);
}
END_TEST

/* The ruleset's generation in NS_NL (GETGEN on nl_fd, whose answers are all read by now). */
static uint32_t nl_gen(void)
{
        uint8_t req[NLMSG_SPACE(sizeof(struct nfgenmsg))] = { 0 };
        struct nlmsghdr *h = (struct nlmsghdr *)req;
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        ssize_t n;

        h->nlmsg_len = sizeof(req);
        h->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
        h->nlmsg_flags = NLM_F_REQUEST;
        h->nlmsg_seq = 900000;
        ck_assert_int_eq(sendto(nl_fd, req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)),
                         (ssize_t)sizeof(req));
        n = recv(nl_fd, rbuf, sizeof(rbuf), 0);
        ck_assert_int_gt(n, (ssize_t)NLMSG_SPACE(sizeof(struct nfgenmsg)));
        h = (struct nlmsghdr *)rbuf;
        ck_assert_uint_eq(h->nlmsg_seq, 900000);
        ck_assert_uint_eq(h->nlmsg_type, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN);
        for (size_t off = NLMSG_SPACE(sizeof(struct nfgenmsg)); off + NLA_HDRLEN <= h->nlmsg_len;) {
                struct nlattr *a = (struct nlattr *)(rbuf + off);
                uint32_t be;
                ck_assert_uint_ge(a->nla_len, NLA_HDRLEN);
                if ((a->nla_type & NLA_TYPE_MASK) == NFTA_GEN_ID) {
                        memcpy(&be, rbuf + off + NLA_HDRLEN, sizeof(be));
                        return ntohl(be);
                }
                off += NLA_ALIGN(a->nla_len);
        }
        ck_abort_msg("GETGEN: no NFTA_GEN_ID");
        return 0;
}

/* NFNL_BATCH_GENID (fw_nl_set_genid): a batch bound to a generation that is
 * no longer current is refused whole with -ERESTART, and nothing of it is
 * applied; bound to the current one it is; 0 takes the binding back. The
 * module's big batches rely on it (firewall-control.c, "big batches"). */
START_TEST(test_batch_bound_to_a_generation)
{
        char err[256] = "";
        uint32_t g;

        skeleton_both();
        _cleanup_free_ char *before = listing(nl_list_ctx);
        g = nl_gen();
        fw_nl_begin(&batch, 60);
        fw_nl_group(&batch, 0, G2, NULL, 0, false);
        ck_assert_int_eq(fw_nl_set_genid(&batch, g - 1), 0);
        ck_assert_int_eq(fw_nl_commit(nl_fd, &batch, rbuf, sizeof(rbuf), err, sizeof(err)), -ERESTART);
        ck_assert_msg(strstr(err, "BATCH_BEGIN, bound to a generation"), "message: %s", err);
        ck_assert_uint_eq(nl_gen(), g);
        _cleanup_free_ char *after = listing(nl_list_ctx);
        ck_assert_str_eq(before, after);
        ck_assert_int_eq(fw_nl_set_genid(&batch, g), 0); /* rewritten in place */
        commit_ok();
        ck_assert_uint_eq(nl_gen(), g + 1);
        _cleanup_free_ char *applied = listing(nl_list_ctx);
        ck_assert_ptr_nonnull(strstr(applied, "sg-21111111-2222-4333-8444-555555555555-in"));

        fw_nl_begin(&batch, 70);
        fw_nl_group(&batch, 0, G1, NULL, 0, false);
        ck_assert_int_eq(fw_nl_set_genid(&batch, g), 0); /* stale: one commit since */
        ck_assert_int_eq(fw_nl_set_genid(&batch, 0), 0);
        commit_ok();
        ck_assert_uint_eq(nl_gen(), g + 2);
}
END_TEST

/* The socket lives on after a batch whose answers were not all read (the
 * module's reading cut short by ENOBUFS): the next commit skips the late
 * answers by their sequence numbers, and still reports its own refusal. */
START_TEST(test_late_answers_are_skipped)
{
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        char err[256] = "";

        skeleton_both();
        /* a refused batch sent, its answer (an error) left unread on the socket */
        fw_nl_begin(&batch, 100);
        fw_nl_group_chain_remove(&batch, 0, G1, "in");
        ck_assert_int_eq(fw_nl_end(&batch), 0);
        ck_assert_int_eq(sendto(nl_fd, batch.buf, batch.len, 0, (struct sockaddr *)&kernel, sizeof(kernel)),
                         (ssize_t)batch.len);
        /* the next batch is judged by its own answers */
        fw_nl_begin(&batch, 200);
        fw_nl_group(&batch, 0, G2, NULL, 0, false);
        ck_assert_msg(fw_nl_commit(nl_fd, &batch, rbuf, sizeof(rbuf), err, sizeof(err)) == 0, "commit: %s", err);
        fw_nl_begin(&batch, 300);
        fw_nl_group_chain_remove(&batch, 0, G1, "out");
        ck_assert_int_eq(fw_nl_commit(nl_fd, &batch, rbuf, sizeof(rbuf), err, sizeof(err)), -ENOENT);
        ck_assert_msg(strstr(err, "DELCHAIN inet"), "message: %s", err);
}
END_TEST

/* The guard table (fw_nl_guard): owned by the socket that made it, refused
 * to every other (libnftables' socket here), left by `flush ruleset`; with
 * PERSIST it outlives its socket, orphaned (anyone may then delete it), and
 * a new socket adopts it: touch with the flags, drop, made again, in one batch. */
START_TEST(test_guard_owned_and_adopted)
{
        const uint32_t op = FW_GUARD_F_OWNER | FW_GUARD_F_PERSIST;
        char err[256] = "";
        int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd;

        fw_nl_begin(&batch, 10);
        fw_nl_guard(&batch, FW_GUARD_F_PERSIST); /* not a mode of ours */
        ck_assert_int_eq(fw_nl_end(&batch), -EINVAL);
        fw_nl_begin(&batch, 20);
        fw_nl_guard(&batch, op);
        ck_assert_msg(fw_nl_commit(nl_fd, &batch, rbuf, sizeof(rbuf), err, sizeof(err)) == 0, "commit: %s", err);
        _cleanup_free_ char *guard = sh_out("ip netns exec " NS_NL " nft list table bridge " FW_GUARD_TABLE);
        ck_assert_msg(strstr(guard, "flags owner") && strstr(guard, "hook prerouting priority dstnat") &&
                              strstr(guard, "hook forward priority 100") &&
                              strstr(guard, "iifname \"tap*\" oifname \"qvb*\" meta mark & 0x03000000 != 0x03000000 drop") &&
                              strstr(guard, "iifname \"qvb*\" oifname \"tap*\" meta mark & 0x01000000 == 0x00000000 drop") &&
                              strstr(guard, "iifname \"tap*\" meta mark set meta mark & 0xfcffffff") &&
                              strstr(guard, "iifname \"qvb*\" meta mark set meta mark & 0xfcffffff"),
                      "%s", guard);
        ck_assert_int_ne(nft_run_cmd_from_buffer(nl_list_ctx, "delete table bridge " FW_GUARD_TABLE), 0);
        ck_assert_int_ne(nft_run_cmd_from_buffer(nl_list_ctx, "add rule bridge " FW_GUARD_TABLE " forward accept"), 0);
        ck_assert_int_eq(nft_run_cmd_from_buffer(nl_list_ctx, "flush ruleset"), 0);
        {
                _cleanup_free_ char *after = sh_out("ip netns exec " NS_NL " nft list table bridge " FW_GUARD_TABLE);
                ck_assert_str_eq(after, guard);
        }
        /* the owner goes: the table stays, orphaned */
        close(nl_fd);
        ck_assert_int_eq(sh("ip netns exec " NS_NL " nft list table bridge " FW_GUARD_TABLE " >/dev/null"), 0);
        ck_assert_int_ge(fd = ns_fd(NS_NL), 0);
        ck_assert_int_eq(setns(fd, CLONE_NEWNET), 0);
        close(fd);
        nl_fd = fw_nl_socket();
        ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
        close(home);
        ck_assert_int_ge(nl_fd, 0);
        /* adopted and made again in one batch (a rule someone added meanwhile is gone) */
        ck_assert_int_eq(nft_run_cmd_from_buffer(nl_list_ctx, "add rule bridge " FW_GUARD_TABLE " forward accept"), 0);
        fw_nl_begin(&batch, 30);
        fw_nl_guard_touch(&batch, op);
        fw_nl_guard_drop(&batch);
        fw_nl_guard(&batch, op);
        ck_assert_msg(fw_nl_commit(nl_fd, &batch, rbuf, sizeof(rbuf), err, sizeof(err)) == 0, "adopt: %s", err);
        {
                _cleanup_free_ char *after = sh_out("ip netns exec " NS_NL " nft list table bridge " FW_GUARD_TABLE);
                ck_assert_str_eq(after, guard);
        }
        ck_assert_int_ne(nft_run_cmd_from_buffer(nl_list_ctx, "delete table bridge " FW_GUARD_TABLE), 0);
        /* its owner may delete it */
        fw_nl_begin(&batch, 40);
        fw_nl_guard_drop(&batch);
        ck_assert_msg(fw_nl_commit(nl_fd, &batch, rbuf, sizeof(rbuf), err, sizeof(err)) == 0, "drop: %s", err);
        ck_assert_int_ne(sh("ip netns exec " NS_NL " nft list table bridge " FW_GUARD_TABLE " >/dev/null 2>&1"), 0);
}
END_TEST

/* ---- the read-back: fw_snap_read (netlink dumps) against fw_snap_parse (JSON listings) ---- */

/* fw_snap_read's side of the dumps, in NS_NL; every datagram is also kept
 * (as the fuzz target's input: a 16-bit length, then the bytes). */
struct dump_io {
        int fd;
        uint8_t *rec;
        size_t rec_len;
};

static void rec_put(struct dump_io *io, const void *p, size_t n)
{
        io->rec = realloc(io->rec, io->rec_len + n);
        ck_assert_ptr_nonnull(io->rec);
        memcpy(io->rec + io->rec_len, p, n);
        io->rec_len += n;
}

static int dump_io(void *userdata, const void *req, size_t len, struct fw_dump *d)
{
        struct dump_io *io = userdata;
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        int r = 0;

        ck_assert_int_eq(sendto(io->fd, req, len, 0, (struct sockaddr *)&kernel, sizeof(kernel)), (ssize_t)len);
        while (r == 0) {
                ssize_t n = recv(io->fd, rbuf, sizeof(rbuf), 0);
                ck_assert_int_gt(n, 0);
                ck_assert_int_lt(n, 65536);
                const uint8_t le[2] = { (uint8_t)(n & 0xff), (uint8_t)(n >> 8) };
                rec_put(io, le, 2);
                rec_put(io, rbuf, (size_t)n);
                r = fw_dump_feed(d, rbuf, (size_t)n);
        }
        return r;
}

static char *json_listing(const char *family, const char *table)
{
        char cmd[96];

        nft_ctx_output_set_flags(nl_list_ctx, NFT_CTX_OUTPUT_JSON);
        (void)snprintf(cmd, sizeof(cmd), "list table %s %s", family, table);
        int r = nft_run_cmd_from_buffer(nl_list_ctx, cmd);
        nft_ctx_output_set_flags(nl_list_ctx, 0);
        return strdup(r == 0 ? nft_ctx_get_output_buffer(nl_list_ctx) : "");
}

/* Both decoders' pictures of NS_NL; they must agree on everything. */
static void read_both(const char *step, struct fw_snap *nl, struct fw_snap *js)
{
        int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd = ns_fd(NS_NL);
        struct dump_io io = { .fd = -1 };
        struct fw_tables t;
        uint32_t seq = 7;
        char *inet[FW_MAX_SHARDS] = { NULL }, *bridge;
        size_t n = 0;

        ck_assert_int_eq(setns(fd, CLONE_NEWNET), 0);
        close(fd);
        io.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
        ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
        close(home);
        ck_assert_int_ge(io.fd, 0);
        ck_assert_int_eq(fw_snap_read(dump_io, &io, &seq, NULL, nl, &t), 0);
        ck_assert_uint_gt(seq, 7);
        close(io.fd);
        if (getenv("FW_DUMP_CORPUS")) { /* seeds for fuzz-fwdump */
                char path[512];
                FILE *f;
                (void)snprintf(path, sizeof(path), "%s/%s", getenv("FW_DUMP_CORPUS"), step);
                ck_assert_ptr_nonnull(f = fopen(path, "we"));
                ck_assert_uint_eq(fwrite(io.rec, 1, io.rec_len, f), io.rec_len);
                fclose(f);
        }
        free(io.rec);
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++) {
                char table[FW_TABLE_NAME_MAX];
                if (!t.inet[k])
                        continue;
                fw_shard_table(k, table);
                inet[n++] = json_listing("inet", table);
        }
        bridge = t.bridge ? json_listing("bridge", FW_TABLE) : NULL;
        ck_assert_int_eq(fw_snap_parse((const char *const *)inet, n, bridge, js), 0);
        for (size_t i = 0; i < n; i++)
                free(inet[i]);
        free(bridge);

        ck_assert_msg(nl->bridge_exists == js->bridge_exists && nl->bridge_ours == js->bridge_ours &&
                              nl->bridge_complete == js->bridge_complete,
                      "%s: bridge table %d%d%d (netlink) vs %d%d%d (JSON)", step, nl->bridge_exists, nl->bridge_ours,
                      nl->bridge_complete, js->bridge_exists, js->bridge_ours, js->bridge_complete);
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++)
                ck_assert_msg(memcmp(&nl->shards[k], &js->shards[k], sizeof(nl->shards[k])) == 0,
                              "%s: shard %u: exists %d ours %d complete %d ports %u (netlink) vs %d %d %d %u (JSON)",
                              step, k, nl->shards[k].exists, nl->shards[k].ours, nl->shards[k].complete,
                              nl->shards[k].n_ports, js->shards[k].exists, js->shards[k].ours,
                              js->shards[k].complete, js->shards[k].n_ports);
        ck_assert_uint_eq(nl->n_ports, js->n_ports);
        ck_assert_uint_eq(nl->n_groups, js->n_groups);
        ck_assert_uint_eq(nl->orphan_elements, js->orphan_elements);
        for (size_t i = 0; i < nl->n_ports; i++) {
                const struct fw_snap_port *a = &nl->ports[i], *b = fw_snap_port_find(js, a->port.uuid);
                ck_assert_msg(b, "%s: port %s only in the netlink read", step, a->port.uuid);
                bool same = streq(a->port.uuid, b->port.uuid) && memcmp(a->port.mac, b->port.mac, 6) == 0 &&
                            a->port.n_ips == b->port.n_ips && a->port.n_groups == b->port.n_groups &&
                            a->shard == b->shard && a->has_chain == b->has_chain && a->has_dispatch == b->has_dispatch &&
                            a->has_mac == b->has_mac && a->has_tap == b->has_tap && a->has_guard == b->has_guard &&
                            a->has_ll == b->has_ll && a->tampered == b->tampered;
                for (size_t k = 0; same && k < a->port.n_groups; k++)
                        same = streq(a->port.groups[k], b->port.groups[k]);
                for (size_t k = 0; same && k < a->port.n_ips; k++) { /* a set's elements: in any order */
                        bool found = false;
                        for (size_t j = 0; j < b->port.n_ips; j++)
                                found = found || streq(a->port.ips[k], b->port.ips[j]);
                        same = found;
                }
                ck_assert_msg(same,
                              "%s: port %s differs: tampered %d/%d chain %d/%d dispatch %d/%d mac %d/%d tap %d/%d "
                              "guard %d/%d ll %d/%d groups %zu/%zu ips %zu/%zu",
                              step, a->port.uuid, a->tampered, b->tampered, a->has_chain, b->has_chain,
                              a->has_dispatch, b->has_dispatch, a->has_mac, b->has_mac, a->has_tap, b->has_tap,
                              a->has_guard, b->has_guard, a->has_ll, b->has_ll, a->port.n_groups, b->port.n_groups,
                              a->port.n_ips, b->port.n_ips);
        }
        for (size_t i = 0; i < nl->n_groups; i++) {
                const struct fw_snap_group *a = &nl->groups[i], *b = fw_snap_group_find(js, a->shard, a->id);
                ck_assert_msg(b, "%s: group %s/%u only in the netlink read", step, a->id, a->shard);
                ck_assert_msg(a->has_in == b->has_in && a->has_out == b->has_out && a->tampered == b->tampered &&
                                      a->n_rules == b->n_rules && a->digest == b->digest && a->refs == b->refs,
                              "%s: group %s/%u differs", step, a->id, a->shard);
                for (size_t r = 0; r < a->n_rules; r++)
                        ck_assert(memcmp(&a->rules[r], &b->rules[r], sizeof(a->rules[r])) == 0);
        }
}

static void nft_nl(const char *cmd)
{
        ck_assert_msg(nft_run_cmd_from_buffer(nl_list_ctx, cmd) == 0, "%s: %s", cmd,
                      nft_ctx_get_error_buffer(nl_list_ctx));
}

START_TEST(test_read_back_is_the_listing)
{
        static struct secrule rules[SECGROUP_MAX_RULES];
        struct fw_snap nl, js;
        struct fw_port p1 = port_of(P1, 1, G1, G2), p2 = port_of(P2, 2, G2, NULL);
        const struct fw_port *ports[] = { &p1, &p2 };
        const unsigned shards[] = { 0, 1 };
        size_t n = 0;

        skeleton_both();
        for (size_t i = 0; i < ARRAY_SIZE(shapes); i++)
                rules[n++] = rule_of(shapes[i]);
        fw_nl_begin(&batch, 100);
        fw_nl_group(&batch, 0, G1, rules, n, false);
        fw_nl_group(&batch, 0, G2, NULL, 0, false);
        fw_nl_group(&batch, 1, G2, rules, 3, false);
        fw_nl_port_chain(&batch, 0, &p1, false);
        fw_nl_port_chain(&batch, 1, &p2, false);
        fw_nl_elements(&batch, ports, shards, 2);
        commit_ok();

        read_both("intact", &nl, &js);
        /* what was written, so that two empty pictures do not pass */
        ck_assert(fw_snap_ready(&nl) && nl.shards[1].complete && nl.n_ports == 2 && nl.n_groups == 3);
        ck_assert(!fw_snap_port_find(&nl, P1)->tampered && !fw_snap_port_find(&nl, P2)->tampered);
        ck_assert_uint_eq(fw_snap_port_find(&nl, P1)->port.n_groups, 2);
        ck_assert_uint_eq(fw_snap_port_find(&nl, P2)->shard, 1);
        ck_assert_uint_eq(fw_snap_port_find(&nl, P2)->port.n_ips, 2);
        ck_assert_uint_eq(fw_snap_group_find(&nl, 0, G1)->n_rules, ARRAY_SIZE(shapes));
        ck_assert_uint_eq(fw_snap_group_find(&nl, 1, G2)->n_rules, 3);
        ck_assert_uint_eq(fw_snap_group_find(&nl, 0, G2)->refs, 1);
        fw_snap_free(&nl);
        fw_snap_free(&js);

        /* someone else's hand in each kind of object */
        nft_nl("add rule inet nova_hypervisor port-" "a1b2c3d4-e5f6-4789-8abc-def012345678 accept");
        nft_nl("delete element bridge nova_hypervisor vm_mac { \"tapb1b2c3d4-e5\" . fa:16:3e:00:01:02 }");
        nft_nl("add rule inet nova_hypervisor_1 sg-" "21111111-2222-4333-8444-555555555555-in accept");
        nft_nl("add rule inet nova_hypervisor_1 forward accept");
        nft_nl("add element bridge nova_hypervisor taps { \"tapffffffff-ff\" }");
        read_both("tampered", &nl, &js);
        ck_assert(fw_snap_port_find(&nl, P1)->tampered);                      /* a rule added to its chain */
        ck_assert(fw_snap_port_find(&nl, P2)->tampered && !fw_snap_port_find(&nl, P2)->has_mac); /* element gone */
        ck_assert(fw_snap_group_find(&nl, 1, G2)->tampered);                  /* a rule without our comment */
        ck_assert(!fw_snap_group_find(&nl, 0, G1)->tampered);
        ck_assert(!nl.shards[1].complete && nl.shards[0].complete);           /* a rule in a fixed chain */
        ck_assert_uint_eq(nl.orphan_elements, 1);                             /* a tap of no port */
        fw_snap_free(&nl);
        fw_snap_free(&js);

        /* a chain rewritten by hand: same comments, other expressions */
        nft_nl("flush chain inet nova_hypervisor port-" "a1b2c3d4-e5f6-4789-8abc-def012345678");
        read_both("port chain flushed", &nl, &js);
        ck_assert(fw_snap_port_find(&nl, P1)->tampered && fw_snap_port_find(&nl, P1)->port.n_groups == 0);
        fw_snap_free(&nl);
        fw_snap_free(&js);

        /* a group rule with our comment but without the guard's pass (as written before the
         * guard): the guard would drop what it accepts, so it reads as tampered */
        nft_nl("add rule inet nova_hypervisor sg-" "11111111-2222-4333-8444-555555555555" "-in meta nfproto ipv4 accept comment \"nh in 4 any - - - - -\"");
        read_both("rule without the pass", &nl, &js);
        ck_assert(fw_snap_group_find(&nl, 0, G1)->tampered);
        ck_assert(nl.bridge_ours && nl.bridge_complete);
        fw_snap_free(&nl);
        fw_snap_free(&js);

        /* the chain every accept of a shard jumps to, its pass gone: that shard is not complete */
        nft_nl("flush chain inet nova_hypervisor " FW_ACCEPTED_CHAIN);
        nft_nl("add rule inet nova_hypervisor " FW_ACCEPTED_CHAIN " accept");
        read_both("accepted without the pass", &nl, &js);
        ck_assert(!nl.shards[0].complete && nl.shards[0].ours && nl.bridge_complete);
        ck_assert(!js.shards[0].complete && js.shards[0].ours);
        fw_snap_free(&nl);
        fw_snap_free(&js);

        /* from_vm as written before its own pass (FW_VM_MARK): ARP and RARP with the guard's
         * pass alone, the IP accepts with none. The guard would drop every frame from the
         * ports, so the bridge table reads as incomplete (the module rebuilds it at start). */
        {
                struct sbuf sk = { 0 };
                char *line, *end, *p, cmd[4096];
                static const char vm_pass[] = "meta mark set meta mark | 0x02000000 ";

                fw_build_bridge_skeleton(&sk);
                ck_assert_int_eq(sk.err, 0);
                line = strstr(sk.p, "add chain bridge " FW_TABLE " from_vm {");
                ck_assert_ptr_nonnull(line);
                end = strchr(line, '\n');
                ck_assert_ptr_nonnull(end);
                *end = '\0';
                while ((p = strstr(line, "meta mark | 0x03000000 ")))
                        p[sizeof("meta mark | 0x0") - 1] = '1';
                while ((p = strstr(line, vm_pass)))
                        memmove(p, p + sizeof(vm_pass) - 1, strlen(p + sizeof(vm_pass) - 1) + 1);
                ck_assert_ptr_null(strstr(line, "0x02000000"));
                ck_assert_ptr_nonnull(strstr(line, "ether type 0x8035 meta mark set meta mark | 0x01000000 accept"));
                /* its rules one by one (`add chain` with a body does not see the named sets) */
                {
                        char *rule = strchr(line, '{') + 2, *next;
                        size_t len = 0;
                        for (; (next = strstr(rule, "; ")); rule = next + 2) {
                                *next = '\0';
                                if (streq(rule, "}") || !*rule)
                                        break;
                                len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, "add rule bridge " FW_TABLE
                                                        " from_vm %s\n", rule);
                                ck_assert_uint_lt(len, sizeof(cmd));
                        }
                }
                ck_assert_ptr_nonnull(strstr(cmd, "from_vm drop\n"));
                nft_nl("flush chain bridge " FW_TABLE " from_vm");
                nft_nl(cmd);
                sbuf_free(&sk);
        }
        read_both("from_vm without its own pass", &nl, &js);
        ck_assert(nl.bridge_ours && !nl.bridge_complete && !fw_snap_ready(&nl));
        fw_snap_free(&nl);
        fw_snap_free(&js);

        /* tables gone; one of our names made by someone else */
        nft_nl("delete table inet nova_hypervisor_1; add table inet nova_hypervisor_1; "
               "add chain inet nova_hypervisor_1 forward");
        read_both("foreign shard", &nl, &js);
        ck_assert(nl.shards[1].exists && !nl.shards[1].ours && !fw_snap_port_find(&nl, P2));
        fw_snap_free(&nl);
        fw_snap_free(&js);
        nft_nl("flush ruleset");
        read_both("empty", &nl, &js);
        ck_assert(!nl.shards[0].exists && !nl.bridge_exists && nl.n_ports == 0);
        fw_snap_free(&nl);
        fw_snap_free(&js);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("fw-nl");
        TCase *tc = tcase_create("kernel");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_same_objects_as_libnftables);
        tcase_add_test(tc, test_restore_is_one_batch);
        tcase_add_test(tc, test_refused_batch_changes_nothing);
        tcase_add_test(tc, test_batch_bound_to_a_generation);
        tcase_add_test(tc, test_late_answers_are_skipped);
        tcase_add_test(tc, test_guard_owned_and_adopted);
        tcase_add_test(tc, test_read_back_is_the_listing);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
