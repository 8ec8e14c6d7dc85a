#!/bin/bash
# The sandbox (make run): the whole service on this machine without touching
# the host: private state and run dirs, a private network namespace where
# every tap lives, a private ovsdb-server + ovs-vswitchd (userspace datapath)
# whose taps live in that namespace too, a private libvirtd of its own
# (scripts/libvirtd-private.sh: own sockets, run/state/log dirs, host_uuid)
# driving QEMU with software emulation, in that namespace, its storage pool in
# the sandbox dir, and the core with every module (all eight plugs connected).
#
# It imports the test guest (scripts/guest/build-test-guest.sh, cached) as an
# image, boots it behind the security groups default + web (web: ICMP and TCP
# 80 in), shows the console lines in which the guest prints the uuid and address
# it read from its config drive, pings it from the sandbox's side of br-int (an
# internal port, 10.0.0.1) through OVS -> qvo/qvb -> qbr -> tap, shows TCP 80
# (the guest's httpd) passing and TCP 7 (its echo, not in the groups) dropped,
# then passing once a rule allows it; shows `status`, the ports, the port's
# chain, `host`, `stats demo`; tears everything down and prints its wall time.
#
# With the test driver (libvirt's in-process test:///default: no QEMU, no guest)
# the same demo runs without an image, console or traffic, in a few seconds.
#
#   make run                  set up, demo, tear down (private libvirtd + QEMU)
#   make run LIBVIRT=test     the same with libvirt's test driver (fast)
#   make run KEEP=1           leave it running and print how to use the CLI
#   make run-stop             tear down a kept sandbox
# Environment: NOVA_SANDBOX_LIBVIRT (qemu|test, what LIBVIRT= sets),
# NOVA_SANDBOX_LIBVIRT_URI (another libvirt altogether: no private libvirtd),
# NOVA_SANDBOX_DIR, NOVA_SANDBOX_NETNS, NOVA_SANDBOX_BOOT_TIMEOUT (s, default 240).
set -euo pipefail
cd "$(dirname "$0")/.."
t_start=$(date +%s%N)

SB=${NOVA_SANDBOX_DIR:-/tmp/nova-sandbox}
NS=${NOVA_SANDBOX_NETNS:-nova-sandbox}
BIN=$PWD/build/bin
SOCK=$SB/run/nova-hypervisor.socket
CLI=("$BIN/nova-hypervisor" --socket "$SOCK")
DEMO_PORT=5e1f0c1a-7d3b-4c2e-9a8f-0b1c2d3e4f50
DEMO_IP=10.0.0.5
HOST_IP=10.0.0.1
HOST_PORT=sbhost0  # the sandbox's own port on br-int (internal), where ping and TCP start
MODE=${NOVA_SANDBOX_LIBVIRT:-qemu}
case $MODE in
qemu) LIBVIRT_URI=${NOVA_SANDBOX_LIBVIRT_URI:-} ;;
test) LIBVIRT_URI=${NOVA_SANDBOX_LIBVIRT_URI:-test:///default} ;;
*) echo "LIBVIRT must be qemu (a private libvirtd, the default) or test (libvirt's test driver), not '$MODE'" >&2; exit 2 ;;
esac
# A real guest unless the driver is libvirt's test driver (it starts no QEMU).
REAL_GUEST=1
[[ $LIBVIRT_URI == test:* ]] && REAL_GUEST=0
BOOT_TIMEOUT=${NOVA_SANDBOX_BOOT_TIMEOUT:-240}
PLUGS="network-control libvirt openvswitch firewall-control hardware-observe system-observe network-observe process-control"

say() { printf '\n== %s\n' "$*"; }
elapsed() { echo $((($(date +%s%N) - $1) / 1000000)); } # ms since a date +%s%N

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
	# The private libvirtd: its QEMU processes first, then libvirtd itself.
	[ ! -d "$SB/libvirtd" ] || bash scripts/libvirtd-private.sh stop "$SB/libvirtd" || true
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
if [ "$REAL_GUEST" = 1 ]; then
	# Cached outside the tree; a first build downloads two .debs (apt-get download).
	GUEST=$(bash scripts/guest/build-test-guest.sh)
	echo "test guest: $GUEST ($(sed -n 's/^kernel [^ ]* \([^ ]*\).*/kernel \1/p' "$GUEST/manifest"))"
fi
t_ready=$(date +%s%N)

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

STORAGE=
if [ "$REAL_GUEST" = 1 ] && [ -z "$LIBVIRT_URI" ]; then
	say "starting a private libvirtd (QEMU, software emulation) in $NS: $SB/libvirtd"
	# In the namespace: QEMU opens the instance's tap where the network-control module made it.
	LIBVIRT_URI=$(ip netns exec "$NS" bash scripts/libvirtd-private.sh start "$SB/libvirtd")
	echo "$LIBVIRT_URI ($(libvirtd --version), $(qemu-system-x86_64 --version | head -n 1))"
fi
if [ "$REAL_GUEST" = 1 ]; then
	STORAGE="storage_pool = nova-sandbox
storage_pool_path = $SB/pool"
fi
cat > "$SB/nova.conf" <<CONF
# sandbox configuration of nova-compute (same keys as snap set)
state_dir = $SB/state
run_dir = $SB/run
plugs = $PLUGS
libvirt_uri = $LIBVIRT_URI
$STORAGE
vif_type = ovs
ovsdb_socket = unix:$SB/ovs/db.sock
integration_bridge = br-int
bridge_create = true
bridge_datapath_type = netdev
# A QEMU start under software emulation on a loaded machine took 4-5 s here, and past the
# default 10 s under load (domain_start timed out): room for it.
module_timeout_ms = 30000
CONF

say "starting nova-compute in network namespace $NS (libvirt_uri = $LIBVIRT_URI)"
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

say "nova-hypervisor secgroup create web; rules: ingress icmp, ingress tcp 80"
"${CLI[@]}" secgroup create web --description "ping and http from anywhere"
"${CLI[@]}" secgroup rule add web --direction ingress --protocol icmp
"${CLI[@]}" secgroup rule add web --direction ingress --protocol tcp --port 80

BOOT_IMAGE=()
MEMORY=64
if [ "$REAL_GUEST" = 1 ]; then
	say "nova-hypervisor image import guest $GUEST/disk.raw (the test guest's BIOS-bootable disk)"
	"${CLI[@]}" image import guest "$GUEST/disk.raw"
	"${CLI[@]}" image list
	BOOT_IMAGE=(--image guest)
	MEMORY=256
fi

say "nova-hypervisor boot demo ${BOOT_IMAGE[*]}${BOOT_IMAGE[*]:+ }--memory $MEMORY --port uuid=$DEMO_PORT,mtu=1450,ip=$DEMO_IP --secgroup default --secgroup web --wait"
t_boot=$(date +%s%N)
"${CLI[@]}" boot demo --vcpus 1 --memory "$MEMORY" "${BOOT_IMAGE[@]}" --port "uuid=$DEMO_PORT,mtu=1450,ip=$DEMO_IP" \
	--secgroup default --secgroup web --wait
echo "boot --wait answered in $(elapsed "$t_boot") ms"

if [ "$REAL_GUEST" = 1 ]; then
	say "nova-hypervisor console demo (the guest's serial console, until it prints what it read from config-2)"
	uuid=$("${CLI[@]}" --json show demo | python3 -c 'import json, sys; print(json.load(sys.stdin)["uuid"])')
	want="NOVA-GUEST uuid=$uuid ip=$DEMO_IP"
	t_wait=$(date +%s%N)
	# (captured, then searched: a grep -q that stops reading early must not fail the pipeline)
	until console=$("${CLI[@]}" console demo 2>&1) && grep -aq "$want" <<<"$console"; do
		if [ "$(elapsed "$t_wait")" -gt $((BOOT_TIMEOUT * 1000)) ]; then
			echo "no '$want' on the console within $BOOT_TIMEOUT s:" >&2
			echo "$console" >&2
			false
		fi
		sleep 0.2
	done
	# The console without terminal escapes and blank lines, up to the guest's line.
	tr -d '\r' <<<"$console" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' |
		grep -av '^[[:space:]]*$' | sed -n "1,/NOVA-GUEST uuid=/p" | tail -n 12 | sed 's/^/  | /'
	echo "boot to console line: $(elapsed "$t_boot") ms after boot was asked (uuid $uuid, as libvirt's domain)"

	say "the sandbox's side of br-int: internal port $HOST_PORT with $HOST_IP/24 in $NS"
	ovs-vsctl --db="unix:$SB/ovs/db.sock" --timeout=10 add-port br-int "$HOST_PORT" -- set Interface "$HOST_PORT" type=internal
	for _ in $(seq 100); do ip -n "$NS" link show "$HOST_PORT" >/dev/null 2>&1 && break; sleep 0.05; done
	# The instance's qbr lives in this namespace too: with the default arp_ignore the kernel would
	# answer the guest's ARP for $HOST_IP on qbr, with qbr's MAC, and the guest's answers would end
	# there. arp_ignore = 1: only on the interface that has the address.
	ip netns exec "$NS" sysctl -qw net.ipv4.conf.all.arp_ignore=1
	ip -n "$NS" addr add "$HOST_IP/24" dev "$HOST_PORT"
	ip -n "$NS" link set "$HOST_PORT" up
	# The userspace datapath forwards the guest's TCP with its checksums as the guest left them
	# (virtio-net checksum offload); network-control turns qvb's tx checksum offload off for it
	# (bridge_datapath_type = netdev reaches tap_create), so the kernel finishes them there.
	echo "qvb${DEMO_PORT:0:11} tx checksum offload (set by network-control for the userspace datapath): $(ip netns exec "$NS" ethtool -k "qvb${DEMO_PORT:0:11}" | sed -n 's/^tx-checksumming: //p')"
	echo "path: $HOST_PORT -> br-int -> qvo${DEMO_PORT:0:11} -> qvb${DEMO_PORT:0:11} -> qbr${DEMO_PORT:0:11} (nftables) -> tap${DEMO_PORT:0:11} -> QEMU -> guest eth0"

	say "ping -c 3 $DEMO_IP (ICMP: allowed by group web)"
	# The first packets may go while the guest still answers ARP for the first time: retry (bounded).
	ok=0
	for _ in 1 2 3 4 5; do
		if ip netns exec "$NS" ping -c 3 -i 0.3 -W 2 "$DEMO_IP"; then ok=1; break; fi
	done
	[ "$ok" = 1 ] || { echo "the guest did not answer ping" >&2; false; }

	say "TCP $DEMO_IP:80 (the guest's httpd; allowed by group web)"
	body=$(ip netns exec "$NS" curl -sS --max-time 10 "http://$DEMO_IP/")
	echo "GET / -> '$body' (the guest's uuid: $([ "$body" = "$uuid" ] && echo matches || echo DIFFERS))"
	[ "$body" = "$uuid" ]

	say "TCP $DEMO_IP:7 (the guest's echo; no group allows it: dropped)"
	t_drop=$(date +%s%N)
	if ip netns exec "$NS" timeout 3 bash -c "exec 3<>/dev/tcp/$DEMO_IP/7 && cat <&3" 2>/dev/null; then
		echo "TCP 7 was not dropped" >&2
		false
	fi
	echo "connect to port 7: no answer within $(elapsed "$t_drop") ms (the SYN is dropped by the port's chain)"

	say "nova-hypervisor secgroup rule add web --direction ingress --protocol tcp --port 7: now it passes"
	rule=$("${CLI[@]}" secgroup rule add web --direction ingress --protocol tcp --port 7)
	echo "$rule"
	echo7=
	for _ in $(seq 20); do
		echo7=$(ip netns exec "$NS" timeout 3 bash -c "exec 3<>/dev/tcp/$DEMO_IP/7 && cat <&3" 2>/dev/null || true)
		[ -n "$echo7" ] && break
		sleep 0.2
	done
	echo "port 7 answered: '$echo7'"
	[ "$echo7" = "$uuid" ]
fi

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
	echo
	echo "make run: $(elapsed "$t_start") ms wall to set up and show ($(elapsed "$t_ready") ms after deps, build and the test guest were ready)"
	cat <<EOF2

The sandbox keeps running (log: $SB/nova.log). Try:
  $BIN/nova-hypervisor --socket $SOCK status
  $BIN/nova-hypervisor --socket $SOCK console demo
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
[ "$REAL_GUEST" = 0 ] || "${CLI[@]}" image delete guest
stop_sandbox
echo "sandbox removed; nothing left on the host"
echo "make run: $(elapsed "$t_start") ms wall ($(elapsed "$t_ready") ms after deps, build and the test guest were ready)"
