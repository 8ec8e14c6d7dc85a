/* test-tmpdir.c - the tests' temp dirs (tests/common/tmpdir.c): removed
 * recursively when the process that made them exits 0, never through a
 * symbolic link and never into another mounted file system; kept and named on
 * stderr after a failure (a non-zero exit) or with NOVA_IT_KEEP=1; a forked
 * child does not remove its parent's dir; only plain dirs directly under /tmp
 * are registered. Each "process exits" case runs in a child of the test, as
 * Check runs a test. Needs root for the mount case (a private mount
 * namespace). */
#include "tmpdir.h"
#include "util.h"

#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char outside[PATH_MAX], outside_file[PATH_MAX + 16];

static bool exists(const char *path)
{
        struct stat st;

        return lstat(path, &st) == 0;
}

static bool has_text(const char *path, const char *text)
{
        char *buf = NULL;
        bool found;

        if (read_file_bounded(path, 4096, &buf, NULL) < 0)
                return false;
        found = strstr(buf, text) != NULL;
        free(buf);
        return found;
}

static void put(const char *dir, const char *name, const char *text)
{
        char path[PATH_MAX];

        ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/%s", dir, name), 0);
        ck_assert_int_eq(write_file_atomic(path, text, strlen(text), 0600), 0);
}

static void setup(void)
{
        ck_assert_int_eq(xsnprintf(outside, sizeof(outside), "/tmp/nova-tmpdir-outside-XXXXXX"), 0);
        ck_assert_ptr_nonnull(mkdtemp(outside));
        put(outside, "keep", "not yours");
        ck_assert_int_eq(xsnprintf(outside_file, sizeof(outside_file), "%s/keep", outside), 0);
}

static void teardown(void)
{
        (void)unlink(outside_file);
        (void)rmdir(outside);
}

/* A tree with files, nested dirs, a fifo and links that point out of it (to a
 * dir, to a file, to itself): everything under it goes, nothing outside. */
START_TEST(test_remove_tree_follows_no_link)
{
        char dir[PATH_MAX], path[PATH_MAX + 64];

        ck_assert_int_eq(xsnprintf(dir, sizeof(dir), "/tmp/nova-tmpdir-t-XXXXXX"), 0);
        ck_assert_ptr_nonnull(mkdtemp(dir));
        put(dir, "a", "1");
        (void)snprintf(path, sizeof(path), "%s/sub", dir);
        ck_assert_int_eq(mkdir(path, 0700), 0);
        (void)snprintf(path, sizeof(path), "%s/sub/deeper", dir);
        ck_assert_int_eq(mkdir(path, 0700), 0);
        put(path, "b", "2");
        (void)snprintf(path, sizeof(path), "%s/sub/fifo", dir);
        ck_assert_int_eq(mkfifo(path, 0600), 0);
        (void)snprintf(path, sizeof(path), "%s/to-dir", dir);
        ck_assert_int_eq(symlink(outside, path), 0);
        (void)snprintf(path, sizeof(path), "%s/sub/to-file", dir);
        ck_assert_int_eq(symlink(outside_file, path), 0);
        (void)snprintf(path, sizeof(path), "%s/sub/deeper/loop", dir);
        ck_assert_int_eq(symlink(".", path), 0);
        (void)snprintf(path, sizeof(path), "%s/ro", dir);
        ck_assert_int_eq(mkdir(path, 0500), 0); /* read-only: root removes it anyway */

        ck_assert_int_eq(test_tmpdir_remove(dir), 0);
        ck_assert(!exists(dir));
        ck_assert(exists(outside_file));
        ck_assert(has_text(outside_file, "not yours"));
        /* the path itself a link: refused, the target untouched */
        (void)snprintf(path, sizeof(path), "%s-link", outside);
        ck_assert_int_eq(symlink(outside, path), 0);
        ck_assert_int_lt(test_tmpdir_remove(path), 0); /* ENOTDIR: O_DIRECTORY|O_NOFOLLOW on a link */
        ck_assert(exists(outside_file));
        ck_assert_int_eq(unlink(path), 0);
}
END_TEST

/* Run body in a child that makes a registered dir, puts a file in it and exits
 * with status; the dir's path comes back in ret, the child's stderr in err. */
static void child_makes_dir(int status, bool keep_env, bool grandchild, char ret[PATH_MAX], char *err, size_t errlen)
{
        char errpath[] = "/tmp/nova-tmpdir-err-XXXXXX";
        int fds[2], errfd, wstatus;
        ssize_t n;
        pid_t pid;

        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        errfd = mkstemp(errpath);
        ck_assert_int_ge(errfd, 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char dir[PATH_MAX];

                (void)dup2(errfd, STDERR_FILENO);
                if (keep_env)
                        (void)setenv("NOVA_IT_KEEP", "1", 1);
                else
                        (void)unsetenv("NOVA_IT_KEEP");
                if (test_tmpdir_make("nova-tmpdir-t", dir, sizeof(dir)) < 0)
                        _exit(90);
                put(dir, "file", "x");
                if (write(fds[1], dir, strlen(dir) + 1) < 0)
                        _exit(91);
                if (grandchild) {
                        pid_t g = fork();
                        if (g == 0)
                                exit(0); /* runs the exit handlers: must not remove its parent's dir */
                        if (g < 0 || waitpid(g, NULL, 0) != g || !exists(dir))
                                _exit(92);
                }
                exit(status);
        }
        ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
        ck_assert(WIFEXITED(wstatus));
        ck_assert_int_eq(WEXITSTATUS(wstatus), status);
        close(fds[1]);
        n = read(fds[0], ret, PATH_MAX);
        ck_assert_int_gt(n, 0);
        ret[n - 1] = '\0';
        close(fds[0]);
        n = pread(errfd, err, errlen - 1, 0);
        err[n > 0 ? n : 0] = '\0';
        close(errfd);
        (void)unlink(errpath);
}

START_TEST(test_removed_after_a_pass)
{
        char dir[PATH_MAX], err[1024];

        child_makes_dir(0, false, false, dir, err, sizeof(err));
        ck_assert_msg(strncmp(dir, "/tmp/nova-tmpdir-t-", 19) == 0, "%s", dir);
        ck_assert_msg(!exists(dir), "%s left behind", dir);
        ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(test_kept_after_a_failure)
{
        char dir[PATH_MAX], err[1024], want[PATH_MAX + 64];

        child_makes_dir(1, false, false, dir, err, sizeof(err));
        ck_assert(exists(dir));
        (void)snprintf(want, sizeof(want), "kept %s (the test failed)", dir);
        ck_assert_msg(strstr(err, want), "%s", err);
        ck_assert_int_eq(test_tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(test_kept_on_request)
{
        char dir[PATH_MAX], err[1024], want[PATH_MAX + 64];

        child_makes_dir(0, true, false, dir, err, sizeof(err));
        ck_assert(exists(dir));
        (void)snprintf(want, sizeof(want), "kept %s (NOVA_IT_KEEP=1)", dir);
        ck_assert_msg(strstr(err, want), "%s", err);
        ck_assert_int_eq(test_tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(test_forked_child_leaves_parents_dir)
{
        char dir[PATH_MAX], err[1024];

        child_makes_dir(0, false, true, dir, err, sizeof(err)); /* the child checks it after its own child exited 0 */
        ck_assert(!exists(dir));
}
END_TEST

START_TEST(test_register_refuses_other_paths)
{
        static const char *const bad[] = { "/etc", "/tmp/", "/tmp/../etc", "/tmp/a/b", "tmp/a", "/tmp//a", "/tmpfoo" };
        char dir[PATH_MAX];

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                ck_assert_msg(test_tmpdir_register(bad[i]) == -EINVAL, "%s", bad[i]);
        ck_assert_int_eq(test_tmpdir_make("a/b", dir, sizeof(dir)), -EINVAL);
        ck_assert_int_eq(test_tmpdir_make("nova-tmpdir-t", dir, 16), -ENAMETOOLONG);
}
END_TEST

/* A file system mounted inside is not emptied (its files are not ours), and
 * the dir stays with it; once unmounted the dir goes. */
START_TEST(test_mount_inside_not_crossed)
{
        char dir[PATH_MAX], mnt[PATH_MAX + 8], theirs[PATH_MAX + 16];
        int wstatus;
        pid_t pid;

        ck_assert_int_eq(xsnprintf(dir, sizeof(dir), "/tmp/nova-tmpdir-t-XXXXXX"), 0);
        ck_assert_ptr_nonnull(mkdtemp(dir));
        (void)snprintf(mnt, sizeof(mnt), "%s/m", dir);
        ck_assert_int_eq(mkdir(mnt, 0700), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    mount("tmpfs", mnt, "tmpfs", 0, "size=64k") < 0)
                        _exit(90);
                put(mnt, "theirs", "y");
                if (test_tmpdir_remove(dir) != -EXDEV)
                        _exit(91);
                (void)snprintf(theirs, sizeof(theirs), "%s/theirs", mnt);
                if (!has_text(theirs, "y"))
                        _exit(92);
                if (umount2(mnt, MNT_DETACH) < 0 || test_tmpdir_remove(dir) != 0 || exists(dir))
                        _exit(93);
                _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
        ck_assert_msg(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0, "child status %d", wstatus);
        ck_assert(!exists(dir));
}
END_TEST

static Suite *suite(void)
{
        Suite *s = suite_create("tmpdir");
        TCase *tc = tcase_create("tmpdir");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_remove_tree_follows_no_link);
        tcase_add_test(tc, test_removed_after_a_pass);
        tcase_add_test(tc, test_kept_after_a_failure);
        tcase_add_test(tc, test_kept_on_request);
        tcase_add_test(tc, test_forked_child_leaves_parents_dir);
        tcase_add_test(tc, test_register_refuses_other_paths);
        tcase_add_test(tc, test_mount_inside_not_crossed);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
