/* lanes.h - a small pool of worker threads that serves jobs concurrently, except that jobs
 * with the same key (e.g. an instance UUID) run one at a time, in the order they were
 * submitted: one lane per key. The thread that submits gets the finished jobs back, in the
 * order they finished, through a descriptor its event loop watches (an eventfd), so
 * everything that is not thread-safe (answering the core, the module's lists) stays on
 * that thread. A job that finished before another job of its key started is handed back
 * before that one: per key, jobs come back in submission order too. */
#ifndef NOVA_LANES_H
#define NOVA_LANES_H

#include <stddef.h>

#define LANES_MAX_WORKERS 16
#define LANES_KEY_MAX 64

/* One job; embed it in the caller's own struct. Owned by the lanes from lanes_submit() until
 * lanes_take_done() hands it back. */
struct lane_job {
        char key[LANES_KEY_MAX];             /* jobs with the same key never run at once (NUL-terminated) */
        void (*run)(struct lane_job *job);   /* the work, on a worker thread */
        struct lane_job *next;               /* the lanes' own queue link */
};

struct lanes;

/* Up to max_workers threads (1..LANES_MAX_WORKERS), each with a stack of stack_size bytes
 * (0: the default), started when a job finds no idle thread left for it (the jobs queued
 * before it claim the idle ones first). 0 and *ret, or -errno. */
int lanes_new(unsigned max_workers, size_t stack_size, struct lanes **ret);
/* Queue job (key and run set). 0, or -errno when no thread could ever run it (none running
 * and none can be started): the job is then not queued and stays the caller's. */
int lanes_submit(struct lanes *l, struct lane_job *job);
/* Readable while finished jobs wait to be taken (close-on-exec, non-blocking). */
int lanes_done_fd(const struct lanes *l);
/* The next finished job, in the order they finished; NULL when none. Reading the descriptor
 * is done here: call it until NULL whenever the descriptor is readable. */
struct lane_job *lanes_take_done(struct lanes *l);
/* Block until every job submitted so far has finished (they are then ready to be taken). */
void lanes_wait_idle(struct lanes *l);
/* Jobs submitted and not yet finished. */
size_t lanes_busy(struct lanes *l);
/* The largest number of jobs that ran at the same moment so far (for tests and benches). */
unsigned lanes_peak_running(struct lanes *l);
/* Let every submitted job finish, stop the threads, and free the lanes; finished jobs not
 * taken yet are handed to release (may be NULL: then they are dropped, not freed). NULL is fine. */
void lanes_free(struct lanes *l, void (*release)(struct lane_job *job));

#endif
