/* util.c - see util.h */
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        if (s[0] == '0' && s[1] != '\0')
                return -EINVAL; /* no octal look-alikes, no leading zeros */
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                unsigned d = (unsigned)(*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *ret)
{
        uint64_t v;
        int r = parse_u64(s, min, max, &v);

        if (r < 0)
                return r;
        *ret = (uint32_t)v;
        return 0;
}

int strscpy(char *dst, const char *src, size_t size)
{
        size_t n;

        if (size == 0)
                return -ENAMETOOLONG;
        n = strnlen(src, size);
        if (n >= size) {
                dst[0] = '\0';
                return -ENAMETOOLONG;
        }
        memcpy(dst, src, n + 1);
        return 0;
}

int xsnprintf(char *buf, size_t size, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        if ((size_t)n >= size)
                return -ENAMETOOLONG;
        return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t k = write(fd, p, len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                len -= (size_t)k;
        }
        return 0;
}

int (*write_file_atomic_fault)(const char *path, int stage);

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
        char tmp[PATH_MAX], dir[PATH_MAX];
        _cleanup_close_ int fd = -1, dfd = -1;
        char *slash;
        int r;

        r = xsnprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
        if (r < 0)
                return r;
        r = strscpy(dir, path, sizeof(dir));
        if (r < 0)
                return r;
        slash = strrchr(dir, '/');
        if (slash == dir)
                dir[1] = '\0';
        else if (slash)
                *slash = '\0';
        else
                (void)strscpy(dir, ".", sizeof(dir));

        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        r = write_file_atomic_fault ? write_file_atomic_fault(path, WRITE_STAGE_WRITE) : 0;
        if (r == 0)
                r = write_all(fd, data, len);
        if (r == 0 && write_file_atomic_fault)
                r = write_file_atomic_fault(path, WRITE_STAGE_FSYNC);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0) /* closed on failure too: a failed write must not leak its fd */
                r = -errno;
        fd = -1;
        if (r == 0 && write_file_atomic_fault)
                r = write_file_atomic_fault(path, WRITE_STAGE_RENAME);
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlink(tmp);
                return r;
        }
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void)fsync(dfd);
        return 0;
}

int read_file_bounded(const char *path, size_t max, char **ret_buf, size_t *ret_len)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;

        if (fd < 0)
                return -errno;
        buf = malloc(max + 2);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + len, max + 1 - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = '\0';
        *ret_buf = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
        char buf[PATH_MAX];
        int r = strscpy(buf, path, sizeof(buf));

        if (r < 0)
                return r;
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

/* A hex mask from s up to end (or the first newline): 1..16 lowercase digits
 * after optional blanks. */
static int parse_hex_mask(const char *s, const char *end, uint64_t *ret)
{
        uint64_t v = 0;
        int n = 0;

        while (s < end && (*s == '\t' || *s == ' '))
                s++;
        for (; s < end && *s != '\n'; s++, n++) {
                int d;
                if (*s >= '0' && *s <= '9')
                        d = *s - '0';
                else if (*s >= 'a' && *s <= 'f')
                        d = *s - 'a' + 10;
                else
                        return -EINVAL;
                if (n >= 16)
                        return -ERANGE;
                v = v << 4 | (uint64_t)d;
        }
        if (n == 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

int proc_security_parse(const char *text, size_t len, struct proc_security *ret)
{
        static const struct {
                const char *key;
                size_t off;
        } fields[] = {
                { "CapInh:", offsetof(struct proc_security, cap_inh) },
                { "CapPrm:", offsetof(struct proc_security, cap_prm) },
                { "CapEff:", offsetof(struct proc_security, cap_eff) },
                { "CapBnd:", offsetof(struct proc_security, cap_bnd) },
                { "CapAmb:", offsetof(struct proc_security, cap_amb) },
        };
        const char *end = text + len, *line, *eol;
        struct proc_security sec = { 0 };
        unsigned seen = 0;
        int r;

        if (memchr(text, '\0', len))
                return -EBADMSG;
        for (line = text; line < end; line = eol + 1) {
                eol = memchr(line, '\n', (size_t)(end - line));
                if (!eol)
                        eol = end;
                for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
                        size_t klen = strlen(fields[i].key);
                        if ((size_t)(eol - line) >= klen && memcmp(line, fields[i].key, klen) == 0) {
                                if (seen & (1U << i))
                                        return -EBADMSG; /* twice: which one is true? */
                                r = parse_hex_mask(line + klen, eol, (uint64_t *)((char *)&sec + fields[i].off));
                                if (r < 0)
                                        return r;
                                seen |= 1U << i;
                        }
                }
                if ((size_t)(eol - line) >= 11 && memcmp(line, "NoNewPrivs:", 11) == 0) {
                        const char *v = line + 11;
                        while (v < eol && (*v == '\t' || *v == ' '))
                                v++;
                        sec.no_new_privs = v < eol && *v == '1';
                }
        }
        if (seen != (1U << ARRAY_SIZE(fields)) - 1)
                return -EBADMSG;
        *ret = sec;
        return 0;
}

int proc_security_read(pid_t pid, struct proc_security *ret)
{
        _cleanup_free_ char *buf = NULL;
        char path[64];
        size_t len = 0;
        int r;

        if (pid == 0)
                r = xsnprintf(path, sizeof(path), "/proc/self/status");
        else
                r = xsnprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
        if (r < 0)
                return r;
        r = read_file_bounded(path, 64 * 1024, &buf, &len);
        if (r < 0)
                return r;
        r = proc_security_parse(buf, len, ret);
        return r == -EBADMSG ? -EIO : r;
}
