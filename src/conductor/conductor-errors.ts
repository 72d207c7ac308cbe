// Recognising the conductor's failures. They arrive as RemoteFailure (module nova.exception); Python code catches
// them by class, subclasses included, so these checks follow the same hierarchy.
import { RemoteFailure } from '../messaging/failure';

/** nova/exception.py subclass → parent, for the exceptions recognised below. */
const NOVA_EXCEPTION_PARENTS: Readonly<Record<string, string>> = {
  UnexpectedDeletingTaskStateError: 'UnexpectedTaskStateError',
  UnexpectedTaskStateError: 'InstanceUpdateConflict',
  UnknownInstanceUpdateConflict: 'InstanceUpdateConflict',
  ConfGroupForServiceTypeNotFound: 'ServiceNotFound',
};

/** True when `err` is the nova.exception class `className` or one of its subclasses (Python `except className`). */
export function isNovaException(err: unknown, className: string): err is RemoteFailure {
  if (!(err instanceof RemoteFailure) || err.module !== 'nova.exception') return false;
  for (let c: string | undefined = err.className; c !== undefined; c = NOVA_EXCEPTION_PARENTS[c]) {
    if (c === className) return true;
  }
  return false;
}

/** Instance.save found another task_state than expected — including `deleting` (check that one first). */
export const isUnexpectedTaskStateError = (err: unknown): err is RemoteFailure =>
  isNovaException(err, 'UnexpectedTaskStateError');
/** Instance.save found task_state `deleting`: the user deleted the server meanwhile; stop and let terminate run. */
export const isUnexpectedDeletingTaskStateError = (err: unknown): err is RemoteFailure =>
  isNovaException(err, 'UnexpectedDeletingTaskStateError');
/** Any compare-and-update conflict of Instance.save (task_state, vm_state or unknown). */
export const isInstanceUpdateConflict = (err: unknown): err is RemoteFailure => isNovaException(err, 'InstanceUpdateConflict');
export const isInstanceNotFound = (err: unknown): err is RemoteFailure => isNovaException(err, 'InstanceNotFound');
export const isInstanceActionNotFound = (err: unknown): err is RemoteFailure => isNovaException(err, 'InstanceActionNotFound');
export const isComputeHostNotFound = (err: unknown): err is RemoteFailure => isNovaException(err, 'ComputeHostNotFound');
export const isServiceTooOld = (err: unknown): err is RemoteFailure => isNovaException(err, 'ServiceTooOld');
export const isServiceNotFound = (err: unknown): err is RemoteFailure => isNovaException(err, 'ServiceNotFound');

/** The conductor answered, but not with what the method returns (e.g. an object_action reply that is no pair). */
export class ConductorReplyError extends Error {
  override readonly name = 'ConductorReplyError';
  /** `Class.method` of the call. */
  readonly call: string;

  constructor(call: string, reason: string) {
    super(`${call}: ${reason}`);
    this.call = call;
  }
}
