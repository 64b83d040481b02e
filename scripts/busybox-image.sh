#!/bin/sh
# Imports a tiny image built offline from Debian's busybox-static, for trying berth on
# a machine with no registry. Usage: scripts/busybox-image.sh [TAG] (default berth/busybox:latest)
set -eu
tag=${1:-berth/busybox:latest}
[ -x /bin/busybox ] || { echo "error: /bin/busybox is missing; apt-get install busybox-static" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/home" "$root/opt"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
chmod 1777 "$root/tmp"
tar -C "$root" -c . | docker import - "$tag" >/dev/null
echo "$tag"
