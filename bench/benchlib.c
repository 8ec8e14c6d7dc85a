/* benchlib.c - see benchlib.h */
#include "benchlib.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

const char *bench_name = "bench";
pid_t bench_module_pid = -1;
static uint8_t rxbuf[PROTO_MAX_FRAME + 1];

void die(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "%s: ", bench_name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        if (bench_module_pid > 0) {
                (void)kill(bench_module_pid, SIGTERM);
                (void)waitpid(bench_module_pid, NULL, 0);
        }
        exit(1);
}

double now_s(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

pid_t bench_module_start(const char *bin_dir, const char *program, const char *config, const char *log,
                         int *ret_fd)
{
        char path[4096];
        int sv[2];
        pid_t pid;

        if (snprintf(path, sizeof(path), "%s/%s", bin_dir, program) >= (int)sizeof(path))
                die("NOVA_BIN too long");
        if (access(path, X_OK) < 0)
                die("%s: %s (run make first, or set NOVA_BIN)", path, strerror(errno));
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                die("socketpair: %s", strerror(errno));
        pid = fork();
        if (pid < 0)
                die("fork: %s", strerror(errno));
        if (pid == 0) {
                if (log && *log) {
                        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
                                _exit(126);
                }
                if (sv[1] == 3) {
                        if (fcntl(3, F_SETFD, 0) < 0) /* dup2 onto itself would keep CLOEXEC */
                                _exit(126);
                } else if (dup2(sv[1], 3) < 0) /* the copy on 3 is not close-on-exec */
                        _exit(126);
                if (config)
                        execl(path, program, "--fd", "3", "--config", config, (char *)NULL);
                else
                        execl(path, program, "--fd", "3", (char *)NULL);
                _exit(127);
        }
        close(sv[1]);
        bench_module_pid = pid;
        *ret_fd = sv[0];
        return pid;
}

void bench_recv_frame(int fd, int timeout_ms, struct proto_msg *rx, const char *what)
{
        char why[256];
        ssize_t n;

        if (timeout_ms >= 0) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int r;
                do
                        r = poll(&p, 1, timeout_ms);
                while (r < 0 && errno == EINTR);
                if (r < 0)
                        die("poll (%s): %s", what, strerror(errno));
                if (r == 0)
                        die("no frame from the module within %d ms (waiting for %s)", timeout_ms, what);
        }
        do
                n = recv(fd, rxbuf, sizeof(rxbuf), MSG_TRUNC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                die("recv (%s): %s", what, strerror(errno));
        if (n == 0)
                die("module closed the connection (waiting for %s)", what);
        if (n > PROTO_MAX_FRAME)
                die("%s: frame of %zd bytes", what, n);
        if (proto_decode(rxbuf, (size_t)n, rx, why, sizeof(why)) < 0)
                die("%s: cannot decode: %s", what, why);
}

void bench_check_hello(int fd, int timeout_ms, struct proto_msg *rx, const char *plug, pid_t pid,
                       const char *const *need)
{
        const struct proto_value *eps;

        bench_recv_frame(fd, timeout_ms, rx, "hello");
        if (rx->type != PROTO_HELLO || !streq(rx->name, plug))
                die("expected a hello from %s, got %s '%s'", plug, proto_type_name(rx->type), rx->name);
        if (proto_get_u64(rx->body, "version", 0) != PROTO_VERSION)
                die("hello: protocol version mismatch");
        if (proto_get_u64(rx->body, "pid", 0) != (uint64_t)pid)
                die("hello: names another pid");
        eps = proto_get(rx->body, "entrypoints");
        if (!eps || eps->type != PV_LIST)
                die("hello: no entrypoint list");
        for (size_t i = 0; need && need[i]; i++) {
                bool found = false;
                for (const struct proto_value *e = eps->child; e && !found; e = e->next)
                        found = e->type == PV_STR && streq(e->v.s, need[i]);
                if (!found)
                        die("hello: module does not offer %s", need[i]);
        }
}
