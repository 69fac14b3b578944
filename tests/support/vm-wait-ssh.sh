#!/usr/bin/env bash
# Wait until the test VM's sshd on 127.0.0.1:PORT accepts KEY for root, for at most MAX_SECONDS.
# Usage: vm-wait-ssh.sh PORT KEY MAX_SECONDS       exit 0 when ready, 1 on timeout
set -uo pipefail
if [[ $# -ne 3 ]]; then
  echo "usage: vm-wait-ssh.sh PORT KEY MAX_SECONDS" >&2
  exit 2
fi
port=$1 key=$2 max=$3
start=$SECONDS
while ((SECONDS - start < max)); do
  if timeout 10 ssh -q -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ConnectTimeout=5 -o LogLevel=ERROR -i "$key" -p "$port" root@127.0.0.1 true < /dev/null; then
    echo "vm-wait-ssh.sh: ssh ready on port $port after $((SECONDS - start))s"
    exit 0
  fi
  sleep 1
done
echo "vm-wait-ssh.sh: ssh on 127.0.0.1:$port not ready after ${max}s" >&2
exit 1
