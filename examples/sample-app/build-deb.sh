#!/usr/bin/env bash
# Builds the sample app's .deb with dpkg-deb (part of dpkg: no dpkg-dev needed).
#
# Usage: build-deb.sh OUTDIR [VERSION]     (VERSION defaults to 1.0.0)
# Prints the path of the .deb: OUTDIR/kiln-sample_VERSION_all.deb
#
# The package installs /usr/bin/kiln-sample, /usr/share/kiln-sample/marker ("kiln-sample VERSION")
# and kiln-sample.service, enabled: at boot it writes /var/lib/kiln-sample/booted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:?usage: build-deb.sh OUTDIR [VERSION]}" && cd "$1" && pwd)
version=${2:-1.0.0}
root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT

install -D -m 0755 "$here/kiln-sample" "$root/usr/bin/kiln-sample"
install -D -m 0644 "$here/kiln-sample.service" "$root/usr/lib/systemd/system/kiln-sample.service"
install -d "$root/usr/share/kiln-sample"
echo "kiln-sample $version" > "$root/usr/share/kiln-sample/marker"
install -d "$root/DEBIAN"
sed "s/@VERSION@/$version/" "$here/debian/control" > "$root/DEBIAN/control"
install -m 0755 "$here/debian/postinst" "$here/debian/prerm" "$root/DEBIAN/"

deb=$out/kiln-sample_${version}_all.deb
# Same inputs, same bytes: fixed mtimes and gzip (fast, and no xz needed on old hosts).
find "$root" -exec touch -h -d @0 {} +
SOURCE_DATE_EPOCH=0 dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb" > /dev/null
echo "$deb"
