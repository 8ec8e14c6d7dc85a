/* denial.c - see denial.h */
#include "denial.h"

#include <linux/netlink.h>
#include <sys/syscall.h>

/* Find key=value in the record (keys start at a blank or the record start);
 * copy the value, unquoted or hex-decoded, into out. 1 found, 0 absent,
 * -EBADMSG malformed (unterminated quote, value too long). */
static int field(const char *rec, const char *key, char *out, size_t size)
{
        size_t kl = strlen(key);

        for (const char *p = rec; (p = strstr(p, key)); p += kl) {
                const char *v;
                size_t n = 0;

                if ((p != rec && p[-1] != ' ' && p[-1] != ':') || p[kl] != '=')
                        continue;
                v = p + kl + 1;
                if (*v == '"') {
                        const char *end = strchr(v + 1, '"');
                        if (!end)
                                return -EBADMSG;
                        n = (size_t)(end - v - 1);
                        if (n >= size)
                                return -EBADMSG;
                        memcpy(out, v + 1, n);
                        out[n] = '\0';
                        return 1;
                }
                while (v[n] && v[n] != ' ')
                        n++;
                /* Unquoted: a number, a keyword, or hex when the value has blanks or quotes. */
                bool hex = n > 0 && n % 2 == 0;
                for (size_t i = 0; i < n && hex; i++)
                        hex = (v[i] >= '0' && v[i] <= '9') || (v[i] >= 'A' && v[i] <= 'F');
                if (hex && (streq(key, "name") || streq(key, "comm") || streq(key, "exe") || streq(key, "profile"))) {
                        if (n / 2 >= size)
                                return -EBADMSG;
                        for (size_t i = 0; i < n / 2; i++) {
                                int hi = v[2 * i] <= '9' ? v[2 * i] - '0' : v[2 * i] - 'A' + 10;
                                int lo = v[2 * i + 1] <= '9' ? v[2 * i + 1] - '0' : v[2 * i + 1] - 'A' + 10;
                                out[i] = (char)(hi * 16 + lo);
                                if (out[i] == '\0')
                                        return -EBADMSG;
                        }
                        out[n / 2] = '\0';
                        return 1;
                }
                if (n >= size)
                        return -EBADMSG;
                memcpy(out, v, n);
                out[n] = '\0';
                return 1;
        }
        return 0;
}

static int field_long(const char *rec, const char *key, int base, long *ret)
{
        char buf[32], *end;
        long v;
        int r = field(rec, key, buf, sizeof(buf));

        if (r <= 0)
                return r;
        errno = 0;
        v = strtol(buf, &end, base);
        if (errno || end == buf || *end)
                return -EBADMSG;
        *ret = v;
        return 1;
}

/* The fields of a seccomp record (rec: after "audit(...): ") into d. 0 or -errno. */
static int parse_seccomp(const char *rec, struct denial *d)
{
        char arch[32], *end;
        int r;

        d->kind = DENIAL_SECCOMP;
        r = field_long(rec, "syscall", 10, &d->syscall);
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;
        if (field(rec, "arch", arch, sizeof(arch)) == 1) {
                errno = 0;
                d->arch = strtoul(arch, &end, 16);
                if (errno || *end)
                        return -EBADMSG;
        }
        if (field(rec, "subj", d->profile, sizeof(d->profile)) < 0 || field(rec, "exe", d->exe, sizeof(d->exe)) < 0)
                return -EBADMSG;
        /* subj may carry " (enforce)"-style suffixes elsewhere; keep the label only. */
        d->profile[strcspn(d->profile, " ")] = '\0';
        return 0;
}

/* The fields of an AppArmor record into d: -ENOENT unless it is a DENIED one. 0 or -errno. */
static int parse_apparmor(const char *rec, struct denial *d)
{
        char verdict[16];
        long v;
        int r;

        r = field(rec, "apparmor", verdict, sizeof(verdict));
        if (r < 0)
                return r;
        if (r == 0 || !streq(verdict, "DENIED"))
                return -ENOENT;
        d->kind = DENIAL_APPARMOR;
        if (field(rec, "operation", d->operation, sizeof(d->operation)) < 0 ||
            field(rec, "class", d->class_, sizeof(d->class_)) < 0 ||
            field(rec, "profile", d->profile, sizeof(d->profile)) < 0 || field(rec, "name", d->name, sizeof(d->name)) < 0 ||
            field(rec, "denied_mask", d->denied_mask, sizeof(d->denied_mask)) < 0 ||
            field(rec, "capname", d->capname, sizeof(d->capname)) < 0 ||
            field(rec, "family", d->family, sizeof(d->family)) < 0 ||
            field(rec, "sock_type", d->sock_type, sizeof(d->sock_type)) < 0)
                return -EBADMSG;
        if ((r = field_long(rec, "protocol", 10, &v)) < 0)
                return r;
        if (r == 1) {
                if (v < 0 || v > 255)
                        return -EBADMSG;
                d->protocol = (int)v;
        }
        return d->operation[0] ? 0 : -EBADMSG;
}

int denial_parse(const char *line, size_t len, struct denial *ret)
{
        _cleanup_free_ char *buf = NULL;
        struct denial d = { .protocol = -1, .syscall = -1, .pid = -1 };
        const char *rec;
        long v;
        int r;

        if (len > DENIAL_MAX_LINE)
                return -EFBIG;
        buf = malloc(len + 1);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, line, len);
        buf[len] = '\0';
        if (strlen(buf) != len)
                return -EBADMSG;
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
                buf[--len] = '\0';
        /* The record starts after "audit(<time>:<serial>): ". */
        rec = strstr(buf, "audit(");
        if (!rec)
                return -ENOENT;
        rec = strstr(rec, "): ");
        if (!rec)
                return -ENOENT;
        rec += 3;

        if (strstr(buf, "type=1326") || strstr(buf, "type=SECCOMP"))
                r = parse_seccomp(rec, &d);
        else
                r = parse_apparmor(rec, &d);
        if (r < 0)
                return r;
        if (field(rec, "comm", d.comm, sizeof(d.comm)) < 0)
                return -EBADMSG;
        if ((r = field_long(rec, "pid", 10, &v)) < 0)
                return r;
        if (r == 1)
                d.pid = v;
        *ret = d;
        return 0;
}

#define SC(n) { SYS_##n, #n }
static const struct {
        long nr;
        const char *name;
} syscalls[] = {
        SC(read), SC(write), SC(open), SC(close), SC(ioctl), SC(socket), SC(connect), SC(accept), SC(bind),
        SC(listen), SC(accept4), SC(socketpair), SC(sendto), SC(recvfrom), SC(setsockopt), SC(clone), SC(fork),
        SC(execve), SC(kill), SC(chown), SC(fchown), SC(lchown), SC(fchownat), SC(chmod), SC(fchmod),
        SC(fchmodat), SC(ptrace), SC(setuid), SC(setgid), SC(setresuid), SC(setresgid), SC(setgroups),
        SC(capset), SC(setpriority), SC(sched_setparam), SC(sched_setscheduler), SC(sched_setaffinity),
        SC(sched_setattr), SC(ioprio_set), SC(pivot_root), SC(chroot), SC(mount), SC(umount2), SC(swapon),
        SC(swapoff), SC(reboot), SC(iopl), SC(ioperm), SC(init_module), SC(delete_module), SC(finit_module),
        SC(quotactl), SC(kexec_load), SC(add_key), SC(request_key), SC(keyctl), SC(unshare), SC(setns),
        SC(perf_event_open), SC(fanotify_init), SC(name_to_handle_at), SC(open_by_handle_at), SC(bpf),
        SC(userfaultfd), SC(process_vm_readv), SC(process_vm_writev), SC(settimeofday), SC(clock_settime),
        SC(adjtimex), SC(mknod), SC(mknodat), SC(openat), SC(openat2), SC(io_uring_setup), SC(io_uring_enter),
        SC(io_uring_register), SC(pidfd_send_signal), SC(pidfd_getfd), SC(prctl), SC(personality),
        SC(migrate_pages), SC(move_pages), SC(mbind), SC(set_mempolicy),
};
#undef SC

const char *denial_syscall_name(long nr)
{
        for (size_t i = 0; i < ARRAY_SIZE(syscalls); i++)
                if (syscalls[i].nr == nr)
                        return syscalls[i].name;
        return NULL;
}

#define NL(n) { NETLINK_##n, "NETLINK_" #n }
static const struct {
        int proto;
        const char *name;
} netlinks[] = {
        NL(ROUTE), NL(USERSOCK), NL(FIREWALL), NL(SOCK_DIAG), NL(NFLOG), NL(XFRM), NL(SELINUX), NL(ISCSI),
        NL(AUDIT), NL(FIB_LOOKUP), NL(CONNECTOR), NL(NETFILTER), NL(IP6_FW), NL(DNRTMSG), NL(KOBJECT_UEVENT),
        NL(GENERIC), NL(SCSITRANSPORT), NL(ECRYPTFS), NL(RDMA), NL(CRYPTO),
};
#undef NL

const char *denial_netlink_name(int protocol)
{
        /* NETLINK_INET_DIAG is NETLINK_SOCK_DIAG's older name; snapd uses it. */
        if (protocol == NETLINK_SOCK_DIAG)
                return "NETLINK_INET_DIAG";
        for (size_t i = 0; i < ARRAY_SIZE(netlinks); i++)
                if (netlinks[i].proto == protocol)
                        return netlinks[i].name;
        return NULL;
}
