/* denial.h - one AppArmor (apparmor="DENIED", audit type 1400 / AVC) or
 * seccomp (audit type 1326 / SECCOMP) log line, decoded. Accepts the formats
 * the kernel's audit records take in dmesg, `journalctl -k` and auditd's
 * audit.log (type=AVC msg=audit(...)). Field values may be quoted or, when
 * they contain blanks, hex-encoded as the kernel does. */
#ifndef NOVA_DENIAL_H
#define NOVA_DENIAL_H

#include "util.h"

#define DENIAL_MAX_LINE 8192 /* longer lines are refused */

enum denial_kind {
        DENIAL_APPARMOR,
        DENIAL_SECCOMP,
};

struct denial {
        enum denial_kind kind;
        char profile[128];     /* AppArmor profile or seccomp subj (the snap label), "" if absent */
        char operation[32];    /* AppArmor operation ("open", "capable", "create", "connect", ...) */
        char class_[16];       /* AppArmor class ("file", "cap", "net", "unix", ...), "" if absent */
        char name[1024];       /* file path, "" if absent */
        char denied_mask[32];  /* AppArmor denied_mask ("r", "wc", ...) */
        char capname[32];      /* capability name ("sys_module") */
        char family[32];       /* network family ("netlink", "inet") */
        char sock_type[16];    /* "raw", "dgram", "stream", ... */
        int protocol;          /* -1 when absent */
        char comm[64];         /* command */
        char exe[512];         /* seccomp: executable */
        long syscall;          /* seccomp: syscall number, -1 when absent */
        unsigned long arch;    /* seccomp: AUDIT_ARCH_* (0xc000003e for x86_64), 0 when absent */
        long pid;              /* -1 when absent */
};

/* Decode line (len bytes, need not be NUL-terminated). 0 and *ret filled;
 * -ENOENT when the line is no AppArmor denial or seccomp record (other log
 * lines, ALLOWED audits); -EBADMSG when it is one but malformed; -EFBIG when
 * longer than DENIAL_MAX_LINE. *ret is untouched on failure. */
int denial_parse(const char *line, size_t len, struct denial *ret);

/* x86_64 syscall name of nr (the ones snapd's policy mentions and the common
 * ones), or NULL. */
const char *denial_syscall_name(long nr);

/* Netlink protocol name ("NETLINK_ROUTE") of a protocol number, or NULL. */
const char *denial_netlink_name(int protocol);

#endif
