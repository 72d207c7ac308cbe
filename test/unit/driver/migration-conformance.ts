// The cold-migration half of the driver contract, run against every driver (fake in test/unit/driver, docker against
// the real dockerd in test/integration/driver): the source stops the instance and snapshots it (its committed
// writable layer, a docker archive), the destination's finishMigration creates the instance from that archive with
// the new flavor, started or not as Nova's power_on says, and leaves nothing behind when it fails.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { DriverError, InstanceNotFound, InvalidImage, PowerState, type ComputeDriver, type FlavorSpec, type InstanceRef, type InstanceSpec } from '../../../driver/driver';
import { readDockerArchive } from '../../../driver/image-archive';
import { glanceImage, type CountingImageSource } from '../../support/images';
import type { DriverUnderTest } from './conformance';

export interface MigrationDriverUnderTest extends DriverUnderTest {
  /**
   * Optional: writes `text` into the running instance's writable layer and reads it back (docker exec); a driver
   * without a filesystem to look into leaves these out, and the suite checks only what the contract promises.
   */
  readonly writeFile?: (uuid: string, path: string, text: string) => Promise<void>;
  readonly readFile?: (uuid: string, path: string) => Promise<string>;
}

export function describeMigrationConformance(name: string, factory: () => Promise<MigrationDriverUnderTest>): void {
  describe(`driver conformance, cold migration: ${name}`, function () {
    this.timeout(120_000);

    let subject: MigrationDriverUnderTest;
    let driver: ComputeDriver;
    let scratch: string;
    let baseImage: CountingImageSource;
    const made = new Set<string>();
    const imageIds: string[] = [];

    const flavor = (overrides: Partial<FlavorSpec> = {}): FlavorSpec => ({
      name: 'm1.tiny', flavorId: '1', vcpus: 1, memoryMb: 128, rootGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {}, ...overrides,
    });
    const spec = (overrides: Partial<InstanceSpec> = {}): InstanceSpec => {
      const uuid = overrides.uuid ?? randomUUID();
      made.add(uuid);
      return {
        uuid, name: `instance-${uuid.slice(0, 8)}`, hostname: `migrate-${uuid.slice(0, 8)}`, displayName: 'migrate',
        projectId: 'c0ffee00c0ffee00c0ffee00c0ffee00', userId: 'decade00decade00decade00decade00', flavor: flavor(),
        metadata: {}, hasNetwork: false, ...overrides,
      };
    };
    const image = (tarPath: string, overrides: Parameters<typeof glanceImage>[1] = {}): CountingImageSource => {
      const source = glanceImage(tarPath, overrides);
      imageIds.push(source.id);
      return source;
    };
    const ref = (s: InstanceSpec): InstanceRef => ({ uuid: s.uuid, name: s.name });
    const powerState = async (r: InstanceRef) => (await driver.getInfo(r)).powerState;

    /** The source half as the manager runs it: power off, then the snapshot streamed to the transfer image. */
    async function transfer(source: InstanceSpec): Promise<CountingImageSource> {
      await driver.powerOff(ref(source), 0);
      const archivePath = join(scratch, `transfer-${source.uuid}.tar`);
      await driver.snapshot(ref(source), {
        imageId: randomUUID(),
        updateTaskState: async () => undefined,
        upload: async (data: Readable) => pipeline(data, createWriteStream(archivePath)),
      });
      await readDockerArchive(archivePath);
      return image(archivePath);
    }

    before(async () => {
      subject = await factory();
      driver = subject.driver;
      await driver.init();
      scratch = await mkdtemp(join(tmpdir(), 'berth-migration-conformance-'));
      baseImage = image(subject.imageTarPath);
    });

    afterEach(async () => {
      for (const uuid of made) await driver.destroy({ uuid, name: 'cleanup' });
      made.clear();
    });

    after(async () => {
      await driver?.close();
      await subject?.cleanup(imageIds);
      if (scratch) await rm(scratch, { recursive: true, force: true });
    });

    it('moves a running instance: the stopped source snapshots, finishMigration starts the copy with the new flavor, the source stays stopped', async () => {
      const source = spec();
      await driver.spawn(source, baseImage);
      await subject.writeFile?.(source.uuid, '/tmp/berth-migrated', 'carried over');
      const transferred = await transfer(source);
      assert.equal(await powerState(ref(source)), PowerState.SHUTDOWN);

      // Another instance identity stands in for the destination host (one runtime here).
      const dest = spec({ flavor: flavor({ name: 'm1.small', flavorId: '2', memoryMb: 256 }) });
      await driver.finishMigration(dest, transferred, true);
      assert.equal(await powerState(ref(dest)), PowerState.RUNNING);
      assert.equal((await driver.getDiagnostics(ref(dest))).memoryMaxMb, 256);
      assert.equal(transferred.fetchCount, 1);
      if (subject.readFile) assert.equal((await subject.readFile(dest.uuid, '/tmp/berth-migrated')).trim(), 'carried over');
      // The source is still there for a revert, and starts again.
      assert.equal(await powerState(ref(source)), PowerState.SHUTDOWN);
      await driver.powerOn(ref(source));
      assert.equal(await powerState(ref(source)), PowerState.RUNNING);
    });

    it('moves a stopped instance without starting it (power_on false); it starts later', async () => {
      const source = spec();
      await driver.spawn(source, baseImage);
      const transferred = await transfer(source);
      const dest = spec();
      await driver.finishMigration(dest, transferred, false);
      assert.equal(await powerState(ref(dest)), PowerState.SHUTDOWN);
      assert.ok((await driver.listInstances()).some((i) => i.uuid === dest.uuid));
      await driver.powerOn(ref(dest));
      assert.equal(await powerState(ref(dest)), PowerState.RUNNING);
    });

    it('leaves nothing behind when the transferred image is unusable, and refuses an instance that exists', async () => {
      const junk = join(scratch, 'junk.tar');
      await writeFile(junk, 'not a tar archive at all');
      const dest = spec();
      await assert.rejects(driver.finishMigration(dest, image(junk), true), InvalidImage);
      await assert.rejects(driver.finishMigration(dest, image(junk), false), InvalidImage);
      await assert.rejects(driver.getInfo(ref(dest)), InstanceNotFound);
      assert.deepEqual(await subject.leftovers(dest.uuid), []);
      await assert.rejects(driver.finishMigration(spec(), image(subject.imageTarPath, { containerFormat: 'bare' }), true), InvalidImage);

      const existing = spec();
      await driver.spawn(existing, baseImage);
      await assert.rejects(driver.finishMigration(existing, baseImage, false), DriverError);
      assert.equal(await powerState(ref(existing)), PowerState.RUNNING);
    });
  });
}
