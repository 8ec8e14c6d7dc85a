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
 * the same statistic as bench/anchors/oslo-privsep-rtt.py). */
#include "benchlib.h"

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
static uint32_t next_id;

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
        bench_recv_frame(fd, -1, &rx, entrypoint);
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

        bench_name = "privsep-rtt-client";
        if (argc > 1) {
                char *end;
                n = strtol(argv[1], &end, 10);
                if (*end || n <= 0 || n > 100000000)
                        die("usage: %s [N]", argv[0]);
        }
        if (!bin || !*bin)
                bin = "build/bin";

        bench_module_start(bin, "nova-network-control", NULL, NULL, &fd);
        bench_check_hello(fd, -1, &rx, PLUG_NAME, bench_module_pid, (const char *const[]){ "tap_get", NULL });

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
        while (waitpid(bench_module_pid, &status, 0) < 0)
                if (errno != EINTR)
                        die("waitpid: %s", strerror(errno));
        bench_module_pid = -1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("module ended with status 0x%x", status);
        return 0;
}
