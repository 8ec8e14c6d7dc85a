/* firewall.c - see firewall.h */
#include "firewall.h"

#include "fw-protocol.h"
#include "lifecycle.h"
#include "log.h"
#include "modules.h"

#include <assert.h>
#include <json-c/json.h>

struct push {
        struct firewall *fw;
        firewall_done_cb cb;
        void *userdata;
};

/* A sync call's userdata: which kind it is. */
struct sync_kind {
        struct firewall *fw;
        const char *what;       /* "apply" | "remove" */
};

struct firewall {
        sd_event *event;
        bool pushing;                 /* a group or port change is in flight */
        bool syncing, sync_again;
        unsigned pending;             /* applies/removes of the pass in flight */
        struct firewall_report report, pass;
        struct lifecycle *lifecycle;  /* re-plumbs unfiltered instances (lifecycle_refilter) */
        struct instance_store *instances; /* which ports have which groups */
        const struct secgroup_store *groups; /* the groups' rules */
        struct modules *modules;        /* the registry: firewall-control's connection */
        struct sync_kind apply_call, remove_call;
        struct {                        /* the rules_list pages of the sync in progress */
                struct json_object *ports;   /* port_uuid -> { complete, groups: [id...] } */
                struct json_object *digests; /* group id -> digest */
                char after[UUID_STR_LEN + 1], groups_after[UUID_STR_LEN + 1]; /* cursors ("" = first page) */
                bool cut;                    /* a page did not move on: the listing is incomplete */
        } list;
};

bool firewall_connected(const struct firewall *fw)
{
        struct module_status st;

        modules_get_status(fw->modules, PLUG_FIREWALL_CONTROL, &st);
        return st.connected;
}

/* The stored group of id, or override when it has that id. */
static const struct secgroup *group_for(const struct firewall *fw, const char *id, const struct secgroup *override)
{
        if (override && streq(override->id, id))
                return override;
        return secgroup_find(fw->groups, id);
}

static int count_rules(const struct firewall *fw, char groups[][UUID_STR_LEN + 1], size_t n, const struct secgroup *override, char *err,
                       size_t errlen)
{
        size_t total = 0;

        for (size_t k = 0; k < n; k++) {
                const struct secgroup *g = group_for(fw, groups[k], override);
                if (!g) {
                        (void)snprintf(err, errlen, "security group %s no longer exists", groups[k]);
                        return -ENOENT;
                }
                total += g->n_rules;
        }
        if (total > PORT_MAX_RULES) {
                (void)snprintf(err, errlen, "the port's groups would hold %zu rules; a port takes at most %d", total,
                               PORT_MAX_RULES);
                return -E2BIG;
        }
        return (int)total;
}

int firewall_port_rule_count(const struct firewall *fw, const struct instance_port *p, const struct secgroup *override, char *err, size_t errlen)
{
        assert(p && err);
        return count_rules(fw, (char(*)[UUID_STR_LEN + 1])p->secgroups, p->n_secgroups, override, err, errlen);
}

static int port_request(const struct firewall *fw, const struct instance_port *p, char groups[][UUID_STR_LEN + 1], size_t n_groups,
                        const struct secgroup *override, struct proto_writer *w, char *err, size_t errlen)
{
        int r = count_rules(fw, groups, n_groups, override, err, errlen);

        if (r < 0)
                return r;
        module_request_init(w, (struct module_ep)EP_FW(PORT_RULES_APPLY));
        pw_str(w, "port_uuid", p->port_uuid);
        pw_str(w, "mac", p->mac);
        pw_list_begin(w, "ips");
        for (size_t k = 0; k < p->n_ips; k++)
                pw_str(w, NULL, p->ips[k]);
        pw_list_end(w);
        pw_list_begin(w, "groups");
        for (size_t k = 0; k < n_groups; k++) {
                const struct secgroup *g = group_for(fw, groups[k], override);
                pw_obj_begin(w, NULL);
                pw_str(w, "id", g->id);
                pw_list_begin(w, "rules");
                for (size_t i = 0; i < g->n_rules; i++) {
                        pw_obj_begin(w, NULL);
                        fw_rule_write(w, &g->rules[i]);
                        pw_obj_end(w);
                }
                pw_list_end(w);
                pw_obj_end(w);
        }
        pw_list_end(w);
        return 0;
}

int firewall_port_request(const struct firewall *fw, const struct instance_port *p, const struct secgroup *override, struct proto_writer *w,
                          char *err, size_t errlen)
{
        assert(p && w && err);
        return port_request(fw, p, (char(*)[UUID_STR_LEN + 1])p->secgroups, p->n_secgroups, override, w, err, errlen);
}

/* ---- pushes (API changes) ---- */

static void on_push_reply(const struct module_result *res, void *userdata)
{
        struct push *push = userdata;
        struct firewall *fw = push->fw;

        fw->pushing = false;
        push->cb(res->status, res->error, res->status == -ENOTCONN || res->status == -EAGAIN
                                                  ? (int)PLUG_FIREWALL_CONTROL : -1, push->userdata);
        free(push);
        firewall_sync(fw); /* a boot that raced the change may have installed the old rules */
}

static int push(struct firewall *fw, const struct instance_port *p, char groups[][UUID_STR_LEN + 1], size_t n_groups,
                const struct secgroup *override, firewall_done_cb cb, void *userdata, char *err, size_t errlen,
                int *ret_plug)
{
        _cleanup_free_ struct proto_writer *w = NULL;
        struct push *ps;
        int r;

        *ret_plug = -1;
        if (fw->pushing) {
                (void)snprintf(err, errlen, "another security-group change is being applied; retry");
                return -EBUSY;
        }
        r = modules_check_ready(fw->modules, PLUG_FIREWALL_CONTROL, err, errlen);
        if (r < 0) {
                *ret_plug = PLUG_FIREWALL_CONTROL;
                return r;
        }
        w = malloc(sizeof(*w));
        ps = malloc(sizeof(*ps));
        if (!w || !ps) {
                free(ps);
                return -ENOMEM;
        }
        r = port_request(fw, p, groups, n_groups, override, w, err, errlen);
        if (r < 0) {
                free(ps);
                return r;
        }
        ps->fw = fw;
        ps->cb = cb;
        ps->userdata = userdata;
        r = modules_call(fw->modules, PLUG_FIREWALL_CONTROL, w, 0, on_push_reply, ps, NULL, err, errlen);
        if (r < 0) {
                free(ps);
                if (r == -ENOTCONN || r == -EAGAIN)
                        *ret_plug = PLUG_FIREWALL_CONTROL;
                return r;
        }
        fw->pushing = true;
        return 0;
}

int firewall_push_group(struct firewall *fw, const struct secgroup *next, firewall_done_cb cb, void *userdata, char *err, size_t errlen,
                        int *ret_plug)
{
        const struct instance_port *first = NULL;
        int r;

        assert(next && cb && err && ret_plug);
        *ret_plug = -1;
        /* Every port of the group must still fit; one of them carries the change. */
        for (struct instance *i = instances_first(fw->instances); i; i = i->next)
                for (size_t p = 0; p < i->n_ports; p++) {
                        const struct instance_port *ip = &i->ports[p];
                        bool uses = false;
                        char why[200];
                        for (size_t k = 0; k < ip->n_secgroups; k++)
                                uses = uses || streq(ip->secgroups[k], next->id);
                        if (!uses)
                                continue;
                        r = firewall_port_rule_count(fw, ip, next, why, sizeof(why));
                        if (r == -E2BIG) {
                                (void)snprintf(err, errlen, "port %s of instance %s: %s", ip->port_uuid, i->name, why);
                                return r;
                        }
                        if (ip->filtered && !first && r >= 0)
                                first = ip;
                }
        if (!first)
                return 1;
        return push(fw, first, (char(*)[UUID_STR_LEN + 1])first->secgroups, first->n_secgroups, next, cb, userdata, err,
                    errlen, ret_plug);
}

int firewall_push_port(struct firewall *fw, const struct instance_port *p, char groups[][UUID_STR_LEN + 1], size_t n_groups,
                       firewall_done_cb cb, void *userdata, char *err, size_t errlen, int *ret_plug)
{
        int r;

        assert(p && (groups || n_groups == 0) && cb && err && ret_plug);
        *ret_plug = -1;
        r = count_rules(fw, groups, n_groups, NULL, err, errlen);
        if (r < 0)
                return r;
        if (!p->filtered)
                return 1;
        return push(fw, p, groups, n_groups, NULL, cb, userdata, err, errlen, ret_plug);
}

/* ---- reconcile ---- */

static void sync_start(struct firewall *fw);

static void sync_finish_one(struct firewall *fw)
{
        if (--fw->pending > 0)
                return;
        fw->pass.runs = fw->report.runs + 1;
        fw->report = fw->pass;
        log_info("firewall: %u port(s) applied, %u removed, %u instance(s) re-plumbed, %u port(s) unfiltered%s%s",
                 fw->report.applied, fw->report.removed, fw->report.replumbed, fw->report.unfiltered,
                 fw->report.last_error[0] ? "; last error: " : "", fw->report.last_error);
        fw->syncing = false;
        if (fw->sync_again) {
                fw->sync_again = false;
                sync_start(fw);
        }
}

static void on_sync_call(const struct module_result *res, void *userdata)
{
        const struct sync_kind *call = userdata;
        struct firewall *fw = call->fw;
        const char *what = call->what;

        if (res->status < 0 && !(res->status == -ENOENT && streq(what, "remove"))) {
                (void)snprintf(fw->pass.last_error, sizeof(fw->pass.last_error), "%s: %.200s", what, res->error);
                log_warn("firewall: %s", fw->pass.last_error);
        }
        sync_finish_one(fw);
}

static void sync_call(struct firewall *fw, struct proto_writer *w, struct sync_kind *call)
{
        const char *what = call->what;
        char err[256];

        if (modules_call(fw->modules, PLUG_FIREWALL_CONTROL, w, 0, on_sync_call, call, NULL, err, sizeof(err)) < 0) {
                (void)snprintf(fw->pass.last_error, sizeof(fw->pass.last_error), "%s: %.200s", what, err);
                return;
        }
        fw->pending++;
}

/* Same groups (as sets) and every group's rules as stored? kport: { complete, groups } as listed. */
static bool port_current(const struct firewall *fw, const struct instance_port *ip, struct json_object *kport,
                         struct json_object *digests)
{
        struct json_object *kg = NULL, *complete = NULL;
        size_t n;

        if (!json_object_object_get_ex(kport, "complete", &complete) || !json_object_get_boolean(complete) ||
            !json_object_object_get_ex(kport, "groups", &kg))
                return false;
        n = json_object_array_length(kg);
        for (size_t e = 0; e < n; e++) {
                const char *id = json_object_get_string(json_object_array_get_idx(kg, e));
                bool found = false;
                for (size_t k = 0; k < ip->n_secgroups && !found; k++)
                        found = id && streq(id, ip->secgroups[k]);
                if (!found)
                        return false;
        }
        if (n != ip->n_secgroups)
                return false;
        for (size_t k = 0; k < ip->n_secgroups; k++) {
                const struct secgroup *g = secgroup_find(fw->groups, ip->secgroups[k]);
                struct json_object *d;
                char want[17];
                if (!g || !json_object_object_get_ex(digests, g->id, &d))
                        return false;
                (void)snprintf(want, sizeof(want), "%016llx", (unsigned long long)secrule_digest(g->rules, g->n_rules));
                if (!streq(json_object_get_string(d), want))
                        return false;
        }
        return true;
}

static void list_free(struct firewall *fw)
{
        json_object_put(fw->list.ports);
        json_object_put(fw->list.digests);
        memset(&fw->list, 0, sizeof(fw->list));
}

static void on_rules_list(const struct module_result *res, void *userdata);

/* Ask for a page of rules_list from the cursors in fw->list. 0, or -errno with err set. */
static int rules_list_request(struct firewall *fw, char *err, size_t errlen)
{
        _cleanup_free_ struct proto_writer *w = malloc(sizeof(*w));

        if (!w) {
                (void)snprintf(err, errlen, "out of memory");
                return -ENOMEM;
        }
        module_request_init(w, (struct module_ep)EP_FW(RULES_LIST));
        if (fw->list.after[0])
                pw_str(w, "after", fw->list.after);
        if (fw->list.groups_after[0])
                pw_str(w, "groups_after", fw->list.groups_after);
        return modules_call(fw->modules, PLUG_FIREWALL_CONTROL, w, 0, on_rules_list, fw, NULL, err, errlen);
}

/* Take one page in; true when another page is on its way. */
static bool rules_list_page(struct firewall *fw, const struct proto_value *body)
{
        const struct proto_value *groups = proto_get(body, "groups"), *ports = proto_get(body, "ports");
        const char *next = proto_get_str(body, "next", ""), *groups_next = proto_get_str(body, "groups_next", "");
        bool more = proto_get_bool(body, "truncated", false), groups_more = proto_get_bool(body, "groups_truncated", false);
        bool moved = false;
        char err[256];

        for (const struct proto_value *g = groups ? groups->child : NULL; g; g = g->next) {
                const char *id = proto_get_str(g, "id", "");
                json_object_object_add(fw->list.digests, id, json_object_new_string(proto_get_str(g, "digest", "")));
        }
        for (const struct proto_value *kp = ports ? ports->child : NULL; kp; kp = kp->next) {
                const struct proto_value *kg = proto_get(kp, "groups");
                struct json_object *o = json_object_new_object(), *l = json_object_new_array();
                for (const struct proto_value *e = kg ? kg->child : NULL; e; e = e->next)
                        if (e->type == PV_STR)
                                json_object_array_add(l, json_object_new_string(e->v.s));
                json_object_object_add(o, "complete", json_object_new_boolean(proto_get_bool(kp, "complete", false)));
                json_object_object_add(o, "groups", l);
                json_object_object_add(fw->list.ports, proto_get_str(kp, "port_uuid", ""), o);
        }
        if (!more && !groups_more)
                return false;
        /* The cursors move on only forward; a page that moves neither ends the listing, cut. */
        if (groups_more && uuid_is_valid(groups_next) && strcmp(groups_next, fw->list.groups_after) > 0) {
                (void)strscpy(fw->list.groups_after, groups_next, sizeof(fw->list.groups_after));
                moved = true;
        }
        if (more && uuid_is_valid(next) && strcmp(next, fw->list.after) > 0) {
                (void)strscpy(fw->list.after, next, sizeof(fw->list.after));
                moved = true;
        }
        if (!moved || rules_list_request(fw, err, sizeof(err)) < 0) {
                fw->list.cut = true;
                log_warn("firewall: rules_list is longer than its replies hold; ports it did not list are re-applied");
                return false;
        }
        return true;
}

static void on_rules_list(const struct module_result *res, void *userdata)
{
        struct firewall *fw = userdata;
        struct json_object *digests;

        if (res->status < 0) {
                (void)snprintf(fw->pass.last_error, sizeof(fw->pass.last_error), "rules_list: %.200s", res->error);
                log_warn("firewall: %s", fw->pass.last_error);
                list_free(fw);
                sync_finish_one(fw);
                return;
        }
        if (rules_list_page(fw, res->body))
                return; /* the next page is on its way (still the one pending call) */
        digests = fw->list.digests;

        /* Rules of ports that no filtered port of an idle instance claims. An instance in
         * error claims none: its failed boot, repair or delete took its units back, so
         * rules put back here would outlive the failure (found by the chaos suite). */
        json_object_object_foreach(fw->list.ports, uuid, kport) {
                struct instance *inst = NULL;
                struct instance_port *ip = instance_find_port(fw->instances, uuid, &inst);
                _cleanup_free_ struct proto_writer *w = NULL;
                (void)kport;
                if (ip && ((ip->filtered && inst->vm_state != VM_ERROR) || inst->op))
                        continue;
                w = malloc(sizeof(*w));
                if (!w)
                        break;
                log_info("firewall: rules of port %s belong to no %sinstance port; removing them", uuid,
                         ip ? "filtered " : "");
                module_request_init(w, (struct module_ep)EP_FW(PORT_RULES_REMOVE));
                pw_str(w, "port_uuid", uuid);
                sync_call(fw, w, &fw->remove_call);
                fw->pass.removed++;
        }
        /* Filtered ports of idle instances: missing or stale means apply. */
        for (struct instance *i = instances_first(fw->instances); i; i = i->next) {
                bool unfiltered = false;
                for (size_t p = 0; p < i->n_ports; p++) {
                        struct instance_port *ip = &i->ports[p];
                        struct json_object *kp = NULL;
                        _cleanup_free_ struct proto_writer *w = NULL;
                        char err[256];
                        if (!ip->filtered) {
                                unfiltered = true;
                                fw->pass.unfiltered++;
                                continue;
                        }
                        if (i->op || i->vm_state == VM_ERROR)
                                continue;
                        (void)json_object_object_get_ex(fw->list.ports, ip->port_uuid, &kp);
                        /* Not listed (or the list was cut short): apply; it is idempotent. */
                        if (kp && port_current(fw, ip, kp, digests))
                                continue;
                        w = malloc(sizeof(*w));
                        if (!w)
                                break;
                        if (firewall_port_request(fw, ip, NULL, w, err, sizeof(err)) < 0) {
                                (void)snprintf(fw->pass.last_error, sizeof(fw->pass.last_error), "port %s: %.200s",
                                               ip->port_uuid, err);
                                log_warn("firewall: %s", fw->pass.last_error);
                                continue;
                        }
                        log_info("firewall: port %s of instance %s: rules %s; applying", ip->port_uuid, i->name,
                                 kp ? "differ from the store" : "missing");
                        sync_call(fw, w, &fw->apply_call);
                        fw->pass.applied++;
                }
                /* Booted while firewall-control was not connected: plumb it through a bridge now. */
                if (unfiltered && !i->op && i->vm_state != VM_ERROR && lifecycle_refilter(fw->lifecycle, i) == 0)
                        fw->pass.replumbed++;
        }
        list_free(fw);
        sync_finish_one(fw);
}

static void sync_start(struct firewall *fw)
{
        char err[256];

        if (fw->syncing) {
                fw->sync_again = true;
                return;
        }
        if (!modules_ready(fw->modules, PLUG_FIREWALL_CONTROL))
                return;
        memset(&fw->pass, 0, sizeof(fw->pass));
        list_free(fw);
        fw->list.ports = json_object_new_object();
        fw->list.digests = json_object_new_object();
        if (rules_list_request(fw, err, sizeof(err)) < 0) {
                list_free(fw);
                (void)snprintf(fw->report.last_error, sizeof(fw->report.last_error), "rules_list: %.200s", err);
                log_warn("firewall: %s", fw->report.last_error);
                return;
        }
        fw->syncing = true;
        fw->pending = 1; /* the list; each apply/remove adds one */
}

void firewall_sync(struct firewall *fw)
{
        assert(fw);
        sync_start(fw);
}

void firewall_report(const struct firewall *fw, struct firewall_report *ret)
{
        assert(fw && ret);
        *ret = fw->report;
        if (!modules_ready(fw->modules, PLUG_FIREWALL_CONTROL)) {
                /* No pass can run: count the unfiltered ports from the store. */
                ret->unfiltered = 0;
                for (struct instance *i = instances_first(fw->instances); i; i = i->next)
                        for (size_t p = 0; p < i->n_ports; p++)
                                ret->unfiltered += !i->ports[p].filtered;
        }
}

int firewall_new(sd_event *event, struct modules *modules, struct lifecycle *lifecycle,
                 struct instance_store *instances, const struct secgroup_store *groups, struct firewall **ret)
{
        struct firewall *fw;

        assert(event && modules && lifecycle && instances && groups && ret);
        fw = calloc(1, sizeof(*fw));
        if (!fw)
                return -ENOMEM;
        fw->event = event;
        fw->lifecycle = lifecycle;
        fw->instances = instances;
        fw->groups = groups;
        fw->modules = modules;
        fw->apply_call = (struct sync_kind){ fw, "apply" };
        fw->remove_call = (struct sync_kind){ fw, "remove" };
        *ret = fw;
        return 0;
}

struct firewall *firewall_free(struct firewall *fw)
{
        if (fw)
                list_free(fw);
        free(fw);
        return NULL;
}
