/* tap.c - see tap.h
 *
 * Transport: one libnl NETLINK_ROUTE socket. Requests are built either by
 * libnl (change/delete: rtnl_link_build_*_request) or in a small stack buffer
 * (get/dump), and every exchange goes through transact(), which matches
 * replies by our own sequence number and by sender (the kernel only). Replies
 * are parsed in place with nlmsg_parse() from one buffer owned by the ctx, so
 * tap_get does one sendto + one recvfrom and no heap allocation.
 *
 * Creation: TUNSETIFF with IFF_TUN_EXCL (fails instead of attaching to a
 * device that appeared meanwhile) makes a non-persistent tap that lives only
 * as long as our fd; the change request is sent while we hold it and
 * TUNSETPERSIST comes last, so any failure before it is undone by close().
 *
 * Hybrid plumbing: every device of the port is looked at first and the call
 * is refused before anything changes when one is not ours (or is held by a
 * foreign master). Then qbr and the veth pair are made (RTM_NEWLINK with
 * NLM_F_EXCL, built in stack buffers), configured (MTU, mark, master), given
 * addr_gen_mode none while still down, the tap is made or converged into qbr,
 * and everything is brought up last. The ifindexes of what this call created
 * are kept so that a failing step removes exactly those again. */
#include "tap.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <linux/netlink.h>
#include <linux/veth.h>
#include <linux/rtnetlink.h>

#include <netlink/addr.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/route/link.h>

#define TUN_DEV_PATH "/dev/net/tun"
#define TAP_MARK_MAX (sizeof(TAP_MARK_PREFIX) + UUID_STR_LEN) /* includes the NUL */
#define RX_BUF_SIZE (64u * 1024u)       /* one recvfrom; dumps are sized by the kernel to our reads */
#define SOCK_RCVBUF (256 * 1024)        /* room for a dump of many links */
#define SOCK_SNDBUF (32 * 1024)         /* requests are small */
#define DUMP_RETRIES 3                  /* NLM_F_DUMP_INTR: link list changed under the dump */
#define ATTR_SPACE(len) NLA_ALIGN(NLA_HDRLEN + (len)) /* bytes one attribute takes */
#define LINK_REQ_SIZE 512               /* a link request built in a stack buffer */
#define IPV6_MTU_MIN 1280               /* below it a device has no IPv6 (and no link-local address) */


/* RFC 2863 operational states as the kernel reports them (IF_OPER_*), the
 * same words `ip link` prints; a table, not snprintf, on the tap_get path. */
static const char *operstate_name(uint8_t state)
{
        static const char *const names[] = { "unknown", "notpresent", "down", "lowerlayerdown",
                                             "testing", "dormant", "up" };
        return state < ARRAY_SIZE(names) ? names[state] : "unknown";
}

struct tap_ctx {
        struct nl_sock *sk;     /* connected NETLINK_ROUTE socket */
        uint32_t port;          /* our netlink port id, replies are addressed to it */
        uint32_t seq;           /* last sequence number used (own counter, libnl's is not used) */
        uint8_t *buf;           /* RX_BUF_SIZE bytes, reused by every reply */
        unsigned fail_countdown; /* tests only: the n-th changing request fails with -EIO (0: off) */
        uint32_t delete_group;  /* tests only: the device group of tap_delete_batch() (0: random) */
        char detail[TAP_DETAIL_MAX]; /* what made the last tap_create/tap_delete fail, "" when unknown */
};

/* A link message parsed in place; pointers refer into ctx->buf and are only
 * valid until the next request on the same ctx. */
struct link_view {
        int ifindex;
        unsigned flags;          /* ifi_flags */
        unsigned short type;     /* ifi_type, ARPHRD_* */
        const char *name;        /* IFLA_IFNAME, NUL-terminated */
        const char *alias;       /* IFLA_IFALIAS or NULL */
        const char *kind;        /* IFLA_INFO_KIND or NULL */
        int tun_type;            /* IFLA_TUN_TYPE (IFF_TUN/IFF_TAP) or -1 when not reported */
        int master;              /* IFLA_MASTER, 0 when none */
        int link;                /* IFLA_LINK (a veth's peer), 0 when not reported */
        bool link_netns;         /* IFLA_LINK_NETNSID: the peer is in another namespace */
        int64_t br_stp_state;    /* bridge: IFLA_BR_STP_STATE, -1 when not reported */
        int64_t br_forward_delay; /* bridge: IFLA_BR_FORWARD_DELAY (1/100 s), -1 when not reported */
        uint32_t mtu;            /* IFLA_MTU, 0 when not reported */
        const uint8_t *addr;     /* IFLA_ADDRESS or NULL */
        int addr_len;            /* length of addr in bytes */
        uint8_t operstate;       /* IF_OPER_*, IF_OPER_UNKNOWN when not reported */
        uint32_t min_mtu, max_mtu; /* IFLA_MIN_MTU/IFLA_MAX_MTU, 0 when not reported */
        int tun_persist;         /* tun: IFLA_TUN_PERSIST 0/1, -1 when not reported */
        int tun_multi_queue;     /* tun: IFLA_TUN_MULTI_QUEUE 0/1, -1 when not reported */
        bool tun_owner;          /* tun: IFLA_TUN_OWNER present (TUNSETOWNER was used) */
        bool tun_group;          /* tun: IFLA_TUN_GROUP present (TUNSETGROUP was used) */
        int addr_gen_mode;       /* IPv6 IFLA_INET6_ADDR_GEN_MODE, -1 when not reported */
        uint32_t group;          /* IFLA_GROUP, 0 (the default group) when not reported */
};

/* Called for each data message of an exchange; a negative return is kept as the result. */
typedef int (*msg_handler_t)(struct nlmsghdr *nlh, void *userdata);

/* _cleanup_ helpers for libnl objects (accept NULL). */
static inline void rtnl_link_putp(struct rtnl_link **p)
{
        if (*p)
                rtnl_link_put(*p);
}
static inline void nl_addr_putp(struct nl_addr **p)
{
        if (*p)
                nl_addr_put(*p);
}
static inline void nlmsg_freep(struct nl_msg **p)
{
        if (*p)
                nlmsg_free(*p);
}

/* libnl reports -NLE_* (sometimes positive); turn it into -errno. */
static int nlerr_to_errno(int nlerr)
{
        switch (nlerr < 0 ? -nlerr : nlerr) {
        case 0:
                return 0;
        case NLE_OBJ_NOTFOUND:
                return -ENOENT;
        case NLE_EXIST:
                return -EEXIST;
        case NLE_PERM:
                return -EPERM;
        case NLE_INVAL:
                return -EINVAL;
        case NLE_NOMEM:
                return -ENOMEM;
        case NLE_BUSY:
                return -EBUSY;
        case NLE_RANGE:
                return -ERANGE;
        default:
                return -EIO;
        }
}

int tap_ctx_new(struct tap_ctx **ret)
{
        struct tap_ctx *ctx;
        int fd, flags, r;

        if (!ret)
                return -EINVAL;
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return -ENOMEM;
        ctx->buf = malloc(RX_BUF_SIZE);
        ctx->sk = nl_socket_alloc();
        if (!ctx->buf || !ctx->sk) {
                r = -ENOMEM;
                goto fail;
        }
        /* Requests we build never ask for an ACK unless they need one. */
        nl_socket_disable_auto_ack(ctx->sk);
        r = nl_connect(ctx->sk, NETLINK_ROUTE);
        if (r < 0) {
                r = nlerr_to_errno(r);
                goto fail;
        }
        fd = nl_socket_get_fd(ctx->sk);
        /* libnl >= 3.2.26 opens with SOCK_CLOEXEC; make sure on older ones. */
        flags = fcntl(fd, F_GETFD);
        if (flags < 0 || (!(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)) {
                r = -errno;
                goto fail;
        }
        r = nl_socket_set_buffer_size(ctx->sk, SOCK_RCVBUF, SOCK_SNDBUF);
        if (r < 0) {
                r = nlerr_to_errno(r);
                goto fail;
        }
        ctx->port = nl_socket_get_local_port(ctx->sk);
        ctx->seq = (uint32_t)now_usec();
        *ret = ctx;
        return 0;
fail:
        tap_ctx_free(ctx);
        return r;
}

void tap_ctx_free(struct tap_ctx *ctx)
{
        if (!ctx)
                return;
        if (ctx->sk)
                nl_socket_free(ctx->sk); /* closes the fd */
        free(ctx->buf);
        free(ctx);
}

const char *tap_ctx_detail(const struct tap_ctx *ctx) { return ctx ? ctx->detail : ""; }

void tap_ctx_fail_request(struct tap_ctx *ctx, unsigned n)
{
        if (ctx)
                ctx->fail_countdown = n;
}

void tap_ctx_set_delete_group(struct tap_ctx *ctx, uint32_t group)
{
        if (ctx)
                ctx->delete_group = group;
}

_printf_(2, 3) static void detail_set(struct tap_ctx *ctx, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(ctx->detail, sizeof(ctx->detail), fmt, ap);
        va_end(ap);
}

/* ---- raw request building (stack buffers) ---- */

/* Append one attribute to nlh (capacity cap bytes). Returns the attribute or NULL. */
static struct nlattr *put_attr(struct nlmsghdr *nlh, size_t cap, uint16_t type, const void *data,
                               size_t len)
{
        size_t off = NLMSG_ALIGN(nlh->nlmsg_len);
        struct nlattr *a;

        if (off + NLA_ALIGN(NLA_HDRLEN + len) > cap)
                return NULL;
        a = (struct nlattr *)((uint8_t *)nlh + off);
        a->nla_type = type;
        a->nla_len = (uint16_t)(NLA_HDRLEN + len);
        if (len)
                memcpy((uint8_t *)a + NLA_HDRLEN, data, len);
        memset((uint8_t *)a + NLA_HDRLEN + len, 0, NLA_ALIGN(a->nla_len) - a->nla_len);
        nlh->nlmsg_len = (uint32_t)(off + NLA_ALIGN(a->nla_len));
        return a;
}

/* Close a nest opened with put_attr(type | NLA_F_NESTED, NULL, 0). */
static void end_nest(struct nlmsghdr *nlh, struct nlattr *nest)
{
        nest->nla_len = (uint16_t)((uint8_t *)nlh + nlh->nlmsg_len - (uint8_t *)nest);
}

/* ---- one request, its replies ---- */

/* Receive one datagram from the kernel into ctx->buf. Returns its length or -errno. */
static ssize_t recv_reply(struct tap_ctx *ctx)
{
        int fd = nl_socket_get_fd(ctx->sk);

        for (;;) {
                struct sockaddr_nl sa = { 0 };
                socklen_t salen = sizeof(sa);
                ssize_t n = recvfrom(fd, ctx->buf, RX_BUF_SIZE, MSG_TRUNC, (struct sockaddr *)&sa,
                                     &salen);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if ((size_t)n > RX_BUF_SIZE)
                        return -EMSGSIZE; /* the datagram is lost; cannot happen for links */
                if (salen != sizeof(sa) || sa.nl_family != AF_NETLINK || sa.nl_pid != 0)
                        continue;         /* not from the kernel: never trust it */
                return n;
        }
}

/* Send nlh and process the replies that carry its sequence number.
 * Data messages go to handler (may be NULL); the first handler error is kept
 * but the exchange is still read to its end so nothing stale stays queued.
 * Ends on NLMSG_ERROR (ACK or error), NLMSG_DONE, or - for a request without
 * NLM_F_ACK and NLM_F_DUMP - the first data message.
 * *ret_intr (may be NULL) reports NLM_F_DUMP_INTR. Returns 0 or -errno. */
static int transact(struct tap_ctx *ctx, struct nlmsghdr *nlh, msg_handler_t handler,
                    void *userdata, bool *ret_intr)
{
        bool until_ack = nlh->nlmsg_flags & (NLM_F_ACK | NLM_F_DUMP);
        bool intr = false;
        int herr = 0, r;

        if (ctx->fail_countdown > 0 &&
            (nlh->nlmsg_type == RTM_NEWLINK || nlh->nlmsg_type == RTM_SETLINK || nlh->nlmsg_type == RTM_DELLINK) &&
            --ctx->fail_countdown == 0)
                return -EIO; /* tap_ctx_fail_request(): a refusal the kernel could give, without sending */

        if (++ctx->seq == 0)
                ctx->seq = 1;
        nlh->nlmsg_seq = ctx->seq;
        nlh->nlmsg_pid = ctx->port;
        nlh->nlmsg_flags |= NLM_F_REQUEST;

        r = nl_sendto(ctx->sk, nlh, nlh->nlmsg_len);
        if (r < 0)
                return nlerr_to_errno(r);

        for (;;) {
                ssize_t n = recv_reply(ctx);
                int len;

                if (n < 0)
                        return (int)n;
                len = (int)n;
                for (struct nlmsghdr *h = (struct nlmsghdr *)ctx->buf; nlmsg_ok(h, len);
                     h = nlmsg_next(h, &len)) {
                        if (h->nlmsg_seq != ctx->seq || h->nlmsg_pid != ctx->port)
                                continue; /* left over from an earlier exchange */
                        if (h->nlmsg_flags & NLM_F_DUMP_INTR)
                                intr = true;
                        if (h->nlmsg_type == NLMSG_ERROR) {
                                const struct nlmsgerr *e = nlmsg_data(h);
                                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                                        return -EBADMSG;
                                r = e->error <= 0 ? e->error : -e->error;
                                goto done;
                        }
                        if (h->nlmsg_type == NLMSG_DONE) {
                                r = 0;
                                if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)))
                                        memcpy(&r, nlmsg_data(h), sizeof(int));
                                r = r > 0 ? -r : r;
                                goto done;
                        }
                        if (h->nlmsg_type == NLMSG_OVERRUN)
                                return -ENOBUFS;
                        if (h->nlmsg_type < NLMSG_MIN_TYPE)
                                continue; /* NLMSG_NOOP */
                        if (handler && herr == 0)
                                herr = handler(h, userdata);
                        if (!until_ack && !(h->nlmsg_flags & NLM_F_MULTI)) {
                                r = 0;
                                goto done;
                        }
                }
        }
done:
        if (ret_intr)
                *ret_intr = intr;
        return r < 0 ? r : herr;
}

/* ---- parsing ---- */

/* A string attribute that is NUL-terminated within its payload. */
static const char *nla_str(const struct nlattr *a)
{
        int len;
        const char *s;

        if (!a)
                return NULL;
        len = nla_len(a);
        s = nla_data(a);
        if (len <= 0 || s[len - 1] != '\0')
                return NULL;
        return s;
}

/* Parse an RTM_NEWLINK message in place. -EBADMSG when it is not a usable link. */
static int link_view_parse(struct nlmsghdr *nlh, struct link_view *ret)
{
        struct nlattr *tb[IFLA_MAX + 1];
        struct link_view v = { .tun_type = -1, .br_stp_state = -1, .br_forward_delay = -1, .tun_persist = -1,
                               .tun_multi_queue = -1, .addr_gen_mode = -1 };
        const struct ifinfomsg *ifi;
        int r;

        if (nlh->nlmsg_type != RTM_NEWLINK)
                return -EBADMSG;
        r = nlmsg_parse(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL);
        if (r < 0)
                return -EBADMSG;
        ifi = nlmsg_data(nlh);
        v.ifindex = ifi->ifi_index;
        v.flags = ifi->ifi_flags;
        v.type = ifi->ifi_type;
        v.name = nla_str(tb[IFLA_IFNAME]);
        if (!v.name || v.ifindex <= 0)
                return -EBADMSG;
        v.alias = nla_str(tb[IFLA_IFALIAS]);
        if (tb[IFLA_MTU] && nla_len(tb[IFLA_MTU]) >= (int)sizeof(uint32_t))
                v.mtu = nla_get_u32(tb[IFLA_MTU]);
        if (tb[IFLA_ADDRESS]) {
                v.addr = nla_data(tb[IFLA_ADDRESS]);
                v.addr_len = nla_len(tb[IFLA_ADDRESS]);
        }
        if (tb[IFLA_OPERSTATE] && nla_len(tb[IFLA_OPERSTATE]) >= 1)
                v.operstate = nla_get_u8(tb[IFLA_OPERSTATE]);
        if (tb[IFLA_MASTER] && nla_len(tb[IFLA_MASTER]) >= (int)sizeof(uint32_t))
                v.master = (int)nla_get_u32(tb[IFLA_MASTER]);
        if (tb[IFLA_LINK] && nla_len(tb[IFLA_LINK]) >= (int)sizeof(uint32_t))
                v.link = (int)nla_get_u32(tb[IFLA_LINK]);
        v.link_netns = tb[IFLA_LINK_NETNSID] != NULL;
        if (tb[IFLA_GROUP] && nla_len(tb[IFLA_GROUP]) >= (int)sizeof(uint32_t))
                v.group = nla_get_u32(tb[IFLA_GROUP]);
        if (tb[IFLA_MIN_MTU] && nla_len(tb[IFLA_MIN_MTU]) >= (int)sizeof(uint32_t))
                v.min_mtu = nla_get_u32(tb[IFLA_MIN_MTU]);
        if (tb[IFLA_MAX_MTU] && nla_len(tb[IFLA_MAX_MTU]) >= (int)sizeof(uint32_t))
                v.max_mtu = nla_get_u32(tb[IFLA_MAX_MTU]);
        if (tb[IFLA_AF_SPEC]) {
                struct nlattr *af[AF_MAX + 1], *in6[IFLA_INET6_MAX + 1];

                if (nla_parse_nested(af, AF_MAX, tb[IFLA_AF_SPEC], NULL) == 0 && af[AF_INET6] &&
                    nla_parse_nested(in6, IFLA_INET6_MAX, af[AF_INET6], NULL) == 0 && in6[IFLA_INET6_ADDR_GEN_MODE] &&
                    nla_len(in6[IFLA_INET6_ADDR_GEN_MODE]) >= 1)
                        v.addr_gen_mode = nla_get_u8(in6[IFLA_INET6_ADDR_GEN_MODE]);
        }
        if (tb[IFLA_LINKINFO]) {
                struct nlattr *li[IFLA_INFO_MAX + 1];

                if (nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) == 0) {
                        v.kind = nla_str(li[IFLA_INFO_KIND]);
                        if (li[IFLA_INFO_DATA] && v.kind && streq(v.kind, "tun")) {
                                struct nlattr *td[IFLA_TUN_MAX + 1];

                                if (nla_parse_nested(td, IFLA_TUN_MAX, li[IFLA_INFO_DATA], NULL) == 0) {
                                        if (td[IFLA_TUN_TYPE] && nla_len(td[IFLA_TUN_TYPE]) >= 1)
                                                v.tun_type = nla_get_u8(td[IFLA_TUN_TYPE]);
                                        if (td[IFLA_TUN_PERSIST] && nla_len(td[IFLA_TUN_PERSIST]) >= 1)
                                                v.tun_persist = nla_get_u8(td[IFLA_TUN_PERSIST]);
                                        if (td[IFLA_TUN_MULTI_QUEUE] && nla_len(td[IFLA_TUN_MULTI_QUEUE]) >= 1)
                                                v.tun_multi_queue = nla_get_u8(td[IFLA_TUN_MULTI_QUEUE]);
                                        v.tun_owner = td[IFLA_TUN_OWNER] != NULL;
                                        v.tun_group = td[IFLA_TUN_GROUP] != NULL;
                                }
                        } else if (li[IFLA_INFO_DATA] && v.kind && streq(v.kind, "bridge")) {
                                struct nlattr *bd[IFLA_BR_MAX + 1];

                                if (nla_parse_nested(bd, IFLA_BR_MAX, li[IFLA_INFO_DATA], NULL) == 0) {
                                        if (bd[IFLA_BR_STP_STATE] && nla_len(bd[IFLA_BR_STP_STATE]) >= 4)
                                                v.br_stp_state = nla_get_u32(bd[IFLA_BR_STP_STATE]);
                                        if (bd[IFLA_BR_FORWARD_DELAY] && nla_len(bd[IFLA_BR_FORWARD_DELAY]) >= 4)
                                                v.br_forward_delay = nla_get_u32(bd[IFLA_BR_FORWARD_DELAY]);
                                }
                        }
                }
        }
        *ret = v;
        return 0;
}

/* A tun/tap device in tap mode (kind "tun", Ethernet framing). */
static bool view_is_tap(const struct link_view *v)
{
        return v->kind && streq(v->kind, "tun") && v->type == ARPHRD_ETHER &&
               (v->tun_type < 0 || v->tun_type == IFF_TAP);
}

/* The port UUID our mark names, or NULL when alias is not a mark. */
static const char *mark_port(const char *alias)
{
        size_t plen = strlen(TAP_MARK_PREFIX);

        if (!alias || strncmp(alias, TAP_MARK_PREFIX, plen) != 0 || !uuid_is_valid(alias + plen))
                return NULL;
        return alias + plen;
}

/* The shape tap_ensure() gives a tap, beyond the mark (a second proof,
 * see tap.h): persistent (a tap some process made for itself and holds is
 * not), single-queue, no TUNSETOWNER/TUNSETGROUP. Attaching (QEMU) may change
 * the PI and vnet-header flags, so those are not part of it. Attributes an
 * old kernel does not report are not held against the device. */
static bool view_has_our_tap_shape(const struct link_view *v)
{
        return view_is_tap(v) && v->tun_persist != 0 && v->tun_multi_queue != 1 && !v->tun_owner && !v->tun_group;
}

/* Our tap of exactly port_uuid, under exactly the derived name. */
static bool view_is_ours(const struct link_view *v, const char *name, const char *port_uuid)
{
        return view_has_our_tap_shape(v) && streq(v->name, name) && streq_ptr(mark_port(v->alias), port_uuid);
}

/* Our device of kind ("tun" = our tap) for exactly port_uuid, under exactly name. */
static bool view_is_ours_kind(const struct link_view *v, const char *name, const char *kind, const char *port_uuid)
{
        if (streq(kind, "tun"))
                return view_is_ours(v, name, port_uuid);
        if (!v->kind || !streq(v->kind, kind) || v->type != ARPHRD_ETHER || !streq(v->name, name))
                return false;
        /* marked for this port, or born ours and never marked (TAP_BORN_GROUP) */
        return streq_ptr(mark_port(v->alias), port_uuid) || (!v->alias && v->group == TAP_BORN_GROUP);
}

/* Fill *ret from a parsed link of ours. */
static void view_to_info(const struct link_view *v, const char *port_uuid, struct tap_info *ret)
{
        struct tap_info t = { 0 };

        (void)strscpy(t.name, v->name, sizeof(t.name));
        (void)strscpy(t.port_uuid, port_uuid, sizeof(t.port_uuid));
        t.ifindex = v->ifindex;
        t.mtu = v->mtu;
        if (v->addr && v->addr_len == 6)
                memcpy(t.mac, v->addr, 6);
        t.admin_up = v->flags & IFF_UP;
        t.carrier = v->flags & IFF_LOWER_UP;
        (void)strscpy(t.operstate, operstate_name(v->operstate), sizeof(t.operstate));
        t.master = v->master;
        (void)strscpy(t.ovs_dev, v->name, sizeof(t.ovs_dev)); /* plain until hybrid_fill() says otherwise */
        *ret = t;
}

/* ---- link requests ---- */

/* What on_get_reply() found. */
struct get_result {
        struct link_view view;  /* the parsed link (valid when r == 0) */
        int r;                  /* 0, or why the reply could not be parsed */
};

/* transact() handler of link_get(): parse the one reply. */
static int on_get_reply(struct nlmsghdr *nlh, void *userdata)
{
        struct get_result *g = userdata;

        g->r = link_view_parse(nlh, &g->view);
        return g->r;
}

/* RTM_GETLINK by name (ifindex 0) or by ifindex (name NULL), one round
 * trip. -ENOENT if absent. The view points into ctx->buf. */
static int link_get_req(struct tap_ctx *ctx, const char *name, int ifindex, struct link_view *ret)
{
        union {
                struct nlmsghdr nlh;
                uint8_t raw[NLMSG_SPACE(sizeof(struct ifinfomsg)) + ATTR_SPACE(IFNAMSIZ) +
                            ATTR_SPACE(sizeof(uint32_t))];
        } req = { 0 };
        uint32_t ext_mask = RTEXT_FILTER_SKIP_STATS;
        struct ifinfomsg *ifi;
        struct get_result g = { .r = -ENOENT };
        int r;

        req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(*ifi));
        req.nlh.nlmsg_type = RTM_GETLINK;
        ifi = NLMSG_DATA(&req.nlh);
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = name ? 0 : ifindex;
        if ((name && !put_attr(&req.nlh, sizeof(req), IFLA_IFNAME, name, strnlen(name, IFNAMSIZ - 1) + 1)) ||
            !put_attr(&req.nlh, sizeof(req), IFLA_EXT_MASK, &ext_mask, sizeof(ext_mask)))
                return -EINVAL;

        r = transact(ctx, &req.nlh, on_get_reply, &g, NULL);
        if (r == -ENODEV)
                return -ENOENT;
        if (r < 0)
                return r;
        if (g.r < 0)
                return g.r;
        *ret = g.view;
        return 0;
}

/* RTM_GETLINK by name. The kernel also resolves alternative names, so the
 * caller compares view->name with the name asked for. */
static int link_get(struct tap_ctx *ctx, const char *name, struct link_view *ret)
{
        return link_get_req(ctx, name, 0, ret);
}

/* Send a libnl-built message, wait for the kernel's ACK. */
static int msg_transact_ack(struct tap_ctx *ctx, struct nl_msg *msg)
{
        struct nlmsghdr *nlh = nlmsg_hdr(msg);

        nlh->nlmsg_flags |= NLM_F_ACK;
        return transact(ctx, nlh, NULL, NULL, NULL);
}

/* The one change request of a tap: MTU, MAC, mark, IFF_UP and, when
 * master > 0, IFLA_MASTER of ifindex (master 0 leaves the master alone).
 * cur_flags are the link's current flags (so nothing but IFF_UP changes). */
static int link_apply(struct tap_ctx *ctx, int ifindex, unsigned cur_flags, const uint8_t mac[6],
                      uint32_t mtu, const char *mark, int master)
{
        _cleanup_(rtnl_link_putp) struct rtnl_link *orig = NULL, *changes = NULL;
        _cleanup_(nl_addr_putp) struct nl_addr *addr = NULL;
        _cleanup_(nlmsg_freep) struct nl_msg *msg = NULL;
        int r;

        orig = rtnl_link_alloc();
        changes = rtnl_link_alloc();
        addr = nl_addr_build(AF_LLC, mac, 6);
        if (!orig || !changes || !addr)
                return -ENOMEM;
        rtnl_link_set_ifindex(orig, ifindex);
        /* libnl computes ifi_flags from orig's flags; give it the real ones
         * so a library without ifi_change support cannot clear any. */
        rtnl_link_set_flags(orig, cur_flags);
        rtnl_link_set_mtu(changes, mtu);
        rtnl_link_set_addr(changes, addr);
        rtnl_link_set_ifalias(changes, mark);
        rtnl_link_set_flags(changes, IFF_UP);
        if (master > 0)
                rtnl_link_set_master(changes, master);

        r = rtnl_link_build_change_request(orig, changes, 0, &msg);
        if (r < 0)
                return nlerr_to_errno(r);
        /* libnl 3.7 builds RTM_NEWLINK; a plain SETLINK is what we mean and
         * cannot be taken for a creation request. */
        nlmsg_hdr(msg)->nlmsg_type = RTM_SETLINK;
        return msg_transact_ack(ctx, msg);
}

/* RTM_DELLINK by ifindex (works for persistent taps). -ENOENT if gone. */
static int link_del(struct tap_ctx *ctx, int ifindex)
{
        _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
        _cleanup_(nlmsg_freep) struct nl_msg *msg = NULL;
        int r;

        link = rtnl_link_alloc();
        if (!link)
                return -ENOMEM;
        rtnl_link_set_ifindex(link, ifindex);
        r = rtnl_link_build_delete_request(link, &msg);
        if (r < 0)
                return nlerr_to_errno(r);
        r = msg_transact_ack(ctx, msg);
        return r == -ENODEV ? -ENOENT : r;
}

/* ---- hybrid devices: requests built in stack buffers ---- */

/* One link request in a stack buffer. */
union link_req {
        struct nlmsghdr nlh;
        uint8_t raw[LINK_REQ_SIZE];
};

/* Start a link request of type for ifindex (0: none, the name is an
 * attribute). Every one asks for the kernel's ACK. Returns its ifinfomsg. */
static struct ifinfomsg *link_req_init(union link_req *req, uint16_t type, uint16_t flags, int ifindex)
{
        struct ifinfomsg *ifi;

        memset(req, 0, sizeof(*req));
        req->nlh.nlmsg_len = NLMSG_LENGTH(sizeof(*ifi));
        req->nlh.nlmsg_type = type;
        req->nlh.nlmsg_flags = flags | NLM_F_ACK;
        ifi = NLMSG_DATA(&req->nlh);
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = ifindex;
        return ifi;
}

static bool put_u32(union link_req *req, uint16_t type, uint32_t v)
{
        return put_attr(&req->nlh, sizeof(*req), type, &v, sizeof(v)) != NULL;
}

static bool put_str(union link_req *req, uint16_t type, const char *s)
{
        return put_attr(&req->nlh, sizeof(*req), type, s, strlen(s) + 1) != NULL;
}

static struct nlattr *nest_begin(union link_req *req, uint16_t type)
{
        return put_attr(&req->nlh, sizeof(*req), type | NLA_F_NESTED, NULL, 0);
}

/* Create the bridge name, down, with MTU mtu, forward delay 0 and no STP, in
 * TAP_BORN_GROUP (what makes it ours until the mark is written).
 * NLM_F_EXCL: -EEXIST when the name was taken meanwhile. */
static int bridge_create(struct tap_ctx *ctx, const char *name, uint32_t mtu)
{
        union link_req req;
        struct nlattr *info, *data;

        (void)link_req_init(&req, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
        if (!put_str(&req, IFLA_IFNAME, name) || !put_u32(&req, IFLA_MTU, mtu) ||
            !(info = nest_begin(&req, IFLA_LINKINFO)) || !put_str(&req, IFLA_INFO_KIND, "bridge") ||
            !(data = nest_begin(&req, IFLA_INFO_DATA)) || !put_u32(&req, IFLA_BR_FORWARD_DELAY, 0) ||
            !put_u32(&req, IFLA_BR_STP_STATE, 0))
                return -EINVAL;
        end_nest(&req.nlh, data);
        end_nest(&req.nlh, info);
        if (!put_u32(&req, IFLA_GROUP, TAP_BORN_GROUP))
                return -EINVAL;
        return transact(ctx, &req.nlh, NULL, NULL, NULL);
}

/* Set one u32 bridge option (IFLA_BR_*) of an existing bridge. A change of
 * the bridge's own options goes through RTM_NEWLINK (changelink); without
 * NLM_F_CREATE it never creates anything. */
static int bridge_set_option(struct tap_ctx *ctx, int ifindex, uint16_t option, uint32_t value)
{
        union link_req req;
        struct nlattr *info, *data;

        (void)link_req_init(&req, RTM_NEWLINK, 0, ifindex);
        if (!(info = nest_begin(&req, IFLA_LINKINFO)) || !put_str(&req, IFLA_INFO_KIND, "bridge") ||
            !(data = nest_begin(&req, IFLA_INFO_DATA)) || !put_u32(&req, option, value))
                return -EINVAL;
        end_nest(&req.nlh, data);
        end_nest(&req.nlh, info);
        return transact(ctx, &req.nlh, NULL, NULL, NULL);
}

/* Create the veth pair name/peer, both down with MTU mtu, in TAP_BORN_GROUP. */
static int veth_create(struct tap_ctx *ctx, const char *name, const char *peer, uint32_t mtu)
{
        struct ifinfomsg peer_ifi = { .ifi_family = AF_UNSPEC };
        union link_req req;
        struct nlattr *info, *data, *p;

        (void)link_req_init(&req, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
        if (!put_str(&req, IFLA_IFNAME, name) || !put_u32(&req, IFLA_MTU, mtu) ||
            !(info = nest_begin(&req, IFLA_LINKINFO)) || !put_str(&req, IFLA_INFO_KIND, "veth") ||
            !(data = nest_begin(&req, IFLA_INFO_DATA)) ||
            /* VETH_INFO_PEER: an ifinfomsg, then the peer's attributes */
            !(p = put_attr(&req.nlh, sizeof(req), VETH_INFO_PEER, &peer_ifi, sizeof(peer_ifi))) ||
            !put_str(&req, IFLA_IFNAME, peer) || !put_u32(&req, IFLA_MTU, mtu) ||
            !put_u32(&req, IFLA_GROUP, TAP_BORN_GROUP))
                return -EINVAL;
        end_nest(&req.nlh, p);
        end_nest(&req.nlh, data);
        end_nest(&req.nlh, info);
        if (!put_u32(&req, IFLA_GROUP, TAP_BORN_GROUP))
                return -EINVAL;
        return transact(ctx, &req.nlh, NULL, NULL, NULL);
}

/* MTU, mark and, when master > 0, IFLA_MASTER of ifindex; no flag changes. */
static int dev_configure(struct tap_ctx *ctx, int ifindex, uint32_t mtu, const char *mark, int master)
{
        union link_req req;

        (void)link_req_init(&req, RTM_SETLINK, 0, ifindex);
        if (!put_u32(&req, IFLA_MTU, mtu) || !put_str(&req, IFLA_IFALIAS, mark) ||
            (master > 0 && !put_u32(&req, IFLA_MASTER, (uint32_t)master)))
                return -EINVAL;
        return transact(ctx, &req.nlh, NULL, NULL, NULL);
}

/* IPv6 addr_gen_mode none on ifindex, so it never gets a link-local address;
 * sent while the device is down (the kernel applies IFLA_AF_SPEC after the
 * flags of the same request). A device with an MTU below 1280, or on a host
 * without IPv6, has no IPv6 at all: nothing to do. */
static int dev_addr_gen(struct tap_ctx *ctx, int ifindex, uint32_t mtu, uint8_t mode)
{
        union link_req req;
        struct nlattr *af, *in6;
        int r;

        if (mtu < IPV6_MTU_MIN)
                return 0;
        (void)link_req_init(&req, RTM_SETLINK, 0, ifindex);
        if (!(af = nest_begin(&req, IFLA_AF_SPEC)) || !(in6 = nest_begin(&req, AF_INET6)) ||
            !put_attr(&req.nlh, sizeof(req), IFLA_INET6_ADDR_GEN_MODE, &mode, sizeof(mode)))
                return -EINVAL;
        end_nest(&req.nlh, in6);
        end_nest(&req.nlh, af);
        r = transact(ctx, &req.nlh, NULL, NULL, NULL);
        return r == -EAFNOSUPPORT ? 0 : r;
}

static int dev_addr_gen_none(struct tap_ctx *ctx, int ifindex, uint32_t mtu)
{
        return dev_addr_gen(ctx, ifindex, mtu, IN6_ADDR_GEN_MODE_NONE);
}

/* IFF_UP on ifindex; no other flag changes. */
static int dev_set_up(struct tap_ctx *ctx, int ifindex)
{
        union link_req req;
        struct ifinfomsg *ifi = link_req_init(&req, RTM_SETLINK, 0, ifindex);

        ifi->ifi_flags = IFF_UP;
        ifi->ifi_change = IFF_UP;
        return transact(ctx, &req.nlh, NULL, NULL, NULL);
}

/* ---- the devices of one port ---- */

/* Unicast and not all zero (the rule of mac_is_valid()). */
static bool mac_ok(const uint8_t mac[6])
{
        char s[MAC_STR_LEN + 1];

        mac_format(mac, s);
        return mac_is_valid(s);
}

/* The ownership mark of port_uuid. */
static int mark_for(const char *port_uuid, char ret[TAP_MARK_MAX])
{
        return xsnprintf(ret, TAP_MARK_MAX, "%s%s", TAP_MARK_PREFIX, port_uuid);
}

/* The names and the mark of one port's devices, all derived from its UUID. */
struct port_devs {
        char tap[IFNAME_MAX], qbr[IFNAME_MAX], qvb[IFNAME_MAX], qvo[IFNAME_MAX];
        char mark[TAP_MARK_MAX];
};

static int port_devs_init(const char *port_uuid, struct port_devs *ret)
{
        struct port_devs d;

        if (tap_name_from_port(port_uuid, d.tap) < 0 || port_dev_name(QBR_PREFIX, port_uuid, d.qbr) < 0 ||
            port_dev_name(QVB_PREFIX, port_uuid, d.qvb) < 0 || port_dev_name(QVO_PREFIX, port_uuid, d.qvo) < 0 ||
            mark_for(port_uuid, d.mark) < 0)
                return -EINVAL;
        *ret = d;
        return 0;
}

/* What one derived name stands for now. Scalars only: the view it was read
 * from is gone after the next request. */
struct dev_state {
        bool exists;              /* a device answers to the name (its own, or an altname) */
        bool ours;                /* exactly that name, the expected kind, our mark for this port */
        int ifindex;
        unsigned flags;           /* ifi_flags */
        int master;               /* IFLA_MASTER, 0 when none */
        int peer;                 /* a veth's peer in this namespace, 0 otherwise */
        int64_t br_stp_state;     /* bridge options, -1 when not reported */
        int64_t br_forward_delay;
        uint32_t mtu, min_mtu, max_mtu; /* current MTU and the kernel's limits (0: not reported) */
        uint8_t mac[6];           /* hardware address (has_mac) */
        bool has_mac;
        int addr_gen_mode;        /* IPv6 address generation, -1 when not reported */
        uint32_t group;           /* IFLA_GROUP (tap_delete_batch() sets it back after a failure) */
        int tx_csum;              /* qvb only: tx checksum offload 1 on / 0 off, -1 when not read */
        char name[IFNAME_MAX];    /* the name probed (set when exists) */
        char master_name[IFNAME_MAX]; /* the master's name and kind ("" when none or unreadable) */
        char master_kind[16];
};

/* Look name up as a device of kind for port_uuid. 0 (exists false when absent) or -errno. */
static int dev_probe(struct tap_ctx *ctx, const char *name, const char *kind, const char *port_uuid,
                     struct dev_state *ret)
{
        struct dev_state d = { .br_stp_state = -1, .br_forward_delay = -1, .addr_gen_mode = -1, .tx_csum = -1 };
        struct link_view v;
        int r;

        r = link_get(ctx, name, &v);
        if (r == -ENOENT) {
                *ret = d;
                return 0;
        }
        if (r < 0)
                return r;
        d.exists = true;
        (void)strscpy(d.name, name, sizeof(d.name));
        d.ours = view_is_ours_kind(&v, name, kind, port_uuid);
        d.ifindex = v.ifindex;
        d.flags = v.flags;
        d.master = v.master;
        d.peer = v.link_netns ? 0 : v.link;
        d.br_stp_state = v.br_stp_state;
        d.br_forward_delay = v.br_forward_delay;
        d.mtu = v.mtu;
        d.min_mtu = v.min_mtu;
        d.max_mtu = v.max_mtu;
        d.addr_gen_mode = v.addr_gen_mode;
        d.group = v.group;
        if (v.addr && v.addr_len == 6) {
                memcpy(d.mac, v.addr, 6);
                d.has_mac = true;
        }
        if (d.master > 0) {
                /* The view is gone after this request: everything above is copied. */
                r = link_get_req(ctx, NULL, d.master, &v);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r == 0) {
                        (void)strscpy(d.master_name, v.name, sizeof(d.master_name));
                        (void)strscpy(d.master_kind, v.kind ? v.kind : "", sizeof(d.master_kind));
                }
        }
        *ret = d;
        return 0;
}

/* The ifindex of a device this call has just created (still without our
 * mark): it must carry exactly name, be of kind and have no alias yet. */
static int created_ifindex(struct tap_ctx *ctx, const char *name, const char *kind, int *ret)
{
        struct link_view v;
        int r;

        r = link_get(ctx, name, &v);
        if (r < 0)
                return r == -ENOENT ? -EIO : r;
        if (!streq(v.name, name) || !v.kind || !streq(v.kind, kind) || v.alias || v.group != TAP_BORN_GROUP)
                return -EIO;
        *ret = v.ifindex;
        return 0;
}

/* ---- tx checksum offload (SIOCETHTOOL) ----
 *
 * Open vSwitch's userspace datapath (datapath_type netdev) reads its ports
 * with packet sockets and forwards frames as they are: a frame whose
 * checksum the sender left to the device (CHECKSUM_PARTIAL: a guest's
 * virtio-net with checksum offload, through the tap and qbr) leaves OVS with
 * that checksum unfinished, and the receiver drops it (ping passes, TCP does
 * not). With tx checksum offload off on qvb, the kernel finishes the checksum
 * (and segments GSO frames) where qbr sends the frame into the veth pair,
 * before OVS sees it. The ethtool ioctl names the device; ethtool_by_name()
 * checks afterwards that the name still is the ifindex checked before (a
 * rename in between needs CAP_NET_ADMIN in the namespace: tap.h's limit of
 * the mark). */

/* One SIOCETHTOOL command on the device name through a throw-away datagram
 * socket (any family reaches dev_ioctl(); AF_UNIX needs no network rule). */
static int ethtool_by_name(const char *name, struct ethtool_value *ev)
{
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = { 0 };

        if (fd < 0)
                return -errno;
        if (strscpy(ifr.ifr_name, name, sizeof(ifr.ifr_name)) < 0)
                return -EINVAL;
        ifr.ifr_data = (void *)ev;
        if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
                return -errno;
        return 0;
}

/* Whether tx checksum offload is on for name: 1, 0 or -errno. */
static int dev_tx_csum_get(const char *name)
{
        struct ethtool_value ev = { .cmd = ETHTOOL_GTXCSUM };
        int r;

        r = ethtool_by_name(name, &ev);
        if (r < 0)
                return r;
        return ev.data ? 1 : 0;
}

/* Turn tx checksum offload of name on or off (ETHTOOL_STXCSUM: every
 * checksum feature of the device, NETIF_F_CSUM_MASK and SCTP's; the kernel
 * then drops the segmentation offloads that need them), then check that the
 * device is still ifindex under that name. A changing request for
 * tap_ctx_fail_request(). */
static int dev_tx_csum_set(struct tap_ctx *ctx, const char *name, int ifindex, bool on)
{
        struct ethtool_value ev = { .cmd = ETHTOOL_STXCSUM, .data = on ? 1 : 0 };
        struct link_view v;
        int r;

        if (ctx->fail_countdown > 0 && --ctx->fail_countdown == 0)
                return -EIO; /* tap_ctx_fail_request() */
        r = ethtool_by_name(name, &ev);
        if (r < 0)
                return r;
        r = link_get_req(ctx, NULL, ifindex, &v);
        if (r < 0)
                return r == -ENOENT ? -EIO : r;
        return streq(v.name, name) ? 0 : -EIO;
}

/* The hybrid pieces of one port as found. */
struct hybrid_state {
        struct dev_state qbr, qvb, qvo;
};

static int hybrid_probe(struct tap_ctx *ctx, const struct port_devs *n, const char *port_uuid,
                        struct hybrid_state *ret)
{
        struct hybrid_state h;
        int r;

        if ((r = dev_probe(ctx, n->qbr, "bridge", port_uuid, &h.qbr)) < 0 ||
            (r = dev_probe(ctx, n->qvb, "veth", port_uuid, &h.qvb)) < 0 ||
            (r = dev_probe(ctx, n->qvo, "veth", port_uuid, &h.qvo)) < 0)
                return r;
        if (h.qvb.exists && h.qvb.ours) {
                r = dev_tx_csum_get(n->qvb);
                if (r < 0)
                        return r;
                h.qvb.tx_csum = r;
        }
        *ret = h;
        return 0;
}

/* Our veth pair: both ends ours and each other's peer. Only a whole pair is
 * ever touched (deleting one end deletes the other). */
static bool pair_is_ours(const struct hybrid_state *h)
{
        return h->qvb.ours && h->qvo.ours && h->qvb.peer == h->qvo.ifindex && h->qvo.peer == h->qvb.ifindex;
}

/* What on_port_msg() looks for and found. */
struct port_scan {
        int master;                 /* the bridge */
        int allow[2];               /* its ports that are ours (0: none) */
        char foreign[IFNAME_MAX];   /* the first other port, "" when none */
};

/* transact() handler of bridge_foreign_port(): a port of the bridge that is not ours. */
static int on_port_msg(struct nlmsghdr *nlh, void *userdata)
{
        struct port_scan *ps = userdata;
        struct link_view v;

        if (link_view_parse(nlh, &v) < 0 || v.master != ps->master || ps->foreign[0])
                return 0;
        if (v.ifindex == ps->allow[0] || v.ifindex == ps->allow[1])
                return 0;
        (void)strscpy(ps->foreign, v.name, sizeof(ps->foreign));
        return 0;
}

/* The ports of bridge ifindex (one dump, filtered by the kernel on
 * IFLA_MASTER and again here): 0 when every port is allow1 or allow2,
 * -EBUSY with the first other one named in ctx->detail. */
static int bridge_foreign_port(struct tap_ctx *ctx, const char *bridge, int ifindex, int allow1, int allow2)
{
        for (int attempt = 0; attempt < DUMP_RETRIES; attempt++) {
                union {
                        struct nlmsghdr nlh;
                        uint8_t raw[NLMSG_SPACE(sizeof(struct ifinfomsg)) + 2 * ATTR_SPACE(sizeof(uint32_t))];
                } req = { 0 };
                uint32_t ext_mask = RTEXT_FILTER_SKIP_STATS, master = (uint32_t)ifindex;
                struct port_scan ps = { .master = ifindex, .allow = { allow1, allow2 } };
                bool intr = false;
                int r;

                req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
                req.nlh.nlmsg_type = RTM_GETLINK;
                req.nlh.nlmsg_flags = NLM_F_DUMP;
                ((struct ifinfomsg *)NLMSG_DATA(&req.nlh))->ifi_family = AF_UNSPEC;
                if (!put_attr(&req.nlh, sizeof(req), IFLA_EXT_MASK, &ext_mask, sizeof(ext_mask)) ||
                    !put_attr(&req.nlh, sizeof(req), IFLA_MASTER, &master, sizeof(master)))
                        return -EINVAL;
                r = transact(ctx, &req.nlh, on_port_msg, &ps, &intr);
                if (r < 0)
                        return r;
                if (intr)
                        continue;
                if (!ps.foreign[0])
                        return 0;
                detail_set(ctx, "%s is a port of %s, which is ours and would be deleted; remove %s from it first",
                           ps.foreign, bridge, ps.foreign);
                return -EBUSY;
        }
        return -EAGAIN;
}

/* A master a port of ours may have without being "held elsewhere":
 * Open vSwitch's kernel datapath (kind "openvswitch", where the openvswitch
 * module plugs a tap or qvo). */
static bool master_is_ovs(const struct dev_state *d)
{
        return streq(d->master_kind, "openvswitch");
}

/* Remove what of the hybrid pieces is ours: the pair as a whole, then qbr
 * (its ports, the tap among them, are released). Foreign ones stay.
 * *ret_removed (may be NULL): something was removed. */
static int hybrid_remove(struct tap_ctx *ctx, const struct hybrid_state *h, bool *ret_removed)
{
        bool removed = false;
        int r;

        if (pair_is_ours(h)) {
                r = link_del(ctx, h->qvb.ifindex); /* qvo goes with it */
                if (r < 0 && r != -ENOENT)
                        return r;
                removed |= r == 0;
        }
        if (h->qbr.ours) {
                r = link_del(ctx, h->qbr.ifindex);
                if (r < 0 && r != -ENOENT)
                        return r;
                removed |= r == 0;
        }
        if (ret_removed)
                *ret_removed = removed;
        return 0;
}

/* Fill the hybrid members of t (a tap of ours read with view_to_info()):
 * hybrid when t's master is our qbr, whose port qvb is one end of our pair.
 * A tap without master costs no lookup. */
static int hybrid_fill(struct tap_ctx *ctx, const struct port_devs *n, struct tap_info *t)
{
        struct dev_state qbr, qvb, qvo;
        int r;

        t->hybrid = false;
        t->bridge[0] = '\0';
        (void)strscpy(t->ovs_dev, t->name, sizeof(t->ovs_dev));
        if (t->master <= 0)
                return 0;
        r = dev_probe(ctx, n->qbr, "bridge", t->port_uuid, &qbr);
        if (r < 0 || !qbr.ours || qbr.ifindex != t->master)
                return r;
        r = dev_probe(ctx, n->qvb, "veth", t->port_uuid, &qvb);
        if (r < 0 || !qvb.ours || qvb.master != qbr.ifindex)
                return r;
        r = dev_probe(ctx, n->qvo, "veth", t->port_uuid, &qvo);
        if (r < 0 || !qvo.ours || qvb.peer != qvo.ifindex || qvo.peer != qvb.ifindex)
                return r;
        t->hybrid = true;
        (void)strscpy(t->bridge, n->qbr, sizeof(t->bridge));
        (void)strscpy(t->ovs_dev, n->qvo, sizeof(t->ovs_dev));
        return 0;
}

/* Our tap of the port with its hybrid members. -ENOENT if absent or not ours. */
static int info_read(struct tap_ctx *ctx, const struct port_devs *n, const char *port_uuid, struct tap_info *ret)
{
        struct tap_info t;
        struct link_view v;
        int r;

        r = link_get(ctx, n->tap, &v);
        if (r < 0)
                return r;
        if (!view_is_ours(&v, n->tap, port_uuid))
                return -ENOENT;
        view_to_info(&v, port_uuid, &t);
        r = hybrid_fill(ctx, n, &t);
        if (r < 0)
                return r;
        *ret = t;
        return 0;
}

/* Ifindexes of the devices one tap_create call made (0: not made by it). */
struct made {
        int tap, qbr, qvb;
};

/* Remove what this call made, newest first (deleting qvb takes qvo). */
static void made_undo(struct tap_ctx *ctx, const struct made *m)
{
        if (m->tap > 0)
                (void)link_del(ctx, m->tap);
        if (m->qvb > 0)
                (void)link_del(ctx, m->qvb);
        if (m->qbr > 0)
                (void)link_del(ctx, m->qbr);
}

/* Create or converge the tap: MTU, MAC, mark, IFF_UP and, when master > 0,
 * IFLA_MASTER, in one change request. cur is what dev_probe() found under
 * the name. *ret_made is set to the tap's ifindex when this call made it. */
static int tap_ensure(struct tap_ctx *ctx, const struct port_devs *n, const char *port_uuid, const uint8_t mac[6],
                      uint32_t mtu, int master, const struct dev_state *cur, int *ret_made)
{
        _cleanup_close_ int fd = -1;
        struct ifreq ifr = { 0 };
        struct link_view v;
        int ifindex, r;

        if (cur->exists)
                return cur->ours ? link_apply(ctx, cur->ifindex, cur->flags, mac, mtu, n->mark, master) : -EEXIST;

        fd = open(TUN_DEV_PATH, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = strscpy(ifr.ifr_name, n->tap, sizeof(ifr.ifr_name));
        if (r < 0)
                return r;
        ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL); /* 0x8000: the sign bit of the short field */
        if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
                if (errno != EBUSY)
                        return -errno;
                /* The name appeared since we looked: decide again, once. */
                r = link_get(ctx, n->tap, &v);
                if (r < 0)
                        return r == -ENOENT ? -EBUSY : r;
                if (!view_is_ours(&v, n->tap, port_uuid))
                        return -EEXIST;
                if (master > 0 && v.master > 0 && v.master != master)
                        return -EBUSY;
                return link_apply(ctx, v.ifindex, v.flags, mac, mtu, n->mark, master);
        }

        /* The tap exists now and disappears with fd until TUNSETPERSIST. */
        r = link_get(ctx, n->tap, &v);
        if (r < 0)
                return r;
        if (!view_is_tap(&v) || !streq(v.name, n->tap))
                return -EIO;
        ifindex = v.ifindex;
        r = link_apply(ctx, ifindex, v.flags, mac, mtu, n->mark, master);
        if (r < 0)
                return r;
        if (ioctl(fd, TUNSETPERSIST, 1) < 0)
                return -errno;
        /* Persistent from here on: the caller undoes it explicitly. */
        *ret_made = ifindex;
        return 0;
}

/* The hybrid plumbing of a port whose devices were probed into tap and h.
 * What it creates is recorded in *made (the caller undoes it on failure). */
static int hybrid_plumb(struct tap_ctx *ctx, const struct port_devs *n, const char *port_uuid, const uint8_t mac[6],
                        uint32_t mtu, bool netdev, const struct dev_state *tap, const struct hybrid_state *h,
                        struct made *made)
{
        int qbr, qvb, qvo, csum, r;

        /* plan_check() has refused what is not ours or held elsewhere. */
        qbr = h->qbr.exists ? h->qbr.ifindex : 0;

        if (!h->qbr.exists) {
                r = bridge_create(ctx, n->qbr, mtu);
                if (r < 0)
                        return r;
                r = created_ifindex(ctx, n->qbr, "bridge", &made->qbr);
                if (r < 0)
                        return r;
                qbr = made->qbr;
        } else {
                /* Ours already: converge its options (STP off first, the kernel refuses
                 * a forward delay of 0 while STP is on). */
                if (h->qbr.br_stp_state != 0 && (r = bridge_set_option(ctx, qbr, IFLA_BR_STP_STATE, 0)) < 0)
                        return r;
                if (h->qbr.br_forward_delay != 0 && (r = bridge_set_option(ctx, qbr, IFLA_BR_FORWARD_DELAY, 0)) < 0)
                        return r;
        }
        if (!h->qvb.exists) {
                r = veth_create(ctx, n->qvb, n->qvo, mtu);
                if (r < 0)
                        return r;
                r = created_ifindex(ctx, n->qvb, "veth", &made->qvb);
                if (r < 0)
                        return r;
                qvb = made->qvb;
                r = created_ifindex(ctx, n->qvo, "veth", &qvo);
                if (r < 0)
                        return r;
        } else {
                qvb = h->qvb.ifindex;
                qvo = h->qvo.ifindex;
        }

        /* The veth ends: MTU, mark, qvb into qbr, no IPv6 addresses; then the tap into qbr. */
        if ((r = dev_configure(ctx, qvb, mtu, n->mark, qbr)) < 0 || (r = dev_configure(ctx, qvo, mtu, n->mark, 0)) < 0 ||
            (r = dev_addr_gen_none(ctx, qvb, mtu)) < 0 || (r = dev_addr_gen_none(ctx, qvo, mtu)) < 0)
                return r;
        /* qvb's tx checksum offload: off for the userspace datapath, the kernel's default (on) otherwise. */
        csum = made->qvb > 0 ? dev_tx_csum_get(n->qvb) : h->qvb.tx_csum; /* existing: read by hybrid_probe() */
        if (made->qvb > 0 && csum < 0)
                return csum;
        if (csum != !netdev && (r = dev_tx_csum_set(ctx, n->qvb, qvb, !netdev)) < 0)
                return r;
        r = tap_ensure(ctx, n, port_uuid, mac, mtu, qbr, tap, &made->tap);
        if (r < 0)
                return r;
        /* The bridge last: an MTU set on it explicitly stays (no adjusting to its ports). */
        if ((r = dev_configure(ctx, qbr, mtu, n->mark, 0)) < 0 || (r = dev_addr_gen_none(ctx, qbr, mtu)) < 0)
                return r;
        if ((r = dev_set_up(ctx, qbr)) < 0 || (r = dev_set_up(ctx, qvb)) < 0 || (r = dev_set_up(ctx, qvo)) < 0)
                return r;
        return 0;
}

/* Everything that would make tap_create refuse, decided before anything
 * changes: devices not ours, MTUs outside a device's limits, ports of ours
 * held by a foreign master, and (plain) foreign ports in our qbr, which a
 * plain call deletes. 0, or -EEXIST / -ERANGE / -EBUSY with ctx->detail. */
static int plan_check(struct tap_ctx *ctx, const struct port_devs *n, uint32_t mtu, bool hybrid,
                      const struct dev_state *tap, const struct hybrid_state *h)
{
        const struct {
                const struct dev_state *d;
                const char *name;
        } carry[] = { { tap, n->tap }, { &h->qbr, n->qbr }, { &h->qvb, n->qvb }, { &h->qvo, n->qvo } };
        int qbr = h->qbr.exists && h->qbr.ours ? h->qbr.ifindex : 0;

        if (tap->exists && !tap->ours) {
                detail_set(ctx, "%s is not a tap of nova-hypervisor for this port", n->tap);
                return -EEXIST;
        }
        if (hybrid && h->qbr.exists && !h->qbr.ours) {
                detail_set(ctx, "%s is not a bridge of nova-hypervisor for this port", n->qbr);
                return -EEXIST;
        }
        if (hybrid && (h->qvb.exists || h->qvo.exists) && !pair_is_ours(h)) {
                detail_set(ctx, "%s/%s are not a veth pair of nova-hypervisor for this port", n->qvb, n->qvo);
                return -EEXIST;
        }
        /* The kernel's limits of every device that exists and will get the MTU
         * (new devices: TAP_MTU_MIN..TAP_MTU_MAX, checked by the caller). */
        for (size_t i = 0; i < ARRAY_SIZE(carry); i++) {
                const struct dev_state *d = carry[i].d;
                if (!d->exists || !d->ours || (!hybrid && i > 0))
                        continue;
                if ((d->min_mtu && mtu < d->min_mtu) || (d->max_mtu && mtu > d->max_mtu)) {
                        detail_set(ctx, "mtu %u: %s allows %u..%u", mtu, carry[i].name, d->min_mtu, d->max_mtu);
                        return -ERANGE;
                }
        }
        /* Ports of ours held by a foreign master: changing them would change
         * the master too (a Linux bridge follows its ports' MTU). */
        if (tap->exists && tap->master > 0 && tap->master != qbr && (hybrid || !master_is_ovs(tap))) {
                detail_set(ctx, "%s is a port of %s (%s), which is not ours", n->tap,
                           tap->master_name[0] ? tap->master_name : "another device",
                           tap->master_kind[0] ? tap->master_kind : "unknown kind");
                return -EBUSY;
        }
        if (hybrid && h->qvb.exists && h->qvb.master > 0 && h->qvb.master != qbr) {
                detail_set(ctx, "%s is a port of %s, which is not ours", n->qvb,
                           h->qvb.master_name[0] ? h->qvb.master_name : "another device");
                return -EBUSY;
        }
        if (hybrid && h->qvo.exists && h->qvo.master > 0 && !master_is_ovs(&h->qvo)) {
                detail_set(ctx, "%s is a port of %s (%s), not of Open vSwitch", n->qvo,
                           h->qvo.master_name[0] ? h->qvo.master_name : "another device",
                           h->qvo.master_kind[0] ? h->qvo.master_kind : "unknown kind");
                return -EBUSY;
        }
        if (hybrid && h->qbr.exists && h->qbr.master > 0) {
                detail_set(ctx, "%s is a port of %s, which is not ours", n->qbr,
                           h->qbr.master_name[0] ? h->qbr.master_name : "another device");
                return -EBUSY;
        }
        if (!hybrid && h->qbr.exists && h->qbr.ours)
                return bridge_foreign_port(ctx, n->qbr, h->qbr.ifindex, tap->exists ? tap->ifindex : 0,
                                           pair_is_ours(h) ? h->qvb.ifindex : 0);
        return 0;
}

/* Set back what tap_create may have changed on a device of ours that
 * existed before: up state, MTU, MAC, master (when restore_master; 0
 * releases), IPv6 address generation, bridge options. Best effort: a
 * failure here cannot be reported better than the one being rolled back. */
static void dev_restore(struct tap_ctx *ctx, const struct dev_state *d, bool is_bridge, bool restore_master)
{
        union link_req req;
        struct ifinfomsg *ifi;

        if (!d->exists || !d->ours)
                return;
        ifi = link_req_init(&req, RTM_SETLINK, 0, d->ifindex);
        ifi->ifi_flags = d->flags & IFF_UP;
        ifi->ifi_change = IFF_UP;
        if ((d->mtu && !put_u32(&req, IFLA_MTU, d->mtu)) ||
            (d->has_mac && !put_attr(&req.nlh, sizeof(req), IFLA_ADDRESS, d->mac, 6)) ||
            (restore_master && !put_u32(&req, IFLA_MASTER, (uint32_t)d->master)))
                return;
        (void)transact(ctx, &req.nlh, NULL, NULL, NULL);
        if (d->tx_csum >= 0 && d->name[0]) {
                struct ethtool_value ev = { .cmd = ETHTOOL_STXCSUM, .data = (uint32_t)d->tx_csum };
                (void)ethtool_by_name(d->name, &ev);
        }
        if (d->addr_gen_mode >= 0)
                (void)dev_addr_gen(ctx, d->ifindex, d->mtu, (uint8_t)d->addr_gen_mode);
        if (is_bridge) {
                /* forward delay first: the kernel checks it against STP being on */
                if (d->br_forward_delay >= 0)
                        (void)bridge_set_option(ctx, d->ifindex, IFLA_BR_FORWARD_DELAY, (uint32_t)d->br_forward_delay);
                if (d->br_stp_state >= 0)
                        (void)bridge_set_option(ctx, d->ifindex, IFLA_BR_STP_STATE, (uint32_t)d->br_stp_state);
        }
}

/* Roll back a failed tap_create on the devices that existed before it
 * (what it created is removed by made_undo() first). The bridge comes
 * last, so its explicit MTU is the one that stays. */
static void port_restore(struct tap_ctx *ctx, const struct dev_state *tap, const struct hybrid_state *h)
{
        int qbr = h->qbr.exists && h->qbr.ours ? h->qbr.ifindex : 0;

        dev_restore(ctx, tap, false, tap->master == 0 || tap->master == qbr);
        if (pair_is_ours(h)) {
                dev_restore(ctx, &h->qvb, false, h->qvb.master == 0 || h->qvb.master == qbr);
                dev_restore(ctx, &h->qvo, false, false);
        }
        dev_restore(ctx, &h->qbr, true, false);
}

/* ---- public API ---- */

int tap_create(struct tap_ctx *ctx, const char *port_uuid, const uint8_t mac[6], uint32_t mtu, bool hybrid,
               struct tap_info *ret)
{
        const struct tap_options o = { .hybrid = hybrid };

        return tap_create_opts(ctx, port_uuid, mac, mtu, &o, ret);
}

int tap_create_opts(struct tap_ctx *ctx, const char *port_uuid, const uint8_t mac[6], uint32_t mtu,
                    const struct tap_options *opts, struct tap_info *ret)
{
        bool hybrid = opts && opts->hybrid;
        struct port_devs n;
        struct dev_state tap;
        struct hybrid_state h;
        struct made made = { 0 };
        struct tap_info info;
        uint8_t tap_mac[6];
        int r;

        if (!ctx || !mac || port_devs_init(port_uuid, &n) < 0 || !mac_ok(mac))
                return -EINVAL;
        ctx->detail[0] = '\0';
        if (mtu < TAP_MTU_MIN || mtu > TAP_MTU_MAX) {
                detail_set(ctx, "mtu %u: a tap allows %u..%u", mtu, TAP_MTU_MIN, TAP_MTU_MAX);
                return -ERANGE;
        }
        /* mac is the guest's; the tap gets fe + its last five bytes (names.h says why) */
        tap_mac_from_port(mac, tap_mac);

        r = dev_probe(ctx, n.tap, "tun", port_uuid, &tap);
        if (r < 0)
                return r;
        if (tap.exists && !tap.ours) {
                detail_set(ctx, "%s is not a tap of nova-hypervisor for this port", n.tap);
                return -EEXIST;
        }
        r = hybrid_probe(ctx, &n, port_uuid, &h);
        if (r < 0)
                return r;
        r = plan_check(ctx, &n, mtu, hybrid, &tap, &h);
        if (r < 0)
                return r;

        if (hybrid) {
                r = hybrid_plumb(ctx, &n, port_uuid, tap_mac, mtu, opts->netdev_datapath, &tap, &h, &made);
        } else {
                /* Plain: the tap as it is (its master, e.g. OVS's, untouched) and
                 * no hybrid pieces of ours left. */
                r = tap_ensure(ctx, &n, port_uuid, tap_mac, mtu, 0, &tap, &made.tap);
                if (r >= 0)
                        r = hybrid_remove(ctx, &h, NULL);
        }
        if (r >= 0)
                r = info_read(ctx, &n, port_uuid, &info);
        if (r >= 0 && info.hybrid != hybrid)
                r = -EIO; /* the kernel does not show what was just set up */
        if (r < 0) {
                made_undo(ctx, &made);
                port_restore(ctx, &tap, &h);
                return r;
        }
        if (ret)
                *ret = info;
        return 0;
}

int tap_delete_prepare(struct tap_ctx *ctx, const char *port_uuid, struct tap_delete_plan *ret)
{
        struct tap_delete_plan plan = { 0 };
        struct port_devs n;
        struct dev_state tap;
        struct hybrid_state h;
        int r;

        if (!ctx || !ret || port_devs_init(port_uuid, &n) < 0)
                return -EINVAL;
        ctx->detail[0] = '\0';
        r = dev_probe(ctx, n.tap, "tun", port_uuid, &tap);
        if (r < 0)
                return r;
        if (tap.exists && !tap.ours) {
                detail_set(ctx, "%s is not a tap of nova-hypervisor for this port", n.tap);
                return -EPERM;
        }
        r = hybrid_probe(ctx, &n, port_uuid, &h);
        if (r < 0)
                return r;
        /* A device of someone else in our bridge: deleting the bridge would release it. */
        if (h.qbr.exists && h.qbr.ours) {
                r = bridge_foreign_port(ctx, n.qbr, h.qbr.ifindex, tap.exists ? tap.ifindex : 0,
                                        pair_is_ours(&h) ? h.qvb.ifindex : 0);
                if (r < 0)
                        return r;
        }
        /* By index: the device checked is the device deleted, even if the
         * name moved in between. The pair as a whole (qvo goes with qvb). */
        if (pair_is_ours(&h)) {
                plan.ifindex[plan.n] = h.qvb.ifindex;
                plan.group[plan.n++] = h.qvb.group;
        }
        if (h.qbr.ours) {
                plan.ifindex[plan.n] = h.qbr.ifindex;
                plan.group[plan.n++] = h.qbr.group;
        }
        if (tap.exists) {
                plan.ifindex[plan.n] = tap.ifindex;
                plan.group[plan.n++] = tap.group;
        }
        if (plan.n == 0)
                return -ENOENT;
        (void)strscpy(plan.port_uuid, port_uuid, sizeof(plan.port_uuid));
        plan.result = 0;
        *ret = plan;
        return 0;
}

/* IFLA_GROUP of ifindex. -ENOENT when the device is gone. */
static int dev_set_group(struct tap_ctx *ctx, int ifindex, uint32_t group)
{
        union link_req req;
        int r;

        (void)link_req_init(&req, RTM_SETLINK, 0, ifindex);
        if (!put_u32(&req, IFLA_GROUP, group))
                return -EINVAL;
        r = transact(ctx, &req.nlh, NULL, NULL, NULL);
        return r == -ENODEV ? -ENOENT : r;
}

/* A device group no device has, for one batch: random, never 0 (the
 * default group, which the kernel refuses to delete anyway). */
static uint32_t batch_group(struct tap_ctx *ctx)
{
        uint32_t g = 0;

        if (ctx->delete_group)
                return ctx->delete_group;
        while (g == 0 || g == TAP_BORN_GROUP)
                if (getrandom(&g, sizeof(g), 0) != (ssize_t)sizeof(g))
                        g = (uint32_t)now_usec() ^ ((uint32_t)getpid() << 16);
        return g;
}

/* What on_group_msg() looks for and found. */
struct group_scan {
        uint32_t group;
        const struct tap_delete_plan *plans;
        size_t n_plans;
        int stranger;               /* ifindex of the first device in the group that is not ours, 0 when none */
};

static bool plans_hold(const struct tap_delete_plan *plans, size_t n, int ifindex)
{
        for (size_t i = 0; i < n; i++)
                for (unsigned k = 0; k < plans[i].n; k++)
                        if (plans[i].in_group[k] && plans[i].ifindex[k] == ifindex)
                                return true;
        return false;
}

/* transact() handler of group_only_ours(). */
static int on_group_msg(struct nlmsghdr *nlh, void *userdata)
{
        struct group_scan *gs = userdata;
        struct link_view v;

        if (gs->stranger || link_view_parse(nlh, &v) < 0 || v.group != gs->group)
                return 0;
        if (!plans_hold(gs->plans, gs->n_plans, v.ifindex))
                gs->stranger = v.ifindex;
        return 0;
}

/* One dump: 0 when every device in group is one the plans put there,
 * -EEXIST (the device named in ctx->detail) when another one is. */
static int group_only_ours(struct tap_ctx *ctx, uint32_t group, const struct tap_delete_plan *plans, size_t n)
{
        for (int attempt = 0; attempt < DUMP_RETRIES; attempt++) {
                union {
                        struct nlmsghdr nlh;
                        uint8_t raw[NLMSG_SPACE(sizeof(struct ifinfomsg)) + ATTR_SPACE(sizeof(uint32_t))];
                } req = { 0 };
                uint32_t ext_mask = RTEXT_FILTER_SKIP_STATS;
                struct group_scan gs = { .group = group, .plans = plans, .n_plans = n };
                bool intr = false;
                int r;

                req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
                req.nlh.nlmsg_type = RTM_GETLINK;
                req.nlh.nlmsg_flags = NLM_F_DUMP;
                ((struct ifinfomsg *)NLMSG_DATA(&req.nlh))->ifi_family = AF_UNSPEC;
                if (!put_attr(&req.nlh, sizeof(req), IFLA_EXT_MASK, &ext_mask, sizeof(ext_mask)))
                        return -EINVAL;
                r = transact(ctx, &req.nlh, on_group_msg, &gs, &intr);
                if (r < 0)
                        return r;
                if (intr)
                        continue;
                if (!gs.stranger)
                        return 0;
                detail_set(ctx, "device %d joined device group %u meanwhile", gs.stranger, group);
                return -EEXIST;
        }
        return -EAGAIN;
}

/* RTM_DELLINK of every device in group: one unregister_netdevice_many(), so
 * the kernel waits for RCU once for all of them. */
static int group_delete(struct tap_ctx *ctx, uint32_t group)
{
        union link_req req;

        (void)link_req_init(&req, RTM_DELLINK, 0, 0);
        if (!put_u32(&req, IFLA_GROUP, group))
                return -EINVAL;
        return transact(ctx, &req.nlh, NULL, NULL, NULL);
}

/* Set the groups of the devices plan put in the batch's group back (best
 * effort: the port's deletion already failed, this only keeps it as it was). */
static void plan_restore_groups(struct tap_ctx *ctx, struct tap_delete_plan *p)
{
        for (unsigned k = 0; k < p->n; k++)
                if (p->in_group[k]) {
                        (void)dev_set_group(ctx, p->ifindex[k], p->group[k]);
                        p->in_group[k] = false;
                }
}

/* The slow way, one device at a time (one RCU wait each), for the ports of
 * a batch whose group could not be deleted at once. */
static void plan_delete_each(struct tap_ctx *ctx, struct tap_delete_plan *p)
{
        bool removed = false;

        for (unsigned k = 0; k < p->n; k++) {
                int r;

                if (!p->in_group[k])
                        continue;
                r = link_del(ctx, p->ifindex[k]);
                if (r < 0 && r != -ENOENT) {
                        p->result = r;
                        plan_restore_groups(ctx, p);
                        return;
                }
                removed |= r == 0;
                p->in_group[k] = false;
        }
        if (!removed)
                p->result = -ENOENT;
}

void tap_delete_batch(struct tap_ctx *ctx, struct tap_delete_plan *plans, size_t n)
{
        size_t grouped = 0;
        uint32_t group;
        int r;

        if (!ctx || n == 0)
                return;
        group = batch_group(ctx);
        for (size_t i = 0; i < n; i++) {
                struct tap_delete_plan *p = &plans[i];
                unsigned in = 0;

                p->result = 0;
                for (unsigned k = 0; k < p->n && k < ARRAY_SIZE(p->ifindex); k++) {
                        p->in_group[k] = false;
                        r = dev_set_group(ctx, p->ifindex[k], group);
                        if (r == -ENOENT)
                                continue; /* gone meanwhile */
                        if (r < 0) {
                                p->result = r;
                                plan_restore_groups(ctx, p);
                                in = 0;
                                break;
                        }
                        p->in_group[k] = true;
                        in++;
                }
                if (p->result == 0 && in == 0)
                        p->result = -ENOENT; /* every device went away meanwhile */
                grouped += in;
        }
        if (grouped == 0)
                return;
        ctx->detail[0] = '\0';
        r = group_only_ours(ctx, group, plans, n);
        if (r == 0)
                r = group_delete(ctx, group);
        if (r == 0 || r == -ENODEV) {
                for (size_t i = 0; i < n; i++)
                        for (unsigned k = 0; k < plans[i].n; k++)
                                plans[i].in_group[k] = false;
                return;
        }
        /* A device not ours in the group (it is left alone), or the kernel
         * refused the group: each port on its own, each with its own result. */
        for (size_t i = 0; i < n; i++)
                if (plans[i].result == 0)
                        plan_delete_each(ctx, &plans[i]);
}

int tap_delete(struct tap_ctx *ctx, const char *port_uuid)
{
        struct tap_delete_plan plan;
        int r;

        r = tap_delete_prepare(ctx, port_uuid, &plan);
        if (r < 0)
                return r;
        tap_delete_batch(ctx, &plan, 1);
        return plan.result;
}

int tap_get(struct tap_ctx *ctx, const char *port_uuid, struct tap_info *ret)
{
        struct port_devs n;

        if (!ctx || !ret || port_devs_init(port_uuid, &n) < 0)
                return -EINVAL;
        return info_read(ctx, &n, port_uuid, ret);
}

/* tap_list()'s growing result. */
struct list_acc {
        struct tap_info *items; /* malloc'd, cap entries */
        size_t n, cap;          /* used and allocated entries */
};

/* transact() handler of tap_list(): keep the links that are our taps. */
static int on_dump_msg(struct nlmsghdr *nlh, void *userdata)
{
        struct list_acc *acc = userdata;
        char expect[IFNAME_MAX];
        struct link_view v;
        const char *uuid;

        if (link_view_parse(nlh, &v) < 0)
                return 0; /* not a link we can read: certainly not ours */
        uuid = mark_port(v.alias);
        if (!uuid || tap_name_from_port(uuid, expect) < 0 || !view_is_ours(&v, expect, uuid))
                return 0;
        if (acc->n == acc->cap) {
                size_t cap = acc->cap ? acc->cap * 2 : 16;
                struct tap_info *p = reallocarray(acc->items, cap, sizeof(*p));
                if (!p)
                        return -ENOMEM;
                acc->items = p;
                acc->cap = cap;
        }
        view_to_info(&v, uuid, &acc->items[acc->n++]);
        return 0;
}

/* After the dump: the hybrid members of the taps that have a master. */
static int list_fill_hybrid(struct tap_ctx *ctx, struct tap_info *items, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                struct tap_info *t = &items[i];
                struct port_devs d;
                int r;

                if (t->master <= 0)
                        continue;
                if (port_devs_init(t->port_uuid, &d) < 0)
                        return -EINVAL; /* unreachable: the uuid came from a valid mark */
                r = hybrid_fill(ctx, &d, t);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int info_by_port(const void *a, const void *b)
{
        return strcmp(((const struct tap_info *)a)->port_uuid, ((const struct tap_info *)b)->port_uuid);
}

int tap_list_page(struct tap_ctx *ctx, const char *after, size_t max, struct tap_info **ret, size_t *ret_n,
                  size_t *ret_total, size_t *ret_remaining)
{
        if (!ctx || !ret || !ret_n || !ret_total || !ret_remaining)
                return -EINVAL;

        for (int attempt = 0; attempt < DUMP_RETRIES; attempt++) {
                union {
                        struct nlmsghdr nlh;
                        uint8_t raw[NLMSG_SPACE(sizeof(struct ifinfomsg)) + ATTR_SPACE(sizeof(uint32_t)) +
                                    ATTR_SPACE(0) + ATTR_SPACE(sizeof("tun"))];
                } req = { 0 };
                uint32_t ext_mask = RTEXT_FILTER_SKIP_STATS;
                struct list_acc acc = { 0 };
                size_t first = 0, total, remaining, n;
                struct nlattr *nest;
                bool intr = false;
                int r;

                req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
                req.nlh.nlmsg_type = RTM_GETLINK;
                req.nlh.nlmsg_flags = NLM_F_DUMP;
                ((struct ifinfomsg *)NLMSG_DATA(&req.nlh))->ifi_family = AF_UNSPEC;
                /* Kernel-side filter on kind "tun" (we check again ourselves). */
                if (!put_attr(&req.nlh, sizeof(req), IFLA_EXT_MASK, &ext_mask, sizeof(ext_mask)) ||
                    !(nest = put_attr(&req.nlh, sizeof(req), IFLA_LINKINFO | NLA_F_NESTED, NULL, 0)) ||
                    !put_attr(&req.nlh, sizeof(req), IFLA_INFO_KIND, "tun", sizeof("tun")))
                        return -EINVAL;
                end_nest(&req.nlh, nest);

                r = transact(ctx, &req.nlh, on_dump_msg, &acc, &intr);
                if (r >= 0 && !intr && acc.n > 0) {
                        qsort(acc.items, acc.n, sizeof(acc.items[0]), info_by_port);
                        while (after && first < acc.n && strcmp(acc.items[first].port_uuid, after) <= 0)
                                first++;
                }
                total = acc.n;
                remaining = acc.n - first;
                n = remaining < max ? remaining : max;
                if (r >= 0 && !intr) {
                        if (n > 0 && first > 0) /* the page to the front; only its taps need the lookups */
                                memmove(acc.items, acc.items + first, n * sizeof(acc.items[0]));
                        acc.n = n;
                        r = list_fill_hybrid(ctx, acc.items, acc.n);
                }
                if (r < 0 || intr) {
                        free(acc.items);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (acc.n == 0) {
                        free(acc.items);
                        acc.items = NULL;
                }
                *ret = acc.items;
                *ret_n = acc.n;
                *ret_total = total;
                *ret_remaining = remaining;
                return 0;
        }
        return -EAGAIN;
}

int tap_list(struct tap_ctx *ctx, struct tap_info **ret, size_t *ret_n)
{
        size_t total, remaining;

        return tap_list_page(ctx, NULL, SIZE_MAX, ret, ret_n, &total, &remaining);
}
