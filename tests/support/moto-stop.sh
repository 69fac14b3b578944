#!/usr/bin/env bash
# Stop the moto_server started by moto-start.sh (by the pid it recorded, never by name).
# Usage: moto-stop.sh WORKDIR
set -euo pipefail
workdir=${1:?usage: moto-stop.sh WORKDIR}
pidfile="$workdir/moto.pid"
[[ -f "$pidfile" ]] || exit 0
pid=$(cat "$pidfile")
if kill "$pid" 2>/dev/null; then
  # Wait briefly so the port is free for the next test.
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
rm -f "$pidfile"
