/* Violation (must not compile as src/lib): shared code includes the core. */
#include "modules.h"
