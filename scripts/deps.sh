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
  qemu-system-x86        # qemu-system-x86_64 (software emulation), for test-qemu
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
  openvswitch-switch     # ovsdb-server/ovs-vswitchd for integration tests
  libssl-dev             # TLS; also needed by libopenvswitch
  python3-oslo.privsep   # privsep helper interop
  python3-ovsdbapp       # os-vif's OVSDB library: the ovsdbapp anchor of bench/vif-plug
  iproute2               # ip(8), for tests
  iputils-ping           # ping, for the firewall packet tests
  ethtool                # turning veth checksum offload off in packet tests (OVS userspace datapath)
  iptables               # iptables-restore (nf_tables backend): the anchor of bench/secgroups
  squashfs-tools         # mksquashfs, for building the snap
  dpkg-dev               # dpkg-shlibdeps: scripts/snaplibs.py weighs what our programs need against the base
  python3-yaml           # scripts/snapmeta.py: meta/snap.yaml and the checks derived from snapcraft.yaml
  strace                 # the confinement conformance test traces each module's workload
  autoconf               # OVS build (configure regeneration)
  automake               # OVS build
  libtool                # OVS build (libopenvswitch.la)
  python3-six            # OVS build scripts (IDL generator)
  curl                   # health-check/HTTP tests, and /metrics in test-observe
  pciutils               # lspci: test-observe compares the PCI inventory with it
  ovn-central            # OVN NB/SB schemas, ovn-northd, ovn-nbctl/ovn-sbctl: make run-multihost, test-ovn-multihost
  ovn-host               # ovn-controller, one per "host" in make run-multihost and test-ovn-multihost
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
