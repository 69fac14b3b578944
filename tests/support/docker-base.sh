#!/usr/bin/env bash
# Build the base of the container-engine bake test (tests/e2e/docker_engine.rs): a Debian
# bookworm minbase root filesystem as a tarball for `podman import` (no registry is ever pulled
# from: the test imports this and pushes it to its own loopback registry).
#
# Usage: docker-base.sh OUTDIR
#
# Output (nothing is done when OUTDIR/rootfs.tar already exists):
#   OUTDIR/rootfs.tar   the tree, owners and modes kept
#   OUTDIR/build.log    debootstrap's output
#
# debootstrap --variant=minbase from the mirror the host's apt uses. Its apt sources are EMPTY,
# so a bake's `apt-get update` reads only the test's loopback repository.
#
# Needs root (debootstrap) and debootstrap. Takes ~40 s. Concurrent runs for the same OUTDIR are
# serialised with flock; the tarball appears atomically.
set -euo pipefail

[[ $# -eq 1 ]] || {
  echo "usage: docker-base.sh OUTDIR" >&2
  exit 2
}
if [[ $EUID -ne 0 ]]; then
  echo "docker-base.sh: must run as root (debootstrap needs it); try: sudo $0 $*" >&2
  exit 2
fi
for tool in debootstrap:debootstrap flock:util-linux; do
  if ! command -v "${tool%%:*}" > /dev/null; then
    echo "docker-base.sh: ${tool%%:*} is missing; install it: apt-get install -y --no-install-recommends ${tool#*:}" >&2
    exit 2
  fi
done

mkdir -p "$1"
out=$(cd "$1" && pwd)
[[ -f $out/rootfs.tar ]] && exit 0
exec 9> "$out/.lock"
flock 9
[[ -f $out/rootfs.tar ]] && exit 0 # another run built it while we waited for the lock

# The Debian mirror apt already uses.
mirror=$("$(dirname "$0")/debian-mirror.sh")

rootfs=$out/.rootfs
log=$out/build.log
# --one-file-system: never follow a leftover mount out of the tree (debootstrap mounts proc).
rm -rf --one-file-system "$rootfs" "$out/rootfs.tar.part"
if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$log" 2>&1; then
  echo "docker-base.sh: debootstrap failed; last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
: > "$rootfs/etc/apt/sources.list"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" --numeric-owner -cf "$out/rootfs.tar.part" .
rm -rf --one-file-system "$rootfs"
mv "$out/rootfs.tar.part" "$out/rootfs.tar"
