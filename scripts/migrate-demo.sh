#!/usr/bin/env bash
# migrate-demo.sh - live migration of the real test guest between two "hosts" on one
# machine (make run-migrate; tests/integration/test-migrate.c runs it and checks its report).
#
#   host A, host B: network namespaces $P-a, $P-b, each with its own private libvirtd
#     (scripts/libvirtd-private.sh: own mount namespace, own dirs, own host_uuid) driving
#     QEMU/TCG, and its own nova-compute with the libvirt and network-control modules
#     (vif_type = tap), its own storage pool;
#   the wire: namespace $P-s with one Linux bridge, a veth to each host's bridge (br-a with
#     192.0.2.1, br-b with 192.0.2.2: libvirt's data and NBD go there) and one to the pinger
#     namespace $P-p (192.0.2.100). No OVS/OVN here: each instance tap is put on its host's
#     bridge by this script (the stand-in for the integration bridge).
#
# Steps: the guest image imported on A, and on B with the same id; boot vm1 on A (root disk
# overlay + config drive, 192.0.2.10); wait for its console line and a ping; then the three
# steps: `migrate describe` (A) -> `migrate prepare` (B) -> `migrate vm1 --to ... --host
# 192.0.2.2` (A) -> `migrate finish` (B), with a ping every 10 ms from $P-p the whole time;
# then check: the domain runs on B, none on A, A forgot vm1 and its volumes, B shows vm1
# active, the guest answers; stop and start on B: the disk marker counts its second boot.
#
# Lines starting with "RESULT " are the report (a test reads them).
# Environment: MIG_DIR (default: a new /tmp/nova-migrate.XXXXXX), MIG_PREFIX (netns prefix,
# default nmig$$), KEEP=1 (leave everything running), NOVA_BIN (default build/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
BIN=${NOVA_BIN:-$SRC/build/bin}
D=${MIG_DIR:-$(mktemp -d /tmp/nova-migrate.XXXXXX)}
P=${MIG_PREFIX:-nmig$$}
PORT=0c0c0c0c-3333-4c33-8c33-00000000000c
MAC=fa:16:3e:00:00:0c
GUEST_IP=192.0.2.10
PIDS=()

say() { echo "== $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }

cleanup() {
	set +e
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "left running in $D (netns $P-a $P-b $P-s $P-p); KEEP=0 to clean up"
		return
	fi
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	for h in a b; do
		[[ -d $D/lv-$h ]] && bash scripts/libvirtd-private.sh stop "$D/lv-$h" >/dev/null 2>&1
	done
	for n in a b s p; do ip netns del "$P-$n" 2>/dev/null; done
}
trap cleanup EXIT

cli() { local h=$1; shift; "$BIN/nova-hypervisor" --socket "$D/$h/run/nova-hypervisor.socket" "$@"; }

net_up() {
	local n
	for n in a b s p; do ip netns add "$P-$n"; ip -n "$P-$n" link set lo up; done
	ip -n "$P-s" link add br-s type bridge
	ip -n "$P-s" link set br-s up
	for n in a b p; do
		ip link add "$P-$n-up" type veth peer name "$P-$n-sw"
		ip link set "$P-$n-sw" netns "$P-s"
		ip -n "$P-s" link set "$P-$n-sw" master br-s up
		ip link set "$P-$n-up" netns "$P-$n"
	done
	for n in a b; do
		ip -n "$P-$n" link add "br-$n" type bridge
		ip -n "$P-$n" link set "$P-$n-up" master "br-$n" up
		ip -n "$P-$n" link set "br-$n" up
	done
	ip -n "$P-a" addr add 192.0.2.1/24 dev br-a
	ip -n "$P-b" addr add 192.0.2.2/24 dev br-b
	ip -n "$P-p" addr add 192.0.2.100/24 dev "$P-p-up"
	ip -n "$P-p" link set "$P-p-up" up
}

host_up() {
	local h=$1 uri
	mkdir -p "$D/$h"
	uri=$(ip netns exec "$P-$h" bash scripts/libvirtd-private.sh start "$D/lv-$h")
	cat > "$D/$h/core.conf" <<EOF
state_dir = $D/$h/state
run_dir = $D/$h/run
plugs = libvirt network-control
vif_type = tap
libvirt_uri = $uri
storage_pool = nova-$h
storage_pool_path = $D/$h/pool
shutdown_timeout_s = 5
EOF
	ip netns exec "$P-$h" "$BIN/nova-compute" --config "$D/$h/core.conf" >"$D/$h/core.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 200); do
		cli "$h" --json status 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if all(p.get("module",{}).get("state")=="running" for p in s["plugs"] if p.get("connected")) else 1)' 2>/dev/null && return 0
		sleep 0.1
	done
	die "host $h: nova-compute or its modules did not come up; see $D/$h/core.log"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

guest=$(bash scripts/guest/build-test-guest.sh | tail -1)
[[ -f $guest/disk.raw ]] || die "no test guest (make guest)"
say "hosts in $D, netns $P-{a,b,s,p}"
net_up
host_up a
host_up b

say "image: imported on A"
cli a image import guest "$guest/disk.raw" >/dev/null
IMG=$(cli a --json image show guest | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')

say "boot vm1 on A"
cli a boot vm1 --memory 128 --image guest --port "uuid=$PORT,mac=$MAC,mtu=1500,ip=$GUEST_IP" --wait >/dev/null
cli a migrate describe vm1 > "$D/vm1.json"

say "case: the destination without the image refuses prepare, naming it"
if cli b migrate prepare "$D/vm1.json" 2> "$D/noimage.err"; then die "prepare without the image succeeded"; fi
cat "$D/noimage.err"
grep -q "image $IMG is not here" "$D/noimage.err" || die "the refusal does not name the image"
[[ -z $(cli b list | grep vm1) ]] || die "a refused prepare left a record on B"
echo "RESULT case_no_image ok"
cli b image import guest "$guest/disk.raw" --id "$IMG" >/dev/null
TAP=tap${PORT:0:11}
ip -n "$P-a" link set "$TAP" master br-a
for _ in $(seq 600); do
	cli a console vm1 2>/dev/null | grep -q "NOVA-GUEST uuid=" && break
	sleep 0.5
done
cli a console vm1 | grep "NOVA-GUEST" || die "vm1 printed no NOVA-GUEST line on A"
for _ in $(seq 60); do ip netns exec "$P-p" ping -c 1 -W 1 "$GUEST_IP" >/dev/null 2>&1 && break; done
ip netns exec "$P-p" ping -c 1 -W 1 "$GUEST_IP" >/dev/null || die "vm1 does not answer ping on A"

say "case: abort mid-copy (1 MiB/s), from the source; then abort on B removes the prepared resources"
cli b migrate prepare "$D/vm1.json" >/dev/null
cli a migrate vm1 --to "qemu+unix:///system?socket=$D/lv-b/sock/libvirt-sock" --host 192.0.2.2 --pool nova-b \
	--timeout 300 --bandwidth 1 > "$D/abort.out" 2>&1 &
MIG=$!
for _ in $(seq 120); do
	cli a --json migrate progress vm1 2>/dev/null | grep -Eq '"data_processed": *[1-9]' && break
	sleep 0.5
done
cli a migrate abort vm1 --source
if wait "$MIG"; then die "the aborted migration succeeded"; fi
tail -1 "$D/abort.out"
grep -q "aborted" "$D/abort.out" || die "the migrate command does not say it was aborted"
cli a --json show vm1 | python3 -c 'import json,sys; i=json.load(sys.stdin); sys.exit(0 if i["vm_state"]=="active" and not i.get("task") else 1)' ||
	die "vm1 is not active on A after the abort"
virsh -q -c "qemu+unix:///system?socket=$D/lv-a/sock/libvirt-sock" list | grep -q running || die "vm1 does not run on A after the abort"
ip netns exec "$P-p" ping -c 2 -W 1 "$GUEST_IP" >/dev/null || die "vm1 does not answer on A after the abort"
cli b migrate abort vm1
[[ -z $(ls "$D/b/pool" | grep -v '^image-') ]] || die "prepared volumes left on B after abort: $(ls "$D/b/pool")"
ip -n "$P-b" link show "tap${PORT:0:11}" >/dev/null 2>&1 && die "the prepared tap is left on B after abort"
echo "RESULT case_abort_mid_copy ok"

say "step 1 (B): prepare"
t0=$(now_ms)
cli a migrate describe vm1 > "$D/vm1.json"
cli b migrate prepare "$D/vm1.json"
ip -n "$P-b" link set "$TAP" master br-b
t1=$(now_ms)

say "step 2 (A): migrate, a ping every 10 ms meanwhile"
ip netns exec "$P-p" ping -i 0.01 -W 1 "$GUEST_IP" > "$D/ping.out" 2>&1 &
PING=$!
sleep 1
t2=$(now_ms)
cli a migrate vm1 --to "qemu+unix:///system?socket=$D/lv-b/sock/libvirt-sock" --host 192.0.2.2 --pool nova-b --timeout 300 |
	tee "$D/migrate.out"
t3=$(now_ms)

say "step 3 (B): finish"
cli b migrate finish vm1
t4=$(now_ms)
sleep 2
kill -INT "$PING"; wait "$PING" || true
sent=$(grep -o '[0-9]* packets transmitted' "$D/ping.out" | awk '{print $1}')
recv=$(grep -o '[0-9]* received' "$D/ping.out" | awk '{print $1}')
lost=$(( sent - recv ))
ping_ms=$(grep -o 'time [0-9]*ms' "$D/ping.out" | grep -o '[0-9]*')
interval_us=$(( ping_ms * 1000 / sent ))   # the real interval (ping -i 0.01 runs slower on a loaded machine)

say "checks"
virsh -q -c "qemu+unix:///system?socket=$D/lv-b/sock/libvirt-sock" list --all
[[ -z $(virsh -q -c "qemu+unix:///system?socket=$D/lv-a/sock/libvirt-sock" list --all) ]] || die "a domain is left on A"
virsh -q -c "qemu+unix:///system?socket=$D/lv-b/sock/libvirt-sock" list | grep -q running || die "no domain runs on B"
# QEMU processes by their libvirt pidfiles (libvirt may leave a stale file: the process decides)
qemus() {
	local f pid n=0
	for f in "$D/lv-$1"/run/qemu/*.pid; do
		[[ -f $f ]] || continue
		pid=$(cat "$f")
		[[ $pid =~ ^[0-9]+$ ]] && grep -qa qemu-system "/proc/$pid/cmdline" 2>/dev/null && n=$((n + 1))
	done
	echo $n
}
[[ $(qemus b) == 1 ]] || die "$(qemus b) QEMU processes on B, 1 expected"
[[ $(qemus a) == 0 ]] || die "$(qemus a) QEMU processes left on A"
cli a list | grep -q vm1 && die "A still lists vm1"
cli b show vm1 | tee "$D/b-show.txt" | grep -E "vm_state|task|power" || true
cli b --json show vm1 | python3 -c 'import json,sys; i=json.load(sys.stdin); sys.exit(0 if i["vm_state"]=="active" and not i.get("task") else 1)' ||
	die "B does not show vm1 active"
[[ -z $(ls "$D/a/pool" | grep -v '^image-') ]] || die "volumes of vm1 left on A: $(ls "$D/a/pool")"
ip netns exec "$P-p" ping -c 3 -W 1 "$GUEST_IP" >/dev/null || die "vm1 does not answer ping on B"

say "disk marker: a hard stop and a start on B (the guest ignores ACPI; shutdown_timeout_s = 5)"
cli b stop vm1 --wait >/dev/null
cli b start vm1 --wait >/dev/null
for _ in $(seq 600); do
	cli b console vm1 2>/dev/null | grep -q "disk boots=2" && break
	sleep 0.5
done
cli b console vm1 | grep "NOVA-GUEST disk" || true
cli b console vm1 | grep -q "disk boots=2" || die "the disk marker did not count the second boot on B"

say "case: the destination's core is killed during step 2 (vm1 back from B to A, 8 MiB/s)"
cli b migrate describe vm1 > "$D/vm1-back.json"
cli a migrate prepare "$D/vm1-back.json" >/dev/null
ip -n "$P-a" link set "$TAP" master br-a
cli b migrate vm1 --to "qemu+unix:///system?socket=$D/lv-a/sock/libvirt-sock" --host 192.0.2.1 --pool nova-a \
	--timeout 300 --bandwidth 8 > "$D/back.out" 2>&1 &
MIG=$!
sleep 3
kill -KILL "${PIDS[0]}"   # A's nova-compute (its modules follow it: they lose their core)
wait "${PIDS[0]}" 2>/dev/null || true
wait "$MIG" || die "the migration back failed with the destination's core gone: $(tail -2 "$D/back.out")"
tail -1 "$D/back.out"
ip netns exec "$P-a" "$BIN/nova-compute" --config "$D/a/core.conf" >>"$D/a/core.log" 2>&1 &
PIDS[0]=$!
for _ in $(seq 200); do
	cli a --json show vm1 2>/dev/null | python3 -c 'import json,sys; i=json.load(sys.stdin); sys.exit(0 if not i.get("task") and i["vm_state"]=="active" else 1)' 2>/dev/null && break
	sleep 0.2
done
cli a migrate finish vm1
cli a show vm1 | grep -E "task|power"
[[ $(qemus a) == 1 && $(qemus b) == 0 ]] || die "after the crash case: $(qemus a) QEMU on A, $(qemus b) on B"
cli b list | grep -q vm1 && die "B still lists vm1 after migrating it back"
ip netns exec "$P-p" ping -c 3 -W 1 "$GUEST_IP" >/dev/null || die "vm1 does not answer on A after migrating back"
echo "RESULT case_destination_core_killed ok"

echo "RESULT prepare_ms $((t1 - t0))"
echo "RESULT migrate_ms $((t3 - t2))"
echo "RESULT finish_ms $((t4 - t3))"
echo "RESULT pings_sent $sent"
echo "RESULT pings_lost $lost"
echo "RESULT ping_interval_us $interval_us"
echo "RESULT downtime_ms $((lost * interval_us / 1000))"
grep -E "migrated .* in [0-9]+ ms" "$D/migrate.out" | sed 's/^/RESULT /' || true
echo "RESULT ok"
