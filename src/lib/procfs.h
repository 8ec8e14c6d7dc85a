/* procfs.h - bounded parsers for the procfs/sysfs text the observe and
 * process modules read (cpu lists, meminfo, cpuinfo, PSI, /proc/<pid>/stat,
 * QEMU command lines), and finding the QEMU process of one of our instances.
 * The parsers are pure (text in, values out), never allocate, and are fuzzed
 * (tests/fuzz/fuzz-procfs.c). */
#ifndef NOVA_PROCFS_H
#define NOVA_PROCFS_H

#include "util.h"

#define CPUSET_MAX_CPUS 4096 /* CPUs a cpu list may name */

/* A set of CPU numbers, 0..CPUSET_MAX_CPUS-1. */
struct cpuset {
        uint64_t bits[CPUSET_MAX_CPUS / 64];
};

/* Parse a kernel cpu list ("0-3,8,10-11", "" = empty; a trailing newline is
 * allowed) into *ret. Ranges must ascend (a <= b), numbers are decimal without
 * sign or leading '+'. 0, -EINVAL (syntax) or -ERANGE (a CPU >= CPUSET_MAX_CPUS).
 * *ret untouched on failure. */
int cpuset_parse(const char *s, size_t len, struct cpuset *ret) _warn_unused_result_;
/* Canonical cpu list text ("0-3,8") into buf; "" for the empty set. 0 or -ENAMETOOLONG. */
int cpuset_format(const struct cpuset *set, char *buf, size_t size);
unsigned cpuset_count(const struct cpuset *set);
bool cpuset_has(const struct cpuset *set, unsigned cpu);
void cpuset_add(struct cpuset *set, unsigned cpu);
/* True when every CPU of a is in b. */
bool cpuset_subset(const struct cpuset *a, const struct cpuset *b);

/* Value of "Key:   1234 kB" in /proc/meminfo text (or a node's meminfo,
 * "Node 0 Key: 1234 kB": the "Node N " prefix is skipped). The number as
 * written (kB for sizes, a count for HugePages_*). 0 or -ENOENT / -EINVAL. */
int meminfo_get(const char *text, size_t len, const char *key, uint64_t *ret);

/* First value of "key\t: value" in /proc/cpuinfo text, copied into buf
 * (trimmed). 0, -ENOENT, or -ENAMETOOLONG when it does not fit. */
int cpuinfo_get(const char *text, size_t len, const char *key, char *buf, size_t size);
/* True when the space-separated flag list contains flag as a whole word. */
bool cpu_flags_has(const char *flags, const char *flag);

/* /proc/pressure/<resource>: "some avg10=1.23 avg60=... total=N" and "full ...".
 * Averages in hundredths of a percent (1.23 -> 123), total in microseconds.
 * has_full false when the file has no "full" line (cpu on older kernels). */
struct psi {
        uint64_t some_avg10, some_avg60, some_avg300, some_total;
        bool has_full;
        uint64_t full_avg10, full_avg60, full_avg300, full_total;
};
int psi_parse(const char *text, size_t len, struct psi *ret) _warn_unused_result_;

/* /proc/loadavg: the three averages in thousandths (0.52 -> 520), runnable and total tasks. */
struct loadavg {
        uint64_t load1, load5, load15;
        uint64_t running, tasks;
};
int loadavg_parse(const char *text, size_t len, struct loadavg *ret) _warn_unused_result_;

/* /proc/<pid>/stat: clock ticks in user and system mode, threads, start time
 * (ticks after boot), resident pages. The comm field may hold spaces and ')'. */
struct proc_stat {
        char comm[16];  /* the task name (first 15 bytes of the executable's name unless changed) */
        char state;
        uint64_t utime, stime, num_threads, starttime, rss_pages;
};
int proc_stat_parse(const char *text, size_t len, struct proc_stat *ret) _warn_unused_result_;

/* The ownership mark of an instance's QEMU process, as libvirt's QEMU driver
 * starts it from our domain definition: argv (NUL-separated /proc/<pid>/cmdline
 * text) holds "-uuid" followed by the instance UUID, and "-name" followed by
 * "guest=nova-<uuid>" (optionally ",..."), or the legacy "nova-<uuid>". On
 * success the UUID (canonical lowercase) goes into ret_uuid. 0 or -ENOENT. */
int qemu_cmdline_instance(const char *cmdline, size_t len, char ret_uuid[37]) _warn_unused_result_;
/* True when exe (the target of /proc/<pid>/exe) is a QEMU system emulator:
 * its basename starts with "qemu-system-" or is "qemu-kvm" (a " (deleted)"
 * suffix after a package upgrade is accepted). */
bool qemu_exe_is_emulator(const char *exe);

/* Evidence that the host's libvirt started a process for one of our
 * domains, which the process's owner cannot forge unless privileged:
 *  - every uid of the process (real, effective, saved, filesystem: the
 *    Uid: line of /proc/<pid>/status) is 0 or the uid libvirt runs QEMU as
 *    (config qemu_user); a user changes its own uids only within what it
 *    holds already, and never to another user's;
 *  - /proc/<pid>/cgroup places it in libvirt's machine cgroup of the domain
 *    nova-<uuid>, anchored at the hierarchy's root (qemu_cgroup_is_instance):
 *    those directories belong to root (made by systemd-machined or
 *    libvirtd), and moving a process into a cgroup needs write access to
 *    its cgroup.procs, so another user cannot put a process there; a
 *    delegated subtree of a user (/user.slice/...) does not match. */
struct qemu_evidence {
        uint32_t uids[2];  /* accepted uids: 0 and qemu_user's */
        unsigned n_uids;
};
/* uids for qemu_user ("name" or "+<uid>"): 0 and that user's uid. 0, or
 * -ENOENT when the name is unknown (then *ret accepts uid 0 only). */
int qemu_evidence_init(const char *qemu_user, struct qemu_evidence *ret);
/* The four uids of a /proc/<pid>/status text ("Uid:\t0\t0\t0\t0"). 0 or -EINVAL. */
int proc_status_uids(const char *text, size_t len, uint32_t ret[4]) _warn_unused_result_;
/* True when a line of a /proc/<pid>/cgroup text has the path of libvirt's
 * machine cgroup for domain nova-<instance_uuid>, or a cgroup below it:
 * systemd-machined's "/machine.slice/machine-<escaped name>.scope" ('-' is
 * written \x2d), or libvirt's own layout without systemd
 * "/machine/<name>.libvirt-qemu"; the machine name is libvirt's
 * "qemu-<id>-nova-<uuid>" (the embedded driver's "qemu-embed-<8 hex>-<id>-..."
 * too, when not cut at 64 characters). */
bool qemu_cgroup_is_instance(const char *text, size_t len, const char *instance_uuid);

/* The QEMU process of instance_uuid: a process whose executable is a QEMU
 * system emulator (its /proc/<pid>/exe when we may read it; a process of
 * another user, e.g. libvirt-qemu, or with more capabilities than ours hides
 * it, and then its task name from /proc/<pid>/stat: "qemu-system-*" or
 * "qemu-kvm") and whose command line carries the mark for exactly this
 * instance, and that carries the evidence of ev (libvirt started it for this
 * domain); a process with the mark but without the evidence is ignored,
 * so impostors can neither be touched nor block the real process with
 * -ENOTUNIQ. proc_root is "/proc" (tests may not change it: it is a parameter
 * so the fuzzers need no /proc). The libvirt QEMU driver's pidfile
 * (<libvirt_run>/nova-<uuid>.pid, e.g. /run/libvirt/qemu) is tried first when
 * libvirt_run is not NULL; its pid is accepted only when it carries the
 * mark too. ret_found_by: "libvirt-pidfile" or "cmdline". On success the
 * caller owns *ret_dirfd, an O_DIRECTORY fd of /proc/<pid> that stays bound to
 * that process (reads through it fail with ESRCH once it is gone, even when
 * the pid is reused). 0, -ENOENT (no such process), -EPERM (only processes
 * with the mark but without the evidence) or -errno. */
int qemu_process_find(const char *proc_root, const char *libvirt_run, const struct qemu_evidence *ev,
                      const char *instance_uuid, pid_t *ret_pid, int *ret_dirfd,
                      const char **ret_found_by) _warn_unused_result_;

/* Every process of ours: calls cb for each QEMU process with a mark and the
 * evidence of ev (pid, instance UUID, an O_DIRECTORY fd of /proc/<pid> valid
 * during the call). Stops early when cb returns < 0 and returns that. */
int qemu_process_foreach(const char *proc_root, const struct qemu_evidence *ev,
                         int (*cb)(pid_t pid, const char *instance_uuid, int dirfd, void *userdata), void *userdata);

/* Every QEMU process with a mark, trusted or not: cb gets trusted true when
 * it carries the evidence of ev too (as qemu_process_foreach() calls it),
 * false for a process that must not be taken for the instance's QEMU (it
 * may only be named, e.g. to say why an instance has none). */
int qemu_process_foreach_marked(const char *proc_root, const struct qemu_evidence *ev,
                                int (*cb)(pid_t pid, const char *instance_uuid, int dirfd, bool trusted, void *userdata),
                                void *userdata);

/* Read a file relative to dirfd (at most max-1 bytes, NUL-terminated). 0 and
 * *ret_len or -errno (-EFBIG when larger). */
int read_at_bounded(int dirfd, const char *path, char *buf, size_t max, size_t *ret_len) _warn_unused_result_;

/* A kernel uevent as NETLINK_KOBJECT_UEVENT (group 1, the kernel's own)
 * delivers it: "ACTION@DEVPATH\0ACTION=...\0DEVPATH=...\0SUBSYSTEM=...\0...".
 * Only what hardware-observe needs is kept; the kernel's strings are never
 * passed on (the subsystem becomes an enum, the action one of ours). */
enum uevent_subsystem { UEVENT_OTHER, UEVENT_CPU, UEVENT_MEMORY, UEVENT_NODE, UEVENT_PCI };
enum uevent_action { UEVENT_ACTION_OTHER, UEVENT_ADD, UEVENT_REMOVE, UEVENT_CHANGE, UEVENT_ONLINE, UEVENT_OFFLINE };
struct uevent {
        enum uevent_action action;
        enum uevent_subsystem subsystem;
};
/* Parse one datagram of len bytes (not NUL-terminated). 0, or -EBADMSG (no
 * "ACTION@DEVPATH" header, a field without '=', an empty or over-long
 * ACTION/SUBSYSTEM, a header that disagrees with ACTION=, no SUBSYSTEM).
 * *ret untouched on failure. */
int uevent_parse(const char *buf, size_t len, struct uevent *ret) _warn_unused_result_;
/* True when the event may change host_inventory's answer (a CPU, memory
 * block, NUMA node or PCI device added, removed, brought on- or offline, or
 * a change event: e.g. SR-IOV VFs, or `udevadm trigger`). */
bool uevent_changes_inventory(const struct uevent *ev);
/* "cpu", "memory", "node", "pci", "other"; "add", "remove", ... "other". */
const char *uevent_subsystem_name(enum uevent_subsystem s);
const char *uevent_action_name(enum uevent_action a);

#endif
