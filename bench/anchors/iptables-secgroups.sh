#!/bin/bash
# iptables-secgroups.sh - the anchor of bench/secgroups: security groups the
# way neutron's iptables_hybrid firewall driver loads them, with
# iptables-restore (Debian's iptables, nf_tables backend) into a scratch
# network namespace.
#
# Ruleset (the shape of the driver's per-port ingress chains): one chain per
# port, nh-i<port as 8 hex digits>, entered from FORWARD by the port's bridge
# (-o qbr<8 hex digits>), holding
#     -m state --state RELATED,ESTABLISHED -j RETURN
#     -m state --state INVALID -j DROP
#     RULES-3 rules: -s 10.<r mod 250>.0.0/16 -p tcp -m tcp --dport <1000+r> -j RETURN  (r = 1..RULES-3)
#     -j DROP
# i.e. RULES rules per port; ports are numbered 1..PORTS.
#
# Two timings, each the wall clock of `ip netns exec NS iptables-restore < FILE`
# (process start included, as neutron pays it, without rootwrap/privsep):
#   full      the whole ruleset into the empty namespace
#   one-port  port 7's chain (port PORTS when PORTS < 7) rewritten with changed
#             rules (dports 2001.. instead of 1001..) by iptables-restore --noflush,
#             all PORTS ports in place
#
#   bash bench/anchors/iptables-secgroups.sh [PORTS] [RULES]     (root; defaults 1000 20)
#
# Prints:
#   iptables-restore full: ports=P rules/port=R lines=L seconds=S
#   iptables-restore one-port replace (noflush): seconds=S
# The namespace is iptbench<pid of this shell> (bench/secgroups relies on that
# name to clean up after a killed run); it and the temp files ($TMPDIR) are
# removed on exit.
set -euo pipefail
export LC_ALL=C   # EPOCHREALTIME's decimal point

ports=${1:-1000}
rules=${2:-20}
if [[ ! $ports =~ ^[1-9][0-9]{0,5}$ || ! $rules =~ ^[1-9][0-9]{0,2}$ ]] || ((rules < 3 || rules > 250)); then
        echo "usage: $0 [PORTS (1..999999)] [RULES (3..250)]" >&2
        exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
        echo "iptables-secgroups: must be run as root (network namespace, iptables)" >&2
        exit 1
fi
command -v iptables-restore >/dev/null || {
        echo "iptables-secgroups: iptables-restore not found (make deps installs iptables)" >&2
        exit 1
}

ns=iptbench$$
full=$(mktemp)
one=$(mktemp)
cleanup() {
        ip netns delete "$ns" 2>/dev/null || true
        rm -f "$full" "$one"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
ip netns add "$ns"

# ruleset FIRST LAST DPORT_BASE JUMPS: an iptables-restore file for ports
# FIRST..LAST; JUMPS=1 adds the FORWARD jumps (the full load), 0 leaves them
# (a --noflush rewrite of chains that exist: declaring a chain flushes it).
ruleset() {
        awk -v first="$1" -v last="$2" -v base="$3" -v jumps="$4" -v rules="$rules" 'BEGIN {
                print "*filter"
                for (p = first; p <= last; p++)
                        printf ":nh-i%08x - [0:0]\n", p
                for (p = first; p <= last; p++) {
                        chain = sprintf("nh-i%08x", p)
                        if (jumps)
                                printf "-A FORWARD -o qbr%08x -j %s\n", p, chain
                        printf "-A %s -m state --state RELATED,ESTABLISHED -j RETURN\n", chain
                        printf "-A %s -m state --state INVALID -j DROP\n", chain
                        for (r = 1; r <= rules - 3; r++)
                                printf "-A %s -s 10.%d.0.0/16 -p tcp -m tcp --dport %d -j RETURN\n", chain, r % 250, base + r
                        printf "-A %s -j DROP\n", chain
                }
                print "COMMIT"
        }'
}
ruleset 1 "$ports" 1000 1 >"$full"
changed=$((ports < 7 ? ports : 7))
ruleset "$changed" "$changed" 2000 0 >"$one"

# timed LABEL IPTABLES-RESTORE-ARGS... < FILE: seconds of wall clock (bash's
# EPOCHREALTIME, no helper process inside the interval) into $seconds.
timed() {
        local start end
        start=$EPOCHREALTIME
        ip netns exec "$ns" iptables-restore "$@"
        end=$EPOCHREALTIME
        seconds=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.6f", e - s }')
}
seconds=
timed <"$full"
echo "iptables-restore full: ports=$ports rules/port=$rules lines=$(wc -l <"$full") seconds=$seconds"
timed --noflush <"$one"
echo "iptables-restore one-port replace (noflush): seconds=$seconds"
# the rewrite must have landed: port $changed's chain has the new dports (2001..) and none of the old (1001..)
listing=$(ip netns exec "$ns" iptables -S "$(printf 'nh-i%08x' "$changed")")
new=$(grep -c -- '--dport 2' <<<"$listing" || true)
old=$(grep -c -- '--dport 1' <<<"$listing" || true)
if ((new != rules - 3 || old != 0)); then
        echo "iptables-secgroups: the one-port rewrite is not in the kernel ($new of $((rules - 3)) new rules, $old old)" >&2
        exit 1
fi
