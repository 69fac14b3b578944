#!/usr/bin/env bash
# A stand-in for `packer build -machine-readable` that takes a few seconds and then succeeds,
# for the Redis tests (a bake that spans a Redis restart, or a kiln restart):
# it prints "slow line I of N" every 0.25 s for $SLOW_PACKER_SECONDS (default 4), then an
# artifact (us-east-1:ami-0slow) like fake-packer's ok mode, and exits 0. SIGTERM: exit 1.
set -u

ts() { date +%s; }
trap 'echo "$(ts),,ui,error,Cancelling build after receiving terminated"; exit 1' TERM

echo "$(ts),,ui,say,redis-slow-packer argv:$(printf ' [%s]' "$@")"
n=$(( ${SLOW_PACKER_SECONDS:-4} * 4 ))
for i in $(seq 1 "$n"); do
    echo "$(ts),,ui,say,==> amazon-ebs: slow line $i of $n"
    sleep 0.25 &
    wait $!
done
echo "$(ts),amazon-ebs,artifact-count,1"
echo "$(ts),amazon-ebs,artifact,0,builder-id,mitchellh.amazonebs"
echo "$(ts),amazon-ebs,artifact,0,id,us-east-1:ami-0slow"
echo "$(ts),amazon-ebs,artifact,0,end"
echo "$(ts),,ui,say,redis-slow-packer done"
exit 0
