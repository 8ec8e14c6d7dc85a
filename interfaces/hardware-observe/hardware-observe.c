/* hardware-observe.c - nova-hardware-observe: the module that holds the
 * hardware-observe plug. It keeps no capability and only reads: CPU model,
 * flags and topology, NUMA nodes, memory and huge pages, PCI devices, from
 * /proc and /sys. Nothing it serves takes an argument. It listens to the
 * kernel's uevents (NETLINK_KOBJECT_UEVENT, which the plug allows) and tells
 * the core "inventory_changed" when a CPU, memory block, NUMA node or PCI
 * device comes, goes or changes, so that Placement hears of it at once. */
#include "hw-protocol.h"
#include "log.h"
#include "modrt.h"
#include "procfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>

#define SYS_CPU "/sys/devices/system/cpu"
#define SYS_NODE "/sys/devices/system/node"
#define SYS_PCI "/sys/bus/pci/devices"

/* A small sysfs/procfs file into buf, trailing newline removed. 0 or -errno. */
static int read_small(const char *path, char *buf, size_t size)
{
        size_t len;
        int r = read_at_bounded(AT_FDCWD, path, buf, size, &len);

        if (r < 0)
                return r;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
                buf[--len] = '\0';
        return 0;
}

static int read_u64(const char *path, uint64_t *ret)
{
        char buf[32];
        int r = read_small(path, buf, sizeof(buf));

        return r < 0 ? r : parse_u64(buf, 0, UINT64_MAX, ret);
}

/* ---- CPU ---- */

static int reply_cpu(struct proto_writer *w, char *err, size_t errlen)
{
        _cleanup_free_ char *cpuinfo = NULL;
        char model[256] = "", vendor[64] = "", online_text[1024];
        static char flags[PROTO_MAX_STR]; /* the flag list is long; one call at a time */
        struct cpuset online, packages = {}, cores_seen = {};
        unsigned cores = 0;
        size_t len;
        int r;

        r = read_file_bounded("/proc/cpuinfo", 4 * 1024 * 1024, &cpuinfo, &len);
        if (r < 0) {
                (void)snprintf(err, errlen, "cannot read /proc/cpuinfo: %s", strerror(-r));
                return r;
        }
        /* x86 names "model name"/"vendor_id"; other architectures differ: leave them empty. */
        if (cpuinfo_get(cpuinfo, len, "model name", model, sizeof(model)) < 0)
                (void)cpuinfo_get(cpuinfo, len, "Processor", model, sizeof(model));
        (void)cpuinfo_get(cpuinfo, len, "vendor_id", vendor, sizeof(vendor));
        if (cpuinfo_get(cpuinfo, len, "flags", flags, sizeof(flags)) < 0 &&
            cpuinfo_get(cpuinfo, len, "Features", flags, sizeof(flags)) < 0)
                flags[0] = '\0';

        r = read_small(SYS_CPU "/online", online_text, sizeof(online_text));
        if (r == 0)
                r = cpuset_parse(online_text, strlen(online_text), &online);
        if (r < 0) {
                (void)snprintf(err, errlen, "cannot read %s/online: %s", SYS_CPU, strerror(-r));
                return r;
        }
        /* Sockets: distinct package ids. Cores: distinct sibling sets, counted by
         * their first CPU (core_id repeats across packages). */
        for (unsigned c = 0; c < CPUSET_MAX_CPUS; c++) {
                char path[128], text[1024];
                uint64_t pkg;
                struct cpuset siblings;
                unsigned first = c;

                if (!cpuset_has(&online, c))
                        continue;
                (void)snprintf(path, sizeof(path), SYS_CPU "/cpu%u/topology/physical_package_id", c);
                if (read_u64(path, &pkg) == 0 && pkg < CPUSET_MAX_CPUS)
                        cpuset_add(&packages, (unsigned)pkg);
                (void)snprintf(path, sizeof(path), SYS_CPU "/cpu%u/topology/thread_siblings_list", c);
                if (read_small(path, text, sizeof(text)) == 0 && cpuset_parse(text, strlen(text), &siblings) == 0)
                        for (unsigned s = 0; s < c; s++)
                                if (cpuset_has(&siblings, s)) {
                                        first = s;
                                        break;
                                }
                if (!cpuset_has(&cores_seen, first)) {
                        cpuset_add(&cores_seen, first);
                        cores++;
                }
        }

        pw_obj_begin(w, "cpu");
        pw_str(w, "model", model);
        pw_str(w, "vendor", vendor);
        pw_str(w, "flags", flags);
        pw_str(w, "virtualization", cpu_flags_has(flags, "vmx") ? "vmx" : cpu_flags_has(flags, "svm") ? "svm" : "");
        pw_u64(w, "sockets", cpuset_count(&packages) ? cpuset_count(&packages) : 1);
        pw_u64(w, "cores", cores);
        pw_u64(w, "threads", cpuset_count(&online));
        pw_str(w, "online", online_text);
        pw_obj_end(w);
        return 0;
}

/* ---- memory, NUMA ---- */

static int reply_memory(struct proto_writer *w, char *err, size_t errlen)
{
        char text[8192];
        uint64_t total = 0, hp_total = 0, hp_free = 0, hp_size = 0;
        size_t len;
        int r;

        r = read_at_bounded(AT_FDCWD, "/proc/meminfo", text, sizeof(text), &len);
        if (r == 0)
                r = meminfo_get(text, len, "MemTotal", &total);
        if (r < 0) {
                (void)snprintf(err, errlen, "cannot read MemTotal from /proc/meminfo: %s", strerror(-r));
                return r;
        }
        (void)meminfo_get(text, len, "HugePages_Total", &hp_total);
        (void)meminfo_get(text, len, "HugePages_Free", &hp_free);
        (void)meminfo_get(text, len, "Hugepagesize", &hp_size);
        pw_obj_begin(w, "memory");
        pw_u64(w, "total_kb", total);
        pw_u64(w, "hugepages_total", hp_total);
        pw_u64(w, "hugepages_free", hp_free);
        pw_u64(w, "hugepage_size_kb", hp_size);
        pw_obj_end(w);
        return 0;
}

static void reply_numa(struct proto_writer *w)
{
        char online_text[1024];
        struct cpuset nodes = {};
        unsigned listed = 0;

        /* A kernel without NUMA support has no node directory: an empty list. */
        if (read_small(SYS_NODE "/online", online_text, sizeof(online_text)) < 0 ||
            cpuset_parse(online_text, strlen(online_text), &nodes) < 0)
                memset(&nodes, 0, sizeof(nodes));
        pw_list_begin(w, "numa");
        for (unsigned n = 0; n < CPUSET_MAX_CPUS && listed < HW_MAX_NUMA_REPLY; n++) {
                char path[128], cpus[1024], text[8192];
                uint64_t total = 0, avail = 0;
                size_t len;

                if (!cpuset_has(&nodes, n))
                        continue;
                (void)snprintf(path, sizeof(path), SYS_NODE "/node%u/cpulist", n);
                if (read_small(path, cpus, sizeof(cpus)) < 0)
                        cpus[0] = '\0';
                (void)snprintf(path, sizeof(path), SYS_NODE "/node%u/meminfo", n);
                if (read_at_bounded(AT_FDCWD, path, text, sizeof(text), &len) == 0) {
                        (void)meminfo_get(text, len, "MemTotal", &total);
                        (void)meminfo_get(text, len, "MemFree", &avail);
                }
                pw_obj_begin(w, NULL);
                pw_u64(w, "node", n);
                pw_str(w, "cpus", cpus);
                pw_u64(w, "memory_total_kb", total);
                pw_u64(w, "memory_free_kb", avail);
                pw_obj_end(w);
                listed++;
        }
        pw_list_end(w);
}

/* ---- PCI ---- */

/* "dddd:bb:dd.f" in lowercase hex. */
static bool pci_address_is_valid(const char *s)
{
        static const char shape[] = "xxxx:xx:xx.x";

        if (strlen(s) != sizeof(shape) - 1)
                return false;
        for (size_t i = 0; shape[i]; i++)
                if (shape[i] == 'x' ? !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')) : s[i] != shape[i])
                        return false;
        return true;
}

/* "0x" + 4..6 lowercase hex digits, as sysfs writes ids and classes. */
static bool sysfs_hex_is_valid(const char *s)
{
        size_t n = strlen(s);

        if (n < 6 || n > 8 || s[0] != '0' || s[1] != 'x')
                return false;
        for (size_t i = 2; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void reply_pci(struct proto_writer *w)
{
        _cleanup_(closedirp) DIR *d = opendir(SYS_PCI);
        char names[1024][16];
        char *sorted[1024];
        size_t n = 0, listed = 0;
        struct dirent *de;

        while (d && (de = readdir(d)) && n < ARRAY_SIZE(names))
                if (pci_address_is_valid(de->d_name)) {
                        memcpy(names[n], de->d_name, strlen(de->d_name) + 1);
                        sorted[n] = names[n];
                        n++;
                }
        qsort(sorted, n, sizeof(sorted[0]), compare_names);
        pw_list_begin(w, "pci");
        for (size_t i = 0; i < n && listed < HW_MAX_PCI_REPLY; i++) {
                static const char *const attrs[] = { "class", "vendor", "device" };
                char path[128], val[3][32], numa[16];
                uint64_t total_vfs = 0, num_vfs = 0;
                bool sriov;
                int64_t node = -1;

                for (size_t a = 0; a < ARRAY_SIZE(attrs); a++) {
                        (void)snprintf(path, sizeof(path), SYS_PCI "/%s/%s", sorted[i], attrs[a]);
                        if (read_small(path, val[a], sizeof(val[a])) < 0 || !sysfs_hex_is_valid(val[a]))
                                (void)strscpy(val[a], "", sizeof(val[a]));
                }
                (void)snprintf(path, sizeof(path), SYS_PCI "/%s/numa_node", sorted[i]);
                if (read_small(path, numa, sizeof(numa)) == 0) {
                        uint64_t v;
                        if (parse_u64(numa, 0, 65535, &v) == 0)
                                node = (int64_t)v;
                }
                (void)snprintf(path, sizeof(path), SYS_PCI "/%s/sriov_totalvfs", sorted[i]);
                sriov = read_u64(path, &total_vfs) == 0 && total_vfs > 0;
                (void)snprintf(path, sizeof(path), SYS_PCI "/%s/sriov_numvfs", sorted[i]);
                if (sriov)
                        (void)read_u64(path, &num_vfs);
                pw_obj_begin(w, NULL);
                pw_str(w, "address", sorted[i]);
                pw_str(w, "class", val[0]);
                pw_str(w, "vendor", val[1]);
                pw_str(w, "device", val[2]);
                pw_i64(w, "numa_node", node);
                pw_bool(w, "sriov", sriov);
                pw_u64(w, "sriov_totalvfs", total_vfs);
                pw_u64(w, "sriov_numvfs", num_vfs);
                pw_obj_end(w);
                listed++;
        }
        pw_list_end(w);
        pw_u64(w, "pci_total", n);
        pw_bool(w, "pci_truncated", listed < n);
}

static int handle_host_inventory(void *state, struct modrt_call *call)
{
        int r;

        (void)state;
        r = reply_cpu(call->reply, call->err, sizeof(call->err));
        if (r < 0)
                return r;
        r = reply_memory(call->reply, call->err, sizeof(call->err));
        if (r < 0)
                return r;
        reply_numa(call->reply);
        reply_pci(call->reply);
        return 0;
}

static const struct modrt_entry entries[_HW_MAX] = {
        [HW_HOST_INVENTORY] = { &hw_entrypoints[HW_HOST_INVENTORY], handle_host_inventory },
};

/* ---- hardware changes ---- */

struct hw {
        struct modrt *rt;
        int uevent_fd;                  /* NETLINK_KOBJECT_UEVENT, the kernel's group; -1 when unavailable */
        struct proto_writer *ev;        /* event builder */
};

static int uevent_open(void)
{
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 /* the kernel's, not udev's */ };
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);

        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;
                safe_close(fd);
                return r;
        }
        return fd;
}

/* Read every queued uevent; true when one of them may change the inventory
 * (*ret set to the first such). Only the kernel's own messages count
 * (sender port 0): another process of this network namespace may send to
 * the group too. */
static bool uevent_drain(struct hw *hw, struct uevent *ret)
{
        char buf[8192];
        bool changed = false;

        for (;;) {
                struct sockaddr_nl from = { 0 };
                socklen_t fromlen = sizeof(from);
                struct uevent ev;
                ssize_t n = recvfrom(hw->uevent_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
                                     (struct sockaddr *)&from, &fromlen);

                if (n < 0) {
                        if (errno == ENOBUFS) /* overrun: something happened, re-read everything */
                                return *ret = (struct uevent){ UEVENT_CHANGE, UEVENT_OTHER }, true;
                        return changed; /* EAGAIN: drained */
                }
                if ((size_t)n > sizeof(buf) || from.nl_pid != 0 || uevent_parse(buf, (size_t)n, &ev) < 0 ||
                    !uevent_changes_inventory(&ev))
                        continue;
                if (!changed)
                        *ret = ev;
                changed = true;
        }
}

static void uevents_serve(struct hw *hw)
{
        struct uevent ev;

        if (!uevent_drain(hw, &ev) || modrt_fd(hw->rt) < 0)
                return;
        log_info("hardware changed (%s %s): telling the core", uevent_subsystem_name(ev.subsystem),
                 uevent_action_name(ev.action));
        pw_init(hw->ev, PROTO_EVENT, 0, 0, "inventory_changed");
        pw_str(hw->ev, "subsystem", uevent_subsystem_name(ev.subsystem));
        pw_str(hw->ev, "action", uevent_action_name(ev.action));
        (void)modrt_send_event(hw->rt, hw->ev);
}

/* The module's loop: the core's requests and the kernel's uevents. */
static int hw_run(struct modrt *rt, void *state)
{
        struct hw *hw = state;

        while (!modrt_should_exit(rt)) {
                struct pollfd p[2] = { { modrt_fd(rt), POLLIN, 0 }, { hw->uevent_fd, POLLIN, 0 } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (p[1].revents & POLLIN)
                        uevents_serve(hw);
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        int r = modrt_dispatch(rt);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* Waiting for the core (inside the snap): keep the queue short; the core reads the inventory when it comes. */
static int hw_idle_fd(void *state) { return ((struct hw *)state)->uevent_fd; }
static void hw_on_idle_fd(void *state)
{
        struct uevent ev;
        (void)uevent_drain(state, &ev);
}

static int hw_init(struct modrt *rt, void **ret_state)
{
        struct hw *hw = calloc(1, sizeof(*hw));

        if (!hw || !(hw->ev = malloc(sizeof(*hw->ev)))) {
                free(hw);
                return -ENOMEM;
        }
        hw->rt = rt;
        hw->uevent_fd = uevent_open();
        if (hw->uevent_fd < 0) {
                /* the inventory is still served; Placement then learns of changes at its refresh */
                log_warn("cannot listen to kernel uevents (%s): hardware changes are seen at the next refresh only",
                         strerror(-hw->uevent_fd));
                hw->uevent_fd = -1;
        }
        *ret_state = hw;
        return 0;
}

static void hw_done(void *state)
{
        struct hw *hw = state;

        if (!hw)
                return;
        safe_close(hw->uevent_fd);
        free(hw->ev);
        free(hw);
}

static const struct modrt_module hardware_observe_module = {
        .protocol = &hw_protocol,
        .entries = entries,
        .n_entries = ARRAY_SIZE(entries),
        .init = hw_init,
        .done = hw_done,
        .run = hw_run,
        .idle_fd = hw_idle_fd,
        .on_idle_fd = hw_on_idle_fd,
};

int main(int argc, char **argv) { return modrt_main(&hardware_observe_module, argc, argv); }
