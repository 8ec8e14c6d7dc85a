/* modrt.h - the module runtime every plug module links: connect to the core
 * (inherited socketpair or the core's module socket), drop every capability
 * but the module's own, set no_new_privs, announce itself, then serve the
 * static entrypoint table with strict validation and one audit line per
 * privileged call. Modules with their own event loop (libvirt, OVS) call
 * modrt_fd()/modrt_dispatch() from it; the others use the runtime's loop. */
#ifndef NOVA_MODRT_H
#define NOVA_MODRT_H

#include "config.h"
#include "plugs.h"
#include "schema.h"

struct modrt;

/* One call being served. The runtime fills req and reply; the handler adds
 * reply members and, on failure, a reason in err. */
struct modrt_call {
        const struct proto_value *req;   /* validated request body */
        struct proto_writer *reply;      /* reply frame, header written; add members */
        char err[256];                   /* failure reason shown to the operator */
        char audit[128];                 /* extra audit detail, e.g. "tap=tap0123abcd-ef" */
        int fd;                          /* entrypoints with takes_fd: the descriptor that came with the
                                          * request (owned by the runtime, closed after the handler unless
                                          * the handler takes it with TAKE_FD); -1 for the others */
};

/* Handler: do the work, 0 or -errno. On failure members it wrote are dropped.
 * A handler that must wait (e.g. for ovs-vswitchd to assign an ofport) takes
 * a token with modrt_defer() and returns MODRT_DEFERRED; it answers later,
 * from its event loop, with modrt_complete(). */
typedef int (*modrt_handler_t)(void *state, struct modrt_call *call);
#define MODRT_DEFERRED 1

struct modrt_deferred;
/* Take over the answer of the call being handled (copies id, entrypoint and
 * the audit identifiers). NULL on allocation failure (then answer at once). */
struct modrt_deferred *modrt_defer(struct modrt *rt, struct modrt_call *call);
/* Answer a deferred call: status 0 with the members fill() writes (fill may be
 * NULL), or status -errno with err_text. May be called from inside a handler
 * (the reply of the call being handled is not disturbed). Writes the audit line of privileged
 * calls. If the core connection it came on is gone, the answer is dropped.
 * Frees d. Returns 0 or -errno from sending. */
int modrt_complete(struct modrt *rt, struct modrt_deferred *d, int status, const char *err_text,
                   void (*fill)(struct proto_writer *w, void *userdata), void *userdata);

/* Begin the reply of deferred call d in w (the header modrt_dispatch writes for a handler), so
 * that a handler run elsewhere, e.g. on a worker thread of the module's, can write its members
 * there. Any thread, while d is not completed (it reads only what modrt_defer copied). */
void modrt_deferred_reply_begin(const struct modrt_deferred *d, struct proto_writer *w);
/* Answer deferred call d from what a handler run elsewhere left in call, as modrt_dispatch
 * answers a handler it ran: status 0 with the reply call->reply (begun with
 * modrt_deferred_reply_begin, members written by the handler), or status -errno with
 * call->err (strerror when empty); call->audit goes into the audit line of a privileged
 * call. The thread that dispatches only. Frees d. Returns 0 or -errno from sending. */
int modrt_complete_call(struct modrt *rt, struct modrt_deferred *d, int status, struct modrt_call *call);

struct modrt_entry {
        const struct proto_entrypoint *ep; /* name, schema, privileged flag */
        modrt_handler_t handler;
};

struct modrt_module {
        const struct module_protocol *protocol;  /* plug and entrypoints (shared with the core) */
        const struct modrt_entry *entries;        /* static dispatch table, same order as protocol */
        size_t n_entries;
        /* After privileges are dropped, before serving: open library handles. */
        int (*init)(struct modrt *rt, void **ret_state);
        void (*done)(void *state);                /* accepts NULL */
        /* Optional own event loop: must watch modrt_fd() and call modrt_dispatch()
         * when readable, return when it returns < 0 or modrt_should_exit(). NULL: the
         * runtime's blocking loop. */
        int (*run)(struct modrt *rt, void *state);
        /* Optional: an fd of the module's to serve while there is no core to
         * serve (waiting for the core at --connect): the runtime calls
         * on_idle_fd(state) when it is readable. -1 or NULL: none. */
        int (*idle_fd)(void *state);
        void (*on_idle_fd)(void *state);
};

/* Entry point of a module program: parses --fd N | --connect PATH, --config FILE, -v. Returns the exit code. */
int modrt_main(const struct modrt_module *mod, int argc, char **argv);

/* The configuration (--config FILE, else built-in defaults); read-only. */
const struct nova_config *modrt_config(const struct modrt *rt);

/* Socket to the core (for foreign event loops). */
int modrt_fd(const struct modrt *rt);
/* Serve one frame from the core. 0; -ECONNRESET when the core went away;
 * -EBADMSG on a protocol violation (the connection is then closed): a bad
 * frame, a request id out of order, and any request the core's own checks
 * would have refused (unknown entrypoint, descriptor missing or unexpected,
 * schema violation): the module then exits with status 1 (fate-sharing). */
int modrt_dispatch(struct modrt *rt);
/* True once SIGTERM/SIGINT arrived. */
bool modrt_should_exit(const struct modrt *rt);
/* Send an event frame built by the module (pw_init with PROTO_EVENT). */
int modrt_send_event(struct modrt *rt, struct proto_writer *w);

/* Keep exactly the capabilities in `keep` (effective, permitted and, when
 * possible, bounding), clear ambient/inheritable, set no_new_privs, and verify
 * with the kernel's view. 0 or -errno with a reason in err. */
int modrt_drop_privileges(uint64_t keep, char *err, size_t errlen);

#endif
