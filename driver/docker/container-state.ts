// A container's Docker state → Nova's power state, and an inspected container → InstanceInfo.

import type Docker from 'dockerode';

import { PowerState, type InstanceInfo } from '../driver';
import { LABEL } from './container-config';

type ContainerState = Pick<Docker.ContainerInspectInfo['State'], 'Status' | 'OOMKilled' | 'Dead'>;

/**
 * running → RUNNING; paused → PAUSED, or SUSPENDED when the driver suspended it; created/exited → SHUTDOWN;
 * dead or killed by the OOM killer → CRASHED.
 */
export function powerStateOf(state: ContainerState, suspended: boolean): PowerState {
  if (state.Dead || state.Status === 'dead') return PowerState.CRASHED;
  switch (state.Status) {
    case 'running':
    case 'restarting':
      return PowerState.RUNNING;
    case 'paused':
      return suspended ? PowerState.SUSPENDED : PowerState.PAUSED;
    default:
      // created, exited, removing.
      return state.OOMKilled ? PowerState.CRASHED : PowerState.SHUTDOWN;
  }
}

export function instanceInfoOf(container: Docker.ContainerInspectInfo, suspended: boolean): InstanceInfo {
  const labels = container.Config.Labels ?? {};
  const startedAt = new Date(container.State.StartedAt);
  return {
    uuid: labels[LABEL.instanceUuid] ?? '',
    name: labels[LABEL.instanceName] ?? container.Name.replace(/^\//, ''),
    powerState: powerStateOf(container.State, suspended),
    runtimeId: container.Id,
    runtimeState: container.State.Status,
    // Docker reports 0001-01-01 for a container that never started.
    startedAt: startedAt.getUTCFullYear() > 1 ? startedAt : null,
  };
}
