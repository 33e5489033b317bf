#!/bin/bash
# build.sh - builds the tiny guest of the real-guest tests from Debian packages, without
# installing anything on the host: Debian's kernel (vmlinuz and a few modules), busybox-static
# as the whole userland, and qemu-ga with the shared libraries it needs, unpacked with dpkg -x
# into an initrd (gzip'd newc cpio, ~4 MB). t/guest/init is the guest's /init.
#
#   t/guest/build.sh OUTDIR     writes OUTDIR/vmlinuz and OUTDIR/initrd.gz
#
# The .debs are fetched with `apt-get download` into OUTDIR/debs and kept there; a second run
# with the same packages only rebuilds what changed. Prints one line naming what is missing or
# failed and exits 1 when the guest cannot be built (no network, no such package).
set -euo pipefail

out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/debs"
out=$(cd "$out" && pwd)
debs=$out/debs

die() { echo "guest build: $*" >&2; exit 1; }

kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || die "apt-cache knows no linux-image-amd64 (run apt-get update)"
# qemu-ga and every library package below it (libc6 included: the guest uses nothing of the host).
agent_pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
             --no-replaces --no-enhances --no-pre-depends qemu-guest-agent 2>/dev/null | grep -v '^ ' | sort -u)
[ -n "$agent_pkgs" ] || die "apt-cache knows no qemu-guest-agent"
pkgs="$kpkg busybox-static $agent_pkgs"

# Download what is not there yet; `apt-get download` names files after the package.
want=()
for p in $pkgs; do
    ls "$debs/${p}_"*.deb >/dev/null 2>&1 || want+=("$p")
done
if [ ${#want[@]} -gt 0 ]; then
    (cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "${want[@]}" >"$out/download.log" 2>&1) \
        || die "apt-get download ${want[*]} failed: $(tail -n 1 "$out/download.log")"
fi

stamp=$(cd "$debs" && ls -1 *.deb | sort | md5sum | cut -c1-12)-$(cat "$here/init" "$0" | md5sum | cut -c1-12)
if [ -f "$out/initrd.gz" ] && [ -f "$out/vmlinuz" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
    exit 0
fi

work=$out/work
rm -rf "$work" && mkdir -p "$work/x" "$work/root"
for p in $pkgs; do dpkg -x "$debs/${p}_"*.deb "$work/x"; done
x=$work/x
root=$work/root
kver=${kpkg#linux-image-}

cp "$x/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,run,tmp,etc,lib/modules,lib64,lib/x86_64-linux-gnu}
cp "$x/bin/busybox" "$root/bin/busybox"
# ACPI power button and the input device it speaks through; virtio for the agent's channel.
for m in drivers/acpi/button drivers/input/evdev drivers/virtio/virtio_ring drivers/virtio/virtio \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci drivers/char/virtio_console; do
    f=$x/lib/modules/$kver/kernel/$m.ko
    [ -f "$f" ] || f=$f.xz
    [ -f "$f" ] || die "no module $m in $kpkg"
    cp "$f" "$root/lib/modules/"
done
# qemu-ga and exactly the libraries the unpacked loader resolves for it, from the unpacked tree.
cp "$x/usr/sbin/qemu-ga" "$root/sbin/qemu-ga"
libdirs=$x/lib/x86_64-linux-gnu:$x/usr/lib/x86_64-linux-gnu
"$x/lib64/ld-linux-x86-64.so.2" --library-path "$libdirs" --list "$x/usr/sbin/qemu-ga" >"$work/ldd" \
    || die "cannot list qemu-ga's libraries"
! grep -q 'not found' "$work/ldd" || die "qemu-ga needs a library no package gave: $(grep 'not found' "$work/ldd" | head -n 1)"
awk '$2 == "=>" && $3 ~ /^\// { print $3 }' "$work/ldd" | while read -r lib; do
    case $lib in "$x"/*) ;; *) echo "guest build: $lib is not from the unpacked packages" >&2; exit 1;; esac
    cp -L "$lib" "$root/lib/x86_64-linux-gnu/"
done
cp -L "$x/lib64/ld-linux-x86-64.so.2" "$root/lib64/"
cp "$here/init" "$root/init"
chmod 755 "$root/init"
# qemu-ga powers off through /sbin/shutdown and sets the hardware clock through hwclock.
printf '#!/bin/sh\necho GUEST-SHUTDOWN "$@" > /dev/ttyS0\nexec /bin/busybox poweroff -f\n' > "$root/sbin/shutdown"
chmod 755 "$root/sbin/shutdown"
ln -s /bin/busybox "$root/sbin/hwclock"
(cd "$root" && find . | "$x/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -6) > "$out/initrd.gz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.gz.tmp" "$out/initrd.gz"
echo "$stamp" > "$out/stamp"
rm -rf "$work"
