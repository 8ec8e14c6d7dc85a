#!/bin/bash
# The sandbox (make run): the whole service on this machine without touching
# the host: private state and run dirs, a private network namespace where
# every tap lives, the core with its modules, libvirt's in-process test
# driver, and a private ovsdb-server + ovs-vswitchd (userspace datapath) whose
# taps live in that namespace too. Every plug is connected (all eight
# modules run). It boots a demo instance with a port, shows `status`, the
# instance, its tap and its OVS port, the host inventory (`host`) and the
# demo's load and counters (`stats demo`), and tears everything down.
# NOVA_SANDBOX_LIBVIRT_URI picks another libvirt (e.g. qemu:///embed?root=DIR).
#
#   make run            set up, demo, tear down
#   make run KEEP=1     leave it running and print how to use the CLI
#   make run-stop       tear down a kept sandbox
set -euo pipefail
cd "$(dirname "$0")/.."

SB=${NOVA_SANDBOX_DIR:-/tmp/nova-sandbox}
NS=${NOVA_SANDBOX_NETNS:-nova-sandbox}
BIN=$PWD/build/bin
SOCK=$SB/run/nova-hypervisor.socket
CLI=("$BIN/nova-hypervisor" --socket "$SOCK")
DEMO_PORT=5e1f0c1a-7d3b-4c2e-9a8f-0b1c2d3e4f50
LIBVIRT_URI=${NOVA_SANDBOX_LIBVIRT_URI:-test:///default}
PLUGS="network-control libvirt openvswitch firewall-control hardware-observe system-observe network-observe process-control"

say() { printf '\n== %s\n' "$*"; }

stop_ovs() {
	for p in "$SB/ovs/vswitchd.pid" "$SB/ovs/ovsdb.pid"; do
		if [ -f "$p" ]; then
			pid=$(cat "$p")
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		fi
	done
}

stop_sandbox() {
	if [ -f "$SB/core.pid" ]; then
		pid=$(cat "$SB/core.pid")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"
			# nova-compute stops its modules before it exits; wait for it (bounded).
			for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" || true
		fi
	fi
	stop_ovs
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$SB"
}

if [ "${1:-}" = stop ]; then
	stop_sandbox
	echo "sandbox stopped and removed"
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "make run needs root: it creates a network namespace and tap devices (try: sudo make run)" >&2
	exit 1
fi

say "installing what is missing and building"
bash scripts/deps.sh
make -s all

if ip netns list 2>/dev/null | grep -qw "^$NS"; then
	echo "a sandbox is already set up (namespace $NS); stop it first with: make run-stop" >&2
	exit 1
fi

trap 'echo "sandbox failed; log: $SB/nova.log"; [ "${KEEP:-0}" = 1 ] || stop_sandbox' ERR
mkdir -p "$SB/state" "$SB/run" "$SB/ovs"
ip netns add "$NS"
ip -n "$NS" link set lo up

say "starting a private ovsdb-server and ovs-vswitchd (userspace datapath) in $NS"
ovsdb-tool create "$SB/ovs/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server --remote="punix:$SB/ovs/db.sock" --unixctl="$SB/ovs/ovsdb.ctl" --pidfile="$SB/ovs/ovsdb.pid" \
	--log-file="$SB/ovs/ovsdb.log" --detach "$SB/ovs/conf.db"
ovs-vsctl --db="unix:$SB/ovs/db.sock" --no-wait init
OVS_RUNDIR="$SB/ovs" ip netns exec "$NS" ovs-vswitchd "unix:$SB/ovs/db.sock" --pidfile="$SB/ovs/vswitchd.pid" \
	--unixctl="$SB/ovs/vswitchd.ctl" --log-file="$SB/ovs/vswitchd.log" --detach
cat > "$SB/nova.conf" <<CONF
# sandbox configuration of nova-compute (same keys as snap set)
state_dir = $SB/state
run_dir = $SB/run
plugs = $PLUGS
libvirt_uri = $LIBVIRT_URI
vif_type = ovs
ovsdb_socket = unix:$SB/ovs/db.sock
integration_bridge = br-int
bridge_create = true
bridge_datapath_type = netdev
CONF

say "starting nova-compute in network namespace $NS"
setsid ip netns exec "$NS" "$BIN/nova-compute" --config "$SB/nova.conf" >"$SB/nova.log" 2>&1 &
echo $! >"$SB/core.pid"
for _ in $(seq 100); do
	"${CLI[@]}" status >/dev/null 2>&1 && break
	sleep 0.05
done
# Wait until every module has said hello (bounded).
for _ in $(seq 100); do
	st=$("${CLI[@]}" --json status | tr -d ' \n')
	running=0
	for plug in $PLUGS; do
		echo "$st" | grep -q "\"plug\":\"$plug\",\"summary\":\"[^\"]*\",\"connected\":true,\"module\":{\"program\":\"[^\"]*\",\"state\":\"running\"" &&
			running=$((running + 1))
	done
	[ "$running" = 8 ] && break
	sleep 0.05
done

say "nova-hypervisor secgroup create ssh; secgroup rule add ssh --direction ingress --protocol tcp --port 22"
"${CLI[@]}" secgroup create ssh --description "ssh from anywhere"
"${CLI[@]}" secgroup rule add ssh --direction ingress --protocol tcp --port 22

say "nova-hypervisor boot demo --port uuid=$DEMO_PORT,mtu=1450,ip=10.0.0.5 --secgroup default --secgroup ssh --wait"
"${CLI[@]}" boot demo --vcpus 1 --memory 64 --port "uuid=$DEMO_PORT,mtu=1450,ip=10.0.0.5" --secgroup default \
	--secgroup ssh --wait

say "nova-hypervisor status"
"${CLI[@]}" status

say "nova-hypervisor list"
"${CLI[@]}" list

say "nova-hypervisor port list (the instance's tap)"
"${CLI[@]}" port list

say "nova-hypervisor ports (the instance's port on the integration bridge)"
"${CLI[@]}" ports

say "the kernel's view (ip link in $NS): tap -> qbr bridge -> qvb/qvo veth -> OVS"
ip -n "$NS" -o link show | grep -E "(tap|qbr|qvb|qvo)${DEMO_PORT:0:11}" | sed 's/ link\/ether.*//; s/qdisc [a-z_]* //; s/state [A-Z]* //'


say "the port's security-group chain (nft list chain inet nova_hypervisor port-$DEMO_PORT in $NS)"
ip netns exec "$NS" nft list chain inet nova_hypervisor "port-$DEMO_PORT"

say "nova-hypervisor host (inventory from hardware-observe, placement summary from the instance store)"
"${CLI[@]}" host

say "nova-hypervisor stats demo (load from system-observe, the port's counters from network-observe)"
"${CLI[@]}" stats demo

if [ "${KEEP:-0}" = 1 ]; then
	trap - ERR
	cat <<EOF2

The sandbox keeps running (log: $SB/nova.log). Try:
  $BIN/nova-hypervisor --socket $SOCK status
  $BIN/nova-hypervisor --socket $SOCK boot web --count 5
  $BIN/nova-hypervisor --socket $SOCK host
  $BIN/nova-hypervisor --socket $SOCK stats demo
  curl --unix-socket $SOCK http://localhost/metrics
  $BIN/nova-hypervisor --socket $SOCK stop demo --wait
  $BIN/nova-hypervisor --socket $SOCK plug disconnect libvirt
  curl --unix-socket $SOCK http://localhost/v1/status
  ip -n $NS link
  ovs-vsctl --db=unix:$SB/ovs/db.sock show
Stop it with: make run-stop
EOF2
	exit 0
fi

say "tearing down"
"${CLI[@]}" delete demo --wait
stop_sandbox
echo "sandbox removed; nothing left on the host"
