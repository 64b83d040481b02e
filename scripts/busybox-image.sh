#!/bin/sh
# Imports a tiny image built offline from Debian's busybox-static, for trying berth on
# a machine with no registry. Usage: scripts/busybox-image.sh [TAG [LAYOUT]]
# (default berth/busybox:latest). LAYOUT is one a real image has:
#   classic     /bin, /sbin and /usr apart (the default)
#   merged-usr  /bin -> usr/bin, /sbin -> usr/sbin, /lib -> usr/lib, as Debian 12 and
#               Ubuntu 22.04 and later
#   home-link   /home -> var/home, as image-based distributions
#   workspace   the image already has a /workspace with a file in it
set -eu
tag=${1:-berth/busybox:latest}
layout=${2:-classic}
case $layout in
    classic | merged-usr | home-link | workspace) ;;
    *) echo "error: unknown layout $layout" >&2; exit 2 ;;
esac
[ -x /bin/busybox ] || { echo "error: /bin/busybox is missing; apt-get install busybox-static" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc" "$root/tmp" "$root/root" "$root/opt"
bin=bin
if [ "$layout" = merged-usr ]; then
    mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib"
    ln -s usr/bin "$root/bin"
    ln -s usr/sbin "$root/sbin"
    ln -s usr/lib "$root/lib"
    bin=usr/bin
else
    mkdir -p "$root/bin"
fi
if [ "$layout" = home-link ]; then
    mkdir -p "$root/var/home"
    ln -s var/home "$root/home"
else
    mkdir -p "$root/home"
fi
if [ "$layout" = workspace ]; then
    mkdir -p "$root/workspace"
    echo "shipped with the image" > "$root/workspace/README"
fi
cp /bin/busybox "$root/$bin/busybox"
for applet in $(/bin/busybox --list); do
    [ -e "$root/$bin/$applet" ] || ln -s busybox "$root/$bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
chmod 1777 "$root/tmp"
tar -C "$root" -c . | docker import - "$tag" >/dev/null
echo "$tag"
