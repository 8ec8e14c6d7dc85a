/* firewall-control.c - nova-firewall-control: the module that owns the
 * firewall-control plug. It keeps CAP_NET_ADMIN only and talks to nftables
 * through libnftables (netlink; no iptables, no nft binary, no modprobe).
 *
 * It keeps a picture of its tables (fw_snap), read from the kernel at start
 * and after any failed batch, and updated in place after each commit, so
 * that a port change is one small batch whatever the number of ports:
 * ports live in shard tables of at most FW_SHARD_PORTS (the kernel checks a
 * whole table at each commit that adds rules to it), a change is one
 * libnftnl netlink batch (fw-nl.c: nothing read from the kernel first),
 * existing chains are flushed and written again, set elements are only
 * touched when the port's MAC or addresses change, and a group's chains are
 * rewritten in another shard only when they differ. Skeletons and repairs
 * are netlink batches too (a new shard goes in the batch of its first ports;
 * a restore is one batch). The picture is read with the kernel's nf_tables
 * dumps, decoded as they stream in (fw_snap_read); libnftables only purges. */
#include "fw-nft.h"
#include "fw-nl.h"
#include "fw-protocol.h"
#include "fw-state.h"
#include "log.h"
#include "modrt.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#define BRNF_IPV4 "/proc/sys/net/bridge/bridge-nf-call-iptables"
#define BRNF_IPV6 "/proc/sys/net/bridge/bridge-nf-call-ip6tables"

struct fw_group_req {
        char id[UUID_STR_LEN + 1];
        struct secrule rules[PORT_MAX_RULES];
        size_t n_rules;
        uint64_t digest;   /* secrule_digest(rules) */
};

#define NL_BUF_SIZE (64 * 1024) /* one recv() of a dump (fw_snap_read) or of a batch's answer */
#define GC_CANDIDATES_MAX ((FW_MAX_BATCH + 1) * PORT_MAX_GROUPS)

/* One shard's copy of a request group to (re)write. */
struct fw_group_write {
        size_t req;          /* index in fw->groups */
        unsigned shard;
        bool half;           /* one of its chains exists alone: deleted first */
};

/* What build_apply decided, for snap_after_apply. */
struct fw_plan {
        unsigned port_shard[FW_MAX_BATCH];            /* the shard of each request port */
        bool new_shard[FW_MAX_SHARDS];                /* shards the batch creates */
        int delta[FW_MAX_BATCH_GROUPS][FW_MAX_SHARDS]; /* references each request group gains in each shard */
        struct fw_group_write writes[FW_MAX_BATCH_GROUPS * FW_MAX_SHARDS];
        size_t n_writes;
        size_t gc[GC_CANDIDATES_MAX];                 /* positions in snap.groups the batch deletes */
        size_t n_gc;
};

struct fw {
        struct modrt *rt;
        bool serving;                    /* past init: a rebuild now is news for the core */
        struct nft_ctx *nft;
        struct fw_snap snap;
        bool snap_valid;
        struct fw_nl nl;                 /* netlink batches: every change (skeletons, repairs, ports, groups) */
        int nl_fd;                       /* their socket (-1: not open yet); kept for the module's life: it owns the guard */
        /* the fail-closed guard (fw-nl.h): a bridge table owned by nl_fd */
        uint32_t guard_flags;            /* FW_GUARD_F_* of the guard in place; 0: none (off, or not available) */
        struct fw_tables tables;         /* which of our tables existed at the last full read (snap_reload) */
        bool tables_read;                /* ...there was one */
        bool guard_pending;              /* the guard is still to be set up (no full read at start) */
        /* one request's decoded groups and ports (static size: no allocation per call) */
        struct fw_group_req groups[FW_MAX_BATCH_GROUPS];
        size_t n_groups;
        struct fw_port ports[FW_MAX_BATCH];
        size_t n_ports;
        struct fw_plan plan;
        char rule_texts[PORT_MAX_RULES][SECRULE_TEXT_MAX]; /* one group's rules, canonical (read_group) */
        uint8_t nl_buf[NL_BUF_SIZE];
        uint32_t nl_seq;
        /* the guard: others' changes to our tables, as the kernel publishes them */
        struct mnl_socket *watch_sk;     /* NETLINK_NETFILTER, member of NFNLGRP_NFTABLES; NULL: not watching */
        struct fw_watch watch;           /* the transaction being read */
        uint32_t watch_seq;              /* of our last GETGEN on it */
        uint32_t watch_gen;              /* generation of the last transaction seen on it, ours included (0: unknown) */
        bool test_deaf;                  /* NOVA_FW_TEST_DEAF: the first quiet commit had company (tests) */
        struct fw_watch_commit damage;   /* what others did since the last restore (merged) */
        bool damage_unknown;             /* notifications were lost (ENOBUFS) or malformed */
        bool damage_deaf;                /* someone else committed while we were not listening (quiet_end) */
        uint64_t damage_usec;            /* when the first of them was read */
        /* where a restore's time goes, for its log line (CLOCK_REALTIME, us,
         * to compare with packet timestamps; netlink gives its datagrams none) */
        uint64_t txn_read_rt;            /* we read the first datagram of the transaction being read (0: none yet) */
        uint64_t damage_read_rt;         /* the same for the first foreign transaction in damage (0: unknown) */
        struct restore_times {
                uint64_t close_build, close_commit;     /* batch 1: building it; sending it until the kernel's ACK */
                uint64_t rebuild_build, rebuild_commit; /* batch 2: the same */
                unsigned close_msgs, rebuild_msgs;
                size_t close_len, rebuild_len;
                uint64_t closed_rt;                     /* batch 1 acknowledged (CLOCK_REALTIME, us) */
        } times;
        unsigned restores;               /* restores done (logged) */
        uint64_t burst_start;            /* start of the current burst of restores */
        unsigned burst;                  /* restores in it */
        uint64_t paused_until;           /* no restore before (now_usec), 0: not paused */
};

/* More restores than this within GUARD_BURST_USEC: someone keeps changing our
 * tables (a fight nobody wins), or our own commits are not recognised (a pid
 * namespace: the kernel names the committing task by its global pid). The
 * guard then pauses for GUARD_PAUSE_USEC (what happens meanwhile is kept and
 * restored once, when the pause ends); the core's sync still repairs. */
#define GUARD_BURST_MAX 10
#define GUARD_BURST_USEC 2000000ULL
#define GUARD_PAUSE_USEC 30000000ULL

static uint64_t realtime_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

/* ---- libnftables and the table dump ---- */

/* A context whose output and errors are captured in buffers; NULL on failure. */
static struct nft_ctx *nft_open(void)
{
        struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);

        if (nft && (nft_ctx_buffer_output(nft) < 0 || nft_ctx_buffer_error(nft) < 0)) {
                nft_ctx_free(nft);
                return NULL;
        }
        return nft;
}

/* Run a batch; on failure the first lines of nftables' message go to err. */
static int nft_run(struct fw *fw, const char *text, char *err, size_t errlen)
{
        const char *msg;
        int r;

        nft_ctx_output_set_flags(fw->nft, 0);
        r = nft_run_cmd_from_buffer(fw->nft, text);
        msg = nft_ctx_get_error_buffer(fw->nft);
        if (r == 0)
                return 0;
        log_warn("nftables refused a batch of %zu bytes: %.300s", strlen(text), msg ? msg : "");
        if (getenv("NOVA_FW_TRACE"))
                log_warn("batch:\n%s", text);
        if (err && errlen) {
                proto_text_printf(err, errlen, "nftables refused the change: %s", msg && msg[0] ? msg : "(no message)");
                char *nl = strchr(err, '\n');
                if (nl)
                        *nl = '\0';
        }
        return -EIO;
}

/* Send a built batch on our netlink socket (opened on first use). */
#define QUIET_MIN_MSGS 64 /* see "big batches" below */
static bool quiet_begin(struct fw *fw, uint32_t *gen);
static void quiet_end(struct fw *fw, uint32_t gen, int r);

static int nl_commit(struct fw *fw, struct fw_nl *b, char *err, size_t errlen)
{
        uint32_t gen = 0;
        bool quiet;
        int r;

        if (fw->nl_fd < 0 && (fw->nl_fd = fw_nl_socket()) < 0) {
                r = fw->nl_fd;
                fw->nl_fd = -1;
                proto_text_printf(err, errlen, "cannot open a netfilter netlink socket: %s", strerror(-r));
                return r;
        }
        /* The socket is never replaced, whatever the error (EMSGSIZE sent nothing; after
         * ENOBUFS fw_nl_commit skips the leftovers by their sequence numbers): it owns the
         * guard, which the kernel deletes, or orphans, when its owner closes. */
        quiet = fw->watch_sk && !b->err && b->n_msgs >= QUIET_MIN_MSGS && quiet_begin(fw, &gen);
        if (quiet && fw_nl_set_genid(b, gen) < 0) {
                quiet_end(fw, gen, -ENOMEM);
                quiet = false;
        }
        r = fw_nl_commit(fw->nl_fd, b, fw->nl_buf, sizeof(fw->nl_buf), err, errlen);
        if (quiet) {
                quiet_end(fw, gen, r);
                if (r == -ERESTART && fw_nl_set_genid(b, 0) == 0) /* someone committed first: again, listening */
                        r = fw_nl_commit(fw->nl_fd, b, fw->nl_buf, sizeof(fw->nl_buf), err, errlen);
        }
        if (r < 0)
                log_warn("%s", err);
        return r;
}

/* fw_snap_read's side of the dumps: a NETLINK_NETFILTER socket of its own
 * (one per read; a dump cut short by an error leaves its answer behind, so
 * the socket is then replaced), fed through fw->nl_buf. */
struct dump_io {
        struct fw *fw;
        int fd;          /* -1: open on the next request */
};

static int dump_io(void *userdata, const void *req, size_t len, struct fw_dump *d)
{
        struct dump_io *io = userdata;
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        int r = 0;

        if (io->fd < 0 && (io->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER)) < 0)
                return -errno;
        if (sendto(io->fd, req, len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) != (ssize_t)len)
                r = -errno;
        while (r == 0) {
                struct iovec iov = { .iov_base = io->fw->nl_buf, .iov_len = sizeof(io->fw->nl_buf) };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
                ssize_t n = recvmsg(io->fd, &mh, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        r = -errno;
                else if (n == 0 || (mh.msg_flags & MSG_TRUNC))
                        r = -EBADMSG;
                else
                        r = fw_dump_feed(d, io->fw->nl_buf, (size_t)n);
        }
        if (r < 0) {
                close(io->fd);
                io->fd = -1;
        }
        return r;
}

/* Our tables as the kernel holds them (only: the shards to read, NULL: all). */
static int snap_read(struct fw *fw, const bool *only, struct fw_snap *ret, struct fw_tables *ret_tables)
{
        struct dump_io io = { .fw = fw, .fd = -1 };
        int r = fw_snap_read(dump_io, &io, &fw->nl_seq, only, ret, ret_tables);

        if (io.fd >= 0)
                close(io.fd);
        return r;
}

/* Read our tables back into fw->snap (netlink dumps, decoded as they come). */
static int snap_reload(struct fw *fw)
{
        struct fw_snap s;
        int r;

        fw->snap_valid = false;
        fw_snap_free(&fw->snap); /* never hold the old picture next to the new one */
        if ((r = snap_read(fw, NULL, &s, &fw->tables)) < 0)
                return r;
        fw->tables_read = true;
        fw->snap = s;
        fw->snap_valid = true;
        return 0;
}

/* br_netfilter must hand bridged IPv4/IPv6 to the inet hooks, else nothing
 * we install ever sees a packet of a hybrid port. */
static int brnf_ensure(char *err, size_t errlen)
{
        static const char *const files[] = { BRNF_IPV4, BRNF_IPV6 };

        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                _cleanup_free_ char *v = NULL;
                size_t len;
                if (read_file_bounded(files[i], 16, &v, &len) < 0) {
                        (void)snprintf(err, errlen,
                                       "br_netfilter is not loaded (%s is missing): bridged traffic would bypass "
                                       "the security groups; connecting the firewall-control plug loads it "
                                       "(sudo snap connect nova-hypervisor:firewall-control)", files[i]);
                        return -ENOPKG;
                }
                if (v[0] == '1')
                        continue;
                _cleanup_close_ int fd = open(files[i], O_WRONLY | O_CLOEXEC);
                if (fd < 0 || write_all(fd, "1\n", 2) < 0) {
                        (void)snprintf(err, errlen, "cannot enable %s: %s", files[i], strerror(errno));
                        return -EPERM;
                }
                log_info("enabled %s", files[i]);
        }
        return 0;
}

/* Delete exactly the elements the snapshot says exist for sp. */
static struct fw_elements old_elements(const struct fw_snap_port *sp)
{
        return (struct fw_elements){ .dispatch = sp->has_dispatch, .tap = sp->has_tap, .mac = sp->has_mac,
                                     .guard = sp->has_guard, .ll = sp->has_ll };
}

static void nl_old_elements_delete(struct fw_nl *b, const struct fw_snap_port *sp)
{
        const struct fw_elements e = old_elements(sp);

        fw_nl_port_elements_delete(b, sp->shard, &sp->port, &e);
}

/* A netlink batch numbered after our last message. */
static struct fw_nl *nl_begin(struct fw *fw)
{
        fw_nl_begin(&fw->nl, fw->nl_seq + 1);
        return &fw->nl;
}

/* The repair batch of a snapshot that is not ready: a damaged bridge table
 * takes everything of ours with it (every port's anti-spoofing is gone);
 * else each damaged shard of ours is dropped with its ports' bridge elements,
 * and shard 0 is made again. Bridge elements of ports without a chain (their
 * shard table was deleted while the module was not running, so no port
 * record names them) would let their ports' frames cross with no rule to
 * judge them: the bridge table is then made again, in the same transaction,
 * with the elements of the ports that keep their chains only (fail closed
 * until the core's sync applies the others). Foreign tables are never named.
 * 0 or -ENOMEM. */
static int build_repair(struct fw *fw, struct fw_nl *b)
{
        const struct fw_snap *s = &fw->snap;
        bool all = !s->bridge_complete;
        bool orphans = !all && s->orphan_elements > 0;
        _cleanup_free_ const struct fw_port **kept = NULL;
        _cleanup_free_ unsigned *kept_shards = NULL;
        size_t n_kept = 0;

        if (orphans) {
                kept = calloc(s->n_ports ? s->n_ports : 1, sizeof(*kept));
                kept_shards = calloc(s->n_ports ? s->n_ports : 1, sizeof(*kept_shards));
                if (!kept || !kept_shards)
                        return -ENOMEM;
        }
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++) {
                const struct fw_snap_shard *sh = &s->shards[k];
                if (!sh->ours || (sh->complete && !all))
                        continue;
                log_warn("nftables table inet %s%s%u is damaged: rebuilding it", FW_TABLE, k ? "_" : "", k);
                for (size_t i = 0; !all && !orphans && i < s->n_ports; i++)
                        if (s->ports[i].shard == k)
                                nl_old_elements_delete(b, &s->ports[i]);
                fw_nl_drop_shard(b, k);
        }
        if (all && s->bridge_exists) {
                log_warn("nftables table bridge %s is damaged: rebuilding every table", FW_TABLE);
                fw_nl_drop_bridge(b);
        }
        if (all || !s->shards[0].complete)
                fw_nl_shard_skeleton(b, 0);
        if (all)
                fw_nl_bridge_skeleton(b);
        if (orphans) {
                for (size_t i = 0; i < s->n_ports; i++) {
                        const struct fw_snap_port *sp = &s->ports[i];
                        const struct fw_snap_shard *sh = &s->shards[sp->shard];
                        if (sp->has_chain && sh->ours && sh->complete) {
                                kept[n_kept] = &sp->port;
                                kept_shards[n_kept++] = sp->shard;
                        }
                }
                log_warn("nftables table bridge %s holds %u element(s) of ports without rules: rebuilding it with "
                         "the %zu port(s) that have theirs",
                         FW_TABLE, s->orphan_elements, n_kept);
                fw_nl_drop_bridge(b);
                fw_nl_bridge_skeleton(b);
                fw_nl_bridge_elements(b, kept, kept_shards, n_kept);
        }
        return 0;
}

static void guard_setup(struct fw *fw);

/* Nothing to repair: the tables ready, no element of a port without rules. */
static bool snap_sound(const struct fw_snap *s) { return fw_snap_ready(s) && s->orphan_elements == 0; }

/* Our tables exist, are ours and complete. A damaged skeleton of ours is
 * rebuilt (the core's reconcile then re-applies the ports it lost). */
static int ensure_ready(struct fw *fw, char *err, size_t errlen)
{
        const struct fw_snap *s = &fw->snap;
        bool inet_foreign, bridge_foreign, fresh;
        int r;

        if ((r = brnf_ensure(err, errlen)) < 0)
                return r;
        if (fw->snap_valid && snap_sound(s))
                return 0;
        if ((r = snap_reload(fw)) < 0) {
                (void)snprintf(err, errlen, "cannot read the nftables ruleset: %s", strerror(-r));
                return r;
        }
        if (fw->guard_pending)
                guard_setup(fw);
        if (snap_sound(s))
                return 0;
        inet_foreign = s->shards[0].exists && !s->shards[0].ours;
        bridge_foreign = s->bridge_exists && !s->bridge_ours;
        if (inet_foreign || bridge_foreign) {
                (void)snprintf(err, errlen,
                               "an nftables table named %s exists (%s%s%s) but was not created by nova-hypervisor; "
                               "not touching it",
                               FW_TABLE, inet_foreign ? "inet" : "", inet_foreign && bridge_foreign ? ", " : "",
                               bridge_foreign ? "bridge" : "");
                return -EEXIST;
        }
        fresh = !s->shards[0].exists && !s->bridge_exists;
        struct fw_nl *b = nl_begin(fw);
        r = build_repair(fw, b);
        if (r < 0) {
                (void)snprintf(err, errlen, "cannot plan the repair of our nftables tables: %s", strerror(-r));
                return r;
        }
        r = nl_commit(fw, b, err, errlen);
        fw->nl_seq = b->seq;
        if (r < 0)
                return r;
        if ((r = snap_reload(fw)) < 0)
                return r;
        if (!snap_sound(s)) {
                (void)snprintf(err, errlen, "nftables tables were created but do not read back complete");
                return -EIO;
        }
        if (fw->serving) {
                /* The rules of the ports in what was rebuilt are gone: the core re-applies them. */
                struct proto_writer *w = malloc(sizeof(*w));
                if (w) {
                        pw_init(w, PROTO_EVENT, 0, 0, "ruleset_rebuilt");
                        (void)modrt_send_event(fw->rt, w);
                        free(w);
                }
        } else if (!fresh)
                log_warn("rebuilt damaged nftables tables at start");
        return 0;
}

/* ---- the fail-closed guard ----
 *
 * The restore below shortens the time a flushed ruleset leaves the ports
 * open; the guard removes it. A bridge table created with NFT_TABLE_F_OWNER
 * belongs to the netlink socket that made it: `nft flush ruleset` leaves it,
 * and every other process's change or delete of it is refused (EPERM). It
 * drops every frame across a port bridge that our filter did not accept
 * (fw-nl.h: the accept rules set FW_ACCEPT_MARK), and every frame from a port
 * that the bridge table's anti-spoofing check did not (FW_VM_MARK). So when
 * someone flushes the ruleset, or deletes or flushes any table or chain of ours, the ports
 * are closed at once, in the same commit, until the restore has put the
 * filter back. With NFT_TABLE_F_PERSIST (Linux 6.9) the table stays when the
 * module exits (orphaned: the ports stay filtered, or closed if the filter
 * goes meanwhile), and the next run adopts it by making it again with both
 * flags. Without PERSIST it goes with the module: today's filter alone, as
 * before the guard. NOVA_FW_GUARD=owner uses OWNER alone, =off no guard (the
 * restore alone, as on kernels before 5.12). */

/* What NOVA_FW_GUARD asks for: flags to try in order (0 ends the list). */
static void guard_wanted(uint32_t ret[3])
{
        const char *v = getenv("NOVA_FW_GUARD");

        ret[0] = ret[1] = ret[2] = 0;
        if (v && streq(v, "off"))
                return;
        if (v && streq(v, "owner")) {
                ret[0] = FW_GUARD_F_OWNER;
                return;
        }
        if (v && v[0] && !streq(v, "auto"))
                log_warn("NOVA_FW_GUARD=%.20s is not auto, owner or off: using auto", v);
        ret[0] = FW_GUARD_F_OWNER | FW_GUARD_F_PERSIST;
        ret[1] = FW_GUARD_F_OWNER;
}

/* Make the guard, with the first flags the kernel takes, in one transaction
 * with the removal of an orphan left by an earlier run (adopted first when
 * it is to be persistent again): whatever was done to it while it had no
 * owner, what is in place after the commit is exactly ours, and no frame
 * passes unguarded meanwhile. With NOVA_FW_GUARD=off an orphan is removed.
 * A table of that name that is not an orphan is another process's (EPERM
 * on anything) or a foreign one: left alone, no guard. Logs the mode in use.
 * Reads fw->tables: call after a full read (ensure_ready at start). */
static void guard_setup(struct fw *fw)
{
        const struct fw_tables *t = &fw->tables;
        bool orphan = t->guard && (t->guard_flags & (FW_GUARD_F_OWNER | FW_GUARD_F_PERSIST)) == FW_GUARD_F_PERSIST;
        uint32_t want[3];
        char err[256] = "";
        int r = 0;

        if (!fw->tables_read) { /* whether an orphan is there is not known: at the next full read */
                if (!fw->guard_pending)
                        log_warn("fail-closed guard: not set up yet (our tables could not be read)");
                fw->guard_pending = true;
                return;
        }
        fw->guard_pending = false;
        guard_wanted(want);
        if (t->guard && !orphan) {
                log_err("fail-closed guard: not available: table bridge " FW_GUARD_TABLE " exists (flags 0x%x) and "
                        "is not one an earlier run left (another process owns it, or it is not ours); a flushed "
                        "ruleset leaves the ports open until the tables are restored",
                        t->guard_flags);
                return;
        }
        if (!want[0]) {
                if (orphan) {
                        struct fw_nl *b = nl_begin(fw);
                        fw_nl_guard_drop(b);
                        r = nl_commit(fw, b, err, sizeof(err));
                        fw->nl_seq = b->seq;
                        log_info("fail-closed guard: removed the one an earlier run left: %s", r ? err : "done");
                }
                log_info("fail-closed guard: off (NOVA_FW_GUARD=off): a flushed ruleset leaves the ports open until "
                         "the tables are restored");
                return;
        }
        for (size_t i = 0; want[i]; i++) {
                struct fw_nl *b = nl_begin(fw);
                if (orphan && (want[i] & FW_GUARD_F_PERSIST))
                        fw_nl_guard_touch(b, want[i]); /* adopted: ours from here on in this transaction */
                if (orphan)
                        fw_nl_guard_drop(b);
                fw_nl_guard(b, want[i]);
                r = nl_commit(fw, b, err, sizeof(err));
                fw->nl_seq = b->seq;
                if (r == 0) {
                        fw->guard_flags = want[i];
                        log_info("fail-closed guard: table bridge " FW_GUARD_TABLE " owned by this module%s%s",
                                 want[i] & FW_GUARD_F_PERSIST
                                         ? ", persistent (kept, orphaned, when the module stops; adopted at start)"
                                         : ", not persistent (it goes when the module stops)",
                                 orphan ? "; replaced the one an earlier run left" : "");
                        return;
                }
                if (r != -EOPNOTSUPP)
                        break;
        }
        log_err("fail-closed guard: not available (%s): %s; a flushed ruleset leaves the ports open until the "
                "tables are restored",
                r == -EOPNOTSUPP ? "this kernel has no owned tables (Linux 5.12)" : "the kernel refused it", err);
}

/* ---- decoding requests ---- */

static int read_ips(const struct proto_value *list, struct fw_port *p, char *err, size_t errlen)
{
        char ll[IP_STR_MAX];

        ipv6_link_local_from_mac(p->mac, ll);
        p->n_ips = 0;
        for (const struct proto_value *v = list ? list->child : NULL; v; v = v->next) {
                char canon[IP_STR_MAX];
                if (ip_canonical(v->v.s, canon) < 0) {
                        (void)snprintf(err, errlen, "ips: '%s' is not an IP address", v->v.s);
                        return -EINVAL;
                }
                if (streq(canon, ll))
                        continue; /* always allowed anyway */
                for (size_t i = 0; i < p->n_ips; i++)
                        if (streq(p->ips[i], canon)) {
                                (void)snprintf(err, errlen, "ips: %s is listed twice", canon);
                                return -EINVAL;
                        }
                memcpy(p->ips[p->n_ips++], canon, IP_STR_MAX);
        }
        return 0;
}

static int read_group(struct fw *fw, const struct proto_value *g, char *err, size_t errlen)
{
        struct fw_group_req *gr;
        const char *id = proto_get_str(g, "id", "");

        for (size_t i = 0; i < fw->n_groups; i++)
                if (streq(fw->groups[i].id, id)) {
                        (void)snprintf(err, errlen, "groups: %s is listed twice", id);
                        return -EINVAL;
                }
        if (fw->n_groups == FW_MAX_BATCH_GROUPS) {
                (void)snprintf(err, errlen, "groups: more than %d", FW_MAX_BATCH_GROUPS);
                return -EINVAL;
        }
        const struct proto_value *objs = proto_get(g, "rules"), *texts = proto_get(g, "rule_texts");
        if (!objs == !texts) {
                (void)snprintf(err, errlen, "group %s: give either rules or rule_texts", id);
                return -EINVAL;
        }
        gr = &fw->groups[fw->n_groups];
        memcpy(gr->id, id, UUID_STR_LEN + 1);
        gr->n_rules = 0;
        for (const struct proto_value *r = (objs ? objs : texts)->child; r; r = r->next) {
                char why[160];
                if (gr->n_rules == PORT_MAX_RULES) {
                        (void)snprintf(err, errlen, "group %s: more than %d rules", id, PORT_MAX_RULES);
                        return -EINVAL;
                }
                int bad = texts ? secrule_parse(r->v.s, &gr->rules[gr->n_rules])
                                : fw_rule_read(r, &gr->rules[gr->n_rules], why, sizeof(why));
                if (bad < 0 && texts)
                        (void)snprintf(why, sizeof(why), "not a rule in canonical text");
                if (bad < 0) {
                        (void)snprintf(err, errlen, "group %s rule %zu: %s", id, gr->n_rules + 1, why);
                        return -EINVAL;
                }
                /* duplicates by canonical text, each rule formatted once */
                if (secrule_format(&gr->rules[gr->n_rules], fw->rule_texts[gr->n_rules], SECRULE_TEXT_MAX) < 0) {
                        (void)snprintf(err, errlen, "group %s rule %zu: cannot be written", id, gr->n_rules + 1);
                        return -EINVAL;
                }
                for (size_t k = 0; k < gr->n_rules; k++)
                        if (streq(fw->rule_texts[k], fw->rule_texts[gr->n_rules])) {
                                (void)snprintf(err, errlen, "group %s rule %zu: duplicate of rule %zu", id,
                                               gr->n_rules + 1, k + 1);
                                return -EINVAL;
                        }
                gr->n_rules++;
        }
        gr->digest = secrule_digest(gr->rules, gr->n_rules);
        fw->n_groups++;
        return 0;
}

static bool group_in_request(struct fw *fw, const char *id)
{
        for (size_t i = 0; i < fw->n_groups; i++)
                if (streq(fw->groups[i].id, id))
                        return true;
        return false;
}

static int read_port(struct fw *fw, const struct proto_value *o, bool ids_only, char *err, size_t errlen)
{
        struct fw_port *p = &fw->ports[fw->n_ports];
        const char *uuid = proto_get_str(o, "port_uuid", "");
        int r;

        for (size_t i = 0; i < fw->n_ports; i++)
                if (streq(fw->ports[i].uuid, uuid)) {
                        (void)snprintf(err, errlen, "ports: %s is listed twice", uuid);
                        return -EINVAL;
                }
        *p = (struct fw_port){ 0 };
        memcpy(p->uuid, uuid, UUID_STR_LEN + 1);
        if (mac_parse(proto_get_str(o, "mac", ""), p->mac) < 0)
                return -EINVAL;
        if ((r = read_ips(proto_get(o, "ips"), p, err, errlen)) < 0)
                return r;
        for (const struct proto_value *g = proto_get(o, "groups")->child; g; g = g->next) {
                const char *id = ids_only ? g->v.s : proto_get_str(g, "id", "");
                if (ids_only && !group_in_request(fw, id)) {
                        (void)snprintf(err, errlen, "port %s: group %s is not in this request's groups", uuid, id);
                        return -EINVAL;
                }
                for (size_t i = 0; i < p->n_groups; i++)
                        if (streq(p->groups[i], id)) {
                                (void)snprintf(err, errlen, "port %s: group %s is listed twice", uuid, id);
                                return -EINVAL;
                        }
                memcpy(p->groups[p->n_groups++], id, UUID_STR_LEN + 1);
        }
        size_t total = 0;
        for (size_t i = 0; i < p->n_groups; i++)
                for (size_t k = 0; k < fw->n_groups; k++)
                        if (streq(fw->groups[k].id, p->groups[i]))
                                total += fw->groups[k].n_rules;
        if (total > PORT_MAX_RULES) {
                (void)snprintf(err, errlen, "port %s: its groups have %zu rules, at most %d", uuid, total,
                               PORT_MAX_RULES);
                return -EINVAL;
        }
        fw->n_ports++;
        return 0;
}

/* ---- applying ---- */

static bool port_same_elements(const struct fw_snap_port *sp, const struct fw_port *p)
{
        if (sp->tampered || !sp->has_dispatch || memcmp(sp->port.mac, p->mac, 6) != 0 ||
            sp->port.n_ips != p->n_ips)
                return false;
        for (size_t i = 0; i < p->n_ips; i++) {
                bool found = false;
                for (size_t k = 0; k < sp->port.n_ips; k++)
                        found = found || streq(sp->port.ips[k], p->ips[i]);
                if (!found)
                        return false;
        }
        return true;
}

/* Does the shard's copy of the group hold the request's rules? By digest
 * (the order of accept rules changes nothing; the core's reconcile trusts
 * the same digest), not by formatting every rule of every copy per request. */
static bool group_same(const struct fw_snap_group *g, const struct fw_group_req *gr)
{
        return !g->tampered && g->has_in && g->has_out && g->n_rules == gr->n_rules && g->digest == gr->digest;
}

static long group_req_index(struct fw *fw, const char *id)
{
        for (size_t i = 0; i < fw->n_groups; i++)
                if (streq(fw->groups[i].id, id))
                        return (long)i;
        return -1;
}

/* A shard a new port may go to: complete and ours, or made by this batch. */
static bool shard_usable(struct fw *fw, unsigned k)
{
        return fw->snap.shards[k].complete || fw->plan.new_shard[k];
}

/* Each request port's shard: its own when its chain exists, else the usable
 * shard with the fewest ports that has room (the lowest first), else a new
 * one at the lowest index no table has (a foreign table's index is never
 * used). -ENOSPC when every index is taken. */
static int plan_shards(struct fw *fw, char *err, size_t errlen)
{
        struct fw_plan *plan = &fw->plan;
        unsigned count[FW_MAX_SHARDS];

        memset(plan->new_shard, 0, sizeof(plan->new_shard));
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++)
                count[k] = fw->snap.shards[k].n_ports;
        for (size_t i = 0; i < fw->n_ports; i++) {
                struct fw_snap_port *sp = fw_snap_port_find(&fw->snap, fw->ports[i].uuid);
                long best = -1;

                if (sp) {
                        plan->port_shard[i] = sp->shard;
                        continue;
                }
                for (unsigned k = 0; k < FW_MAX_SHARDS; k++)
                        if (shard_usable(fw, k) && count[k] < FW_SHARD_PORTS && (best < 0 || count[k] < count[best]))
                                best = k;
                for (unsigned k = 1; best < 0 && k < FW_MAX_SHARDS; k++)
                        if (!fw->snap.shards[k].exists && !plan->new_shard[k]) {
                                plan->new_shard[k] = true;
                                best = k;
                        }
                if (best < 0) {
                        (void)snprintf(err, errlen, "no room for port %s: %d tables of %d ports are full or taken",
                                       fw->ports[i].uuid, FW_MAX_SHARDS, FW_SHARD_PORTS);
                        return -ENOSPC;
                }
                plan->port_shard[i] = (unsigned)best;
                count[best]++;
        }
        return 0;
}

/* References the request's groups gain (or lose) in each shard. */
static void plan_deltas(struct fw *fw)
{
        struct fw_plan *plan = &fw->plan;

        memset(plan->delta, 0, sizeof(plan->delta));
        for (size_t i = 0; i < fw->n_ports; i++) {
                struct fw_snap_port *sp = fw_snap_port_find(&fw->snap, fw->ports[i].uuid);
                unsigned k = plan->port_shard[i];
                long gi;

                for (size_t j = 0; sp && j < sp->port.n_groups; j++)
                        if ((gi = group_req_index(fw, sp->port.groups[j])) >= 0)
                                plan->delta[gi][k]--;
                for (size_t j = 0; j < fw->ports[i].n_groups; j++)
                        if ((gi = group_req_index(fw, fw->ports[i].groups[j])) >= 0)
                                plan->delta[gi][k]++;
        }
}

/* References of a group in a shard once the request is applied (removed: a
 * port whose chain goes). */
static unsigned refs_after(struct fw *fw, unsigned shard, const char *gid, const struct fw_snap_port *removed)
{
        struct fw_snap_group *g = fw_snap_group_find(&fw->snap, shard, gid);
        long gi = group_req_index(fw, gid), refs = g ? g->refs : 0;

        if (gi >= 0)
                refs += fw->plan.delta[gi][shard];
        else
                for (size_t i = 0; i < fw->n_ports; i++) {
                        struct fw_snap_port *sp = fw_snap_port_find(&fw->snap, fw->ports[i].uuid);
                        for (size_t k = 0; sp && fw->plan.port_shard[i] == shard && k < sp->port.n_groups; k++)
                                refs -= streq(sp->port.groups[k], gid);
                }
        for (size_t k = 0; removed && removed->shard == shard && k < removed->port.n_groups; k++)
                refs -= streq(removed->port.groups[k], gid);
        return refs > 0 ? (unsigned)refs : 0;
}

/* Which shards' copies of each request group are written: every shard where
 * it has references afterwards and either has no copy (or half of one), or
 * has a port of the request that uses it (what a port's apply always
 * rewrote), or holds other rules (a group change reaches every shard in the
 * same batch). Copies that already hold the request's rules elsewhere are
 * left alone: adding a port of a big group touches one shard. */
static void plan_group_writes(struct fw *fw)
{
        struct fw_plan *plan = &fw->plan;
        bool touched[FW_MAX_SHARDS];

        plan->n_writes = 0;
        for (size_t gi = 0; gi < fw->n_groups; gi++) {
                const struct fw_group_req *gr = &fw->groups[gi];
                memset(touched, 0, sizeof(touched));
                for (size_t i = 0; i < fw->n_ports; i++)
                        for (size_t j = 0; j < fw->ports[i].n_groups; j++)
                                touched[plan->port_shard[i]] |= streq(fw->ports[i].groups[j], gr->id);
                for (unsigned k = 0; k < FW_MAX_SHARDS; k++) {
                        struct fw_snap_group *g;
                        if (!shard_usable(fw, k) || refs_after(fw, k, gr->id, NULL) == 0)
                                continue;
                        g = plan->new_shard[k] ? NULL : fw_snap_group_find(&fw->snap, k, gr->id);
                        if (g && !touched[k] && group_same(g, gr))
                                continue;
                        plan->writes[plan->n_writes++] = (struct fw_group_write){
                                .req = gi, .shard = k, .half = g && g->has_in != g->has_out };
                }
        }
}

static int cmp_size(const void *a, const void *b)
{
        size_t x = *(const size_t *)a, y = *(const size_t *)b;

        return x < y ? -1 : x > y;
}

/* Positions in fw->snap.groups of the copies that nothing references once
 * the request is applied (and removed, a port whose chain goes, is gone):
 * only the copies the snapshot's chains of those ports jump to can be. */
static void plan_gc(struct fw *fw, const struct fw_snap_port *removed)
{
        struct fw_plan *plan = &fw->plan;
        size_t n = 0, w = 0;

        for (size_t i = 0; i <= fw->n_ports; i++) {
                const struct fw_snap_port *sp = i < fw->n_ports ? fw_snap_port_find(&fw->snap, fw->ports[i].uuid)
                                                                : removed;
                for (size_t k = 0; sp && k < sp->port.n_groups; k++) {
                        struct fw_snap_group *g = fw_snap_group_find(&fw->snap, sp->shard, sp->port.groups[k]);
                        if (g)
                                plan->gc[n++] = (size_t)(g - fw->snap.groups);
                }
        }
        qsort(plan->gc, n, sizeof(*plan->gc), cmp_size);
        for (size_t i = 0; i < n; i++) {
                struct fw_snap_group *g = &fw->snap.groups[plan->gc[i]];
                if ((w > 0 && plan->gc[w - 1] == plan->gc[i]) || g->refs == 0 ||
                    refs_after(fw, g->shard, g->id, removed) > 0)
                        continue;
                plan->gc[w++] = plan->gc[i];
        }
        plan->n_gc = w;
}

static void build_gc(struct fw *fw, struct fw_nl *b)
{
        for (size_t i = 0; i < fw->plan.n_gc; i++) {
                const struct fw_snap_group *g = &fw->snap.groups[fw->plan.gc[i]];
                if (g->has_in)
                        fw_nl_group_chain_remove(b, g->shard, g->id, "in");
                if (g->has_out)
                        fw_nl_group_chain_remove(b, g->shard, g->id, "out");
        }
}

/* The batch of the request in fw->groups/ports, and its plan: the new
 * shards' skeletons first, then everything else, as one netlink batch in
 * fw->nl (one transaction: a failure leaves no empty shard behind). */
static int build_apply(struct fw *fw, char *err, size_t errlen)
{
        struct fw_nl *b;
        struct fw_plan *plan = &fw->plan;
        const struct fw_port *elem_ports[FW_MAX_BATCH];
        unsigned elem_shards[FW_MAX_BATCH];
        size_t n_elem = 0;
        int r;

        if ((r = plan_shards(fw, err, errlen)) < 0)
                return r;
        plan_deltas(fw);
        plan_group_writes(fw);
        plan_gc(fw, NULL);
        b = nl_begin(fw);
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++)
                if (plan->new_shard[k])
                        fw_nl_shard_skeleton(b, k);
        for (size_t i = 0; i < plan->n_writes; i++) {
                const struct fw_group_write *gw = &plan->writes[i];
                const struct fw_group_req *gr = &fw->groups[gw->req];
                struct fw_snap_group *g = plan->new_shard[gw->shard] ? NULL
                                                                     : fw_snap_group_find(&fw->snap, gw->shard, gr->id);
                if (gw->half) /* half a group: drop the half and make both */
                        fw_nl_group_chain_remove(b, gw->shard, gr->id, g->has_in ? "in" : "out");
                fw_nl_group(b, gw->shard, gr->id, gr->rules, gr->n_rules, g && !gw->half);
        }
        for (size_t i = 0; i < fw->n_ports; i++) {
                struct fw_port *p = &fw->ports[i];
                struct fw_snap_port *sp = fw_snap_port_find(&fw->snap, p->uuid);

                fw_nl_port_chain(b, plan->port_shard[i], p, sp != NULL);
                if (sp && port_same_elements(sp, p))
                        continue;
                if (sp)
                        nl_old_elements_delete(b, sp);
                elem_ports[n_elem] = p;
                elem_shards[n_elem++] = plan->port_shard[i];
        }
        fw_nl_elements(b, elem_ports, elem_shards, n_elem); /* after the chains they jump to */
        build_gc(fw, b);
        return fw_nl_end(b);
}

/* Drop the group copies whose chains are both gone: of the positions in gc
 * (ascending), or of all (gc NULL). From the end, so that the record that
 * takes a removed one's place has been looked at already. */
static void snap_drop_groups(struct fw_snap *s, const size_t *gc, size_t n)
{
        for (size_t j = gc ? n : s->n_groups; j-- > 0;) {
                size_t i = gc ? gc[j] : j;
                if (!s->groups[i].has_in && !s->groups[i].has_out)
                        fw_snap_group_remove(s, i);
        }
}

static void snap_write_group(struct fw_snap *s, unsigned shard, const struct fw_group_req *gr)
{
        /* found, or appended (the reload after a failure would find it anyway) */
        struct fw_snap_group *g = fw_snap_group_get(s, shard, gr->id);

        if (!g)
                return;
        free(g->rules);
        g->rules = NULL;
        g->n_rules = 0;
        if (gr->n_rules) {
                g->rules = malloc(gr->n_rules * sizeof(*g->rules));
                if (g->rules) {
                        memcpy(g->rules, gr->rules, gr->n_rules * sizeof(*g->rules));
                        g->n_rules = gr->n_rules;
                }
        }
        g->digest = gr->digest;
        g->has_in = g->has_out = true;
        g->tampered = false;
}

/* Count a port's group references in its shard (sign -1: take them back). */
static void snap_port_refs(struct fw_snap *s, const struct fw_snap_port *sp, int sign)
{
        for (size_t k = 0; k < sp->port.n_groups; k++) {
                struct fw_snap_group *g = fw_snap_group_find(s, sp->shard, sp->port.groups[k]);
                if (g && (sign > 0 || g->refs > 0))
                        g->refs += (unsigned)sign;
        }
}

/* After a successful apply: the snapshot is what we just wrote. */
static int snap_after_apply(struct fw *fw)
{
        struct fw_snap *s = &fw->snap;
        const struct fw_plan *plan = &fw->plan;

        for (unsigned k = 0; k < FW_MAX_SHARDS; k++)
                if (plan->new_shard[k])
                        s->shards[k] = (struct fw_snap_shard){ .exists = true, .ours = true, .complete = true };
        for (size_t i = 0; i < plan->n_gc; i++)
                s->groups[plan->gc[i]].has_in = s->groups[plan->gc[i]].has_out = false;
        for (size_t i = 0; i < plan->n_writes; i++)
                snap_write_group(s, plan->writes[i].shard, &fw->groups[plan->writes[i].req]);
        for (size_t i = 0; i < fw->n_ports; i++) {
                struct fw_snap_port *sp = fw_snap_port_find(s, fw->ports[i].uuid);
                if (sp)
                        snap_port_refs(s, sp, -1);
                else if (!(sp = fw_snap_port_get(s, fw->ports[i].uuid)))
                        return -ENOMEM;
                else
                        s->shards[plan->port_shard[i]].n_ports++;
                *sp = (struct fw_snap_port){ .port = fw->ports[i], .shard = plan->port_shard[i], .has_chain = true,
                                             .has_dispatch = true, .has_mac = true, .has_tap = true,
                                             .has_guard = true, .has_ll = true };
                snap_port_refs(s, sp, +1);
        }
        snap_drop_groups(s, plan->gc, plan->n_gc);
        return 0;
}

/* Build and commit the request in fw->groups/ports. One retry after
 * re-reading the kernel, for a ruleset changed behind our back. */
static int apply_request(struct fw *fw, char *err, size_t errlen)
{
        int r;

        for (int attempt = 0; attempt < 2; attempt++) {
                if ((r = ensure_ready(fw, err, errlen)) < 0)
                        return r;
                if ((r = build_apply(fw, err, errlen)) < 0)
                        return r;
                r = nl_commit(fw, &fw->nl, err, errlen);
                fw->nl_seq = fw->nl.seq;
                if (r == 0) {
                        if (snap_after_apply(fw) < 0)
                                fw->snap_valid = false;
                        return 0;
                }
                fw->snap_valid = false; /* re-read and try once more */
        }
        return r;
}

/* ---- the guard: restoring our tables when someone else changes them ----
 *
 * `nft flush ruleset` (what Debian's nftables.service runs on every start
 * and restart), `nft delete table ...`, a deleted or flushed chain: each
 * leaves the instances open until our tables are whole again. The module
 * subscribes to the kernel's nftables notifications (NFNLGRP_NFTABLES) and,
 * as soon as a transaction committed by another process has named one of our
 * tables, rebuilds those tables from its own snapshot (which is what it last
 * wrote): a table that is gone is made again, a table that is still there
 * but was changed is deleted and made again in the same transaction (nothing
 * foreign left in it), then every port and group of the rebuilt tables goes
 * back in one netlink batch. Our own transactions (NEWGEN carries the
 * committing pid) are ignored. No polling: the socket is one more fd in the
 * module's loop. A table that another process deleted and created again
 * under our name is theirs now: it is left alone, and the next request says
 * so (the snapshot is re-read). A deleted table without ports protected
 * nothing and is not made again (--purge deletes our tables once the last
 * instance is gone); the next request makes it when it needs it. */

#define WATCH_RCVBUF (8 * 1024 * 1024) /* a flush of thousands of ports' objects without loss */

static int watch_read_gen(struct fw *fw, uint32_t *gen);

static int watch_open(struct fw *fw)
{
        unsigned group = NFNLGRP_NFTABLES;
        int size = WATCH_RCVBUF, fd;
        struct mnl_socket *sk = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (!sk)
                return -errno;
        fd = mnl_socket_get_fd(sk);
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
                (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        if (mnl_socket_bind(sk, 0, MNL_SOCKET_AUTOPID) < 0 ||
            mnl_socket_setsockopt(sk, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
                int r = -errno;
                mnl_socket_close(sk);
                return r;
        }
        fw->watch_sk = sk;
        /* the generation we start from (a commit after the join is seen, and moves it on) */
        if (watch_read_gen(fw, &fw->watch_gen) < 0)
                fw->watch_gen = 0;
        return 0;
}

/* Two transactions' marks of one table, in order: the later word wins, except
 * that a table deleted by one and created by the next (or re-created, and
 * changed after) is someone else's. */
static uint8_t mark_merge(uint8_t before, uint8_t after)
{
        if (after == FW_WATCH_NONE)
                return before;
        if (before == FW_WATCH_DELETED && after == FW_WATCH_CREATED)
                return FW_WATCH_RECREATED;
        if (before == FW_WATCH_RECREATED && after != FW_WATCH_DELETED)
                return FW_WATCH_RECREATED;
        return after;
}

static bool damage_pending(const struct fw *fw) { return fw->damage.any || fw->damage_unknown || fw->damage_deaf; }

/* News is coming: when the first since the last restore was seen (the restore's log line counts from it). */
static void news_arrives(struct fw *fw, uint64_t read_rt)
{
        if (!damage_pending(fw)) {
                fw->damage_usec = now_usec();
                fw->damage_read_rt = read_rt;
        }
}

/* fw_watch_feed's callback: merge a foreign transaction into fw->damage. */
static void on_commit(const struct fw_watch_commit *c, void *userdata)
{
        struct fw *fw = userdata;
        struct fw_watch_commit *d = &fw->damage;
        uint64_t read_rt = fw->txn_read_rt;

        fw->txn_read_rt = 0; /* the next datagram starts the next transaction */
        fw->watch_gen = c->gen;
        if (c->pid == (uint32_t)getpid() || !c->any)
                return; /* ours, or none of our names */
        news_arrives(fw, read_rt);
        d->bridge = mark_merge(d->bridge, c->bridge);
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++)
                d->inet[k] = mark_merge(d->inet[k], c->inet[k]);
        d->any = true;
        d->gen = c->gen;
        d->pid = c->pid;
        memcpy(d->proc, c->proc, sizeof(d->proc));
}

/* Notifications were lost or could not be read: what our tables look like
 * now is read from the kernel (guard_run) instead. */
static void damage_lost(struct fw *fw)
{
        fw->txn_read_rt = 0;
        fw->watch_gen = 0;
        news_arrives(fw, 0);
        fw->damage_unknown = true;
}

/* One datagram of n bytes read from the watch socket into fw->nl_buf. */
static void watch_take(struct fw *fw, ssize_t n)
{
        if (!fw->txn_read_rt)
                fw->txn_read_rt = realtime_usec();
        if ((size_t)n > sizeof(fw->nl_buf) || fw_watch_feed(&fw->watch, fw->nl_buf, (size_t)n, on_commit, fw) < 0)
                damage_lost(fw);
}

/* Read everything queued on the watch socket. */
static void watch_drain(struct fw *fw)
{
        if (!fw->watch_sk)
                return;
        for (;;) {
                ssize_t n = recv(mnl_socket_get_fd(fw->watch_sk), fw->nl_buf, sizeof(fw->nl_buf), MSG_TRUNC);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == ENOBUFS) { /* the kernel dropped notifications: we cannot know what */
                                fw_watch_reset(&fw->watch);
                                damage_lost(fw);
                                continue;
                        }
                        return; /* EAGAIN: drained */
                }
                watch_take(fw, n);
        }
}

/* ---- big batches, committed without listening to them ----
 *
 * For every object a transaction adds, the kernel builds a notification when
 * anyone listens to NFNLGRP_NFTABLES, and the guard listens: for 1000 ports
 * with 20 rules each that was 0.1 s of a 0.38 s load (the kernel writing
 * them out, then us reading each and skipping it as our own). So a batch of
 * QUIET_MIN_MSGS messages or more is committed with the membership dropped,
 * and nothing another process commits meanwhile goes unseen:
 *   1. what is queued is read; the membership is dropped; what came in
 *      meanwhile is read too (a foreign transaction cut by the drop is
 *      dropped: step 2's generation check sees it);
 *   2. the generation g is asked for (GETGEN) and the batch carries it
 *      (NFNL_BATCH_GENID): if anyone committed since, the kernel refuses all
 *      of it (-ERESTART) and it is sent once more, listening;
 *   3. the membership is taken back and the generation asked for again: it
 *      must be g + 1 (our commit) or g (refused). Anything else means
 *      another commit while we were deaf, and so does a generation at step 2
 *      other than that of the last transaction read (its notifications came
 *      after the drop): our tables are read from the kernel and rebuilt
 *      (deaf_news), as after lost notifications. Reading them back could not
 *      tell every change (a table made dormant, a chain added), so all of
 *      ours are rebuilt; it takes a foreign commit inside a window of a few
 *      milliseconds. */

static int watch_member(struct fw *fw, bool on)
{
        unsigned group = NFNLGRP_NFTABLES;

        return mnl_socket_setsockopt(fw->watch_sk, on ? NETLINK_ADD_MEMBERSHIP : NETLINK_DROP_MEMBERSHIP, &group,
                                     sizeof(group)) < 0
                       ? -errno
                       : 0;
}

static int gen_attr(const struct nlattr *a, void *data)
{
        if (mnl_attr_get_type(a) == NFTA_GEN_ID && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
                *(uint64_t *)data = ntohl(mnl_attr_get_u32(a));
        return MNL_CB_OK;
}

/* The ruleset's generation (GETGEN on the watch socket; notifications read
 * on the way are taken as usual). */
static int watch_read_gen(struct fw *fw, uint32_t *gen)
{
        uint8_t req[NLMSG_SPACE(sizeof(struct nfgenmsg))] = { 0 };
        struct nlmsghdr *h = mnl_nlmsg_put_header(req);
        struct nfgenmsg *g;
        int fd = mnl_socket_get_fd(fw->watch_sk);
        unsigned portid = mnl_socket_get_portid(fw->watch_sk);

        h->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
        h->nlmsg_flags = NLM_F_REQUEST;
        h->nlmsg_seq = ++fw->watch_seq;
        g = mnl_nlmsg_put_extra_header(h, sizeof(*g));
        g->nfgen_family = AF_UNSPEC;
        g->version = NFNETLINK_V0;
        if (mnl_socket_sendto(fw->watch_sk, h, h->nlmsg_len) < 0)
                return -errno;
        for (;;) {
                ssize_t n = recv(fd, fw->nl_buf, sizeof(fw->nl_buf), MSG_TRUNC);
                const struct nlmsghdr *m = (const void *)fw->nl_buf;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == ENOBUFS) {
                        fw_watch_reset(&fw->watch);
                        damage_lost(fw);
                        continue;
                }
                if (n < 0 && errno == EAGAIN) { /* the kernel answers inside sendmsg: not expected */
                        struct pollfd p = { fd, POLLIN, 0 };
                        if (poll(&p, 1, 1000) == 1)
                                continue;
                        return -ETIMEDOUT;
                }
                if (n < 0)
                        return -errno;
                if ((size_t)n >= NLMSG_HDRLEN && (size_t)n <= sizeof(fw->nl_buf) && m->nlmsg_pid == portid &&
                    m->nlmsg_seq == h->nlmsg_seq) {
                        uint64_t v = UINT64_MAX;
                        if (m->nlmsg_type == NLMSG_ERROR)
                                return -EIO;
                        if (!mnl_nlmsg_ok(m, (int)n) ||
                            mnl_attr_parse(m, sizeof(struct nfgenmsg), gen_attr, &v) < 0 || v > UINT32_MAX)
                                return -EBADMSG;
                        *gen = (uint32_t)v;
                        return 0;
                }
                watch_take(fw, n); /* a notification (from before the drop, or after the add) */
        }
}

/* Someone else committed while we were not listening (or may have): what
 * they did is read from the kernel (guard_run, as after lost notifications). */
static void deaf_news(struct fw *fw)
{
        news_arrives(fw, 0);
        fw->damage_deaf = true;
}

/* Listening again after a window without; 0, or < 0: the membership could
 * not be taken back, the socket was replaced (or is gone) and whatever came
 * meanwhile is lost. */
static int watch_rejoin(struct fw *fw)
{
        if (watch_member(fw, true) == 0)
                return 0;
        mnl_socket_close(fw->watch_sk);
        fw->watch_sk = NULL;
        if (watch_open(fw) < 0)
                log_warn("cannot watch nftables for changes by others any more: a flushed ruleset is repaired only "
                         "at the next request");
        damage_lost(fw);
        return -EIO;
}

/* Steps 1 and 2: deaf, with the generation in *gen; false: listening as before. */
static bool quiet_begin(struct fw *fw, uint32_t *gen)
{
        watch_drain(fw);
        if (watch_member(fw, false) < 0)
                return false;
        watch_drain(fw);
        fw_watch_reset(&fw->watch); /* a transaction cut by the drop: its generation tells (below) */
        if (watch_read_gen(fw, gen) < 0 || *gen == 0) { /* 0 would bind nothing */
                if (watch_rejoin(fw) == 0)
                        deaf_news(fw); /* between the drop and now */
                return false;
        }
        /* a commit whose generation we hold but whose notifications we did not read
         * (sent after the drop, or cut by it: the kernel counts the generation before it
         * sends them): not seen, so read from the kernel */
        if (*gen != fw->watch_gen)
                deaf_news(fw);
        return true;
}

/* Step 3, after a commit that ended in r. */
static void quiet_end(struct fw *fw, uint32_t gen, int r)
{
        uint32_t now = 0, ours = gen + 1 ? gen + 1 : 1; /* the kernel skips generation 0 */

        if (watch_rejoin(fw) < 0)
                return;
        if (watch_read_gen(fw, &now) < 0) {
                damage_lost(fw);
                return;
        }
        fw->watch_gen = now;
        if (now != (r == 0 ? ours : gen) || r == -ERESTART || fw->test_deaf) {
                fw->test_deaf = false; /* once */
                deaf_news(fw);
        }
}

/* Notifications lost (or a commit by someone else while we were not
 * listening: they could have said anything): classify our tables by reading
 * the kernel (which exist and, of those, which are still ours) instead;
 * every table of ours that exists is rebuilt. */
static int damage_from_kernel(struct fw *fw, struct fw_watch_commit *d)
{
        struct fw_tables t = { 0 };
        struct fw_snap now = { 0 };
        bool only[FW_MAX_SHARDS];
        int r;

        for (unsigned k = 0; k < FW_MAX_SHARDS; k++)
                only[k] = fw->snap.shards[k].ours;
        r = snap_read(fw, only, &now, &t);
        for (unsigned k = 0; r == 0 && k < FW_MAX_SHARDS; k++)
                if (fw->snap.shards[k].ours && !t.inet[k])
                        d->inet[k] = FW_WATCH_DELETED;
        if (r == 0) {
                for (unsigned k = 0; k < FW_MAX_SHARDS; k++)
                        if (fw->snap.shards[k].ours && t.inet[k])
                                d->inet[k] = now.shards[k].ours ? FW_WATCH_TOUCHED : FW_WATCH_RECREATED;
                d->bridge = !t.bridge ? FW_WATCH_DELETED : now.bridge_ours ? FW_WATCH_TOUCHED : FW_WATCH_RECREATED;
                d->any = true;
        }
        fw_snap_free(&now);
        return r;
}

/* What a restore rebuilds, decided from the news. */
struct restore_plan {
        bool inet[FW_MAX_SHARDS]; /* the shards to rebuild */
        bool bridge;              /* the bridge table is rebuilt */
        bool any_inet;            /* some shard is rebuilt */
};

/* Decide from d which of our tables to rebuild into *plan. A table of ours
 * that was deleted with no port to protect is forgotten; a table of one of
 * our names we do not own marks the snapshot for a re-read. 1 when something
 * is to be rebuilt, 0 when nothing, -EEXIST (logged) when one of our tables
 * was deleted and made again by someone else. */
static int restore_plan(struct fw *fw, const struct fw_watch_commit *d, struct restore_plan *plan)
{
        struct fw_snap *s = &fw->snap;
        bool any = false;

        for (unsigned k = 0; k < FW_MAX_SHARDS; k++) {
                if (!d->inet[k])
                        continue;
                if (!s->shards[k].ours) {
                        fw->snap_valid = false; /* a table of one of our names we do not own: re-read before use */
                        continue;
                }
                if (s->shards[k].n_ports == 0 && d->inet[k] == FW_WATCH_DELETED) {
                        /* nothing to protect (e.g. --purge after the last instance went):
                         * the next request makes it again when it needs it */
                        s->shards[k].exists = s->shards[k].ours = s->shards[k].complete = false;
                        continue;
                }
                if (d->inet[k] == FW_WATCH_RECREATED) {
                        log_err("nftables table inet %s%s%u was deleted and created again by %s (pid %u): "
                                "it is not ours any more; the instances of that shard are not filtered",
                                FW_TABLE, k ? "_" : "", k, d->proc, d->pid);
                        fw->snap_valid = false;
                        return -EEXIST;
                }
                plan->inet[k] = any = plan->any_inet = true;
        }
        if (d->bridge == FW_WATCH_RECREATED) {
                log_err("nftables table bridge " FW_TABLE " was deleted and created again by %s (pid %u): it is not "
                        "ours any more; anti-spoofing is off", d->proc, d->pid);
                fw->snap_valid = false;
                return -EEXIST;
        }
        if (d->bridge && s->bridge_ours && s->n_ports == 0 && d->bridge == FW_WATCH_DELETED)
                s->bridge_exists = s->bridge_ours = s->bridge_complete = false; /* as for a shard above */
        else if (d->bridge && s->bridge_ours)
                plan->bridge = any = true;
        else if (d->bridge)
                fw->snap_valid = false;
        return any ? 1 : 0;
}

/* Order the snapshot's ports for a restore into ports/shards (each sized
 * for s->n_ports, at least 1): the ports of the rebuilt shards first (they
 * are closed first; *ret_closed of them), then the others (only their
 * anti-spoofing elements, when the bridge table is rebuilt). *ret_n: all. */
static void restore_order_ports(const struct fw_snap *s, const struct restore_plan *plan,
                                const struct fw_port **ports, unsigned *shards, size_t *ret_n, size_t *ret_closed)
{
        size_t n = 0, n_closed = 0;

        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < s->n_ports; i++) {
                        const struct fw_snap_port *sp = &s->ports[i];
                        if (pass == 0 ? plan->inet[sp->shard] : !plan->inet[sp->shard] && plan->bridge) {
                                ports[n] = &sp->port;
                                shards[n++] = sp->shard;
                                n_closed += pass == 0;
                        }
                }
        *ret_n = n;
        *ret_closed = n_closed;
}

/* Batch 1, fail closed: the bridge table when it is rebuilt, and the
 * quarantine of the first n_closed ports (those whose shards are rebuilt): a
 * few messages and one element per port, so the window in which they are
 * open ends as soon as the kernel commits them. 0 or -errno. */
static int restore_close(struct fw *fw, const struct restore_plan *plan, const struct fw_port **ports,
                         const unsigned *shards, size_t n, size_t n_closed)
{
        struct fw_snap *s = &fw->snap;
        char err[256];
        int r;

        uint64_t t0 = now_usec();
        struct fw_nl *b = nl_begin(fw);
        if (plan->bridge) {
                fw_nl_table_touch(b, true, 0);
                fw_nl_drop_bridge(b);
                fw_nl_bridge_skeleton(b);
                /* the anti-spoofing elements of the ports left open; those of the
                 * quarantined ones can wait for the second batch */
                fw_nl_bridge_elements(b, ports + n_closed, shards + n_closed, n - n_closed);
        }
        if (n_closed)
                fw_nl_quarantine(b, ports, n_closed);
        r = fw_nl_end(b);
        uint64_t t1 = now_usec();
        if (r == 0)
                r = nl_commit(fw, b, err, sizeof(err));
        fw->nl_seq = b->seq;
        fw->times.close_build = t1 - t0;
        fw->times.close_commit = now_usec() - t1;
        fw->times.close_msgs = b->n_msgs;
        fw->times.close_len = b->len;
        fw->times.closed_rt = realtime_usec();
        if (r < 0)
                return r;
        if (plan->bridge) {
                s->bridge_exists = s->bridge_ours = s->bridge_complete = true;
                s->orphan_elements = 0;
        }
        return 0;
}

/* Batch 2: the rebuilt shards (skeletons, groups, port chains, dispatch
 * elements) for the first n_closed ports, the anti-spoofing elements of a
 * rebuilt bridge table, and the end of the quarantine, in one transaction.
 * 0 or -errno (then the quarantine stays: those ports remain closed until
 * the repair). */
static int restore_rebuild(struct fw *fw, const struct restore_plan *plan, const struct fw_port **ports,
                           const unsigned *shards, size_t n_closed)
{
        const struct fw_snap *s = &fw->snap;
        char err[256];
        int r;

        if (!n_closed && !plan->any_inet)
                return 0;
        uint64_t t0 = now_usec();
        struct fw_nl *b = nl_begin(fw);
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++) {
                if (!plan->inet[k])
                        continue;
                fw_nl_table_touch(b, false, k);
                fw_nl_drop_shard(b, k);
                fw_nl_shard_skeleton(b, k);
        }
        for (size_t i = 0; i < s->n_groups; i++)
                if (plan->inet[s->groups[i].shard])
                        fw_nl_group(b, s->groups[i].shard, s->groups[i].id, s->groups[i].rules,
                                    s->groups[i].n_rules, false);
        for (size_t i = 0; i < n_closed; i++)
                fw_nl_port_chain(b, shards[i], ports[i], false);
        fw_nl_dispatch_elements(b, ports, shards, n_closed);
        if (plan->bridge)
                fw_nl_bridge_elements(b, ports, shards, n_closed);
        if (n_closed)
                fw_nl_quarantine_remove(b);
        r = fw_nl_end(b);
        uint64_t t1 = now_usec();
        if (r == 0)
                r = nl_commit(fw, b, err, sizeof(err));
        fw->nl_seq = b->seq;
        fw->times.rebuild_build = t1 - t0;
        fw->times.rebuild_commit = now_usec() - t1;
        fw->times.rebuild_msgs = b->n_msgs;
        fw->times.rebuild_len = b->len;
        return r;
}

/* After both batches committed: the snapshot is what was written. */
static void restore_mark_written(struct fw_snap *s, const struct restore_plan *plan)
{
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++)
                if (plan->inet[k]) {
                        s->shards[k].exists = s->shards[k].ours = s->shards[k].complete = true;
                }
        for (size_t i = 0; i < s->n_groups; i++)
                if (plan->inet[s->groups[i].shard]) {
                        s->groups[i].has_in = s->groups[i].has_out = true;
                        s->groups[i].tampered = false;
                }
        for (size_t i = 0; i < s->n_ports; i++) {
                struct fw_snap_port *sp = &s->ports[i];
                if (plan->inet[sp->shard]) {
                        sp->has_chain = sp->has_dispatch = true;
                        sp->tampered = false;
                }
                if (plan->inet[sp->shard] || plan->bridge)
                        sp->has_tap = sp->has_mac = sp->has_guard = sp->has_ll = true;
        }
}

/* Rebuild the tables d names from the snapshot, in two netlink batches:
 * first what closes the affected ports (the bridge table if it is rebuilt,
 * and a quarantine of the ports of the shards to rebuild: a few messages
 * whatever their number), then the shards with their groups and ports and
 * the quarantine's removal, in one transaction. Each table to rebuild is
 * named by `add table`, deleted and made again, whether the news said it was
 * deleted or changed: the news may be stale (this restore's own retry, or a
 * notification read after we restored), and appending a skeleton's rules to
 * a table that exists would duplicate them. 1 when something was rebuilt, 0 when nothing needed it, or
 * -errno (then the caller falls back to re-reading the kernel and the
 * rebuild-and-tell-the-core path; a quarantine left behind keeps its ports
 * closed and makes the bridge table read as incomplete).
 * fw->times says where the time went. */
static int restore(struct fw *fw, const struct fw_watch_commit *d, unsigned *ret_ports)
{
        struct fw_snap *s = &fw->snap;
        struct restore_plan plan = { 0 };
        _cleanup_free_ const struct fw_port **ports = NULL;
        _cleanup_free_ unsigned *shards = NULL;
        size_t n, n_closed;
        int r;

        r = restore_plan(fw, d, &plan);
        if (r <= 0)
                return r;
        fw->times = (struct restore_times){ 0 }; /* a batch not sent says 0 */

        ports = calloc(s->n_ports ? s->n_ports : 1, sizeof(*ports));
        shards = calloc(s->n_ports ? s->n_ports : 1, sizeof(*shards));
        if (!ports || !shards)
                return -ENOMEM;
        restore_order_ports(s, &plan, ports, shards, &n, &n_closed);

        r = restore_close(fw, &plan, ports, shards, n, n_closed);
        if (r < 0)
                return r;

        r = restore_rebuild(fw, &plan, ports, shards, n_closed);
        if (r < 0)
                return r;

        restore_mark_written(s, &plan);
        *ret_ports = (unsigned)n;
        return 1;
}

/* True while restoring is paused after a burst; when the pause has ended,
 * ends it (a new burst window starts) and returns false. */
static bool guard_paused(struct fw *fw)
{
        if (!fw->paused_until)
                return false;
        if (now_usec() < fw->paused_until)
                return true; /* kept in fw->damage for when the pause ends */
        fw->paused_until = 0;
        fw->burst = 0;
        fw->burst_start = now_usec();
        log_info("restoring our nftables tables again after a pause");
        return false;
}

/* Count one restore at t_start in the burst window. When there were too many,
 * log it, pause restoring and keep d (and unknown) in fw->damage for when the
 * pause ends, and return true. */
static bool guard_burst_exceeded(struct fw *fw, const struct fw_watch_commit *d, bool unknown, uint64_t t_start)
{
        if (t_start - fw->burst_start > GUARD_BURST_USEC) {
                fw->burst_start = t_start;
                fw->burst = 0;
        }
        if (++fw->burst <= GUARD_BURST_MAX)
                return false;
        log_err("our nftables tables were changed by others %u times within %llu s (last: %s, pid %u): "
                "not restoring them for %llu s (if that pid is ours, we run in a pid namespace and cannot "
                "tell our own changes); the core's firewall sync repairs what it finds",
                fw->burst - 1, GUARD_BURST_USEC / 1000000, d->proc[0] ? d->proc : "?", d->pid,
                GUARD_PAUSE_USEC / 1000000);
        fw->paused_until = t_start + GUARD_PAUSE_USEC;
        fw->damage = *d; /* restored when the pause ends */
        fw->damage_unknown = unknown;
        return true;
}

/* restore() what *d names, and again (up to 3 times) from what the kernel
 * shows when a batch failed. *d becomes the news of the last attempt.
 * Returns what the last restore() returned. */
static int restore_with_retries(struct fw *fw, struct fw_watch_commit *d, unsigned *ret_ports)
{
        int r = restore(fw, d, ret_ports);
        /* A restore is two commits, and what d says may be stale by the time
         * they run: another change can land before or between them (Debian's
         * nftables.service reload is `nft -f` of a file that starts with
         * `flush ruleset`, run right after its stop's flush), and a batch that
         * names a table that is gone is refused whole. The snapshot still says
         * what we want: read which of our tables exist now and restore again
         * (re-reading the snapshot instead would lose every port until the
         * core's sync re-applies them). */
        for (int again = 0; r < 0 && r != -EEXIST && again < 3; again++) {
                struct fw_watch_commit now = { 0 };
                log_warn("restoring our nftables tables failed (%s): they changed meanwhile? reading which exist, "
                         "restoring again", strerror(-r));
                if (damage_from_kernel(fw, &now) < 0)
                        break;
                *d = now;
                r = restore(fw, d, ret_ports);
        }
        return r;
}

/* After the queue is drained: act on what others did. */
static void guard_run_once(struct fw *fw)
{
        struct fw_watch_commit d = fw->damage;
        bool unknown = fw->damage_unknown, deaf = fw->damage_deaf;
        uint64_t t0 = fw->damage_usec, t_start;
        uint64_t read_rt = fw->damage_read_rt, decoded_rt = realtime_usec();
        unsigned n_ports = 0;
        char err[256] = "";
        int r;

        if (guard_paused(fw))
                return;
        if (!d.any && !unknown && !deaf)
                return;
        fw->damage = (struct fw_watch_commit){ 0 };
        fw->damage_unknown = fw->damage_deaf = false;
        if (!fw->snap_valid) {
                /* no picture of our own to restore from: the kernel is read and
                 * the core re-applies what is missing (ruleset_rebuilt) */
                if (ensure_ready(fw, err, sizeof(err)) < 0)
                        log_err("nftables changed by %s (pid %u) and our tables cannot be repaired: %s",
                                d.proc[0] ? d.proc : "?", d.pid, err);
                return;
        }
        if (unknown || deaf) {
                if (deaf && !unknown)
                        log_warn("another process committed to nftables while a batch of ours was applied without "
                                 "listening: reading our tables, rebuilding them");
                else
                        log_warn("nftables notifications were lost: reading our tables to see what changed");
                r = damage_from_kernel(fw, &d);
                if (r < 0) {
                        log_err("cannot read the nftables ruleset: %s", strerror(-r));
                        fw->snap_valid = false;
                        return;
                }
                unknown = true;
        }
        t_start = now_usec();
        if (guard_burst_exceeded(fw, &d, unknown, t_start))
                return;
        r = restore_with_retries(fw, &d, &n_ports);
        if (r == 0 || r == -EEXIST)
                return; /* nothing to protect; or said why, and the next request re-reads and refuses */
        if (r < 0) {
                log_err("restoring our nftables tables failed (%s): re-reading them", strerror(-r));
                fw->snap_valid = false;
                if (ensure_ready(fw, err, sizeof(err)) < 0)
                        log_err("our nftables tables cannot be repaired: %s", err);
                return;
        }
        fw->restores++;
        uint64_t t_end = now_usec(), end_rt = realtime_usec();
        const struct restore_times *tm = &fw->times;
        /* side by side: when each step ended, counted from our read of the
         * change's first notification, and each batch's cost: building it, and
         * the kernel's commit of it (send to ACK: the floor for that batch);
         * the wall-clock time of that read and of the close, to compare with
         * packets' timestamps (test-firewall-module does) */
        if (!read_rt || unknown)
                read_rt = decoded_rt;
#define SINCE(x) (unsigned long long)((x) > read_rt ? (x) - read_rt : 0)
        log_warn("nftables: a change by %s (pid %u, generation %u) %s our tables; restored them with %u port(s) "
                 "%llu us after it was seen | from our read of its first notification (at %llu.%06llu): its end "
                 "decoded %llu us, ports closed %llu us (at %llu.%06llu), tables restored %llu us | close batch: "
                 "%u messages, %zu bytes, built in %llu us, kernel commit %llu us | rebuild batch: %u messages, "
                 "%zu bytes, built in %llu us, kernel commit %llu us",
                 d.proc[0] ? d.proc : "?", d.pid, d.gen, unknown ? "may have changed" : "changed", n_ports,
                 (unsigned long long)(t_end - t0), (unsigned long long)(read_rt / 1000000),
                 (unsigned long long)(read_rt % 1000000), SINCE(decoded_rt), SINCE(tm->closed_rt),
                 (unsigned long long)(tm->closed_rt / 1000000), (unsigned long long)(tm->closed_rt % 1000000),
                 SINCE(end_rt), tm->close_msgs, tm->close_len, (unsigned long long)tm->close_build,
                 (unsigned long long)tm->close_commit, tm->rebuild_msgs, tm->rebuild_len,
                 (unsigned long long)tm->rebuild_build, (unsigned long long)tm->rebuild_commit);
#undef SINCE
}

/* A restore's own rebuild is a big batch: its check (quiet_end) can leave
 * news of its own, acted on here, not at the next event (there may be none).
 * Each round clears the news first and a fight is paused by the burst limit
 * (guard_burst_exceeded); the bound is a safety net only, and fw_run's poll
 * does not wait while news is left. */
static void guard_run(struct fw *fw)
{
        guard_run_once(fw);
        for (int i = 0; i < 2 * GUARD_BURST_MAX && damage_pending(fw) && !fw->paused_until; i++)
                guard_run_once(fw);
}

/* Between cores (waiting for one at --connect): the notifications only. */
static int fw_idle_fd(void *state)
{
        struct fw *fw = state;

        return fw && fw->watch_sk ? mnl_socket_get_fd(fw->watch_sk) : -1;
}

static void fw_on_idle_fd(void *state)
{
        watch_drain(state);
        guard_run(state);
}

/* The module's loop: the core's requests and the kernel's notifications. */
static int fw_run(struct modrt *rt, void *state)
{
        struct fw *fw = state;

        while (!modrt_should_exit(rt)) {
                struct pollfd p[2] = { { modrt_fd(rt), POLLIN, 0 },
                                       { fw->watch_sk ? mnl_socket_get_fd(fw->watch_sk) : -1, POLLIN, 0 } };
                int timeout = damage_pending(fw) && !fw->paused_until ? 0 : -1, n;
                if (fw->paused_until) { /* a timer: the end of the guard's pause */
                        uint64_t now = now_usec();
                        timeout = now >= fw->paused_until ? 0 : (int)((fw->paused_until - now) / 1000 + 1);
                }
                n = poll(p, 2, timeout);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0) {
                        guard_run(fw);
                        continue;
                }
                if (p[1].revents & POLLIN) {
                        watch_drain(fw);
                        guard_run(fw);
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        int r = modrt_dispatch(rt);
                        if (r < 0)
                                return r;
                        /* what others did while we served (our own commits are ignored) */
                        watch_drain(fw);
                        guard_run(fw);
                }
        }
        return 0;
}

/* ---- handlers ---- */

static void reply_group(struct proto_writer *w, const char *id, const struct secrule *rules, size_t n)
{
        pw_obj_begin(w, NULL);
        pw_str(w, "id", id);
        pw_list_begin(w, "rules");
        for (size_t i = 0; i < n; i++) {
                pw_obj_begin(w, NULL);
                fw_rule_write(w, &rules[i]);
                pw_obj_end(w);
        }
        pw_list_end(w);
        pw_obj_end(w);
}

static int handle_apply(void *state, struct modrt_call *call)
{
        struct fw *fw = state;
        int r;

        fw->n_groups = fw->n_ports = 0;
        for (const struct proto_value *g = proto_get(call->req, "groups")->child; g; g = g->next)
                if ((r = read_group(fw, g, call->err, sizeof(call->err))) < 0)
                        return r;
        if ((r = read_port(fw, call->req, false, call->err, sizeof(call->err))) < 0)
                return r;
        (void)snprintf(call->audit, sizeof(call->audit), "port=%s groups=%zu", fw->ports[0].uuid, fw->n_groups);
        return apply_request(fw, call->err, sizeof(call->err));
}

static int handle_apply_many(void *state, struct modrt_call *call)
{
        struct fw *fw = state;
        int r;

        fw->n_groups = fw->n_ports = 0;
        for (const struct proto_value *g = proto_get(call->req, "groups")->child; g; g = g->next)
                if ((r = read_group(fw, g, call->err, sizeof(call->err))) < 0)
                        return r;
        for (const struct proto_value *p = proto_get(call->req, "ports")->child; p; p = p->next)
                if ((r = read_port(fw, p, true, call->err, sizeof(call->err))) < 0)
                        return r;
        (void)snprintf(call->audit, sizeof(call->audit), "ports=%zu groups=%zu", fw->n_ports, fw->n_groups);
        r = apply_request(fw, call->err, sizeof(call->err));
        if (r == 0)
                pw_u64(call->reply, "applied", fw->n_ports);
        return r;
}

/* Remove a port: its elements, its chain, the group copies of its shard that
 * nothing else uses; or, when it is the last port of a shard other than 0,
 * that shard's whole table. */
static int handle_remove(void *state, struct modrt_call *call)
{
        struct fw *fw = state;
        const char *uuid = proto_get_str(call->req, "port_uuid", "");
        int r;

        (void)snprintf(call->audit, sizeof(call->audit), "port=%s", uuid);
        for (int attempt = 0; attempt < 2; attempt++) {
                struct fw_snap *s = &fw->snap;
                struct fw_snap_port *sp;
                unsigned k;
                bool drop_shard;

                if ((r = ensure_ready(fw, call->err, sizeof(call->err))) < 0)
                        return r;
                sp = fw_snap_port_find(s, uuid);
                if (!sp) {
                        (void)snprintf(call->err, sizeof(call->err), "port %s has no security-group rules of ours",
                                       uuid);
                        return -ENOENT;
                }
                k = sp->shard;
                drop_shard = k > 0 && s->shards[k].n_ports == 1;
                fw->n_groups = fw->n_ports = 0;
                fw->plan.n_gc = 0;
                struct fw_nl *b = nl_begin(fw);
                if (drop_shard) {
                        /* the bridge elements, then the table with everything in it */
                        struct fw_elements e = old_elements(sp);
                        e.dispatch = false;
                        fw_nl_port_elements_delete(b, k, &sp->port, &e);
                        fw_nl_drop_shard(b, k);
                } else {
                        nl_old_elements_delete(b, sp);
                        fw_nl_port_chain_remove(b, k, uuid);
                        plan_gc(fw, sp);
                        build_gc(fw, b);
                }
                r = nl_commit(fw, b, call->err, sizeof(call->err)); /* ends the batch; a builder's error stops it */
                fw->nl_seq = b->seq;
                if (r != 0) {
                        fw->snap_valid = false;
                        continue;
                }
                if (drop_shard) {
                        for (size_t i = 0; i < s->n_groups; i++)
                                if (s->groups[i].shard == k)
                                        s->groups[i].has_in = s->groups[i].has_out = false;
                        s->shards[k] = (struct fw_snap_shard){ 0 };
                } else {
                        for (size_t i = 0; i < fw->plan.n_gc; i++)
                                s->groups[fw->plan.gc[i]].has_in = s->groups[fw->plan.gc[i]].has_out = false;
                        snap_port_refs(s, sp, -1);
                        s->shards[k].n_ports--;
                }
                fw_snap_port_remove(s, (size_t)(sp - s->ports));
                if (drop_shard)
                        snap_drop_groups(s, NULL, 0);
                else
                        snap_drop_groups(s, fw->plan.gc, fw->plan.n_gc);
                return 0;
        }
        return r;
}

static int reload_for_query(struct fw *fw, struct modrt_call *call)
{
        int r;

        /* Queries report what the kernel holds now, not our picture of it; a
         * damaged skeleton found here is rebuilt at once (and the core told). */
        fw->snap_valid = false;
        r = ensure_ready(fw, call->err, sizeof(call->err)); /* reads the ruleset once, rebuilds if needed */
        if (r == 0 && !fw->snap_valid) {
                r = snap_reload(fw);
                if (r < 0)
                        (void)snprintf(call->err, sizeof(call->err), "cannot read the nftables ruleset: %s",
                                       strerror(-r));
        }
        return r;
}

/* A group as rules_list shows it: one entry however many shards hold a copy
 * (from its copy in the lowest shard); "tampered" when a copy is, is half, or
 * holds other rules than the others. False for every copy but the first. */
static bool group_summary(struct fw_snap *s, const struct fw_snap_group *g, uint64_t *ret_digest, bool *ret_ok,
                          unsigned *ret_copies)
{
        uint64_t digest = g->digest;
        bool ok = !g->tampered && g->has_in && g->has_out;
        unsigned copies = 1;

        for (unsigned k = 0; k < FW_MAX_SHARDS; k++) {
                const struct fw_snap_group *c;
                if (k == g->shard || !s->shards[k].ours || !(c = fw_snap_group_find(s, k, g->id)))
                        continue;
                if (k < g->shard)
                        return false;
                copies++;
                ok = ok && !c->tampered && c->has_in && c->has_out && c->digest == digest;
        }
        *ret_digest = digest;
        *ret_ok = ok;
        *ret_copies = copies;
        return true;
}

static int group_index_by_id(const void *a, const void *b, void *userdata)
{
        const struct fw_snap *snap = userdata;
        return strcmp(snap->groups[*(const size_t *)a].id, snap->groups[*(const size_t *)b].id);
}

static int port_index_by_uuid(const void *a, const void *b, void *userdata)
{
        const struct fw_snap *snap = userdata;
        return strcmp(snap->ports[*(const size_t *)a].port.uuid, snap->ports[*(const size_t *)b].port.uuid);
}

/* Positions 0..n-1 of the snapshot's groups or ports, sorted by id; NULL when n is 0 or out of memory. */
static size_t *sorted_positions(struct fw_snap *snap, size_t n, int (*cmp)(const void *, const void *, void *))
{
        size_t *ix = n ? malloc(n * sizeof(*ix)) : NULL;

        for (size_t i = 0; ix && i < n; i++)
                ix[i] = i;
        if (ix)
                qsort_r(ix, n, sizeof(*ix), cmp, snap);
        return ix;
}

/* A page of both lists (fw-protocol.h): groups above groups_after, then ports above after. */
static int handle_list(void *state, struct modrt_call *call)
{
        struct fw *fw = state;
        const char *after = proto_get_str(call->req, "after", NULL);
        const char *groups_after = proto_get_str(call->req, "groups_after", NULL);
        uint64_t limit = proto_get_u64(call->req, "limit", PROTO_MAX_ITEMS), shown = 0;
        _cleanup_free_ size_t *gix = NULL, *pix = NULL;
        size_t g = 0, k = 0;
        int r;

        /* The first page reads the kernel; the pages after it read the snapshot that read
         * made, which the module's own commits and the guard's notifications keep current. */
        if ((!after && !groups_after) || !fw->snap_valid) {
                if ((r = reload_for_query(fw, call)) < 0)
                        return r;
        }
        gix = sorted_positions(&fw->snap, fw->snap.n_groups, group_index_by_id);
        pix = sorted_positions(&fw->snap, fw->snap.n_ports, port_index_by_uuid);
        if ((fw->snap.n_groups && !gix) || (fw->snap.n_ports && !pix)) {
                (void)snprintf(call->err, sizeof(call->err), "out of memory");
                return -ENOMEM;
        }
        while (groups_after && g < fw->snap.n_groups && strcmp(fw->snap.groups[gix[g]].id, groups_after) <= 0)
                g++;
        pw_list_begin(call->reply, "groups");
        for (; g < fw->snap.n_groups && shown < limit; g++) {
                const struct fw_snap_group *grp = &fw->snap.groups[gix[g]];
                char digest[17];
                uint64_t d;
                unsigned copies;
                bool ok;
                if (call->reply->n_values + 9 > PROTO_MAX_NODES / 2)
                        break; /* half a frame at most: the ports get the rest */
                if (!group_summary(&fw->snap, grp, &d, &ok, &copies))
                        continue;
                (void)snprintf(digest, sizeof(digest), "%016llx", (unsigned long long)d);
                pw_obj_begin(call->reply, NULL);
                pw_str(call->reply, "id", grp->id);
                pw_u64(call->reply, "rules", grp->n_rules);
                pw_str(call->reply, "digest", ok ? digest : "tampered");
                pw_u64(call->reply, "shards", copies);
                pw_obj_end(call->reply);
                shown++;
        }
        pw_list_end(call->reply);
        pw_bool(call->reply, "groups_truncated", g < fw->snap.n_groups);
        if (g > 0 && g < fw->snap.n_groups)
                pw_str(call->reply, "groups_next", fw->snap.groups[gix[g - 1]].id);
        while (after && k < fw->snap.n_ports && strcmp(fw->snap.ports[pix[k]].port.uuid, after) <= 0)
                k++;
        shown = 0;
        pw_list_begin(call->reply, "ports");
        for (; k < fw->snap.n_ports && shown < limit; k++, shown++) {
                const struct fw_snap_port *p = &fw->snap.ports[pix[k]];
                if (call->reply->n_values + 7 + PORT_MAX_GROUPS + 16 > PROTO_MAX_NODES ||
                    call->reply->len + 80 + 48 * PORT_MAX_GROUPS + 512 > PROTO_MAX_FRAME)
                        break;
                pw_obj_begin(call->reply, NULL);
                pw_str(call->reply, "port_uuid", p->port.uuid);
                pw_bool(call->reply, "complete", !p->tampered && p->has_chain);
                pw_u64(call->reply, "shard", p->shard);
                pw_list_begin(call->reply, "groups");
                for (size_t x = 0; x < p->port.n_groups; x++)
                        pw_str(call->reply, NULL, p->port.groups[x]);
                pw_list_end(call->reply);
                pw_obj_end(call->reply);
        }
        pw_list_end(call->reply);
        pw_u64(call->reply, "total", fw->snap.n_ports);
        pw_bool(call->reply, "truncated", k < fw->snap.n_ports);
        if (k > 0 && k < fw->snap.n_ports && (!after || strcmp(fw->snap.ports[pix[k - 1]].port.uuid, after) > 0))
                pw_str(call->reply, "next", fw->snap.ports[pix[k - 1]].port.uuid);
        return 0;
}

static int handle_get(void *state, struct modrt_call *call)
{
        struct fw *fw = state;
        const char *uuid = proto_get_str(call->req, "port_uuid", "");
        const struct fw_snap_port *p;
        char mac[MAC_STR_LEN + 1], table[FW_TABLE_NAME_MAX];
        int r;

        if ((r = reload_for_query(fw, call)) < 0)
                return r;
        p = fw_snap_port_find(&fw->snap, uuid);
        if (!p || !p->has_chain) {
                (void)snprintf(call->err, sizeof(call->err), "port %s has no security-group rules of ours", uuid);
                return -ENOENT;
        }
        mac_format(p->port.mac, mac);
        fw_shard_table(p->shard, table);
        pw_str(call->reply, "port_uuid", uuid);
        pw_str(call->reply, "mac", mac);
        pw_bool(call->reply, "complete", !p->tampered);
        pw_u64(call->reply, "shard", p->shard);
        pw_str(call->reply, "table", table);
        pw_list_begin(call->reply, "ips");
        for (size_t i = 0; i < p->port.n_ips; i++)
                pw_str(call->reply, NULL, p->port.ips[i]);
        pw_list_end(call->reply);
        pw_list_begin(call->reply, "groups");
        for (size_t i = 0; i < p->port.n_groups; i++) {
                const struct fw_snap_group *g = fw_snap_group_find(&fw->snap, p->shard, p->port.groups[i]);
                reply_group(call->reply, p->port.groups[i], g ? g->rules : NULL, g ? g->n_rules : 0);
        }
        pw_list_end(call->reply);
        return 0;
}

static const struct modrt_entry entries[_FW_MAX] = {
        [FW_PORT_RULES_APPLY] = { &fw_entrypoints[FW_PORT_RULES_APPLY], handle_apply },
        [FW_PORTS_RULES_APPLY] = { &fw_entrypoints[FW_PORTS_RULES_APPLY], handle_apply_many },
        [FW_PORT_RULES_REMOVE] = { &fw_entrypoints[FW_PORT_RULES_REMOVE], handle_remove },
        [FW_RULES_LIST] = { &fw_entrypoints[FW_RULES_LIST], handle_list },
        [FW_RULES_GET] = { &fw_entrypoints[FW_RULES_GET], handle_get },
};

static int fw_init(struct modrt *rt, void **ret_state)
{
        struct fw *fw;
        char err[256] = "";
        int r;

        (void)rt;
        fw = calloc(1, sizeof(*fw));
        if (!fw)
                return -ENOMEM;
        fw->rt = rt;
        fw->nl_fd = -1;
        fw->nft = nft_open();
        if (!fw->nft) {
                free(fw);
                return -ENOMEM;
        }
        /* watching first: a change between reading the ruleset and watching is not missed */
        r = watch_open(fw);
        /* tests: take the first big batch's window as shared with another commit,
         * so that what follows (reading our tables, rebuilding them) is exercised */
        fw->test_deaf = getenv("NOVA_FW_TEST_DEAF") != NULL;
        if (r < 0)
                log_warn("cannot watch nftables for changes by others (%s): a flushed ruleset is repaired only at "
                         "the next request", strerror(-r));
        /* Set up (or check) our tables now, so problems show at start; a
         * failure is reported but the module still serves (every call then
         * says what is wrong). */
        r = ensure_ready(fw, err, sizeof(err));
        if (r < 0)
                log_warn("security groups not ready: %s", err);
        else {
                unsigned shards = 0;
                for (unsigned k = 0; k < FW_MAX_SHARDS; k++)
                        shards += fw->snap.shards[k].ours;
                log_info("nftables tables ready: %zu ports in %u shard tables, %zu group chain pairs", fw->snap.n_ports,
                         shards, fw->snap.n_groups);
        }
        guard_setup(fw); /* after the filter: it passes only what the filter accepts */
        fw->serving = true;
        *ret_state = fw;
        return 0;
}

static void fw_done(void *state)
{
        struct fw *fw = state;

        if (!fw)
                return;
        fw_snap_free(&fw->snap);
        fw_nl_free(&fw->nl);
        if (fw->guard_flags & FW_GUARD_F_PERSIST)
                log_info("leaving the fail-closed guard in place (orphaned until the next start adopts it)");
        if (fw->nl_fd >= 0)
                close(fw->nl_fd); /* the kernel deletes an owned table without PERSIST now */
        if (fw->watch_sk)
                mnl_socket_close(fw->watch_sk);
        nft_ctx_free(fw->nft);
        free(fw);
}

static const struct modrt_module firewall_control_module = {
        .protocol = &fw_protocol,
        .entries = entries,
        .n_entries = ARRAY_SIZE(entries),
        .init = fw_init,
        .done = fw_done,
        .run = fw_run,
        .idle_fd = fw_idle_fd,
        .on_idle_fd = fw_on_idle_fd,
};

/* nova-firewall-control --purge: for the snap's remove hook, after the core
 * deleted every instance. Deletes our tables (only those that carry our owner
 * mark; a foreign table of the same name is left alone) and nothing else.
 * Takes no input: nothing to validate, no name from outside. */
static int purge_main(void)
{
        _cleanup_(sbuf_free) struct sbuf b = { 0 };
        struct fw fw = { 0 };
        struct fw_tables tables = { 0 };
        unsigned n_dropped = 0;
        char err[256] = "";
        int r;

        log_init("firewall-control", LOG_LVL_INFO);
        r = modrt_drop_privileges(plug_table[PLUG_FIREWALL_CONTROL].caps, err, sizeof(err));
        if (r < 0) {
                log_err("%s", err);
                return 1;
        }
        fw.nft = nft_open();
        if (!fw.nft) {
                log_err("cannot set up libnftables");
                return 1;
        }
        r = snap_read(&fw, NULL, &fw.snap, &tables);
        if (r < 0) {
                log_err("cannot read our nftables tables: %s", strerror(-r));
                goto out;
        }
        for (unsigned k = 0; k < FW_MAX_SHARDS; k++) {
                char table[FW_TABLE_NAME_MAX];
                if (!fw.snap.shards[k].exists)
                        continue;
                fw_shard_table(k, table);
                if (!fw.snap.shards[k].ours) {
                        log_warn("table inet %s is not ours (no owner mark): left alone", table);
                        continue;
                }
                fw_build_drop_shard(&b, k);
                n_dropped++;
        }
        if (fw.snap.bridge_exists && !fw.snap.bridge_ours)
                log_warn("table bridge " FW_TABLE " is not ours (no owner mark): left alone");
        if (fw.snap.bridge_ours) {
                fw_build_drop_bridge(&b);
                n_dropped++;
        }
        /* the guard: deletable once its owner (the module) has exited and left it orphaned;
         * while a module runs the kernel refuses (EPERM) and nothing is deleted */
        if (tables.guard && !(tables.guard_flags & (FW_GUARD_F_OWNER | FW_GUARD_F_PERSIST)))
                log_warn("table bridge " FW_GUARD_TABLE " is not ours (neither owned nor left by a module): left alone");
        else if (tables.guard) {
                fw_build_drop_guard(&b);
                n_dropped++;
        }
        if (fw.snap.n_ports)
                log_warn("purging with %zu port(s) still filtered", fw.snap.n_ports);
        if (b.err) {
                r = b.err;
                goto out;
        }
        if (b.len) {
                r = nft_run(&fw, b.p, err, sizeof(err));
                if (r < 0) {
                        log_err("%s%s", err,
                                tables.guard && strstr(err, "not permitted")
                                        ? " (the guard table " FW_GUARD_TABLE " belongs to a running process, a "
                                          "nova-firewall-control: stop it first; nothing was deleted)"
                                        : "");
                        goto out;
                }
        }
        log_info("purged: %u table(s) of ours dropped", n_dropped);
out:
        fw_snap_free(&fw.snap);
        nft_ctx_free(fw.nft);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
        if (argc == 2 && streq(argv[1], "--purge"))
                return purge_main();
        return modrt_main(&firewall_control_module, argc, argv);
}
