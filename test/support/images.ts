// Test images without any registry: a static busybox root filesystem → `docker import` → `docker save`, cached on
// disk so repeated runs are fast; and, for tests without Docker, small docker archives written in pure Node.
// Used by the driver conformance suite, the e2e tests and the benchmarks.

import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import type { ImageSource } from '../../driver/driver';
import { createDockerArchive, tarArchive } from '../../driver/image-archive';

const run = promisify(execFile);

/** Where built images are kept between runs (override with BERTH_TEST_IMAGE_CACHE). */
export const IMAGE_CACHE_DIR = process.env['BERTH_TEST_IMAGE_CACHE'] ?? join(tmpdir(), 'berth-test-images');
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'echo', 'sleep', 'cat', 'grep', 'ls', 'ps', 'id', 'true', 'false', 'head', 'tail', 'wc', 'env', 'hostname', 'kill', 'dd', 'seq'];

/** Lines the standard test command prints before it waits. */
export const CONSOLE_LINES = ['berth console line 1', 'berth console line 2', 'berth console line 3', 'berth console line 4', 'berth console line 5'];

/** Prints CONSOLE_LINES, then runs until stopped; exits at once on SIGTERM (a plain `sleep` as PID 1 ignores it). */
export const TEST_IMAGE_COMMAND: readonly string[] = [
  '/bin/sh',
  '-c',
  `trap "exit 0" TERM; for i in 1 2 3 4 5; do echo "berth console line $i"; done; while :; do sleep 3600 & wait $!; done`,
];

export interface TestImage {
  /** The Docker tag it was built as (removed from the engine again after `docker save`). */
  readonly tag: string;
  /** A `docker save` archive. */
  readonly tarPath: string;
  /** Glance's default hash of the archive (os_hash_value with os_hash_algo sha512). */
  readonly sha512: string;
  readonly size: number;
}

/** A busybox image whose command is `cmd`, as a docker save archive; built once per (tag, cmd, busybox). */
export async function buildBusyboxImage(tag: string, cmd: readonly string[] = TEST_IMAGE_COMMAND): Promise<TestImage> {
  const busyboxDigest = createHash('sha256').update(await readFile(BUSYBOX)).digest('hex');
  const key = createHash('sha256').update(JSON.stringify({ tag, cmd, busyboxDigest, APPLETS })).digest('hex').slice(0, 32);
  const tarPath = join(IMAGE_CACHE_DIR, `busybox-${key}.tar`);
  const cached = await describe(tag, tarPath).catch(() => null);
  if (cached) return cached;

  await mkdir(IMAGE_CACHE_DIR, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'berth-image-build-'));
  try {
    const rootfs = join(work, 'rootfs');
    for (const dir of ['bin', 'tmp', 'etc', 'proc', 'sys', 'dev']) await mkdir(join(rootfs, dir), { recursive: true });
    await copyFile(BUSYBOX, join(rootfs, 'bin', 'busybox'));
    for (const applet of APPLETS) await symlink('busybox', join(rootfs, 'bin', applet));
    await writeFile(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    await run('tar', ['-C', rootfs, '-cf', join(work, 'rootfs.tar'), '.']);
    await run('docker', ['import', '--change', `CMD ${JSON.stringify(cmd)}`, join(work, 'rootfs.tar'), tag]);
    try {
      // Written aside then renamed: a concurrent run never sees half an archive.
      await run('docker', ['save', tag, '-o', join(work, 'image.tar')]);
    } finally {
      await run('docker', ['rmi', tag]).catch(() => undefined);
    }
    await rename(join(work, 'image.tar'), tarPath).catch(async () => {
      await copyFile(join(work, 'image.tar'), tarPath);
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return describe(tag, tarPath);
}

/** A small docker archive made in pure Node (no Docker needed): one layer holding /hello.txt. */
export async function writeFakeImage(cmd: readonly string[] = TEST_IMAGE_COMMAND): Promise<TestImage> {
  await mkdir(IMAGE_CACHE_DIR, { recursive: true });
  const layer = tarArchive([['hello.txt', Buffer.from('hello from a berth test image\n')]]);
  const { archive, imageId } = createDockerArchive({ cmd }, layer);
  const tarPath = join(IMAGE_CACHE_DIR, `fake-${imageId.slice(7, 39)}.tar`);
  await writeFile(tarPath, archive);
  return describe(`fake:${imageId.slice(7, 19)}`, tarPath);
}

/** An ImageSource (as src/image would hand to spawn) that counts its downloads. */
export interface CountingImageSource extends ImageSource {
  readonly fetchCount: number;
  /** Every path fetch() returned; the driver must have removed each one. */
  readonly fetchedPaths: readonly string[];
}

export interface GlanceImageOverrides {
  readonly id?: string;
  readonly name?: string;
  readonly containerFormat?: string;
  readonly diskFormat?: string;
  readonly properties?: Readonly<Record<string, unknown>>;
}

/** A Glance image whose data is `tarPath`; each fetch() copies it to a fresh temporary file, as a download would. */
export function glanceImage(tarPath: string, overrides: GlanceImageOverrides = {}): CountingImageSource {
  const fetchedPaths: string[] = [];
  const id = overrides.id ?? randomUUID();
  return {
    id,
    name: overrides.name ?? `test-image-${id.slice(0, 8)}`,
    containerFormat: overrides.containerFormat ?? 'docker',
    diskFormat: overrides.diskFormat ?? 'raw',
    size: null,
    properties: overrides.properties ?? {},
    get fetchCount() {
      return fetchedPaths.length;
    },
    fetchedPaths,
    async fetch() {
      const path = join(tmpdir(), `berth-glance-${id}-${randomUUID()}.tar`);
      fetchedPaths.push(path);
      await copyFile(tarPath, path);
      return path;
    },
  };
}

async function describe(tag: string, tarPath: string): Promise<TestImage> {
  const { size } = await stat(tarPath);
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(tarPath)) hash.update(chunk as Buffer);
  return { tag, tarPath, sha512: hash.digest('hex'), size };
}
