// A stand-in Docker Engine on 127.0.0.1 (HTTP or HTTPS) that answers the few endpoints DockerDriver.init() and the
// event stream use, so tests can make the engine misbehave in ways a shared real dockerd must not: any request can be
// answered by the test first (`handle`), e.g. never, or slowly; the engine records which requests the client aborted.

import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A request as the stand-in routes it: `route` is the path without the API version prefix and the query. */
export interface EngineRequest {
  readonly method: string;
  readonly route: string;
  readonly query: URLSearchParams;
}

export interface FakeEngineOptions {
  /** Answers a request before the defaults do; returns false to leave it to them. */
  readonly handle?: (request: EngineRequest, incoming: IncomingMessage, response: ServerResponse) => boolean;
  readonly apiVersion?: string;
  readonly tls?: { readonly key: Buffer; readonly cert: Buffer; readonly ca: Buffer; readonly requestCert: boolean };
  /** Answers GET /v*\/events; default: an open stream that sends nothing. */
  readonly events?: (request: IncomingMessage, response: ServerResponse) => void;
  /** Answers GET /v*\/containers/{id}/json; default 404. */
  readonly inspect?: (id: string) => unknown;
  /** Status for GET /v*\/info (default 200). */
  readonly infoStatus?: number;
}

export interface FakeEngine {
  readonly url: string;
  /** `METHOD path` of every request that reached the HTTP layer. */
  readonly requests: string[];
  /** Subject CN of the client certificate of each TLS request ('' without one). */
  readonly clientCertificates: string[];
  /** `METHOD path` of every request whose connection the client closed before the answer was complete. */
  readonly aborted: string[];
  close(): Promise<void>;
}

export async function startFakeEngine(options: FakeEngineOptions = {}): Promise<FakeEngine> {
  const apiVersion = options.apiVersion ?? '1.41';
  const requests: string[] = [];
  const clientCertificates: string[] = [];
  const aborted: string[] = [];
  const json = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'Content-Type': 'application/json', 'Api-Version': apiVersion });
    response.end(JSON.stringify(body));
  };
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    const path = request.url ?? '/';
    requests.push(`${request.method} ${path}`);
    response.on('close', () => {
      if (!response.writableFinished) aborted.push(`${request.method} ${path}`);
    });
    if (options.tls) {
      const peer = (request.socket as TLSSocket).getPeerCertificate();
      clientCertificates.push(typeof peer.subject?.CN === 'string' ? peer.subject.CN : '');
    }
    const versioned = /^\/v(\d+\.\d+)(\/[^?]*)/.exec(path);
    const url = new URL(path, 'http://engine');
    const routed = { method: request.method ?? 'GET', route: versioned?.[2] ?? url.pathname, query: url.searchParams };
    if (options.handle?.(routed, request, response)) return;
    if (path === '/version') {
      return json(response, 200, { ApiVersion: apiVersion, MinAPIVersion: '1.12', Version: '20.10.24', Os: 'linux', Arch: 'amd64' });
    }
    if (!versioned) return json(response, 404, { message: `unversioned ${path}` });
    const route = versioned[2] ?? '';
    if (route === '/info') {
      if (options.infoStatus && options.infoStatus !== 200) return json(response, options.infoStatus, { message: 'engine trouble' });
      return json(response, 200, {
        NCPU: 2, MemTotal: 4 * 1024 ** 3, DockerRootDir: '/nonexistent', Architecture: 'x86_64', ServerVersion: '20.10.24', DriverStatus: [],
      });
    }
    if (route === '/_ping') {
      response.writeHead(200, { 'Content-Type': 'text/plain', 'Api-Version': apiVersion });
      response.end('OK');
      return;
    }
    if (route === '/events') {
      if (options.events) return options.events(request, response);
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.flushHeaders();
      return;
    }
    const inspect = /^\/containers\/([^/]+)\/json$/.exec(route);
    if (inspect && options.inspect) return json(response, 200, options.inspect(inspect[1] ?? ''));
    return json(response, 404, { message: `no such thing: ${route}` });
  };
  const server: Server = options.tls
    ? createHttpsServer({ ...options.tls, rejectUnauthorized: options.tls.requestCert }, handler)
    : createHttpServer(handler);
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('secureConnection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `tcp://127.0.0.1:${port}`,
    requests,
    clientCertificates,
    aborted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** Server certificate for IP 127.0.0.1, signed by the CA. */
  readonly server: { readonly key: Buffer; readonly cert: Buffer; readonly ca: Buffer };
  /** Server certificate for IP 127.0.0.1, signed by another CA. */
  readonly rogueServer: { readonly key: Buffer; readonly cert: Buffer; readonly ca: Buffer };
  /** Server certificate signed by the CA, but for the name docker.example only. */
  readonly misnamedServer: { readonly key: Buffer; readonly cert: Buffer; readonly ca: Buffer };
}

/** A CA, server and client certificates made with openssl into `dir` (EC P-256, valid one day). */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const { readFile, writeFile } = await import('node:fs/promises');
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const newKey = (name: string) => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file(name));
  const selfSignedCa = async (name: string) => {
    await newKey(`${name}.key`);
    await openssl('req', '-x509', '-new', '-key', file(`${name}.key`), '-out', file(`${name}.pem`), '-days', '1', '-subj', `/CN=${name}`);
  };
  const issue = async (name: string, ca: string, extensions: string) => {
    await newKey(`${name}.key`);
    await openssl('req', '-new', '-key', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${name}`);
    await writeFile(file(`${name}.ext`), `${extensions}\n`);
    await openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file(`${ca}.pem`), '-CAkey', file(`${ca}.key`),
      '-CAcreateserial', '-out', file(`${name}.pem`), '-days', '1', '-extfile', file(`${name}.ext`));
  };
  await selfSignedCa('berth-test-ca');
  await selfSignedCa('rogue-ca');
  await issue('engine', 'berth-test-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  await issue('rogue-engine', 'rogue-ca', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  await issue('misnamed-engine', 'berth-test-ca', 'subjectAltName=DNS:docker.example\nextendedKeyUsage=serverAuth');
  await issue('berth-client', 'berth-test-ca', 'extendedKeyUsage=clientAuth');
  const serverOf = async (name: string, ca: string) => ({
    key: await readFile(file(`${name}.key`)), cert: await readFile(file(`${name}.pem`)), ca: await readFile(file(`${ca}.pem`)),
  });
  return {
    dir,
    caFile: file('berth-test-ca.pem'),
    clientCertFile: file('berth-client.pem'),
    clientKeyFile: file('berth-client.key'),
    server: await serverOf('engine', 'berth-test-ca'),
    rogueServer: await serverOf('rogue-engine', 'berth-test-ca'),
    misnamedServer: await serverOf('misnamed-engine', 'berth-test-ca'),
  };
}
