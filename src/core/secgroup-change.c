/* secgroup-change.c - see secgroup-change.h */
#include "secgroup-change.h"

#include "firewall.h"
#include "log.h"

#include <assert.h>

struct sg_change {
        struct sg_context ctx;                  /* the firewall and the stores */
        enum sg_change_kind kind;
        sg_change_done_cb cb;                   /* NULL once detached */
        void *userdata;
        char group_id[UUID_STR_LEN + 1];        /* rule add */
        struct secrule rule;                    /* rule add: with its new id */
        char rule_id[UUID_STR_LEN + 1];         /* rule delete */
        char port_uuid[UUID_STR_LEN + 1];       /* port set */
        char groups[PORT_MAX_GROUPS][UUID_STR_LEN + 1];
        size_t n_groups;
        char pending[512];                      /* why the kernel was not updated ("" when it was) */
};

void sg_change_detach(struct sg_change *ch)
{
        if (ch)
                ch->cb = NULL;
}

static struct sg_change *change_new(const struct sg_context *ctx, enum sg_change_kind kind, sg_change_done_cb cb,
                                    void *userdata)
{
        struct sg_change *ch = calloc(1, sizeof(*ch));

        if (!ch)
                return NULL;
        ch->ctx = *ctx;
        ch->kind = kind;
        ch->cb = cb;
        ch->userdata = userdata;
        return ch;
}

/* Put the change into the store (the kernel has it, or nothing needed it); res gets what was stored. */
static int change_store(struct sg_change *ch, struct sg_change_result *res, char *err, size_t errlen)
{
        struct secgroup *g;
        struct instance *inst;
        struct instance_port *ip, saved;
        size_t idx;
        int r;

        switch (ch->kind) {
        case SG_CHANGE_RULE_ADD:
                g = secgroup_find(ch->ctx.groups, ch->group_id);
                if (!g)
                        return snprintf(err, errlen, "the group was deleted meanwhile"), -ENOENT;
                r = secgroup_rule_add(ch->ctx.groups, g, &ch->rule, NULL, &res->rule);
                if (r < 0)
                        return snprintf(err, errlen, "cannot record the rule: %s", strerror(-r)), r;
                log_info("security group %s: rule %s added", g->name, res->rule->uuid);
                return 0;
        case SG_CHANGE_RULE_DELETE:
                g = secgroup_find_rule(ch->ctx.groups, ch->rule_id, &idx);
                if (!g)
                        return snprintf(err, errlen, "the rule was deleted meanwhile"), -ENOENT;
                r = secgroup_rule_delete(ch->ctx.groups, g, idx);
                if (r < 0)
                        return snprintf(err, errlen, "cannot record the change: %s", strerror(-r)), r;
                res->rule_id = ch->rule_id;
                log_info("security group %s: rule %s deleted", g->name, ch->rule_id);
                return 0;
        case SG_CHANGE_PORT_SET:
                ip = instance_find_port(ch->ctx.instances, ch->port_uuid, &inst);
                if (!ip)
                        return snprintf(err, errlen, "the port's instance was deleted meanwhile"), -ENOENT;
                saved = *ip;
                memcpy(ip->secgroups, ch->groups, ch->n_groups * sizeof(ch->groups[0]));
                ip->n_secgroups = ch->n_groups;
                r = instance_save(inst);
                if (r < 0) {
                        *ip = saved;
                        return snprintf(err, errlen, "cannot record the change: %s", strerror(-r)), r;
                }
                res->inst = inst;
                log_info("port %s of instance %s: %zu security group(s) set", ch->port_uuid, inst->name, ch->n_groups);
                return 0;
        }
        return -EINVAL;
}

/* The kernel answered (status) or was not needed: store, tell, free. */
static void change_finish(struct sg_change *ch, int status, const char *error, int plug)
{
        struct sg_change_result res = { .status = status, .error = error, .plug = plug, .kind = ch->kind };
        char err[256];

        if (status == 0) {
                res.status = change_store(ch, &res, err, sizeof(err));
                if (res.status < 0) {
                        res.error = err;
                        res.plug = -1;
                        firewall_sync(ch->ctx.firewall); /* the kernel has a change the store does not: take it back */
                }
        }
        res.pending = ch->pending[0] ? ch->pending : NULL;
        if (ch->cb)
                ch->cb(&res, ch->userdata);
        free(ch);
}

static void on_pushed(int status, const char *error, int plug, void *userdata)
{
        change_finish(userdata, status, error, plug);
}

/* Send the change to the kernel when a filtered port needs it (port: a port
 * set; else next is the group as it would be), then store it. */
static int change_run(struct sg_change *ch, const struct instance *inst, const struct instance_port *port,
                      const struct secgroup *next, struct sg_change **ret, char *err, size_t errlen, int *ret_plug)
{
        char why[512];
        int r;

        *ret_plug = -1;
        if (port && inst && inst->vm_state == VM_ERROR) {
                /* The firewall sync removes the rules of an instance in error (its failed
                 * operation took its units back): pushing them would only make them flap
                 * (found by the chaos suite). Stored; a repair (start) applies them. */
                r = 1;
                (void)snprintf(ch->pending, sizeof(ch->pending),
                               "instance %s is in error: its ports have no rules until it is repaired (start)",
                               inst->name);
        } else if (port && !port->filtered) {
                r = 1;
                (void)snprintf(ch->pending, sizeof(ch->pending), "the port is unfiltered (%s)",
                               firewall_connected(ch->ctx.firewall) ? "it is being re-plumbed" : "firewall-control is not connected");
        } else if (port)
                r = firewall_push_port(ch->ctx.firewall, port, ch->groups, ch->n_groups, on_pushed, ch, why, sizeof(why), ret_plug);
        else
                r = firewall_push_group(ch->ctx.firewall, next, on_pushed, ch, why, sizeof(why), ret_plug);
        if (r == -ENOTCONN || r == -EAGAIN) {
                /* Stored now; the firewall sync applies it when the module is back. */
                (void)snprintf(ch->pending, sizeof(ch->pending), "not in the kernel yet: %.480s", why);
                r = 1;
        }
        if (r < 0) {
                (void)snprintf(err, errlen, "%s", why);
                free(ch);
                return r;
        }
        *ret_plug = -1;
        if (r == 1) {
                *ret = NULL;
                change_finish(ch, 0, NULL, -1);
                return 0;
        }
        *ret = ch;
        return 0;
}

int sg_change_rule_add(const struct sg_context *ctx, const struct secgroup *g, const struct secrule *rule, sg_change_done_cb cb, void *userdata,
                       struct sg_change **ret, char *err, size_t errlen, int *ret_plug)
{
        _cleanup_free_ struct secgroup *next = NULL;
        struct sg_change *ch;

        assert(ctx && g && rule && ret && err && ret_plug);
        *ret_plug = -1;
        for (size_t i = 0; i < g->n_rules; i++)
                if (secrule_equal(&g->rules[i], rule))
                        return snprintf(err, errlen, "security group '%s' already has this rule (%s)", g->name,
                                        g->rules[i].uuid), -EEXIST;
        if (g->n_rules >= SECGROUP_MAX_RULES)
                return snprintf(err, errlen, "security group '%s' has %d rules, the most a group holds", g->name,
                                SECGROUP_MAX_RULES), -EEXIST;
        ch = change_new(ctx, SG_CHANGE_RULE_ADD, cb, userdata);
        next = malloc(sizeof(*next));
        if (!ch || !next) {
                free(ch);
                return snprintf(err, errlen, "out of memory"), -ENOMEM;
        }
        ch->rule = *rule;
        if ((ch->rule.uuid[0] && secgroup_find_rule(ctx->groups, ch->rule.uuid, NULL)) ||
            (!ch->rule.uuid[0] && uuid_new_str(ch->rule.uuid) < 0)) {
                free(ch);
                return snprintf(err, errlen, "id: a rule with this id exists"), -EEXIST;
        }
        memcpy(ch->group_id, g->id, sizeof(ch->group_id));
        secgroup_with_rule(g, &ch->rule, SIZE_MAX, next);
        return change_run(ch, NULL, NULL, next, ret, err, errlen, ret_plug);
}

int sg_change_rule_delete(const struct sg_context *ctx, const char *rule_id, sg_change_done_cb cb, void *userdata, struct sg_change **ret, char *err,
                          size_t errlen, int *ret_plug)
{
        _cleanup_free_ struct secgroup *next = NULL;
        struct secgroup *g;
        struct sg_change *ch;
        size_t idx;

        assert(ctx && rule_id && ret && err && ret_plug);
        *ret_plug = -1;
        g = uuid_is_valid(rule_id) ? secgroup_find_rule(ctx->groups, rule_id, &idx) : NULL;
        if (!g)
                return snprintf(err, errlen, "no such security-group rule"), -ENOENT;
        ch = change_new(ctx, SG_CHANGE_RULE_DELETE, cb, userdata);
        next = malloc(sizeof(*next));
        if (!ch || !next) {
                free(ch);
                return snprintf(err, errlen, "out of memory"), -ENOMEM;
        }
        memcpy(ch->rule_id, rule_id, sizeof(ch->rule_id));
        secgroup_with_rule(g, NULL, idx, next);
        return change_run(ch, NULL, NULL, next, ret, err, errlen, ret_plug);
}

static int port_check(const struct instance_store *store, const char *port_uuid, struct instance_port **ret,
                      struct instance **ret_inst, char *err, size_t errlen)
{
        struct instance *inst = NULL;
        struct instance_port *ip = uuid_is_valid(port_uuid) ? instance_find_port(store, port_uuid, &inst) : NULL;

        if (!ip)
                return snprintf(err, errlen, "no instance has this port"), -ENOENT;
        if (inst->op)
                return snprintf(err, errlen, "instance %s is busy (%s); retry when it is done", inst->name,
                                instance_task_to_string(inst->task)), -EBUSY;
        if (ret)
                *ret = ip;
        if (ret_inst)
                *ret_inst = inst;
        return 0;
}

int sg_change_port_check(const struct sg_context *ctx, const char *port_uuid, char *err, size_t errlen)
{
        assert(ctx && port_uuid && err);
        return port_check(ctx->instances, port_uuid, NULL, NULL, err, errlen);
}

int sg_change_port_set(const struct sg_context *ctx, const char *port_uuid,
                       char groups[][UUID_STR_LEN + 1], size_t n_groups, sg_change_done_cb cb, void *userdata,
                       struct sg_change **ret, char *err, size_t errlen, int *ret_plug)
{
        struct instance_port *ip;
        struct instance *inst;
        struct sg_change *ch;
        int r;

        assert(ctx && port_uuid && (groups || n_groups == 0) && n_groups <= PORT_MAX_GROUPS && ret && err && ret_plug);
        *ret_plug = -1;
        r = port_check(ctx->instances, port_uuid, &ip, &inst, err, errlen);
        if (r < 0)
                return r;
        ch = change_new(ctx, SG_CHANGE_PORT_SET, cb, userdata);
        if (!ch)
                return snprintf(err, errlen, "out of memory"), -ENOMEM;
        memcpy(ch->groups, groups, n_groups * sizeof(groups[0]));
        ch->n_groups = n_groups;
        memcpy(ch->port_uuid, ip->port_uuid, sizeof(ch->port_uuid));
        return change_run(ch, inst, ip, NULL, ret, err, errlen, ret_plug);
}
