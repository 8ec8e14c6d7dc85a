/* api-status.c - GET /v1/status and the plug routes (connect, disconnect,
 * refresh, disconnecting). */
#include "api-internal.h"
#include "startup.h"

#include "firewall.h"
#include "lifecycle.h"
#include "placement.h"
#include "secgroups.h"
#include "snapctl.h"

#include <assert.h>

static struct json_object *module_json(const struct modules *modules, enum plug_id plug)
{
        struct module_status st;
        struct json_object *o = json_object_new_object(), *plugo = json_object_new_object();
        char caps[256] = "", fix[128];

        modules_get_status(modules, plug, &st);
        (void)caps_mask_format(st.caps_effective, caps, sizeof(caps));
        json_object_object_add(plugo, "plug", json_object_new_string(plug_table[plug].name));
        json_object_object_add(plugo, "summary", json_object_new_string(plug_table[plug].summary));
        json_object_object_add(plugo, "connected", json_object_new_boolean(st.connected));
        json_object_object_add(o, "program", json_object_new_string(plug_table[plug].program));
        json_object_object_add(o, "state", json_object_new_string(module_state_name(st.state)));
        json_object_object_add(o, "running", json_object_new_boolean(st.state == MOD_RUNNING));
        json_object_object_add(o, "pid", json_object_new_int64(st.pid));
        json_object_object_add(o, "capabilities", json_object_new_string(caps));
        json_object_object_add(o, "caps_effective", json_object_new_uint64(st.caps_effective));
        json_object_object_add(o, "no_new_privs", json_object_new_boolean(st.no_new_privs));
        json_object_object_add(o, "restarts", json_object_new_int(st.restarts));
        json_object_object_add(o, "uptime_ms", json_object_new_uint64(st.uptime_usec / 1000));
        if (st.state == MOD_BACKOFF)
                json_object_object_add(o, "restart_in_ms", json_object_new_uint64(st.restart_in_usec / 1000));
        json_object_object_add(o, "last_error", st.last_error[0] ? json_object_new_string(st.last_error) : NULL);
        json_object_object_add(plugo, "module", o);
        if (!st.connected && plug_fix_text(plug, fix, sizeof(fix)) == 0)
                json_object_object_add(plugo, "fix", json_object_new_string(fix));
        else
                json_object_object_add(plugo, "fix", NULL);
        return plugo;
}

static struct json_object *ms_since(uint64_t from_usec, uint64_t to_usec)
{
        return json_object_new_double((double)(to_usec - from_usec) / 1000.0);
}

/* Where the start-up went, in ms after main() began: the core's phases, then each
 * connected plug's module (spawned: the spawner forked it; hello: it serves). */
static struct json_object *status_startup_json(const struct api_context *ctx)
{
        const struct core_startup *s = ctx->startup;
        struct module_startup mods[_PLUG_MAX];
        struct json_object *o, *phases, *modo;
        uint64_t registry_usec, ready_ms, ready_rt;

        if (!s || !s->main_usec)
                return NULL;
        o = json_object_new_object();
        phases = json_object_new_array();
        modo = json_object_new_object();
        json_object_object_add(o, "main_realtime_us", json_object_new_uint64(s->main_realtime_usec));
        for (size_t i = 0; i < s->n_phases; i++) {
                struct json_object *p = json_object_new_object();
                json_object_object_add(p, "name", json_object_new_string(s->phases[i].name));
                json_object_object_add(p, "end_ms", ms_since(s->main_usec, s->phases[i].end_usec));
                json_object_array_add(phases, p);
        }
        json_object_object_add(o, "phases", phases);
        modules_startup_times(ctx->modules, &registry_usec, mods);
        json_object_object_add(o, "registry_ms", ms_since(s->main_usec, registry_usec));
        for (int i = 0; i < _PLUG_MAX; i++) {
                struct module_status st;
                struct json_object *m;

                modules_get_status(ctx->modules, (enum plug_id)i, &st);
                if (!st.connected)
                        continue;
                m = json_object_new_object();
                json_object_object_add(m, "spawned_ms", mods[i].spawned_usec ? ms_since(s->main_usec,
                                                                    registry_usec + mods[i].spawned_usec) : NULL);
                json_object_object_add(m, "hello_ms", mods[i].hello_usec ? ms_since(s->main_usec,
                                                                registry_usec + mods[i].hello_usec) : NULL);
                json_object_object_add(modo, plug_table[i].name, m);
        }
        json_object_object_add(o, "modules", modo);
        modules_startup_report(ctx->modules, &ready_ms, &ready_rt);
        json_object_object_add(o, "all_ready_realtime_us", ready_rt ? json_object_new_uint64(ready_rt) : NULL);
        return o;
}

static struct json_object *status_core_json(const struct api_context *ctx)
{
        struct json_object *core = json_object_new_object();
        struct proc_security sec = { 0 };
        char caps[256] = "";
        unsigned waiting = 0;

        (void)proc_security_read(0, &sec);
        (void)caps_mask_format(sec.cap_eff, caps, sizeof(caps));
        json_object_object_add(core, "version", json_object_new_string(API_VERSION));
        json_object_object_add(core, "pid", json_object_new_int64(getpid()));
        json_object_object_add(core, "snap", json_object_new_boolean(ctx->snap));
        json_object_object_add(core, "spawner_pid", json_object_new_int64(ctx->spawner_pid));
        json_object_object_add(core, "capabilities", json_object_new_string(caps));
        json_object_object_add(core, "caps_effective", json_object_new_uint64(sec.cap_eff));
        json_object_object_add(core, "caps_permitted", json_object_new_uint64(sec.cap_prm));
        json_object_object_add(core, "no_new_privs", json_object_new_boolean(sec.no_new_privs));
        json_object_object_add(core, "uptime_ms", json_object_new_uint64((now_usec() - ctx->started_usec) / 1000));
        {
                uint64_t ready_ms, ready_realtime_usec;

                modules_startup_report(ctx->modules, &ready_ms, &ready_realtime_usec);
                /* null until every connected plug's module has run once */
                json_object_object_add(core, "modules_ready_ms",
                                       ready_realtime_usec ? json_object_new_uint64(ready_ms) : NULL);
                json_object_object_add(core, "modules_ready_realtime_us",
                                       ready_realtime_usec ? json_object_new_uint64(ready_realtime_usec) : NULL);
        }
        json_object_object_add(core, "startup", status_startup_json(ctx));
        json_object_object_add(core, "state_dir", json_object_new_string(ctx->cfg->state_dir));
        json_object_object_add(core, "api_socket", json_object_new_string(ctx->cfg->api_socket));
        /* instance records older than memory (their last write failed; written with the next write) */
        json_object_object_add(core, "unsaved_records", json_object_new_uint64(instances_unsaved(ctx->instances)));
        for (int i = 0; i < _PLUG_MAX; i++) {
                struct module_status st;
                modules_get_status(ctx->modules, (enum plug_id)i, &st);
                if (!st.connected)
                        waiting++;
        }
        json_object_object_add(core, "plugs_disconnected", json_object_new_int((int)waiting));
        return core;
}

static struct json_object *status_instances_json(const struct instance_store *store)
{
        struct json_object *inst = json_object_new_object();
        int active = 0, stopped = 0, error = 0, busy = 0;

        for (struct instance *i = instances_first(store); i; i = i->next) {
                active += i->vm_state == VM_ACTIVE;
                stopped += i->vm_state == VM_STOPPED;
                error += i->vm_state == VM_ERROR;
                busy += i->task != TASK_NONE;
        }
        json_object_object_add(inst, "total", json_object_new_int64((int64_t)instances_count(store)));
        json_object_object_add(inst, "active", json_object_new_int(active));
        json_object_object_add(inst, "stopped", json_object_new_int(stopped));
        json_object_object_add(inst, "error", json_object_new_int(error));
        json_object_object_add(inst, "busy", json_object_new_int(busy));
        return inst;
}

static struct json_object *status_reconcile_json(const struct lifecycle *lc)
{
        struct json_object *rec = json_object_new_object();
        struct reconcile_report rr;

        lifecycle_reconcile_report(lc, &rr);
        json_object_object_add(rec, "runs", json_object_new_uint64(rr.runs));
        json_object_object_add(rec, "seconds_ago",
                               rr.last_usec ? json_object_new_uint64((now_usec() - rr.last_usec) / 1000000) : NULL);
        json_object_object_add(rec, "orphan_domains", json_object_new_int((int)rr.orphan_domains));
        json_object_object_add(rec, "orphan_taps", json_object_new_int((int)rr.orphan_taps));
        json_object_object_add(rec, "orphan_vifs", json_object_new_int((int)rr.orphan_vifs));
        json_object_object_add(rec, "orphan_volumes", json_object_new_int((int)rr.orphan_volumes));
        json_object_object_add(rec, "reaped", json_object_new_int((int)rr.reaped));
        json_object_object_add(rec, "repaired", json_object_new_int((int)rr.repaired));
        json_object_object_add(rec, "last_error", rr.last_error[0] ? json_object_new_string(rr.last_error) : NULL);
        return rec;
}

static struct json_object *status_firewall_json(const struct firewall *fw, const struct secgroup_store *groups)
{
        struct json_object *fwo = json_object_new_object();
        struct firewall_report fr;

        firewall_report(fw, &fr);
        json_object_object_add(fwo, "secgroups", json_object_new_int64((int64_t)secgroups_count(groups)));
        json_object_object_add(fwo, "runs", json_object_new_uint64(fr.runs));
        json_object_object_add(fwo, "applied", json_object_new_int((int)fr.applied));
        json_object_object_add(fwo, "removed", json_object_new_int((int)fr.removed));
        json_object_object_add(fwo, "replumbed", json_object_new_int((int)fr.replumbed));
        json_object_object_add(fwo, "unfiltered_ports", json_object_new_int((int)fr.unfiltered));
        json_object_object_add(fwo, "last_error", fr.last_error[0] ? json_object_new_string(fr.last_error) : NULL);
        return fwo;
}

static void handle_status(struct api_conn *c)
{
        struct json_object *root = json_object_new_object(), *plugs = json_object_new_array();

        for (int i = 0; i < _PLUG_MAX; i++)
                json_object_array_add(plugs, module_json(api_context_of(c)->modules, (enum plug_id)i));
        json_object_object_add(root, "placement", placement_status_json(api_context_of(c)->placement)); /* issue 18 */
        json_object_object_add(root, "instances", status_instances_json(api_context_of(c)->instances));
        json_object_object_add(root, "reconcile", status_reconcile_json(api_context_of(c)->lifecycle));
        json_object_object_add(root, "firewall", status_firewall_json(api_context_of(c)->firewall, api_context_of(c)->groups));
        json_object_object_add(root, "core", status_core_json(api_context_of(c)));
        json_object_object_add(root, "plugs", plugs);
        api_respond_json(c, 200, root);
}

/* ---- plugs ---- */

static void handle_plug_change(struct api_conn *c, const char *name, bool connect)
{
        int plug = plug_from_name(name);
        char msg[256];
        int r;

        if (plug < 0) {
                (void)snprintf(msg, sizeof(msg), "unknown plug '%.64s'", name);
                return api_respond_error(c, 404, msg, -1);
        }
        if (api_context_of(c)->snap) {
                (void)snprintf(msg, sizeof(msg), "inside the snap plugs are managed by snapd: sudo snap %s nova-hypervisor:%s",
                               connect ? "connect" : "disconnect", plug_table[plug].name);
                return api_respond_error(c, 409, msg, -1);
        }
        /* Recorded first: a change that cannot be recorded is not made. */
        r = api_context_of(c)->save_plugs
                    ? api_context_of(c)->save_plugs(api_context_of(c)->cfg, api_context_of(c)->modules, (enum plug_id)plug, connect)
                    : 0;
        if (r < 0) {
                (void)snprintf(msg, sizeof(msg), "cannot record the plug state: %s", strerror(-r));
                return api_respond_error(c, api_status_for_errno(r), msg, -1);
        }
        r = modules_set_connected(api_context_of(c)->modules, (enum plug_id)plug, connect);
        if (r < 0) {
                (void)snprintf(msg, sizeof(msg), "cannot %s the plug: %s", connect ? "connect" : "disconnect", strerror(-r));
                if (api_context_of(c)->save_plugs) { /* the record goes back to what is */
                        struct module_status st;
                        modules_get_status(api_context_of(c)->modules, (enum plug_id)plug, &st);
                        (void)api_context_of(c)->save_plugs(api_context_of(c)->cfg, api_context_of(c)->modules,
                                                            (enum plug_id)plug, st.connected);
                }
                return api_respond_error(c, 500, msg, -1);
        }
        api_respond_json(c, 200, module_json(api_context_of(c)->modules, (enum plug_id)plug));
}

/* Inside the snap: the disconnect-plug hook says snapd is taking the plug
 * away. `snapctl is-connected` still says connected while that hook runs, so
 * the hook's word is what the core goes by; the next refresh re-reads snapd. */
static void handle_plug_disconnecting(struct api_conn *c, const char *name)
{
        int plug = plug_from_name(name);
        char msg[256];

        if (plug < 0) {
                (void)snprintf(msg, sizeof(msg), "unknown plug '%.64s'", name);
                return api_respond_error(c, 404, msg, -1);
        }
        if (!api_context_of(c)->snap)
                return api_respond_error(c, 409, "outside a snap use /v1/plugs/<plug>/disconnect", -1);
        (void)modules_set_connected(api_context_of(c)->modules, (enum plug_id)plug, false);
        api_respond_json(c, 200, module_json(api_context_of(c)->modules, (enum plug_id)plug));
}

static void handle_plug_refresh(struct api_conn *c)
{
        bool connected[_PLUG_MAX];
        char msg[256];
        int r;

        if (!api_context_of(c)->snap)
                return api_respond_error(c, 409, "outside a snap use /v1/plugs/<plug>/connect or disconnect", -1);
        r = snapctl_connected_plugs(connected);
        if (r < 0) {
                (void)snprintf(msg, sizeof(msg), "snapctl is-connected failed: %s", strerror(-r));
                return api_respond_error(c, 502, msg, -1);
        }
        for (int i = 0; i < _PLUG_MAX; i++)
                (void)modules_set_connected(api_context_of(c)->modules, (enum plug_id)i, connected[i]);
        handle_status(c);
}

/* ---- routes ---- */

static void route_status(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        (void)a;
        handle_status(c);
}

static void route_plug_refresh(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        (void)a;
        handle_plug_refresh(c);
}

static void route_plug_connect(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        handle_plug_change(c, a->arg[0], true);
}

static void route_plug_disconnect(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        handle_plug_change(c, a->arg[0], false);
}

static void route_plug_disconnecting(struct api_conn *c, const struct http_request *req, const struct api_args *a)
{
        (void)req;
        handle_plug_disconnecting(c, a->arg[0]);
}

const struct api_route api_status_routes[] = {
        { "GET", "/v1/status", route_status },
        { "POST", "/v1/plugs/refresh", route_plug_refresh },
        { "POST", "/v1/plugs/{plug}/connect", route_plug_connect },
        { "POST", "/v1/plugs/{plug}/disconnect", route_plug_disconnect },
        { "POST", "/v1/plugs/{plug}/disconnecting", route_plug_disconnecting },
        { NULL, NULL, NULL },
};
