#!/usr/bin/env bash
# Make a tiny arch-all .deb that installs /usr/share/NAME/marker (containing "NAME VERSION"), and a
# flat apt repository holding it, for bake tests that install a package over SSH.
#
# Usage: make-test-deb.sh OUTDIR NAME VERSION
#   OUTDIR/NAME_VERSION_all.deb
#   OUTDIR/repo/{NAME_VERSION_all.deb,Packages,Packages.gz}   apt source: "deb [trusted=yes] URL ./"
# Prints the .deb's path. Needs dpkg-deb and dpkg-scanpackages (dpkg-dev).
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: make-test-deb.sh OUTDIR NAME VERSION" >&2
  exit 2
fi
name=$2 version=$3
if ! command -v dpkg-scanpackages > /dev/null; then
  echo "make-test-deb.sh: dpkg-scanpackages is missing; install it: apt-get install -y --no-install-recommends dpkg-dev" >&2
  exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

mkdir -p "$build/DEBIAN" "$build/usr/share/$name"
cat > "$build/DEBIAN/control" << CONTROL
Package: $name
Version: $version
Architecture: all
Maintainer: kiln tests <kiln@example.invalid>
Section: misc
Priority: optional
Description: kiln bake test package
 Installs /usr/share/$name/marker so a test can tell that the bake installed it.
CONTROL
printf '%s %s\n' "$name" "$version" > "$build/usr/share/$name/marker"
chmod -R u=rwX,go=rX "$build"
deb=$out/${name}_${version}_all.deb
dpkg-deb --build --root-owner-group "$build" "$deb" > /dev/null

mkdir -p "$out/repo"
cp "$deb" "$out/repo/"
(
  cd "$out/repo"
  dpkg-scanpackages --multiversion . /dev/null > Packages 2> /dev/null
  gzip -9nc Packages > Packages.gz
)
grep -q "^Package: $name\$" "$out/repo/Packages" || {
  echo "make-test-deb.sh: $name is not in $out/repo/Packages" >&2
  exit 1
}
echo "$deb"
