// The Docker Engine behind a Berth host, as a test looks at it: the machine's shared engine, or a private dockerd a
// suite starts for itself when it must stop the engine or reap containers (never the shared one: other people's
// tests run there). Inspection, `docker exec` into an instance, and the `docker` CLI pointed at the right socket.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import Docker from 'dockerode';

import { containerName } from '../../../driver/docker/container-config';
import { CACHE_REPOSITORY } from '../../../driver/docker/image-cache';
import { AIO } from './control-plane';
import { waitFor } from './wait';

/** The machine's engine (test/support/docker-up.sh). */
export const SHARED_DOCKER_SOCKET = '/var/run/docker.sock';

export class DockerCliError extends Error {
  override readonly name = 'DockerCliError';
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
    problem: string,
  ) {
    super(`docker ${args.join(' ')}: ${problem}${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
  }
}

/** An engine: where Berth's [docker] host_url points, a client of it, and its CLI. */
export class DockerEngine {
  readonly client: Docker;

  constructor(readonly socketPath: string) {
    this.client = new Docker({ socketPath });
  }

  /** For Berth's [docker] host_url. */
  get hostUrl(): string {
    return `unix://${this.socketPath}`;
  }

  /** `docker -H unix://<socket> ARGS`; resolves with stdout. */
  cli(args: readonly string[], timeoutMs = 120_000): Promise<string> {
    const fullArgs = ['-H', this.hostUrl, ...args];
    return new Promise((resolve, reject) => {
      execFile('docker', fullArgs, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        reject(new DockerCliError(fullArgs, stderr, err.killed ? 'killed (timeout)' : `exit code ${String(err.code)}`));
      });
    });
  }

  /** `docker inspect` of the instance's container (nova-<uuid>), or null when there is none. */
  async instanceContainer(uuid: string): Promise<Docker.ContainerInspectInfo | null> {
    try {
      return await this.client.getContainer(containerName(uuid)).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
  }

  /** The instance's container, which must exist. */
  async requireInstanceContainer(uuid: string): Promise<Docker.ContainerInspectInfo> {
    const container = await this.instanceContainer(uuid);
    if (!container) throw new Error(`no container ${containerName(uuid)} on ${this.socketPath}`);
    return container;
  }

  /** Runs `argv` inside the instance's running container (docker exec); resolves with stdout. */
  execInInstance(uuid: string, argv: readonly string[]): Promise<string> {
    return this.cli(['exec', containerName(uuid), ...argv]);
  }

  /** Removes whatever containers these instances left behind (missing ones are fine). */
  async removeInstanceContainers(uuids: Iterable<string>): Promise<void> {
    for (const uuid of uuids) {
      await this.client
        .getContainer(containerName(uuid))
        .remove({ force: true, v: true })
        .catch((err: { statusCode?: number }) => {
          if (err.statusCode !== 404) throw err;
        });
    }
  }

  /** Removes the driver's cached images of these Glance image ids (missing ones are fine). */
  async removeCachedImages(glanceImageIds: Iterable<string>): Promise<void> {
    for (const id of glanceImageIds) {
      await this.client
        .getImage(`${CACHE_REPOSITORY}:${id}`)
        .remove({ force: true })
        .catch((err: { statusCode?: number }) => {
          if (err.statusCode !== 404) throw err;
        });
    }
  }
}

export function sharedDockerEngine(): DockerEngine {
  return new DockerEngine(SHARED_DOCKER_SOCKET);
}

export interface DockerStatus {
  readonly up: boolean;
  readonly reason?: string;
}

/** Whether `docker info` answers (the shared engine). */
export function dockerStatus(): Promise<DockerStatus> {
  return new Promise((resolve) => {
    execFile('docker', ['-H', `unix://${SHARED_DOCKER_SOCKET}`, 'info', '--format', '{{.ServerVersion}}'], { timeout: 20_000 }, (err, _out, stderr) => {
      if (!err) return resolve({ up: true });
      resolve({ up: false, reason: (stderr.trim() || err.message).split('\n')[0] ?? 'docker info failed' });
    });
  });
}

/**
 * For a mocha `before` hook of a suite that needs Docker: skips it, saying why and how to fix it, when `docker info`
 * fails.
 */
export async function requireDocker(ctx: Mocha.Context): Promise<void> {
  const status = await dockerStatus();
  if (status.up) return;
  console.warn(`    skipped: Docker is not available (docker info: ${status.reason}). Start it: sudo bash test/support/docker-up.sh`);
  ctx.skip();
}

/**
 * A dockerd of a suite's own, on its own socket, data root and exec root (and its own containerd), with no bridge and
 * no iptables, as the shared one: the suite may stop it, start it again and reap every container on it.
 */
export class PrivateDockerd extends DockerEngine {
  private child: ChildProcess | null = null;

  private constructor(
    readonly name: string,
    readonly dataRoot: string,
    readonly execRoot: string,
    readonly logFile: string,
  ) {
    super(join(execRoot, 'docker.sock'));
  }

  /** Starts `dockerd` for `name` (a short [a-z0-9-] word: the exec root holds unix sockets, whose paths are short). */
  static async start(name: string): Promise<PrivateDockerd> {
    if (!/^[a-z0-9-]{1,40}$/.test(name)) throw new Error(`bad private dockerd name ${name}`);
    const engine = new PrivateDockerd(
      name,
      join(AIO.stateDir, 'e2e-dockerd', name),
      `/run/berth-e2e-${name}`,
      join(AIO.logDir, `dockerd-${name}.log`),
    );
    await engine.startDaemon();
    return engine;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the daemon (again) and waits until it answers. */
  async startDaemon(): Promise<void> {
    if (this.running) return;
    await mkdir(this.dataRoot, { recursive: true });
    await mkdir(this.execRoot, { recursive: true });
    await mkdir(AIO.logDir, { recursive: true });
    const log = openSync(this.logFile, 'a');
    try {
      this.child = spawn(
        'dockerd',
        [
          '--bridge=none',
          '--iptables=false',
          '-H',
          this.hostUrl,
          '--data-root',
          this.dataRoot,
          '--exec-root',
          join(this.execRoot, 'exec'),
          '--pidfile',
          join(this.execRoot, 'docker.pid'),
        ],
        { stdio: ['ignore', log, log] },
      );
    } finally {
      closeSync(log);
    }
    const child = this.child;
    await waitFor(
      `private dockerd ${this.name} to answer`,
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`private dockerd ${this.name} exited (${String(child.exitCode ?? child.signalCode)}); see ${this.logFile}`);
        }
        try {
          await this.client.ping();
          return { done: true, value: undefined };
        } catch (err) {
          return { done: false, seen: (err as Error).message };
        }
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  }

  /**
   * Stops the daemon as an operator would (SIGTERM; SIGKILL of it and its containerd after `graceMs`). Without
   * live-restore, dockerd stops its containers on the way out.
   */
  async stopDaemon(graceMs = 30_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    if ((await Promise.race([exited, killed])) === 'timeout') {
      child.kill('SIGKILL');
      await exited;
      // Its containerd outlives a SIGKILLed dockerd.
      const containerdPid = await readFile(join(this.execRoot, 'exec', 'containerd', 'containerd.pid'), 'utf8').catch(() => '');
      if (/^\d+$/.test(containerdPid.trim())) {
        try {
          process.kill(Number(containerdPid.trim()), 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
    clearTimeout(timer);
  }

  /** Removes every container, stops the daemon and deletes its data (when nothing is mounted under it any more). */
  async destroy(): Promise<void> {
    if (this.running) {
      for (const c of await this.client.listContainers({ all: true }).catch(() => [])) {
        await this.client.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
      }
    }
    await this.stopDaemon();
    const mounts = existsSync('/proc/mounts') ? readFileSync('/proc/mounts', 'utf8') : '';
    const busy = mounts.split('\n').filter((line) => line.includes(this.dataRoot) || line.includes(this.execRoot));
    if (busy.length > 0) throw new Error(`private dockerd ${this.name}: still mounted, not removing its data: ${busy.join('; ')}`);
    await rm(this.dataRoot, { recursive: true, force: true });
    await rm(this.execRoot, { recursive: true, force: true });
    await rmdir(dirname(this.dataRoot)).catch(() => undefined); // the parent, once no other private engine uses it
  }
}
