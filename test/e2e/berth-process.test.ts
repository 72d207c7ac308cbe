// startBerth against the real CLI and the running control plane: the harness's contract with Berth
// (`--config-file` twice, pino JSON on stdout, exit 0 on SIGTERM) and with Nova (the host registers and is mapped).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

import {
  AIO,
  type BerthProcess,
  berthCliPath,
  deleteComputeService,
  deleteQueues,
  discoverHosts,
  findResourceProvider,
  hostMappings,
  providerInventory,
  requireControlPlane,
  startBerth,
  waitForComputeService,
} from './support';

describe('startBerth with the real CLI (e2e)', function () {
  this.timeout(180_000);
  const host = `e2e-berth-${randomBytes(3).toString('hex')}`;
  let berth: BerthProcess | undefined;

  before(async function () {
    await requireControlPlane(this);
    const cli = process.env['BERTH_CLI'] ?? berthCliPath();
    if (!existsSync(cli)) {
      console.warn(`    skipped: no Berth CLI at ${cli}; build it first (npm run build) or set BERTH_CLI`);
      this.skip();
    }
  });

  after(async function () {
    await berth?.stop();
    if (berth) {
      await deleteComputeService(host);
      await deleteQueues([`compute.${host}`]);
      await rm(join(AIO.stateDir, host), { recursive: true, force: true });
    }
  });

  it('registers the host as an up nova-compute, mapped to cell1, with inventory in Placement, and exits 0 on SIGTERM', async function () {
    // the fake driver: this is about the harness and the control plane, not about Docker
    berth = await startBerth({ host, config: { docker: { driver: 'fake' } } });
    const service = await waitForComputeService(host, 'up', { timeoutMs: 90_000 });
    assert.equal(service.Status, 'enabled');
    await discoverHosts();
    assert.deepEqual(
      (await hostMappings()).filter((m) => m.host === host).map((m) => m.cell),
      ['cell1'],
    );
    const provider = await findResourceProvider(host);
    assert.ok(provider, `a resource provider named ${host}`);
    assert.deepEqual(Object.keys(await providerInventory(provider.uuid)).sort(), ['DISK_GB', 'MEMORY_MB', 'VCPU']);

    const first = berth.logs[0];
    assert.ok(first, 'Berth logged pino JSON on stdout');
    assert.equal(first['level'], 'info');
    assert.deepEqual(berth.otherLines, [], 'every stdout line is JSON and stderr is empty');

    assert.deepEqual(await berth.stop(), { code: 0, signal: null });
  });
});
