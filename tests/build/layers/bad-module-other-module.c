/* Violation (must not compile as interfaces/network-control): a module includes another module's header. */
#include "fw-protocol.h"
