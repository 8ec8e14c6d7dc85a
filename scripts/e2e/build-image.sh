#!/usr/bin/env bash
# build-image.sh - build (once) and cache the guest for `make e2e`.
#
# A Debian 12 guest made with debootstrap: snapd + AppArmor, and on the guest
# host the real system slots our plugs connect to (libvirt-daemon-system with
# QEMU, openvswitch-switch, nftables). Alongside it, the two stand-in snaps an
# offline snapd needs before it will install a strict core22 snap
# (../shared/NOTES.md "Real snapd in a virtual machine"):
#   snapd.snap  - Debian's snapd files packed as `name: snapd, type: snapd`
#   core22.snap - `name: core22, type: base` built from core22's own package
#                 list only (scripts/base/mkbase.sh: minimal debootstrap plus
#                 snap/base/core22-packages.txt mapped to Debian 12), never
#                 from the guest's tree: the host's libvirt, Open vSwitch and
#                 nftables are not in it, so the snap must bring what it needs
#
# Cached under $NOVA_E2E_CACHE (default /var/cache/nova-hypervisor-e2e), in a
# directory named after a hash of this script (package list, mirror, guest
# wiring included) - nothing is rebuilt while that stays the same. Prints the
# cache directory, which holds: vmlinuz initrd.img rootfs.ext4 snaps.ext4
# (snaps.ext4 is an ext4 image holding snapd.snap and core22.snap).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${NOVA_E2E_CACHE:-/var/cache/nova-hypervisor-e2e}
mirror=${NOVA_E2E_MIRROR:-http://deb.debian.org/debian}
suite=${NOVA_E2E_SUITE:-bookworm}

# Guest packages. Debootstrap installs no Recommends, so list what we need.
pkgs=(systemd systemd-sysv udev dbus dbus-user-session kmod iproute2 procps
      linux-image-amd64 initramfs-tools apparmor squashfs-tools snapd
      libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils
      openvswitch-switch nftables
      curl ca-certificates)

[ "$(id -u)" = 0 ] || { echo "build-image: needs root (debootstrap)" >&2; exit 1; }
# debootstrap, e2fsprogs, squashfs-tools, QEMU: installed when missing.
bash "$here/host-deps.sh" >&2
# The stand-in base (cached on its own, keyed on its script and package list).
base_root=$(bash "$here/../base/mkbase.sh" | tail -1)
[ -d "$base_root/usr/lib" ] || { echo "build-image: no base tree at '$base_root'" >&2; exit 1; }

key=$( { cat "$0"; echo "$mirror $suite $base_root"; } | sha256sum | cut -c1-16)
out="$cache_root/$key"
if [ -f "$out/done" ]; then
	echo "$out"
	exit 0
fi

mkdir -p "$cache_root"
work="$cache_root/tmp-$key"
rm -rf "$work"
mkdir -p "$work"
root="$work/root"
t0=$(date +%s)
echo "build-image: debootstrap $suite into $root (several minutes)" >&2
debootstrap --include="$(IFS=,; echo "${pkgs[*]}")" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	{ tail -30 "$work/debootstrap.log" >&2; exit 1; }
echo "build-image: debootstrap done in $(( $(date +%s) - t0 )) s" >&2

# ---- guest wiring ----
echo nova-e2e >"$root/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
chroot "$root" passwd -d root >/dev/null
# The scenario disk (LABEL=nova-e2e) carries scenario.sh, the snap under test
# and out/; the snaps disk (LABEL=nova-e2e-snaps) the stand-in snaps.
cat >"$root/usr/local/sbin/nova-e2e-guest" <<'G'
#!/bin/bash
# Runs once at boot: mount the scenario disks, run the scenario with its
# result lines on ttyS1, save the journal to the scenario disk, power off.
exec >/dev/ttyS0 2>&1
mkdir -p /e2e /e2e-snaps
mount LABEL=nova-e2e /e2e
mount -o ro LABEL=nova-e2e-snaps /e2e-snaps
mkdir -p /e2e/out
rc=0
if [ -x /e2e/scenario.sh ]; then
	timeout "${NOVA_E2E_GUEST_TIMEOUT:-3000}" /e2e/scenario.sh >/dev/ttyS1 2>/e2e/out/scenario.err || rc=$?
else
	echo "RESULT boot-only" >/dev/ttyS1
fi
echo "GUEST-EXIT $rc" >/dev/ttyS1
journalctl -b --no-pager -o short-precise >/e2e/out/journal.txt 2>&1
sync
umount /e2e-snaps /e2e
systemctl poweroff --no-block
G
chmod 0755 "$root/usr/local/sbin/nova-e2e-guest"
cat >"$root/etc/systemd/system/nova-e2e.service" <<'G'
[Unit]
Description=nova-hypervisor end-to-end scenario
After=snapd.service snapd.socket apparmor.service libvirtd.service openvswitch-switch.service
Wants=snapd.service snapd.socket

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/nova-e2e-guest
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
G
chroot "$root" systemctl enable nova-e2e.service >/dev/null 2>&1
# Nothing to wait for on a network the guest does not have.
chroot "$root" systemctl mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
	man-db.timer e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true
rm -f "$root/var/cache/apt/archives/"*.deb

cp -L "$root/vmlinuz" "$work/vmlinuz"
cp -L "$root/initrd.img" "$work/initrd.img"

# ---- stand-in snapd snap ----
sv=$(chroot "$root" dpkg-query -W -f='${Version}' snapd)
s="$work/snapd"
mkdir -p "$s/usr/lib" "$s/usr/bin" "$s/etc/apparmor.d" "$s/meta"
cp -a "$root/usr/lib/snapd" "$s/usr/lib/"
cp -a "$root/usr/bin/snap" "$s/usr/bin/"
cp "$root/etc/apparmor.d/usr.lib.snapd.snap-confine.real" "$s/etc/apparmor.d/usr.lib.snapd.snap-confine"
chmod 4755 "$s/usr/lib/snapd/snap-confine"
printf 'name: snapd\ntype: snapd\nversion: "%s"\nsummary: snapd from Debian (e2e stand-in)\ndescription: e2e stand-in\n' \
	"${sv//[^0-9a-zA-Z.+~-]/}" >"$s/meta/snap.yaml"
mkdir -p "$work/snaps"
mksquashfs "$s" "$work/snaps/snapd.snap" -noappend -comp xz -all-root -no-xattrs -no-fragments -quiet

# ---- stand-in core22 base: core22's package set (scripts/base/mkbase.sh) ----
# Without kernel, docs and caches, with the empty mount points snap-confine
# expects (their contents excluded, the directories kept).
for d in snap var/snap var/lib/snapd usr/lib/snapd usr/lib/modules usr/src media mnt writable meta; do
	mkdir -p "$base_root/$d"
done
printf 'name: core22\ntype: base\nversion: "22-e2e"\nsummary: core22 package set on Debian 12 standing in for core22 (e2e)\ndescription: e2e stand-in\n' >"$base_root/meta/snap.yaml"
mksquashfs "$base_root" "$work/snaps/core22.snap" -noappend -comp gzip -all-root -no-xattrs -quiet -wildcards \
	-e 'boot/*' 'usr/lib/modules/*' 'usr/share/doc/*' 'usr/share/man/*' 'usr/share/locale/*' 'var/cache/*' \
	'var/lib/apt/*' 'var/log/*' 'proc/*' 'sys/*' 'dev/*' 'run/*' 'tmp/*' 'var/lib/snapd/*' 'usr/lib/snapd/*' \
	'snap/*' 'var/snap/*' 'writable/*' 'usr/src/*'
rm -rf "$base_root/meta"
echo "build-image: stand-in snaps packed (snapd $sv; core22 from $base_root)" >&2

mkfs.ext4 -q -F -L nova-e2e-snaps -d "$work/snaps" "$work/snaps.ext4" 3G
mkfs.ext4 -q -F -L nova-e2e-root -d "$root" "$work/rootfs.ext4" 6G

mkdir -p "$out"
mv "$work/vmlinuz" "$work/initrd.img" "$work/rootfs.ext4" "$work/snaps.ext4" "$out/"
rm -rf "$work"
date -u +%FT%TZ >"$out/done"
echo "build-image: built $out in $(( $(date +%s) - t0 )) s" >&2
echo "$out"
