#!/usr/bin/env bash
# Start moto_server (an EC2 API emulator) on loopback for packer bakes in tests.
#
# Usage: moto-start.sh VENV PORT WORKDIR
#   VENV     python venv holding moto; created (moto[server,ec2] + boto3) when it has no moto_server
#   PORT     TCP port on 127.0.0.1
#   WORKDIR  gets moto.pid, moto.log and moto_recording.jsonl (every request, so tests can check
#            which EC2 actions Packer called, in which region, with which access key)
#
# With KILN_MOTO_EBS=1: moto-ebs.py (moto with the EBS direct API gaps patched) and no request
# recording (it would store every block body, base64-encoded).
#
# The server keeps running after this script exits; stop it with `kill "$(cat WORKDIR/moto.pid)"`
# (or tests/support/moto-stop.sh WORKDIR). If it fails to come up, this script stops it again.
set -euo pipefail

venv=${1:?usage: moto-start.sh VENV PORT WORKDIR}
port=${2:?usage: moto-start.sh VENV PORT WORKDIR}
workdir=${3:?usage: moto-start.sh VENV PORT WORKDIR}
mkdir -p "$workdir"

if [[ ! -x "$venv/bin/moto_server" ]]; then
  # Pin the major version: the seed data (ami-785db401 in us-east-1) and the recording format
  # the tests rely on are moto 5's.
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'moto[server,ec2,ebs]>=5,<6' boto3
fi

: > "$workdir/moto_recording.jsonl"
if [[ ${KILN_MOTO_EBS:-} == 1 ]]; then
  # moto reads MOTO_ENABLE_RECORDING as a truth value of any non-empty text ("False" records).
  env -u MOTO_ENABLE_RECORDING MOTO_RECORDER_FILEPATH="$workdir/moto_recording.jsonl" \
    "$venv/bin/python" "$(dirname "$0")/moto-ebs.py" -H 127.0.0.1 -p "$port" > "$workdir/moto.log" 2>&1 &
else
  MOTO_ENABLE_RECORDING=True MOTO_RECORDER_FILEPATH="$workdir/moto_recording.jsonl" \
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$workdir/moto.log" 2>&1 &
fi
pid=$!
echo "$pid" > "$workdir/moto.pid"

# Ready when the management API answers; give up after ~20 s or as soon as the process dies
# (typically: the port is taken).
for _ in $(seq 1 200); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "moto_server exited during startup:" >&2
    cat "$workdir/moto.log" >&2
    exit 1
  fi
  if curl -sf -o /dev/null "http://127.0.0.1:$port/moto-api/"; then
    echo "moto_server ready: pid=$pid endpoint=http://127.0.0.1:$port"
    exit 0
  fi
  sleep 0.1
done
echo "moto_server did not answer on 127.0.0.1:$port; stopping it" >&2
kill "$pid" 2>/dev/null || true
cat "$workdir/moto.log" >&2
exit 1
