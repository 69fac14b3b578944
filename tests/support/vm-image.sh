#!/usr/bin/env bash
# Build a minimal Debian bookworm VM image for the end-to-end test that lets Packer's amazon-ebs
# builder SSH into a local qemu VM (moto plays EC2, the VM plays the builder instance).
#
# Usage: vm-image.sh OUTDIR
#
# Output (nothing is done when OUTDIR/disk.qcow2 already exists):
#   OUTDIR/disk.qcow2   ext4 root filesystem, no partition table and no bootloader
#   OUTDIR/vmlinuz      kernel   } boot with -kernel/-initrd -append "root=/dev/vda rw console=ttyS0"
#   OUTDIR/initrd.img   initrd   }   (tests/support/vm-boot.sh)
#   OUTDIR/key, key.pub ed25519 key pair; key.pub is root's authorized_keys in the image
#   OUTDIR/build.log    debootstrap and chroot apt output
#
# The image: debootstrap minbase from the mirror the host's apt uses, plus linux-image-cloud-amd64,
# systemd-sysv, openssh-server, sudo, iproute2, ca-certificates; systemd-networkd does DHCP on the
# NIC. Its apt sources are EMPTY: the VM runs on a restricted network (only the test's repository is
# reachable), so a bake's `apt-get update` must not wait on, or fail for, deb.debian.org.
#
# Needs root (debootstrap, chroot, mounts), debootstrap, e2fsprogs (mkfs.ext4 -d), qemu-img and
# ssh-keygen. Takes ~45 s (debootstrap ~25 s, chroot apt ~20 s, filesystem + qcow2 ~3 s).
# Concurrent runs for the same OUTDIR are serialised with flock; the image appears atomically.
set -euo pipefail

usage() {
  echo "usage: vm-image.sh OUTDIR" >&2
  exit 2
}
[[ $# -eq 1 ]] || usage

if [[ $EUID -ne 0 ]]; then
  echo "vm-image.sh: must run as root (debootstrap, chroot and mounts need it); try: sudo $0 $*" >&2
  exit 2
fi
for tool in debootstrap:debootstrap mkfs.ext4:e2fsprogs qemu-img:qemu-utils ssh-keygen:openssh-client flock:util-linux; do
  if ! command -v "${tool%%:*}" > /dev/null; then
    echo "vm-image.sh: ${tool%%:*} is missing; install it: apt-get install -y --no-install-recommends ${tool#*:}" >&2
    exit 2
  fi
done

mkdir -p "$1"
out=$(cd "$1" && pwd)
if [[ -f $out/disk.qcow2 ]]; then
  echo "vm-image.sh: $out/disk.qcow2 exists; nothing to do"
  exit 0
fi

exec 9> "$out/.lock"
flock 9
if [[ -f $out/disk.qcow2 ]]; then # another run built it while we waited for the lock
  echo "vm-image.sh: $out/disk.qcow2 exists; nothing to do"
  exit 0
fi

# The Debian mirror apt already uses.
mirror=$("$(dirname "$0")/debian-mirror.sh")

stage=$out/.build
rootfs=$stage/rootfs
log=$stage/build.log
mounts=(proc sys dev/pts dev)

mounted_under_rootfs() {
  awk -v r="$rootfs" '$2 == r || index($2, r "/") == 1 { found = 1 } END { exit !found }' /proc/mounts
}
unmount_all() {
  local m
  for m in "${mounts[@]}"; do
    if mountpoint -q "$rootfs/$m" 2> /dev/null; then umount "$rootfs/$m" || umount -l "$rootfs/$m" || true; fi
  done
}
cleanup() {
  local rc=$?
  unmount_all
  if mounted_under_rootfs; then
    echo "vm-image.sh: something is still mounted under $rootfs; not deleting it" >&2
  elif [[ $rc -ne 0 ]]; then
    rm -rf "$stage"
    echo "vm-image.sh: failed (exit $rc); see the output above" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# A previous run that died hard may have left mounts behind.
unmount_all
if mounted_under_rootfs; then
  echo "vm-image.sh: $rootfs still has mounts from an earlier run; unmount them first" >&2
  exit 1
fi
rm -rf "$stage"
mkdir -p "$stage"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
fail_with_log() {
  echo "vm-image.sh: $1 failed; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
}

t_all=$(now)
t=$(now)
echo "vm-image.sh: debootstrap --variant=minbase bookworm from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >> "$log" 2>&1 || fail_with_log debootstrap
echo "vm-image.sh: debootstrap: $(since "$t")s"

t=$(now)
# No daemon may start inside the chroot (it would run on this host): invoke-rc.d honours 101.
printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
printf 'Acquire::Languages "none";\nAcquire::Check-Valid-Until "false";\n' > "$rootfs/etc/apt/apt.conf.d/90kiln-test-image"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf" 2> /dev/null || true
mount -t proc proc "$rootfs/proc"
mount -t sysfs sysfs "$rootfs/sys"
mount --bind /dev "$rootfs/dev"
mount --bind /dev/pts "$rootfs/dev/pts"
chroot "$rootfs" apt-get update -q >> "$log" 2>&1 || fail_with_log "apt-get update in the chroot"
DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get install -y -q --no-install-recommends \
  linux-image-cloud-amd64 systemd-sysv openssh-server sudo iproute2 ca-certificates >> "$log" 2>&1 \
  || fail_with_log "apt-get install in the chroot"
chroot "$rootfs" apt-get clean >> "$log" 2>&1
unmount_all
if mounted_under_rootfs; then
  echo "vm-image.sh: could not unmount everything under $rootfs" >&2
  exit 1
fi
echo "vm-image.sh: chroot apt-get install: $(since "$t")s"

t=$(now)
rm -f "$rootfs/usr/sbin/policy-rc.d"
rm -rf "$rootfs"/var/lib/apt/lists/*
# The VM has no route to any mirror; bakes bring their own repository (see the header).
: > "$rootfs/etc/apt/sources.list"
rm -f "$rootfs"/etc/apt/sources.list.d/*
echo kiln-test-vm > "$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 kiln-test-vm\n' > "$rootfs/etc/hosts"
: > "$rootfs/etc/resolv.conf"
echo "/dev/vda / ext4 defaults 0 1" > "$rootfs/etc/fstab"
mkdir -p "$rootfs/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' > "$rootfs/etc/systemd/network/20-dhcp.network"
chroot "$rootfs" systemctl enable systemd-networkd >> "$log" 2>&1
# Nothing waits for "network online" in this image; skip the unit's 2 min timeout.
chroot "$rootfs" systemctl mask systemd-networkd-wait-online.service >> "$log" 2>&1 || true
ssh-keygen -q -t ed25519 -N '' -C kiln-test-vm -f "$stage/key"
install -d -m 0700 "$rootfs/root/.ssh"
install -m 0600 "$stage/key.pub" "$rootfs/root/.ssh/authorized_keys"
cp "$(ls "$rootfs"/boot/vmlinuz-* | sort -V | tail -n 1)" "$stage/vmlinuz"
cp "$(ls "$rootfs"/boot/initrd.img-* | sort -V | tail -n 1)" "$stage/initrd.img"
truncate -s 2G "$stage/disk.raw"
mkfs.ext4 -q -F -L root -d "$rootfs" "$stage/disk.raw"
qemu-img convert -O qcow2 "$stage/disk.raw" "$stage/disk.qcow2"
rm -f "$stage/disk.raw"
rm -rf "$rootfs"
echo "vm-image.sh: filesystem + qcow2: $(since "$t")s"

# disk.qcow2 last: its presence means the image is complete.
mv -f "$stage/key" "$stage/key.pub" "$stage/vmlinuz" "$stage/initrd.img" "$stage/build.log" "$out/"
mv -f "$stage/disk.qcow2" "$out/disk.qcow2"
rmdir "$stage"
echo "vm-image.sh: image ready in $out (total $(since "$t_all")s)"
