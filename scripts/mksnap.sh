#!/bin/bash
# mksnap.sh PRIME OUTDIR - pack the snap offline (no snapcraft, no network):
# PRIME already holds `make install DESTDIR=PRIME PREFIX=`; this adds the
# shared libraries our ELF files need that the core22 base lacks or ships too
# old (scripts/snaplibs.py bundle: PRIME/usr/lib/<triplet>/, the list in
# OUTDIR/snap/bundled-libs.txt), meta/snap.yaml (derived from snapcraft.yaml
# by scripts/snapmeta.py, with the environment snapcraft writes: the
# LD_LIBRARY_PATH that finds those libraries, for apps and hooks alike) and
# meta/hooks/ (snap/hooks/), then checks every NEEDED library resolves in the
# snap or the base (scripts/snaplibs.py check) and packs
# OUTDIR/nova-hypervisor_<version>_amd64.snap with the mksquashfs flags snapd
# expects. Prints the path of the snap.
set -euo pipefail
cd "$(dirname "$0")/.."
prime=${1:?usage: mksnap.sh PRIME OUTDIR}
outdir=${2:?usage: mksnap.sh PRIME OUTDIR}
py=/usr/bin/python3

rm -rf "$prime/meta" "$prime/usr/lib"
mkdir -p "$outdir/snap"
"$py" scripts/snaplibs.py bundle "$prime" >"$outdir/snap/bundled-libs.txt.new"
mv "$outdir/snap/bundled-libs.txt.new" "$outdir/snap/bundled-libs.txt"
echo "mksnap: $(grep -c '^bundled ' "$outdir/snap/bundled-libs.txt" || true) libraries bundled" \
	"($(du -sk "$prime/usr/lib" 2>/dev/null | cut -f1) KiB), list in $outdir/snap/bundled-libs.txt" >&2
mkdir -p "$prime/meta/hooks"
"$py" scripts/snapmeta.py snap-yaml snapcraft.yaml snap/hooks "$prime" >"$prime/meta/snap.yaml"
for h in snap/hooks/*; do
	[ -e "$h" ] || continue
	install -m 0755 "$h" "$prime/meta/hooks/"
done
# Every app's command must be in the snap.
"$py" - "$prime" <<'PY'
import os, sys, yaml
prime = sys.argv[1]
meta = yaml.safe_load(open(os.path.join(prime, "meta/snap.yaml")))
bad = [f"{n}: {a['command']}" for n, a in meta["apps"].items()
       if not os.access(os.path.join(prime, a["command"].split()[0]), os.X_OK)]
if bad:
    sys.exit("mksnap: app commands missing from the snap: " + ", ".join(bad))
PY
"$py" scripts/snaplibs.py check "$prime" >&2
version=$("$py" scripts/snapmeta.py version snapcraft.yaml)
mkdir -p "$outdir"
out="$outdir/nova-hypervisor_${version}_amd64.snap"
rm -f "$out"
mksquashfs "$prime" "$out" -noappend -comp xz -all-root -no-xattrs -no-fragments -quiet >&2
echo "mksnap: $out: $(stat -c %s "$out") bytes" >&2
echo "$out"
