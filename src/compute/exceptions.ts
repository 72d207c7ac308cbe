// Nova's exceptions as they travel on the wire: class name, module, message and kwargs, exactly what
// nova/exception.py would have produced, so nova-api and the conductor re-raise the right class.
import { RemoteFailure } from '../messaging/failure';
import * as driver from '../../driver/driver';

interface ExceptionClass {
  /** Python's msg_fmt with %(name)s placeholders. */
  readonly fmt: string;
  readonly code: number;
}

/** The nova.exception classes Berth raises (msg_fmt and code copied from Nova 26). */
const NOVA_EXCEPTIONS = {
  NovaException: { fmt: 'An unknown exception occurred.', code: 500 },
  InstanceNotFound: { fmt: 'Instance %(instance_id)s could not be found.', code: 404 },
  InstanceInvalidState: {
    fmt: 'Instance %(instance_uuid)s in %(attr)s %(state)s. Cannot %(method)s while the instance is in this state.',
    code: 400,
  },
  InstanceNotRunning: { fmt: 'Instance %(instance_id)s is not running.', code: 400 },
  InstanceNotReady: { fmt: 'Instance %(instance_id)s is not ready', code: 400 },
  BuildAbortException: { fmt: 'Build of instance %(instance_uuid)s aborted: %(reason)s', code: 500 },
  RescheduledException: { fmt: 'Build of instance %(instance_uuid)s was re-scheduled: %(reason)s', code: 500 },
  ComputeResourcesUnavailable: { fmt: 'Insufficient compute resources: %(reason)s.', code: 400 },
  ImageUnacceptable: { fmt: 'Image %(image_id)s is unacceptable: %(reason)s', code: 400 },
  ImageNotFound: { fmt: 'Image %(image_id)s could not be found.', code: 404 },
  ConsoleTypeUnavailable: { fmt: 'Unavailable console type %(console_type)s.', code: 400 },
  ConsoleNotAvailable: { fmt: 'Guest does not have a console available.', code: 404 },
  InstancePasswordSetFailed: { fmt: 'Failed to set admin password on %(instance)s because %(reason)s', code: 409 },
  SetAdminPasswdNotSupported: { fmt: 'Set admin password is not supported', code: 409 },
  InstanceRebootFailure: { fmt: 'Failed to reboot instance: %(reason)s', code: 400 },
  InstancePowerOffFailure: { fmt: 'Failed to power off instance: %(reason)s', code: 400 },
  InstanceSuspendFailure: { fmt: 'Failed to suspend instance: %(reason)s', code: 400 },
  InstanceResumeFailure: { fmt: 'Failed to resume instance: %(reason)s', code: 400 },
  HypervisorUnavailable: { fmt: 'Connection to the hypervisor is broken on host', code: 500 },
  InvalidInput: { fmt: 'Invalid input received: %(reason)s', code: 400 },
  AttachInterfaceNotSupported: {
    fmt: 'Attaching interfaces is not supported for instance %(instance_uuid)s.',
    code: 400,
  },
  InstanceNotRescuable: { fmt: 'Instance %(instance_id)s cannot be rescued: %(reason)s', code: 400 },
  UnexpectedTaskStateError: {
    fmt: 'Conflict updating instance %(instance_uuid)s. Expected: %(expected)s. Actual: %(actual)s',
    code: 500,
  },
  MigrationError: { fmt: 'Migration error: %(reason)s', code: 500 },
  MigrationPreCheckError: { fmt: 'Migration pre-check error: %(reason)s', code: 500 },
  UnableToMigrateToSelf: { fmt: 'Unable to migrate instance (%(instance_id)s) to current host (%(host)s).', code: 400 },
  InstanceFaultRollback: { fmt: 'Instance rollback performed due to: %(inner_exception)s', code: 500 },
  AllocationMoveFailed: {
    fmt: 'Failed to move allocations from consumer %(source_consumer)s to consumer %(target_consumer)s. Error: %(error)s',
    code: 500,
  },
  AllocationDeleteFailed: { fmt: 'Failed to delete allocations for consumer %(consumer_uuid)s. Error: %(error)s', code: 500 },
} as const satisfies Record<string, ExceptionClass>;

export type NovaExceptionName = keyof typeof NOVA_EXCEPTIONS;

/** Python's `msg_fmt % kwargs` for %(name)s placeholders (str() of each value). */
function formatMessage(fmt: string, kwargs: Record<string, unknown>): string {
  return fmt.replace(/%\((\w+)\)s/g, (_, key: string) => pyStr(kwargs[key]));
}

/** A small str() for the values Nova formats into messages. */
export function pyStr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return pyRepr(value);
}

function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`)
      .join(', ')}}`;
  }
  return pyStr(value);
}

/** A nova.exception.<name> failure with Nova's message format and code. */
export function novaError(name: NovaExceptionName, kwargs: Record<string, unknown> = {}, message?: string): RemoteFailure {
  const cls: ExceptionClass = NOVA_EXCEPTIONS[name];
  const fullKwargs = { ...kwargs, code: kwargs['code'] ?? cls.code };
  const text = message ?? formatMessage(cls.fmt, kwargs);
  return new RemoteFailure(name, 'nova.exception', text, { args: [text], kwargs: fullKwargs });
}

/** A Python builtin exception (NotImplementedError, TypeError, ValueError, AttributeError…). */
export function builtinError(name: string, message: string): RemoteFailure {
  return new RemoteFailure(name, 'builtins', message, { args: [message], kwargs: {} });
}

export function notImplemented(what: string): RemoteFailure {
  return builtinError('NotImplementedError', what);
}

/** The HTTP-ish code Nova records in faults (kwargs.code, 500 by default). */
export function faultCode(err: RemoteFailure): number {
  const code = err.kwargs['code'];
  return typeof code === 'number' && Number.isInteger(code) ? code : 500;
}

export function isFailure(err: unknown, ...names: string[]): err is RemoteFailure {
  return err instanceof RemoteFailure && names.includes(err.className);
}

/**
 * Maps a runtime error to the exception Nova's own driver layer would raise. Anything that is not a typed driver
 * error (a bug, a network error) becomes a NovaException carrying its message, so a fault says what happened.
 */
export function fromDriverError(err: unknown, instanceUuid: string): RemoteFailure {
  if (err instanceof RemoteFailure) return err;
  if (err instanceof driver.InstanceNotFound) return novaError('InstanceNotFound', { instance_id: err.uuid });
  if (err instanceof driver.NotSupported) return notImplemented(err.message);
  if (err instanceof driver.InvalidImage) {
    return novaError('ImageUnacceptable', { image_id: err.imageId, reason: err.reason });
  }
  if (err instanceof driver.FlavorNotAllowed) return novaError('InvalidInput', { reason: err.reason });
  if (err instanceof driver.InstanceInvalidState) {
    return novaError('InstanceInvalidState', {
      instance_uuid: instanceUuid,
      attr: 'power state',
      state: err.state,
      method: err.operation,
    });
  }
  if (err instanceof driver.RuntimeUnavailable) {
    return novaError('HypervisorUnavailable', {}, `Connection to the hypervisor is broken on host: ${err.message}`);
  }
  const message = err instanceof Error ? err.message : String(err);
  return novaError('NovaException', {}, message);
}
