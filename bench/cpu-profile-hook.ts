// --cpu-prof for a process started through NODE_OPTIONS (which refuses --cpu-prof itself):
//   NODE_OPTIONS="--require <dist>/bench/cpu-profile-hook.js" BERTH_BENCH_CPU_PROF=<dir> node <dist>/src/cli.js …
// Profiles from start to exit with V8's sampling profiler and writes <dir>/berth-<pid>.cpuprofile, the same format
// --cpu-prof writes (open it in Chrome DevTools, or summarise it with bench/cpu-profile-summary.js).
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

/** Microseconds between samples, --cpu-prof-interval's default. */
const SAMPLING_INTERVAL_US = 1000;

function install(dir: string): void {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
  session.post('Profiler.start');
  process.on('exit', () => {
    // An in-thread inspector session answers synchronously, so this completes inside the exit handler.
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `berth-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}

const dir = process.env['BERTH_BENCH_CPU_PROF'];
if (dir) install(dir);
