// downloadVerified against a real HTTP server on 127.0.0.1: streaming, hashing, renaming into place, limits,
// retries of dropped or refused downloads, stalls.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConnectionError } from '../../../src/identity/request-error';
import { GlanceClient, type GlanceClientOptions, type GlanceImage } from '../../../src/image/glance-client';
import {
  GlanceConnectionFailed,
  ImageHashMismatch,
  ImageTooLarge,
  ImageUnacceptable,
} from '../../../src/image/glance-errors';
import { collectingLogger } from '../../unit/identity/log-capture';
import { startServer, writeRepeated, type Handler, type LocalServer } from '../identity/local-server';

const IMAGE = '1271781e-5153-43b9-a96c-9851e9bec3c0';
const CTX = { request_id: 'req-a278591d-5601-472b-867a-33b93007acda', auth_token: 'user-token' };
const DATA = crypto.randomBytes(3 * 1024 * 1024 + 17);
const SHA512 = crypto.createHash('sha512').update(DATA).digest('hex');
const MD5 = crypto.createHash('md5').update(DATA).digest('hex');

const serveData =
  (headers: Record<string, string> = {}): Handler =>
  (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': DATA.length, ...headers });
    res.end(DATA);
  };

describe('image/downloadVerified (real HTTP server)', function () {
  this.timeout(30_000);
  let server: LocalServer | undefined;
  let dir: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-glance-'));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function serve(handler: Handler): Promise<LocalServer> {
    server = await startServer(handler);
    return server;
  }

  function glance(url: string, options: GlanceClientOptions = {}, logger = collectingLogger().logger): GlanceClient {
    return new GlanceClient({ endpoint_override: url, num_retries: 3, ...options }, { retryDelayMs: 0, logger });
  }

  const image = (fields: Partial<GlanceImage> = {}): GlanceImage => ({ id: IMAGE, size: DATA.length, ...fields });

  it('streams, verifies os_hash_value (sha512) and renames into place; nothing else is left', async () => {
    const srv = await serve(serveData());
    const result = await glance(srv.url).downloadVerified(
      CTX,
      image({ os_hash_algo: 'sha512', os_hash_value: SHA512, checksum: 'not-used' }),
      dir,
    );
    assert.deepEqual(result, {
      path: path.join(dir, IMAGE),
      size: DATA.length,
      verification: 'os_hash_value',
      algorithm: 'sha512',
    });
    assert.ok((await fs.readFile(result.path)).equals(DATA));
    assert.deepEqual(await fs.readdir(dir), [IMAGE]);
    assert.equal(srv.requests[0]?.url, `/v2/images/${IMAGE}/file`);
    assert.equal(srv.requests[0]?.headers['x-auth-token'], 'user-token');
    assert.equal(srv.requests[0]?.headers['x-openstack-request-id'], CTX.request_id);
  });

  it('falls back to checksum (md5), then to Content-MD5, else reports unverified', async () => {
    const srv = await serve(serveData({ 'Content-MD5': MD5 }));
    const c = glance(srv.url);
    assert.equal(
      (await c.downloadVerified(CTX, image({ checksum: MD5 }), dir, { fileName: 'a' })).verification,
      'checksum',
    );
    const viaHeader = await c.downloadVerified(CTX, image(), dir, { fileName: 'b' });
    assert.equal(viaHeader.verification, 'content-md5');
    assert.equal(viaHeader.algorithm, 'md5');
    await srv.close();

    const { logger, lines } = collectingLogger();
    const bare = await serve(serveData());
    const unverified = await glance(bare.url, {}, logger).downloadVerified(CTX, image(), dir, { fileName: 'c' });
    assert.equal(unverified.verification, 'unverified');
    assert.equal(unverified.algorithm, null);
    assert.ok(lines.some((l) => l.includes('"level":"warn"') && l.includes('unverified') && l.includes(IMAGE)));
    assert.deepEqual((await fs.readdir(dir)).sort(), ['a', 'b', 'c']);
  });

  it('a hash mismatch is ImageHashMismatch, and neither the file nor a partial file is left', async () => {
    const srv = await serve(serveData());
    const wrong = crypto.createHash('sha512').update('other').digest('hex');
    const err = await glance(srv.url)
      .downloadVerified(CTX, image({ os_hash_algo: 'sha512', os_hash_value: wrong }), dir)
      .catch((e: unknown) => e);
    assert.ok(err instanceof ImageHashMismatch);
    assert.equal(err.expected, wrong);
    assert.equal(err.actual, SHA512);
    assert.deepEqual(await fs.readdir(dir), []);
    assert.equal(srv.requests.length, 1, 'a mismatch is not retried');
  });

  it('a corrupt Content-MD5 also fails verification', async () => {
    const srv = await serve(serveData({ 'Content-MD5': MD5.replace(/^./, MD5[0] === '0' ? '1' : '0') }));
    await assert.rejects(glance(srv.url).downloadVerified(CTX, image(), dir), ImageHashMismatch);
    assert.deepEqual(await fs.readdir(dir), []);
  });

  it('204 is ImageUnacceptable("Image has no associated data"), not retried', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(204);
      res.end();
    });
    await assert.rejects(
      glance(srv.url).downloadVerified(CTX, image(), dir),
      (e: unknown) => e instanceof ImageUnacceptable && e.reason === 'Image has no associated data',
    );
    assert.equal(srv.requests.length, 1);
    assert.deepEqual(await fs.readdir(dir), []);
  });

  describe('size limit', () => {
    it('an image record larger than the limit is refused before any request', async () => {
      const srv = await serve(serveData());
      await assert.rejects(
        glance(srv.url, { max_image_size_bytes: DATA.length - 1 }).downloadVerified(CTX, image(), dir),
        (e: unknown) => e instanceof ImageTooLarge && e.limitBytes === DATA.length - 1,
      );
      assert.equal(srv.requests.length, 0);
    });

    it('a Content-Length over the limit is refused without reading the body', async () => {
      const srv = await serve(serveData());
      await assert.rejects(
        glance(srv.url, { max_image_size_bytes: 1024 }).downloadVerified(CTX, image({ size: null }), dir),
        ImageTooLarge,
      );
      assert.deepEqual(await fs.readdir(dir), []);
    });

    it('a body without Content-Length is cut at the limit and the partial file removed', async () => {
      const srv = await serve((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' }); // chunked
        void writeRepeated(res, DATA.subarray(0, 64 * 1024), 64);
      });
      await assert.rejects(
        glance(srv.url, { max_image_size_bytes: 1024 * 1024 }).downloadVerified(CTX, image({ size: null }), dir),
        ImageTooLarge,
      );
      assert.deepEqual(await fs.readdir(dir), []);
      assert.equal(srv.requests.length, 1, 'the limit is not a connection error: no retry');
    });
  });

  describe('retries', () => {
    it('503 and a connection dropped mid-body are retried; the file is whole', async () => {
      const srv = await serve((_req, res, hit) => {
        if (hit === 1) {
          res.writeHead(503);
          res.end('busy');
        } else if (hit === 2) {
          res.writeHead(200, { 'Content-Length': DATA.length });
          res.write(DATA.subarray(0, 1024 * 1024), () => res.socket?.destroy());
        } else {
          serveData()(_req, res, hit);
        }
      });
      const result = await glance(srv.url).downloadVerified(
        CTX,
        image({ os_hash_algo: 'sha512', os_hash_value: SHA512 }),
        dir,
      );
      assert.equal(srv.requests.length, 3);
      assert.ok((await fs.readFile(result.path)).equals(DATA));
      assert.deepEqual(await fs.readdir(dir), [IMAGE]);
    });

    it('after 1 + num_retries failures: GlanceConnectionFailed', async () => {
      const srv = await serve((_req, res) => {
        res.writeHead(503);
        res.end();
      });
      await assert.rejects(
        glance(srv.url, { num_retries: 2 }).downloadVerified(CTX, image(), dir),
        GlanceConnectionFailed,
      );
      assert.equal(srv.requests.length, 3);
    });

    it('a refused connection is retried, then GlanceConnectionFailed', async () => {
      const srv = await serve(serveData());
      const url = srv.url;
      await srv.close();
      server = undefined;
      const err = await glance(url, { num_retries: 1 })
        .downloadVerified(CTX, image(), dir)
        .catch((e: unknown) => e);
      assert.ok(err instanceof GlanceConnectionFailed);
      assert.ok(err.cause instanceof ConnectionError);
      assert.equal(err.cause.code, 'ECONNREFUSED');
    });

    it('a body that stalls for longer than timeout is abandoned (ETIMEDOUT), retried, and cleaned up', async () => {
      const srv = await serve((_req, res) => {
        res.writeHead(200, { 'Content-Length': DATA.length });
        res.write(DATA.subarray(0, 4096)); // and then nothing
      });
      const err = await glance(srv.url, { num_retries: 1, timeout: 0.3 })
        .downloadVerified(CTX, image(), dir)
        .catch((e: unknown) => e);
      assert.ok(err instanceof GlanceConnectionFailed);
      assert.ok(err.cause instanceof ConnectionError);
      assert.equal(err.cause.timedOut, true);
      assert.equal(srv.requests.length, 2);
      assert.deepEqual(await fs.readdir(dir), []);
    });
  });

  it('a bad file name is refused (no path traversal through the image id)', async () => {
    await assert.rejects(
      glance('http://127.0.0.1:1').downloadVerified(CTX, image({ id: '../../etc/passwd' }), dir),
      ImageUnacceptable,
    );
  });

  it('never holds the image in memory: a 256 MiB download grows heap + buffers by far less', async () => {
    const chunk = crypto.randomBytes(1024 * 1024);
    const times = 256;
    const hash = crypto.createHash('sha512');
    for (let i = 0; i < times; i++) hash.update(chunk);
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': chunk.length * times });
      void writeRepeated(res, chunk, times);
    });
    const used = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const baseline = used();
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, used());
    }, 5);
    try {
      const result = await glance(srv.url).downloadVerified(
        CTX,
        image({ size: chunk.length * times, os_hash_algo: 'sha512', os_hash_value: hash.digest('hex') }),
        dir,
      );
      assert.equal(result.size, chunk.length * times);
    } finally {
      clearInterval(sampler);
    }
    const growthMiB = (peak - baseline) / 1024 / 1024;
    assert.ok(growthMiB < 128, `memory grew by ${growthMiB.toFixed(1)} MiB for a 256 MiB image`);
  });
});
