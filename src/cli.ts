#!/usr/bin/env node
// berth-compute: the Nova compute service that runs instances as Docker containers.
import { main } from './main';

main(process.argv.slice(2)).then(
  (code) => {
    // Let pino flush its last lines, then leave even if a handle (a stuck socket) would keep us alive.
    setTimeout(() => process.exit(code), 100).unref();
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`berth-compute: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
