/* test-lanes.c - the worker lanes (src/lib/lanes.c): jobs of different keys really run at the
 * same time (each waits until K of them run together, which cannot happen one at a time), jobs
 * of one key never overlap and run and come back in the order they were submitted, the done
 * descriptor is readable exactly while finished jobs wait, lanes_wait_idle() returns only once
 * everything submitted has finished, and lanes_free() finishes what is queued and hands back
 * what was not taken. */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lanes.h"
#include "util.h"

struct tjob {
        struct lane_job lj;                 /* first: the lanes hand this back */
        unsigned seq;                       /* submission order within its key */
        unsigned key_index;
        bool together;                      /* it saw `want_together` jobs running at once */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned now_running, want_together, wait_ms = 5000;
static unsigned active_per_key[8], overlap_seen;
static unsigned last_seq_run[8];
static bool order_broken;

static void reset(void)
{
        now_running = want_together = overlap_seen = 0;
        wait_ms = 5000;
        order_broken = false;
        memset(active_per_key, 0, sizeof(active_per_key));
        memset(last_seq_run, 0, sizeof(last_seq_run));
}

/* Wait (at most wait_ms) until want_together jobs run at once. */
static void run_together(struct lane_job *lj)
{
        struct tjob *j = (struct tjob *)lj;
        struct timespec deadline;

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        deadline.tv_sec += wait_ms / 1000 + deadline.tv_nsec / 1000000000L;
        deadline.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&mu);
        now_running++;
        pthread_cond_broadcast(&cv);
        while (now_running < want_together && pthread_cond_timedwait(&cv, &mu, &deadline) == 0)
                ;
        j->together = now_running >= want_together;
        pthread_mutex_unlock(&mu);
}

/* Record overlap and order within the key; a short sleep lets other jobs interleave. */
static void run_ordered(struct lane_job *lj)
{
        struct tjob *j = (struct tjob *)lj;

        pthread_mutex_lock(&mu);
        if (++active_per_key[j->key_index] > 1)
                overlap_seen++;
        if (j->seq != last_seq_run[j->key_index] + 1)
                order_broken = true;
        last_seq_run[j->key_index] = j->seq;
        pthread_mutex_unlock(&mu);
        usleep(200 + (unsigned)(rand() % 800));
        pthread_mutex_lock(&mu);
        active_per_key[j->key_index]--;
        pthread_mutex_unlock(&mu);
}

static struct tjob *new_job(void (*run)(struct lane_job *), unsigned key_index, unsigned seq)
{
        struct tjob *j = calloc(1, sizeof(*j));

        ck_assert_ptr_nonnull(j);
        (void)snprintf(j->lj.key, sizeof(j->lj.key), "0123abcd-ef01-4234-8678-9abcdef0000%u", key_index);
        j->lj.run = run;
        j->key_index = key_index;
        j->seq = seq;
        return j;
}

static bool readable(int fd)
{
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

START_TEST(test_different_keys_run_together)
{
        struct lanes *l;
        struct lane_job *d;
        unsigned n = 0, together = 0;

        reset();
        want_together = 4;
        ck_assert_int_eq(lanes_new(4, 256 * 1024, &l), 0);
        ck_assert(!readable(lanes_done_fd(l)));
        for (unsigned i = 0; i < 4; i++)
                ck_assert_int_eq(lanes_submit(l, &new_job(run_together, i, 1)->lj), 0);
        lanes_wait_idle(l);
        ck_assert_uint_eq(lanes_busy(l), 0);
        ck_assert(readable(lanes_done_fd(l)));
        while ((d = lanes_take_done(l))) {
                together += ((struct tjob *)d)->together;
                n++;
                free(d);
        }
        ck_assert_uint_eq(n, 4);
        ck_assert_uint_eq(together, 4); /* each saw all four running: concurrency is real */
        ck_assert_uint_eq(lanes_peak_running(l), 4);
        ck_assert(!readable(lanes_done_fd(l)));
        lanes_free(l, NULL);
}
END_TEST

/* Jobs of one key wait for each other even with idle workers: the first of two jobs of one key
 * waits for a second job running beside it, which never comes (it times out alone). */
START_TEST(test_same_key_never_together)
{
        struct lanes *l;
        struct lane_job *d;
        unsigned n = 0;

        reset();
        want_together = 2;
        wait_ms = 300;
        ck_assert_int_eq(lanes_new(4, 0, &l), 0);
        for (unsigned i = 0; i < 2; i++)
                ck_assert_int_eq(lanes_submit(l, &new_job(run_together, 0, i + 1)->lj), 0);
        lanes_wait_idle(l);
        while ((d = lanes_take_done(l))) {
                struct tjob *j = (struct tjob *)d;
                if (j->seq == 1)
                        ck_assert(!j->together);
                ck_assert_uint_eq(j->seq, ++n); /* handed back in order */
                free(d);
        }
        ck_assert_uint_eq(n, 2);
        ck_assert_uint_eq(lanes_peak_running(l), 1);
        lanes_free(l, NULL);
}
END_TEST

START_TEST(test_per_key_order)
{
        struct lanes *l;
        struct lane_job *d;
        unsigned seq[3] = { 0 }, back[3] = { 0 }, n = 0;

        reset();
        srand(7);
        ck_assert_int_eq(lanes_new(4, 0, &l), 0);
        for (unsigned i = 0; i < 120; i++) {
                unsigned k = (unsigned)(rand() % 3);
                ck_assert_int_eq(lanes_submit(l, &new_job(run_ordered, k, ++seq[k])->lj), 0);
                /* take some back while others run */
                if (i % 10 == 9)
                        while ((d = lanes_take_done(l))) {
                                struct tjob *j = (struct tjob *)d;
                                ck_assert_uint_eq(j->seq, ++back[j->key_index]);
                                n++;
                                free(d);
                        }
        }
        lanes_wait_idle(l);
        while ((d = lanes_take_done(l))) {
                struct tjob *j = (struct tjob *)d;
                ck_assert_uint_eq(j->seq, ++back[j->key_index]);
                n++;
                free(d);
        }
        ck_assert_uint_eq(n, 120);
        ck_assert_uint_eq(overlap_seen, 0);
        ck_assert(!order_broken);
        ck_assert_uint_ge(lanes_peak_running(l), 2); /* the three keys did overlap */
        ck_assert_uint_le(lanes_peak_running(l), 3);
        lanes_free(l, NULL);
}
END_TEST

/* A burst after a quiet spell: one worker is idle and four jobs of different keys come at once.
 * The idle worker takes one of them; the other three need threads of their own, though the
 * worker, signalled but not yet awake, still counts as idle while they are submitted. */
START_TEST(test_burst_after_idle_grows)
{
        const struct timespec settle = { 0, 50 * 1000 * 1000 };
        struct lanes *l;
        struct lane_job *d;
        unsigned n = 0, together = 0;

        reset();
        ck_assert_int_eq(lanes_new(4, 0, &l), 0);
        ck_assert_int_eq(lanes_submit(l, &new_job(run_ordered, 0, 1)->lj), 0);
        lanes_wait_idle(l);
        free(lanes_take_done(l));
        (void)nanosleep(&settle, NULL); /* the one worker is back waiting for work */
        want_together = 4;
        wait_ms = 2000;
        for (unsigned i = 0; i < 4; i++)
                ck_assert_int_eq(lanes_submit(l, &new_job(run_together, i, 1)->lj), 0);
        lanes_wait_idle(l);
        while ((d = lanes_take_done(l))) {
                together += ((struct tjob *)d)->together;
                n++;
                free(d);
        }
        ck_assert_uint_eq(n, 4);
        ck_assert_uint_eq(together, 4);
        ck_assert_uint_eq(lanes_peak_running(l), 4);
        lanes_free(l, NULL);
}
END_TEST

static unsigned released;
static void release(struct lane_job *j)
{
        released++;
        free(j);
}

START_TEST(test_free_finishes_and_releases)
{
        struct lanes *l;

        reset();
        released = 0;
        ck_assert_int_eq(lanes_new(2, 0, &l), 0);
        for (unsigned i = 0; i < 10; i++)
                ck_assert_int_eq(lanes_submit(l, &new_job(run_ordered, i % 2, i / 2 + 1)->lj), 0);
        lanes_free(l, release); /* the queued ones run first */
        ck_assert_uint_eq(released, 10);
        ck_assert(!order_broken);
        ck_assert_int_eq(lanes_new(0, 0, &l), -EINVAL);
        ck_assert_int_eq(lanes_new(LANES_MAX_WORKERS + 1, 0, &l), -EINVAL);
        lanes_free(NULL, NULL);
}
END_TEST

static Suite *lanes_suite(void)
{
        Suite *s = suite_create("lanes");
        TCase *tc = tcase_create("lanes");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_different_keys_run_together);
        tcase_add_test(tc, test_same_key_never_together);
        tcase_add_test(tc, test_per_key_order);
        tcase_add_test(tc, test_free_finishes_and_releases);
        tcase_add_test(tc, test_burst_after_idle_grows);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(lanes_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
