/* aaglob.h - AppArmor path rules as snapd writes them, matched against paths.
 *
 * Supports what snapd's policy uses: {a,b} alternation (nested), *, **, ?,
 * [..] / [^..] classes, and the variables @{PROC}, @{pid}, @{tid},
 * @{SNAP_NAME}, @{SNAP_INSTANCE_NAME}, @{SNAP_REVISION}, @{INSTALL_DIR},
 * @{HOME}, @{HOMEDIRS}, @{multiarch}, @{SNAP_COREUTIL_DIRS}. */
#ifndef NOVA_AAGLOB_H
#define NOVA_AAGLOB_H

#include "util.h"

/* True when path matches the rule's path pattern (snap name nova-hypervisor).
 * Patterns expanding to more than 4096 alternatives never match. */
bool aaglob_match(const char *pattern, const char *path);

/* True when the rule's permission letters ("rw", "mrkix", "ixr") grant every
 * letter of the kernel's denied/requested mask ("r", "wc", "x", "k", ...).
 * w covers a, c and d; any x mode (ix, Px, ux) covers x. */
bool aaperms_grant(const char *rule_perms, const char *mask);

#endif
