#!/usr/bin/env bash
# Install every Debian package nova-hypervisor needs to build, test and package.
# Idempotent and fast: apt is only touched when something is actually missing.
set -euo pipefail

PACKAGES=(
  build-essential        # gcc, make, libc headers
  pkg-config             # locating libraries' cflags/libs
  clang                  # sanitizer and fuzz builds
  libclang-rt-14-dev     # clang runtime for ASan/UBSan/libFuzzer
  check                  # unit test framework
  libvirt-dev            # libvirt API for domain management
  libvirt-clients        # virsh, for integration tests
  libvirt-daemon-driver-qemu # libvirt's QEMU driver, run in-process as qemu:///embed by test-qemu
  qemu-system-x86        # qemu-system-x86_64 (software emulation): test-qemu, the test guest of make run and the tests
  libnl-3-dev            # netlink core
  libnl-route-3-dev      # netlink route (links, addresses)
  libcap-ng-dev          # dropping capabilities
  libcap-ng-utils        # pscap/captest for checking capabilities
  libjson-c-dev          # JSON parsing/serialisation
  libsystemd-dev         # sd_notify / journal integration
  libnftables-dev        # programmatic nftables rules (skeletons, listings)
  libnftnl-dev           # nftables netlink batches (ports and groups)
  libmnl-dev             # netlink sockets (bench/secgroups-client: the kernel floor)
  nftables               # nft CLI for tests
  openvswitch-source     # OVS source tarball, built by scripts/build-ovs.sh
  openvswitch-switch     # ovsdb-server/ovs-vswitchd for integration tests and bench/vif-plug (its anchors: ovs-vsctl)
  libssl-dev             # TLS; also needed by libopenvswitch
  python3-oslo.privsep   # privsep helper interop; the anchor of bench/privsep-rtt (bench/anchors/oslo-privsep-rtt.py)
  python3-ovsdbapp       # os-vif's OVSDB library: the ovsdbapp anchor of bench/vif-plug (bench/anchors/ovsdbapp-ports.py)
  iproute2               # ip(8), for tests
  iputils-ping           # ping, for the firewall packet tests and make run (the guest behind its group)
  ethtool                # turning veth checksum offload off in packet tests and make run (OVS userspace datapath)
  iptables               # iptables-restore (nf_tables backend): the anchor of bench/secgroups (bench/anchors/iptables-secgroups.sh)
  squashfs-tools         # mksquashfs, for building the snap
  dpkg-dev               # dpkg-shlibdeps: scripts/snaplibs.py weighs what our programs need against the base
  python3-yaml           # scripts/snapmeta.py: meta/snap.yaml and the checks derived from snapcraft.yaml
  strace                 # the confinement conformance test traces each module's workload
  autoconf               # OVS build (configure regeneration)
  automake               # OVS build
  libtool                # OVS build (libopenvswitch.la)
  python3-six            # OVS build scripts (IDL generator)
  curl                   # health-check/HTTP tests, /metrics in test-observe, the guest's httpd in make run
  pciutils               # lspci: test-observe compares the PCI inventory with it
  ovn-central            # OVN NB/SB schemas, ovn-northd, ovn-nbctl/ovn-sbctl: make run-multihost, test-ovn-multihost
  ovn-host               # ovn-controller, one per "host" in make run-multihost and test-ovn-multihost
  qemu-utils             # qemu-img: libvirt's storage driver needs it for qcow2 volumes; image-inspect tests make fixtures with it
  libisofs-dev           # config drive writer: ISO 9660 + Rock Ridge + Joliet, written to memory/callback
  genisoimage            # isoinfo: test-config-drive reads the drive back with a real reader
  libvirt-daemon         # libvirtd + the storage driver (dir pools, streams): the private libvirtd of make run and the tests
  busybox-static         # the test guest's userland (scripts/guest/build-test-guest.sh)
  cpio                   # packing the test guest's initramfs
  syslinux               # the test guest's BIOS boot loader on its FAT disk (no loop mounts)
  syslinux-common        # syslinux's mbr.bin and ldlinux.c32
  mtools                 # mcopy/mmd: files into the test guest's FAT image without mounting it
  dosfstools             # mkfs.vfat -C: the test guest's FAT file systems
  kmod                   # modinfo: the test guest's module dependency order (not in minimal images)
  libcurl4-openssl-dev   # the core's HTTP client to OpenStack Placement and Keystone (TLS, proxies, timeouts)
  python3-placement      # a real placement-api (wsgiref, sqlite, noauth2) for test-placement
  python3-keystone       # keystone-manage and keystone-wsgi-public (sqlite, fernet) for test-placement's keystone
                         # tests; the `keystone` package adds only uwsgi/dbconfig service wiring we do not need
)

if [[ ${EUID:-$(id -u)} -ne 0 ]]; then
  echo "deps.sh: must be run as root (try: sudo bash scripts/deps.sh)" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ $status == "install ok installed" ]]; then
    :
  else
    echo "deps: missing  $pkg"
    missing+=("$pkg")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps: all ${#PACKAGES[@]} packages already installed, nothing to do"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps: running apt-get update"
apt-get update -q
echo "deps: installing ${missing[*]}"
apt-get install -y --no-install-recommends "${missing[@]}"
echo "deps: installed ${#missing[@]} package(s)"
