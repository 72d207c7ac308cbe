// Shared by the config tests: a logger that keeps its lines, and a minimal valid configuration to build on.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../../../src/log';
import { loadConfigFromSources, type BerthConfig } from '../../../src/config';

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

export interface CapturedLogger {
  readonly logger: Logger;
  readonly lines: LogLine[];
  at(level: string): LogLine[];
}

export function captureLogger(): CapturedLogger {
  const lines: LogLine[] = [];
  const destination = { write: (line: string) => lines.push(JSON.parse(line)) };
  const logger = createLogger({ level: 'trace', destination });
  return { logger, lines, at: (level) => lines.filter((line) => line.level === level) };
}

const CREDENTIAL = `auth_type = password
auth_url = http://127.0.0.1:5000/v3
username = nova
password = s3cret-pw
user_domain_name = Default
project_name = service
project_domain_name = Default
`;

/** The least a config needs: the bus, and credentials for Placement and (through [service_user]) Glance. */
export const MINIMAL = `[DEFAULT]
transport_url = rabbit://openstack:rabbit-pw@127.0.0.1:5672/
[placement]
${CREDENTIAL}[service_user]
${CREDENTIAL}`;

/** Loads MINIMAL followed by `texts` (each one a later --config-file). */
export function load(...texts: string[]): { config: BerthConfig; log: CapturedLogger } {
  const log = captureLogger();
  const sources = [MINIMAL, ...texts].map((text, index) => ({ path: `test-${index}.conf`, text }));
  return { config: loadConfigFromSources(sources, { logger: log.logger }), log };
}

const tempDirs: string[] = [];

/** A fresh directory with the given files; returns the paths by name. removeTempFiles() deletes them. */
export function tempFiles(files: Record<string, string>): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-config-test-'));
  tempDirs.push(dir);
  const paths: Record<string, string> = {};
  for (const [name, text] of Object.entries(files)) {
    paths[name] = join(dir, name);
    writeFileSync(paths[name] as string, text);
  }
  return paths;
}

export function removeTempFiles(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
