#!/usr/bin/env bash
# `packer validate` every shipped template (config/packer/*.json, *.pkr.hcl) and the test-only moto templates
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
# oracle-oci reads its API signing key (PEM RSA) at validate time; one with a passphrase too.
ssh-keygen -q -t rsa -b 2048 -m PEM -N '' -f "$scratch/oci_api_key" > /dev/null
ssh-keygen -q -t rsa -b 2048 -m PEM -N 'kiln-validate' -f "$scratch/oci_api_key_locked" > /dev/null

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

# Alibaba Cloud: what kiln passes (Rosco's names); the keys only ever in the environment.
ali=(
  -var alicloud_region=cn-hangzhou -var alicloud_instance_type=ecs.c5.large
  -var alicloud_source_image=ubuntu_16_04_64_20G_alibase_20190620.vhd
  -var alicloud_target_image=kiln-validate-all-1700000000000-ubuntu -var alicloud_ssh_username=root
  -var alicloud_vswitch_id=vsw-0123 -var alicloud_vpc_id=vpc-0123
  -var appversion=kiln-validate-1.0.0-h1.abc1234/job/1 -var build_host=https://ci.example.com/
  -var build_info_url=https://ci.example.com/job/1/ -var package_type=deb
  -var 'packages=kiln-validate=1.0.0-h1 nginx' -var upgrade=true -var "configDir=$shipped"
)
ali_minimal=(
  -var alicloud_region=cn-hangzhou -var alicloud_instance_type=ecs.c5.large
  -var alicloud_source_image=m-0123 -var alicloud_target_image=kiln-minimal
  -var alicloud_ssh_username=root -var "configDir=$shipped"
)
for t in "$shipped"/alicloud.json "$shipped"/alicloud-multi.json; do
  ALICLOUD_ACCESS_KEY=validate ALICLOUD_SECRET_KEY=validate check "kiln vars" ok "$t" "${ali[@]}"
  ALICLOUD_ACCESS_KEY=validate ALICLOUD_SECRET_KEY=validate check "defaults only" ok "$t" "${ali_minimal[@]}"
done
ALICLOUD_ACCESS_KEY=validate ALICLOUD_SECRET_KEY=validate check "share_with + copy_to" ok \
  "$shipped/alicloud-multi.json" "${ali[@]}" "${multi[@]}"

# Tencent Cloud: what kiln passes; the secret id and key only ever in the environment.
tc=(
  -var tencentcloud_region=ap-guangzhou -var tencentcloud_zone=ap-guangzhou-3
  -var tencentcloud_instance_type=S3.SMALL1 -var tencentcloud_source_image_id=img-pyqx34y1
  -var tencentcloud_target_image=kiln-validate-all-1700000000000-ubuntu
  -var tencentcloud_ssh_username=ubuntu -var appversion=kiln-validate-1.0.0-h1.abc1234/job/1
  -var build_host=https://ci.example.com/ -var package_type=deb
  -var 'packages=kiln-validate=1.0.0-h1 nginx' -var upgrade=true -var "configDir=$shipped"
)
tc_network=(
  -var tencentcloud_vpc_id=vpc-0123 -var tencentcloud_subnet_id=subnet-0123
  -var tencentcloud_associate_public_ip_address=false
)
tc_keys() { TENCENTCLOUD_SECRET_ID=validate TENCENTCLOUD_SECRET_KEY=validate check "$@"; }
tc_keys "kiln vars" ok "$shipped/tencentcloud.json" "${tc[@]}"
tc_keys "vpc, subnet, no public ip" ok "$shipped/tencentcloud.json" "${tc[@]}" "${tc_network[@]}"
tc_keys "a 60-character image name (kiln's limit)" ok "$shipped/tencentcloud.json" "${tc[@]}" \
  -var "tencentcloud_target_image=$(printf 'k%.0s' {1..60})"

# Huawei Cloud: Packer 1.6.6 has no huaweicloud-ecs builder (it is in Huawei's plugin), so the
# template's syntax is checked, and its variables and provisioner with the builder swapped for
# Packer's null builder (jq), with what kiln passes.
hw=(
  -var huaweicloud_region=cn-north-4 -var huaweicloud_image_name=kiln-validate-all-1700000000000-ubuntu
  -var huaweicloud_eip_type=5_bgp -var huaweicloud_ssh_username=root
  -var huaweicloud_instance_type=s3.small.1 -var huaweicloud_source_image_id=f1dd2272-7041-479e-9663-646632b6ac00
  -var huaweicloud_auth_url=https://iam.example.com/v3 -var huaweicloud_username=baker
  -var huaweicloud_project_name=cn-north-4 -var huaweicloud_domain_name=example
  -var huaweicloud_insecure=false -var huaweicloud_vpc_id=vpc-0123 -var huaweicloud_subnet_id=subnet-0123
  -var huaweicloud_security_group=sg-0123 -var huaweicloud_eip_bandwidth_size=2
  -var build_info_url=https://ci.example.com/job/1/ -var appversion=kiln-validate-1.0.0-h1.abc1234/job/1
  -var package_type=deb -var 'packages=kiln-validate=1.0.0-h1 nginx' -var "configDir=$shipped"
)
check "syntax" ok "$shipped/huaweicloud.json" -syntax-only
jq '.builders = [{"type": "null", "communicator": "none"}]' "$shipped/huaweicloud.json" \
  > "$scratch/huaweicloud-null.json"
HUAWEICLOUD_PASSWORD=validate check "variables and provisioner (null builder)" ok \
  "$scratch/huaweicloud-null.json" "${hw[@]}"

# Oracle Cloud: what kiln passes; the key's passphrase only ever in the environment
# (validate decrypts the key, offline, so a wrong or missing passphrase fails).
oci=(
  -var oracle_availability_domain=lrFb:US-ASHBURN-AD-1 -var oracle_region=us-ashburn-1
  -var oracle_base_image_id=ocid1.image.oc1.iad.ubuntu -var oracle_compartment_id=ocid1.compartment.oc1..c
  -var oracle_image_name=kiln-validate-all-1700000000000-ubuntu -var oracle_instance_shape=VM.Standard2.1
  -var oracle_ssh_user_name=ubuntu -var oracle_subnet_id=ocid1.subnet.oc1.iad.s
  -var oracle_tenancy_id=ocid1.tenancy.oc1..t -var oracle_user_id=ocid1.user.oc1..u
  -var oracle_fingerprint=12:34:56:78:9a:bc:de:f0:12:34:56:78:9a:bc:de:f0
  -var build_info_url=https://ci.example.com/job/1/ -var appversion=kiln-validate-1.0.0-h1.abc1234/job/1
  -var package_type=deb -var 'packages=kiln-validate=1.0.0-h1 nginx' -var "configDir=$shipped"
)
check "kiln vars" ok "$shipped/oci.json" "${oci[@]}" -var "oracle_ssh_private_key_file_path=$scratch/oci_api_key"
OCI_KEY_PASSPHRASE=kiln-validate check "a locked key, its passphrase in the environment" ok \
  "$shipped/oci.json" "${oci[@]}" -var "oracle_ssh_private_key_file_path=$scratch/oci_api_key_locked"

# Azure (HCL templates): what kiln passes on the command line, and the service principal in a
# .json var file, as kiln hands Packer its in-memory one. Packer refuses an undeclared -var in
# HCL mode, so every variable kiln may pass must be declared.
az=(
  -var azure_location=westus -var azure_resource_group=kiln-images
  -var azure_subscription_id=00000000-0000-0000-0000-0000000000bb
  -var azure_tenant_id=00000000-0000-0000-0000-0000000000aa
  -var azure_object_id=00000000-0000-0000-0000-0000000000cc
  -var azure_managed_image_name=42-production -var build_host=https://ci.example.com/
  -var build_info_url=https://ci.example.com/job/1/ -var appversion=kiln-validate-1.0.0-h1.abc1234/job/1
  -var 'repository=https://deb.example.com/debian stable main' -var upgrade=true -var "configDir=$shipped"
)
az_marketplace=(-var azure_image_publisher=Canonical -var azure_image_offer=UbuntuServer -var azure_image_sku=18.04-LTS)
az_managed=(-var azure_custom_managed_image_name=kiln-base-image)
echo '{"azure_client_id": "kiln-validate-id", "azure_client_secret": "kiln-validate-secret"}' > "$scratch/azure-masked.json"
for t in azure-linux azure-windows; do
  check "kiln vars, marketplace image" ok "$shipped/$t.pkr.hcl" "${az[@]}" "${az_marketplace[@]}" \
    -var package_type=deb -var 'packages=kiln-validate=1.0.0-h1 nginx' -var-file="$scratch/azure-masked.json"
  check "kiln vars, managed image" ok "$shipped/$t-managed-image.pkr.hcl" "${az[@]}" "${az_managed[@]}" \
    -var package_type=deb -var 'packages=kiln-validate=1.0.0-h1 nginx' -var-file="$scratch/azure-masked.json"
  check "an undeclared variable" fail "$shipped/$t.pkr.hcl" "${az[@]}" "${az_marketplace[@]}" -var kiln_undeclared=x
done
check "no marketplace image" fail "$shipped/azure-linux.pkr.hcl" "${az[@]}"

# More checks that must fail.
# The keys reach the builder through the environment only: without them it refuses.
unset ALICLOUD_ACCESS_KEY ALICLOUD_SECRET_KEY
check "alicloud without keys in the environment" fail "$shipped/alicloud.json" "${ali[@]}"
ALICLOUD_ACCESS_KEY=validate ALICLOUD_SECRET_KEY=validate check "alicloud missing alicloud_target_image" fail "$shipped/alicloud.json" \
  -var alicloud_region=cn-hangzhou -var "configDir=$shipped"
check "tencentcloud without keys in the environment" fail "$shipped/tencentcloud.json" "${tc[@]}"
tc_keys "a 61-character tencentcloud image name" fail "$shipped/tencentcloud.json" "${tc[@]}" \
  -var "tencentcloud_target_image=$(printf 'k%.0s' {1..61})"
ALICLOUD_ACCESS_KEY=validate ALICLOUD_SECRET_KEY=validate check "alicloud image name with a space" fail \
  "$shipped/alicloud.json" "${ali[@]}" -var 'alicloud_target_image=kato app'
ALICLOUD_ACCESS_KEY=validate ALICLOUD_SECRET_KEY=validate check "alicloud image name of 129 characters" fail \
  "$shipped/alicloud.json" "${ali[@]}" -var "alicloud_target_image=$(printf 'k%.0s' {1..129})"
# Packer 1.6.6 itself: kiln's probe (providers::huaweicloud::plugin) relies on this answer.
check "huaweicloud-ecs unknown to this Packer" fail "$shipped/huaweicloud.json" "${hw[@]}"
check "oracle locked key without its passphrase" fail "$shipped/oci.json" "${oci[@]}" \
  -var "oracle_ssh_private_key_file_path=$scratch/oci_api_key_locked"
OCI_KEY_PASSPHRASE=wrong-one check "oracle locked key, wrong passphrase" fail "$shipped/oci.json" \
  "${oci[@]}" -var "oracle_ssh_private_key_file_path=$scratch/oci_api_key_locked"
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
