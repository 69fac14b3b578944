#!/usr/bin/env bash
# Boot the test VM (tests/support/vm-image.sh) on a copy-on-write overlay, daemonized, with a
# restricted user-mode network: the guest can reach nothing but
#   - its sshd, forwarded from 127.0.0.1:SSH_PORT on the host, and
#   - http://10.0.2.100/ (port 80), forwarded to 127.0.0.1:REPO_PORT on the host (the test's apt
#     repository). Each guest connection runs `vm-guestfwd-connect` (a bash /dev/tcp relay)
#     through QEMU's guestfwd "cmd:" form; see the NOTE below.
#
# Usage: vm-boot.sh DISK KERNEL INITRD SSH_PORT REPO_PORT WORKDIR
#   WORKDIR gets overlay.qcow2 (backing file: DISK, which stays pristine), qemu.pid, serial.log
#   (the guest console) and qemu.log. Stop the VM with: kill "$(cat WORKDIR/qemu.pid)"
#   env ACCEL (default tcg): nested KVM on CI machines is far slower than TCG; TCG boots to sshd
#   in ~17 s. MEMORY (default 1024 MiB), SMP (default 2).
#
# NOTE on guestfwd: `restrict=on` does not affect explicit forwards (hostfwd, guestfwd), so both
# work with it. But the plain `guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:PORT` form opens ONE
# chardev connection to the host when QEMU starts and funnels every guest connection into it: once
# the HTTP server closes that connection (python's http.server does after each response), later
# guest connections get nothing. The `cmd:` form starts a fresh relay per guest connection.
set -euo pipefail

if [[ $# -ne 6 ]]; then
  echo "usage: vm-boot.sh DISK KERNEL INITRD SSH_PORT REPO_PORT WORKDIR" >&2
  exit 2
fi
disk=$(realpath "$1") kernel=$(realpath "$2") initrd=$(realpath "$3")
ssh_port=$4 repo_port=$5
mkdir -p "$6"
workdir=$(cd "$6" && pwd)
for f in "$disk" "$kernel" "$initrd"; do
  [[ -r $f ]] || { echo "vm-boot.sh: $f is missing; build the image with tests/support/vm-image.sh" >&2; exit 1; }
done
for p in "$ssh_port" "$repo_port"; do
  [[ $p =~ ^[0-9]+$ ]] || { echo "vm-boot.sh: '$p' is not a port number" >&2; exit 2; }
done
command -v qemu-system-x86_64 > /dev/null \
  || { echo "vm-boot.sh: qemu-system-x86_64 is missing; install it: apt-get install -y --no-install-recommends qemu-system-x86" >&2; exit 1; }

rm -f "$workdir/overlay.qcow2" "$workdir/qemu.pid"
qemu-img create -q -f qcow2 -F qcow2 -b "$disk" "$workdir/overlay.qcow2"

# The per-connection relay for guestfwd (QEMU runs it with sh -c, stdin/stdout = the guest socket).
relay=$workdir/vm-guestfwd-connect
cat > "$relay" << RELAY
#!/usr/bin/env bash
exec 3<> /dev/tcp/127.0.0.1/$repo_port || exit 1
cat <&3 &
cat >&3
wait
RELAY
chmod 0755 "$relay"

qemu-system-x86_64 -accel "${ACCEL:-tcg}" -m "${MEMORY:-1024}" -smp "${SMP:-2}" -cpu max,pmu=off \
  -display none -nodefaults -no-reboot \
  -kernel "$kernel" -initrd "$initrd" -append "root=/dev/vda rw console=ttyS0 panic=-1" \
  -drive file="$workdir/overlay.qcow2",if=virtio,format=qcow2 \
  -nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$ssh_port-:22,guestfwd=tcp:10.0.2.100:80-cmd:$relay" \
  -serial file:"$workdir/serial.log" \
  -daemonize -pidfile "$workdir/qemu.pid" > "$workdir/qemu.log" 2>&1 \
  || { echo "vm-boot.sh: qemu failed to start:" >&2; cat "$workdir/qemu.log" >&2; exit 1; }
echo "vm-boot.sh: qemu pid $(cat "$workdir/qemu.pid") (accel ${ACCEL:-tcg}), ssh on 127.0.0.1:$ssh_port, guest repo http://10.0.2.100/ -> 127.0.0.1:$repo_port"
