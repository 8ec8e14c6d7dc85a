#!/bin/bash
# Run Check test programs one after another, show their output, and add their
# counts to $TALLY_FILE ("passed failed" per line) for make check's total.
# A program that exits non-zero without a Check summary (a crash) counts as
# one failure. Each program's wall time is printed after it ("== NAME: N s")
# and, when $TIMES_FILE is set, appended there as "SECONDS NAME" (make check
# sums them up; CI time is planned from these).
set -uo pipefail
tally=${TALLY_FILE:-/dev/null}
times=${TIMES_FILE:-/dev/null}
rc=0
for t in "$@"; do
	echo "== $t"
	out=$(mktemp)
	t0=$(date +%s%N)
	"$t" 2>&1 | tee "$out"
	r=${PIPESTATUS[0]}
	t1=$(date +%s%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	summary=$(grep -E '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$out" | tail -1)
	rm -f "$out"
	if [ -n "$summary" ]; then
		n=$(echo "$summary" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
		f=$(echo "$summary" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
		e=$(echo "$summary" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
		echo "$((n - f - e)) $((f + e))" >>"$tally"
		[ $((f + e)) -gt 0 ] && rc=1
	else
		echo "0 1" >>"$tally"
		rc=1
	fi
	if [ "$r" -ne 0 ]; then
		rc=1
	fi
	echo "== $(basename "$t"): $secs s"
	echo "$secs $(basename "$t")" >>"$times"
done
exit $rc
