#!/usr/bin/env bash
# `packer validate` every shipped template (config/packer/*.json) and the test-only moto templates
# (tests/fixtures/packer/*.json) with the -var sets kiln passes, so a template/variable mismatch
# fails CI instead of a bake. Needs packer 1.6.6 on PATH (or PACKER=/path/to/packer); offline:
# `packer validate` does not call AWS.
#
# Usage: tests/support/validate-templates.sh        exit 0 = every check passed
set -euo pipefail
# Packer never phones home from kiln's scripts (kiln sets the same for every Packer it starts).
export CHECKPOINT_DISABLE=1

packer=${PACKER:-packer}
root=$(cd "$(dirname "$0")/../.." && pwd)
shipped="$root/config/packer"
fixtures="$root/tests/fixtures/packer"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# ssh_private_key_file must name a readable key at validate time.
ssh-keygen -q -t ed25519 -N '' -f "$scratch/id_kiln" > /dev/null

# What kiln passes for a typical AWS deb bake (Rosco's names), plus kiln's own additions.
base=(
  -var aws_region=us-east-1 -var aws_instance_type=t3.micro -var aws_source_ami=ami-785db401
  -var aws_target_ami=kiln-validate-all-1700000000000-bionic -var aws_ssh_username=ubuntu
  -var aws_spot_price=0 -var aws_associate_public_ip_address=true
  -var aws_subnet_id=subnet-0123456789abcdef0 -var aws_vpc_id=vpc-0123456789abcdef0
  -var appversion=kiln-validate-1.0.0-h1.abc1234/job/1 -var build_host=https://ci.example.com/
  -var build_info_url=https://ci.example.com/job/1/ -var package_type=deb
  -var 'repository=https://deb.example.com/debian stable main;https://user:pass@deb2.example.com/x ./'
  -var 'packages=kiln-validate=1.0.0-h1 nginx' -var upgrade=true -var "configDir=$shipped"
  -var aws_ec2_endpoint=http://127.0.0.1:5000 -var aws_skip_validation=true
)
minimal=(
  -var aws_region=us-east-1 -var aws_source_ami=ami-785db401 -var aws_target_ami=kiln-minimal
  -var aws_instance_type=t3.micro -var aws_ssh_username=ubuntu -var "configDir=$shipped"
)
spot=(-var aws_spot_price=auto -var aws_spot_price_auto_product=Linux/UNIX)
enhanced=(-var aws_ena_support=true -var aws_associate_public_ip_address=false)
ssh_overrides=(
  -var aws_ssh_host=127.0.0.1 -var aws_ssh_port=2222
  -var "aws_ssh_private_key_file=$scratch/id_kiln" -var aws_ssh_keypair_name=kiln-test
)
multi=(
  -var share_with_1=123456789012 -var share_with_2=210987654321 -var copy_to_1=us-west-2
)

failures=0
# check NAME EXPECT TEMPLATE VARS...   EXPECT is "ok" or "fail"
check() {
  local name=$1 expect=$2 template=$3
  shift 3
  local out rc=0
  out=$("$packer" validate "$@" "$template" 2>&1) || rc=$?
  if [[ $expect == ok && $rc -eq 0 ]] || [[ $expect == fail && $rc -ne 0 ]]; then
    echo "ok   $(basename "$template"): $name"
  else
    echo "FAIL $(basename "$template"): $name (expected $expect, packer validate rc=$rc)"
    while IFS= read -r line; do echo "     $line"; done <<< "$out"
    failures=$((failures + 1))
  fi
}

for t in "$shipped"/aws-ebs.json "$shipped"/aws-multi-ebs.json \
  "$fixtures"/aws-ebs-nossh.json "$fixtures"/aws-multi-ebs-nossh.json; do
  check "kiln vars" ok "$t" "${base[@]}"
  check "defaults only" ok "$t" "${minimal[@]}"
  check "spot auto" ok "$t" "${base[@]}" "${spot[@]}"
  check "ena + no public ip" ok "$t" "${base[@]}" "${enhanced[@]}"
  check "aws_skip_validation=false" ok "$t" "${base[@]}" -var aws_skip_validation=false
done
for t in "$shipped"/aws-ebs.json "$shipped"/aws-multi-ebs.json; do
  check "ssh overrides" ok "$t" "${base[@]}" "${ssh_overrides[@]}"
done
for t in "$shipped"/aws-multi-ebs.json "$shipped"/aws-multi-chroot.json "$fixtures"/aws-multi-ebs-nossh.json; do
  check "share_with + copy_to" ok "$t" "${base[@]}" "${multi[@]}"
done
for t in "$shipped"/aws-chroot.json "$shipped"/aws-multi-chroot.json; do
  check "kiln vars" ok "$t" "${base[@]}"
  check "defaults only" ok "$t" "${minimal[@]}"
  check "ena" ok "$t" "${base[@]}" -var aws_ena_support=true
done

# Google (Rosco's gce variables, the artifact and manifest files kiln writes per run) and Docker.
echo '[]' > "$scratch/artifacts.json"
# A service account key's shape (validate parses the file; nothing is signed).
echo '{"type": "service_account", "project_id": "kiln-validate", "client_email": "kiln@kiln-validate.iam.gserviceaccount.com", "private_key_id": "0", "private_key": ""}' > "$scratch/gce-key.json"
gce=(
  -var gce_project_id=kiln-validate -var gce_zone=us-central1-f -var gce_network=default
  -var gce_target_image=kiln-validate-all-1700000000000-bionic
  -var appversion=kiln-validate-1.0.0-h1.abc1234/job/1 -var build_info_url=https://ci.example.com/job/1/
  -var package_type=deb -var 'packages=kiln-validate=1.0.0-h1 nginx' -var "configDir=$shipped"
  -var "artifactFile=$scratch/artifacts.json" -var "manifestFile=$scratch/manifest.json"
)
check "kiln vars, source image" ok "$shipped/gce.json" "${gce[@]}" -var gce_source_image=ubuntu-1804-bionic-v20200923
check "kiln vars, image family" ok "$shipped/gce.json" "${gce[@]}" -var gce_source_image_family=ubuntu-1804-lts
check "network project, subnetwork, internal ip, key file" ok "$shipped/gce.json" "${gce[@]}" \
  -var gce_source_image_family=ubuntu-1804-lts -var gce_network_project_id=xpn-host \
  -var gce_subnetwork=sub-1 -var gce_use_internal_ip=true -var "gce_account_file=$scratch/gce-key.json"
docker=(
  -var docker_source_image=ubuntu:bionic -var docker_target_image=my-org/kiln-validate
  -var docker_target_image_tag=35b6f1c -var docker_target_repository=registry.example:5000
  -var appversion=kiln-validate-1.0.0-h1.abc1234/job/1 -var package_type=deb
  -var 'packages=kiln-validate=1.0.0-h1 nginx' -var "configDir=$shipped"
)
check "kiln vars" ok "$shipped/docker.json" "${docker[@]}"

# The checks above prove nothing if validate passed everything: these must fail.
check "missing gce_project_id (required)" fail "$shipped/gce.json" \
  -var gce_zone=us-central1-f -var gce_target_image=x -var "configDir=$shipped" \
  -var "artifactFile=$scratch/artifacts.json" -var "manifestFile=$scratch/m.json"
check "missing docker_target_repository (required)" fail "$shipped/docker.json" \
  -var docker_source_image=ubuntu:bionic -var docker_target_image=x -var "configDir=$shipped"
check "missing aws_target_ami (required)" fail "$shipped/aws-ebs.json" \
  -var aws_region=us-east-1 -var aws_source_ami=ami-785db401 -var "configDir=$shipped"
check "configDir without install_packages.sh" fail "$shipped/aws-ebs.json" \
  "${base[@]}" -var "configDir=$scratch"
check "non-boolean aws_skip_validation" fail "$shipped/aws-ebs.json" \
  "${base[@]}" -var aws_skip_validation=yes

if ((failures > 0)); then
  echo "$failures template check(s) failed" >&2
  exit 1
fi
echo "all template checks passed"
