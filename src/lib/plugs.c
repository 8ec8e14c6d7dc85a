/* plugs.c - see plugs.h */
#include "plugs.h"

#include <linux/capability.h>

const struct plug_info plug_table[_PLUG_MAX] = {
        [PLUG_LIBVIRT] = { "libvirt", "nova-libvirt",
                           "instance lifecycle through the host's libvirt", 0 },
        [PLUG_OPENVSWITCH] = { "openvswitch", "nova-openvswitch",
                               "VIF ports on the integration bridge (OVSDB)", 0 },
        [PLUG_NETWORK_CONTROL] = { "network-control", "nova-network-control",
                                   "tap devices of instance ports",
                                   1ULL << CAP_NET_ADMIN },
        [PLUG_FIREWALL_CONTROL] = { "firewall-control", "nova-firewall-control",
                                    "security-group rules in nftables",
                                    1ULL << CAP_NET_ADMIN },
        [PLUG_HARDWARE_OBSERVE] = { "hardware-observe", "nova-hardware-observe",
                                    "CPU, NUMA, memory and PCI inventory", 0 },
        [PLUG_SYSTEM_OBSERVE] = { "system-observe", "nova-system-observe",
                                  "host load and instance processes", 0 },
        [PLUG_NETWORK_OBSERVE] = { "network-observe", "nova-network-observe",
                                   "per-VIF and per-link counters", 0 },
        [PLUG_PROCESS_CONTROL] = { "process-control", "nova-process-control",
                                   "CPU pinning and priority of instances",
                                   1ULL << CAP_SYS_NICE },
};

int plug_from_name(const char *name)
{
        for (int i = 0; i < _PLUG_MAX; i++)
                if (streq(plug_table[i].name, name))
                        return i;
        return -EINVAL;
}

int plug_fix_text(enum plug_id id, char *buf, size_t size)
{
        if ((unsigned)id >= _PLUG_MAX)
                return -EINVAL;
        return xsnprintf(buf, size, "sudo snap connect nova-hypervisor:%s", plug_table[id].name);
}

uint64_t plug_all_caps(void)
{
        uint64_t mask = 0;

        for (int i = 0; i < _PLUG_MAX; i++)
                mask |= plug_table[i].caps;
        return mask;
}

static const char *const cap_names[] = {
        [CAP_CHOWN] = "cap_chown", [CAP_DAC_OVERRIDE] = "cap_dac_override",
        [CAP_DAC_READ_SEARCH] = "cap_dac_read_search", [CAP_FOWNER] = "cap_fowner",
        [CAP_FSETID] = "cap_fsetid", [CAP_KILL] = "cap_kill", [CAP_SETGID] = "cap_setgid",
        [CAP_SETUID] = "cap_setuid", [CAP_SETPCAP] = "cap_setpcap",
        [CAP_LINUX_IMMUTABLE] = "cap_linux_immutable",
        [CAP_NET_BIND_SERVICE] = "cap_net_bind_service",
        [CAP_NET_BROADCAST] = "cap_net_broadcast", [CAP_NET_ADMIN] = "cap_net_admin",
        [CAP_NET_RAW] = "cap_net_raw", [CAP_IPC_LOCK] = "cap_ipc_lock",
        [CAP_IPC_OWNER] = "cap_ipc_owner", [CAP_SYS_MODULE] = "cap_sys_module",
        [CAP_SYS_RAWIO] = "cap_sys_rawio", [CAP_SYS_CHROOT] = "cap_sys_chroot",
        [CAP_SYS_PTRACE] = "cap_sys_ptrace", [CAP_SYS_PACCT] = "cap_sys_pacct",
        [CAP_SYS_ADMIN] = "cap_sys_admin", [CAP_SYS_BOOT] = "cap_sys_boot",
        [CAP_SYS_NICE] = "cap_sys_nice", [CAP_SYS_RESOURCE] = "cap_sys_resource",
        [CAP_SYS_TIME] = "cap_sys_time", [CAP_SYS_TTY_CONFIG] = "cap_sys_tty_config",
        [CAP_MKNOD] = "cap_mknod", [CAP_LEASE] = "cap_lease",
        [CAP_AUDIT_WRITE] = "cap_audit_write", [CAP_AUDIT_CONTROL] = "cap_audit_control",
        [CAP_SETFCAP] = "cap_setfcap", [CAP_MAC_OVERRIDE] = "cap_mac_override",
        [CAP_MAC_ADMIN] = "cap_mac_admin", [CAP_SYSLOG] = "cap_syslog",
        [CAP_WAKE_ALARM] = "cap_wake_alarm", [CAP_BLOCK_SUSPEND] = "cap_block_suspend",
        [CAP_AUDIT_READ] = "cap_audit_read",
};

int caps_mask_format(uint64_t mask, char *buf, size_t size)
{
        size_t used = 0;

        if (size == 0)
                return -ENAMETOOLONG;
        buf[0] = '\0';
        for (unsigned i = 0; i < 64; i++) {
                char tmp[32];
                const char *name;
                size_t n;

                if (!(mask & (1ULL << i)))
                        continue;
                name = i < ARRAY_SIZE(cap_names) && cap_names[i] ? cap_names[i] : NULL;
                if (!name) {
                        (void)snprintf(tmp, sizeof(tmp), "cap_%u", i);
                        name = tmp;
                }
                n = strlen(name) + (used ? 1 : 0);
                if (used + n + 1 > size)
                        return -ENAMETOOLONG;
                if (used)
                        buf[used++] = ',';
                memcpy(buf + used, name, strlen(name) + 1);
                used += strlen(name);
        }
        return 0;
}
