// Every Docker Engine request has a deadline, against a stand-in engine that never answers, answers late, or trickles:
// a request that misses its deadline is aborted (the engine sees the connection closed) and fails with
// RuntimeUnavailable naming the operation and the deadline; the driver keeps working afterwards; calls that
// legitimately wait (stop with a grace period, a progressing load or save, a slow consumer of a save) are not cut.
// Deadlines here are short (API 0.5 s); nothing asserts how long anything took.

import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DockerDriver } from '../../../driver/docker/docker-driver';
import { DEFAULT_CAPABILITIES, type DockerDriverOptions } from '../../../driver/docker/docker-options';
import { RuntimeUnavailable, type InstanceRef, type InstanceSpec } from '../../../driver/driver';
import { createDockerArchive, tarArchive } from '../../../driver/image-archive';
import { glanceImage } from '../../support/images';
import { startFakeEngine, type EngineRequest, type FakeEngine, type FakeEngineOptions } from './fake-engine';

const API_MS = 500;
const SNAPSHOT_MS = 1500;

type Handler = (request: EngineRequest, incoming: IncomingMessage, response: ServerResponse) => boolean;

/** What `docker inspect` says about an instance's container. */
function containerJson(uuid: string, status: 'running' | 'exited' | 'paused'): Record<string, unknown> {
  return {
    Id: `c0ffee${uuid.replace(/-/g, '')}`,
    Name: `/nova-${uuid}`,
    State: { Status: status, Running: status === 'running', Paused: status === 'paused', OOMKilled: false, Dead: false, StartedAt: '2026-11-30T10:00:00Z' },
    Config: { Labels: { 'openstack.instance_uuid': uuid, 'openstack.instance_name': 'instance-00000001' } },
    HostConfig: { Memory: 128 * 1024 * 1024, NanoCpus: 1e9, CapAdd: [...DEFAULT_CAPABILITIES], ReadonlyRootfs: false },
  };
}

function json(response: ServerResponse, status: number, body: unknown): true {
  response.writeHead(status, { 'Content-Type': 'application/json' });
  response.end(JSON.stringify(body));
  return true;
}

function noContent(response: ServerResponse): true {
  response.writeHead(204);
  response.end();
  return true;
}

const hang: Handler = () => true;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually<T>(what: string, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`gave up waiting for ${what}`);
    await sleep(10);
  }
}

describe('DockerDriver deadlines (stand-in engine)', function () {
  this.timeout(30_000);

  let dir: string;
  const engines: FakeEngine[] = [];
  const drivers: DockerDriver[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-deadline-test-'));
  });
  afterEach(async () => {
    for (const driver of drivers.splice(0)) await driver.close();
    for (const engine of engines.splice(0)) await engine.close();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const engine = async (options: FakeEngineOptions) => {
    const started = await startFakeEngine(options);
    engines.push(started);
    return started;
  };
  const driver = async (server: FakeEngine, options: Partial<DockerDriverOptions> = {}) => {
    const created = new DockerDriver({
      stateDir: join(dir, 'state'), hostUrl: server.url, eventsReconnectDelayMs: 10, apiTimeoutMs: API_MS, snapshotTimeoutMs: SNAPSHOT_MS, ...options,
    });
    drivers.push(created);
    await created.init();
    return created;
  };
  /** A stand-in whose instance `uuid` has a container in `status`; `handlers` come first, in order. */
  const engineWith = (uuid: string, status: 'running' | 'exited' | 'paused', ...handlers: Handler[]) =>
    engine({
      inspect: () => containerJson(uuid, status),
      handle: (request, incoming, response) => handlers.some((handler) => handler(request, incoming, response)),
    });
  const instance = (): InstanceRef => ({ uuid: randomUUID(), name: 'instance-00000001' });
  const route = (method: string, pattern: RegExp, handler: Handler): Handler => (request, incoming, response) =>
    request.method === method && pattern.test(request.route) && handler(request, incoming, response);

  /** Rejects with RuntimeUnavailable that names the operation and the deadline. */
  const missesDeadline = async (call: Promise<unknown>, operation: RegExp, seconds: number) => {
    await assert.rejects(call, (error: unknown) => {
      assert.ok(error instanceof RuntimeUnavailable, String(error));
      assert.match(error.message, operation);
      assert.match(error.message, new RegExp(`${seconds} s\\b`));
      return true;
    });
  };
  const abortedOn = (server: FakeEngine, pattern: RegExp) => eventually(`the engine to see ${pattern} aborted`, () => server.aborted.find((r) => pattern.test(r)));

  describe('short calls: an endpoint that never answers', () => {
    const cases: Array<{ name: string; status: 'running' | 'exited' | 'paused'; method: string; path: RegExp; operation: RegExp; run: (d: DockerDriver, ref: InstanceRef) => Promise<unknown> }> = [
      { name: 'getInfo (inspect)', status: 'running', method: 'GET', path: /^\/containers\/[^/]+\/json$/, operation: /inspect/, run: (d, ref) => d.getInfo(ref) },
      { name: 'listInstances (list)', status: 'running', method: 'GET', path: /^\/containers\/json$/, operation: /list containers/, run: (d) => d.listInstances() },
      { name: 'powerOn (start)', status: 'exited', method: 'POST', path: /\/start$/, operation: /start/, run: (d, ref) => d.powerOn(ref) },
      { name: 'pause', status: 'running', method: 'POST', path: /\/pause$/, operation: /pause/, run: (d, ref) => d.pause(ref) },
      { name: 'unpause', status: 'paused', method: 'POST', path: /\/unpause$/, operation: /unpause/, run: (d, ref) => d.unpause(ref) },
      { name: 'reboot HARD (kill)', status: 'running', method: 'POST', path: /\/kill$/, operation: /kill/, run: (d, ref) => d.reboot(ref, 'HARD', 0) },
      { name: 'destroy (remove)', status: 'running', method: 'DELETE', path: /^\/containers\/[^/]+$/, operation: /remove/, run: (d, ref) => d.destroy(ref) },
      { name: 'changeFlavor (update)', status: 'running', method: 'POST', path: /\/update$/, operation: /update/, run: (d, ref) => d.changeFlavor(ref, { name: 'm1.small', flavorId: '2', vcpus: 1, memoryMb: 256, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} }) },
      { name: 'getConsoleOutput (logs)', status: 'running', method: 'GET', path: /\/logs$/, operation: /logs/, run: (d, ref) => d.getConsoleOutput(ref, null) },
      { name: 'getDiagnostics (stats)', status: 'running', method: 'GET', path: /\/stats$/, operation: /stats/, run: (d, ref) => d.getDiagnostics(ref) },
      { name: 'getAvailableResource (info)', status: 'running', method: 'GET', path: /^\/info$/, operation: /info/, run: (d) => d.getAvailableResource() },
    ];
    for (const c of cases) {
      it(`${c.name}: RuntimeUnavailable naming it and the deadline, the request aborted; the driver works afterwards`, async () => {
        const ref = instance();
        let hung = 0;
        // Only after init (which needs /info), and only once: the retry must get through.
        let armed = false;
        const server = await engineWith(ref.uuid, c.status, route(c.method, c.path, () => armed && hung++ === 0));
        const subject = await driver(server);
        armed = true;
        await missesDeadline(c.run(subject, ref), c.operation, API_MS / 1000);
        // The case's path is anchored at /containers… or names only its end.
        const end = c.path.source.replace(/\$$/, '');
        const rest = end.startsWith('^') ? end.slice(1) : `/.*${end}`;
        await abortedOn(server, new RegExp(`^${c.method} /v1\\.41${rest}`));
        assert.equal((await subject.getInfo(ref)).uuid, ref.uuid);
      });
    }

    it('init: a /version that never answers is RuntimeUnavailable, and nothing stays open', async () => {
      const server = await engine({ handle: (request) => request.route === '/version' });
      const subject = new DockerDriver({ stateDir: join(dir, 'state'), hostUrl: server.url, apiTimeoutMs: API_MS });
      await missesDeadline(subject.init(), /version/, API_MS / 1000);
      await abortedOn(server, /^GET \/version$/);
    });

    it('leaves no timer behind after a missed deadline', async () => {
      const ref = instance();
      let armed = false;
      const server = await engineWith(ref.uuid, 'running', route('GET', /\/json$/, () => armed));
      const subject = await driver(server);
      const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
      await sleep(0);
      armed = true;
      const before = timers();
      await missesDeadline(subject.getInfo(ref), /inspect/, API_MS / 1000);
      await abortedOn(server, /\/json$/);
      assert.equal(timers(), before);
    });
  });

  describe('calls that legitimately wait', () => {
    it('stop: the grace period plus the API deadline; a stop answered after the API deadline but within that is fine', async () => {
      const ref = instance();
      const server = await engineWith(ref.uuid, 'running', route('POST', /\/stop$/, (request, _incoming, response) => {
        // Docker waits `t` seconds for the guest before it answers.
        assert.equal(request.query.get('t'), '2');
        setTimeout(() => noContent(response), 1500);
        return true;
      }));
      const subject = await driver(server);
      await subject.powerOff(ref, 2);
    });

    it('stop that never answers: RuntimeUnavailable naming stop and grace + API deadline', async () => {
      const ref = instance();
      const server = await engineWith(ref.uuid, 'running', route('POST', /\/stop$/, hang));
      const subject = await driver(server);
      await missesDeadline(subject.powerOff(ref, 1), /stop/, 1 + API_MS / 1000);
      await abortedOn(server, /\/stop/);
    });

    it('restart (SOFT reboot) that never answers: RuntimeUnavailable naming restart and grace + API deadline', async () => {
      const ref = instance();
      const server = await engineWith(ref.uuid, 'running', route('POST', /\/restart$/, hang));
      const subject = await driver(server);
      await missesDeadline(subject.reboot(ref, 'SOFT', 1), /restart/, 1 + API_MS / 1000);
    });
  });

  describe('image load (spawn): an inactivity deadline', () => {
    /** A stand-in that caches nothing and creates and starts whatever it is asked to. */
    const spawnEngine = (load: Handler) => {
      const uuid = randomUUID();
      return {
        uuid,
        server: engineWith(
          uuid,
          'running',
          route('GET', /^\/images\/json$/, (_r, _i, response) => json(response, 200, [])),
          route('POST', /^\/images\/load$/, load),
          route('POST', /^\/images\/[^/]+\/tag$/, (_r, _i, response) => json(response, 201, {})),
          route('POST', /^\/containers\/create$/, (_r, _i, response) => json(response, 201, { Id: `c0ffee${uuid.replace(/-/g, '')}`, Warnings: [] })),
          route('POST', /\/start$/, (_r, _i, response) => noContent(response)),
        ),
      };
    };
    const spec = (uuid: string): InstanceSpec => ({
      uuid, name: 'instance-00000001', hostname: 'deadline', displayName: 'deadline', projectId: 'p', userId: 'u', metadata: {}, hasNetwork: false,
      flavor: { name: 'm1.tiny', flavorId: '1', vcpus: 1, memoryMb: 64, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} },
    });
    const archiveOf = async (layerBytes: number) => {
      const { archive } = createDockerArchive({ cmd: ['/bin/sh'] }, tarArchive([['blob', randomBytes(layerBytes)]]));
      const path = join(dir, `image-${randomUUID()}.tar`);
      await writeFile(path, archive);
      return path;
    };
    const progress = (response: ServerResponse, i: number) =>
      response.write(`${JSON.stringify({ status: 'Loading layer', progressDetail: { current: i, total: 10 }, id: 'abc' })}\n`);

    it('a slow but progressing load is not cut, however long it takes in all', async () => {
      const { uuid, server } = spawnEngine((_r, incoming, response) => {
        incoming.resume();
        incoming.on('end', () => {
          response.writeHead(200, { 'Content-Type': 'application/json' });
          // Layer progress every 0.3 s for 2.1 s: longer than the deadline in all, never silent for as long.
          let i = 0;
          const tick = setInterval(() => {
            progress(response, ++i);
            if (i === 7) {
              clearInterval(tick);
              response.end(`${JSON.stringify({ stream: 'Loaded image ID: sha256:abc\n' })}\n`);
            }
          }, 300);
        });
        return true;
      });
      const subject = await driver(await server);
      const image = glanceImage(await archiveOf(1024));
      await subject.spawn(spec(uuid), image);
      assert.equal(image.fetchCount, 1);
    });

    it('a load whose engine goes silent after some progress: RuntimeUnavailable naming the load and the deadline', async () => {
      let loads = 0;
      const { uuid, server } = spawnEngine((_r, incoming, response) => {
        loads++;
        incoming.resume();
        incoming.on('end', () => {
          response.writeHead(200, { 'Content-Type': 'application/json' });
          progress(response, 1);
        });
        return true;
      });
      const engineNow = await server;
      const subject = await driver(engineNow);
      const image = glanceImage(await archiveOf(1024));
      await missesDeadline(subject.spawn(spec(uuid), image), /load of image/, API_MS / 1000);
      await abortedOn(engineNow, /\/images\/load/);
      assert.equal(loads, 1);
      for (const path of image.fetchedPaths) await assert.rejects(import('node:fs/promises').then((fs) => fs.stat(path)), /ENOENT/);
    });

    it('a load whose engine stops reading the upload: RuntimeUnavailable, the request aborted', async () => {
      let wedged: IncomingMessage | null = null;
      const { uuid, server } = spawnEngine((_r, incoming) => {
        // Take the first chunk, then read no more (a wedged engine): the upload stalls on TCP backpressure.
        incoming.once('data', () => {
          incoming.pause();
          wedged = incoming;
        });
        return true;
      });
      const engineNow = await server;
      const subject = await driver(engineNow);
      // Far more than the socket buffers hold, so the stall is visible on our side.
      await missesDeadline(subject.spawn(spec(uuid), glanceImage(await archiveOf(32 * 1024 * 1024))), /load of image/, API_MS / 1000);
      // A server that reads nothing cannot see the connection close; once it reads again, it finds it closed.
      assert.ok(wedged, 'the engine got the start of the upload');
      (wedged as IncomingMessage).resume();
      await abortedOn(engineNow, /\/images\/load/);
    });
  });

  describe('snapshot: commit and save', () => {
    const snapshotEngine = (uuid: string, commit: Handler, save: Handler) =>
      engineWith(
        uuid,
        'running',
        route('POST', /^\/commit$/, commit),
        route('GET', /^\/images\/get$/, save),
        route('DELETE', /^\/images\//, (_r, _i, response) => json(response, 200, [])),
      );
    const committed: Handler = (_r, _i, response) => json(response, 201, { Id: 'sha256:5a9e' });
    const target = (upload: (data: NodeJS.ReadableStream) => Promise<void>) => ({
      imageId: randomUUID(),
      updateTaskState: async () => undefined,
      upload: upload as (data: import('node:stream').Readable) => Promise<void>,
    });
    const drain = async (data: NodeJS.ReadableStream, pauseMs = 0) => {
      let bytes = 0;
      for await (const chunk of data) {
        bytes += (chunk as Buffer).length;
        if (pauseMs) await sleep(pauseMs);
      }
      return bytes;
    };

    it('a commit that never answers: RuntimeUnavailable naming commit and the snapshot deadline', async () => {
      const ref = instance();
      const server = await snapshotEngine(ref.uuid, hang, hang);
      const subject = await driver(server);
      await missesDeadline(subject.snapshot(ref, target(async () => undefined)), /commit/, SNAPSHOT_MS / 1000);
      await abortedOn(server, /\/commit/);
    });

    it('a save that exports for longer than the API deadline before its first byte, then trickles, is not cut', async () => {
      const ref = instance();
      const server = await snapshotEngine(ref.uuid, committed, (_r, _i, response) => {
        setTimeout(() => {
          response.writeHead(200, { 'Content-Type': 'application/x-tar' });
          let i = 0;
          const tick = setInterval(() => {
            response.write(Buffer.alloc(1024, i));
            if (++i === 6) {
              clearInterval(tick);
              response.end();
            }
          }, 300);
        }, 1000);
        return true;
      });
      const subject = await driver(server);
      let bytes = 0;
      await subject.snapshot(ref, target(async (data) => {
        bytes = await drain(data);
      }));
      assert.equal(bytes, 6 * 1024);
    });

    it('a slow consumer (the Glance upload) is never blamed on the engine', async () => {
      const ref = instance();
      const server = await snapshotEngine(ref.uuid, committed, (_r, _i, response) => {
        response.writeHead(200, { 'Content-Type': 'application/x-tar' });
        response.end(Buffer.alloc(64 * 1024, 7));
        return true;
      });
      const subject = await driver(server);
      let bytes = 0;
      await subject.snapshot(ref, target(async (data) => {
        await sleep(API_MS * 2);
        bytes = await drain(data, 100);
      }));
      assert.equal(bytes, 64 * 1024);
    });

    it('a save that goes silent mid-stream: the upload fails with RuntimeUnavailable naming the save', async () => {
      const ref = instance();
      const server = await snapshotEngine(ref.uuid, committed, (_r, _i, response) => {
        response.writeHead(200, { 'Content-Type': 'application/x-tar' });
        response.write(Buffer.alloc(1024));
        return true;
      });
      const subject = await driver(server);
      await missesDeadline(subject.snapshot(ref, target(async (data) => {
        await drain(data);
      })), /save of the snapshot/, API_MS / 1000);
      await abortedOn(server, /\/images\/get/);
    });

    it('a save that never sends its first byte: RuntimeUnavailable naming the save and the snapshot deadline', async () => {
      const ref = instance();
      const server = await snapshotEngine(ref.uuid, committed, hang);
      const subject = await driver(server);
      await missesDeadline(subject.snapshot(ref, target(async () => undefined)), /save of the snapshot/, SNAPSHOT_MS / 1000);
      // The committed image is removed all the same.
      await eventually('the committed image removed', () => server.requests.find((r) => r.startsWith('DELETE /v1.41/images/sha256:5a9e')));
    });
  });

  describe('event stream: no deadline once open, but a dead engine is noticed', () => {
    it('an open that never gets its headers is aborted and tried again', async () => {
      let opens = 0;
      const server = await engine({
        handle: (request, _incoming, response) => {
          if (request.route !== '/events') return false;
          if (++opens === 1) return true; // never answers
          response.writeHead(200, { 'Content-Type': 'application/json' });
          response.flushHeaders();
          return true;
        },
      });
      await driver(server);
      await eventually('a second open of the event stream', () => (opens >= 2 ? opens : undefined));
      await abortedOn(server, /^GET \/v1\.41\/events/);
    });

    it('an idle stream of an engine that answers pings stays open', async () => {
      const server = await engine({});
      await driver(server);
      await eventually('two liveness pings', () => (server.requests.filter((r) => r.includes('/_ping')).length >= 2 ? true : undefined));
      assert.equal(server.requests.filter((r) => r.includes('/events')).length, 1);
    });

    it('an idle stream of an engine that stops answering is dropped and re-opened', async () => {
      let pings = 0;
      const server = await engine({ handle: (request) => request.route === '/_ping' && ++pings >= 1 });
      await driver(server);
      await eventually('the stream re-opened', () => (server.requests.filter((r) => r.includes('/events')).length >= 2 ? true : undefined));
      await abortedOn(server, /\/_ping/);
    });
  });
});
