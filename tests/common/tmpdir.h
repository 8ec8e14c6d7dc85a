/* tmpdir.h - temp dirs of tests that go away with a passing test.
 *
 * test_tmpdir_make() creates a directory with mkdtemp and registers it; when
 * the process that made it exits with status 0 (Check runs each test in a
 * child that exits 0 after a passing test and its teardown; a failed
 * assertion exits 1 before the teardown, a crash or timeout ends it by a
 * signal and runs no exit handler at all), the directory is removed,
 * recursively, without following a symbolic link and without crossing into
 * another file system mounted inside it. It is kept, and its path printed on
 * stderr, when the process exits non-zero or when NOVA_IT_KEEP=1 is set.
 * Children forked by the test inherit the registration but never remove what
 * their parent made. Shared by the unit and integration tests (harness.c's
 * core dirs) and bench helpers written in C. */
#ifndef NOVA_TEST_TMPDIR_H
#define NOVA_TEST_TMPDIR_H

#include <stddef.h>

/* mkdtemp("/tmp/<prefix>-XXXXXX") into ret (size bytes) and register it for
 * removal at a successful exit. 0 or -errno (-ENAMETOOLONG, -ENOSPC: too many
 * registered; mkdtemp's errno). prefix is a plain name (no '/'). */
int test_tmpdir_make(const char *prefix, char *ret, size_t size);

/* Register a directory the caller created itself (an absolute path under
 * /tmp/, no "..": anything else is -EINVAL). 0 or -errno. */
int test_tmpdir_register(const char *dir);

/* Remove dir and everything under it: never follows a symbolic link (a link
 * is removed, not what it points to) and never descends into another file
 * system (a mount point inside is left, and so is dir then). 0 or the first
 * -errno met (the rest is still tried). */
int test_tmpdir_remove(const char *dir);

/* Called once before the registered dirs are removed at exit (the harness
 * stops the daemons it started first, so nothing writes into a dir being
 * removed). NULL by default. */
extern void (*test_tmpdir_before_remove)(void);

#endif
