/* test-firewall-module.c - the real nova-firewall-control module, driven over
 * a raw socketpair as the core drives it, filtering real packets.
 *
 * Topology (all in private namespaces; the module runs in the test's own):
 *   [ns vm]  eth0 (the instance's NIC stand-in, port MAC and IP)
 *       |  veth
 *   tapXXXXXXXX-XX -- qbrXXXXXXXX-XX (Linux bridge) -- qvbXXXXXXXX-XX
 *                                                       |  veth
 *                                        qvoXXXXXXXX-XX on br-int (private ovs-vswitchd, userspace datapath)
 *                                                       |
 *   [ns rem] eth0 (the remote host) -- veth -- remXXXX on br-int
 * The hybrid plumbing is built here with ip(8) so that this test exercises
 * only the firewall module; the lifecycle tests use network-control's own.
 * The shard tests plumb a second instance the same way ([ns vmb], its own
 * tap/qbr/qvb/qvo) and fill the first shard table with ports that have no
 * devices (nftables does not care), so that the second one lands in shard 1.
 * Facts come from outside the module: packets counted by nftables counters
 * inside the receiving namespace, `nft` listings, /proc/<pid>/status. */
#include "harness.h"
#include "tmpdir.h"

#include "fw-nft.h"
#include "fw-protocol.h"
#include "names.h"
#include "proto.h"

#include <check.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* The window a flushed ruleset may stay open (issue 26: under 100 ms). Asserted in the plain build;
 * AddressSanitizer + UBSan code runs several times slower (the module restores the tables through
 * instrumented code: 123 ms seen at load 18 under make check SAN=1), so the bound there is the
 * plain one times the same factor make SAN=1 gives Check's timeouts. */
#if defined(__SANITIZE_ADDRESS__)
#define FLUSH_WINDOW_MS 500.0
#else
#define FLUSH_WINDOW_MS 100.0
#endif
#define TIMEOUT_MS 20000
#define VM_IP "10.9.0.5"
#define REM_IP "10.9.0.9"
#define VM_MAC "fa:16:3e:12:34:56"
#define GROUP_A "aaaaaaaa-0000-4000-8000-000000000001"
#define GROUP_B "bbbbbbbb-0000-4000-8000-000000000002"
#define VMB_MAC "fa:16:3e:12:34:57"
#define VMB_IP "10.9.0.6"

static struct ovs_fixture ovs;
static char port_uuid[37], tap[IFNAME_MAX], qbr[IFNAME_MAX], qvb[IFNAME_MAX], qvo[IFNAME_MAX];
static char ns_vm[32], ns_rem[32];
static char vmb_uuid[37], ns_vmb[32]; /* the second instance of the shard tests (plumbed by them) */

/* TCP from ns to ip:port reaches the other side's kernel (accepted or refused) within `secs`, rather
 * than being dropped on the way (timeout). */
static bool tcp_try(const char *ns, const char *ip, unsigned port, const char *secs)
{
        return sh("ip netns exec %s /usr/bin/python3 -c \"\n"
                  "import socket,sys\n"
                  "s=socket.socket(); s.settimeout(%s)\n"
                  "try:\n s.connect(('%s',%u)); sys.exit(0)\n"
                  "except ConnectionRefusedError: sys.exit(0)\n"
                  "except OSError: sys.exit(1)\n\"",
                  ns, secs, ip, port) == 0;
}

/* UDP from ns to ip:port gets an answer (ICMP port unreachable comes back) to one of `tries` datagrams,
 * each given 1 s. */
static bool udp_try(const char *ns, const char *ip, unsigned port, unsigned tries)
{
        return sh("ip netns exec %s /usr/bin/python3 -c \"\n"
                  "import socket,sys\n"
                  "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(1.0); s.connect(('%s',%u))\n"
                  "for i in range(%u):\n"
                  " try:\n  s.send(b'x'); s.recv(10); sys.exit(0)\n"
                  " except ConnectionRefusedError: sys.exit(0)\n"
                  " except OSError: pass\n"
                  "sys.exit(1)\n\"",
                  ns, ip, port, tries) == 0;
}

/* What must pass gets 3.5 s: TCP resends a lost SYN after 1 s and again after 3 s, and a loaded 2-core
 * machine did lose one (1 s alone failed about once a day at load 13+). What must be dropped is given
 * 1 s: the SYN or datagram is dropped at the first packet, and the tests count it at the guest too. */
static bool tcp_reaches(const char *ns, const char *ip, unsigned port) { return tcp_try(ns, ip, port, "3.5"); }
static bool tcp_blocked(const char *ns, const char *ip, unsigned port) { return !tcp_try(ns, ip, port, "1.0"); }
static bool udp_reaches(const char *ns, const char *ip, unsigned port) { return udp_try(ns, ip, port, 3); }
static bool udp_blocked(const char *ns, const char *ip, unsigned port) { return !udp_try(ns, ip, port, 1); }

static bool ping_ok(const char *ns, const char *ip) { return sh("ip netns exec %s ping -c1 -W1 %s", ns, ip) == 0; }

/* Packets counted by the counter rule `name` of table ip cnt in ns. */
static long counter(const char *ns, const char *name)
{
        _cleanup_free_ char *out = sh_out("ip netns exec %s nft list counter ip cnt %s 2>/dev/null", ns, name);
        const char *p = strstr(out, "packets ");

        return p ? strtol(p + 8, NULL, 10) : -1;
}

/* Our inet tables (shards) as `nft list tables` shows them, one name a line. */
#define OUR_INET_TABLES "nft list tables | awk '$2 == \"inet\" && $3 ~ /^" FW_TABLE "(_[0-9]+)?$/ { print $3 }' | sort"

static size_t ruleset_lines(void)
{
        _cleanup_free_ char *out = sh_out("for t in $(" OUR_INET_TABLES "); do nft list table inet $t; done 2>/dev/null; "
                                          "nft list table bridge " FW_TABLE " 2>/dev/null");
        size_t n = 0;

        for (char *p = out; *p; p++)
                n += *p == '\n';
        return n;
}

/* ---- topology ---- */

/* tap -> qbr -> qvb/qvo on br-int for a port, its instance's NIC in ns (up
 * with mac and ip), and the counters where its packets arrive. */
static void plumb_instance(const char *uuid, const char *ns, const char *mac, const char *ip)
{
        char t[IFNAME_MAX], b[IFNAME_MAX], v[IFNAME_MAX], o[IFNAME_MAX];

        ck_assert_int_eq(port_dev_name("tap", uuid, t), 0);
        ck_assert_int_eq(port_dev_name("qbr", uuid, b), 0);
        ck_assert_int_eq(port_dev_name("qvb", uuid, v), 0);
        ck_assert_int_eq(port_dev_name("qvo", uuid, o), 0);
        ck_assert_int_eq(sh("ip netns add %s", ns), 0);
        ck_assert_int_eq(sh("ip link add %s type bridge && ip link set %s up && "
                            "ip link add %s type veth peer name eth0 netns %s && ip link set %s master %s up && "
                            "ip link add %s type veth peer name %s && ip link set %s master %s up && ip link set %s up",
                            b, b, t, ns, t, b, v, o, v, b, o),
                         0);
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "add-port", "br-int", o, (char *)NULL), 0);
        /* the userspace datapath reads veths through AF_PACKET: no checksum offload */
        ck_assert_int_eq(sh("ip netns exec %s sh -c 'ip link set lo up; ip link set eth0 address %s; "
                            "ip addr add %s/24 dev eth0; ethtool -K eth0 tx off; ip link set eth0 up'",
                            ns, mac, ip),
                         0);
        /* counters where packets arrive (TCP SYNs and UDP, by destination port) */
        ck_assert_int_eq(sh("ip netns exec %s nft -f - <<'EOF'\n"
                            "table ip cnt {\n counter syn22 {}\n counter syn23 {}\n counter syn80 {}\n counter udp5000 {}\n"
                            " counter spoofed {}\n"
                            " chain in { type filter hook input priority 0;\n"
                            "  tcp dport 22 tcp flags syn counter name syn22\n"
                            "  tcp dport 23 tcp flags syn counter name syn23\n"
                            "  tcp dport 80 tcp flags syn counter name syn80\n"
                            "  udp dport 5000 counter name udp5000\n"
                            "  ip saddr 10.9.0.66 counter name spoofed\n }\n}\nEOF",
                            ns),
                         0);
}

static void unplumb_instance(const char *uuid, const char *ns)
{
        char t[IFNAME_MAX], b[IFNAME_MAX], v[IFNAME_MAX], o[IFNAME_MAX];

        if (port_dev_name("tap", uuid, t) < 0 || port_dev_name("qbr", uuid, b) < 0 ||
            port_dev_name("qvb", uuid, v) < 0 || port_dev_name("qvo", uuid, o) < 0)
                return;
        (void)ovs_vsctl(&ovs, NULL, "--if-exists", "del-port", "br-int", o, (char *)NULL);
        (void)sh("ip netns del %s; ip link del %s; ip link del %s; ip link del %s", ns, b, t, v);
}

static void topo_setup(void)
{
        random_port_uuid(port_uuid);
        ck_assert_int_eq(port_dev_name("tap", port_uuid, tap), 0);
        ck_assert_int_eq(port_dev_name("qbr", port_uuid, qbr), 0);
        ck_assert_int_eq(port_dev_name("qvb", port_uuid, qvb), 0);
        ck_assert_int_eq(port_dev_name("qvo", port_uuid, qvo), 0);
        (void)snprintf(ns_vm, sizeof(ns_vm), "fwvm%d", (int)getpid());
        (void)snprintf(ns_rem, sizeof(ns_rem), "fwrem%d", (int)getpid());
        /* instance B: its device names (first 11 characters) differ from ours */
        memcpy(vmb_uuid, port_uuid, sizeof(vmb_uuid));
        memcpy(vmb_uuid, "bbbbbbbb", 8);
        (void)snprintf(ns_vmb, sizeof(ns_vmb), "fwvmb%d", (int)getpid());
        ck_assert_int_eq(ovs_fixture_start(&ovs), 0);
        ck_assert_int_eq(ovs_fixture_add_bridge(&ovs, "br-int"), 0);
        plumb_instance(port_uuid, ns_vm, VM_MAC, VM_IP);
        ck_assert_int_eq(sh("ip netns add %s", ns_rem), 0);
        ck_assert_int_eq(sh("ip link add rem%d type veth peer name eth0 netns %s && ip link set rem%d up", (int)getpid() % 10000,
                            ns_rem, (int)getpid() % 10000),
                         0);
        char rem[16];
        (void)snprintf(rem, sizeof(rem), "rem%d", (int)getpid() % 10000);
        ck_assert_int_eq(ovs_vsctl(&ovs, NULL, "add-port", "br-int", rem, (char *)NULL), 0);
        ck_assert_int_eq(sh("ip netns exec %s sh -c 'ip link set lo up; ip addr add %s/24 dev eth0; "
                            "ethtool -K eth0 tx off; ip link set eth0 up'",
                            ns_rem, REM_IP),
                         0);
        ck_assert_int_eq(sh("ip netns exec %s nft -f - <<'EOF'\n"
                            "table ip cnt {\n counter spoofed {}\n counter spoofed_mac {}\n counter from_vm {}\n"
                            " chain in { type filter hook prerouting priority 0;\n"
                            "  ip saddr 10.9.0.66 counter name spoofed\n"
                            "  ip saddr 10.9.0.66 udp dport 53 counter name spoofed_mac\n"
                            "  ip saddr " VM_IP " counter name from_vm\n }\n}\nEOF",
                            ns_rem),
                         0);
        /* without the firewall everything passes (the plumbing works) */
        ck_assert_msg(ping_ok(ns_rem, VM_IP), "no connectivity through the plumbing before any rule");
}

/* Every table of ours (all shards, the bridge table), as a fresh install has none. */
static void drop_our_tables(void)
{
        (void)sh("for t in $(" OUR_INET_TABLES "); do nft delete table inet $t; done; "
                 "nft delete table bridge " FW_TABLE " 2>/dev/null; "
                 "nft delete table bridge " FW_GUARD_TABLE " 2>/dev/null; true"); /* an orphan: anyone's */
}

static void topo_teardown(void)
{
        unplumb_instance(vmb_uuid, ns_vmb); /* when a shard test left it */
        (void)sh("ip netns del %s; ip netns del %s; ip link del %s; ip link del %s; ip link del %s", ns_vm, ns_rem, qbr,
                 tap, qvb);
        drop_our_tables();
        ovs_fixture_stop(&ovs);
}

/* ---- the module on a raw socketpair ---- */

struct mod {
        pid_t pid;
        int fd;
        struct proto_msg *msg;
        struct proto_writer *w;
        char log[PATH_MAX];
        uint32_t next_id;
};

static struct mod m;

static int mod_recv(int timeout_ms)
{
        static uint8_t buf[PROTO_MAX_FRAME];
        struct pollfd p = { .fd = m.fd, .events = POLLIN };
        char err[256];
        ssize_t n;

        if (poll(&p, 1, timeout_ms) == 0)
                return 0;
        n = recv(m.fd, buf, sizeof(buf), 0);
        if (n <= 0)
                return -1;
        ck_assert_msg(proto_decode(buf, (size_t)n, m.msg, err, sizeof(err)) == 0, "bad frame: %s", err);
        return 1;
}

static void mod_start(void)
{
        /* the module's log in a dir of this test process, removed after a pass (tmpdir.h) */
        static char log_dir[64];
        static pid_t log_dir_owner;

        if (log_dir_owner != getpid()) {
                ck_assert_int_eq(test_tmpdir_make("nova-it-fwmod", log_dir, sizeof(log_dir)), 0);
                log_dir_owner = getpid();
        }
        memset(&m, 0, sizeof(m));
        (void)snprintf(m.log, sizeof(m.log), "%s/module.log", log_dir);
        m.pid = module_exec("nova-firewall-control", NULL, m.log, &m.fd);
        m.msg = malloc(sizeof(*m.msg));
        m.w = malloc(sizeof(*m.w));
        ck_assert(m.msg && m.w);
        ck_assert_int_eq(mod_recv(TIMEOUT_MS), 1);
        ck_assert_int_eq(m.msg->type, PROTO_HELLO);
        ck_assert_str_eq(m.msg->name, "firewall-control");
        ck_assert_uint_eq(proto_get(m.msg->body, "entrypoints")->count, _FW_MAX);
}

static void mod_stop(void)
{
        int status;

        close(m.fd);
        ck_assert_int_eq(waitpid(m.pid, &status, 0), m.pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "module exit status %d; see %s", status, m.log);
        free(m.msg);
        free(m.w);
}

/* Restart the module with NOVA_FW_GUARD=mode (NULL: unset, auto). */
static void mod_restart_guard(const char *mode)
{
        mod_stop();
        if (mode)
                ck_assert_int_eq(setenv("NOVA_FW_GUARD", mode, 1), 0);
        else
                ck_assert_int_eq(unsetenv("NOVA_FW_GUARD"), 0);
        mod_start();
}

/* As the core does, a request its schema check refuses is never sent: -EINVAL or
 * -ENOSYS (issue 20: one that reached the module would end it, see test-modrt). */
static int mod_call(void)
{
        const uint8_t *frame;
        size_t len;
        int verdict = core_request_check(&fw_protocol, m.w, NULL, 0);
        if (verdict < 0)
                return verdict;
        uint32_t id = ++m.next_id;

        pw_set_id(m.w, id);
        ck_assert_int_eq(pw_finish(m.w, &frame, &len), 0);
        ck_assert_int_eq(send(m.fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
        for (;;) {
                int r = mod_recv(TIMEOUT_MS);
                ck_assert_msg(r == 1, "no reply from the module; see %s", m.log);
                if (m.msg->type == PROTO_REPLY) {
                        ck_assert_uint_eq(m.msg->id, id);
                        return m.msg->status;
                }
        }
}

static const char *reply_error(void) { return proto_get_str(m.msg->body, "error", ""); }

struct rule_spec {
        const char *dir;
        unsigned ethertype, proto, pmin, pmax;
        int icmp_type;
        const char *remote;
};

static void write_rules(const struct rule_spec *rules, size_t n)
{
        pw_list_begin(m.w, "rules");
        for (size_t i = 0; i < n; i++) {
                pw_obj_begin(m.w, NULL);
                pw_str(m.w, "direction", rules[i].dir);
                pw_u64(m.w, "ethertype", rules[i].ethertype);
                if (rules[i].proto)
                        pw_u64(m.w, "protocol", rules[i].proto);
                if (rules[i].pmin) {
                        pw_u64(m.w, "port_min", rules[i].pmin);
                        pw_u64(m.w, "port_max", rules[i].pmax);
                }
                if (rules[i].icmp_type >= 0)
                        pw_u64(m.w, "icmp_type", (unsigned)rules[i].icmp_type);
                if (rules[i].remote)
                        pw_str(m.w, "remote", rules[i].remote);
                pw_obj_end(m.w);
        }
        pw_list_end(m.w);
}

/* port_rules_apply for our port with one group. */
static int apply(const char *group, const struct rule_spec *rules, size_t n, const char *mac, const char *ip)
{
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_rules_apply");
        pw_str(m.w, "port_uuid", port_uuid);
        pw_str(m.w, "mac", mac);
        pw_list_begin(m.w, "ips");
        pw_str(m.w, NULL, ip);
        pw_list_end(m.w);
        pw_list_begin(m.w, "groups");
        pw_obj_begin(m.w, NULL);
        pw_str(m.w, "id", group);
        write_rules(rules, n);
        pw_obj_end(m.w);
        pw_list_end(m.w);
        return mod_call();
}

/* Filler port i: no devices (nftables does not mind), its own uuid (the
 * first 11 characters, which name its devices, unique), MAC and IP. */
static void filler_port(unsigned i, char uuid[37], char mac[18], char ip[16])
{
        (void)snprintf(uuid, 37, "%08x-0000-4000-8000-000000000000", 0xd0000000U + i);
        (void)snprintf(mac, 18, "fa:16:3e:dd:%02x:%02x", (i >> 8) & 0xff, i & 0xff);
        (void)snprintf(ip, 16, "10.77.%u.%u", (i >> 8) & 0xff, i & 0xff);
}

static void write_batch_port(const char *uuid, const char *mac, const char *ip, const char *group)
{
        pw_obj_begin(m.w, NULL);
        pw_str(m.w, "port_uuid", uuid);
        pw_str(m.w, "mac", mac);
        pw_list_begin(m.w, "ips");
        pw_str(m.w, NULL, ip);
        pw_list_end(m.w);
        pw_list_begin(m.w, "groups");
        pw_str(m.w, NULL, group);
        pw_list_end(m.w);
        pw_obj_end(m.w);
}

/* ports_rules_apply of fillers first..first+n-1 and, when extra is set, of
 * that port too (mac, ip), all in one group. */
static int apply_many(const char *group, const struct rule_spec *rules, size_t n_rules, unsigned first, unsigned n,
                      const char *extra, const char *extra_mac, const char *extra_ip)
{
        char uuid[37], mac[18], ip[16];

        pw_init(m.w, PROTO_REQUEST, 0, 0, "ports_rules_apply");
        pw_list_begin(m.w, "groups");
        pw_obj_begin(m.w, NULL);
        pw_str(m.w, "id", group);
        write_rules(rules, n_rules);
        pw_obj_end(m.w);
        pw_list_end(m.w);
        pw_list_begin(m.w, "ports");
        if (extra)
                write_batch_port(extra, extra_mac, extra_ip, group);
        for (unsigned i = first; i < first + n; i++) {
                filler_port(i, uuid, mac, ip);
                write_batch_port(uuid, mac, ip, group);
        }
        pw_list_end(m.w);
        return mod_call();
}

static int remove_port(const char *uuid)
{
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_rules_remove");
        pw_str(m.w, "port_uuid", uuid);
        return mod_call();
}

/* rules_get of a port: its shard and table, as the module reads them back. */
static void assert_port_shard(const char *uuid, unsigned shard)
{
        char table[32];

        (void)snprintf(table, sizeof(table), shard ? FW_TABLE "_%u" : FW_TABLE, shard);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "rules_get");
        pw_str(m.w, "port_uuid", uuid);
        ck_assert_msg(mod_call() == 0, "rules_get %s: %s", uuid, reply_error());
        ck_assert_uint_eq(proto_get_u64(m.msg->body, "shard", 999), shard);
        ck_assert_str_eq(proto_get_str(m.msg->body, "table", ""), table);
        ck_assert(proto_get_bool(m.msg->body, "complete", false));
}

static uint64_t ports_total(void)
{
        pw_init(m.w, PROTO_REQUEST, 0, 0, "rules_list");
        ck_assert_int_eq(mod_call(), 0);
        return proto_get_u64(m.msg->body, "total", 0);
}

/* The kernel's nftables generation: one more per committed batch. */
static long nft_genid(void)
{
        _cleanup_free_ char *out = sh_out("/usr/bin/python3 -c \"\n"
                                          "import socket,struct\n"
                                          "s=socket.socket(socket.AF_NETLINK,socket.SOCK_RAW,12)\n"
                                          "s.send(struct.pack('=IHHIIBBH',20,(10<<8)|16,1,1,0,0,0,0))\n"
                                          "d=s.recv(4096); o=20\n"
                                          "while o+4<=len(d):\n"
                                          " l,t=struct.unpack_from('=HH',d,o)\n"
                                          " if t&0x3fff==1: print(struct.unpack_from('>I',d,o+4)[0]); break\n"
                                          " o+=(l+3)&~3\n\"");
        char *end;
        long v = strtol(out, &end, 10);

        ck_assert_msg(end != out, "no nftables generation: '%s'", out);
        return v;
}

/* Group A: ssh and ping from anywhere, udp 53, all egress (a neutron default group plus rules). */
static const struct rule_spec group_a[] = {
        { "ingress", 4, 6, 22, 22, -1, NULL },
        { "ingress", 4, 1, 0, 0, 8, NULL },
        { "ingress", 4, 17, 53, 53, -1, "10.9.0.0/24" },
        { "egress", 4, 0, 0, 0, -1, NULL },
        { "egress", 6, 0, 0, 0, -1, NULL },
};
/* Group B: only http in, all egress. */
static const struct rule_spec group_b[] = {
        { "ingress", 4, 6, 80, 80, -1, NULL },
        { "egress", 4, 0, 0, 0, -1, NULL },
};

/* Each test starts from no tables of ours and a fresh module. */
static void setup(void)
{
        drop_our_tables();
        mod_start();
}

static void teardown(void) { mod_stop(); }

/* ---- tests ---- */

START_TEST(test_privileges_and_tables)
{
        struct proc_security sec;
        _cleanup_free_ char *inet = NULL;

        ck_assert_int_eq(proc_security_read(m.pid, &sec), 0);
        ck_assert_uint_eq(sec.cap_eff, 1ULL << CAP_NET_ADMIN);
        ck_assert_uint_eq(sec.cap_prm, 1ULL << CAP_NET_ADMIN);
        ck_assert_uint_eq(sec.cap_bnd, 1ULL << CAP_NET_ADMIN);
        ck_assert(sec.no_new_privs);
        /* the module set up both tables and br_netfilter at start */
        inet = sh_out("nft list table inet " FW_TABLE);
        ck_assert_ptr_nonnull(strstr(inet, "iifname vmap @ports"));
        ck_assert_int_eq(sh("nft list table bridge " FW_TABLE), 0);
        _cleanup_free_ char *brnf = sh_out("cat /proc/sys/net/bridge/bridge-nf-call-iptables");
        ck_assert_int_eq(brnf[0], '1');
        /* the port is plumbed (tap, qbr, qvb) but has no rules yet, as between the
         * plumbing and the firewall step of a boot: nothing crosses its bridge */
        ck_assert(tcp_blocked(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_vm, REM_IP, 4444));
}
END_TEST

START_TEST(test_stateful_filtering_with_real_packets)
{
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());

        /* allowed ingress */
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(ping_ok(ns_rem, VM_IP));
        ck_assert(udp_reaches(ns_rem, VM_IP, 53));
        /* everything else ingress is dropped: the SYN never arrives */
        long before = counter(ns_vm, "syn23");
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        ck_assert_int_eq(counter(ns_vm, "syn23"), before);
        ck_assert(udp_blocked(ns_rem, VM_IP, 5000));
        ck_assert_int_eq(counter(ns_vm, "udp5000"), 0);
        /* egress is allowed and its replies come back although no ingress
         * rule allows them (conntrack): the remote answers with RST/ICMP */
        ck_assert(tcp_reaches(ns_vm, REM_IP, 4444));
        ck_assert(udp_reaches(ns_vm, REM_IP, 4444));
        ck_assert(ping_ok(ns_vm, REM_IP));
}
END_TEST

START_TEST(test_anti_spoofing)
{
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert(ping_ok(ns_vm, REM_IP));
        long from_vm = counter(ns_rem, "from_vm");
        ck_assert_int_gt(from_vm, 0);

        /* a spoofed source IP leaves the instance but never reaches the remote */
        ck_assert_int_eq(sh("ip netns exec %s ip addr add 10.9.0.66/24 dev eth0", ns_vm), 0);
        (void)sh("ip netns exec %s ping -c2 -W1 -I 10.9.0.66 %s", ns_vm, REM_IP);
        ck_assert_int_eq(counter(ns_rem, "spoofed"), 0);
        ck_assert_int_eq(sh("ip netns exec %s ip addr del 10.9.0.66/24 dev eth0", ns_vm), 0);

        /* a spoofed source MAC: nothing from the instance gets through */
        ck_assert_int_eq(sh("ip netns exec %s ip link set eth0 address fa:16:3e:66:66:66", ns_vm), 0);
        (void)sh("ip netns exec %s ip neigh flush all", ns_rem);
        from_vm = counter(ns_rem, "from_vm");
        ck_assert(!ping_ok(ns_vm, REM_IP));
        ck_assert_int_eq(counter(ns_rem, "from_vm"), from_vm);
        ck_assert_int_eq(sh("ip netns exec %s ip link set eth0 address %s", ns_vm, VM_MAC), 0);
        ck_assert(ping_ok(ns_vm, REM_IP));
}
END_TEST

/* Send one RARP request (QEMU's announce_self shape: sender and target hardware = mac,
 * addresses 0) from ns's eth0 with Ethernet source mac. */
static void send_rarp(const char *ns, const char *mac)
{
        ck_assert_int_eq(sh("ip netns exec %s python3 -c '\n"
                            "import socket\n"
                            "m = bytes.fromhex(\"%s\".replace(\":\", \"\"))\n"
                            "f = b\"\\xff\" * 6 + m + b\"\\x80\\x35\" + bytes([0, 1, 8, 0, 6, 4, 0, 3]) + m + bytes(4) + m + bytes(4)\n"
                            "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
                            "s.bind((\"eth0\", 0))\n"
                            "s.send(f + bytes(60 - len(f)))\n'",
                            ns, mac),
                         0);
}

/* The from_vm chain lets the instance's own RARP announcement out (QEMU sends it after a live
 * migration; OVN's activation-strategy=rarp needs it), and still drops one with a foreign source. */
START_TEST(test_rarp_announce_passes)
{
        _cleanup_free_ char *out = NULL;

        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert_int_eq(sh("ip netns exec %s nft -f - <<'EOF'\n"
                            "table netdev rarp {\n counter seen {}\n counter spoofed {}\n"
                            " chain in { type filter hook ingress device eth0 priority 0;\n"
                            "  ether type 0x8035 ether saddr " VM_MAC " counter name seen\n"
                            "  ether type 0x8035 ether saddr fa:16:3e:66:66:66 counter name spoofed\n }\n}\nEOF",
                            ns_rem),
                         0);
        send_rarp(ns_vm, VM_MAC);
        send_rarp(ns_vm, VM_MAC);
        out = sh_out("ip netns exec %s nft list counter netdev rarp seen", ns_rem);
        ck_assert_msg(strstr(out, "packets 2"), "the instance's own RARP did not pass: %s", out);
        free(out);
        /* a foreign source MAC: dropped (the vm_mac check comes first) */
        ck_assert_int_eq(sh("ip netns exec %s ip link set eth0 address fa:16:3e:66:66:66", ns_vm), 0);
        send_rarp(ns_vm, "fa:16:3e:66:66:66");
        out = sh_out("ip netns exec %s nft list counter netdev rarp spoofed", ns_rem);
        ck_assert_msg(strstr(out, "packets 0"), "a spoofed RARP passed: %s", out);
        ck_assert_int_eq(sh("ip netns exec %s ip link set eth0 address %s", ns_vm, VM_MAC), 0);
}
END_TEST

/* Flipping the port between two groups while a sender hammers a port that
 * neither allows: not one packet may get through during the changes. */
START_TEST(test_group_change_is_atomic)
{
        pid_t sender;
        int status;

        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        sender = fork();
        ck_assert_int_ge(sender, 0);
        if (sender == 0) {
                (void)setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
                execl("/bin/sh", "sh", "-c",
                      "exec ip netns exec \"$0\" /usr/bin/python3 -c \"\n"
                      "import socket,time\n"
                      "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                      "end=time.time()+6\n"
                      "while time.time()<end:\n"
                      " try: s.sendto(b'x',('" VM_IP "',5000))\n"
                      " except OSError: pass\n\"",
                      ns_rem, (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 40; i++) {
                if (i % 2 == 0)
                        ck_assert_msg(apply(GROUP_B, group_b, ARRAY_SIZE(group_b), VM_MAC, VM_IP) == 0, "%s",
                                      reply_error());
                else
                        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s",
                                      reply_error());
        }
        ck_assert_int_eq(waitpid(sender, &status, 0), sender);
        ck_assert_int_eq(counter(ns_vm, "udp5000"), 0);
        /* the last apply (A) is in force, B's rule is gone, one group chain pair left */
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 80));
        ck_assert_int_ne(sh("nft list chain inet " FW_TABLE " sg-" GROUP_B "-in"), 0);

        /* changing the group's rules (same group id) applies at once */
        static const struct rule_spec a2[] = { { "ingress", 4, 6, 23, 23, -1, NULL },
                                               { "egress", 4, 0, 0, 0, -1, NULL } };
        ck_assert_msg(apply(GROUP_A, a2, ARRAY_SIZE(a2), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert(tcp_reaches(ns_rem, VM_IP, 23));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 22));
}
END_TEST

START_TEST(test_read_back_list_remove)
{
        const struct proto_value *groups, *rules;

        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        pw_init(m.w, PROTO_REQUEST, 0, 0, "rules_get");
        pw_str(m.w, "port_uuid", port_uuid);
        ck_assert_int_eq(mod_call(), 0);
        ck_assert_str_eq(proto_get_str(m.msg->body, "mac", ""), VM_MAC);
        ck_assert(proto_get_bool(m.msg->body, "complete", false));
        ck_assert_str_eq(proto_get(m.msg->body, "ips")->child->v.s, VM_IP);
        groups = proto_get(m.msg->body, "groups");
        ck_assert_uint_eq(groups->count, 1);
        ck_assert_str_eq(proto_get_str(groups->child, "id", ""), GROUP_A);
        rules = proto_get(groups->child, "rules");
        ck_assert_uint_eq(rules->count, ARRAY_SIZE(group_a));
        /* what the kernel holds decodes to exactly the rules sent */
        bool seen_udp53 = false;
        for (const struct proto_value *r = rules->child; r; r = r->next)
                if (proto_get_u64(r, "protocol", 0) == 17) {
                        seen_udp53 = true;
                        ck_assert_uint_eq(proto_get_u64(r, "port_min", 0), 53);
                        ck_assert_str_eq(proto_get_str(r, "remote", ""), "10.9.0.0/24");
                }
        ck_assert(seen_udp53);

        pw_init(m.w, PROTO_REQUEST, 0, 0, "rules_list");
        ck_assert_int_eq(mod_call(), 0);
        ck_assert_uint_eq(proto_get_u64(m.msg->body, "total", 0), 1);
        ck_assert_str_eq(proto_get_str(proto_get(m.msg->body, "ports")->child, "port_uuid", ""), port_uuid);

        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_rules_remove");
        pw_str(m.w, "port_uuid", port_uuid);
        ck_assert_msg(mod_call() == 0, "%s", reply_error());
        /* chain, group chains and elements are gone; the port's bridge, still
         * plumbed, passes nothing either way (fail closed: no rules, no frames) */
        _cleanup_free_ char *inet = sh_out("nft list table inet " FW_TABLE);
        ck_assert_ptr_null(strstr(inet, port_uuid));
        ck_assert_ptr_null(strstr(inet, GROUP_A));
        _cleanup_free_ char *bridge = sh_out("nft list table bridge " FW_TABLE);
        ck_assert_ptr_null(strstr(bridge, tap));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_vm, REM_IP, 4444));
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_rules_remove");
        pw_str(m.w, "port_uuid", port_uuid);
        ck_assert_int_eq(mod_call(), -ENOENT);
        /* rules again: allowed traffic passes again, and only that */
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
}
END_TEST

START_TEST(test_restart_keeps_ruleset_unduplicated)
{
        size_t lines;

        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        lines = ruleset_lines();
        mod_stop();
        /* the ruleset outlives the module */
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        mod_start();
        ck_assert_uint_eq(ruleset_lines(), lines);
        /* the same apply again changes nothing */
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert_uint_eq(ruleset_lines(), lines);
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        /* a process crash (SIGKILL) loses nothing either */
        ck_assert_int_eq(kill(m.pid, SIGKILL), 0);
        int status;
        ck_assert_int_eq(waitpid(m.pid, &status, 0), m.pid);
        close(m.fd);
        free(m.msg);
        free(m.w);
        mod_start();
        ck_assert_uint_eq(ruleset_lines(), lines);
}
END_TEST

START_TEST(test_bad_input_changes_nothing)
{
        static const struct rule_spec bad_cidr_family[] = { { "ingress", 4, 6, 22, 22, -1, "fd00::/64" } };
        static const struct rule_spec icmp_on_tcp[] = { { "ingress", 4, 6, 0, 0, 8, NULL } };
        static const struct rule_spec ports_on_icmp[] = { { "ingress", 4, 1, 22, 22, -1, NULL } };
        static const struct rule_spec reversed[] = { { "ingress", 4, 6, 90, 80, -1, NULL } };
        size_t lines;

        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        lines = ruleset_lines();
        ck_assert_int_eq(apply(GROUP_B, bad_cidr_family, 1, VM_MAC, VM_IP), -EINVAL);
        ck_assert_ptr_nonnull(strstr(reply_error(), "IPv6"));
        ck_assert_int_eq(apply(GROUP_B, icmp_on_tcp, 1, VM_MAC, VM_IP), -EINVAL);
        ck_assert_int_eq(apply(GROUP_B, ports_on_icmp, 1, VM_MAC, VM_IP), -EINVAL);
        ck_assert_int_eq(apply(GROUP_B, reversed, 1, VM_MAC, VM_IP), -EINVAL);
        ck_assert_ptr_nonnull(strstr(reply_error(), "above"));
        /* refused by the schema: port 0, port > 65535, CIDR garbage, bad IP, too many rules */
        static const char *const garbage[] = { "10.0.0.0/33", "10.0.0.1/8", "ten/8", "10.0.0.0/8; drop", "" };
        for (size_t i = 0; i < ARRAY_SIZE(garbage); i++) {
                struct rule_spec r = { "ingress", 4, 6, 22, 22, -1, garbage[i] };
                ck_assert_int_eq(apply(GROUP_B, &r, 1, VM_MAC, VM_IP), -EINVAL);
        }
        ck_assert_int_eq(apply(GROUP_B, group_b, 1, VM_MAC, "10.9.0.300"), -EINVAL);
        /* port_min 0 and 70000 directly on the wire */
        for (int k = 0; k < 2; k++) {
                pw_init(m.w, PROTO_REQUEST, 0, 0, "port_rules_apply");
                pw_str(m.w, "port_uuid", port_uuid);
                pw_str(m.w, "mac", VM_MAC);
                pw_list_begin(m.w, "ips");
                pw_list_end(m.w);
                pw_list_begin(m.w, "groups");
                pw_obj_begin(m.w, NULL);
                pw_str(m.w, "id", GROUP_B);
                pw_list_begin(m.w, "rules");
                pw_obj_begin(m.w, NULL);
                pw_str(m.w, "direction", "ingress");
                pw_u64(m.w, "ethertype", 4);
                pw_u64(m.w, "protocol", 6);
                pw_u64(m.w, "port_min", k == 0 ? 0 : 22);
                pw_u64(m.w, "port_max", k == 0 ? 22 : 70000);
                pw_obj_end(m.w);
                pw_list_end(m.w);
                pw_obj_end(m.w);
                pw_list_end(m.w);
                ck_assert_int_eq(mod_call(), -EINVAL);
        }
        /* 201 rules in one group: more than a port may have */
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_rules_apply");
        pw_str(m.w, "port_uuid", port_uuid);
        pw_str(m.w, "mac", VM_MAC);
        pw_list_begin(m.w, "ips");
        pw_list_end(m.w);
        pw_list_begin(m.w, "groups");
        pw_obj_begin(m.w, NULL);
        pw_str(m.w, "id", GROUP_B);
        pw_list_begin(m.w, "rules");
        for (unsigned i = 0; i < PORT_MAX_RULES + 1; i++) {
                pw_obj_begin(m.w, NULL);
                pw_str(m.w, "direction", "ingress");
                pw_u64(m.w, "ethertype", 4);
                pw_u64(m.w, "protocol", 6);
                pw_u64(m.w, "port_min", 1000 + i);
                pw_u64(m.w, "port_max", 1000 + i);
                pw_obj_end(m.w);
        }
        pw_list_end(m.w);
        pw_obj_end(m.w);
        pw_list_end(m.w);
        ck_assert_int_eq(mod_call(), -EINVAL);
        /* nothing changed by any of it, and the port still filters as before */
        ck_assert_uint_eq(ruleset_lines(), lines);
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 80));
}
END_TEST

/* port_rules_apply whose group gives its rules as canonical texts
 * (rule_texts) and/or RULE objects (objs: one rule, tcp 22). */
static int apply_texts(const char *const *texts, size_t n, bool with_texts, bool objs)
{
        pw_init(m.w, PROTO_REQUEST, 0, 0, "port_rules_apply");
        pw_str(m.w, "port_uuid", port_uuid);
        pw_str(m.w, "mac", VM_MAC);
        pw_list_begin(m.w, "ips");
        pw_str(m.w, NULL, VM_IP);
        pw_list_end(m.w);
        pw_list_begin(m.w, "groups");
        pw_obj_begin(m.w, NULL);
        pw_str(m.w, "id", GROUP_B);
        if (with_texts) {
                pw_list_begin(m.w, "rule_texts");
                for (size_t i = 0; i < n; i++)
                        pw_str(m.w, NULL, texts[i]);
                pw_list_end(m.w);
        }
        if (objs) {
                static const struct rule_spec ssh[] = { { "ingress", 4, 6, 22, 22, -1, NULL } };
                write_rules(ssh, 1);
        }
        pw_obj_end(m.w);
        pw_list_end(m.w);
        return mod_call();
}

/* A group's rules as their canonical texts (the compact form of bulk
 * calls) are the same rules as RULE objects; a group with both, neither, or
 * a text that is not canonical is refused and changes nothing. */
START_TEST(test_rule_texts)
{
        static const char *const http_ssh[] = { "nh in 4 6 80 80 - - -", "nh in 4 6 22 22 - - 10.9.0.0/16" };
        static const char *const not_canonical[] = { "nh in 4 6 80 80 - - 10.9.0.1/16" };
        static const char *const twice[] = { "nh in 4 6 80 80 - - -", "nh in 4 6 80 80 - - -" };
        size_t lines;

        ck_assert_msg(apply_texts(http_ssh, 2, true, false) == 0, "%s", reply_error());
        ck_assert(tcp_reaches(ns_rem, VM_IP, 80));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        lines = ruleset_lines();
        ck_assert_int_eq(apply_texts(http_ssh, 2, true, true), -EINVAL); /* both */
        ck_assert_ptr_nonnull(strstr(reply_error(), "either rules or rule_texts"));
        ck_assert_int_eq(apply_texts(NULL, 0, false, false), -EINVAL); /* neither */
        ck_assert_int_eq(apply_texts(not_canonical, 1, true, false), -EINVAL);
        ck_assert_int_eq(apply_texts(twice, 2, true, false), -EINVAL);
        ck_assert_ptr_nonnull(strstr(reply_error(), "duplicate"));
        ck_assert_uint_eq(ruleset_lines(), lines);
        ck_assert(tcp_reaches(ns_rem, VM_IP, 80));
        /* and an empty list of texts is a group without rules, as an empty list of RULEs */
        ck_assert_msg(apply_texts(NULL, 0, true, false) == 0, "%s", reply_error());
        ck_assert(tcp_blocked(ns_rem, VM_IP, 80));
}
END_TEST

START_TEST(test_foreign_table_is_left_alone)
{
        mod_stop();
        ck_assert_int_eq(sh("nft delete table inet " FW_TABLE "; nft delete table bridge " FW_TABLE), 0);
        ck_assert_int_eq(sh("nft add table inet " FW_TABLE " && nft add chain inet " FW_TABLE " mine"), 0);
        mod_start();
        ck_assert_int_eq(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP), -EEXIST);
        ck_assert_ptr_nonnull(strstr(reply_error(), "not created by nova-hypervisor"));
        ck_assert_int_eq(sh("nft list chain inet " FW_TABLE " mine"), 0);
        ck_assert_int_ne(sh("nft list table bridge " FW_TABLE), 0);
        ck_assert_int_eq(sh("nft delete table inet " FW_TABLE), 0);
}
END_TEST


/* More ports than one shard holds: a second shard table appears, a port in
 * either filters the same real packets, a group shared by both shards
 * changes in both with one commit, a restart reads both back, and the
 * second shard's table goes with its last port, leaving shard 0 as it was. */
START_TEST(test_shards_with_real_packets)
{
        static const struct rule_spec a2[] = { { "ingress", 4, 6, 23, 23, -1, NULL },
                                               { "egress", 4, 0, 0, 0, -1, NULL } };
        const char *const ns_of[] = { ns_vm, ns_vmb }, *const ip_of[] = { VM_IP, VMB_IP };
        char uuid[37], mac[18], ip[16];
        size_t lines;
        long gen;

        plumb_instance(vmb_uuid, ns_vmb, VMB_MAC, VMB_IP);
        /* shard 0: our port A and FW_SHARD_PORTS - 1 fillers, all in group A */
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert_msg(apply_many(GROUP_A, group_a, ARRAY_SIZE(group_a), 0, FW_SHARD_PORTS - 1, NULL, NULL, NULL) == 0,
                      "%s", reply_error());
        {
                _cleanup_free_ char *tables = sh_out(OUR_INET_TABLES);
                ck_assert_str_eq(tables, FW_TABLE "\n");
        }
        /* six more, port B among them: a second shard */
        ck_assert_msg(apply_many(GROUP_A, group_a, ARRAY_SIZE(group_a), FW_SHARD_PORTS - 1, 5, vmb_uuid, VMB_MAC,
                                 VMB_IP) == 0,
                      "%s", reply_error());
        {
                _cleanup_free_ char *tables = sh_out(OUR_INET_TABLES);
                ck_assert_str_eq(tables, FW_TABLE "\n" FW_TABLE "_1\n");
        }
        ck_assert_int_eq(sh("nft list chain inet " FW_TABLE "_1 port-%s >/dev/null", vmb_uuid), 0);
        ck_assert_int_eq(sh("nft list chain inet " FW_TABLE "_1 sg-" GROUP_A "-in >/dev/null"), 0);
        assert_port_shard(port_uuid, 0);
        assert_port_shard(vmb_uuid, 1);
        ck_assert_uint_eq(ports_total(), FW_SHARD_PORTS + 6);

        /* the same filtering for a port of either shard */
        for (size_t i = 0; i < 2; i++) {
                ck_assert_msg(tcp_reaches(ns_rem, ip_of[i], 22), "ssh to %s dropped", ip_of[i]);
                long before = counter(ns_of[i], "syn23");
                ck_assert_msg(tcp_blocked(ns_rem, ip_of[i], 23), "telnet to %s passed", ip_of[i]);
                ck_assert_int_eq(counter(ns_of[i], "syn23"), before);
                ck_assert_msg(tcp_reaches(ns_of[i], REM_IP, 4444), "egress of %s dropped", ip_of[i]);
        }

        /* group A changed through port A: both shards' copies, in one commit */
        gen = nft_genid();
        ck_assert_msg(apply(GROUP_A, a2, ARRAY_SIZE(a2), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert_int_eq(nft_genid(), gen + 1);
        for (size_t i = 0; i < 2; i++) {
                _cleanup_free_ char *chain = sh_out("nft list chain inet %s sg-" GROUP_A "-in", i ? FW_TABLE "_1" : FW_TABLE);
                ck_assert_msg(strstr(chain, "dport 23 jump accepted") && !strstr(chain, "dport 22 "), "%s", chain);
        }
        for (size_t i = 0; i < 2; i++) {
                ck_assert_msg(tcp_reaches(ns_rem, ip_of[i], 23), "telnet to %s dropped after the change", ip_of[i]);
                ck_assert_msg(tcp_blocked(ns_rem, ip_of[i], 22), "ssh to %s passed after the change", ip_of[i]);
        }

        /* a restart reads both shards back: nothing duplicated, nothing moved */
        lines = ruleset_lines();
        mod_stop();
        mod_start();
        ck_assert_uint_eq(ruleset_lines(), lines);
        ck_assert_uint_eq(ports_total(), FW_SHARD_PORTS + 6);
        assert_port_shard(vmb_uuid, 1);
        ck_assert_msg(apply(GROUP_A, a2, ARRAY_SIZE(a2), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert_uint_eq(ruleset_lines(), lines);

        /* shard 1's ports removed: its table goes, shard 0 stays exactly as it was */
        _cleanup_free_ char *shard0 = sh_out("nft list table inet " FW_TABLE);
        ck_assert_msg(remove_port(vmb_uuid) == 0, "%s", reply_error());
        for (unsigned i = FW_SHARD_PORTS - 1; i < FW_SHARD_PORTS + 4; i++) {
                filler_port(i, uuid, mac, ip);
                if (i == FW_SHARD_PORTS + 3) {
                        _cleanup_free_ char *tables = sh_out(OUR_INET_TABLES);
                        ck_assert_str_eq(tables, FW_TABLE "\n" FW_TABLE "_1\n"); /* until its last port */
                }
                ck_assert_msg(remove_port(uuid) == 0, "%s", reply_error());
        }
        {
                _cleanup_free_ char *tables = sh_out(OUR_INET_TABLES);
                ck_assert_str_eq(tables, FW_TABLE "\n");
                _cleanup_free_ char *now = sh_out("nft list table inet " FW_TABLE);
                ck_assert_str_eq(now, shard0);
                _cleanup_free_ char *bridge = sh_out("nft list table bridge " FW_TABLE);
                char tap_b[IFNAME_MAX];
                ck_assert_int_eq(port_dev_name("tap", vmb_uuid, tap_b), 0);
                ck_assert_ptr_null(strstr(bridge, tap_b));
        }
        ck_assert_uint_eq(ports_total(), FW_SHARD_PORTS);
        ck_assert(tcp_reaches(ns_rem, VM_IP, 23));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 22));
        unplumb_instance(vmb_uuid, ns_vmb);
}
END_TEST

/* A table named like a shard that is not ours: its index is skipped, it is
 * never written to, and it outlives our shards. */
START_TEST(test_foreign_shard_table_is_skipped)
{
        char uuid[37], mac[18], ip[16];

        ck_assert_int_eq(sh("nft add table inet " FW_TABLE "_1 && nft add chain inet " FW_TABLE "_1 mine"), 0);
        mod_stop();
        mod_start(); /* it exists when the module reads the ruleset */
        ck_assert_msg(apply_many(GROUP_B, group_b, ARRAY_SIZE(group_b), 0, FW_SHARD_PORTS + 1, NULL, NULL, NULL) == 0,
                      "%s", reply_error());
        {
                _cleanup_free_ char *tables = sh_out(OUR_INET_TABLES);
                ck_assert_str_eq(tables, FW_TABLE "\n" FW_TABLE "_1\n" FW_TABLE "_2\n");
                _cleanup_free_ char *foreign = sh_out("nft list table inet " FW_TABLE "_1");
                ck_assert_msg(strstr(foreign, "chain mine") && !strstr(foreign, "port-") && !strstr(foreign, "sg-") &&
                                      !strstr(foreign, "ports"),
                              "%s", foreign);
        }
        filler_port(FW_SHARD_PORTS, uuid, mac, ip);
        assert_port_shard(uuid, 2);
        ck_assert_msg(remove_port(uuid) == 0, "%s", reply_error());
        {
                _cleanup_free_ char *tables = sh_out(OUR_INET_TABLES);
                ck_assert_str_eq(tables, FW_TABLE "\n" FW_TABLE "_1\n");
        }
        ck_assert_int_eq(sh("nft list chain inet " FW_TABLE "_1 mine >/dev/null"), 0);
        ck_assert_uint_eq(ports_total(), FW_SHARD_PORTS);
        ck_assert_int_eq(sh("nft delete table inet " FW_TABLE "_1"), 0);
}
END_TEST

/* ---- VLAN-tagged frames (an instance port is not a trunk) ---- */

/* The kernel here has no 8021q module (no VLAN interfaces): the frames are
 * written whole through AF_PACKET and counted by a netdev ingress chain on
 * the receiver's eth0, before any VLAN handling of its own. */
static const struct {
        const char *name;
        unsigned tpid;
} tags[] = { { "802.1Q", 0x8100 }, { "802.1ad", 0x88a8 }, { "ethertype 0x88b5", 0x88b5 } };
#define ETH_P_EXPERIMENTAL 0x88b5 /* IEEE 802 local experimental: a non-IP protocol, sent untagged */

/* n tagged (tpid, VLAN 100) IPv4/UDP frames src -> dst to UDP port 5000, sent from
 * ns's eth0; with tpid ETH_P_EXPERIMENTAL the same bytes untagged under that ethertype. */
static void send_tagged(const char *ns, unsigned tpid, const char *src_mac, const char *dst_mac, const char *src_ip,
                        const char *dst_ip, int n)
{
        ck_assert_int_eq(sh("ip netns exec %s /usr/bin/python3 -c \"\n"
                            "import socket,struct\n"
                            "def mac(m): return bytes(int(x,16) for x in m.split(':'))\n"
                            "def csum(b):\n"
                            " t=sum(struct.unpack('!%%dH'%%(len(b)//2),b)); t=(t>>16)+(t&0xffff); t+=t>>16\n"
                            " return ~t&0xffff\n"
                            "udp=struct.pack('!HHHH',40000,5000,8+4,0)+b'vlan'\n"
                            "ip=struct.pack('!BBHHHBBH4s4s',0x45,0,20+len(udp),1,0,64,17,0,"
                            "socket.inet_aton('%s'),socket.inet_aton('%s'))\n"
                            "ip=ip[:10]+struct.pack('!H',csum(ip))+ip[12:]\n"
                            "t=%u\n"
                            "f=mac('%s')+mac('%s')+(struct.pack('!H',t) if t==%u else struct.pack('!HHH',t,100,0x0800))+ip+udp\n"
                            "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind(('eth0',0))\n"
                            "for i in range(%d): s.send(f)\n\"",
                            ns, src_ip, dst_ip, tpid, dst_mac, src_mac, ETH_P_EXPERIMENTAL, n),
                         0);
}

static void tag_counters_add(const char *ns)
{
        ck_assert_int_eq(sh("ip netns exec %s nft -f - <<'EOF'\n"
                            "table netdev vlancnt {\n counter q {}\n counter ad {}\n counter exp {}\n"
                            " chain in { type filter hook ingress device eth0 priority -500;\n"
                            "  ether type 8021q counter name q\n  ether type 8021ad counter name ad\n"
                            "  ether type 0x88b5 counter name exp\n }\n}\nEOF",
                            ns),
                         0);
}

/* Tagged frames of tag kind i that arrived on ns's eth0. */
static long tagged_in(const char *ns, size_t i)
{
        _cleanup_free_ char *out = sh_out("ip netns exec %s nft list counter netdev vlancnt %s 2>/dev/null", ns,
                                          i == 0 ? "q" : i == 1 ? "ad" : "exp");
        const char *p = strstr(out, "packets ");

        return p ? strtol(p + 8, NULL, 10) : -1;
}

/* Frames of tag kind i that arrived on ns's eth0 once `want` of them did, or
 * what there is after 3 s (the userspace switch forwards late under load). */
static long tagged_in_after(const char *ns, size_t i, long want)
{
        long n = tagged_in(ns, i);

        for (int t = 0; n < want && t < 3000; t += 20) {
                sleep_ms(20);
                n = tagged_in(ns, i);
        }
        return n;
}

START_TEST(test_tagged_and_non_ip_frames_dropped_both_ways)
{
        _cleanup_free_ char *rem_mac = sh_out("ip netns exec %s cat /sys/class/net/eth0/address", ns_rem);
        long before;

        rem_mac[strcspn(rem_mac, "\n")] = '\0';
        ck_assert_int_eq((int)strlen(rem_mac), 17);
        tag_counters_add(ns_vm);
        tag_counters_add(ns_rem);
        /* unfiltered (no fail-closed guard: it would drop every frame our filter did
         * not accept, and tagged frames never reach the inet hooks; and our bridge
         * table, whose fail-closed rule would stop everything on a port without
         * rules, deleted: with no port it is not made again until the next
         * request), tagged frames of both kinds cross the plumbing both ways; what
         * follows shows the bridge table's own rules dropping them */
        mod_restart_guard("off");
        ck_assert_int_eq(sh("nft delete table bridge " FW_TABLE), 0);
        for (size_t i = 0; i < ARRAY_SIZE(tags); i++) {
                long n;
                before = tagged_in(ns_vm, i);
                send_tagged(ns_rem, tags[i].tpid, rem_mac, VM_MAC, REM_IP, VM_IP, 5);
                n = tagged_in_after(ns_vm, i, before + 5);
                ck_assert_msg(n == before + 5, "%s: baseline remote -> instance %ld of 5", tags[i].name, n - before);
                before = tagged_in(ns_rem, i);
                send_tagged(ns_vm, tags[i].tpid, VM_MAC, rem_mac, VM_IP, REM_IP, 5);
                n = tagged_in_after(ns_rem, i, before + 5);
                ck_assert_msg(n == before + 5, "%s: baseline instance -> remote %ld of 5", tags[i].name, n - before);
        }

        /* filtered (group A: ICMP in, everything out): untagged IP passes as
         * the rules say; not one tagged or non-IP frame crosses either way,
         * whatever it carries (UDP 5000 from the remote; UDP the rules would
         * let out) */
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert(ping_ok(ns_rem, VM_IP));
        ck_assert(udp_reaches(ns_vm, REM_IP, 4444));
        for (size_t i = 0; i < ARRAY_SIZE(tags); i++) {
                /* after the frames, what the rules let through on the same path:
                 * once it is back, the frames before it were judged */
                before = tagged_in(ns_vm, i);
                send_tagged(ns_rem, tags[i].tpid, rem_mac, VM_MAC, REM_IP, VM_IP, 20);
                ck_assert(ping_ok(ns_rem, VM_IP));
                ck_assert_msg(tagged_in(ns_vm, i) == before, "%s: %ld of 20 frames reached the instance",
                              tags[i].name, tagged_in(ns_vm, i) - before);
                before = tagged_in(ns_rem, i);
                send_tagged(ns_vm, tags[i].tpid, VM_MAC, rem_mac, VM_IP, REM_IP, 20);
                ck_assert(udp_reaches(ns_vm, REM_IP, 4444));
                ck_assert_msg(tagged_in(ns_rem, i) == before, "%s: %ld of 20 frames left the instance",
                              tags[i].name, tagged_in(ns_rem, i) - before);
        }
        (void)sh("ip netns exec %s nft delete table netdev vlancnt; ip netns exec %s nft delete table netdev vlancnt",
                 ns_vm, ns_rem);
}
END_TEST

/* ---- others change our tables: the module restores them at once ---- */

/* All our tables as `nft list` prints them (no handles), lines sorted: a
 * rebuilt table lists its chains in the order they were made again. */
static char *our_tables_text(void)
{
        return sh_out("(for t in $(" OUR_INET_TABLES "); do nft list table inet $t; done 2>/dev/null; "
                      "nft list table bridge " FW_TABLE " 2>/dev/null) | LC_ALL=C sort");
}

/* Wait until our tables read exactly `want` again; the time it took in ms, or -1. */
static long wait_tables(const char *want, int timeout_ms)
{
        uint64_t t0 = now_usec();

        for (;;) {
                _cleanup_free_ char *now = our_tables_text();
                if (streq(now, want))
                        return (long)((now_usec() - t0) / 1000);
                if (now_usec() - t0 > (uint64_t)timeout_ms * 1000) {
                        FILE *f = fopen("/tmp/nova-it-fw-tables.diff", "w");
                        if (f) {
                                fprintf(f, "=== wanted\n%s=== found\n%s", want, now);
                                fclose(f);
                        }
                        return -1;
                }
                sleep_ms(5);
        }
}

static unsigned restores_logged(void)
{
        _cleanup_free_ char *n = sh_out("grep -c 'restored them with' %s", m.log);
        return (unsigned)strtoul(n, NULL, 10);
}

/* Something else changes our tables; the module puts back exactly what it had,
 * and the port filters as before. */
START_TEST(test_foreign_changes_are_restored)
{
        char cmds[16][256];
        size_t n = 0;
        long gen;

        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        /* and fillers for a second shard table: every shard is restored */
        ck_assert_msg(apply_many(GROUP_B, group_b, ARRAY_SIZE(group_b), 0, FW_SHARD_PORTS + 4, NULL, NULL, NULL) == 0,
                      "%s", reply_error());
        {
                _cleanup_free_ char *tables = sh_out(OUR_INET_TABLES);
                ck_assert_str_eq(tables, FW_TABLE "\n" FW_TABLE "_1\n");
        }
        /* our own commits are not taken for someone else's: one generation per change, no restore */
        gen = nft_genid();
        ck_assert_msg(apply(GROUP_B, group_b, ARRAY_SIZE(group_b), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        sleep_ms(300);
        ck_assert_int_eq(nft_genid(), gen + 2);
        ck_assert_uint_eq(restores_logged(), 0);
        _cleanup_free_ char *want = our_tables_text();
        ck_assert_ptr_nonnull(strstr(want, port_uuid));

#define CMD(...) (void)snprintf(cmds[n++], sizeof(cmds[0]), __VA_ARGS__)
        CMD("nft delete table inet " FW_TABLE);
        CMD("nft delete table bridge " FW_TABLE);
        CMD("nft delete chain inet " FW_TABLE " forward");
        CMD("nft delete chain bridge " FW_TABLE " prerouting");
        CMD("nft delete chain bridge " FW_TABLE " forward");
        CMD("nft flush chain inet " FW_TABLE " port-%s", port_uuid);
        CMD("nft flush chain bridge " FW_TABLE " from_vm");
        CMD("nft flush map inet " FW_TABLE " ports");
        CMD("nft flush set bridge " FW_TABLE " vm_mac");
        CMD("nft insert rule inet " FW_TABLE " forward accept");
        CMD("nft add table inet " FW_TABLE " '{ flags dormant; }'");
        CMD("nft delete table inet " FW_TABLE "_1");
        CMD("nft flush chain inet " FW_TABLE "_1 forward");
        CMD("nft flush ruleset");
#undef CMD
        for (size_t i = 0; i < n; i++) {
                unsigned before = restores_logged();
                ck_assert_msg(sh("%s", cmds[i]) == 0, "%s failed", cmds[i]);
                long ms = wait_tables(want, 5000);
                ck_assert_msg(ms >= 0, "after `%s` our tables did not come back (see %s)", cmds[i], m.log);
                fprintf(stderr, "test-firewall-module: `%s`: tables back within %ld ms\n", cmds[i], ms);
                for (int t = 0; t < 1000 && restores_logged() == before; t += 10)
                        sleep_ms(10);
                ck_assert_uint_eq(restores_logged(), before + 1);
                ck_assert_msg(tcp_reaches(ns_rem, VM_IP, 22), "after `%s`: ssh dropped", cmds[i]);
                ck_assert_msg(tcp_blocked(ns_rem, VM_IP, 23), "after `%s`: telnet passed", cmds[i]);
        }
        /* and the module still serves: a change, then a read-back */
        ck_assert_msg(apply(GROUP_B, group_b, ARRAY_SIZE(group_b), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert(tcp_reaches(ns_rem, VM_IP, 80));
        ck_assert_uint_eq(ports_total(), FW_SHARD_PORTS + 5);
}
END_TEST

/* A batch of QUIET_MIN_MSGS messages or more is committed with the module
 * not listening to nftables' notifications (firewall-control.c, "big
 * batches"). What must hold: the batches are applied whole; when another
 * process may have committed in that window (NOVA_FW_TEST_DEAF makes the
 * module take its first window so: a real one cannot be timed from here),
 * the module reads its tables and rebuilds them, once, with every port; and
 * it listens again afterwards: a flush is restored. */
START_TEST(test_big_batches_committed_without_listening)
{
        long gen;

        ck_assert_int_eq(setenv("NOVA_FW_TEST_DEAF", "1", 1), 0);
        mod_stop();
        mod_start();
        ck_assert_int_eq(unsetenv("NOVA_FW_TEST_DEAF"), 0); /* the next restart is a plain one */
        gen = nft_genid();
        ck_assert_msg(apply_many(GROUP_B, group_b, ARRAY_SIZE(group_b), 0, FW_SHARD_PORTS + 4, NULL, NULL, NULL) == 0,
                      "%s", reply_error());
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert_uint_eq(ports_total(), FW_SHARD_PORTS + 5);
        ck_assert_msg(file_contains(m.log, "while a batch of ours was applied without listening"),
                      "the window was not checked (see %s)", m.log);
        ck_assert_uint_eq(restores_logged(), 1);
        ck_assert_int_gt(nft_genid(), gen);
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        _cleanup_free_ char *want = our_tables_text();
        ck_assert_int_eq(sh("nft flush ruleset"), 0);
        ck_assert_msg(wait_tables(want, 5000) >= 0, "not restored after a quiet batch (see %s)", m.log);
        for (int t = 0; t < 1000 && restores_logged() == 1; t += 10)
                sleep_ms(10);
        ck_assert_uint_eq(restores_logged(), 2);
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
}
END_TEST

/* Debian's nftables.service with its stock /etc/nftables.conf (`flush
 * ruleset`, then an inet filter table of accept-all chains): stop runs
 * `nft flush ruleset`, start `nft -f /etc/nftables.conf`; here both run in
 * this test's namespace, never the host's. Our tables come back, theirs stay. */
START_TEST(test_nftables_service_restart_with_debian_defaults)
{
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        _cleanup_free_ char *want = our_tables_text();
        _cleanup_free_ char *conf = sh_out("dpkg -S /etc/nftables.conf 2>/dev/null; grep -c 'flush ruleset' /etc/nftables.conf");
        ck_assert_msg(strstr(conf, "nftables: /etc/nftables.conf"), "not Debian's packaged /etc/nftables.conf: %s", conf);

        /* restart: stop, then start */
        ck_assert_int_eq(sh("nft flush ruleset"), 0);
        ck_assert_int_eq(sh("nft -f /etc/nftables.conf"), 0);
        ck_assert_msg(wait_tables(want, 15000) >= 0, "our tables did not come back after the restart (see %s)", m.log);
        ck_assert_int_eq(sh("nft list table inet filter >/dev/null"), 0);
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        /* reload (start again on a running service): one transaction that flushes and loads */
        ck_assert_int_eq(sh("nft -f /etc/nftables.conf"), 0);
        ck_assert_msg(wait_tables(want, 15000) >= 0, "our tables did not come back after the reload (see %s)", m.log);
        ck_assert_int_eq(sh("nft list table inet filter >/dev/null"), 0);
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        ck_assert_int_eq(sh("nft delete table inet filter"), 0);
}
END_TEST

/* Changes that land while a restore runs: a restore commits twice (the
 * ports closed, then the tables), and another `nft flush ruleset` between or
 * before those commits makes the second one name tables that are gone. The
 * module must restore again from what it wrote, not fall back to an empty
 * table (its ports lost until the core's sync). Flushes in quick pairs, as
 * Debian's nftables.service does on a restart (stop: flush; start: a file
 * that begins with flush). */
START_TEST(test_flushes_during_a_restore)
{
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        for (unsigned i = 0; i < 3 * FW_MAX_BATCH; i += FW_MAX_BATCH)
                ck_assert_msg(apply_many(GROUP_B, group_b, ARRAY_SIZE(group_b), i, FW_MAX_BATCH, NULL, NULL, NULL) == 0,
                              "%s", reply_error());
        _cleanup_free_ char *want = our_tables_text();
        for (int round = 0; round < 4; round++) {
                ck_assert_int_eq(sh("nft flush ruleset; sleep 0.0%d; nft flush ruleset", 1 + round * 2), 0);
                long ms = wait_tables(want, 10000);
                ck_assert_msg(ms >= 0, "round %d: our tables did not come back (see %s)", round, m.log);
                sleep_ms(2100); /* the guard pauses after 10 restores within 2 s */
        }
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
}
END_TEST

/* Run python3 code in ns, in the background; its pid. */
static pid_t python_in_ns(const char *ns, const char *code)
{
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                (void)setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
                execlp("ip", "ip", "netns", "exec", ns, "/usr/bin/python3", "-c", code, (char *)NULL);
                _exit(127);
        }
        return pid;
}

/* Wall-clock seconds (CLOCK_REALTIME: the clock of packet timestamps). */
static double realtime_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A SYN flood to tcp/23 (which the port's group forbids) from the remote,
 * across cmd, run after 1 s of flood (the flood lasts flood_s): how many
 * crossed (the instance's counter) and when (its eth0 timestamps every SYN
 * to tcp/23 that arrives, SO_TIMESTAMPNS: the kernel's arrival time), and
 * how long until our tables read `want` again (-1: they did not within 5 s). */
struct flood {
        unsigned long sent;
        double secs, rate;       /* the flood's length and rate */
        long crossed;            /* SYNs counted at the instance */
        long seen;               /* ...timestamped there */
        double span_ms;          /* first to last timestamped */
        double first_ts, last_ts;
        double cmd_start, cmd_end; /* CLOCK_REALTIME around cmd */
        long back_ms;            /* our tables back */
};

static void flood_across(const char *cmd, const char *want, double flood_s, struct flood *f)
{
        char out_path[64], snif_path[64], snif_code[2048];
        pid_t sender, sniffer;
        int status;
        long before = counter(ns_vm, "syn23");

        *f = (struct flood){ 0 };
        (void)snprintf(snif_path, sizeof(snif_path), "/tmp/nova-it-sniff-%d", (int)getpid());
        (void)snprintf(snif_code, sizeof(snif_code),
                       "import socket,struct,time\n"
                       "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(0x0800)); s.bind(('eth0',0))\n"
                       "s.setsockopt(socket.SOL_SOCKET,35,1); s.settimeout(0.2)\n"
                       "n=0; first=last=0.0; end=time.time()+%.1f\n"
                       "open('%s.ready','w').close()\n"
                       "while time.time()<end:\n"
                       " try: d,anc,fl,a=s.recvmsg(256,64)\n"
                       " except socket.timeout: continue\n"
                       " ip=d[14:]\n"
                       " if len(ip)<40 or ip[9]!=6: continue\n"
                       " t=ip[(ip[0]&15)*4:]\n"
                       " if struct.unpack('!H',t[2:4])[0]!=23 or t[13]&0x12!=2: continue\n"
                       " ts=[struct.unpack('qq',x[2][:16]) for x in anc if x[0]==socket.SOL_SOCKET and x[1]==35]\n"
                       " ts=ts[0][0]+ts[0][1]/1e9 if ts else time.time()\n"
                       " first=first or ts; last=ts; n+=1\n"
                       "open('%s','w').write('%%d %%f %%f %%f'%%(n,(last-first)*1000,first,last))\n",
                       flood_s + 2.0, snif_path, snif_path);
        sniffer = python_in_ns(ns_vm, snif_code);
        {
                char ready[80];
                (void)snprintf(ready, sizeof(ready), "%s.ready", snif_path);
                for (int t = 0; t < 5000 && access(ready, F_OK) != 0; t += 20)
                        sleep_ms(20);
                ck_assert_int_eq(access(ready, F_OK), 0);
                (void)unlink(ready);
        }
        (void)snprintf(out_path, sizeof(out_path), "/tmp/nova-it-flood-%d", (int)getpid());
        sender = fork();
        ck_assert_int_ge(sender, 0);
        if (sender == 0) {
                char code[4096];
                (void)snprintf(code, sizeof(code),
                               "import socket,struct,time\n"
                               "src,dst=socket.inet_aton('" REM_IP "'),socket.inet_aton('" VM_IP "')\n"
                               "s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_TCP)\n"
                               "def csum(b):\n"
                               " t=sum(struct.unpack('!%%dH'%%(len(b)//2),b)); t=(t>>16)+(t&0xffff); t+=t>>16\n"
                               " return ~t&0xffff\n"
                               "n=0; t0=time.time(); end=t0+%.1f\n"
                               "while time.time()<end:\n"
                               " h=struct.pack('!HHIIBBHHH',1024+n%%60000,23,n,0,5<<4,2,65535,0,0)\n"
                               " c=csum(src+dst+struct.pack('!BBH',0,6,20)+h)\n"
                               " s.sendto(h[:16]+struct.pack('!H',c)+h[18:],('" VM_IP "',0)); n+=1\n"
                               "open('%s','w').write('%%d %%f'%%(n,time.time()-t0))\n",
                               flood_s, out_path);
                (void)setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
                execlp("ip", "ip", "netns", "exec", ns_rem, "/usr/bin/python3", "-c", code, (char *)NULL);
                _exit(127);
        }
        sleep_ms(1000);
        f->cmd_start = realtime_s();
        ck_assert_msg(sh("%s", cmd) == 0, "`%s` failed", cmd);
        f->cmd_end = realtime_s();
        f->back_ms = wait_tables(want, 5000);
        ck_assert_int_eq(waitpid(sender, &status, 0), sender);
        ck_assert_int_eq(waitpid(sniffer, &status, 0), sniffer);
        {
                _cleanup_free_ char *res = sh_out("cat %s; rm -f %s", snif_path, snif_path);
                ck_assert_int_eq(sscanf(res, "%ld %lf %lf %lf", &f->seen, &f->span_ms, &f->first_ts, &f->last_ts), 4);
        }
        {
                _cleanup_free_ char *res = sh_out("cat %s; rm -f %s", out_path, out_path);
                ck_assert_int_eq(sscanf(res, "%lu %lf", &f->sent, &f->secs), 2);
        }
        f->crossed = counter(ns_vm, "syn23") - before;
        f->rate = (double)f->sent / f->secs;
}

/* Our port with `fillers` more (FW_TEST_FLUSH_PORTS, default 299: the
 * figures in docs/ARCHITECTURE.md are for 0, 69 and 299), all in group A. */
static unsigned flood_ports(void)
{
        const char *env = getenv("FW_TEST_FLUSH_PORTS");
        unsigned fillers = env ? (unsigned)strtoul(env, NULL, 10) : 299;

        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        for (unsigned i = 0; i < fillers; i += FW_MAX_BATCH) {
                unsigned k = fillers - i < FW_MAX_BATCH ? fillers - i : FW_MAX_BATCH;
                ck_assert_msg(apply_many(GROUP_A, group_a, ARRAY_SIZE(group_a), i, k, NULL, NULL, NULL) == 0, "%s",
                              reply_error());
        }
        return fillers + 1;
}


/* The window without the guard (NOVA_FW_GUARD=off: the restore alone, as on
 * kernels without owned tables): SYNs flooded to a port the group forbids
 * while the ruleset is flushed cross until the module's first batch has
 * closed the ports. From the first crossing SYN to the last is how long it
 * was open (the count over the flood's rate says the same when the sender is
 * not starved of CPU). */
START_TEST(test_flush_window_under_100ms)
{
        struct flood f;

        mod_restart_guard("off");
        ck_assert_int_ne(sh("nft list table bridge " FW_GUARD_TABLE " >/dev/null 2>&1"), 0);
        unsigned ports = flood_ports();
        _cleanup_free_ char *want = our_tables_text();
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        /* FW_TEST_FLUSH_CMD: another way to flush (e.g. one that keeps its
         * netlink socket open for a while after the commit: see the
         * ARCHITECTURE notes on the kernel's commit mutex) */
        const char *flush_cmd = getenv("FW_TEST_FLUSH_CMD") ? getenv("FW_TEST_FLUSH_CMD") : "nft flush ruleset";
        flood_across(flush_cmd, want, 3.0, &f);
        ck_assert_msg(f.back_ms >= 0, "our tables did not come back after the flush");
        double window_ms = (double)f.crossed * 1000.0 / f.rate;
        fprintf(stderr,
                "test-firewall-module: guard off, %u ports: flood of %lu SYNs to tcp/23 in %.2f s (%.0f/s) across `%s`: "
                "%ld crossed (%.1f ms at the average rate); the instance saw %ld of them within %.1f ms "
                "(first to last); tables read back within %ld ms\n",
                ports, f.sent, f.secs, f.rate, flush_cmd, f.crossed, window_ms, f.seen, f.span_ms, f.back_ms);
        {
                _cleanup_free_ char *line = sh_out("grep -o 'restored them with .*' %s | tail -1", m.log);
                fprintf(stderr, "test-firewall-module: %u ports, module: %s", ports, line);
                /* the same events on one clock (CLOCK_REALTIME): the flush, the
                 * SYNs that crossed (kernel timestamps at the instance), the
                 * module's read of the news and its close */
                const char *at = strstr(line, "first notification (at ");
                const char *closed_at = at ? strstr(at, "ports closed ") : NULL;
                double read_ts = 0, close_ts = 0;
                if (closed_at)
                        closed_at = strstr(closed_at, "(at ");
                if (!at || !closed_at || sscanf(at, "first notification (at %lf", &read_ts) != 1 ||
                    sscanf(closed_at, "(at %lf", &close_ts) != 1)
                        read_ts = close_ts = 0;
                ck_assert_msg(read_ts > 0 && close_ts >= read_ts, "the module's restore line lacks its times: %s", line);
                fprintf(stderr,
                        "test-firewall-module: from the flush command's start (ms): it exited %.1f, first SYN crossed "
                        "%.1f, module read the news %.1f, ports closed %.1f, last SYN crossed %.1f; open on the wall "
                        "clock (first SYN crossed to ports closed): %.1f ms\n",
                        (f.cmd_end - f.cmd_start) * 1e3, f.seen ? (f.first_ts - f.cmd_start) * 1e3 : 0,
                        (read_ts - f.cmd_start) * 1e3, (close_ts - f.cmd_start) * 1e3,
                        f.seen ? (f.last_ts - f.cmd_start) * 1e3 : 0, f.seen ? (close_ts - f.first_ts) * 1e3 : 0);
        }
        ck_assert_msg(f.rate > 2000, "the flood is too slow to measure anything (%.0f/s)", f.rate);
        ck_assert_msg(window_ms < FLUSH_WINDOW_MS, "%ld SYNs crossed: open for %.1f ms", f.crossed, window_ms);
        ck_assert_msg(f.span_ms < FLUSH_WINDOW_MS, "SYNs crossed for %.1f ms", f.span_ms);
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        mod_restart_guard(NULL);
}
END_TEST

/* With the guard (the default here: owned and persistent on this kernel):
 * no window at all. The same flood across `nft flush ruleset` (three times),
 * a port chain flushed alone, each filter table deleted, the bridge table's
 * chains deleted: not one SYN crosses, and the tables come back. */
START_TEST(test_guard_leaves_no_window)
{
        char cmds[12][256];
        size_t n = 0;
        struct flood f;

        ck_assert_msg(file_contains(m.log, "owned by this module, persistent"), "no persistent guard (see %s)", m.log);
        unsigned ports = flood_ports();
        _cleanup_free_ char *want = our_tables_text();
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
#define CMD(...) (void)snprintf(cmds[n++], sizeof(cmds[0]), __VA_ARGS__)
        CMD("nft flush ruleset");
        CMD("nft flush ruleset");
        CMD("nft flush ruleset");
        CMD("nft flush chain inet " FW_TABLE " port-%s", port_uuid);
        CMD("nft delete table inet " FW_TABLE);
        CMD("nft delete table bridge " FW_TABLE);
        if (ports > FW_SHARD_PORTS)
                CMD("nft delete table inet " FW_TABLE "_1");
        CMD("nft flush chain inet " FW_TABLE " common");
        /* Debian's nftables.service with its stock configuration: a restart (stop: flush;
         * start: the file, which begins with `flush ruleset`), then a reload */
        CMD("nft flush ruleset && nft -f /etc/nftables.conf");
        CMD("nft -f /etc/nftables.conf");
#undef CMD
        for (size_t i = 0; i < n; i++) {
                flood_across(cmds[i], want, 2.0, &f);
                fprintf(stderr,
                        "test-firewall-module: guard on, %u ports: flood of %lu SYNs to tcp/23 in %.2f s (%.0f/s) "
                        "across `%s`: %ld crossed, the instance saw %ld (window 0 ms: %s); tables read back within %ld ms\n",
                        ports, f.sent, f.secs, f.rate, cmds[i], f.crossed, f.seen, f.crossed || f.seen ? "NO" : "yes",
                        f.back_ms);
                ck_assert_msg(f.back_ms >= 0, "after `%s` our tables did not come back (see %s)", cmds[i], m.log);
                ck_assert_msg(f.rate > 2000, "the flood is too slow to measure anything (%.0f/s)", f.rate);
                ck_assert_msg(f.crossed == 0 && f.seen == 0, "`%s`: %ld SYNs crossed (%ld seen within %.1f ms)",
                              cmds[i], f.crossed, f.seen, f.span_ms);
                ck_assert_int_eq(sh("nft list table bridge " FW_GUARD_TABLE " >/dev/null"), 0);
        }
        ck_assert_int_eq(sh("nft delete table inet filter"), 0); /* nftables.conf's */
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        /* ARP crosses the guard both ways (the bridge table gives it the pass) */
        ck_assert_int_eq(sh("ip netns exec %s ip neigh flush all && ip netns exec %s ip neigh flush all", ns_vm, ns_rem),
                         0);
        ck_assert(ping_ok(ns_rem, VM_IP));
        ck_assert_int_eq(sh("ip netns exec %s ip neigh flush all && ip netns exec %s ip neigh flush all", ns_vm, ns_rem),
                         0);
        ck_assert(ping_ok(ns_vm, REM_IP));
}
END_TEST

/* A flood from the instance: UDP to the remote, a third of it from the
 * port's own address and MAC, a third from a source IP that is not the
 * port's (SPOOF_IP) with its own MAC (to port 5000), a third from SPOOF_IP
 * and a foreign MAC (FOREIGN_MAC, to port 53, which group A lets in from
 * 10.9.0.0/24: the port chain takes a foreign MAC for a frame towards the
 * port and judges it by the ingress rules), across cmd; counted where it
 * arrives (ns_rem's counters "from_vm", "spoofed" (both spoofed kinds) and
 * "spoofed_mac"). */
#define SPOOF_IP "10.9.0.66"
#define FOREIGN_MAC "fa163e666666"
struct spoof_flood {
        unsigned long sent;
        double secs, rate;
        long spoofed, spoofed_mac, legit; /* datagrams that reached the remote, by source */
        long back_ms;                     /* our tables back */
};

static void spoof_flood_across(const char *cmd, const char *want, double flood_s, struct spoof_flood *f)
{
        char out_path[64], code[4096];
        long spoofed = counter(ns_rem, "spoofed"), spoofed_mac = counter(ns_rem, "spoofed_mac"),
             legit = counter(ns_rem, "from_vm");
        _cleanup_free_ char *rem_mac = sh_out("ip netns exec %s cat /sys/class/net/eth0/address", ns_rem);
        pid_t sender;
        int status;

        *f = (struct spoof_flood){ 0 };
        ck_assert_msg(rem_mac && strlen(rem_mac) >= 17, "no MAC of the remote: %s", rem_mac ? rem_mac : "");
        rem_mac[17] = '\0';
        (void)snprintf(out_path, sizeof(out_path), "/tmp/nova-it-spoof-%d", (int)getpid());
        (void)snprintf(code, sizeof(code),
                       "import socket,struct,time\n"
                       "srcs=[socket.inet_aton(a) for a in ('" SPOOF_IP "','" VM_IP "')]\n"
                       "dst=socket.inet_aton('" REM_IP "')\n"
                       "s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_RAW)\n"
                       "p=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); p.bind(('eth0',0))\n"
                       "eth=bytes.fromhex('%s'.replace(':',''))+bytes.fromhex('" FOREIGN_MAC "')+b'\\x08\\x00'\n"
                       "def csum(b):\n"
                       " t=sum(struct.unpack('!%%dH'%%(len(b)//2),b)); t=(t>>16)+(t&0xffff); t+=t>>16\n"
                       " return ~t&0xffff\n"
                       "n=0; t0=time.time(); end=t0+%.1f\n"
                       "while time.time()<end:\n"
                       " k=n%%3\n"
                       " udp=struct.pack('!HHHH',1024+n%%60000,53 if k==2 else 5000,16,0)+b'nova-spf'\n"
                       " ip=struct.pack('!BBHHHBBH4s4s',0x45,0,20+len(udp),n&0xffff,0,64,17,0,srcs[k&1],dst)\n"
                       " if k==2: p.send(eth+ip[:10]+struct.pack('!H',csum(ip))+ip[12:]+udp)\n"
                       " else: s.sendto(ip+udp,('" REM_IP "',0))\n"
                       " n+=1\n"
                       "open('%s','w').write('%%d %%f'%%(n,time.time()-t0))\n",
                       rem_mac, flood_s, out_path);
        ck_assert(ping_ok(ns_vm, REM_IP)); /* the remote's MAC is known before the flood starts */
        sender = python_in_ns(ns_vm, code);
        sleep_ms(1000);
        ck_assert_msg(sh("%s", cmd) == 0, "`%s` failed", cmd);
        f->back_ms = wait_tables(want, 5000);
        ck_assert_int_eq(waitpid(sender, &status, 0), sender);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the spoofing sender failed (%d)", status);
        {
                _cleanup_free_ char *res = sh_out("cat %s; rm -f %s", out_path, out_path);
                ck_assert_int_eq(sscanf(res, "%lu %lf", &f->sent, &f->secs), 2);
        }
        f->spoofed = counter(ns_rem, "spoofed") - spoofed;
        f->spoofed_mac = counter(ns_rem, "spoofed_mac") - spoofed_mac;
        f->legit = counter(ns_rem, "from_vm") - legit;
        f->rate = (double)f->sent / f->secs;
}

/* The anti-spoofing check has its own pass (FW_VM_MARK), which the guard
 * requires of every frame from a port besides the filter's: with the bridge
 * table deleted (or its from_vm or prerouting chain flushed), the inet
 * filter's egress rules still accept a datagram from the port's own MAC
 * whatever its source IP, and gave it the guard's pass; until the restore, a
 * spoofed source IP got out (and so did a foreign source MAC, which the port
 * chain judges by the ingress rules). A flood from the instance, two thirds of
 * it spoofed (spoof_flood_across), across each: not one spoofed datagram
 * reaches the remote, the others do (outside the restore), and the tables
 * come back. */
START_TEST(test_guard_no_spoofed_window)
{
        static const char *const cmds[] = {
                "nft delete table bridge " FW_TABLE,
                "nft delete table bridge " FW_TABLE,
                "nft flush chain bridge " FW_TABLE " from_vm",
                "nft flush chain bridge " FW_TABLE " prerouting",
        };
        struct spoof_flood f;

        ck_assert_msg(file_contains(m.log, "owned by this module, persistent"), "no persistent guard (see %s)", m.log);
        unsigned ports = flood_ports();
        _cleanup_free_ char *want = our_tables_text();
        for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
                spoof_flood_across(cmds[i], want, 2.0, &f);
                fprintf(stderr,
                        "test-firewall-module: guard on, %u ports: flood of %lu datagrams from the instance in %.2f s "
                        "(%.0f/s), two thirds from " SPOOF_IP " (half of them from a foreign MAC), across `%s`: %ld "
                        "spoofed reached the remote (%ld of them from the foreign MAC), %ld from " VM_IP
                        "; tables read back within %ld ms\n",
                        ports, f.sent, f.secs, f.rate, cmds[i], f.spoofed, f.spoofed_mac, f.legit, f.back_ms);
                ck_assert_msg(f.back_ms >= 0, "after `%s` our tables did not come back (see %s)", cmds[i], m.log);
                ck_assert_msg(f.rate > 2000, "the flood is too slow to measure anything (%.0f/s)", f.rate);
                ck_assert_msg(f.legit > 0, "`%s`: nothing from the instance's own address arrived", cmds[i]);
                ck_assert_msg(f.spoofed == 0, "`%s`: %ld spoofed datagrams reached the remote", cmds[i], f.spoofed);
        }
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(ping_ok(ns_vm, REM_IP));
}
END_TEST

/* The guard belongs to the module's netlink socket: `nft flush ruleset`
 * leaves it, and another process can neither delete nor change it (EPERM);
 * nothing changes when it tries. */
START_TEST(test_guard_refuses_others)
{
        static const char *const attempts[] = {
                "nft delete table bridge " FW_GUARD_TABLE,
                "nft flush table bridge " FW_GUARD_TABLE,
                "nft delete chain bridge " FW_GUARD_TABLE " forward",
                "nft flush chain bridge " FW_GUARD_TABLE " forward",
                "nft insert rule bridge " FW_GUARD_TABLE " forward accept",
                "nft add chain bridge " FW_GUARD_TABLE " x '{ type filter hook forward priority -500; }'",
                "nft add table bridge " FW_GUARD_TABLE " '{ flags dormant; }'",
        };

        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        _cleanup_free_ char *guard = sh_out("nft list table bridge " FW_GUARD_TABLE);
        ck_assert_msg(strstr(guard, "flags owner") && strstr(guard, "type filter hook forward priority 100") &&
                              strstr(guard, "type filter hook prerouting priority dstnat") /* -300 */ &&
                              strstr(guard, "meta mark & 0x01000000 == 0x00000000 drop"),
                      "the guard as listed:\n%s", guard);
        long gen = nft_genid();
        for (size_t i = 0; i < ARRAY_SIZE(attempts); i++) {
                _cleanup_free_ char *out = sh_out("%s 2>&1; echo rc=$?", attempts[i]);
                ck_assert_msg(strstr(out, "Operation not permitted") && !strstr(out, "rc=0"),
                              "`%s` was not refused: %s", attempts[i], out);
        }
        ck_assert_int_eq(nft_genid(), gen); /* nothing was committed */
        {
                _cleanup_free_ char *after = sh_out("nft list table bridge " FW_GUARD_TABLE);
                ck_assert_str_eq(after, guard);
        }
        ck_assert_int_eq(sh("nft flush ruleset"), 0);
        {
                _cleanup_free_ char *after = sh_out("nft list table bridge " FW_GUARD_TABLE);
                ck_assert_str_eq(after, guard);
        }
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
}
END_TEST

/* The module exits (persistent guard): the guard stays, orphaned, and the
 * port stays filtered (the filter gives its frames the pass); with the
 * filter deleted meanwhile it is closed, not open. A new run adopts the
 * guard (owned again: others are refused), and the port passes again once
 * it is applied. An orphan is anyone's to delete (what --purge relies on). */
START_TEST(test_guard_outlives_the_module_and_is_adopted)
{
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        mod_stop();
        _cleanup_free_ char *orphan = sh_out("nft list table bridge " FW_GUARD_TABLE);
        ck_assert_msg(strstr(orphan, "hook forward priority 100"), "no guard after the module exited:\n%s", orphan);
        /* filtered: the filter is intact and marks what it accepts */
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        /* the filter goes while nothing watches: closed, not open */
        ck_assert_int_eq(sh("nft delete table inet " FW_TABLE), 0);
        ck_assert(tcp_blocked(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        ck_assert(tcp_blocked(ns_vm, REM_IP, 4444));
        mod_start();
        ck_assert_msg(file_contains(m.log, "replaced the one an earlier run left"), "no adoption (see %s)", m.log);
        {
                _cleanup_free_ char *out = sh_out("nft delete table bridge " FW_GUARD_TABLE " 2>&1; echo rc=$?");
                ck_assert_msg(strstr(out, "Operation not permitted"), "the adopted guard is not owned: %s", out);
        }
        ck_assert(tcp_blocked(ns_rem, VM_IP, 22));
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        /* an orphan can be deleted by anyone */
        mod_stop();
        ck_assert_int_eq(sh("nft delete table bridge " FW_GUARD_TABLE), 0);
        mod_start();
        ck_assert_int_eq(sh("nft list table bridge " FW_GUARD_TABLE " >/dev/null"), 0);
}
END_TEST

/* NOVA_FW_GUARD=owner: owned, not persistent: it goes with the module (the
 * filter alone remains, as without the guard). NOVA_FW_GUARD=off: no guard,
 * an orphan left by an earlier run removed, and the restore alone still
 * brings a flushed ruleset back. */
START_TEST(test_guard_modes)
{
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        mod_restart_guard("owner"); /* replaces the persistent one left by the first run */
        ck_assert_msg(file_contains(m.log, "not persistent"), "see %s", m.log);
        {
                _cleanup_free_ char *out = sh_out("nft delete table bridge " FW_GUARD_TABLE " 2>&1; echo rc=$?");
                ck_assert_msg(strstr(out, "Operation not permitted"), "not owned: %s", out);
        }
        _cleanup_free_ char *want = our_tables_text();
        ck_assert_int_eq(sh("nft flush ruleset"), 0);
        ck_assert_msg(wait_tables(want, 5000) >= 0, "not restored (see %s)", m.log);
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        mod_stop();
        ck_assert_int_ne(sh("nft list table bridge " FW_GUARD_TABLE " >/dev/null 2>&1"), 0);
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22)); /* the filter alone */
        ck_assert_int_eq(setenv("NOVA_FW_GUARD", "auto", 1), 0);
        mod_start();
        mod_restart_guard("off"); /* the persistent one of that run is removed */
        ck_assert_msg(file_contains(m.log, "removed the one an earlier run left"), "see %s", m.log);
        ck_assert_int_ne(sh("nft list table bridge " FW_GUARD_TABLE " >/dev/null 2>&1"), 0);
        ck_assert_int_eq(sh("nft flush ruleset"), 0);
        ck_assert_msg(wait_tables(want, 5000) >= 0, "not restored without the guard (see %s)", m.log);
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        mod_restart_guard(NULL);
}
END_TEST

/* --purge (the snap's remove hook, after the core and its modules stopped):
 * refused whole while a module owns the guard (nothing deleted, and it says
 * why); once the module has exited, every table of ours goes, the orphaned
 * guard too. */
START_TEST(test_purge_with_the_guard)
{
        char prog[PATH_MAX];
        const char *bin = getenv("NOVA_BIN");

        ck_assert_ptr_nonnull(bin);
        (void)snprintf(prog, sizeof(prog), "%s/nova-firewall-control --purge", bin);
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        _cleanup_free_ char *before = sh_out("nft list ruleset");
        {
                _cleanup_free_ char *out = sh_out("%s 2>&1; echo rc=$?", prog);
                ck_assert_msg(strstr(out, "belongs to a running process") && !strstr(out, "rc=0"),
                              "purge while the module runs: %s", out);
        }
        {
                _cleanup_free_ char *after = sh_out("nft list ruleset");
                ck_assert_str_eq(after, before);
        }
        mod_stop();
        ck_assert_int_eq(sh("%s", prog), 0);
        {
                _cleanup_free_ char *tables = sh_out("nft list tables | grep " FW_TABLE "; true");
                ck_assert_msg(streq(tables, ""), "left after --purge:\n%s", tables);
        }
        /* a table of the guard's name that is neither owned nor an orphan is not ours: purge and
         * the module leave it alone (the module then runs without the guard, and says so) */
        ck_assert_int_eq(sh("nft add table bridge " FW_GUARD_TABLE), 0);
        {
                _cleanup_free_ char *out = sh_out("%s 2>&1; echo rc=$?", prog);
                ck_assert_msg(strstr(out, "is not ours") && strstr(out, "rc=0"), "purge: %s", out);
        }
        ck_assert_int_eq(sh("nft list table bridge " FW_GUARD_TABLE " >/dev/null"), 0);
        mod_start();
        ck_assert_msg(file_contains(m.log, "is not one an earlier run left"), "see %s", m.log);
        {
                _cleanup_free_ char *guard = sh_out("nft list table bridge " FW_GUARD_TABLE);
                ck_assert_msg(!strstr(guard, "flags owner") && !strstr(guard, "chain"), "%s", guard);
        }
}
END_TEST

/* A module that has no core to serve (inside the snap it waits for the core
 * at its socket) still restores its tables. */
START_TEST(test_guard_while_waiting_for_core)
{
        char dir[64], sock[96], prog[PATH_MAX];
        const char *bin = getenv("NOVA_BIN");
        pid_t pid;
        int status;

        ck_assert_ptr_nonnull(bin);
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        _cleanup_free_ char *want = our_tables_text();
        mod_stop();
        (void)snprintf(dir, sizeof(dir), "/tmp/nova-it-nocore-%d", (int)getpid());
        (void)snprintf(sock, sizeof(sock), "%s/modules.sock", dir);
        (void)snprintf(prog, sizeof(prog), "%s/nova-firewall-control", bin);
        ck_assert_int_eq(mkdir(dir, 0700), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int log = open(m.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (log >= 0)
                        (void)dup2(log, 2);
                execl(prog, "nova-firewall-control", "--connect", sock, (char *)NULL);
                _exit(127);
        }
        for (int t = 0; t < 10000 && !file_contains(m.log, "waiting for the core"); t += 20)
                sleep_ms(20);
        ck_assert_msg(file_contains(m.log, "waiting for the core"), "the module does not wait (see %s)", m.log);

        ck_assert_int_eq(sh("nft flush ruleset"), 0);
        ck_assert_msg(wait_tables(want, 5000) >= 0, "our tables did not come back while the module waits (see %s)",
                      m.log);
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));

        ck_assert_int_eq(kill(pid, SIGTERM), 0);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
        (void)rmdir(dir);
        mod_start(); /* for the teardown */
}
END_TEST

/* Tables without ports protect nothing: deleting them (as --purge does once
 * the last instance is gone) is left alone, and the next change makes them again. */
START_TEST(test_portless_tables_not_restored)
{
        ck_assert_int_eq(sh("nft list table inet " FW_TABLE " >/dev/null"), 0);
        ck_assert_int_eq(sh("nft delete table inet " FW_TABLE " && nft delete table bridge " FW_TABLE), 0);
        sleep_ms(500);
        ck_assert_uint_eq(restores_logged(), 0);
        ck_assert_int_ne(sh("nft list table inet " FW_TABLE " >/dev/null 2>&1"), 0);
        ck_assert_int_ne(sh("nft list table bridge " FW_TABLE " >/dev/null 2>&1"), 0);
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
}
END_TEST

/* A shard table deleted while the module was not running (issue 20, fail
 * closed): its ports' elements in the bridge table (the tap in `taps`) would
 * let every frame cross their bridges with no chain to judge them. The module
 * drops those elements when it starts, before the core's sync re-applies the
 * ports, so the port passes nothing until its rules are back. */
START_TEST(test_shard_deleted_while_down_fails_closed)
{
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        mod_stop();
        ck_assert_int_eq(sh("nft delete table inet " FW_TABLE), 0);
        mod_start();
        {
                _cleanup_free_ char *bridge = sh_out("nft list table bridge " FW_TABLE);
                ck_assert_msg(!strstr(bridge, tap), "the port's elements outlived its chain:\n%s", bridge);
        }
        /* closed both ways, allowed or not, until the port is applied again */
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_vm, REM_IP, 4444));
        ck_assert_uint_eq(ports_total(), 0);
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert(tcp_reaches(ns_rem, VM_IP, 22));
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
        ck_assert(tcp_reaches(ns_vm, REM_IP, 4444));
}
END_TEST

/* A tool that keeps deleting our table: the module does not fight it
 * forever; it says so and pauses its restores (the core's sync takes over). */
START_TEST(test_guard_gives_up_a_fight)
{
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert_int_eq(sh("for i in $(seq 400); do nft delete table inet " FW_TABLE " 2>/dev/null; "
                            "grep -q 'not restoring them for' %s && exit 0; sleep 0.01; done; exit 1", m.log), 0);
        ck_assert_uint_ge(restores_logged(), 10);
        /* from now on a deletion stays */
        (void)sh("nft delete table inet " FW_TABLE " 2>/dev/null");
        sleep_ms(500);
        ck_assert_int_ne(sh("nft list table inet " FW_TABLE " >/dev/null 2>&1"), 0);
        /* and the module still serves: the next change rebuilds what it needs */
        ck_assert_msg(apply(GROUP_A, group_a, ARRAY_SIZE(group_a), VM_MAC, VM_IP) == 0, "%s", reply_error());
        ck_assert(tcp_blocked(ns_rem, VM_IP, 23));
}
END_TEST

static Suite *suite(void)
{
        Suite *s = suite_create("firewall-module");
        TCase *tc = tcase_create("packets");

        tcase_add_unchecked_fixture(tc, topo_setup, topo_teardown);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        const TTest *const tests[] = {
                test_privileges_and_tables,
                test_stateful_filtering_with_real_packets,
                test_anti_spoofing,
                test_rarp_announce_passes,
                test_group_change_is_atomic,
                test_read_back_list_remove,
                test_restart_keeps_ruleset_unduplicated,
                test_bad_input_changes_nothing,
                test_rule_texts,
                test_foreign_table_is_left_alone,
                test_shards_with_real_packets,
                test_foreign_shard_table_is_skipped,
                test_tagged_and_non_ip_frames_dropped_both_ways,
                test_foreign_changes_are_restored,
                test_nftables_service_restart_with_debian_defaults,
                test_flush_window_under_100ms,
                test_guard_leaves_no_window,
                test_guard_no_spoofed_window,
                test_guard_refuses_others,
                test_guard_outlives_the_module_and_is_adopted,
                test_guard_modes,
                test_purge_with_the_guard,
                test_flushes_during_a_restore,
                test_guard_while_waiting_for_core,
                test_portless_tables_not_restored,
                test_guard_gives_up_a_fight,
                test_shard_deleted_while_down_fails_closed,
                test_big_batches_committed_without_listening,
        };
        /* FW_TEST_ONLY=<part of a name>: only the tests whose name has it (to
         * measure one of them, e.g. FW_TEST_ONLY=flush_window) */
        const char *only = getenv("FW_TEST_ONLY");
        for (size_t i = 0; i < ARRAY_SIZE(tests); i++)
                if (!only || strstr(tests[i]->name, only))
                        tcase_add_test(tc, tests[i]);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr;
        int failed;

        harness_enter_netns("test-firewall-module");
        sr = srunner_create(suite());

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
