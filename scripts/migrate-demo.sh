#!/usr/bin/env bash
# migrate-demo.sh - live migration of the real test guest between two hosts joined by OVN, on
# one machine (make run-migrate, make check-migrate: the lines starting with "RESULT " are its
# report).
#
#   host A, host B: the two hosts of make run-multihost with real guests (scripts/multihost.sh
#     up, MH_GUESTS=qemu): network namespaces $P-a, $P-b, each with its own ovsdb-server,
#     ovs-vswitchd (userspace datapath), ovn-controller (chassis host-a, host-b; Geneve over
#     the underlay 192.0.2.1/.2, which also carries libvirt's migration data and NBD), a
#     private libvirtd (scripts/libvirtd-private.sh) and a nova-compute with the libvirt,
#     network-control, openvswitch and firewall-control modules (ovn = true, ports filtered:
#     tap -> qbr -> qvb/qvo -> br-int); one OVN central (NB, SB, ovn-northd);
#   the pinger: a third namespace $P-p whose eth0 (10.0.0.2) is a veth on host A's br-int,
#     bound to its own logical port: its pings reach the guest through OVN (on A locally,
#     across Geneve once the guest is on B).
#
# The script plays the control plane, as neutron would: logical switch and ports in the NB,
# a security group "mig" (ICMP and TCP 80 in) created on both hosts, and the port's binding:
# requested-chassis=host-a at boot; requested-chassis=host-a,host-b with
# activation-strategy=rarp before `migrate prepare` (what prepare's output asks for: B's
# ovn-controller marks the port ovn-installed only once B is a requested chassis, and prepare
# waits for that); requested-chassis=host-b once `migrate finish` is done.
#
# Steps: the guest image imported on A (and on B with the same id, after the refusal case);
# boot vm1 on A (root overlay, config drive, 10.0.0.10, group mig); then the three steps:
# `migrate describe` (A) -> `migrate prepare` (B) -> `migrate vm1 --to ... --host 192.0.2.2`
# (A) -> `migrate finish` (B), with a ping every 10 ms from $P-p the whole time; then check:
# QEMU runs on B and not on A, A forgot vm1 with its tap and volumes, the port is bound to
# host-b, TCP 80 is answered and TCP 81 stays dropped on B (its rules were there before the
# switch); a stop/start on B counts the disk marker's second boot. Cases: no image on B,
# abort mid-copy, the destination's core killed during step 2, the source's core killed
# during step 2.
#
# Environment: MIG_DIR (default: a new /tmp/nova-migrate.XXXXXX), MIG_PREFIX (netns prefix,
# default nmig$$), KEEP=1 (leave everything running; bash scripts/multihost.sh down with the
# same MH_DIR/MH_PREFIX removes it), MIG_RECONCILE_S (the cores' reconcile_interval_s, default
# 10; "default" leaves the config's own, 60), MIG_SOAK=N (default 0: after the cases, migrate
# vm1 N more times back and forth with the 10 ms ping, and count the guest crashes: a kernel
# BUG, Oops or panic, or a new boot, on the destination's console after the switch-over);
# MIG_SOAK_PING_INTERVAL (s, default 0.01) and MIG_SOAK_PING_SIZE (bytes, default 56) shape the
# soak's pings (more and larger packets into the guest's receive path around the switch-over);
# MIG_SOAK_ONLY=1 runs MIG_SOAK's migrations right after vm1 boots on A and answers (none of the
# cases, as MIG_SOAK_VIRSH does); MIG_SOAK_VIRSH=N (default 0) instead migrates vm1 N times back and
# forth by plain `virsh migrate` with nova-hypervisor's cores stopped, and counts the crashes the
# same way (see virsh_soak), then ends.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
BIN=$SRC/build/bin # multihost.sh runs this build
D=${MIG_DIR:-$(mktemp -d /tmp/nova-migrate.XXXXXX)}
P=${MIG_PREFIX:-nmig$$}
export MH_DIR=$D MH_PREFIX=$P MH_GUESTS=qemu MH_PLACEMENT=0 MH_OVN_WAIT_MS=20000 MH_POLICY=fail
NET=net1 # multihost.sh's logical switch
PORT=0c0c0c0c-3333-4c33-8c33-00000000000c
MAC=fa:16:3e:00:00:0c
GUEST_IP=10.0.0.10
PINGER=pinger
PINGER_MAC=fa:16:3e:00:00:02
PINGER_IP=10.0.0.2
TAP=tap${PORT:0:11}
STARTED=0

say() { echo "== $*"; }
die() { echo "FAIL: $*" >&2; exit 1; }

cleanup() {
	set +e
	[[ $STARTED == 1 ]] || return
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "left running in $D (netns $P-a $P-b $P-p); remove with: MH_DIR=$D MH_PREFIX=$P bash scripts/multihost.sh down; ip netns del $P-p"
		return
	fi
	ip netns del "$P-p" 2>/dev/null
	bash scripts/multihost.sh down >/dev/null 2>&1
}
trap cleanup EXIT

cli() { local h=$1; shift; "$BIN/nova-hypervisor" --socket "$D/$h/run/nova-hypervisor.socket" "$@"; }
nbctl() { ovn-nbctl --db="unix:$D/central/nb.sock" --timeout=10 "$@"; }
sbctl() { ovn-sbctl --db="unix:$D/central/sb.sock" --timeout=10 "$@"; }
vsctl() { local h=$1; shift; ovs-vsctl --db="unix:$D/$h/db.sock" --timeout=60 "$@"; }
lv_uri() { bash scripts/libvirtd-private.sh uri "$D/$1/libvirtd"; }
virsh_on() { local h=$1; shift; virsh -q -c "$(lv_uri "$h")" "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
other() { [[ $1 == a ]] && echo b || echo a; }
host_ip() { [[ $1 == a ]] && echo 192.0.2.1 || echo 192.0.2.2; }

# The chassis the guest's port is bound to, and its additional chassis ("" when none).
bound_chassis() {
	local ch
	ch=$(sbctl --bare --columns=chassis find Port_Binding logical_port="$PORT")
	[[ -n $ch ]] && sbctl --bare --columns=name list Chassis "$ch" || echo ""
}
# Wait (bounded, 30 s) until the port is bound to chassis host-$1.
wait_bound() {
	local t0
	t0=$(now_ms)
	until [[ $(bound_chassis) == "host-$1" ]]; do
		(( $(now_ms) - t0 < 30000 )) || die "port $PORT is bound to '$(bound_chassis)', not host-$1, after 30 s"
		sleep 0.1
	done
}
# The control plane's binding writes (as neutron's OVN driver does for a live migration):
# HOST [PORT...] / SOURCE DESTINATION [PORT...]; the ports default to vm1's.
bind_to() {
	local h=$1 p; shift
	for p in "${@:-$PORT}"; do nbctl lsp-set-options "$p" requested-chassis="host-$h"; done
}
bind_both() {
	local from=$1 to=$2 p; shift 2
	for p in "${@:-$PORT}"; do nbctl lsp-set-options "$p" requested-chassis="host-$from,host-$to" activation-strategy=rarp; done
}

# QEMU processes by their libvirt pidfiles (libvirt may leave a stale file: the process decides)
qemus() {
	local f pid n=0
	for f in "$D/$1"/libvirtd/run/qemu/*.pid; do
		[[ -f $f ]] || continue
		pid=$(cat "$f")
		[[ $pid =~ ^[0-9]+$ ]] && grep -qa qemu-system "/proc/$pid/cmdline" 2>/dev/null && n=$((n + 1))
	done
	echo $n
}

# Whether the console of vm1 on host $1 (QEMU's new log there: only what followed the
# switch-over) shows a guest kernel crash or a new boot (panic=-1 reboots at once, and a
# rebooted guest answers pings again: a ping check alone misses it). Prints the trace.
guest_crashed_on() {
	cli "$1" console vm1 --tail 49152 > "$D/console-$1.txt" 2>&1 ||
		die "the console of vm1 on $1 cannot be read: $(cat "$D/console-$1.txt")"
	grep -Eq "list_add corruption|list_del corruption|kernel BUG|Oops|Kernel panic|NOVA-GUEST uuid=" "$D/console-$1.txt" ||
		return 1
	# the whole trace (the run's directory goes with the cleanup): up to the reboot
	awk '/Linux version/ && seen { exit } /corruption|BUG|Oops|panic/ { seen = 1 } { print }' "$D/console-$1.txt" |
		head -120 | sed 's/^/    /'
	return 0
}

# The userspace datapath completes no partial checksums: the kernel does it at qvb (as
# make run-multihost does), else TCP to the guest fails while ping works.
qvb_tx_off() { ip netns exec "$P-$1" ethtool -K "qvb${PORT:0:11}" tx off >/dev/null; }

# describe on $1, prepare on $2 (after the binding write); prints prepare's output to $D/prepare-$2.out
prepare_on() {
	local from=$1 to=$2
	cli "$from" migrate describe vm1 > "$D/vm1.json"
	bind_both "$from" "$to"
	cli "$to" migrate prepare "$D/vm1.json" > "$D/prepare-$to.out" || { cat "$D/prepare-$to.out"; die "prepare on $to failed"; }
	# the chassis by name: the source's from its description, the destination's its own
	grep -q "port $PORT: .*requested-chassis=host-$from,host-$to options:activation-strategy=rarp" "$D/prepare-$to.out" ||
		die "prepare's output does not ask for the binding on both chassis (host-$from,host-$to): $(cat "$D/prepare-$to.out")"
	qvb_tx_off "$to"
}

migrate_cmd() {
	local from=$1 to=$2; shift 2
	cli "$from" migrate vm1 --to "$(lv_uri "$to")" --host "$(host_ip "$to")" --pool "nova-mh-$to" --timeout 300 "$@"
}

# The core of host h: kill it (SIGKILL; its modules exit when they lose it) / start it again.
kill_core() { kill -KILL "$(cat "$D/$1/core.pid")"; }
start_core() { bash scripts/multihost.sh start-core "$1" >/dev/null; }

# vm1 as the store of host h records it: "task vm_state", "none" when it has no vm1 (404), or
# "unreachable".
record_of() {
	local out rc=0
	out=$(cli "$1" --json show vm1 2>&1) || rc=$?
	if [[ $rc == 0 ]]; then
		python3 -c 'import json,sys; i=json.load(sys.stdin); print("%s %s" % (i.get("task") or "-", i["vm_state"]))' <<<"$out"
	elif grep -q "no such instance" <<<"$out"; then
		echo none
	else
		echo unreachable
	fi
}

# Whether the console log file $1 (the destination QEMU's serial log, append='off': only what
# followed the switch-over) shows a crash or a new boot, as guest_crashed_on does with the
# CLI's console (the same 48 KiB tail, the same patterns). Prints the trace.
guest_crashed_in_file() {
	[[ -r $1 ]] || die "the console log $1 cannot be read"
	tail -c 49152 "$1" > "$D/console-file.txt"
	grep -Eq "list_add corruption|list_del corruption|kernel BUG|Oops|Kernel panic|NOVA-GUEST uuid=" "$D/console-file.txt" ||
		return 1
	awk '/Linux version/ && seen { exit } /corruption|BUG|Oops|panic/ { seen = 1 } { print }' "$D/console-file.txt" |
		head -120 | sed 's/^/    /'
	return 0
}

# MIG_SOAK_VIRSH=N: vm1 migrated N times back and forth by plain `virsh migrate`, nova-hypervisor
# out of the migration. The product boots vm1 on A and runs `migrate prepare` once on B (B's
# tap, bridges, OVS port, filter rules, root overlay and config drive); then both cores are
# stopped (their modules exit with them: nothing of ours talks to either libvirtd any more) and
# each migration is: the destination's root overlay made anew (qemu-img, on the same base, as
# prepare does: the one left there by the previous stay is stale), the control plane's binding
# write (requested-chassis=here,there, activation-strategy=rarp, as the product's soak does),
# the ping, `virsh migrate --live --p2p --persistent --undefinesource --copy-storage-inc` with
# the domain's migratable XML, its pool paths rewritten to the destination's (what
# migrate_rewrite_dirs does), as --xml and --persistent-xml, --migrateuri tcp://ADDRESS, to
# the destination's libvirt URI (the product's URIs and flags); the binding to the destination
# alone; then the destination's console log (QEMU's serial log file, append='off') is checked
# for the crash signature as guest_crashed_on does. The source keeps its ports (no finish,
# no cleanup): the way back finds them in place.
virsh_soak() {
	local count=$1 here=a there n dom xml ov info crashes=0 lost_all=0 sent_all=0 log dt t0
	say "virsh-only soak: the product plumbs B once (migrate prepare), then its cores stop"
	prepare_on a b
	local pids="" p
	for h in a b; do
		p=$(cat "$D/$h/core.pid")
		pids+=" $p $(ps -e -o pid=,ppid= | awk -v r="$p" '{ par[$1] = $2 } END { for (q in par) { x = q; while (x in par && x != r) x = par[x]; if (x == r && q != r) printf "%s ", q } }')"
	done
	for h in a b; do bash scripts/multihost.sh stop-core "$h"; done
	for _ in $(seq 100); do
		for p in $pids; do kill -0 "$p" 2>/dev/null && { sleep 0.1; continue 2; }; done
		break
	done
	for p in $pids; do kill -0 "$p" 2>/dev/null && die "nova process $p ($(tr '\0' ' ' < "/proc/$p/cmdline")) still runs"; done
	echo "the cores and all their descendants (pids$pids) have exited"
	dom=$(virsh_on a list --name | head -1)
	[[ -n $dom ]] || die "vm1's domain does not run on A with the cores stopped"
	[[ -z $(virsh_on b list --all --name) ]] || die "B already has a domain"
	echo "domain $dom runs on A; no nova process runs; $(uptime)"
	for n in $(seq "$count"); do
		there=$(other "$here")
		# a fresh root overlay on the destination, on the base its own prepare chose
		ov=$(ls "$D/$there"/pool/nova-*-root.qcow2)
		info=$(qemu-img info -U --output=json "$ov")
		read -r bfile bfmt < <(python3 -c 'import json,sys; i=json.load(sys.stdin); print(i["full-backing-filename"], i.get("backing-filename-format","raw"))' <<<"$info")
		# the source's size (the product's migrate gives the destination's overlay the source's capacity)
		vsize=$(qemu-img info -U --output=json "$(ls "$D/$here"/pool/nova-*-root.qcow2)" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
		cp -p --attributes-only "$ov" "$D/ov-attrs" 2>/dev/null || true
		rm -f "$ov"
		qemu-img create -q -f qcow2 -b "$bfile" -F "$bfmt" "$ov" "$vsize"
		chown --reference="$D/ov-attrs" "$ov" && chmod --reference="$D/ov-attrs" "$ov"
		bind_both "$here" "$there"
		qvb_tx_off "$there"
		virsh_on "$here" dumpxml --migratable --security-info "$dom" > "$D/vsoak-src.xml"
		sed "s#'$D/$here/pool/#'$D/$there/pool/#g; s#\"$D/$here/pool/#\"$D/$there/pool/#g" "$D/vsoak-src.xml" > "$D/vsoak-dst.xml"
		grep -q "$D/$here/" "$D/vsoak-dst.xml" && die "a path of $here is left in the destination's XML"
		log=$(grep -o "<log file='[^']*'" "$D/vsoak-dst.xml" | head -1 | sed "s/<log file='//; s/'$//")
		[[ $log == "$D/$there/pool/"* ]] || die "no console log in the destination's XML"
		ip netns exec "$P-p" ping -i "$SOAK_INTERVAL" -s "$SOAK_SIZE" -W 1 "$GUEST_IP" > "$D/soak-ping.out" 2>&1 &
		PING=$!
		sleep 1
		t0=$(now_ms)
		timeout 600 virsh -q -c "$(lv_uri "$here")" migrate --live --p2p --persistent --undefinesource \
			--copy-storage-inc --migrateuri "tcp://$(host_ip "$there")" --xml "$D/vsoak-dst.xml" \
			--persistent-xml "$D/vsoak-dst.xml" "$dom" "$(lv_uri "$there")" > "$D/vsoak-$n.out" 2>&1 ||
			{ cat "$D/vsoak-$n.out"; die "virsh migration $n ($here to $there) failed"; }
		dt=$(( $(now_ms) - t0 ))
		virsh_on "$there" domjobinfo --completed "$dom" > "$D/vsoak-job-$n.txt" 2>&1 || true
		bind_to "$there"
		wait_bound "$there"
		sleep 2
		kill -INT "$PING"; wait "$PING" || true
		s_sent=$(grep -o '[0-9]* packets transmitted' "$D/soak-ping.out" | awk '{print $1}')
		s_recv=$(grep -o '[0-9]* received' "$D/soak-ping.out" | awk '{print $1}')
		sent_all=$((sent_all + s_sent)) lost_all=$((lost_all + s_sent - s_recv))
		[[ $(virsh_on "$there" domstate "$dom") == running ]] || die "the domain does not run on $there after migration $n"
		virsh_on "$here" dominfo "$dom" >/dev/null 2>&1 && die "the domain is left on $here after migration $n"
		verdict=ok
		if guest_crashed_in_file "$log"; then
			verdict=CRASH crashes=$((crashes + 1))
			cp "$log" "$D/../nova-migrate-vsoak-crash-$n-$$.log" 2>/dev/null || true
			for _ in $(seq 120); do ip netns exec "$P-p" ping -c 1 -W 1 "$GUEST_IP" >/dev/null 2>&1 && break; done
		fi
		echo "vsoak $n: $here -> $there, virsh migrate $dt ms, $(grep -E 'Total downtime' "$D/vsoak-job-$n.txt" | tr -s ' ' || echo 'no downtime'), lost $((s_sent - s_recv)) of $s_sent pings, console since the switch-over $(wc -c < "$D/console-file.txt") bytes: $verdict; load $(cut -d' ' -f1-3 /proc/loadavg)"
		ip netns exec "$P-p" ping -c 3 -W 1 "$GUEST_IP" >/dev/null || {
			echo "port $PORT bound to '$(bound_chassis)'; QEMU: $(qemus a) on A, $(qemus b) on B; console since the switch-over:"
			tail -c 4096 "$log" | tail -20 | sed 's/^/    /'
			die "vm1 does not answer on $there after virsh migration $n"
		}
		here=$there
	done
	echo "RESULT vsoak_migrations $count"
	echo "RESULT vsoak_guest_crashes $crashes"
	echo "RESULT vsoak_pings_lost $lost_all of $sent_all"
}

# MIG_SOAK=N: vm1 migrated N times back and forth through the product (describe, prepare,
# migrate, finish, the control plane's binding writes), from host $1, a ping meanwhile; each
# destination's console checked (guest_crashed_on).
product_soak() {
	say "soak: vm1 migrated $SOAK more times back and forth, a ping of $SOAK_SIZE bytes every $SOAK_INTERVAL s meanwhile; a crash is a kernel BUG/Oops/panic or a new boot on the destination's console"
	local here=$1 there n crashes=0 soak_lost=0 soak_sent=0 s_sent s_recv verdict
	for n in $(seq "$SOAK"); do
		there=$(other "$here")
		prepare_on "$here" "$there"
		ip netns exec "$P-p" ping -i "$SOAK_INTERVAL" -s "$SOAK_SIZE" -W 1 "$GUEST_IP" > "$D/soak-ping.out" 2>&1 &
		PING=$!
		sleep 1
		migrate_cmd "$here" "$there" > "$D/soak-$n.out" 2>&1 || { cat "$D/soak-$n.out"; die "soak migration $n ($here to $there) failed"; }
		cli "$there" migrate finish vm1 >/dev/null
		bind_to "$there"
		wait_bound "$there"
		sleep 2
		kill -INT "$PING"; wait "$PING" || true
		s_sent=$(grep -o '[0-9]* packets transmitted' "$D/soak-ping.out" | awk '{print $1}')
		s_recv=$(grep -o '[0-9]* received' "$D/soak-ping.out" | awk '{print $1}')
		soak_sent=$((soak_sent + s_sent)) soak_lost=$((soak_lost + s_sent - s_recv))
		qvb_tx_off "$there"
		verdict=ok
		if guest_crashed_on "$there"; then
			verdict=CRASH crashes=$((crashes + 1))
			# a rebooted guest answers again once it is up: wait for that before the next run
			for _ in $(seq 120); do ip netns exec "$P-p" ping -c 1 -W 1 "$GUEST_IP" >/dev/null 2>&1 && break; done
		fi
		echo "soak $n: $here -> $there, $(grep -o 'downtime [0-9]* ms' "$D/soak-$n.out" || echo 'no downtime'), lost $((s_sent - s_recv)) of $s_sent pings, console since the switch-over $(wc -c < "$D/console-$there.txt") bytes: $verdict; load $(cut -d' ' -f1-3 /proc/loadavg)"
		ip netns exec "$P-p" ping -c 3 -W 1 "$GUEST_IP" >/dev/null || {
			echo "port $PORT bound to '$(bound_chassis)'; QEMU: $(qemus a) on A, $(qemus b) on B; console since the switch-over:"
			cli "$there" console vm1 --tail 4096 2>&1 | tail -20 | sed 's/^/    /'
			die "vm1 does not answer on $there after soak migration $n"
		}
		here=$there
	done
	echo "RESULT soak_migrations $SOAK"
	echo "RESULT soak_guest_crashes $crashes"
	echo "RESULT soak_pings_lost $soak_lost of $soak_sent"
}

guest=$(bash scripts/guest/build-test-guest.sh | tail -1)
[[ -f $guest/disk.raw ]] || die "no test guest (make guest)"
say "OVN central and hosts a, b (scripts/multihost.sh up) in $D, netns $P-{a,b}"
STARTED=1
bash scripts/multihost.sh up > "$D.up.log" 2>&1 || { cat "$D.up.log"; die "multihost up failed"; }
mv "$D.up.log" "$D/up.log"
# a stop's grace period of 5 s rather than the default 60 (the test guest powers itself off on
# the ACPI button in about 2 s; the bound keeps a busy host's demo short); a reconcile pass
# every 10 s (not 60), so the crash cases settle within their bounded waits
RECONCILE_S=${MIG_RECONCILE_S:-10}
[[ $RECONCILE_S == default || $RECONCILE_S =~ ^[0-9]+$ ]] || die "MIG_RECONCILE_S: a number of seconds or 'default'"
SOAK=${MIG_SOAK:-0}
[[ $SOAK =~ ^[0-9]+$ ]] || die "MIG_SOAK: a number of migrations"
SOAK_ONLY=${MIG_SOAK_ONLY:-0}
[[ $SOAK_ONLY == 0 || ($SOAK_ONLY == 1 && $SOAK -gt 0) ]] || die "MIG_SOAK_ONLY=1 needs MIG_SOAK=N"
SOAK_VIRSH=${MIG_SOAK_VIRSH:-0}
[[ $SOAK_VIRSH =~ ^[0-9]+$ ]] || die "MIG_SOAK_VIRSH: a number of migrations"
SOAK_INTERVAL=${MIG_SOAK_PING_INTERVAL:-0.01}
SOAK_SIZE=${MIG_SOAK_PING_SIZE:-56}
[[ $SOAK_INTERVAL =~ ^0?\.[0-9]{1,3}$ && $SOAK_SIZE =~ ^[0-9]{1,4}$ ]] && (( SOAK_SIZE <= 1400 )) ||
	die "MIG_SOAK_PING_INTERVAL: 0.001..0.999 s; MIG_SOAK_PING_SIZE: 0..1400 bytes"
for h in a b; do
	printf 'shutdown_timeout_s = 5\n' >> "$D/$h/nova.conf"
	[[ $RECONCILE_S == default ]] || printf 'reconcile_interval_s = %s\n' "$RECONCILE_S" >> "$D/$h/nova.conf"
	bash scripts/multihost.sh stop-core "$h"
	start_core "$h"
done

say "the pinger: namespace $P-p, eth0 $PINGER_IP on host a's br-int (logical port $PINGER)"
nbctl --may-exist lsp-add "$NET" "$PINGER" -- lsp-set-addresses "$PINGER" "$PINGER_MAC $PINGER_IP"
nbctl --may-exist lsp-add "$NET" "$PORT" -- lsp-set-addresses "$PORT" "$MAC $GUEST_IP"
bind_to a
ip netns add "$P-p"
ip -n "$P-p" link set lo up
ip -n "$P-a" link add pp-a type veth peer name eth0 netns "$P-p"
ip -n "$P-p" link set eth0 address "$PINGER_MAC" mtu 1442
ip -n "$P-p" addr add "$PINGER_IP/24" dev eth0
ip netns exec "$P-p" ethtool -K eth0 tx off >/dev/null # the userspace datapath completes no checksums
ip -n "$P-a" link set pp-a mtu 1442 up
ip -n "$P-p" link set eth0 up
vsctl a add-port br-int pp-a -- set Interface pp-a external_ids:iface-id="$PINGER"
t0=$(now_ms)
until [[ $(vsctl a --if-exists get Interface pp-a external_ids:ovn-installed 2>/dev/null) == '"true"' ]]; do
	(( $(now_ms) - t0 < 60000 )) || die "the pinger's port is not ovn-installed after 60 s"
	sleep 0.1
done

say "security group mig (ICMP and TCP 80 in) on both hosts; the image on A"
for h in a b; do
	cli "$h" secgroup create mig --description "migration demo: ping and http" >/dev/null
	cli "$h" secgroup rule add mig --direction ingress --protocol icmp >/dev/null
	cli "$h" secgroup rule add mig --direction ingress --protocol tcp --port 80 >/dev/null
done
cli a image import guest "$guest/disk.raw" >/dev/null
IMG=$(cli a --json image show guest | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')

say "boot vm1 on A"
cli a boot vm1 --memory 128 --image guest --port "uuid=$PORT,mac=$MAC,ip=$GUEST_IP" --secgroup mig --wait >/dev/null
qvb_tx_off a
echo "port $PORT bound to $(bound_chassis)"
cli a migrate describe vm1 > "$D/vm1.json"

say "case: the destination without the image refuses prepare, naming it"
if cli b migrate prepare "$D/vm1.json" 2> "$D/noimage.err"; then die "prepare without the image succeeded"; fi
cat "$D/noimage.err"
grep -q "image $IMG is not here" "$D/noimage.err" || die "the refusal does not name the image"
[[ -z $(cli b list | grep vm1) ]] || die "a refused prepare left a record on B"
echo "RESULT case_no_image ok"
cli b image import guest "$guest/disk.raw" --id "$IMG" >/dev/null
for _ in $(seq 600); do
	cli a console vm1 2>/dev/null | grep -q "NOVA-GUEST uuid=" && break
	sleep 0.5
done
cli a console vm1 | grep "NOVA-GUEST" || die "vm1 printed no NOVA-GUEST line on A"
for _ in $(seq 60); do ip netns exec "$P-p" ping -c 1 -W 1 "$GUEST_IP" >/dev/null 2>&1 && break; done
ip netns exec "$P-p" ping -c 1 -W 1 "$GUEST_IP" >/dev/null || die "vm1 does not answer ping on A (through OVN)"

if (( SOAK_VIRSH > 0 )); then
	virsh_soak "$SOAK_VIRSH"
	exit 0
fi
if [[ $SOAK_ONLY == 1 ]]; then
	product_soak a
	exit 0
fi

say "case: abort mid-copy (1 MiB/s), from the source; then abort on B removes the prepared resources"
prepare_on a b
migrate_cmd a b --bandwidth 1 > "$D/abort.out" 2>&1 &
MIG=$!
for _ in $(seq 120); do
	cli a --json migrate progress vm1 2>/dev/null | grep -Eq '"data_processed": *[1-9]' && break
	sleep 0.5
done
# libvirt admits no other job to a domain in an incoming migration (the async job's mask is
# VIR_JOB_NONE, qemuMigrationJobStart): a query job, such as domstats' balloon group, waits for
# libvirt's job lock (up to 30 s). B's listing must not wait: the libvirt module reads such
# statistics with NOWAIT (reconcile lists domains while a migration comes in).
incoming=$(virsh_on b list --all --name | head -1)
[[ -n $incoming ]] || die "no incoming domain on B during the migration"
t0=$(now_ms) rc=0
timeout 5 virsh -q -c "$(lv_uri b)" domstats --balloon "$incoming" >/dev/null 2>&1 || rc=$?
echo "virsh domstats --balloon of B's incoming domain: exit $rc after $(( $(now_ms) - t0 )) ms (124: still waiting for libvirt's job lock after 5 s)"
[[ $rc == 124 ]] || die "a query job on B's incoming domain did not wait for libvirt's job lock (exit $rc)"
t0=$(now_ms)
curl -sS --max-time 40 --unix-socket "$D/b/run/nova-hypervisor.socket" http://b/v1/domains > "$D/b-domains.json" ||
	die "GET /v1/domains on B failed during the incoming migration"
dt=$(( $(now_ms) - t0 ))
echo "GET /v1/domains on B during the incoming migration: $dt ms"
(( dt < 5000 )) || die "B's domain listing took $dt ms during the incoming migration (a query job waiting for libvirt's lock?)"
grep -Eq '"job": *"migration"' "$D/b-domains.json" || die "B's listing does not mark the incoming domain: $(cat "$D/b-domains.json")"
cli a migrate abort vm1 --source
if wait "$MIG"; then die "the aborted migration succeeded"; fi
tail -1 "$D/abort.out"
grep -q "aborted" "$D/abort.out" || die "the migrate command does not say it was aborted"
[[ $(record_of a) == "- active" ]] || die "vm1 is not active on A after the abort: $(record_of a)"
virsh_on a list | grep -q running || die "vm1 does not run on A after the abort"
cli b migrate abort vm1
bind_to a
ip netns exec "$P-p" ping -c 2 -W 1 "$GUEST_IP" >/dev/null || die "vm1 does not answer on A after the abort"
[[ -z $(ls "$D/b/pool" | grep -v '^image-') ]] || die "prepared volumes left on B after abort: $(ls "$D/b/pool")"
ip -n "$P-b" link show "$TAP" >/dev/null 2>&1 && die "the prepared tap is left on B after abort"
echo "RESULT case_abort_mid_copy ok"

say "step 1 (B): prepare (after the control plane's binding write: requested-chassis=host-a,host-b, activation-strategy=rarp)"
t_prep=$(now_ms)
prepare_on a b
t1=$(now_ms)
cat "$D/prepare-b.out"
sbctl --columns=logical_port,chassis,additional_chassis,options find Port_Binding logical_port="$PORT"
say "B filters the port before the switch: its chain and group mig's rules are in B's nftables"
ip netns exec "$P-b" nft list ruleset > "$D/b-nft-before.txt"
grep -q "chain port-$PORT" "$D/b-nft-before.txt" || die "no chain port-$PORT in B's nftables after prepare"
GROUP=$(cli b --json secgroup show mig | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
awk "/chain sg-$GROUP-in/,/}/" "$D/b-nft-before.txt" | tee "$D/b-sg-in.txt" | grep -E "icmp|dport 80" ||
	die "group mig's ingress rules are not in B's nftables after prepare"
grep -q "dport 80" "$D/b-sg-in.txt" || die "group mig's TCP 80 rule is not on B before the switch"

say "step 2 (A): migrate, a ping every 10 ms from $P-p through OVN meanwhile"
ip netns exec "$P-p" ping -i 0.01 -W 1 "$GUEST_IP" > "$D/ping.out" 2>&1 &
PING=$!
sleep 1
t2=$(now_ms)
migrate_cmd a b | tee "$D/migrate.out"
t3=$(now_ms)

say "step 3 (B): finish; then the control plane binds the port to host-b alone"
cli b migrate finish vm1
t4=$(now_ms)
# what the disk copy wrote into B's root overlay (NBD; libvirt's job statistics count memory only)
overlay_kib=$(du -k "$D/b/pool/nova-$(cli b --json show vm1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')-root.qcow2" | cut -f1)
bind_to b
wait_bound b
sleep 2
kill -INT "$PING"; wait "$PING" || true
sent=$(grep -o '[0-9]* packets transmitted' "$D/ping.out" | awk '{print $1}')
recv=$(grep -o '[0-9]* received' "$D/ping.out" | awk '{print $1}')
lost=$(( sent - recv ))
ping_ms=$(grep -o 'time [0-9]*ms' "$D/ping.out" | grep -o '[0-9]*')
interval_us=$(( ping_ms * 1000 / sent ))   # the real interval (ping -i 0.01 runs slower on a loaded machine)

say "checks"
sbctl --columns=logical_port,chassis,additional_chassis,options find Port_Binding logical_port="$PORT"
echo "port $PORT bound to $(bound_chassis)"
virsh_on b list --all
[[ -z $(virsh_on a list --all) ]] || die "a domain is left on A"
virsh_on b list | grep -q running || die "no domain runs on B"
[[ $(qemus b) == 1 ]] || die "$(qemus b) QEMU processes on B, 1 expected"
[[ $(qemus a) == 0 ]] || die "$(qemus a) QEMU processes left on A"
cli a list | grep -q vm1 && die "A still lists vm1"
ip -n "$P-a" link show "$TAP" >/dev/null 2>&1 && die "vm1's tap is left on A"
cli b show vm1 | tee "$D/b-show.txt" | grep -E "vm_state|task|power" || true
[[ $(record_of b) == "- active" ]] || die "B does not show vm1 active: $(record_of b)"
[[ -z $(ls "$D/a/pool" | grep -v '^image-') ]] || die "volumes of vm1 left on A: $(ls "$D/a/pool")"
ip netns exec "$P-p" ping -c 3 -W 1 "$GUEST_IP" >/dev/null || die "vm1 does not answer ping on B"
! guest_crashed_on b || die "vm1's kernel crashed (or it booted again) on B after the switch-over: the trace above"
say "group mig on B: TCP 80 (allowed) answers, TCP 81 (no rule) stays dropped (a timeout, not a refusal)"
UUID=$(cli b --json show vm1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
body=$(ip netns exec "$P-p" curl -sS --max-time 10 "http://$GUEST_IP/") || die "TCP 80 to vm1 on B failed"
[[ $body == "$UUID" ]] || die "vm1's httpd answered '$body', not its uuid"
echo "http://$GUEST_IP/ answered vm1's uuid"
rc=0
ip netns exec "$P-p" curl -sS --max-time 3 "http://$GUEST_IP:81/" >/dev/null 2>&1 || rc=$?
[[ $rc == 28 ]] || die "TCP 81 to vm1 on B: curl exit $rc, 28 (timed out: dropped) expected"
echo "http://$GUEST_IP:81/ timed out: dropped by group mig on B"
echo "RESULT case_secgroup_on_destination ok"

say "disk marker: a stop (the guest powers off on the ACPI button) and a start on B"
cli b stop vm1 --wait >/dev/null
cli b start vm1 --wait >/dev/null
qvb_tx_off b
for _ in $(seq 600); do
	cli b console vm1 2>/dev/null | grep -q "disk boots=2" && break
	sleep 0.5
done
cli b console vm1 | grep "NOVA-GUEST disk" || true
cli b console vm1 | grep -q "disk boots=2" || die "the disk marker did not count the second boot on B"

say "case: the destination's core is killed during step 2 (vm1 back from B to A, 8 MiB/s)"
prepare_on b a
migrate_cmd b a --bandwidth 8 > "$D/back.out" 2>&1 &
MIG=$!
sleep 3
kill_core a
wait "$MIG" || die "the migration back failed with the destination's core gone: $(tail -2 "$D/back.out")"
tail -2 "$D/back.out"
start_core a
for _ in $(seq 200); do
	[[ $(record_of a) == "- active" ]] && break
	sleep 0.2
done
cli a migrate finish vm1
bind_to a
wait_bound a
cli a show vm1 | grep -E "task|power"
[[ $(qemus a) == 1 && $(qemus b) == 0 ]] || die "after the crash case: $(qemus a) QEMU on A, $(qemus b) on B"
cli b list | grep -q vm1 && die "B still lists vm1 after migrating it back"
ip netns exec "$P-p" ping -c 3 -W 1 "$GUEST_IP" >/dev/null || die "vm1 does not answer on A after migrating back"
echo "RESULT case_destination_core_killed ok"

say "case: the source's core is killed during step 2 and started again at once (A to B, 8 MiB/s); the host whose libvirtd runs the domain wins"
prepare_on a b
migrate_cmd a b --bandwidth 8 > "$D/srckill.out" 2>&1 &
MIG=$!
sleep 3
kill_core a
wait "$MIG" || true # the CLI loses its core
log_lines=$(wc -l < "$D/a/nova.log")
start_core a
# the job belongs to A's libvirtd and goes on without the module that started it: while it
# runs, A's reconcile must not judge (the domain is still here, but may be about to leave)
job_ended_on_a() {
	local name
	name=$(virsh_on a list --name | head -1)
	[[ -z $name ]] || virsh_on a domjobinfo "$name" | grep -q "Job type: *None"
}
during=$(record_of a)
job_ended_on_a && echo "(libvirt's job had ended before A's core was back)" || echo "A's record while libvirt's job runs: $during"
t0=$(now_ms)
until job_ended_on_a && (( $(qemus a) + $(qemus b) == 1 )); do
	(( $(now_ms) - t0 < 180000 )) || die "180 s after the source's core was killed: $(qemus a) QEMU on A, $(qemus b) on B"
	sleep 0.5
done
if [[ $(qemus b) == 1 ]]; then winner=b; else winner=a; fi
echo "libvirt's job ended with the domain running on $winner ($(qemus a) QEMU on A, $(qemus b) on B)"
# A's reconcile judges its record: forgotten (the domain left) or active again (it stayed)
t0=$(now_ms)
until { [[ $winner == b && $(record_of a) == none ]] || [[ $winner == a && $(record_of a) == "- active" ]]; }; do
	(( $(now_ms) - t0 < 60000 )) || die "A's record after its restart: $(record_of a) (the domain runs on $winner)"
	sleep 0.2
done
echo "A's store after its restart: $(record_of a); B's: $(record_of b); what A's core said about vm1 since:"
sed -n "$((log_lines + 1)),\$p" "$D/a/nova.log" | grep -E "instance vm1|$(cli b --json show vm1 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])' 2>/dev/null || echo vm1)" | sed 's/^/  A: /' || true
if [[ $winner == b ]]; then
	# (B's reconcile may have recorded the arrival first: then finish has nothing left to do)
	[[ $(record_of b) != "migrating_in active" ]] || cli b migrate finish vm1 || true
	bind_to b
else
	cli b migrate abort vm1
	bind_to a
fi
wait_bound "$winner"
loser=$(other "$winner")
[[ $(record_of "$winner") == "- active" ]] || die "the winner $winner records vm1 as: $(record_of "$winner")"
[[ $(record_of "$loser") == none ]] || die "the other host $loser still records vm1: $(record_of "$loser")"
[[ $(qemus "$winner") == 1 && $(qemus "$loser") == 0 ]] || die "QEMU: $(qemus a) on A, $(qemus b) on B"
[[ -z $(ls "$D/$loser/pool" | grep -v '^image-') ]] || die "volumes of vm1 left on $loser: $(ls "$D/$loser/pool")"
ip -n "$P-$loser" link show "$TAP" >/dev/null 2>&1 && die "vm1's tap is left on $loser"
ip netns exec "$P-p" ping -c 3 -W 1 "$GUEST_IP" >/dev/null || die "vm1 does not answer on $winner"
echo "RESULT case_source_core_killed ok (the domain ended on host $winner, which alone owns vm1)"

say "case: a diskless instance with 2 ports, to a qemu+tcp:// URI (A to B)"
# B's libvirtd listens on TCP itself (multihost.sh starts it with libvirtd-private.sh --tcp
# 192.0.2.2: libvirtd --listen, listen_tcp = 1, auth_tcp = "none"); A's libvirtd connects to it
# for the peer-to-peer migration.
ip netns exec "$P-b" ss -Hltnp 'sport = :16509' | tee "$D/b-listen.txt"
grep -q '192.0.2.2:16509 .*"libvirtd"' "$D/b-listen.txt" || die "B's libvirtd does not listen on 192.0.2.2:16509 itself"
TCP_URI=qemu+tcp://192.0.2.2/system
ip netns exec "$P-a" virsh -q -c "$TCP_URI" version >/dev/null || die "B's libvirtd does not answer on $TCP_URI from A"
P2A=1a1a1a1a-4444-4d44-8d44-00000000001a # taps are named by the first 11 characters
P2B=1b1b1b1b-4444-4d44-8d44-00000000001b
for p in "$P2A:fa:16:3e:00:00:1a 10.0.0.20" "$P2B:fa:16:3e:00:00:1b 10.0.0.21"; do
	nbctl --may-exist lsp-add "$NET" "${p%%:*}" -- lsp-set-addresses "${p%%:*}" "${p#*:}"
done
bind_to a "$P2A" "$P2B"
cli a boot vm2 --memory 64 --port "uuid=$P2A,mac=fa:16:3e:00:00:1a,ip=10.0.0.20" \
	--port "uuid=$P2B,mac=fa:16:3e:00:00:1b,ip=10.0.0.21" --secgroup mig --wait >/dev/null
cli a migrate describe vm2 > "$D/vm2.json"
bind_both a b "$P2A" "$P2B"
cli b migrate prepare "$D/vm2.json" | tee "$D/prepare-vm2.out"
[[ $(grep -c "requested-chassis=host-a,host-b " "$D/prepare-vm2.out") == 2 ]] || die "prepare did not ask for both ports' bindings"
cli a migrate vm2 --to "$TCP_URI" --host 192.0.2.2 --pool nova-mh-b --timeout 300 | tail -2
cli b migrate finish vm2
bind_to b "$P2A" "$P2B"
VM2=$(cli b --json show vm2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
[[ $(virsh_on b domstate "nova-$VM2") == running ]] || die "vm2 does not run on B"
virsh_on a dominfo "nova-$VM2" >/dev/null 2>&1 && die "vm2's domain is left on A"
cli a list | grep -q vm2 && die "A still lists vm2"
rec=$(cli b --json show vm2 | python3 -c 'import json,sys; i=json.load(sys.stdin); print(len(i["ports"]), i.get("task") or "-", i["vm_state"], i.get("image_uuid") or "diskless")')
[[ $rec == "2 - active diskless" ]] || die "B's record of vm2: $rec"
CH_B=$(sbctl --bare --columns=_uuid find Chassis name=host-b)
for p in "$P2A" "$P2B"; do
	ip -n "$P-b" link show "tap${p:0:11}" >/dev/null || die "no tap for port $p on B"
	ip -n "$P-a" link show "tap${p:0:11}" >/dev/null 2>&1 && die "the tap of port $p is left on A"
	t0=$(now_ms)
	until [[ $(sbctl --bare --columns=chassis find Port_Binding logical_port="$p") == "$CH_B" ]]; do
		(( $(now_ms) - t0 < 30000 )) || die "port $p is not bound to host-b after 30 s"
		sleep 0.1
	done
done
echo "vm2 ($rec) runs on B, its 2 ports bound to host-b with their taps on B, none on A"
echo "RESULT case_diskless_two_ports_tcp_uri ok"

if (( SOAK > 0 )) && [[ $SOAK_ONLY != 1 ]]; then
	product_soak "$winner"
fi

libvirt_downtime=$(grep -o 'downtime [0-9]* ms' "$D/migrate.out" | grep -o '[0-9]*' || true)
[[ $libvirt_downtime =~ ^[0-9]+$ ]] || die "migrate did not report libvirt's downtime: $(tail -2 "$D/migrate.out")"
echo "RESULT prepare_ms $((t1 - t_prep))"
echo "RESULT migrate_ms $((t3 - t2))"
echo "RESULT finish_ms $((t4 - t3))"
echo "RESULT pings_sent $sent"
echo "RESULT pings_lost $lost"
echo "RESULT ping_interval_us $interval_us"
echo "RESULT downtime_ms $((lost * interval_us / 1000))"
echo "RESULT libvirt_downtime_ms $libvirt_downtime"
echo "RESULT root_overlay_on_b_kib $overlay_kib"
grep -E "migrated .* in [0-9]+ ms" "$D/migrate.out" | sed 's/^/RESULT /' || true
echo "RESULT ok"
