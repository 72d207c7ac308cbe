// A real HTTP(S) server on 127.0.0.1 with a random port, for the tests where a mock would lie (streaming,
// sockets dropped mid-body, stalls, TLS).
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import nock from 'nock';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, hit: number) => void;

export interface LocalServer {
  readonly url: string;
  /** Requests seen, in order (method, url and headers). */
  readonly requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }>;
  close(): Promise<void>;
}

export async function startServer(handler: Handler, tls?: { key: Buffer; cert: Buffer }): Promise<LocalServer> {
  // Once any suite of the mocha run has loaded nock it intercepts every request (and mangles streamed bodies);
  // nock suites switch it back on for themselves (useNock).
  if (nock.isActive()) nock.restore();
  const requests: LocalServer['requests'] = [];
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res, requests.length);
  };
  const server = tls === undefined ? http.createServer(listener) : https.createServer(tls, listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Writes `chunk` `times` times, honouring backpressure, then ends the response. */
export async function writeRepeated(res: http.ServerResponse, chunk: Buffer, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    if (!res.write(chunk)) await new Promise<void>((resolve) => res.once('drain', resolve));
    if (res.destroyed) return;
  }
  res.end();
}
