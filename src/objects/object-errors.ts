// The two ways object data goes wrong: a primitive from the wire we cannot read, and a value our own code tries to
// put in a field that cannot hold it.

/** A nova_object primitive (or an `object_action` update) that is not what oslo.versionedobjects would send. */
export class ObjectDecodeError extends Error {
  override readonly name = 'ObjectDecodeError';
  /** Where the bad value sits, e.g. `Instance.info_cache` or `InstanceList.objects[3].flavor`. */
  readonly path: string;
  /** The oslo_versionedobjects.exception class Python raises for this primitive, when it has its own. */
  readonly osloClass: 'UnsupportedObjectError' | 'IncompatibleObjectVersion' | null;

  constructor(
    path: string,
    reason: string,
    options?: { cause?: unknown; osloClass?: 'UnsupportedObjectError' | 'IncompatibleObjectVersion' },
  ) {
    super(`${path}: ${reason}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.path = path;
    this.osloClass = options?.osloClass ?? null;
  }
}

/** `set()` (or a constructor) got a value the field's type rejects, as oslo's `Field.coerce` would. */
export class ObjectFieldError extends Error {
  override readonly name = 'ObjectFieldError';
  readonly objectName: string;
  readonly field: string;

  constructor(objectName: string, field: string, reason: string) {
    super(`${objectName}.${field}: ${reason}`);
    this.objectName = objectName;
    this.field = field;
  }
}

/** Our code named a class this Nova release does not have (so there is no version or schema to build it with). */
export class UnknownObjectClassError extends Error {
  override readonly name = 'UnknownObjectClassError';
  readonly objectName: string;

  constructor(objectName: string) {
    super(`${objectName} is not a nova_object class of this Nova release`);
    this.objectName = objectName;
  }
}
