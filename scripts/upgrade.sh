#!/usr/bin/env bash
# Zero-downtime upgrade of a running lb, by hand.
#
#   scripts/upgrade.sh /run/lb/upgrade.sock [NEW_BINARY]
#
# The running lb must have been started with --upgrade-socket (or upgrade_socket in its config
# file). With NEW_BINARY, the binary at the running lb's path is replaced first (atomically, with
# install/rename: the running process keeps its own inode). Then `lb upgrade` asks the running
# lb to start the binary now at its path with its own arguments plus --takeover; the new lb
# receives the listening sockets and the registry over the upgrade socket, and once every worker
# of it accepts, the old lb stops accepting, drains and exits. No connection is refused or lost.
#
# Exit status: 0 when the new lb took over; non-zero with the reason otherwise (the old lb then
# goes on serving).
#
# To do the same without `lb upgrade` (e.g. to run the new binary with other flags), start it
# yourself with the same --upgrade-socket and --takeover:
#   NEW_BINARY run --config /etc/lb/lb.toml --upgrade-socket /run/lb/upgrade.sock --takeover &
# It prints its ready line once it took over.
set -euo pipefail

sock=${1:?usage: upgrade.sh UPGRADE_SOCKET [NEW_BINARY]}
new=${2:-}
timeout_ms=${LB_UPGRADE_TIMEOUT_MS:-120000}

if [[ ! -S $sock ]]; then
    echo "upgrade.sh: $sock is not a unix socket; is lb running with --upgrade-socket $sock?" >&2
    exit 1
fi

# The running lb's pid and executable, from the socket's owner.
pid=$(ss -xlpn 2>/dev/null | awk -v s="$sock" '$5 == s { if (match($0, /pid=[0-9]+/)) print substr($0, RSTART + 4, RLENGTH - 4) }' | head -n1)
if [[ -n $new ]]; then
    if [[ -z $pid ]]; then
        echo "upgrade.sh: cannot find the process that owns $sock (need ss from iproute2)" >&2
        exit 1
    fi
    exe=$(readlink "/proc/$pid/exe")
    exe=${exe% (deleted)}
    echo "replacing $exe (pid $pid) with $new"
    # New inode at the same path: the running process is not disturbed.
    install -m 0755 "$new" "$exe.new"
    mv -f "$exe.new" "$exe"
    lb=$exe
else
    lb=$(command -v lb || echo "${pid:+$(readlink "/proc/$pid/exe")}")
    lb=${lb% (deleted)}
fi

echo "asking the lb on $sock to hand over"
"$lb" upgrade --upgrade-socket "$sock" --timeout "$timeout_ms"
if [[ -n $pid ]]; then
    # The old lb drains (bounded by its drain timeout) and exits.
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    echo "the old lb (pid $pid) has drained and exited"
fi
