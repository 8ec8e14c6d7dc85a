/* Violation (must not compile as src/cli): the CLI includes a module's protocol header. */
#include "libvirt-protocol.h"
