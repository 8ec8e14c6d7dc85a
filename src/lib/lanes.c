/* lanes.c - see lanes.h */
#include "lanes.h"

#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct lanes {
        pthread_mutex_t lock;
        pthread_cond_t work;                 /* a job was queued, or stop */
        pthread_cond_t idle;                 /* busy dropped to 0 */
        struct lane_job *pending, **pending_tail; /* submitted, not started: FIFO */
        struct lane_job *done, **done_tail;  /* finished, not taken: FIFO */
        const char *running[LANES_MAX_WORKERS]; /* key of the job each worker runs, NULL when idle */
        pthread_t threads[LANES_MAX_WORKERS];
        unsigned max_workers, n_threads, n_idle, n_running, peak_running;
        size_t busy;                         /* pending + running */
        size_t stack_size;
        int done_fd;                         /* eventfd: finished jobs wait */
        bool stop;
};

/* Make the done descriptor readable (an eventfd write only fails when its counter would overflow,
 * and it is then readable anyway). */
static void done_notify(struct lanes *l)
{
        uint64_t one = 1;
        ssize_t n = write(l->done_fd, &one, sizeof(one));

        (void)n;
}

struct worker_arg {
        struct lanes *l;
        unsigned slot;
};

/* The first pending job whose key no worker runs, unlinked; NULL when none. A later job of a key
 * never passes an earlier one: the earlier one is met first, and when it is not taken its key is
 * running, which holds the later one back too. Lock held. */
static struct lane_job *take_runnable(struct lanes *l)
{
        for (struct lane_job **p = &l->pending; *p; p = &(*p)->next) {
                struct lane_job *j = *p;
                bool blocked = false;

                for (unsigned i = 0; i < l->n_threads && !blocked; i++)
                        blocked = l->running[i] && streq(l->running[i], j->key);
                if (blocked)
                        continue;
                *p = j->next;
                if (!*p)
                        l->pending_tail = p;
                j->next = NULL;
                return j;
        }
        return NULL;
}

static void *worker(void *userdata)
{
        struct worker_arg *a = userdata;
        struct lanes *l = a->l;
        unsigned slot = a->slot;

        free(a);
        pthread_mutex_lock(&l->lock);
        for (;;) {
                struct lane_job *j = take_runnable(l);

                if (!j) {
                        if (l->stop && l->busy == 0)
                                break;
                        l->n_idle++;
                        pthread_cond_wait(&l->work, &l->lock);
                        l->n_idle--;
                        continue;
                }
                l->running[slot] = j->key;
                if (++l->n_running > l->peak_running)
                        l->peak_running = l->n_running;
                pthread_mutex_unlock(&l->lock);
                j->run(j);
                pthread_mutex_lock(&l->lock);
                l->running[slot] = NULL;
                l->n_running--;
                *l->done_tail = j;
                l->done_tail = &j->next;
                /* the key is free again: a job waiting for it may run now */
                pthread_cond_broadcast(&l->work);
                if (--l->busy == 0)
                        pthread_cond_broadcast(&l->idle);
                done_notify(l);
        }
        pthread_mutex_unlock(&l->lock);
        return NULL;
}

int lanes_new(unsigned max_workers, size_t stack_size, struct lanes **ret)
{
        struct lanes *l;

        if (max_workers == 0 || max_workers > LANES_MAX_WORKERS)
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l->done_fd < 0) {
                int r = -errno;
                free(l);
                return r;
        }
        pthread_mutex_init(&l->lock, NULL);
        pthread_cond_init(&l->work, NULL);
        pthread_cond_init(&l->idle, NULL);
        l->pending_tail = &l->pending;
        l->done_tail = &l->done;
        l->max_workers = max_workers;
        l->stack_size = stack_size;
        *ret = l;
        return 0;
}

/* Start one more worker (lock held). Its signals are blocked: they go to the caller's thread. */
static int start_worker(struct lanes *l)
{
        struct worker_arg *a = malloc(sizeof(*a));
        sigset_t all, old;
        pthread_attr_t attr;
        int r;

        if (!a)
                return -ENOMEM;
        a->l = l;
        a->slot = l->n_threads;
        r = pthread_attr_init(&attr);
        if (r != 0) {
                free(a);
                return -r;
        }
        if (l->stack_size)
                (void)pthread_attr_setstacksize(&attr, l->stack_size);
        sigfillset(&all);
        (void)pthread_sigmask(SIG_SETMASK, &all, &old);
        r = pthread_create(&l->threads[l->n_threads], &attr, worker, a);
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        (void)pthread_attr_destroy(&attr);
        if (r != 0) {
                free(a);
                return -r;
        }
        l->n_threads++;
        return 0;
}

int lanes_submit(struct lanes *l, struct lane_job *job)
{
        int r = 0;

        job->next = NULL;
        pthread_mutex_lock(&l->lock);
        /* one more thread unless an idle one is left for this job: the jobs queued and not yet
         * taken claim the idle threads first (a signalled thread counts as idle until it wakes, so
         * in a burst n_idle alone would keep one thread for all). A blocked job of a busy key
         * counts as work for whoever frees the key; a new thread would only wait too, but cannot know */
        if (l->busy - l->n_running >= l->n_idle && l->n_threads < l->max_workers)
                r = start_worker(l);
        if (r < 0 && l->n_threads > 0)
                r = 0; /* the running ones will get to it */
        if (r == 0) {
                *l->pending_tail = job;
                l->pending_tail = &job->next;
                l->busy++;
                pthread_cond_broadcast(&l->work);
        }
        pthread_mutex_unlock(&l->lock);
        return r;
}

int lanes_done_fd(const struct lanes *l) { return l->done_fd; }

struct lane_job *lanes_take_done(struct lanes *l)
{
        struct lane_job *j;
        uint64_t count;
        ssize_t n;

        /* clear the descriptor first: a job finishing after this makes it readable again */
        n = read(l->done_fd, &count, sizeof(count));
        (void)n;
        pthread_mutex_lock(&l->lock);
        j = l->done;
        if (j) {
                l->done = j->next;
                if (!l->done)
                        l->done_tail = &l->done;
                j->next = NULL;
                if (l->done)
                        done_notify(l);
        }
        pthread_mutex_unlock(&l->lock);
        return j;
}

void lanes_wait_idle(struct lanes *l)
{
        pthread_mutex_lock(&l->lock);
        while (l->busy > 0)
                pthread_cond_wait(&l->idle, &l->lock);
        pthread_mutex_unlock(&l->lock);
}

size_t lanes_busy(struct lanes *l)
{
        size_t n;

        pthread_mutex_lock(&l->lock);
        n = l->busy;
        pthread_mutex_unlock(&l->lock);
        return n;
}

unsigned lanes_peak_running(struct lanes *l)
{
        unsigned n;

        pthread_mutex_lock(&l->lock);
        n = l->peak_running;
        pthread_mutex_unlock(&l->lock);
        return n;
}

void lanes_free(struct lanes *l, void (*release)(struct lane_job *job))
{
        struct lane_job *j;

        if (!l)
                return;
        pthread_mutex_lock(&l->lock);
        l->stop = true;
        pthread_cond_broadcast(&l->work);
        pthread_mutex_unlock(&l->lock);
        for (unsigned i = 0; i < l->n_threads; i++)
                (void)pthread_join(l->threads[i], NULL);
        while ((j = lanes_take_done(l)))
                if (release)
                        release(j);
        (void)close(l->done_fd);
        pthread_cond_destroy(&l->idle);
        pthread_cond_destroy(&l->work);
        pthread_mutex_destroy(&l->lock);
        free(l);
}
