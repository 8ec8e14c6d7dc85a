/* spawner.c - see spawner.h */
#include "spawner.h"

#include "snapctl.h"

#include "log.h"

#include <cap-ng.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

struct child {
        pid_t pid;              /* 0 when not running */
        uint64_t kill_deadline; /* usec; 0 when no stop is pending */
};

/* The spawner process's state: its own, on spawner_main()'s stack. */
struct spawner {
        int ctl;                                /* the core's end of the channel; -1 once it is gone */
        const struct spawner_config *cfg;
        struct child children[_PLUG_MAX];       /* one per plug */
};

static void send_msg(int ctl, uint32_t event, uint32_t plug, pid_t pid, int32_t status, int fd)
{
        struct spawner_msg m = { .event = event, .plug = plug, .pid = pid, .status = status, .usec = now_usec() };
        struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (fd >= 0) {
                memset(&control, 0, sizeof(control));
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        while (sendmsg(ctl, &mh, MSG_NOSIGNAL) < 0)
                if (errno != EINTR) {
                        if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)
                                log_info("the core went away; module %s's %s not reported", plug_table[plug].name,
                                         event == SPAWNER_EXITED ? "exit" : "start");
                        else
                                log_err("cannot report to the core: %s", strerror(errno));
                        return;
                }
}

int spawner_recv(int ctl_fd, struct spawner_msg *ret, int *ret_fd)
{
        struct spawner_msg m;
        struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        int fd = -1;
        ssize_t n;

        n = recvmsg(ctl_fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? -EAGAIN : -ECONNRESET;
        if (n == 0)
                return -ECONNRESET;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                    c->cmsg_len == CMSG_LEN(sizeof(int)))
                        memcpy(&fd, CMSG_DATA(c), sizeof(int));
        if ((size_t)n != sizeof(m) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || m.plug >= _PLUG_MAX ||
            (m.event == SPAWNER_STARTED) != (fd >= 0)) {
                safe_close(fd);
                return -EBADMSG;
        }
        *ret = m;
        *ret_fd = fd;
        return 0;
}

/* In the forked child: narrow everything to the module's own set, exec. */
_noreturn_ static void exec_module(const struct spawner_config *cfg, enum plug_id plug, int sock)
{
        const struct plug_info *p = &plug_table[plug];
        char path[PATH_MAX];
        sigset_t all;

        /* Default dispositions first, then unblock: a SIGTERM already pending (a stop
         * sent right after the fork) must end this child, not run a handler
         * inherited from whoever forked the spawner. */
        for (int s = 1; s < NSIG; s++)
                (void)signal(s, SIG_DFL);
        sigemptyset(&all);
        (void)sigprocmask(SIG_SETMASK, &all, NULL);
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        for (unsigned cap = 0; cap <= CAP_LAST_CAP && bounding_set_ours(); cap++)
                if (!(p->caps & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        _exit(126);
        if (sock != 3) {
                if (dup2(sock, 3) < 0)
                        _exit(126);
        } else if (fcntl(3, F_SETFD, 0) < 0)
                _exit(126);
        (void)syscall(SYS_close_range, 4U, ~0U, 0U);
        if (xsnprintf(path, sizeof(path), "%s/%s", cfg->module_dir, p->program) < 0)
                _exit(126);
        if (cfg->config_path[0])
                execl(path, p->program, "--fd", "3", "--config", cfg->config_path, (char *)NULL);
        else
                execl(path, p->program, "--fd", "3", (char *)NULL);
        _exit(127);
}

static void start_module(struct spawner *sp, uint32_t plug)
{
        struct child *children = sp->children;
        int ctl = sp->ctl;
        int sv[2];
        pid_t pid;

        if (children[plug].pid > 0) {
                send_msg(ctl, SPAWNER_FAILED, plug, children[plug].pid, -EALREADY, -1);
                return;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
                send_msg(ctl, SPAWNER_FAILED, plug, 0, -errno, -1);
                return;
        }
        pid = fork();
        if (pid < 0) {
                int e = -errno;
                safe_close(sv[0]);
                safe_close(sv[1]);
                send_msg(ctl, SPAWNER_FAILED, plug, 0, e, -1);
                return;
        }
        if (pid == 0) {
                safe_close(sv[0]);
                exec_module(sp->cfg, plug, sv[1]);
        }
        safe_close(sv[1]);
        children[plug].pid = pid;
        children[plug].kill_deadline = 0;
        send_msg(ctl, SPAWNER_STARTED, plug, pid, 0, sv[0]);
        safe_close(sv[0]);
}

static void stop_module(struct spawner *sp, uint32_t plug)
{
        struct child *c = &sp->children[plug];

        if (c->pid <= 0 || c->kill_deadline)
                return;
        (void)kill(c->pid, SIGTERM);
        c->kill_deadline = now_usec() + (uint64_t)sp->cfg->stop_timeout_ms * 1000;
}

static void reap(struct spawner *sp)
{
        struct child *children = sp->children;

        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                if (pid <= 0)
                        return;
                for (uint32_t i = 0; i < _PLUG_MAX; i++)
                        if (children[i].pid == pid) {
                                children[i].pid = 0;
                                children[i].kill_deadline = 0;
                                if (sp->ctl >= 0)
                                        send_msg(sp->ctl, SPAWNER_EXITED, i, pid, status, -1);
                        }
        }
}

static int next_timeout_ms(const struct spawner *sp)
{
        const struct child *children = sp->children;
        uint64_t now = now_usec(), soonest = 0;

        for (int i = 0; i < _PLUG_MAX; i++)
                if (children[i].kill_deadline && (!soonest || children[i].kill_deadline < soonest))
                        soonest = children[i].kill_deadline;
        if (!soonest)
                return -1;
        return soonest <= now ? 0 : (int)((soonest - now + 999) / 1000);
}

static void kill_overdue(struct spawner *sp)
{
        struct child *children = sp->children;
        uint64_t now = now_usec();

        for (int i = 0; i < _PLUG_MAX; i++)
                if (children[i].pid > 0 && children[i].kill_deadline && children[i].kill_deadline <= now) {
                        log_warn("module %s (pid %ld) did not stop in time; killing it", plug_table[i].name,
                                 (long)children[i].pid);
                        (void)kill(children[i].pid, SIGKILL);
                        children[i].kill_deadline = 0;
                }
}

static bool any_child(const struct spawner *sp)
{
        for (int i = 0; i < _PLUG_MAX; i++)
                if (sp->children[i].pid > 0)
                        return true;
        return false;
}

static int drop_to_spawner_privileges(void)
{
        bool bound = bounding_set_ours(); /* not inside a snap (the remove hook) */
        uint64_t keep = plug_all_caps() | (bound ? 1ULL << CAP_SETPCAP : 0);

        capng_clear(CAPNG_SELECT_BOTH);
        for (unsigned cap = 0; cap <= CAP_LAST_CAP; cap++)
                if (keep & (1ULL << cap))
                        (void)capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET, cap);
        if (capng_apply(bound ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS) < 0)
                return -EPERM;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        return 0;
}

void spawner_main(int ctl, const struct spawner_config *cfg)
{
        struct spawner sp = { .ctl = ctl, .cfg = cfg };
        sigset_t mask;
        int sfd, r;

        log_init("spawner", LOG_LVL_INFO);
        (void)prctl(PR_SET_NAME, "nova-spawner");
        r = drop_to_spawner_privileges();
        if (r < 0)
                log_warn("cannot narrow own capabilities (%s); modules will get only what this process has",
                         strerror(-r));
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        (void)sigprocmask(SIG_BLOCK, &mask, NULL);
        (void)signal(SIGPIPE, SIG_IGN);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0) {
                log_err("signalfd: %s", strerror(errno));
                _exit(1);
        }
        while (sp.ctl >= 0 || any_child(&sp)) {
                struct pollfd p[2] = { { sp.ctl, POLLIN, 0 }, { sfd, POLLIN, 0 } };
                if (poll(p, 2, next_timeout_ms(&sp)) < 0 && errno != EINTR) {
                        log_err("poll: %s", strerror(errno));
                        break;
                }
                if (sp.ctl >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                        struct spawner_request req;
                        ssize_t n = recv(sp.ctl, &req, sizeof(req), MSG_TRUNC | MSG_DONTWAIT);
                        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        if (n != (ssize_t)sizeof(req) || req.plug >= _PLUG_MAX ||
                            (req.op != SPAWNER_START && req.op != SPAWNER_STOP)) {
                                /* The end of the channel (0), or ECONNRESET when the core died
                                 * with our reports unread (killed): the core went away, which is
                                 * no invalid request. */
                                if (n <= 0)
                                        log_info("the core went away (%s); stopping the modules",
                                                 n == 0 ? "channel closed" : strerror(errno));
                                else
                                        log_err("invalid request from the core (%zd bytes); stopping the modules",
                                                n);
                                /* The core is gone (or broken): stop every module, then exit. */
                                sp.ctl = safe_close(sp.ctl);
                                for (uint32_t i = 0; i < _PLUG_MAX; i++)
                                        stop_module(&sp, i);
                                continue;
                        }
                        if (req.op == SPAWNER_START)
                                start_module(&sp, req.plug);
                        else
                                stop_module(&sp, req.plug);
                }
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                                if (si.ssi_signo == SIGCHLD)
                                        reap(&sp);
                                else if (si.ssi_signo != SIGHUP) {
                                        /* Terminal ^C or systemd stop: the core handles its own
                                         * shutdown; we wait for it to close the channel. */
                                }
                        }
                }
                reap(&sp);
                kill_overdue(&sp);
        }
        _exit(0);
}
