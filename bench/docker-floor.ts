// The physical floor: N containers created and started at once through the Engine API (dockerode), with the very
// create body driver/docker would send for the same image and flavor, and no Nova, RabbitMQ or Berth in the way.
// Their compute-host label is FLOOR_HOST, so no Berth driver ever counts them as its own.
import { randomUUID } from 'node:crypto';

import type Docker from 'dockerode';

import { LABEL, containerCreateOptions } from '../driver/docker/container-config';
import { compileDockerOptions } from '../driver/docker/docker-options';
import { containerPolicy } from '../driver/docker/extra-specs';
import type { FlavorSpec, ImageSource, InstanceSpec } from '../driver/driver';

export const FLOOR_HOST = 'bench-floor';

export interface FloorRun {
  readonly n: number;
  /** First create sent until the last start answered. */
  readonly boot_s: number | null;
  /** First remove (force) sent until the last answered. */
  readonly delete_s: number | null;
  readonly errors: readonly string[];
}

export interface FloorOptions {
  readonly count: number;
  /** The cached image Berth's driver created the containers from (berth-glance:<image id>). */
  readonly imageRef: string;
  readonly glanceImageId: string;
  readonly flavor: FlavorSpec;
  readonly stateDir: string;
}

const seconds = (fromMs: number): number => Math.round(performance.now() - fromMs) / 1000;

export async function dockerFloor(docker: Docker, options: FloorOptions): Promise<FloorRun> {
  const compiled = compileDockerOptions({ stateDir: options.stateDir, computeHost: FLOOR_HOST });
  const hostCpus = ((await docker.info()) as { NCPU: number }).NCPU;
  const source: ImageSource = {
    id: options.glanceImageId,
    name: 'bench',
    containerFormat: 'docker',
    diskFormat: 'raw',
    size: null,
    properties: {},
    fetch: () => Promise.reject(new Error('the floor never downloads: the image is in the cache')),
  };
  const policy = containerPolicy(options.flavor, compiled);
  const bodies = Array.from({ length: options.count }, (_, i) => {
    const uuid = randomUUID();
    const spec: InstanceSpec = {
      uuid,
      name: `bench-floor-${i + 1}`,
      hostname: `bench-floor-${i + 1}`,
      displayName: `bench-floor-${i + 1}`,
      projectId: 'bench',
      userId: 'bench',
      flavor: options.flavor,
      metadata: {},
      hasNetwork: false,
    };
    return containerCreateOptions(spec, { ref: options.imageRef, source }, policy, compiled, hostCpus).body;
  });

  const errors: string[] = [];
  const created: Docker.Container[] = [];
  const started = performance.now();
  await Promise.all(
    bodies.map(async (body) => {
      try {
        const container = await docker.createContainer(body);
        created.push(container);
        await container.start();
      } catch (err) {
        errors.push(`${String(body.name)}: ${(err as Error).message}`);
      }
    }),
  );
  const boot = seconds(started);

  const removing = performance.now();
  await Promise.all(
    created.map((c) => c.remove({ force: true, v: true }).catch((err: unknown) => errors.push(`remove ${c.id}: ${(err as Error).message}`))),
  );
  const removed = seconds(removing);
  return { n: options.count, boot_s: errors.length === 0 ? boot : null, delete_s: errors.length === 0 ? removed : null, errors };
}

/** Removes containers a previous, interrupted floor run left behind. */
export async function removeFloorContainers(docker: Docker): Promise<number> {
  const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL.computeHost}=${FLOOR_HOST}`] } });
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
  return left.length;
}
