# hooklib.sh - sourced by the hooks in meta/hooks/ (POSIX sh; installed as
# $SNAP/share/nova-hypervisor/hooklib.sh). Placeholder until the hooks land.
