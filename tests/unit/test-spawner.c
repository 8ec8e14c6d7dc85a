/* test-spawner.c - the forked spawner (src/core/spawner.c) as the core's
 * peer: how it tells the core going away from a broken core. The spawner runs
 * in a child of the test on a real socketpair, with a module directory that
 * holds no program (a start then execs nothing and the child exits 127). */
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawner.h"
#include "util.h"

static char dir[64], logpath[96];

/* The spawner on its end of a socketpair, its stderr in logpath; the
 * test's end in *ret_fd. */
static pid_t spawner_start(int *ret_fd)
{
        static struct spawner_config cfg;
        int sv[2];
        pid_t pid;

        (void)strscpy(dir, "/tmp/nova-spawner-XXXXXX", sizeof(dir));
        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(xsnprintf(logpath, sizeof(logpath), "%s/log", dir), 0);
        ck_assert_int_eq(strscpy(cfg.module_dir, dir, sizeof(cfg.module_dir)), 0);
        cfg.stop_timeout_ms = 1000;
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (log < 0 || dup2(log, 2) < 0)
                        _exit(99);
                close(sv[0]);
                spawner_main(sv[1], &cfg);
        }
        close(sv[1]);
        *ret_fd = sv[0];
        return pid;
}

static char *spawner_end(pid_t pid)
{
        int status;
        char cmd[160];

        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "spawner status %d", status);
        char *text = NULL;
        size_t len;
        ck_assert_int_eq(read_file_bounded(logpath, 65536, &text, &len), 0);
        (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
        return text;
}

/* The core killed with the spawner's reports unread: the spawner's read
 * fails with ECONNRESET. That is the core going away, not an invalid request
 * (it was logged as one, an error, at every kill of the core). */
START_TEST(test_core_killed_with_reports_unread)
{
        struct spawner_request req = { .op = SPAWNER_START, .plug = 0 };
        int fd;
        pid_t pid = spawner_start(&fd);

        ck_assert_int_eq(send(fd, &req, sizeof(req), 0), (ssize_t)sizeof(req));
        /* its STARTED report queued and left unread */
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ck_assert_int_eq(poll(&p, 1, 5000), 1);
        close(fd);
        _cleanup_free_ char *log = spawner_end(pid);
        ck_assert_msg(strstr(log, "the core went away"), "log:\n%s", log);
        ck_assert_msg(!strstr(log, "invalid request"), "log:\n%s", log);
}
END_TEST

/* A request of the wrong size is an invalid request, logged as one. */
START_TEST(test_invalid_request_named)
{
        int fd;
        pid_t pid = spawner_start(&fd);

        ck_assert_int_eq(send(fd, "abc", 3, 0), 3);
        _cleanup_free_ char *log = spawner_end(pid);
        ck_assert_msg(strstr(log, "invalid request from the core (3 bytes)"), "log:\n%s", log);
        close(fd);
}
END_TEST

static Suite *spawner_suite(void)
{
        Suite *s = suite_create("spawner");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 20);
        tcase_add_test(tc, test_core_killed_with_reports_unread);
        tcase_add_test(tc, test_invalid_request_named);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(spawner_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
