/* privsep-rtt-client.c - round-trip latency of one module call, measured the
 * way the core makes it: a SOCK_SEQPACKET socketpair to nova-network-control
 * (started with `--fd 3`), its HELLO decoded, then N tap_get requests, each
 * built with pw_*, sent, received and decoded with proto_decode(), and the
 * tap's MTU read out of the reply.
 *
 *   privsep-rtt-client [N]        (root, ideally in a private netns)
 *
 * Environment: NOVA_BIN (default build/bin) is where nova-network-control is.
 * Prints:  ours tap_get calls=N per_call_us_median=X min=Y max=Z
 * (5 batches of N calls after a warm-up; X is the median of the batch means,
 * the same statistic as ../shared/bench/oslo_privsep_rtt.py). */
#include "proto.h"

#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#define BATCHES 5
#define PORT_UUID "6e0c2b1a-4f3d-4e5b-9a8c-0123456789ab"
#define PORT_MAC "fa:16:3e:00:00:01"
#define PORT_MTU 1500
#define PLUG_NAME "network-control"

static struct proto_writer writer;   /* 64 KiB: static, not on the stack */
static struct proto_msg rx;          /* ~170 KiB decode arena */
static uint8_t rxbuf[PROTO_MAX_FRAME + 1];
static uint32_t next_id;
static pid_t module_pid = -1;

_printf_(1, 2) _noreturn_ static void die(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "privsep-rtt-client: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        if (module_pid > 0) {
                (void)kill(module_pid, SIGTERM);
                (void)waitpid(module_pid, NULL, 0);
        }
        exit(1);
}

static double now_s(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static pid_t start_module(const char *bin_dir, int *ret_fd)
{
        char path[4096];
        int sv[2];
        pid_t pid;

        if (snprintf(path, sizeof(path), "%s/nova-network-control", bin_dir) >= (int)sizeof(path))
                die("NOVA_BIN too long");
        if (access(path, X_OK) < 0)
                die("%s: %s (run make first, or set NOVA_BIN)", path, strerror(errno));
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                die("socketpair: %s", strerror(errno));
        pid = fork();
        if (pid < 0)
                die("fork: %s", strerror(errno));
        if (pid == 0) {
                if (sv[1] == 3) {
                        if (fcntl(3, F_SETFD, 0) < 0) /* dup2 onto itself would keep CLOEXEC */
                                _exit(126);
                } else if (dup2(sv[1], 3) < 0) /* the copy on 3 is not close-on-exec */
                        _exit(126);
                execl(path, "nova-network-control", "--fd", "3", (char *)NULL);
                _exit(127);
        }
        close(sv[1]);
        *ret_fd = sv[0];
        return pid;
}

/* Receive and decode one frame into rx. */
static void recv_frame(int fd, const char *what)
{
        char why[256];
        ssize_t n;

        do
                n = recv(fd, rxbuf, sizeof(rxbuf), MSG_TRUNC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                die("recv (%s): %s", what, strerror(errno));
        if (n == 0)
                die("module closed the connection (waiting for %s)", what);
        if (n > PROTO_MAX_FRAME)
                die("%s: frame of %zd bytes", what, n);
        if (proto_decode(rxbuf, (size_t)n, &rx, why, sizeof(why)) < 0)
                die("%s: cannot decode: %s", what, why);
}

static void check_hello(int fd, pid_t pid)
{
        const struct proto_value *eps;
        bool has_get = false;

        recv_frame(fd, "hello");
        if (rx.type != PROTO_HELLO || !streq(rx.name, PLUG_NAME))
                die("expected a hello from %s, got %s '%s'", PLUG_NAME, proto_type_name(rx.type), rx.name);
        if (proto_get_u64(rx.body, "version", 0) != PROTO_VERSION)
                die("hello: protocol version mismatch");
        if (proto_get_u64(rx.body, "pid", 0) != (uint64_t)pid)
                die("hello: names another pid");
        eps = proto_get(rx.body, "entrypoints");
        if (!eps || eps->type != PV_LIST)
                die("hello: no entrypoint list");
        for (const struct proto_value *e = eps->child; e; e = e->next)
                if (e->type == PV_STR && streq(e->v.s, "tap_get"))
                        has_get = true;
        if (!has_get)
                die("hello: module does not offer tap_get");
}

/* One full round trip: build, send, receive, decode, check. Returns the reply's status. */
static int call(int fd, const char *entrypoint, bool with_mac_mtu)
{
        const uint8_t *buf;
        size_t len;
        uint32_t id = ++next_id;

        pw_init(&writer, PROTO_REQUEST, id, 0, entrypoint);
        pw_str(&writer, "port_uuid", PORT_UUID);
        if (with_mac_mtu) {
                pw_str(&writer, "mac", PORT_MAC);
                pw_u64(&writer, "mtu", PORT_MTU);
        }
        if (pw_finish(&writer, &buf, &len) < 0)
                die("%s: cannot build the request", entrypoint);
        if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
                die("send (%s): %s", entrypoint, strerror(errno));
        recv_frame(fd, entrypoint);
        if (rx.type != PROTO_REPLY || rx.id != id || !streq(rx.name, entrypoint))
                die("%s: expected reply %u, got %s %u '%s'", entrypoint, id, proto_type_name(rx.type), rx.id,
                    rx.name);
        return rx.status;
}

/* tap_get and the MTU out of the reply's tap object; anything but 1500 aborts. */
static void tap_get_mtu(int fd)
{
        const struct proto_value *tap;
        int st = call(fd, "tap_get", false);

        if (st != 0)
                die("tap_get failed: %s (%s)", strerror(-st), proto_get_str(rx.body, "error", "?"));
        tap = proto_get(rx.body, "tap");
        if (!tap || tap->type != PV_OBJ)
                die("tap_get: reply without a tap object");
        if (proto_get_u64(tap, "mtu", 0) != PORT_MTU)
                die("tap_get: mtu is %llu, expected %d",
                    (unsigned long long)proto_get_u64(tap, "mtu", 0), PORT_MTU);
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
        const char *bin = getenv("NOVA_BIN");
        double per[BATCHES], sorted[BATCHES];
        long n = 20000;
        int fd, st, status;

        if (argc > 1) {
                char *end;
                n = strtol(argv[1], &end, 10);
                if (*end || n <= 0 || n > 100000000)
                        die("usage: %s [N]", argv[0]);
        }
        if (!bin || !*bin)
                bin = "build/bin";

        module_pid = start_module(bin, &fd);
        check_hello(fd, module_pid);

        st = call(fd, "tap_create", true);
        if (st != 0)
                die("tap_create failed: %s (%s)", strerror(-st), proto_get_str(rx.body, "error", "?"));

        for (long i = 0; i < (n < 1000 ? n : 1000); i++) /* warm-up */
                tap_get_mtu(fd);
        for (int b = 0; b < BATCHES; b++) {
                double t = now_s();
                for (long i = 0; i < n; i++)
                        tap_get_mtu(fd);
                per[b] = (now_s() - t) / (double)n * 1e6;
        }
        memcpy(sorted, per, sizeof(per));
        qsort(sorted, BATCHES, sizeof(double), cmp_double);
        printf("ours tap_get calls=%ld per_call_us_median=%.2f min=%.2f max=%.2f\n", n, sorted[BATCHES / 2],
               sorted[0], sorted[BATCHES - 1]);
        fflush(stdout);

        st = call(fd, "tap_delete", false);
        if (st != 0)
                die("tap_delete failed: %s (%s)", strerror(-st), proto_get_str(rx.body, "error", "?"));
        close(fd); /* the module sees EOF and exits */
        while (waitpid(module_pid, &status, 0) < 0)
                if (errno != EINTR)
                        die("waitpid: %s", strerror(errno));
        module_pid = -1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("module ended with status 0x%x", status);
        return 0;
}
