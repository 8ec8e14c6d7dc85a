/* Violation (must not compile as src/core): the core includes a module's internal header. */
#include "tap.h"
