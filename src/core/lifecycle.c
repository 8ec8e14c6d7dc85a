/* lifecycle.c - see lifecycle.h */
#include "lifecycle.h"

#include "disks.h"
#include "firewall.h"
#include "log.h"
#include "modules.h"
#include "procfs.h"
#include "fw-protocol.h"
#include "netctl-protocol.h"
#include "ovs-protocol.h"
#include "procctl-protocol.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdarg.h>
#include <assert.h>

/* ---- steps ---- */

enum step_id {
        STEP_TAP,    /* network-control: the port's tap */
        STEP_OVS,    /* openvswitch: the port on the integration bridge (vif_type = ovs) */
        STEP_FIREWALL, /* firewall-control: the port's security-group rules (filtered ports) */
        STEP_ROOT_DISK, /* libvirt: the root disk, a qcow2 overlay on the image (instances with an image) */
        STEP_CONFIG_DRIVE, /* libvirt: the config drive (instances with an image) */
        STEP_DEFINE, /* libvirt: the domain definition */
        STEP_START,  /* libvirt: the domain running */
        STEP_PIN,    /* process-control: QEMU's threads on the instance's cpu_set (optional plug, see op_pin_skip) */
        STEP_MIGRATE, /* libvirt: the live migration to another host (source; never in a boot plan) */
        STEP_CHECK,  /* libvirt: the domain's state, read (a migration's finish and abort; never in a boot plan) */
        _STEP_MAX,
};

struct step_def {
        const char *name;       /* for faults, logs and fault injection */
        bool per_port;          /* one unit per port */
        struct module_ep make;  /* the entrypoint that makes it so (its plug is the step's) */
        struct module_ep undo;  /* the one that takes it back */
        bool has_undo;
};

/* In pipeline order. */
static const struct step_def steps[_STEP_MAX] = {
        [STEP_TAP] = { "tap", true, EP_NETCTL(TAP_CREATE), EP_NETCTL(TAP_DELETE), true },
        [STEP_OVS] = { "ovs", true, EP_OVS(PORT_ADD), EP_OVS(PORT_DEL), true },
        [STEP_FIREWALL] = { "firewall", true, EP_FW(PORT_RULES_APPLY), EP_FW(PORT_RULES_REMOVE), true },
        /* Undone by volumes_delete: the config drive's kind only; the root disk's takes every
         * volume of the instance left (the disk and the console log that goes with it). */
        [STEP_ROOT_DISK] = { "root_disk", false, EP_LIBVIRT(ROOT_DISK_CREATE), EP_LIBVIRT(VOLUMES_DELETE), true },
        [STEP_CONFIG_DRIVE] = { "config_drive", false, EP_LIBVIRT(CONFIG_DRIVE_CREATE), EP_LIBVIRT(VOLUMES_DELETE), true },
        [STEP_DEFINE] = { "define", false, EP_LIBVIRT(DOMAIN_DEFINE), EP_LIBVIRT(DOMAIN_UNDEFINE), true },
        [STEP_START] = { "start", false, EP_LIBVIRT(DOMAIN_START), EP_LIBVIRT(DOMAIN_DESTROY), true },
        /* No undo: the affinity goes with the QEMU process. */
        [STEP_PIN] = { "pin", false, EP_PROCCTL(INSTANCE_PIN), { 0 }, false },
        /* No undo: a failed migration leaves the guest running here (libvirt's own rollback). */
        [STEP_MIGRATE] = { "migrate", false, EP_LIBVIRT(DOMAIN_MIGRATE), { 0 }, false },
        [STEP_CHECK] = { "check", false, EP_LIBVIRT(DOMAIN_STATE), { 0 }, false },
};

struct unit {
        enum step_id step;
        uint8_t port;         /* per-port steps */
        bool undo;
};

#define MAX_UNITS (2 * (LIBVIRT_MAX_PORTS * 3 + 5) + 6)

/* OP_MIGRATE_IN: the destination's prepare; OP_MIGRATE_OUT: the source's migration and
 * clean-up; OP_MIGRATE_FINISH, OP_MIGRATE_ABORT: the destination's last step (docs/MIGRATION.md). */
enum op_kind { OP_BOOT, OP_DELETE, OP_STOP, OP_START, OP_REBOOT, OP_REPAIR, OP_PIN, OP_MIGRATE_IN, OP_MIGRATE_OUT,
               OP_MIGRATE_FINISH, OP_MIGRATE_ABORT };

static const enum instance_task op_task[] = {
        [OP_BOOT] = TASK_BUILDING, [OP_DELETE] = TASK_DELETING, [OP_STOP] = TASK_STOPPING,
        [OP_START] = TASK_STARTING, [OP_REBOOT] = TASK_REBOOTING, [OP_REPAIR] = TASK_BUILDING,
        [OP_PIN] = TASK_PINNING, [OP_MIGRATE_IN] = TASK_MIGRATING_IN, [OP_MIGRATE_OUT] = TASK_MIGRATING,
        [OP_MIGRATE_FINISH] = TASK_MIGRATING_IN, [OP_MIGRATE_ABORT] = TASK_MIGRATING_IN,
};

struct lifecycle_waiter {
        struct lifecycle_waiter *next;
        lifecycle_done_cb cb;             /* NULL once cancelled */
        void *userdata;
};

struct op {
        struct lifecycle *lc;             /* the engine this op runs in */
        struct instance *inst;
        struct instance before;           /* inst as op_new found it: put back when the launch cannot be recorded
                                           * (its ports are before_ports) */
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
        struct lifecycle_migrate_target target; /* OP_MIGRATE_OUT: where to */

        struct instance_port before_ports[]; /* inst's inst->n_ports ports as op_new found them */
};

/* The three listings a pass compares with the store. */
enum listing { LIST_DOMAINS, LIST_TAPS, LIST_VIFS, LIST_VOLUMES, _LIST_MAX };

struct lifecycle {
        sd_event *event;
        const struct nova_config *cfg;    /* the core's configuration (struct core owns it) */
        struct firewall *firewall;        /* synced after reconcile and on firewall events */
        struct instance_store *instances; /* the instances operations work on */
        struct modules *modules;          /* the registry requests go through */
        lifecycle_capacity_fn capacity_changed; /* told after a boot or delete (Placement); may be NULL */
        void *capacity_userdata;        /* its argument (the Placement client) */
        char fault_step[16];              /* NOVA_TEST_FAULT_STEP: a step that fails on purpose (tests) */
        struct reconcile_report report;
        bool reconciling, reconcile_again;
        sd_event_source *reconcile_timer; /* the periodic pass (reconcile_interval_s), NULL when 0 */
        sd_event_source *unsaved_timer;   /* retries records whose write failed; NULL when none is unsaved */
        uint64_t change_seq;              /* counts instance changes a pass must not judge by older listings
                                           * (struct instance changed_seq) */
        uint64_t unsaved_retry_usec;      /* its next delay (doubles up to UNSAVED_RETRY_MAX_USEC) */
        struct {                          /* the listings of the pass in progress */
                unsigned pending;            /* list calls outstanding */
                bool failed;
                /* LIST_DOMAINS: instance_uuid -> state; LIST_TAPS: port_uuid -> plumbed through
                 * its bridge; LIST_VIFS: port_uuid -> true; LIST_VOLUMES: instance_uuid ->
                 * { root, config, console: true } for the volumes it has */
                struct json_object *found[_LIST_MAX];
                bool truncated[_LIST_MAX];   /* incomplete: what is missing from it is not judged */
                char after[_LIST_MAX][UUID_STR_LEN + 1]; /* the cursor of the page asked for ("" = first) */
                unsigned pages[_LIST_MAX], items[_LIST_MAX]; /* read so far */
                uint64_t started_usec;       /* when the pass asked for its first pages */
                uint64_t started_seq;        /* change_seq then */
                struct json_object *gone;    /* UUIDs of instances (and their ports) removed since the
                                              * pass began: not orphans (NULL: none) */
        } pass;
        struct listing_call {            /* userdata of each listing call */
                struct lifecycle *lc;
                enum listing kind;
        } calls[_LIST_MAX];
        struct lifecycle_migration_report last_migration; /* the last migration from here that libvirt finished */
};

static void op_next(struct op *op);

/* A record whose write failed (ENOSPC, EIO, EROFS) is written again on a timer
 * until it is, not only when some other write happens: the chaos suite found
 * the record of a boot that finished while the store was full still saying
 * "building" long after space was back, with nothing else to write. */
#define UNSAVED_RETRY_MIN_USEC 500000ULL
#define UNSAVED_RETRY_MAX_USEC 8000000ULL

static int on_unsaved_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct lifecycle *lc = userdata;

        (void)usec;
        if (instances_save_unsaved(lc->instances) == 0) {
                lc->unsaved_timer = sd_event_source_disable_unref(lc->unsaved_timer);
                lc->unsaved_retry_usec = UNSAVED_RETRY_MIN_USEC;
                return 0;
        }
        lc->unsaved_retry_usec = lc->unsaved_retry_usec >= UNSAVED_RETRY_MAX_USEC / 2 ? UNSAVED_RETRY_MAX_USEC
                                                                             : lc->unsaved_retry_usec * 2;
        (void)sd_event_source_set_time_relative(s, lc->unsaved_retry_usec);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* After a write: arm the retry when a record is left unsaved. */
static void unsaved_kick(struct lifecycle *lc)
{
        if (lc->unsaved_timer || instances_unsaved(lc->instances) == 0)
                return;
        lc->unsaved_retry_usec = UNSAVED_RETRY_MIN_USEC;
        if (sd_event_add_time_relative(lc->event, &lc->unsaved_timer, CLOCK_MONOTONIC, lc->unsaved_retry_usec, 0,
                                       on_unsaved_timer, lc) < 0)
                log_warn("cannot arm the retry of unsaved instance records: they are written at the next write");
}

/* instance_save, and the retry armed when it fails. */
static int save(struct lifecycle *lc, struct instance *inst)
{
        int r = instance_save(inst);

        unsaved_kick(lc);
        return r;
}

/* libvirt's test driver runs no QEMU: a pin finds no process there. */
static bool test_driver(const struct lifecycle *lc) { return strncmp(lc->cfg->libvirt_uri, "test:", 5) == 0; }

_printf_(3, 4) static void pin_record(struct instance *inst, enum pin_state state, const char *fmt, ...)
{
        va_list ap;

        if (!inst->cpu_set[0])
                return;
        inst->pin_state = state;
        va_start(ap, fmt);
        (void)vsnprintf(inst->pin_detail, sizeof(inst->pin_detail), fmt, ap);
        va_end(ap);
}

/* The pin step cannot run (process-control not connected or its module not
 * ready): record why, and the operation goes on without it. */
static bool op_pin_skip(struct op *op)
{
        char err[256];
        int r = modules_check_ready(op->lc->modules, PLUG_PROCESS_CONTROL, err, sizeof(err));

        if (r == 0)
                return false;
        if (r == -ENOTCONN)
                pin_record(op->inst, PIN_UNPLUGGED, "process-control is not connected");
        else
                pin_record(op->inst, PIN_FAILED, "%s", err);
        log_warn("instance %s (%s): cpu_set %s not applied: %s", op->inst->name, op->inst->uuid, op->inst->cpu_set,
                 r == -ENOTCONN ? "process-control is not connected" : err);
        return true;
}

/* Ports are plugged into OVS (vif_type = ovs) rather than left as bare taps. */
static bool ovs_in_use(const struct lifecycle *lc) { return streq(lc->cfg->vif_type, "ovs"); }

/* ---- requests ---- */

/* OVS's userspace datapath forwards a frame whose checksum the guest's virtio-net left
 * to the host as it is: a hybrid port's qvb finishes it (network-control, datapath
 * "netdev"); a plain port, the tap on OVS, has no device that would, so the guest's NIC
 * is defined without checksum offload (libvirt, checksum_offload false). */
static bool userspace_datapath(const struct nova_config *cfg)
{
        return streq(cfg->vif_type, "ovs") && streq(cfg->bridge_datapath_type, "netdev");
}

/* domain_define's request past the instance's uuid: disks, kernel, size and ports. */
static void write_define(const struct nova_config *cfg, const struct instance *inst, struct proto_writer *w)
{
        if (inst->image_uuid[0]) {
                pw_str(w, "image_uuid", inst->image_uuid);
                pw_bool(w, "config_drive", true);
        }
        if (inst->kernel_uuid[0]) {
                pw_str(w, "kernel_image_uuid", inst->kernel_uuid);
                pw_str(w, "ramdisk_image_uuid", inst->ramdisk_uuid);
                if (inst->cmdline)
                        pw_str(w, "cmdline", inst->cmdline);
        }
        pw_str(w, "name", inst->name);
        pw_u64(w, "vcpus", inst->vcpus);
        pw_u64(w, "memory_mb", inst->memory_mb);
        pw_list_begin(w, "ports");
        for (size_t i = 0; i < inst->n_ports; i++) {
                pw_obj_begin(w, NULL);
                pw_str(w, "port_uuid", inst->ports[i].port_uuid);
                pw_str(w, "mac", inst->ports[i].mac);
                pw_u64(w, "mtu", inst->ports[i].mtu);
                if (!inst->ports[i].filtered && userspace_datapath(cfg))
                        pw_bool(w, "checksum_offload", false);
                pw_obj_end(w);
        }
        pw_list_end(w);
}

static int build_unit(const struct nova_config *cfg, const struct firewall *fw, const struct instance *inst, const struct unit *u,
                      struct proto_writer *w, char *err, size_t errlen)
{
        const struct step_def *s = &steps[u->step];
        const struct instance_port *p = &inst->ports[u->port];

        module_request_init(w, u->undo ? s->undo : s->make);
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
                        return firewall_port_request(fw, p, NULL, w, err, errlen);
                pw_str(w, "port_uuid", p->port_uuid);
                break;
        case STEP_ROOT_DISK:
                pw_str(w, "instance_uuid", inst->uuid);
                if (!u->undo) {
                        pw_str(w, "image_uuid", inst->image_uuid);
                        pw_u64(w, "size_gb", inst->disk_gb);
                        if (inst->root_disk) /* made before: it holds the guest's data, never made again */
                                pw_bool(w, "existing", true);
                }
                break;
        case STEP_CONFIG_DRIVE:
                pw_str(w, "instance_uuid", inst->uuid);
                if (u->undo)
                        pw_str(w, "kind", "config");
                break;
        case STEP_DEFINE:
                pw_str(w, "instance_uuid", inst->uuid);
                if (!u->undo)
                        write_define(cfg, inst, w);
                break;
        case STEP_START:
                pw_str(w, "instance_uuid", inst->uuid);
                break;
        case STEP_PIN:
                pw_str(w, "instance_uuid", inst->uuid);
                pw_str(w, "cpus", inst->cpu_set);
                break;
        case STEP_MIGRATE: /* unit_request() adds the target */
        case STEP_CHECK:
                pw_str(w, "instance_uuid", inst->uuid);
                break;
        case _STEP_MAX:
                break;
        }
        return 0;
}

/* The forward plan of a boot (or repair): every step, per port where needed. */
static void plan_boot(struct op *op, bool start)
{
        const struct lifecycle *lc = op->lc;

        op->n_units = 0;
        for (int s = 0; s < _STEP_MAX; s++) {
                if ((s == STEP_START || s == STEP_PIN) && !start)
                        continue;
                if (s == STEP_MIGRATE || s == STEP_CHECK)
                        continue;
                if (s == STEP_PIN && !op->inst->cpu_set[0])
                        continue;
                if (s == STEP_OVS && !ovs_in_use(lc))
                        continue;
                if ((s == STEP_ROOT_DISK || s == STEP_CONFIG_DRIVE) && !op->inst->image_uuid[0])
                        continue; /* diskless */
                /* Rules for filtered ports while the plug is connected; when it is not, the
                 * kernel keeps what was last applied and the firewall sync catches up later. */
                if (s == STEP_FIREWALL && !firewall_connected(lc->firewall))
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
                if (!steps[tmp[i].step].has_undo)
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
                enum plug_id plug = steps[op->units[i].step].make.plug;
                int r;

                if (seen[plug] || op->units[i].step == STEP_PIN)
                        continue; /* pinning is optional: without its plug the instance runs unpinned, and says so */
                seen[plug] = true;
                r = modules_check_ready(op->lc->modules, plug, err, errlen);
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

/* inst is about to leave the store, its resources removed: while a pass is listing, remember its
 * instance and port UUIDs, so the pass does not take what it listed of them before for orphans. */
static void pass_note_gone(struct lifecycle *lc, const struct instance *inst)
{
        if (!lc->reconciling)
                return;
        if (!lc->pass.gone)
                lc->pass.gone = json_object_new_object();
        if (!lc->pass.gone)
                return;
        json_object_object_add(lc->pass.gone, inst->uuid, NULL);
        for (size_t p = 0; p < inst->n_ports; p++)
                json_object_object_add(lc->pass.gone, inst->ports[p].port_uuid, NULL);
}

/* The instance's states after its operation ended with status (0 or -errno) and fault. */
static void op_outcome_apply(const struct op *op, struct instance *inst, int status, const char *fault)
{
        if (status == 0) {
                inst->fault[0] = '\0';
                switch (op->kind) {
                case OP_BOOT:
                case OP_START:
                case OP_MIGRATE_FINISH:
                        inst->vm_state = VM_ACTIVE;
                        (void)strscpy(inst->power_state, "running", sizeof(inst->power_state));
                        break;
                case OP_REPAIR:
                        (void)strscpy(inst->power_state, inst->vm_state == VM_ACTIVE ? "running" : "shutoff",
                                      sizeof(inst->power_state));
                        break;
                case OP_STOP:
                        inst->vm_state = VM_STOPPED;
                        pin_record(inst, PIN_PENDING, "%s", ""); /* QEMU is gone, and its affinity with it */
                        break;
                case OP_MIGRATE_IN:
                        inst->task = TASK_MIGRATING_IN; /* prepared: waiting for the migration */
                        break;
                case OP_REBOOT:
                case OP_DELETE:
                case OP_PIN:
                case OP_MIGRATE_OUT:
                case OP_MIGRATE_ABORT:
                        break;
                }
                return;
        }
        (void)strscpy(inst->fault, fault, sizeof(inst->fault));
        if (op->kind == OP_BOOT || op->kind == OP_REPAIR || op->kind == OP_DELETE)
                inst->vm_state = VM_ERROR;
        /* The destination keeps its prepared state for finish or abort; a source whose
         * migration libvirt finished keeps the clean-up for reconcile. A failed migration
         * (its first unit) leaves the source as it was, the guest running here. */
        if ((op->kind == OP_MIGRATE_FINISH || op->kind == OP_MIGRATE_ABORT) && op->before.task == TASK_MIGRATING_IN)
                inst->task = TASK_MIGRATING_IN;
        if (op->kind == OP_MIGRATE_OUT && !(op->n_units > 0 && op->units[0].step == STEP_MIGRATE && op->pos == 0))
                inst->task = TASK_MIGRATING;
}

/* An operation whose success removes the record (delete, migrated away, aborted prepare): true when
 * the record went and the op was answered and freed; false with *status and fault set when the record
 * could not be removed (everything else is gone; the record stays, in error, and says so). */
static bool op_finish_removal(struct op *op, int *status, char *fault, size_t faultlen)
{
        struct lifecycle *lc = op->lc;
        struct instance *inst = op->inst;
        char name[sizeof(inst->name)], uuid[sizeof(inst->uuid)];
        int r;

        memcpy(name, inst->name, sizeof(name)); /* instance_remove() frees inst */
        memcpy(uuid, inst->uuid, sizeof(uuid));
        pass_note_gone(lc, inst);
        r = instance_remove(inst);
        if (r == 0) {
                log_info("instance %s (%s) %s", name, uuid,
                         op->kind == OP_MIGRATE_OUT     ? "migrated away: forgotten here"
                         : op->kind == OP_MIGRATE_ABORT ? "migration aborted: prepared resources removed"
                                                        : "deleted");
                notify(op, 0, NULL, -1, NULL);
                op_free(op);
                if (lc->capacity_changed)
                        lc->capacity_changed(lc->capacity_userdata, "delete");
                return true;
        }
        /* Everything is gone but the record, which still says deleting (a restart finishes the
         * delete); meanwhile it stays, in error, and a delete again removes it. */
        *status = r;
        inst->vm_state = VM_ERROR;
        (void)snprintf(fault, faultlen, "deleted, but the instance record could not be removed: %s; delete it again",
                       strerror(-r));
        (void)strscpy(inst->fault, fault, sizeof(inst->fault));
        if (lc->capacity_changed)
                lc->capacity_changed(lc->capacity_userdata, "delete");
        return false;
}

static void op_finish(struct op *op)
{
        struct instance *inst = op->inst;
        int status = op->error;
        char fault[256];
        int plug = op->error_plug;

        memcpy(fault, op->fault, sizeof(fault));
        inst->op = NULL;
        inst->task = TASK_NONE;
        inst->changed_seq = ++op->lc->change_seq; /* newer than the listings of a pass in progress */
        op_outcome_apply(op, inst, status, fault);
        if (op->kind == OP_MIGRATE_IN && status < 0) {
                /* nothing of the prepare is left (rolled back): the record goes too */
                log_warn("instance %s (%s): migration prepare failed%s: %s", inst->name, inst->uuid,
                         op->rolling_back ? " and was rolled back" : "", fault);
                pass_note_gone(op->lc, inst);
                (void)instance_remove(inst);
                notify(op, status, fault, plug, NULL);
                op_free(op);
                return;
        }
        if ((op->kind == OP_DELETE || op->kind == OP_MIGRATE_OUT || op->kind == OP_MIGRATE_ABORT) && status == 0 &&
            op_finish_removal(op, &status, fault, sizeof(fault)))
                return;
        if (op->kind == OP_BOOT && op->lc->capacity_changed)
                op->lc->capacity_changed(op->lc->capacity_userdata, "boot");
        /* What was done is done: when the record cannot be written the instance keeps
         * what happened in memory, marked unsaved, and the next write of the store
         * writes it (instance_save, or the retry timer); the record on disk stays
         * the last good one. */
        (void)save(op->lc, inst);
        if (status == 0)
                log_info("instance %s (%s): %s done (%s)", inst->name, inst->uuid,
                         instance_task_to_string(op_task[op->kind]), vm_state_to_string(inst->vm_state));
        else
                log_warn("instance %s (%s): %s failed: %s", inst->name, inst->uuid,
                         instance_task_to_string(op_task[op->kind]), fault);
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

/* What a unit is called in faults and logs: its step, or the power action a
 * stop, reboot or start sends in the start step's place (a failed reboot was
 * reported as "start failed"). */
static const char *unit_name(const struct op *op, const struct unit *u)
{
        /* an undo (a delete, a rollback) is named by what it does: a delete whose
         * domain_destroy failed said "start failed" */
        static const char *const undo_names[_STEP_MAX] = {
                [STEP_TAP] = "tap removal",         [STEP_OVS] = "ovs port removal",
                [STEP_FIREWALL] = "rules removal",  [STEP_ROOT_DISK] = "root disk removal",
                [STEP_CONFIG_DRIVE] = "config drive removal", [STEP_DEFINE] = "undefine",
                [STEP_START] = "destroy",
        };

        if (u->undo && undo_names[u->step])
                return undo_names[u->step];
        if (u->step == STEP_START && op->kind == OP_STOP)
                return "stop";
        if (u->step == STEP_START && op->kind == OP_REBOOT)
                return "reboot";
        return steps[u->step].name;
}

/* A unit failed: boots roll back what they did, the rest stop here. */
static void op_unit_failed(struct op *op, int error, const char *text, int plug)
{
        const struct unit *u = &op->units[op->pos];

        if (op->rolling_back) {
                /* Best effort: note it, go on with the rest; reconcile reaps leftovers. */
                log_warn("instance %s: undo of %s failed: %s", op->inst->name, unit_name(op, u), text);
                op->pos++;
                op_next(op);
                return;
        }
        op_fail(op, error, plug, "%s failed: %s", unit_name(op, u), text);
        /* A unit that timed out or whose module went away may still have done its
         * work (a module answering late finishes the request the core gave up on:
         * the chaos suite found a failed boot's tap made after the answer); its undo
         * is idempotent, and the module runs it after the late request. */
        bool unknown = error == -ETIMEDOUT || error == -ECONNRESET;
        if ((op->kind == OP_BOOT || op->kind == OP_MIGRATE_IN) && (op->pos > 0 || unknown)) {
                struct unit done[MAX_UNITS];
                size_t n = op->pos + (unknown ? 1 : 0);
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

/* The core is shutting down under op: nothing failed. The instance keeps its
 * stored task (building, deleting, ...) and reconcile finishes the work when
 * the core is back, as after a crash. */
static void op_abandon(struct op *op)
{
        struct instance *inst = op->inst;

        log_info("instance %s (%s): %s interrupted by the shutdown; reconcile finishes it at the next start", inst->name,
                 inst->uuid, instance_task_to_string(op_task[op->kind]));
        inst->op = NULL;
        notify(op, -ECANCELED, "nova-compute is shutting down", -1, inst);
        op_free(op);
}

/* STEP_PIN's reply: recorded on the instance; only a boot fails for it. */
static void on_pin_reply(struct op *op, const struct module_result *res)
{
        if (res->status == 0)
                pin_record(op->inst, PIN_APPLIED, "pid %llu, %llu threads",
                           (unsigned long long)proto_get_u64(res->body, "pid", 0),
                           (unsigned long long)proto_get_u64(res->body, "threads", 0));
        else if (res->status == -ENOENT && test_driver(op->lc))
                pin_record(op->inst, PIN_FAILED, "no QEMU process found (libvirt's test driver, %s, starts none)",
                           op->lc->cfg->libvirt_uri);
        else if (res->status == -ENOTCONN)
                pin_record(op->inst, PIN_UNPLUGGED, "process-control is not connected");
        else {
                pin_record(op->inst, PIN_FAILED, "%s", res->error);
                /* A boot that asked for pinning and could not get it fails (and rolls
                 * back); a start, reboot or repair keeps the guest running, unpinned. */
                if (op->kind == OP_BOOT) {
                        op_unit_failed(op, res->status, res->error, -1);
                        return;
                }
        }
        if (op->inst->pin_state != PIN_APPLIED)
                log_warn("instance %s (%s): cpu_set %s not applied: %s", op->inst->name, op->inst->uuid,
                         op->inst->cpu_set, op->inst->pin_detail);
        op->pos++;
        op_next(op);
}

/* STEP_CHECK's reply (is the migrated domain here?): true when it decided the op's next move. */
static bool on_check_reply(struct op *op, const struct module_result *res)
{
        const char *state = proto_get_str(proto_get(res->body, "domain"), "state", "");

        if (op->kind == OP_MIGRATE_ABORT && res->status == 0) {
                op_unit_failed(op, -EEXIST, "the domain is here (the migration completed): finish the migration instead",
                               -1);
                return true;
        }
        if (op->kind == OP_MIGRATE_ABORT && res->status == -ENOENT) {
                op->pos++;
                op_next(op);
                return true;
        }
        if (res->status == -ENOENT) {
                op_unit_failed(op, -ENOENT, "the domain is not here: the migration has not completed "
                               "(migrate it again from the source, or abort here)", -1);
                return true;
        }
        if (res->status == 0 && !streq(state, "running")) {
                op_unit_failed(op, -EAGAIN, streq(state, "paused") ? "the domain is here but paused: the "
                               "migration is still running" : "the domain is here but not running", -1);
                return true;
        }
        return false;
}

/* STEP_MIGRATE succeeded: libvirt's figures, kept for `migrate progress` and logged. */
static void record_migration(struct op *op, const struct proto_value *body)
{
        struct lifecycle_migration_report *m = &op->lc->last_migration;

        memcpy(m->instance_uuid, op->inst->uuid, sizeof(m->instance_uuid));
        m->elapsed_ms = proto_get_u64(body, "elapsed_ms", 0);
        m->data_total = proto_get_u64(body, "data_total", 0);
        m->data_processed = proto_get_u64(body, "data_processed", 0);
        m->disk_total = proto_get_u64(body, "disk_total", 0);
        m->disk_processed = proto_get_u64(body, "disk_processed", 0);
        m->memory_iteration = proto_get_u64(body, "memory_iteration", 0);
        m->downtime_ms = proto_get(body, "downtime_ms") ? (int64_t)proto_get_u64(body, "downtime_ms", 0) : -1;
        log_info("instance %s (%s): migrated in %llu ms, downtime %lld ms (libvirt's; -1: not reported) "
                 "(%llu of %llu bytes processed, disk %llu of %llu); removing what is left here",
                 op->inst->name, op->inst->uuid, (unsigned long long)m->elapsed_ms, (long long)m->downtime_ms,
                 (unsigned long long)m->data_processed, (unsigned long long)m->data_total,
                 (unsigned long long)m->disk_processed, (unsigned long long)m->disk_total);
}

/* OP_STOP's stop unit answered: true when the op now waits for the stopped event (or the module's
 * forced stop), or failed arming that wait. */
static bool stop_waits(struct op *op, const struct module_result *res)
{
        const char *state;

        if (op->kind != OP_STOP || !res->body)
                return false;
        state = proto_get_str(proto_get(res->body, "domain"), "state", "");
        if (streq(state, "shutoff"))
                return false;
        /* The guest may need time: wait for the stopped event (or the module's forced stop). */
        if (sd_event_add_time_relative(op->lc->event, &op->timer, CLOCK_MONOTONIC,
                                       ((uint64_t)op->lc->cfg->shutdown_timeout_s + 10) * 1000000ULL, 1000000,
                                       on_stop_timer, op) < 0)
                op_unit_failed(op, -ENOMEM, "cannot arm the stop timer", -1);
        return true;
}

static void on_unit_reply(const struct module_result *res, void *userdata)
{
        struct op *op = userdata;
        const struct unit *u = &op->units[op->pos];

        op->call = NULL;
        if (res->status == -ESHUTDOWN)
                return op_abandon(op);
        if (u->step == STEP_PIN)
                return on_pin_reply(op, res);
        if (u->step == STEP_CHECK && on_check_reply(op, res))
                return;
        if (u->step == STEP_MIGRATE && res->status == 0)
                record_migration(op, res->body);
        if (res->status < 0 && !(u->undo && res->status == -ENOENT)) {
                op_unit_failed(op, res->status, res->error,
                               res->status == -ENOTCONN || res->status == -EAGAIN ? (int)steps[u->step].make.plug : -1);
                return;
        }
        if (u->step == STEP_ROOT_DISK && !u->undo && res->status == 0) {
                /* The disk's real size (max of the request and the image's): what DISK_GB counts. */
                uint64_t gb = (proto_get_u64(res->body, "capacity", 0) + (1ULL << 30) - 1) >> 30;
                if (gb > op->inst->disk_gb && gb <= INSTANCE_DISK_GB_MAX)
                        op->inst->disk_gb = (uint32_t)gb;
                op->inst->root_disk = true; /* from now on it holds the guest's data */
        }
        if (u->step == STEP_ROOT_DISK && u->undo)
                op->inst->root_disk = false; /* removed (or gone already): a boot may make it again */
        if (stop_waits(op, res))
                return;
        op->pos++;
        op_next(op);
}

static void on_stop_timeout(struct op *op)
{
        op->timer = sd_event_source_disable_unref(op->timer);
        op_fail(op, -ETIMEDOUT, -1, "the guest did not stop within %u s", op->lc->cfg->shutdown_timeout_s + 10);
        op_finish(op);
}

/* How long the module may take for u: OVS calls wait for ovs-vswitchd
 * (port_timeout_ms, extended while the switch keeps assigning ofports, up to
 * OVS_WAIT_SCALE_MAX times that: ovs_wait_deadline()) and, with ovn, for
 * ovn-controller (ovn_wait_ms) inside the module: give them that on top, so
 * the module always answers with the reason. 0: the configured default. */
static uint64_t unit_timeout_usec(const struct lifecycle *lc, const struct unit *u, const struct op *op)
{
        if (u->step == STEP_MIGRATE) /* the module aborts the job at timeout_s and then answers */
                return (op->target.timeout_s + 60) * 1000000ULL;
        if (u->step != STEP_OVS)
                return 0;
        return ((uint64_t)lc->cfg->port_timeout_ms * OVS_WAIT_SCALE_MAX + (lc->cfg->ovn ? lc->cfg->ovn_wait_ms : 0) +
                lc->cfg->module_timeout_ms) *
               1000;
}

/* The request of unit u into w: 0, or -errno with the reason in err. */
static int unit_request(const struct op *op, const struct unit *u, struct proto_writer *w, char *err, size_t errlen)
{
        static const struct module_ep power_ep[] = {
                [OP_STOP] = EP_LIBVIRT(DOMAIN_SHUTDOWN), [OP_REBOOT] = EP_LIBVIRT(DOMAIN_REBOOT),
                [OP_START] = EP_LIBVIRT(DOMAIN_START),
        };
        int r = build_unit(op->lc->cfg, op->lc->firewall, op->inst, u, w, err, errlen);

        if (r < 0)
                return r;
        if (u->step == STEP_TAP && !u->undo && ovs_in_use(op->lc)) /* netdev: qvb finishes the guest's checksums */
                pw_str(w, "datapath", op->lc->cfg->bridge_datapath_type);
        if (u->step == STEP_MIGRATE) {
                pw_str(w, "dest_uri", op->target.dest_uri);
                pw_str(w, "migrate_host", op->target.migrate_host);
                pw_str(w, "dest_pool", op->target.dest_pool);
                pw_u64(w, "timeout_s", op->target.timeout_s);
                if (op->target.bandwidth_mib)
                        pw_u64(w, "bandwidth_mib", op->target.bandwidth_mib);
        }
        if (u->step == STEP_START && (op->kind == OP_STOP || op->kind == OP_REBOOT || op->kind == OP_START)) {
                /* power actions use their own entrypoints */
                module_request_init(w, power_ep[op->kind]);
                pw_str(w, "instance_uuid", op->inst->uuid);
        }
        return 0;
}

/* The config drive's description of inst in a pipe (disks.c): 0 and *ret_fd, or -errno with why. */
static int config_drive_fd(const struct instance *inst, int *ret_fd, char *err, size_t errlen)
{
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = disks_config_drive_json(inst, &text, &len);

        if (r == 0)
                r = disks_pipe_with(text, len, ret_fd);
        if (r < 0)
                (void)snprintf(err, errlen, "cannot describe the config drive: %s", strerror(-r));
        return r;
}

/* Send the next unit of the plan (or finish). */
static void op_next(struct op *op)
{
        _cleanup_free_ struct proto_writer *w = NULL;
        _cleanup_close_ int fd = -EBADF;
        const struct unit *u;
        enum plug_id plug;
        char err[512];
        int r;

        if (op->pos >= op->n_units)
                return op_finish(op);
        u = &op->units[op->pos];
        if (u->step == STEP_PIN && op_pin_skip(op)) {
                op->pos++;
                return op_next(op);
        }
        if (!u->undo && op->lc->fault_step[0] && streq(op->lc->fault_step, steps[u->step].name))
                return op_unit_failed(op, -EIO, "injected fault (NOVA_TEST_FAULT_STEP)", -1);
        w = malloc(sizeof(*w));
        if (!w)
                return op_unit_failed(op, -ENOMEM, "out of memory", -1);
        r = unit_request(op, u, w, err, sizeof(err));
        if (r < 0)
                return op_unit_failed(op, r, err, -1);
        plug = steps[u->step].make.plug;
        if (u->step == STEP_CONFIG_DRIVE && !u->undo) {
                r = config_drive_fd(op->inst, &fd, err, sizeof(err));
                if (r < 0)
                        return op_unit_failed(op, r, err, -1);
        }
        r = modules_call_fd(op->lc->modules, plug, w, fd, unit_timeout_usec(op->lc, u, op), on_unit_reply, op, &op->call, err,
                            sizeof(err));
        if (r < 0)
                op_unit_failed(op, r, err, r == -ENOTCONN || r == -EAGAIN ? (int)plug : -1);
}

static struct op *op_new(struct lifecycle *lc, struct instance *inst, enum op_kind kind)
{
        struct op *op = calloc(1, sizeof(*op) + inst->n_ports * sizeof(op->before_ports[0]));

        if (!op)
                return NULL;
        op->lc = lc;
        op->inst = inst;
        op->before = *inst;
        if (inst->n_ports > 0)
                memcpy(op->before_ports, inst->ports, inst->n_ports * sizeof(op->before_ports[0]));
        op->before.ports = op->before_ports;
        op->kind = kind;
        op->error_plug = -1;
        return op;
}

/* Plan checked, instance marked and recorded, then go. When the record cannot
 * be written (ENOSPC, EIO, EROFS, ...) nothing has started: the instance is
 * put back as op_new found it, no waiter is called or kept (*ret_waiter NULL)
 * and err says why. 0 or -errno. */
static int op_launch(struct op *op, lifecycle_done_cb cb, void *userdata, struct lifecycle_waiter **ret_waiter,
                     char *err, size_t errlen)
{
        struct instance *inst = op->inst;
        int r = add_waiter(op, cb, userdata, ret_waiter);

        if (r < 0) {
                free(op);
                return r;
        }
        inst->op = op;
        inst->task = op_task[op->kind];
        r = instance_save(inst);
        if (r < 0) {
                struct instance *next = inst->next;
                struct instance_port *ports = inst->ports;
                *inst = op->before;
                inst->next = next; /* the list may have changed since */
                inst->ports = ports; /* the instance's own array, with the ports as they were */
                if (inst->n_ports > 0)
                        memcpy(inst->ports, op->before_ports, inst->n_ports * sizeof(inst->ports[0]));
                inst->op = NULL;
                if (err)
                        (void)snprintf(err, errlen, "cannot record the instance: %s", strerror(-r));
                while (op->waiters) {
                        struct lifecycle_waiter *w = op->waiters;
                        op->waiters = w->next;
                        free(w);
                }
                if (ret_waiter)
                        *ret_waiter = NULL;
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

/* A migration's destination: the boot plan without define and start (the domain comes
 * with the migration; PERSIST_DEST defines it here). */
static void plan_prepare(struct op *op)
{
        size_t n = 0;

        plan_boot(op, false);
        for (size_t i = 0; i < op->n_units; i++)
                if (op->units[i].step != STEP_DEFINE)
                        op->units[n++] = op->units[i];
        op->n_units = n;
}

/* A new instance from tmpl: a boot (OP_BOOT) or a migration's prepare (OP_MIGRATE_IN). */
/* Ports are filtered when firewall-control is connected (tap -> qbr -> veth -> OVS, rules
 * applied); otherwise the tap goes straight onto OVS and the port is unfiltered. -EINVAL with err
 * when a port's groups cannot be applied. */
static int mark_ports_filtered(struct lifecycle *lc, struct instance *tmp, char *err, size_t errlen)
{
        for (size_t i = 0; i < tmp->n_ports; i++) {
                char why[200];
                tmp->ports[i].filtered = firewall_connected(lc->firewall);
                if (firewall_port_rule_count(lc->firewall, &tmp->ports[i], NULL, why, sizeof(why)) < 0) {
                        (void)snprintf(err, errlen, "port %s: %s", tmp->ports[i].port_uuid, why);
                        return -EINVAL;
                }
        }
        return 0;
}

/* The new instance's record, or a negative errno with err saying why. */
static int record_new(struct lifecycle *lc, const struct instance *tmp, struct instance **ret, char *err, size_t errlen)
{
        int r = instance_add(lc->instances, tmp, ret);

        if (r == -EEXIST)
                (void)snprintf(err, errlen, "an instance named %s (or with uuid %s) already exists", tmp->name, tmp->uuid);
        else if (r == -ENOSPC && instances_count(lc->instances) >= INSTANCES_MAX)
                (void)snprintf(err, errlen, "no room for instance %s: at most %d instances", tmp->name, INSTANCES_MAX);
        else if (r < 0)
                (void)snprintf(err, errlen, "cannot record the instance: %s", strerror(-r));
        return r;
}

static int launch_new(struct lifecycle *lc, const struct instance *tmpl, enum op_kind kind, lifecycle_done_cb cb, void *userdata,
                      struct lifecycle_waiter **ret_waiter, struct instance **ret_inst, char *err, size_t errlen, int *ret_plug)
{
        struct instance *inst;
        struct op probe = { 0 };
        struct instance tmp = *tmpl;
        struct instance_port ports[LIBVIRT_MAX_PORTS];
        struct op *op;
        int r;

        assert(tmpl && err && ret_plug && tmpl->n_ports <= LIBVIRT_MAX_PORTS);
        /* The ports are marked filtered or not here: on a copy, the caller's template stays as it was. */
        if (tmp.n_ports > 0) {
                memcpy(ports, tmpl->ports, tmpl->n_ports * sizeof(ports[0]));
                tmp.ports = ports;
        }
        *ret_plug = -1;
        r = mark_ports_filtered(lc, &tmp, err, errlen);
        if (r < 0)
                return r;
        r = cpu_set_check_online(tmp.cpu_set, err, errlen);
        if (r < 0)
                return r;
        /* the config drive describes every port an instance can have */
        _Static_assert(DISKS_CONFIG_DRIVE_MAX_PORTS >= LIBVIRT_MAX_PORTS, "config drive port limit");
        /* Check the plugs on a dry plan before the instance exists at all. */
        probe.lc = lc;
        probe.inst = &tmp;
        if (kind == OP_MIGRATE_IN)
                plan_prepare(&probe);
        else
                plan_boot(&probe, true);
        r = check_plugs(&probe, err, errlen, ret_plug);
        if (r < 0)
                return r;
        tmp.vm_state = VM_ACTIVE;
        tmp.task = op_task[kind];
        (void)strscpy(tmp.power_state, "nostate", sizeof(tmp.power_state));
        tmp.fault[0] = '\0';
        if (tmp.cpu_set[0]) {
                /* Said at once (the 202 answer too) when pinning cannot happen. */
                struct op o = { .lc = lc, .inst = &tmp };
                pin_record(&tmp, PIN_PENDING, "%s", "");
                (void)op_pin_skip(&o);
        }
        r = record_new(lc, &tmp, &inst, err, errlen);
        if (r < 0)
                return r;
        op = op_new(lc, inst, kind);
        if (!op) {
                (void)instance_remove(inst);
                return -ENOMEM;
        }
        if (kind == OP_MIGRATE_IN)
                plan_prepare(op);
        else
                plan_boot(op, true);
        r = op_launch(op, cb, userdata, ret_waiter, err, errlen);
        if (r < 0) {
                /* Nothing was created: the record goes again (an unlink works on a full
                 * disk; where it cannot, the record says building and the next start
                 * repairs or the operator deletes). */
                if (instance_remove(inst) < 0) {
                        inst->vm_state = VM_ERROR;
                        (void)snprintf(inst->fault, sizeof(inst->fault), "%s", err);
                }
                return r;
        }
        if (ret_inst)
                *ret_inst = inst;
        log_info("instance %s (%s): %s (%zu ports)", inst->name, inst->uuid,
                 kind == OP_MIGRATE_IN ? "preparing for an incoming migration" : "building", inst->n_ports);
        return 0;
}

int lifecycle_boot(struct lifecycle *lc, const struct instance *tmpl, lifecycle_done_cb cb, void *userdata, struct lifecycle_waiter **ret_waiter,
                   struct instance **ret_inst, char *err, size_t errlen, int *ret_plug)
{
        return launch_new(lc, tmpl, OP_BOOT, cb, userdata, ret_waiter, ret_inst, err, errlen, ret_plug);
}

int lifecycle_migrate_prepare(struct lifecycle *lc, const struct instance *tmpl, lifecycle_done_cb cb, void *userdata,
                              struct lifecycle_waiter **ret_waiter, struct instance **ret_inst, char *err, size_t errlen,
                              int *ret_plug)
{
        struct instance tmp = *tmpl;

        /* what the source recorded about its own run is not ours (its root disk is made here) */
        tmp.root_disk = false;
        tmp.cpu_set[0] = '\0';
        tmp.pin_state = PIN_NONE;
        tmp.pin_detail[0] = '\0';
        tmp.fault[0] = '\0';
        return launch_new(lc, &tmp, OP_MIGRATE_IN, cb, userdata, ret_waiter, ret_inst, err, errlen, ret_plug);
}

/* The source's clean-up after libvirt moved the domain: the undo of the prepare plan (ports,
 * rules, volumes; the domain is gone already), after STEP_MIGRATE when with_migrate. */
static void plan_migrate_out(struct op *op, bool with_migrate)
{
        struct unit all[MAX_UNITS];
        size_t n;

        plan_prepare(op);
        n = op->n_units;
        memcpy(all, op->units, n * sizeof(all[0]));
        plan_undo(op, all, n);
        if (!with_migrate)
                return;
        memmove(op->units + 1, op->units, op->n_units * sizeof(op->units[0]));
        op->units[0] = (struct unit){ STEP_MIGRATE, 0, false };
        op->n_units++;
}

static int launch_existing(struct lifecycle *lc, struct instance *inst, enum op_kind kind, const struct lifecycle_migrate_target *target,
                           lifecycle_done_cb cb, void *userdata, struct lifecycle_waiter **ret_waiter, char *err, size_t errlen,
                           int *ret_plug)
{
        struct op *op;
        int r;

        *ret_plug = -1;
        if (inst->op) {
                (void)snprintf(err, errlen, "instance %s is busy (%s)", inst->name, instance_task_to_string(inst->task));
                return -EBUSY;
        }
        if (kind == OP_MIGRATE_OUT && (inst->vm_state != VM_ACTIVE || inst->task != TASK_NONE)) {
                (void)snprintf(err, errlen, "instance %s is %s%s%s: only an active instance migrates", inst->name,
                               vm_state_to_string(inst->vm_state), inst->task != TASK_NONE ? ", " : "",
                               inst->task != TASK_NONE ? instance_task_to_string(inst->task) : "");
                return -EINVAL;
        }
        /* finish again, or after reconcile recorded the arrival: the check confirms it */
        if (kind == OP_MIGRATE_FINISH && inst->task == TASK_NONE && inst->vm_state == VM_ACTIVE)
                ;
        else if ((kind == OP_MIGRATE_FINISH || kind == OP_MIGRATE_ABORT) && inst->task != TASK_MIGRATING_IN) {
                (void)snprintf(err, errlen, "instance %s is not waiting for an incoming migration", inst->name);
                return -EINVAL;
        }
        op = op_new(lc, inst, kind);
        if (!op)
                return -ENOMEM;
        if (target)
                op->target = *target;
        if (kind == OP_MIGRATE_OUT) {
                plan_migrate_out(op, true);
        } else {
                struct unit all[MAX_UNITS];
                size_t n = 0;
                if (kind == OP_MIGRATE_ABORT) {
                        plan_prepare(op);
                        n = op->n_units;
                        memcpy(all, op->units, n * sizeof(all[0]));
                        plan_undo(op, all, n);
                        memmove(op->units + 1, op->units, op->n_units * sizeof(op->units[0]));
                } else {
                        op->n_units = 0;
                }
                op->units[0] = (struct unit){ STEP_CHECK, 0, false };
                op->n_units++;
        }
        r = check_plugs(op, err, errlen, ret_plug);
        if (r < 0) {
                free(op);
                return r;
        }
        log_info("instance %s (%s): %s", inst->name, inst->uuid,
                 kind == OP_MIGRATE_OUT ? "migrating" : kind == OP_MIGRATE_FINISH ? "finishing its incoming migration"
                                                                                : "aborting its incoming migration");
        return op_launch(op, cb, userdata, ret_waiter, err, errlen);
}

int lifecycle_migrate(struct lifecycle *lc, struct instance *inst, const struct lifecycle_migrate_target *target,
                      lifecycle_done_cb cb, void *userdata, struct lifecycle_waiter **ret_waiter, char *err, size_t errlen,
                      int *ret_plug)
{
        return launch_existing(lc, inst, OP_MIGRATE_OUT, target, cb, userdata, ret_waiter, err, errlen, ret_plug);
}

int lifecycle_migrate_finish(struct lifecycle *lc, struct instance *inst, lifecycle_done_cb cb, void *userdata,
                             struct lifecycle_waiter **ret_waiter, char *err, size_t errlen, int *ret_plug)
{
        return launch_existing(lc, inst, OP_MIGRATE_FINISH, NULL, cb, userdata, ret_waiter, err, errlen, ret_plug);
}

int lifecycle_migrate_abort(struct lifecycle *lc, struct instance *inst, lifecycle_done_cb cb, void *userdata,
                            struct lifecycle_waiter **ret_waiter, char *err, size_t errlen, int *ret_plug)
{
        return launch_existing(lc, inst, OP_MIGRATE_ABORT, NULL, cb, userdata, ret_waiter, err, errlen, ret_plug);
}

void lifecycle_last_migration(const struct lifecycle *lc, struct lifecycle_migration_report *ret) { *ret = lc->last_migration; }

int lifecycle_delete(struct lifecycle *lc, struct instance *inst, lifecycle_done_cb cb, void *userdata, struct lifecycle_waiter **ret_waiter,
                     char *err, size_t errlen, int *ret_plug)
{
        struct op *op;
        struct unit all[MAX_UNITS];
        int r;

        assert(inst && err && ret_plug);
        *ret_plug = -1;
        if (inst->op) {
                (void)snprintf(err, errlen, "instance %s is busy (%s)", inst->name, instance_task_to_string(inst->task));
                return -EBUSY;
        }
        op = op_new(lc, inst, OP_DELETE);
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
        return op_launch(op, cb, userdata, ret_waiter, err, errlen);
}

int lifecycle_power(struct lifecycle *lc, struct instance *inst, enum power_action action, lifecycle_done_cb cb, void *userdata,
                    struct lifecycle_waiter **ret_waiter, char *err, size_t errlen, int *ret_plug)
{
        static const enum op_kind kinds[_POWER_ACTION_MAX] = {
                [POWER_STOP] = OP_STOP, [POWER_START] = OP_START, [POWER_REBOOT] = OP_REBOOT,
        };
        enum op_kind kind;
        struct op *op;
        int r;

        assert(inst && action < _POWER_ACTION_MAX && err && ret_plug);
        *ret_plug = -1;
        kind = kinds[action];
        if (inst->op) {
                (void)snprintf(err, errlen, "instance %s is busy (%s)", inst->name, instance_task_to_string(inst->task));
                return -EBUSY;
        }
        if (inst->vm_state == VM_ERROR && kind != OP_START) {
                (void)snprintf(err, errlen, "instance %s is in error (%s); delete it or start it to repair", inst->name,
                               inst->fault);
                return -EINVAL;
        }
        op = op_new(lc, inst, kind);
        if (!op)
                return -ENOMEM;
        if (kind == OP_START && inst->vm_state == VM_ERROR) {
                op->kind = OP_REPAIR; /* start of an instance in error: converge it */
                inst->vm_state = VM_ACTIVE;
                plan_boot(op, true);
        } else {
                op->units[op->n_units++] = (struct unit){ STEP_START, 0, false };
                if (kind != OP_STOP && inst->cpu_set[0]) /* a new QEMU process (start): pin it again */
                        op->units[op->n_units++] = (struct unit){ STEP_PIN, 0, false };
        }
        r = check_plugs(op, err, errlen, ret_plug);
        if (r < 0) {
                /* Refused before anything changed: the instance goes back as it was (an instance
                 * in error stays in error; it was left active, and the next reconcile repaired
                 * what the API had refused). */
                inst->vm_state = op->before.vm_state;
                free(op);
                return r;
        }
        return op_launch(op, cb, userdata, ret_waiter, err, errlen);
}

/* ---- events from the libvirt module ---- */

static void on_domain_event(struct lifecycle *lc, const struct proto_value *body)
{
        const char *uuid = proto_get_str(body, "instance_uuid", ""), *state = proto_get_str(body, "state", "");
        struct instance *inst = instance_find(lc->instances, uuid);

        if (!inst || !state[0])
                return;
        inst->changed_seq = ++lc->change_seq; /* newer than the listings of a pass in progress */
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
        if (inst->vm_state == VM_ACTIVE && (streq(state, "shutoff") || streq(state, "crashed"))) {
                inst->vm_state = VM_STOPPED;
                pin_record(inst, PIN_PENDING, "%s", "");
                log_info("instance %s (%s) stopped outside our control (%s)", inst->name, inst->uuid, state);
                (void)save(lc, inst);
        }
}

/* ---- reconcile ---- */

static bool domain_owned(const struct lifecycle *lc, const char *instance_uuid)
{
        return instance_find(lc->instances, instance_uuid) != NULL;
}

static bool port_owned(const struct lifecycle *lc, const char *port_uuid)
{
        return instance_find_port(lc->instances, port_uuid, NULL) != NULL;
}

static const struct listing_def {
        struct module_ep list;          /* the entrypoint that lists ours */
        const char *reply_key;          /* the list in its reply */
        const char *id_key;             /* each item's identifier */
        bool (*owned)(const struct lifecycle *lc, const char *id); /* does an instance claim it */
        const char *what;               /* log: what + id names the resource */
        struct module_ep reap[2];       /* what removes an orphan, in order */
        size_t n_reap;
} listings[_LIST_MAX] = {
        [LIST_DOMAINS] = { EP_LIBVIRT(DOMAIN_LIST), "domains", "instance_uuid", domain_owned,
                           "domain " LIBVIRT_DOMAIN_PREFIX,
                           { EP_LIBVIRT(DOMAIN_DESTROY), EP_LIBVIRT(DOMAIN_UNDEFINE) }, 2 },
        [LIST_TAPS] = { EP_NETCTL(TAP_LIST), "taps", "port_uuid", port_owned, "tap of port ",
                        { EP_NETCTL(TAP_DELETE) }, 1 },
        [LIST_VIFS] = { EP_OVS(PORT_LIST), "ports", "port_uuid", port_owned, "OVS port of port ",
                        { EP_OVS(PORT_DEL) }, 1 },
        /* items carry "uuid" (and "kind"; images are not an instance's); reaped by instance_uuid */
        [LIST_VOLUMES] = { EP_LIBVIRT(VOLUME_LIST), "volumes", "instance_uuid", domain_owned, "volumes of instance ",
                           { EP_LIBVIRT(VOLUMES_DELETE) }, 1 },
};

static void reconcile_start(struct lifecycle *lc);

static void reap_call_done(const struct module_result *res, void *userdata)
{
        (void)userdata;
        if (res->status < 0 && res->status != -ENOENT)
                log_warn("reconcile: reaping an orphan failed: %s", res->error);
}

static void reap(struct lifecycle *lc, struct module_ep ep, const char *key, const char *id)
{
        _cleanup_free_ struct proto_writer *w = malloc(sizeof(*w));
        char err[256];

        if (!w)
                return;
        module_request_init(w, ep);
        pw_str(w, key, id);
        if (modules_call(lc->modules, ep.plug, w, 0, reap_call_done, NULL, NULL, err, sizeof(err)) < 0)
                log_warn("reconcile: cannot reap %s: %s", id, err);
}

static void repair(struct lifecycle *lc, struct instance *inst, const char *why)
{
        struct op *op = op_new(lc, inst, OP_REPAIR);
        char err[256];
        int plug;

        if (!op)
                return;
        plan_boot(op, inst->vm_state == VM_ACTIVE);
        if (check_plugs(op, err, sizeof(err), &plug) < 0) {
                free(op);
                return;
        }
        log_info("reconcile: instance %s (%s): %s; repairing", inst->name, inst->uuid, why);
        lc->report.repaired++;
        (void)op_launch(op, NULL, NULL, NULL, NULL, 0);
}

int lifecycle_refilter(struct lifecycle *lc, struct instance *inst)
{
        struct op *op;
        char err[256];
        int plug;

        assert(inst);
        if (inst->op || inst->vm_state == VM_ERROR)
                return -EBUSY;
        op = op_new(lc, inst, OP_REPAIR);
        if (!op)
                return -ENOMEM;
        for (size_t p = 0; p < inst->n_ports; p++)
                inst->ports[p].filtered = true;
        plan_boot(op, inst->vm_state == VM_ACTIVE);
        if (ovs_in_use(lc)) {
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
        return op_launch(op, NULL, NULL, NULL, NULL, 0);
}

/* Resources of ours in one listing that no instance claims: reported, or
 * (reap) removed. Returns how many; *reaped counts the removed ones. */
static unsigned judge_orphans(struct lifecycle *lc, enum listing kind, bool reap_them, unsigned *reaped)
{
        const struct listing_def *def = &listings[kind];
        unsigned orphans = 0;

        json_object_object_foreach(lc->pass.found[kind], id, value) {
                (void)value;
                if (def->owned(lc, id))
                        continue;
                /* listed before its instance's delete (or migration) removed it: not an orphan */
                if (lc->pass.gone && json_object_object_get_ex(lc->pass.gone, id, NULL))
                        continue;
                orphans++;
                log_warn("reconcile: %s%s carries our mark but no instance owns it (%s)", def->what, id,
                         reap_them ? "reaping it" : "orphan_policy = report");
                if (!reap_them)
                        continue;
                for (size_t k = 0; k < def->n_reap; k++)
                        reap(lc, def->reap[k], def->id_key, id);
                (*reaped)++;
        }
        return orphans;
}

/* Why inst needs a repair (its domain, a tap or an OVS port is missing, or
 * plumbed the wrong way), or NULL. */
static const char *missing_part(const struct lifecycle *lc, const struct instance *inst)
{
        bool has_domain = json_object_object_get_ex(lc->pass.found[LIST_DOMAINS], inst->uuid, NULL);

        if (!has_domain && !lc->pass.truncated[LIST_DOMAINS])
                return "its domain is missing";
        for (size_t p = 0; p < inst->n_ports && !lc->pass.truncated[LIST_TAPS]; p++) {
                struct json_object *hybrid;
                /* present, and plumbed the way the port needs (bridge for a filtered port) */
                if (!json_object_object_get_ex(lc->pass.found[LIST_TAPS], inst->ports[p].port_uuid, &hybrid) ||
                    json_object_get_boolean(hybrid) != inst->ports[p].filtered)
                        return "a tap (or the bridge of a filtered port) is missing";
        }
        for (size_t p = 0; ovs_in_use(lc) && p < inst->n_ports && !lc->pass.truncated[LIST_VIFS]; p++)
                if (!json_object_object_get_ex(lc->pass.found[LIST_VIFS], inst->ports[p].port_uuid, NULL))
                        return "an OVS port is missing";
        if (inst->image_uuid[0] && !lc->pass.truncated[LIST_VOLUMES]) {
                struct json_object *vols = NULL;
                (void)json_object_object_get_ex(lc->pass.found[LIST_VOLUMES], inst->uuid, &vols);
                if (!vols || !json_object_object_get_ex(vols, "root", NULL))
                        return "its root disk was never made"; /* made before: root_disk_lost() */
                if (!json_object_object_get_ex(vols, "config", NULL))
                        return "its config drive is missing";
        }
        return NULL;
}

/* A migration's instance with no operation running (docs/MIGRATION.md, "Who wins"): the host
 * whose libvirtd holds the domain, running, owns the instance. */
static void judge_migration(struct lifecycle *lc, struct instance *i)
{
        struct json_object *v;
        bool here = json_object_object_get_ex(lc->pass.found[LIST_DOMAINS], i->uuid, &v);
        bool running = here && streq(json_object_get_string(v), "running");
        struct op *op;
        char err[256];

        if (!here && lc->pass.truncated[LIST_DOMAINS])
                return; /* not judged: the listing was cut */
        if (i->task == TASK_MIGRATING_IN) {
                if (!running)
                        return; /* prepared: finish or abort decide (a paused domain is still arriving) */
                log_info("reconcile: instance %s: its incoming migration completed (the domain runs here); recorded", i->name);
                i->task = TASK_NONE;
                i->vm_state = VM_ACTIVE;
                (void)instance_save(i);
                return;
        }
        if (here && streq(json_object_get_string(v), "migrating")) {
                /* libvirt's job still runs (a core started again while its module's job went on):
                 * its end decides, on a later pass */
                log_info("reconcile: instance %s: libvirt is still migrating its domain; judged when the job ends", i->name);
                return;
        }
        if (here) {
                log_info("reconcile: instance %s: its migration did not complete (the domain is still here); it stays here",
                         i->name);
                i->task = TASK_NONE;
                (void)instance_save(i);
                return;
        }
        log_info("reconcile: instance %s: migrated away (no domain here); removing what is left here", i->name);
        op = op_new(lc, i, OP_MIGRATE_OUT);
        if (!op)
                return;
        plan_migrate_out(op, false);
        if (check_plugs(op, err, sizeof(err), &(int){ 0 }) < 0) {
                free(op);
                return; /* the next pass */
        }
        (void)op_launch(op, NULL, NULL, NULL, err, sizeof(err));
}

/* inst's root disk was made here and is gone from the pool (deleted behind our back): it held
 * the guest's data, so it is not made again (an empty overlay would boot as a fresh disk while the
 * user's writes went to the unlinked file). The instance goes to error with a fault that names
 * the volume; the operator restores it (then start repairs the rest) or deletes the instance. */
static bool root_disk_lost(const struct lifecycle *lc, const struct instance *inst)
{
        struct json_object *vols = NULL;

        if (!inst->image_uuid[0] || !inst->root_disk || lc->pass.truncated[LIST_VOLUMES])
                return false;
        (void)json_object_object_get_ex(lc->pass.found[LIST_VOLUMES], inst->uuid, &vols);
        return !vols || !json_object_object_get_ex(vols, "root", NULL);
}

static void record_root_disk_lost(struct lifecycle *lc, struct instance *inst)
{
        inst->vm_state = VM_ERROR;
        (void)snprintf(inst->fault, sizeof(inst->fault),
                       "root disk %s%s%s was removed outside nova-hypervisor; it held the guest's data and is not "
                       "made again: restore the volume and start the instance, or delete it",
                       LIBVIRT_DOMAIN_PREFIX, inst->uuid, LIBVIRT_ROOT_VOL_SUFFIX);
        log_err("reconcile: instance %s (%s): its root disk %s%s%s is missing from the storage pool; not re-created "
                "(it held the guest's data); the instance is in error%s",
                inst->name, inst->uuid, LIBVIRT_DOMAIN_PREFIX, inst->uuid, LIBVIRT_ROOT_VOL_SUFFIX,
                streq(inst->power_state, "running") ? "; its guest still runs, writing to the removed file until its "
                                                      "QEMU exits (the file can be copied back from QEMU's open "
                                                      "descriptor before the guest stops)"
                                                    : "");
        (void)save(lc, inst);
}

/* One idle instance against the facts: sync power state, finish interrupted
 * work, repair what is missing, record a guest that stopped by itself. */
static void judge_instance(struct lifecycle *lc, struct instance *i)
{
        struct json_object *v;
        const char *missing;
        char err[256];
        int plug;

        if (json_object_object_get_ex(lc->pass.found[LIST_DOMAINS], i->uuid, &v))
                (void)strscpy(i->power_state, json_object_get_string(v), sizeof(i->power_state));
        if (i->task == TASK_MIGRATING || i->task == TASK_MIGRATING_IN) {
                judge_migration(lc, i);
                return;
        }
        if (i->task == TASK_DELETING) {
                log_info("reconcile: instance %s: finishing an interrupted delete", i->name);
                i->task = TASK_NONE;
                (void)lifecycle_delete(lc, i, NULL, NULL, NULL, err, sizeof(err), &plug);
                return;
        }
        if (i->task == TASK_BUILDING) {
                i->task = TASK_NONE;
                repair(lc, i, "its build was interrupted");
                return;
        }
        if (i->task != TASK_NONE) {
                i->task = TASK_NONE;
                (void)save(lc, i);
        }
        if (i->vm_state == VM_ERROR)
                return; /* the operator decides: delete, or start to repair */
        if (root_disk_lost(lc, i)) {
                record_root_disk_lost(lc, i);
                return;
        }
        missing = missing_part(lc, i);
        if (missing) {
                repair(lc, i, missing);
                return;
        }
        if (i->vm_state == VM_ACTIVE && (streq(i->power_state, "shutoff") || streq(i->power_state, "crashed"))) {
                i->vm_state = VM_STOPPED;
                log_info("reconcile: instance %s is %s; recorded as stopped", i->name, i->power_state);
                (void)save(lc, i);
        }
}

static void reconcile_finish(struct lifecycle *lc)
{
        bool reap_them = streq(lc->cfg->orphan_policy, "reap");
        unsigned reaped = 0;

        lc->report.orphan_domains = judge_orphans(lc, LIST_DOMAINS, reap_them, &reaped);
        lc->report.orphan_taps = judge_orphans(lc, LIST_TAPS, reap_them, &reaped);
        lc->report.orphan_vifs = judge_orphans(lc, LIST_VIFS, reap_them, &reaped);
        lc->report.orphan_volumes = judge_orphans(lc, LIST_VOLUMES, reap_them, &reaped);
        lc->report.reaped = reaped;
        lc->report.repaired = 0;
        /* Busy instances are judged when idle; one whose operation ended (or whose domain sent an
         * event) after this pass began listing is judged by the next pass: these listings may predate
         * what it did (the bench saw a periodic pass record 4 instances as stopped that it had
         * listed between their define and their start, their boots done before the pass ended). */
        for (struct instance *i = instances_first(lc->instances), *next; i; i = next) {
                next = i->next;
                if (!i->op && i->changed_seq <= lc->pass.started_seq)
                        judge_instance(lc, i);
        }
        unsaved_kick(lc); /* whatever failed to write since (a group change's port set, ...) */
        lc->report.runs++;
        lc->report.last_usec = now_usec();
        lc->report.last_error[0] = '\0';
        log_info("reconcile: %zu instances, %u orphan domains, %u orphan taps, %u orphan OVS ports, %u instances' "
                 "orphan volumes, %u reaped, %u being repaired (%.1f ms)",
                 instances_count(lc->instances), lc->report.orphan_domains, lc->report.orphan_taps, lc->report.orphan_vifs,
                 lc->report.orphan_volumes, reaped, lc->report.repaired,
                 (double)(now_usec() - lc->pass.started_usec) / 1000.0);
        firewall_sync(lc->firewall);
}

static void pass_free(struct lifecycle *lc)
{
        for (int k = 0; k < _LIST_MAX; k++)
                json_object_put(lc->pass.found[k]);
        json_object_put(lc->pass.gone);
        memset(&lc->pass, 0, sizeof(lc->pass));
}

static void reconcile_done(struct lifecycle *lc)
{
        pass_free(lc);
        lc->reconciling = false;
        if (lc->reconcile_again) {
                lc->reconcile_again = false;
                reconcile_start(lc);
        }
}

static void reconcile_note_failure(struct lifecycle *lc, const char *what, const char *error)
{
        lc->pass.failed = true;
        (void)snprintf(lc->report.last_error, sizeof(lc->report.last_error), "%s: %.200s", what, error);
        log_warn("reconcile: %s", lc->report.last_error);
}

/* Every listing is in (or failed): judge, or give up this pass. */
static void reconcile_maybe_finish(struct lifecycle *lc)
{
        if (lc->pass.pending > 0)
                return;
        if (!lc->pass.failed)
                reconcile_finish(lc);
        reconcile_done(lc);
}

static void on_list_reply(const struct module_result *res, void *userdata);

/* Ask for one page of a listing: the first (after NULL), or the one after the cursor. 0, or -errno
 * (the failure noted). Counted in pass.pending while it is out. */
static int listing_request(struct lifecycle *lc, enum listing kind, const char *after)
{
        _cleanup_free_ struct proto_writer *w = malloc(sizeof(*w));
        char err[256];
        int r;

        if (!w) {
                reconcile_note_failure(lc, module_ep_name(listings[kind].list), "out of memory");
                return -ENOMEM;
        }
        module_request_init(w, listings[kind].list);
        if (after) {
                (void)strscpy(lc->pass.after[kind], after, sizeof(lc->pass.after[kind]));
                pw_str(w, "after", after);
        }
        r = modules_call(lc->modules, listings[kind].list.plug, w, 0, on_list_reply, &lc->calls[kind], NULL, err,
                         sizeof(err));
        if (r < 0) {
                reconcile_note_failure(lc, module_ep_name(listings[kind].list), err);
                return r;
        }
        lc->pass.pending++;
        return 0;
}

static void on_list_reply(const struct module_result *res, void *userdata)
{
        const struct listing_call *call = userdata;
        struct lifecycle *lc = call->lc;
        enum listing kind = call->kind;
        const struct listing_def *def = &listings[kind];
        const struct proto_value *list;

        lc->pass.pending--;
        if (res->status < 0 && kind == LIST_VOLUMES) {
                /* Volumes are judged when they can be listed (the pool may be unusable, e.g. a
                 * driver without storage); the rest of the pass does not depend on them. */
                log_warn("reconcile: %s: %s; volumes not judged this pass", module_ep_name(def->list), res->error);
                lc->pass.truncated[kind] = true;
                reconcile_maybe_finish(lc);
                return;
        }
        if (res->status < 0) {
                reconcile_note_failure(lc, module_ep_name(def->list), res->error);
                reconcile_maybe_finish(lc);
                return;
        }
        list = proto_get(res->body, def->reply_key);
        lc->pass.pages[kind]++;
        lc->pass.items[kind] += list ? list->count : 0;
        for (const struct proto_value *e = list ? list->child : NULL; e; e = e->next) {
                const char *id = proto_get_str(e, kind == LIST_VOLUMES ? "uuid" : def->id_key, "");
                if (kind == LIST_VOLUMES) {
                        const char *vk = proto_get_str(e, "kind", "");
                        struct json_object *vols;
                        if (streq(vk, "image") || !uuid_is_valid(id))
                                continue; /* bases belong to the image store, not to an instance */
                        if (!json_object_object_get_ex(lc->pass.found[kind], id, &vols)) {
                                vols = json_object_new_object();
                                json_object_object_add(lc->pass.found[kind], id, vols);
                        }
                        json_object_object_add(vols, vk, json_object_new_boolean(true));
                } else if (kind == LIST_DOMAINS) /* a domain in libvirt's migration job: "migrating" (judge_migration) */
                        json_object_object_add(lc->pass.found[kind], id,
                                               json_object_new_string(proto_get(e, "job") ? "migrating"
                                                                                          : proto_get_str(e, "state", "unknown")));
                else if (kind == LIST_TAPS) /* value: the tap is plumbed through its qbr bridge */
                        json_object_object_add(lc->pass.found[kind], id,
                                               json_object_new_boolean(proto_get_bool(e, "hybrid", false)));
                else
                        json_object_object_add(lc->pass.found[kind], id, json_object_new_boolean(true));
        }
        if (proto_get_bool(res->body, "truncated", false)) {
                /* Longer than one reply: ask for the page after the cursor the module gave, as long
                 * as it moves forward (a listing that does not page stays "not judged"). */
                const char *next = proto_get_str(res->body, "next", "");
                if (uuid_is_valid(next) && strcmp(next, lc->pass.after[kind]) > 0) {
                        if (listing_request(lc, kind, next) == 0)
                                return;
                } else {
                        lc->pass.truncated[kind] = true;
                        log_warn("reconcile: %s is longer than its replies hold; missing items are not judged "
                                 "this pass",
                                 module_ep_name(def->list));
                }
        }
        log_debug("reconcile: %s: %u items in %u pages, complete %.1f ms after the pass started",
                  module_ep_name(def->list), lc->pass.items[kind], lc->pass.pages[kind],
                  (double)(now_usec() - lc->pass.started_usec) / 1000.0);
        reconcile_maybe_finish(lc);
}

static void reconcile_start(struct lifecycle *lc)
{
        if (lc->reconciling) {
                lc->reconcile_again = true;
                return;
        }
        /* Every fact is needed to judge an instance; wait for every module. */
        if (!modules_ready(lc->modules, PLUG_LIBVIRT) || !modules_ready(lc->modules, PLUG_NETWORK_CONTROL) ||
            (ovs_in_use(lc) && !modules_ready(lc->modules, PLUG_OPENVSWITCH)))
                return;
        lc->reconciling = true;
        for (int k = 0; k < _LIST_MAX; k++)
                lc->pass.found[k] = json_object_new_object();
        lc->pass.pending = 1; /* held until every call is out */
        lc->pass.started_usec = now_usec();
        lc->pass.started_seq = lc->change_seq;
        for (int k = 0; k < _LIST_MAX; k++) {
                if (k == LIST_VIFS && !ovs_in_use(lc))
                        continue;
                (void)listing_request(lc, (enum listing)k, NULL);
        }
        lc->pass.pending--;
        reconcile_maybe_finish(lc);
}

/* A backend (libvirtd, ovsdb-server) is reachable again: it may have changed while we could not
 * see it, so a pass runs, unless the pass in progress has yet to hear from it (its listing, answered
 * from now on, sees the backend as it is; at start the first connection comes while the first
 * pass waits for it, and a second pass over 1000 instances would only repeat the first). */
static void reconcile_backend_back(struct lifecycle *lc, enum listing kind)
{
        if (lc->reconciling && !lc->pass.failed && lc->pass.pages[kind] == 0 && !lc->pass.truncated[kind])
                return;
        reconcile_start(lc);
}

static void on_module_event(enum plug_id plug, const char *event, const struct proto_value *body, void *userdata)
{
        struct lifecycle *lc = userdata;

        if (plug == PLUG_LIBVIRT && streq(event, "domain_lifecycle"))
                on_domain_event(lc, body);
        else if ((plug == PLUG_LIBVIRT && streq(event, "libvirt_connection")) ||
                 (plug == PLUG_OPENVSWITCH && streq(event, "ovsdb_connection"))) {
                if (proto_get_bool(body, "connected", false))
                        reconcile_backend_back(lc, plug == PLUG_LIBVIRT ? LIST_DOMAINS : LIST_VIFS);
        }
        else if (plug == PLUG_FIREWALL_CONTROL && streq(event, "ruleset_rebuilt")) {
                log_warn("firewall-control rebuilt its damaged nftables tables; re-applying every port");
                firewall_sync(lc->firewall);
        }
        else if (plug == PLUG_HARDWARE_OBSERVE && streq(event, "inventory_changed") && lc->capacity_changed)
                lc->capacity_changed(lc->capacity_userdata, "hardware change"); /* a CPU, memory, node or PCI uevent */
}

/* process-control is ready: pin every idle active instance whose cpu_set is
 * not applied (booted while the plug was disconnected, or the module was down). */
static void repin_all(struct lifecycle *lc)
{
        for (struct instance *i = instances_first(lc->instances); i; i = i->next) {
                struct op *op;
                /* power "unknown" (core just started, reconcile not done) counts: a pin
                 * state recorded before the restart must not go stale */
                if (i->op || !i->cpu_set[0] || i->pin_state == PIN_APPLIED || i->vm_state != VM_ACTIVE ||
                    streq(i->power_state, "shutoff") || streq(i->power_state, "crashed"))
                        continue;
                op = op_new(lc, i, OP_PIN);
                if (!op)
                        return;
                op->units[op->n_units++] = (struct unit){ STEP_PIN, 0, false };
                log_info("instance %s (%s): process-control is ready; pinning to cpu_set %s", i->name, i->uuid,
                         i->cpu_set);
                (void)op_launch(op, NULL, NULL, NULL, NULL, 0);
        }
}

static void on_module_ready(enum plug_id plug, void *userdata)
{
        struct lifecycle *lc = userdata;

        if (plug == PLUG_PROCESS_CONTROL)
                repin_all(lc);
        else if (plug == PLUG_LIBVIRT || plug == PLUG_NETWORK_CONTROL || plug == PLUG_OPENVSWITCH) {
                reconcile_start(lc);
                if (plug == PLUG_LIBVIRT && lc->capacity_changed) /* DISK_GB: the storage pool's size */
                        lc->capacity_changed(lc->capacity_userdata, "libvirt ready");
        }
        else if (plug == PLUG_FIREWALL_CONTROL)
                firewall_sync(lc->firewall);
        else if (plug == PLUG_HARDWARE_OBSERVE && lc->capacity_changed)
                lc->capacity_changed(lc->capacity_userdata, "hardware-observe ready"); /* the inventory is there */
}

void lifecycle_reconcile_report(const struct lifecycle *lc, struct reconcile_report *ret)
{
        assert(ret);
        *ret = lc->report;
}

/* The periodic pass: nothing announces a tap or an OVS port deleted behind our
 * back (only restarts and reconnects did), so without it such an instance
 * stayed broken until some module happened to restart. A pass that finds
 * nothing to do costs three listings. */
static int on_reconcile_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct lifecycle *lc = userdata;

        (void)usec;
        reconcile_start(lc); /* a pass in progress takes it as "again" */
        (void)sd_event_source_set_time_relative(s, (uint64_t)lc->cfg->reconcile_interval_s * 1000000ULL);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

int lifecycle_new(sd_event *event, const struct nova_config *cfg, struct modules *modules,
                  struct instance_store *instances, struct lifecycle **ret)
{
        const char *fault = getenv("NOVA_TEST_FAULT_STEP");
        struct lifecycle *lc;

        assert(event && cfg && modules && instances && ret);
        lc = calloc(1, sizeof(*lc));
        if (!lc)
                return -ENOMEM;
        lc->event = event;
        lc->cfg = cfg;
        lc->instances = instances;
        lc->modules = modules;
        for (int k = 0; k < _LIST_MAX; k++)
                lc->calls[k] = (struct listing_call){ lc, (enum listing)k };
        if (fault && *fault) {
                if (strscpy(lc->fault_step, fault, sizeof(lc->fault_step)) < 0) {
                        free(lc);
                        return -EINVAL;
                }
                log_warn("fault injection is on: every '%s' step fails (NOVA_TEST_FAULT_STEP; tests only)", fault);
        }
        if (cfg->reconcile_interval_s > 0) {
                int r = sd_event_add_time_relative(event, &lc->reconcile_timer, CLOCK_MONOTONIC,
                                                   (uint64_t)cfg->reconcile_interval_s * 1000000ULL, 0,
                                                   on_reconcile_timer, lc);
                if (r < 0) {
                        free(lc);
                        return r;
                }
        }
        modules_set_handlers(lc->modules, on_module_event, on_module_ready, lc);
        *ret = lc;
        return 0;
}

void lifecycle_set_firewall(struct lifecycle *lc, struct firewall *fw)
{
        assert(lc && fw);
        lc->firewall = fw;
}

void lifecycle_set_capacity_hook(struct lifecycle *lc, lifecycle_capacity_fn fn, void *userdata)
{
        assert(lc);
        lc->capacity_changed = fn;
        lc->capacity_userdata = userdata;
}

struct lifecycle *lifecycle_free(struct lifecycle *lc)
{
        if (!lc)
                return NULL;
        for (struct instance *i = instances_first(lc->instances); i; i = i->next)
                if (i->op && i->op->lc == lc) {
                        struct op *op = i->op;
                        notify(op, -ECANCELED, "nova-compute is shutting down", -1, i);
                        i->op = NULL;
                        op_free(op);
                }
        pass_free(lc);
        sd_event_source_disable_unref(lc->reconcile_timer);
        sd_event_source_disable_unref(lc->unsaved_timer);
        free(lc);
        return NULL;
}
