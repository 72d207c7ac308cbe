// Glance images in Docker's image store, cached by Glance image id: the loaded image is tagged
// `berth-glance:<image id>`, so a second boot of the same image downloads nothing. Concurrent boots of one uncached
// image share one download and one `docker load`.

import { rm } from 'node:fs/promises';

import type Docker from 'dockerode';
import type { Logger } from 'pino';

import { DriverError, InvalidImage, type ImageSource } from '../driver';
import { NotADockerArchive, readDockerArchive, streamForLoad } from '../image-archive';
import { dockerMessage, dockerStatus, isUnavailable, toDriverError } from './docker-errors';

/** The repository that names cached Glance images. */
export const CACHE_REPOSITORY = 'berth-glance';
/** Docker's tag grammar; Glance ids (UUIDs) always fit. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** The Docker reference of a Glance image once cached; throws InvalidImage for an id Docker cannot tag. */
export function cachedImageRef(image: ImageSource): string {
  if (!TAG.test(image.id)) throw new InvalidImage(image.id, 'the image id cannot be used as a Docker tag');
  return `${CACHE_REPOSITORY}:${image.id}`;
}

export class ImageCache {
  private readonly loading = new Map<string, Promise<string>>();

  constructor(private readonly docker: Docker, private readonly logger: Logger) {}

  /** Makes sure the image is in Docker's store; resolves to the reference to create containers from. */
  async ensure(image: ImageSource): Promise<string> {
    const ref = cachedImageRef(image);
    const pending = this.loading.get(image.id);
    if (pending) return pending;
    if (await this.exists(ref, image.id)) return ref;
    // Checked again: another spawn may have started the load while we asked Docker.
    const started = this.loading.get(image.id);
    if (started) return started;
    const load = this.load(image, ref).finally(() => this.loading.delete(image.id));
    this.loading.set(image.id, load);
    return load;
  }

  private async exists(ref: string, imageId: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch (error) {
      if (dockerStatus(error) === 404) return false;
      throw toDriverError(error, `image inspect of ${imageId}`);
    }
  }

  private async load(image: ImageSource, ref: string): Promise<string> {
    const log = this.logger.child({ image_id: image.id });
    const started = Date.now();
    const path = await image.fetch();
    try {
      const archive = await readDockerArchive(path).catch((error: unknown) => {
        if (error instanceof NotADockerArchive) throw new InvalidImage(image.id, `not a docker save archive: ${error.message}`);
        throw new DriverError(`Cannot read the downloaded image ${image.id}: ${(error as Error).message}`, { cause: error });
      });
      await this.loadArchive(image.id, streamForLoad(archive));
      try {
        await this.docker.getImage(archive.imageId).tag({ repo: CACHE_REPOSITORY, tag: image.id });
      } catch (error) {
        if (dockerStatus(error) === 404) throw new InvalidImage(image.id, `docker load did not produce ${archive.imageId}`);
        throw toDriverError(error, `tagging image ${image.id}`);
      }
      log.info({ docker_image: archive.imageId, ignored_repo_tags: archive.repoTags, duration_ms: Date.now() - started }, 'image loaded into the Docker cache');
      return ref;
    } finally {
      await rm(path, { force: true });
    }
  }

  private async loadArchive(imageId: string, archive: NodeJS.ReadableStream): Promise<void> {
    let output: string;
    try {
      const response = await this.docker.loadImage(archive, { quiet: true });
      output = await readAll(response);
    } catch (error) {
      if (isUnavailable(error)) throw toDriverError(error, `load of image ${imageId}`);
      throw new InvalidImage(imageId, `docker load refused it: ${dockerMessage(error)}`, { cause: error });
    }
    // The engine answers 200 and reports content errors inside the JSON progress stream.
    for (const line of output.split('\n')) {
      if (!line.trim()) continue;
      let message: { error?: unknown };
      try {
        message = JSON.parse(line) as { error?: unknown };
      } catch {
        continue;
      }
      if (typeof message.error === 'string') throw new InvalidImage(imageId, `docker load refused it: ${message.error}`);
    }
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
