// Glance v2 as a compute host uses it (nova-compute-protocol.md §8; Nova's image/glance.py): image records,
// verified streaming downloads, and the snapshot side (metadata patch, streamed upload, delete, list for backup
// rotation). Requests carry the user's token from the RPC context, plus a [service_user] token when
// send_service_user_token is set; connection errors and 503 are retried `num_retries` times like Nova.
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '../log';
import { DEFAULT_TIMEOUT_SECONDS, HttpClient, toConnectionError, type HttpMethod } from '../identity/http-client';
import type { KeystoneSession } from '../identity/keystone-session';
import { withoutNulls, type WithoutNulls } from '../identity/unset-options';
import { ConnectionError, InvalidResponse, RequestError, type FailedRequest } from '../identity/request-error';
import { requestIdHeaders, requestLogFields, type RequestIds } from '../identity/request-id';
import { DEFAULT_VALID_INTERFACES, EndpointNotFound, selectEndpoint } from '../identity/service-catalog';
import {
  GlanceConnectionFailed,
  GlanceCredentialsMissing,
  ImageHashMismatch,
  ImageNotAuthorized,
  ImageNotFound,
  ImageTooLarge,
  ImageUnacceptable,
} from './glance-errors';
import {
  createHasher,
  expectedFromContentMd5,
  expectedFromImage,
  type ExpectedHash,
  type ImageChecksums,
  type VerificationSource,
} from './image-hash';
import type { ImagePatchOp } from './image-patch';

export const IMAGE_SERVICE_TYPE = 'image';
export const DEFAULT_NUM_RETRIES = 3;
/** Nova sleeps 1 s between attempts. */
const DEFAULT_RETRY_DELAY_MS = 1000;
/** A guard against a `next` link that never ends. */
const MAX_LIST_PAGES = 1000;

/**
 * `[glance]` options (keystoneauth adapter/session names), plus `[service_user] send_service_user_token`; null is
 * unset, so config sections can be passed as they are.
 */
export interface GlanceClientOptions {
  readonly api_servers?: readonly string[] | null;
  readonly endpoint_override?: string | null;
  readonly valid_interfaces?: readonly string[] | null;
  readonly region_name?: string | null;
  /** Retries after the first attempt on connection errors and 503 (default 3). */
  readonly num_retries?: number | null;
  /** Seconds; for downloads and uploads it bounds a stall, not the whole transfer. */
  readonly timeout?: number | null;
  readonly cafile?: string | null;
  readonly certfile?: string | null;
  readonly keyfile?: string | null;
  readonly insecure?: boolean | null;
  readonly send_service_user_token?: boolean | null;
  /** Refuse to download an image larger than this (bytes); unset = no limit. */
  readonly max_image_size_bytes?: number | null;
}

export interface GlanceClientDeps {
  /** The [service_user] session, whose token goes in X-Service-Token when send_service_user_token is set. */
  readonly serviceUser?: KeystoneSession;
  /**
   * The session whose token is used when the request context has none, and whose catalog is used when the
   * context has no image endpoint (the [glance] credential; default: serviceUser).
   */
  readonly fallbackAuth?: KeystoneSession;
  readonly logger?: Logger;
  readonly retryDelayMs?: number;
}

/** The RPC context fields Glance calls use (src/messaging RequestContext satisfies it). */
export interface ImageRequestContext extends RequestIds {
  readonly auth_token?: string | null;
  /** The v2-style catalog nova-api forwards (`_context_service_catalog`). */
  readonly service_catalog?: unknown;
}

/** A Glance v2 image record. */
export interface GlanceImage extends ImageChecksums {
  readonly id: string;
  readonly name?: string | null;
  readonly status?: string;
  readonly size?: number | null;
  readonly disk_format?: string | null;
  readonly container_format?: string | null;
  readonly [key: string]: unknown;
}

export interface DownloadResult {
  /** The verified file, renamed into place. */
  readonly path: string;
  readonly size: number;
  /** What the bytes were checked against; `unverified` when Glance gave nothing to check. */
  readonly verification: VerificationSource | 'unverified';
  /** Glance's name of the algorithm (`sha512`, `md5`), null when unverified. */
  readonly algorithm: string | null;
}

export interface DownloadOptions {
  /** Name of the final file in destDir (default: the image id). */
  readonly fileName?: string;
}

interface StreamResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly data: Readable;
  readonly url: string;
}

interface Call {
  readonly method: HttpMethod;
  /** Path under the endpoint, starting with /v2/. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly json?: unknown;
  readonly body?: Readable;
  readonly stream?: boolean;
}

export class GlanceClient {
  private readonly http: HttpClient;
  private readonly logger: Logger;
  private readonly numRetries: number;
  private readonly retryDelayMs: number;
  private readonly options: WithoutNulls<GlanceClientOptions>;
  private readonly serviceUser: KeystoneSession | undefined;
  private readonly fallbackAuth: KeystoneSession | undefined;
  private nextServer: number;

  constructor(options: GlanceClientOptions = {}, deps: GlanceClientDeps = {}) {
    this.options = withoutNulls(options);
    this.logger = deps.logger ?? silentLogger();
    this.serviceUser = deps.serviceUser;
    this.fallbackAuth = deps.fallbackAuth ?? deps.serviceUser;
    this.numRetries = Math.max(0, this.options.num_retries ?? DEFAULT_NUM_RETRIES);
    this.retryDelayMs = deps.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    // Nova shuffles api_servers and cycles through them; a random start gives the same spread.
    this.nextServer = Math.floor(Math.random() * Math.max(1, this.options.api_servers?.length ?? 1));
    this.http = HttpClient.create({
      timeoutMs: (this.options.timeout ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
      tls: this.options,
      headers: { Accept: 'application/json' },
      logger: this.logger,
    });
  }

  /** GET /v2/images/<id>. */
  async getImage(ctx: ImageRequestContext, imageId: string): Promise<GlanceImage> {
    const data = await this.withRetries(ctx, imageId, { method: 'GET', path: imagePath(imageId) });
    return image(data, imagePath(imageId));
  }

  /**
   * Streams the image data into a temporary file under destDir while hashing it, and renames it to
   * destDir/<fileName> only when the digest matches. A mismatch (ImageHashMismatch), a size over the limit
   * (ImageTooLarge) or any failure removes the partial file. 204 → ImageUnacceptable (no data).
   */
  async downloadVerified(
    ctx: ImageRequestContext,
    img: GlanceImage,
    destDir: string,
    options: DownloadOptions = {},
  ): Promise<DownloadResult> {
    const fileName = options.fileName ?? img.id;
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(fileName)) {
      throw new ImageUnacceptable(img.id, `'${fileName}' cannot be a file name`);
    }
    const limit = this.options.max_image_size_bytes;
    if (limit !== undefined && typeof img.size === 'number' && img.size > limit) {
      throw new ImageTooLarge(img.id, limit, img.size);
    }
    const fromImage = expectedFromImage(img);
    await fs.mkdir(destDir, { recursive: true });
    const finalPath = path.join(destDir, fileName);
    const call: Call = {
      method: 'GET',
      path: `${imagePath(img.id)}/file`,
      headers: { Accept: 'application/octet-stream' },
      stream: true,
    };
    return this.withRetries(ctx, img.id, call, async (res) => {
      if (res.status === 204) {
        res.data.resume();
        throw new ImageUnacceptable(img.id, 'Image has no associated data');
      }
      const length = Number(res.headers['content-length']);
      if (limit !== undefined && Number.isFinite(length) && length > limit) {
        res.data.destroy();
        throw new ImageTooLarge(img.id, limit, length);
      }
      const expected = fromImage ?? expectedFromContentMd5(res.headers['content-md5']);
      const source = { method: call.method, url: res.url };
      const result = await this.writeVerified(img.id, source, res.data, expected, finalPath, limit);
      const fields = {
        ...requestLogFields(ctx),
        image_id: img.id,
        size: result.size,
        verification: result.verification,
      };
      if (expected === null) this.logger.warn(fields, 'image downloaded unverified: Glance has no checksum for it');
      else this.logger.info(fields, 'image downloaded and verified');
      return result;
    });
  }

  /**
   * POST /v2/images: a queued image record with the given attributes and properties (strings, as Glance v2 keeps
   * them); `id` may be chosen by the caller. Not retried: a retry after a lost answer would find the id taken.
   */
  async createImage(ctx: ImageRequestContext, attributes: Readonly<Record<string, unknown>>): Promise<GlanceImage> {
    const imageId = typeof attributes['id'] === 'string' ? attributes['id'] : null;
    const base = await this.endpoint(ctx);
    let res: { data: unknown };
    try {
      res = await this.send(ctx, base, { method: 'POST', path: '/v2/images', headers: { 'Content-Type': 'application/json' }, json: attributes }, true);
    } catch (err) {
      throw translate(err, imageId);
    }
    const created = image(res.data, '/v2/images');
    this.logger.info({ ...requestLogFields(ctx), image_id: created.id }, 'image created');
    return created;
  }

  /** PATCH /v2/images/<id> with a JSON patch (see imagePatch); returns the updated record. */
  async updateImage(ctx: ImageRequestContext, imageId: string, patch: readonly ImagePatchOp[]): Promise<GlanceImage> {
    const data = await this.withRetries(ctx, imageId, {
      method: 'PATCH',
      path: imagePath(imageId),
      headers: { 'Content-Type': 'application/openstack-images-v2.1-json-patch' },
      json: patch,
    });
    return image(data, imagePath(imageId));
  }

  /**
   * PUT /v2/images/<id>/file, streaming `data` (never buffered). Not retried: the stream cannot be replayed. When
   * `data` itself fails, that error is thrown as it is.
   */
  async uploadImageData(
    ctx: ImageRequestContext,
    imageId: string,
    data: Readable,
    options: { readonly size?: number } = {},
  ): Promise<void> {
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
    if (options.size !== undefined) headers['Content-Length'] = String(options.size);
    const base = await this.endpoint(ctx);
    try {
      await this.send(ctx, base, { method: 'PUT', path: `${imagePath(imageId)}/file`, headers, body: data }, false);
    } catch (err) {
      throw translate(err, imageId);
    }
    this.logger.info({ ...requestLogFields(ctx), image_id: imageId }, 'image data uploaded');
  }

  /** DELETE /v2/images/<id>: true when deleted, false when it was already gone. */
  async deleteImage(ctx: ImageRequestContext, imageId: string): Promise<boolean> {
    try {
      await this.withRetries(ctx, imageId, { method: 'DELETE', path: imagePath(imageId) });
      return true;
    } catch (err) {
      if (err instanceof ImageNotFound) return false;
      throw err;
    }
  }

  /**
   * GET /v2/images with Glance v2 filters (`instance_uuid`, `image_type`, `backup_type`, `sort_key`,
   * `sort_dir`, `status`, …), following `next` links; every page's images in order.
   */
  async listImages(ctx: ImageRequestContext, filters: Readonly<Record<string, string>> = {}): Promise<GlanceImage[]> {
    const images: GlanceImage[] = [];
    const query = new URLSearchParams(filters).toString();
    let next: string | null = `/v2/images${query === '' ? '' : `?${query}`}`;
    for (let page = 0; next !== null; page++) {
      if (page === MAX_LIST_PAGES) throw new InvalidResponse({ method: 'GET', url: next }, 200, 'too many pages');
      const at: string = next;
      const data = await this.withRetries(ctx, null, { method: 'GET', path: at });
      const list = (data as { images?: unknown } | null)?.images;
      if (!Array.isArray(list)) throw new InvalidResponse({ method: 'GET', url: at }, 200, 'no images list');
      images.push(...list.map((entry) => image(entry, at)));
      const link = (data as { next?: unknown }).next;
      next = typeof link === 'string' && link !== '' ? link : null;
    }
    return images;
  }

  private async writeVerified(
    imageId: string,
    source: FailedRequest,
    body: Readable,
    expected: ExpectedHash | null,
    finalPath: string,
    limit: number | undefined,
  ): Promise<DownloadResult> {
    const partPath = path.join(path.dirname(finalPath), `.${path.basename(finalPath)}.${randomUUID()}.part`);
    const hasher = expected === null ? null : createHasher(expected);
    let size = 0;
    // pipeline destroys every stream with the first error; the first to fail tells a dropped download (retried)
    // from a local failure (size limit, full disk), which is not.
    let origin: 'response' | 'local' | undefined;
    body.once('error', () => {
      origin ??= 'response';
    });
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        if (limit !== undefined && size > limit) return done(new ImageTooLarge(imageId, limit, null));
        hasher?.update(chunk);
        done(null, chunk);
      },
    });
    meter.once('error', () => {
      origin ??= 'local';
    });
    // flush: fsync before close, like Nova: the bytes are on disk before anyone is told the file is there.
    const writer = createWriteStream(partPath, { flags: 'wx', mode: 0o644, flush: true });
    writer.once('error', () => {
      origin ??= 'local';
    });
    try {
      await pipeline(body, meter, writer);
      if (expected !== null && hasher !== null) {
        const actual = hasher.digest('hex');
        if (actual !== expected.hex) throw new ImageHashMismatch(imageId, expected.algorithm, expected.hex, actual);
      }
      await fs.rename(partPath, finalPath);
    } catch (err) {
      await fs.rm(partPath, { force: true });
      if (origin === 'response') throw toConnectionError(source, err);
      throw err;
    }
    return {
      path: finalPath,
      size,
      verification: expected?.source ?? 'unverified',
      algorithm: expected?.algorithm ?? null,
    };
  }

  /**
   * Runs a call up to 1 + num_retries times (the next api server each time) on connection errors and 503, as
   * Nova's GlanceClientWrapper.call; `consume` runs inside the attempt so a dropped download is retried too.
   */
  private async withRetries<T = unknown>(
    ctx: ImageRequestContext,
    imageId: string | null,
    call: Call,
    consume?: (res: StreamResponse) => Promise<T>,
  ): Promise<T> {
    const attempts = 1 + this.numRetries;
    for (let attempt = 1; ; attempt++) {
      const base = await this.endpoint(ctx);
      try {
        const res = await this.send(ctx, base, call, true);
        if (consume === undefined) return res.data as T;
        return await consume({ ...res, data: res.data as Readable, url: `${base}${call.path}` });
      } catch (err) {
        const retryable = err instanceof ConnectionError || (err instanceof RequestError && err.status === 503);
        if (!retryable) throw translate(err, imageId);
        const fields = { ...requestLogFields(ctx), image_id: imageId, server: base, attempt, attempts, err };
        if (attempt >= attempts) {
          this.logger.error(fields, 'error contacting glance server; done trying');
          throw new GlanceConnectionFailed(base, (err as Error).message, { cause: err });
        }
        this.logger.warn(fields, 'error contacting glance server; retrying');
        if (this.retryDelayMs > 0) await sleep(this.retryDelayMs);
      }
    }
  }

  /**
   * One request with the context's credentials: the user's token (plus the [service_user] token when
   * send_service_user_token is set), or the fallback session's token when the context has none. A 401 on a token
   * of ours re-authenticates that session once.
   */
  private async send(ctx: ImageRequestContext, base: string, call: Call, repeatable: boolean) {
    const request = (auth: Record<string, string>) =>
      this.http.request<unknown>({
        method: call.method,
        url: `${base}${call.path}`,
        headers: { ...call.headers, ...auth, ...requestIdHeaders(ctx) },
        ...(call.json === undefined ? {} : { json: call.json }),
        ...(call.body === undefined ? {} : { body: call.body }),
        ...(call.stream === true ? { stream: true } : {}),
        log: requestLogFields(ctx),
      });
    const withSession = (session: KeystoneSession, send: (token: string) => ReturnType<typeof request>) =>
      repeatable ? session.withToken(send) : session.getToken().then(send);
    const userToken = typeof ctx.auth_token === 'string' && ctx.auth_token !== '' ? ctx.auth_token : undefined;
    if (userToken === undefined) {
      if (this.fallbackAuth === undefined) throw new GlanceCredentialsMissing();
      return withSession(this.fallbackAuth, (token) => request({ 'X-Auth-Token': token }));
    }
    if (this.options.send_service_user_token !== true || this.serviceUser === undefined) {
      return request({ 'X-Auth-Token': userToken });
    }
    return withSession(this.serviceUser, (serviceToken) =>
      request({ 'X-Auth-Token': userToken, 'X-Service-Token': serviceToken }),
    );
  }

  /** api_servers (cycled) > endpoint_override > the context's catalog > the fallback session's catalog. */
  private async endpoint(ctx: ImageRequestContext): Promise<string> {
    const servers = this.options.api_servers ?? [];
    if (servers.length > 0) return stripVersion(servers[this.nextServer++ % servers.length] as string);
    if (this.options.endpoint_override !== undefined) return stripVersion(this.options.endpoint_override);
    const filter = {
      serviceType: IMAGE_SERVICE_TYPE,
      interfaces: this.options.valid_interfaces ?? DEFAULT_VALID_INTERFACES,
      region: this.options.region_name,
    };
    const url =
      selectEndpoint(ctx.service_catalog, filter) ??
      (this.fallbackAuth === undefined ? null : selectEndpoint((await this.fallbackAuth.getAccess()).catalog, filter));
    if (url === null) throw new EndpointNotFound(filter);
    return stripVersion(url);
  }
}

/** Nova strips a `/vN[.M]` suffix from the image endpoint (glanceclient bug 1707995); paths add /v2 again. */
export function stripVersion(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/v\d+(\.\d+)?$/, '');
}

function imagePath(imageId: string): string {
  return `/v2/images/${encodeURIComponent(imageId)}`;
}

function image(data: unknown, at: string): GlanceImage {
  if (typeof data !== 'object' || data === null || typeof (data as { id?: unknown }).id !== 'string') {
    throw new InvalidResponse({ method: 'GET', url: at }, 200, 'not an image record');
  }
  return data as GlanceImage;
}

/** nova.image.glance._translate_image_exception, for the statuses that have a Nova name. */
function translate(err: unknown, imageId: string | null): unknown {
  if (!(err instanceof RequestError) || imageId === null) return err;
  if (err.status === 401 || err.status === 403) return new ImageNotAuthorized(imageId, { cause: err });
  if (err.status === 404) return new ImageNotFound(imageId, { cause: err });
  return err;
}
