/* Control (must compile as src/core): the core sees src/lib, itself and every
 * module's *-protocol.h. Without this control a broken include path would make
 * every "bad" probe fail for the wrong reason. */
#include "fw-protocol.h"
#include "instances.h"
#include "libvirt-protocol.h"
#include "names.h"
#include "netctl-protocol.h"
#include "ovs-protocol.h"

int layer_probe(void);
int layer_probe(void) { return LIBVIRT_MAX_PORTS; }
