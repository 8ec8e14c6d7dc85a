#!/usr/bin/python3
"""ovsdbapp-ports - VIF plugs the way os-vif's ovs plugin makes them.

os-vif (the library nova calls to plug VIFs) talks to ovsdb-server through
ovsdbapp: one IDL connection for the process, then per VIF one transaction
holding add_port (may_exist) on the integration bridge and a db_set of the
Interface's columns: external_ids iface-id, iface-status, attached-mac and
vm-uuid (and here type=internal, so that the port needs no tap made
beforehand). ovsdbapp's Open_vSwitch transactions bump next_cfg and wait
until ovs-vswitchd reports it in cur_cfg, i.e. until the port is applied.

    /usr/bin/python3 bench/anchors/ovsdbapp-ports.py DB_REMOTE BRIDGE N

DB_REMOTE is an OVSDB remote (unix:/path/db.sock). Adds ports osvif0..osvif<N-1>
to BRIDGE, one transaction each, timed from the first to the last commit
returned (the connection is made before). Then checks that all N are on the
bridge with an ofport. Prints
    ovsdbapp(os-vif) per_port_ms=X N=N
"""
import sys
import time

from ovsdbapp.backend.ovs_idl import connection
from ovsdbapp.schema.open_vswitch import impl_idl

TIMEOUT_S = 60
MAC = "fa:16:3e:00:00:02"


def plug(api, bridge, index):
    """One VIF: one transaction, as os-vif's create_ovs_vif_port makes it."""
    name = "osvif%d" % index
    columns = [
        ("external_ids", {"iface-id": "port-%d" % index,
                          "iface-status": "active",
                          "attached-mac": MAC,
                          "vm-uuid": "vm-%d" % index}),
        ("type", "internal"),
    ]
    with api.transaction(check_error=True) as txn:
        txn.add(api.add_port(bridge, name, may_exist=True))
        txn.add(api.db_set("Interface", name, *columns))


def main(argv):
    if len(argv) != 4 or not argv[3].isdigit() or int(argv[3]) < 1:
        sys.stderr.write("usage: %s DB_REMOTE BRIDGE N\n" % argv[0])
        return 1
    remote, bridge, count = argv[1], argv[2], int(argv[3])
    idl = connection.OvsdbIdl.from_server(remote, "Open_vSwitch")
    api = impl_idl.OvsdbIdl(connection.Connection(idl=idl, timeout=TIMEOUT_S))

    start = time.perf_counter()
    for index in range(count):
        plug(api, bridge, index)
    elapsed = time.perf_counter() - start

    ours = [p for p in api.list_ports(bridge).execute(check_error=True)
            if p.startswith("osvif")]
    ofports = api.db_list("Interface", ours, columns=["ofport"]).execute(check_error=True)
    applied = sum(1 for row in ofports if isinstance(row["ofport"], int) and row["ofport"] > 0)
    if len(ours) != count or applied != count:
        sys.stderr.write("ovsdbapp-ports: %d ports on %s, %d with an ofport; expected %d\n"
                         % (len(ours), bridge, applied, count))
        return 1
    print("ovsdbapp(os-vif) per_port_ms=%.3f N=%d" % (elapsed * 1000 / count, count))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
