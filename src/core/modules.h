/* modules.h - the core's registry of plugs and their module processes.
 *
 * For every plug the snap requests it knows: connected or not, the module's
 * state (pid, capabilities the kernel reports, restarts, last error), and the
 * live connection over which requests go. Outside a snap it supervises the
 * module processes through the spawner: one per connected plug, restarted
 * with exponential backoff after a crash, stopped on disconnect. Nothing
 * else is touched when one plug changes. */
#ifndef NOVA_MODULES_H
#define NOVA_MODULES_H

#include "config.h"
#include "plugs.h"
#include "proto.h"
#include "schema.h"

#include <systemd/sd-event.h>

enum module_state {
        MOD_OFF,         /* plug disconnected, no process */
        MOD_STARTING,    /* spawned, hello not yet accepted */
        MOD_RUNNING,     /* hello accepted: serving requests */
        MOD_BACKOFF,     /* crashed; restart timer armed */
        MOD_STOPPING,    /* stop requested, waiting for the exit */
        MOD_UNAVAILABLE, /* plug connected but this build has no such module program */
};

struct module_status {
        enum plug_id plug;
        bool connected;              /* plug state */
        enum module_state state;
        pid_t pid;                   /* 0 when no process */
        uint64_t caps_effective;     /* from /proc/<pid>/status when the hello arrived */
        bool no_new_privs;
        unsigned restarts;           /* crash restarts since the plug was connected */
        uint64_t uptime_usec;        /* since the hello, 0 when not running */
        uint64_t restart_in_usec;    /* MOD_BACKOFF: time until the next start */
        char last_error[256];        /* "" when none */
};

/* Result of a module call, valid only during the callback. */
struct module_result {
        int status;                  /* 0, or -errno (module error, timeout, module gone, not connected) */
        const char *error;           /* operator-facing text when status < 0 */
        const struct proto_value *body; /* reply body when status == 0 */
};

/* One entrypoint of one module, typed by the module's own enum (its
 * *-protocol.h): EP_NETCTL(TAP_CREATE) is network-control's NETCTL_TAP_CREATE.
 * A misspelt entrypoint is a compile error; the macros are initializers (in
 * an expression: (struct module_ep)EP_LIBVIRT(DOMAIN_LIST)). */
struct module_ep {
        enum plug_id plug;
        unsigned id;            /* index into the plug's entrypoint table */
};
#define EP_LIBVIRT(name) { PLUG_LIBVIRT, LIBVIRT_##name }
#define EP_OVS(name) { PLUG_OPENVSWITCH, OVS_##name }
#define EP_NETCTL(name) { PLUG_NETWORK_CONTROL, NETCTL_##name }
#define EP_FW(name) { PLUG_FIREWALL_CONTROL, FW_##name }
#define EP_HW(name) { PLUG_HARDWARE_OBSERVE, HW_##name }
#define EP_SYSOBS(name) { PLUG_SYSTEM_OBSERVE, SYSOBS_##name }
#define EP_NETOBS(name) { PLUG_NETWORK_OBSERVE, NETOBS_##name }
#define EP_PROCCTL(name) { PLUG_PROCESS_CONTROL, PROCCTL_##name }

/* The wire name of ep ("tap_create"). ep must be in its plug's table. */
const char *module_ep_name(struct module_ep ep);
/* Begin a request to ep in w (pw_init with its name). */
void module_request_init(struct proto_writer *w, struct module_ep ep);

typedef void (*module_call_cb)(const struct module_result *res, void *userdata);
struct module_call;

/* Create the registry. spawner_fd < 0 means modules are not supervised by us
 * (inside a snap systemd runs them). initial[] is the connected-plug set. */
struct modules;
int modules_new(sd_event *event, const struct nova_config *cfg, int spawner_fd, const bool initial[_PLUG_MAX],
                const char *module_dir, struct modules **ret);
/* Close every connection (pending calls fail), stop supervising, free (NULL accepted). Returns NULL. */
struct modules *modules_free(struct modules *reg);

/* Inside a snap: accept module apps on listen_fd (a bound, listening,
 * non-blocking SOCK_SEQPACKET socket; ownership taken). A peer must be root
 * (SO_PEERCRED) and, where an LSM reports one, carry the label
 * snap.nova-hypervisor.<plug> of the plug its hello names. */
int modules_listen(struct modules *reg, int listen_fd);

/* Connect or disconnect a plug live (outside a snap: `nova-hypervisor plug`,
 * inside: the interface hooks). Starts or stops just that module. */
int modules_set_connected(struct modules *reg, enum plug_id plug, bool connected);

void modules_get_status(const struct modules *reg, enum plug_id plug, struct module_status *ret);
const char *module_state_name(enum module_state s);

/* Check that plug's module can take a request now: 0, or -ENOTCONN (plug not
 * connected) / -EAGAIN (module not running) with the operator text (naming
 * the plug and the fix) in err. */
int modules_check_ready(const struct modules *reg, enum plug_id plug, char *err, size_t errlen);

/* Send a request (w built with pw_init(PROTO_REQUEST, 0, 0, entrypoint)),
 * validated against the module's schema first. On error returns -errno with
 * the operator text in err and cb is never called. On 0, cb is called exactly
 * once (reply, module error, timeout after timeout_usec (0 = configured
 * default), or the module going away) unless the call is cancelled through
 * *ret_call (may be NULL). When the registry is freed (the core shuts down),
 * pending calls end with -ESHUTDOWN. */
int modules_call(struct modules *reg, enum plug_id plug, struct proto_writer *w, uint64_t timeout_usec, module_call_cb cb,
                 void *userdata, struct module_call **ret_call, char *err, size_t errlen);
/* The same, with one descriptor passed along (SCM_RIGHTS) for an entrypoint
 * that takes one (passed_fd < 0: none; a mismatch with the entrypoint's
 * takes_fd is -EINVAL). The caller keeps its copy of passed_fd. */
int modules_call_fd(struct modules *reg, enum plug_id plug, struct proto_writer *w, int passed_fd, uint64_t timeout_usec,
                    module_call_cb cb, void *userdata, struct module_call **ret_call, char *err, size_t errlen);
/* Forget a pending call: its callback will not run. */
void module_call_cancel(struct module_call *call);

/* Events a module sends (body valid during the call) and modules becoming
 * ready (hello accepted: started or restarted). Either may be NULL. */
typedef void (*module_event_cb)(enum plug_id plug, const char *event, const struct proto_value *body,
                                void *userdata);
typedef void (*module_ready_cb)(enum plug_id plug, void *userdata);
void modules_set_handlers(struct modules *reg, module_event_cb on_event, module_ready_cb on_ready, void *userdata);

/* Called (synchronously, from inside the registry: only note it and act
 * later) after a module changed state or a plug was connected or
 * disconnected. One handler; NULL removes it. The health report uses it. */
typedef void (*module_status_cb)(void *userdata);
void modules_set_status_handler(struct modules *reg, module_status_cb on_status, void *userdata);

/* Start-up time: ms from the registry's start until every connected plug's
 * module first ran, and that moment on the wall clock (usec since the
 * epoch, for a caller timing from its own start of the core); 0 and 0 until
 * then. */
void modules_startup_report(const struct modules *reg, uint64_t *ret_ready_ms, uint64_t *ret_ready_realtime_usec);

/* Start-up, one plug's module: usec after the registry started (0: not yet, or
 * never: a plug not connected, or inside a snap, where systemd starts the module
 * and no spawner reports a fork). */
struct module_startup {
        uint64_t spawned_usec;  /* the spawner reported the fork (the exec follows) */
        uint64_t hello_usec;    /* its first hello was accepted: it serves from then on */
};
/* When the registry started (monotonic usec), and for each plug the first
 * spawn and hello after it (a restart later does not change them). */
void modules_startup_times(const struct modules *reg, uint64_t *ret_started_usec, struct module_startup ret[_PLUG_MAX]);

/* True when the plug is connected and its module answers requests. */
bool modules_ready(const struct modules *reg, enum plug_id plug);

/* A module's reply value as JSON for the API (caller puts it); NULL for an unknown type. */
struct json_object;
struct json_object *proto_value_to_json(const struct proto_value *v);

/* The protocol the core expects from each plug's module (protocols.c), NULL
 * where this build has none; modules_protocol() checks the index. */
extern const struct module_protocol *const module_protocols[_PLUG_MAX];
/* The protocol the core expects from plug's module, NULL when this build has none. */
const struct module_protocol *modules_protocol(enum plug_id plug);

#endif
