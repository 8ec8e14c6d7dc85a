/* explain-denial.c - `nova-hypervisor explain-denial [FILE]`: for each
 * AppArmor (apparmor="DENIED") or seccomp (type=1326) line, which snapd
 * interface grants that access (data/snapd-policy.json, derived from snapd's
 * interface policy), whether this snap requests it and which app holds it,
 * or the advice for accesses no interface should grant. Other lines are
 * skipped. Exit 0, or 1 when the input could not be read or a denial line
 * was malformed (it is reported and the rest still explained). */
#include "snap-commands.h"

#include "denial.h"
#include "plugs.h"
#include "snapd-policy.h"

#define SNAP_LABEL "snap.nova-hypervisor."

struct grants {
        char list[1024];        /* "iface (rule); ..." for the output */
        char ifaces[24][40];    /* interface names */
        size_t n;
};

static void collect(const char *iface, const char *rule, void *userdata)
{
        struct grants *g = userdata;
        size_t used = strlen(g->list);

        if (g->n < ARRAY_SIZE(g->ifaces))
                (void)strscpy(g->ifaces[g->n++], iface, sizeof(g->ifaces[0]));
        (void)snprintf(g->list + used, sizeof(g->list) - used, "%s%s (%s)", used ? "; " : "", iface, rule);
}

static bool requested(const char *iface)
{
        return plug_from_name(iface) >= 0 || streq(iface, "network-bind");
}

/* The plug an app of ours has: module apps are named after their plug. */
static const char *app_plug(const char *app)
{
        if (plug_from_name(app) >= 0)
                return app;
        if (streq(app, "nova-compute"))
                return "network-bind";
        return NULL;
}

static bool has(const struct grants *g, const char *iface)
{
        for (size_t i = 0; i < g->n; i++)
                if (streq(g->ifaces[i], iface))
                        return true;
        return false;
}

static const char *const kmod_advice =
        "kernel modules are never loaded by the snap: the kernel loads tun, bridge, veth and the nf_tables "
        "modules on first use, and snapd's kmod backend loads what a connected interface declares. This comes "
        "from a tool such as ip, iptables or modprobe trying to load one: run no such tool (our modules use "
        "netlink directly), and make sure the host kernel has the module. Do not request kernel-module-control.";
static const char *const chown_advice =
        "chown/chmod as root needs no account-control: the default template allows chown to root:root (seccomp "
        "'chown - u:root g:root') and chmod of the snap's own files. A denial means a chown to another user or "
        "group, or acting on files the snap does not own: create files with the right owner and mode instead.";
static const char *const ptrace_advice =
        "tracing other processes is denied on purpose (network-control and system-observe add 'deny ptrace "
        "(trace)'); reading another process's /proc entries is ptrace read, which system-observe grants. Do not "
        "request system-trace.";

/* What d denied, as an access to look up in snapd's policy (*a, pointing into
 * d), in words (what) and with advice where we have some. False when the
 * record cannot be looked up: a line saying why was printed. */
static bool describe_access(unsigned long lineno, const struct denial *d, struct access *a, char *what, size_t size,
                            const char **advice)
{
        if (d->kind == DENIAL_SECCOMP) {
                const char *sc = denial_syscall_name(d->syscall);
                if (d->arch && d->arch != 0xc000003eUL) {
                        printf("line %lu: seccomp denied syscall %ld on arch %#lx: only x86_64 numbers are known\n",
                               lineno, d->syscall, d->arch);
                        return false;
                }
                a->kind = ACCESS_SYSCALL;
                a->name = sc ? sc : "?";
                (void)snprintf(what, size, "seccomp denied syscall %s (%ld)", a->name, d->syscall);
                if (sc && (streq(sc, "init_module") || streq(sc, "finit_module") || streq(sc, "delete_module")))
                        *advice = kmod_advice;
                else if (sc && strstr(sc, "chown"))
                        *advice = chown_advice;
                else if (sc && streq(sc, "ptrace"))
                        *advice = ptrace_advice;
        } else if (d->capname[0] || streq(d->operation, "capable")) {
                a->kind = ACCESS_CAPABILITY;
                a->name = d->capname;
                (void)snprintf(what, size, "AppArmor denied capability %s", d->capname);
                if (streq(d->capname, "sys_module"))
                        *advice = kmod_advice;
                else if (streq(d->capname, "chown") || streq(d->capname, "fowner") || streq(d->capname, "fsetid"))
                        *advice = chown_advice;
                else if (streq(d->capname, "sys_ptrace"))
                        *advice = ptrace_advice;
        } else if (d->family[0]) {
                a->kind = ACCESS_NETWORK;
                a->name = d->family;
                a->arg = d->sock_type[0] ? d->sock_type : NULL;
                (void)snprintf(what, size, "AppArmor denied network %s %s%s%s", d->family, d->sock_type,
                               d->protocol >= 0 && streq(d->family, "netlink") ? " protocol " : "",
                               d->protocol >= 0 && streq(d->family, "netlink") && denial_netlink_name(d->protocol)
                                       ? denial_netlink_name(d->protocol)
                                       : "");
        } else if (d->name[0]) {
                a->kind = ACCESS_FILE;
                a->name = d->name;
                a->arg = d->denied_mask[0] ? d->denied_mask : "r";
                (void)snprintf(what, size, "AppArmor denied %s of %s (mask %s)", d->operation, d->name, a->arg);
                if (strncmp(d->name, "/sys/module/", 12) == 0 || strstr(d->name, "/modprobe"))
                        *advice = kmod_advice;
        } else {
                printf("line %lu: AppArmor denied %s (class %s): no file, capability or network in the record\n",
                       lineno, d->operation, d->class_[0] ? d->class_ : "?");
                return false;
        }
        return true;
}

/* The verdict line: which interface (n of them, listed in g) would grant the access to app ("" when not ours). */
static void print_verdict(const char *app, const struct grants *g, size_t n)
{
        const char *plug = app[0] ? app_plug(app) : NULL;

        if (plug && has(g, plug))
                printf("  verdict: app %s plugs %s, which grants this: the plug is not connected (sudo snap connect "
                       "nova-hypervisor:%s) or the app was not restarted since it was (seccomp: sudo snap restart "
                       "nova-hypervisor.%s)\n",
                       app, plug, plug, app);
        else if (has(g, "default"))
                printf("  verdict: snapd's default template allows this only as its rule says (owner-only, argument "
                       "filter, exact path); the denied access is outside that\n");
        else if (n > 0) {
                char ours[512] = "", others[512] = "";
                for (size_t i = 0; i < g->n; i++) {
                        char *l = requested(g->ifaces[i]) ? ours : others;
                        size_t used = strlen(l);
                        (void)snprintf(l + used, sizeof(ours) - used, "%s%s", used ? ", " : "", g->ifaces[i]);
                }
                if (ours[0])
                        printf("  verdict: only plugs of other apps of ours grant this (%s): the access belongs in "
                               "that module, not in %s\n",
                               ours, app[0] ? app : "this process");
                else
                        printf("  verdict: not granted to this snap: we do not request %s\n", others);
        } else
                printf("  verdict: no interface grants this: the code must not do it under confinement\n");
}

static void explain(unsigned long lineno, const struct denial *d)
{
        struct grants g = { .n = 0 };
        struct access a = { 0 };
        char what[1200], app[128] = "";
        const char *advice = NULL;
        size_t n;

        if (strncmp(d->profile, SNAP_LABEL, strlen(SNAP_LABEL)) == 0)
                (void)strscpy(app, d->profile + strlen(SNAP_LABEL), sizeof(app));
        if (!describe_access(lineno, d, &a, what, sizeof(what), &advice))
                return;
        printf("line %lu: %s to %s%s%s%s\n", lineno, what, d->profile[0] ? d->profile : "an unknown profile",
               d->comm[0] ? " (comm \"" : "", d->comm, d->comm[0] ? "\")" : "");
        if (!app[0] && d->profile[0])
                printf("  note: %s is not a nova-hypervisor app\n", d->profile);

        n = snapd_policy_grants(&a, collect, &g);
        if (n == 0)
                printf("  granted by: no snapd interface\n");
        else
                printf("  granted by: %s\n", g.list);
        print_verdict(app, &g, n);
        if (advice)
                printf("  advice: %s\n", advice);
}

int cmd_explain_denial(int argc, char **argv)
{
        FILE *in = stdin;
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        unsigned long lineno = 0, explained = 0, bad = 0;
        int r;

        if (argc > 1 || (argc == 1 && (streq(argv[0], "-h") || streq(argv[0], "--help")))) {
                fprintf(stderr, "usage: nova-hypervisor explain-denial [FILE]   (journalctl -k, dmesg or audit.log lines; "
                                "stdin without FILE)\n");
                return 2;
        }
        if (argc == 1 && !streq(argv[0], "-")) {
                in = fopen(argv[0], "re");
                if (!in) {
                        fprintf(stderr, "error: %s: %s\n", argv[0], strerror(errno));
                        return 1;
                }
        }
        r = snapd_policy_load();
        if (r < 0) {
                fprintf(stderr, "error: the compiled-in snapd policy is unusable: %s\n", strerror(-r));
                return 1;
        }
        while ((len = getline(&line, &cap, in)) >= 0) {
                struct denial d;
                lineno++;
                r = denial_parse(line, (size_t)len, &d);
                if (r == -ENOENT)
                        continue;
                if (r < 0) {
                        printf("line %lu: malformed denial record (%s)\n", lineno, strerror(-r));
                        bad++;
                        continue;
                }
                explain(lineno, &d);
                explained++;
        }
        free(line);
        if (ferror(in)) {
                fprintf(stderr, "error: reading input: %s\n", strerror(errno));
                bad++;
        }
        if (in != stdin)
                fclose(in);
        printf("%lu denial%s explained from %s; policy data: %s\n", explained, explained == 1 ? "" : "s",
               argc == 1 ? argv[0] : "stdin", snapd_policy_source());
        return bad ? 1 : 0;
}
