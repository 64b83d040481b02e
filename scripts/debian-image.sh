#!/bin/sh
# Imports a real Debian 12 (bookworm) image, built offline from Debian's packages with
# debootstrap: merged /usr, python3 and pip, as the images people run are. About a
# minute the first time; the image is kept under its tag, so later runs only look.
# Usage: scripts/debian-image.sh [TAG] (default berth/debian:bookworm-minbase).
# Needs root and debootstrap (apt-get install debootstrap). BERTH_DEBIAN_MIRROR names
# another mirror.
set -eu
tag=${1:-berth/debian:bookworm-minbase}
mirror=${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "error: debootstrap is missing; apt-get install debootstrap" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "error: debootstrap needs root" >&2; exit 1; }
# Tests in parallel build it once: the others wait here, then find it.
lock=/tmp/berth-debian-image.lock
exec 9>"$lock"
flock 9
if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag"
    exit 0
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
log="$root.log"
if ! debootstrap --variant=minbase --include=python3,python3-pip,python3-venv \
    bookworm "$root/rootfs" "$mirror" >"$log" 2>&1; then
    tail -20 "$log" >&2
    echo "error: debootstrap failed (log: $log)" >&2
    exit 1
fi
rm -f "$log"
# What a registry image leaves out: downloaded packages and package lists.
rm -rf "$root/rootfs/var/cache/apt/archives/"*.deb "$root/rootfs/var/lib/apt/lists/"*
tar -C "$root/rootfs" -c . | docker import --change 'CMD ["bash"]' - "$tag" >/dev/null
echo "$tag"
