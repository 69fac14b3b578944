#!/usr/bin/env bash
# Bake for real against moto with packer 1.6.6 and save Packer's raw machine-readable output as
# the fixtures src/builders/packer/output.rs is tested against (tests/fixtures/output/*.log). Also checks
# each bake's effect in moto (AMIs, tags, launch permissions, copies, cleanup), so a fixture is
# only rewritten from a bake that did what it claims.
#
# Usage: tests/support/capture-output-fixtures.sh VENV [PORT]
#   VENV  python venv with moto (created by moto-start.sh if missing); PORT default 5391
# Everything runs on 127.0.0.1; moto is stopped on exit. Credentials are fake and passed in the
# environment, as kiln does, so they never appear on packer's command line or in the fixtures.
set -euo pipefail

venv=${1:?usage: capture-output-fixtures.sh VENV [PORT]}
port=${2:-5391}
root=$(cd "$(dirname "$0")/../.." && pwd)
support="$root/tests/support"
templates="$root/tests/fixtures/packer"
out="$root/tests/fixtures/output"
endpoint="http://127.0.0.1:$port"
work=$(mktemp -d)
trap '"$support/moto-stop.sh" "$work"; rm -rf "$work"' EXIT
mkdir -p "$out"

"$support/moto-start.sh" "$venv" "$port" "$work" > /dev/null
seed=$("$venv/bin/python" "$support/moto-seed.py" "$endpoint")
field() { "$venv/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$seed" "$1"; }
inspect() { "$venv/bin/python" "$support/moto-inspect.py" "$@"; }
source_ami=$(field source_ami)
subnet_id=$(field subnet_id)
vpc_id=$(field vpc_id)

export AWS_ACCESS_KEY_ID=AKIAKILNFIXTUREFAKE1 AWS_SECRET_ACCESS_KEY=kiln-fixture-fake-secret
# Packer must not phone home or read a real profile.
export CHECKPOINT_DISABLE=1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

# The -var set kiln passes for a deb bake (Rosco's names) plus its moto settings.
kiln_vars() {
  local name=$1
  echo -var aws_region=us-east-1 -var aws_instance_type=t3.micro -var "aws_source_ami=$source_ami" \
    -var "aws_target_ami=$name" -var aws_ssh_username=ubuntu -var aws_spot_price=0 \
    -var "aws_subnet_id=$subnet_id" -var "aws_vpc_id=$vpc_id" \
    -var aws_associate_public_ip_address=true -var appversion=kiln-fixture-1.0.0-h7.abc1234 \
    -var build_host=https://ci.example.com/ -var build_info_url=https://ci.example.com/job/kiln/7/ \
    -var package_type=deb -var packages=kiln-fixture=1.0.0-h7 -var "configDir=$root/config/packer" \
    -var "aws_ec2_endpoint=$endpoint" -var aws_skip_validation=true
}

# bake FIXTURE EXPECTED_RC TEMPLATE [packer build args...]   (FIXTURE "-": check only, not saved)
bake() {
  local fixture=$1 expected=$2 template=$3 rc=0 t0 t1
  shift 3
  t0=$(date +%s%N)
  [[ $template == /* ]] || template="$templates/$template"
  packer build -machine-readable -color=false "$@" "$template" > "$work/$fixture" 2>&1 || rc=$?
  t1=$(date +%s%N)
  local label=$fixture
  if [[ $fixture == - ]]; then label="(check only) $(basename "$template")"; fi
  printf '%-40s rc=%s  %4d ms\n' "$label" "$rc" $(((t1 - t0) / 1000000))
  if [[ $rc -ne $expected ]]; then
    echo "expected rc=$expected" >&2
    cat "$work/$fixture" >&2
    exit 1
  fi
  if [[ $fixture != - ]]; then cp "$work/$fixture" "$out/$fixture"; fi
}

# artifact_id FIXTURE -> "region:ami,region:ami"
artifact_id() {
  grep -m1 ',artifact,0,id,' "$work/$1" | cut -d, -f6- | sed 's/%!(PACKER_COMMA)/,/g'
}
ami_in() { tr ',' '\n' <<< "$1" | sed -n "s/^$2://p"; }
# expect_json JSON PYTHON_EXPR -- fail unless the expression over `j` is true
expect_json() {
  "$venv/bin/python" -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" \
    || { echo "check failed: $2 on ${1:0:2000}" >&2; exit 1; }
}

# 1. One region.
# shellcheck disable=SC2046 # kiln_vars emits separate words on purpose
bake ebs-single.log 0 aws-ebs-nossh.json $(kiln_vars kiln-fixture-single)
ids=$(artifact_id ebs-single.log)
img=$(inspect image "$endpoint" us-east-1 "$(ami_in "$ids" us-east-1)")
expect_json "$img" 'j["state"] == "available" and j["name"] == "kiln-fixture-single"'
expect_json "$img" 'j["tags"]["base_ami_id"] == "ami-785db401" and j["tags"]["appversion"] == "kiln-fixture-1.0.0-h7.abc1234"'
expect_json "$img" 'j["launch_permission_user_ids"] == []'

# 2. Copied to us-west-2 and shared with two accounts; share_with_3..10 and copy_to_2..5 empty.
# shellcheck disable=SC2046
bake ebs-multi.log 0 aws-multi-ebs-nossh.json $(kiln_vars kiln-fixture-multi) \
  -var share_with_1=123456789012 -var share_with_2=210987654321 -var copy_to_1=us-west-2
ids=$(artifact_id ebs-multi.log)
for region in us-east-1 us-west-2; do
  img=$(inspect image "$endpoint" "$region" "$(ami_in "$ids" "$region")")
  expect_json "$img" 'j["state"] == "available" and j["name"] == "kiln-fixture-multi"'
  expect_json "$img" 'j["launch_permission_user_ids"] == ["123456789012", "210987654321"]'
  expect_json "$img" 'j["tags"]["build_info_url"] == "https://ci.example.com/job/kiln/7/"'
done

# 2b. The multi template with every share_with/copy_to slot empty: no sharing, no copies, no
#     ModifyImageAttribute/CopyImage call with an empty value (not saved as a fixture).
# shellcheck disable=SC2046
bake - 0 aws-multi-ebs-nossh.json $(kiln_vars kiln-fixture-multi-empty)
ids=$(artifact_id -)
[[ $ids == us-east-1:ami-* && $ids != *,* ]] || { echo "unexpected artifact id: $ids" >&2; exit 1; }
expect_json "$(inspect image "$endpoint" us-east-1 "${ids#us-east-1:}")" 'j["launch_permission_user_ids"] == []'
expect_json "$(inspect calls "$work/moto_recording.jsonl")" 'not any(v == "" for c in j if c["action"] in ("ModifyImageAttribute", "CopyImage") for k, v in c["params"].items() if k.endswith("UserId") or k.startswith("UserId") or k == "SourceRegion")'
expect_json "$(inspect images "$endpoint" us-west-2)" '[i["name"] for i in j] == ["kiln-fixture-multi"]'

# 3. Source AMI that does not exist: fails before launching anything.
# shellcheck disable=SC2046
bake ebs-bad-ami.log 1 aws-ebs-nossh.json $(kiln_vars kiln-fixture-bad-ami) -var aws_source_ami=ami-deadbeef

# 4. A template error: Packer rejects the config before building ("yes" is not a bool).
# shellcheck disable=SC2046
bake validate-error.log 1 aws-ebs-nossh.json $(kiln_vars kiln-fixture-invalid) -var aws_skip_validation=yes

# 5. -timestamp-ui (kiln's packer.timestamp option).
# shellcheck disable=SC2046
bake ebs-timestamp-ui.log 0 aws-ebs-nossh.json -timestamp-ui $(kiln_vars kiln-fixture-timestamp)

# 6. encrypt_boot: Packer 1.6.6 creates the AMI under a random temporary name, then copies it
#    (encrypted) to the real name -- the "Creating AMI <name>" line does not carry the image name.
"$venv/bin/python" - "$templates/aws-ebs-nossh.json" "$work/aws-ebs-nossh-encrypted.json" <<'PY'
import json, sys
template = json.load(open(sys.argv[1]))
template["builders"][0]["encrypt_boot"] = True
json.dump(template, open(sys.argv[2], "w"), indent=2)
PY
# shellcheck disable=SC2046
bake ebs-encrypted.log 0 "$work/aws-ebs-nossh-encrypted.json" $(kiln_vars kiln-fixture-encrypted)
ids=$(artifact_id ebs-encrypted.log)
img=$(inspect image "$endpoint" us-east-1 "$(ami_in "$ids" us-east-1)")
expect_json "$img" 'j["state"] == "available" and j["name"] == "kiln-fixture-encrypted"'

# 7. Not AWS: the null builder (artifact id "Null", no region), a manifest post-processor (a second
#    artifact with the same id) and a provisioner writing to stderr (ui,error lines in a bake that
#    succeeds).
cat > "$work/null-manifest.json" <<JSON
{
  "builders": [{"type": "null", "communicator": "none"}],
  "provisioners": [{"type": "shell-local", "inline": ["echo to stdout, with a comma", "echo to stderr >&2"]}],
  "post-processors": [{"type": "manifest", "output": "$work/manifest.json"}]
}
JSON
bake null-manifest.log 0 "$work/null-manifest.json"

# 8. The shipped aws-ebs.json (SSH), cancelled with SIGTERM while it waits for SSH. The SSH host
#    is overridden to a closed loopback port: left empty, Packer would dial the fake public IP
#    moto gives the instance. Key pair and key file stay empty: Packer makes a temporary pair.
t0=$(date +%s%N)
# shellcheck disable=SC2046
packer build -machine-readable -color=false $(kiln_vars kiln-fixture-cancelled) \
  -var aws_ssh_host=127.0.0.1 -var aws_ssh_port=1 "$root/config/packer/aws-ebs.json" \
  > "$work/ebs-cancelled.log" 2>&1 &
packer_pid=$!
for _ in $(seq 1 100); do
  grep -q 'Waiting for SSH to become available' "$work/ebs-cancelled.log" && break
  sleep 0.1
done
kill -TERM "$packer_pid"
rc=0
wait "$packer_pid" || rc=$?
printf '%-40s rc=%s  %4d ms\n' ebs-cancelled.log "$rc" $((($(date +%s%N) - t0) / 1000000))
grep -q 'Creating temporary keypair' "$work/ebs-cancelled.log" || { echo "no temporary key pair" >&2; exit 1; }
grep -q 'Cleanly cancelled builds after being interrupted' "$work/ebs-cancelled.log" \
  || { cat "$work/ebs-cancelled.log" >&2; exit 1; }
[[ $rc -eq 1 ]] || { echo "cancelled packer exited $rc" >&2; exit 1; }
cp "$work/ebs-cancelled.log" "$out/ebs-cancelled.log"

# Packer cleaned up after every bake, the failed ones included, and only ever called EC2 with
# the credentials from the environment.
for region in us-east-1 us-west-2; do
  expect_json "$(inspect keypairs "$endpoint" "$region")" 'j == []'
  expect_json "$(inspect security-groups "$endpoint" "$region")" 'all(g["group_name"] == "default" for g in j)'
  expect_json "$(inspect instances "$endpoint" "$region")" 'all(i["state"] == "terminated" for i in j)'
done
expect_json "$(inspect images "$endpoint" us-east-1)" 'sorted(i["name"] for i in j) == ["kiln-fixture-encrypted", "kiln-fixture-multi", "kiln-fixture-multi-empty", "kiln-fixture-single", "kiln-fixture-timestamp"]'
# Every request signed with Packer's key (the others are moto-seed/moto-inspect and the
# readiness probe) went to EC2, in the bake region or the copy target.
calls=$(inspect calls "$work/moto_recording.jsonl")
expect_json "$calls" 'all(c["access_key"].startswith(("AKIAKILNFIXTUREFAKE1", "AKIAKILNSEED", "AKIAKILNINSPECT")) for c in j if c["access_key"] != "?")'
expect_json "$calls" '{(c["service"], c["region"]) for c in j if c["access_key"] == "AKIAKILNFIXTUREFAKE1"} == {("ec2", "us-east-1"), ("ec2", "us-west-2")}'
if grep -l "kiln-fixture-fake-secret" "$out"/*.log; then
  echo "a fixture contains the secret key" >&2
  exit 1
fi
echo "fixtures written to $out"
