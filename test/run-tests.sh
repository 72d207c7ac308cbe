#!/usr/bin/env bash
# The test command of the README and of .ci/run. On a fresh Debian 12 machine it installs and starts everything the
# tests need (node modules, dockerd, RabbitMQ + MariaDB + the all-in-one Nova control plane), builds, and runs:
#   unit         no services
#   integration  real RabbitMQ and real dockerd (and the control plane, for the live client tests)
#   e2e          Berth against the real Nova control plane
# Usage: bash test/run-tests.sh [unit|integration|e2e|all]    (default: all, in that order)
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's python3 and OpenStack tools first: a pyenv python3 earlier in PATH lacks them.
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PWD/node_modules/.bin"
what=${1:-all}
case "$what" in unit|integration|e2e|all) ;; *) echo "usage: $0 [unit|integration|e2e|all]" >&2; exit 2 ;; esac

say() { echo "[run-tests $(date +%T)] $*"; }
t0=$(date +%s)

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<12)) { console.error("Node.js >= 20.12 needed, found "+process.versions.node); process.exit(1) }'
if [ ! -x node_modules/.bin/tsc ] || [ ! -x node_modules/.bin/mocha ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing node modules (npm ci)"
  npm ci --no-audit --no-fund
fi
say "building"
rm -rf dist
tsc -p .

services() {
  say "starting dockerd (test/support/docker-up.sh)"
  bash test/support/docker-up.sh
  say "starting the control plane, RabbitMQ and MariaDB (test/e2e/control-plane.sh up)"
  bash test/e2e/control-plane.sh up
}

status=0
suite() {  # suite NAME TIMEOUT_MS GLOB
  say "== $1 tests"
  if ! mocha --require dist/test/support/mocha-hooks.js --timeout "$2" --reporter spec --exit "$3"; then
    say "$1 tests FAILED"; status=1
  fi
}

case "$what" in
  unit) suite unit 20000 'dist/test/unit/**/*.test.js' ;;
  integration) services; suite integration 180000 'dist/test/integration/**/*.test.js' ;;
  e2e) services; suite e2e 900000 'dist/test/e2e/**/*.test.js' ;;
  all)
    suite unit 20000 'dist/test/unit/**/*.test.js'
    services
    suite integration 180000 'dist/test/integration/**/*.test.js'
    suite e2e 900000 'dist/test/e2e/**/*.test.js'
    ;;
esac
elapsed=$(( $(date +%s) - t0 ))
result=PASSED
[ "$status" = 0 ] || result=FAILED
say "done in ${elapsed}s: $result"
exit $status
