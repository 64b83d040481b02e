#!/bin/sh
# A second Docker engine on this machine, standing in for a second host: its own
# socket, data root, exec root and bridge. Started once and left running; prints its
# address. Needs root, dockerd and iproute2.
set -eu
dir=/run/berth-engine2
sock="$dir/docker.sock"
answers() { DOCKER_HOST="unix://$sock" docker info >/dev/null 2>&1; }
mkdir -p "$dir"
# One start at a time: the tests that need it run in parallel.
exec 9>"$dir/start.lock"
flock 9
if ! answers; then
    # Its own bridge: told `--bridge=none`, dockerd removes docker0, the first engine's.
    if ! ip link show berth-br2 >/dev/null 2>&1; then
        ip link add berth-br2 type bridge
        ip addr add 172.31.254.1/24 dev berth-br2
        ip link set berth-br2 up
    fi
    # The first engine's storage driver: the one this machine's kernel allows.
    driver=$(docker info --format '{{.Driver}}' 2>/dev/null || true)
    echo '{}' >"$dir/daemon.json"
    mkdir -p /var/lib/berth-engine2
    setsid dockerd --config-file "$dir/daemon.json" --host "unix://$sock" \
        --data-root /var/lib/berth-engine2 --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
        ${driver:+--storage-driver "$driver"} --bridge berth-br2 --iptables=false --ip6tables=false \
        >/var/log/berth-engine2.log 2>&1 </dev/null 9>&- &
    for _ in $(seq 60); do answers && break; sleep 1; done
    answers || { tail -20 /var/log/berth-engine2.log >&2; echo "error: the second engine did not start" >&2; exit 1; }
fi
echo "unix://$sock"
