import assert from 'node:assert/strict';

import { InstanceInvalidState, PowerState } from '../../../driver/driver';
import { POWER_TRANSITIONS, planPowerTransition, type PowerOperation } from '../../../driver/power-transitions';

describe('power-transitions', () => {
  const states = Object.values(PowerState);

  it('gives every operation disjoint act and no-op states, ending where the no-op states are', () => {
    for (const [operation, transition] of Object.entries(POWER_TRANSITIONS)) {
      for (const state of transition.acts) assert.ok(!transition.noop.includes(state), `${operation}: ${state} is both`);
      assert.ok(transition.noop.includes(transition.to), `${operation}: repeating it must be a no-op`);
    }
  });

  it('refuses every other state with InstanceInvalidState naming the state and the operation', () => {
    for (const operation of Object.keys(POWER_TRANSITIONS) as PowerOperation[]) {
      const { acts, noop } = POWER_TRANSITIONS[operation];
      for (const state of states) {
        if (acts.includes(state)) assert.equal(planPowerTransition('u', operation, state), 'act');
        else if (noop.includes(state)) assert.equal(planPowerTransition('u', operation, state), 'noop');
        else assert.throws(() => planPowerTransition('u', operation, state), InstanceInvalidState);
      }
    }
    assert.throws(() => planPowerTransition('u-1', 'pause', PowerState.SHUTDOWN), /Cannot pause instance u-1 while it is shutdown/);
  });
});
