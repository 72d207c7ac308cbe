// Connecting to the Docker Engine: the endpoint from our options only, TLS with the engine's certificate verified,
// and the API version negotiated from the engine's unversioned GET /version (never pinned: new engines drop old
// API versions).

import { readFile } from 'node:fs/promises';

// Must come before dockerode: keeps gRPC and ssh2 out of memory until something uses them.
import './lazy-optional-deps';
import Docker from 'dockerode';

import { RuntimeUnavailable } from '../driver';
import { dockerMessage, isUnavailable } from './docker-errors';
import { InvalidDockerOptions, type CompiledDockerOptions } from './docker-options';
import { withDeadline } from './engine-deadline';

export interface DockerConnection {
  /** A client whose every request is prefixed with the negotiated API version. */
  readonly docker: Docker;
  readonly apiVersion: string;
  /** The engine's release (`20.10.24+dfsg1`). */
  readonly serverVersion: string;
}

export async function connectDocker(options: CompiledDockerOptions): Promise<DockerConnection> {
  const clientOptions = await dockerClientOptions(options);
  const where = describeEndpoint(options);
  let version: Docker.DockerVersion;
  try {
    const unversioned = new Docker(clientOptions);
    version = await withDeadline('version', options.apiTimeoutMs, (signal) => engineVersion(unversioned, signal));
  } catch (error) {
    const reason = isUnavailable(error) || error instanceof RuntimeUnavailable ? dockerMessage(error) : `unexpected answer: ${dockerMessage(error)}`;
    throw new RuntimeUnavailable(`Cannot reach the Docker Engine at ${where}: ${reason}`, { cause: error });
  }
  const apiVersion = version.ApiVersion;
  if (typeof apiVersion !== 'string' || !/^\d+\.\d+$/.test(apiVersion)) {
    throw new RuntimeUnavailable(`The engine at ${where} reported no usable API version (${String(apiVersion)})`);
  }
  if (compareApiVersions(apiVersion, options.minApiVersion) < 0) {
    throw new RuntimeUnavailable(
      `The Docker Engine at ${where} speaks API ${apiVersion}; Berth needs at least ${options.minApiVersion}`,
    );
  }
  return {
    docker: new Docker({ ...clientOptions, version: `v${apiVersion}` }),
    apiVersion,
    serverVersion: typeof version.Version === 'string' ? version.Version : 'unknown',
  };
}

// GET /version, /info and /_ping take dockerode's `abortSignal` option like every other call; its typings omit it.
type Signalled<T> = (options: { abortSignal: AbortSignal }) => Promise<T>;

export function engineVersion(docker: Docker, signal: AbortSignal): Promise<Docker.DockerVersion> {
  return (docker.version as unknown as Signalled<Docker.DockerVersion>).call(docker, { abortSignal: signal });
}

export function engineInfo(docker: Docker, signal: AbortSignal): Promise<unknown> {
  return (docker.info as unknown as Signalled<unknown>).call(docker, { abortSignal: signal });
}

/** GET /images/get (`docker save`); dockerode's getImage().get() cannot be aborted and getImages is not typed. */
export function engineSave(docker: Docker, names: readonly string[], signal: AbortSignal): Promise<NodeJS.ReadableStream> {
  const save = (docker as unknown as { getImages: (options: { names: readonly string[]; abortSignal: AbortSignal }) => Promise<NodeJS.ReadableStream> }).getImages;
  return save.call(docker, { names, abortSignal: signal });
}

export function enginePing(docker: Docker, signal: AbortSignal): Promise<unknown> {
  return (docker.ping as unknown as Signalled<unknown>).call(docker, { abortSignal: signal });
}

/** Negative when a < b, like a sort comparator ("1.9" < "1.41"). */
export function compareApiVersions(a: string, b: string): number {
  const [aMajor = 0, aMinor = 0] = a.split('.').map(Number);
  const [bMajor = 0, bMinor = 0] = b.split('.').map(Number);
  return aMajor - bMajor || aMinor - bMinor;
}

async function dockerClientOptions(options: CompiledDockerOptions): Promise<Docker.DockerOptions> {
  // docker-modem fills gaps from DOCKER_HOST / DOCKER_CERT_PATH; every connection field is set here so only our
  // configuration decides where Berth connects.
  const cleared = { socketPath: undefined, host: undefined, port: undefined, ca: undefined, cert: undefined, key: undefined };
  const { endpoint } = options;
  if (endpoint.kind === 'unix') return { ...cleared, socketPath: endpoint.socketPath, protocol: 'http' };
  if (!endpoint.tls) return { ...cleared, host: endpoint.host, port: endpoint.port, protocol: 'http' };
  return {
    ...cleared,
    host: endpoint.host,
    port: endpoint.port,
    protocol: 'https',
    // Node verifies the server certificate (chain and host name) unless told otherwise; we never tell it otherwise.
    ca: options.caFile === null ? undefined : await readTlsFile(options.caFile, 'caFile'),
    cert: options.certFile === null ? undefined : await readTlsFile(options.certFile, 'certFile'),
    key: options.keyFile === null ? undefined : await readTlsFile(options.keyFile, 'keyFile'),
  };
}

async function readTlsFile(path: string, option: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new InvalidDockerOptions(`${option} ${path} cannot be read: ${(error as Error).message}`);
  }
}

function describeEndpoint(options: CompiledDockerOptions): string {
  const { endpoint } = options;
  if (endpoint.kind === 'unix') return `unix://${endpoint.socketPath}`;
  return `${endpoint.tls ? 'tls' : 'tcp'}://${endpoint.host}:${endpoint.port}`;
}
