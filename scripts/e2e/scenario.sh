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
		# a step's "figure: ..." lines (timings it measured) go on its PASS line
		local fig; fig=$(printf '%s\n' "$out" | sed -n 's/^figure: //p' | tr '\n' ' ' | cut -c1-200)
		echo "STEP $name PASS ${dt}s${fig:+ ${fig% }}"
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

# wait_every SECONDS INTERVAL CMD...: retry CMD every INTERVAL s (for costly checks).
wait_every() {
	local until=$(( $(date +%s) + $1 )) every=$2; shift 2
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$until" ] && return 1
		sleep "$every"
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
# ovs-vswitchd in it may also take longer than the 5 s default to give a new
# port its ofport (seen at load 15 with two e2e guests: "assigned no ofport
# ... within 5000 ms"), so port-timeout-ms goes up too (core and openvswitch).
s_slow_guest_timeout() {
	snap set "$SNAP" module-timeout-ms=180000 port-timeout-ms=60000 || return 1
	grep -q 'module_timeout_ms = 180000' "/var/snap/$SNAP/current/nova-hypervisor.conf" || { echo "config file not written"; return 1; }
	grep -q 'port_timeout_ms = 60000' "/var/snap/$SNAP/current/nova-hypervisor.conf" || { echo "port_timeout_ms not written"; return 1; }
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
# One reading of the instance: two could straddle a change (a boot seen "active"
# with its task still running, then in error with no task, passed as active).
inst_is() {
	local j; j=$("$SNAP" --json show "$1" 2>/dev/null | tr -d ' \n') || return 1
	[[ $j == *"\"vm_state\":\"$2\""* ]] && ! [[ $j =~ \"task\":\"[a-z] ]]
}
vm_is() { inst_is "$VM" "$1"; }
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

# ---- a real guest from an image, under the host's libvirtd and virt-aa-helper ----
# The test guest of `make guest` (scripts/guest/build-test-guest.sh), put on the
# scenario disk by run.sh as /e2e/guest.raw: a BIOS-bootable raw disk whose init
# prints "NOVA-GUEST uuid=<uuid from its config drive> ip=<address>" on its serial
# console and counts its boots in a marker file on its disk ("NOVA-GUEST disk boots=N").
IMG=e2e-guest
GVM=e2e-img
GIP=192.0.2.10
POOL=nova-hypervisor                          # the config defaults (storage_pool,
POOL_PATH=/var/lib/libvirt/images/nova-hypervisor # storage_pool_path)
virsh_c() { virsh -c qemu:///system "$@"; }
pool_vols() { virsh_c pool-refresh "$POOL" >/dev/null 2>&1; virsh_c vol-list "$POOL" 2>/dev/null | awk 'NR > 2 && NF { print $1 }'; }
inst_field() { "$SNAP" show "$1" 2>/dev/null | awk -v k="$2:" '$1 == k { print $2; exit }'; }
console_has() { local out; out=$("$SNAP" console "$1" 2>&1) && grep -aqF "$2" <<<"$out"; }
# wait_console NAME TEXT SECONDS: 0 once the console shows TEXT; 1 at the bound,
# or at once when the instance is in error (its fault is then on show).
wait_console() {
	local until=$(( $(date +%s) + $3 ))
	while ! console_has "$1" "$2"; do
		inst_is "$1" error && { echo "instance $1 is in error"; return 1; }
		[ "$(date +%s)" -ge "$until" ] && return 1
		sleep 5
	done
}
console_tail() { "$SNAP" console "$1" 2>&1 | tr -d '\r' | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | grep -av '^[[:space:]]*$' | tail -n "$2"; }
# AppArmor denials of the domain's own profile (virt-aa-helper writes libvirt-<uuid>)
qemu_denials() { journalctl -b --no-pager -o cat | grep 'apparmor="DENIED"' | grep -F "profile=\"libvirt-$1\""; }

s_image_import() {
	[ -s /e2e/guest.raw ] || { echo "no test guest on the scenario disk (/e2e/guest.raw)"; return 1; }
	local size want t0 vol
	size=$(stat -c %s /e2e/guest.raw)
	want=$(sha256sum /e2e/guest.raw | cut -d' ' -f1)
	t0=$(date +%s.%N)
	# through a pipe, as an operator would: the confined CLI may not open /e2e
	# itself (and an inherited file of a path outside its profile is revalidated)
	# shellcheck disable=SC2002 # a pipe, not a file, on purpose
	cat /e2e/guest.raw | "$SNAP" image import "$IMG" - --size "$size" --format raw || return 1
	echo "figure: $((size >> 20)) MiB imported in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
	"$SNAP" image list
	"$SNAP" image show "$IMG" || return 1
	"$SNAP" image show "$IMG" | grep -q "^sha256: *$want\$" || { echo "image sha256 is not the file's $want"; return 1; }
	echo "--- storage pool"
	virsh_c pool-dumpxml "$POOL" | grep -E '<path>|<pool ' || { virsh_c pool-list --all; echo "no pool $POOL"; return 1; }
	virsh_c pool-dumpxml "$POOL" | grep -q "<path>$POOL_PATH</path>" || { echo "pool $POOL is not at $POOL_PATH"; return 1; }
	virsh_c vol-list "$POOL"
	vol=$(pool_vols | grep -E '^image-[0-9a-f-]{36}\.raw$' | head -n 1)
	[ -n "$vol" ] || { echo "no image-<uuid>.raw volume in pool $POOL"; return 1; }
	[ "$(sha256sum "$POOL_PATH/$vol" | cut -d' ' -f1)" = "$want" ] || { echo "$POOL_PATH/$vol differs from the imported file"; return 1; }
	echo "base volume $vol holds the file's bytes"
	"$SNAP" host
}

s_image_boot() {
	local port t0 t_active t_console uuid dom pid label want
	port=$(cat /proc/sys/kernel/random/uuid)
	t0=$(date +%s)
	"$SNAP" boot "$GVM" --vcpus 1 --memory 256 --image "$IMG" --port "uuid=$port,mtu=1450,ip=$GIP" --secgroup e2e-sg || return 1
	wait_every 900 2 inst_is "$GVM" active || { "$SNAP" show "$GVM"; echo "instance not active within 900 s"; return 1; }
	t_active=$(( $(date +%s) - t0 ))
	"$SNAP" show "$GVM"
	uuid=$(inst_field "$GVM" uuid); dom=$(inst_field "$GVM" domain)
	virsh_c domblklist "$dom" --details
	want="NOVA-GUEST uuid=$uuid ip=$GIP"
	# nested software emulation (TCG in TCG): generous, bounded
	if ! wait_console "$GVM" "$want" 1800; then
		"$SNAP" show "$GVM"; console_tail "$GVM" 40; echo "no '$want' on the console (bound 1800 s)"; return 1
	fi
	t_console=$(( $(date +%s) - t0 ))
	echo "--- console"; console_tail "$GVM" 60 | sed -n '/NOVA-GUEST/p'
	# QEMU runs confined by the profile virt-aa-helper made for this domain, which names our disks
	pid=$(pgrep -f "qemu-system.*guest=$dom," | head -n 1)
	[ -n "$pid" ] || { echo "no QEMU process for domain $dom"; return 1; }
	label=$(cat "/proc/$pid/attr/current" 2>/dev/null)
	echo "QEMU pid $pid: AppArmor label $label"
	case "$label" in "libvirt-$uuid (enforce)") ;; *) echo "QEMU is not confined by libvirt-$uuid (enforce)"; return 1 ;; esac
	grep -F "$POOL_PATH/" "/etc/apparmor.d/libvirt/libvirt-$uuid.files" || { echo "virt-aa-helper's profile names none of our volumes"; return 1; }
	grep -qF "$POOL_PATH/nova-$uuid-root.qcow2" "/etc/apparmor.d/libvirt/libvirt-$uuid.files" || { echo "root disk not in libvirt-$uuid.files"; return 1; }
	grep -qE "$POOL_PATH/image-[0-9a-f-]{36}\.raw" "/etc/apparmor.d/libvirt/libvirt-$uuid.files" || { echo "the backing base is not in libvirt-$uuid.files"; return 1; }
	if qemu_denials "$uuid"; then echo "AppArmor denied QEMU (libvirt-$uuid) the above"; return 1; fi
	# an image an instance uses cannot be deleted
	if "$SNAP" image delete "$IMG"; then echo "image $IMG deleted while $GVM uses it"; return 1; fi
	"$SNAP" image show "$IMG" >/dev/null || { echo "image $IMG gone"; return 1; }
	"$SNAP" host
	echo "figure: active ${t_active}s, console line ${t_console}s after boot"
}

s_image_stop_start() {
	local t0 t uuid; uuid=$(inst_field "$GVM" uuid)
	"$SNAP" stop "$GVM" || return 1
	wait_every 900 2 inst_is "$GVM" stopped || { "$SNAP" show "$GVM"; echo "instance not stopped"; return 1; }
	t0=$(date +%s)
	"$SNAP" start "$GVM" || return 1
	wait_every 900 2 inst_is "$GVM" active || { "$SNAP" show "$GVM"; echo "instance not active after start"; return 1; }
	# the marker on its root disk (the qcow2 overlay) counts the second boot
	if ! wait_console "$GVM" "NOVA-GUEST disk boots=2" 1800; then
		"$SNAP" show "$GVM"; console_tail "$GVM" 40; echo "no 'NOVA-GUEST disk boots=2' on the console (bound 1800 s from start)"; return 1
	fi
	t=$(( $(date +%s) - t0 ))
	console_tail "$GVM" 60 | sed -n '/NOVA-GUEST/p'
	if qemu_denials "$uuid"; then echo "AppArmor denied QEMU (libvirt-$uuid) the above"; return 1; fi
	echo "figure: disk boots=2 ${t}s after start"
}

s_image_delete() {
	local uuid; uuid=$(inst_field "$GVM" uuid)
	[ -n "$uuid" ] || { "$SNAP" list; echo "no instance $GVM"; return 1; }
	"$SNAP" delete "$GVM" || return 1
	wait_every 900 2 sh -c "! $SNAP show $GVM" || { "$SNAP" show "$GVM"; echo "instance still there"; return 1; }
	virsh_c list --all --name | grep . && { echo "domain left after delete"; return 1; }
	virsh_c vol-list "$POOL"
	pool_vols | grep -F "$uuid" && { echo "volumes of instance $uuid left in pool $POOL"; return 1; }
	ls -la "$POOL_PATH"
	find "$POOL_PATH" -name "*$uuid*" | grep . && { echo "files of instance $uuid left in $POOL_PATH"; return 1; }
	# the image's base alone stays: the image is still imported
	[ "$(pool_vols | grep -c .)" = 1 ] || { echo "pool $POOL holds more than the image's base"; return 1; }
	if qemu_denials "$uuid"; then echo "AppArmor denied QEMU (libvirt-$uuid) the above"; return 1; fi
	echo "only the base of $IMG is left"
}

# After snap remove: the remove hook's `image purge` removed every volume of ours and the pool.
s_purged() {
	virsh_c pool-list --all
	if virsh_c pool-info "$POOL" >/dev/null 2>&1; then
		virsh_c vol-list "$POOL"; echo "pool $POOL still defined after snap remove"; return 1
	fi
	if [ -d "$POOL_PATH" ] && find "$POOL_PATH" -mindepth 1 | grep .; then echo "files left in $POOL_PATH"; return 1; fi
	journalctl -b --no-pager -o cat | grep -E 'volumes deleted: [0-9]+' | tail -n 3
	echo "pool $POOL and every volume of ours gone"
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
step 7-image-import s_image_import
if step 7-image-boot-console s_image_boot; then
	step 7-image-stop-start-disk-marker s_image_stop_start
fi
step 7-image-delete-no-volume s_image_delete
step 3-inventory-stats-after s_inventory
step 5-no-denials s_no_denials
step 6-remove-leaves-nothing s_remove
step 7-remove-purged-volumes s_purged
# over the whole run, the remove hook included
step 5-no-denials-after-remove s_no_denials
echo "RESULT $([ $failed = 0 ] && echo PASS || echo FAIL) $failed failed, $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}')s in guest"
[ $failed = 0 ]
