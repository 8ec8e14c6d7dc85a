#!/bin/bash
# Two hypervisor "hosts" sharing a network through OVN, on one machine, all
# in network namespaces (make run-multihost). Nothing touches the host's own
# network or OVS.
#
#   OVN central: NB + SB ovsdb-server (unix sockets), ovn-northd
#   host a, host b (namespaces $P-a, $P-b), each:
#     its own ovsdb-server, ovs-vswitchd (userspace datapath, in the
#     namespace), ovn-controller (chassis host-a / host-b, Geneve), br-int,
#     br-phy with the underlay address 192.0.2.1/.2, and its own nova-compute
#     with the network-control, libvirt (test:///default) and openvswitch
#     modules, config ovn = true, network_mtu = 1442
#   underlay: one veth pair between $P-a and $P-b (MTU 1500)
#
# The script plays the control plane (as neutron would): ovn-nbctl ls-add,
# lsp-add with addresses; then boots one instance per host through that host's
# CLI with those port ids. No guest OS runs (test:///default starts no QEMU):
# a stand-in takes QEMU's place on each instance's tap (scripts/guest-standin.py:
# it opens the tap as QEMU does and relays to a veth whose other end is the
# "guest NIC" in namespace $P-<host>-vm, with the port's MAC, IP and MTU).
#
# With MH_GUESTS=qemu (make run-multihost GUESTS=qemu) real guests replace the
# stand-ins: each host also runs a private libvirtd (scripts/libvirtd-private.sh,
# in its namespace; QEMU with software emulation; listening on TCP on the underlay address,
# qemu+tcp://192.0.2.1|2/system, auth_tcp none) with its storage pool in $D/<h>,
# and the firewall-control module; the test guest (make guest) is imported on both
# hosts and booted from that image behind a group mh (ICMP and TCP 80 in); each
# guest prints the uuid and address it read from its config drive on the console; a
# probe port of the network (10.0.0.2, an internal port on host a's br-int bound to
# its own logical port) pings both guests, the one on host b across Geneve, and
# fetches vm-b's uuid from its httpd over TCP.
#
#   bash scripts/multihost.sh            up, boot, show bindings and traffic, down
#   bash scripts/multihost.sh up|down    (also: boot HOST NAME PORT MAC IP, standin HOST PORT MAC IP)
#   KEEP=1 make run-multihost            leave it running
# Environment: MH_DIR (default /tmp/nova-multihost), MH_PREFIX (netns prefix, default nova-mh),
# MH_OVN_WAIT_MS (default 20000), MH_POLICY (fail|continue, default fail), MH_GUESTS (standin|qemu,
# default standin), MH_BOOT_TIMEOUT (s, default 240: a real guest's console line).
set -euo pipefail
cd "$(dirname "$0")/.."

D=${MH_DIR:-/tmp/nova-multihost}
P=${MH_PREFIX:-nova-mh}
BIN=$PWD/build/bin
NET=net1
SUBNET=10.0.0
PORT_A=${MH_PORT_A:-0a0a0a0a-1111-4a11-8a11-00000000000a}
PORT_B=${MH_PORT_B:-0b0b0b0b-2222-4b22-8b22-00000000000b}
MAC_A=fa:16:3e:00:00:0a
MAC_B=fa:16:3e:00:00:0b
IP_A=$SUBNET.10
IP_B=$SUBNET.11

MH_GUESTS=${MH_GUESTS:-standin}
case $MH_GUESTS in
standin | qemu) ;;
*) echo "multihost: MH_GUESTS must be standin or qemu, not '$MH_GUESTS'" >&2; exit 2 ;;
esac
PROBE=probe-a           # the logical port (and internal port on host a's br-int) traffic starts from
PROBE_MAC=fa:16:3e:00:00:02
PROBE_IP=$SUBNET.2

say() { printf '\n== %s\n' "$*"; }
nbctl() { ovn-nbctl --db="unix:$D/central/nb.sock" --timeout=10 "$@"; }
sbctl() { ovn-sbctl --db="unix:$D/central/sb.sock" --timeout=10 "$@"; }
vsctl() { local h=$1; shift; ovs-vsctl --db="unix:$D/$h/db.sock" --timeout=10 "$@"; }
cli() { local h=$1; shift; "$BIN/nova-hypervisor" --socket "$D/$h/run/nova-hypervisor.socket" "$@"; }
host_ip() { [ "$1" = a ] && echo 192.0.2.1 || echo 192.0.2.2; }

# Whether pid runs (a zombie that its parent has not reaped yet does not).
# OpenStack Placement (issue 18): with MH_PLACEMENT=1 (the demo's default when placement-api is
# installed) a real placement-api runs in host a's namespace on its underlay address, and both
# nova-computes register there (provider names mh-a, mh-b).
MH_PLACEMENT=${MH_PLACEMENT:-}
PLACEMENT_URL=http://192.0.2.1:8778
placement_conf() {
	[ "$MH_PLACEMENT" = 1 ] || return 0
	printf 'placement_url = %s\nprovider_name = mh-%s\n' "$PLACEMENT_URL" "$1"
}
# the inventory Placement gets comes from hardware-observe
placement_plugs() { [ "$MH_PLACEMENT" != 1 ] || printf ' hardware-observe'; }
# sqlite schema first (about 9 s here), in the background while the hosts come up
prepare_placement() {
	[ "$MH_PLACEMENT" = 1 ] || return 0
	mkdir -p "$D/placement"
	printf '[placement_database]\nconnection = sqlite:///%s/placement/p.db\n[api]\nauth_strategy = noauth2\n' "$D" \
		>"$D/placement/placement.conf"
	placement-manage --config-file "$D/placement/placement.conf" db sync >"$D/placement/sync.log" 2>&1 &
	echo $! >"$D/placement/sync.pid"
}
# the API, once host a's underlay address exists; the cores retry with backoff until it answers
start_placement() {
	[ "$MH_PLACEMENT" = 1 ] || return 0
	wait "$(cat "$D/placement/sync.pid")"
	OS_PLACEMENT_CONFIG_DIR=$D/placement setsid ip netns exec "$P-a" placement-api --host 192.0.2.1 --port 8778 \
		>>"$D/placement/api.log" 2>&1 &
	echo $! >"$D/placement/api.pid"
}
placement_get() {
	ip netns exec "$P-a" curl -s -m 5 -H 'X-Auth-Token: admin' -H 'OpenStack-API-Version: placement 1.26' \
		"$PLACEMENT_URL$1"
}
# both hosts' providers with inventories (a verdict: non-zero when not within 60 s)
show_placement() {
	local out="" deadline=$((SECONDS + 60))
	while [ "$SECONDS" -lt "$deadline" ]; do
		out=$(placement_get /resource_providers 2>/dev/null || true)
		if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); n={p["name"] for p in d["resource_providers"]}; sys.exit(0 if {"mh-a","mh-b"} <= n else 1)' "$out" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	python3 - "$out" <<'PY' || return 1
import json, subprocess, sys
d = json.loads(sys.argv[1])
names = sorted(p["name"] for p in d["resource_providers"])
assert {"mh-a", "mh-b"} <= set(names), "providers in Placement: %s" % names
for p in sorted(d["resource_providers"], key=lambda p: p["name"]):
    print("%s %s generation %d" % (p["name"], p["uuid"], p["generation"]))
PY
	for h in a b; do
		cli "$h" --json status | python3 -c 'import json,sys; p=json.load(sys.stdin)["placement"]; print("host %s: %s, provider %s, last sync %s" % (sys.argv[1], p["state"], p["provider_uuid"], p.get("last_sync")))' "$h"
	done
}

alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# Stop the process of a pidfile (TERM, then KILL after 5 s), bounded.
stop_pidfile() {
	[ -f "$1" ] || return 0
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 0
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do alive "$pid" || return 0; sleep 0.05; done
	kill -KILL "$pid" 2>/dev/null || true
}

start_central() {
	mkdir -p "$D/central"
	for db in nb sb; do
		ovsdb-tool create "$D/central/$db.db" "/usr/share/ovn/ovn-$db.ovsschema"
		ovsdb-server --remote="punix:$D/central/$db.sock" --unixctl="$D/central/$db.ctl" \
			--pidfile="$D/central/$db.pid" --log-file="$D/central/$db.log" --detach "$D/central/$db.db" 2>>"$D/central/start.err"
	done
	OVN_RUNDIR=$D/central ovn-northd --ovnnb-db="unix:$D/central/nb.sock" --ovnsb-db="unix:$D/central/sb.sock" \
		--pidfile="$D/central/northd.pid" --log-file="$D/central/northd.log" --detach 2>>"$D/central/start.err"
}

# ovs-vswitchd and ovn-controller of host h (also used to restart them).
start_vswitchd() {
	local h=$1
	OVS_RUNDIR=$D/$h ip netns exec "$P-$h" ovs-vswitchd "unix:$D/$h/db.sock" --pidfile="$D/$h/vswitchd.pid" \
		--unixctl="$D/$h/vswitchd.ctl" --log-file="$D/$h/vswitchd.log" --detach 2>>"$D/$h/start.err"
}
start_ovn_controller() {
	local h=$1
	OVS_RUNDIR=$D/$h OVN_RUNDIR=$D/$h ip netns exec "$P-$h" ovn-controller "unix:$D/$h/db.sock" \
		--pidfile="$D/$h/ovn-controller.pid" --log-file="$D/$h/ovn-controller.log" --detach 2>>"$D/$h/start.err"
}

start_core() {
	local h=$1
	setsid ip netns exec "$P-$h" "$BIN/nova-compute" --config "$D/$h/nova.conf" >>"$D/$h/nova.log" 2>&1 &
	echo $! >"$D/$h/core.pid"
	for _ in $(seq 200); do
		st=$(cli "$h" --json status 2>/dev/null | tr -d ' \n') || st=
		running=0
		for plug in network-control libvirt openvswitch $(guest_plugs); do
			echo "$st" | grep -q "\"plug\":\"$plug\",\"summary\":\"[^\"]*\",\"connected\":true,\"module\":{\"program\":\"[^\"]*\",\"state\":\"running\"" &&
				running=$((running + 1))
		done
		[ "$running" = "$((3 + $(guest_plugs | wc -w)))" ] && return 0
		sleep 0.05
	done
	echo "multihost: the core of host $h did not start; log: $D/$h/nova.log" >&2
	return 1
}

stop_core() { stop_pidfile "$D/$1/core.pid"; }

# Real guests: each host's ports are filtered (hybrid plug: qbr, qvb/qvo), so the demo can turn
# off qvb's tx checksum offload (below); the libvirt of host h.
guest_plugs() { [ "$MH_GUESTS" != qemu ] || printf ' firewall-control'; }
libvirt_conf() {
	local h=$1
	if [ "$MH_GUESTS" = qemu ]; then
		printf 'libvirt_uri = %s\nstorage_pool = nova-mh-%s\nstorage_pool_path = %s\n' \
			"$(bash scripts/libvirtd-private.sh uri "$D/$h/libvirtd")" "$h" "$D/$h/pool"
	else
		printf 'libvirt_uri = test:///default\n'
	fi
}

start_host() {
	local h=$1 ip
	ip=$(host_ip "$h")
	mkdir -p "$D/$h/state" "$D/$h/run"
	ovsdb-tool create "$D/$h/conf.db" /usr/share/openvswitch/vswitch.ovsschema
	ovsdb-server --remote="punix:$D/$h/db.sock" --unixctl="$D/$h/ovsdb.ctl" --pidfile="$D/$h/ovsdb.pid" \
		--log-file="$D/$h/ovsdb.log" --detach "$D/$h/conf.db" 2>>"$D/$h/start.err"
	vsctl "$h" --no-wait init
	vsctl "$h" --no-wait set Open_vSwitch . external_ids:system-id="host-$h" \
		external_ids:ovn-remote="unix:$D/central/sb.sock" external_ids:ovn-encap-type=geneve \
		external_ids:ovn-encap-ip="$ip" external_ids:ovn-bridge-datapath-type=netdev
	start_vswitchd "$h"
	vsctl "$h" -- add-br br-int -- set Bridge br-int datapath_type=netdev fail-mode=secure \
		other-config:disable-in-band=true
	vsctl "$h" -- add-br br-phy -- set Bridge br-phy datapath_type=netdev -- add-port br-phy "ul-$h"
	ip -n "$P-$h" addr add "$ip/24" dev br-phy
	ip -n "$P-$h" link set br-phy up
	start_ovn_controller "$h"
	if [ "$MH_GUESTS" = qemu ]; then
		# in the host's namespace: QEMU opens the taps where network-control makes them; it
		# also listens on TCP on the underlay address (no auth: private namespaces only), so
		# the other host's libvirtd can reach it as qemu+tcp://<ip>/system (migrations)
		ip netns exec "$P-$h" bash scripts/libvirtd-private.sh start "$D/$h/libvirtd" --tcp "$ip" >/dev/null
	fi
	cat >"$D/$h/nova.conf" <<CONF
# nova-compute of multihost host $h (same keys as snap set)
state_dir = $D/$h/state
run_dir = $D/$h/run
plugs = network-control libvirt openvswitch$(placement_plugs)$(guest_plugs)
$(libvirt_conf "$h")
vif_type = ovs
ovsdb_socket = unix:$D/$h/db.sock
integration_bridge = br-int
bridge_datapath_type = netdev
module_timeout_ms = 30000
ovn = true
ovn_wait_ms = ${MH_OVN_WAIT_MS:-20000}
ovn_timeout_policy = ${MH_POLICY:-fail}
network_mtu = 1442
$(placement_conf "$h")
CONF
	start_core "$h"
}

up() {
	if [ "$(id -u)" != 0 ]; then
		echo "multihost needs root: it creates network namespaces" >&2
		exit 1
	fi
	if ip netns list 2>/dev/null | grep -qw "^$P-a"; then
		echo "multihost is already up (namespace $P-a); stop it first: bash scripts/multihost.sh down" >&2
		exit 1
	fi
	mkdir -p "$D"
	for h in a b; do
		ip netns add "$P-$h"
		ip -n "$P-$h" link set lo up
	done
	# the underlay: one veth pair between the two hosts
	ip link add "ul-a" netns "$P-a" type veth peer name "ul-b" netns "$P-b"
	ip -n "$P-a" link set ul-a up
	ip -n "$P-b" link set ul-b up
	prepare_placement
	start_central
	start_host a
	start_host b
	start_placement
	# the control plane's network (as neutron would create it)
	nbctl ls-add "$NET"
}

# Control plane: the logical port; then the boot on host h through its CLI.
boot() {
	local h=$1 name=$2 port=$3 mac=$4 ip=$5
	nbctl --may-exist lsp-add "$NET" "$port" -- lsp-set-addresses "$port" "$mac $ip"
	cli "$h" boot "$name" --port "uuid=$port,mac=$mac" --wait
}

# The guest stand-in of the instance with port on host h: namespace
# $P-<h>-vm with eth0 (the port's MAC, IP, the network's MTU), relayed to the tap.
standin() {
	local h=$1 port=$2 mac=$3 ip=$4 tap=tap${2:0:11} relay=sr${2:0:11} g=sg${2:0:11}
	ip netns add "$P-$h-vm"
	ip -n "$P-$h-vm" link set lo up
	ip -n "$P-$h" link add "$relay" type veth peer name "$g" netns "$P-$h-vm"
	ip -n "$P-$h-vm" link set "$g" name eth0
	ip -n "$P-$h-vm" link set eth0 address "$mac" mtu 1442
	ip -n "$P-$h-vm" addr add "$ip/24" dev eth0
	# the userspace datapath completes no partial checksums: the guest end computes them
	ip netns exec "$P-$h-vm" ethtool -K eth0 tx off >/dev/null
	ip -n "$P-$h" link set "$relay" mtu 1442 up
	ip -n "$P-$h-vm" link set eth0 up
	setsid ip netns exec "$P-$h" python3 scripts/guest-standin.py "$tap" "$relay" >>"$D/$h/standin.log" 2>&1 &
	echo $! >"$D/$h/standin.pid"
	for _ in $(seq 100); do grep -q "relaying\|waiting for" "$D/$h/standin.log" 2>/dev/null && return 0; sleep 0.05; done
	echo "multihost: the stand-in on $tap did not start: $(cat "$D/$h/standin.log")" >&2
	return 1
}

# The chassis a logical port is bound to ("" when none).
bound_chassis() {
	local ch
	ch=$(sbctl --bare --columns=chassis find Port_Binding logical_port="$1")
	[ -n "$ch" ] && sbctl --bare --columns=name list Chassis "$ch" || echo ""
}

down() {
	for h in a b; do
		stop_pidfile "$D/$h/standin.pid"
		stop_core "$h"
		[ ! -d "$D/$h/libvirtd" ] || bash scripts/libvirtd-private.sh stop "$D/$h/libvirtd" || true
		stop_pidfile "$D/$h/ovn-controller.pid"
		stop_pidfile "$D/$h/vswitchd.pid"
		stop_pidfile "$D/$h/ovsdb.pid"
	done
	for f in northd nb sb; do stop_pidfile "$D/central/$f.pid"; done
	stop_pidfile "$D/placement/api.pid"
	for ns in "$P-a-vm" "$P-b-vm" "$P-a" "$P-b"; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$D"
}

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# The uuid of instance name on host h.
instance_uuid() { cli "$1" --json show "$2" | python3 -c 'import json, sys; print(json.load(sys.stdin)["uuid"])'; }

# Wait (bounded) until the console of name on host h shows the guest's line with its uuid and ip.
wait_console() {
	local h=$1 name=$2 ip=$3 uuid want con t0
	uuid=$(instance_uuid "$h" "$name")
	want="NOVA-GUEST uuid=$uuid ip=$ip"
	t0=$(date +%s%N)
	until con=$(cli "$h" console "$name" 2>&1) && grep -aq "$want" <<<"$con"; do
		if [ "$(ms_since "$t0")" -gt $((${MH_BOOT_TIMEOUT:-240} * 1000)) ]; then
			echo "multihost: no '$want' on the console of $name (host $h):" >&2
			echo "$con" >&2
			return 1
		fi
		sleep 0.2
	done
	grep -a "NOVA-GUEST" <<<"$con" | tr -d '\r' | sed "s/^/  host $h $name | /"
}

# The demo with real guests (MH_GUESTS=qemu), after up.
demo_guests() {
	local h name port mac ip t0 body uuid_b
	say "control plane: ovn-nbctl lsp-add $NET $PORT_A / $PORT_B / $PROBE with addresses"
	nbctl --may-exist lsp-add "$NET" "$PORT_A" -- lsp-set-addresses "$PORT_A" "$MAC_A $IP_A"
	nbctl --may-exist lsp-add "$NET" "$PORT_B" -- lsp-set-addresses "$PORT_B" "$MAC_B $IP_B"
	nbctl --may-exist lsp-add "$NET" "$PROBE" -- lsp-set-addresses "$PROBE" "$PROBE_MAC $PROBE_IP"
	for h in a b; do
		say "host $h: security group mh (ingress ICMP, TCP 80); image import guest $GUEST/disk.raw"
		cli "$h" secgroup create mh --description "multihost demo: ping and http" >/dev/null
		cli "$h" secgroup rule add mh --direction ingress --protocol icmp >/dev/null
		cli "$h" secgroup rule add mh --direction ingress --protocol tcp --port 80 >/dev/null
		cli "$h" secgroup show mh
		cli "$h" image import guest "$GUEST/disk.raw"
	done
	t0=$(date +%s%N)
	for h in a b; do
		if [ "$h" = a ]; then name=vm-a port=$PORT_A mac=$MAC_A ip=$IP_A; else name=vm-b port=$PORT_B mac=$MAC_B ip=$IP_B; fi
		say "host $h: nova-hypervisor boot $name --image guest --memory 256 --port uuid=$port,mac=$mac,ip=$ip --secgroup mh --wait"
		cli "$h" boot "$name" --image guest --memory 256 --port "uuid=$port,mac=$mac,ip=$ip" --secgroup mh --wait |
			grep -E "^(uuid|state|power|port 0):|filtered"
	done
	say "bindings (ovn-sbctl show)"
	sbctl show
	echo "$PORT_A -> $(bound_chassis "$PORT_A")"
	echo "$PORT_B -> $(bound_chassis "$PORT_B")"
	say "consoles: each guest prints what it read from its config drive"
	wait_console a vm-a "$IP_A"
	wait_console b vm-b "$IP_B"
	echo "both guests on their consoles $(ms_since "$t0") ms after the first boot was asked (two TCG guests on this machine)"
	say "the probe: internal port $PROBE ($PROBE_IP) on host a's br-int, bound to its own logical port"
	# (a longer timeout: ovs-vswitchd was seen blocked 45 s in the kernel creating it on a loaded machine)
	ovs-vsctl --db="unix:$D/a/db.sock" --timeout=120 -- add-port br-int "$PROBE" -- set Interface "$PROBE" type=internal \
		external_ids:iface-id="$PROBE" "mac=\"$PROBE_MAC\""
	# The guests' bridges (qbr) live in this namespace too: with the default arp_ignore the kernel
	# would answer a guest's ARP for the probe's address on qbr, with qbr's MAC, and the guest's
	# answers would end there. arp_ignore = 1: only on the interface that has the address.
	ip netns exec "$P-a" sysctl -qw net.ipv4.conf.all.arp_ignore=1
	ip -n "$P-a" link set "$PROBE" address "$PROBE_MAC" mtu 1442
	ip -n "$P-a" addr add "$PROBE_IP/24" dev "$PROBE"
	ip -n "$P-a" link set "$PROBE" up
	# ovn-controller marks an interface ovn-installed once its flows are in (bounded wait)
	t0=$(date +%s%N)
	until [ "$(vsctl a --if-exists get Interface "$PROBE" external_ids:ovn-installed 2>/dev/null)" = '"true"' ]; do
		[ "$(ms_since "$t0")" -lt 60000 ] || { echo "multihost: $PROBE not ovn-installed within 60 s" >&2; false; }
		sleep 0.1
	done
	echo "$PROBE -> $(bound_chassis "$PROBE"), ovn-installed after $(ms_since "$t0") ms"
	say "ping vm-a ($IP_A, host a) and vm-b ($IP_B, host b, across Geneve) from the probe"
	for ip in "$IP_A" "$IP_B"; do
		ok=0
		for _ in 1 2 3 4 5; do
			if ip netns exec "$P-a" ping -c 3 -i 0.3 -W 2 -I "$PROBE" "$ip"; then ok=1; break; fi
		done
		[ "$ok" = 1 ] || { echo "multihost: $ip did not answer ping" >&2; false; }
	done
	say "TCP: GET http://$IP_B/ (vm-b's httpd, across Geneve; allowed by group mh)"
	uuid_b=$(instance_uuid b vm-b)
	body=$(ip netns exec "$P-a" curl -sS --max-time 10 --interface "$PROBE" "http://$IP_B/")
	echo "vm-b answered '$body' (its uuid: $([ "$body" = "$uuid_b" ] && echo matches || echo DIFFERS))"
	[ "$body" = "$uuid_b" ]
	if [ "${KEEP:-0}" = 1 ]; then
		trap - ERR
		cat <<EOF2

Multihost keeps running (logs in $D). Try:
  $BIN/nova-hypervisor --socket $D/b/run/nova-hypervisor.socket console vm-b
  ovn-sbctl --db=unix:$D/central/sb.sock show
  ip netns exec $P-a ping -I $PROBE $IP_B
Stop it with: bash scripts/multihost.sh down
EOF2
		exit 0
	fi
	say "tearing down"
	cli a delete vm-a --wait
	cli b delete vm-b --wait
	cli a image delete guest
	cli b image delete guest
	down
	echo "multihost removed; nothing left on the host"
	echo "make run-multihost (real guests): $(ms_since "$T_START") ms wall"
}

demo() {
	set -E # the ERR trap below tears down after a failure in any function it calls, too
	T_START=$(date +%s%N)
	say "installing what is missing and building"
	bash scripts/deps.sh
	make -s all
	if [ "$MH_GUESTS" = qemu ]; then
		GUEST=$(bash scripts/guest/build-test-guest.sh)
	fi
	trap 'echo "multihost failed; logs in $D"; [ "${KEEP:-0}" = 1 ] || down' ERR
	if [ "$MH_PLACEMENT" != 0 ] && command -v placement-api >/dev/null; then MH_PLACEMENT=1; fi
	say "OVN central (NB, SB, ovn-northd); hosts a and b (ovsdb-server, ovs-vswitchd, ovn-controller, nova-compute) in $P-a, $P-b"
	up
	sbctl show
	if [ "$MH_PLACEMENT" = 1 ]; then
		say "OpenStack Placement ($PLACEMENT_URL in $P-a): both hosts registered themselves"
		show_placement
	fi
	if [ "$MH_GUESTS" = qemu ]; then
		demo_guests
		return
	fi
	say "control plane: ovn-nbctl ls-add $NET; lsp-add $NET $PORT_A / $PORT_B with addresses"
	say "host a: nova-hypervisor boot vm-a --port uuid=$PORT_A,mac=$MAC_A --wait"
	boot a vm-a "$PORT_A" "$MAC_A" "$IP_A"
	say "host b: nova-hypervisor boot vm-b --port uuid=$PORT_B,mac=$MAC_B --wait"
	boot b vm-b "$PORT_B" "$MAC_B" "$IP_B"
	say "bindings (ovn-sbctl show)"
	sbctl show
	echo "$PORT_A -> $(bound_chassis "$PORT_A")"
	echo "$PORT_B -> $(bound_chassis "$PORT_B")"
	say "guest stand-ins on the taps (no guest OS runs under test:///default)"
	standin a "$PORT_A" "$MAC_A" "$IP_A"
	standin b "$PORT_B" "$MAC_B" "$IP_B"
	say "host a: nova-hypervisor ports (the tap now has its carrier: link_state up)"
	cli a ports
	say "ping from vm-a ($IP_A, host a) to vm-b ($IP_B, host b) across Geneve"
	ip netns exec "$P-a-vm" ping -c 3 -i 0.2 -W 2 "$IP_B" || ip netns exec "$P-a-vm" ping -c 3 -i 0.2 -W 2 "$IP_B"
	say "TCP: 4 MB from vm-a to vm-b"
	ip netns exec "$P-b-vm" python3 -c '
import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 5001)); s.listen(1)
print("listening", flush=True)
c,_=s.accept(); n=0
while True:
    b=c.recv(65536)
    if not b: break
    n+=len(b)
print("vm-b received", n, "bytes")' >"$D/tcp.out" 2>&1 &
	srv=$!
	for _ in $(seq 50); do grep -q listening "$D/tcp.out" && break; sleep 0.05; done
	ip netns exec "$P-a-vm" timeout 30 python3 -c '
import socket,time
s=socket.create_connection(("'"$IP_B"'", 5001), timeout=10); t=time.time()
s.sendall(b"x" * (4 << 20)); s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
print("vm-a sent 4194304 bytes in %.2f s" % (time.time() - t))'
	wait "$srv" || true
	cat "$D/tcp.out" | grep received
	if [ "${KEEP:-0}" = 1 ]; then
		trap - ERR
		cat <<EOF2

Multihost keeps running (logs in $D). Try:
  $BIN/nova-hypervisor --socket $D/a/run/nova-hypervisor.socket ports
  ovn-sbctl --db=unix:$D/central/sb.sock show
  ip netns exec $P-a-vm ping $IP_B
Stop it with: bash scripts/multihost.sh down
EOF2
		exit 0
	fi
	say "tearing down"
	cli a delete vm-a --wait
	cli b delete vm-b --wait
	down
	echo "multihost removed; nothing left on the host"
}

case "${1:-demo}" in
up) up ;;
down) down ;;
boot) boot "$2" "$3" "$4" "$5" "$6" ;;
standin) standin "$2" "$3" "$4" "$5" ;;
bound) bound_chassis "$2" ;;
start-core) start_core "$2" ;;
stop-core) stop_core "$2" ;;
start-ovn-controller) start_ovn_controller "$2" ;;
stop-ovn-controller) stop_pidfile "$D/$2/ovn-controller.pid" ;;
demo) demo ;;
*)
	echo "usage: multihost.sh [demo|up|down|boot HOST NAME PORT MAC IP|standin HOST PORT MAC IP|bound PORT|" \
		"start-core|stop-core|start-ovn-controller|stop-ovn-controller HOST]" >&2
	exit 2
	;;
esac
