/* Violation (must not compile as interfaces/network-control): a module includes core code. */
#include "instances.h"
