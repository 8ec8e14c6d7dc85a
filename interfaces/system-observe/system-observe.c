/* system-observe.c - nova-system-observe: the module that holds the
 * system-observe plug. It keeps no capability and only reads /proc: the
 * host's load, memory and pressure (PSI), and the QEMU processes of our
 * instances (found by libvirt's pidfile where the QEMU driver writes one, else
 * by their command line and our mark) with their CPU time and RSS. */
#include "log.h"
#include "modrt.h"
#include "names.h"
#include "procfs.h"
#include "sysobs-protocol.h"

#include <fcntl.h>

#define LIBVIRT_QEMU_RUN "/run/libvirt/qemu" /* qemu:///system writes <domain>.pid here */

static void reply_psi(struct proto_writer *w, const char *resource)
{
        char path[64], text[512];
        struct psi psi = {};
        size_t len;
        bool ok;

        (void)snprintf(path, sizeof(path), "/proc/pressure/%s", resource);
        ok = read_at_bounded(AT_FDCWD, path, text, sizeof(text), &len) == 0 && psi_parse(text, len, &psi) == 0;
        pw_obj_begin(w, resource);
        pw_bool(w, "available", ok);
        pw_u64(w, "some_avg10", psi.some_avg10);
        pw_u64(w, "some_avg60", psi.some_avg60);
        pw_u64(w, "some_avg300", psi.some_avg300);
        pw_u64(w, "some_total_us", psi.some_total);
        pw_bool(w, "has_full", psi.has_full);
        pw_u64(w, "full_avg10", psi.full_avg10);
        pw_u64(w, "full_avg60", psi.full_avg60);
        pw_u64(w, "full_avg300", psi.full_avg300);
        pw_u64(w, "full_total_us", psi.full_total);
        pw_obj_end(w);
}

static int handle_host_load(void *state, struct modrt_call *call)
{
        char text[8192];
        struct loadavg la;
        uint64_t total = 0, avail = 0, mfree = 0;
        size_t len;
        int r;

        (void)state;
        r = read_at_bounded(AT_FDCWD, "/proc/loadavg", text, sizeof(text), &len);
        if (r == 0)
                r = loadavg_parse(text, len, &la);
        if (r < 0) {
                (void)snprintf(call->err, sizeof(call->err), "cannot read /proc/loadavg: %s", strerror(-r));
                return r;
        }
        r = read_at_bounded(AT_FDCWD, "/proc/meminfo", text, sizeof(text), &len);
        if (r == 0)
                r = meminfo_get(text, len, "MemTotal", &total);
        if (r < 0) {
                (void)snprintf(call->err, sizeof(call->err), "cannot read /proc/meminfo: %s", strerror(-r));
                return r;
        }
        (void)meminfo_get(text, len, "MemAvailable", &avail);
        (void)meminfo_get(text, len, "MemFree", &mfree);
        pw_u64(call->reply, "load1", la.load1);
        pw_u64(call->reply, "load5", la.load5);
        pw_u64(call->reply, "load15", la.load15);
        pw_u64(call->reply, "running", la.running);
        pw_u64(call->reply, "tasks", la.tasks);
        pw_obj_begin(call->reply, "memory");
        pw_u64(call->reply, "total_kb", total);
        pw_u64(call->reply, "available_kb", avail);
        pw_u64(call->reply, "free_kb", mfree);
        pw_obj_end(call->reply);
        pw_obj_begin(call->reply, "psi");
        reply_psi(call->reply, "cpu");
        reply_psi(call->reply, "memory");
        reply_psi(call->reply, "io");
        pw_obj_end(call->reply);
        return 0;
}

#define UNVERIFIED_MAX 16 /* marked processes without the evidence named in one reply */

struct procs_ctx {
        struct proto_writer *w;
        size_t total, listed;
        long ticks_per_sec, page_kb;
        /* QEMU processes with an instance's mark but without libvirt's evidence: never
         * taken for its QEMU (no figures), only named, so that `stats` can say why. */
        size_t n_unverified;
        struct {
                char instance_uuid[UUID_STR_LEN + 1];
                pid_t pid;
        } unverified[UNVERIFIED_MAX];
};

/* Whether libvirt's QEMU driver names this pid for the instance in its pidfile. */
static bool libvirt_pidfile_names(const char *instance_uuid, pid_t pid)
{
        char path[128], text[32];
        uint32_t v;
        size_t len;

        if (xsnprintf(path, sizeof(path), LIBVIRT_QEMU_RUN "/nova-%s.pid", instance_uuid) < 0 ||
            read_at_bounded(AT_FDCWD, path, text, sizeof(text), &len) < 0)
                return false;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                text[--len] = '\0';
        return parse_u32(text, 1, INT32_MAX, &v) == 0 && (pid_t)v == pid;
}

static int procs_cb(pid_t pid, const char *instance_uuid, int dirfd, bool trusted, void *userdata)
{
        struct procs_ctx *ctx = userdata;
        char text[2048];
        struct proc_stat st;
        size_t len;

        if (!trusted) {
                if (ctx->n_unverified < UNVERIFIED_MAX) {
                        (void)strscpy(ctx->unverified[ctx->n_unverified].instance_uuid, instance_uuid, UUID_STR_LEN + 1);
                        ctx->unverified[ctx->n_unverified++].pid = pid;
                }
                return 0;
        }

        if (read_at_bounded(dirfd, "stat", text, sizeof(text), &len) < 0 || proc_stat_parse(text, len, &st) < 0)
                return 0; /* gone meanwhile */
        ctx->total++;
        if (ctx->listed >= SYSOBS_MAX_PROCS_REPLY)
                return 0;
        pw_obj_begin(ctx->w, NULL);
        pw_str(ctx->w, "instance_uuid", instance_uuid);
        pw_u64(ctx->w, "pid", (uint64_t)pid);
        pw_str(ctx->w, "found_by", libvirt_pidfile_names(instance_uuid, pid) ? "libvirt-pidfile" : "cmdline");
        pw_u64(ctx->w, "threads", st.num_threads);
        pw_u64(ctx->w, "cpu_time_ms", (st.utime + st.stime) * 1000 / (uint64_t)ctx->ticks_per_sec);
        pw_u64(ctx->w, "rss_kb", st.rss_pages * (uint64_t)ctx->page_kb);
        pw_obj_end(ctx->w);
        ctx->listed++;
        return 0;
}

static int handle_instance_procs(void *state, struct modrt_call *call)
{
        struct procs_ctx ctx = { .w = call->reply, .ticks_per_sec = sysconf(_SC_CLK_TCK), .page_kb = sysconf(_SC_PAGESIZE) / 1024 };
        int r;

        if (ctx.ticks_per_sec <= 0 || ctx.page_kb <= 0)
                return -EIO;
        pw_list_begin(call->reply, "procs");
        r = qemu_process_foreach_marked("/proc", state, procs_cb, &ctx);
        pw_list_end(call->reply);
        pw_list_begin(call->reply, "unverified");
        for (size_t i = 0; i < ctx.n_unverified; i++) {
                pw_obj_begin(call->reply, NULL);
                pw_str(call->reply, "instance_uuid", ctx.unverified[i].instance_uuid);
                pw_u64(call->reply, "pid", (uint64_t)ctx.unverified[i].pid);
                pw_obj_end(call->reply);
        }
        pw_list_end(call->reply);
        if (r < 0) {
                (void)snprintf(call->err, sizeof(call->err), "cannot list processes in /proc: %s", strerror(-r));
                return r;
        }
        pw_u64(call->reply, "total", ctx.total);
        pw_bool(call->reply, "truncated", ctx.listed < ctx.total);
        return 0;
}

static const struct modrt_entry entries[_SYSOBS_MAX] = {
        [SYSOBS_HOST_LOAD] = { &sysobs_entrypoints[SYSOBS_HOST_LOAD], handle_host_load },
        [SYSOBS_INSTANCE_PROCS] = { &sysobs_entrypoints[SYSOBS_INSTANCE_PROCS], handle_instance_procs },
};

static int sysobs_init(struct modrt *rt, void **ret_state)
{
        struct qemu_evidence *ev = malloc(sizeof(*ev));
        const char *user = modrt_config(rt)->qemu_user;

        if (!ev)
                return -ENOMEM;
        if (qemu_evidence_init(user, ev) < 0)
                log_warn("qemu_user %s: no such user; only QEMU processes running as root are taken for instances'", user);
        *ret_state = ev;
        return 0;
}

static void sysobs_done(void *state) { free(state); }

static const struct modrt_module system_observe_module = {
        .protocol = &sysobs_protocol,
        .entries = entries,
        .n_entries = ARRAY_SIZE(entries),
        .init = sysobs_init,
        .done = sysobs_done,
};

int main(int argc, char **argv) { return modrt_main(&system_observe_module, argc, argv); }
