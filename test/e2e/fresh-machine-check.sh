#!/bin/bash
# fresh-machine-check.sh - prove control-plane.sh's fresh-machine path on a machine whose MariaDB and RabbitMQ are
# shared and must not be touched.
#
# In private mount and network namespaces (their own loopback; nothing reaches the host's services), with empty
# MariaDB / RabbitMQ / berth-aio directories and Debian's default /etc/rabbitmq, it runs:
#   up (MariaDB and RabbitMQ started by the script) -> status -> the listeners -> up again -> the e2e tests
#   -> wipe -> up -> down -> wipe (from down) -> whatever still listens (nothing should).
# The e2e tests need a build first: npx tsc -p . --outDir dist-e2e --tsBuildInfoFile dist-e2e/.tsbuildinfo
# Usage (root): test/e2e/fresh-machine-check.sh [DIST_DIR, default dist-e2e]     Output: a log on stdout.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIST=${1:-dist-e2e}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
SCRATCH=$(mktemp -d /tmp/berth-aio-fresh.XXXXXX)
cp -a /etc/rabbitmq "$SCRATCH/etc-rabbitmq"
echo "# as Debian ships it" > "$SCRATCH/etc-rabbitmq/rabbitmq-env.conf"
rm -f "$SCRATCH/etc-rabbitmq/rabbitmq.conf"
export REPO DIST SCRATCH

# shellcheck disable=SC2016  # the script below expands in the namespace, from the exported variables
unshare --mount --net --propagation private bash -euo pipefail -c '
cp_sh=$REPO/test/e2e/control-plane.sh
ip link set lo up
for d in /var/lib/mysql /run/mysqld /var/log/mysql /var/lib/rabbitmq /var/log/rabbitmq \
         /etc/berth-aio /var/lib/berth-aio /run/berth-aio /var/log/berth-aio; do
    mkdir -p "$d"; mount -t tmpfs tmpfs "$d"
done
mount --bind "$SCRATCH/etc-rabbitmq" /etc/rabbitmq
chown mysql:mysql /var/lib/mysql /run/mysqld /var/log/mysql
chown rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
trap "\"\$cp_sh\" down >/dev/null 2>&1 || true" EXIT

echo "== listeners before: $(ss -ltn | tail -n +2 | wc -l)"
echo "== up"; "$cp_sh" up
echo "== status"; "$cp_sh" status
echo "== listeners (every one must be loopback)"; ss -ltnp | tail -n +2 | awk "{print \$4, \$6}" | sort
if ss -ltn | tail -n +2 | awk "{print \$4}" | grep -vE "^(127\.0\.0\.1|\[::1\]):"; then echo "FAIL: a listener off loopback"; exit 1; fi
echo "== up again"; "$cp_sh" up | tail -1
echo "== e2e tests"; (cd "$REPO" && npx mocha "$DIST/test/e2e/**/*.test.js")
echo "== wipe"; "$cp_sh" wipe
echo "== up, down, wipe from down"; "$cp_sh" up | tail -1; "$cp_sh" down | tail -1; "$cp_sh" wipe | tail -1
left=$(ss -ltn | tail -n +2)
if [ -n "$left" ]; then echo "FAIL: still listening:"; echo "$left"; exit 1; fi
echo "== fresh-machine check passed: nothing left listening"
'
rm -rf "$SCRATCH"
