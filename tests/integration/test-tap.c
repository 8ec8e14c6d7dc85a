/* test-tap.c - integration test of interfaces/network-control/tap.c against
 * the real kernel, inside a private network namespace (needs root and
 * /dev/net/tun; exits 77 = skipped when it cannot have them).
 *
 * Everything the tap layer did is verified from outside it: a separate libnl
 * socket reads the links back (rtnl_link_get_kernel / a link cache), never
 * tap_get. Each test uses its own port UUIDs, so devices left by one test
 * (all in the same namespace, which dies with the process) do not matter. */
#include "tap.h"

#include <check.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <linux/if.h>
#include <linux/if_tun.h>

#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/socket.h>

static struct nl_sock *vsk;   /* the verifier's own socket */
static struct tap_ctx *ctx;   /* the layer under test */

static const uint8_t MAC1[6] = { 0xfa, 0x16, 0x3e, 0x00, 0x00, 0x01 };
static const uint8_t MAC2[6] = { 0xfa, 0x16, 0x3e, 0x12, 0x34, 0x56 };

static void setup(void)
{
        vsk = nl_socket_alloc();
        ck_assert_ptr_nonnull(vsk);
        ck_assert_int_eq(nl_connect(vsk, NETLINK_ROUTE), 0);
        ck_assert_int_eq(tap_ctx_new(&ctx), 0);
        ck_assert_ptr_nonnull(ctx);
}

static void teardown(void)
{
        tap_ctx_free(ctx);
        ctx = NULL;
        nl_socket_free(vsk);
        vsk = NULL;
}

/* ---- outside view ---- */

struct seen {
        bool exists;
        int ifindex;
        unsigned mtu;
        uint8_t mac[6];
        unsigned flags;
        char alias[128];
        char type[16];
};

static struct seen look(const char *name)
{
        struct seen s = { 0 };
        struct rtnl_link *link = NULL;
        int r = rtnl_link_get_kernel(vsk, 0, name, &link);

        if (r == -NLE_OBJ_NOTFOUND || r == -NLE_NODEV)
                return s;
        ck_assert_msg(r == 0, "rtnl_link_get_kernel(%s): %s", name, nl_geterror(r));
        s.exists = true;
        s.ifindex = rtnl_link_get_ifindex(link);
        s.mtu = rtnl_link_get_mtu(link);
        s.flags = rtnl_link_get_flags(link);
        struct nl_addr *a = rtnl_link_get_addr(link);
        if (a && nl_addr_get_len(a) == 6)
                memcpy(s.mac, nl_addr_get_binary_addr(a), 6);
        const char *al = rtnl_link_get_ifalias(link);
        if (al)
                ck_assert_int_eq(strscpy(s.alias, al, sizeof(s.alias)), 0);
        const char *ty = rtnl_link_get_type(link);
        if (ty)
                ck_assert_int_eq(strscpy(s.type, ty, sizeof(s.type)), 0);
        rtnl_link_put(link);
        return s;
}

static int count_links(void)
{
        struct nl_cache *cache = NULL;
        int n;

        ck_assert_int_eq(rtnl_link_alloc_cache(vsk, AF_UNSPEC, &cache), 0);
        n = nl_cache_nitems(cache);
        nl_cache_free(cache);
        return n;
}

static void name_of(const char *uuid, char name[IFNAME_MAX])
{
        ck_assert_int_eq(tap_name_from_port(uuid, name), 0);
}

static void mark_of(const char *uuid, char *buf, size_t size)
{
        ck_assert_int_eq(xsnprintf(buf, size, "%s%s", TAP_MARK_PREFIX, uuid), 0);
}

/* A persistent tun/tap device made behind the layer's back. */
static void make_foreign_tun(const char *name, short type)
{
        struct ifreq ifr = { 0 };
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(strscpy(ifr.ifr_name, name, sizeof(ifr.ifr_name)), 0);
        ifr.ifr_flags = type | IFF_NO_PI;
        ck_assert_msg(ioctl(fd, TUNSETIFF, &ifr) == 0, "TUNSETIFF %s: %m", name);
        ck_assert_int_eq(ioctl(fd, TUNSETPERSIST, 1), 0);
        close(fd);
}

/* Change one link from outside: alias and/or admin state. */
static void outside_set(const char *name, const char *alias, int up)
{
        struct rtnl_link *orig = NULL, *chg = rtnl_link_alloc();

        ck_assert_int_eq(rtnl_link_get_kernel(vsk, 0, name, &orig), 0);
        if (alias)
                rtnl_link_set_ifalias(chg, alias);
        if (up > 0)
                rtnl_link_set_flags(chg, IFF_UP);
        else if (up == 0)
                rtnl_link_unset_flags(chg, IFF_UP);
        ck_assert_int_eq(rtnl_link_change(vsk, orig, chg, 0), 0);
        rtnl_link_put(chg);
        rtnl_link_put(orig);
}

/* ---- cases ---- */

START_TEST(create_sets_everything)
{
        const char *u = "11111111-2222-4333-8444-555555555555";
        char name[IFNAME_MAX], mark[128];
        struct tap_info t;

        name_of(u, name);
        mark_of(u, mark, sizeof(mark));
        ck_assert(!look(name).exists);

        ck_assert_int_eq(tap_create(ctx, u, MAC1, 1450, &t), 0);
        struct seen s = look(name);
        ck_assert(s.exists);
        ck_assert_uint_eq(s.mtu, 1450);
        ck_assert_mem_eq(s.mac, MAC1, 6);
        ck_assert(s.flags & IFF_UP);
        ck_assert(s.flags & IFF_MULTICAST); /* nothing but IFF_UP was changed */
        ck_assert_str_eq(s.alias, mark);
        ck_assert_str_eq(s.type, "tun");
        /* the read-back describes the same device */
        ck_assert_str_eq(t.name, name);
        ck_assert_str_eq(t.port_uuid, u);
        ck_assert_int_eq(t.ifindex, s.ifindex);
        ck_assert_uint_eq(t.mtu, 1450);
        ck_assert_mem_eq(t.mac, MAC1, 6);
        ck_assert(t.admin_up);
        ck_assert(!t.carrier); /* nobody holds the tap */

        /* ret may be NULL; the limits of the range are accepted */
        ck_assert_int_eq(tap_create(ctx, "11111111-2222-4333-8444-555555555556", MAC2, 68, NULL), -EEXIST);
        ck_assert_int_eq(tap_create(ctx, "21111111-2222-4333-8444-555555555555", MAC2, 68, NULL), 0);
        name_of("21111111-2222-4333-8444-555555555555", name);
        ck_assert_uint_eq(look(name).mtu, 68);
}
END_TEST

START_TEST(create_again_converges)
{
        const char *u = "22222222-2222-4333-8444-555555555555";
        char name[IFNAME_MAX];
        struct tap_info t;

        name_of(u, name);
        ck_assert_int_eq(tap_create(ctx, u, MAC1, 1500, NULL), 0);
        struct seen before = look(name);
        int links = count_links();

        outside_set(name, NULL, 0); /* someone took it down */
        ck_assert(!(look(name).flags & IFF_UP));

        ck_assert_int_eq(tap_create(ctx, u, MAC2, 9000, &t), 0);
        struct seen after = look(name);
        ck_assert(after.exists);
        ck_assert_int_eq(after.ifindex, before.ifindex); /* same device, not a new one */
        ck_assert_int_eq(count_links(), links);
        ck_assert_uint_eq(after.mtu, 9000);
        ck_assert_mem_eq(after.mac, MAC2, 6);
        ck_assert(after.flags & IFF_UP);
        ck_assert_uint_eq(t.mtu, 9000);
        ck_assert_int_eq(t.ifindex, before.ifindex);

        /* and once more with identical values: still fine, still one */
        ck_assert_int_eq(tap_create(ctx, u, MAC2, 9000, NULL), 0);
        ck_assert_int_eq(count_links(), links);
}
END_TEST

START_TEST(delete_removes_and_reports_absent)
{
        const char *u = "33333333-2222-4333-8444-555555555555";
        char name[IFNAME_MAX];

        name_of(u, name);
        ck_assert_int_eq(tap_delete(ctx, u), -ENOENT);
        ck_assert_int_eq(tap_create(ctx, u, MAC1, 1500, NULL), 0);
        ck_assert(look(name).exists);
        ck_assert_int_eq(tap_delete(ctx, u), 0);
        ck_assert(!look(name).exists);
        ck_assert_int_eq(tap_delete(ctx, u), -ENOENT);
}
END_TEST

START_TEST(delete_while_held)
{
        const char *u = "34333333-2222-4333-8444-555555555555";
        char name[IFNAME_MAX];
        struct ifreq ifr = { 0 };

        name_of(u, name);
        ck_assert_int_eq(tap_create(ctx, u, MAC1, 1500, NULL), 0);
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(strscpy(ifr.ifr_name, name, sizeof(ifr.ifr_name)), 0);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
        ck_assert_int_eq(ioctl(fd, TUNSETIFF, &ifr), 0); /* a "VM" holds it */
        ck_assert_int_eq(tap_delete(ctx, u), 0);
        ck_assert(!look(name).exists);
        close(fd);
        ck_assert(!look(name).exists);
}
END_TEST

START_TEST(foreign_tap_without_mark)
{
        const char *u = "44444444-2222-4333-8444-555555555555";
        char name[IFNAME_MAX];
        struct tap_info t;

        name_of(u, name);
        make_foreign_tun(name, IFF_TAP);
        struct seen before = look(name);
        ck_assert(before.exists);
        int links = count_links();

        ck_assert_int_eq(tap_create(ctx, u, MAC1, 1400, &t), -EEXIST);
        ck_assert_int_eq(tap_delete(ctx, u), -EPERM);
        ck_assert_int_eq(tap_get(ctx, u, &t), -ENOENT);

        struct seen after = look(name);
        ck_assert(after.exists);
        ck_assert_int_eq(after.ifindex, before.ifindex);
        ck_assert_uint_eq(after.mtu, before.mtu);
        ck_assert_mem_eq(after.mac, before.mac, 6);
        ck_assert_uint_eq(after.flags, before.flags);
        ck_assert_str_eq(after.alias, "");
        ck_assert_int_eq(count_links(), links);
}
END_TEST

START_TEST(foreign_mark_of_another_port)
{
        /* Same first 11 characters → same derived name, different port. */
        const char *a = "55555555-aa11-4333-8444-555555555555";
        const char *b = "55555555-aa22-4333-8444-555555555555";
        char name[IFNAME_MAX], mark_a[128];
        struct tap_info t;

        name_of(a, name);
        mark_of(a, mark_a, sizeof(mark_a));
        ck_assert_int_eq(tap_create(ctx, a, MAC1, 1500, NULL), 0);
        ck_assert_int_eq(tap_create(ctx, b, MAC2, 9000, NULL), -EEXIST);
        ck_assert_int_eq(tap_delete(ctx, b), -EPERM);
        ck_assert_int_eq(tap_get(ctx, b, &t), -ENOENT);
        struct seen s = look(name);
        ck_assert_str_eq(s.alias, mark_a);
        ck_assert_uint_eq(s.mtu, 1500);
        ck_assert_mem_eq(s.mac, MAC1, 6);

        /* a tap with our name whose mark was altered is no longer ours */
        outside_set(name, "nova-hypervisor:port=", -1);
        ck_assert_int_eq(tap_delete(ctx, a), -EPERM);
        ck_assert_int_eq(tap_create(ctx, a, MAC1, 1500, NULL), -EEXIST);
        ck_assert(look(name).exists);
}
END_TEST

START_TEST(tun_not_tap_with_our_mark)
{
        const char *u = "66666666-2222-4333-8444-555555555555";
        char name[IFNAME_MAX], mark[128];

        name_of(u, name);
        mark_of(u, mark, sizeof(mark));
        make_foreign_tun(name, IFF_TUN);
        outside_set(name, mark, -1); /* even carrying our exact mark */
        struct seen before = look(name);

        ck_assert_int_eq(tap_create(ctx, u, MAC1, 1500, NULL), -EEXIST);
        ck_assert_int_eq(tap_delete(ctx, u), -EPERM);
        struct seen after = look(name);
        ck_assert(after.exists);
        ck_assert_uint_eq(after.mtu, before.mtu);
        ck_assert_uint_eq(after.flags, before.flags);
}
END_TEST

START_TEST(non_tun_device_with_our_name)
{
        const char *u = "77777777-2222-4333-8444-555555555555";
        char name[IFNAME_MAX], mark[128];
        struct tap_info t;
        int r;

        name_of(u, name);
        mark_of(u, mark, sizeof(mark));
        struct rtnl_link *dummy = rtnl_link_alloc();
        rtnl_link_set_name(dummy, name);
        ck_assert_int_eq(rtnl_link_set_type(dummy, "dummy"), 0);
        r = rtnl_link_add(vsk, dummy, NLM_F_CREATE | NLM_F_EXCL);
        rtnl_link_put(dummy);
        if (r < 0) {
                /* no dummy driver in this kernel: a veth does as well */
                fprintf(stderr, "test-tap: dummy link unavailable (%s), using veth\n", nl_geterror(r));
                ck_assert_int_eq(rtnl_link_veth_add(vsk, name, "nvtestpeer0", getpid()), 0);
        }
        outside_set(name, mark, -1);
        struct seen before = look(name);
        ck_assert(before.exists);
        ck_assert_str_ne(before.type, "tun");

        ck_assert_int_eq(tap_create(ctx, u, MAC1, 1500, &t), -EEXIST);
        ck_assert_int_eq(tap_delete(ctx, u), -EPERM);
        ck_assert_int_eq(tap_get(ctx, u, &t), -ENOENT);
        struct seen after = look(name);
        ck_assert(after.exists);
        ck_assert_int_eq(after.ifindex, before.ifindex);
        ck_assert_uint_eq(after.mtu, before.mtu);
        ck_assert_mem_eq(after.mac, before.mac, 6);
}
END_TEST

START_TEST(altname_does_not_pass_for_our_name)
{
        /* The kernel resolves a get by name through alternative names too: a
         * foreign tap named otherwise, carrying our mark and our derived name
         * as altname, must not be taken for ours. */
        const char *u = "78777777-2222-4333-8444-555555555555";
        char name[IFNAME_MAX], mark[128];
        struct tap_info t;
        struct rtnl_link *link = NULL;

        name_of(u, name);
        mark_of(u, mark, sizeof(mark));
        make_foreign_tun("foreigntap0", IFF_TAP);
        outside_set("foreigntap0", mark, 1);
        ck_assert_int_eq(rtnl_link_get_kernel(vsk, 0, "foreigntap0", &link), 0);

        struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINKPROP, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND);
        struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = rtnl_link_get_ifindex(link) };
        ck_assert_int_eq(nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO), 0);
        struct nlattr *props = nla_nest_start(msg, IFLA_PROP_LIST | NLA_F_NESTED);
        ck_assert_int_eq(nla_put_string(msg, IFLA_ALT_IFNAME, name), 0);
        nla_nest_end(msg, props);
        int r = nl_send_sync(vsk, msg); /* frees msg */
        rtnl_link_put(link);
        if (r < 0) {
                fprintf(stderr, "test-tap: altnames unsupported here (%s), case not run\n", nl_geterror(r));
                return;
        }
        struct seen before = look(name); /* resolves the altname */
        ck_assert(before.exists);

        ck_assert_int_eq(tap_get(ctx, u, &t), -ENOENT);
        ck_assert_int_eq(tap_delete(ctx, u), -EPERM);
        ck_assert_int_eq(tap_create(ctx, u, MAC2, 9000, &t), -EEXIST);
        struct seen after = look("foreigntap0");
        ck_assert_int_eq(after.ifindex, before.ifindex);
        ck_assert_uint_eq(after.mtu, before.mtu);
        ck_assert_mem_eq(after.mac, before.mac, 6);
}
END_TEST

START_TEST(invalid_arguments_create_nothing)
{
        static const char *bad_uuids[] = {
                "../../etc/passwd",
                "88888888-2222-4333-8444-55555555555A",
                "AAAAAAAA-2222-4333-8444-555555555555",
                "88888888-2222-4333-8444-5555555555555",
                "",
        };
        static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
        static const uint8_t zero[6] = { 0 };
        static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
        const char *u = "88888888-2222-4333-8444-555555555555";
        struct tap_info t;
        int links = count_links();

        for (size_t i = 0; i < ARRAY_SIZE(bad_uuids); i++) {
                ck_assert_int_eq(tap_create(ctx, bad_uuids[i], MAC1, 1500, &t), -EINVAL);
                ck_assert_int_eq(tap_delete(ctx, bad_uuids[i]), -EINVAL);
                ck_assert_int_eq(tap_get(ctx, bad_uuids[i], &t), -EINVAL);
        }
        ck_assert_int_eq(tap_create(ctx, NULL, MAC1, 1500, &t), -EINVAL);
        ck_assert_int_eq(tap_create(ctx, u, mcast, 1500, &t), -EINVAL);
        ck_assert_int_eq(tap_create(ctx, u, zero, 1500, &t), -EINVAL);
        ck_assert_int_eq(tap_create(ctx, u, bcast, 1500, &t), -EINVAL);
        ck_assert_int_eq(tap_create(ctx, u, MAC1, 67, &t), -ERANGE);
        ck_assert_int_eq(tap_create(ctx, u, MAC1, 70000, &t), -ERANGE);
        ck_assert_int_eq(tap_create(ctx, u, MAC1, 0, &t), -ERANGE);
        ck_assert_int_eq(count_links(), links);
}
END_TEST

START_TEST(kernel_refusal_rolls_back)
{
        /* In range for us, but a tap's max_mtu is 65535 - ETH_HLEN = 65521:
         * the kernel refuses the change request after the tap was made. */
        const char *u = "99999999-2222-4333-8444-555555555555";
        char name[IFNAME_MAX];
        struct tap_info t;
        int links = count_links();

        name_of(u, name);
        memset(&t, 0xa5, sizeof(t));
        int r = tap_create(ctx, u, MAC1, 65535, &t);
        ck_assert_msg(r == -EINVAL, "tap_create mtu 65535: %d (%s)", r, strerror(-r));
        ck_assert(!look(name).exists);
        ck_assert_int_eq(count_links(), links);
        ck_assert_uint_eq(((uint8_t *)&t)[0], 0xa5); /* ret untouched on failure */

        ck_assert_int_eq(tap_create(ctx, u, MAC1, 65521, &t), 0); /* the real maximum */
        ck_assert_uint_eq(look(name).mtu, 65521);
        /* converge to a refused MTU: error, and the existing tap is kept */
        ck_assert_int_eq(tap_create(ctx, u, MAC1, 65522, NULL), -EINVAL);
        ck_assert(look(name).exists);
}
END_TEST

START_TEST(get_reports_the_kernel_view)
{
        const char *u = "aaaaaaaa-2222-4333-8444-555555555555";
        char name[IFNAME_MAX];
        struct tap_info t;
        struct ifreq ifr = { 0 };

        name_of(u, name);
        ck_assert_int_eq(tap_get(ctx, u, &t), -ENOENT);
        ck_assert_int_eq(tap_create(ctx, u, MAC2, 1280, NULL), 0);
        struct seen s = look(name);

        memset(&t, 0, sizeof(t));
        ck_assert_int_eq(tap_get(ctx, u, &t), 0);
        ck_assert_str_eq(t.name, name);
        ck_assert_str_eq(t.port_uuid, u);
        ck_assert_int_eq(t.ifindex, s.ifindex);
        ck_assert_uint_eq(t.mtu, 1280);
        ck_assert_mem_eq(t.mac, MAC2, 6);
        ck_assert(t.admin_up);
        ck_assert(!t.carrier);
        ck_assert_str_ne(t.operstate, "up");

        /* a "VM" attaches: carrier comes, operstate follows (linkwatch is async) */
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(strscpy(ifr.ifr_name, name, sizeof(ifr.ifr_name)), 0);
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
        ck_assert_int_eq(ioctl(fd, TUNSETIFF, &ifr), 0);
        ck_assert_int_eq(tap_get(ctx, u, &t), 0);
        ck_assert(t.carrier);
        for (int i = 0; i < 300 && !streq(t.operstate, "up"); i++) {
                usleep(10000);
                ck_assert_int_eq(tap_get(ctx, u, &t), 0);
        }
        ck_assert_str_eq(t.operstate, "up");
        close(fd);
        ck_assert_int_eq(tap_get(ctx, u, &t), 0);
        ck_assert(!t.carrier);

        /* many gets on one ctx stay in step with the kernel */
        for (int i = 0; i < 1000; i++)
                ck_assert_int_eq(tap_get(ctx, u, &t), 0);
        ck_assert_int_eq(tap_delete(ctx, u), 0);
        ck_assert_int_eq(tap_get(ctx, u, &t), -ENOENT);
}
END_TEST

START_TEST(list_only_ours)
{
        static const char *ours[] = {
                "bbbbbbbb-0100-4333-8444-555555555555",
                "bbbbbbbb-0200-4333-8444-555555555555",
                "bbbbbbbb-0300-4333-8444-555555555555",
        };
        const char *foreign = "bbbbbbbb-0400-4333-8444-555555555555";
        char name[IFNAME_MAX], mark[128];
        struct tap_info *l = NULL;
        size_t n = 99;

        /* a fresh namespace's view of this test: drop what earlier tests left */
        ck_assert_int_eq(tap_list(ctx, &l, &n), 0);
        for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(tap_delete(ctx, l[i].port_uuid), 0);
        free(l);
        ck_assert_int_eq(tap_list(ctx, &l, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_null(l);

        for (size_t i = 0; i < ARRAY_SIZE(ours); i++)
                ck_assert_int_eq(tap_create(ctx, ours[i], MAC1, (uint32_t)(1400 + i), NULL), 0);
        name_of(foreign, name);
        make_foreign_tun(name, IFF_TAP);
        /* a tap carrying a valid mark under a name not derived from it */
        make_foreign_tun("tapnotours0", IFF_TAP);
        mark_of(ours[0], mark, sizeof(mark));
        outside_set("tapnotours0", mark, -1);

        ck_assert_int_eq(tap_list(ctx, &l, &n), 0);
        ck_assert_uint_eq(n, ARRAY_SIZE(ours));
        for (size_t i = 0; i < ARRAY_SIZE(ours); i++) {
                bool found = false;
                for (size_t j = 0; j < n; j++) {
                        if (!streq(l[j].port_uuid, ours[i]))
                                continue;
                        found = true;
                        name_of(ours[i], name);
                        ck_assert_str_eq(l[j].name, name);
                        ck_assert_uint_eq(l[j].mtu, 1400 + i);
                        ck_assert_int_eq(l[j].ifindex, look(name).ifindex);
                        ck_assert_mem_eq(l[j].mac, MAC1, 6);
                        ck_assert(l[j].admin_up);
                }
                ck_assert_msg(found, "%s not listed", ours[i]);
        }
        free(l);
}
END_TEST

static Suite *tap_suite(void)
{
        Suite *s = suite_create("tap");
        TCase *tc = tcase_create("netns");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, create_sets_everything);
        tcase_add_test(tc, create_again_converges);
        tcase_add_test(tc, delete_removes_and_reports_absent);
        tcase_add_test(tc, delete_while_held);
        tcase_add_test(tc, foreign_tap_without_mark);
        tcase_add_test(tc, foreign_mark_of_another_port);
        tcase_add_test(tc, tun_not_tap_with_our_mark);
        tcase_add_test(tc, non_tun_device_with_our_name);
        tcase_add_test(tc, altname_does_not_pass_for_our_name);
        tcase_add_test(tc, invalid_arguments_create_nothing);
        tcase_add_test(tc, kernel_refusal_rolls_back);
        tcase_add_test(tc, get_reports_the_kernel_view);
        tcase_add_test(tc, list_only_ours);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr;
        int failed;

        if (unshare(CLONE_NEWNET) < 0) {
                fprintf(stderr, "test-tap: skipped: unshare(CLONE_NEWNET): %m (needs root)\n");
                return 77;
        }
        if (access("/dev/net/tun", R_OK | W_OK) < 0) {
                fprintf(stderr, "test-tap: skipped: /dev/net/tun: %m\n");
                return 77;
        }
        sr = srunner_create(tap_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
