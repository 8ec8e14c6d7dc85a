/* migrate-cmds.h - CLI for live migration's steps (docs/MIGRATION.md):
 *   migrate describe NAME|UUID                       (source) the description prepare takes, JSON
 *   migrate prepare FILE|-                           (destination) ports, rules, disks made ready
 *   migrate NAME|UUID --to URI --host IP [--pool P] [--timeout S] [--bandwidth MIB]
 *                                                    (source) the live migration, progress each second
 *   migrate progress NAME|UUID                       (source) the running job
 *   migrate finish NAME|UUID                         (destination) record the arrived instance
 *   migrate abort NAME|UUID [--source]               (destination) undo prepare; --source: abort the job
 * Returns the CLI exit status: 0 ok, 1 the request failed, 2 usage, 3 the core is unreachable. */
#ifndef NOVA_CLI_MIGRATE_CMDS_H
#define NOVA_CLI_MIGRATE_CMDS_H

#include "util.h"

int cmd_migrate(const char *socket, bool json, int argc, char **argv);

#endif
