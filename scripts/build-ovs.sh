#!/usr/bin/env bash
# Make libopenvswitch available to the build.
#
# If pkg-config knows libopenvswitch (e.g. Ubuntu's libopenvswitch-dev) there is
# nothing to do.  Otherwise build the static library from Debian's
# openvswitch-source tarball into a cache OUTSIDE the work tree:
#   ${NOVA_BUILD_CACHE:-/var/cache/nova-hypervisor-build}/ovs-<source version>/
#     src/        extracted + built OVS tree (config.h, lib/.libs/libopenvswitch.a)
#     flags.mk    OVS_CFLAGS / OVS_LIBS for make (read by mk/ovs.mk)
#     build.log   configure/make output of the last build
#     built.stamp written last, only after success; its presence is the cache hit
#     .lock       flock(1) lock so concurrent runs do not collide
# The cache dir path is printed as the last line of stdout.
set -euo pipefail

# Bump when the configure options or layout below change, so old caches rebuild.
RECIPE=2
TARBALL=/usr/src/openvswitch/openvswitch.tar.gz

# The cache is keyed on the OVS version only, so the build must not depend on
# the caller's environment.  Run from a make recipe (mk/ovs.mk), the parent
# make's flags and command-line variables (e.g. `make CFLAGS=-O0`, -n, -k,
# --print-directory) would otherwise leak into OVS's configure and make.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES \
  CC CPP CFLAGS CPPFLAGS LDFLAGS LIBS

if pkg-config --exists libopenvswitch 2>/dev/null; then
  echo "build-ovs: libopenvswitch found by pkg-config ($(pkg-config --modversion libopenvswitch)), nothing to build"
  exit 0
fi

version=$(dpkg-query -W -f='${Version}' openvswitch-source 2>/dev/null || true)
if [[ -z $version || ! -f $TARBALL ]]; then
  echo "build-ovs: openvswitch-source is not installed ($TARBALL missing); run: sudo bash scripts/deps.sh" >&2
  exit 1
fi

# Keep the name make-safe: an epoch's ':' would break make targets (mk/ovs.mk does the same).
cache=${NOVA_BUILD_CACHE:-/var/cache/nova-hypervisor-build}/ovs-${version//:/_}
stamp=$cache/built.stamp
want="recipe=$RECIPE version=$version"

stamp_ok() {
  local have=
  [[ -f $stamp ]] && read -r have <"$stamp" && [[ $have == "$want" ]]
}

# Cache hit: no lock, no forks beyond the two look-ups above.
if stamp_ok; then
  # mk/ovs.mk makes the stamp depend on this script (so a RECIPE bump rebuilds);
  # after a checkout merely touched the script, refresh the stamp's mtime so
  # make does not rerun us on every invocation.
  if [[ ${BASH_SOURCE[0]} -nt $stamp ]]; then touch "$stamp" 2>/dev/null || true; fi
  echo "build-ovs: cache hit"
  echo "$cache"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
if ! flock -n 9; then
  echo "build-ovs: another build holds $cache/.lock, waiting"
  flock 9
fi
# Another run may have finished the build while we waited.
if stamp_ok; then
  echo "build-ovs: cache hit (built by a concurrent run)"
  echo "$cache"
  exit 0
fi

src=$cache/src
log=$cache/build.log
start=$SECONDS

fail() {
  echo "build-ovs: FAILED: $1 (last lines of $log follow)" >&2
  tail -n 30 "$log" >&2 || true
  exit 1
}

echo "build-ovs: building libopenvswitch $version into $cache (log: $log)"
# Start from scratch: a previous failed run may have left a half-built tree.
rm -rf "$src" "$stamp" "$cache/flags.mk"
: >"$log"
mkdir -p "$src"

echo "build-ovs: extracting $TARBALL"
tar -xzf "$TARBALL" -C "$src" --strip-components=1 >>"$log" 2>&1 || fail "extract"
cd "$src"

echo "build-ovs: configure"
# Static only, no DPDK/AF_XDP/USDT; keep the defaults for SSL and libcap-ng.
./configure --enable-static --disable-shared --disable-dependency-tracking \
  --without-dpdk --disable-afxdp --disable-usdt-probes >>"$log" 2>&1 || fail "configure"

# BUILT_SOURCES (generated headers such as include/odp-netlink.h and
# lib/vswitch-idl.h) must exist before any object is compiled.  Ask make itself
# for the variable's value instead of parsing the Makefile.
# shellcheck disable=SC2016  # $(BUILT_SOURCES) is for make, not the shell
built_sources=$(printf 'nova-print-built-sources:\n\t@echo $(BUILT_SOURCES)\n' |
  make -s --no-print-directory -f Makefile -f - nova-print-built-sources 2>>"$log") || fail "reading BUILT_SOURCES"
echo "build-ovs: make BUILT_SOURCES ($(wc -w <<<"$built_sources") files)"
# shellcheck disable=SC2086  # word splitting intended: a list of targets
make -j2 $built_sources >>"$log" 2>&1 || fail "make BUILT_SOURCES"

echo "build-ovs: make lib/libopenvswitch.la"
make -j2 lib/libopenvswitch.la >>"$log" 2>&1 || fail "make lib/libopenvswitch.la"

# The libraries libopenvswitch.a needs are recorded by libtool in the .la file
# (on Debian 12: the internal libopenvswitchavx512.la, -lssl -lcrypto -lcap-ng
# -latomic -lm; no -lpthread/-lrt since glibc 2.34).  Internal .la entries are
# libtool archives the plain linker cannot read: use the .a libtool built.
dep_libs=
# shellcheck disable=SC2013  # the value is one line of words
for word in $(sed -n "s/^dependency_libs='\(.*\)'$/\1/p" lib/libopenvswitch.la); do
  if [[ $word == *.la ]]; then
    word=$(dirname "$word")/.libs/$(basename "$word" .la).a
    [[ -f $word ]] || fail "missing $word (listed in lib/libopenvswitch.la)"
  fi
  dep_libs+=" $word"
done

{
  echo "# Generated by scripts/build-ovs.sh for openvswitch-source $version; do not edit."
  echo "OVS_CFLAGS := -I$src -I$src/include -I$src/lib"
  echo "OVS_LIBS := $src/lib/.libs/libopenvswitch.a$dep_libs"
} >"$cache/flags.mk.tmp"
mv "$cache/flags.mk.tmp" "$cache/flags.mk"

echo "$want" >"$stamp.tmp"
mv "$stamp.tmp" "$stamp"
echo "build-ovs: done in $((SECONDS - start))s"
echo "$cache"
