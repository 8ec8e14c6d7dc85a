/* harness.h - shared helpers of the integration tests: a private network
 * namespace, a real nova-compute with its real modules in a temp dir, API
 * calls, and kernel-side checks of links through netlink (never the module's
 * own word). Tests must run as root. */
#ifndef NOVA_TEST_HARNESS_H
#define NOVA_TEST_HARNESS_H

#include "util.h"

#include <json-c/json.h>
#include <limits.h>
#include <sys/types.h>

struct core {
        pid_t pid;                 /* nova-compute */
        char dir[PATH_MAX];        /* temp dir holding state/, run/, core.log, core.conf */
        char socket[PATH_MAX];     /* API socket */
        char log[PATH_MAX];        /* stderr of the core and its modules */
};

/* Enter a fresh network namespace for this process and its children (lo up).
 * Exits the test program with a message when not root. */
void harness_enter_netns(const char *test_name);

/* Start nova-compute from $NOVA_BIN with extra config lines (may be NULL;
 * "plugs = network-control" unless they set plugs themselves) and
 * wait until its API answers. dir is created (or reused when already set,
 * to restart a core on the same state). Aborts the test on failure. A dir
 * the harness created is removed when the test process exits after a pass
 * (kept, and named on stderr, after a failure or with NOVA_IT_KEEP=1:
 * tests/common/tmpdir.h); a test that makes c->dir itself registers it with
 * test_tmpdir_make. */
void core_start(struct core *c, const char *config_lines);
/* SIGTERM and wait (bounded); the spawner and modules go with it. */
void core_stop(struct core *c);

/* API call; returns the HTTP status and *ret (json_object_put it). */
int core_api(struct core *c, const char *method, const char *path, const char *body, struct json_object **ret);

/* Plug entry from GET /v1/status (json_object_put the returned status root via *ret_root). */
struct json_object *core_plug_status(struct core *c, const char *plug, struct json_object **ret_root);
/* Module pid of a plug when running, else 0. */
pid_t core_module_pid(struct core *c, const char *plug);
/* Wait until the plug's module runs with a pid other than not_pid (0 = any). Returns the pid or 0 on timeout. */
pid_t core_wait_module_running(struct core *c, const char *plug, pid_t not_pid, int timeout_ms);
/* Wait until the plug's module.state in GET /v1/status is state (the core
 * learns of a module's exit from the spawner's report, after the process is
 * gone). True when it is, false on timeout. */
bool core_wait_module_state(struct core *c, const char *plug, const char *state, int timeout_ms);

/* True when the process exists (and is not a zombie). */
bool process_alive(pid_t pid);
/* Wait until the process is gone; false on timeout. */
bool wait_process_gone(pid_t pid, int timeout_ms);

/* Kernel's view of a link, through a fresh netlink socket. 0 or -ENOENT. */
struct link_facts {
        int ifindex;
        unsigned mtu;
        unsigned flags;            /* IFF_* */
        char mac[18];              /* lowercase xx:xx:... */
        char alias[256];           /* IFLA_IFALIAS, "" when none */
        char kind[32];             /* "tun", "veth", ... */
};
int link_facts_get(const char *name, struct link_facts *ret);
/* Number of links in this namespace. */
int link_count(void);

/* Whether the file contains the substring (bounded read). */
bool file_contains(const char *path, const char *needle);

/* Sleep (test waits between checks of a condition). */
void sleep_ms(int ms);

/* A fresh random port UUID. */
void random_port_uuid(char ret[37]);

#endif

#ifndef NOVA_TEST_HARNESS_FOREIGN_H
#define NOVA_TEST_HARNESS_FOREIGN_H
/* Create a veth pair whose first end is called name (a device that is not
 * ours: no tap, no mark). 0 or -errno. */
int foreign_veth_add(const char *name);
#endif

#ifndef NOVA_TEST_HARNESS_OVS_H
#define NOVA_TEST_HARNESS_OVS_H
/* Private Open vSwitch daemons for tests: an ovsdb-server and an ovs-vswitchd
 * (userspace datapath) in a fresh directory under /tmp, with their sockets,
 * pidfiles and logs in it. ovs-vswitchd runs in the caller's network namespace
 * (enter one first: harness_enter_netns). Tests check OVS state with
 * ovs-vsctl (ovs_vsctl), never through the module under test. */
struct ovs_fixture {
        char dir[PATH_MAX];        /* conf.db, db.sock, *.pid, *.ctl, *.log */
        char db_sock[PATH_MAX];    /* <dir>/db.sock (ovsdb_socket = unix:<db_sock>) */
        pid_t ovsdb_pid, vswitchd_pid;
};
/* Create the database, start ovsdb-server, initialise it, start ovs-vswitchd
 * and wait until it has applied the configuration. 0 or -errno (the daemons
 * started so far are stopped again). */
int ovs_fixture_start(struct ovs_fixture *f);
/* Stop both daemons (SIGTERM by their pidfiles, SIGKILL after 5 s), wait, and
 * remove the directory. Accepts a fixture that never started. */
void ovs_fixture_stop(struct ovs_fixture *f);
/* Stop only ovsdb-server (its database file stays). 0 or -errno. */
int ovs_fixture_stop_ovsdb(struct ovs_fixture *f);
/* Start ovsdb-server again on the same database and socket. 0 or -errno. */
int ovs_fixture_start_ovsdb(struct ovs_fixture *f);
/* Stop and start ovsdb-server. 0 or -errno. */
int ovs_fixture_restart_ovsdb(struct ovs_fixture *f);
/* Run `ovs-vsctl --db=unix:<db_sock> --timeout=10 ARGS...` (a NULL-terminated
 * list of arguments). Its stdout (trailing newline removed) goes to *ret_out
 * when ret_out is not NULL (free it); stderr is the test's. 0 when it exited
 * 0, -EIO when it exited otherwise, -errno when it could not run. */
int ovs_vsctl(const struct ovs_fixture *f, char **ret_out, ...) __attribute__((sentinel));
/* Add a bridge with datapath_type=netdev (waits until ovs-vswitchd has it). 0 or -errno. */
int ovs_fixture_add_bridge(const struct ovs_fixture *f, const char *bridge);
#endif

#ifndef NOVA_TEST_HARNESS_MODULE_H
#define NOVA_TEST_HARNESS_MODULE_H
/* Start $NOVA_BIN/<program> --fd 3 [--config config_path] as the core would,
 * on a fresh SOCK_SEQPACKET socketpair, its stderr appended to log_path (or
 * the test's own when NULL). Returns the pid and the test's end in *ret_fd;
 * aborts the test on failure. */
pid_t module_exec(const char *program, const char *config_path, const char *log_path, int *ret_fd);
/* What the core does with a request before sending it (modules_call): decode
 * the frame in w, find its entrypoint in mp, check it against the schema. 0,
 * -ENOSYS (no such entrypoint) or -EINVAL (the schema's reason in err, may be
 * NULL). Since issue 20 a request that fails here and still reaches a module
 * ends that module (it exits 1): tests of refusals ask this instead. */
struct module_protocol;
struct proto_writer;
int core_request_check(const struct module_protocol *mp, struct proto_writer *w, char *err, size_t errlen);
#endif

#ifndef NOVA_TEST_HARNESS_GUEST_H
#define NOVA_TEST_HARNESS_GUEST_H
/* A guest on a port's tap, standing in for QEMU: a child process attaches to
 * the tap (which must exist in the caller's namespace), creates a tap called
 * eth0 in the named namespace (/var/run/netns/<netns>, made with `ip netns
 * add`) and copies every frame between the two, whole, both ways. The
 * caller configures eth0 (address, IP, up) in that namespace. Returns the
 * copier's pid; aborts the test on failure. eth0 goes with the copier. */
pid_t guest_wire_start(const char *tap, const char *netns);
/* Stop the copier (SIGKILL and wait). Accepts 0. */
void guest_wire_stop(pid_t pid);
#endif

#ifndef NOVA_TEST_HARNESS_SH_H
#define NOVA_TEST_HARNESS_SH_H
/* Test code only (the daemon never runs a shell): run a /bin/sh command line
 * with PATH set to the system's; its output is discarded unless
 * $FW_TEST_VERBOSE is set. Returns the exit status (128 when killed). */
_printf_(1, 2) int sh(const char *fmt, ...);
/* The stdout of a /bin/sh command line (malloc'd, NUL-terminated). */
_printf_(1, 2) char *sh_out(const char *fmt, ...);
#endif

#ifndef NOVA_TEST_HARNESS_LIBVIRTD_H
#define NOVA_TEST_HARNESS_LIBVIRTD_H
/* Real QEMU for tests: the test guest and a private libvirtd. Scripts are found
 * under $NOVA_SRC (default: the current directory, the top of the work tree). */

/* Run `bash $NOVA_SRC/scripts/<script> [arg1 [arg2]]` (args may be NULL); its
 * stdout (trailing newlines removed, truncated to size - 1) in out, its stderr
 * the test's. 0 when it exited 0, -EIO otherwise, -errno when it could not run.
 * No Check assertions: usable in main() before and after the suite. */
int harness_run_script(char *out, size_t size, const char *script, const char *arg1, const char *arg2);

/* Build the test guest (scripts/guest/build-test-guest.sh: cached outside the
 * tree; a first build downloads two .debs, so call it before entering a network
 * namespace); its directory (vmlinuz, initrd.gz, disk.raw, cmdline, manifest)
 * in ret_dir. 0 or -errno. */
int test_guest_dir(char *ret_dir, size_t size);

/* Start a private libvirtd (scripts/libvirtd-private.sh: own sockets,
 * run/state/cache/log dirs, host_uuid, its own mount namespace) in dir
 * (absolute; created) in the caller's network namespace, where its QEMU
 * processes open their taps. Its URI in ret_uri. 0 or -errno (nothing left
 * running). */
int libvirtd_private_start(const char *dir, char *ret_uri, size_t size);

/* Destroy and undefine every domain still defined on uri (a failed test's;
 * uri may be NULL or "" to skip that), then stop the libvirtd of dir (the QEMU
 * processes it still finds first). dir NULL or "" does nothing. */
void libvirtd_private_stop(const char *dir, const char *uri);
#endif
