/* hw-protocol.h - the entrypoint of the hardware-observe module, as both the
 * module (dispatch) and the core (request validation) know it.
 *
 * host_inventory {}: read-only, no identifiers.
 * Reply: {
 *   cpu: { model, vendor, flags (the CPU flag list), virtualization ("vmx",
 *          "svm" or "" when the CPU offers none), sockets, cores (physical
 *          cores, all sockets), threads (online logical CPUs), online (cpu list
 *          text, e.g. "0-3") },
 *   memory: { total_kb, hugepages_total, hugepages_free, hugepage_size_kb },
 *   numa: [ { node, cpus (cpu list text), memory_total_kb, memory_free_kb } ],
 *   pci: [ { address ("0000:00:1f.2"), class ("0x010601"), vendor ("0x8086"),
 *            device ("0x2922"), numa_node (i64, -1 when unknown), sriov
 *            (bool: the device has SR-IOV), sriov_totalvfs, sriov_numvfs } ],
 *   pci_total, pci_truncated (bool: more devices than one frame holds) } */
#ifndef NOVA_HW_PROTOCOL_H
#define NOVA_HW_PROTOCOL_H

#include "schema.h"

#define HW_MAX_PCI_REPLY 160 /* PCI devices listed in one reply */
#define HW_MAX_NUMA_REPLY 64 /* NUMA nodes listed in one reply */

enum hw_entrypoint_id {
        HW_HOST_INVENTORY,
        _HW_MAX,
};

extern const struct proto_entrypoint hw_entrypoints[_HW_MAX];
extern const struct module_protocol hw_protocol;

#endif
