#!/bin/bash
# vif-plug-anchors.sh - the anchors of bench/vif-plug: VIF plug latency of the
# tools OpenStack has used, on a private Open vSwitch (Debian's
# openvswitch-switch: a fresh ovsdb-server and a userspace ovs-vswitchd in a
# scratch network namespace, bridge br-int with datapath_type=netdev):
#
#   ovs-vsctl  what nova's linux_net did per VIF: one ovs-vsctl process per port,
#              --may-exist add-port plus the Interface's type=internal and
#              external_ids (iface-id, iface-status, attached-mac, vm-uuid) in one
#              transaction; ovs-vsctl waits for ovs-vswitchd (no --no-wait).
#              Ports vsc1..vscN.
#   ovsdbapp   what os-vif's ovs plugin does: bench/anchors/ovsdbapp-ports.py, one
#              transaction per port through Debian's python3-ovsdbapp (waits for
#              ovs-vswitchd through next_cfg/cur_cfg). Ports osvif0..osvif<N-1>,
#              on the same bridge after the ovs-vsctl ones.
#
#   bash bench/anchors/vif-plug-anchors.sh [N]      (root; default N 200)
#
# Prints (per_port_ms: wall total of the N plugs / N, process starts included
# for ovs-vsctl; ovsdbapp's connection is made before its timing starts):
#   ovs-vsctl per_port_ms=X N=N
#   ovsdbapp(os-vif) per_port_ms=X N=N
# Everything (daemons, namespace, temp dir under $TMPDIR or /tmp) is removed on exit.
set -euo pipefail
export LC_ALL=C   # EPOCHREALTIME's decimal point

count=${1:-200}
if [[ ! $count =~ ^[1-9][0-9]{0,5}$ ]]; then
        echo "usage: $0 [N (1..999999)]" >&2
        exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
        echo "vif-plug-anchors: must be run as root (network namespace, OVS daemons)" >&2
        exit 1
fi
schema=/usr/share/openvswitch/vswitch.ovsschema
for p in ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl; do
        command -v "$p" >/dev/null || {
                echo "vif-plug-anchors: $p not found (make deps installs openvswitch-switch)" >&2
                exit 1
        }
done
/usr/bin/python3 -c 'import ovsdbapp' 2>/dev/null || {
        echo "vif-plug-anchors: python3-ovsdbapp is not installed (make deps installs it)" >&2
        exit 1
}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

dir=$(mktemp -d "${TMPDIR:-/tmp}/vifanchor.XXXXXX")
ns=vifanchor$$
db=unix:$dir/db.sock
# stop PIDFILE: TERM the daemon, wait up to 30 s for it to be gone, then KILL.
stop() {
        local pid
        [[ -s $1 ]] || return 0
        pid=$(cat "$1")
        kill "$pid" 2>/dev/null || return 0
        for _ in $(seq 300); do
                kill -0 "$pid" 2>/dev/null || return 0
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
        stop "$dir/vswitchd.pid"
        stop "$dir/ovsdb.pid"
        ip netns delete "$ns" 2>/dev/null || true
        rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
ip netns add "$ns"
ip -n "$ns" link set lo up

ovsdb-tool create "$dir/conf.db" "$schema"
ovsdb-server "--remote=punix:$dir/db.sock" "--unixctl=$dir/ovsdb.ctl" "--pidfile=$dir/ovsdb.pid" \
        "--log-file=$dir/ovsdb.log" -vconsole:err --detach "$dir/conf.db"
ovs-vsctl "--db=$db" --no-wait init
OVS_RUNDIR=$dir ip netns exec "$ns" ovs-vswitchd "$db" "--pidfile=$dir/vswitchd.pid" "--unixctl=$dir/vswitchd.ctl" \
        "--log-file=$dir/vswitchd.log" -vconsole:err --detach
ovs-vsctl "--db=$db" --timeout=60 add-br br-int -- set Bridge br-int datapath_type=netdev

start=$EPOCHREALTIME
for ((i = 1; i <= count; i++)); do
        ovs-vsctl "--db=$db" --timeout=60 -- --may-exist add-port br-int "vsc$i" -- set Interface "vsc$i" type=internal \
                "external_ids:iface-id=port-$i" external_ids:iface-status=active \
                external_ids:attached-mac=fa:16:3e:00:00:01 "external_ids:vm-uuid=vm-$i"
done
end=$EPOCHREALTIME
applied=$(ovs-vsctl "--db=$db" --format=csv --no-headings --columns=name,ofport find Interface type=internal |
        awk -F, '$1 ~ /^"?vsc[0-9]+"?$/ && $2 > 0' | wc -l)
if ((applied != count)); then
        echo "vif-plug-anchors: ovs-vsctl: $applied of $count ports have an ofport" >&2
        exit 1
fi
echo "ovs-vsctl per_port_ms=$(awk -v s="$start" -v e="$end" -v n="$count" 'BEGIN { printf "%.3f", (e - s) * 1000 / n }') N=$count"

/usr/bin/python3 "$here/ovsdbapp-ports.py" "$db" br-int "$count"
