// The temporary Glance image that carries a container's writable layer from the source host to the destination of
// a cold migration or a cross-host resize (Berth's non-shared-storage "disk copy"). It belongs to the service
// project, not the user: it is created, uploaded, downloaded and deleted with the [glance] (or [service_user])
// credentials, so it never shows in the user's `image list`. Its id is the migration's uuid, so the steps that
// Nova gives no disk_info (confirm_resize, revert_resize, an init_host recovery) still know which image to delete.
import type { Readable } from 'node:stream';
import type { ImageSource } from '../../driver/driver';
import type { RequestContext } from '../messaging/types';

/** What the resize steps need from Glance for the transfer, always with the service credentials. */
export interface MigrationImagePort {
  /** A queued private image `berth-migration-<migration>` (container_format docker, disk_format raw) with this id. */
  createMigrationImage(context: RequestContext, image: MigrationImage): Promise<void>;
  /** Streams the archive into the queued image. */
  uploadMigrationImage(context: RequestContext, imageId: string, data: Readable): Promise<void>;
  /** The image as the driver loads it (fetch() downloads it and checks Glance's hash). */
  migrationImageSource(context: RequestContext, imageId: string): Promise<ImageSource>;
  /** Deletes the image; false when it was already gone. */
  deleteMigrationImage(context: RequestContext, imageId: string): Promise<boolean>;
}

export interface MigrationImage {
  readonly id: string;
  readonly name: string;
  readonly migrationUuid: string;
  readonly instanceUuid: string;
}

/** disk_info's one entry (libvirt's is a list of disks; a container has one "disk": its committed writable layer). */
export interface MigrationDisk {
  readonly type: 'berth-glance-image';
  readonly image_id: string;
  readonly name: string;
}

export function migrationImage(migrationUuid: string, instanceUuid: string): MigrationImage {
  return { id: migrationUuid, name: `berth-migration-${migrationUuid}`, migrationUuid, instanceUuid };
}

/** The disk_info JSON string resize_instance passes to finish_resize for a cross-host move. */
export function migrationDiskInfo(image: MigrationImage): string {
  const disk: MigrationDisk = { type: 'berth-glance-image', image_id: image.id, name: image.name };
  return JSON.stringify([disk]);
}

/**
 * The transferred image named by disk_info (a JSON string, or the list itself), null when it names none (a
 * same-host resize: '[]'). Anything else that came over the bus is not trusted: malformed input is null too.
 */
export function migrationImageIdOf(diskInfo: unknown): string | null {
  let parsed: unknown = diskInfo;
  if (typeof diskInfo === 'string') {
    try {
      parsed = JSON.parse(diskInfo);
    } catch {
      return null;
    }
  }
  if (!Array.isArray(parsed)) return null;
  for (const disk of parsed) {
    if (typeof disk !== 'object' || disk === null) continue;
    const { type, image_id: imageId } = disk as Record<string, unknown>;
    if (type === 'berth-glance-image' && typeof imageId === 'string' && /^[0-9a-fA-F-]{32,36}$/.test(imageId)) return imageId;
  }
  return null;
}
