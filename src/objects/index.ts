// src/objects: the nova_object codec and typed objects (pure data, no I/O). Wire format: nova-compute-protocol.md §2.
export {
  NovaObject,
  newObject,
  isNovaObject,
  OBJECT_NAMESPACE,
  type NovaObjectPrimitive,
} from './nova-object';
export { deserializeEntity, serializeEntity } from './object-serializer';
export { OBJECT_VERSIONS, versionManifest } from './object-versions';
export { NOVA_SERVICE_VERSION } from './object-schema';
export { ObjectDecodeError, ObjectFieldError, UnknownObjectClassError } from './object-errors';
export {
  parseIsoDateTime,
  formatObjectDateTime,
  formatPlainDateTime,
  formatNotificationTimestamp,
} from './date-time';
export type { ObjectName, FieldsOf, NovaObjectOf, NetworkInfo, Vif } from './object-types';
export type * from './object-classes';
