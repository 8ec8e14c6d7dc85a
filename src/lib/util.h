/* util.h - bottom-layer helpers shared by the core, the CLI and every module.
 *
 * Conventions (see docs/CONVENTIONS.md): functions return 0 or -errno,
 * predicates return bool, output parameters are named ret_* and are left
 * untouched on failure, ownership is handed on with TAKE_PTR/TAKE_FD. */
#ifndef NOVA_UTIL_H
#define NOVA_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _nonnull_ __attribute__((nonnull))
#define _noreturn_ __attribute__((noreturn))

static inline bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }
static inline bool streq_ptr(const char *a, const char *b)
{
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

/* Destructors accept NULL / negative fds. */
static inline void freep(void *p) { free(*(void **)p); }
static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                (void)close(fd);
                errno = saved;
        }
        return -1;
}
static inline void closep(int *fd) { *fd = safe_close(*fd); }
static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}

#define _cleanup_(x) __attribute__((cleanup(x)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hand ownership on: returns the value and clears the variable. */
#define TAKE_PTR(p)                              \
        ({                                       \
                __typeof__(p) _taken_ = (p);     \
                (p) = NULL;                      \
                _taken_;                         \
        })
#define TAKE_FD(fd)                              \
        ({                                       \
                int _taken_fd_ = (fd);           \
                (fd) = -1;                       \
                _taken_fd_;                      \
        })

/* Checked number parsing: whole string, base 10, no sign for unsigned,
 * range [min, max]. Returns 0, -EINVAL (syntax) or -ERANGE. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret) _warn_unused_result_;
int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *ret) _warn_unused_result_;

/* Copy at most size-1 bytes and always NUL-terminate. Returns -ENAMETOOLONG
 * (and an empty dst) when src does not fit. */
int strscpy(char *dst, const char *src, size_t size);

/* snprintf that fails with -ENAMETOOLONG on truncation instead of cutting. */
int xsnprintf(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);

/* Write all of buf (retries on EINTR and short writes). 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);

/* Atomically replace path with data: temp file in the same directory,
 * fsync, rename, fsync of the directory. 0 or -errno; path untouched on error. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Tests only (NULL in the programs): called at each stage of write_file_atomic
 * (WRITE_STAGE_*) with the target path; a -errno it returns is that stage's
 * result. It stands in for faults a test cannot make with a real file system
 * here (EIO: this kernel has no device-mapper or fault injection); ENOSPC and
 * EROFS are tested on a real tmpfs. */
enum { WRITE_STAGE_WRITE, WRITE_STAGE_FSYNC, WRITE_STAGE_RENAME };
extern int (*write_file_atomic_fault)(const char *path, int stage);

/* Read a whole file of at most max bytes into a NUL-terminated buffer.
 * -EFBIG when larger. *ret_buf is malloc'd. */
int read_file_bounded(const char *path, size_t max, char **ret_buf, size_t *ret_len);

/* mkdir -p with mode for the last component; existing dirs are fine. */
int mkdir_p(const char *path, mode_t mode);

/* Monotonic clock in microseconds. */
uint64_t now_usec(void);

#endif

#ifndef NOVA_UTIL_PROC_H
#define NOVA_UTIL_PROC_H
/* Security state of a process as the kernel reports it in /proc/<pid>/status. */
struct proc_security {
        uint64_t cap_eff, cap_prm, cap_inh, cap_bnd, cap_amb; /* capability masks */
        bool no_new_privs;                                     /* NoNewPrivs: 1 */
};
/* pid 0 = self. 0 or -errno (-ENOENT when the process is gone). */
int proc_security_read(pid_t pid, struct proc_security *ret);
/* The same from the text of a status file (len bytes; NUL bytes are refused):
 * each Cap* line exactly once, 1..16 lowercase hex digits. 0, or -EBADMSG
 * (missing, repeated or NUL), -EINVAL/-ERANGE (a bad mask); *ret untouched then. */
int proc_security_parse(const char *text, size_t len, struct proc_security *ret);
#endif

#ifndef NOVA_UTIL_DIR_H
#define NOVA_UTIL_DIR_H
#include <dirent.h>
static inline void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}
#endif
