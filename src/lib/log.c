/* log.c - see log.h. Each line is built in one buffer and written with one
 * write(2), so lines from several processes sharing stderr never interleave. */
#include "log.h"

#include <stdarg.h>

static char log_ident[48] = "nova";
static enum log_level log_min = LOG_LVL_INFO;

static const char *const level_names[] = {
        [LOG_LVL_DEBUG] = "debug", [LOG_LVL_INFO] = "info",
        [LOG_LVL_WARN] = "warning", [LOG_LVL_ERR] = "error",
};

void log_init(const char *ident, enum log_level min_level)
{
        if (strscpy(log_ident, ident, sizeof(log_ident)) < 0)
                (void)strscpy(log_ident, "nova", sizeof(log_ident));
        log_min = min_level;
}

void log_set_level(enum log_level min_level) { log_min = min_level; }

static void log_vline(const char *tag, const char *fmt, va_list ap)
{
        char buf[1024];
        int n, m;

        n = snprintf(buf, sizeof(buf), "%s: %s: ", log_ident, tag);
        if (n < 0 || (size_t)n >= sizeof(buf))
                return;
        m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
        if (m < 0)
                return;
        n += m;
        if ((size_t)n >= sizeof(buf) - 1)
                n = (int)sizeof(buf) - 2; /* truncated line, still one line */
        /* Never let a message break the one-line-per-event rule. */
        for (int i = 0; i < n; i++)
                if (buf[i] == '\n' || buf[i] == '\r')
                        buf[i] = ' ';
        buf[n++] = '\n';
        (void)write_all(STDERR_FILENO, buf, (size_t)n);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
        va_list ap;

        if (lvl < log_min)
                return;
        va_start(ap, fmt);
        log_vline(level_names[lvl], fmt, ap);
        va_end(ap);
}

void log_audit(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_vline("audit", fmt, ap);
        va_end(ap);
}

void log_ratelimited(struct log_ratelimit *rl, enum log_level lvl, const char *fmt, ...)
{
        uint64_t now = now_usec();
        va_list ap;

        if (lvl < log_min)
                return;
        if (rl->begin == 0 || now - rl->begin > rl->interval_usec) {
                if (rl->suppressed > 0)
                        log_msg(lvl, "(%u similar messages suppressed)", rl->suppressed);
                rl->begin = now;
                rl->printed = 0;
                rl->suppressed = 0;
        }
        if (rl->printed >= rl->burst) {
                rl->suppressed++;
                return;
        }
        rl->printed++;
        va_start(ap, fmt);
        log_vline(level_names[lvl], fmt, ap);
        va_end(ap);
}
