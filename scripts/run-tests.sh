#!/bin/bash
# Run Check test programs one after another, show their output, and add their
# counts to $TALLY_FILE ("passed failed" per line) for make check's total.
# A program that exits non-zero without a Check summary (a crash) counts as
# one failure.
set -uo pipefail
tally=${TALLY_FILE:-/dev/null}
rc=0
for t in "$@"; do
	echo "== $t"
	out=$(mktemp)
	"$t" 2>&1 | tee "$out"
	r=${PIPESTATUS[0]}
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
done
exit $rc
