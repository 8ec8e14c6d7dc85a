/* statefs.c - see statefs.h */
#include "statefs.h"

#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

int statefs_private_namespace(void)
{
        if (unshare(CLONE_NEWNS) < 0)
                return -errno;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;
        return 0;
}

int statefs_mount(struct statefs *fs, const char *dir, const char *size)
{
        int r;

        memset(fs, 0, sizeof(*fs));
        r = strscpy(fs->dir, dir, sizeof(fs->dir));
        if (r < 0)
                return r;
        r = xsnprintf(fs->filler, sizeof(fs->filler), "%s/filler", dir);
        if (r < 0)
                return r;
        r = xsnprintf(fs->opts, sizeof(fs->opts), "size=%s,mode=0700", size);
        if (r < 0)
                return r;
        if (mount("tmpfs", fs->dir, "tmpfs", MS_NOSUID | MS_NODEV, fs->opts) < 0)
                return -errno;
        return 0;
}

void statefs_umount(struct statefs *fs)
{
        if (fs->dir[0])
                (void)umount2(fs->dir, MNT_DETACH);
}

int statefs_fill(const struct statefs *fs)
{
        static const char block[4096];
        _cleanup_close_ int fd = open(fs->filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ssize_t k;

        if (fd < 0)
                return -errno;
        do
                k = write(fd, block, sizeof(block));
        while (k > 0);
        if (k < 0 && errno != ENOSPC)
                return -errno;
        /* then the last partial block, byte by byte */
        while ((k = write(fd, block, 1)) == 1)
                ;
        if (k < 0 && errno == ENOSPC)
                return 0;
        return k < 0 ? -errno : -EIO;
}

int statefs_unfill(const struct statefs *fs) { return unlink(fs->filler) < 0 ? -errno : 0; }

int statefs_remount(const struct statefs *fs, bool read_only)
{
        if (mount(NULL, fs->dir, NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV | (read_only ? MS_RDONLY : 0), fs->opts) < 0)
                return -errno;
        return 0;
}

int statefs_snapshot(const char *dir, char *buf, size_t size)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        int r = 0;

        if (!d)
                return -errno;
        while (r == 0 && (de = readdir(d))) {
                char path[PATH_MAX];
                struct stat st;
                size_t len = strlen(buf);

                if (streq(de->d_name, ".") || streq(de->d_name, "..") || streq(de->d_name, "filler"))
                        continue;
                r = xsnprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                if (r == 0 && lstat(path, &st) < 0)
                        r = -errno;
                if (r < 0)
                        break;
                if ((size_t)snprintf(buf + len, size - len, "%s\n", path) >= size - len) {
                        r = -ENOBUFS;
                        break;
                }
                if (S_ISDIR(st.st_mode)) {
                        r = statefs_snapshot(path, buf, size);
                } else {
                        _cleanup_free_ char *text = NULL;
                        size_t n = 0;
                        r = read_file_bounded(path, 65536, &text, &n);
                        len = strlen(buf);
                        if (r == 0 && (size_t)snprintf(buf + len, size - len, "%s\n", text) >= size - len)
                                r = -ENOBUFS;
                }
        }
        closedir(d);
        return r;
}
