// Glance v2 image updates are JSON patches (application/openstack-images-v2.1-json-patch). python-glanceclient's
// `images.update` picks `replace` for a key the image already has and `add` for a new one; removing a key the image
// does not have is skipped, because Glance rejects it.

export type ImagePatchOp =
  | { readonly op: 'add' | 'replace'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string };

export interface ImageChanges {
  /** Attributes and properties to set (`disk_format`, `container_format`, `image_state`, …). */
  readonly set?: Readonly<Record<string, unknown>>;
  /** Properties to remove. */
  readonly remove?: readonly string[];
}

/** The patch that turns `current` (the image record) into one with `changes` applied. */
export function imagePatch(current: Readonly<Record<string, unknown>>, changes: ImageChanges): ImagePatchOp[] {
  const ops: ImagePatchOp[] = [];
  for (const [key, value] of Object.entries(changes.set ?? {})) {
    ops.push({ op: key in current ? 'replace' : 'add', path: pointer(key), value });
  }
  for (const key of changes.remove ?? []) {
    if (key in current) ops.push({ op: 'remove', path: pointer(key) });
  }
  return ops;
}

/** RFC 6901: `~` → `~0`, `/` → `~1`. */
function pointer(key: string): string {
  return `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}
