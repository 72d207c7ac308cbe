// How DockerDriver connects and stays connected, against a stand-in engine on 127.0.0.1: TLS with the server
// certificate verified (nova-docker did not), API version negotiation, and the event stream's recovery.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';

import { DockerDriver } from '../../../driver/docker/docker-driver';
import { RuntimeUnavailable, type LifecycleEvent } from '../../../driver/driver';
import { makeTestPki, startFakeEngine, type FakeEngine, type TestPki } from './fake-engine';

describe('DockerDriver connection (stand-in engine)', function () {
  this.timeout(30_000);

  let dir: string;
  let pki: TestPki;
  const engines: FakeEngine[] = [];
  const drivers: DockerDriver[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-engine-test-'));
    pki = await makeTestPki(dir);
  });
  afterEach(async () => {
    for (const driver of drivers.splice(0)) await driver.close();
    for (const engine of engines.splice(0)) await engine.close();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const engine = async (options: Parameters<typeof startFakeEngine>[0]) => {
    const started = await startFakeEngine(options);
    engines.push(started);
    return started;
  };
  const driver = (options: Partial<ConstructorParameters<typeof DockerDriver>[0]>) => {
    const created = new DockerDriver({ stateDir: join(dir, 'state'), eventsReconnectDelayMs: 10, ...options });
    drivers.push(created);
    return created;
  };
  const tlsFiles = () => ({ caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile });

  describe('TLS', () => {
    it('connects to an engine whose certificate the CA signed, presenting the client certificate', async () => {
      const server = await engine({ tls: { ...pki.server, requestCert: true } });
      const subject = driver({ hostUrl: server.url, ...tlsFiles() });
      await subject.init();
      assert.equal(subject.apiVersion, '1.41');
      assert.ok(server.requests.includes('GET /version'));
      assert.ok(server.requests.includes('GET /v1.41/info'));
      assert.ok(server.clientCertificates.length > 0 && server.clientCertificates.every((cn) => cn === 'berth-client'));
    });

    it('refuses an engine whose certificate another CA signed, before sending any request', async () => {
      const server = await engine({ tls: { ...pki.rogueServer, requestCert: false } });
      await assert.rejects(driver({ hostUrl: server.url, ...tlsFiles() }).init(), (error: unknown) => {
        assert.ok(error instanceof RuntimeUnavailable, String(error));
        assert.match(error.message, /certificate|self.signed|verify/i);
        return true;
      });
      assert.deepEqual(server.requests, []);
    });

    it('refuses a certificate that the CA signed for another host name', async () => {
      const server = await engine({ tls: { ...pki.misnamedServer, requestCert: false } });
      await assert.rejects(driver({ hostUrl: server.url, ...tlsFiles() }).init(), RuntimeUnavailable);
      assert.deepEqual(server.requests, []);
    });

    it('cannot connect without a client certificate to an engine that requires one', async () => {
      const server = await engine({ tls: { ...pki.server, requestCert: true } });
      await assert.rejects(driver({ hostUrl: server.url, caFile: pki.caFile }).init(), RuntimeUnavailable);
      assert.deepEqual(server.requests, []);
    });
  });

  describe('API version', () => {
    it('speaks the engine’s own API version, newer ones included', async () => {
      const server = await engine({ apiVersion: '1.45' });
      const subject = driver({ hostUrl: server.url });
      await subject.init();
      assert.equal(subject.apiVersion, '1.45');
      assert.ok(server.requests.includes('GET /v1.45/info'));
    });

    it('refuses an engine older than the minimum, using nothing but /version', async () => {
      const server = await engine({ apiVersion: '1.40' });
      await assert.rejects(driver({ hostUrl: server.url }).init(), /API 1\.40; Berth needs at least 1\.41/);
      assert.deepEqual(server.requests, ['GET /version']);
    });

    it('reports an engine that answers 5xx as unavailable', async () => {
      const server = await engine({ infoStatus: 500 });
      await assert.rejects(driver({ hostUrl: server.url }).init(), RuntimeUnavailable);
    });
  });

  describe('event stream', () => {
    const event = (action: string, timeNano: string, extra: Record<string, string> = {}) =>
      `${JSON.stringify({ Type: 'container', Action: action, id: 'c0ntainer', time: Math.floor(Number(timeNano) / 1e9), Actor: { ID: 'c0ntainer', Attributes: { 'openstack.instance_uuid': 'uuid-1', name: 'nova-uuid-1', ...extra } } }).slice(0, -1)},"timeNano":${timeNano}}\n`;

    it('re-opens a broken stream where it left off, and stops for good on close()', async () => {
      const streams: Array<{ query: URLSearchParams; response: ServerResponse }> = [];
      const server = await engine({
        inspect: () => ({ State: { OOMKilled: true, Dead: false, Running: false, Status: 'exited' } }),
        events: (request, response) => {
          const query = new URL(request.url ?? '/', 'http://x').searchParams;
          streams.push({ query, response });
          response.writeHead(200, { 'Content-Type': 'application/json' });
          if (streams.length === 1) {
            // The first stream delivers one event, then breaks like a restarting dockerd.
            response.write(event('start', '1764466563123456789'));
            response.end();
          } else {
            response.write(event('die', '1764466570000000000', { exitCode: '137' }));
          }
        },
      });
      const subject = driver({ hostUrl: server.url });
      const received: LifecycleEvent[] = [];
      subject.onLifecycleEvent((e) => received.push(e));
      await subject.init();
      const deadline = Date.now() + 10_000;
      while (received.length < 2) {
        if (Date.now() > deadline) assert.fail(`events: ${JSON.stringify(received)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.deepEqual(received.map((e) => [e.uuid, e.transition]), [['uuid-1', 'started'], ['uuid-1', 'died']]);
      assert.equal(received[0]?.at.getTime(), 1764466563123);
      const filters = JSON.parse(streams[0]?.query.get('filters') ?? '{}') as Record<string, string[]>;
      assert.deepEqual(filters['label'], ['openstack.instance_uuid']);
      assert.deepEqual(filters['type'], ['container']);
      assert.equal(streams[0]?.query.get('since'), null);
      assert.equal(streams[1]?.query.get('since'), '1764466563.123456790');

      const open = streams[1]?.response as ServerResponse;
      const closed = new Promise((resolve) => open.on('close', resolve));
      await subject.close();
      await closed;
      const count = streams.length;
      // Had close() left a re-open scheduled (10 ms), it would have fired by now.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(streams.length, count);
    });

    it('ignores events of labelled containers not named for their instance, and lines that are not JSON', async () => {
      const server = await engine({
        events: (_request, response) => {
          response.writeHead(200, { 'Content-Type': 'application/json' });
          response.write(event('start', '1764466590000000000', { name: 'run-from-a-snapshot' }));
          response.write('this is not json\n');
          response.write(event('pause', '1764466591000000000'));
        },
      });
      const subject = driver({ hostUrl: server.url });
      const received: LifecycleEvent[] = [];
      subject.onLifecycleEvent((e) => received.push(e));
      await subject.init();
      const deadline = Date.now() + 10_000;
      while (received.length < 1) {
        if (Date.now() > deadline) assert.fail('no event');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.deepEqual(received.map((e) => e.transition), ['paused']);
    });

    it('keeps retrying while the engine refuses the stream', async () => {
      let attempts = 0;
      const server = await engine({
        events: (_request, response) => {
          attempts += 1;
          response.writeHead(attempts < 3 ? 500 : 200, { 'Content-Type': 'application/json' });
          if (attempts < 3) response.end('{"message":"not now"}');
          else response.write(event('pause', '1764466580000000000'));
        },
      });
      const subject = driver({ hostUrl: server.url });
      const received: LifecycleEvent[] = [];
      subject.onLifecycleEvent((e) => received.push(e));
      await subject.init();
      const deadline = Date.now() + 10_000;
      while (received.length < 1) {
        if (Date.now() > deadline) assert.fail(`no event after ${attempts} attempts`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(received[0]?.transition, 'paused');
      assert.ok(attempts >= 3);
    });
  });
});
