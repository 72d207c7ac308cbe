// Direct Docker access for tests: looking at what a driver did, and doing things behind its back.

import Docker from 'dockerode';

import { CACHE_REPOSITORY } from '../../driver/docker/image-cache';

/** A client of the local engine, independent of the driver under test. */
export function dockerClient(): Docker {
  return new Docker({ socketPath: '/var/run/docker.sock' });
}

/** Names of the containers (any state) named for this instance uuid; [] when none. */
export async function containersNamedFor(uuid: string): Promise<string[]> {
  const containers = await dockerClient().listContainers({ all: true, filters: { name: [`^/nova-${uuid}$`] } });
  return containers.flatMap((container) => container.Names);
}

/** Removes the driver's cached images of these Glance image ids (missing ones are fine). */
export async function removeCachedImages(glanceImageIds: readonly string[]): Promise<void> {
  const docker = dockerClient();
  for (const id of glanceImageIds) {
    await docker.getImage(`${CACHE_REPOSITORY}:${id}`).remove().catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 404) throw error;
    });
  }
}
