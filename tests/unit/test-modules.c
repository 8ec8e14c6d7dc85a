/* test-modules.c - the module registry (src/core/modules.c) in-process, with
 * the test playing both of its peers over real sockets: the spawner (the
 * registry's SPAWNER_START/STOP requests are read from a socketpair, its
 * STARTED/FAILED/EXITED reports are written to it, with the module's
 * connection passed as SCM_RIGHTS, exactly as spawner.c does) and the
 * module (hello, replies and events as raw frames). A stand-in process that
 * dropped every capability and set no_new_privs provides the pid whose
 * /proc status the registry checks (hardware-observe keeps no capability).
 *
 * What is checked: spawn on connect, ready after an accepted hello, restart
 * with backoff after an exit (doubling, capped), stop on disconnect (no
 * restart), a connect while stopping, the hello timeout, the hello checks
 * (plug, version, pid, entrypoint list exactly the protocol's: a changed
 * list is refused), calls (id, schema checked before sending, reply,
 * timeout, module gone, a timeout that cannot be armed sends nothing),
 * unsolicited replies (issue 20: fate-sharing) and
 * late replies to calls that timed out, events; the plug state decisions
 * (a stable run resets the backoff, a reconnect forgets the history, the
 * initial set spawned by modules_new, a missing program is "unavailable",
 * the status handler hears every change); cancelled calls, calls failed by
 * the core's shut-down, a reply from a module being stopped, a descriptor
 * where none is taken; and, as inside a snap, module apps connecting to the
 * module socket (refused while the plug is disconnected, a first frame that
 * is no hello, an unknown plug, silence; accepted with the kernel's pid).
 * The real modules run in the integration tests. */
#include <cap-ng.h>
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "hw-protocol.h"
#include "log.h"
#include "modules.h"
#include "spawner.h"

/* The plug under test: hardware-observe (no capability) unless a case says otherwise. */
static enum plug_id plug_under_test = PLUG_HARDWARE_OBSERVE;
#define PLUG plug_under_test

static sd_event *event;
static struct nova_config cfg;
static struct modules *reg;
static int spawner_end = -1;          /* the test's end of the spawner channel */
static int spawner_end_core = -1;     /* the registry's end (it does not own it) */
static int module_end = -1;           /* the test's end of the module connection */
static pid_t standin;                 /* capability-less process whose pid the module claims */
static char module_dir[64];
static struct proto_msg *msg;         /* last frame read from the core */
static struct proto_writer *w;

static unsigned ready_count, event_count;
static char last_event[64];

static void on_ready(enum plug_id plug, void *userdata)
{
        (void)userdata;
        ck_assert_int_eq(plug, PLUG);
        ready_count++;
}

static void on_event(enum plug_id plug, const char *name, const struct proto_value *body, void *userdata)
{
        (void)userdata;
        (void)body;
        ck_assert_int_eq(plug, PLUG);
        (void)strscpy(last_event, name, sizeof(last_event));
        event_count++;
}

/* Turn the loop until cond() or timeout_ms; returns cond(). */
static bool run_until(bool (*cond)(void), int timeout_ms)
{
        uint64_t end = now_usec() + (uint64_t)timeout_ms * 1000;

        while (!cond() && now_usec() < end)
                ck_assert_int_ge(sd_event_run(event, 5000), 0);
        return cond();
}

static void run_for(int ms)
{
        uint64_t end = now_usec() + (uint64_t)ms * 1000;
        while (now_usec() < end)
                ck_assert_int_ge(sd_event_run(event, 2000), 0);
}

/* ---- the spawner's side ---- */

/* The next request the registry sends to the spawner, within timeout_ms: its op, or 0 for none. */
static uint32_t spawner_request(int timeout_ms)
{
        uint64_t end = now_usec() + (uint64_t)timeout_ms * 1000;
        struct spawner_request req;

        for (;;) {
                ssize_t n = recv(spawner_end, &req, sizeof(req), MSG_DONTWAIT);
                if (n == (ssize_t)sizeof(req)) {
                        ck_assert_uint_eq(req.plug, PLUG);
                        return req.op;
                }
                ck_assert(n < 0 && errno == EAGAIN);
                if (now_usec() >= end)
                        return 0;
                ck_assert_int_ge(sd_event_run(event, 2000), 0);
        }
}

static uint64_t report_usec; /* the time stamp spawner_report() sends (0: none, as an older spawner) */

static void spawner_report(uint32_t ev, pid_t pid, int status, int fd)
{
        struct spawner_msg m = { .event = ev, .plug = PLUG, .pid = pid, .status = status, .usec = report_usec };
        struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control = { 0 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (fd >= 0) {
                struct cmsghdr *c;
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        ck_assert_int_eq(sendmsg(spawner_end, &mh, MSG_NOSIGNAL), (ssize_t)sizeof(m));
}

/* "Start" the module: a fresh connection, reported as STARTED with the stand-in's pid. */
static void spawner_started(void)
{
        int sv[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        if (module_end >= 0)
                close(module_end);
        module_end = sv[1];
        spawner_report(SPAWNER_STARTED, standin, 0, sv[0]);
        close(sv[0]);
        run_for(20);
}

/* ---- the module's side ---- */

static void module_send(void)
{
        const uint8_t *buf;
        size_t len;

        ck_assert_int_eq(pw_finish(w, &buf, &len), 0);
        ck_assert_int_eq(send(module_end, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* A hello naming `plug`, `pid` and the entrypoint list names[0..n). */
static void module_hello_with(const char *plug, pid_t pid, const char *const *names, size_t n)
{
        pw_init(w, PROTO_HELLO, 0, 0, plug);
        pw_u64(w, "version", PROTO_VERSION);
        pw_u64(w, "pid", (uint64_t)pid);
        pw_list_begin(w, "entrypoints");
        for (size_t i = 0; i < n; i++)
                pw_str(w, NULL, names[i]);
        pw_list_end(w);
        module_send();
}

static void module_hello(void)
{
        static const char *const names[] = { "host_inventory" };
        module_hello_with("hardware-observe", standin, names, 1);
}

/* The next frame from the core within timeout_ms into msg: true, or false for none. */
static bool module_recv(int timeout_ms)
{
        uint8_t buf[PROTO_MAX_FRAME];
        uint64_t end = now_usec() + (uint64_t)timeout_ms * 1000;
        char err[256];

        for (;;) {
                ssize_t n = recv(module_end, buf, sizeof(buf), MSG_DONTWAIT);
                if (n > 0) {
                        ck_assert_int_eq(proto_decode(buf, (size_t)n, msg, err, sizeof(err)), 0);
                        return true;
                }
                if (n == 0 || now_usec() >= end)
                        return false;
                ck_assert_int_eq(errno, EAGAIN);
                ck_assert_int_ge(sd_event_run(event, 2000), 0);
        }
}

/* The core's answer to a hello: accepted (true) or refused with the reason in msg. */
static bool hello_answer(void)
{
        ck_assert(module_recv(1000));
        ck_assert_int_eq(msg->type, PROTO_HELLO);
        return proto_get_bool(msg->body, "accepted", false);
}

static struct module_status status(void)
{
        struct module_status st;
        modules_get_status(reg, PLUG, &st);
        return st;
}

static bool is_running(void) { return status().state == MOD_RUNNING; }
static bool is_backoff(void) { return status().state == MOD_BACKOFF; }

/* connect, start, hello: a running module */
static void bring_up(void)
{
        ck_assert_int_eq(modules_set_connected(reg, PLUG, true), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        spawner_started();
        module_hello();
        ck_assert(hello_answer());
        ck_assert(run_until(is_running, 1000));
}

/* ---- fixture ---- */

/* In a child: exactly the plug's capabilities and no_new_privs, as the spawner (or snapd) leaves a module. */
static int become_module_process(void)
{
        capng_clear(CAPNG_SELECT_BOTH);
        for (unsigned cap = 0; cap < 64; cap++)
                if (plug_table[PLUG].caps & (1ULL << cap))
                        (void)capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET, cap);
        if (capng_apply(CAPNG_SELECT_BOTH) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -EPERM;
        return 0;
}

static void setup(void)
{
        bool initial[_PLUG_MAX] = { false };
        char path[128];
        int sv[2], pfd[2];
        char c;

        log_init("test", LOG_LVL_ERR);
        msg = malloc(sizeof(*msg));
        w = malloc(sizeof(*w));
        ck_assert(msg && w);
        ready_count = event_count = 0;
        last_event[0] = '\0';
        /* the stand-in: no capability, no_new_privs, waits to be killed */
        ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
        standin = fork();
        ck_assert_int_ge(standin, 0);
        if (standin == 0) {
                if (become_module_process() < 0)
                        _exit(1);
                (void)!write(pfd[1], "x", 1);
                for (;;)
                        pause();
        }
        close(pfd[1]);
        ck_assert_int_eq(read(pfd[0], &c, 1), 1);
        close(pfd[0]);
        /* the module program must exist for the registry to ask for it (it is never run) */
        (void)strscpy(module_dir, "/tmp/nova-modules-XXXXXX", sizeof(module_dir));
        ck_assert_ptr_nonnull(mkdtemp(module_dir));
        (void)snprintf(path, sizeof(path), "%s/%s", module_dir, plug_table[PLUG].program);
        ck_assert_int_eq(close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0755)), 0);
        config_defaults(&cfg);
        cfg.module_timeout_ms = 300;
        cfg.restart_min_ms = 40;
        cfg.restart_max_ms = 100;
        cfg.stable_after_ms = 60000;
        ck_assert_int_ge(sd_event_new(&event), 0);
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        spawner_end = sv[1];
        spawner_end_core = sv[0];
        ck_assert_int_eq(modules_new(event, &cfg, sv[0], initial, module_dir, &reg), 0);
        modules_set_handlers(reg, on_event, on_ready, NULL);
}

static void teardown(void)
{
        char path[128];

        reg = modules_free(reg);
        event = sd_event_unref(event);
        spawner_end = safe_close(spawner_end);
        spawner_end_core = safe_close(spawner_end_core);
        module_end = safe_close(module_end);
        if (standin > 0) {
                kill(standin, SIGKILL);
                (void)waitpid(standin, NULL, 0);
        }
        (void)snprintf(path, sizeof(path), "%s/%s", module_dir, plug_table[PLUG].program);
        (void)unlink(path);
        (void)rmdir(module_dir);
        free(msg);
        free(w);
}

/* ---- supervision ---- */

START_TEST(test_spawn_ready_stop)
{
        struct module_status st;
        char err[256];

        st = status();
        ck_assert(!st.connected && st.state == MOD_OFF);
        ck_assert_int_eq(modules_check_ready(reg, PLUG, err, sizeof(err)), -ENOTCONN);
        ck_assert_ptr_nonnull(strstr(err, "snap connect nova-hypervisor:hardware-observe"));
        ck_assert_uint_eq(spawner_request(50), 0); /* nothing asked while disconnected */

        bring_up();
        st = status();
        ck_assert(st.connected && st.pid == standin && st.caps_effective == 0 && st.no_new_privs);
        ck_assert_uint_eq(ready_count, 1);
        ck_assert(modules_ready(reg, PLUG));
        ck_assert_int_eq(modules_check_ready(reg, PLUG, err, sizeof(err)), 0);

        /* disconnect: stop it, and no restart after it exits */
        ck_assert_int_eq(modules_set_connected(reg, PLUG, false), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
        ck_assert_int_eq(status().state, MOD_STOPPING);
        spawner_report(SPAWNER_EXITED, standin, 0, -1);
        run_for(150); /* longer than the backoff */
        ck_assert_int_eq(status().state, MOD_OFF);
        ck_assert_uint_eq(spawner_request(50), 0);
}
END_TEST

START_TEST(test_restart_with_backoff)
{
        struct module_status st;

        bring_up();
        /* it exits: restarting after restart_min_ms, the reason kept */
        spawner_report(SPAWNER_EXITED, standin, 1 << 8, -1);
        ck_assert(run_until(is_backoff, 1000));
        st = status();
        ck_assert_uint_eq(st.restarts, 1);
        ck_assert_str_eq(st.last_error, "module exited with status 1");
        ck_assert_uint_le(st.restart_in_usec, 40 * 1000);
        ck_assert(!modules_ready(reg, PLUG));
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        /* killed before its hello: the backoff doubles, then stays at the cap */
        spawner_started();
        spawner_report(SPAWNER_EXITED, standin, SIGKILL, -1);
        ck_assert(run_until(is_backoff, 1000));
        st = status();
        ck_assert_uint_eq(st.restarts, 2);
        ck_assert_ptr_nonnull(strstr(st.last_error, "killed by signal 9"));
        ck_assert_uint_gt(st.restart_in_usec, 40 * 1000);
        ck_assert_uint_le(st.restart_in_usec, 80 * 1000);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        spawner_started();
        spawner_report(SPAWNER_EXITED, standin, 1 << 8, -1);
        ck_assert(run_until(is_backoff, 1000));
        ck_assert_uint_le(status().restart_in_usec, 100 * 1000);
        ck_assert_uint_gt(status().restart_in_usec, 80 * 1000);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        /* and it comes back: ready again */
        spawner_started();
        module_hello();
        ck_assert(hello_answer());
        ck_assert(run_until(is_running, 1000));
        ck_assert_uint_eq(ready_count, 2);
        /* a report for another pid (an old process) changes nothing */
        spawner_report(SPAWNER_EXITED, standin + 100000, 0, -1);
        run_for(20);
        ck_assert(is_running());
}
END_TEST

START_TEST(test_connect_while_stopping)
{
        bring_up();
        ck_assert_int_eq(modules_set_connected(reg, PLUG, false), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
        ck_assert_int_eq(modules_set_connected(reg, PLUG, true), 0);
        ck_assert_uint_eq(spawner_request(50), 0); /* not while the old one still runs */
        spawner_report(SPAWNER_EXITED, standin, 0, -1);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START); /* at once, no backoff */
        ck_assert_uint_eq(status().restarts, 0);
}
END_TEST

START_TEST(test_hello_timeout)
{
        ck_assert_int_eq(modules_set_connected(reg, PLUG, true), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        spawner_started();
        ck_assert_int_eq(status().state, MOD_STARTING);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP); /* after module_timeout_ms (300) */
        ck_assert_ptr_nonnull(strstr(status().last_error, "no hello from the module within 300 ms"));
        spawner_report(SPAWNER_EXITED, standin, SIGTERM, -1);
        ck_assert(run_until(is_backoff, 1000));
        ck_assert_uint_eq(ready_count, 0);
}
END_TEST

START_TEST(test_spawner_failed)
{
        ck_assert_int_eq(modules_set_connected(reg, PLUG, true), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        spawner_report(SPAWNER_FAILED, 0, -ENOEXEC, -1);
        ck_assert(run_until(is_backoff, 1000));
        ck_assert_ptr_nonnull(strstr(status().last_error, "cannot start the module"));
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
}
END_TEST

/* Each bad hello: refused with the reason, the module stopped, nothing called ready. */
static void expect_hello_refused(const char *reason)
{
        ck_assert(!hello_answer());
        ck_assert_msg(strstr(proto_get_str(msg->body, "reason", ""), reason), "reason '%s', wanted '%s'",
                      proto_get_str(msg->body, "reason", ""), reason);
        ck_assert(!proto_get_bool(msg->body, "restart", false)); /* refused at the hello: no restart loop */
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
        ck_assert_ptr_nonnull(strstr(status().last_error, reason));
        ck_assert_uint_eq(ready_count, 0);
        ck_assert(!modules_ready(reg, PLUG));
        spawner_report(SPAWNER_EXITED, standin, 0, -1);
        ck_assert(run_until(is_backoff, 1000)); /* the supervisor starts a fresh one */
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
}

START_TEST(test_hello_checks)
{
        static const char *const ok[] = { "host_inventory" };
        static const char *const twice[] = { "host_inventory", "host_inventory" };
        static const char *const unknown[] = { "host_inventory_all" };
        static const char *const none[] = { NULL };

        ck_assert_int_eq(modules_set_connected(reg, PLUG, true), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);

        spawner_started();
        module_hello_with("network-control", standin, ok, 1);
        expect_hello_refused("hello from plug 'network-control' on the hardware-observe channel");

        spawner_started();
        module_hello_with("hardware-observe", standin, twice, 2);
        expect_hello_refused("entrypoint list changed: entry 1 is host_inventory, expected none");

        spawner_started();
        module_hello_with("hardware-observe", standin, unknown, 1);
        expect_hello_refused("announces an entrypoint this core does not know");

        spawner_started();
        module_hello_with("hardware-observe", standin, none, 0);
        expect_hello_refused("announces 0 entrypoints, expected 1");

        spawner_started();
        module_hello_with("hardware-observe", getpid(), ok, 1);
        expect_hello_refused("hello names another pid");
}
END_TEST

/* A module whose process keeps capabilities it must not have is refused (the kernel's view). */
START_TEST(test_hello_capabilities_from_the_kernel)
{
        static const char *const ok[] = { "host_inventory" };
        int sv[2];

        ck_assert_int_eq(modules_set_connected(reg, PLUG, true), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        /* this test process is root with every capability: it claims to be the module */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        module_end = sv[1];
        spawner_report(SPAWNER_STARTED, getpid(), 0, sv[0]);
        close(sv[0]);
        run_for(20);
        module_hello_with("hardware-observe", getpid(), ok, 1);
        ck_assert(!hello_answer());
        ck_assert_ptr_nonnull(strstr(proto_get_str(msg->body, "reason", ""), "module holds capabilities [cap_chown"));
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
}
END_TEST


/* ---- plug state decisions ---- */

static unsigned status_count;
static void on_status(void *userdata)
{
        (void)userdata;
        status_count++;
}

/* A run longer than stable_after_ms starts the backoff again from the minimum;
 * quick crashes before it keep doubling it. */
START_TEST(test_stable_run_resets_backoff)
{
        cfg.stable_after_ms = 100; /* the registry reads the configuration it was given */
        bring_up();
        spawner_report(SPAWNER_EXITED, standin, 1 << 8, -1); /* at once: 40 ms */
        ck_assert(run_until(is_backoff, 1000));
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        spawner_started();
        spawner_report(SPAWNER_EXITED, standin, 1 << 8, -1); /* before its hello: doubled to 80 ms */
        ck_assert(run_until(is_backoff, 1000));
        ck_assert_uint_gt(status().restart_in_usec, 40 * 1000);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        spawner_started();
        module_hello();
        ck_assert(hello_answer());
        ck_assert(run_until(is_running, 1000));
        run_for(150); /* ran for longer than stable_after_ms */
        ck_assert_uint_ge(status().uptime_usec, 100 * 1000);
        spawner_report(SPAWNER_EXITED, standin, 1 << 8, -1);
        ck_assert(run_until(is_backoff, 1000));
        ck_assert_uint_le(status().restart_in_usec, 40 * 1000); /* back to restart_min_ms */
        ck_assert_uint_gt(status().restart_in_usec, 0);
        ck_assert_uint_eq(status().restarts, 3);
        /* a reconnect of the plug forgets the history */
        ck_assert_int_eq(modules_set_connected(reg, PLUG, false), 0);
        ck_assert(status().state == MOD_OFF);
        ck_assert_uint_eq(spawner_request(100), 0); /* no process to stop, and no restart */
        ck_assert_int_eq(modules_set_connected(reg, PLUG, true), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        ck_assert_uint_eq(status().restarts, 0);
        ck_assert_str_eq(status().last_error, "");
}
END_TEST

/* The plugs connected at start are spawned by modules_new itself; a connected plug whose program
 * is missing is "unavailable", says why, and starts once the program is there and the plug is
 * connected again. Every change reaches the status handler (the health report). */
START_TEST(test_initial_set_and_unavailable)
{
        bool initial[_PLUG_MAX] = { false };
        char err[512], path[128];
        uint64_t ready_ms = 1, ready_rt = 1, registry_usec = 0;
        struct module_startup times[_PLUG_MAX], first;

        reg = modules_free(reg);
        initial[PLUG] = true;
        ck_assert_int_eq(modules_new(event, &cfg, spawner_end_core, initial, module_dir, &reg), 0);
        modules_set_handlers(reg, on_event, on_ready, NULL);
        modules_set_status_handler(reg, on_status, NULL);
        modules_startup_report(reg, &ready_ms, &ready_rt);
        ck_assert_uint_eq(ready_ms, 0); /* not yet */
        ck_assert_uint_eq(ready_rt, 0);
        ck_assert(status().connected && status().state == MOD_STARTING);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        modules_startup_times(reg, &registry_usec, times);
        ck_assert_uint_eq(times[PLUG].spawned_usec, 0);
        ck_assert_uint_eq(times[PLUG].hello_usec, 0);
        status_count = 0;
        /* the spawner's own time stamp of the fork counts, not when the registry read it */
        report_usec = now_usec();
        run_for(30);
        spawner_started();
        report_usec = 0;
        module_hello();
        ck_assert(hello_answer());
        ck_assert(run_until(is_running, 1000));
        ck_assert_uint_ge(status_count, 1); /* STARTING -> RUNNING */
        modules_startup_report(reg, &ready_ms, &ready_rt);
        ck_assert_uint_gt(ready_rt, 0);
        modules_startup_times(reg, &registry_usec, times);
        ck_assert_uint_le(registry_usec, now_usec());
        ck_assert_uint_gt(times[PLUG].spawned_usec, 0);
        ck_assert_uint_ge(times[PLUG].hello_usec, times[PLUG].spawned_usec + 30 * 1000);
        for (int i = 0; i < _PLUG_MAX; i++)
                if (i != (int)PLUG)
                        ck_assert(times[i].spawned_usec == 0 && times[i].hello_usec == 0);
        first = times[PLUG];

        /* the program goes away; the plug is connected again: unavailable, nothing asked */
        ck_assert_int_eq(modules_set_connected(reg, PLUG, false), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
        spawner_report(SPAWNER_EXITED, standin, 0, -1);
        run_for(20);
        ck_assert_int_eq(status().state, MOD_OFF);
        (void)snprintf(path, sizeof(path), "%s/%s", module_dir, plug_table[PLUG].program);
        ck_assert_int_eq(unlink(path), 0);
        status_count = 0;
        ck_assert_int_eq(modules_set_connected(reg, PLUG, true), 0);
        ck_assert_uint_ge(status_count, 2); /* the plug, then the state */
        ck_assert_int_eq(status().state, MOD_UNAVAILABLE);
        ck_assert_uint_eq(spawner_request(100), 0);
        ck_assert_int_eq(modules_check_ready(reg, PLUG, err, sizeof(err)), -EAGAIN);
        ck_assert_msg(strstr(err, "the hardware-observe plug is connected but module program") &&
                              strstr(err, "is not installed or not executable"),
                      "%s", err);
        /* a plug of which this build has no module at all would say so; the program back: it starts */
        ck_assert_int_eq(close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0755)), 0);
        ck_assert_int_eq(modules_set_connected(reg, PLUG, false), 0);
        ck_assert_int_eq(status().state, MOD_OFF);
        ck_assert_int_eq(modules_set_connected(reg, PLUG, true), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        ck_assert_int_eq(status().state, MOD_STARTING);
        /* the start-up figures are the first start's: later starts leave them */
        modules_startup_times(reg, &registry_usec, times);
        ck_assert_uint_eq(times[PLUG].spawned_usec, first.spawned_usec);
        ck_assert_uint_eq(times[PLUG].hello_usec, first.hello_usec);
}
END_TEST

/* ---- calls ---- */

struct result {
        bool called;
        int status;
        char error[512];
        uint64_t threads;
};

static void on_result(const struct module_result *res, void *userdata)
{
        struct result *r = userdata;

        r->called = true;
        r->status = res->status;
        (void)strscpy(r->error, res->error ? res->error : "", sizeof(r->error));
        r->threads = res->status == 0 ? proto_get_u64(proto_get(res->body, "cpu"), "threads", 0) : 0;
}

static struct result *pending_result;
static bool result_called(void) { return pending_result->called; }

/* A host_inventory call; the request as the module sees it is in msg. */
static void call_inventory(struct result *res, uint64_t timeout_usec)
{
        char err[256];

        memset(res, 0, sizeof(*res));
        module_request_init(w, (struct module_ep)EP_HW(HOST_INVENTORY));
        ck_assert_int_eq(modules_call(reg, PLUG, w, timeout_usec, on_result, res, NULL, err, sizeof(err)), 0);
        ck_assert(module_recv(1000));
        ck_assert_int_eq(msg->type, PROTO_REQUEST);
        ck_assert_str_eq(msg->name, "host_inventory");
}

static void module_reply(uint32_t id, const char *name, uint64_t threads)
{
        pw_init(w, PROTO_REPLY, id, 0, name);
        pw_obj_begin(w, "cpu");
        pw_u64(w, "threads", threads);
        pw_obj_end(w);
        module_send();
}

START_TEST(test_call_reply_and_ids)
{
        struct result a, b;
        uint32_t id_a, id_b;

        bring_up();
        call_inventory(&a, 0);
        id_a = msg->id;
        ck_assert_uint_ne(id_a, 0);
        call_inventory(&b, 0);
        id_b = msg->id;
        ck_assert_uint_eq(id_b, id_a + 1); /* one counter per module */
        /* answered out of order: each reaches its own caller */
        module_reply(id_b, "host_inventory", 8);
        pending_result = &b;
        ck_assert(run_until(result_called, 1000));
        ck_assert(!a.called);
        ck_assert_int_eq(b.status, 0);
        ck_assert_uint_eq(b.threads, 8);
        pw_init(w, PROTO_REPLY, id_a, -EIO, "host_inventory");
        pw_str(w, "error", "cannot read /proc/cpuinfo: Input/output error");
        module_send();
        pending_result = &a;
        ck_assert(run_until(result_called, 1000));
        ck_assert_int_eq(a.status, -EIO);
        ck_assert_str_eq(a.error, "cannot read /proc/cpuinfo: Input/output error");
        ck_assert(is_running());
}
END_TEST

/* The core checks its own requests against the module's schema: a bad one is never sent. */
START_TEST(test_call_schema_checked_before_sending)
{
        char err[256];
        struct result r = { 0 };

        bring_up();
        module_request_init(w, (struct module_ep)EP_HW(HOST_INVENTORY));
        pw_str(w, "path", "/etc/shadow");
        ck_assert_int_eq(modules_call(reg, PLUG, w, 0, on_result, &r, NULL, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, "path"), "%s", err);
        pw_init(w, PROTO_REQUEST, 0, 0, "host_inventory_all");
        ck_assert_int_eq(modules_call(reg, PLUG, w, 0, on_result, &r, NULL, err, sizeof(err)), -ENOSYS);
        ck_assert(!module_recv(50)); /* nothing reached the module */
        ck_assert(!r.called);
        /* a plug that is not connected: refused naming the fix */
        module_request_init(w, (struct module_ep)EP_HW(HOST_INVENTORY));
        ck_assert_int_eq(modules_call(reg, PLUG_LIBVIRT, w, 0, on_result, &r, NULL, err, sizeof(err)), -ENOTCONN);
        ck_assert_ptr_nonnull(strstr(err, "snap connect nova-hypervisor:libvirt"));
}
END_TEST

/* Everything that can fail in a call is done before its frame is sent: when
 * the timeout cannot be armed (here a timeout so long that now + timeout
 * overflows, which sd-event refuses with -EOVERFLOW), the call fails and the
 * module was asked nothing, so no reply can come back that the core would take
 * as unsolicited (which would kill the module). The next call works and its
 * reply is no violation. */
START_TEST(test_call_unarmable_timeout_sends_nothing)
{
        struct result r = { 0 }, ok;
        char err[256];
        uint32_t id;

        bring_up();
        module_request_init(w, (struct module_ep)EP_HW(HOST_INVENTORY));
        ck_assert_int_eq(modules_call(reg, PLUG, w, UINT64_MAX - 1, on_result, &r, NULL, err, sizeof(err)), -EOVERFLOW);
        ck_assert_msg(strstr(err, "cannot arm the request timeout"), "%s", err);
        ck_assert(!module_recv(50)); /* nothing reached the module */
        ck_assert(!r.called);
        ck_assert(is_running());
        /* a normal call afterwards: answered, and the module stays up */
        call_inventory(&ok, 0);
        id = msg->id;
        ck_assert_uint_ne(id, 0);
        module_reply(id, "host_inventory", 2);
        pending_result = &ok;
        ck_assert(run_until(result_called, 1000));
        ck_assert_int_eq(ok.status, 0);
        ck_assert_uint_eq(ok.threads, 2);
        run_for(20);
        ck_assert(is_running());
        ck_assert_uint_eq(spawner_request(20), 0);
}
END_TEST

START_TEST(test_call_timeout_then_late_reply)
{
        struct result r;
        uint32_t id;

        bring_up();
        call_inventory(&r, 50 * 1000);
        id = msg->id;
        pending_result = &r;
        ck_assert(run_until(result_called, 1000));
        ck_assert_int_eq(r.status, -ETIMEDOUT);
        ck_assert_ptr_nonnull(strstr(r.error, "did not answer host_inventory in time"));
        /* the answer comes after all: dropped quietly, the module is fine */
        module_reply(id, "host_inventory", 4);
        run_for(50);
        ck_assert(is_running());
        ck_assert_uint_eq(spawner_request(20), 0);
        /* but the same answer twice is not a late one any more: unsolicited */
        module_reply(id, "host_inventory", 4);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
        ck_assert_ptr_nonnull(strstr(status().last_error, "unsolicited reply"));
}
END_TEST

/* Issue 20: a reply to a request the core never sent is a protocol violation:
 * the connection is closed, the module stopped (and later restarted), and the
 * calls in flight fail at once. */
START_TEST(test_unsolicited_reply_is_fatal)
{
        struct result r;
        char hello_reason[256];

        bring_up();
        call_inventory(&r, 0);
        module_reply(msg->id + 7, "host_inventory", 4); /* never asked */
        /* the core says why on the connection, then hangs up */
        ck_assert(module_recv(1000));
        ck_assert_int_eq(msg->type, PROTO_HELLO);
        ck_assert(!proto_get_bool(msg->body, "accepted", true));
        (void)strscpy(hello_reason, proto_get_str(msg->body, "reason", ""), sizeof(hello_reason));
        ck_assert_msg(strstr(hello_reason, "unsolicited reply"), "%s", hello_reason);
        /* a running module that broke the protocol is told to exit for a restart (inside the snap
         * systemd restarts it; a module refused at its hello exits cleanly instead) */
        ck_assert(proto_get_bool(msg->body, "restart", false));
        ck_assert(!module_recv(50));
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
        ck_assert(r.called);
        ck_assert_int_eq(r.status, -ECONNRESET);
        ck_assert_ptr_nonnull(strstr(r.error, "broke the protocol while handling host_inventory"));
        ck_assert(!modules_ready(reg, PLUG));
        spawner_report(SPAWNER_EXITED, standin, SIGTERM, -1);
        ck_assert(run_until(is_backoff, 1000));
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
}
END_TEST

START_TEST(test_reply_violations)
{
        struct result r;

        /* id 0 (hello and events only) */
        bring_up();
        module_reply(0, "host_inventory", 1);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
        ck_assert_ptr_nonnull(strstr(status().last_error, "unsolicited reply 0"));
        spawner_report(SPAWNER_EXITED, standin, 0, -1);
        ck_assert(run_until(is_backoff, 1000));
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        spawner_started();
        module_hello();
        ck_assert(hello_answer());
        ck_assert(run_until(is_running, 1000));

        /* a reply naming another entrypoint */
        call_inventory(&r, 0);
        module_reply(msg->id, "tap_create", 1);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
        ck_assert_ptr_nonnull(strstr(status().last_error, "reply to host_inventory names tap_create"));
        ck_assert_int_eq(r.status, -ECONNRESET);
        spawner_report(SPAWNER_EXITED, standin, 0, -1);
        ck_assert(run_until(is_backoff, 1000));
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);

        /* a second hello on a running connection */
        spawner_started();
        module_hello();
        ck_assert(hello_answer());
        ck_assert(run_until(is_running, 1000));
        module_hello();
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
        ck_assert_ptr_nonnull(strstr(status().last_error, "second hello"));
}
END_TEST

START_TEST(test_module_gone_fails_calls)
{
        struct result r;

        bring_up();
        call_inventory(&r, 0);
        module_end = safe_close(module_end);
        pending_result = &r;
        ck_assert(run_until(result_called, 1000));
        ck_assert_int_eq(r.status, -ECONNRESET);
        ck_assert_ptr_nonnull(strstr(r.error, "went away while handling host_inventory"));
        spawner_report(SPAWNER_EXITED, standin, SIGKILL, -1);
        ck_assert(run_until(is_backoff, 1000));
}
END_TEST


/* A cancelled call's callback never runs, and its reply is no violation; calls still pending when
 * the registry is freed (the core shuts down) end with -ESHUTDOWN. */
START_TEST(test_cancel_and_shutdown)
{
        struct module_call *call = NULL;
        struct result a, b;
        char err[256];
        uint32_t id;

        bring_up();
        memset(&a, 0, sizeof(a));
        module_request_init(w, (struct module_ep)EP_HW(HOST_INVENTORY));
        ck_assert_int_eq(modules_call(reg, PLUG, w, 0, on_result, &a, &call, err, sizeof(err)), 0);
        ck_assert_ptr_nonnull(call);
        ck_assert(module_recv(1000));
        id = msg->id;
        module_call_cancel(call);
        module_reply(id, "host_inventory", 2);
        run_for(50);
        ck_assert(!a.called);
        ck_assert(is_running());
        ck_assert_uint_eq(spawner_request(20), 0);
        /* cancelled, then timed out: still silent */
        memset(&a, 0, sizeof(a));
        module_request_init(w, (struct module_ep)EP_HW(HOST_INVENTORY));
        ck_assert_int_eq(modules_call(reg, PLUG, w, 30 * 1000, on_result, &a, &call, err, sizeof(err)), 0);
        ck_assert(module_recv(1000));
        module_call_cancel(call);
        run_for(80);
        ck_assert(!a.called);
        module_call_cancel(NULL); /* accepted */

        call_inventory(&b, 0);
        reg = modules_free(reg);
        ck_assert(b.called);
        ck_assert_int_eq(b.status, -ESHUTDOWN);
        ck_assert_ptr_nonnull(strstr(b.error, "was shut down with the core while handling host_inventory"));
        ck_assert(!module_recv(50)); /* the connection is closed */
}
END_TEST

/* A module whose plug was just disconnected may still answer what it was asked while running: the
 * call completes. Its events are ignored while it stops; a reply or an event before the hello is a
 * violation. */
START_TEST(test_stopping_and_before_hello)
{
        struct result r;

        bring_up();
        call_inventory(&r, 0);
        ck_assert_int_eq(modules_set_connected(reg, PLUG, false), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
        pw_init(w, PROTO_EVENT, 0, 0, "inventory_changed");
        module_send();
        module_reply(msg->id, "host_inventory", 6);
        pending_result = &r;
        ck_assert(run_until(result_called, 1000));
        ck_assert_int_eq(r.status, 0);
        ck_assert_uint_eq(r.threads, 6);
        ck_assert_uint_eq(event_count, 0);
        ck_assert_str_eq(status().last_error, "");
        spawner_report(SPAWNER_EXITED, standin, 0, -1);
        run_for(20);
        ck_assert_int_eq(status().state, MOD_OFF);

        ck_assert_int_eq(modules_set_connected(reg, PLUG, true), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        spawner_started();
        module_reply(1, "host_inventory", 1);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
        ck_assert_ptr_nonnull(strstr(status().last_error, "reply before hello"));
        spawner_report(SPAWNER_EXITED, standin, 0, -1);
        ck_assert(run_until(is_backoff, 1000));
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        spawner_started();
        pw_init(w, PROTO_EVENT, 0, 0, "inventory_changed");
        module_send();
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_STOP);
        ck_assert_ptr_nonnull(strstr(status().last_error, "event before hello"));
        ck_assert_uint_eq(event_count, 0);
}
END_TEST

/* A descriptor goes only with an entrypoint that takes one (host_inventory takes none). */
START_TEST(test_call_descriptor_rule)
{
        struct result r = { 0 };
        char err[256];

        bring_up();
        module_request_init(w, (struct module_ep)EP_HW(HOST_INVENTORY));
        ck_assert_int_eq(modules_call_fd(reg, PLUG, w, STDIN_FILENO, 0, on_result, &r, NULL, err, sizeof(err)),
                         -EINVAL);
        ck_assert_str_eq(err, "host_inventory takes no descriptor");
        ck_assert(!module_recv(50));
        ck_assert(!r.called);
        ck_assert(is_running());
}
END_TEST

static bool got_event(void) { return event_count > 0; }

START_TEST(test_events)
{
        bring_up();
        pw_init(w, PROTO_EVENT, 0, 0, "inventory_changed");
        pw_str(w, "subsystem", "cpu");
        module_send();
        ck_assert(run_until(got_event, 1000));
        ck_assert_str_eq(last_event, "inventory_changed");
        ck_assert(is_running());
}
END_TEST

/* network-control has four entrypoints: the same names in another order, or one twice and one
 * missing, are a changed list (before issue 20 both passed: every name known, the count right). */
static void setup_netctl(void)
{
        plug_under_test = PLUG_NETWORK_CONTROL;
        setup();
}

static void teardown_netctl(void)
{
        teardown();
        plug_under_test = PLUG_HARDWARE_OBSERVE;
}

START_TEST(test_hello_entrypoint_list_changed)
{
        static const char *const in_order[] = { "tap_create", "tap_delete", "tap_list", "tap_get" };
        static const char *const reordered[] = { "tap_delete", "tap_create", "tap_list", "tap_get" };
        static const char *const twice[] = { "tap_create", "tap_create", "tap_list", "tap_get" };

        ck_assert_int_eq(modules_set_connected(reg, PLUG, true), 0);
        ck_assert_uint_eq(spawner_request(1000), SPAWNER_START);
        spawner_started();
        module_hello_with("network-control", standin, reordered, 4);
        expect_hello_refused("entrypoint list changed: entry 0 is tap_delete, expected tap_create");
        spawner_started();
        module_hello_with("network-control", standin, twice, 4);
        expect_hello_refused("entrypoint list changed: entry 1 is tap_create, expected tap_delete");
        /* the protocol's own list, from a process holding exactly cap_net_admin: accepted */
        spawner_started();
        module_hello_with("network-control", standin, in_order, 4);
        ck_assert(hello_answer());
        ck_assert(run_until(is_running, 1000));
        ck_assert_uint_eq(ready_count, 1);
}
END_TEST


/* ---- inside a snap: module apps connect to the core's module socket ---- */

static char listen_path[128];
static pid_t apps[8];
static size_t n_apps;

/* A module app: a child with the plug's capabilities that connects to listen_path (so that
 * SO_PEERCRED names it) and hands its connection to the test, which speaks for it. */
static pid_t app_connect(void)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control = { 0 };
        char byte = 'x';
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c;
        int sv[2], fd;
        pid_t pid;

        ck_assert_uint_lt(n_apps, ARRAY_SIZE(apps));
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
        (void)strscpy(sa.sun_path, listen_path, sizeof(sa.sun_path));
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                if (become_module_process() < 0 || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                        _exit(1);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
                if (sendmsg(sv[1], &mh, 0) != 1)
                        _exit(1);
                for (;;)
                        pause();
        }
        close(sv[1]);
        apps[n_apps++] = pid;
        ck_assert_int_eq(recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC), 1);
        close(sv[0]);
        c = CMSG_FIRSTHDR(&mh);
        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(c->cmsg_type, SCM_RIGHTS);
        memcpy(&fd, CMSG_DATA(c), sizeof(int));
        if (module_end >= 0)
                close(module_end);
        module_end = fd;
        run_for(20); /* accepted */
        return pid;
}

static void setup_snap(void)
{
        bool initial[_PLUG_MAX] = { false };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int lfd;

        setup();
        /* the same registry, as inside a snap: no spawner, a listening module socket */
        reg = modules_free(reg);
        ck_assert_int_eq(modules_new(event, &cfg, -1, initial, module_dir, &reg), 0);
        modules_set_handlers(reg, on_event, on_ready, NULL);
        (void)snprintf(listen_path, sizeof(listen_path), "%s/modules.socket", module_dir);
        (void)strscpy(sa.sun_path, listen_path, sizeof(sa.sun_path));
        lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ck_assert_int_ge(lfd, 0);
        ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(listen(lfd, 8), 0);
        ck_assert_int_eq(modules_listen(reg, lfd), 0);
        n_apps = 0;
}

static void teardown_snap(void)
{
        reg = modules_free(reg);
        for (size_t i = 0; i < n_apps; i++) {
                kill(apps[i], SIGKILL);
                (void)waitpid(apps[i], NULL, 0);
        }
        (void)unlink(listen_path);
        teardown();
}

/* The core's answer to a module app that it refuses: the reason, then the hang-up. */
static void expect_app_refused(const char *reason)
{
        ck_assert(!hello_answer());
        ck_assert_msg(strstr(proto_get_str(msg->body, "reason", ""), reason), "reason '%s', wanted '%s'",
                      proto_get_str(msg->body, "reason", ""), reason);
        ck_assert(!module_recv(100));
}

START_TEST(test_snap_module_apps)
{
        static const char *const ok[] = { "host_inventory" };
        pid_t app;

        /* plug not connected: the app is refused naming the fix */
        app = app_connect();
        module_hello_with("hardware-observe", app, ok, 1);
        expect_app_refused("plug hardware-observe is not connected (fix: sudo snap connect nova-hypervisor:hardware-observe)");
        ck_assert_int_eq(status().state, MOD_OFF);

        /* connected: the registry waits for systemd to start the app, asks no spawner */
        ck_assert_int_eq(modules_set_connected(reg, PLUG, true), 0);
        ck_assert_int_eq(status().state, MOD_STARTING);
        ck_assert_uint_eq(spawner_request(50), 0);

        /* the first frame must be a hello, of a plug with a protocol */
        app_connect();
        pw_init(w, PROTO_EVENT, 0, 0, "inventory_changed");
        module_send();
        expect_app_refused("expected a hello, got a event");
        app = app_connect();
        module_hello_with("kernel-module-control", app, ok, 1);
        expect_app_refused("no module protocol for plug 'kernel-module-control'");
        /* silence: refused after module_timeout_ms (300) */
        app_connect();
        ck_assert(module_recv(1000));
        ck_assert_int_eq(msg->type, PROTO_HELLO);
        ck_assert_ptr_nonnull(strstr(proto_get_str(msg->body, "reason", ""), "no hello within 300 ms"));
        ck_assert_int_eq(status().state, MOD_STARTING);
        ck_assert_uint_eq(ready_count, 0);

        /* the real app: accepted, with the kernel's view of its pid */
        app = app_connect();
        module_hello_with("hardware-observe", app, ok, 1);
        ck_assert(hello_answer());
        ck_assert(run_until(is_running, 1000));
        ck_assert_int_eq(status().pid, app);
        ck_assert_uint_eq(ready_count, 1);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("modules");
        TCase *sup = tcase_create("supervision"), *calls = tcase_create("calls");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(sup, setup, teardown);
        tcase_add_test(sup, test_spawn_ready_stop);
        tcase_add_test(sup, test_restart_with_backoff);
        tcase_add_test(sup, test_connect_while_stopping);
        tcase_add_test(sup, test_hello_timeout);
        tcase_add_test(sup, test_spawner_failed);
        tcase_add_test(sup, test_hello_checks);
        tcase_add_test(sup, test_hello_capabilities_from_the_kernel);
        tcase_add_test(sup, test_stable_run_resets_backoff);
        tcase_add_test(sup, test_initial_set_and_unavailable);
        suite_add_tcase(s, sup);
        {
                TCase *nc = tcase_create("entrypoint-list");
                tcase_add_checked_fixture(nc, setup_netctl, teardown_netctl);
                tcase_add_test(nc, test_hello_entrypoint_list_changed);
                suite_add_tcase(s, nc);
        }
        {
                TCase *snap = tcase_create("snap");
                tcase_add_checked_fixture(snap, setup_snap, teardown_snap);
                tcase_add_test(snap, test_snap_module_apps);
                suite_add_tcase(s, snap);
        }
        tcase_add_checked_fixture(calls, setup, teardown);
        tcase_add_test(calls, test_call_reply_and_ids);
        tcase_add_test(calls, test_call_schema_checked_before_sending);
        tcase_add_test(calls, test_call_timeout_then_late_reply);
        tcase_add_test(calls, test_call_unarmable_timeout_sends_nothing);
        tcase_add_test(calls, test_unsolicited_reply_is_fatal);
        tcase_add_test(calls, test_reply_violations);
        tcase_add_test(calls, test_module_gone_fails_calls);
        tcase_add_test(calls, test_events);
        tcase_add_test(calls, test_cancel_and_shutdown);
        tcase_add_test(calls, test_stopping_and_before_hello);
        tcase_add_test(calls, test_call_descriptor_rule);
        suite_add_tcase(s, calls);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
