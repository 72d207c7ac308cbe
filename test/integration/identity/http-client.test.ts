// The transport against real sockets: stalled bodies, refused connections, TLS verification (cafile / insecure).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HttpClient } from '../../../src/identity/http-client';
import { KeystoneSession } from '../../../src/identity/keystone-session';
import { ConnectionError } from '../../../src/identity/request-error';
import { startServer, type LocalServer } from './local-server';

describe('identity/http-client (real sockets)', function () {
  this.timeout(20_000);
  let server: LocalServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('a JSON body that stalls after the headers is abandoned after timeoutMs (ETIMEDOUT)', async () => {
    server = await startServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 100 });
      res.write('{"resource_providers": ['); // and nothing more
    });
    const err = await HttpClient.create({ timeoutMs: 300 })
      .request({ method: 'GET', url: `${server.url}/x` })
      .catch((e: unknown) => e);
    assert.ok(err instanceof ConnectionError, String(err));
    assert.equal(err.code, 'ETIMEDOUT');
  });

  it('no answer at all within timeoutMs is ETIMEDOUT', async () => {
    server = await startServer(() => undefined);
    const err = await HttpClient.create({ timeoutMs: 300 })
      .request({ method: 'GET', url: `${server.url}/x` })
      .catch((e: unknown) => e);
    assert.ok(err instanceof ConnectionError && err.timedOut, String(err));
  });

  it('a refused connection is ECONNREFUSED', async () => {
    const closed = await startServer(() => undefined);
    await closed.close();
    const err = await HttpClient.create()
      .request({ method: 'GET', url: `${closed.url}/x` })
      .catch((e: unknown) => e);
    assert.ok(err instanceof ConnectionError, String(err));
    assert.equal(err.code, 'ECONNREFUSED');
  });

  describe('TLS (keystoneauth cafile / insecure)', () => {
    let dir: string;
    let tls: { key: Buffer; cert: Buffer };
    before(function () {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-tls-'));
      try {
        execFileSync(
          'openssl',
          [
            'req',
            '-x509',
            '-newkey',
            'rsa:2048',
            '-nodes',
            '-days',
            '1',
            '-subj',
            '/CN=127.0.0.1',
            '-addext',
            'subjectAltName=IP:127.0.0.1',
            '-keyout',
            path.join(dir, 'key.pem'),
            '-out',
            path.join(dir, 'cert.pem'),
          ],
          { stdio: 'ignore' },
        );
      } catch {
        this.skip(); // no openssl binary: nothing to test TLS with
      }
      tls = { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) };
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    async function keystone(): Promise<LocalServer> {
      return startServer((_req, res) => {
        res.writeHead(201, { 'Content-Type': 'application/json', 'X-Subject-Token': 'tls-token' });
        res.end(JSON.stringify({ token: { expires_at: '2099-01-01T00:00:00.000000Z', catalog: [] } }));
      }, tls);
    }
    const options = (url: string) =>
      ({ auth_type: 'password', auth_url: `${url}/v3`, user_id: 'u', password: 'pw', project_id: 'p' }) as const;

    it('verifies certificates by default: a self-signed one is refused', async () => {
      server = await keystone();
      const err = await new KeystoneSession(options(server.url)).getToken().catch((e: unknown) => e);
      assert.ok(err instanceof ConnectionError, String(err));
      assert.match(err.code, /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
    });

    it('cafile makes it trusted', async () => {
      server = await keystone();
      const session = new KeystoneSession({ ...options(server.url), cafile: path.join(dir, 'cert.pem') });
      assert.equal(await session.getToken(), 'tls-token');
    });

    it('insecure = true skips verification', async () => {
      server = await keystone();
      assert.equal(await new KeystoneSession({ ...options(server.url), insecure: true }).getToken(), 'tls-token');
    });
  });
});
