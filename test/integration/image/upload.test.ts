// uploadImageData against a real HTTP server on 127.0.0.1: streamed bodies, stalls, failing sources.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { ConnectionError } from '../../../src/identity/request-error';
import { GlanceClient } from '../../../src/image/glance-client';
import { startServer, type Handler, type LocalServer } from '../identity/local-server';

const IMAGE = '1271781e-5153-43b9-a96c-9851e9bec3c0';
const CTX = { request_id: 'req-a278591d-5601-472b-867a-33b93007acda', auth_token: 'user-token' };

/** `count` chunks of `chunk`, produced lazily (never all in memory). */
function source(chunk: Buffer, count: number): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < count; i++) yield chunk;
    })(),
  );
}

/** Reads the whole request body, hashing it; answers 204. */
const hashingSink =
  (into: { sha256?: string; bytes?: number }): Handler =>
  (req, res) => {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    req.on('end', () => {
      into.sha256 = hash.digest('hex');
      into.bytes = bytes;
      res.writeHead(204);
      res.end();
    });
  };

describe('image/uploadImageData (real HTTP server)', function () {
  this.timeout(30_000);
  let server: LocalServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const glance = (url: string, timeout?: number) =>
    new GlanceClient({ endpoint_override: url, ...(timeout === undefined ? {} : { timeout }) }, { retryDelayMs: 0 });

  it('streams 64 MiB chunked (no size given) as application/octet-stream', async () => {
    const chunk = crypto.randomBytes(1024 * 1024);
    const expected = crypto.createHash('sha256');
    for (let i = 0; i < 64; i++) expected.update(chunk);
    const seen: { sha256?: string; bytes?: number } = {};
    server = await startServer(hashingSink(seen));
    await glance(server.url).uploadImageData(CTX, IMAGE, source(chunk, 64));
    assert.equal(seen.bytes, 64 * chunk.length);
    assert.equal(seen.sha256, expected.digest('hex'));
    const req = server.requests[0];
    assert.equal(req?.method, 'PUT');
    assert.equal(req?.url, `/v2/images/${IMAGE}/file`);
    assert.equal(req?.headers['content-type'], 'application/octet-stream');
    assert.equal(req?.headers['transfer-encoding'], 'chunked');
    assert.equal(req?.headers['x-auth-token'], 'user-token');
  });

  it('sends Content-Length when the size is known', async () => {
    const seen: { bytes?: number } = {};
    server = await startServer(hashingSink(seen));
    await glance(server.url).uploadImageData(CTX, IMAGE, source(Buffer.alloc(1000, 7), 5), { size: 5000 });
    assert.equal(server.requests[0]?.headers['content-length'], '5000');
    assert.equal(seen.bytes, 5000);
  });

  it('a server that stops reading is abandoned after `timeout` without progress (ETIMEDOUT)', async () => {
    server = await startServer(() => {
      // never reads, never answers
    });
    const err = await glance(server.url, 0.3)
      .uploadImageData(CTX, IMAGE, source(Buffer.alloc(1024 * 1024), 256))
      .catch((e: unknown) => e);
    assert.ok(err instanceof ConnectionError, String(err));
    assert.equal(err.timedOut, true);
    assert.equal(server.requests.length, 1, 'uploads are not retried');
  });

  it('a server that reads everything but never answers is abandoned too', async () => {
    server = await startServer((req) => req.resume());
    const err = await glance(server.url, 0.3)
      .uploadImageData(CTX, IMAGE, source(Buffer.alloc(1024), 4))
      .catch((e: unknown) => e);
    assert.ok(err instanceof ConnectionError && err.timedOut, String(err));
  });

  it('an upload slower than `timeout` in total but always progressing completes', async () => {
    const seen: { bytes?: number } = {};
    server = await startServer(hashingSink(seen));
    const slow = Readable.from(
      (async function* () {
        for (let i = 0; i < 6; i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          yield Buffer.alloc(1000, i);
        }
      })(),
    );
    await glance(server.url, 0.3).uploadImageData(CTX, IMAGE, slow);
    assert.equal(seen.bytes, 6000);
  });

  it("a failing source (e.g. docker save) rejects with the source's own error", async () => {
    server = await startServer((req) => req.resume());
    const boom = new Error('docker save failed');
    const failing = Readable.from(
      (async function* () {
        yield Buffer.alloc(1024);
        throw boom;
      })(),
    );
    const err = await glance(server.url)
      .uploadImageData(CTX, IMAGE, failing)
      .catch((e: unknown) => e);
    assert.equal(err, boom);
  });
});
