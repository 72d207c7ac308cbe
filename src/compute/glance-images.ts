// The manager's ImagePort on Glance v2: ImageSource for spawn (verified download on a cache miss), snapshot upload,
// backup rotation. nova/image/glance.py's roles, with the user's token from the request context.
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { ImageSource } from '../../driver/driver';
import type { RequestContext } from '../messaging/types';
import { imagePatch, ImageHashMismatch, ImageNotFound, ImageTooLarge, ImageUnacceptable, type GlanceClient, type GlanceImage } from '../image';
import { novaError } from './exceptions';
import type { MigrationImage, MigrationImagePort } from './migration-images';
import type { ImagePort } from './ports';

/** Glance attributes of an image record; everything else is a property (Nova keeps them under `properties`). */
const CORE_ATTRIBUTES = new Set([
  'id', 'name', 'status', 'size', 'virtual_size', 'checksum', 'os_hash_algo', 'os_hash_value', 'container_format',
  'disk_format', 'min_disk', 'min_ram', 'owner', 'visibility', 'is_public', 'protected', 'os_hidden', 'created_at',
  'updated_at', 'deleted', 'deleted_at', 'tags', 'file', 'schema', 'self', 'direct_url', 'locations', 'properties',
]);

export class GlanceImages implements ImagePort, MigrationImagePort {
  constructor(
    private readonly glance: GlanceClient,
    /** Where verified downloads land before `docker load` ([DEFAULT] state_path/images). */
    private readonly downloadDir: string,
  ) {}

  source(context: RequestContext, image: Readonly<Record<string, unknown>>): ImageSource {
    const id = String(image['id'] ?? '');
    const nested = image['properties'];
    const properties: Record<string, unknown> = typeof nested === 'object' && nested !== null ? { ...(nested as Record<string, unknown>) } : {};
    for (const [k, v] of Object.entries(image)) if (!CORE_ATTRIBUTES.has(k)) properties[k] = v;
    const size = typeof image['size'] === 'number' ? image['size'] : null;
    return {
      id,
      name: String(image['name'] ?? ''),
      containerFormat: String(image['container_format'] ?? ''),
      diskFormat: String(image['disk_format'] ?? ''),
      size,
      properties,
      fetch: async () => {
        if (image['status'] !== undefined && image['status'] !== 'active') {
          throw novaError('ImageUnacceptable', { image_id: id, reason: `status is ${String(image['status'])}, not active` });
        }
        try {
          // A unique file name: two builds of one image may download at once; the driver loads one of them.
          const result = await this.glance.downloadVerified(context, image as GlanceImage, this.downloadDir, {
            fileName: `${id}.${randomBytes(6).toString('hex')}.tar`,
          });
          return result.path;
        } catch (err) {
          // A bad hash or an image with no data would be just as bad on any other host: abort, don't reschedule.
          if (err instanceof ImageHashMismatch || err instanceof ImageUnacceptable || err instanceof ImageTooLarge) {
            throw novaError('ImageUnacceptable', { image_id: id, reason: err.message });
          }
          if (err instanceof ImageNotFound) throw novaError('ImageNotFound', { image_id: id });
          throw err;
        }
      },
    };
  }

  async show(context: RequestContext, imageId: string): Promise<Record<string, unknown>> {
    try {
      return { ...(await this.glance.getImage(context, imageId)) };
    } catch (err) {
      if (err instanceof ImageNotFound) throw novaError('ImageNotFound', { image_id: imageId });
      throw err;
    }
  }

  async uploadSnapshot(context: RequestContext, imageId: string, data: Readable, properties: Readonly<Record<string, string>>): Promise<void> {
    const current = await this.glance.getImage(context, imageId);
    const patch = imagePatch(current, { set: properties });
    if (patch.length > 0) await this.glance.updateImage(context, imageId, patch);
    await this.glance.uploadImageData(context, imageId, data);
  }

  async delete(context: RequestContext, imageId: string): Promise<void> {
    await this.glance.deleteImage(context, imageId);
  }

  async listBackups(context: RequestContext, instanceUuid: string, backupType: string): Promise<string[]> {
    const images = await this.glance.listImages(context, {
      image_type: 'backup',
      backup_type: backupType,
      instance_uuid: instanceUuid,
      sort_key: 'created_at',
      sort_dir: 'desc',
    });
    return images.map((i) => i.id);
  }
  // --- MigrationImagePort: the temporary image of a cross-host move, with the service credentials only ---------

  async createMigrationImage(context: RequestContext, image: MigrationImage): Promise<void> {
    await this.glance.createImage(serviceContext(context), {
      id: image.id,
      name: image.name,
      container_format: 'docker',
      disk_format: 'raw',
      visibility: 'private',
      berth_migration: image.migrationUuid,
      instance_uuid: image.instanceUuid,
    });
  }

  async uploadMigrationImage(context: RequestContext, imageId: string, data: Readable): Promise<void> {
    await this.glance.uploadImageData(serviceContext(context), imageId, data);
  }

  async migrationImageSource(context: RequestContext, imageId: string): Promise<ImageSource> {
    const service = serviceContext(context);
    return this.source(service, await this.show(service, imageId));
  }

  async deleteMigrationImage(context: RequestContext, imageId: string): Promise<boolean> {
    return this.glance.deleteImage(serviceContext(context), imageId);
  }

}

/**
 * The request's ids without the user's token or catalog: GlanceClient then authenticates with its fallback session
 * ([glance], else [service_user]), so the image belongs to the service project.
 */
function serviceContext(context: RequestContext): RequestContext {
  return { request_id: context.request_id, global_request_id: context.global_request_id ?? null, auth_token: null };
}
