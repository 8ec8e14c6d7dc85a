/* process-control.c - nova-process-control: the module that holds the
 * process-control plug. It keeps CAP_SYS_NICE only, takes an instance UUID
 * (never a pid), finds that instance's QEMU process itself (procfs.h:
 * qemu_process_find) and sets the CPU affinity and priority of its threads. */
#include "log.h"
#include "modrt.h"
#include "names.h"
#include "procctl-protocol.h"
#include "procfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>

#define LIBVIRT_QEMU_RUN "/run/libvirt/qemu" /* qemu:///system writes <domain>.pid here */

static void explain_find(struct modrt_call *call, int r, const char *uuid)
{
        if (r == -ENOENT)
                (void)snprintf(call->err, sizeof(call->err),
                               "no QEMU process of instance %s (none runs with its mark -uuid %s -name guest=nova-%s)",
                               uuid, uuid, uuid);
        else if (r == -ENOTUNIQ)
                (void)snprintf(call->err, sizeof(call->err),
                               "more than one process claims instance %s; touching none", uuid);
        else if (r == -EPERM)
                (void)snprintf(call->err, sizeof(call->err),
                               "no QEMU process of instance %s that libvirt started: a process with its mark runs, but "
                               "not as root or qemu_user, or not in libvirt's machine cgroup of the domain; touching none",
                               uuid);
        else
                (void)snprintf(call->err, sizeof(call->err), "cannot look for the process of instance %s: %s", uuid,
                               strerror(-r));
}

static void cpu_set_from(const struct cpuset *set, cpu_set_t *ret)
{
        CPU_ZERO(ret);
        for (unsigned c = 0; c < CPU_SETSIZE && c < CPUSET_MAX_CPUS; c++)
                if (cpuset_has(set, c))
                        CPU_SET(c, ret);
}

/* The task ids of the process behind dirfd, into tids (at most max). */
static int list_tasks(int dirfd, pid_t *tids, size_t max, size_t *ret_n)
{
        int fd = openat(dirfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;
        struct dirent *de;
        size_t n = 0;

        if (fd < 0)
                return errno == ENOENT || errno == ESRCH ? -ENOENT : -errno;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        while ((de = readdir(d)) && n < max) {
                uint32_t tid;
                if (parse_u32(de->d_name, 1, INT32_MAX, &tid) == 0)
                        tids[n++] = (pid_t)tid;
        }
        closedir(d);
        if (n == 0)
                return -ENOENT; /* gone meanwhile */
        *ret_n = n;
        return 0;
}

#define MAX_TASKS 4096

static int handle_instance_pin(void *state, struct modrt_call *call)
{
        const char *uuid = proto_get_str(call->req, "instance_uuid", "");
        const char *cpus_text = proto_get_str(call->req, "cpus", "");
        const char *prio_text = proto_get_str(call->req, "priority", NULL);
        struct cpuset want, online;
        char online_text[1024], canon[PROCCTL_CPUS_MAX_LEN + 1];
        _cleanup_free_ pid_t *tids = NULL;
        _cleanup_close_ int dirfd = -1;
        const char *found_by = "";
        size_t n = 0, len;
        cpu_set_t mask;
        pid_t pid;
        int r;

        if (cpuset_parse(cpus_text, strlen(cpus_text), &want) < 0)
                return -EINVAL; /* unreachable: the schema checked it */
        (void)cpuset_format(&want, canon, sizeof(canon));
        (void)snprintf(call->audit, sizeof(call->audit), "cpus=%.64s", canon);
        if (read_at_bounded(AT_FDCWD, "/sys/devices/system/cpu/online", online_text, sizeof(online_text), &len) == 0 &&
            cpuset_parse(online_text, len, &online) == 0 && !cpuset_subset(&want, &online)) {
                while (len > 0 && online_text[len - 1] == '\n')
                        online_text[--len] = '\0';
                (void)snprintf(call->err, sizeof(call->err), "cpus %.64s: not all online (online: %.64s)", canon,
                               online_text);
                return -EINVAL;
        }
        r = qemu_process_find("/proc", LIBVIRT_QEMU_RUN, state, uuid, &pid, &dirfd, &found_by);
        if (r < 0) {
                explain_find(call, r, uuid);
                return r;
        }
        tids = calloc(MAX_TASKS, sizeof(*tids));
        if (!tids)
                return -ENOMEM;
        r = list_tasks(dirfd, tids, MAX_TASKS, &n);
        if (r < 0) {
                explain_find(call, r, uuid);
                return r;
        }
        (void)snprintf(call->audit, sizeof(call->audit), "pid=%d threads=%zu cpus=%.64s%s%s", (int)pid, n, canon,
                       prio_text ? " priority=" : "", prio_text ? prio_text : "");
        cpu_set_from(&want, &mask);
        for (size_t i = 0; i < n; i++) {
                if (sched_setaffinity(tids[i], sizeof(mask), &mask) < 0 && errno != ESRCH) {
                        r = -errno;
                        (void)snprintf(call->err, sizeof(call->err), "sched_setaffinity(thread %d of instance %s): %s",
                                       (int)tids[i], uuid, strerror(errno));
                        return r;
                }
                if (prio_text && setpriority(PRIO_PROCESS, (id_t)tids[i], procctl_priority_value(prio_text)) < 0 &&
                    errno != ESRCH) {
                        r = -errno;
                        (void)snprintf(call->err, sizeof(call->err), "setpriority(thread %d of instance %s): %s",
                                       (int)tids[i], uuid, strerror(errno));
                        return r;
                }
        }
        /* Still the same process (the fd of /proc/<pid> is bound to it)? */
        if (faccessat(dirfd, "stat", R_OK, 0) < 0) {
                explain_find(call, -ENOENT, uuid);
                return -ENOENT;
        }
        pw_u64(call->reply, "pid", (uint64_t)pid);
        pw_str(call->reply, "found_by", found_by);
        pw_u64(call->reply, "threads", n);
        pw_str(call->reply, "cpus", canon);
        if (prio_text)
                pw_i64(call->reply, "priority", procctl_priority_value(prio_text));
        return 0;
}

static int handle_instance_affinity(void *state, struct modrt_call *call)
{
        const char *uuid = proto_get_str(call->req, "instance_uuid", "");
        _cleanup_free_ pid_t *tids = NULL;
        _cleanup_close_ int dirfd = -1;
        const char *found_by = "";
        size_t n = 0, listed = 0;
        pid_t pid;
        int r, prio;

        r = qemu_process_find("/proc", LIBVIRT_QEMU_RUN, state, uuid, &pid, &dirfd, &found_by);
        if (r < 0) {
                explain_find(call, r, uuid);
                return r;
        }
        tids = calloc(MAX_TASKS, sizeof(*tids));
        if (!tids)
                return -ENOMEM;
        r = list_tasks(dirfd, tids, MAX_TASKS, &n);
        if (r < 0) {
                explain_find(call, r, uuid);
                return r;
        }
        errno = 0;
        prio = getpriority(PRIO_PROCESS, (id_t)pid);
        if (prio == -1 && errno != 0)
                prio = 0;
        pw_u64(call->reply, "pid", (uint64_t)pid);
        pw_str(call->reply, "found_by", found_by);
        pw_i64(call->reply, "priority", prio);
        pw_list_begin(call->reply, "threads");
        for (size_t i = 0; i < n && listed < PROCCTL_MAX_THREADS_REPLY; i++) {
                cpu_set_t mask;
                struct cpuset set = {};
                char text[PROCCTL_CPUS_MAX_LEN + 1];

                if (sched_getaffinity(tids[i], sizeof(mask), &mask) < 0)
                        continue;
                for (unsigned c = 0; c < CPU_SETSIZE; c++)
                        if (CPU_ISSET(c, &mask))
                                cpuset_add(&set, c);
                if (cpuset_format(&set, text, sizeof(text)) < 0)
                        continue;
                pw_obj_begin(call->reply, NULL);
                pw_u64(call->reply, "tid", (uint64_t)tids[i]);
                pw_str(call->reply, "cpus", text);
                pw_obj_end(call->reply);
                listed++;
        }
        pw_list_end(call->reply);
        pw_u64(call->reply, "total", n);
        pw_bool(call->reply, "truncated", listed < n);
        return 0;
}

static const struct modrt_entry entries[_PROCCTL_MAX] = {
        [PROCCTL_INSTANCE_PIN] = { &procctl_entrypoints[PROCCTL_INSTANCE_PIN], handle_instance_pin },
        [PROCCTL_INSTANCE_AFFINITY] = { &procctl_entrypoints[PROCCTL_INSTANCE_AFFINITY], handle_instance_affinity },
};

/* The evidence a process must carry to be taken for an instance's QEMU
 * (procfs.h: struct qemu_evidence): uid 0 or qemu_user's, and libvirt's
 * machine cgroup of the domain. */
static int procctl_init(struct modrt *rt, void **ret_state)
{
        struct qemu_evidence *ev = malloc(sizeof(*ev));
        const char *user = modrt_config(rt)->qemu_user;

        if (!ev)
                return -ENOMEM;
        if (qemu_evidence_init(user, ev) < 0)
                log_warn("qemu_user %s: no such user; only QEMU processes running as root are taken for instances'", user);
        *ret_state = ev;
        return 0;
}

static void procctl_done(void *state) { free(state); }

static const struct modrt_module process_control_module = {
        .protocol = &procctl_protocol,
        .entries = entries,
        .n_entries = ARRAY_SIZE(entries),
        .init = procctl_init,
        .done = procctl_done,
};

int main(int argc, char **argv) { return modrt_main(&process_control_module, argc, argv); }
