/* spawner.h - the only privileged part of nova-compute outside a snap.
 *
 * nova-compute forks this small process before the core drops every
 * capability (OpenSSH's monitor pattern). It keeps only the union of the
 * module capabilities (+ CAP_SETPCAP to narrow each child's bounding set),
 * sets no_new_privs, and does exactly three things for the core: start the
 * module of a plug (by plug id: it derives the program path itself), stop
 * it, and report its exit. It hands the core its end of the module's
 * socketpair. A compromised core can therefore only start known modules. */
#ifndef NOVA_SPAWNER_H
#define NOVA_SPAWNER_H

#include "plugs.h"

#include <limits.h>
#include <sys/types.h>

enum spawner_op {
        SPAWNER_START = 1, /* start the module of `plug` */
        SPAWNER_STOP = 2,  /* SIGTERM it, SIGKILL after the stop timeout */
};

struct spawner_request {
        uint32_t op;   /* enum spawner_op */
        uint32_t plug; /* enum plug_id */
};

enum spawner_event {
        SPAWNER_STARTED = 1, /* pid set; the core's socket end is attached (SCM_RIGHTS) */
        SPAWNER_FAILED = 2,  /* status = -errno; nothing runs */
        SPAWNER_EXITED = 3,  /* status = wait status of pid */
};

struct spawner_msg {
        uint32_t event;  /* enum spawner_event */
        uint32_t plug;   /* enum plug_id */
        int32_t pid;     /* module pid (STARTED, EXITED) */
        int32_t status;  /* see enum spawner_event */
        uint64_t usec;   /* CLOCK_MONOTONIC (system-wide) when it happened, for the start-up
                          * figures (the core reads it later); 0: unknown */
};

struct spawner_config {
        char module_dir[PATH_MAX]; /* directory of the nova-<plug> programs */
        char config_path[PATH_MAX]; /* passed to modules as --config; "" for none */
        uint32_t stop_timeout_ms;  /* SIGTERM -> SIGKILL */
};

/* Body of the forked spawner process; ctl_fd is its end of the socketpair
 * with the core. Exits when the core goes away (after stopping every module). */
_noreturn_ void spawner_main(int ctl_fd, const struct spawner_config *cfg);

/* Core side: receive one spawner message, with an attached fd for STARTED
 * (*ret_fd, else -1). 0, -EAGAIN, -ECONNRESET, or -EBADMSG. */
int spawner_recv(int ctl_fd, struct spawner_msg *ret, int *ret_fd);

#endif
