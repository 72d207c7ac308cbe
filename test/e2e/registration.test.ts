// Issue 2, "Done means": Berth joins the real control plane as a compute host. Up within 30 s in the service list,
// a hypervisor with vcpus and memory, a resource provider named after it with inventory and the COMPUTE_NODE trait,
// mapped by discover_hosts; SIGTERM → exit 0 within 30 s and the service goes down; a restart keeps the provider
// UUID, meets no 409 and is up again.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

import {
  BerthHost,
  type BerthLogLine,
  type BerthProcess,
  dockerStatus,
  findResourceProvider,
  hostMappings,
  listComputeServices,
  openstackJson,
  printMeasure,
  providerInventory,
  providerTraits,
  requireControlPlane,
  sharedDockerEngine,
  waitForComputeService,
} from './support';

/** `openstack hypervisor show` (the keys read here). */
interface Hypervisor {
  readonly id: number | string;
  readonly hypervisor_hostname: string;
  readonly hypervisor_type: string;
  readonly state: string;
  readonly status: string;
  readonly vcpus: number;
  readonly memory_mb: number;
  readonly local_gb: number;
  readonly [key: string]: unknown;
}

/** Log lines that report an HTTP 409 (Berth logs every request's status at debug level). */
function conflicts(lines: readonly BerthLogLine[]): BerthLogLine[] {
  return lines.filter((line) => line['status'] === 409 || line['statusCode'] === 409 || /\b409\b/.test(String(line.msg ?? '')) || /\b409\b|Conflict/.test(String(line['err'] === undefined ? '' : JSON.stringify(line['err']))));
}

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  assert.ok(match, 'VmRSS in /proc status');
  return Number(match[1]);
}

describe('registration with the real control plane (e2e, issue 2)', function () {
  this.timeout(300_000);
  let host: BerthHost;
  let docker = false;
  let providerUuid = '';
  const runs: BerthProcess[] = [];

  before(async function () {
    await requireControlPlane(this);
    docker = (await dockerStatus()).up;
    if (!docker) console.warn('    note: Docker is not available; registering with the fake driver');
    // debug: every HTTP request is logged with its status, so a 409 could not hide.
    host = new BerthHost({ suite: 'registration', config: { DEFAULT: { debug: true }, ...(docker ? {} : { docker: { driver: 'fake' } }) } });
  });

  after(async function () {
    await host?.cleanup();
  });

  it('is up in `compute service list` within 30 s, with a hypervisor, a resource provider and a cell mapping', async function () {
    const upMs = await host.start({ map: false, upTimeoutMs: 30_000 });
    runs.push(host.berth);
    printMeasure('start to `up` in `compute service list`', upMs / 1000, 's');

    const [service] = await listComputeServices({ host: host.host, binary: 'nova-compute' });
    assert.equal(service?.State, 'up');
    assert.equal(service?.Status, 'enabled');

    // nova-api shows a hypervisor only once its host is mapped to a cell.
    assert.deepEqual((await hostMappings()).filter((m) => m.host === host.host), [], 'not mapped before discover_hosts');
    assert.match(await host.map(), new RegExp(`Creating host mapping for compute host '${host.host}'`));
    assert.deepEqual(
      (await hostMappings()).filter((m) => m.host === host.host).map((m) => m.cell),
      ['cell1'],
    );

    const hypervisor = await openstackJson<Hypervisor>(['--os-compute-api-version', '2.1', 'hypervisor', 'show', host.host]);
    assert.equal(hypervisor.hypervisor_hostname, host.host);
    assert.equal(hypervisor.state, 'up');
    assert.ok(hypervisor.vcpus > 0 && hypervisor.memory_mb > 0, `vcpus ${hypervisor.vcpus}, memory ${hypervisor.memory_mb} MB`);
    if (docker) {
      const info = await sharedDockerEngine().client.info();
      assert.equal(hypervisor.hypervisor_type, 'docker');
      assert.equal(hypervisor.vcpus, info.NCPU);
      assert.equal(hypervisor.memory_mb, Math.floor(info.MemTotal / 1024 / 1024));
    }
    // From 2.53 the hypervisor id is the compute node UUID, which is the resource provider's.
    const node = await openstackJson<Hypervisor>(['--os-compute-api-version', '2.53', 'hypervisor', 'show', host.host]);

    const provider = await findResourceProvider(host.host);
    assert.ok(provider, `a resource provider named ${host.host}`);
    assert.equal(provider.uuid, node.id);
    providerUuid = provider.uuid;
    const inventory = await providerInventory(provider.uuid);
    assert.deepEqual(Object.keys(inventory).sort(), ['DISK_GB', 'MEMORY_MB', 'VCPU']);
    assert.equal(inventory['VCPU']?.total, hypervisor.vcpus);
    assert.equal(inventory['MEMORY_MB']?.total, hypervisor.memory_mb);
    assert.equal(inventory['VCPU']?.allocation_ratio, 16);
    assert.equal(inventory['MEMORY_MB']?.allocation_ratio, 1.5);
    assert.equal(inventory['MEMORY_MB']?.reserved, 512);
    assert.ok((await providerTraits(provider.uuid)).includes('COMPUTE_NODE'));

    const pid = host.berth.pid;
    assert.ok(pid);
    printMeasure("Berth's idle RSS once up (VmRSS)", (await rssKb(pid)) / 1024, 'MiB');
  });

  it('exits 0 within 30 s of SIGTERM, and the service goes down after service_down_time', async function () {
    const stopping = Date.now();
    const exit = await host.stop(30_000);
    printMeasure('SIGTERM to exit', (Date.now() - stopping) / 1000, 's');
    assert.deepEqual(exit, { code: 0, signal: null }, 'exit code 0, not killed after the 30 s grace');
    const service = await waitForComputeService(host.host, 'down', { timeoutMs: 150_000, intervalMs: 2_000 });
    printMeasure('SIGTERM to `down` (service_down_time is 60 s here)', (Date.now() - stopping) / 1000, 's');
    assert.equal(service.Status, 'enabled');
  });

  it('restarts with the same provider UUID, no 409, and is up again', async function () {
    const upMs = await host.start({ upTimeoutMs: 90_000 });
    runs.push(host.berth);
    printMeasure('restart to `up` again', upMs / 1000, 's');
    const provider = await findResourceProvider(host.host);
    assert.equal(provider?.uuid, providerUuid);
    const [service] = await listComputeServices({ host: host.host, binary: 'nova-compute' });
    assert.equal(service?.State, 'up');
    // The restarted service has reported its resources (the start-up update_available_resource) by now.
    await host.berth.waitForLog((l) => l.msg === 'berth-compute is up');
    const seen = runs.flatMap((run) => conflicts(run.logs));
    assert.deepEqual(seen, [], 'no 409 in either run');
    assert.ok(runs.every((run) => run.logs.some((l) => l['status'] === 200)), 'the HTTP requests were logged (debug)');
  });
});
