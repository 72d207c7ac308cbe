// DockerDriverOptions: what an operator can set in the `[docker]` config section (src/main.ts maps it), compiled
// once into a complete, validated record. Every relaxation of the default containment goes through here.

import pino, { type Logger } from 'pino';

import { DriverError } from '../driver';
import { MAX_TIMER_MS } from './engine-deadline';

export interface DockerDriverOptions {
  /** Docker Engine endpoint: `unix:///path/to/docker.sock` (default `unix:///var/run/docker.sock`) or `tcp://host:port`. */
  readonly hostUrl?: string;
  /** CA bundle that signs the engine's certificate. With any of caFile/certFile/keyFile a tcp:// engine is spoken to
   *  over TLS and its certificate is always verified (without caFile: against the system CAs). */
  readonly caFile?: string;
  /** Client certificate (PEM) for engines that require TLS client authentication; needs keyFile. */
  readonly certFile?: string;
  /** Private key (PEM) of certFile. */
  readonly keyFile?: string;
  /** Directory for the driver's own persistent state (suspend markers). Created if missing. Required. */
  readonly stateDir: string;
  /**
   * Nova's [DEFAULT] host. Containers carry it in the label openstack.compute_host, and the driver sees only the
   * containers of this host: two Berth hosts sharing one engine (tests, a migration) never touch each other's.
   */
  readonly computeHost?: string;
  /** Capabilities every container gets after `CapDrop: ALL` (default: a minimal set without NET_RAW/SYS_ADMIN). */
  readonly capabilities?: readonly string[];
  /** Capabilities a flavor may add with `docker:cap_add` (default none). */
  readonly allowedExtraCapabilities?: readonly string[];
  /** Default maximum number of processes per container (default 1024). */
  readonly pidsLimit?: number;
  /** Mount every container's root filesystem read-only (default false). */
  readonly readOnlyRootFilesystem?: boolean;
  /** Set `no-new-privileges` (default true): setuid binaries cannot raise privileges. Only config may relax it. */
  readonly noNewPrivileges?: boolean;
  /** Flavor extra specs that may relax the defaults: `docker:pids_limit` (above pidsLimit) and
   *  `docker:read_only_root` (false when readOnlyRootFilesystem is true). Tightening is always allowed. Default []. */
  readonly allowedFlavorExtraSpecs?: readonly string[];
  /** Passes instance metadata to the container as environment variables (default false: metadata stays in Nova). */
  readonly injectMetadataAsEnv?: boolean;
  /** json-file log size cap per container, the console log source (default `10m`). */
  readonly logMaxSize?: string;
  /** Oldest Docker API version the driver accepts from the engine (default `1.41`, Docker 20.10). */
  readonly minApiVersion?: string;
  /** Delay before the first re-open of a broken event stream; doubles up to 30 s (default 500 ms). */
  readonly eventsReconnectDelayMs?: number;
  /**
   * Deadline of every Engine request (default 60 s): a short call must answer within it, stop and restart within
   * their grace period plus it, and a load or save stream may go this long without moving a byte. An idle event
   * stream makes the driver ask the engine whether it is alive after this long.
   */
  readonly apiTimeoutMs?: number;
  /**
   * Deadline of what a snapshot asks of the engine before any byte flows (default 600 s): `docker commit`, then
   * `docker save` up to its first byte. Both work silently, so they cannot have an inactivity deadline.
   */
  readonly snapshotTimeoutMs?: number;
  /** pino logger (default: silent). */
  readonly logger?: Logger;
}

/** A configuration value is unusable; raised by the constructor, before anything is contacted. */
export class InvalidDockerOptions extends DriverError {
  override readonly name = 'InvalidDockerOptions';
}

/** Docker's default set minus what a guest never needs; no NET_RAW (spoofing) and no SYS_ADMIN. */
export const DEFAULT_CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT',
] as const;

export type DockerEndpoint =
  | { readonly kind: 'unix'; readonly socketPath: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly tls: boolean };

export interface CompiledDockerOptions {
  readonly endpoint: DockerEndpoint;
  readonly caFile: string | null;
  readonly certFile: string | null;
  readonly keyFile: string | null;
  readonly stateDir: string;
  readonly computeHost: string | null;
  readonly capabilities: readonly string[];
  readonly allowedExtraCapabilities: readonly string[];
  readonly pidsLimit: number;
  readonly readOnlyRootFilesystem: boolean;
  readonly noNewPrivileges: boolean;
  readonly allowedFlavorExtraSpecs: readonly string[];
  readonly injectMetadataAsEnv: boolean;
  readonly logMaxSize: string;
  readonly minApiVersion: string;
  readonly eventsReconnectDelayMs: number;
  readonly apiTimeoutMs: number;
  readonly snapshotTimeoutMs: number;
  readonly logger: Logger;
}

const CAPABILITY = /^[A-Z][A-Z0-9_]*$/;
const RELAXABLE_EXTRA_SPECS = ['docker:pids_limit', 'docker:read_only_root'];

export function compileDockerOptions(options: DockerDriverOptions): CompiledDockerOptions {
  const tlsFiles = [options.caFile, options.certFile, options.keyFile].some((file) => file !== undefined);
  if ((options.certFile === undefined) !== (options.keyFile === undefined)) {
    throw new InvalidDockerOptions('certFile and keyFile must be given together');
  }
  if (!options.stateDir) throw new InvalidDockerOptions('stateDir is required');
  const capabilities = (options.capabilities ?? DEFAULT_CAPABILITIES).map(normaliseCapability);
  const allowedExtraCapabilities = (options.allowedExtraCapabilities ?? []).map(normaliseCapability);
  const pidsLimit = options.pidsLimit ?? 1024;
  if (!Number.isInteger(pidsLimit) || pidsLimit < 1) throw new InvalidDockerOptions(`pidsLimit must be a positive integer, not ${pidsLimit}`);
  for (const key of options.allowedFlavorExtraSpecs ?? []) {
    if (!RELAXABLE_EXTRA_SPECS.includes(key)) {
      throw new InvalidDockerOptions(`allowedFlavorExtraSpecs: ${key} is not one of ${RELAXABLE_EXTRA_SPECS.join(', ')}`);
    }
  }
  const logMaxSize = options.logMaxSize ?? '10m';
  if (!/^\d+[kmg]?$/.test(logMaxSize)) throw new InvalidDockerOptions(`logMaxSize must look like 10m, not ${logMaxSize}`);
  const minApiVersion = options.minApiVersion ?? '1.41';
  if (!/^\d+\.\d+$/.test(minApiVersion)) throw new InvalidDockerOptions(`minApiVersion must look like 1.41, not ${minApiVersion}`);
  const apiTimeoutMs = positiveMs('apiTimeoutMs', options.apiTimeoutMs ?? 60_000);
  const snapshotTimeoutMs = positiveMs('snapshotTimeoutMs', options.snapshotTimeoutMs ?? 600_000);
  return {
    endpoint: parseHostUrl(options.hostUrl ?? 'unix:///var/run/docker.sock', tlsFiles),
    caFile: options.caFile ?? null,
    certFile: options.certFile ?? null,
    keyFile: options.keyFile ?? null,
    stateDir: options.stateDir,
    computeHost: options.computeHost ?? null,
    capabilities,
    allowedExtraCapabilities,
    pidsLimit,
    readOnlyRootFilesystem: options.readOnlyRootFilesystem ?? false,
    noNewPrivileges: options.noNewPrivileges ?? true,
    allowedFlavorExtraSpecs: options.allowedFlavorExtraSpecs ?? [],
    injectMetadataAsEnv: options.injectMetadataAsEnv ?? false,
    logMaxSize,
    minApiVersion,
    eventsReconnectDelayMs: options.eventsReconnectDelayMs ?? 500,
    apiTimeoutMs,
    snapshotTimeoutMs,
    logger: options.logger ?? pino({ level: 'silent' }),
  };
}

export function parseHostUrl(hostUrl: string, tls: boolean): DockerEndpoint {
  let url: URL;
  try {
    url = new URL(hostUrl);
  } catch {
    throw new InvalidDockerOptions(`hostUrl ${hostUrl} is not a URL (unix:///var/run/docker.sock or tcp://host:port)`);
  }
  if (url.protocol === 'unix:') {
    if (tls) throw new InvalidDockerOptions('TLS files apply to tcp:// engines only');
    if (!url.pathname || url.pathname === '/') throw new InvalidDockerOptions(`hostUrl ${hostUrl} has no socket path`);
    return { kind: 'unix', socketPath: decodeURIComponent(url.pathname) };
  }
  // https:// is Docker's own spelling of a TLS tcp endpoint.
  if (url.protocol === 'tcp:' || url.protocol === 'https:') {
    const port = Number(url.port);
    if (!url.hostname || !url.port || !Number.isInteger(port)) throw new InvalidDockerOptions(`hostUrl ${hostUrl} needs a host and a port`);
    // URL keeps IPv6 literals bracketed; the socket layer wants them bare.
    return { kind: 'tcp', host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port, tls: tls || url.protocol === 'https:' };
  }
  throw new InvalidDockerOptions(`hostUrl ${hostUrl}: only unix://, tcp:// and https:// are supported`);
}

function positiveMs(option: string, ms: number): number {
  if (!Number.isFinite(ms) || ms < 1 || ms > MAX_TIMER_MS) throw new InvalidDockerOptions(`${option} must be between 1 and ${MAX_TIMER_MS} ms, not ${ms}`);
  return ms;
}

function normaliseCapability(name: string): string {
  const cap = name.trim().toUpperCase().replace(/^CAP_/, '');
  if (!CAPABILITY.test(cap)) throw new InvalidDockerOptions(`${name} is not a capability name`);
  return cap;
}
