#!/usr/bin/env bash
# Starts a one-node Slurm for the tests: munged, slurmctld and slurmd on this machine,
# with the configuration in tests/slurm/ and four fake GPUs (gres on mknod devices).
# Idempotent: a Slurm that answers is left as it is. Prints the SLURM_CONF to use.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="${BERTH_SLURM_DIR:-/tmp/berth-slurm}"
conf="$dir/slurm.conf"
# One start at a time: the tests of several processes may ask at once. The daemons
# started below must not inherit the lock (9>&-), or it is never released.
mkdir -p "$dir"
exec 9>"$dir/start.lock"
flock 9
if [ -f "$conf" ] && SLURM_CONF="$conf" timeout 5 sinfo -h >/dev/null 2>&1; then
    echo "$conf"
    exit 0
fi
mkdir -p "$dir/state" "$dir/spool" "$dir/dev"
host="$(hostname -s)"
cpus="$(nproc)"
for f in slurm.conf gres.conf; do
    sed -e "s|@HOST@|$host|g" -e "s|@DIR@|$dir|g" -e "s|@CPUS@|$cpus|g" \
        "$here/tests/slurm/$f.in" > "$dir/$f"
done
for i in 0 1 2 3; do
    [ -e "$dir/dev/nvidia$i" ] || mknod "$dir/dev/nvidia$i" c 195 "$i"
done
# munge: its key comes with the package; its daemon runs as munge. Asked, not looked
# for: a munged that was killed can linger as a zombie where nothing reaps it.
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    [ -f /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    runuser -u munge -- munged 9>&-
fi
pkill -x slurmctld 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
sleep 0.5
SLURM_CONF="$conf" slurmctld -f "$conf" -i 9>&-
SLURM_CONF="$conf" slurmd -f "$conf" 9>&-
for _ in $(seq 60); do
    if SLURM_CONF="$conf" sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
        echo "$conf"
        exit 0
    fi
    sleep 0.5
done
echo "slurm did not come up; see $dir/slurmctld.log and $dir/slurmd.log" >&2
SLURM_CONF="$conf" sinfo >&2 || true
exit 1
