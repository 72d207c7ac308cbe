// src/conductor: the client of nova-conductor (object methods, ping, reschedule). Protocol: nova-compute-protocol.md §5.
export {
  ConductorClient,
  CONDUCTOR_TARGET,
  BASEAPI_TARGET,
  BUILD_INSTANCES_TARGET,
  truncateUtf8,
  type ConductorClientOptions,
  type ExpectedState,
  type InstanceSaveOptions,
  type InstanceFaultInput,
  type BuildInstancesArgs,
  type WaitForConductorOptions,
} from './conductor-client';
export {
  ConductorReplyError,
  isNovaException,
  isUnexpectedTaskStateError,
  isUnexpectedDeletingTaskStateError,
  isInstanceUpdateConflict,
  isInstanceNotFound,
  isInstanceActionNotFound,
  isComputeHostNotFound,
  isServiceTooOld,
  isServiceNotFound,
} from './conductor-errors';
