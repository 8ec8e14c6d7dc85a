/* test-network-control.c - the core, the spawner and the real
 * nova-network-control module in a private network namespace. Every effect
 * is checked from outside the module: links through netlink, privileges in
 * /proc/<pid>/status, process lifetimes in /proc. */
#include "harness.h"

#include "apiclient.h"

#include "names.h"
#include "netctl-protocol.h"
#include "proto.h"

#include <check.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <signal.h>
#include <sys/socket.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <sys/wait.h>

#define NET_ADMIN (1ULL << CAP_NET_ADMIN)

static struct core core;

static void setup(void)
{
        memset(&core, 0, sizeof(core));
        core_start(&core, "module_timeout_ms = 1500\n");
        ck_assert_int_gt(core_wait_module_running(&core, "network-control", 0, 5000), 0);
}

static void teardown(void) { core_stop(&core); }

static const char *jstr(struct json_object *o, const char *path)
{
        /* "a.b" walks nested objects */
        char key[64];
        const char *dot;

        while ((dot = strchr(path, '.'))) {
                struct json_object *next;
                ck_assert_int_lt((int)(dot - path), (int)sizeof(key));
                memcpy(key, path, (size_t)(dot - path));
                key[dot - path] = '\0';
                if (!json_object_object_get_ex(o, key, &next))
                        return NULL;
                o = next;
                path = dot + 1;
        }
        struct json_object *v;
        return json_object_object_get_ex(o, path, &v) && v ? json_object_get_string(v) : NULL;
}

static void create_port(const char *uuid, const char *mac, unsigned mtu)
{
        struct json_object *resp = NULL;
        char body[256];

        (void)snprintf(body, sizeof(body), "{\"port_uuid\":\"%s\",\"mac\":\"%s\",\"mtu\":%u}", uuid, mac, mtu);
        ck_assert_int_eq(core_api(&core, "POST", "/v1/ports", body, &resp), 200);
        json_object_put(resp);
}

START_TEST(test_privileges_from_the_kernel)
{
        struct proc_security core_sec, mod_sec, spawner_sec;
        struct json_object *root = NULL, *v;
        pid_t mod = core_module_pid(&core, "network-control"), spawner;

        ck_assert_int_eq(proc_security_read(core.pid, &core_sec), 0);
        ck_assert_uint_eq(core_sec.cap_eff, 0);
        ck_assert_uint_eq(core_sec.cap_prm, 0);
        ck_assert_uint_eq(core_sec.cap_bnd, 0);
        ck_assert(core_sec.no_new_privs);

        ck_assert_int_gt(mod, 0);
        ck_assert_int_eq(proc_security_read(mod, &mod_sec), 0);
        ck_assert_uint_eq(mod_sec.cap_eff, NET_ADMIN);
        ck_assert_uint_eq(mod_sec.cap_prm, NET_ADMIN);
        ck_assert_uint_eq(mod_sec.cap_bnd, NET_ADMIN);
        ck_assert_uint_eq(mod_sec.cap_amb, 0);
        ck_assert(mod_sec.no_new_privs);

        /* The spawner keeps only what modules need, plus SETPCAP to narrow them. */
        ck_assert_int_eq(core_api(&core, "GET", "/v1/status", NULL, &root), 200);
        ck_assert(json_object_object_get_ex(root, "core", &v));
        ck_assert(json_object_object_get_ex(v, "spawner_pid", &v));
        spawner = (pid_t)json_object_get_int64(v);
        json_object_put(root);
        ck_assert_int_gt(spawner, 0);
        ck_assert_int_eq(proc_security_read(spawner, &spawner_sec), 0);
        ck_assert_uint_eq(spawner_sec.cap_eff,
                          (1ULL << CAP_NET_ADMIN) | (1ULL << CAP_SYS_NICE) | (1ULL << CAP_SETPCAP));
        ck_assert(spawner_sec.no_new_privs);
}
END_TEST

START_TEST(test_port_lifecycle_seen_by_the_kernel)
{
        char uuid[37], tap[IFNAME_MAX], alias[128];
        struct json_object *resp = NULL, *ports;
        struct link_facts f;

        random_port_uuid(uuid);
        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        ck_assert_int_eq(link_facts_get(tap, &f), -ENOENT);

        create_port(uuid, "fa:16:3e:12:34:56", 1450);
        ck_assert_int_eq(link_facts_get(tap, &f), 0);
        ck_assert_uint_eq(f.mtu, 1450);
        ck_assert_str_eq(f.mac, "fe:16:3e:12:34:56"); /* the tap: fe + the port MAC's last five bytes */
        ck_assert(f.flags & IFF_UP);
        ck_assert_str_eq(f.kind, "tun");
        (void)snprintf(alias, sizeof(alias), "nova-hypervisor:port=%s", uuid);
        ck_assert_str_eq(f.alias, alias);

        /* Idempotent: the same request again converges, no second device. */
        int before = link_count();
        create_port(uuid, "fa:16:3e:12:34:57", 1400);
        ck_assert_int_eq(link_count(), before);
        ck_assert_int_eq(link_facts_get(tap, &f), 0);
        ck_assert_uint_eq(f.mtu, 1400);
        ck_assert_str_eq(f.mac, "fe:16:3e:12:34:57");

        ck_assert_int_eq(core_api(&core, "GET", "/v1/ports", NULL, &resp), 200);
        ck_assert(json_object_object_get_ex(resp, "ports", &ports));
        ck_assert_int_eq((int)json_object_array_length(ports), 1);
        ck_assert_str_eq(jstr(json_object_array_get_idx(ports, 0), "port_uuid"), uuid);
        json_object_put(resp);

        char path[128];
        (void)snprintf(path, sizeof(path), "/v1/ports/%s", uuid);
        ck_assert_int_eq(core_api(&core, "GET", path, NULL, &resp), 200);
        ck_assert_str_eq(jstr(resp, "name"), tap);
        json_object_put(resp);

        ck_assert_int_eq(core_api(&core, "DELETE", path, NULL, &resp), 200);
        json_object_put(resp);
        ck_assert_int_eq(link_facts_get(tap, &f), -ENOENT);
        ck_assert_int_eq(core_api(&core, "GET", path, NULL, &resp), 404);
        json_object_put(resp);

        /* One audit line per privileged call, with identifiers and result. */
        (void)snprintf(alias, sizeof(alias), "audit: tap_create port_uuid=%s mac=fa:16:3e:12:34:56 mtu=1450 tap=%s result=ok",
                       uuid, tap);
        ck_assert_msg(file_contains(core.log, alias), "missing audit line: %s", alias);
        (void)snprintf(alias, sizeof(alias), "audit: tap_delete port_uuid=%s tap=%s result=ok", uuid, tap);
        ck_assert_msg(file_contains(core.log, alias), "missing audit line: %s", alias);
}
END_TEST

START_TEST(test_bad_api_input_changes_nothing)
{
        static const char *const bodies[] = {
                "{\"mtu\":67}",
                "{\"mtu\":65536}",
                "{\"mtu\":\"1500\"}",
                "{\"port_uuid\":\"../../etc/passwd\"}",
                "{\"port_uuid\":\"0123ABCD-EF01-4234-8678-9ABCDEF01234\"}",
                "{\"mac\":\"ff:ff:ff:ff:ff:ff\"}",
                "{\"mac\":\"fa:16:3e:12:34\"}",
                "{\"mac\":\"fe:16:3e:12:34:56\"}", /* the taps' range: the guest and its tap would share it */
                "{\"ifname\":\"eth0\"}",
                "{\"mtu\":1500",
                "[1,2,3]",
                "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}",
        };
        struct json_object *resp = NULL;
        int before = link_count();

        for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
                int status = core_api(&core, "POST", "/v1/ports", bodies[i], &resp);
                ck_assert_msg(status == 400, "body %s gave %d", bodies[i], status);
                ck_assert_ptr_nonnull(jstr(resp, "error.message"));
                json_object_put(resp);
        }
        ck_assert_int_eq(core_api(&core, "GET", "/v1/ports/not-a-uuid", NULL, &resp), 400);
        json_object_put(resp);
        ck_assert_int_eq(core_api(&core, "DELETE", "/v1/ports/tap0123abcd-ef", NULL, &resp), 400);
        json_object_put(resp);
        ck_assert_int_eq(core_api(&core, "POST", "/v1/plugs/kernel-module-control/connect", NULL, &resp), 404);
        json_object_put(resp);
        ck_assert_int_eq(link_count(), before);
}
END_TEST

START_TEST(test_disconnect_stops_only_that_module)
{
        struct json_object *resp = NULL, *root, *p;
        pid_t mod = core_module_pid(&core, "network-control"), core_pid = core.pid, again;
        char uuid[37];
        int before;

        ck_assert_int_gt(mod, 0);
        ck_assert_int_eq(core_api(&core, "POST", "/v1/plugs/network-control/disconnect", NULL, &resp), 200);
        json_object_put(resp);
        ck_assert_msg(wait_process_gone(mod, 5000), "module still running after disconnect");
        ck_assert(process_alive(core_pid));
        ck_assert_msg(core_wait_module_state(&core, "network-control", "stopped", 5000),
                      "the core did not record the module as stopped");

        p = core_plug_status(&core, "network-control", &root);
        ck_assert_str_eq(jstr(p, "fix"), "sudo snap connect nova-hypervisor:network-control");
        ck_assert_str_eq(jstr(p, "module.state"), "stopped");
        json_object_put(root);

        before = link_count();
        random_port_uuid(uuid);
        char body[128];
        (void)snprintf(body, sizeof(body), "{\"port_uuid\":\"%s\"}", uuid);
        ck_assert_int_eq(core_api(&core, "POST", "/v1/ports", body, &resp), 503);
        ck_assert_str_eq(jstr(resp, "error.plug"), "network-control");
        ck_assert_str_eq(jstr(resp, "error.fix"), "sudo snap connect nova-hypervisor:network-control");
        ck_assert_ptr_nonnull(strstr(jstr(resp, "error.message"), "not connected"));
        json_object_put(resp);
        ck_assert_int_eq(link_count(), before);

        /* The plug state survives a core restart, as snapd's would. */
        core_stop(&core);
        core_start(&core, "module_timeout_ms = 1500\n");
        ck_assert_int_eq(core_module_pid(&core, "network-control"), 0);
        p = core_plug_status(&core, "network-control", &root);
        ck_assert(!json_object_get_boolean(json_object_object_get(p, "connected")));
        json_object_put(root);

        ck_assert_int_eq(core_api(&core, "POST", "/v1/plugs/network-control/connect", NULL, &resp), 200);
        json_object_put(resp);
        again = core_wait_module_running(&core, "network-control", mod, 5000);
        ck_assert_int_gt(again, 0);
        create_port(uuid, "fa:16:3e:00:00:02", 1500);
}
END_TEST

START_TEST(test_crash_fails_inflight_and_restarts)
{
        struct json_object *resp = NULL, *root, *p;
        pid_t mod = core_module_pid(&core, "network-control"), again;
        char uuid[37], body[128], tap[IFNAME_MAX];
        struct link_facts f;
        int fd, status;

        random_port_uuid(uuid);
        (void)snprintf(body, sizeof(body), "{\"port_uuid\":\"%s\"}", uuid);
        /* Freeze the module so the request is certainly in flight, then kill it. */
        ck_assert_int_eq(kill(mod, SIGSTOP), 0);
        fd = api_send_request(core.socket, "POST", "/v1/ports", body);
        ck_assert_int_ge(fd, 0);
        usleep(100 * 1000);
        ck_assert_int_eq(kill(mod, SIGKILL), 0);
        uint64_t t0 = now_usec();
        status = api_read_response(fd, 5000, &resp);
        close(fd);
        ck_assert_int_eq(status, 502);
        ck_assert_msg(now_usec() - t0 < 1000000, "in-flight request took %llu us to fail",
                      (unsigned long long)(now_usec() - t0));
        ck_assert_ptr_nonnull(strstr(jstr(resp, "error.message"), "not completed"));
        json_object_put(resp);
        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        ck_assert_int_eq(link_facts_get(tap, &f), -ENOENT);

        again = core_wait_module_running(&core, "network-control", mod, 5000);
        ck_assert_int_gt(again, 0);
        p = core_plug_status(&core, "network-control", &root);
        ck_assert_int_eq(json_object_get_int(json_object_object_get(json_object_object_get(p, "module"), "restarts")), 1);
        json_object_put(root);
        create_port(uuid, "fa:16:3e:00:00:03", 1500);
        ck_assert_int_eq(link_facts_get(tap, &f), 0);
}
END_TEST

START_TEST(test_hung_module_times_out)
{
        struct json_object *resp = NULL;
        pid_t mod = core_module_pid(&core, "network-control");
        uint64_t t0;

        ck_assert_int_eq(kill(mod, SIGSTOP), 0);
        t0 = now_usec();
        ck_assert_int_eq(core_api(&core, "GET", "/v1/ports", NULL, &resp), 504);
        ck_assert_uint_lt(now_usec() - t0, 5000000);
        ck_assert_ptr_nonnull(strstr(jstr(resp, "error.message"), "did not answer"));
        json_object_put(resp);
        ck_assert_int_eq(kill(mod, SIGCONT), 0);
        ck_assert_int_eq(core_api(&core, "GET", "/v1/ports", NULL, &resp), 200);
        json_object_put(resp);
}
END_TEST

/* ---- the module alone, driven over a raw socket as a hostile core would ---- */

#define RAW_LOG "/tmp/nova-it-raw-module.log"

struct raw_module {
        pid_t pid;
        int fd;
        struct proto_msg *msg;
        struct proto_writer *w;
        uint32_t next_id;        /* ids of raw_call(): increasing, as the core's */
};

static void raw_start(struct raw_module *m)
{
        char err[256];
        uint8_t buf[PROTO_MAX_FRAME];
        ssize_t n;

        m->next_id = 0;
        m->pid = module_exec("nova-network-control", NULL, RAW_LOG, &m->fd);
        m->msg = malloc(sizeof(*m->msg));
        m->w = malloc(sizeof(*m->w));
        ck_assert(m->msg && m->w);
        n = recv(m->fd, buf, sizeof(buf), 0);
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(proto_decode(buf, (size_t)n, m->msg, err, sizeof(err)), 0);
        ck_assert_int_eq(m->msg->type, PROTO_HELLO);
        ck_assert_str_eq(m->msg->name, "network-control");
        ck_assert_uint_eq(proto_get(m->msg->body, "entrypoints")->count, _NETCTL_MAX);
}

/* Send a frame, return the reply's status (decoded into m->msg), or 1 when the module closed the connection. */
static int raw_call_bytes(struct raw_module *m, const void *frame, size_t len)
{
        uint8_t buf[PROTO_MAX_FRAME];
        char err[256];
        ssize_t n;

        ck_assert_int_eq(send(m->fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
        n = recv(m->fd, buf, sizeof(buf), 0);
        if (n == 0)
                return 1;
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(proto_decode(buf, (size_t)n, m->msg, err, sizeof(err)), 0);
        ck_assert_int_eq(m->msg->type, PROTO_REPLY);
        return m->msg->status;
}

/* Send the request in m->w with request id `id`; as raw_call_bytes(). */
static int raw_call_id(struct raw_module *m, uint32_t id)
{
        const uint8_t *frame;
        size_t len;

        pw_set_id(m->w, id);
        ck_assert_int_eq(pw_finish(m->w, &frame, &len), 0);
        return raw_call_bytes(m, frame, len);
}

/* Send the request in m->w with the connection's next id (the id given to pw_init is replaced). */
static int raw_call(struct raw_module *m) { return raw_call_id(m, ++m->next_id); }

static void raw_finish(struct raw_module *m, int expect_exit_code)
{
        int status;

        close(m->fd);
        ck_assert_int_eq(waitpid(m->pid, &status, 0), m->pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), expect_exit_code);
        free(m->msg);
        free(m->w);
}

/* Issue 20, fate-sharing: the request in m->w (which the core's own checks would
 * have refused) is not answered: the module logs `why`, hangs up and exits 1.
 * Then a fresh module is started on m, as the supervisor would. */
static void raw_expect_fatal(struct raw_module *m, const char *why)
{
        ck_assert_int_eq(raw_call(m), 1);
        raw_finish(m, 1);
        ck_assert_msg(file_contains(RAW_LOG, why), "'%s' not in %s", why, RAW_LOG);
        raw_start(m);
}

START_TEST(test_raw_socket_refusals)
{
        struct raw_module m;
        int before = link_count();

        (void)unlink(RAW_LOG);
        raw_start(&m);
        /* Unknown entrypoint: the core never sends one, so the module hangs up and exits. */
        pw_init(m.w, PROTO_REQUEST, 1, 0, "tap_delete_all");
        raw_expect_fatal(&m, "protocol violation: request 1: unknown entrypoint 'tap_delete_all'");

        /* Path-like and foreign identifiers: schema violations, the same. */
        static const char *const bad_ports[] = { "../../../etc/passwd", "/sys/class/net/eth0", "eth0",
                                                 "tap0123abcd-ef", "0123ABCD-EF01-4234-8678-9ABCDEF01234" };
        for (size_t i = 0; i < ARRAY_SIZE(bad_ports); i++) {
                pw_init(m.w, PROTO_REQUEST, 2, 0, "tap_create");
                pw_str(m.w, "port_uuid", bad_ports[i]);
                pw_str(m.w, "mac", "fa:16:3e:00:00:01");
                pw_u64(m.w, "mtu", 1500);
                raw_expect_fatal(&m, "tap_create: port_uuid: not a canonical lowercase UUID");
                pw_init(m.w, PROTO_REQUEST, 3, 0, "tap_delete");
                pw_str(m.w, "port_uuid", bad_ports[i]);
                raw_expect_fatal(&m, "tap_delete: port_uuid: not a canonical lowercase UUID");
        }
        /* A name instead of an identifier: unknown field. */
        pw_init(m.w, PROTO_REQUEST, 4, 0, "tap_delete");
        pw_str(m.w, "ifname", "eth0");
        raw_expect_fatal(&m, "tap_delete: ifname");
        /* Out-of-range values. */
        pw_init(m.w, PROTO_REQUEST, 5, 0, "tap_create");
        pw_str(m.w, "port_uuid", "0123abcd-ef01-4234-8678-9abcdef01234");
        pw_str(m.w, "mac", "ff:ff:ff:ff:ff:ff");
        pw_u64(m.w, "mtu", 1500);
        raw_expect_fatal(&m, "tap_create: mac");
        ck_assert_int_eq(link_count(), before);

        /* A fresh module serves. */
        pw_init(m.w, PROTO_REQUEST, 6, 0, "tap_list");
        ck_assert_int_eq(raw_call(&m), 0);

        /* An oversized frame is a protocol violation: the module hangs up. */
        uint8_t *big = calloc(1, PROTO_MAX_FRAME + 100);
        ck_assert_ptr_nonnull(big);
        pw_init(m.w, PROTO_REQUEST, 7, 0, "tap_list");
        const uint8_t *frame;
        size_t len;
        ck_assert_int_eq(pw_finish(m.w, &frame, &len), 0);
        memcpy(big, frame, len);
        ck_assert_int_eq(raw_call_bytes(&m, big, PROTO_MAX_FRAME + 100), 1);
        free(big);
        raw_finish(&m, 1);
        ck_assert_int_eq(link_count(), before);
        ck_assert(file_contains(RAW_LOG, "protocol violation: frame of 65636 bytes"));
}
END_TEST

START_TEST(test_raw_socket_malformed_frame_closes)
{
        struct raw_module m;
        static const uint8_t garbage[] = "GET / HTTP/1.1\r\n\r\n";

        raw_start(&m);
        ck_assert_int_eq(raw_call_bytes(&m, garbage, sizeof(garbage)), 1);
        raw_finish(&m, 1);

        /* A reply frame sent to the module is also a violation. */
        raw_start(&m);
        pw_init(m.w, PROTO_REPLY, 1, 0, "tap_list");
        ck_assert_int_eq(raw_call(&m), 1);
        raw_finish(&m, 1);
}
END_TEST

static bool link_exists(const char *name)
{
        struct link_facts f;
        return link_facts_get(name, &f) == 0;
}

/* Request ids: the core numbers its requests from one counter, so an id
 * that repeats the one before (the probe's tap_create and tap_delete, both
 * id 77), goes back, or is 0 is a protocol violation: logged, the connection
 * closed, exit 1, and the request not executed. An empty datagram is not
 * the end of the stream: also a violation (the end of the stream is a clean
 * exit, see raw_finish(m, 0) elsewhere). */
START_TEST(test_raw_request_ids_and_empty_frame)
{
        const char *port = "0a0b0c0d-1111-4222-8333-444444444444";
        char tap[IFNAME_MAX];
        struct raw_module m;

        ck_assert_int_eq(tap_name_from_port(port, tap), 0);
        (void)unlink(RAW_LOG);
        raw_start(&m);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_create");
        pw_str(m.w, "port_uuid", port);
        pw_str(m.w, "mac", "fa:16:3e:00:00:77");
        pw_u64(m.w, "mtu", 1500);
        ck_assert_int_eq(raw_call_id(&m, 77), 0);
        ck_assert(link_exists(tap));
        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_delete");
        pw_str(m.w, "port_uuid", port);
        ck_assert_int_eq(raw_call_id(&m, 77), 1); /* hung up */
        raw_finish(&m, 1);
        ck_assert_msg(link_exists(tap), "the repeated request was executed");
        ck_assert(file_contains(RAW_LOG, "protocol violation: request id 77 after 77"));

        /* Going back is refused the same way; so is id 0. */
        (void)unlink(RAW_LOG);
        raw_start(&m);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_list");
        ck_assert_int_eq(raw_call_id(&m, 500), 0);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_delete");
        pw_str(m.w, "port_uuid", port);
        ck_assert_int_eq(raw_call_id(&m, 499), 1);
        raw_finish(&m, 1);
        ck_assert(link_exists(tap));
        ck_assert(file_contains(RAW_LOG, "protocol violation: request id 499 after 500"));
        raw_start(&m);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_delete");
        pw_str(m.w, "port_uuid", port);
        ck_assert_int_eq(raw_call_id(&m, 0), 1);
        raw_finish(&m, 1);
        ck_assert(link_exists(tap));
        ck_assert(file_contains(RAW_LOG, "protocol violation: request with id 0"));

        /* Serial-number order: after 0xffffffff the core's counter goes on at 1. */
        raw_start(&m);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_list");
        ck_assert_int_eq(raw_call_id(&m, 0xffffffffu), 0);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_list");
        ck_assert_int_eq(raw_call_id(&m, 1), 0);
        /* An empty datagram from a live peer: a violation, not the end of the stream. */
        ck_assert_int_eq(raw_call_bytes(&m, "", 0), 1);
        raw_finish(&m, 1);
        ck_assert(file_contains(RAW_LOG, "protocol violation: empty frame (0 bytes)"));

        /* Each new connection starts afresh; the port goes. */
        raw_start(&m);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_delete");
        pw_str(m.w, "port_uuid", port);
        ck_assert_int_eq(raw_call_id(&m, 77), 0);
        raw_finish(&m, 0);
        ck_assert(!link_exists(tap));
}
END_TEST

/* Through the module: the probe's foreign veth in our qbr is not released
 * (tap_delete and a plain tap_create answer EBUSY naming it, audited); the
 * probe's MTU 65530 is refused by the schema before the module acts. */
START_TEST(test_raw_foreign_device_in_our_bridge)
{
        const char *uuid = "0d0ffee0-5678-4abc-8def-000000000002";
        char tap[IFNAME_MAX], qbr[IFNAME_MAX], want[160];
        struct link_facts f, before_tap;
        struct raw_module m;

        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        ck_assert_int_eq(port_dev_name(QBR_PREFIX, uuid, qbr), 0);
        (void)unlink(RAW_LOG);
        raw_start(&m);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_create");
        pw_str(m.w, "port_uuid", uuid);
        pw_str(m.w, "mac", "fa:16:3e:00:30:01");
        pw_u64(m.w, "mtu", 1500);
        pw_bool(m.w, "hybrid", true);
        ck_assert_int_eq(raw_call(&m), 0);
        ck_assert_int_eq(foreign_veth_add("admv0"), 0);
        ck_assert_int_eq(sh("ip link set admv0 master %s", qbr), 0);
        ck_assert_int_eq(link_facts_get(tap, &before_tap), 0);

        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_delete");
        pw_str(m.w, "port_uuid", uuid);
        ck_assert_int_eq(raw_call(&m), -EBUSY);
        (void)snprintf(want, sizeof(want), "admv0 is a port of %s, which is ours and would be deleted", qbr);
        ck_assert_msg(strstr(proto_get_str(m.msg->body, "error", ""), want), "%s",
                      proto_get_str(m.msg->body, "error", ""));
        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_create");
        pw_str(m.w, "port_uuid", uuid);
        pw_str(m.w, "mac", "fa:16:3e:00:30:02");
        pw_u64(m.w, "mtu", 1400);
        ck_assert_int_eq(raw_call(&m), -EBUSY);
        ck_assert_int_eq(link_facts_get(qbr, &f), 0);
        ck_assert_int_eq(link_facts_get(tap, &f), 0);
        ck_assert_uint_eq(f.mtu, before_tap.mtu);
        ck_assert_str_eq(f.mac, before_tap.mac);
        char *master = sh_out("ip -o link show admv0");
        ck_assert_msg(strstr(master, qbr), "%s", master);
        free(master);

        /* MTU 65530 with another MAC (the probe's request): the schema's limit is the tap's, 65521. */
        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_create");
        pw_str(m.w, "port_uuid", uuid);
        pw_str(m.w, "mac", "fa:16:3e:00:30:03");
        pw_u64(m.w, "mtu", 65530);
        pw_bool(m.w, "hybrid", true);
        raw_expect_fatal(&m, "tap_create: mtu");
        ck_assert(file_contains(RAW_LOG, "68..65521"));
        ck_assert_int_eq(link_facts_get(tap, &f), 0);
        ck_assert_str_eq(f.mac, before_tap.mac);

        ck_assert_int_eq(sh("ip link set admv0 nomaster && ip link del admv0"), 0);
        pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_delete");
        pw_str(m.w, "port_uuid", uuid);
        ck_assert_int_eq(raw_call(&m), 0);
        ck_assert_int_ne(link_facts_get(qbr, &f), 0);
        raw_finish(&m, 0);
        (void)snprintf(want, sizeof(want), "tap_delete port_uuid=%s tap=%s result=error errno=%d", uuid, tap, EBUSY);
        ck_assert_msg(file_contains(RAW_LOG, want), "no audit line %s", want);
}
END_TEST

START_TEST(test_raw_list_more_taps_than_one_frame)
{
        struct raw_module m;
        char uuid[37];
        const int n = 240;
        uint64_t before;

        raw_start(&m);
        pw_init(m.w, PROTO_REQUEST, 999, 0, "tap_list"); /* earlier tests share this namespace */
        ck_assert_int_eq(raw_call(&m), 0);
        before = proto_get_u64(m.msg->body, "total", 0);
        for (int i = 0; i < n; i++) {
                (void)snprintf(uuid, sizeof(uuid), "%08x-0000-4000-8000-000000000000", 0x10000000 + i);
                pw_init(m.w, PROTO_REQUEST, (uint32_t)i + 1, 0, "tap_create");
                pw_str(m.w, "port_uuid", uuid);
                pw_str(m.w, "mac", "fa:16:3e:00:10:01");
                pw_u64(m.w, "mtu", 1500);
                ck_assert_int_eq(raw_call(&m), 0);
        }
        /* More taps than one frame can carry: pages, in port UUID order, each honestly labelled;
         * following "next" lists every tap once. */
        char after[37] = "", last[37] = "";
        unsigned pages = 0, listed = 0, ours = 0;
        do {
                pw_init(m.w, PROTO_REQUEST, 1000 + pages, 0, "tap_list");
                if (after[0])
                        pw_str(m.w, "after", after);
                ck_assert_int_eq(raw_call(&m), 0);
                ck_assert_uint_eq(proto_get_u64(m.msg->body, "total", 0), before + (uint64_t)n);
                const struct proto_value *taps = proto_get(m.msg->body, "taps");
                ck_assert_uint_gt(taps->count, 0);
                /* A TAP is at most 12 values of the frame's 2048: 170 a page. */
                ck_assert_uint_le(taps->count, 170);
                for (const struct proto_value *t = taps->child; t; t = t->next) {
                        const char *u = proto_get_str(t, "port_uuid", "");
                        ck_assert_msg(strcmp(u, last) > 0, "%s listed after %s", u, last);
                        (void)strscpy(last, u, sizeof(last));
                        listed++;
                        ours += strncmp(u + 8, "-0000-4000-8000-000000000000", 28) == 0 && u[0] == '1';
                }
                pages++;
                if (!proto_get_bool(m.msg->body, "truncated", true))
                        break;
                ck_assert_str_eq(proto_get_str(m.msg->body, "next", ""), last);
                (void)strscpy(after, last, sizeof(after));
        } while (pages < 10);
        ck_assert_uint_ge(pages, 2);
        ck_assert_uint_eq(listed, before + (uint64_t)n);
        ck_assert_uint_eq(ours, (unsigned)n);
        /* A limit: exactly that many, and where the next page starts. */
        pw_init(m.w, PROTO_REQUEST, 1100, 0, "tap_list");
        pw_str(m.w, "after", "10000004-0000-4000-8000-000000000000");
        pw_u64(m.w, "limit", 3);
        ck_assert_int_eq(raw_call(&m), 0);
        ck_assert_uint_eq(proto_get(m.msg->body, "taps")->count, 3);
        ck_assert_str_eq(proto_get_str(proto_get(m.msg->body, "taps")->child, "port_uuid", ""),
                         "10000005-0000-4000-8000-000000000000");
        ck_assert(proto_get_bool(m.msg->body, "truncated", false));
        ck_assert_str_eq(proto_get_str(m.msg->body, "next", ""), "10000007-0000-4000-8000-000000000000");
        for (int i = 0; i < n; i++) {
                (void)snprintf(uuid, sizeof(uuid), "%08x-0000-4000-8000-000000000000", 0x10000000 + i);
                pw_init(m.w, PROTO_REQUEST, 2000 + (uint32_t)i, 0, "tap_delete");
                pw_str(m.w, "port_uuid", uuid);
                ck_assert_int_eq(raw_call(&m), 0);
        }
        pw_init(m.w, PROTO_REQUEST, 3000, 0, "tap_list");
        ck_assert_int_eq(raw_call(&m), 0);
        ck_assert_uint_eq(proto_get_u64(m.msg->body, "total", 1), before);
        ck_assert(!proto_get_bool(m.msg->body, "truncated", true));
        raw_finish(&m, 0);
}
END_TEST


/* Deletes that arrive together are deleted together. Eight tap_delete
 * requests and a tap_get are sent in one sendmmsg() without waiting for the
 * answers (as the core does with operations in flight): six ports of ours,
 * one whose tap is foreign (no mark), one that does not exist. Each gets its
 * own answer (the foreign one -EPERM and left alone, the absent one
 * -ENOENT), the six are gone, the tap_get asked after them finds its port
 * deleted (order kept), and the kernel's link notifications show the six taps
 * were moved into fewer device groups than there were ports (batches; one
 * device at a time uses no group at all). */
START_TEST(test_raw_pipelined_deletes_batched)
{
        enum { N_OURS = 6, N_DEL = 8, N_REQ = N_DEL + 1 };
        char uuids[N_DEL][37], taps[N_DEL][IFNAME_MAX];
        static uint8_t frames[N_REQ][1024];
        struct mmsghdr mm[N_REQ];
        struct iovec iov[N_REQ];
        int status_of[N_REQ];
        struct link_facts f;
        struct raw_module m;

        for (int i = 0; i < N_DEL; i++) {
                (void)snprintf(uuids[i], sizeof(uuids[i]), "0e0ffee%d-9abc-4abc-8def-000000000001", i);
                ck_assert_int_eq(tap_name_from_port(uuids[i], taps[i]), 0);
        }
        raw_start(&m);
        for (int i = 0; i < N_OURS; i++) {
                pw_init(m.w, PROTO_REQUEST, 0, 0, "tap_create");
                pw_str(m.w, "port_uuid", uuids[i]);
                pw_str(m.w, "mac", "fa:16:3e:00:40:01");
                pw_u64(m.w, "mtu", 1500);
                pw_bool(m.w, "hybrid", i % 2 == 0);
                ck_assert_int_eq(raw_call(&m), 0);
        }
        ck_assert_int_eq(sh("ip tuntap add mode tap %s", taps[N_OURS]), 0); /* foreign: no mark */

        /* Listen to link notifications from here on. */
        int mon = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        ck_assert_int_ge(mon, 0);
        int rcvbuf = 4 << 20;
        (void)setsockopt(mon, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
        ck_assert_int_eq(bind(mon, (struct sockaddr *)&sa, sizeof(sa)), 0);

        for (int i = 0; i < N_REQ; i++) {
                const uint8_t *frame;
                size_t len;

                pw_init(m.w, PROTO_REQUEST, ++m.next_id, 0, i < N_DEL ? "tap_delete" : "tap_get");
                pw_str(m.w, "port_uuid", uuids[i < N_DEL ? i : 0]);
                ck_assert_int_eq(pw_finish(m.w, &frame, &len), 0);
                ck_assert_uint_le(len, sizeof(frames[i]));
                memcpy(frames[i], frame, len);
                iov[i] = (struct iovec){ frames[i], len };
                mm[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
        }
        uint32_t first_id = m.next_id - N_REQ + 1;
        ck_assert_int_eq(sendmmsg(m.fd, mm, N_REQ, MSG_NOSIGNAL), N_REQ);
        for (int i = 0; i < N_REQ; i++)
                status_of[i] = 1; /* no answer yet */
        for (int k = 0; k < N_REQ; k++) {
                uint8_t buf[PROTO_MAX_FRAME];
                char err[256];
                ssize_t n = recv(m.fd, buf, sizeof(buf), 0);

                ck_assert_int_gt(n, 0);
                ck_assert_int_eq(proto_decode(buf, (size_t)n, m.msg, err, sizeof(err)), 0);
                ck_assert_int_eq(m.msg->type, PROTO_REPLY);
                uint32_t i = m.msg->id - first_id;
                ck_assert_uint_lt(i, N_REQ);
                ck_assert_msg(status_of[i] == 1, "two answers to request %u", m.msg->id);
                ck_assert_str_eq(m.msg->name, i < N_DEL ? "tap_delete" : "tap_get");
                status_of[i] = m.msg->status;
                if (i == N_OURS)
                        ck_assert_msg(strstr(proto_get_str(m.msg->body, "error", ""), "not created by nova-hypervisor"),
                                      "%s", proto_get_str(m.msg->body, "error", ""));
        }
        for (int i = 0; i < N_OURS; i++) {
                ck_assert_msg(status_of[i] == 0, "port %d: %d", i, status_of[i]);
                ck_assert_int_ne(link_facts_get(taps[i], &f), 0);
        }
        ck_assert_int_eq(status_of[N_OURS], -EPERM);
        ck_assert_int_eq(link_facts_get(taps[N_OURS], &f), 0);
        ck_assert_int_eq(status_of[N_OURS + 1], -ENOENT);
        ck_assert_int_eq(status_of[N_DEL], -ENOENT); /* the tap_get after the deletes */

        /* Which device groups did our taps pass through on their way out? */
        uint32_t groups[N_OURS];
        int n_groups = 0, moved = 0;
        for (;;) {
                static uint8_t buf[64 * 1024];
                ssize_t n = recv(mon, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0)
                        break;
                int len = (int)n;
                for (struct nlmsghdr *h = (struct nlmsghdr *)buf; nlmsg_ok(h, len); h = nlmsg_next(h, &len)) {
                        struct nlattr *tb[IFLA_MAX + 1];
                        if (h->nlmsg_type != RTM_NEWLINK ||
                            nlmsg_parse(h, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0 || !tb[IFLA_IFNAME] ||
                            !tb[IFLA_GROUP] || nla_get_u32(tb[IFLA_GROUP]) == 0)
                                continue;
                        uint32_t g = nla_get_u32(tb[IFLA_GROUP]);
                        bool ours_tap = false, known = false;
                        for (int i = 0; i < N_OURS; i++)
                                ours_tap |= streq(nla_get_string(tb[IFLA_IFNAME]), taps[i]);
                        ck_assert_msg(!streq(nla_get_string(tb[IFLA_IFNAME]), taps[N_OURS]),
                                      "the foreign tap was moved to group %u", g);
                        if (!ours_tap)
                                continue;
                        moved++;
                        for (int j = 0; j < n_groups; j++)
                                known |= groups[j] == g;
                        if (!known && n_groups < N_OURS)
                                groups[n_groups++] = g;
                }
        }
        close(mon);
        ck_assert_int_ge(moved, N_OURS);
        ck_assert_msg(n_groups >= 1 && n_groups < N_OURS, "%d ports deleted in %d batches", N_OURS, n_groups);
        ck_assert_int_eq(sh("ip link del %s", taps[N_OURS]), 0);
        raw_finish(&m, 0);
}
END_TEST

/* Hybrid plugging through the module: the request flag, the reply members,
 * the kernel's view of all four devices, the audit line. */
START_TEST(test_raw_hybrid)
{
        const char *uuid = "0c0ffee0-1234-4abc-8def-000000000001";
        char tap[IFNAME_MAX], qbr[IFNAME_MAX], qvb[IFNAME_MAX], qvo[IFNAME_MAX], mark[128], audit[256];
        const char *names[4] = { tap, qbr, qvb, qvo }, *kinds[4] = { "tun", "bridge", "veth", "veth" };
        const struct proto_value *t;
        struct link_facts f;
        struct raw_module m;
        int before = link_count();

        ck_assert_int_eq(tap_name_from_port(uuid, tap), 0);
        ck_assert_int_eq(port_dev_name(QBR_PREFIX, uuid, qbr), 0);
        ck_assert_int_eq(port_dev_name(QVB_PREFIX, uuid, qvb), 0);
        ck_assert_int_eq(port_dev_name(QVO_PREFIX, uuid, qvo), 0);
        (void)snprintf(mark, sizeof(mark), "nova-hypervisor:port=%s", uuid);
        (void)unlink(RAW_LOG);
        raw_start(&m);

        /* hybrid must be a boolean */
        pw_init(m.w, PROTO_REQUEST, 1, 0, "tap_create");
        pw_str(m.w, "port_uuid", uuid);
        pw_str(m.w, "mac", "fa:16:3e:00:20:01");
        pw_u64(m.w, "mtu", 1450);
        pw_str(m.w, "hybrid", "yes");
        raw_expect_fatal(&m, "tap_create: hybrid");
        ck_assert_int_eq(link_count(), before);

        pw_init(m.w, PROTO_REQUEST, 2, 0, "tap_create");
        pw_str(m.w, "port_uuid", uuid);
        pw_str(m.w, "mac", "fa:16:3e:00:20:01");
        pw_u64(m.w, "mtu", 1450);
        pw_bool(m.w, "hybrid", true);
        ck_assert_int_eq(raw_call(&m), 0);
        t = proto_get(m.msg->body, "tap");
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(proto_get_str(t, "name", ""), tap);
        ck_assert(proto_get_bool(t, "hybrid", false));
        ck_assert_str_eq(proto_get_str(t, "bridge", ""), qbr);
        ck_assert_str_eq(proto_get_str(t, "ovs_dev", ""), qvo);
        ck_assert_int_eq(link_count(), before + 4);
        for (int i = 0; i < 4; i++) {
                ck_assert_msg(link_facts_get(names[i], &f) == 0, "%s missing", names[i]);
                ck_assert_str_eq(f.kind, kinds[i]);
                ck_assert_str_eq(f.alias, mark);
                ck_assert_uint_eq(f.mtu, 1450);
                ck_assert(f.flags & IFF_UP);
        }

        pw_init(m.w, PROTO_REQUEST, 3, 0, "tap_get");
        pw_str(m.w, "port_uuid", uuid);
        ck_assert_int_eq(raw_call(&m), 0);
        t = proto_get(m.msg->body, "tap");
        ck_assert(proto_get_bool(t, "hybrid", false));
        ck_assert_str_eq(proto_get_str(t, "ovs_dev", ""), qvo);

        pw_init(m.w, PROTO_REQUEST, 4, 0, "tap_list");
        ck_assert_int_eq(raw_call(&m), 0);
        bool listed = false;
        for (t = proto_get(m.msg->body, "taps")->child; t; t = t->next)
                if (streq(proto_get_str(t, "port_uuid", ""), uuid)) {
                        listed = true;
                        ck_assert(proto_get_bool(t, "hybrid", false));
                        ck_assert_str_eq(proto_get_str(t, "bridge", ""), qbr);
                        ck_assert_str_eq(proto_get_str(t, "ovs_dev", ""), qvo);
                } else {
                        ck_assert(!proto_get_bool(t, "hybrid", true));
                        ck_assert_ptr_null(proto_get(t, "bridge"));
                }
        ck_assert(listed);

        /* Back to plain: the tap stays, the rest goes; the reply says so. */
        pw_init(m.w, PROTO_REQUEST, 5, 0, "tap_create");
        pw_str(m.w, "port_uuid", uuid);
        pw_str(m.w, "mac", "fa:16:3e:00:20:01");
        pw_u64(m.w, "mtu", 1450);
        pw_bool(m.w, "hybrid", false);
        ck_assert_int_eq(raw_call(&m), 0);
        t = proto_get(m.msg->body, "tap");
        ck_assert(!proto_get_bool(t, "hybrid", true));
        ck_assert_str_eq(proto_get_str(t, "ovs_dev", ""), tap);
        ck_assert_ptr_null(proto_get(t, "bridge"));
        ck_assert_int_eq(link_count(), before + 1);
        for (int i = 1; i < 4; i++)
                ck_assert_int_eq(link_facts_get(names[i], &f), -ENOENT);

        /* A foreign device under the bridge's name: refused, with a reason, nothing made. */
        ck_assert_int_eq(foreign_veth_add(qbr), 0);
        int with_foreign = link_count();
        pw_init(m.w, PROTO_REQUEST, 6, 0, "tap_create");
        pw_str(m.w, "port_uuid", uuid);
        pw_str(m.w, "mac", "fa:16:3e:00:20:01");
        pw_u64(m.w, "mtu", 1450);
        pw_bool(m.w, "hybrid", true);
        ck_assert_int_eq(raw_call(&m), -EEXIST);
        ck_assert_msg(strstr(proto_get_str(m.msg->body, "error", ""), "not created by nova-hypervisor"), "error: %s",
                      proto_get_str(m.msg->body, "error", ""));
        ck_assert_int_eq(link_count(), with_foreign);
        ck_assert_int_eq(link_facts_get(qvb, &f), -ENOENT);

        /* Delete: our tap goes, the foreign device stays. */
        pw_init(m.w, PROTO_REQUEST, 7, 0, "tap_delete");
        pw_str(m.w, "port_uuid", uuid);
        ck_assert_int_eq(raw_call(&m), 0);
        ck_assert_int_eq(link_facts_get(tap, &f), -ENOENT);
        ck_assert_int_eq(link_facts_get(qbr, &f), 0);
        ck_assert_int_eq(link_count(), with_foreign - 1);
        raw_finish(&m, 0);

        (void)snprintf(audit, sizeof(audit),
                       "audit: tap_create port_uuid=%s mac=fa:16:3e:00:20:01 mtu=1450 hybrid=true tap=%s bridge=%s "
                       "ovs_dev=%s result=ok",
                       uuid, tap, qbr, qvo);
        ck_assert_msg(file_contains(RAW_LOG, audit), "missing audit line: %s", audit);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("network-control");
        TCase *core_tc = tcase_create("with-core"), *raw_tc = tcase_create("raw-module");
        SRunner *sr;
        int failed;

        harness_enter_netns("test-network-control");
        tcase_add_checked_fixture(core_tc, setup, teardown);
        tcase_set_timeout(core_tc, 60);
        tcase_add_test(core_tc, test_privileges_from_the_kernel);
        tcase_add_test(core_tc, test_port_lifecycle_seen_by_the_kernel);
        tcase_add_test(core_tc, test_bad_api_input_changes_nothing);
        tcase_add_test(core_tc, test_disconnect_stops_only_that_module);
        tcase_add_test(core_tc, test_crash_fails_inflight_and_restarts);
        tcase_add_test(core_tc, test_hung_module_times_out);
        suite_add_tcase(s, core_tc);
        tcase_set_timeout(raw_tc, 30);
        tcase_add_test(raw_tc, test_raw_socket_refusals);
        tcase_add_test(raw_tc, test_raw_socket_malformed_frame_closes);
        tcase_add_test(raw_tc, test_raw_request_ids_and_empty_frame);
        tcase_add_test(raw_tc, test_raw_list_more_taps_than_one_frame);
        tcase_add_test(raw_tc, test_raw_hybrid);
        tcase_add_test(raw_tc, test_raw_pipelined_deletes_batched);
        tcase_add_test(raw_tc, test_raw_foreign_device_in_our_bridge);
        suite_add_tcase(s, raw_tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
