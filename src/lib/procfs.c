/* procfs.c - see procfs.h */
#include "procfs.h"

#include <pwd.h>

#include "names.h"

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>

#define PATH_MAX_PROCFS 4096 /* readlink target and pidfile path buffers */

/* ---- cpu sets ---- */

bool cpuset_has(const struct cpuset *set, unsigned cpu)
{
        return cpu < CPUSET_MAX_CPUS && (set->bits[cpu / 64] >> (cpu % 64)) & 1;
}

void cpuset_add(struct cpuset *set, unsigned cpu)
{
        if (cpu < CPUSET_MAX_CPUS)
                set->bits[cpu / 64] |= 1ULL << (cpu % 64);
}

unsigned cpuset_count(const struct cpuset *set)
{
        unsigned n = 0;

        for (size_t i = 0; i < ARRAY_SIZE(set->bits); i++)
                n += (unsigned)__builtin_popcountll(set->bits[i]);
        return n;
}

bool cpuset_subset(const struct cpuset *a, const struct cpuset *b)
{
        for (size_t i = 0; i < ARRAY_SIZE(a->bits); i++)
                if (a->bits[i] & ~b->bits[i])
                        return false;
        return true;
}

/* A decimal number of 1..5 digits at *p (no sign); advances *p. */
static int parse_cpu_number(const char **p, const char *end, unsigned *ret)
{
        unsigned v = 0, digits = 0;

        while (*p < end && **p >= '0' && **p <= '9') {
                if (++digits > 5)
                        return -ERANGE;
                v = v * 10 + (unsigned)(**p - '0');
                (*p)++;
        }
        if (digits == 0)
                return -EINVAL;
        if (v >= CPUSET_MAX_CPUS)
                return -ERANGE;
        *ret = v;
        return 0;
}

int cpuset_parse(const char *s, size_t len, struct cpuset *ret)
{
        struct cpuset set = {};
        const char *p = s, *end = s + len;
        int r;

        if (len > 0 && s[len - 1] == '\n')
                end--;
        while (p < end) {
                unsigned a, b;

                r = parse_cpu_number(&p, end, &a);
                if (r < 0)
                        return r;
                b = a;
                if (p < end && *p == '-') {
                        p++;
                        r = parse_cpu_number(&p, end, &b);
                        if (r < 0)
                                return r;
                        if (b < a)
                                return -EINVAL;
                }
                for (unsigned c = a; c <= b; c++)
                        cpuset_add(&set, c);
                if (p < end) {
                        if (*p != ',' || p + 1 == end)
                                return -EINVAL;
                        p++;
                }
        }
        *ret = set;
        return 0;
}

int cpuset_format(const struct cpuset *set, char *buf, size_t size)
{
        size_t used = 0;

        if (size == 0)
                return -ENAMETOOLONG;
        buf[0] = '\0';
        for (unsigned c = 0; c < CPUSET_MAX_CPUS; c++) {
                unsigned last = c;
                int n;

                if (!cpuset_has(set, c))
                        continue;
                while (last + 1 < CPUSET_MAX_CPUS && cpuset_has(set, last + 1))
                        last++;
                if (last == c)
                        n = snprintf(buf + used, size - used, "%s%u", used ? "," : "", c);
                else
                        n = snprintf(buf + used, size - used, "%s%u-%u", used ? "," : "", c, last);
                if (n < 0 || (size_t)n >= size - used) {
                        buf[0] = '\0';
                        return -ENAMETOOLONG;
                }
                used += (size_t)n;
                c = last;
        }
        return 0;
}

/* ---- line helpers ---- */

/* Next line of [*p, end): its start and length (without '\n'); advances *p. */
static bool next_line(const char **p, const char *end, const char **ret_line, size_t *ret_len)
{
        const char *nl;

        if (*p >= end)
                return false;
        nl = memchr(*p, '\n', (size_t)(end - *p));
        *ret_line = *p;
        *ret_len = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
        *p = nl ? nl + 1 : end;
        return true;
}

/* Unsigned decimal at [*p, end) (at most 19 digits); advances *p. */
static int parse_dec(const char **p, const char *end, uint64_t *ret)
{
        uint64_t v = 0;
        unsigned digits = 0;

        while (*p < end && **p >= '0' && **p <= '9') {
                if (++digits > 19)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(**p - '0');
                (*p)++;
        }
        if (digits == 0)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* "12.34" -> 12 * scale + fraction scaled (scale 100 or 1000; extra digits cut). */
static int parse_fixed(const char **p, const char *end, uint64_t scale, uint64_t *ret)
{
        uint64_t whole, frac = 0, unit = scale;
        int r = parse_dec(p, end, &whole);

        if (r < 0)
                return r;
        if (whole > UINT64_MAX / scale / 2)
                return -ERANGE;
        if (*p < end && **p == '.') {
                (*p)++;
                if (*p >= end || **p < '0' || **p > '9')
                        return -EINVAL;
                while (*p < end && **p >= '0' && **p <= '9') {
                        unit /= 10;
                        frac += (uint64_t)(**p - '0') * unit;
                        (*p)++;
                }
        }
        *ret = whole * scale + frac;
        return 0;
}

static void skip_blanks(const char **p, const char *end)
{
        while (*p < end && (**p == ' ' || **p == '\t'))
                (*p)++;
}

/* ---- meminfo, cpuinfo ---- */

int meminfo_get(const char *text, size_t len, const char *key, uint64_t *ret)
{
        const char *p = text, *end = text + len, *line;
        size_t n, klen = strlen(key);

        while (next_line(&p, end, &line, &n)) {
                const char *q = line, *lend = line + n;
                uint64_t v;

                if (n > 5 && memcmp(q, "Node ", 5) == 0) { /* node meminfo: "Node 0 MemTotal: ..." */
                        q += 5;
                        while (q < lend && *q >= '0' && *q <= '9')
                                q++;
                        skip_blanks(&q, lend);
                }
                if ((size_t)(lend - q) <= klen || memcmp(q, key, klen) != 0 || q[klen] != ':')
                        continue;
                q += klen + 1;
                skip_blanks(&q, lend);
                if (parse_dec(&q, lend, &v) < 0)
                        return -EINVAL;
                *ret = v;
                return 0;
        }
        return -ENOENT;
}

int cpuinfo_get(const char *text, size_t len, const char *key, char *buf, size_t size)
{
        const char *p = text, *end = text + len, *line;
        size_t n, klen = strlen(key);

        while (next_line(&p, end, &line, &n)) {
                const char *q = line + klen, *lend = line + n;

                if (n < klen || memcmp(line, key, klen) != 0)
                        continue;
                skip_blanks(&q, lend);
                if (q >= lend || *q != ':')
                        continue;
                q++;
                skip_blanks(&q, lend);
                while (lend > q && (lend[-1] == ' ' || lend[-1] == '\t'))
                        lend--;
                if ((size_t)(lend - q) >= size)
                        return -ENAMETOOLONG;
                memcpy(buf, q, (size_t)(lend - q));
                buf[lend - q] = '\0';
                return 0;
        }
        return -ENOENT;
}

bool cpu_flags_has(const char *flags, const char *flag)
{
        size_t n = strlen(flag);

        for (const char *p = flags; (p = strstr(p, flag)); p += n)
                if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
                        return true;
        return false;
}

/* ---- PSI, loadavg ---- */

static int psi_line(const char *q, const char *end, uint64_t *a10, uint64_t *a60, uint64_t *a300, uint64_t *total)
{
        static const char *const keys[] = { "avg10=", "avg60=", "avg300=", "total=" };
        uint64_t *vals[] = { a10, a60, a300, total };

        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                size_t k = strlen(keys[i]);
                int r;

                skip_blanks(&q, end);
                if ((size_t)(end - q) < k || memcmp(q, keys[i], k) != 0)
                        return -EINVAL;
                q += k;
                r = i < 3 ? parse_fixed(&q, end, 100, vals[i]) : parse_dec(&q, end, vals[i]);
                if (r < 0)
                        return r;
        }
        skip_blanks(&q, end);
        return q == end ? 0 : -EINVAL;
}

int psi_parse(const char *text, size_t len, struct psi *ret)
{
        const char *p = text, *end = text + len, *line;
        struct psi v = {};
        bool some = false;
        size_t n;
        int r;

        while (next_line(&p, end, &line, &n)) {
                if (n >= 5 && memcmp(line, "some ", 5) == 0 && !some) {
                        r = psi_line(line + 5, line + n, &v.some_avg10, &v.some_avg60, &v.some_avg300, &v.some_total);
                        some = true;
                } else if (n >= 5 && memcmp(line, "full ", 5) == 0 && !v.has_full) {
                        r = psi_line(line + 5, line + n, &v.full_avg10, &v.full_avg60, &v.full_avg300, &v.full_total);
                        v.has_full = true;
                } else if (n == 0) {
                        continue;
                } else {
                        return -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        if (!some)
                return -EINVAL;
        *ret = v;
        return 0;
}

int loadavg_parse(const char *text, size_t len, struct loadavg *ret)
{
        const char *p = text, *end = text + len;
        struct loadavg v;
        uint64_t *avgs[] = { &v.load1, &v.load5, &v.load15 };
        int r;

        for (size_t i = 0; i < ARRAY_SIZE(avgs); i++) {
                r = parse_fixed(&p, end, 1000, avgs[i]);
                if (r < 0)
                        return r;
                if (p >= end || *p != ' ')
                        return -EINVAL;
                p++;
        }
        r = parse_dec(&p, end, &v.running);
        if (r < 0)
                return r;
        if (p >= end || *p != '/')
                return -EINVAL;
        p++;
        r = parse_dec(&p, end, &v.tasks);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

/* ---- /proc/<pid>/stat ---- */

int proc_stat_parse(const char *text, size_t len, struct proc_stat *ret)
{
        const char *end = text + len, *p;
        struct proc_stat v = {};
        uint64_t skip;
        int r;

        /* "pid (comm) S f4 f5 ...": comm may hold anything, so the last ')' ends it. */
        for (p = end; p > text && p[-1] != ')'; p--)
                ;
        if (p == text || p >= end || *p != ' ')
                return -EINVAL;
        {
                const char *open = memchr(text, '(', (size_t)(p - text));
                size_t n;
                if (!open || open >= p - 1)
                        return -EINVAL;
                n = (size_t)(p - 1 - (open + 1));
                if (n >= sizeof(v.comm))
                        return -EINVAL;
                memcpy(v.comm, open + 1, n);
                v.comm[n] = '\0';
        }
        p++;
        if (p >= end || !isalpha((unsigned char)*p))
                return -EINVAL;
        v.state = *p++;
        /* fields 4..24; we need 14 utime, 15 stime, 20 num_threads, 22 starttime, 24 rss */
        for (int field = 4; field <= 24; field++) {
                uint64_t *dst = field == 14 ? &v.utime : field == 15 ? &v.stime : field == 20 ? &v.num_threads :
                                field == 22 ? &v.starttime : field == 24 ? &v.rss_pages : &skip;
                if (p >= end || *p != ' ')
                        return -EINVAL;
                p++;
                if (p < end && *p == '-') { /* some fields (priority, nice, tty) may be negative */
                        if (dst != &skip)
                                return -EINVAL;
                        p++;
                }
                r = parse_dec(&p, end, dst);
                if (r < 0)
                        return r;
        }
        *ret = v;
        return 0;
}

/* ---- QEMU processes of our instances ---- */

#define DOMAIN_PREFIX "nova-"

int qemu_cmdline_instance(const char *cmdline, size_t len, char ret_uuid[37])
{
        const char *args[256];
        size_t n = 0;
        char uuid[UUID_STR_LEN + 1] = "";
        bool named = false;

        for (const char *p = cmdline, *end = cmdline + len; p < end && n < ARRAY_SIZE(args);) {
                const char *z = memchr(p, '\0', (size_t)(end - p));
                if (!z)
                        break; /* an unterminated last argument is not an argument */
                args[n++] = p;
                p = z + 1;
        }
        for (size_t i = 0; i + 1 < n; i++) {
                if (streq(args[i], "-uuid")) {
                        if (uuid[0] || strlen(args[i + 1]) != UUID_STR_LEN || !uuid_is_valid(args[i + 1]))
                                return -ENOENT; /* twice, or not canonical: not ours */
                        memcpy(uuid, args[i + 1], UUID_STR_LEN + 1);
                }
        }
        if (!uuid[0])
                return -ENOENT;
        for (size_t i = 0; i + 1 < n; i++) {
                const char *v = args[i + 1];
                size_t plen = strlen(DOMAIN_PREFIX);

                if (!streq(args[i], "-name"))
                        continue;
                if (strncmp(v, "guest=", 6) == 0)
                        v += 6;
                if (strncmp(v, DOMAIN_PREFIX, plen) == 0 && strncmp(v + plen, uuid, UUID_STR_LEN) == 0 &&
                    (v[plen + UUID_STR_LEN] == '\0' || v[plen + UUID_STR_LEN] == ','))
                        named = true;
                else
                        return -ENOENT;
        }
        if (!named)
                return -ENOENT;
        memcpy(ret_uuid, uuid, UUID_STR_LEN + 1);
        return 0;
}

bool qemu_exe_is_emulator(const char *exe)
{
        const char *base = strrchr(exe, '/');
        size_t n;

        base = base ? base + 1 : exe;
        n = strlen(base);
        if (n > 10 && streq(base + n - 10, " (deleted)"))
                n -= 10;
        if (n > 12 && strncmp(base, "qemu-system-", 12) == 0)
                return true;
        return n == 8 && strncmp(base, "qemu-kvm", 8) == 0;
}

int read_at_bounded(int dirfd, const char *path, char *buf, size_t max, size_t *ret_len)
{
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        size_t len = 0;

        if (fd < 0)
                return -errno;
        if (max == 0)
                return -EINVAL;
        for (;;) {
                ssize_t k = read(fd, buf + len, max - 1 - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                len += (size_t)k;
                if (len == max - 1) {
                        char extra;
                        k = read(fd, &extra, 1);
                        if (k > 0)
                                return -EFBIG;
                        break;
                }
        }
        buf[len] = '\0';
        *ret_len = len;
        return 0;
}

int qemu_evidence_init(const char *qemu_user, struct qemu_evidence *ret)
{
        struct qemu_evidence ev = { .uids = { 0 }, .n_uids = 1 };
        uint32_t uid;
        int r = 0;

        if (qemu_user[0] == '+') {
                if (parse_u32(qemu_user + 1, 0, UINT32_MAX - 1, &uid) < 0)
                        r = -EINVAL;
        } else {
                struct passwd pw, *found = NULL;
                char buf[4096];

                if (getpwnam_r(qemu_user, &pw, buf, sizeof(buf), &found) != 0 || !found)
                        r = -ENOENT;
                else
                        uid = (uint32_t)found->pw_uid;
        }
        if (r == 0 && uid != 0)
                ev.uids[ev.n_uids++] = uid;
        *ret = ev;
        return r;
}

int proc_status_uids(const char *text, size_t len, uint32_t ret[4])
{
        const char *end = text + len, *p = text;
        uint32_t v[4];

        while (p < end && !((size_t)(end - p) >= 4 && memcmp(p, "Uid:", 4) == 0 && (p == text || p[-1] == '\n'))) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                if (!nl)
                        return -EINVAL;
                p = nl + 1;
        }
        if (p >= end)
                return -EINVAL;
        p += 4;
        for (int i = 0; i < 4; i++) {
                char num[16];
                size_t n = 0;

                while (p < end && (*p == '\t' || *p == ' '))
                        p++;
                while (p < end && *p >= '0' && *p <= '9' && n < sizeof(num) - 1)
                        num[n++] = *p++;
                num[n] = '\0';
                if (n == 0 || (p < end && *p >= '0' && *p <= '9') || parse_u32(num, 0, UINT32_MAX, &v[i]) < 0)
                        return -EINVAL;
        }
        if (p < end && *p != '\n')
                return -EINVAL;
        memcpy(ret, v, sizeof(v));
        return 0;
}

/* libvirt's machine name of our domain nova-<uuid>: "qemu-" ["embed-" 8 hex
 * "-"] <id> "-nova-" <uuid> (hypervisor/domain_driver.c,
 * virDomainDriverGenerateMachineName; the session driver's
 * "qemu-<user>-<id>-..." is not the host's libvirt and does not match). */
static bool machine_name_is_instance(const char *name, size_t len, const char *uuid)
{
        const char *p = name, *end = name + len, *digits;
        size_t ulen = strlen(uuid);

        if (len < 5 || memcmp(p, "qemu-", 5) != 0)
                return false;
        p += 5;
        if ((size_t)(end - p) > 6 && memcmp(p, "embed-", 6) == 0) {
                p += 6;
                for (int i = 0; i < 8; i++, p++)
                        if (p >= end || !((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                                return false;
                if (p >= end || *p != '-')
                        return false;
                p++;
        }
        digits = p;
        while (p < end && *p >= '0' && *p <= '9')
                p++;
        if (p == digits || p - digits > 10)
                return false;
        return (size_t)(end - p) == 6 + ulen && memcmp(p, "-nova-", 6) == 0 && memcmp(p + 6, uuid, ulen) == 0;
}

/* One cgroup path (not NUL-terminated): libvirt's machine cgroup of the
 * instance, or a cgroup below it (libvirt's emulator/vcpuN/libvirt ones). */
static bool cgroup_path_is_instance(const char *path, size_t len, const char *uuid)
{
        static const char systemd_prefix[] = "/machine.slice/machine-";
        static const char libvirt_prefix[] = "/machine/";
        static const char libvirt_suffix[] = ".libvirt-qemu";
        const char *p, *end = path + len;
        char name[128];
        size_t n = 0;

        if (len > sizeof(systemd_prefix) - 1 && memcmp(path, systemd_prefix, sizeof(systemd_prefix) - 1) == 0) {
                /* systemd's unit name escaping: '-' is "\x2d"; a raw '-' or '\' is something else */
                for (p = path + sizeof(systemd_prefix) - 1; p < end;) {
                        char c;
                        if ((size_t)(end - p) >= 6 && memcmp(p, ".scope", 6) == 0 && (p + 6 == end || p[6] == '/'))
                                return machine_name_is_instance(name, n, uuid);
                        if ((size_t)(end - p) >= 4 && memcmp(p, "\\x2d", 4) == 0) {
                                c = '-';
                                p += 4;
                        } else if (*p == '-' || *p == '\\' || *p == '/') {
                                return false;
                        } else {
                                c = *p++;
                        }
                        if (n + 1 >= sizeof(name))
                                return false;
                        name[n++] = c;
                }
                return false;
        }
        if (len > sizeof(libvirt_prefix) - 1 && memcmp(path, libvirt_prefix, sizeof(libvirt_prefix) - 1) == 0) {
                const char *seg = path + sizeof(libvirt_prefix) - 1, *slash = memchr(seg, '/', (size_t)(end - seg));
                const char *seg_end = slash ? slash : end;
                size_t slen = sizeof(libvirt_suffix) - 1;

                if ((size_t)(seg_end - seg) <= slen || memcmp(seg_end - slen, libvirt_suffix, slen) != 0)
                        return false;
                return machine_name_is_instance(seg, (size_t)(seg_end - seg) - slen, uuid);
        }
        return false;
}

bool qemu_cgroup_is_instance(const char *text, size_t len, const char *instance_uuid)
{
        const char *p = text, *end = text + len;

        if (!uuid_is_valid(instance_uuid))
                return false;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p)), *line_end = nl ? nl : end;
                const char *c1 = memchr(p, ':', (size_t)(line_end - p));
                const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(line_end - c1 - 1)) : NULL;

                /* "<hierarchy>:<controllers>:<path>"; the path may itself hold ':' */
                if (c2 && cgroup_path_is_instance(c2 + 1, (size_t)(line_end - c2 - 1), instance_uuid))
                        return true;
                p = line_end + 1;
        }
        return false;
}

/* Whether the process behind dirfd carries ev's evidence of being libvirt's
 * QEMU of instance uuid (procfs.h: struct qemu_evidence). */
static bool process_has_evidence(int dirfd, const struct qemu_evidence *ev, const char *uuid)
{
        char text[16384];
        uint32_t uids[4];
        size_t len;

        if (read_at_bounded(dirfd, "status", text, sizeof(text), &len) < 0 || proc_status_uids(text, len, uids) < 0)
                return false;
        for (int i = 0; i < 4; i++) {
                bool ok = false;
                for (unsigned j = 0; j < ev->n_uids && j < ARRAY_SIZE(ev->uids); j++)
                        ok |= uids[i] == ev->uids[j];
                if (!ok)
                        return false;
        }
        if (read_at_bounded(dirfd, "cgroup", text, sizeof(text), &len) < 0)
                return false;
        return qemu_cgroup_is_instance(text, len, uuid);
}

/* Whether the process behind dirfd is a QEMU emulator marked for an
 * instance: 0 and its UUID, and in *ret_trusted whether it also carries the
 * evidence of ev. */
static int process_mark(int dirfd, const struct qemu_evidence *ev, char ret_uuid[UUID_STR_LEN + 1],
                        bool *ret_trusted)
{
        char exe[PATH_MAX_PROCFS], cmdline[16384];
        size_t len;
        ssize_t k;
        int r;

        k = readlinkat(dirfd, "exe", exe, sizeof(exe) - 1);
        if (k < 0 && (errno == EACCES || errno == EPERM)) {
                /* Not ours to inspect (another user, more capabilities): its task name. */
                char stat_text[2048];
                struct proc_stat st;

                if (read_at_bounded(dirfd, "stat", stat_text, sizeof(stat_text), &len) < 0 ||
                    proc_stat_parse(stat_text, len, &st) < 0)
                        return -ENOENT;
                if (!qemu_exe_is_emulator(st.comm) && !(strlen(st.comm) == 15 && strncmp(st.comm, "qemu-system-", 12) == 0))
                        return -ENOENT;
        } else if (k < 0) {
                return errno == ENOENT || errno == ESRCH ? -ENOENT : -errno;
        } else {
                exe[k] = '\0';
                if (!qemu_exe_is_emulator(exe))
                        return -ENOENT;
        }
        r = read_at_bounded(dirfd, "cmdline", cmdline, sizeof(cmdline), &len);
        if (r == -EFBIG)
                len = sizeof(cmdline) - 1; /* the mark comes early; the cut last argument is ignored */
        else if (r < 0)
                return r == -ESRCH ? -ENOENT : r;
        r = qemu_cmdline_instance(cmdline, len, ret_uuid);
        if (r < 0)
                return r;
        *ret_trusted = process_has_evidence(dirfd, ev, ret_uuid);
        return 0;
}

static int open_pid_dir(const char *proc_root, pid_t pid)
{
        char path[64];
        int fd;

        if (xsnprintf(path, sizeof(path), "%.40s/%d", proc_root, (int)pid) < 0)
                return -ENAMETOOLONG;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* Every marked QEMU process, with or without evidence (trusted). */
int qemu_process_foreach_marked(const char *proc_root, const struct qemu_evidence *ev,
                          int (*cb)(pid_t pid, const char *instance_uuid, int dirfd, bool trusted, void *userdata),
                          void *userdata)
{
        _cleanup_(closedirp) DIR *d = opendir(proc_root);
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                char uuid[UUID_STR_LEN + 1];
                uint32_t pid;
                _cleanup_close_ int fd = -1;
                int r;

                if (parse_u32(de->d_name, 1, INT32_MAX, &pid) < 0)
                        continue;
                fd = open_pid_dir(proc_root, (pid_t)pid);
                if (fd < 0)
                        continue; /* gone meanwhile */
                bool trusted = false;
                if (process_mark(fd, ev, uuid, &trusted) < 0)
                        continue;
                r = cb((pid_t)pid, uuid, fd, trusted, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

struct trusted_only {
        int (*cb)(pid_t pid, const char *instance_uuid, int dirfd, void *userdata);
        void *userdata;
};

static int trusted_only_cb(pid_t pid, const char *instance_uuid, int dirfd, bool trusted, void *userdata)
{
        struct trusted_only *t = userdata;

        return trusted ? t->cb(pid, instance_uuid, dirfd, t->userdata) : 0;
}

int qemu_process_foreach(const char *proc_root, const struct qemu_evidence *ev,
                         int (*cb)(pid_t pid, const char *instance_uuid, int dirfd, void *userdata), void *userdata)
{
        struct trusted_only t = { cb, userdata };

        return qemu_process_foreach_marked(proc_root, ev, trusted_only_cb, &t);
}

struct find_ctx {
        const char *uuid;
        pid_t pid;
        int dirfd;
        unsigned matches;       /* with the evidence */
        unsigned impostors;     /* with the mark, without the evidence */
};

static int find_cb(pid_t pid, const char *instance_uuid, int dirfd, bool trusted, void *userdata)
{
        struct find_ctx *f = userdata;

        if (!streq(instance_uuid, f->uuid))
                return 0;
        if (!trusted) {
                f->impostors++;
                return 0;
        }
        f->matches++;
        if (f->dirfd < 0) {
                f->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
                if (f->dirfd < 0)
                        return -errno;
                f->pid = pid;
        }
        return 0;
}

int qemu_process_find(const char *proc_root, const char *libvirt_run, const struct qemu_evidence *ev,
                      const char *instance_uuid, pid_t *ret_pid, int *ret_dirfd, const char **ret_found_by)
{
        struct find_ctx f = { .uuid = instance_uuid, .dirfd = -1 };
        int r;

        if (!uuid_is_valid(instance_uuid))
                return -EINVAL;
        if (libvirt_run) {
                char path[PATH_MAX_PROCFS], text[32];
                _cleanup_close_ int dfd = open(libvirt_run, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                uint32_t pid;
                size_t len;

                if (dfd >= 0 && xsnprintf(path, sizeof(path), DOMAIN_PREFIX "%s.pid", instance_uuid) == 0 &&
                    read_at_bounded(dfd, path, text, sizeof(text), &len) == 0) {
                        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                                text[--len] = '\0';
                        if (parse_u32(text, 1, INT32_MAX, &pid) == 0) {
                                char uuid[UUID_STR_LEN + 1];
                                bool trusted = false;
                                int fd = open_pid_dir(proc_root, (pid_t)pid);
                                if (fd >= 0 && process_mark(fd, ev, uuid, &trusted) == 0 && trusted &&
                                    streq(uuid, instance_uuid)) {
                                        *ret_pid = (pid_t)pid;
                                        *ret_dirfd = fd;
                                        if (ret_found_by)
                                                *ret_found_by = "libvirt-pidfile";
                                        return 0;
                                }
                                safe_close(fd);
                        }
                }
        }
        r = qemu_process_foreach_marked(proc_root, ev, find_cb, &f);
        if (r < 0) {
                safe_close(f.dirfd);
                return r;
        }
        if (f.dirfd < 0)
                return f.impostors > 0 ? -EPERM : -ENOENT;
        if (f.matches > 1) { /* two processes claim one instance: touch neither */
                safe_close(f.dirfd);
                return -ENOTUNIQ;
        }
        *ret_pid = f.pid;
        *ret_dirfd = f.dirfd;
        if (ret_found_by)
                *ret_found_by = "cmdline";
        return 0;
}

/* ---- kernel uevents ---- */

static const char *const uevent_subsystems[] = {
        [UEVENT_OTHER] = "other", [UEVENT_CPU] = "cpu", [UEVENT_MEMORY] = "memory",
        [UEVENT_NODE] = "node",   [UEVENT_PCI] = "pci",
};
static const char *const uevent_actions[] = {
        [UEVENT_ACTION_OTHER] = "other", [UEVENT_ADD] = "add",         [UEVENT_REMOVE] = "remove",
        [UEVENT_CHANGE] = "change",      [UEVENT_ONLINE] = "online",   [UEVENT_OFFLINE] = "offline",
};

const char *uevent_subsystem_name(enum uevent_subsystem s)
{
        return (unsigned)s < ARRAY_SIZE(uevent_subsystems) ? uevent_subsystems[s] : "other";
}

const char *uevent_action_name(enum uevent_action a)
{
        return (unsigned)a < ARRAY_SIZE(uevent_actions) ? uevent_actions[a] : "other";
}

/* Index of the name of len bytes in table, or 0 (the "other" entry). */
static unsigned uevent_lookup(const char *const *table, size_t n, const char *name, size_t len)
{
        for (unsigned i = 1; i < n; i++)
                if (strlen(table[i]) == len && memcmp(table[i], name, len) == 0)
                        return i;
        return 0;
}

#define UEVENT_VALUE_MAX 64 /* ACTION and SUBSYSTEM values we accept (the kernel's are short words) */

int uevent_parse(const char *buf, size_t len, struct uevent *ret)
{
        const char *end = buf + len, *field, *at;
        const char *action = NULL, *subsystem = NULL;
        size_t action_len = 0, subsystem_len = 0, header_action_len;

        assert(buf || len == 0);
        assert(ret);
        /* the header: "ACTION@DEVPATH", NUL-terminated */
        field = buf;
        if (!len || !memchr(buf, '\0', len))
                return -EBADMSG;
        at = memchr(buf, '@', strnlen(buf, len));
        if (!at || at == buf)
                return -EBADMSG;
        header_action_len = (size_t)(at - buf);
        field += strlen(field) + 1;
        while (field < end) {
                const char *nul = memchr(field, '\0', (size_t)(end - field)), *eq;
                size_t flen;

                if (!nul)
                        return -EBADMSG; /* the last field must be terminated too */
                flen = (size_t)(nul - field);
                if (flen == 0) {
                        field = nul + 1;
                        continue;
                }
                eq = memchr(field, '=', flen);
                if (!eq || eq == field)
                        return -EBADMSG;
                if ((size_t)(eq - field) == 6 && memcmp(field, "ACTION", 6) == 0) {
                        action = eq + 1;
                        action_len = (size_t)(nul - action);
                } else if ((size_t)(eq - field) == 9 && memcmp(field, "SUBSYSTEM", 9) == 0) {
                        subsystem = eq + 1;
                        subsystem_len = (size_t)(nul - subsystem);
                }
                field = nul + 1;
        }
        if (!action || !subsystem || action_len == 0 || subsystem_len == 0 || action_len > UEVENT_VALUE_MAX ||
            subsystem_len > UEVENT_VALUE_MAX)
                return -EBADMSG;
        if (header_action_len != action_len || memcmp(buf, action, action_len) != 0)
                return -EBADMSG;
        ret->action = (enum uevent_action)uevent_lookup(uevent_actions, ARRAY_SIZE(uevent_actions), action,
                                                        action_len);
        ret->subsystem = (enum uevent_subsystem)uevent_lookup(uevent_subsystems, ARRAY_SIZE(uevent_subsystems),
                                                              subsystem, subsystem_len);
        return 0;
}

bool uevent_changes_inventory(const struct uevent *ev)
{
        return ev->subsystem != UEVENT_OTHER && ev->action != UEVENT_ACTION_OTHER;
}
