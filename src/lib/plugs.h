/* plugs.h - the snap plugs this service requests, one module per plug.
 * This table is the single source of truth for plug names, module programs,
 * the capabilities each module keeps and the fix text shown to operators. */
#ifndef NOVA_PLUGS_H
#define NOVA_PLUGS_H

#include "util.h"

enum plug_id {
        PLUG_LIBVIRT,
        PLUG_OPENVSWITCH,
        PLUG_NETWORK_CONTROL,
        PLUG_FIREWALL_CONTROL,
        PLUG_HARDWARE_OBSERVE,
        PLUG_SYSTEM_OBSERVE,
        PLUG_NETWORK_OBSERVE,
        PLUG_PROCESS_CONTROL,
        _PLUG_MAX,
};

struct plug_info {
        const char *name;      /* snap plug name, e.g. "network-control" */
        const char *program;   /* module program, e.g. "nova-network-control" */
        const char *summary;   /* what the module does with the plug */
        uint64_t caps;         /* capability mask the module keeps (1ULL << CAP_x) */
};

extern const struct plug_info plug_table[_PLUG_MAX];

/* Plug id for a plug name, or -EINVAL. */
int plug_from_name(const char *name);

/* "sudo snap connect nova-hypervisor:<plug>" into buf. */
int plug_fix_text(enum plug_id id, char *buf, size_t size);

/* Union of every module's capability mask (what the spawner must keep). */
uint64_t plug_all_caps(void);

/* Comma-separated capability names for a mask ("cap_net_admin"), into buf. */
int caps_mask_format(uint64_t mask, char *buf, size_t size);

#endif
