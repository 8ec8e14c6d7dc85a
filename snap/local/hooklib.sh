# hooklib.sh - sourced by the hooks in meta/hooks/ (POSIX sh), installed as
# $SNAP/share/nova-hypervisor/hooklib.sh. Services are controlled only through
# snapctl (start --enable, stop --disable, restart); the core is told through
# its API with the snap's own CLI. The module apps are named after their plugs
# and the plug list is the daemon's own table (`nova-hypervisor plug names`).

NOVA_SNAP="${SNAP_INSTANCE_NAME:-${SNAP_NAME:-nova-hypervisor}}"
NOVA_CLI="$SNAP/bin/nova-hypervisor"
NOVA_CONF="$SNAP_DATA/nova-hypervisor.conf"

log() {
        echo "nova-hypervisor $HOOK_NAME: $*" >&2
}

# Is $1 one of the lines of $2?
in_list() {
        case "
$2
" in
        *"
$1
"*) return 0 ;;
        esac
        return 1
}

module_plugs() {
        "$NOVA_CLI" plug names
}

# Tell the core to re-read the plug set; it reads it at start anyway, so a
# core that is not running (yet) is not an error.
tell_core_refresh() {
        "$NOVA_CLI" plug refresh >/dev/null 2>&1 || log "core not reachable; it reads the plugs when it starts"
}

# The connected plugs of ours, one per line. Older snapd (Debian 12's 2.57,
# the e2e guest's) has no --list ("unknown flag"): ask plug by plug there.
connected_plugs() {
        snapctl is-connected --list 2>/dev/null && return 0
        for plug in $(module_plugs); do
                if snapctl is-connected "$plug"; then
                        echo "$plug"
                elif [ $? -ne 1 ]; then
                        log "snapctl is-connected $plug failed"
                        return 1
                fi
        done
}

# install, post-refresh: enable and start exactly the module apps whose plugs
# are connected, stop and disable the others.
align_modules() {
        connected=$(connected_plugs) || return 1
        for plug in $(module_plugs); do
                if in_list "$plug" "$connected"; then
                        snapctl start --enable "$NOVA_SNAP.$plug"
                else
                        snapctl stop --disable "$NOVA_SNAP.$plug"
                fi
        done
}

# connect-plug-<plug>: enable and restart that module's app (a restart: new
# seccomp rules reach only a new process), then tell the core.
plug_connected() {
        snapctl start --enable "$NOVA_SNAP.$1"
        snapctl restart "$NOVA_SNAP.$1"
        tell_core_refresh
}

# disconnect-plug-<plug>: stop and disable the app, tell the core. snapctl
# is-connected still says connected while this hook runs, so the core is
# told the plug is going rather than asked to re-read.
plug_disconnected() {
        snapctl stop --disable "$NOVA_SNAP.$1"
        "$NOVA_CLI" plug disconnecting "$1" >/dev/null 2>&1 ||
                log "core not reachable; it reads the plugs when it starts"
}

# The apps that read a config key (snap spelling). The core reads everything.
key_consumers() {
        case "$1" in
        libvirt-uri) echo libvirt ;;
        ovsdb-socket | integration-bridge | bridge-create | bridge-datapath-type) echo openvswitch ;;
        port-timeout-ms | ovn | ovn-wait-ms | ovn-timeout-policy) echo "nova-compute openvswitch" ;;
        log-level) echo "nova-compute $(module_plugs)" ;;
        *) echo nova-compute ;;
        esac
}

# "key = value" of a config file -> "key value" lines in snap spelling.
conf_pairs() {
        [ -f "$1" ] || return 0
        while IFS= read -r line; do
                case "$line" in
                "" | "#"*) continue ;;
                esac
                key=${line%% = *}
                echo "$(echo "$key" | tr _ -) ${line#* = }"
        done <"$1"
}

# configure: validate every key; refuse (non-zero, message naming the key,
# nothing written or restarted) or write the config file atomically and
# restart only the apps that read a key whose value changed.
configure() {
        # the configuration may hold secrets (keystone-password, ...): only root reads it
        umask 077
        new="$NOVA_CONF.new"
        # snapd refuses `get -d` without keys ("get which option?"): name them all
        keys=$("$NOVA_CLI" config-check --keys) || return 1
        # shellcheck disable=SC2086 # one word per key
        snapctl get -d $keys >"$SNAP_DATA/snap-config.json" || {
                log "snapctl get -d failed"
                return 1
        }
        if ! "$NOVA_CLI" config-check <"$SNAP_DATA/snap-config.json" >"$new" 2>"$SNAP_DATA/config-check.err"; then
                msg=$(cat "$SNAP_DATA/config-check.err")
                rm -f "$new" "$SNAP_DATA/config-check.err" "$SNAP_DATA/snap-config.json"
                echo "${msg#error: }" >&2
                return 1
        fi
        rm -f "$SNAP_DATA/config-check.err" "$SNAP_DATA/snap-config.json"
        old_pairs=$(conf_pairs "$NOVA_CONF")
        new_pairs=$(conf_pairs "$new")
        changed=""
        for pair in $(printf '%s\n%s\n' "$old_pairs" "$new_pairs" | cut -d' ' -f1 | sort -u); do
                o=$(printf '%s\n' "$old_pairs" | grep "^$pair " || true)
                n=$(printf '%s\n' "$new_pairs" | grep "^$pair " || true)
                [ "$o" = "$n" ] || changed="$changed $pair"
        done
        mv -f "$new" "$NOVA_CONF"
        [ -n "$changed" ] || return 0
        apps=""
        for key in $changed; do
                for app in $(key_consumers "$key"); do
                        in_list "$app" "$apps" || apps="$apps
$app"
                done
        done
        connected=$(connected_plugs) || {
                log "cannot tell which plugs are connected; restarting only what is not a module app"
                connected=
        }
        for app in $apps; do
                # A module app whose plug is not connected is stopped and stays so.
                if [ "$app" != nova-compute ] && ! in_list "$app" "$connected"; then
                        continue
                fi
                log "restarting $app (changed:$changed)"
                snapctl restart "$NOVA_SNAP.$app"
        done
}

# remove: run the core with its modules (the services are stopped: it starts
# the connected plugs' modules itself, asking snapctl which), delete every instance through the
# normal path, stop it, then drop our nftables tables. The core's store is in
# $SNAP_COMMON/$SNAP_DATA, which snapd deletes after this hook.
purge_host() {
        sock="$SNAP_DATA/run/remove-hook.socket"
        connected=$(connected_plugs) || connected=
        conf=
        [ -f "$NOVA_CONF" ] && conf="--config $NOVA_CONF"
        # shellcheck disable=SC2086 # optional --config FILE
        "$SNAP/bin/nova-compute" $conf --spawn-modules --api-socket "$sock" &
        core=$!
        # up, and no connected plug's module still starting
        i=0
        until out=$("$NOVA_CLI" --socket "$sock" status 2>/dev/null) &&
                ! echo "$out" | grep -Eq '^[a-z-]+ +yes +(starting|backoff)'; do
                i=$((i + 1))
                if [ $i -gt 150 ] || ! kill -0 "$core" 2>/dev/null; then
                        log "the core did not come up; instances of ours may remain"
                        kill "$core" 2>/dev/null
                        wait "$core" 2>/dev/null
                        return 1
                fi
                sleep 0.2
        done
        if ! "$NOVA_CLI" --socket "$sock" delete --all --wait >&2; then
                log "could not delete every instance (see above)"
        fi
        # ports created without an instance (nova-hypervisor port create)
        for port in $("$NOVA_CLI" --socket "$sock" port list 2>/dev/null |
                awk 'length($1) == 36 && $1 ~ /^[0-9a-f-]+$/ { print $1 }'); do
                "$NOVA_CLI" --socket "$sock" port delete "$port" >/dev/null || log "could not delete port $port"
        done
        # every volume of ours in the storage pool (bases, root disks, config drives, console
        # logs), then the pool itself when nothing else is in it
        if in_list libvirt "$connected" &&
                ! "$NOVA_CLI" --socket "$sock" image purge >&2; then
                log "could not remove every volume of ours from the storage pool (see above)"
        fi
        kill "$core"
        wait "$core"
        if in_list firewall-control "$connected"; then
                "$SNAP/bin/nova-firewall-control" --purge || log "could not drop our nftables tables"
        fi
        return 0
}
