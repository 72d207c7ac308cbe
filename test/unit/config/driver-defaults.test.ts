// The config's defaults for [docker] are the driver's own defaults: the sample berth.conf documents what the driver
// does when an option is not set, so the two lists must never drift apart.
import assert from 'node:assert/strict';
import { SCHEMA } from '../../../src/config';
import { DEFAULT_CAPABILITIES } from '../../../driver/docker/docker-options';

describe('[docker] defaults agree with driver/docker', () => {
  it('capabilities', () => {
    assert.deepEqual([...(SCHEMA.docker.capabilities.default as unknown as readonly string[])].sort(), [...DEFAULT_CAPABILITIES].sort());
  });
});
