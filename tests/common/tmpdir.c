/* tmpdir.c - see tmpdir.h */
#include "tmpdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMPDIR_MAX 32
#define TMPDIR_DEPTH_MAX 64

void (*test_tmpdir_before_remove)(void);

static struct {
        char path[PATH_MAX];
        pid_t owner;
} registered[TMPDIR_MAX];
static bool handler_set;

/* Empty the directory open as dfd (owned: closed here), on device dev. */
static int remove_contents(int dfd, dev_t dev, int depth)
{
        DIR *d;
        struct dirent *e;
        int r = 0;

        if (depth > TMPDIR_DEPTH_MAX) {
                close(dfd);
                return -ELOOP;
        }
        d = fdopendir(dfd);
        if (!d) {
                r = -errno;
                close(dfd);
                return r;
        }
        while ((e = readdir(d))) {
                struct stat st;
                int q = 0;

                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        q = errno == ENOENT ? 0 : -errno;
                } else if (S_ISDIR(st.st_mode)) {
                        int sub;

                        if (st.st_dev != dev) {
                                q = -EXDEV; /* a mount point: not ours to empty */
                        } else {
                                /* O_NOFOLLOW: a directory swapped for a link since the stat is refused */
                                sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                                if (sub < 0)
                                        q = -errno;
                                else
                                        q = remove_contents(sub, dev, depth + 1);
                                if (q == 0 && unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0)
                                        q = -errno;
                        }
                } else if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT) {
                        q = -errno; /* links, sockets, fifos, files: the entry itself goes */
                }
                if (r == 0 && q < 0)
                        r = q;
        }
        closedir(d);
        return r;
}

int test_tmpdir_remove(const char *dir)
{
        struct stat st;
        int fd, r;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        r = remove_contents(fd, st.st_dev, 0);
        if (r == 0 && rmdir(dir) < 0)
                r = -errno;
        return r;
}

static void remove_registered(int status, void *arg)
{
        const char *keep = getenv("NOVA_IT_KEEP");
        bool keep_all = keep && !strcmp(keep, "1");
        pid_t self = getpid();
        bool before_done = false;

        (void)arg;
        for (int i = 0; i < TMPDIR_MAX; i++) {
                int r;

                if (!registered[i].path[0] || registered[i].owner != self)
                        continue;
                if (status != 0 || keep_all) {
                        fprintf(stderr, "kept %s (%s)\n", registered[i].path,
                                keep_all ? "NOVA_IT_KEEP=1" : "the test failed");
                        continue;
                }
                if (!before_done && test_tmpdir_before_remove) {
                        test_tmpdir_before_remove();
                        before_done = true;
                }
                /* a process the test left behind for a moment (one its daemon started) may
                 * still add a file: try again a few times before saying so */
                r = test_tmpdir_remove(registered[i].path);
                for (int tries = 0; r == -ENOTEMPTY && tries < 10; tries++) {
                        const struct timespec pause = { 0, 20 * 1000 * 1000 };
                        (void)nanosleep(&pause, NULL);
                        r = test_tmpdir_remove(registered[i].path);
                }
                if (r < 0 && r != -ENOENT)
                        fprintf(stderr, "cannot remove %s: %s\n", registered[i].path, strerror(-r));
                registered[i].path[0] = '\0';
        }
}

int test_tmpdir_register(const char *dir)
{
        size_t len = strlen(dir);

        if (strncmp(dir, "/tmp/", 5) != 0 || len <= 5 || strstr(dir, "/..") || strstr(dir, "//") ||
            strchr(dir + 5, '/'))
                return -EINVAL;
        if (len >= PATH_MAX)
                return -ENAMETOOLONG;
        if (!handler_set) {
                if (on_exit(remove_registered, NULL) != 0)
                        return -ENOMEM;
                handler_set = true;
        }
        for (int i = 0; i < TMPDIR_MAX; i++)
                if (registered[i].path[0] && !strcmp(registered[i].path, dir)) {
                        registered[i].owner = getpid();
                        return 0;
                }
        for (int i = 0; i < TMPDIR_MAX; i++)
                if (!registered[i].path[0] || registered[i].owner != getpid()) {
                        memcpy(registered[i].path, dir, len + 1);
                        registered[i].owner = getpid();
                        return 0;
                }
        return -ENOSPC;
}

int test_tmpdir_make(const char *prefix, char *ret, size_t size)
{
        int n;

        if (strchr(prefix, '/') || !*prefix)
                return -EINVAL;
        n = snprintf(ret, size, "/tmp/%s-XXXXXX", prefix);
        if (n < 0 || (size_t)n >= size)
                return -ENAMETOOLONG;
        if (!mkdtemp(ret))
                return -errno;
        n = test_tmpdir_register(ret);
        if (n < 0)
                (void)rmdir(ret);
        return n;
}
