/* secgroups-client.c - drives nova-firewall-control the way the core does: a
 * SOCK_SEQPACKET socketpair to the module (started with `--fd 3`), its HELLO
 * checked, then ports_rules_apply / port_rules_apply / port_rules_remove
 * requests built with pw_*, each timed from send to decoded reply. Run it in
 * a private network namespace (bench/secgroups does): the module installs its
 * tables in the namespace it starts in.
 *
 *   secgroups-client full shared|distinct PORTS [RULES]
 *       Fresh module, then PORTS ports in ports_rules_apply batches: `shared`
 *       all ports in one RULES-rule group (100 ports a call, FW_MAX_BATCH),
 *       `distinct` one RULES-rule group per port (as many ports a call as the
 *       64 groups of a call and the frame limits allow: 58 with 20 rules; the
 *       rules of these bulk calls go as their canonical texts, `rule_texts`,
 *       one protocol value each; one-port calls send RULE objects, as the core).
 *       Prints: ours full mode=M ports=N rules=R batch=B calls=C total_s=T
 *               max_call_ms=X module_cpu_s=Y module_user_s=U module_sys_s=S rss_kb=Z hwm_kb=W
 *               after_read_rss_kb=R after_read_hwm_kb=H
 *       (S: the module's system time, nearly all of it the kernel's nf_tables
 *       work on our batches, which runs in the module's context on sendmsg: the
 *       floor any loader of the same ruleset pays; U: the module itself)
 *       (R, H: after the checks, rules_list and rules_get, read the ruleset back)
 *   secgroups-client oneport shared|distinct SIZES REPS [RULES]
 *       Fresh module; for each N of SIZES (comma-separated, increasing): bring
 *       the ruleset to N ports (batched as above, timed as setup), all in one
 *       group (shared) or each with its own (distinct), then REPS times:
 *         modify  (distinct only) port_rules_apply of an existing port, its
 *                 group's rules changed (alternating between two rule sets)
 *         add     port_rules_apply of a new port: into the shared group, or
 *                 with a new group of its own
 *         remove  port_rules_remove of that new port, so N stays N
 *       Prints per N:
 *               ours setup mode=M n=N added=K batch=B calls=C total_s=T rss_kb=Z
 *               ours oneport mode=M n=N kind=modify|add|remove samples_ms=a,b,...
 *               ours cpu mode=M n=N calls=K module_cpu_ms_per_call=C system_share=S
 *               ours floor mode=M n=N chains=C samples_ms=a,b,...
 *       (C: the module's time on a CPU per call of the samples, from schedstat;
 *       S: the kernel's part of it, from the clock ticks of /proc/<pid>/stat)
 *       floor: the kernel's cost of the smallest commit in the same namespace
 *       with the N ports' ruleset in place (its C chains, counted by a
 *       GETCHAIN dump): REPS batches of one element added to a set of a
 *       scratch table (`inet nova_bench_floor`, removed afterwards), each
 *       timed from sendmsg to its ACK. Not the module: the client's own
 *       netlink socket. Every commit walks all chains of the namespace (the
 *       step of nf_tables_commit that makes the new generation visible), so
 *       this is the part of a one-port change no ruleset layout with a chain
 *       per port can avoid.
 *
 * Every phase is checked: rules_list must report exactly the ports applied,
 * and rules_get must read back the last modified group from the kernel.
 *
 * Rules (each group): ingress, IPv4, tcp, one destination port, remote
 * 10.<r>.0.0/16 - the shape of the anchor's per-port rules
 * (bench/anchors/iptables-secgroups.sh: -s 10.r.0.0/16 -p tcp --dport P).
 * The module adds its fixed part itself (conntrack state, anti-spoofing).
 *
 * Environment: NOVA_BIN (default build/bin), MODULE_LOG (the module's stderr;
 * default: inherited). */
#include "names.h"
#include "benchlib.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#define PLUG_NAME "firewall-control"
#define MAX_BATCH_PORTS 100  /* FW_MAX_BATCH */
#define MAX_BATCH_GROUPS 64  /* FW_MAX_BATCH_GROUPS */
#define MAX_PORTS 100000
#define NEW_PORT_BASE 0x400000 /* index space of the ports `oneport` adds and removes */
#define SHARED_GROUP 0xffffff  /* group index of `full shared` */

static struct proto_writer writer;
static struct proto_msg rx;
static uint32_t next_id;
static int module_fd = -1;
static unsigned n_rules = 20;

/* ---- names and rules of port/group index i ---- */

static void port_uuid(unsigned i, char out[UUID_STR_LEN + 1])
{
        /* the first 11 characters (qbr/tap names) are unique: 8 hex digits of i */
        (void)snprintf(out, UUID_STR_LEN + 1, "%08x-5eb0-4000-8000-%012x", 0x50000000U + i, i);
}

static void group_uuid(unsigned g, char out[UUID_STR_LEN + 1])
{
        (void)snprintf(out, UUID_STR_LEN + 1, "%08x-96b0-4000-8000-%012x", 0x60000000U + g, g);
}

static void port_mac(unsigned i, char out[18])
{
        (void)snprintf(out, 18, "fa:16:3e:%02x:%02x:%02x", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
}

static void port_ip(unsigned i, char out[16])
{
        unsigned n = i < NEW_PORT_BASE ? i + 1 : MAX_PORTS + 1 + (i - NEW_PORT_BASE);
        (void)snprintf(out, 16, "10.%u.%u.%u", 64 + ((n >> 16) & 0x3f), (n >> 8) & 0xff, n & 0xff);
}

/* The destination port of rule r (1..n_rules) of group g in variant v (0, or
 * 1: the modified rules, none equal to a rule of variant 0). Groups differ. */
static unsigned rule_port(unsigned g, unsigned v, unsigned r)
{
        return 1024 + ((g % 3000) * n_rules + (r - 1) + v * 31) % 64000;
}

/* The rules of group g in variant v: as RULE objects (one-port calls, as
 * the core sends them), or (texts) as their canonical texts, the compact
 * form of the bulk calls. */
static void write_rules(unsigned g, unsigned v, bool texts)
{
        pw_list_begin(&writer, texts ? "rule_texts" : "rules");
        for (unsigned r = 1; r <= n_rules; r++) {
                char remote[20];
                unsigned port = rule_port(g, v, r);

                (void)snprintf(remote, sizeof(remote), "10.%u.0.0/16", r % 250);
                if (texts) {
                        char text[80];
                        (void)snprintf(text, sizeof(text), "nh in 4 6 %u %u - - %s", port, port, remote);
                        pw_str(&writer, NULL, text);
                        continue;
                }
                pw_obj_begin(&writer, NULL);
                pw_str(&writer, "direction", "ingress");
                pw_u64(&writer, "ethertype", 4);
                pw_u64(&writer, "protocol", 6);
                pw_u64(&writer, "port_min", port);
                pw_u64(&writer, "port_max", port);
                pw_str(&writer, "remote", remote);
                pw_obj_end(&writer);
        }
        pw_list_end(&writer);
}

static void write_group(unsigned g, unsigned v, bool texts)
{
        char id[UUID_STR_LEN + 1];

        group_uuid(g, id);
        pw_obj_begin(&writer, NULL);
        pw_str(&writer, "id", id);
        write_rules(g, v, texts);
        pw_obj_end(&writer);
}

static void write_port_identity(unsigned i)
{
        char uuid[UUID_STR_LEN + 1], mac[18], ip[16];

        port_uuid(i, uuid);
        port_mac(i, mac);
        port_ip(i, ip);
        pw_str(&writer, "port_uuid", uuid);
        pw_str(&writer, "mac", mac);
        pw_list_begin(&writer, "ips");
        pw_str(&writer, NULL, ip);
        pw_list_end(&writer);
}

/* ---- the module ---- */

static void start_module(void)
{
        const char *bin = getenv("NOVA_BIN");

        bench_module_start(bin && *bin ? bin : "build/bin", "nova-firewall-control", NULL, getenv("MODULE_LOG"),
                           &module_fd);
        bench_check_hello(module_fd, -1, &rx, PLUG_NAME, bench_module_pid, NULL);
}

static void begin(const char *entrypoint)
{
        pw_init(&writer, PROTO_REQUEST, ++next_id, 0, entrypoint);
}

/* Send the request in `writer`, wait for its reply (events are skipped).
 * Returns the wall time in seconds; a failed call aborts. */
static double call(const char *what)
{
        const uint8_t *buf;
        size_t len;
        double t;
        int r;

        if ((r = pw_finish(&writer, &buf, &len)) < 0)
                die("%s: cannot build the request: %s (%u values, %zu bytes)", what, strerror(-r),
                    writer.n_values, writer.len);
        t = now_s();
        if (send(module_fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
                die("send (%s): %s", what, strerror(errno));
        do
                bench_recv_frame(module_fd, -1, &rx, what);
        while (rx.type == PROTO_EVENT);
        t = now_s() - t;
        if (rx.type != PROTO_REPLY || rx.id != next_id)
                die("%s: expected reply %u, got %s %u '%s'", what, next_id, proto_type_name(rx.type), rx.id, rx.name);
        if (rx.status != 0)
                die("%s failed: %s (%s)", what, strerror(-rx.status), proto_get_str(rx.body, "error", "?"));
        return t;
}

static void stop_module(void)
{
        int status;

        close(module_fd);
        module_fd = -1;
        while (waitpid(bench_module_pid, &status, 0) < 0)
                if (errno != EINTR)
                        die("waitpid: %s", strerror(errno));
        bench_module_pid = -1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("module ended with status 0x%x", status);
}

/* "VmRSS" or "VmHWM" of the module in kB. */
static long module_status_kb(const char *key)
{
        char path[64], line[256];
        size_t klen = strlen(key);
        long v = -1;
        FILE *f;

        (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)bench_module_pid);
        f = fopen(path, "re");
        if (!f)
                die("%s: %s", path, strerror(errno));
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, klen) == 0 && line[klen] == ':')
                        v = strtol(line + klen + 1, NULL, 10);
        fclose(f);
        return v;
}

/* CPU seconds of the module so far, user and system (the kernel's nf_tables
 * commit work runs in its context and counts as its system time). */
static void module_cpu(double *user, double *sys)
{
        char path[64], buf[1024];
        unsigned long ut = 0, st = 0;
        const char *p;
        ssize_t n;
        int fd;

        (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)bench_module_pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                die("%s: %s", path, strerror(errno));
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                die("%s: cannot read", path);
        buf[n] = '\0';
        p = strrchr(buf, ')'); /* fields after the command name; utime and stime are 14 and 15 */
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
                die("%s: cannot parse", path);
        *user = (double)ut / (double)sysconf(_SC_CLK_TCK);
        *sys = (double)st / (double)sysconf(_SC_CLK_TCK);
}

/* Seconds the module has been on a CPU (/proc/<pid>/schedstat, ns: finer than
 * the clock ticks of /proc/<pid>/stat). */
static double module_oncpu_s(void)
{
        char path[64];
        unsigned long long ns = 0;
        FILE *f;

        (void)snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)bench_module_pid);
        f = fopen(path, "re");
        if (!f || fscanf(f, "%llu", &ns) != 1)
                die("%s: cannot read", path);
        fclose(f);
        return (double)ns / 1e9;
}

/* ---- requests ---- */

static void write_batch(unsigned from, unsigned n, bool shared);

/* Ports that fit one ports_rules_apply when each brings its own group: the
 * most for which a frame of the widest ports (the last indices, the longest
 * rule texts) still encodes, up to the groups a call may carry. */
static unsigned distinct_batch(unsigned ports)
{
        unsigned k = MAX_BATCH_GROUPS;
        const uint8_t *buf;
        size_t len;

        for (; k > 0; k--) {
                write_batch(ports > k ? ports - k : 0, k, false);
                if (pw_finish(&writer, &buf, &len) == 0)
                        break;
        }
        if (k == 0)
                die("%u rules per group do not fit one request", n_rules);
        return k;
}

/* The ports_rules_apply of ports [from, from + n) in `writer`: shared group or one group per port. */
static void write_batch(unsigned from, unsigned n, bool shared)
{
        char id[UUID_STR_LEN + 1];

        begin("ports_rules_apply");
        pw_list_begin(&writer, "groups");
        if (shared)
                write_group(SHARED_GROUP, 0, true);
        else
                for (unsigned i = from; i < from + n; i++)
                        write_group(i, 0, true);
        pw_list_end(&writer);
        pw_list_begin(&writer, "ports");
        for (unsigned i = from; i < from + n; i++) {
                pw_obj_begin(&writer, NULL);
                write_port_identity(i);
                group_uuid(shared ? SHARED_GROUP : i, id);
                pw_list_begin(&writer, "groups");
                pw_str(&writer, NULL, id);
                pw_list_end(&writer);
                pw_obj_end(&writer);
        }
        pw_list_end(&writer);
}

/* ports_rules_apply of ports [from, from + n). */
static double apply_batch(unsigned from, unsigned n, bool shared)
{
        write_batch(from, n, shared);
        double t = call("ports_rules_apply");
        if (proto_get_u64(rx.body, "applied", 0) != n)
                die("ports_rules_apply: applied %llu of %u ports",
                    (unsigned long long)proto_get_u64(rx.body, "applied", 0), n);
        return t;
}

/* port_rules_apply of port i with its own group g in variant v. */
static double apply_one(unsigned i, unsigned g, unsigned v)
{
        begin("port_rules_apply");
        write_port_identity(i);
        pw_list_begin(&writer, "groups");
        write_group(g, v, false);
        pw_list_end(&writer);
        return call("port_rules_apply");
}

static double remove_one(unsigned i)
{
        char uuid[UUID_STR_LEN + 1];

        port_uuid(i, uuid);
        begin("port_rules_remove");
        pw_str(&writer, "port_uuid", uuid);
        return call("port_rules_remove");
}

/* rules_list (read from the kernel) must count exactly n ports. */
static void check_total(unsigned n)
{
        begin("rules_list");
        (void)call("rules_list");
        if (proto_get_u64(rx.body, "total", 0) != n)
                die("rules_list: %llu ports in the kernel, expected %u",
                    (unsigned long long)proto_get_u64(rx.body, "total", 0), n);
}

/* rules_get of port i must show group g with the rules of variant v. */
static void check_port(unsigned i, unsigned g, unsigned v)
{
        const struct proto_value *groups, *rules;
        char uuid[UUID_STR_LEN + 1], gid[UUID_STR_LEN + 1];
        unsigned r = 0;
        bool seen[1024] = { false };

        port_uuid(i, uuid);
        group_uuid(g, gid);
        begin("rules_get");
        pw_str(&writer, "port_uuid", uuid);
        (void)call("rules_get");
        groups = proto_get(rx.body, "groups");
        if (!groups || groups->count != 1 || !streq(proto_get_str(groups->child, "id", ""), gid))
                die("rules_get %s: not exactly group %s", uuid, gid);
        if (!proto_get_bool(rx.body, "complete", false))
                die("rules_get %s: port not complete", uuid);
        rules = proto_get(groups->child, "rules");
        if (!rules || rules->count != n_rules)
                die("rules_get %s: %u rules, expected %u", uuid, rules ? rules->count : 0, n_rules);
        for (const struct proto_value *o = rules->child; o; o = o->next, r++) {
                unsigned p = (unsigned)proto_get_u64(o, "port_min", 0);
                bool found = false;
                for (unsigned k = 1; k <= n_rules && k <= 1024; k++)
                        if (rule_port(g, v, k) == p && !seen[k - 1])
                                found = seen[k - 1] = true;
                if (!found)
                        die("rules_get %s: rule with port %u is not one of variant %u", uuid, p, v);
        }
}

/* ---- the kernel's floor: the smallest commit, from the client's own socket ---- */

#define FLOOR_TABLE "nova_bench_floor"

static struct mnl_socket *floor_nl;
static uint32_t floor_seq = 1;

static void floor_open(void)
{
        if (floor_nl)
                return;
        if (!(floor_nl = mnl_socket_open(NETLINK_NETFILTER)) || mnl_socket_bind(floor_nl, 0, MNL_SOCKET_AUTOPID) < 0)
                die("floor: netlink socket: %s", strerror(errno));
}

/* One recv() of the floor socket: its length (die on an error). */
static int floor_recv(char *buf, size_t size, const char *what)
{
        ssize_t n = mnl_socket_recvfrom(floor_nl, buf, size);

        if (n < 0)
                die("floor: %s: recv: %s", what, strerror(errno));
        return (int)n;
}

/* Read until the ACK (or error) of message seq; die on an error. */
static void floor_ack(uint32_t seq, const char *what)
{
        char buf[MNL_SOCKET_BUFFER_SIZE];

        for (;;) {
                int len = floor_recv(buf, sizeof(buf), what);
                for (const struct nlmsghdr *h = (const void *)buf; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
                        if (h->nlmsg_type != NLMSG_ERROR)
                                continue;
                        const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
                        if (e->error)
                                die("floor: %s: %s", what, strerror(-e->error));
                        if (h->nlmsg_seq == seq)
                                return;
                }
        }
}

/* One batch with a single message: a table, a set, an element, or the
 * table's removal; returns the seconds from sendmsg to its ACK. */
static double floor_batch(uint16_t type, uint16_t flags, const struct nftnl_table *t, struct nftnl_set *set,
                          const char *what)
{
        char buf[MNL_SOCKET_BUFFER_SIZE];
        struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, sizeof(buf));
        struct nlmsghdr *h;
        uint32_t seq;
        double t0;

        nftnl_batch_begin(mnl_nlmsg_batch_current(b), floor_seq++);
        mnl_nlmsg_batch_next(b);
        seq = floor_seq++;
        h = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), type, NFPROTO_INET, flags | NLM_F_ACK, seq);
        if (t)
                nftnl_table_nlmsg_build_payload(h, t);
        else if (type == NFT_MSG_NEWSET)
                nftnl_set_nlmsg_build_payload(h, set);
        else
                nftnl_set_elems_nlmsg_build_payload(h, set);
        mnl_nlmsg_batch_next(b);
        nftnl_batch_end(mnl_nlmsg_batch_current(b), floor_seq++);
        mnl_nlmsg_batch_next(b);
        t0 = now_s();
        if (mnl_socket_sendto(floor_nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) < 0)
                die("floor: %s: send: %s", what, strerror(errno));
        floor_ack(seq, what);
        t0 = now_s() - t0;
        mnl_nlmsg_batch_stop(b);
        return t0;
}

/* The chains of every table of the namespace (a GETCHAIN dump). */
static unsigned floor_count_chains(void)
{
        char buf[MNL_SOCKET_BUFFER_SIZE];
        uint32_t seq = floor_seq++;
        unsigned chains = 0;
        struct nlmsghdr *h = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, NFPROTO_UNSPEC, NLM_F_DUMP, seq);

        if (mnl_socket_sendto(floor_nl, h, h->nlmsg_len) < 0)
                die("floor: chain dump: %s", strerror(errno));
        for (;;) {
                int len = floor_recv(buf, sizeof(buf), "chain dump");
                for (h = (void *)buf; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
                        if (h->nlmsg_type == NLMSG_DONE)
                                return chains;
                        if (h->nlmsg_type == NLMSG_ERROR)
                                die("floor: chain dump: %s",
                                    strerror(-((const struct nlmsgerr *)mnl_nlmsg_get_payload(h))->error));
                        chains += h->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN);
                }
        }
}

/* reps one-element commits into a scratch table, then the table removed. */
static void floor_measure(const char *mode, unsigned n, unsigned reps)
{
        struct nftnl_table *t = nftnl_table_alloc();
        struct nftnl_set *set = nftnl_set_alloc();
        unsigned chains;

        if (!t || !set)
                die("out of memory");
        floor_open();
        chains = floor_count_chains();
        nftnl_table_set_str(t, NFTNL_TABLE_NAME, FLOOR_TABLE);
        nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
        nftnl_set_set_str(set, NFTNL_SET_TABLE, FLOOR_TABLE);
        nftnl_set_set_str(set, NFTNL_SET_NAME, "s");
        nftnl_set_set_u32(set, NFTNL_SET_FAMILY, NFPROTO_INET);
        nftnl_set_set_u32(set, NFTNL_SET_KEY_LEN, 4);
        nftnl_set_set_u32(set, NFTNL_SET_KEY_TYPE, 7); /* nft's ipv4_addr */
        nftnl_set_set_u32(set, NFTNL_SET_ID, 1);
        (void)floor_batch(NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, t, NULL, "create " FLOOR_TABLE);
        (void)floor_batch(NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, NULL, set, "create its set");
        printf("ours floor mode=%s n=%u chains=%u samples_ms=", mode, n, chains);
        for (unsigned k = 0; k < reps; k++) {
                struct nftnl_set *one = nftnl_set_alloc();
                struct nftnl_set_elem *e = nftnl_set_elem_alloc();
                uint32_t key = htonl(0x0a000000U + k);
                if (!one || !e)
                        die("out of memory");
                nftnl_set_set_str(one, NFTNL_SET_TABLE, FLOOR_TABLE);
                nftnl_set_set_str(one, NFTNL_SET_NAME, "s");
                nftnl_set_set_u32(one, NFTNL_SET_FAMILY, NFPROTO_INET);
                nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &key, sizeof(key));
                nftnl_set_elem_add(one, e);
                printf("%s%.3f", k ? "," : "",
                       floor_batch(NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, NULL, one, "add an element") * 1e3);
                nftnl_set_free(one);
        }
        putchar('\n');
        fflush(stdout);
        (void)floor_batch(NFT_MSG_DELTABLE, 0, t, NULL, "remove " FLOOR_TABLE);
        nftnl_set_free(set);
        nftnl_table_free(t);
}

/* ---- modes ---- */

static void print_samples(const char *mode, unsigned n, const char *kind, const double *s, unsigned reps)
{
        printf("ours oneport mode=%s n=%u kind=%s samples_ms=", mode, n, kind);
        for (unsigned k = 0; k < reps; k++)
                printf("%s%.3f", k ? "," : "", s[k] * 1e3);
        putchar('\n');
        fflush(stdout);
}

static void mode_full(bool shared, unsigned ports)
{
        unsigned batch = shared ? MAX_BATCH_PORTS : distinct_batch(ports), calls = 0;
        double total = 0, max = 0, user0, sys0, user1, sys1;

        start_module();
        module_cpu(&user0, &sys0);
        for (unsigned from = 0; from < ports; from += batch, calls++) {
                unsigned n = ports - from < batch ? ports - from : batch;
                double t = apply_batch(from, n, shared);
                total += t;
                max = t > max ? t : max;
        }
        module_cpu(&user1, &sys1);
        double cpu = user1 - user0 + sys1 - sys0;
        long rss = module_status_kb("VmRSS"), hwm = module_status_kb("VmHWM");
        check_total(ports);
        check_port(ports / 2, shared ? SHARED_GROUP : ports / 2, 0);
        /* rules_list and rules_get read the whole ruleset back (as the core's reconcile does) */
        long rss_read = module_status_kb("VmRSS"), hwm_read = module_status_kb("VmHWM");
        printf("ours full mode=%s ports=%u rules=%u batch=%u calls=%u total_s=%.4f max_call_ms=%.2f "
               "module_cpu_s=%.3f module_user_s=%.3f module_sys_s=%.3f rss_kb=%ld hwm_kb=%ld after_read_rss_kb=%ld "
               "after_read_hwm_kb=%ld\n",
               shared ? "shared" : "distinct", ports, n_rules, batch, calls, total, max * 1e3, cpu, user1 - user0,
               sys1 - sys0, rss, hwm, rss_read, hwm_read);
        fflush(stdout);
        stop_module();
}

static void mode_oneport(bool shared, const unsigned *sizes, unsigned n_sizes, unsigned reps)
{
        unsigned have = 0, batch = shared ? MAX_BATCH_PORTS : distinct_batch(MAX_PORTS);
        double *mod = calloc(reps, sizeof(double)), *add = calloc(reps, sizeof(double));
        double *rem = calloc(reps, sizeof(double));
        uint8_t *variant = calloc(sizes[n_sizes - 1], 1);
        const char *m = shared ? "shared" : "distinct";

        if (!mod || !add || !rem || !variant)
                die("out of memory");
        start_module();
        for (unsigned z = 0; z < n_sizes; z++) {
                unsigned n = sizes[z], calls = 0, last = 0;
                double setup = 0;

                for (unsigned from = have; from < n; from += batch, calls++)
                        setup += apply_batch(from, n - from < batch ? n - from : batch, shared);
                printf("ours setup mode=%s n=%u added=%u batch=%u calls=%u total_s=%.4f rss_kb=%ld\n", m, n, n - have,
                       batch, calls, setup, module_status_kb("VmRSS"));
                fflush(stdout);
                have = n;
                check_total(n);
                double u0, s0, u1, s1, c0 = module_oncpu_s(), c1;
                module_cpu(&u0, &s0);
                for (unsigned s = 0; s < reps; s++) {
                        unsigned fresh = NEW_PORT_BASE + z * reps + s;
                        if (!shared) {
                                /* an existing port, spread over the whole range: its own group changes */
                                unsigned i = (unsigned)(((unsigned long long)s * 7919 + 13 * (z + 1)) % n);
                                variant[i] ^= 1;
                                mod[s] = apply_one(i, i, variant[i]);
                                last = i;
                        }
                        /* a new port (in the shared group, or with a new group of its own), then gone again */
                        add[s] = apply_one(fresh, shared ? SHARED_GROUP : fresh, 0);
                        rem[s] = remove_one(fresh);
                }
                module_cpu(&u1, &s1);
                c1 = module_oncpu_s();
                check_total(n);
                if (shared)
                        check_port(n / 2, SHARED_GROUP, 0);
                else
                        check_port(last, last, variant[last]);
                if (!shared)
                        print_samples(m, n, "modify", mod, reps);
                print_samples(m, n, "add", add, reps);
                print_samples(m, n, "remove", rem, reps);
                unsigned ncalls = reps * (shared ? 2 : 3);
                printf("ours cpu mode=%s n=%u calls=%u module_cpu_ms_per_call=%.2f system_share=%.2f\n", m, n, ncalls,
                       (c1 - c0) * 1e3 / ncalls, u1 - u0 + s1 - s0 > 0 ? (s1 - s0) / (u1 - u0 + s1 - s0) : 0.0);
                fflush(stdout);
                floor_measure(m, n, reps);
        }
        stop_module();
        free(mod);
        free(add);
        free(rem);
        free(variant);
}

static unsigned parse_u(const char *s, unsigned lo, unsigned hi, const char *what)
{
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v < lo || v > hi)
                die("%s: '%s' is not a number in %u..%u", what, s, lo, hi);
        return (unsigned)v;
}

int main(int argc, char **argv)
{
        bench_name = "secgroups-client";
        if (argc >= 3 && streq(argv[1], "full") && argc <= 5) {
                if (!streq(argv[2], "shared") && !streq(argv[2], "distinct"))
                        die("full: mode is shared or distinct");
                unsigned ports = argc > 3 ? parse_u(argv[3], 1, MAX_PORTS, "PORTS") : 1000;
                if (argc > 4)
                        n_rules = parse_u(argv[4], 1, 200, "RULES");
                mode_full(streq(argv[2], "shared"), ports);
                return 0;
        }
        if (argc >= 5 && argc <= 6 && streq(argv[1], "oneport")) {
                unsigned sizes[16], n_sizes = 0;
                char *list = strdup(argv[3]), *save = NULL;
                if (!streq(argv[2], "shared") && !streq(argv[2], "distinct"))
                        die("oneport: mode is shared or distinct");
                if (!list)
                        die("out of memory");
                for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                        if (n_sizes == 16)
                                die("at most 16 sizes");
                        sizes[n_sizes] = parse_u(t, 1, MAX_PORTS, "SIZES");
                        if (n_sizes && sizes[n_sizes] <= sizes[n_sizes - 1])
                                die("SIZES must increase");
                        n_sizes++;
                }
                free(list);
                if (!n_sizes)
                        die("no SIZES");
                unsigned reps = parse_u(argv[4], 1, 100000, "REPS");
                if (argc > 5)
                        n_rules = parse_u(argv[5], 1, 200, "RULES");
                mode_oneport(streq(argv[2], "shared"), sizes, n_sizes, reps);
                return 0;
        }
        fprintf(stderr, "usage: %s full shared|distinct [PORTS [RULES]]\n"
                        "       %s oneport shared|distinct SIZES REPS [RULES]   (SIZES: e.g. 100,1000,3000)\n",
                argv[0], argv[0]);
        return 2;
}
