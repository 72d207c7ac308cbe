#!/usr/bin/env bash
# `npm start`: run Berth for real.
#
#   npm start                          no OpenStack around: bring up the project's all-in-one control plane
#                                      (test/e2e/control-plane.sh: Keystone, Glance, Placement, nova-api/conductor/
#                                      scheduler on MariaDB + RabbitMQ, like devstack), dockerd, a demo image and
#                                      flavor, then run Berth with config/berth.conf and map it into the cell.
#   npm start -- --config-file F ...   an existing cloud: build and run berth-compute with those config files only.
#
# Berth runs in the foreground and logs JSON to stdout; Ctrl-C (SIGINT) or SIGTERM stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
say() { echo "[berth $(date +%T)] $*" >&2; }

if [ ! -x node_modules/.bin/tsc ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing node modules (npm ci)"
  npm ci --no-audit --no-fund >&2
fi
say "building"
node_modules/.bin/tsc -p . >&2
# Run it through its own #! line, with the Node.js flags it has in production.
chmod +x dist/src/cli.js

if [ $# -gt 0 ]; then
  exec dist/src/cli.js "$@"
fi

[ "$(id -u)" = 0 ] || { say "the all-in-one needs root (apt, MariaDB, RabbitMQ, dockerd); run it with sudo"; exit 1; }
say "starting dockerd"
bash test/support/docker-up.sh >&2
say "starting the all-in-one control plane (first run installs Debian's OpenStack packages: a few minutes)"
bash test/e2e/control-plane.sh up >&2
# shellcheck disable=SC1091
. /etc/berth-aio/openrc

HOST=$(sed -n 's/^host *= *//p' config/berth.conf | head -1)
IMAGE=busybox
FLAVOR=c1.tiny
if ! openstack image show "$IMAGE" >/dev/null 2>&1; then
  say "uploading the demo image '$IMAGE' (a docker save of a busybox root filesystem; no registry involved)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/rootfs/bin"
  cp /bin/busybox "$work/rootfs/bin/busybox"
  for applet in sh echo sleep cat ls ps hostname id uname date wc head tail; do ln -s busybox "$work/rootfs/bin/$applet"; done
  tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
  docker import \
    --change 'CMD ["/bin/sh","-c","trap \"echo bye; exit 0\" TERM; echo hello from $(hostname); i=0; while :; do i=$((i+1)); echo tick $i; sleep 5 & wait $!; done"]' \
    "$work/rootfs.tar" berth-demo/busybox:latest >/dev/null
  docker save berth-demo/busybox:latest -o "$work/image.tar"
  docker rmi berth-demo/busybox:latest >/dev/null
  openstack image create --container-format docker --disk-format raw --public --file "$work/image.tar" "$IMAGE" >/dev/null
fi
if ! openstack flavor show "$FLAVOR" >/dev/null 2>&1; then
  say "creating the demo flavor '$FLAVOR' (1 vCPU, 128 MB, 1 GB)"
  openstack flavor create --vcpus 1 --ram 128 --disk 1 "$FLAVOR" >/dev/null
fi

say "starting berth-compute as host '$HOST' (config/berth.conf)"
dist/src/cli.js --config-file config/berth.conf &
BERTH=$!
forward() { kill -TERM "$BERTH" 2>/dev/null || true; }
trap forward INT TERM

for _ in $(seq 1 60); do
  if openstack compute service list --service nova-compute --host "$HOST" -f value -c State 2>/dev/null | grep -q up; then break; fi
  kill -0 "$BERTH" 2>/dev/null || { wait "$BERTH"; exit $?; }
  sleep 1
done
runuser -u nova -- nova-manage cell_v2 discover_hosts >/dev/null 2>&1 || say "warning: discover_hosts failed (see /var/log/berth-aio)"
cat >&2 <<EOF

[berth] Berth is up as compute host '$HOST'. In another shell:

    . /etc/berth-aio/openrc
    openstack server create --flavor $FLAVOR --image $IMAGE --nic none --wait vm1
    openstack console log show vm1
    docker ps --filter label=openstack.instance_uuid
    openstack server delete vm1

[berth] Ctrl-C stops Berth (the control plane keeps running; 'bash test/e2e/control-plane.sh down' stops it).

EOF
set +e
wait "$BERTH"
code=$?
# A signal interrupts the first wait; wait again for Berth's own exit code.
if kill -0 "$BERTH" 2>/dev/null; then wait "$BERTH"; code=$?; fi
exit $code
