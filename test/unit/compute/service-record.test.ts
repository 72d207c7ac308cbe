// The Service record: created as Python's compute creates it (lab capture), its version brought to 64, the
// heartbeat (report_count + 1 per Service.save) and the disabled flag an admin flips.
import assert from 'node:assert/strict';
import { SERVICE_VERSION, ServiceRecord, type ServiceRecordOptions } from '../../../src/compute/service-record';
import { ConductorClient } from '../../../src/conductor';
import { silentLogger } from '../../../src/log';
import { adminContext } from '../../../src/messaging';
import { firstExchange } from '../objects/capture-fixtures';
import { FakeConductor, novaFailure } from './fake-conductor';

const HOST = 'fake-1';

describe('compute: service record', () => {
  let conductor: FakeConductor;
  const records: ServiceRecord[] = [];

  beforeEach(() => {
    conductor = new FakeConductor();
  });
  afterEach(async () => {
    for (const r of records.splice(0)) await r.stop();
  });

  function record(options: Partial<ServiceRecordOptions> = {}): ServiceRecord {
    const r = new ServiceRecord({ host: HOST, reportIntervalSec: 10, enableNewServices: true, ...options }, new ConductorClient(conductor), silentLogger());
    records.push(r);
    return r;
  }

  const objinst = (r: { args: Record<string, unknown> }) => r.args['objinst'] as Record<string, unknown>;
  const sortedChanges = (o: Record<string, unknown>) => [...((o['nova_object.changes'] as string[] | undefined) ?? [])].sort();

  it('is created as Python creates it: host, binary, topic, report_count 0, version 64, nothing else', async () => {
    await record().register(adminContext());
    const [lookup, create, ...more] = conductor.requests;
    assert.equal(more.length, 0);
    assert.deepEqual([lookup?.objName, lookup?.objMethod, lookup?.args['args']], ['Service', 'get_by_host_and_binary', [HOST, 'nova-compute']]);
    const ours = objinst(create as never);
    const captured = (firstExchange('Service', 'create').request['args'] as Record<string, unknown>)['objinst'] as Record<string, unknown>;
    assert.deepEqual(ours['nova_object.data'], captured['nova_object.data']);
    assert.deepEqual(sortedChanges(ours), sortedChanges(captured));
    assert.equal(ours['nova_object.version'], captured['nova_object.version']);
    assert.equal(SERVICE_VERSION, 64);
  });

  it('created disabled, with the reason, when enable_new_services is off', async () => {
    const r = record({ enableNewServices: false });
    await r.register(adminContext());
    const data = objinst(conductor.requestsFor('Service', 'create')[0] as never)['nova_object.data'] as Record<string, unknown>;
    assert.equal(data['disabled'], true);
    assert.equal(data['disabled_reason'], 'New service disabled due to config option.');
    assert.equal(r.disabled, true);
  });

  it('an older record gets version 64 through a save of just that field; a current one is left alone', async () => {
    conductor.services.push({ id: 7, uuid: 'a5b3f6c2-3d8e-4f1a-9c0d-1e2f3a4b5c6d', host: HOST, binary: 'nova-compute', topic: 'compute', report_count: 40, disabled: false, version: 61, deleted: false });
    await record().register(adminContext());
    const [save, ...more] = conductor.requestsFor('Service', 'save');
    assert.equal(more.length, 0);
    assert.deepEqual(sortedChanges(objinst(save as never)), ['version']);
    assert.equal(conductor.services[0]?.['version'], 64);
    await record().register(adminContext());
    assert.equal(conductor.requestsFor('Service', 'save').length, 1);
    assert.equal(conductor.requestsFor('Service', 'create').length, 0);
  });

  it('a record created by someone else meanwhile (ServiceBinaryExists) is read again and used', async () => {
    conductor.failNext('Service', 'create', novaFailure('ServiceBinaryExists', 'exists', { code: 409 }));
    conductor.beforeAnswer.push((request) => {
      if (request.objMethod === 'create') conductor.services.push({ id: 9, host: HOST, binary: 'nova-compute', topic: 'compute', report_count: 0, disabled: false, version: 64, deleted: false });
    });
    const r = record();
    await r.register(adminContext());
    await r.heartbeat();
    assert.equal(conductor.services.length, 1);
    assert.equal(conductor.services[0]?.['report_count'], 1);
  });

  it('every heartbeat saves report_count + 1 (changes: report_count) and moves last_seen_up', async () => {
    const r = record();
    await r.register(adminContext());
    await r.heartbeat();
    await r.heartbeat();
    const beats = conductor.requestsFor('Service', 'save');
    assert.deepEqual(beats.map((b) => [sortedChanges(objinst(b)), (objinst(b)['nova_object.data'] as Record<string, unknown>)['report_count']]), [
      [['report_count'], 1],
      [['report_count'], 2],
    ]);
    const captured = (firstExchange('Service', 'save').request['args'] as Record<string, unknown>)['objinst'] as Record<string, unknown>;
    assert.deepEqual(sortedChanges(captured), ['report_count']);
    assert.equal(conductor.services[0]?.['report_count'], 2);
    assert.equal(typeof conductor.services[0]?.['last_seen_up'], 'string');
    assert.equal(typeof r.lastHeartbeatAt, 'number');
  });

  it('a failed heartbeat is logged and the next one carries on counting', async () => {
    const r = record();
    await r.register(adminContext());
    conductor.failNext('Service', 'save', new Error('MessagingTimeout'));
    await r.heartbeat();
    assert.equal(r.lastHeartbeatAt, null);
    await r.heartbeat();
    assert.equal(conductor.services[0]?.['report_count'], 2);
    assert.equal(typeof r.lastHeartbeatAt, 'number');
  });

  it('tells when an admin disables or enables the service (the reply of a heartbeat carries it)', async () => {
    const r = record();
    const seen: boolean[] = [];
    r.onDisabledChange = (disabled) => seen.push(disabled);
    await r.register(adminContext());
    await r.heartbeat();
    const row = conductor.services[0];
    assert.ok(row);
    row['disabled'] = true;
    row['disabled_reason'] = 'maintenance';
    await r.heartbeat();
    await r.heartbeat();
    row['disabled'] = false;
    await r.heartbeat();
    assert.deepEqual(seen, [false, true, false]);
    assert.equal(r.disabled, false);
  });

  it('start() heartbeats on its own timer and stop() ends it', async function () {
    this.timeout(10_000);
    const r = record({ reportIntervalSec: 0.05 });
    await r.register(adminContext());
    r.start();
    for (let i = 0; i < 400 && conductor.requestsFor('Service', 'save').length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    await r.stop();
    const count = conductor.requestsFor('Service', 'save').length;
    assert.ok(count >= 2, `heartbeats: ${count}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(conductor.requestsFor('Service', 'save').length, count);
  });
});
