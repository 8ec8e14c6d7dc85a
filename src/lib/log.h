/* log.h - one line per event on stderr (the journal under systemd/snapd),
 * prefixed with the process identity ("core", "network-control", ...).
 * Library code returns errors; the caller that decides logs once. */
#ifndef NOVA_LOG_H
#define NOVA_LOG_H

#include "util.h"

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERR };

/* Set the prefix (copied) and the lowest level printed. */
void log_init(const char *ident, enum log_level min_level);
/* Lower the threshold, e.g. from --verbose. */
void log_set_level(enum log_level min_level);

void log_msg(enum log_level lvl, const char *fmt, ...) _printf_(2, 3);
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)

/* One audit line for a privileged call: "audit: <fmt>". Never rate-limited. */
void log_audit(const char *fmt, ...) _printf_(1, 2);

/* Rate-limited warning: at most `burst` lines per `interval_usec` for the
 * given limiter; the number suppressed is reported on the next line. */
struct log_ratelimit {
        uint64_t interval_usec;
        unsigned burst;
        uint64_t begin;
        unsigned printed;
        unsigned suppressed;
};
#define LOG_RATELIMIT_INIT(interval, b) { .interval_usec = (interval), .burst = (b) }
void log_ratelimited(struct log_ratelimit *rl, enum log_level lvl, const char *fmt, ...) _printf_(3, 4);

#endif
