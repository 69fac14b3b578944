#!/usr/bin/env bash
# Build the two tiny .deb packages the install_packages.sh tests install, as a flat apt
# repository ("deb [trusted=yes] file:DIR ./"). kiln-second depends on kiln-hello. Each postinst
# appends its name to /var/lib/kiln-test/order and records what /usr/sbin/policy-rc.d answers
# for starting a service (101 = forbidden; "none" = no policy file) in
# /var/lib/kiln-test/policy-<name>, so tests can check order and service suppression.
#
# Usage: make-test-debs.sh REPO_DIR        needs dpkg-deb and dpkg-scanpackages (dpkg-dev)
set -euo pipefail

repo=${1:?usage: make-test-debs.sh REPO_DIR}
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
mkdir -p "$repo"

make_deb() {
  local name=$1 depends=$2 dir="$build/$1"
  mkdir -p "$dir/DEBIAN"
  cat > "$dir/DEBIAN/control" << CONTROL
Package: $name
Version: 1.0.0
Architecture: all
Maintainer: kiln tests <kiln@example.invalid>
Description: kiln install_packages.sh test package
${depends:+Depends: $depends}
CONTROL
  cat > "$dir/DEBIAN/postinst" << POSTINST
#!/bin/sh
set -e
mkdir -p /var/lib/kiln-test
echo $name >> /var/lib/kiln-test/order
rc=none
if [ -x /usr/sbin/policy-rc.d ]; then rc=0; /usr/sbin/policy-rc.d kiln-test start || rc=\$?; fi
echo \$rc > /var/lib/kiln-test/policy-$name
POSTINST
  chmod 0755 "$dir/DEBIAN/postinst"
  dpkg-deb --root-owner-group -b "$dir" "$repo/$name.deb" > /dev/null
}

make_deb kiln-hello ""
make_deb kiln-second "kiln-hello"
(cd "$repo" && dpkg-scanpackages --multiversion . /dev/null > Packages 2> /dev/null)
