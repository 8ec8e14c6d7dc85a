#!/bin/bash
# check-layers.sh - prove that the include path of each layer keeps the boundaries
# (called by make check-layers; the Makefile hands each probe the include flags
# its layer's objects are built with).
#
# Each argument: PROBE@FLAGS_VAR@MISSING. PROBE is tests/build/layers/PROBE.c,
# FLAGS_VAR the name of an environment variable holding the compiler command
# with that layer's flags, MISSING empty for a control that must compile, else
# the header the layer must not find: the probe must then fail to compile, and
# for that reason (the header is not found), not for any other.
set -uo pipefail
tally=${TALLY_FILE:-/dev/null}
passed=0 failed=0
for spec in "$@"; do
	IFS=@ read -r probe var missing <<<"$spec"
	src=tests/build/layers/$probe.c
	cc=${!var}
	out=$($cc -fsyntax-only "$src" 2>&1)
	rc=$?
	if [ -z "$missing" ]; then
		if [ $rc -eq 0 ]; then
			echo "layers: ok   $probe compiles (control)"
			passed=$((passed + 1))
		else
			echo "layers: FAIL $probe (control) does not compile:"; echo "$out" | head -5
			failed=$((failed + 1))
		fi
	elif [ $rc -ne 0 ] && grep -q "$missing: No such file or directory" <<<"$out"; then
		echo "layers: ok   $probe fails to build ($missing is not on its layer's include path)"
		passed=$((passed + 1))
	else
		echo "layers: FAIL $probe: expected '$missing: No such file or directory', got rc $rc:"; echo "$out" | head -5
		failed=$((failed + 1))
	fi
done
echo "$passed $failed" >>"$tally"
echo "layers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
