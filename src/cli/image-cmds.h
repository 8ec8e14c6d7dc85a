/* image-cmds.h - CLI commands for disks (issue 17):
 *   image import NAME FILE|- [--format raw|qcow2] [--size BYTES]
 *   image list | show NAME|UUID | delete NAME|UUID
 *   console NAME|UUID [--tail N]
 * Each returns the CLI exit status: 0 ok, 1 the request failed, 2 usage, 3 the core is unreachable.
 *
 * An import copies the file into a pipe on a thread of its own and passes the
 * pipe's read end with the request (SCM_RIGHTS on the API socket); the core
 * hands it on to the libvirt module, which reads it. A pipe rather than the
 * file's own descriptor: the same path serves FILE and a stream on stdin,
 * the copy is where the progress is counted, and no file descriptor crosses
 * into another AppArmor profile (which revalidates passed files; a pipe is
 * not path-mediated). Memory stays bounded on every side: one 256 KiB buffer
 * here, the pipe, the module's chunk. */
#ifndef NOVA_CLI_IMAGE_CMDS_H
#define NOVA_CLI_IMAGE_CMDS_H

#include "util.h"

int cmd_image(const char *socket, bool json, int argc, char **argv);
int cmd_console(const char *socket, bool json, int argc, char **argv);

#endif
