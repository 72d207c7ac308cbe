// Public surface of src/image: the Glance v2 client (verified downloads, snapshot uploads).
export {
  DEFAULT_NUM_RETRIES,
  GlanceClient,
  IMAGE_SERVICE_TYPE,
  stripVersion,
  type DownloadOptions,
  type DownloadResult,
  type GlanceClientDeps,
  type GlanceClientOptions,
  type GlanceImage,
  type ImageRequestContext,
} from './glance-client';
export {
  GlanceConnectionFailed,
  GlanceCredentialsMissing,
  ImageHashMismatch,
  ImageNotAuthorized,
  ImageNotFound,
  ImageTooLarge,
  ImageUnacceptable,
} from './glance-errors';
export {
  expectedFromContentMd5,
  expectedFromImage,
  type ExpectedHash,
  type ImageChecksums,
  type VerificationSource,
} from './image-hash';
export { imagePatch, type ImageChanges, type ImagePatchOp } from './image-patch';
