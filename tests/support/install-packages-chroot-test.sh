#!/usr/bin/env bash
# Exercise config/packer/install_packages.sh for real, in a Debian chroot standing in for the
# build instance: installs from a file: repository and a credentialed http:// repository (served
# on 127.0.0.1), in order, as a non-root user through sudo; checks that services are kept from
# starting, that credentials are never echoed, that a missing package fails loudly by name and
# that the repository list and policy-rc.d are cleaned up (also on failure). The rpm path runs
# against a stub dnf that records what it was asked to do.
#
# Usage: tests/support/install-packages-chroot-test.sh WORKDIR [ROOTFS_CACHE]
#   needs root, debootstrap, dpkg-dev, python3; ROOTFS_CACHE (default WORKDIR/rootfs-base) is
#   a `debootstrap --variant=minbase --include=sudo bookworm` tree, created when missing (the
#   only network use: deb.debian.org).
set -euo pipefail

work=${1:?usage: install-packages-chroot-test.sh WORKDIR [ROOTFS_CACHE]}
mkdir -p "$work"
work=$(cd "$work" && pwd)
base=${2:-$work/rootfs-base}
script="$(cd "$(dirname "$0")/../.." && pwd)/config/packer/install_packages.sh"
root="$work/rootfs"
repo="$work/repo"
port=${KILN_TEST_HTTP_PORT:-5397}
http_pid=""

cleanup() {
  if [[ -n $http_pid ]]; then kill "$http_pid" 2> /dev/null || true; fi
  if mountpoint -q "$root/proc"; then umount "$root/proc"; fi
}
trap cleanup EXIT

if [[ ! -d $base/usr/bin/sudo && ! -x $base/usr/bin/sudo ]]; then
  debootstrap --variant=minbase --include=sudo bookworm "$base" http://deb.debian.org/debian > "$work/debootstrap.log"
fi

# A fresh copy per run. --one-file-system: never follow a leftover mount out of the tree.
if mountpoint -q "$root/proc" 2> /dev/null; then umount "$root/proc"; fi
rm -rf --one-file-system "$root"
cp -a "$base" "$root"
mount -t proc proc "$root/proc"
# Hermetic: only the repositories the script adds.
: > "$root/etc/apt/sources.list"
chroot "$root" useradd -m -s /bin/bash builder
# sudo looks the host name up; without this it warns on every call.
echo "127.0.1.1 $(hostname)" >> "$root/etc/hosts"
echo 'builder ALL=(ALL) NOPASSWD: ALL' > "$root/etc/sudoers.d/builder"

rm -rf "$repo"
"$(dirname "$0")/make-test-debs.sh" "$repo"
mkdir -p "$root/srv"
cp -a "$repo" "$root/srv/kiln-repo"
# The same repository over HTTP, for a URL with credentials (the server ignores them).
python3 -m http.server --bind 127.0.0.1 --directory "$repo" "$port" > "$work/http.log" 2>&1 &
http_pid=$!
for _ in $(seq 1 50); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/Packages" && break
  sleep 0.1
done

cp "$script" "$root/tmp/install_packages.sh"
chmod 0755 "$root/tmp/install_packages.sh"

failures=0
ok() { echo "ok   $*"; }
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}

# run USER LOG VAR=VALUE... -> exit code of the script, output in $work/LOG. Like Packer's
# shell provisioner: a clean environment plus the template's environment_vars.
run() {
  local user=$1 log=$2 rc=0
  shift 2
  chroot --userspec="$user:$user" "$root" /usr/bin/env -i HOME=/tmp \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "$@" /tmp/install_packages.sh > "$work/$log" 2>&1 || rc=$?
  return $rc
}
# shellcheck disable=SC2016 # ${Status} is dpkg-query's format, not a shell expansion
installed() { chroot "$root" dpkg-query -W -f '${Status}' "$1" 2> /dev/null | grep -q 'install ok installed'; }
no_leftovers() { [[ ! -e $root/etc/apt/sources.list.d/kiln.list && ! -e $root/usr/sbin/policy-rc.d ]]; }

# 1. deb, two repositories (one with credentials), two packages in order, as a sudo user.
rc=0
run builder deb-ok.log package_type=deb upgrade=true packages=kiln-hello,kiln-second \
  "repository=[trusted=yes] file:/srv/kiln-repo ./;[trusted=yes] http://kiln:s3cret@127.0.0.1:$port/ ./" || rc=$?
check "deb: succeeds as a non-root user via sudo (rc=$rc)" test "$rc" -eq 0
check "deb: echoes the repositories without credentials" \
  grep -qxF "repository=[trusted=yes] file:/srv/kiln-repo ./;[trusted=yes] http://127.0.0.1:$port/ ./" "$work/deb-ok.log"
check "deb: never prints the password" bash -c "! grep -q s3cret '$work/deb-ok.log'"
check "deb: both packages installed" bash -c "$(declare -f installed); root='$root'; installed kiln-hello && installed kiln-second"
check "deb: installed in the given order" diff <(printf 'kiln-hello\nkiln-second\n') "$root/var/lib/kiln-test/order"
check "deb: services could not start while installing (policy-rc.d exit 101)" \
  grep -qx 101 "$root/var/lib/kiln-test/policy-kiln-second"
check "deb: upgrade=true ran an upgrade" grep -q 'Calculating upgrade' "$work/deb-ok.log"
check "deb: repository list and policy-rc.d removed" no_leftovers

# 2. A missing package: fails naming it, stops before the next one, still cleans up and puts
#    back a policy-rc.d that was there before.
chroot "$root" dpkg --purge kiln-second kiln-hello > /dev/null
rm -f "$root/var/lib/kiln-test/order"
printf '#!/bin/sh\nexit 0\n' > "$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
rc=0
run root deb-missing.log package_type=deb "packages=kiln-hello kiln-missing kiln-second" \
  "repository=[trusted=yes] file:/srv/kiln-repo ./" || rc=$?
check "deb missing: fails (rc=$rc)" test "$rc" -ne 0
check "deb missing: names the package" grep -q "failed to install package 'kiln-missing'" "$work/deb-missing.log"
check "deb missing: earlier package installed, later one not" \
  bash -c "$(declare -f installed); root='$root'; installed kiln-hello && ! installed kiln-second"
check "deb missing: repository list removed" test ! -e "$root/etc/apt/sources.list.d/kiln.list"
check "deb missing: previous policy-rc.d restored" grep -qx 'exit 0' "$root/usr/sbin/policy-rc.d"
rm -f "$root/usr/sbin/policy-rc.d"

# 3. Quoted values (Rosco's chroot templates quoted them), an explicit "deb " prefix, a version pin.
rc=0
run root deb-quoted.log "package_type='deb'" "packages='kiln-second=1.0.0'" \
  "repository=\"deb [trusted=yes] file:/srv/kiln-repo ./\"" || rc=$?
check "deb quoted: succeeds (rc=$rc)" test "$rc" -eq 0
check "deb quoted: pinned package installed" bash -c "$(declare -f installed); root='$root'; installed kiln-second"
check "deb quoted: apt read the source line (no 'deb deb')" grep -q 'file:/srv/kiln-repo ./ Packages' "$work/deb-quoted.log"
check "deb quoted: cleaned up" no_leftovers

# 4. rpm against a stub dnf: repo files exist while installing, packages in order, removed after.
cat > "$root/usr/local/bin/dnf" << 'EOF'
#!/bin/sh
# Stub: record the call and the kiln repo files present at that moment; fail for "bad-pkg".
echo "dnf $* | repos: $(cat /etc/yum.repos.d/kiln-*.repo 2>/dev/null | grep baseurl | tr '\n' ' ')" >> /var/lib/kiln-test/dnf
case "$*" in *bad-pkg*) exit 1 ;; esac
EOF
chmod 0755 "$root/usr/local/bin/dnf"
mkdir -p "$root/etc/yum.repos.d"
rc=0
run builder rpm-ok.log package_type=rpm upgrade=true "packages=app-1.0-1.x86_64 lib-2.0-1" \
  "repository=https://u:p@yum.example.com/a;https://yum.example.com/b" || rc=$?
check "rpm: succeeds (rc=$rc)" test "$rc" -eq 0
check "rpm: update, then installs in order, with both repos configured" diff - "$root/var/lib/kiln-test/dnf" << 'EOF'
dnf -y update | repos: baseurl=https://u:p@yum.example.com/a baseurl=https://yum.example.com/b 
dnf -y install -- app-1.0-1.x86_64 | repos: baseurl=https://u:p@yum.example.com/a baseurl=https://yum.example.com/b 
dnf -y install -- lib-2.0-1 | repos: baseurl=https://u:p@yum.example.com/a baseurl=https://yum.example.com/b 
EOF
check "rpm: echo strips credentials" grep -qxF "repository=https://yum.example.com/a;https://yum.example.com/b" "$work/rpm-ok.log"
check "rpm: repo files removed" bash -c "! ls '$root'/etc/yum.repos.d/kiln-* 2> /dev/null"
rc=0
run root rpm-bad.log package_type=rpm "packages=good bad-pkg never" repository=https://yum.example.com/a || rc=$?
check "rpm bad package: fails naming it (rc=$rc)" grep -q "failed to install package 'bad-pkg'" "$work/rpm-bad.log"
check "rpm bad package: stops there" bash -c "! grep -q 'install -- never' '$root/var/lib/kiln-test/dnf'"
check "rpm bad package: repo files removed" bash -c "! ls '$root'/etc/yum.repos.d/kiln-* 2> /dev/null"

# 5. Hostile values: option-like package names stay package names (after `--`), shell syntax
#    in packages or repository is never run.
printf '#!/bin/sh\ntouch /tmp/pwned-option\n' > "$root/tmp/mark.sh"
chmod 0755 "$root/tmp/mark.sh"
rm -f "$root/tmp/pwned-option" "$root/tmp/pwned-shell"
# Not installed, so apt would run dpkg (and so a Pre-Invoke hook) for it.
chroot "$root" dpkg --purge kiln-second kiln-hello > /dev/null 2>&1 || true
rc=0
run root deb-hostile.log package_type=deb "packages=-oDPkg::Pre-Invoke::=/tmp/mark.sh kiln-hello" \
  "repository=[trusted=yes] file:/srv/kiln-repo ./" || rc=$?
check "hostile deb: fails (rc=$rc)" test "$rc" -ne 0
check "hostile deb: the option is a package name apt cannot find" \
  grep -q "failed to install package '-oDPkg::Pre-Invoke::=/tmp/mark.sh'" "$work/deb-hostile.log"
check "hostile deb: no hook ran" test ! -e "$root/tmp/pwned-option"
rc=0
# shellcheck disable=SC2016 # the literal text is the point
run root deb-shell.log package_type=deb 'packages=$(touch${IFS}/tmp/pwned-shell)' \
  'repository=[trusted=yes] file:/srv/kiln-repo ./ $(touch${IFS}/tmp/pwned-shell)' || rc=$?
check "hostile shell: fails (rc=$rc)" test "$rc" -ne 0
check "hostile shell: nothing ran" test ! -e "$root/tmp/pwned-shell"
check "hostile shell: cleaned up" no_leftovers
: > "$root/var/lib/kiln-test/dnf"
rc=0
run root rpm-hostile.log package_type=rpm "packages=--nogpgcheck" repository=https://yum.example.com/a || rc=$?
check "hostile rpm: the option comes after --" grep -q 'dnf -y install -- --nogpgcheck' "$root/var/lib/kiln-test/dnf"

# 6. Anything else is refused.
rc=0
run root nupkg.log package_type=nupkg packages=x || rc=$?
check "unsupported package_type: fails (rc=$rc)" grep -q "unsupported package_type 'nupkg'" "$work/nupkg.log"

if ((failures > 0)); then
  echo "$failures check(s) failed; logs in $work" >&2
  exit 1
fi
echo "install_packages.sh: all checks passed"
