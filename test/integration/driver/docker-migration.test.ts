// The cold-migration conformance suite against DockerDriver and the real dockerd: the file a guest wrote into its
// writable layer is in the container finishMigration creates from the stopped source's snapshot.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { DockerDriver } from '../../../driver/docker/docker-driver';
import { describeMigrationConformance } from '../../unit/driver/migration-conformance';
import { containersNamedFor, removeCachedImages } from '../../support/docker';
import { buildBusyboxImage } from '../../support/images';

const run = promisify(execFile);

describeMigrationConformance('DockerDriver', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'berth-docker-state-'));
  const image = await buildBusyboxImage('berth-test/conformance:1');
  return {
    driver: new DockerDriver({ stateDir, eventsReconnectDelayMs: 100 }),
    imageTarPath: image.tarPath,
    forbiddenExtraSpecs: { 'docker:cap_add': 'SYS_ADMIN' },
    killBehindDriversBack: async (uuid) => {
      await run('docker', ['kill', `nova-${uuid}`]);
    },
    leftovers: containersNamedFor,
    writeFile: async (uuid, path, text) => {
      await run('docker', ['exec', `nova-${uuid}`, 'sh', '-c', `printf '%s\\n' "$1" > "$2"`, 'sh', text, path]);
    },
    readFile: async (uuid, path) => (await run('docker', ['exec', `nova-${uuid}`, 'cat', path])).stdout,
    cleanup: async (imageIds) => {
      await removeCachedImages(imageIds);
      await rm(stateDir, { recursive: true, force: true });
    },
  };
});
