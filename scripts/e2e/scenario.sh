#!/bin/bash
# scenario.sh - the `make e2e` scenario, run as root inside the guest by
# nova-e2e.service (scripts/e2e/build-image.sh). /e2e holds this script and
# nova-hypervisor.snap, /e2e-snaps the stand-in snapd.snap and core22.snap.
# Prints one line per step on stdout (ttyS1, read by scripts/e2e/run.sh):
#   STEP <name> PASS|FAIL <seconds>s [detail]
# and the details of a failure on stderr (/e2e/out/scenario.err) and stdout.
set -u
export PATH=/snap/bin:/usr/sbin:/usr/bin:/sbin:/bin
SNAP=nova-hypervisor
PLUGS=(libvirt openvswitch network-control firewall-control hardware-observe system-observe network-observe process-control)
T0=$(date +%s.%N)
failed=0
log() { echo "$*" >&2; }

# step NAME FUNCTION: run FUNCTION, print the STEP line with its timing.
step() {
	local name=$1; shift
	local s e rc out
	s=$(date +%s.%N)
	out=$("$@" 2>&1); rc=$?
	e=$(date +%s.%N)
	local dt; dt=$(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.1f", b-a}')
	if [ $rc = 0 ]; then
		echo "STEP $name PASS ${dt}s"
	else
		failed=$((failed + 1))
		echo "STEP $name FAIL ${dt}s $(printf '%s' "$out" | tail -1 | tr -s '\n\t' '  ' | cut -c1-200)"
		printf '%s\n' "$out" | sed "s/^/  [$name] /"
	fi
	{ echo "==== $name (rc $rc, ${dt}s)"; printf '%s\n' "$out"; } >&2
	return $rc
}

# wait_for SECONDS CMD...: retry CMD every 0.5 s until it succeeds.
wait_for() {
	local until=$(( $(date +%s) + $1 )); shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$until" ] && { "$@"; return 1; }
		sleep 0.5
	done
}

svc_state() { systemctl is-active "snap.$SNAP.$1.service" 2>/dev/null; }
svc_pid() { systemctl show -p MainPID --value "snap.$SNAP.$1.service"; }
health() { curl -s --unix-socket /run/snapd.socket "http://localhost/v2/snaps/$SNAP" | grep -o '"health":{[^}]*}'; }
status() { "$SNAP" status; }

# ---- steps ----
s_snapd_ready() {
	wait_for 300 snap version || return 1
	snap wait system seed.loaded
	aa-status --enabled && echo "apparmor enabled"
	snap version
}
s_install_snapd() { snap install --dangerous /e2e-snaps/snapd.snap; }
s_install_base() { snap install --dangerous /e2e-snaps/core22.snap; }
# The stand-in base is core22's package set only: none of the host's libvirt,
# Open vSwitch or nftables libraries is in it, so the snap runs on what it bundles.
s_base_is_core22_set() {
	local b=/snap/core22/current l bad=""
	for l in libvirt.so.0 libnftables.so.1 libjansson.so.4 libopenvswitch; do
		ls "$b"/usr/lib/x86_64-linux-gnu/ | grep -q "^$l" && bad="$bad $l"
	done
	[ -z "$bad" ] || { echo "the stand-in base carries:$bad"; return 1; }
	echo "base has no libvirt, nftables, jansson or openvswitch library"
}
s_install() { snap install --dangerous /e2e/nova-hypervisor.snap && snap list; }

s_core_running() {
	wait_for 60 test "$(svc_state nova-compute)" = active || { systemctl status "snap.$SNAP.nova-compute" --no-pager; return 1; }
	wait_for 60 status >/dev/null || { status; return 1; }
}
s_health_waiting() {
	wait_for 30 sh -c "curl -s --unix-socket /run/snapd.socket http://localhost/v2/snaps/$SNAP | grep -q '\"status\":\"waiting\"'" ||
		{ health; return 1; }
	local h; h=$(health); echo "$h"
	# The core waits for the plugs its main job needs (boot an instance with
	# a port on OVS); the other five only add features, `status` lists them.
	local p miss=""
	for p in libvirt openvswitch network-control; do
		case "$h" in *"$p"*) ;; *) miss="$miss $p" ;; esac
	done
	[ -z "$miss" ] || { echo "health message does not name:$miss"; return 1; }
}
s_status_lists_plugs() {
	local out p bad=""; out=$(status) || { echo "$out"; return 1; }
	echo "$out"
	for p in "${PLUGS[@]}"; do
		echo "$out" | grep -Eq "^$p +no .*fix: .*snap connect $SNAP:$p" || bad="$bad $p"
	done
	[ -z "$bad" ] || { echo "status lacks 'no ... fix: snap connect' for:$bad"; return 1; }
}
s_no_module_running() {
	snap services "$SNAP"
	local p bad=""
	for p in "${PLUGS[@]}"; do
		[ "$(svc_state "$p")" = active ] && bad="$bad $p"
	done
	[ -z "$bad" ] || { echo "module apps running with no plug connected:$bad"; return 1; }
}

connected=()
s_connect() {
	local plug=$1 p
	local core_pid; core_pid=$(svc_pid nova-compute)
	declare -A before
	for p in "${connected[@]}"; do before[$p]=$(svc_pid "$p"); done
	snap connect "$SNAP:$plug" || return 1
	snap connections "$SNAP" | grep -E "^$plug|:$plug " || true
	wait_for 30 test "$(svc_state "$plug")" = active || { echo "app $plug is $(svc_state "$plug")"; systemctl status "snap.$SNAP.$plug" --no-pager -n 20; return 1; }
	connected+=("$plug")
	local bad=""
	for p in "${PLUGS[@]}"; do
		local want=inactive
		[[ " ${connected[*]} " == *" $p "* ]] && want=active
		local st; st=$(svc_state "$p")
		[ "$st" = "$want" ] || [ "$want" = inactive -a "$st" != active ] || bad="$bad $p=$st(want $want)"
	done
	[ "$(svc_pid nova-compute)" = "$core_pid" ] || bad="$bad nova-compute-restarted"
	for p in "${!before[@]}"; do
		[ "$(svc_pid "$p")" = "${before[$p]}" ] || bad="$bad $p-restarted"
	done
	wait_for 30 sh -c "$SNAP status | grep -Eq '^$plug +yes +running'" || { status; bad="$bad core-does-not-report-$plug-running"; }
	snap services "$SNAP"
	[ -z "$bad" ] || { echo "after connect $plug:$bad"; return 1; }
}

s_health_okay() {
	wait_for 60 sh -c "curl -s --unix-socket /run/snapd.socket http://localhost/v2/snaps/$SNAP | grep -q '\"status\":\"okay\"'" ||
		{ health; return 1; }
	health
}
# The operator lets the snap create the integration bridge on the host's OVS
# (through the real configure hook: only the openvswitch app restarts).
s_bridge_create() {
	local core_pid; core_pid=$(svc_pid nova-compute)
	snap set "$SNAP" bridge-create=true || return 1
	wait_for 60 sh -c "ovs-vsctl br-exists br-int" || { ovs-vsctl show; echo "br-int not created"; return 1; }
	wait_for 30 sh -c "$SNAP status | grep -Eq '^openvswitch +yes +running'" || { status; return 1; }
	[ "$(svc_pid nova-compute)" = "$core_pid" ] || { echo "nova-compute restarted by a key only openvswitch reads"; return 1; }
	ovs-vsctl show
}
# QEMU inside this software-emulated guest takes far longer than the 10 s
# default to start a domain: the operator raises module-timeout-ms (a core
# key: the core restarts, the module apps reconnect to it by themselves).
s_slow_guest_timeout() {
	snap set "$SNAP" module-timeout-ms=180000 || return 1
	grep -q 'module_timeout_ms = 180000' "/var/snap/$SNAP/current/nova-hypervisor.conf" || { echo "config file not written"; return 1; }
	local p
	for p in "${PLUGS[@]}"; do
		wait_for 60 sh -c "$SNAP status | grep -Eq '^$p +yes +running'" || { status; echo "$p not running after the core restart"; return 1; }
	done
	status
}
s_inventory() { "$SNAP" host && "$SNAP" stats && "$SNAP" ports && "$SNAP" list; }

s_disconnect() {
	local plug=$1
	local core_pid; core_pid=$(svc_pid nova-compute)
	snap disconnect "$SNAP:$plug" || return 1
	wait_for 30 test "$(svc_state "$plug")" != active || { echo "app $plug still $(svc_state "$plug")"; return 1; }
	wait_for 30 sh -c "$SNAP status | grep -Eq '^$plug +no .*snap connect'" || { status; echo "core does not report $plug disconnected"; return 1; }
	[ "$(svc_pid nova-compute)" = "$core_pid" ] || { echo "nova-compute restarted"; return 1; }
	status
}
s_reconnect() {
	local plug=$1
	snap connect "$SNAP:$plug" || return 1
	wait_for 30 test "$(svc_state "$plug")" = active || { echo "app $plug is $(svc_state "$plug")"; return 1; }
	wait_for 30 sh -c "$SNAP status | grep -Eq '^$plug +yes +running'" || { status; return 1; }
	status
}

denials() {
	journalctl -b --no-pager -o cat | grep -E 'apparmor="DENIED".*profile="snap\.'"$SNAP"'\.|type=1326.*snap\.'"$SNAP"'\.|audit.*type=1326.*comm=.*exe="/snap/'"$SNAP"'/'
}
s_no_denials() {
	local d; d=$(denials)
	[ -z "$d" ] && { echo "no apparmor DENIED / seccomp type=1326 for snap.$SNAP.*"; return 0; }
	echo "$(echo "$d" | wc -l) denial(s):"
	echo "$d"
	echo "---- explain-denial:"
	if command -v "$SNAP" >/dev/null; then
		echo "$d" | "$SNAP" explain-denial 2>&1
	else
		echo "(the snap is removed: make e2e explains them on the host, from the journal)"
	fi
	return 1
}

# The remove change runs the remove hook, one auto-disconnect (with its
# disconnect hook) per connected plug, then drops the profiles: every task is
# printed with its times, and a change that does not finish within the bound
# is shown with the processes still running.
s_remove() {
	local id
	id=$(snap remove --no-wait --purge "$SNAP") || return 1
	if ! timeout 2400 snap watch "$id"; then
		snap tasks "$id"; ps -eo pid,ppid,etime,stat,args --forest | grep -v '\[' | tail -60
		echo "snap remove (change $id) not finished"; return 1
	fi
	snap tasks "$id"
	snap changes | awk -v id="$id" '$1 == id && $2 != "Done" { bad = 1 } END { exit bad }' ||
		{ echo "snap remove (change $id) did not succeed"; return 1; }
	local left=""
	ip -o link show | grep -E ' (tap|qbr|qvb|qvo)[0-9a-f]{8}-[0-9a-f]{2}[:@]' && left="$left links"
	ovs-vsctl list-ports br-int 2>/dev/null | grep . && left="$left ovs-ports"
	nft list tables 2>/dev/null | grep -i nova && left="$left nft-tables"
	virsh -c qemu:///system list --all --name 2>/dev/null | grep . && left="$left domains"
	snap list "$SNAP" 2>/dev/null && left="$left snap"
	[ -z "$left" ] || { journalctl -b --no-pager -o cat | grep -E 'nova-hypervisor remove|remove-hook|purge' | tail -40; echo "left behind:$left"; return 1; }
	echo "nothing left"
}

VM=e2e-vm
# "<vm_state> <task>" of the instance; QEMU under software emulation inside
# this guest takes minutes, longer than the CLI's 60 s --wait, so poll.
vm_is() { "$SNAP" --json show "$VM" 2>/dev/null | tr -d ' \n' | grep -q "\"vm_state\":\"$1\"" &&
	! "$SNAP" --json show "$VM" 2>/dev/null | tr -d ' \n' | grep -q '"task":"[a-z]'; }
virsh_has_running() { virsh -c qemu:///system list --name | grep -q .; }
s_secgroup() {
	"$SNAP" secgroup create e2e-sg --description e2e &&
	"$SNAP" secgroup rule add e2e-sg --direction ingress --protocol tcp --port 22 &&
	"$SNAP" secgroup show e2e-sg
}
s_boot() {
	"$SNAP" boot "$VM" --vcpus 1 --memory 64 --ports 1 --secgroup e2e-sg || return 1
	wait_for 400 vm_is active || { "$SNAP" show "$VM"; echo "instance not active"; return 1; }
	"$SNAP" show "$VM"
	virsh -c qemu:///system list --all
	virsh_has_running || { echo "no running libvirt domain"; return 1; }
	echo "--- OVS"; ovs-vsctl show
	local ports; ports=$("$SNAP" ports) || return 1
	echo "$ports"
	[ "$(echo "$ports" | grep -vc '^PORT')" -ge 1 ] || { echo "no port of ours on the integration bridge"; return 1; }
	echo "--- nftables"; nft list tables
	nft list ruleset | grep -q 'dport 22' || { echo "security group rule (tcp 22) not in nftables"; return 1; }
}
s_stop_start() {
	"$SNAP" stop "$VM" || return 1
	wait_for 400 vm_is stopped || { "$SNAP" show "$VM"; echo "instance not stopped"; return 1; }
	virsh -c qemu:///system list --all
	"$SNAP" start "$VM" || return 1
	wait_for 400 vm_is active || { "$SNAP" show "$VM"; echo "instance not active after start"; return 1; }
	virsh_has_running || { echo "domain not running after start"; return 1; }
	"$SNAP" show "$VM"
}
s_delete() {
	"$SNAP" delete "$VM" || return 1
	wait_for 400 sh -c "! $SNAP show $VM" || { "$SNAP" show "$VM"; echo "instance still there"; return 1; }
	virsh -c qemu:///system list --all --name | grep . && { echo "domain left after delete"; return 1; }
	"$SNAP" list
}
s_disconnect_running() {
	s_disconnect libvirt || return 1
	local out; out=$("$SNAP" stop "$VM" 2>&1) && { echo "stop succeeded with libvirt disconnected: $out"; return 1; }
	echo "$out"
	echo "$out" | grep -q "snap connect $SNAP:libvirt" || { echo "no fix message naming snap connect $SNAP:libvirt"; return 1; }
	virsh_has_running || { echo "instance stopped when the libvirt module went away"; return 1; }
	echo "instance still running: $(virsh -c qemu:///system list --name)"
}
s_reconnect_running() {
	s_reconnect libvirt || return 1
	wait_for 60 sh -c "$SNAP show $VM" || return 1
	"$SNAP" show "$VM"; "$SNAP" list
	virsh_has_running || { echo "instance not running after reconnect"; return 1; }
}

# ---- the scenario ----
step snapd-ready s_snapd_ready || { echo "RESULT FAIL snapd not ready"; exit 1; }
step install-snapd-snap s_install_snapd || { echo "RESULT FAIL"; exit 1; }
step install-core22-standin s_install_base || { echo "RESULT FAIL"; exit 1; }
step base-is-core22-set s_base_is_core22_set
step 1-install s_install || { echo "RESULT FAIL"; exit 1; }
step 1-core-running s_core_running
step 1-health-waiting s_health_waiting
step 1-status-lists-plugs s_status_lists_plugs
step 1-no-module-running s_no_module_running
for p in "${PLUGS[@]}"; do
	step "2-connect-$p" s_connect "$p"
	# keep the list of connected plugs (step runs in a subshell via $())
	[ "$(svc_state "$p")" = active ] && connected+=("$p")
done
step 2-health-okay s_health_okay
step 3-bridge-create s_bridge_create
step 3-slow-guest-timeout s_slow_guest_timeout
step 3-inventory-stats s_inventory
step 3-secgroup s_secgroup
if step 3-boot-instance s_boot; then
	step 3-stop-start s_stop_start
	step 4-disconnect-libvirt-instance-keeps-running s_disconnect_running
	step 4-reconnect-libvirt-reconciles s_reconnect_running
	step 3-delete s_delete
else
	step 4-disconnect-network-observe s_disconnect network-observe
	step 4-reconnect-network-observe s_reconnect network-observe
fi
step 3-inventory-stats-after s_inventory
step 5-no-denials s_no_denials
step 6-remove-leaves-nothing s_remove
# over the whole run, the remove hook included
step 5-no-denials-after-remove s_no_denials
echo "RESULT $([ $failed = 0 ] && echo PASS || echo FAIL) $failed failed, $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}')s in guest"
[ $failed = 0 ]
