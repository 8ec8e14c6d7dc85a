/*
 * Build smoke test: proves that the libopenvswitch headers (including the
 * generated config.h and vswitch-idl.h) are found and that the static library
 * links with the flags from mk/ovs.mk.  It does not need a running OVS: the
 * IDL points at a socket that does not exist, runs once and is torn down.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "openvswitch/poll-loop.h"
#include "ovsdb-idl.h"
#include "vswitch-idl.h"

int main(void)
{
    struct ovsdb_idl *idl = ovsdb_idl_create("unix:/nonexistent/db.sock",
                                             &ovsrec_idl_class, false, true);
    if (idl == NULL) {
        fprintf(stderr, "ovsdb_idl_create failed\n");
        return EXIT_FAILURE;
    }
    ovsdb_idl_run(idl);
    ovsdb_idl_destroy(idl);
    puts("ovs idl ok");
    return EXIT_SUCCESS;
}
