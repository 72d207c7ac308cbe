#!/usr/bin/env bash
# npm run bench: makes sure dockerd and the all-in-one control plane run (installing what is missing), builds Berth
# and the benchmark into dist-bench/, then runs bench/run.ts: Berth against raw Docker and against Python
# nova-compute in one run on this machine. The table goes to stdout, progress to stderr, the numbers to
# bench/results/<date>.json. Env: BERTH_BENCH_SCALE=quick, BERTH_BENCH_CPU_PROF=<dir>, BERTH_BENCH_OUT=<file>
# (see bench/run.ts), and control-plane.sh's own (BERTH_AIO_*).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "bench: run as root (it starts dockerd, the control plane and a nova-compute)" >&2; exit 1; }

started=$(date +%s)
echo "[bench] load before set-up: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
bash test/support/docker-up.sh >&2
bash test/e2e/control-plane.sh up >&2

echo "[bench] building into dist-bench/" >&2
[ -d node_modules ] || npm ci >&2
# tsc emits even when a file outside bench/ has a type error; say so, and run what was built.
mkdir -p dist-bench
if ! npx tsc -p . --outDir dist-bench --tsBuildInfoFile dist-bench/.tsbuildinfo >dist-bench/tsc.log 2>&1; then
    echo "[bench] WARNING: tsc reported type errors (dist-bench/tsc.log); running the emitted build anyway" >&2
fi
[ -f dist-bench/bench/run.js ] && [ -f dist-bench/src/cli.js ] || { cat dist-bench/tsc.log >&2; exit 1; }

status=0
BERTH_CLI="$PWD/dist-bench/src/cli.js" node dist-bench/bench/run.js || status=$?
echo "[bench] $(( $(date +%s) - started )) s including set-up and build" >&2
exit $status
