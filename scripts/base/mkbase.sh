#!/usr/bin/env bash
# mkbase.sh - build (once) the tree that stands in for the core22 base, from
# core22's own package list only (snap/base/core22-packages.txt):
#   debootstrap --variant=minbase (the "@minbase" line: Ubuntu's ubuntu-base is
#   the same minimal set for jammy), then apt-get install --no-install-recommends
#   of the listed packages mapped to their Debian 12 names, as core-base's
#   hooks/001-extra-packages.chroot does, then the removals ("!" lines) and the
#   /usr/bin/snapctl link of core-base's hook 020. Nothing of the host and
#   nothing of the e2e guest (no libvirt, Open vSwitch or nftables) goes in.
#
# Cached under $NOVA_E2E_CACHE (default /var/cache/nova-hypervisor-e2e) in
# base-<hash of this script, the package list, suite and mirror>/root; prints
# that root. Needs root and the Debian mirror (NOVA_E2E_MIRROR).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list="$here/../../snap/base/core22-packages.txt"
cache_root=${NOVA_E2E_CACHE:-/var/cache/nova-hypervisor-e2e}
mirror=${NOVA_E2E_MIRROR:-http://deb.debian.org/debian}
suite=${NOVA_E2E_SUITE:-bookworm}

# "<jammy> [<debian> | -]" lines; "@minbase"; "!<pkg>" removals; comments.
install=()
remove=()
while read -r name mapped _; do
	case "$name" in
	"" | "#"* | @minbase) continue ;;
	"!"*) remove+=("${name#!}") ;;
	*)
		case "${mapped:-}" in
		"" | "#"*) install+=("$name") ;;
		-) ;;
		*) install+=("$mapped") ;;
		esac
		;;
	esac
done <"$list"
[ ${#install[@]} -gt 0 ] || { echo "mkbase: no packages in $list" >&2; exit 1; }

key=$( { cat "$0" "$list"; echo "$mirror $suite"; } | sha256sum | cut -c1-16)
out="$cache_root/base-$key"
if [ -f "$out/done" ]; then
	echo "$out/root"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "mkbase: needs root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "mkbase: debootstrap missing (scripts/e2e/host-deps.sh)" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
root="$out/root"
t0=$(date +%s)
echo "mkbase: debootstrap --variant=minbase $suite into $root" >&2
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$out/debootstrap.log" 2>&1 ||
	{ tail -30 "$out/debootstrap.log" >&2; exit 1; }

# apt-get in the chroot, services never started (policy-rc.d), /proc for
# the postinsts that want it (core-base mounts it the same way).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
echo "mkbase: apt-get install ${#install[@]} packages (core22's list, Debian 12 names)" >&2
if ! chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	"${install[@]}" >"$out/apt.log" 2>&1; then
	tail -30 "$out/apt.log" >&2
	exit 1
fi
# The removals of core-base's later hooks (only what is installed).
present=()
for p in "${remove[@]}"; do
	chroot "$root" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' && present+=("$p")
done
[ ${#present[@]} -eq 0 ] || chroot "$root" dpkg --purge --force-depends "${present[@]}" >>"$out/apt.log" 2>&1
# hook 013: only libnss_mdns4_minimal stays
rm -f "$root"/usr/lib/*/libnss_mdns.so.2 "$root"/usr/lib/*/libnss_mdns_minimal.so.2 \
	"$root"/usr/lib/*/libnss_mdns4.so.2 "$root"/usr/lib/*/libnss_mdns6.so.2 \
	"$root"/usr/lib/*/libnss_mdns6_minimal.so.2
# hook 020: snapctl from the snapd snap
ln -sf ../lib/snapd/snapctl "$root/usr/bin/snapctl"
rm -f "$root/usr/sbin/policy-rc.d" "$root"/var/cache/apt/archives/*.deb
umount "$root/proc"
trap - EXIT
date -u +%FT%TZ >"$out/done"
echo "mkbase: built $root in $(( $(date +%s) - t0 )) s" >&2
echo "$root"
