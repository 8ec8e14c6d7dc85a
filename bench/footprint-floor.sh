#!/bin/bash
# footprint-floor.sh - build a floor process for bench/footprint: the least a
# process like EXE could be, linked the same way (-pie, -z relro, -z now) with the
# same libraries EXE loads at exec (its DT_NEEDED).
#
#   footprint-floor.sh empty EXE "" OUT        an empty main() that waits for a signal
#   footprint-floor.sh libvirt EXE SOURCE OUT  SOURCE (bench/libvirt-idle-floor.c) with libvirt,
#                                              plus EXE's libraries (EXE loads libvirt later)
set -euo pipefail
(($# == 4)) || { echo "usage: $0 empty|libvirt EXE SOURCE OUT" >&2; exit 2; }
kind=$1 exe=$2 src=$3 out=$4
libs=()
while read -r lib; do
        [[ $lib == libc.so.6 ]] || libs+=("-l:$lib")
done < <(readelf -d "$exe" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
# shellcheck disable=SC2054  # the commas belong to the linker options
flags=(-O2 -fPIE -pie -Wl,-z,relro,-z,now)
case $kind in
empty)
        printf '#include <unistd.h>\nint main(void)\n{\n        for (;;)\n                pause();\n}\n' >"$out.c"
        cc "${flags[@]}" "$out.c" -Wl,--no-as-needed "${libs[@]}" -Wl,--as-needed -o "$out"
        ;;
libvirt)
        # shellcheck disable=SC2046  # pkg-config output is a list of words
        cc "${flags[@]}" -Wall -Wextra "$src" -Wl,--no-as-needed $(pkg-config --libs libvirt) "${libs[@]}" \
                -Wl,--as-needed -o "$out"
        ;;
*)
        echo "$0: unknown kind $kind" >&2
        exit 2
        ;;
esac
