#!/usr/bin/env bash
# Installs Debian's PostgreSQL (server + client) and Redis for the tests that need a real
# server. Idempotent: does nothing when the binaries are already there. The tests start
# their own throw-away servers on loopback (tests/servers.py), so the distro's system-wide
# services are never left running or enabled: they would only hold ports and memory.
set -euo pipefail

me=scripts/install-services.sh
packages=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
    && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null \
    && [ -x /usr/bin/psql ] \
    || packages+=(postgresql postgresql-client)
[ -x /usr/bin/redis-server ] || packages+=(redis-server)

done_what=()

if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "$me: need root to apt-get install ${packages[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    # policy-rc.d exit 101 tells invoke-rc.d (and deb-systemd-invoke) not to start the
    # services from the packages' postinst. Keep an existing one (e.g. Docker's) as it is.
    own_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    cleanup() {
        [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
        rm -f "$log"
    }
    trap cleanup EXIT
    apt_install() {
        apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${packages[@]}" </dev/null >>"$log" 2>&1
    }
    # `apt-get update` only when the lists don't know a package, or an old list points at
    # a version the mirror no longer has.
    updated=
    for p in "${packages[@]}"; do
        if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            apt-get update -qq -o DPkg::Lock::Timeout=300 >>"$log" 2>&1 || { cat "$log" >&2; exit 1; }
            updated=1
            break
        fi
    done
    if ! apt_install; then
        [ -z "$updated" ] || { cat "$log" >&2; exit 1; }
        apt-get update -qq -o DPkg::Lock::Timeout=300 >>"$log" 2>&1 && apt_install || { cat "$log" >&2; exit 1; }
    fi
    done_what+=("installed ${packages[*]}")

    # Should a postinst have started anything anyway, stop it.
    if command -v pg_lsclusters >/dev/null; then
        pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
            if [ "$status" = online ]; then
                pg_ctlcluster "$ver" "$name" stop -m fast >/dev/null 2>&1 || true
            fi
        done
    fi
    if [ -x /etc/init.d/redis-server ] && [ -e /run/redis/redis-server.pid ]; then
        /etc/init.d/redis-server stop >/dev/null 2>&1 || true
    fi
fi

# Not enabled at boot either (cheap checks; a no-op once done).
disabled=()
for svc in postgresql redis-server; do
    if [ -d /run/systemd/system ]; then
        if systemctl is-enabled --quiet "$svc" 2>/dev/null; then
            if [ "$(id -u)" -eq 0 ] && systemctl disable --now --quiet "$svc" >/dev/null 2>&1; then
                disabled+=("$svc")
            fi
        fi
    elif compgen -G "/etc/rc[2345].d/S[0-9][0-9]$svc" >/dev/null; then
        if [ "$(id -u)" -eq 0 ] && update-rc.d "$svc" disable >/dev/null 2>&1; then
            disabled+=("$svc")
        fi
    fi
done
[ ${#disabled[@]} -eq 0 ] || done_what+=("disabled the distro's boot-time ${disabled[*]}")

if [ ${#done_what[@]} -eq 0 ]; then
    echo "$me: postgresql and redis-server already installed; nothing to do"
else
    line=$(printf '%s; ' "${done_what[@]}")
    echo "$me: ${line%; }"
fi
