// The power-state table every driver follows: from which states an operation acts, where it is a no-op, and where
// it is refused. One table, so driver/fake and driver/docker cannot disagree about what "pause a stopped
// instance" means.

import {
  InstanceInvalidState,
  POWER_STATE_NAMES,
  PowerState,
  type LifecycleTransition,
} from './driver';

export type PowerOperation = 'powerOff' | 'powerOn' | 'pause' | 'unpause' | 'suspend' | 'resume';

interface PowerTransition {
  /** States the operation changes. */
  readonly acts: readonly PowerState[];
  /** States where the operation has already happened; it returns at once (safe retries). */
  readonly noop: readonly PowerState[];
  /** The state the instance is in afterwards. */
  readonly to: PowerState;
  /** The lifecycle event the transition produces. */
  readonly event: LifecycleTransition;
}

const { RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED } = PowerState;

/** Any state in neither list is refused with InstanceInvalidState (e.g. pausing a stopped instance). */
export const POWER_TRANSITIONS: Readonly<Record<PowerOperation, PowerTransition>> = {
  // A crashed container has already exited: stopping it changes nothing.
  powerOff: { acts: [RUNNING, PAUSED, SUSPENDED], noop: [SHUTDOWN, CRASHED], to: SHUTDOWN, event: 'stopped' },
  // Docker cannot start a frozen container; unpause/resume it instead.
  powerOn: { acts: [SHUTDOWN, CRASHED], noop: [RUNNING], to: RUNNING, event: 'started' },
  pause: { acts: [RUNNING], noop: [PAUSED], to: PAUSED, event: 'paused' },
  unpause: { acts: [PAUSED], noop: [RUNNING], to: RUNNING, event: 'resumed' },
  suspend: { acts: [RUNNING], noop: [SUSPENDED], to: SUSPENDED, event: 'suspended' },
  resume: { acts: [SUSPENDED], noop: [RUNNING], to: RUNNING, event: 'resumed' },
};

/** Decides what `operation` does from `current`: 'act' or 'noop'; throws InstanceInvalidState otherwise. */
export function planPowerTransition(uuid: string, operation: PowerOperation, current: PowerState): 'act' | 'noop' {
  const transition = POWER_TRANSITIONS[operation];
  if (transition.acts.includes(current)) return 'act';
  if (transition.noop.includes(current)) return 'noop';
  throw new InstanceInvalidState(uuid, POWER_STATE_NAMES[current], operation);
}

/** States in which the instance's processes exist (a stop or a destroy produces a `stopped` event). */
export function isAlive(state: PowerState): boolean {
  return state === RUNNING || state === PAUSED || state === SUSPENDED;
}
