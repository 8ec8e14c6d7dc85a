/* snapctl.c - see snapctl.h */
#include "snapctl.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

bool in_snap(void)
{
        const char *s = getenv("SNAP");
        return s && *s;
}

bool bounding_set_ours(void)
{
        return !in_snap();
}

static int append(int fd, char *buf, size_t *len, size_t max)
{
        char tmp[512];
        ssize_t k = read(fd, tmp, sizeof(tmp));

        if (k < 0)
                return errno == EINTR ? 1 : -errno;
        if (k == 0)
                return 0;
        if (*len + (size_t)k > max)
                return -EFBIG;
        memcpy(buf + *len, tmp, (size_t)k);
        *len += (size_t)k;
        return 1;
}

/* Fork and exec argv with stdin on /dev/null and stdout and stderr on two new
 * pipes, whose read ends go to *ret_out_fd and *ret_err_fd. The child's pid,
 * or -errno (nothing left open). */
static pid_t spawn_captured(char *const argv[], int *ret_out_fd, int *ret_err_fd)
{
        int outp[2], errp[2];
        pid_t pid;
        int r;

        if (pipe2(outp, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(errp, O_CLOEXEC) < 0) {
                r = -errno;
                safe_close(outp[0]);
                safe_close(outp[1]);
                return r;
        }
        pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(outp[0]);
                safe_close(outp[1]);
                safe_close(errp[0]);
                safe_close(errp[1]);
                return r;
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(outp[1], 1) < 0 || dup2(errp[1], 2) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                _exit(127);
        }
        safe_close(outp[1]);
        safe_close(errp[1]);
        *ret_out_fd = outp[0];
        *ret_err_fd = errp[0];
        return pid;
}

/* Read both pipes until both end (append() keeps at most max bytes of each). 0 or -errno. */
static int read_both(int out_fd, int err_fd, char *out, size_t *out_len, char *err, size_t *err_len, size_t max)
{
        bool out_open = true, err_open = true;
        int r = 0;

        while ((out_open || err_open) && r >= 0) {
                struct pollfd p[2] = { { out_open ? out_fd : -1, POLLIN, 0 }, { err_open ? err_fd : -1, POLLIN, 0 } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[0].revents) {
                        int k = append(out_fd, out, out_len, max);
                        if (k <= 0)
                                out_open = false;
                        if (k < 0)
                                r = k;
                }
                if (p[1].revents) {
                        int k = append(err_fd, err, err_len, max);
                        if (k <= 0)
                                err_open = false;
                        if (k < 0)
                                r = k;
                }
        }
        return r;
}

int run_capture(char *const argv[], size_t max, char **ret_out, char **ret_err)
{
        _cleanup_free_ char *out = NULL, *err = NULL;
        size_t out_len = 0, err_len = 0;
        int out_fd = -1, err_fd = -1, status, r;
        pid_t pid;

        out = malloc(max + 1);
        err = malloc(max + 1);
        if (!out || !err)
                return -ENOMEM;
        pid = spawn_captured(argv, &out_fd, &err_fd);
        if (pid < 0)
                return pid;
        r = read_both(out_fd, err_fd, out, &out_len, err, &err_len, max);
        safe_close(out_fd);
        safe_close(err_fd);
        if (r < 0)
                (void)kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (r < 0)
                return r;
        if (!WIFEXITED(status))
                return -EINTR;
        if (WEXITSTATUS(status) == 127)
                return -ENOENT;
        out[out_len] = '\0';
        err[err_len] = '\0';
        if (ret_out)
                *ret_out = TAKE_PTR(out);
        if (ret_err)
                *ret_err = TAKE_PTR(err);
        return WEXITSTATUS(status);
}

/* snapd before 2.59 (Debian 12 has 2.57) has no `is-connected --list` and
 * answers "unknown flag `list'": ask about each plug of ours instead. */
static int connected_plugs_one_by_one(bool ret_connected[_PLUG_MAX])
{
        bool connected[_PLUG_MAX] = { false };

        for (int i = 0; i < _PLUG_MAX; i++) {
                int r = snapctl_is_connected(plug_table[i].name);
                if (r < 0)
                        return r;
                connected[i] = r > 0;
        }
        memcpy(ret_connected, connected, sizeof(connected));
        return 0;
}

int snapctl_connected_plugs(bool ret_connected[_PLUG_MAX])
{
        char *argv[] = { (char *)"snapctl", (char *)"is-connected", (char *)"--list", NULL };
        _cleanup_free_ char *out = NULL, *err = NULL;
        bool connected[_PLUG_MAX] = { false };
        char *save = NULL;
        int r;

        r = run_capture(argv, 64 * 1024, &out, &err);
        if (r < 0)
                return r;
        if (r != 0 && strstr(err, "unknown flag"))
                return connected_plugs_one_by_one(ret_connected);
        if (r != 0 || err[0] != '\0')
                return -EIO;
        for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                int id = plug_from_name(line);
                if (id >= 0)
                        connected[id] = true; /* other names are slots or plugs we do not manage */
        }
        memcpy(ret_connected, connected, sizeof(connected));
        return 0;
}

int snapctl_is_connected(const char *plug)
{
        char *argv[] = { (char *)"snapctl", (char *)"is-connected", (char *)plug, NULL };
        _cleanup_free_ char *err = NULL;
        int r;

        r = run_capture(argv, 4096, NULL, &err);
        if (r < 0)
                return r;
        if (r == 0)
                return 1;
        if (r == 1 && err[0] == '\0')
                return 0;
        return -EIO;
}
