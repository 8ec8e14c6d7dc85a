/* snap-commands.h - CLI commands that serve the snap's hooks and operators,
 * each in its own file, linked into nova-hypervisor. They need no core. */
#ifndef NOVA_SNAP_COMMANDS_H
#define NOVA_SNAP_COMMANDS_H

/* `nova-hypervisor config-check`: the snap configuration (`snapctl get -d`
 * JSON) on stdin; prints the config file text, or the error naming the snap
 * key on stderr (exit 1). config-check.c. */
int cmd_config_check(int argc, char **argv);

/* `nova-hypervisor explain-denial [FILE]`: AppArmor/seccomp denial lines from
 * FILE or stdin, explained one by one. explain-denial.c. */
int cmd_explain_denial(int argc, char **argv);

#endif
