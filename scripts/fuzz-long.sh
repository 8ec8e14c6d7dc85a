#!/bin/bash
# fuzz-long.sh - run each libFuzzer target for a long time (make fuzz-long).
#
#   scripts/fuzz-long.sh SECONDS FUZZER...
#
# For each target fuzz-<name>: it starts from the corpus kept in the tree,
# tests/fuzz/corpus/<name>/, fuzzes for SECONDS into a fresh work dir
# (build/fuzz/long/<name>/), then merges back into the tree corpus only the
# inputs that add edges: libFuzzer's -set_cover_merge=1 with -use_counters=0
# keeps every file already there and adds the fewest new inputs that cover
# every edge the run reached (hit-count variations are not kept, so the corpus
# stays small). It prints, per target, the executions, libFuzzer's
# coverage at the end of the run (cov: edges, ft: features), the coverage of
# the tree corpus before and after (a replay with -runs=0, comparable between
# runs) and the corpus size. FUZZ_LONG_MERGE=0 leaves the tree corpus alone.
# A crash or a failed check stops that target, keeps its input under the work
# dir (crash-*), is reported, and makes the script exit 1 after the others ran.
set -u

seconds=${1:?usage: fuzz-long.sh SECONDS FUZZER...}
shift
merge=${FUZZ_LONG_MERGE:-1}
failed=0
summary=()

# "cov: N ft: M" of the last libFuzzer status line of a log.
cov_of() {
        grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$1" | tail -n 1 | awk '{print $2, $4}'
}

corpus_cov() { # fuzzer corpus -> "cov ft" of replaying the corpus
        local log
        log=$(mktemp)
        "$1" -runs=0 "$2" >"$log" 2>&1
        cov_of "$log"
        rm -f "$log"
}

for f in "$@"; do
        n=$(basename "$f")
        name=${n#fuzz-}
        corpus=tests/fuzz/corpus/$name
        work=$(dirname "$f")/long/$name
        rm -rf "$work"
        mkdir -p "$work/new" "$corpus"
        files0=$(find "$corpus" -type f | wc -l)
        read -r ccov0 cft0 < <(corpus_cov "$f" "$corpus")
        echo "== $n: $seconds s from $files0 inputs in $corpus"
        start=$(date +%s)
        "$f" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/" "$work/new" "$corpus" \
                >"$work/log" 2>&1
        rc=$?
        wall=$(( $(date +%s) - start ))
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
        read -r cov ft < <(cov_of "$work/log")
        if [ "$rc" != 0 ]; then
                failed=1
                echo "fuzzer $n FAILED (exit $rc): $(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null | head -n 3 | tr '\n' ' ')"
                grep -E 'ERROR|check failed|SUMMARY' "$work/log" | head -n 5
        fi
        added=0
        if [ "$merge" = 1 ] && [ "$rc" = 0 ]; then
                "$f" -set_cover_merge=1 -use_counters=0 "$corpus" "$work/new" >"$work/merge.log" 2>&1 ||
                        { failed=1; echo "merge of $n failed: $work/merge.log"; }
                added=$(( $(find "$corpus" -type f | wc -l) - files0 ))
        fi
        files1=$(find "$corpus" -type f | wc -l)
        kib=$(( ($(du -sb "$corpus" | cut -f1) + 1023) / 1024 )) # bytes of the inputs, not blocks
        read -r ccov1 cft1 < <(corpus_cov "$f" "$corpus")
        line=$(printf '%-20s %5s s %11s execs %8s/s  cov %5s ft %6s  corpus cov %5s -> %5s, ft %6s -> %6s  files %4s -> %4s (+%s) %5s KiB%s' \
                "$n" "$wall" "${execs:-?}" "$(( ${execs:-0} / (wall > 0 ? wall : 1) ))" "${cov:-?}" "${ft:-?}" \
                "${ccov0:-?}" "${ccov1:-?}" "${cft0:-?}" "${cft1:-?}" "$files0" "$files1" "$added" "$kib" \
                "$([ "$rc" = 0 ] || echo "  FAILED")")
        echo "$line"
        summary+=("$line")
done

echo "== fuzz-long summary ($seconds s per target; corpus cov: replay of tests/fuzz/corpus/<target> before and after)"
printf '%s\n' "${summary[@]}"
exit $failed
