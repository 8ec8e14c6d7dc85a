/* harness.c - see harness.h */
#include "harness.h"

#include "apiclient.h"
#include "names.h"

#include <check.h>
#include <fcntl.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static void sleep_ms(int ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

void harness_enter_netns(const char *test_name)
{
        struct nl_sock *sk;
        struct rtnl_link *lo = NULL, *change;

        if (geteuid() != 0) {
                fprintf(stderr, "%s: needs root (network namespaces, tap devices, capabilities)\n", test_name);
                exit(1);
        }
        if (unshare(CLONE_NEWNET) < 0) {
                fprintf(stderr, "%s: unshare(CLONE_NEWNET): %s\n", test_name, strerror(errno));
                exit(1);
        }
        sk = nl_socket_alloc();
        if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0 || rtnl_link_get_kernel(sk, 0, "lo", &lo) < 0) {
                fprintf(stderr, "%s: cannot reach rtnetlink\n", test_name);
                exit(1);
        }
        change = rtnl_link_alloc();
        rtnl_link_set_flags(change, IFF_UP);
        (void)rtnl_link_change(sk, lo, change, 0);
        rtnl_link_put(change);
        rtnl_link_put(lo);
        nl_socket_free(sk);
}

static const char *bin_dir(void)
{
        const char *b = getenv("NOVA_BIN");
        return b && *b ? b : "build/bin";
}

void core_start(struct core *c, const char *config_lines)
{
        char conf[PATH_MAX], prog[PATH_MAX], text[4096];
        struct json_object *st = NULL;
        int logfd;

        if (c->dir[0] == '\0') {
                ck_assert_int_eq(xsnprintf(c->dir, sizeof(c->dir), "/tmp/nova-it-XXXXXX"), 0);
                ck_assert_ptr_nonnull(mkdtemp(c->dir));
        }
        ck_assert_int_eq(xsnprintf(conf, sizeof(conf), "%s/core.conf", c->dir), 0);
        ck_assert_int_eq(xsnprintf(c->socket, sizeof(c->socket), "%s/run/nova-hypervisor.socket", c->dir), 0);
        ck_assert_int_eq(xsnprintf(c->log, sizeof(c->log), "%s/core.log", c->dir), 0);
        ck_assert_int_eq(xsnprintf(text, sizeof(text),
                                   "state_dir = %s/state\nrun_dir = %s/run\n%s"
                                   "restart_min_ms = 50\nrestart_max_ms = 2000\nstop_timeout_ms = 2000\n%s",
                                   c->dir, c->dir,
                                   config_lines && strstr(config_lines, "plugs =") ? "" : "plugs = network-control\n",
                                   config_lines ? config_lines : ""),
                         0);
        ck_assert_int_eq(write_file_atomic(conf, text, strlen(text), 0600), 0);
        ck_assert_int_eq(xsnprintf(prog, sizeof(prog), "%s/nova-compute", bin_dir()), 0);
        logfd = open(c->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        ck_assert_int_ge(logfd, 0);
        c->pid = fork();
        ck_assert_int_ge(c->pid, 0);
        if (c->pid == 0) {
                dup2(logfd, 2);
                dup2(logfd, 1);
                execl(prog, "nova-compute", "--config", conf, (char *)NULL);
                _exit(127);
        }
        close(logfd);
        for (int i = 0; i < 500; i++) {
                int status = api_request(c->socket, "GET", "/v1/status", NULL, 2000, &st);
                if (status == 200) {
                        json_object_put(st);
                        return;
                }
                ck_assert_msg(process_alive(c->pid), "nova-compute exited during start; see %s", c->log);
                sleep_ms(10);
        }
        ck_abort_msg("nova-compute did not answer within 5 s; see %s", c->log);
}

void core_stop(struct core *c)
{
        int status;

        if (c->pid <= 0)
                return;
        kill(c->pid, SIGTERM);
        for (int i = 0; i < 1000; i++) {
                if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
                        c->pid = 0;
                        return;
                }
                sleep_ms(10);
        }
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &status, 0);
        c->pid = 0;
        ck_abort_msg("nova-compute did not stop within 10 s");
}

int core_api(struct core *c, const char *method, const char *path, const char *body, struct json_object **ret)
{
        return api_request(c->socket, method, path, body, 30000, ret);
}

struct json_object *core_plug_status(struct core *c, const char *plug, struct json_object **ret_root)
{
        struct json_object *root = NULL, *plugs;

        ck_assert_int_eq(core_api(c, "GET", "/v1/status", NULL, &root), 200);
        ck_assert(json_object_object_get_ex(root, "plugs", &plugs));
        for (size_t i = 0; i < json_object_array_length(plugs); i++) {
                struct json_object *p = json_object_array_get_idx(plugs, i), *name;
                if (json_object_object_get_ex(p, "plug", &name) && streq(json_object_get_string(name), plug)) {
                        *ret_root = root;
                        return p;
                }
        }
        json_object_put(root);
        ck_abort_msg("plug %s missing from status", plug);
        return NULL;
}

pid_t core_module_pid(struct core *c, const char *plug)
{
        struct json_object *root, *p = core_plug_status(c, plug, &root), *m, *state, *pid;
        pid_t result = 0;

        if (json_object_object_get_ex(p, "module", &m) && json_object_object_get_ex(m, "state", &state) &&
            streq(json_object_get_string(state), "running") && json_object_object_get_ex(m, "pid", &pid))
                result = (pid_t)json_object_get_int64(pid);
        json_object_put(root);
        return result;
}

pid_t core_wait_module_running(struct core *c, const char *plug, pid_t not_pid, int timeout_ms)
{
        for (int waited = 0; waited <= timeout_ms; waited += 10) {
                pid_t pid = core_module_pid(c, plug);
                if (pid > 0 && pid != not_pid)
                        return pid;
                sleep_ms(10);
        }
        return 0;
}

bool process_alive(pid_t pid)
{
        char path[64], *buf = NULL;
        bool alive;

        if (pid <= 0)
                return false;
        (void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        if (read_file_bounded(path, 4096, &buf, NULL) < 0)
                return false;
        /* state is the field after "(comm)" */
        char *rp = strrchr(buf, ')');
        alive = rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
        free(buf);
        return alive;
}

bool wait_process_gone(pid_t pid, int timeout_ms)
{
        for (int waited = 0; waited <= timeout_ms; waited += 10) {
                if (!process_alive(pid))
                        return true;
                sleep_ms(10);
        }
        return false;
}

int link_facts_get(const char *name, struct link_facts *ret)
{
        struct nl_sock *sk = nl_socket_alloc();
        struct rtnl_link *link = NULL;
        struct link_facts f = { 0 };
        struct nl_addr *addr;
        const char *alias, *kind;
        int r;

        ck_assert_ptr_nonnull(sk);
        ck_assert_int_eq(nl_connect(sk, NETLINK_ROUTE), 0);
        r = rtnl_link_get_kernel(sk, 0, name, &link);
        nl_socket_free(sk);
        if (r < 0)
                return -ENOENT;
        f.ifindex = rtnl_link_get_ifindex(link);
        f.mtu = rtnl_link_get_mtu(link);
        f.flags = rtnl_link_get_flags(link);
        addr = rtnl_link_get_addr(link);
        if (addr && nl_addr_get_len(addr) == 6) {
                const uint8_t *b = nl_addr_get_binary_addr(addr);
                mac_format(b, f.mac);
        }
        alias = rtnl_link_get_ifalias(link);
        if (alias)
                (void)strscpy(f.alias, alias, sizeof(f.alias));
        kind = rtnl_link_get_type(link);
        if (kind)
                (void)strscpy(f.kind, kind, sizeof(f.kind));
        rtnl_link_put(link);
        *ret = f;
        return 0;
}

int link_count(void)
{
        struct nl_sock *sk = nl_socket_alloc();
        struct nl_cache *cache = NULL;
        int n;

        ck_assert_ptr_nonnull(sk);
        ck_assert_int_eq(nl_connect(sk, NETLINK_ROUTE), 0);
        ck_assert_int_eq(rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache), 0);
        n = nl_cache_nitems(cache);
        nl_cache_free(cache);
        nl_socket_free(sk);
        return n;
}

bool file_contains(const char *path, const char *needle)
{
        char *buf = NULL;
        bool found;

        if (read_file_bounded(path, 16 * 1024 * 1024, &buf, NULL) < 0)
                return false;
        found = strstr(buf, needle) != NULL;
        free(buf);
        return found;
}

void random_port_uuid(char ret[37])
{
        ck_assert_int_eq(uuid_generate(ret), 0);
}

int foreign_veth_add(const char *name)
{
        struct nl_sock *sk = nl_socket_alloc();
        struct rtnl_link *veth, *peer;
        char peer_name[IFNAMSIZ];
        int r;

        if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0)
                return -EIO;
        veth = rtnl_link_veth_alloc();
        if (!veth) {
                nl_socket_free(sk);
                return -ENOMEM;
        }
        peer = rtnl_link_veth_get_peer(veth);
        (void)snprintf(peer_name, sizeof(peer_name), "fpeer%d", (int)(now_usec() % 100000));
        rtnl_link_set_name(veth, name);
        rtnl_link_set_name(peer, peer_name);
        r = rtnl_link_add(sk, veth, NLM_F_CREATE | NLM_F_EXCL);
        rtnl_link_put(peer);
        rtnl_link_veth_release(veth);
        nl_socket_free(sk);
        return r < 0 ? -EIO : 0;
}
