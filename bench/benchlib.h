/* benchlib.h - what every bench client shares: start a module program on a
 * SOCK_SEQPACKET socketpair the way the core does (`--fd 3`), receive and
 * decode its frames, check its hello, die with the module stopped, a
 * monotonic clock. Bench code only. */
#ifndef NOVA_BENCHLIB_H
#define NOVA_BENCHLIB_H

#include "proto.h"

/* Prefix of die()'s messages (the client's name); set it first thing in main. */
extern const char *bench_name;
/* The module started by bench_module_start(), -1 when none: die() stops it. */
extern pid_t bench_module_pid;

/* Print "<bench_name>: <message>", SIGTERM and reap the module, exit 1. */
_printf_(1, 2) _noreturn_ void die(const char *fmt, ...);
/* CLOCK_MONOTONIC in seconds. */
double now_s(void);

/* Start <bin_dir>/<program> --fd 3 [--config config] with stderr appended to
 * log (NULL: inherited). Dies when it cannot. Returns the pid (also in
 * bench_module_pid) and our end of the socketpair in *ret_fd. */
pid_t bench_module_start(const char *bin_dir, const char *program, const char *config, const char *log,
                         int *ret_fd);
/* Receive and decode one frame into *rx, waiting at most timeout_ms (< 0: no
 * limit). Dies on error, timeout, EOF or a bad frame; what names the wait. */
void bench_recv_frame(int fd, int timeout_ms, struct proto_msg *rx, const char *what);
/* Receive the hello and check plug name, protocol version and pid; each
 * entrypoint in need (NULL-terminated, may be NULL) must be offered. */
void bench_check_hello(int fd, int timeout_ms, struct proto_msg *rx, const char *plug, pid_t pid,
                       const char *const *need);

#endif
