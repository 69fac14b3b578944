#!/usr/bin/env bash
# Full bake with the SHIPPED config/packer/aws-ebs.json (SSH communicator, shell provisioner,
# install_packages.sh) against moto, without a VM: the "build instance" Packer connects to is an
# sshd running in a Debian chroot on 127.0.0.1 (the templates' aws_ssh_host/aws_ssh_port/
# aws_ssh_private_key_file/aws_ssh_keypair_name overrides point the communicator at it), while
# every EC2 call goes to moto. Then checks what the bake did in both places.
#
# Usage: tests/support/ssh-chroot-bake.sh VENV WORKDIR [ROOTFS_CACHE]
#   VENV          venv with moto (moto-start.sh creates it when missing)
#   ROOTFS_CACHE  minbase bookworm + sudo tree (see install-packages-chroot-test.sh); default
#                 WORKDIR/rootfs-base. openssh-server is added to a copy (deb.debian.org).
#   env PORT (moto, default 5393), SSH_PORT (default 2293), FIXTURE_DIR (copy the packer logs
#   there: tests/fixtures/output)
# Needs root (chroot, mounts). Binds 127.0.0.1 only; stops sshd and moto and unmounts on exit.
set -euo pipefail

venv=${1:?usage: ssh-chroot-bake.sh VENV WORKDIR [ROOTFS_CACHE]}
work=${2:?usage: ssh-chroot-bake.sh VENV WORKDIR [ROOTFS_CACHE]}
mkdir -p "$work"
work=$(cd "$work" && pwd)
base=${3:-$work/rootfs-base}
port=${PORT:-5393}
ssh_port=${SSH_PORT:-2293}
support=$(cd "$(dirname "$0")" && pwd)
checkout=$(cd "$support/../.." && pwd)
endpoint="http://127.0.0.1:$port"
root="$work/rootfs"
ssh_base="$work/rootfs-ssh"
sshd_pid=""

unmount_all() {
  local tree=$1
  for m in "$tree/dev/pts" "$tree/proc"; do
    if mountpoint -q "$m" 2> /dev/null; then umount "$m"; fi
  done
}
cleanup() {
  if [[ -n $sshd_pid ]]; then kill "$sshd_pid" 2> /dev/null || true; fi
  "$support/moto-stop.sh" "$work"
  unmount_all "$root"
  unmount_all "$ssh_base"
}
trap cleanup EXIT

if [[ ! -x $base/usr/bin/sudo ]]; then
  debootstrap --variant=minbase --include=sudo bookworm "$base" http://deb.debian.org/debian > "$work/debootstrap.log"
fi
# openssh-server on top, once. policy-rc.d keeps its postinst from starting sshd on this host.
if [[ ! -x $ssh_base/usr/sbin/sshd ]]; then
  rm -rf --one-file-system "$ssh_base"
  cp -a "$base" "$ssh_base"
  mount -t proc proc "$ssh_base/proc"
  printf '#!/bin/sh\nexit 101\n' > "$ssh_base/usr/sbin/policy-rc.d"
  chmod 0755 "$ssh_base/usr/sbin/policy-rc.d"
  chroot "$ssh_base" env DEBIAN_FRONTEND=noninteractive apt-get update -q > "$work/ssh-install.log" 2>&1
  chroot "$ssh_base" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    openssh-server >> "$work/ssh-install.log" 2>&1
  rm -f "$ssh_base/usr/sbin/policy-rc.d"
  umount "$ssh_base/proc"
fi

# The instance: a fresh copy, apt limited to the test repository, a sudo user with our key.
unmount_all "$root"
rm -rf --one-file-system "$root"
cp -a "$ssh_base" "$root"
mount -t proc proc "$root/proc"
mount --bind /dev/pts "$root/dev/pts" # ssh_pty: the template asks for a terminal
: > "$root/etc/apt/sources.list"
echo "127.0.1.1 $(hostname)" >> "$root/etc/hosts"
chroot "$root" useradd -m -s /bin/bash builder
echo 'builder ALL=(ALL) NOPASSWD: ALL' > "$root/etc/sudoers.d/builder"
rm -f "$work/id_kiln" "$work/id_kiln.pub"
ssh-keygen -q -t rsa -b 2048 -N '' -C kiln-test -f "$work/id_kiln"
install -d -m 0700 -o 1000 -g 1000 "$root/home/builder/.ssh"
install -m 0600 -o 1000 -g 1000 "$work/id_kiln.pub" "$root/home/builder/.ssh/authorized_keys"
"$support/make-test-debs.sh" "$root/srv/kiln-repo"
mkdir -p "$root/run/sshd"
chroot "$root" /usr/sbin/sshd -D -e -p "$ssh_port" -o ListenAddress=127.0.0.1 \
  -o PasswordAuthentication=no > "$work/sshd.log" 2>&1 &
sshd_pid=$!
for _ in $(seq 1 50); do
  (exec 3<> "/dev/tcp/127.0.0.1/$ssh_port") 2> /dev/null && break
  sleep 0.1
done

# The shipped templates, as kiln would install them (a copy keeps checkout paths out of the log).
mkdir -p "$work/config"
rm -rf "$work/config/packer"
cp -a "$checkout/config/packer" "$work/config/packer"

"$support/moto-start.sh" "$venv" "$port" "$work" > /dev/null
seed=$("$venv/bin/python" "$support/moto-seed.py" "$endpoint" kiln-test "$work/id_kiln.pub")
field() { "$venv/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$seed" "$1"; }
inspect() { "$venv/bin/python" "$support/moto-inspect.py" "$@"; }
expect_json() {
  "$venv/bin/python" -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" \
    || { echo "check failed: $2 on ${1:0:2000}" >&2; exit 1; }
}

export AWS_ACCESS_KEY_ID=AKIAKILNSSHBAKEFAKE1 AWS_SECRET_ACCESS_KEY=kiln-ssh-bake-fake-secret
export CHECKPOINT_DISABLE=1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
# bake AMI_NAME PACKAGES LOG -> packer's exit code; the -var set kiln passes plus the SSH overrides.
bake() {
  local name=$1 packages=$2 log=$3 rc=0 t0
  t0=$(date +%s%N)
  packer build -machine-readable -color=false \
    -var aws_region=us-east-1 -var aws_instance_type=t3.micro -var "aws_source_ami=$(field source_ami)" \
    -var "aws_target_ami=$name" -var aws_ssh_username=builder -var aws_spot_price=0 \
    -var "aws_subnet_id=$(field subnet_id)" -var "aws_vpc_id=$(field vpc_id)" \
    -var aws_associate_public_ip_address=true -var appversion=kiln-hello-1.0.0-h1.abc1234 \
    -var build_host=https://ci.example.com/ -var build_info_url=https://ci.example.com/job/kiln/1/ \
    -var package_type=deb -var "packages=$packages" \
    -var "repository=[trusted=yes] file:/srv/kiln-repo ./" -var upgrade=true \
    -var "configDir=$work/config/packer" \
    -var "aws_ec2_endpoint=$endpoint" -var aws_skip_validation=true \
    -var aws_ssh_host=127.0.0.1 -var "aws_ssh_port=$ssh_port" \
    -var "aws_ssh_private_key_file=$work/id_kiln" -var "aws_ssh_keypair_name=$(field key_name)" \
    "$work/config/packer/aws-ebs.json" > "$work/$log" 2>&1 || rc=$?
  echo "packer build $name (aws-ebs.json over ssh): rc=$rc, $((($(date +%s%N) - t0) / 1000000)) ms; log: $work/$log"
  return $rc
}

if ! bake kiln-ssh-bake kiln-hello,kiln-second ebs-ssh.log; then
  tail -30 "$work/ebs-ssh.log" >&2
  exit 1
fi

# In the instance: packages installed in order by install_packages.sh, services held back,
# nothing left behind.
[[ $(cat "$root/var/lib/kiln-test/order") == $'kiln-hello\nkiln-second' ]] || { echo "install order wrong" >&2; exit 1; }
grep -qx 101 "$root/var/lib/kiln-test/policy-kiln-hello" || { echo "policy-rc.d was not active" >&2; exit 1; }
[[ ! -e $root/etc/apt/sources.list.d/kiln.list && ! -e $root/usr/sbin/policy-rc.d ]] \
  || { echo "install_packages.sh left files behind" >&2; exit 1; }
grep -q 'install_packages.sh: installing kiln-second' "$work/ebs-ssh.log" || { echo "no provisioner output in the log" >&2; exit 1; }

# In moto: the AMI with its tags; the builder ran with the supplied key pair, which Packer must
# neither create nor delete; every call used the environment's credentials.
ami=$(grep -m1 ',artifact,0,id,' "$work/ebs-ssh.log" | cut -d, -f6 | sed 's/^us-east-1://')
img=$(inspect image "$endpoint" us-east-1 "$ami")
expect_json "$img" 'j["state"] == "available" and j["name"] == "kiln-ssh-bake" and j["tags"]["appversion"] == "kiln-hello-1.0.0-h1.abc1234"'
expect_json "$(inspect instances "$endpoint" us-east-1)" 'any(i["key_name"] == "kiln-test" and i["state"] == "terminated" for i in j)'
calls=$(inspect calls "$work/moto_recording.jsonl")
expect_json "$calls" 'not any(c["action"] in ("CreateKeyPair", "DeleteKeyPair") for c in j if c["access_key"] == "AKIAKILNSSHBAKEFAKE1")'
expect_json "$calls" 'any(c["action"] == "RunInstances" and c["params"].get("KeyName") == "kiln-test" for c in j)'
expect_json "$(inspect keypairs "$endpoint" us-east-1)" '[k["key_name"] for k in j] == ["kiln-test"]'

# A package that does not exist: install_packages.sh fails naming it, Packer fails the build,
# creates no AMI and still cleans up.
rm -f "$root/var/lib/kiln-test/order"
chroot "$root" dpkg --purge kiln-second kiln-hello > /dev/null
if bake kiln-ssh-bake-fails kiln-hello,kiln-missing,kiln-second ebs-ssh-install-fails.log; then
  echo "a bake with a missing package succeeded" >&2
  exit 1
fi
grep -q "failed to install package 'kiln-missing'" "$work/ebs-ssh-install-fails.log" \
  || { echo "the log does not name the missing package" >&2; exit 1; }
grep -q ',amazon-ebs,error,Script exited with non-zero exit status: 1' "$work/ebs-ssh-install-fails.log" \
  || { echo "no build error line" >&2; exit 1; }
[[ $(cat "$root/var/lib/kiln-test/order") == kiln-hello ]] || { echo "kept installing after the failure" >&2; exit 1; }
[[ ! -e $root/etc/apt/sources.list.d/kiln.list && ! -e $root/usr/sbin/policy-rc.d ]] \
  || { echo "install_packages.sh left files behind after failing" >&2; exit 1; }
expect_json "$(inspect images "$endpoint" us-east-1)" '[i["name"] for i in j] == ["kiln-ssh-bake"]'
expect_json "$(inspect instances "$endpoint" us-east-1)" 'all(i["state"] == "terminated" for i in j)'
expect_json "$(inspect security-groups "$endpoint" us-east-1)" 'all(g["group_name"] == "default" for g in j)'

if [[ -n ${FIXTURE_DIR:-} ]]; then cp "$work/ebs-ssh.log" "$work/ebs-ssh-install-fails.log" "$FIXTURE_DIR/"; fi
echo "ssh bakes: all checks passed"
