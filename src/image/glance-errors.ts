// Glance failures the compute manager maps to Nova exceptions (same names as nova.exception where one exists).

/** The image cannot be used as it is (no data, unusable hash algorithm, bad id). */
export class ImageUnacceptable extends Error {
  override readonly name = 'ImageUnacceptable';
  readonly imageId: string;
  readonly reason: string;

  constructor(imageId: string, reason: string, options?: { cause?: unknown }) {
    super(`Image ${imageId} is unacceptable: ${reason}`, options);
    this.imageId = imageId;
    this.reason = reason;
  }
}

/** The downloaded bytes do not hash to what Glance promised; the partial file is already removed. */
export class ImageHashMismatch extends Error {
  override readonly name = 'ImageHashMismatch';
  readonly imageId: string;
  readonly algorithm: string;
  readonly expected: string;
  readonly actual: string;

  constructor(imageId: string, algorithm: string, expected: string, actual: string) {
    super(`Corrupt image download of ${imageId}: ${algorithm} hash was ${actual}, expected ${expected}`);
    this.imageId = imageId;
    this.algorithm = algorithm;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The image is larger than the configured download limit. */
export class ImageTooLarge extends Error {
  override readonly name = 'ImageTooLarge';
  readonly imageId: string;
  readonly limitBytes: number;

  constructor(imageId: string, limitBytes: number, sizeBytes: number | null) {
    const size = sizeBytes === null ? 'more than that' : `${sizeBytes} bytes`;
    super(`Image ${imageId} exceeds the download limit of ${limitBytes} bytes (${size})`);
    this.imageId = imageId;
    this.limitBytes = limitBytes;
  }
}

/** 404 from Glance for an image. */
export class ImageNotFound extends Error {
  override readonly name = 'ImageNotFound';
  readonly imageId: string;

  constructor(imageId: string, options?: { cause?: unknown }) {
    super(`Image ${imageId} could not be found.`, options);
    this.imageId = imageId;
  }
}

/** 401 / 403 from Glance for an image. */
export class ImageNotAuthorized extends Error {
  override readonly name = 'ImageNotAuthorized';
  readonly imageId: string;

  constructor(imageId: string, options?: { cause?: unknown }) {
    super(`Not authorized for image ${imageId}.`, options);
    this.imageId = imageId;
  }
}

/** Glance stayed unreachable (connection errors, 503) through every retry. */
export class GlanceConnectionFailed extends Error {
  override readonly name = 'GlanceConnectionFailed';
  readonly server: string;

  constructor(server: string, reason: string, options?: { cause?: unknown }) {
    super(`Connection to glance host ${server} failed: ${reason}`, options);
    this.server = server;
  }
}

/** Neither the request context nor a [service_user] session gave us a token for Glance. */
export class GlanceCredentialsMissing extends Error {
  override readonly name = 'GlanceCredentialsMissing';

  constructor() {
    super('No token for Glance: the request context has no auth_token and no [service_user] session is configured');
  }
}
