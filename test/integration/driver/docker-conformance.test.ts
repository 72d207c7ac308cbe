// The driver conformance suite against DockerDriver and the real dockerd (test/support/docker-up.sh starts one).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DockerDriver } from '../../../driver/docker/docker-driver';
import { describeDriverConformance } from '../../unit/driver/conformance';
import { dockerClient, removeCachedImages, containersNamedFor } from '../../support/docker';
import { buildBusyboxImage } from '../../support/images';

describeDriverConformance('DockerDriver', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'berth-docker-state-'));
  const image = await buildBusyboxImage('berth-test/conformance:1');
  const docker = dockerClient();
  return {
    driver: new DockerDriver({ stateDir, eventsReconnectDelayMs: 100 }),
    imageTarPath: image.tarPath,
    forbiddenExtraSpecs: { 'docker:cap_add': 'SYS_ADMIN' },
    killBehindDriversBack: async (uuid) => {
      await docker.getContainer(`nova-${uuid}`).kill();
    },
    leftovers: containersNamedFor,
    cleanup: async (imageIds) => {
      await removeCachedImages(imageIds);
      await rm(stateDir, { recursive: true, force: true });
    },
  };
});
