// The real `openstack` CLI (python3-openstackclient) with the control plane's openrc: what an operator would type.
import { execFile } from 'node:child_process';

import { AIO, readOpenrc } from './control-plane';

/** Debian's tools first: a `python3` earlier in PATH (pyenv) lacks the OpenStack libraries. */
export const SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

export interface CliOptions {
  /** Credentials file; default the admin openrc (AIO.openrc). AIO.demoOpenrc is the demo member. */
  readonly openrc?: string;
  /** Extra environment, e.g. { OS_COMPUTE_API_VERSION: '2.62' }; wins over the openrc. */
  readonly env?: Readonly<Record<string, string>>;
  /** How long one command may run (default 120 s); distinct from a wait's overall timeoutMs. */
  readonly commandTimeoutMs?: number;
}

/** The command failed, timed out, or printed something that is not the JSON asked for. */
export class OpenStackCliError extends Error {
  override readonly name = 'OpenStackCliError';
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
    problem: string,
  ) {
    super(`${command} ${args.join(' ')}: ${problem}${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-5).join(' | ')}` : ''}`);
  }
}

/** The environment of a CLI run: ours without any OS_* of the caller, then the openrc, then `extra`. */
export function cliEnv(openrc: string = AIO.openrc, extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('OS_')) env[key] = value;
  return { ...env, PATH: `${SYSTEM_PATH}:${process.env['PATH'] ?? ''}`, ...readOpenrc(openrc), ...extra };
}

/** Runs `command args` (absolute path or found in SYSTEM_PATH) with the openrc environment; resolves with stdout. */
export function runWithOpenrc(command: string, args: readonly string[], options: CliOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        env: cliEnv(options.openrc, options.env),
        timeout: options.commandTimeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const code = typeof err.code === 'number' ? err.code : null;
        const problem = err.killed ? `killed (${err.signal ?? 'timeout'})` : `exit code ${String(err.code)}`;
        reject(new OpenStackCliError(command, args, code, stdout, stderr, problem));
      },
    );
  });
}

/** `openstack ARGS`; resolves with stdout. */
export function openstack(args: readonly string[], options: CliOptions = {}): Promise<string> {
  return runWithOpenrc('/usr/bin/openstack', args, options);
}

/** `openstack ARGS -f json`, parsed. The type parameter is the caller's promise about the shape. */
export async function openstackJson<T>(args: readonly string[], options: CliOptions = {}): Promise<T> {
  const fullArgs = [...args, '-f', 'json'];
  const stdout = await openstack(fullArgs, options);
  try {
    return JSON.parse(stdout) as T;
  } catch {
    throw new OpenStackCliError('/usr/bin/openstack', fullArgs, 0, stdout, '', `output is not JSON: ${stdout.slice(0, 200)}`);
  }
}
