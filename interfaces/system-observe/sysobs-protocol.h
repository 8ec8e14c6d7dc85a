/* sysobs-protocol.h - the entrypoints of the system-observe module, as both
 * the module (dispatch) and the core (request validation) know them. Both are
 * read-only and take nothing.
 *
 * host_load {} -> { load1, load5, load15 (thousandths: 0.52 -> 520), running,
 *   tasks, memory: { total_kb, available_kb, free_kb },
 *   psi: { cpu: PSI, memory: PSI, io: PSI } }
 *   PSI = { available (bool: the kernel reports pressure), some_avg10,
 *           some_avg60, some_avg300 (hundredths of a percent), some_total_us,
 *           has_full, full_avg10, full_avg60, full_avg300, full_total_us }
 * instance_procs {} -> { procs: [PROC...], total, truncated, unverified: [{instance_uuid, pid}...] }
 *   PROC = { instance_uuid, pid, found_by ("libvirt-pidfile" | "cmdline"),
 *            threads, cpu_time_ms (user + system), rss_kb }
 *   Only QEMU processes carrying our mark (-uuid U, -name guest=nova-U) and
 *   libvirt's evidence (procfs.h: uid 0 or qemu_user, the domain's machine
 *   cgroup). unverified (at most 16): processes with the mark but without the
 *   evidence, never taken for an instance's QEMU, named only so that the core
 *   can say why an instance shows none. */
#ifndef NOVA_SYSOBS_PROTOCOL_H
#define NOVA_SYSOBS_PROTOCOL_H

#include "schema.h"

#define SYSOBS_MAX_PROCS_REPLY 200 /* processes listed in one reply */

enum sysobs_entrypoint_id {
        SYSOBS_HOST_LOAD,
        SYSOBS_INSTANCE_PROCS,
        _SYSOBS_MAX,
};

extern const struct proto_entrypoint sysobs_entrypoints[_SYSOBS_MAX];
extern const struct module_protocol sysobs_protocol;

#endif
