/* lifecycle.c - see lifecycle.h */
#include "lifecycle.h"

#include "firewall.h"
#include "log.h"
#include "modules.h"
#include "placement.h" /* issue 18 hook */
#include "procfs.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdarg.h>

/* ---- steps ---- */

enum step_id {
        STEP_TAP,    /* network-control: the port's tap */
        STEP_OVS,    /* openvswitch: the port on the integration bridge (vif_type = ovs) */
        STEP_FIREWALL, /* firewall-control: the port's security-group rules (filtered ports) */
        STEP_DEFINE, /* libvirt: the domain definition */
        STEP_START,  /* libvirt: the domain running */
        STEP_PIN,    /* process-control: QEMU's threads on the instance's cpu_set (optional plug, see op_pin_skip) */
        _STEP_MAX,
};

struct step_def {
        const char *name;     /* for faults, logs and fault injection */
        enum plug_id plug;
        bool per_port;        /* one unit per port */
        const char *do_ep;    /* entrypoint that makes it so */
        const char *undo_ep;  /* entrypoint that takes it back */
};

/* In pipeline order. Later issues insert their steps between TAP and DEFINE. */
static const struct step_def steps[_STEP_MAX] = {
        [STEP_TAP] = { "tap", PLUG_NETWORK_CONTROL, true, "tap_create", "tap_delete" },
        [STEP_OVS] = { "ovs", PLUG_OPENVSWITCH, true, "port_add", "port_del" },
        [STEP_FIREWALL] = { "firewall", PLUG_FIREWALL_CONTROL, true, "port_rules_apply", "port_rules_remove" },
        [STEP_DEFINE] = { "define", PLUG_LIBVIRT, false, "domain_define", "domain_undefine" },
        [STEP_START] = { "start", PLUG_LIBVIRT, false, "domain_start", "domain_destroy" },
        /* No undo: the affinity goes with the QEMU process. */
        [STEP_PIN] = { "pin", PLUG_PROCESS_CONTROL, false, "instance_pin", NULL },
};

struct unit {
        enum step_id step;
        uint8_t port;         /* per-port steps */
        bool undo;
};

#define MAX_UNITS (2 * (LIBVIRT_MAX_PORTS * 3 + 3) + 4)

enum op_kind { OP_BOOT, OP_DELETE, OP_STOP, OP_START, OP_REBOOT, OP_REPAIR, OP_PIN };

static const char *const op_task[] = {
        [OP_BOOT] = "building", [OP_DELETE] = "deleting", [OP_STOP] = "stopping",
        [OP_START] = "starting", [OP_REBOOT] = "rebooting", [OP_REPAIR] = "building",
        [OP_PIN] = "pinning",
};

struct lifecycle_waiter {
        struct lifecycle_waiter *next;
        lifecycle_done_cb cb;             /* NULL once cancelled */
        void *userdata;
};

struct op {
        struct instance *inst;
        enum op_kind kind;
        struct unit units[MAX_UNITS];     /* the plan */
        size_t n_units;
        size_t pos;                       /* next unit */
        bool rolling_back;
        int error;                        /* first failure, 0 = none */
        int error_plug;
        char fault[256];
        struct module_call *call;         /* in flight */
        sd_event_source *timer;           /* stop: wait for the guest */
        struct lifecycle_waiter *waiters;
};

static struct {
        sd_event *event;
        struct nova_config cfg;
        char fault_step[16];              /* NOVA_TEST_FAULT_STEP: a step that fails on purpose (tests) */
        struct reconcile_report report;
        bool reconciling, reconcile_again;
        struct {                          /* domain_list / tap_list of the pass in progress */
                unsigned pending;            /* list calls outstanding */
                bool failed;
                struct json_object *domains; /* instance_uuid -> state */
                struct json_object *taps;    /* port_uuid -> true */
                struct json_object *vifs;    /* port_uuid -> true (OVS ports of ours) */
                bool taps_truncated, domains_truncated, vifs_truncated;
        } pass;
} lc;

static void op_next(struct op *op);

/* libvirt's test driver runs no QEMU: a pin finds no process there. */
static bool test_driver(void) { return strncmp(lc.cfg.libvirt_uri, "test:", 5) == 0; }

_printf_(3, 4) static void pin_record(struct instance *inst, const char *state, const char *fmt, ...)
{
        va_list ap;

        if (!inst->cpu_set[0])
                return;
        (void)strscpy(inst->pin_state, state, sizeof(inst->pin_state));
        va_start(ap, fmt);
        (void)vsnprintf(inst->pin_detail, sizeof(inst->pin_detail), fmt, ap);
        va_end(ap);
}

/* The pin step cannot run (process-control not connected or its module not
 * ready): record why, and the operation goes on without it. */
static bool op_pin_skip(struct op *op)
{
        char err[256];
        int r = modules_check_ready(PLUG_PROCESS_CONTROL, err, sizeof(err));

        if (r == 0)
                return false;
        if (r == -ENOTCONN)
                pin_record(op->inst, "unplugged", "process-control is not connected");
        else
                pin_record(op->inst, "failed", "%s", err);
        log_warn("instance %s (%s): cpu_set %s not applied: %s", op->inst->name, op->inst->uuid, op->inst->cpu_set,
                 r == -ENOTCONN ? "process-control is not connected" : err);
        return true;
}

/* Ports are plugged into OVS (vif_type = ovs) rather than left as bare taps. */
static bool ovs_in_use(void) { return streq(lc.cfg.vif_type, "ovs"); }

/* ---- requests ---- */

static int build_unit(const struct instance *inst, const struct unit *u, struct proto_writer *w, char *err,
                      size_t errlen)
{
        const struct step_def *s = &steps[u->step];
        const struct instance_port *p = &inst->ports[u->port];

        pw_init(w, PROTO_REQUEST, 0, 0, u->undo ? s->undo_ep : s->do_ep);
        switch (u->step) {
        case STEP_TAP:
                pw_str(w, "port_uuid", p->port_uuid);
                if (!u->undo) {
                        pw_str(w, "mac", p->mac);
                        pw_u64(w, "mtu", p->mtu);
                        if (p->filtered)
                                pw_bool(w, "hybrid", true); /* tap -> qbr bridge -> qvb/qvo veth */
                }
                break;
        case STEP_OVS:
                pw_str(w, "port_uuid", p->port_uuid);
                if (!u->undo) {
                        pw_str(w, "instance_uuid", inst->uuid);
                        pw_str(w, "mac", p->mac);
                        pw_u64(w, "mtu", p->mtu);
                        if (p->filtered)
                                pw_bool(w, "hybrid", true); /* OVS gets qvo..., not the tap */
                }
                break;
        case STEP_FIREWALL:
                if (!u->undo)
                        return firewall_port_request(p, NULL, w, err, errlen);
                pw_str(w, "port_uuid", p->port_uuid);
                break;
        case STEP_DEFINE:
                pw_str(w, "instance_uuid", inst->uuid);
                if (!u->undo) {
                        pw_str(w, "name", inst->name);
                        pw_u64(w, "vcpus", inst->vcpus);
                        pw_u64(w, "memory_mb", inst->memory_mb);
                        pw_list_begin(w, "ports");
                        for (size_t i = 0; i < inst->n_ports; i++) {
                                pw_obj_begin(w, NULL);
                                pw_str(w, "port_uuid", inst->ports[i].port_uuid);
                                pw_str(w, "mac", inst->ports[i].mac);
                                pw_u64(w, "mtu", inst->ports[i].mtu);
                                pw_obj_end(w);
                        }
                        pw_list_end(w);
                }
                break;
        case STEP_START:
                pw_str(w, "instance_uuid", inst->uuid);
                break;
        case STEP_PIN:
                pw_str(w, "instance_uuid", inst->uuid);
                pw_str(w, "cpus", inst->cpu_set);
                break;
        case _STEP_MAX:
                break;
        }
        return 0;
}

/* The forward plan of a boot (or repair): every step, per port where needed. */
static void plan_boot(struct op *op, bool start)
{
        op->n_units = 0;
        for (int s = 0; s < _STEP_MAX; s++) {
                if ((s == STEP_START || s == STEP_PIN) && !start)
                        continue;
                if (s == STEP_PIN && !op->inst->cpu_set[0])
                        continue;
                if (s == STEP_OVS && !ovs_in_use())
                        continue;
                /* Rules for filtered ports while the plug is connected; when it is not, the
                 * kernel keeps what was last applied and the firewall sync catches up later. */
                if (s == STEP_FIREWALL && !firewall_connected())
                        continue;
                if (steps[s].per_port)
                        for (size_t p = 0; p < op->inst->n_ports; p++) {
                                if (s == STEP_FIREWALL && !op->inst->ports[p].filtered)
                                        continue;
                                op->units[op->n_units++] = (struct unit){ (enum step_id)s, (uint8_t)p, false };
                        }
                else
                        op->units[op->n_units++] = (struct unit){ (enum step_id)s, 0, false };
        }
}

/* The undo of units[0..n) in reverse order. */
static void plan_undo(struct op *op, const struct unit *done, size_t n)
{
        struct unit tmp[MAX_UNITS];

        memcpy(tmp, done, n * sizeof(*done));
        op->n_units = 0;
        for (size_t i = n; i-- > 0;) {
                if (!steps[tmp[i].step].undo_ep)
                        continue; /* nothing to take back (pin) */
                tmp[i].undo = true;
                op->units[op->n_units++] = tmp[i];
        }
}

/* Every plug the plan needs must answer before anything changes. */
static int check_plugs(const struct op *op, char *err, size_t errlen, int *ret_plug)
{
        bool seen[_PLUG_MAX] = { false };

        for (size_t i = 0; i < op->n_units; i++) {
                enum plug_id plug = steps[op->units[i].step].plug;
                int r;

                if (seen[plug] || op->units[i].step == STEP_PIN)
                        continue; /* pinning is optional: without its plug the instance runs unpinned, and says so */
                seen[plug] = true;
                r = modules_check_ready(plug, err, errlen);
                if (r < 0) {
                        *ret_plug = plug;
                        return r;
                }
        }
        return 0;
}

/* ---- operations ---- */

static void notify(struct op *op, int status, const char *error, int plug, struct instance *inst)
{
        while (op->waiters) {
                struct lifecycle_waiter *w = op->waiters;
                op->waiters = w->next;
                if (w->cb)
                        w->cb(status, error, plug, inst, w->userdata);
                free(w);
        }
}

void lifecycle_waiter_cancel(struct lifecycle_waiter *w)
{
        if (w)
                w->cb = NULL;
}

static int add_waiter(struct op *op, lifecycle_done_cb cb, void *userdata, struct lifecycle_waiter **ret)
{
        struct lifecycle_waiter *w;

        if (!cb) {
                if (ret)
                        *ret = NULL;
                return 0;
        }
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->cb = cb;
        w->userdata = userdata;
        w->next = op->waiters;
        op->waiters = w;
        if (ret)
                *ret = w;
        return 0;
}

static void op_free(struct op *op)
{
        module_call_cancel(op->call);
        sd_event_source_disable_unref(op->timer);
        free(op);
}

static void op_finish(struct op *op)
{
        struct instance *inst = op->inst;
        int status = op->error;
        char fault[256];
        int plug = op->error_plug;

        memcpy(fault, op->fault, sizeof(fault));
        inst->op = NULL;
        inst->task[0] = '\0';
        if (status == 0) {
                inst->fault[0] = '\0';
                switch (op->kind) {
                case OP_BOOT:
                case OP_START:
                        (void)strscpy(inst->vm_state, "active", sizeof(inst->vm_state));
                        (void)strscpy(inst->power_state, "running", sizeof(inst->power_state));
                        break;
                case OP_REPAIR:
                        (void)strscpy(inst->power_state, streq(inst->vm_state, "active") ? "running" : "shutoff",
                                      sizeof(inst->power_state));
                        break;
                case OP_STOP:
                        (void)strscpy(inst->vm_state, "stopped", sizeof(inst->vm_state));
                        pin_record(inst, "pending", "%s", ""); /* QEMU is gone, and its affinity with it */
                        break;
                case OP_REBOOT:
                case OP_DELETE:
                case OP_PIN:
                        break;
                }
        } else {
                (void)strscpy(inst->fault, fault, sizeof(inst->fault));
                if (op->kind == OP_BOOT || op->kind == OP_REPAIR || op->kind == OP_DELETE)
                        (void)strscpy(inst->vm_state, "error", sizeof(inst->vm_state));
        }
        if (op->kind == OP_DELETE && status == 0) {
                log_info("instance %s (%s) deleted", inst->name, inst->uuid);
                notify(op, 0, NULL, -1, NULL);
                (void)instance_remove(inst);
                op_free(op);
                placement_kick("delete"); /* issue 18 hook: local capacity may have changed */
                return;
        }
        if (op->kind == OP_BOOT)
                placement_kick("boot"); /* issue 18 hook: local capacity may have changed */
        (void)instance_save(inst);
        if (status == 0)
                log_info("instance %s (%s): %s done (%s)", inst->name, inst->uuid, op_task[op->kind], inst->vm_state);
        else
                log_warn("instance %s (%s): %s failed: %s", inst->name, inst->uuid, op_task[op->kind], fault);
        notify(op, status, status ? fault : NULL, plug, inst);
        op_free(op);
}

_printf_(4, 5) static void op_fail(struct op *op, int error, int plug, const char *fmt, ...)
{
        va_list ap;

        if (op->error)
                return; /* keep the first cause */
        op->error = error;
        op->error_plug = plug;
        va_start(ap, fmt);
        (void)vsnprintf(op->fault, sizeof(op->fault), fmt, ap);
        va_end(ap);
}

/* A unit failed: boots roll back what they did, the rest stop here. */
static void op_unit_failed(struct op *op, int error, const char *text, int plug)
{
        const struct unit *u = &op->units[op->pos];

        if (op->rolling_back) {
                /* Best effort: note it, go on with the rest; reconcile reaps leftovers. */
                log_warn("instance %s: undo of %s failed: %s", op->inst->name, steps[u->step].name, text);
                op->pos++;
                op_next(op);
                return;
        }
        op_fail(op, error, plug, "%s failed: %s", steps[u->step].name, text);
        if (op->kind == OP_BOOT && op->pos > 0) {
                struct unit done[MAX_UNITS];
                size_t n = op->pos;
                memcpy(done, op->units, n * sizeof(done[0]));
                plan_undo(op, done, n);
                op->pos = 0;
                op->rolling_back = true;
                log_info("instance %s: rolling back %zu completed step(s)", op->inst->name, n);
                op_next(op);
                return;
        }
        op_finish(op);
}

static void on_stop_timeout(struct op *op);

static int on_stop_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        (void)s;
        (void)usec;
        on_stop_timeout(userdata);
        return 0;
}

static void on_unit_reply(const struct module_result *res, void *userdata)
{
        struct op *op = userdata;
        const struct unit *u = &op->units[op->pos];

        op->call = NULL;
        if (u->step == STEP_PIN) {
                if (res->status == 0)
                        pin_record(op->inst, "applied", "pid %llu, %llu threads",
                                   (unsigned long long)proto_get_u64(res->body, "pid", 0),
                                   (unsigned long long)proto_get_u64(res->body, "threads", 0));
                else if (res->status == -ENOENT && test_driver())
                        pin_record(op->inst, "failed", "no QEMU process found (libvirt's test driver, %s, starts none)",
                                   lc.cfg.libvirt_uri);
                else if (res->status == -ENOTCONN)
                        pin_record(op->inst, "unplugged", "process-control is not connected");
                else {
                        pin_record(op->inst, "failed", "%s", res->error);
                        /* A boot that asked for pinning and could not get it fails (and rolls
                         * back); a start, reboot or repair keeps the guest running, unpinned. */
                        if (op->kind == OP_BOOT) {
                                op_unit_failed(op, res->status, res->error, -1);
                                return;
                        }
                }
                if (!streq(op->inst->pin_state, "applied"))
                        log_warn("instance %s (%s): cpu_set %s not applied: %s", op->inst->name, op->inst->uuid,
                                 op->inst->cpu_set, op->inst->pin_detail);
                op->pos++;
                op_next(op);
                return;
        }
        if (res->status < 0 && !(u->undo && res->status == -ENOENT)) {
                op_unit_failed(op, res->status, res->error,
                               res->status == -ENOTCONN || res->status == -EAGAIN ? (int)steps[u->step].plug : -1);
                return;
        }
        if (op->kind == OP_STOP && res->body) {
                /* The guest may need time: wait for the stopped event (or the module's forced stop). */
                const char *state = proto_get_str(proto_get(res->body, "domain"), "state", "");
                if (!streq(state, "shutoff")) {
                        if (sd_event_add_time_relative(lc.event, &op->timer, CLOCK_MONOTONIC,
                                                       ((uint64_t)lc.cfg.shutdown_timeout_s + 10) * 1000000ULL,
                                                       1000000, on_stop_timer, op) < 0) {
                                op_unit_failed(op, -ENOMEM, "cannot arm the stop timer", -1);
                                return;
                        }
                        return;
                }
        }
        op->pos++;
        op_next(op);
}

static void on_stop_timeout(struct op *op)
{
        op->timer = sd_event_source_disable_unref(op->timer);
        op_fail(op, -ETIMEDOUT, -1, "the guest did not stop within %u s", lc.cfg.shutdown_timeout_s + 10);
        op_finish(op);
}

static void op_next(struct op *op)
{
        struct proto_writer *w;
        const struct unit *u;
        char err[512];
        int r;

        if (op->pos >= op->n_units) {
                op_finish(op);
                return;
        }
        u = &op->units[op->pos];
        if (u->step == STEP_PIN && op_pin_skip(op)) {
                op->pos++;
                op_next(op);
                return;
        }
        if (!u->undo && lc.fault_step[0] && streq(lc.fault_step, steps[u->step].name)) {
                op_unit_failed(op, -EIO, "injected fault (NOVA_TEST_FAULT_STEP)", -1);
                return;
        }
        w = malloc(sizeof(*w));
        if (!w) {
                op_unit_failed(op, -ENOMEM, "out of memory", -1);
                return;
        }
        r = build_unit(op->inst, u, w, err, sizeof(err));
        if (r < 0) {
                free(w);
                op_unit_failed(op, r, err, -1);
                return;
        }
        if (u->step == STEP_START && (op->kind == OP_STOP || op->kind == OP_REBOOT || op->kind == OP_START)) {
                /* power actions use their own entrypoints */
                pw_init(w, PROTO_REQUEST, 0, 0,
                        op->kind == OP_STOP ? "domain_shutdown" : op->kind == OP_REBOOT ? "domain_reboot" : "domain_start");
                pw_str(w, "instance_uuid", op->inst->uuid);
        }
        /* OVS calls wait for ovs-vswitchd (port_timeout_ms) and, with ovn, for
         * ovn-controller (ovn_wait_ms) inside the module: give them that on
         * top, so the module always answers with the reason. */
        r = modules_call(steps[u->step].plug, w,
                         u->step == STEP_OVS ? ((uint64_t)lc.cfg.port_timeout_ms + (lc.cfg.ovn ? lc.cfg.ovn_wait_ms : 0) +
                                                lc.cfg.module_timeout_ms) * 1000
                                             : 0,
                         on_unit_reply, op, &op->call, err, sizeof(err));
        free(w);
        if (r < 0)
                op_unit_failed(op, r, err, r == -ENOTCONN || r == -EAGAIN ? (int)steps[u->step].plug : -1);
}

static struct op *op_new(struct instance *inst, enum op_kind kind)
{
        struct op *op = calloc(1, sizeof(*op));

        if (!op)
                return NULL;
        op->inst = inst;
        op->kind = kind;
        op->error_plug = -1;
        return op;
}

/* Plan checked, instance marked, then go. */
static int op_launch(struct op *op, lifecycle_done_cb cb, void *userdata, struct lifecycle_waiter **ret_waiter)
{
        int r = add_waiter(op, cb, userdata, ret_waiter);

        if (r < 0) {
                free(op);
                return r;
        }
        op->inst->op = op;
        (void)strscpy(op->inst->task, op_task[op->kind], sizeof(op->inst->task));
        r = instance_save(op->inst);
        if (r < 0) {
                op->inst->op = NULL;
                op->inst->task[0] = '\0';
                notify(op, r, "cannot record the instance", -1, op->inst);
                op_free(op);
                return r;
        }
        op_next(op);
        return 0;
}

/* A cpu_set must name online CPUs: 0 or -EINVAL with the reason. (When the
 * online list cannot be read, process-control's own check decides.) */
static int cpu_set_check_online(const char *cpu_set, char *err, size_t errlen)
{
        _cleanup_free_ char *text = NULL;
        struct cpuset want, online;
        size_t len;

        if (!cpu_set[0] || read_file_bounded("/sys/devices/system/cpu/online", 4096, &text, &len) < 0 ||
            cpuset_parse(text, len, &online) < 0)
                return 0;
        if (cpuset_parse(cpu_set, strlen(cpu_set), &want) == 0 && cpuset_subset(&want, &online))
                return 0;
        while (len > 0 && text[len - 1] == '\n')
                text[--len] = '\0';
        (void)snprintf(err, errlen, "cpu_set %s: not all of these CPUs are online (online: %.64s)", cpu_set, text);
        return -EINVAL;
}

int lifecycle_boot(const struct instance *tmpl, lifecycle_done_cb cb, void *userdata, struct lifecycle_waiter **ret_waiter,
                   struct instance **ret_inst, char *err, size_t errlen, int *ret_plug)
{
        struct instance *inst;
        struct op probe = { 0 };
        struct instance tmp = *tmpl;
        struct op *op;
        int r;

        *ret_plug = -1;
        /* Filtered when firewall-control is connected (tap -> qbr -> veth -> OVS, rules
         * applied); otherwise the tap goes straight onto OVS and the port is unfiltered. */
        for (size_t i = 0; i < tmp.n_ports; i++) {
                char why[200];
                tmp.ports[i].filtered = firewall_connected();
                if (firewall_port_rule_count(&tmp.ports[i], NULL, why, sizeof(why)) < 0) {
                        (void)snprintf(err, errlen, "port %s: %s", tmp.ports[i].port_uuid, why);
                        return -EINVAL;
                }
        }
        r = cpu_set_check_online(tmp.cpu_set, err, errlen);
        if (r < 0)
                return r;
        /* Check the plugs on a dry plan before the instance exists at all. */
        probe.inst = &tmp;
        plan_boot(&probe, true);
        r = check_plugs(&probe, err, errlen, ret_plug);
        if (r < 0)
                return r;
        (void)strscpy(tmp.vm_state, "active", sizeof(tmp.vm_state));
        (void)strscpy(tmp.task, "building", sizeof(tmp.task));
        (void)strscpy(tmp.power_state, "nostate", sizeof(tmp.power_state));
        tmp.fault[0] = '\0';
        if (tmp.cpu_set[0]) {
                /* Said at once (the 202 answer too) when pinning cannot happen. */
                struct op o = { .inst = &tmp };
                pin_record(&tmp, "pending", "%s", "");
                (void)op_pin_skip(&o);
        }
        r = instance_add(&tmp, &inst);
        if (r == -EEXIST) {
                (void)snprintf(err, errlen, "an instance named %s (or with uuid %s) already exists", tmp.name, tmp.uuid);
                return r;
        }
        if (r < 0) {
                (void)snprintf(err, errlen, "cannot record the instance: %s", strerror(-r));
                return r;
        }
        op = op_new(inst, OP_BOOT);
        if (!op) {
                (void)instance_remove(inst);
                return -ENOMEM;
        }
        plan_boot(op, true);
        if (ret_inst)
                *ret_inst = inst;
        log_info("instance %s (%s): building (%zu ports)", inst->name, inst->uuid, inst->n_ports);
        return op_launch(op, cb, userdata, ret_waiter);
}

int lifecycle_delete(struct instance *inst, lifecycle_done_cb cb, void *userdata, struct lifecycle_waiter **ret_waiter,
                     char *err, size_t errlen, int *ret_plug)
{
        struct op *op;
        struct unit all[MAX_UNITS];
        int r;

        *ret_plug = -1;
        if (inst->op) {
                (void)snprintf(err, errlen, "instance %s is busy (%s)", inst->name, inst->task);
                return -EBUSY;
        }
        op = op_new(inst, OP_DELETE);
        if (!op)
                return -ENOMEM;
        plan_boot(op, true);
        memcpy(all, op->units, op->n_units * sizeof(all[0]));
        plan_undo(op, all, op->n_units);
        r = check_plugs(op, err, errlen, ret_plug);
        if (r < 0) {
                free(op);
                return r;
        }
        log_info("instance %s (%s): deleting", inst->name, inst->uuid);
        return op_launch(op, cb, userdata, ret_waiter);
}

int lifecycle_power(struct instance *inst, const char *action, lifecycle_done_cb cb, void *userdata,
                    struct lifecycle_waiter **ret_waiter, char *err, size_t errlen, int *ret_plug)
{
        enum op_kind kind;
        struct op *op;
        int r;

        *ret_plug = -1;
        if (streq(action, "stop"))
                kind = OP_STOP;
        else if (streq(action, "start"))
                kind = OP_START;
        else if (streq(action, "reboot"))
                kind = OP_REBOOT;
        else {
                (void)snprintf(err, errlen, "unknown action '%.32s'", action);
                return -EINVAL;
        }
        if (inst->op) {
                (void)snprintf(err, errlen, "instance %s is busy (%s)", inst->name, inst->task);
                return -EBUSY;
        }
        if (streq(inst->vm_state, "error") && kind != OP_START) {
                (void)snprintf(err, errlen, "instance %s is in error (%s); delete it or start it to repair", inst->name,
                               inst->fault);
                return -EINVAL;
        }
        op = op_new(inst, kind);
        if (!op)
                return -ENOMEM;
        if (kind == OP_START && streq(inst->vm_state, "error")) {
                op->kind = OP_REPAIR; /* start of an instance in error: converge it */
                (void)strscpy(inst->vm_state, "active", sizeof(inst->vm_state));
                plan_boot(op, true);
        } else {
                op->units[op->n_units++] = (struct unit){ STEP_START, 0, false };
                if (kind != OP_STOP && inst->cpu_set[0]) /* a new QEMU process (start): pin it again */
                        op->units[op->n_units++] = (struct unit){ STEP_PIN, 0, false };
        }
        r = check_plugs(op, err, errlen, ret_plug);
        if (r < 0) {
                free(op);
                return r;
        }
        return op_launch(op, cb, userdata, ret_waiter);
}

/* ---- events from the libvirt module ---- */

static void on_domain_event(const struct proto_value *body)
{
        const char *uuid = proto_get_str(body, "instance_uuid", ""), *state = proto_get_str(body, "state", "");
        struct instance *inst = instance_find(uuid);

        if (!inst || !state[0])
                return;
        if (strscpy(inst->power_state, state, sizeof(inst->power_state)) < 0)
                (void)strscpy(inst->power_state, "unknown", sizeof(inst->power_state));
        if (inst->op) {
                struct op *op = inst->op;
                if (op->kind == OP_STOP && op->timer && streq(state, "shutoff")) {
                        op->timer = sd_event_source_disable_unref(op->timer);
                        op->pos++;
                        op_next(op);
                }
                return;
        }
        /* The guest stopped by itself (or crashed): record it, as nova's power sync does. */
        if (streq(inst->vm_state, "active") && (streq(state, "shutoff") || streq(state, "crashed"))) {
                (void)strscpy(inst->vm_state, "stopped", sizeof(inst->vm_state));
                pin_record(inst, "pending", "%s", "");
                log_info("instance %s (%s) stopped outside our control (%s)", inst->name, inst->uuid, state);
                (void)instance_save(inst);
        }
}

/* ---- reconcile ---- */

static void reconcile_start(void);

static void reap_call_done(const struct module_result *res, void *userdata)
{
        (void)userdata;
        if (res->status < 0 && res->status != -ENOENT)
                log_warn("reconcile: reaping an orphan failed: %s", res->error);
}

static void reap(enum plug_id plug, const char *entrypoint, const char *key, const char *id)
{
        struct proto_writer *w = malloc(sizeof(*w));
        char err[256];

        if (!w)
                return;
        pw_init(w, PROTO_REQUEST, 0, 0, entrypoint);
        pw_str(w, key, id);
        if (modules_call(plug, w, 0, reap_call_done, NULL, NULL, err, sizeof(err)) < 0)
                log_warn("reconcile: cannot reap %s: %s", id, err);
        free(w);
}

static void repair(struct instance *inst, const char *why)
{
        struct op *op = op_new(inst, OP_REPAIR);
        char err[256];
        int plug;

        if (!op)
                return;
        plan_boot(op, streq(inst->vm_state, "active"));
        if (check_plugs(op, err, sizeof(err), &plug) < 0) {
                free(op);
                return;
        }
        log_info("reconcile: instance %s (%s): %s; repairing", inst->name, inst->uuid, why);
        lc.report.repaired++;
        (void)op_launch(op, NULL, NULL, NULL);
}

int lifecycle_refilter(struct instance *inst)
{
        struct op *op;
        char err[256];
        int plug;

        if (inst->op || streq(inst->vm_state, "error"))
                return -EBUSY;
        op = op_new(inst, OP_REPAIR);
        if (!op)
                return -ENOMEM;
        for (size_t p = 0; p < inst->n_ports; p++)
                inst->ports[p].filtered = true;
        plan_boot(op, streq(inst->vm_state, "active"));
        if (ovs_in_use()) {
                /* Take the taps off OVS first: a tap cannot join its bridge while it is an OVS port. */
                memmove(&op->units[inst->n_ports], op->units, op->n_units * sizeof(op->units[0]));
                for (size_t p = 0; p < inst->n_ports; p++)
                        op->units[p] = (struct unit){ STEP_OVS, (uint8_t)p, true };
                op->n_units += inst->n_ports;
        }
        if (check_plugs(op, err, sizeof(err), &plug) < 0) {
                for (size_t p = 0; p < inst->n_ports; p++)
                        inst->ports[p].filtered = false;
                free(op);
                return -EAGAIN;
        }
        log_info("instance %s (%s): firewall-control is connected; re-plumbing its ports through a bridge and "
                 "applying their security groups", inst->name, inst->uuid);
        return op_launch(op, NULL, NULL, NULL);
}

static void reconcile_finish(void)
{
        struct json_object *v;
        unsigned orphan_domains = 0, orphan_taps = 0, orphan_vifs = 0, reaped = 0;
        bool reap_orphans = streq(lc.cfg.orphan_policy, "reap");

        /* Orphans: resources of ours that no instance claims. */
        json_object_object_foreach(lc.pass.domains, uuid, state) {
                (void)state;
                if (instance_find(uuid))
                        continue;
                orphan_domains++;
                log_warn("reconcile: domain %s%s carries our mark but no instance owns it (%s)", LIBVIRT_DOMAIN_PREFIX,
                         uuid, reap_orphans ? "reaping it" : "orphan_policy = report");
                if (reap_orphans) {
                        reap(PLUG_LIBVIRT, "domain_destroy", "instance_uuid", uuid);
                        reap(PLUG_LIBVIRT, "domain_undefine", "instance_uuid", uuid);
                        reaped++;
                }
        }
        json_object_object_foreach(lc.pass.taps, port, present) {
                bool owned = false;
                (void)present;
                for (struct instance *i = instances_first(); i && !owned; i = i->next)
                        for (size_t p = 0; p < i->n_ports; p++)
                                if (streq(i->ports[p].port_uuid, port))
                                        owned = true;
                if (owned)
                        continue;
                orphan_taps++;
                log_warn("reconcile: tap of port %s carries our mark but no instance owns it (%s)", port,
                         reap_orphans ? "reaping it" : "orphan_policy = report");
                if (reap_orphans) {
                        reap(PLUG_NETWORK_CONTROL, "tap_delete", "port_uuid", port);
                        reaped++;
                }
        }
        json_object_object_foreach(lc.pass.vifs, vport, vpresent) {
                bool owned = false;
                (void)vpresent;
                for (struct instance *i = instances_first(); i && !owned; i = i->next)
                        for (size_t p = 0; p < i->n_ports; p++)
                                if (streq(i->ports[p].port_uuid, vport))
                                        owned = true;
                if (owned)
                        continue;
                orphan_vifs++;
                log_warn("reconcile: OVS port of port %s carries our mark but no instance owns it (%s)", vport,
                         reap_orphans ? "reaping it" : "orphan_policy = report");
                if (reap_orphans) {
                        reap(PLUG_OPENVSWITCH, "port_del", "port_uuid", vport);
                        reaped++;
                }
        }
        /* Instances: sync power state, finish interrupted work, repair what is missing. */
        lc.report.repaired = 0;
        for (struct instance *i = instances_first(), *next; i; i = next) {
                bool has_domain = json_object_object_get_ex(lc.pass.domains, i->uuid, &v);
                bool taps_ok = true, vifs_ok = true;
                char err[256];
                int plug;

                next = i->next;
                if (i->op)
                        continue;
                for (size_t p = 0; p < i->n_ports && !lc.pass.taps_truncated; p++) {
                        struct json_object *hybrid;
                        /* present, and plumbed the way the port needs (bridge for a filtered port) */
                        if (!json_object_object_get_ex(lc.pass.taps, i->ports[p].port_uuid, &hybrid) ||
                            json_object_get_boolean(hybrid) != i->ports[p].filtered)
                                taps_ok = false;
                }
                for (size_t p = 0; ovs_in_use() && p < i->n_ports && !lc.pass.vifs_truncated; p++)
                        if (!json_object_object_get_ex(lc.pass.vifs, i->ports[p].port_uuid, NULL))
                                vifs_ok = false;
                if (has_domain)
                        (void)strscpy(i->power_state, json_object_get_string(v), sizeof(i->power_state));
                if (streq(i->task, "deleting")) {
                        log_info("reconcile: instance %s: finishing an interrupted delete", i->name);
                        i->task[0] = '\0';
                        (void)lifecycle_delete(i, NULL, NULL, NULL, err, sizeof(err), &plug);
                        continue;
                }
                if (streq(i->task, "building")) {
                        i->task[0] = '\0';
                        repair(i, "its build was interrupted");
                        continue;
                }
                if (i->task[0]) {
                        i->task[0] = '\0';
                        (void)instance_save(i);
                }
                if (streq(i->vm_state, "error"))
                        continue; /* the operator decides: delete, or start to repair */
                if ((!has_domain && !lc.pass.domains_truncated) || !taps_ok || !vifs_ok) {
                        repair(i, !has_domain ? "its domain is missing"
                                  : !taps_ok  ? "a tap (or the bridge of a filtered port) is missing"
                                              : "an OVS port is missing");
                        continue;
                }
                if (streq(i->vm_state, "active") && (streq(i->power_state, "shutoff") || streq(i->power_state, "crashed"))) {
                        (void)strscpy(i->vm_state, "stopped", sizeof(i->vm_state));
                        log_info("reconcile: instance %s is %s; recorded as stopped", i->name, i->power_state);
                        (void)instance_save(i);
                }
        }
        lc.report.orphan_domains = orphan_domains;
        lc.report.orphan_taps = orphan_taps;
        lc.report.orphan_vifs = orphan_vifs;
        lc.report.reaped = reaped;
        lc.report.runs++;
        lc.report.last_usec = now_usec();
        lc.report.last_error[0] = '\0';
        log_info("reconcile: %zu instances, %u orphan domains, %u orphan taps, %u orphan OVS ports, %u reaped, "
                 "%u being repaired",
                 instances_count(), orphan_domains, orphan_taps, orphan_vifs, reaped, lc.report.repaired);
        firewall_sync();
}

static void reconcile_done(void)
{
        json_object_put(lc.pass.domains);
        json_object_put(lc.pass.taps);
        json_object_put(lc.pass.vifs);
        memset(&lc.pass, 0, sizeof(lc.pass));
        lc.reconciling = false;
        if (lc.reconcile_again) {
                lc.reconcile_again = false;
                reconcile_start();
        }
}

static void reconcile_note_failure(const char *what, const char *error)
{
        lc.pass.failed = true;
        (void)snprintf(lc.report.last_error, sizeof(lc.report.last_error), "%s: %.200s", what, error);
        log_warn("reconcile: %s", lc.report.last_error);
}

/* Both listings are in (or failed): judge, or give up this pass. */
static void reconcile_maybe_finish(void)
{
        if (lc.pass.pending > 0)
                return;
        if (!lc.pass.failed)
                reconcile_finish();
        reconcile_done();
}

enum listing { LIST_DOMAINS = 1, LIST_TAPS, LIST_VIFS };

static void on_list_reply(const struct module_result *res, void *userdata)
{
        static const char *const names[] = { [LIST_DOMAINS] = "domain_list", [LIST_TAPS] = "tap_list",
                                             [LIST_VIFS] = "port_list" };
        enum listing kind = (enum listing)(intptr_t)userdata;
        struct json_object *into = kind == LIST_DOMAINS ? lc.pass.domains : kind == LIST_TAPS ? lc.pass.taps
                                                                                              : lc.pass.vifs;
        const struct proto_value *list;
        bool truncated;

        lc.pass.pending--;
        if (res->status < 0) {
                reconcile_note_failure(names[kind], res->error);
                reconcile_maybe_finish();
                return;
        }
        list = proto_get(res->body, kind == LIST_DOMAINS ? "domains" : kind == LIST_TAPS ? "taps" : "ports");
        for (const struct proto_value *e = list ? list->child : NULL; e; e = e->next) {
                if (kind == LIST_DOMAINS)
                        json_object_object_add(into, proto_get_str(e, "instance_uuid", ""),
                                               json_object_new_string(proto_get_str(e, "state", "unknown")));
                else if (kind == LIST_TAPS) /* value: the tap is plumbed through its qbr bridge */
                        json_object_object_add(into, proto_get_str(e, "port_uuid", ""),
                                               json_object_new_boolean(proto_get_bool(e, "hybrid", false)));
                else
                        json_object_object_add(into, proto_get_str(e, "port_uuid", ""), json_object_new_boolean(true));
        }
        truncated = proto_get_bool(res->body, "truncated", false);
        if (kind == LIST_DOMAINS)
                lc.pass.domains_truncated = truncated;
        else if (kind == LIST_TAPS)
                lc.pass.taps_truncated = truncated;
        else
                lc.pass.vifs_truncated = truncated;
        if (truncated)
                log_warn("reconcile: %s is longer than one reply holds; missing items are not judged this pass",
                         names[kind]);
        reconcile_maybe_finish();
}

static void reconcile_start(void)
{
        static const struct {
                enum plug_id plug;
                const char *entrypoint;
                enum listing kind;
        } lists[] = { { PLUG_LIBVIRT, "domain_list", LIST_DOMAINS },
                      { PLUG_NETWORK_CONTROL, "tap_list", LIST_TAPS },
                      { PLUG_OPENVSWITCH, "port_list", LIST_VIFS } };
        struct proto_writer *w;
        char err[256];

        if (lc.reconciling) {
                lc.reconcile_again = true;
                return;
        }
        /* Every fact is needed to judge an instance; wait for every module. */
        if (!modules_ready(PLUG_LIBVIRT) || !modules_ready(PLUG_NETWORK_CONTROL) ||
            (ovs_in_use() && !modules_ready(PLUG_OPENVSWITCH)))
                return;
        w = malloc(sizeof(*w));
        if (!w)
                return;
        lc.reconciling = true;
        lc.pass.domains = json_object_new_object();
        lc.pass.taps = json_object_new_object();
        lc.pass.vifs = json_object_new_object();
        lc.pass.pending = 1; /* held until every call is out */
        for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
                if (lists[i].kind == LIST_VIFS && !ovs_in_use())
                        continue;
                pw_init(w, PROTO_REQUEST, 0, 0, lists[i].entrypoint);
                if (modules_call(lists[i].plug, w, 0, on_list_reply, (void *)(intptr_t)lists[i].kind, NULL, err,
                                 sizeof(err)) < 0)
                        reconcile_note_failure(lists[i].entrypoint, err);
                else
                        lc.pass.pending++;
        }
        free(w);
        lc.pass.pending--;
        reconcile_maybe_finish();
}

static void on_module_event(enum plug_id plug, const char *event, const struct proto_value *body)
{
        if (plug == PLUG_LIBVIRT && streq(event, "domain_lifecycle"))
                on_domain_event(body);
        else if ((plug == PLUG_LIBVIRT && streq(event, "libvirt_connection")) ||
                 (plug == PLUG_OPENVSWITCH && streq(event, "ovsdb_connection"))) {
                if (proto_get_bool(body, "connected", false))
                        reconcile_start(); /* the backend may have changed while we could not see it */
        }
        else if (plug == PLUG_FIREWALL_CONTROL && streq(event, "ruleset_rebuilt")) {
                log_warn("firewall-control rebuilt its damaged nftables tables; re-applying every port");
                firewall_sync();
        }
}

/* process-control is ready: pin every idle active instance whose cpu_set is
 * not applied (booted while the plug was disconnected, or the module was down). */
static void repin_all(void)
{
        for (struct instance *i = instances_first(); i; i = i->next) {
                struct op *op;
                /* power "unknown" (core just started, reconcile not done) counts: a pin
                 * state recorded before the restart must not go stale */
                if (i->op || !i->cpu_set[0] || streq(i->pin_state, "applied") || !streq(i->vm_state, "active") ||
                    streq(i->power_state, "shutoff") || streq(i->power_state, "crashed"))
                        continue;
                op = op_new(i, OP_PIN);
                if (!op)
                        return;
                op->units[op->n_units++] = (struct unit){ STEP_PIN, 0, false };
                log_info("instance %s (%s): process-control is ready; pinning to cpu_set %s", i->name, i->uuid,
                         i->cpu_set);
                (void)op_launch(op, NULL, NULL, NULL);
        }
}

static void on_module_ready(enum plug_id plug)
{
        if (plug == PLUG_PROCESS_CONTROL)
                repin_all();
        else if (plug == PLUG_LIBVIRT || plug == PLUG_NETWORK_CONTROL || plug == PLUG_OPENVSWITCH)
                reconcile_start();
        else if (plug == PLUG_FIREWALL_CONTROL)
                firewall_sync();
        else if (plug == PLUG_HARDWARE_OBSERVE)
                placement_kick("hardware-observe ready"); /* issue 18 hook: the host inventory is there */
}

void lifecycle_reconcile_report(struct reconcile_report *ret) { *ret = lc.report; }

int lifecycle_init(sd_event *event, const struct nova_config *cfg)
{
        const char *fault = getenv("NOVA_TEST_FAULT_STEP");

        lc.event = event;
        lc.cfg = *cfg;
        if (fault && *fault) {
                if (strscpy(lc.fault_step, fault, sizeof(lc.fault_step)) < 0)
                        return -EINVAL;
                log_warn("fault injection is on: every '%s' step fails (NOVA_TEST_FAULT_STEP; tests only)", fault);
        }
        modules_set_handlers(on_module_event, on_module_ready);
        return 0;
}

void lifecycle_free(void)
{
        for (struct instance *i = instances_first(); i; i = i->next)
                if (i->op) {
                        struct op *op = i->op;
                        notify(op, -ECANCELED, "nova-compute is shutting down", -1, i);
                        i->op = NULL;
                        op_free(op);
                }
        json_object_put(lc.pass.domains);
        json_object_put(lc.pass.taps);
        json_object_put(lc.pass.vifs);
        memset(&lc.pass, 0, sizeof(lc.pass));
        modules_set_handlers(NULL, NULL);
}
