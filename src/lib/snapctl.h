/* snapctl.h - the few snapctl queries we need, by fork+exec (never a shell).
 * Only meaningful inside a snap ($SNAP set). */
#ifndef NOVA_SNAPCTL_H
#define NOVA_SNAPCTL_H

#include "plugs.h"

/* True when running inside a snap. */
bool in_snap(void);

/* Whether this process may shrink its capability bounding set: never inside
 * a snap, where no interface grants setpcap (AppArmor logs a denial for each
 * try) and the snap's profile bounds every process anyway. */
bool bounding_set_ours(void);

/* `snapctl is-connected --list`: ret_connected[i] for every plug of ours.
 * 0, or -errno (snapctl missing, failed, or printed an error). */
int snapctl_connected_plugs(bool ret_connected[_PLUG_MAX]);

/* `snapctl is-connected PLUG`: 1 connected, 0 not connected, -errno on error
 * (snapctl exits 1 in both cases; an error is told apart by its stderr). */
int snapctl_is_connected(const char *plug);

/* Run argv (argv[0] looked up in PATH), capture at most max bytes of stdout
 * and of stderr (NUL-terminated, malloc'd; pass NULL to discard). Returns the
 * exit status (>= 0) or -errno; a child killed by a signal gives -EINTR. */
int run_capture(char *const argv[], size_t max, char **ret_out, char **ret_err);

#endif
