/* snapd-policy.h - what each snapd interface grants, from data/snapd-policy.json
 * (derived from snapd's interface sources by scripts/gen-snapd-policy.py and
 * compiled in). The pseudo-interface "default" is snapd's default AppArmor
 * and seccomp template, which every app has. */
#ifndef NOVA_SNAPD_POLICY_H
#define NOVA_SNAPD_POLICY_H

#include "util.h"

enum access_kind {
        ACCESS_FILE,       /* path + mask ("r", "w", "rw", "x", "k", "m", ...) */
        ACCESS_CAPABILITY, /* name without cap_ ("net_admin") */
        ACCESS_NETWORK,    /* AppArmor network rule: family + type ("netlink", "raw") */
        ACCESS_SYSCALL,    /* seccomp: syscall name ("init_module") */
        ACCESS_NETLINK,    /* seccomp: socket(AF_NETLINK, *, protocol): "NETLINK_ROUTE" */
};

struct access {
        enum access_kind kind;
        const char *name;  /* path, capability, family, syscall or netlink protocol */
        const char *arg;   /* mask for files, socket type for network (may be NULL) */
};

/* Called once per interface granting the access, with the rule that does. */
typedef void (*policy_grant_cb)(const char *iface, const char *rule, void *userdata);

/* Parse the compiled-in policy (once). 0 or -EBADMSG/-ENOMEM. */
int snapd_policy_load(void);

/* Every interface (including "default") whose rules grant a; returns the
 * number. A capability an interface grants but snapd's backend denies with
 * it (network-control's sys_ptrace, sys_module) is not granted. */
size_t snapd_policy_grants(const struct access *a, policy_grant_cb cb, void *userdata);

/* True when the interface grants a (loads the policy if needed). */
bool snapd_policy_iface_grants(const char *iface, const struct access *a);

/* Whether an interface with this name is in the data. */
bool snapd_policy_has_iface(const char *iface);

/* "snapd <describe> (<commit>)" of the data, static storage. */
const char *snapd_policy_source(void);

#endif
