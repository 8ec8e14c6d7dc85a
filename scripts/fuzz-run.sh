#!/bin/bash
# fuzz-run.sh - make fuzz-run (part of make check): each libFuzzer target for SECONDS from its corpus
# in the tree, JOBS targets at a time (a target is one single-threaded process bound by its time,
# so on N cores N of them take the wall time of one and each still gets a core).
#
#   bash scripts/fuzz-run.sh JOBS SECONDS WORKDIR TALLY TIMES TARGET...
#
# Per target: its libFuzzer summary lines, printed whole when it ends (never interleaved with
# another's); "1 0" (passed) or "0 1" (failed) appended to TALLY and "SECONDS NAME" to TIMES, as
# scripts/run-tests.sh does for the test programs. Exit 1 if any target failed (all are run).
set -uo pipefail

if [[ $# -lt 5 ]]; then
	echo "usage: fuzz-run.sh JOBS SECONDS WORKDIR TALLY TIMES TARGET..." >&2
	exit 2
fi
jobs=$1 seconds=$2 work=$3 tally=$4 times=$5
shift 5
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "fuzz-run.sh: JOBS must be a positive number, not '$jobs'" >&2; exit 2; }
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "fuzz-run.sh: SECONDS must be a positive number, not '$seconds'" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$work" || exit 1

# one target: run it, keep its summary lines, record the verdict and the time
run_one() {
	local f=$1 n corpus t0 rc
	n=$(basename "$f")
	corpus=$root/tests/fuzz/corpus/${n#fuzz-}
	mkdir -p "$work/work-$n" || return 1
	t0=$(date +%s%N)
	{
		echo "== $n ($seconds s)"
		"$f" -max_total_time="$seconds" -print_final_stats=1 "$work/work-$n" "$corpus" > "$work/$n.log" 2>&1
		rc=$?
		grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" "$work/$n.log"
		if [[ $rc -ne 0 ]]; then
			echo "fuzzer $n failed (exit $rc); its whole output: $work/$n.log"
			echo "0 1" >> "$tally"
		else
			echo "1 0" >> "$tally"
		fi
		awk -v a="$t0" -v b="$(date +%s%N)" -v n="$n" 'BEGIN {printf "%.1f %s\n", (b - a) / 1e9, n}' >> "$times"
	} > "$work/$n.summary" 2>&1
	cat "$work/$n.summary"
	return "$rc"
}

failed=0
running=0
for f in "$@"; do
	if [[ $running -ge $jobs ]]; then
		wait -n || failed=1
		running=$((running - 1))
	fi
	run_one "$f" &
	running=$((running + 1))
done
while [[ $running -gt 0 ]]; do
	wait -n || failed=1
	running=$((running - 1))
done
exit "$failed"
