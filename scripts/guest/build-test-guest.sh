#!/usr/bin/env bash
# build-test-guest.sh - a real Linux test guest, made offline from Debian packages.
#
#   scripts/guest/build-test-guest.sh     prints the directory that holds
#     vmlinuz      the kernel of linux-image-cloud-amd64 (apt-get download + dpkg-deb -x)
#     initrd.gz    busybox-static + the virtio/isofs/vfat/ata modules + /init below
#     disk.raw     a BIOS-bootable raw disk: one FAT file system on the whole disk (no
#                  partition table), syslinux in its boot sector, vmlinuz + initrd.gz on it;
#                  SeaBIOS boots it as a hard disk. The guest keeps its marker file here.
#     cmdline      the kernel command line for direct kernel boot
#     manifest     versions and sizes
#
# Cached outside the tree (like libopenvswitch) in
# $NOVA_BUILD_CACHE/guest-<hash of this script>/ (default /var/cache/nova-hypervisor-build):
# changing this script (its /init included) makes a new guest; an unchanged one is reused.
# No loop mounts, no root-only tricks beyond apt-get download. Needs: apt-get, dpkg-deb,
# cpio, gzip, syslinux, mtools, dosfstools, modinfo (kmod).
#
# What the guest does (its /init):
#   - loads the modules, finds the drive labelled config-2 (virtio disk or CD-ROM), mounts it;
#   - configures the NIC whose MAC is the first link of network_data.json: MTU, the first
#     static ipv4 network's address/netmask, its default route;
#   - counts its boots in /nova-boots on its FAT disk (when booted from disk) and prints
#     "NOVA-GUEST disk boots=<n>";
#   - prints "NOVA-GUEST uuid=<uuid> ip=<address> dev=<nic> mtu=<its MTU> up=<seconds since
#     the kernel started>" (uuid from meta_data.json) on ttyS0;
#   - answers ping (the kernel) and serves HTTP on port 80 (busybox httpd: /index.html holds
#     the uuid) and a TCP echo of the uuid on port 7 (busybox nc);
#   - on a config-2 problem prints "NOVA-GUEST error=<what>";
#   - honours the ACPI power button (what libvirt's virDomainShutdown presses): busybox acpid
#     runs /etc/acpi/PWRF/00000080, which prints "NOVA-GUEST poweroff", syncs and powers off, so a
#     graceful stop ends with the guest's own power-off instead of the grace period's destroy.
set -euo pipefail

self=$(readlink -f "${BASH_SOURCE[0]}")
cache_root=${NOVA_BUILD_CACHE:-/var/cache/nova-hypervisor-build}
hash=$(sha256sum "$self" | cut -c1-12)
out=$cache_root/guest-$hash
if [[ -f $out/manifest ]]; then
	echo "$out"
	exit 0
fi

log() { echo "build-test-guest: $*" >&2; }
mkdir -p "$cache_root"
work=$(mktemp -d "$cache_root/.guest-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# ---- packages ----
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[[ -n $kpkg ]] || { log "cannot resolve linux-image-cloud-amd64 (apt-get update?)"; exit 1; }
# The .debs are kept in $cache_root/debs: a changed script rebuilds without the network.
debs=$cache_root/debs
mkdir -p "$debs"
fetch() { # package -> path of its .deb (the candidate version)
	local ver file
	ver=$(apt-cache policy "$1" | awk '/Candidate:/ {print $2}')
	file=$(ls "$debs/$1"_"${ver//:/%3a}"_*.deb 2>/dev/null | head -n 1 || true)
	if [[ -z $file ]]; then
		log "downloading $1 $ver"
		(cd "$debs" && apt-get download "$1" 2>&1 | grep -v "^W: Download is performed unsandboxed") >&2 || true
		file=$(ls "$debs/$1"_"${ver//:/%3a}"_*.deb 2>/dev/null | head -n 1 || true)
	fi
	[[ -n $file ]] || { log "no .deb of $1 $ver"; return 1; }
	echo "$file"
}
kdeb=$(fetch "$kpkg")
bbdeb=$(fetch busybox-static)
dpkg-deb -x "$kdeb" kernel
dpkg-deb -x "$bbdeb" bb
kver=$(ls kernel/lib/modules)
moddir=kernel/lib/modules/$kver/kernel
cp "kernel/boot/vmlinuz-$kver" vmlinuz

# ---- initramfs ----
# Modules the guest needs, in dependency order (modinfo -F depends of each .ko).
# The CD-ROM drivers (ata_piix, sr_mod) are loaded only when no virtio disk carries the
# config drive: probing the IDE channels costs about a second under TCG.
wanted=(virtio_pci virtio_net virtio_blk isofs vfat nls_cp437 nls_iso8859-1 nls_ascii button evdev)
wanted_cdrom=(ata_piix sr_mod)
declare -A ko_path=() done_mod=()
while IFS= read -r f; do
	n=$(basename "$f" .ko)
	ko_path[${n//-/_}]=$f
done < <(find "$moddir" -name '*.ko')
order=()
add_module() {
	local m=${1//-/_} dep
	[[ -n ${done_mod[$m]:-} ]] && return 0
	done_mod[$m]=1
	[[ -n ${ko_path[$m]:-} ]] || { log "module $1 not found (built in?)"; return 0; }
	for dep in $(modinfo -F depends "${ko_path[$m]}" | tr ',' ' '); do
		add_module "$dep"
	done
	order+=("$m")
}
for m in "${wanted[@]}"; do add_module "$m"; done
n_core=${#order[@]}
for m in "${wanted_cdrom[@]}"; do add_module "$m"; done

root=initramfs
mkdir -p $root/{bin,dev,proc,sys,mnt/config,mnt/disk,www,lib/modules,etc/acpi/PWRF}
cp bb/bin/busybox $root/bin/busybox
for m in "${order[@]}"; do
	cp "${ko_path[$m]}" "$root/lib/modules/$m.ko"
done
printf '%s\n' "${order[@]:0:n_core}" > $root/lib/modules/order
printf '%s\n' "${order[@]:n_core}" > $root/lib/modules/order.cdrom

# The power button's action (busybox acpid maps KEY_POWER to PWRF/00000080 under its -c directory).
# The disk marker's file system is not mounted after boot, so a sync is all a clean power-off needs.
cat > $root/etc/acpi/PWRF/00000080 <<'PWRF'
#!/bin/busybox sh
echo "NOVA-GUEST poweroff" > /dev/ttyS0
sync
poweroff -f
PWRF
chmod 755 $root/etc/acpi/PWRF/00000080

cat > $root/init <<'INIT'
#!/bin/busybox sh
# The nova-hypervisor test guest's init (PID 1). See build-test-guest.sh.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko 2>/dev/null; done
ifconfig lo 127.0.0.1 up
say() { echo "NOVA-GUEST $*" > /dev/ttyS0; }

# The config drive: the block device whose ISO 9660 volume id (byte 32808) is config-2.
# Virtio disks first; then the CD-ROM drivers and their devices.
find_config() {
	for d in "$@"; do
		[ -b "$d" ] || continue
		[ "$(dd if=$d bs=1 skip=32808 count=8 2>/dev/null)" = config-2 ] && { echo $d; return 0; }
	done
	return 1
}
cd_dev=$(find_config /dev/vd?)
if [ -z "$cd_dev" ]; then
	for m in $(cat /lib/modules/order.cdrom); do insmod /lib/modules/$m.ko 2>/dev/null; done
	i=0
	while [ -z "$cd_dev" ] && [ $i -lt 100 ]; do
		cd_dev=$(find_config /dev/sr? /dev/vd?) || { sleep 0.05; i=$((i + 1)); }
	done
fi
if [ -z "$cd_dev" ] || ! mount -t iso9660 -o ro "$cd_dev" /mnt/config; then
	say "error=no-config-drive"
else
	meta=/mnt/config/openstack/latest/meta_data.json
	net=/mnt/config/openstack/latest/network_data.json
	# One JSON object per line: split at braces and brackets.
	split() { sed -e 's/[][{}]/\n/g' "$1"; }
	field() { sed -n "s/.*\"$1\": *\"\\{0,1\\}\\([^\",]*\\).*/\\1/p" | head -n 1; }
	uuid=$(tr -d '\n' < $meta | sed -e 's/"keys":.*//' | field uuid)
	link=$(split $net | grep '"ethernet_mac_address"' | head -n 1)
	mac=$(echo "$link" | field ethernet_mac_address)
	mtu=$(echo "$link" | field mtu)
	link_id=$(echo "$link" | field id)
	v4=$(split $net | grep -A1 '"type": *"ipv4"' | tr -d '\n')
	ip=$(echo "$v4" | field ip_address)
	mask=$(echo "$v4" | field netmask)
	gw=$(echo "$v4" | field gateway)
	dev=
	for n in /sys/class/net/*; do
		[ "$(cat $n/address)" = "$mac" ] && dev=${n##*/}
	done
	if [ -z "$dev" ]; then
		say "error=no-nic-with-mac-$mac"
	else
		ifconfig $dev mtu ${mtu:-1500} $ip netmask $mask up
		[ -n "$gw" ] && route add default gw $gw dev $dev
	fi
	echo "$uuid" > /www/index.html
fi

# The disk marker: the FAT file system this guest booted from (not there under direct
# kernel boot without a disk).
boots=
for d in /dev/vda; do
	[ -b $d ] && mount -t vfat -o rw,sync $d /mnt/disk 2>/dev/null || continue
	if [ -f /mnt/disk/syslinux.cfg ]; then
		boots=$(cat /mnt/disk/nova-boots 2>/dev/null || echo 0)
		boots=$((boots + 1))
		echo $boots > /mnt/disk/nova-boots
		sync
	fi
	umount /mnt/disk
done
[ -n "$boots" ] && say "disk boots=$boots"
httpd -p 80 -h /www
# the ACPI power button (button.ko makes its input device, evdev.ko its /dev/input/event*)
acpid -c /etc/acpi -l /dev/null
(while :; do nc -l -p 7 -e cat /www/index.html 2>/dev/null || sleep 1; done) &
say "uuid=$uuid ip=$ip dev=$dev mtu=$(cat /sys/class/net/$dev/mtu 2>/dev/null) up=$(cut -d' ' -f1 /proc/uptime)"
while :; do sleep 3600; done
INIT
chmod 755 $root/init
(cd $root && find . | cpio -o -H newc --quiet | gzip -9) > initrd.gz

# ---- the bootable disk ----
# tsc=reliable: no clocksource watchdog re-checks under TCG; mitigations=off: a test guest.
echo "console=ttyS0 quiet panic=-1 tsc=reliable mitigations=off" > cmdline
mkfs.vfat -C -n NOVAGUEST disk.raw 32768 >/dev/null   # 32 MiB, FAT16, whole disk
cat > syslinux.cfg <<CFG
SERIAL 0 115200
DEFAULT nova
PROMPT 0
TIMEOUT 0
LABEL nova
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND $(cat cmdline)
CFG
mcopy -i disk.raw vmlinuz initrd.gz syslinux.cfg ::/
syslinux --install disk.raw

{
	echo "kernel $kpkg $kver $(stat -c %s vmlinuz)"
	echo "busybox $(dpkg-deb -f "$bbdeb" Version)"
	echo "modules ${order[*]}"
	echo "initrd.gz $(stat -c %s initrd.gz)"
	echo "disk.raw $(stat -c %s disk.raw) (allocated $(du -k disk.raw | cut -f1) KiB)"
} > manifest
mkdir -p "$work/out"
mv vmlinuz initrd.gz disk.raw cmdline manifest "$work/out/"
if ! mv -T "$work/out" "$out" 2>/dev/null; then
	[[ -f $out/manifest ]] || { log "cannot create $out"; exit 1; }
fi
log "built $out"
echo "$out"
