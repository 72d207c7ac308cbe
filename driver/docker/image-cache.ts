// Glance images in Docker's image store, cached by Glance image id: the loaded image is tagged
// `berth-glance:<image id>`, so a second boot of the same image downloads nothing. Concurrent boots of one uncached
// image share one download and one `docker load`. The image cache manager (image-cache-manager.ts) removes cached
// images that stay unused; it asks this class first, which knows what is being loaded and which spawns are between
// their cache lookup and their container (pinned): those images are in use.

import { rm } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

import type Docker from 'dockerode';
import type { Logger } from 'pino';

import { DriverError, InvalidImage, type ImageSource } from '../driver';
import { NotADockerArchive, readDockerArchive, streamForLoad, type DockerArchive } from '../image-archive';
import { dockerMessage, dockerStatus, isUnavailable, toDriverError } from './docker-errors';
import { InactivityDeadline, uploadWithDeadline, withDeadline } from './engine-deadline';
import type { UnusedClock } from './image-cache-clock';

/** The repository that names cached Glance images. */
export const CACHE_REPOSITORY = 'berth-glance';
/** Docker's tag grammar; Glance ids (UUIDs) always fit. */
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** The Docker reference of a Glance image once cached; throws InvalidImage for an id Docker cannot tag. */
export function cachedImageRef(image: ImageSource): string {
  if (!TAG.test(image.id)) throw new InvalidImage(image.id, 'the image id cannot be used as a Docker tag');
  return `${CACHE_REPOSITORY}:${image.id}`;
}

/** The Glance image id a `berth-glance:<id>` tag names, or null for any other reference. */
export function glanceIdOfTag(repoTag: string): string | null {
  const prefix = `${CACHE_REPOSITORY}:`;
  if (!repoTag.startsWith(prefix)) return null;
  const id = repoTag.slice(prefix.length);
  return TAG.test(id) ? id : null;
}

export interface EnsuredImage {
  /** The reference to create containers from. */
  readonly ref: string;
  /** True when the image was loaded by this call or by a load it joined (Nova's cache_image True). */
  readonly loaded: boolean;
}

export class ImageCache {
  private readonly loading = new Map<string, Promise<string>>();
  /** Glance image id → spawns holding it between their cache lookup and their container. */
  private readonly pins = new Map<string, number>();
  /** Glance image id → its removal by the image cache manager, while it runs. */
  private readonly removing = new Map<string, Promise<unknown>>();

  constructor(
    private readonly docker: Docker,
    private readonly logger: Logger,
    /** The Engine API deadline; a load may go this long without moving a byte. */
    private readonly apiTimeoutMs: number,
    /** The image cache manager's clock: a freshly loaded image starts unused-free. */
    private readonly clock: UnusedClock | null = null,
  ) {}

  /**
   * Marks the image in use until the returned function is called (once). Synchronous, so a spawn that pins before
   * its first await can never lose the image to a removal decided after that point.
   */
  pin(imageId: string): () => void {
    this.pins.set(imageId, (this.pins.get(imageId) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.pins.get(imageId) ?? 1) - 1;
      if (left > 0) this.pins.set(imageId, left);
      else this.pins.delete(imageId);
    };
  }

  /** True while the image is being loaded or a spawn holds it. */
  inFlight(imageId: string): boolean {
    return this.loading.has(imageId) || this.pins.has(imageId);
  }

  /**
   * Runs `remove` for the image unless it is in flight ('in-flight', nothing runs). The check and the start of the
   * removal happen in one turn of the event loop; an ensure() that comes later waits for the removal to end and then
   * finds the image gone (and loads it again).
   */
  removeUnlessInFlight<T>(imageId: string, remove: () => Promise<T>): Promise<T> | 'in-flight' {
    if (this.inFlight(imageId)) return 'in-flight';
    const removal = remove();
    this.removing.set(imageId, removal);
    void removal.finally(() => this.removing.delete(imageId)).catch(() => undefined);
    return removal;
  }

  /** Makes sure the image is in Docker's store; resolves to the reference to create containers from. */
  async ensure(image: ImageSource): Promise<EnsuredImage> {
    const ref = cachedImageRef(image);
    await this.removing.get(image.id)?.catch(() => undefined);
    const pending = this.loading.get(image.id);
    if (pending) return { ref: await pending, loaded: true };
    if (await this.exists(ref, image.id)) return { ref, loaded: false };
    // Checked again: another spawn may have started the load while we asked Docker.
    const started = this.loading.get(image.id);
    if (started) return { ref: await started, loaded: true };
    const load = this.load(image, ref).finally(() => this.loading.delete(image.id));
    this.loading.set(image.id, load);
    return { ref: await load, loaded: true };
  }

  private async exists(ref: string, imageId: string): Promise<boolean> {
    try {
      // A filtered list rather than an image inspect: dockerode's image inspect cannot be aborted.
      const filters = { reference: [ref] };
      const images = await withDeadline(`image list of ${imageId}`, this.apiTimeoutMs, (signal) => this.docker.listImages({ filters, abortSignal: signal }));
      return images.some((image) => image.RepoTags?.includes(ref));
    } catch (error) {
      throw toDriverError(error, `image list of ${imageId}`);
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
      await this.loadArchive(image.id, archive);
      try {
        const tag = (signal: AbortSignal) => this.docker.getImage(archive.imageId).tag({ repo: CACHE_REPOSITORY, tag: image.id, abortSignal: signal });
        await withDeadline(`tagging image ${image.id}`, this.apiTimeoutMs, tag);
      } catch (error) {
        if (dockerStatus(error) === 404) throw new InvalidImage(image.id, `docker load did not produce ${archive.imageId}`);
        throw toDriverError(error, `tagging image ${image.id}`);
      }
      log.info({ docker_image: archive.imageId, ignored_repo_tags: archive.repoTags, duration_ms: Date.now() - started }, 'image loaded into the Docker cache');
      // A clock left from an earlier copy of this image (removed behind our back) must not count against this one.
      if (this.clock && this.clock.get(image.id) !== null) {
        this.clock.stop(image.id);
        await this.clock.save().catch((error: unknown) => log.warn({ err: error }, 'could not save the image cache clock'));
      }
      return ref;
    } finally {
      await rm(path, { force: true });
    }
  }

  /**
   * `docker load` with progress (not quiet): the engine reports each layer as it registers it, so bytes keep moving
   * while it works and the load has an inactivity deadline, never a total one.
   */
  private async loadArchive(imageId: string, archive: DockerArchive): Promise<void> {
    const deadline = new InactivityDeadline(`load of image ${imageId}`, this.apiTimeoutMs);
    const body = uploadWithDeadline(streamForLoad(archive), deadline);
    let refusal: string | null = null;
    try {
      deadline.touch();
      const response = await this.docker.loadImage(body, { quiet: false, abortSignal: deadline.signal });
      const decoder = new StringDecoder('utf8');
      let pending = '';
      for await (const chunk of response) {
        deadline.touch();
        pending += typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer);
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        refusal ??= loadError(lines);
      }
      refusal ??= loadError([pending + decoder.end()]);
    } catch (error) {
      const failure = deadline.failure(error);
      if (failure instanceof DriverError || isUnavailable(failure)) throw toDriverError(failure, `load of image ${imageId}`);
      throw new InvalidImage(imageId, `docker load refused it: ${dockerMessage(failure)}`, { cause: failure });
    } finally {
      deadline.finish();
      body.destroy();
    }
    // The engine answers 200 and reports content errors inside the JSON progress stream.
    if (refusal !== null) throw new InvalidImage(imageId, `docker load refused it: ${refusal}`);
  }
}

/** The first error a chunk of `docker load` progress lines reports, or null. */
function loadError(lines: readonly string[]): string | null {
  for (const line of lines) {
    if (!line.trim()) continue;
    try {
      const message = JSON.parse(line) as { error?: unknown };
      if (typeof message.error === 'string') return message.error;
    } catch {
      // Not a progress line: nothing to report.
    }
  }
  return null;
}
