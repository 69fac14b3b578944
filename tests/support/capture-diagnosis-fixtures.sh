#!/usr/bin/env bash
# Bake for real against misconfigured moto with packer 1.6.6 and save Packer's raw
# machine-readable output as the fixtures src/diagnosis.rs is tested against
# (tests/fixtures/diagnosis/moto-*.log). The handmade-*.log fixtures there are written from AWS's
# documented error messages: moto cannot produce those failures.
#
# Usage: tests/support/capture-diagnosis-fixtures.sh VENV [PORT]
# Everything runs on 127.0.0.1; moto is stopped on exit; credentials are fake.
set -euo pipefail

venv=${1:?usage: capture-diagnosis-fixtures.sh VENV [PORT]}
port=${2:-5392}
root=$(cd "$(dirname "$0")/../.." && pwd)
support="$root/tests/support"
out="$root/tests/fixtures/diagnosis"
endpoint="http://127.0.0.1:$port"
work=$(mktemp -d)
trap '"$support/moto-stop.sh" "$work"; rm -rf "$work"' EXIT
mkdir -p "$out"

"$support/moto-start.sh" "$venv" "$port" "$work" > /dev/null
seed=$("$venv/bin/python" "$support/moto-seed.py" "$endpoint")
field() { "$venv/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$seed" "$1"; }
source_ami=$(field source_ami)
subnet_id=$(field subnet_id)
vpc_id=$(field vpc_id)

export AWS_ACCESS_KEY_ID=AKIAKILNFIXTUREFAKE1 AWS_SECRET_ACCESS_KEY=kiln-fixture-fake-secret
export CHECKPOINT_DISABLE=1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

vars() {
  echo -var aws_region=us-east-1 -var aws_instance_type=t3.micro -var "aws_source_ami=$source_ami" \
    -var "aws_target_ami=kiln-diagnosis-$1" -var aws_ssh_username=ubuntu -var aws_spot_price=0 \
    -var aws_associate_public_ip_address=true -var appversion=kiln-fixture-1.0.0-h7.abc1234 \
    -var package_type=deb -var packages=kiln-fixture -var "configDir=$root/config/packer" \
    -var "aws_ec2_endpoint=$endpoint" -var aws_skip_validation=true
}

# bake FIXTURE TEMPLATE [packer build args...]: must fail (rc 1)
bake() {
  local fixture=$1 template=$2 rc=0
  shift 2
  packer build -machine-readable -color=false "$@" "$template" > "$work/$fixture" 2>&1 || rc=$?
  echo "$fixture rc=$rc"
  [[ $rc -eq 1 ]] || { cat "$work/$fixture" >&2; exit 1; }
  cp "$work/$fixture" "$out/$fixture"
}

nossh="$root/tests/fixtures/packer/aws-ebs-nossh.json"
# shellcheck disable=SC2046
bake moto-bad-subnet.log "$nossh" $(vars subnet) -var aws_subnet_id=subnet-deadbeef -var "aws_vpc_id=$vpc_id"
# shellcheck disable=SC2046
bake moto-bad-vpc.log "$nossh" $(vars vpc) -var aws_vpc_id=vpc-deadbeef -var aws_subnet_id=
# The shipped SSH template, pointed at a loopback port nobody listens on, with a short timeout.
closed=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$venv/bin/python" - "$root/config/packer/aws-ebs.json" "$work/ssh.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
t["builders"][0]["ssh_timeout"] = "5s"
json.dump(t, open(sys.argv[2], "w"), indent=2)
PY
# shellcheck disable=SC2046
bake moto-ssh-timeout.log "$work/ssh.json" $(vars ssh) -var "aws_subnet_id=$subnet_id" -var "aws_vpc_id=$vpc_id" \
  -var aws_ssh_host=127.0.0.1 -var "aws_ssh_port=$closed"
