/* test-snap-conformance.c - confinement conformance: every module, run by a
 * real core on a real workload (a private Open vSwitch, libvirt's
 * test:///default, an instance booted with a filtered port, host and stats
 * queries), is traced with strace (following forks, one file per process).
 * Every file it opens, unix socket it connects or binds, socket family and
 * netlink protocol it creates, program it executes, and every capability it
 * keeps (CapEff while serving) is checked against its own plug's policy plus
 * snapd's default template (data/snapd-policy.json, derived from snapd's
 * interface sources). Sandbox paths are mapped to the snap's first: the OVS
 * run dir to /run/openvswitch, run_dir to $SNAP_DATA/run, state_dir to
 * $SNAP_COMMON/state, the config to $SNAP_DATA, the programs to $SNAP/bin.
 *
 * No AppArmor or seccomp is loaded here (no snapd): this checks what the code
 * does against what the policy would allow. A module that steps outside its
 * plug fails with the access and the interface that would grant it.
 *
 * Sanitizer builds (make check SAN=1): the ASan/UBSan runtime reads
 * /proc/self/environ (its options) while it initialises, before main. Such an
 * access is set apart only when the program's own ELF file names a sanitizer
 * runtime (DT_NEEDED libasan.so.N / libubsan.so.N) and strace -k's stack of the
 * syscall shows the runtime made it from its init: every frame from the
 * syscall up to the runtime's init entry lies in that runtime library. The
 * same access made by our code (any frame of ours or libc's below the init
 * entry, or no init entry at all) is a violation as in a plain build. A build
 * with the runtime linked statically is not recognised: its accesses are
 * checked as ours. */
#include "harness.h"

#include "apiclient.h"
#include "denial.h"
#include "plugs.h"
#include "snapd-policy.h"

#include <check.h>
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <linux/netlink.h>

/* The core's module and port timeouts while every module runs under strace: 10 s in the plain build.
 * Under AddressSanitizer + UBSan the traced modules are several times slower again (tap_create took
 * over 10 s at load 17 under make check SAN=1), so there they are 50 s, the factor make SAN=1 gives
 * Check's timeouts. */
#if defined(__SANITIZE_ADDRESS__)
#define CALL_TIMEOUT_MS 50000
#else
#define CALL_TIMEOUT_MS 10000
#endif
#define SNAP_DIR "/snap/nova-hypervisor/x1"
#define SNAP_DATA "/var/snap/nova-hypervisor/x1"
#define SNAP_COMMON "/var/snap/nova-hypervisor/common"

/* The sanitizer runtime libraries a program needs (DT_NEEDED names, e.g. "libasan.so.8"). */
struct san_runtimes {
        char name[4][64];
        size_t n;
};

static struct core core;
static struct ovs_fixture ovs;
static char trace_dir[PATH_MAX], wrap_dir[PATH_MAX], bin_real[PATH_MAX];
static struct san_runtimes module_runtimes[_PLUG_MAX];

struct mapping {
        char from[PATH_MAX];
        char to[PATH_MAX];
};
static struct mapping maps[8];
static size_t n_maps;

static void add_map(const char *from, const char *to)
{
        ck_assert_uint_lt(n_maps, ARRAY_SIZE(maps));
        ck_assert_ptr_nonnull(realpath(from, maps[n_maps].from) ? maps[n_maps].from : NULL);
        ck_assert_int_eq(strscpy(maps[n_maps].to, to, sizeof(maps[0].to)), 0);
        n_maps++;
}

/* The snap's path of a sandbox path (longest matching prefix), into buf. */
static const char *snap_path(const char *path, char *buf, size_t size)
{
        size_t best = 0, bl = 0;

        for (size_t i = 0; i < n_maps; i++) {
                size_t n = strlen(maps[i].from);
                if (strncmp(path, maps[i].from, n) == 0 && (path[n] == '/' || path[n] == '\0') && n > bl) {
                        best = i + 1;
                        bl = n;
                }
        }
        if (!best) {
                (void)strscpy(buf, path, size);
                return buf;
        }
        (void)snprintf(buf, size, "%s%s", maps[best - 1].to, path + bl);
        return buf;
}

struct report {
        char text[16384];
        char runtime_text[4096];   /* accesses set apart as the sanitizer runtime's */
        unsigned violations, checked, by_runtime;
};

/* ---- sanitizer runtimes: named by the program's ELF file, seen in strace -k stacks ---- */

static bool is_sanitizer_runtime(const char *soname)
{
        static const char *const prefixes[] = { "libasan.so.", "libubsan.so." };

        for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
                if (strncmp(soname, prefixes[i], strlen(prefixes[i])) == 0)
                        return true;
        return false;
}

static int pread_exact(int fd, void *buf, size_t size, uint64_t offset)
{
        ssize_t n = pread(fd, buf, size, (off_t)offset);
        if (n < 0)
                return -errno;
        return (size_t)n == size ? 0 : -EBADMSG;
}

/* Read the dynamic section of the ELF64 file at path and list the sanitizer
 * runtimes among its DT_NEEDED entries into *ret (none for a plain build).
 * 0, -ENOEXEC when it is not a little-endian ELF64 file, -EBADMSG when a
 * table lies outside the file, or -errno. */
static int sanitizer_runtimes_of(const char *path, struct san_runtimes *ret)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ Elf64_Shdr *shdrs = NULL;
        _cleanup_free_ Elf64_Dyn *dyn = NULL;
        _cleanup_free_ char *strtab = NULL;
        struct san_runtimes found = { .n = 0 };
        Elf64_Ehdr eh;
        struct stat st;
        size_t dyn_index = 0, n_dyn;
        int r;

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        r = pread_exact(fd, &eh, sizeof(eh), 0);
        if (r < 0)
                return r == -EBADMSG ? -ENOEXEC : r;
        if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
            eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_shentsize != sizeof(Elf64_Shdr))
                return -ENOEXEC;
        if (eh.e_shnum == 0 || eh.e_shnum > 4096 || eh.e_shoff > (uint64_t)st.st_size ||
            (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr) > (uint64_t)st.st_size - eh.e_shoff)
                return -EBADMSG;
        shdrs = calloc(eh.e_shnum, sizeof(Elf64_Shdr));
        if (!shdrs)
                return -ENOMEM;
        r = pread_exact(fd, shdrs, eh.e_shnum * sizeof(Elf64_Shdr), eh.e_shoff);
        if (r < 0)
                return r;
        for (size_t i = 0; i < eh.e_shnum; i++)
                if (shdrs[i].sh_type == SHT_DYNAMIC) {
                        dyn_index = i;
                        break;
                }
        if (!dyn_index) { /* static: no DT_NEEDED at all */
                *ret = found;
                return 0;
        }
        {
                const Elf64_Shdr *d = &shdrs[dyn_index], *s;
                if (d->sh_link == 0 || d->sh_link >= eh.e_shnum)
                        return -EBADMSG;
                s = &shdrs[d->sh_link];
                if (d->sh_size > 1 << 20 || s->sh_size == 0 || s->sh_size > 16 << 20 ||
                    d->sh_offset > (uint64_t)st.st_size || d->sh_size > (uint64_t)st.st_size - d->sh_offset ||
                    s->sh_offset > (uint64_t)st.st_size || s->sh_size > (uint64_t)st.st_size - s->sh_offset)
                        return -EBADMSG;
                n_dyn = d->sh_size / sizeof(Elf64_Dyn);
                dyn = calloc(n_dyn ? n_dyn : 1, sizeof(Elf64_Dyn));
                strtab = malloc(s->sh_size);
                if (!dyn || !strtab)
                        return -ENOMEM;
                r = pread_exact(fd, dyn, n_dyn * sizeof(Elf64_Dyn), d->sh_offset);
                if (r >= 0)
                        r = pread_exact(fd, strtab, s->sh_size, s->sh_offset);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n_dyn && dyn[i].d_tag != DT_NULL; i++) {
                        const char *soname;
                        if (dyn[i].d_tag != DT_NEEDED)
                                continue;
                        if (dyn[i].d_un.d_val >= s->sh_size ||
                            !memchr(strtab + dyn[i].d_un.d_val, '\0', s->sh_size - dyn[i].d_un.d_val))
                                return -EBADMSG;
                        soname = strtab + dyn[i].d_un.d_val;
                        if (!is_sanitizer_runtime(soname))
                                continue;
                        if (found.n == ARRAY_SIZE(found.name) ||
                            strscpy(found.name[found.n], soname, sizeof(found.name[0])) < 0)
                                return -E2BIG;
                        found.n++;
                }
        }
        *ret = found;
        return 0;
}

/* One frame of strace -k: " > /usr/lib/.../libasan.so.8.0.0(__asan::Fn()+0x19) [0xc3da9]".
 * Its object's file name (without directories) and symbol (NULL when none) into the buffers. */
static bool stack_frame(const char *line, char *object, size_t object_size, char *symbol, size_t symbol_size)
{
        const char *path, *open, *slash, *plus;

        if (strncmp(line, " > ", 3) != 0)
                return false;
        path = line + 3;
        open = strchr(path, '(');
        if (!open || path[0] != '/')
                return false;
        slash = memrchr(path, '/', (size_t)(open - path));
        if ((size_t)(open - slash - 1) >= object_size)
                return false;
        memcpy(object, slash + 1, (size_t)(open - slash - 1));
        object[open - slash - 1] = '\0';
        plus = strstr(open, "+0x");
        if (!plus || (size_t)(plus - open - 1) >= symbol_size)
                symbol[0] = '\0';
        else {
                memcpy(symbol, open + 1, (size_t)(plus - open - 1));
                symbol[plus - open - 1] = '\0';
        }
        return true;
}

/* Whether object (a file name such as libasan.so.8.0.0) is one of the runtimes
 * (DT_NEEDED names such as libasan.so.8: the file name or its versioned form). */
static const char *runtime_object(const struct san_runtimes *rt, const char *object)
{
        for (size_t i = 0; i < rt->n; i++) {
                size_t n = strlen(rt->name[i]);
                if (strncmp(object, rt->name[i], n) == 0 && (object[n] == '\0' || object[n] == '.'))
                        return rt->name[i];
        }
        return NULL;
}

/* The runtimes' init entries (demangled by strace): ASan's and UBSan's. */
static bool runtime_init_symbol(const char *symbol)
{
        static const char *const inits[] = { "__asan::AsanInitInternal(", "__asan::AsanInitFromRtl(", "__asan_init",
                                             "__ubsan::InitAsStandalone(", "__ubsan::InitAsPlugin(" };

        for (size_t i = 0; i < ARRAY_SIZE(inits); i++)
                if (strncmp(symbol, inits[i], strlen(inits[i])) == 0)
                        return true;
        return false;
}

/* The runtime (DT_NEEDED name) that made a syscall from its init, judged by
 * the syscall's stack (strace -k lines, innermost first): every frame up to
 * an init entry lies in one of the program's sanitizer runtimes. NULL when
 * any frame before that is another object's (ours, libc's), when no frame is
 * an init entry, or when there is no stack (a plain build is traced without). */
static const char *made_by_runtime_init(const struct san_runtimes *rt, char *const *frames, size_t n_frames)
{
        const char *runtime = NULL;

        for (size_t i = 0; i < n_frames; i++) {
                char object[256], symbol[512];
                const char *r;

                if (!stack_frame(frames[i], object, sizeof(object), symbol, sizeof(symbol)))
                        return NULL;
                r = runtime_object(rt, object);
                if (!r)
                        return NULL;
                if (!runtime)
                        runtime = r;
                if (runtime_init_symbol(symbol))
                        return runtime;
        }
        return NULL;
}

static void add_iface(const char *iface, const char *rule, void *userdata)
{
        char *list = userdata;
        size_t n = strlen(list);
        (void)rule;
        if (!streq(iface, "default"))
                (void)snprintf(list + n, 512 - n, "%s%s", n ? ", " : "", iface);
}

/* Accesses only the sandbox makes, never the snap: libvirt's test:///default
 * driver runs inside the module's process and probes the host (virsh -c
 * test:///default does the same); in the snap libvirt_uri is qemu:///system
 * and that driver runs in the host's libvirtd. Listed, never silently. */
static const struct {
        const char *plug, *path;
} sandbox_only[] = {
        { "libvirt", "/sys/kernel/iommu_groups/" },
};

/* Check one access against plug + default; record a violation naming the
 * granting interfaces. runtime: the sanitizer runtime that made it from its
 * init (made_by_runtime_init), else NULL. */
static void check_access(struct report *rep, const char *program, const char *plug, const struct access *a,
                         const char *what, const char *runtime)
{
        char who[512] = "";
        size_t n;

        rep->checked++;
        if (snapd_policy_iface_grants(plug, a) || snapd_policy_iface_grants("default", a))
                return;
        for (size_t i = 0; i < ARRAY_SIZE(sandbox_only); i++)
                if (a->kind == ACCESS_FILE && streq(plug, sandbox_only[i].plug) && streq(a->name, sandbox_only[i].path)) {
                        fprintf(stderr, "note: %s: %s: made by libvirt's in-process test driver only (sandbox)\n",
                                program, what);
                        return;
                }
        if (runtime) {
                rep->by_runtime++;
                n = strlen(rep->runtime_text);
                (void)snprintf(rep->runtime_text + n, sizeof(rep->runtime_text) - n, "%s: %s: made by %s from its init\n",
                               program, what, runtime);
                fprintf(stderr, "note: %s: %s: made by the sanitizer runtime %s from its init (not our code)\n",
                        program, what, runtime);
                return;
        }
        (void)snapd_policy_grants(a, add_iface, who);
        rep->violations++;
        n = strlen(rep->text);
        (void)snprintf(rep->text + n, sizeof(rep->text) - n, "%s: %s is outside its plug %s and the default template; %s%s\n",
                       program, what, plug, who[0] ? "granted by: " : "no snapd interface grants it",
                       who[0] ? who : "");
}

static const char *open_mask(const char *flags)
{
        bool creat = strstr(flags, "O_CREAT") != NULL;
        if (strstr(flags, "O_RDWR"))
                return "rw";
        if (strstr(flags, "O_WRONLY"))
                return creat ? "wc" : "w";
        return creat ? "rc" : "r";
}

/* First "..."-quoted string after p (strace -s 4096 escapes quotes), into buf. */
static bool quoted(const char *p, char *buf, size_t size)
{
        const char *q = strchr(p, '"'), *end;
        if (!q)
                return false;
        end = strchr(q + 1, '"');
        if (!end || (size_t)(end - q - 1) >= size)
                return false;
        memcpy(buf, q + 1, (size_t)(end - q - 1));
        buf[end - q - 1] = '\0';
        return true;
}

static const char *const netlink_names[][2] = {
        { "NETLINK_ROUTE", "NETLINK_ROUTE" }, { "NETLINK_NETFILTER", "NETLINK_NETFILTER" },
        { "NETLINK_GENERIC", "NETLINK_GENERIC" }, { "NETLINK_SOCK_DIAG", "NETLINK_INET_DIAG" },
        { "NETLINK_INET_DIAG", "NETLINK_INET_DIAG" }, { "NETLINK_KOBJECT_UEVENT", "NETLINK_KOBJECT_UEVENT" },
        { "NETLINK_AUDIT", "NETLINK_AUDIT" }, { "NETLINK_FIREWALL", "NETLINK_FIREWALL" },
        { "NETLINK_NFLOG", "NETLINK_NFLOG" }, { "NETLINK_XFRM", "NETLINK_XFRM" },
};

/* The path AppArmor sees: symlinks resolved (/lib -> /usr/lib, /proc/self ->
 * /proc/<pid>) when the file exists here, and a trailing '/' for directories. */
static void kernel_path(char *path, size_t size, long pid, bool directory)
{
        char real[PATH_MAX];

        if (strncmp(path, "/proc/self", 10) == 0 && (path[10] == '/' || path[10] == '\0')) {
                char tmp[4096];
                (void)snprintf(tmp, sizeof(tmp), "/proc/%ld%s", pid, path + 10);
                (void)strscpy(path, tmp, size);
        } else if (strncmp(path, "/proc/", 6) != 0 && realpath(path, real))
                (void)strscpy(path, real, size);
        if (directory && path[strlen(path) - 1] != '/' && strlen(path) + 1 < size) {
                size_t n = strlen(path);
                path[n] = '/';
                path[n + 1] = '\0';
        }
}

/* Check one syscall line of process pid; runtime as for check_access. */
static void check_syscall(struct report *rep, const char *program, const char *plug, long pid, const char *line,
                          const char *runtime)
{
        char path[4096], mapped[4096], what[4400];
        struct access a = { 0 };
        bool enoent = strstr(line, "= -1 ENOENT") != NULL;

        if (strncmp(line, "openat(", 7) == 0 || strncmp(line, "open(", 5) == 0) {
                const char *flags;
                if (enoent || !quoted(line, path, sizeof(path)) || path[0] != '/')
                        return; /* absent files and relative names (dirfd) are not checked */
                flags = strstr(line, "\", ") ? strstr(line, "\", ") + 3 : "";
                kernel_path(path, sizeof(path), pid, strstr(flags, "O_DIRECTORY") != NULL);
                a = (struct access){ ACCESS_FILE, snap_path(path, mapped, sizeof(mapped)), open_mask(flags) };
                (void)snprintf(what, sizeof(what), "open %s (%s)", mapped, a.arg);
                check_access(rep, program, plug, &a, what, runtime);
        } else if (strncmp(line, "execve(", 7) == 0) {
                if (enoent || !quoted(line, path, sizeof(path)))
                        return;
                a = (struct access){ ACCESS_FILE, snap_path(path, mapped, sizeof(mapped)), "x" };
                (void)snprintf(what, sizeof(what), "exec %s", mapped);
                check_access(rep, program, plug, &a, what, runtime);
        } else if ((strncmp(line, "connect(", 8) == 0 || strncmp(line, "bind(", 5) == 0) &&
                   strstr(line, "sa_family=AF_UNIX") && strstr(line, "sun_path=\"")) {
                bool is_bind = line[0] == 'b';
                if (enoent || !quoted(strstr(line, "sun_path="), path, sizeof(path)))
                        return;
                a = (struct access){ ACCESS_FILE, snap_path(path, mapped, sizeof(mapped)), "w" };
                (void)snprintf(what, sizeof(what), "%s unix socket %s", is_bind ? "bind" : "connect", mapped);
                check_access(rep, program, plug, &a, what, runtime);
                if (is_bind) {
                        a = (struct access){ ACCESS_SYSCALL, "bind", NULL };
                        check_access(rep, program, plug, &a, "the bind() syscall", runtime);
                }
        } else if (strncmp(line, "bind(", 5) == 0) {
                a = (struct access){ ACCESS_SYSCALL, "bind", NULL };
                check_access(rep, program, plug, &a, "the bind() syscall", runtime);
        } else if (strncmp(line, "socket(", 7) == 0) {
                /* socket(FAMILY, TYPE[|FLAGS...], PROTOCOL) = fd */
                char fam[32] = "", type[32] = "", proto[64] = "";
                const char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
                const char *close = c2 ? strchr(c2, ')') : NULL;
                if (!close || (size_t)(c1 - line - 7) >= sizeof(fam) || (size_t)(close - c2 - 2) >= sizeof(proto))
                        return;
                memcpy(fam, line + 7, (size_t)(c1 - line - 7));
                (void)snprintf(type, sizeof(type), "%.*s", (int)strcspn(c1 + 2, "|,"), c1 + 2);
                memcpy(proto, c2 + 2, (size_t)(close - c2 - 2));
                if (streq(fam, "AF_UNIX") || streq(fam, "AF_LOCAL"))
                        return; /* the template's unix rules */
                const char *family = streq(fam, "AF_NETLINK") ? "netlink"
                                     : streq(fam, "AF_INET")  ? "inet"
                                     : streq(fam, "AF_INET6") ? "inet6"
                                     : streq(fam, "AF_PACKET") ? "packet"
                                                               : fam;
                const char *stype = streq(type, "SOCK_RAW")      ? "raw"
                                    : streq(type, "SOCK_DGRAM")  ? "dgram"
                                    : streq(type, "SOCK_STREAM") ? "stream"
                                                                 : type;
                a = (struct access){ ACCESS_NETWORK, family, stype };
                (void)snprintf(what, sizeof(what), "socket network %s %s", family, stype);
                check_access(rep, program, plug, &a, what, runtime);
                if (streq(family, "netlink")) {
                        const char *nl = proto;
                        for (size_t i = 0; i < ARRAY_SIZE(netlink_names); i++)
                                if (streq(proto, netlink_names[i][0]))
                                        nl = netlink_names[i][1];
                        a = (struct access){ ACCESS_NETLINK, nl, NULL };
                        (void)snprintf(what, sizeof(what), "socket AF_NETLINK %s", nl);
                        check_access(rep, program, plug, &a, what, runtime);
                }
        }
}

/* Check every syscall of one strace -ff output file (named <name>.<pid>) of
 * a program whose sanitizer runtimes are rt (see sanitizer_runtimes_of); the
 * " > " lines after a syscall are its stack (strace -k). */
static void check_trace_file(struct report *rep, const char *program, const char *plug, const struct san_runtimes *rt,
                             const char *file)
{
        const char *dot = strrchr(file, '.');
        long pid = dot ? strtol(dot + 1, NULL, 10) : 1;
        FILE *f = fopen(file, "re");
        char *line = NULL, *syscall_line = NULL, *frames[64];
        size_t cap = 0, n_frames = 0;
        bool more;

        ck_assert_msg(f, "%s: %s", file, strerror(errno));
        do {
                more = getline(&line, &cap, f) >= 0;
                if (more && strncmp(line, " > ", 3) == 0) {
                        /* Frames beyond the array are not needed: the runtime's init is near the top. */
                        if (syscall_line && n_frames < ARRAY_SIZE(frames)) {
                                frames[n_frames] = strdup(line);
                                ck_assert_ptr_nonnull(frames[n_frames]);
                                n_frames++;
                        }
                        continue;
                }
                if (syscall_line)
                        check_syscall(rep, program, plug, pid, syscall_line,
                                      made_by_runtime_init(rt, frames, n_frames));
                free(syscall_line);
                for (size_t i = 0; i < n_frames; i++)
                        free(frames[i]);
                n_frames = 0;
                syscall_line = more ? strdup(line) : NULL;
                ck_assert(!more || syscall_line);
        } while (more);
        free(line);
        fclose(f);
}

/* Capabilities the module keeps while serving: each must come from its plug (or the template). */
static void check_caps(struct report *rep, const char *program, const char *plug, pid_t pid)
{
        char path[64], caps[512], what[128];
        uint64_t eff = 0;
        FILE *f;
        char line[256];

        (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "re");
        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "CapEff:", 7) == 0)
                        eff = strtoull(line + 7, NULL, 16);
        fclose(f);
        ck_assert_int_eq(caps_mask_format(eff, caps, sizeof(caps)), 0);
        for (char *save = NULL, *c = strtok_r(caps, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
                struct access a = { ACCESS_CAPABILITY, c + 4, NULL }; /* without "cap_" */
                (void)snprintf(what, sizeof(what), "capability %s (kept while serving)", c + 4);
                check_access(rep, program, plug, &a, what, NULL);
        }
}

/* Write at path a script that runs program under strace -D (the tracer is a
 * grandchild: the program keeps the pid its parent knows), one trace file per
 * process, <trace_dir>/<name>.<pid>. A program that names a sanitizer runtime
 * is traced with stacks (-k): they tell the runtime's accesses from ours. The
 * runtimes go to *ret_rt. */
static void write_traced_wrapper(const char *path, const char *name, const char *program, struct san_runtimes *ret_rt)
{
        char script[4 * PATH_MAX];
        int r = sanitizer_runtimes_of(program, ret_rt);

        ck_assert_msg(r == 0, "%s: %s", program, strerror(-r));
        ck_assert_int_eq(xsnprintf(script, sizeof(script),
                                   "#!/bin/sh\nexec strace -D -f -ff -qq%s -s 4096 -o %s/%s "
                                   "-e trace=open,openat,execve,connect,bind,socket %s \"$@\"\n",
                                   ret_rt->n ? " -k" : "", trace_dir, name, program),
                         0);
        ck_assert_int_eq(write_file_atomic(path, script, strlen(script), 0755), 0);
}

static void setup(void)
{
        const char *bin = getenv("NOVA_BIN");
        char path[PATH_MAX];

        memset(&core, 0, sizeof(core));
        memset(&ovs, 0, sizeof(ovs));
        n_maps = 0;
        ck_assert_ptr_nonnull(realpath(bin ? bin : "build/bin", bin_real));
        ck_assert_int_eq(snapd_policy_load(), 0);
        ck_assert_int_eq(ovs_fixture_start(&ovs), 0);
        ck_assert_int_eq(xsnprintf(core.dir, sizeof(core.dir), "/tmp/nova-conform-XXXXXX"), 0);
        ck_assert_ptr_nonnull(mkdtemp(core.dir));
        ck_assert_int_eq(xsnprintf(trace_dir, sizeof(trace_dir), "%s/trace", core.dir), 0);
        ck_assert_int_eq(xsnprintf(wrap_dir, sizeof(wrap_dir), "%s/modules", core.dir), 0);
        ck_assert_int_eq(mkdir(trace_dir, 0700), 0);
        ck_assert_int_eq(mkdir(wrap_dir, 0700), 0);
        for (int i = 0; i < _PLUG_MAX; i++) {
                char program[PATH_MAX];
                ck_assert_int_eq(xsnprintf(program, sizeof(program), "%s/%s", bin_real, plug_table[i].program), 0);
                ck_assert_int_eq(xsnprintf(path, sizeof(path), "%s/%s", wrap_dir, plug_table[i].program), 0);
                write_traced_wrapper(path, plug_table[i].name, program, &module_runtimes[i]);
        }
}

static void teardown(void)
{
        core_stop(&core);
        ovs_fixture_stop(&ovs);
        if (!getenv("KEEP"))
                (void)sh("rm -rf %s", core.dir);
}

static void workload(void)
{
        char lines[3 * PATH_MAX], body[512], uuid[37], path[256];
        struct json_object *resp = NULL;
        int st;

        ck_assert_int_eq(xsnprintf(lines, sizeof(lines),
                       "plugs = libvirt openvswitch network-control firewall-control hardware-observe system-observe "
                       "network-observe process-control\n"
                       "module_dir = %s\nlibvirt_uri = test:///default\nvif_type = ovs\novsdb_socket = unix:%s\n"
                       "integration_bridge = br-int\nbridge_create = true\nbridge_datapath_type = netdev\n"
                       "module_timeout_ms = %d\nport_timeout_ms = %d\n",
                       wrap_dir, ovs.db_sock, CALL_TIMEOUT_MS, CALL_TIMEOUT_MS), 0);
        core_start(&core, lines);
        for (int i = 0; i < _PLUG_MAX; i++)
                ck_assert_msg(core_wait_module_running(&core, plug_table[i].name, 0, 20000) > 0,
                              "module %s did not run under strace; see %s", plug_table[i].name, core.log);
        /* Boot an instance with a filtered (hybrid) port: network-control, openvswitch, firewall-control, libvirt. */
        random_port_uuid(uuid);
        (void)snprintf(body, sizeof(body),
                       "{\"name\":\"conform\",\"secgroups\":[\"default\"],\"ports\":[{\"port_uuid\":\"%s\","
                       "\"mac\":\"fa:16:3e:00:00:01\",\"ips\":[\"10.1.0.5\"]}]}",
                       uuid);
        st = core_api(&core, "POST", "/v1/instances?wait=1", body, &resp);
        ck_assert_msg(st == 200, "boot: HTTP %d %s; see %s", st, json_object_to_json_string(resp), core.log);
        json_object_put(resp);
        /* The observe modules. */
        ck_assert_int_eq(core_api(&core, "GET", "/v1/host", NULL, &resp), 200);
        json_object_put(resp);
        st = core_api(&core, "GET", "/v1/stats", NULL, &resp);
        ck_assert_msg(st == 200, "stats: HTTP %d", st);
        json_object_put(resp);
        /* process-control: test:///default domains have no QEMU threads; the call still reaches the module. */
        (void)snprintf(path, sizeof(path), "/v1/instances/conform/pin");
        (void)core_api(&core, "POST", path, "{\"cpus\":\"0\"}", &resp);
        json_object_put(resp);
        st = core_api(&core, "DELETE", "/v1/instances/conform?wait=1", NULL, &resp);
        ck_assert_msg(st == 200 || st == 204, "delete: HTTP %d", st);
        json_object_put(resp);
}

START_TEST(test_modules_stay_inside_their_plugs)
{
        static struct report rep;
        pid_t pids[_PLUG_MAX];

        workload();
        for (int i = 0; i < _PLUG_MAX; i++)
                pids[i] = core_module_pid(&core, plug_table[i].name);
        for (int i = 0; i < _PLUG_MAX; i++)
                check_caps(&rep, plug_table[i].program, plug_table[i].name, pids[i]);
        core_stop(&core); /* modules exit: the traces are complete */

        /* Sandbox paths as the snap has them. */
        add_map(ovs.dir, "/run/openvswitch");
        {
                char p[PATH_MAX];
                ck_assert_int_eq(xsnprintf(p, sizeof(p), "%s/run", core.dir), 0);
                add_map(p, SNAP_DATA "/run");
                ck_assert_int_eq(xsnprintf(p, sizeof(p), "%s/state", core.dir), 0);
                add_map(p, SNAP_COMMON "/state");
                ck_assert_int_eq(xsnprintf(p, sizeof(p), "%s/core.conf", core.dir), 0);
                add_map(p, SNAP_DATA "/nova-hypervisor.conf");
        }
        add_map(bin_real, SNAP_DIR "/bin");
        add_map(wrap_dir, SNAP_DIR "/bin");

        for (int i = 0; i < _PLUG_MAX; i++) {
                char prefix[64], file[PATH_MAX];
                unsigned files = 0;
                DIR *d = opendir(trace_dir);
                struct dirent *e;

                ck_assert_ptr_nonnull(d);
                (void)snprintf(prefix, sizeof(prefix), "%s.", plug_table[i].name);
                while ((e = readdir(d)))
                        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
                            strspn(e->d_name + strlen(prefix), "0123456789") == strlen(e->d_name + strlen(prefix))) {
                                ck_assert_int_eq(xsnprintf(file, sizeof(file), "%s/%s", trace_dir, e->d_name), 0);
                                check_trace_file(&rep, plug_table[i].program, plug_table[i].name,
                                                 &module_runtimes[i], file);
                                files++;
                        }
                closedir(d);
                ck_assert_msg(files > 0, "no trace of %s", plug_table[i].program);
        }
        fprintf(stderr, "conformance: %u accesses checked, %u outside their plug, %u made by the sanitizer runtime's init\n",
                rep.checked, rep.violations, rep.by_runtime);
        ck_assert_uint_gt(rep.checked, 100);
        if (rep.violations)
                fprintf(stderr, "%s", rep.text);
        ck_assert_msg(rep.violations == 0, "%u accesses of modules are outside their plugs (listed above)", rep.violations);
}
END_TEST

/* The checker itself: an access only another plug grants is a violation naming that plug. */
START_TEST(test_checker_names_the_granting_interface)
{
        static struct report rep;
        char file[PATH_MAX];
        const char *trace = "openat(AT_FDCWD, \"/etc/ld.so.cache\", O_RDONLY|O_CLOEXEC) = 3\n"
                            "connect(5, {sa_family=AF_UNIX, sun_path=\"/run/libvirt/libvirt-sock\"}, 110) = 0\n"
                            "socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_NETFILTER) = 6\n"
                            "openat(AT_FDCWD, \"/run/openvswitch/db.sock\", O_RDWR) = 7\n";

        ck_assert_int_eq(xsnprintf(file, sizeof(file), "%s/trace/openvswitch.1", core.dir), 0);
        static const struct san_runtimes plain = { .n = 0 };

        ck_assert_int_eq(write_file_atomic(file, trace, strlen(trace), 0600), 0);
        check_trace_file(&rep, "nova-openvswitch", "openvswitch", &plain, file);
        ck_assert_uint_eq(rep.checked, 5);
        ck_assert_uint_eq(rep.violations, 3);
        ck_assert_msg(strstr(rep.text, "nova-openvswitch: connect unix socket /run/libvirt/libvirt-sock is outside its "
                                       "plug openvswitch and the default template; granted by: libvirt"),
                      "%s", rep.text);
        ck_assert_msg(strstr(rep.text, "socket AF_NETLINK NETLINK_NETFILTER is outside its plug openvswitch") &&
                              strstr(rep.text, "firewall-control"),
                      "%s", rep.text);
        ck_assert_msg(strstr(rep.text, "socket network netlink raw is outside its plug openvswitch"), "%s", rep.text);
        ck_assert_ptr_null(strstr(rep.text, "ld.so.cache"));
        ck_assert_ptr_null(strstr(rep.text, "db.sock"));
}
END_TEST

/* The checker on strace -k stacks: only what the sanitizer runtime did from
 * its init, in a program whose ELF names that runtime, is set apart; the same
 * open made by our code (through libc, from main), by runtime code that ours
 * called, or with a stack that mixes ours in or cannot be read, is flagged. */
START_TEST(test_checker_sets_apart_only_the_runtime_init)
{
        static struct report rep, rep_plain;
#define ASAN_FRAME " > /usr/lib/x86_64-linux-gnu/libasan.so.8.0.0("
#define OURS_FRAME " > " SNAP_DIR "/bin/nova-system-observe("
        const char *trace =
                /* the runtime's own read, in its init */
                "open(\"/proc/self/environ\", O_RDONLY) = 3\n"
                ASAN_FRAME "__sanitizer::internal_open(char const*, int, unsigned int)+0x10) [0xd20e0]\n"
                ASAN_FRAME "__sanitizer::ReadFileToBuffer(char const*, char**, unsigned long*, unsigned long*, "
                "unsigned long, int*)+0xaf) [0xce23f]\n"
                ASAN_FRAME "__sanitizer::GetEnv(char const*)+0xdf) [0xd248f]\n"
                ASAN_FRAME "__asan::InitializeFlags()+0x4bb) [0x388db]\n"
                ASAN_FRAME "__asan::AsanInitInternal() [clone .part.0]+0x19) [0xc3da9]\n"
                /* ours: libc's open called from main */
                "openat(AT_FDCWD, \"/proc/self/environ\", O_RDONLY|O_CLOEXEC) = 4\n"
                " > /usr/lib/x86_64-linux-gnu/libc.so.6(__open64+0x51) [0xf8011]\n"
                OURS_FRAME "main+0x17) [0x10d7]\n"
                " > /usr/lib/x86_64-linux-gnu/libc.so.6(__libc_start_main+0x85) [0x27305]\n"
                /* runtime code that ours called after init: no init entry on the stack */
                "open(\"/proc/self/environ\", O_RDONLY) = 5\n"
                ASAN_FRAME "__sanitizer::internal_open(char const*, int, unsigned int)+0x10) [0xd20e0]\n"
                ASAN_FRAME "__sanitizer::GetEnv(char const*)+0xdf) [0xd248f]\n"
                OURS_FRAME "main+0x20) [0x10e0]\n"
                /* a frame of ours between the runtime's syscall and its init */
                "open(\"/proc/self/environ\", O_RDONLY) = 6\n"
                ASAN_FRAME "__sanitizer::internal_open(char const*, int, unsigned int)+0x10) [0xd20e0]\n"
                OURS_FRAME "fw_handler+0x40) [0x2000]\n"
                ASAN_FRAME "__asan::AsanInitInternal() [clone .part.0]+0x19) [0xc3da9]\n"
                /* a stack strace could not unwind */
                "open(\"/proc/self/environ\", O_RDONLY) = 7\n"
                " > unexpected_backtracing_error [0x7f0000001000]\n"
                /* no stack at all */
                "open(\"/proc/self/environ\", O_RDONLY) = 8\n"
                /* the runtime's own code, not from its init (a stack cut short shows no more of it) */
                "open(\"/proc/self/environ\", O_RDONLY) = 9\n"
                ASAN_FRAME "__sanitizer::internal_open(char const*, int, unsigned int)+0x10) [0xd20e0]\n"
                ASAN_FRAME "__sanitizer::GetEnv(char const*)+0xdf) [0xd248f]\n";
#undef ASAN_FRAME
#undef OURS_FRAME
        static const struct san_runtimes asan = { .name = { "libasan.so.8", "libubsan.so.1" }, .n = 2 };
        static const struct san_runtimes plain = { .n = 0 };
        char file[PATH_MAX];
        const char *first;

        ck_assert_int_eq(xsnprintf(file, sizeof(file), "%s/trace/system-observe.4242", core.dir), 0);
        ck_assert_int_eq(write_file_atomic(file, trace, strlen(trace), 0600), 0);
        check_trace_file(&rep, "nova-system-observe", "system-observe", &asan, file);
        ck_assert_uint_eq(rep.checked, 7);
        ck_assert_uint_eq(rep.by_runtime, 1);
        ck_assert_uint_eq(rep.violations, 6);
        ck_assert_str_eq(rep.runtime_text, "nova-system-observe: open /proc/4242/environ (r): made by libasan.so.8 "
                                           "from its init\n");
        first = strstr(rep.text, "nova-system-observe: open /proc/4242/environ (r) is outside its plug system-observe "
                                 "and the default template; no snapd interface grants it\n");
        ck_assert_msg(first, "%s", rep.text);

        /* A plain build (its ELF names no runtime): the same stacks prove nothing. */
        check_trace_file(&rep_plain, "nova-system-observe", "system-observe", &plain, file);
        ck_assert_uint_eq(rep_plain.by_runtime, 0);
        ck_assert_uint_eq(rep_plain.violations, 7);
}
END_TEST

/* The runtimes come from the program's own ELF file: the build's probe names
 * them exactly when this test (built with the same flags) is sanitized, and the
 * module programs agree. Then the probe, traced as the modules are, reads
 * /proc/self/environ from main: under SAN=1 the runtime's read of the same file
 * is set apart and ours is still a violation; in a plain build there is only ours. */
START_TEST(test_our_environ_read_is_flagged_in_this_build)
{
        static struct report rep;
        struct san_runtimes rt;
        char self[PATH_MAX], probe[PATH_MAX + 32], wrapper[PATH_MAX], file[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        unsigned files = 0;
        DIR *d;
        struct dirent *e;

        ck_assert_int_gt(n, 0);
        self[n] = '\0';
        *strrchr(self, '/') = '\0';
        ck_assert_int_eq(xsnprintf(probe, sizeof(probe), "%s/conformance-probe", self), 0);
        add_map(self, SNAP_DIR "/bin"); /* as the modules' programs are */
        ck_assert_int_eq(xsnprintf(wrapper, sizeof(wrapper), "%s/probe.sh", core.dir), 0);
        write_traced_wrapper(wrapper, "probe", probe, &rt);
#ifdef __SANITIZE_ADDRESS__
        ck_assert_msg(rt.n > 0, "%s names no sanitizer runtime, yet this test is an ASan build", probe);
        ck_assert_msg(strncmp(rt.name[0], "libasan.so.", 11) == 0, "%s: first runtime %s", probe, rt.name[0]);
#else
        ck_assert_msg(rt.n == 0, "%s names %s, yet this test is a plain build", probe, rt.name[0]);
#endif
        for (int i = 0; i < _PLUG_MAX; i++)
                ck_assert_msg(module_runtimes[i].n == rt.n, "%s and the probe disagree on the sanitizer runtime",
                              plug_table[i].program);
        (void)sh("%s", wrapper); /* exit status: LeakSanitizer refuses to run under ptrace (exit 1) */

        d = opendir(trace_dir);
        ck_assert_ptr_nonnull(d);
        while ((e = readdir(d)))
                if (strncmp(e->d_name, "probe.", 6) == 0) {
                        ck_assert_int_eq(xsnprintf(file, sizeof(file), "%s/%s", trace_dir, e->d_name), 0);
                        check_trace_file(&rep, "conformance-probe", "system-observe", &rt, file);
                        files++;
                }
        closedir(d);
        ck_assert_uint_gt(files, 0);
        if (rep.violations != 1 || rep.by_runtime != (rt.n ? 1u : 0u))
                fprintf(stderr, "%s%s", rep.text, rep.runtime_text);
        ck_assert_uint_eq(rep.violations, 1);
        ck_assert_msg(strstr(rep.text, "conformance-probe: open /proc/") &&
                              strstr(rep.text, "/environ (r) is outside its plug system-observe"),
                      "%s", rep.text);
        ck_assert_uint_eq(rep.by_runtime, rt.n ? 1 : 0);
        if (rt.n)
                ck_assert_msg(strstr(rep.runtime_text, "conformance-probe: open /proc/") &&
                                      strstr(rep.runtime_text, "/environ (r): made by libasan.so."),
                              "%s", rep.runtime_text);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("snap-conformance");
        TCase *tc = tcase_create("trace");
        SRunner *sr;
        int failed;

        harness_enter_netns("test-snap-conformance");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 180);
        tcase_add_test(tc, test_checker_names_the_granting_interface);
        tcase_add_test(tc, test_checker_sets_apart_only_the_runtime_init);
        tcase_add_test(tc, test_our_environ_read_is_flagged_in_this_build);
        tcase_add_test(tc, test_modules_stay_inside_their_plugs);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? 1 : 0;
}
