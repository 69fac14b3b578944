#!/usr/bin/env bash
# kiln's package installer. The shipped templates upload it to the build instance (or run it in
# the chroot) through Packer's shell provisioner, with these environment variables:
#
#   repository    package repositories, several separated by ';'. deb: the tail of an apt source
#                 line ("https://repo.example.com/debian stable main"; "deb " is added);
#                 rpm: a yum/dnf baseurl. May embed credentials (https://user:pass@host/...).
#   package_type  deb | rpm
#   packages      packages to install, in order, separated by spaces or commas
#                 (deb: name or name=version; rpm: name or name-version-release)
#   upgrade       "true" to upgrade the installed packages before installing
#
# Every package is installed on its own, in the given order, so the log names the one that failed
# and later packages can rely on earlier ones. Package names come after `--` and every expansion
# is quoted, so nothing in `packages` or `repository` becomes an option or a command (kiln also
# refuses such package names before Packer runs; this script holds on its own). The repository
# files this script adds are removed again, also when it fails, so the image never carries
# (credentialed) bake-time repositories.
#
# Not supported (unlike Rosco's script): /tmp/artifacts.json package artifacts. kiln's AWS
# templates never upload that file; if it is present we say so and ignore it.
set -euo pipefail

readonly APT_LIST=/etc/apt/sources.list.d/kiln.list
readonly POLICY_RC=/usr/sbin/policy-rc.d
readonly POLICY_RC_SAVED=/usr/sbin/policy-rc.d.kiln-saved
readonly YUM_REPO_PREFIX=/etc/yum.repos.d/kiln-

# Packer's shell provisioner connects as the SSH user, which is usually not root.
as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"; else sudo -- "$@"; fi
}

# Some callers (Rosco's chroot templates did) wrap values in quotes; accept that.
strip_quotes() {
  local v=$1
  v=${v#[\"\']}
  v=${v%[\"\']}
  printf '%s' "$v"
}

# Never print repository credentials: https://user:pass@host/x -> https://host/x
redact_credentials() {
  sed -E 's#([A-Za-z][A-Za-z0-9+.-]*://)[^/@[:space:]]*@#\1#g' <<< "$1"
}

die() {
  printf 'install_packages.sh: %s\n' "$*" >&2
  exit 1
}

repository=$(strip_quotes "${repository:-}")
package_type=$(strip_quotes "${package_type:-}")
packages=$(strip_quotes "${packages:-}")
upgrade=$(strip_quotes "${upgrade:-}")

printf 'repository=%s\n' "$(redact_credentials "$repository")"
printf 'package_type=%s\n' "$package_type"
printf 'packages=%s\n' "$packages"
printf 'upgrade=%s\n' "$upgrade"
if [[ -e /tmp/artifacts.json ]]; then
  echo "install_packages.sh: /tmp/artifacts.json is not supported by kiln's templates; ignoring it"
fi

# Word-splitting into an array is the point here: package names contain no spaces.
read -r -a package_list <<< "${packages//,/ }"
repos=()
IFS=';' read -r -a raw_repos <<< "$repository"
# ${a[@]+"${a[@]}"}: bash 4.2 (Amazon Linux 2, CentOS 7) treats an empty array as unset under -u.
for r in ${raw_repos[@]+"${raw_repos[@]}"}; do
  r=$(sed -E 's/^[[:space:]]+|[[:space:]]+$//g' <<< "$r")
  if [[ -n $r ]]; then repos+=("$r"); fi
done

install_deb() {
  saved_policy=false
  cleanup_deb() {
    as_root rm -f "$APT_LIST" || true
    as_root rm -f "$POLICY_RC" || true
    if [[ $saved_policy == true ]]; then as_root mv -f "$POLICY_RC_SAVED" "$POLICY_RC" || true; fi
  }
  trap cleanup_deb EXIT

  # Packages must not start their services while the image is being built (in a chroot they
  # would run on the bake host); invoke-rc.d honours exit 101 as "action forbidden".
  if as_root test -e "$POLICY_RC"; then
    as_root mv -f "$POLICY_RC" "$POLICY_RC_SAVED"
    saved_policy=true
  fi
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$POLICY_RC" > /dev/null
  as_root chmod 0755 "$POLICY_RC"

  if ((${#repos[@]} > 0)); then
    for r in ${repos[@]+"${repos[@]}"}; do
      case $r in
        deb\ * | deb-src\ *) printf '%s\n' "$r" ;;
        *) printf 'deb %s\n' "$r" ;;
      esac
    done | as_root tee "$APT_LIST" > /dev/null
  fi

  # confold/confdef: keep existing config files instead of prompting (there is no one to ask).
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -q
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  as_root "${apt[@]}" update
  if [[ $upgrade == true ]]; then
    if command -v unattended-upgrade > /dev/null; then
      as_root env DEBIAN_FRONTEND=noninteractive unattended-upgrade -v
    else
      as_root "${apt[@]}" upgrade
    fi
  fi
  for p in ${package_list[@]+"${package_list[@]}"}; do
    printf 'install_packages.sh: installing %s\n' "$p"
    as_root "${apt[@]}" install --allow-downgrades -- "$p" \
      || die "failed to install package '$p' (apt-get exit $?)"
  done
}

install_rpm() {
  local yum
  if command -v dnf > /dev/null; then yum=dnf; elif command -v yum > /dev/null; then yum=yum; else
    die "package_type=rpm but neither dnf nor yum is installed"
  fi
  cleanup_rpm() {
    as_root rm -f "$YUM_REPO_PREFIX"*.repo || true
  }
  trap cleanup_rpm EXIT

  local i=0
  for r in ${repos[@]+"${repos[@]}"}; do
    i=$((i + 1))
    # gpgcheck=0 as in Rosco: bake repositories are usually internal and unsigned.
    printf '[kiln-%d]\nname=kiln bake repository %d\nbaseurl=%s\nenabled=1\ngpgcheck=0\n' "$i" "$i" "$r" \
      | as_root tee "$YUM_REPO_PREFIX$i.repo" > /dev/null
  done
  if [[ $upgrade == true ]]; then
    as_root "$yum" -y update
  fi
  for p in ${package_list[@]+"${package_list[@]}"}; do
    printf 'install_packages.sh: installing %s\n' "$p"
    as_root "$yum" -y install -- "$p" || die "failed to install package '$p' ($yum exit $?)"
  done
}

# Turn signals (Packer cancelling, the SSH session dropping) into an exit so the EXIT trap
# still removes the repository files and policy-rc.d.
trap 'exit 130' INT TERM HUP

case $package_type in
  deb) install_deb ;;
  rpm) install_rpm ;;
  *) die "unsupported package_type '$package_type' (expected deb or rpm)" ;;
esac
echo "install_packages.sh: done"
