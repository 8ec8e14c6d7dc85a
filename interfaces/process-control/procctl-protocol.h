/* procctl-protocol.h - the entrypoints of the process-control module, as both
 * the module (dispatch) and the core (request validation) know them.
 *
 * Requests name an instance, never a process: the module finds the instance's
 * QEMU process itself (procfs.h: qemu_process_find, executable a QEMU system
 * emulator, command line carrying -uuid U and -name guest=nova-U, uids and
 * cgroup showing that libvirt started it for that domain) and refuses
 * everything else. A pid is not a member of any request.
 *
 * instance_pin {instance_uuid, cpus ("0-3,6": a non-empty cpu list),
 *               priority? ("-20".."19", the nice value)}: privileged
 *   (CAP_SYS_NICE). Sets the affinity of every thread of the process
 *   (sched_setaffinity per task) and, when given, the priority of every
 *   thread (setpriority). -> { pid, threads (threads changed), cpus
 *   (canonical list), priority (i64, present when set) }
 *   -ENOENT no QEMU process of that instance; -ENOTUNIQ two carry the mark and
 *   libvirt's evidence (procfs.h: struct qemu_evidence); -EPERM only processes
 *   with the mark but without that evidence (impostors, never touched);
 *   -EINVAL CPUs outside the host's online set.
 * instance_affinity {instance_uuid}: read-only.
 *   -> { pid, found_by, priority (i64), threads: [{ tid, cpus }], total, truncated } */
#ifndef NOVA_PROCCTL_PROTOCOL_H
#define NOVA_PROCCTL_PROTOCOL_H

#include "schema.h"

#define PROCCTL_CPUS_MAX_LEN 1024   /* bytes of a cpu list */
#define PROCCTL_MAX_THREADS_REPLY 256 /* threads listed by instance_affinity */

enum procctl_entrypoint_id {
        PROCCTL_INSTANCE_PIN,
        PROCCTL_INSTANCE_AFFINITY,
        _PROCCTL_MAX,
};

extern const struct proto_entrypoint procctl_entrypoints[_PROCCTL_MAX];
extern const struct module_protocol procctl_protocol;

/* Syntax checks of the request strings (also used by the core on API input). */
bool procctl_cpus_text_ok(const char *s);     /* a non-empty, valid cpu list */
bool procctl_priority_text_ok(const char *s); /* "-20".."19", no '+', no leading zeros */
/* The priority of a checked text. */
int procctl_priority_value(const char *s);

#endif
