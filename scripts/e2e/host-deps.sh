#!/usr/bin/env bash
# host-deps.sh - install what `make e2e` needs on this (Debian) host, the way
# scripts/deps.sh does for the build: idempotent, apt is only touched when a
# package is missing.
set -euo pipefail

PACKAGES=(
  debootstrap            # the guest tree and the stand-in core22 base (scripts/base/mkbase.sh)
  e2fsprogs              # mkfs.ext4 -d (guest, snaps and scenario disks), debugfs (reading results back)
  squashfs-tools         # mksquashfs for the stand-in snapd and core22 snaps
  qemu-system-x86        # qemu-system-x86_64 boots the guest
)

if [[ ${EUID:-$(id -u)} -ne 0 ]]; then
  echo "e2e host-deps: must be run as root" >&2
  exit 1
fi
missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "e2e host-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
