// Berth as a child process against the control plane: `node dist/src/cli.js --config-file <berth.conf>
// --config-file <overlay>` (later files win, as in oslo.config), its pino JSON log lines collected for assertions.
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { type WriteStream, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

import { AIO } from './control-plane';
import { repoRoot } from './repo-root';
import { WaitTimeoutError } from './wait';


/**
 * The Node.js flags berth-compute runs with in production: those on its `#!/usr/bin/env -S node …` line. Tests and
 * benchmarks that start it with `node cli.js` pass the same flags, so they measure the process operators run.
 */
export function nodeFlagsOf(cliPath: string): string[] {
  let first = '';
  try {
    first = readFileSync(cliPath, 'utf8').split('\n', 1)[0] ?? '';
  } catch {
    return [];
  }
  const match = /^#!.*\bnode((?:\s+-\S+)*)\s*$/.exec(first);
  return match?.[1]?.trim().split(/\s+/).filter(Boolean) ?? [];
}

export type ConfigValue = string | number | boolean | readonly string[];
/** [section] → option → value, nova.conf names (lists are written comma-separated). */
export type ConfigOverrides = Readonly<Record<string, Readonly<Record<string, ConfigValue>>>>;

export interface StartBerthOptions {
  /** [DEFAULT] host; state_path defaults to /var/lib/berth-aio/<host>. */
  readonly host: string;
  readonly config?: ConfigOverrides;
  /** Default AIO.berthConf, written by control-plane.sh up. */
  readonly baseConfig?: string;
  /** Default: $BERTH_CLI, else berthCliPath(). */
  readonly cliPath?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Every output line is appended here too, for the post-mortem; default /var/log/berth-aio/berth-<host>.log. */
  readonly logFile?: string;
}

/** One pino line (level and time as Berth's logger writes them; the rest is the line's own fields). */
export interface BerthLogLine {
  readonly level?: string | number;
  readonly time?: string | number;
  readonly msg?: string;
  readonly [key: string]: unknown;
}

export interface BerthExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class BerthExitedError extends Error {
  override readonly name = 'BerthExitedError';
  constructor(
    readonly host: string,
    readonly exit: BerthExit,
    readonly lastLines: readonly string[],
    waitingFor: string,
  ) {
    super(
      `berth ${host} exited (code ${String(exit.code)}, signal ${String(exit.signal)}) while waiting for ${waitingFor}; ` +
        `last output:\n${lastLines.join('\n')}`,
    );
  }
}

export class InvalidOverrideError extends Error {
  override readonly name = 'InvalidOverrideError';
}

const NAME = /^[A-Za-z0-9_.-]+$/;

/** INI text for `sections`; refuses names and values that would break out of their line. */
export function renderConfig(sections: ConfigOverrides): string {
  const out: string[] = [];
  for (const [section, options] of Object.entries(sections)) {
    if (!NAME.test(section)) throw new InvalidOverrideError(`bad section name ${JSON.stringify(section)}`);
    out.push(`[${section}]`);
    for (const [name, raw] of Object.entries(options)) {
      if (!NAME.test(name)) throw new InvalidOverrideError(`bad option name ${JSON.stringify(name)} in [${section}]`);
      const value = Array.isArray(raw) ? raw.join(',') : String(raw);
      if (/[\r\n]/.test(value)) throw new InvalidOverrideError(`[${section}] ${name}: a value must be one line`);
      out.push(`${name} = ${value}`);
    }
    out.push('');
  }
  return out.join('\n');
}

/** The overlay for `host`: [DEFAULT] host and state_path, then `config` (which may override both). */
export function overlayConfig(host: string, config: ConfigOverrides = {}): ConfigOverrides {
  const { DEFAULT: defaults, ...sections } = config;
  return { DEFAULT: { host, state_path: join(AIO.stateDir, host), ...defaults }, ...sections };
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export class BerthProcess {
  /** stdout lines that parsed as JSON objects, in order. */
  readonly logs: BerthLogLine[] = [];
  /** Everything else: stdout lines that are not JSON objects, and stderr lines (prefixed `stderr: `). */
  readonly otherLines: string[] = [];
  /** Resolves when the process has exited. */
  readonly exited: Promise<BerthExit>;
  private exitStatus: BerthExit | null = null;
  private readonly events = new EventEmitter();
  /** The last output lines, JSON or not, for failure messages. */
  private readonly recent: string[] = [];

  constructor(
    readonly host: string,
    readonly configFiles: readonly string[],
    private readonly child: ChildProcess,
    private readonly logStream: WriteStream,
    private readonly tmpDir: string,
  ) {
    live.add(child);
    child.on('error', (err) => this.onOther(`spawn error: ${err.message}`));
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        live.delete(child);
        this.exitStatus = { code, signal };
        this.logStream.end();
        this.events.emit('exit');
        resolve(this.exitStatus);
      });
    });
    if (child.stdout) createInterface({ input: child.stdout }).on('line', (line) => this.onStdout(line));
    if (child.stderr) createInterface({ input: child.stderr }).on('line', (line) => this.onOther(`stderr: ${line}`));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Null while it runs. */
  get exit(): BerthExit | null {
    return this.exitStatus;
  }

  /** The first log line (already seen or still to come) that satisfies `predicate`. */
  waitForLog(
    predicate: (line: BerthLogLine) => boolean,
    options: { readonly timeoutMs?: number; readonly description?: string } = {},
  ): Promise<BerthLogLine> {
    const description = options.description ?? 'a matching log line';
    const seen = this.logs.find(predicate);
    if (seen) return Promise.resolve(seen);
    if (this.exitStatus) return Promise.reject(new BerthExitedError(this.host, this.exitStatus, this.tail(), description));
    const timeoutMs = options.timeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.events.off('log', onLog);
        this.events.off('exit', onExit);
      };
      const onLog = (line: BerthLogLine): void => {
        if (!predicate(line)) return;
        finish();
        resolve(line);
      };
      const onExit = (): void => {
        finish();
        reject(new BerthExitedError(this.host, this.exitStatus ?? { code: null, signal: null }, this.tail(), description));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new WaitTimeoutError(`berth ${this.host}: ${description}`, timeoutMs, this.tail()));
      }, timeoutMs);
      this.events.on('log', onLog);
      this.events.on('exit', onExit);
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it exited (Berth's contract: code 0 on SIGTERM). */
  async stop(graceMs = 30_000): Promise<BerthExit> {
    if (!this.exitStatus) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    await rm(this.tmpDir, { recursive: true, force: true });
    return this.exitStatus ?? (await this.exited);
  }

  /** Sends `signal` at once (SIGKILL: a crash, no clean-up) and resolves with how it exited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<BerthExit> {
    if (!this.exitStatus) this.child.kill(signal);
    const exit = await this.exited;
    await rm(this.tmpDir, { recursive: true, force: true });
    return exit;
  }

  /** The last `n` output lines, JSON or not, for failure messages. */
  tail(n = 20): string[] {
    return this.recent.slice(-n);
  }

  private onStdout(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return this.onOther(line);
    this.remember(line);
    this.logs.push(parsed as BerthLogLine);
    this.events.emit('log', parsed);
  }

  private onOther(line: string): void {
    this.remember(line);
    this.otherLines.push(line);
  }

  private remember(line: string): void {
    this.logStream.write(`${line}\n`);
    this.recent.push(line);
    if (this.recent.length > 200) this.recent.shift();
  }
}

/**
 * Berth's CLI from the same build as this file (<outDir>/src/cli.js beside <outDir>/test/e2e/support/), so tests
 * and Berth never come from two different compiles; <repo>/dist/src/cli.js when there is none.
 */
export function berthCliPath(): string {
  const sibling = join(__dirname, '..', '..', '..', 'src', 'cli.js');
  return existsSync(sibling) ? sibling : join(repoRoot(), 'dist', 'src', 'cli.js');
}

/** Spawns Berth for `host` against the control plane. It is not waited for: use waitForLog or waitForComputeService. */
export async function startBerth(options: StartBerthOptions): Promise<BerthProcess> {
  const cliPath = options.cliPath ?? process.env['BERTH_CLI'] ?? berthCliPath();
  const sections = overlayConfig(options.host, options.config);
  const statePath = String(sections['DEFAULT']?.['state_path']);
  await mkdir(statePath, { recursive: true, mode: 0o700 });
  const tmpDir = await mkdtemp(join(tmpdir(), `berth-e2e-${options.host}-`));
  const overlay = join(tmpDir, 'overlay.conf');
  await writeFile(overlay, renderConfig(sections), { mode: 0o600 });
  const configFiles = [options.baseConfig ?? AIO.berthConf, overlay];

  const logFile = options.logFile ?? join(AIO.logDir, `berth-${options.host}.log`);
  await mkdir(dirname(logFile), { recursive: true });
  const logStream = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [...nodeFlagsOf(cliPath), cliPath, ...configFiles.flatMap((file) => ['--config-file', file])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  return new BerthProcess(options.host, configFiles, child, logStream, tmpDir);
}
