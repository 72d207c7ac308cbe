import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadConfig, parseIni } from '../../../src/config';
import { renderSampleConfig, sampleValuesOf } from '../../../src/config/sample-config';
import { captureLogger } from './helpers';

/** The repository root (this file runs compiled, from a dist-* directory). */
function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above the test');
    dir = parent;
  }
  return dir;
}

const ROOT = repoRoot();
const SAMPLE = join(ROOT, 'config', 'berth.conf');
const UNIT = join(ROOT, 'config', 'berth-compute.service');
const FIXTURES = join(ROOT, 'test', 'unit', 'config', 'fixtures');

describe('config: the shipped files', () => {
  describe('config/berth.conf', () => {
    it('loads without a warning, with the all-in-one values', () => {
      const log = captureLogger();
      const config = loadConfig([SAMPLE], { logger: log.logger });
      assert.deepEqual(log.at('warn'), []);
      assert.deepEqual(log.at('error'), []);
      assert.equal(config.DEFAULT.host, 'berth-aio');
      assert.equal(config.DEFAULT.transport_url, 'rabbit://openstack:secret@127.0.0.1:5672/');
      assert.equal(config.placement.auth_url, 'http://127.0.0.1:5000/v3');
      assert.equal(config.placement.username, 'nova');
      assert.equal(config.placement.project_name, 'service');
      assert.equal(config.placement.region_name, 'RegionOne');
      assert.equal(config.glance.username, 'nova');
      assert.equal(config.docker.driver, 'docker');
    });

    it('is the sample rendered from the schema (regenerate with sample-config.js if this fails)', () => {
      const text = readFileSync(SAMPLE, 'utf8');
      assert.equal(text, renderSampleConfig(sampleValuesOf(text, SAMPLE)));
    });
  });

  describe('real nova.conf files load with warnings only', () => {
    it("the lab's generated nova.conf plus its compute overlay", () => {
      const log = captureLogger();
      const config = loadConfig(
        [join(FIXTURES, 'lab-nova.conf'), join(FIXTURES, 'lab-nova-compute-fake-1.conf')],
        { logger: log.logger },
      );
      assert.deepEqual(
        log.at('warn').map((line) => line.msg),
        ['Berth ignores unknown options in [DEFAULT]: compute_driver'],
      );
      assert.equal(config.DEFAULT.host, 'fake-1');
      assert.equal(config.DEFAULT.state_path, '/var/lib/nova');
      assert.equal(config.service_user.send_service_user_token, true);
      assert.equal(config.placement.username, 'placement');
      assert.equal(config.glance.username, 'nova'); // from [service_user]
      assert.equal(config.glance.region_name, 'RegionOne');
      assert.deepEqual(config.oslo_messaging_notifications.driver, ['messagingv2']);
      assert.equal(config.notifications.notification_format, 'both');
    });

    const debian = ['/etc/nova/nova.conf.dpkg-dist-orig', '/usr/share/nova-common/nova.conf'].find(existsSync);
    it(`Debian's stock nova.conf (${debian ?? 'not installed here'}) plus a small overlay`, function () {
      if (debian === undefined) this.skip();
      const log = captureLogger();
      const config = loadConfig([debian, join(FIXTURES, 'debian-overlay.conf')], { logger: log.logger });
      assert.deepEqual(log.at('error'), []);
      for (const line of log.at('warn')) assert.match(line.msg, /^Berth ignores unknown options in \[DEFAULT\]/);
      assert.equal(config.DEFAULT.state_path, '/var/lib/nova');
      assert.equal(config.placement.username, '='); // Debian ships "username = =": a value, as oslo reads it
      assert.equal(config.placement.region_name, 'regionOne');
      assert.equal(config.docker.driver, 'fake');
    });
  });

  describe('config/berth-compute.service', () => {
    const unit = parseIni(readFileSync(UNIT, 'utf8'), UNIT);
    const service = unit.sections.get('service');
    const value = (key: string): string | undefined => service?.get(key)?.at(-1)?.value;

    it('starts berth-compute on /etc/berth/berth.conf, simply, restarting on failure', () => {
      assert.equal(value('Type'), 'simple');
      assert.match(value('ExecStart') ?? '', /\/berth-compute --config-file \/etc\/berth\/berth\.conf$/);
      assert.equal(value('Restart'), 'on-failure');
      assert.equal(value('KillSignal'), 'SIGTERM');
    });

    it('gives SIGTERM more time than the default graceful_shutdown_timeout', () => {
      const log = captureLogger();
      const grace = loadConfig([SAMPLE], { logger: log.logger }).DEFAULT.graceful_shutdown_timeout;
      const stop = Number(/^(\d+)s$/.exec(value('TimeoutStopSec') ?? '')?.[1]);
      assert.ok(stop > grace, `TimeoutStopSec ${stop} must exceed graceful_shutdown_timeout ${grace}`);
    });

    it('runs as root without capabilities, in a read-only system', () => {
      assert.equal(value('User'), 'root');
      assert.equal(value('CapabilityBoundingSet'), '');
      assert.equal(value('NoNewPrivileges'), 'yes');
      assert.equal(value('ProtectSystem'), 'strict');
      assert.equal(value('StateDirectory'), 'berth');
    });
  });
});
