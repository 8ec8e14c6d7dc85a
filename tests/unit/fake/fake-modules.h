/* fake-modules.h - an in-process stand-in for the module registry (modules.h),
 * for unit tests of the core's pipeline engine (lifecycle.c, firewall.c).
 *
 * A fake, because the engine's logic (plans, undo order, rollback, reconcile
 * decisions) is what is under test, not the modules: those run for real in
 * tests/integration/. It keeps the one promise of the real registry the
 * engine relies on: a request is checked against the module's own schema
 * (the *-protocol.c tables) before it is "sent", so a malformed request fails
 * here as it would against a real module. Replies are held until
 * fake_flush() delivers them, in order, so a test sees every step. */
#ifndef NOVA_FAKE_MODULES_H
#define NOVA_FAKE_MODULES_H

#include "modules.h"

/* Every plug starts connected and ready. */
void fake_modules_init(void);
/* The registry to hand the engine (modules_* check they are given it). */
struct modules *fake_modules(void);
void fake_set_plug(enum plug_id plug, bool connected, bool ready);

/* The nth call (0-based) of entrypoint (-1: every call) fails with status. */
void fake_fail(const char *entrypoint, int nth, int status);

/* Fill the body of a successful reply to req (already begun in w). */
typedef void (*fake_reply_fn)(const struct proto_value *req, struct proto_writer *w);
void fake_set_reply(const char *entrypoint, fake_reply_fn fn);

/* Deliver held replies (and those of the calls they cause) until none is
 * left. Returns how many were delivered. */
unsigned fake_flush(void);
/* Requests sent but not answered yet. */
unsigned fake_pending(void);

/* What was called, in order: "entrypoint" or "entrypoint/xx" (xx: the last two
 * characters of the request's port_uuid), then ":kind" when the request has a
 * "kind" (volumes_delete), separated by single spaces. */
const char *fake_log(void);
void fake_log_clear(void);
/* How many requests failed the schema check (must stay 0). */
unsigned fake_rejected(void);

/* What the descriptor of the last call that passed one held (read at the
 * call, NUL-terminated; at most 512 KiB). */
const char *fake_last_fd_data(size_t *ret_len);

/* The registry's handlers, as lifecycle.c installed them. */
void fake_module_ready(enum plug_id plug);
/* An event {connected} of plug's module (libvirt_connection, ovsdb_connection). */
void fake_module_connection_event(enum plug_id plug, const char *event, bool connected);

#endif
