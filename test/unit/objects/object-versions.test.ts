import assert from 'node:assert/strict';
import { NOVA_SERVICE_VERSION, OBJECT_VERSIONS, UnknownObjectClassError, versionManifest } from '../../../src/objects';
import { conductorExchanges } from './capture-fixtures';

describe('objects: version manifests', () => {
  it('equals every object_versions manifest the Python compute sent (same classes, versions and order)', () => {
    let checked = 0;
    for (const { request } of conductorExchanges()) {
      const args = request['args'] as Record<string, unknown>;
      if (request['method'] !== 'object_class_action_versions') continue;
      const manifest = versionManifest(args['objname'] as string);
      assert.equal(JSON.stringify(manifest), JSON.stringify(args['object_versions']), String(args['objname']));
      checked++;
    }
    assert.ok(checked >= 50, `only ${checked} manifests checked`);
  });

  it('matches the protocol table for the roots the compute uses', () => {
    assert.deepEqual(versionManifest('Service'), {
      Service: '1.22', ComputeNode: '1.19', HVSpec: '1.2', PciDevicePoolList: '1.1', PciDevicePool: '1.1',
    });
    assert.deepEqual(versionManifest('InstanceActionEvent'), { InstanceActionEvent: '1.4' });
    assert.deepEqual(versionManifest('InstanceFault'), { InstanceFault: '1.2' });
    assert.equal(Object.keys(versionManifest('Instance')).length, 34);
    const bdm = versionManifest('BlockDeviceMappingList');
    assert.equal(bdm['BlockDeviceMapping'], '1.21');
    assert.equal(bdm['Instance'], '2.7');
  });

  it('lists the Zed versions', () => {
    assert.equal(OBJECT_VERSIONS.Instance, '2.7');
    assert.equal(OBJECT_VERSIONS.RequestSpec, '1.14');
    assert.equal(OBJECT_VERSIONS.ImageMetaProps, '1.34');
    assert.equal(NOVA_SERVICE_VERSION, 64);
  });

  it('refuses an unknown root', () => {
    assert.throws(() => versionManifest('NoSuchClass'), UnknownObjectClassError);
  });
});
