/* observe-cmds.h - CLI commands over the observe and process plugs:
 *   host [--json]                       inventory (hardware-observe) and placement summary
 *   stats [NAME|UUID] [--json]          load, instance CPU/RSS (system-observe), VIF counters (network-observe)
 *   pin NAME|UUID --cpus LIST [--priority N]   CPU pinning of the instance's QEMU threads (process-control)
 * Each returns the CLI exit status: 0 ok, 1 the request failed, 2 usage, 3 the core is unreachable. */
#ifndef NOVA_CLI_OBSERVE_CMDS_H
#define NOVA_CLI_OBSERVE_CMDS_H

#include "util.h"

int cmd_host(const char *socket, bool json, int argc, char **argv);
int cmd_stats(const char *socket, bool json, int argc, char **argv);
int cmd_pin(const char *socket, bool json, int argc, char **argv);

/* One line about the Placement client (status/host JSON's "placement" / "placement_sync"):
 * its state, provider, last sync, and on failure the error and the fix. p may be NULL. */
struct json_object;
void print_placement_line(struct json_object *p);

#endif
