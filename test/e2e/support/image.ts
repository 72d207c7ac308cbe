// Glance through the CLI: upload a `docker save` archive as Berth expects it, read it back, delete it.
import { type CliOptions, openstack, openstackJson } from './openstack-cli';

/** `openstack image show -f json` (the keys a test reads). */
export interface Image {
  readonly id: string;
  readonly name: string;
  readonly status: string;
  readonly container_format: string;
  readonly disk_format: string;
  readonly size: number | null;
  /** md5 */
  readonly checksum: string | null;
  readonly visibility: string;
  /** The CLI puts os_hash_algo (sha512) and os_hash_value here, beside the user's properties. */
  readonly properties: Readonly<Record<string, unknown>>;
  readonly [key: string]: unknown;
}

export interface ImageUpload {
  readonly name: string;
  /** A `docker save` archive (see test/support/images.ts). */
  readonly file: string;
  readonly containerFormat?: string;
  readonly diskFormat?: string;
  readonly visibility?: 'public' | 'private' | 'shared' | 'community';
  readonly properties?: Readonly<Record<string, string>>;
}

/**
 * Creates and uploads an image (default container format docker, disk format raw, public) and resolves with
 * `image show` afterwards: `image create` prints the record from before the upload finished (status queued).
 */
export async function uploadImage(upload: ImageUpload, options?: CliOptions): Promise<Image> {
  const args = ['image', 'create', '--file', upload.file];
  args.push('--container-format', upload.containerFormat ?? 'docker', '--disk-format', upload.diskFormat ?? 'raw');
  args.push(`--${upload.visibility ?? 'public'}`);
  for (const [key, value] of Object.entries(upload.properties ?? {})) args.push('--property', `${key}=${value}`);
  const created = await openstackJson<Image>([...args, upload.name], options);
  return showImage(created.id, options);
}

export function showImage(idOrName: string, options?: CliOptions): Promise<Image> {
  return openstackJson<Image>(['image', 'show', idOrName], options);
}

/** Downloads the image data to `file` (`openstack image save`). */
export async function downloadImage(idOrName: string, file: string, options?: CliOptions): Promise<void> {
  await openstack(['image', 'save', '--file', file, idOrName], options);
}

export async function deleteImage(idOrName: string, options?: CliOptions): Promise<void> {
  await openstack(['image', 'delete', idOrName], options);
}
