#!/usr/bin/env bash
# libvirtd-private.sh - a private root libvirtd (QEMU + storage drivers) for tests and
# the sandbox, that touches nothing of the host's libvirt.
#
#   libvirtd-private.sh start DIR [--tcp ADDRESS[:PORT]]
#                                   start it; prints the URI to reach it (the unix one)
#   libvirtd-private.sh stop DIR    its domains' QEMU processes, then libvirtd: SIGTERM
#                                   (SIGKILL after 5/10 s) and wait; DIR stays
#   libvirtd-private.sh uri DIR     print the URI
#
# DIR (absolute, created when missing) holds everything: etc/ (libvirtd.conf, qemu.conf),
# sock/ (unix_sock_dir: libvirt-sock, libvirt-admin-sock), run/ lib/ cache/ log/ (libvirt's
# run, state, cache and log dirs), libvirtd.pid, libvirtd.out. libvirtd runs in a mount
# namespace of its own (unshare -m) in which DIR's directories are bind-mounted over
# /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt, so
# its domains, pools and QEMU monitors are all private; it inherits the caller's network
# namespace (taps of a test's namespace are where QEMU opens them). Its host_uuid is
# random. Reach it as qemu+unix:///system?socket=DIR/sock/libvirt-sock.
#
# --tcp ADDRESS[:PORT] (default: none, unix socket only): libvirtd also listens on TCP itself
# (libvirtd --listen; listen_tcp = 1 on ADDRESS, an IPv4 literal, port PORT, default 16509;
# listen_tls = 0, as --listen otherwise requires TLS certificates), reached as
# qemu+tcp://ADDRESS[:PORT]/system, e.g. by another libvirtd for a peer-to-peer migration.
# auth_tcp = "none": no authentication and no encryption, anyone who reaches ADDRESS controls
# this libvirtd. For a test inside private network namespaces only (the listener binds ADDRESS
# of the caller's namespace); never on a shared network (a host would use TLS or SASL).
#
# QEMU runs as root without a security driver (a test machine), in libvirt's machine
# cgroup of its domain (cgroup_controllers cpu and cpuacct; without systemd-machined, libvirt
# makes /machine/qemu-<id>-<name>.libvirt-qemu itself), as on a host: system-observe and
# process-control take a process for an instance's QEMU only with that evidence. Under
# `ip netns exec` (the sandbox) /sys is a fresh sysfs without the host's cgroup mounts, and
# libvirt then runs QEMU without cgroups: the mount namespace below mounts the host's
# hierarchies again (read from /proc/1/mounts; the same controllers give the same
# hierarchies). Serial logs are written by QEMU itself (stdio_handler = "file": no virtlogd).
set -euo pipefail

usage() { echo "usage: $0 start DIR [--tcp ADDRESS[:PORT]] | stop DIR | uri DIR" >&2; exit 2; }
[[ $# -eq 2 || ( $# -eq 4 && $1 == start && $3 == --tcp ) ]] || usage
cmd=$1
dir=$2
tcp_addr=
tcp_port=16509
if [[ $# -eq 4 ]]; then
	[[ $4 =~ ^([0-9]{1,3}(\.[0-9]{1,3}){3})(:([0-9]{1,5}))?$ ]] ||
		{ echo "libvirtd-private: --tcp wants ADDRESS[:PORT] (an IPv4 literal), not '$4'" >&2; exit 2; }
	tcp_addr=${BASH_REMATCH[1]}
	tcp_port=${BASH_REMATCH[4]:-16509}
	(( tcp_port >= 1 && tcp_port <= 65535 )) || { echo "libvirtd-private: bad TCP port $tcp_port" >&2; exit 2; }
fi
[[ $dir == /* ]] || { echo "libvirtd-private: DIR must be absolute" >&2; exit 2; }
uri="qemu+unix:///system?socket=$dir/sock/libvirt-sock"

# QEMU processes outlive libvirtd by design: stop them first (their pidfiles are in the
# private run dir), then libvirtd.
stop_qemus() {
	local f pid
	for f in "$dir"/run/qemu/*.pid; do
		[[ -f $f ]] || continue
		pid=$(cat "$f")
		[[ $pid =~ ^[0-9]+$ ]] && grep -qa qemu-system "/proc/$pid/cmdline" 2>/dev/null || continue
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
}

stop() {
	local pid
	stop_qemus
	[[ -f $dir/libvirtd.pid ]] || return 0
	pid=$(cat "$dir/libvirtd.pid")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	kill -TERM "$pid" 2>/dev/null || { rm -f "$dir/libvirtd.pid"; return 0; }
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$dir/libvirtd.pid"
}

start() {
	local d uuid pid
	command -v libvirtd >/dev/null || { echo "libvirtd-private: libvirtd not installed (libvirt-daemon)" >&2; exit 1; }
	# The QEMU driver refuses to load unless the user and group it was built with exist.
	getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
	getent passwd libvirt-qemu >/dev/null ||
		useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
	for d in etc sock run lib cache log; do mkdir -p "$dir/$d"; done
	chmod 700 "$dir/sock"
	uuid=$(cat /proc/sys/kernel/random/uuid)
	cat > "$dir/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$dir/sock"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
host_uuid = "$uuid"
log_outputs = "3:file:$dir/log/libvirtd.log"
EOF
	listen=
	if [[ -n $tcp_addr ]]; then
		cat >> "$dir/etc/libvirtd.conf" <<EOF
listen_tcp = 1
listen_tls = 0
listen_addr = "$tcp_addr"
tcp_port = "$tcp_port"
auth_tcp = "none"
EOF
		listen=--listen
	fi
	cat > "$dir/etc/qemu.conf" <<EOF
user = "root"
group = "root"
security_driver = "none"
remember_owner = 0
dynamic_ownership = 0
stdio_handler = "file"
cgroup_controllers = [ "cpu", "cpuacct" ]
EOF
	rm -f "$dir/sock/libvirt-sock"
	# setsid: its own session, so a test's terminal signals do not reach it.
	setsid unshare --mount --propagation private -- /bin/sh -c '
		set -e
		d=$1
		for m in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt cache:/var/cache/libvirt log:/var/log/libvirt; do
			mkdir -p "${m#*:}"   # an empty mount point, as libvirt-daemon-system would make
			mount --bind "$d/${m%%:*}" "${m#*:}"
		done
		# No cgroup mount here (ip netns exec mounted a fresh /sys): the host'"'"'s, again.
		if ! awk '"'"'$3 == "cgroup" || $3 == "cgroup2" { f = 1 } END { exit !f }'"'"' /proc/self/mounts; then
			while read -r src mp type opts rest; do
				case $type:$mp in
				tmpfs:/sys/fs/cgroup | cgroup:/sys/fs/cgroup/* | cgroup2:/sys/fs/cgroup | cgroup2:/sys/fs/cgroup/*) ;;
				*) continue ;;
				esac
				mkdir -p "$mp" && mount -t "$type" -o "$opts" "$src" "$mp" ||
					echo "libvirtd-private: cannot mount $type on $mp: QEMU may run without cgroups" >&2
			done </proc/1/mounts
		fi
		exec libvirtd $2 --config "$d/etc/libvirtd.conf" --pid-file "$d/libvirtd.pid"
	' sh "$dir" "$listen" </dev/null >"$dir/libvirtd.out" 2>&1 &
	pid=$!
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		if [[ -S $dir/sock/libvirt-sock ]] && virsh -q -c "$uri" version >/dev/null 2>&1 &&
			{ [[ -z $tcp_addr ]] || virsh -q -c "qemu+tcp://$tcp_addr:$tcp_port/system" version >/dev/null 2>&1; }; then
			echo "$uri"
			return 0
		fi
		sleep 0.1
	done
	echo "libvirtd-private: libvirtd did not answer on $uri${tcp_addr:+ and qemu+tcp://$tcp_addr:$tcp_port/system} (exited, or not within 30 s); $dir/libvirtd.out:" >&2
	tail -20 "$dir/libvirtd.out" >&2 || true
	stop
	kill -KILL "$pid" 2>/dev/null || true # when it hung before writing its pidfile
	exit 1
}

case $cmd in
start) start ;;
stop) stop ;;
uri) echo "$uri" ;;
*) usage ;;
esac
