// The cold-migration conformance suite against FakeDriver.
import { FakeDriver } from '../../../driver/fake/fake-driver';
import { writeFakeImage } from '../../support/images';
import { describeMigrationConformance } from './migration-conformance';

describeMigrationConformance('FakeDriver', async () => {
  const driver = new FakeDriver();
  const image = await writeFakeImage();
  return {
    driver,
    imageTarPath: image.tarPath,
    forbiddenExtraSpecs: { 'fake:cap_add': 'SYS_ADMIN' },
    killBehindDriversBack: async (uuid) => driver.simulateExit(uuid, 'stopped'),
    leftovers: async (uuid) => ((await driver.listInstances()).some((i) => i.uuid === uuid) ? [uuid] : []),
    cleanup: async () => undefined,
  };
});
