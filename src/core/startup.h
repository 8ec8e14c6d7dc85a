/* startup.h - where the core's start-up time goes: the moment main() began and
 * the end of each phase of core_setup/core_start, on the monotonic clock.
 * GET /v1/status shows them (core.startup) with each module's spawn and hello
 * (modules_startup_times), and bench/footprint prints the breakdown. */
#ifndef NOVA_STARTUP_H
#define NOVA_STARTUP_H

#include "util.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define STARTUP_MAX_PHASES 12

struct startup_phase {
        const char *name;       /* static text, e.g. "configuration" */
        uint64_t end_usec;      /* monotonic, when the phase ended */
};

struct core_startup {
        uint64_t main_usec;             /* monotonic, when main() began */
        uint64_t main_realtime_usec;    /* the same moment, wall clock (usec since the epoch) */
        struct startup_phase phases[STARTUP_MAX_PHASES];
        size_t n_phases;
};

/* Note when main() began (call it first thing). */
static inline void startup_begin(struct core_startup *s)
{
        struct timespec ts;

        s->main_usec = now_usec();
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        s->main_realtime_usec = (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
        s->n_phases = 0;
}

/* The phase called name (a string literal) ends now; beyond STARTUP_MAX_PHASES, ignored. */
static inline void startup_mark(struct core_startup *s, const char *name)
{
        if (s->n_phases < STARTUP_MAX_PHASES)
                s->phases[s->n_phases++] = (struct startup_phase){ .name = name, .end_usec = now_usec() };
}

#endif
