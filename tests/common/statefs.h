/* statefs.h - a real, small tmpfs as a test's state dir, in a private mount
 * namespace of the test process (root): filling it gives ENOSPC, remounting it
 * read-only gives EROFS. Shared by test-store-faults (unit: the stores against
 * the fake registry) and test-store-io (integration: the real core). Every
 * function returns 0 or -errno; the test asserts. */
#ifndef NOVA_TEST_STATEFS_H
#define NOVA_TEST_STATEFS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

struct statefs {
        char dir[PATH_MAX];     /* the mount point (the state dir) */
        char filler[PATH_MAX];  /* dir/filler: the file that takes every free block */
        char opts[64];          /* tmpfs options, kept for remounts */
};

/* Enter a private mount namespace (mounts made after this are the process's
 * own, and its children's: a core started by the test inherits them). */
int statefs_private_namespace(void);
/* Mount a tmpfs of `size` ("64k") on the existing directory dir (mode 0700). */
int statefs_mount(struct statefs *fs, const char *dir, const char *size);
/* Unmount (lazily; errors ignored). */
void statefs_umount(struct statefs *fs);
/* Fill the tmpfs to the last byte with the filler file: 0 once a write failed with ENOSPC. */
int statefs_fill(const struct statefs *fs);
/* Remove the filler. */
int statefs_unfill(const struct statefs *fs);
/* Remount read-only (true) or read-write (false), same size. */
int statefs_remount(const struct statefs *fs, bool read_only);
/* Append every file below dir but the filler to buf as "path\n<bytes>\n" (directories
 * as "path\n", then their files), in readdir order (tmpfs lists in a stable order
 * while nothing changes). -ENOBUFS when buf is too small. */
int statefs_snapshot(const char *dir, char *buf, size_t size);

#endif
