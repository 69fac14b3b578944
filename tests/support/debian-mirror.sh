#!/usr/bin/env bash
# Prints the Debian mirror this host's apt uses ($MIRROR when set; deb822 sources first, then the
# one-line format; else deb.debian.org), for the test scripts that debootstrap a root filesystem.
set -euo pipefail
mirror=${MIRROR:-}
if [[ -z $mirror && -r /etc/apt/sources.list.d/debian.sources ]]; then
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
if [[ -z $mirror && -r /etc/apt/sources.list ]]; then
  mirror=$(awk '$1 == "deb" && $3 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
fi
echo "${mirror:-http://deb.debian.org/debian}"
