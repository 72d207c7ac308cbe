// The config's defaults for [docker] are the driver's own defaults: the sample berth.conf documents what the driver
// does when an option is not set, so the two lists must never drift apart.
import assert from 'node:assert/strict';
import { DEFAULT_CAPABILITIES } from '../../../driver/docker/docker-options';
import { load, MINIMAL } from './helpers';

describe('[docker] defaults agree with driver/docker', () => {
  it('capabilities', () => {
    const { config } = load(MINIMAL);
    assert.deepEqual([...config.docker.capabilities].sort(), [...DEFAULT_CAPABILITIES].sort());
  });
});
