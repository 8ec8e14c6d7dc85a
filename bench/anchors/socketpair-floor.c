/* socketpair-floor.c - the physical floor of one privileged call: what any
 * privilege-separated design pays at least. Two processes joined by an
 * AF_UNIX SOCK_SEQPACKET socketpair; the caller sends the device name "lo",
 * the callee opens /sys/class/net/lo/mtu, reads it, closes it and sends the
 * bytes back (the same work as the oslo.privsep anchor's entrypoint, without
 * any framing, decoding or policy). Two passes of N calls; the first warms
 * caches and the scheduler, the second is reported.
 *
 *   socketpair-floor [N]         (default 20000; any user)
 *
 * Prints: socketpair+sysfs calls=N per_call_us=X   (X: wall clock of pass 2 / N)
 * Exit status 0, or 1 with a message on stderr when anything fails. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CALLS 20000UL
#define MAX_CALLS 100000000UL
#define PASSES 2
#define DEVICE "lo"
#define MTU_PATH "/sys/class/net/" DEVICE "/mtu"

static double monotonic_seconds(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The callee: answer each request with the MTU file's bytes until the caller
 * closes its end. Never returns. */
static void __attribute__((noreturn)) serve(int fd)
{
        char request[64], reply[64];

        for (;;) {
                ssize_t got = recv(fd, request, sizeof(request), 0);
                if (got <= 0)
                        _exit(got == 0 ? 0 : 1);
                int mtu_fd = open(MTU_PATH, O_RDONLY | O_CLOEXEC);
                if (mtu_fd < 0)
                        _exit(1);
                ssize_t len = read(mtu_fd, reply, sizeof(reply));
                close(mtu_fd);
                if (len < 0)
                        _exit(1);
                if (send(fd, reply, (size_t)len, 0) != len)
                        _exit(1);
        }
}

/* One round trip from the caller's side; 0 or -errno. */
static int call(int fd)
{
        char reply[64];

        if (send(fd, DEVICE, strlen(DEVICE), 0) < 0)
                return -errno;
        ssize_t got = recv(fd, reply, sizeof(reply), 0);
        if (got < 0)
                return -errno;
        if (got == 0)
                return -EPIPE;
        return 0;
}

static int parse_calls(const char *text, unsigned long *ret_calls)
{
        char *end;
        unsigned long value;

        if (text[0] < '0' || text[0] > '9')
                return -EINVAL;
        errno = 0;
        value = strtoul(text, &end, 10);
        if (errno != 0 || *end != '\0' || value == 0 || value > MAX_CALLS)
                return -EINVAL;
        *ret_calls = value;
        return 0;
}

int main(int argc, char **argv)
{
        unsigned long calls = DEFAULT_CALLS;
        int pair[2], status, r = 0;
        double pass_seconds = 0;
        pid_t child;

        if (argc > 2 || (argc == 2 && parse_calls(argv[1], &calls) < 0)) {
                fprintf(stderr, "usage: %s [CALLS]   (1..%lu, default %lu)\n", argv[0], MAX_CALLS,
                        DEFAULT_CALLS);
                return 1;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
                fprintf(stderr, "socketpair-floor: socketpair: %s\n", strerror(errno));
                return 1;
        }
        child = fork();
        if (child < 0) {
                fprintf(stderr, "socketpair-floor: fork: %s\n", strerror(errno));
                return 1;
        }
        if (child == 0) {
                close(pair[0]);
                serve(pair[1]);
        }
        close(pair[1]);

        for (int pass = 0; pass < PASSES && r == 0; pass++) {
                double start = monotonic_seconds();
                for (unsigned long i = 0; i < calls && r == 0; i++)
                        r = call(pair[0]);
                pass_seconds = monotonic_seconds() - start;
        }
        close(pair[0]);   /* the callee sees EOF and exits */
        if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "socketpair-floor: the callee failed (cannot read %s?)\n", MTU_PATH);
                return 1;
        }
        if (r < 0) {
                fprintf(stderr, "socketpair-floor: round trip: %s\n", strerror(-r));
                return 1;
        }
        printf("socketpair+sysfs calls=%lu per_call_us=%.2f\n", calls, pass_seconds / (double)calls * 1e6);
        return 0;
}
