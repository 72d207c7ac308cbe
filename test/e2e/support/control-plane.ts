// Where the all-in-one control plane (test/e2e/control-plane.sh) keeps its files, whether it is up, and how to run
// the script from a test.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { repoRoot } from './repo-root';

const run = promisify(execFile);

/** The script's fixed locations (see test/e2e/README.md). */
export const AIO = {
  etc: '/etc/berth-aio',
  openrc: '/etc/berth-aio/openrc',
  demoOpenrc: '/etc/berth-aio/demo-openrc',
  berthConf: '/etc/berth-aio/berth.conf',
  novaConf: '/etc/berth-aio/nova.conf',
  logDir: '/var/log/berth-aio',
  stateDir: '/var/lib/berth-aio',
} as const;

/** The APIs a test needs; each answers an unauthenticated GET on its root when up. */
export const AIO_ENDPOINTS = {
  identity: 'http://127.0.0.1:5000/v3',
  compute: 'http://127.0.0.1:8774/',
  placement: 'http://127.0.0.1:8778/',
  image: 'http://127.0.0.1:9292/',
} as const;

export function controlPlaneScript(): string {
  return join(repoRoot(), 'test', 'e2e', 'control-plane.sh');
}

export class OpenrcError extends Error {
  override readonly name = 'OpenrcError';
}

/** The `export NAME=value` lines of an openrc file, as the shell would set them (single or double quotes removed). */
export function parseOpenrc(text: string, file = 'openrc'): Record<string, string> {
  const vars: Record<string, string> = {};
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!match) throw new OpenrcError(`${file}:${index + 1}: not an 'export NAME=value' line`);
    const [, name = '', value = ''] = match;
    vars[name] = /^(['"]).*\1$/.test(value) ? value.slice(1, -1) : value;
  });
  return vars;
}

export function readOpenrc(file: string = AIO.openrc): Record<string, string> {
  return parseOpenrc(readFileSync(file, 'utf8'), file);
}

export interface ControlPlaneStatus {
  readonly up: boolean;
  /** Why it is not usable (missing openrc, an API not answering). */
  readonly reason?: string;
}

export interface StatusProbe {
  readonly openrc?: string;
  readonly endpoints?: Readonly<Record<string, string>>;
}

/** Cheap check (no CLI start-up): the openrc exists and Keystone, Nova, Placement and Glance answer on loopback. */
export async function controlPlaneStatus(probe: StatusProbe = {}): Promise<ControlPlaneStatus> {
  const openrc = probe.openrc ?? AIO.openrc;
  try {
    readOpenrc(openrc);
  } catch (err) {
    return { up: false, reason: `no usable ${openrc} (${(err as Error).message})` };
  }
  const answers = await Promise.all(
    Object.entries(probe.endpoints ?? AIO_ENDPOINTS).map(async ([service, url]) => ({
      service,
      url,
      status: await httpStatus(url),
    })),
  );
  const down = answers.filter((a) => a.status === null || a.status >= 500);
  if (down.length > 0) {
    return { up: false, reason: `not answering: ${down.map((a) => `${a.service} (${a.url})`).join(', ')}` };
  }
  return { up: true };
}

export async function isControlPlaneUp(): Promise<boolean> {
  return (await controlPlaneStatus()).up;
}

/**
 * For a mocha `before` hook: skips the suite, saying why and how to fix it, when the control plane is not up.
 *   before(async function () { await requireControlPlane(this); });
 */
export async function requireControlPlane(ctx: Mocha.Context): Promise<void> {
  const status = await controlPlaneStatus();
  if (status.up) return;
  console.warn(`    skipped: the e2e control plane is not up: ${status.reason}. Start it: sudo ${controlPlaneScript()} up`);
  ctx.skip();
}

/** Runs control-plane.sh (as root) with `args`, e.g. ['fake-compute', 'fake-1']; resolves with its output. */
export async function runControlPlaneScript(args: readonly string[], timeoutMs = 300_000): Promise<string> {
  const { stdout, stderr } = await run('bash', [controlPlaneScript(), ...args], {
    timeout: timeoutMs,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout + stderr;
}

function httpStatus(url: string): Promise<number | null> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: 3_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? null);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}
