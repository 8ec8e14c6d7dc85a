/* health.c - see health.h */
#include "health.h"

#include "log.h"

#include <assert.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#define HEALTH_RETRY_USEC (5 * 1000 * 1000ULL) /* after a snapctl that failed */

const char *health_status_name(enum health_status h)
{
        switch (h) {
        case HEALTH_OKAY:
                return "okay";
        case HEALTH_WAITING:
                return "waiting";
        case HEALTH_ERROR:
                return "error";
        }
        return "error";
}

/* Append ", name" (or "name") to a list; a list that no longer fits ends in ",…" once. */
static void list_add(char *list, size_t size, const char *name)
{
        size_t n = strlen(list);

        if (n && list[n - 1] == '.')
                return; /* already truncated */
        if (n + strlen(name) + 3 >= size) {
                if (n + 5 < size)
                        memcpy(list + n, ",...", 5);
                return;
        }
        (void)snprintf(list + n, size - n, "%s%s", n ? ", " : "", name);
}

static void format_msg(char *msg, size_t msglen, const char *head, const char *list)
{
        size_t max = msglen - 1 < HEALTH_MESSAGE_MAX ? msglen - 1 : HEALTH_MESSAGE_MAX;
        char tmp[256];

        (void)snprintf(tmp, sizeof(tmp), "%s%s", head, list);
        if (strlen(tmp) > max) {
                tmp[max] = '\0';
                memcpy(tmp + max - 3, "...", 3);
        }
        (void)strscpy(msg, tmp, msglen);
}

enum health_status health_compute(const struct module_status st[_PLUG_MAX], bool ovs_in_use, char *msg,
                                  size_t msglen)
{
        char failed[128] = "", disconnected[128] = "", starting[128] = "";

        assert(st && msg);
        for (int i = 0; i < _PLUG_MAX; i++) {
                const struct module_status *s = &st[i];
                bool needed = i == PLUG_LIBVIRT || i == PLUG_NETWORK_CONTROL || (i == PLUG_OPENVSWITCH && ovs_in_use);

                if (!s->connected) {
                        if (needed)
                                list_add(disconnected, sizeof(disconnected), plug_table[i].name);
                        continue;
                }
                if (s->state == MOD_RUNNING)
                        continue;
                if (s->state == MOD_UNAVAILABLE || s->state == MOD_BACKOFF ||
                    (s->state == MOD_STARTING && s->last_error[0]))
                        list_add(failed, sizeof(failed), plug_table[i].name);
                else
                        list_add(starting, sizeof(starting), plug_table[i].name);
        }
        if (failed[0]) {
                format_msg(msg, msglen, "module failed: ", failed);
                return HEALTH_ERROR;
        }
        if (disconnected[0]) {
                format_msg(msg, msglen, "waiting for plugs: ", disconnected);
                return HEALTH_WAITING;
        }
        if (starting[0]) {
                format_msg(msg, msglen, "waiting for modules: ", starting);
                return HEALTH_WAITING;
        }
        if (msglen)
                msg[0] = '\0';
        return HEALTH_OKAY;
}

struct health {
        sd_event *event;
        struct modules *modules;    /* whose status is reported (its status handler is ours) */
        sd_event_source *evaluate;  /* defer source, one-shot: something changed, report if needed */
        sd_event_source *retry;     /* one-shot timer after a failed report */
        sd_event_source *child;     /* stdout of the snapctl in flight, NULL when none */
        pid_t child_pid;
        bool ovs_in_use;
        bool reported;              /* a report has been made (reported_* valid) */
        enum health_status reported_status;
        char reported_msg[HEALTH_MESSAGE_MAX + 1];
};

/* The snapctl in flight is watched through its stdout (a pipe): EOF means it
 * has exited, then it is reaped. Not sd_event_add_child(): libsystemd asks the
 * kernel for a pidfd first, and pidfd_open is outside the seccomp template of
 * older snapd (2.57, Debian 12: one seccomp denial per report under make e2e). */
static void health_changed(void *userdata);

static int on_snapctl_output(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        char buf[256];
        ssize_t n;
        int status;

        struct health *health = userdata;

        (void)revents;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        if (n > 0) {
                buf[n] = '\0';
                log_info("snapctl set-health: %s", buf);
                return 0;
        }
        while ((n = waitpid(health->child_pid, &status, 0)) < 0 && errno == EINTR)
                ;
        if (n < 0) {
                log_warn("cannot reap snapctl set-health: %s; will retry", strerror(errno));
                health->reported = false;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                log_warn("snapctl set-health failed (%s %d); will retry",
                         WIFEXITED(status) ? "exit status" : "signal",
                         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                health->reported = false;
        }
        health->child_pid = 0;
        health->child = sd_event_source_disable_unref(s);
        if (!health->reported) {
                /* Try again later; no timer runs while the report stands. */
                if (sd_event_source_set_time_relative(health->retry, HEALTH_RETRY_USEC) < 0 ||
                    sd_event_source_set_enabled(health->retry, SD_EVENT_ONESHOT) < 0)
                        log_warn("cannot schedule the next health report");
        } else {
                health_changed(health); /* what changed while it ran */
        }
        return 0;
}

static int report(struct health *health, enum health_status h, const char *msg)
{
        char *argv[] = { (char *)"snapctl", (char *)"set-health", (char *)health_status_name(h),
                         h == HEALTH_OKAY ? NULL : (char *)msg, NULL };
        int p[2], r;
        pid_t pid;

        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(p[0]);
                safe_close(p[1]);
                return r;
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                sigset_t none;

                sigemptyset(&none);
                (void)sigprocmask(SIG_SETMASK, &none, NULL);
                if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(p[1], 1) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                _exit(127);
        }
        safe_close(p[1]);
        r = sd_event_add_io(health->event, &health->child, p[0], EPOLLIN, on_snapctl_output, health);
        if (r < 0) {
                safe_close(p[0]);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                return r;
        }
        (void)sd_event_source_set_io_fd_own(health->child, true);
        health->child_pid = pid;
        return 0;
}

/* Report the health if it differs from what snapd was last told. Runs from
 * the event loop after a change (never polls); while a snapctl runs it waits
 * for that one to finish, which evaluates again. */
static int on_evaluate(sd_event_source *s, void *userdata)
{
        struct module_status st[_PLUG_MAX];
        char msg[HEALTH_MESSAGE_MAX + 1];
        enum health_status h;
        int r;

        struct health *health = userdata;

        (void)s;
        if (health->child)
                return 0;
        for (int i = 0; i < _PLUG_MAX; i++)
                modules_get_status(health->modules, (enum plug_id)i, &st[i]);
        h = health_compute(st, health->ovs_in_use, msg, sizeof(msg));
        if (health->reported && h == health->reported_status && streq(msg, health->reported_msg))
                return 0;
        r = report(health, h, msg);
        if (r < 0) {
                log_warn("cannot run snapctl set-health: %s", strerror(-r));
                health->reported = false;
                if (sd_event_source_set_time_relative(health->retry, HEALTH_RETRY_USEC) < 0 ||
                    sd_event_source_set_enabled(health->retry, SD_EVENT_ONESHOT) < 0)
                        log_warn("cannot schedule the next health report");
                return 0;
        }
        log_info("health: %s%s%s", health_status_name(h), msg[0] ? ": " : "", msg);
        health->reported = true;
        health->reported_status = h;
        (void)strscpy(health->reported_msg, msg, sizeof(health->reported_msg));
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void)s;
        (void)usec;
        return on_evaluate(NULL, userdata);
}

/* The registry's status handler: evaluate once the current event is done. */
static void health_changed(void *userdata)
{
        struct health *health = userdata;

        if (sd_event_source_set_enabled(health->evaluate, SD_EVENT_ONESHOT) < 0)
                log_warn("cannot schedule a health report");
}

int health_start(sd_event *event, struct modules *modules, bool ovs_in_use, struct health **ret)
{
        struct health *health;
        int r;

        assert(event && modules && ret);
        health = calloc(1, sizeof(*health));
        if (!health)
                return -ENOMEM;
        health->event = event;
        health->ovs_in_use = ovs_in_use;
        health->modules = modules;
        r = sd_event_add_defer(event, &health->evaluate, on_evaluate, health);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &health->retry, CLOCK_MONOTONIC, HEALTH_RETRY_USEC, 100000,
                                               on_retry, health);
        if (r >= 0)
                r = sd_event_source_set_enabled(health->retry, SD_EVENT_OFF);
        if (r >= 0) /* the first report */
                r = sd_event_source_set_enabled(health->evaluate, SD_EVENT_ONESHOT);
        if (r < 0) {
                health_stop(health);
                return r;
        }
        modules_set_status_handler(modules, health_changed, health);
        *ret = health;
        return 0;
}

struct health *health_stop(struct health *health)
{
        if (!health)
                return NULL;
        if (health->modules)
                modules_set_status_handler(health->modules, NULL, NULL);
        sd_event_source_disable_unref(health->evaluate);
        sd_event_source_disable_unref(health->retry);
        sd_event_source_disable_unref(health->child);
        free(health);
        return NULL;
}
