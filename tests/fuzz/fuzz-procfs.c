/* fuzz-procfs.c - libFuzzer target for the procfs/sysfs text parsers the
 * observe and process modules use (src/lib/procfs.c). The first byte picks the
 * parser; the rest is the text. Every parser must stay within its input and,
 * on success, produce values within its contract; a cpu list must survive a
 * format/parse round trip unchanged. */
#include "procfs.h"

#define CHECK(x)                                                                              \
        do {                                                                                  \
                if (!(x)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                              \
                }                                                                             \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text;
        size_t len;

        if (size < 1)
                return 0;
        len = size - 1;
        /* An exact-size heap copy, so reads past the end are caught; NUL-terminated
         * only for the parsers whose contract is a C string. */
        text = malloc(len + 1);
        if (!text)
                return 0;
        memcpy(text, data + 1, len);
        text[len] = '\0';
        switch (data[0] % 9) {
        case 0: {
                struct cpuset set, again;
                static char buf[CPUSET_MAX_CPUS * 6];
                if (cpuset_parse(text, len, &set) == 0) {
                        CHECK(cpuset_format(&set, buf, sizeof(buf)) == 0);
                        CHECK(cpuset_parse(buf, strlen(buf), &again) == 0);
                        CHECK(memcmp(&set, &again, sizeof(set)) == 0);
                        CHECK(cpuset_count(&set) <= CPUSET_MAX_CPUS);
                }
                break;
        }
        case 1: {
                uint64_t v;
                (void)meminfo_get(text, len, "MemTotal", &v);
                (void)meminfo_get(text, len, "HugePages_Total", &v);
                break;
        }
        case 2: {
                char buf[64];
                if (cpuinfo_get(text, len, "model name", buf, sizeof(buf)) == 0)
                        CHECK(strlen(buf) < sizeof(buf));
                (void)cpu_flags_has(text, "vmx");
                break;
        }
        case 3: {
                struct psi psi;
                if (psi_parse(text, len, &psi) == 0)
                        CHECK(psi.has_full || psi.full_total == 0);
                break;
        }
        case 4: {
                struct loadavg la;
                (void)loadavg_parse(text, len, &la);
                break;
        }
        case 5: {
                struct proc_stat st;
                if (proc_stat_parse(text, len, &st) == 0)
                        CHECK(strlen(st.comm) < sizeof(st.comm));
                break;
        }
        case 6: {
                char uuid[37];
                if (qemu_cmdline_instance(text, len, uuid) == 0)
                        CHECK(strlen(uuid) == 36);
                (void)qemu_exe_is_emulator(text);
                break;
        }
        case 7: {
                uint32_t uids[4];
                (void)proc_status_uids(text, len, uids);
                (void)qemu_cgroup_is_instance(text, len, "5e1f0c1a-7d3b-4c2e-9a8f-0b1c2d3e4f50");
                break;
        }
        case 8: {
                /* a uevent datagram: not NUL-terminated (parsed from data + 1, len bytes) */
                struct uevent ev;
                if (uevent_parse((const char *)data + 1, len, &ev) == 0)
                        CHECK(strcmp(uevent_subsystem_name(ev.subsystem), "") != 0 &&
                              strcmp(uevent_action_name(ev.action), "") != 0);
                break;
        }
        }
        free(text);
        return 0;
}
