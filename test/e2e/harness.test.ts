// The e2e support kit itself, without the control plane: openrc parsing, the CLI runner's environment and errors,
// waiting, the config overlay, and startBerth against a stub CLI that keeps Berth's CLI contract.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  BerthExitedError,
  type ConfigOverrides,
  InvalidOverrideError,
  OpenStackCliError,
  OpenrcError,
  WaitTimeoutError,
  controlPlaneStatus,
  overlayConfig,
  parseOpenrc,
  parseTableRows,
  renderConfig,
  runWithOpenrc,
  startBerth,
  waitFor,
} from './support';

const OPENRC = `# admin credentials (source me)
export OS_AUTH_URL=http://127.0.0.1:5000/v3
export OS_USERNAME=admin
export OS_PASSWORD='pass word'
OS_PROJECT_NAME="admin"

export OS_COMPUTE_API_VERSION=2.37
`;

// Keeps Berth's CLI contract: pino JSON lines on stdout, --config-file repeatable, exit 0 on SIGTERM.
// STUB_MODE=exit3 exits at once with code 3 after a stderr line.
const STUB_CLI = `
const files = [];
for (let i = 2; i < process.argv.length; i++) if (process.argv[i] === '--config-file') files.push(process.argv[++i]);
const log = (msg, extra) => process.stdout.write(JSON.stringify({ level: 'info', time: new Date().toISOString(), msg, ...extra }) + '\\n');
if (process.env.STUB_MODE === 'exit3') { process.stderr.write('stub: bad config\\n'); process.exit(3); }
process.stdout.write('not json at all\\n');
log('config files', { files, overlay: require('fs').readFileSync(files[1], 'utf8') });
process.on('SIGTERM', () => { log('stopping'); process.exit(0); });
setTimeout(() => log('service started', { request_id: 'req-stub' }), 200);
setInterval(() => {}, 1000);
`;

describe('e2e support kit', function () {
  let dir: string;

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'berth-e2e-harness-'));
    await writeFile(join(dir, 'openrc'), OPENRC);
    await writeFile(join(dir, 'cli.js'), STUB_CLI);
    await writeFile(join(dir, 'base.conf'), '[DEFAULT]\ntransport_url = rabbit://x:y@127.0.0.1:5672/\n');
  });

  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  describe('parseOpenrc', function () {
    it('reads export lines as the shell would, quotes removed', function () {
      assert.deepEqual(parseOpenrc(OPENRC), {
        OS_AUTH_URL: 'http://127.0.0.1:5000/v3',
        OS_USERNAME: 'admin',
        OS_PASSWORD: 'pass word',
        OS_PROJECT_NAME: 'admin',
        OS_COMPUTE_API_VERSION: '2.37',
      });
    });

    it('names file and line of something that is not an assignment', function () {
      assert.throws(() => parseOpenrc('export A=1\nunset B\n', '/etc/x/openrc'), (err: unknown) => {
        assert.ok(err instanceof OpenrcError);
        assert.match(err.message, /^\/etc\/x\/openrc:2: /);
        return true;
      });
    });
  });

  describe('controlPlaneStatus', function () {
    it('is down, naming the file, without an openrc', async function () {
      const status = await controlPlaneStatus({ openrc: join(dir, 'missing-openrc') });
      assert.equal(status.up, false);
      assert.match(status.reason ?? '', /missing-openrc.*ENOENT/);
    });

    it('is down, naming the service, when an API does not answer', async function () {
      const closed = await unusedPort();
      const status = await controlPlaneStatus({
        openrc: join(dir, 'openrc'),
        endpoints: { compute: `http://127.0.0.1:${closed}/` },
      });
      assert.deepEqual(status, { up: false, reason: `not answering: compute (http://127.0.0.1:${closed}/)` });
    });

    it('is up when every API answers below 500', async function () {
      const server = createServer((_req, res) => res.writeHead(300).end());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      try {
        const status = await controlPlaneStatus({
          openrc: join(dir, 'openrc'),
          endpoints: { identity: `http://127.0.0.1:${port}/v3`, image: `http://127.0.0.1:${port}/` },
        });
        assert.deepEqual(status, { up: true });
      } finally {
        server.close();
      }
    });
  });

  describe('runWithOpenrc', function () {
    it('runs with the openrc, without the caller OS_* variables, Debian tools first in PATH', async function () {
      process.env['OS_CLOUD'] = 'from-the-caller';
      try {
        const out = await runWithOpenrc('/bin/sh', ['-c', 'echo "$OS_USERNAME|$OS_PASSWORD|${OS_CLOUD-unset}|$PATH|$EXTRA"'], {
          openrc: join(dir, 'openrc'),
          env: { EXTRA: 'x', OS_USERNAME: 'demo' },
        });
        const [user, password, cloud, path, extra] = out.trim().split('|');
        assert.equal(user, 'demo');
        assert.equal(password, 'pass word');
        assert.equal(cloud, 'unset');
        assert.ok(path?.startsWith('/usr/sbin:/usr/bin:'), path);
        assert.equal(extra, 'x');
      } finally {
        delete process.env['OS_CLOUD'];
      }
    });

    it('turns a failure into OpenStackCliError with exit code and stderr', async function () {
      await assert.rejects(
        runWithOpenrc('/bin/sh', ['-c', 'echo partial; echo "No server with a name or ID of x exists." >&2; exit 1'], {
          openrc: join(dir, 'openrc'),
        }),
        (err: unknown) => {
          assert.ok(err instanceof OpenStackCliError);
          assert.equal(err.exitCode, 1);
          assert.equal(err.stdout, 'partial\n');
          assert.match(err.stderr, /No server with a name or ID/);
          assert.match(err.message, /exit code 1: No server with a name or ID of x exists\./);
          return true;
        },
      );
    });
  });

  describe('parseTableRows', function () {
    it('splits the rows of a PrettyTable (nova-manage output) into trimmed cells', function () {
      const table = [
        '+-----------+------+',
        '| Cell Name | Host |',
        '+-----------+------+',
        '|   cell1   | h-1  |',
        '+-----------+------+',
        '',
      ].join('\n');
      assert.deepEqual(parseTableRows(table), [
        ['Cell Name', 'Host'],
        ['cell1', 'h-1'],
      ]);
    });
  });

  describe('waitFor', function () {
    it('resolves with the value once the probe is done', async function () {
      let calls = 0;
      const value = await waitFor(
        'the third call',
        async () => (++calls === 3 ? { done: true, value: 'ready' } : { done: false, seen: calls }),
        { timeoutMs: 5_000, intervalMs: 10 },
      );
      assert.equal(value, 'ready');
      assert.equal(calls, 3);
    });

    it('times out saying what it waited for and what it saw last', async function () {
      await assert.rejects(
        waitFor('godot', async () => ({ done: false, seen: { status: 'BUILD' } }), { timeoutMs: 50, intervalMs: 10 }),
        (err: unknown) => {
          assert.ok(err instanceof WaitTimeoutError);
          assert.equal(err.message, 'timed out after 50 ms waiting for godot; last seen: {"status":"BUILD"}');
          assert.deepEqual(err.lastSeen, { status: 'BUILD' });
          return true;
        },
      );
    });

    it('ends at once when the probe throws', async function () {
      let calls = 0;
      await assert.rejects(
        waitFor(
          'anything',
          async () => {
            calls++;
            throw new Error('server went to ERROR');
          },
          { timeoutMs: 5_000, intervalMs: 10 },
        ),
        /server went to ERROR/,
      );
      assert.equal(calls, 1);
    });
  });

  describe('config overlay', function () {
    it('sets host and a per-host state_path, and lets overrides win', function () {
      assert.deepEqual(overlayConfig('h1'), { DEFAULT: { host: 'h1', state_path: '/var/lib/berth-aio/h1' } });
      const overlay = overlayConfig('h1', { DEFAULT: { state_path: '/tmp/s', debug: true }, docker: { driver: 'fake' } });
      assert.deepEqual(overlay, {
        docker: { driver: 'fake' },
        DEFAULT: { host: 'h1', state_path: '/tmp/s', debug: true },
      });
    });

    it('renders INI with lists comma-separated', function () {
      const text = renderConfig({ DEFAULT: { host: 'h1', report_interval: 5 }, docker: { capabilities: ['CHOWN', 'KILL'] } });
      assert.equal(text, '[DEFAULT]\nhost = h1\nreport_interval = 5\n\n[docker]\ncapabilities = CHOWN,KILL\n');
    });

    it('refuses a value or name that would add lines', function () {
      assert.throws(() => renderConfig({ DEFAULT: { host: 'h1\n[docker]' } }), InvalidOverrideError);
      assert.throws(() => renderConfig({ 'DEFAULT]\n[x': { host: 'h1' } }), InvalidOverrideError);
      assert.throws(() => renderConfig({ DEFAULT: { 'a b': 'c' } }), InvalidOverrideError);
    });
  });

  describe('startBerth (stub CLI)', function () {
    this.timeout(20_000);

    /** The stub as host `host`, its state and log in the test's directory. */
    function startStub(host: string, options: { config?: ConfigOverrides; env?: Record<string, string> } = {}) {
      return startBerth({
        host,
        cliPath: join(dir, 'cli.js'),
        baseConfig: join(dir, 'base.conf'),
        config: { ...options.config, DEFAULT: { state_path: join(dir, 'state') } },
        logFile: join(dir, `${host}.log`),
        ...(options.env ? { env: options.env } : {}),
      });
    }

    it('passes the base config and the overlay, collects JSON lines and the rest, stops with SIGTERM', async function () {
      const berth = await startStub('stub-1', { config: { docker: { driver: 'fake' } } });
      const started = await berth.waitForLog((line) => line.msg === 'service started', { timeoutMs: 10_000 });
      assert.equal(started['request_id'], 'req-stub');
      const files = berth.logs.find((line) => line.msg === 'config files');
      assert.ok(files, 'the stub logged its config files');
      assert.deepEqual(files['files'], berth.configFiles);
      assert.equal(berth.configFiles[0], join(dir, 'base.conf'));
      assert.equal(files['overlay'], `[DEFAULT]\nhost = stub-1\nstate_path = ${join(dir, 'state')}\n\n[docker]\ndriver = fake\n`);
      assert.deepEqual(berth.otherLines, ['not json at all']);

      const exit = await berth.stop();
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(berth.logs.some((line) => line.msg === 'stopping'));
      const saved = await readFile(join(dir, 'stub-1.log'), 'utf8');
      assert.match(saved, /not json at all\n/);
      assert.match(saved, /"msg":"service started"/);
    });

    it('rejects a wait when Berth exits, with its exit status and last output', async function () {
      const berth = await startStub('stub-2', { env: { STUB_MODE: 'exit3' } });
      await assert.rejects(berth.waitForLog(() => false, { description: 'readiness', timeoutMs: 10_000 }), (err: unknown) => {
        assert.ok(err instanceof BerthExitedError);
        assert.deepEqual(err.exit, { code: 3, signal: null });
        assert.deepEqual(err.lastLines, ['stderr: stub: bad config']);
        assert.match(err.message, /while waiting for readiness/);
        return true;
      });
      assert.deepEqual(await berth.stop(), { code: 3, signal: null });
    });

    it('times out a wait for a line that never comes, while Berth runs', async function () {
      const berth = await startStub('stub-3');
      try {
        await assert.rejects(berth.waitForLog((line) => line.msg === 'never', { timeoutMs: 500 }), WaitTimeoutError);
        assert.equal(berth.exit, null);
      } finally {
        await berth.stop();
      }
    });
  });
});

/** A loopback port nothing listens on (bound once, then released). */
async function unusedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
