// The config's defaults for [docker] are the driver's own defaults: the sample berth.conf documents what the driver
// does when an option is not set, so the two lists must never drift apart.
import assert from 'node:assert/strict';
import { compileDockerOptions, DEFAULT_CAPABILITIES } from '../../../driver/docker/docker-options';
import { load, MINIMAL } from './helpers';

describe('[docker] defaults agree with driver/docker', () => {
  it('capabilities', () => {
    const { config } = load(MINIMAL);
    assert.deepEqual([...config.docker.capabilities].sort(), [...DEFAULT_CAPABILITIES].sort());
  });
});

describe('[docker] Engine deadlines', () => {
  it('api_timeout and snapshot_timeout default to the driver defaults (60 s, 600 s)', () => {
    const { config } = load(MINIMAL);
    assert.equal(config.docker.api_timeout, 60);
    assert.equal(config.docker.snapshot_timeout, 600);
    const compiled = compileDockerOptions({ stateDir: '/tmp/x' });
    assert.equal(compiled.apiTimeoutMs, config.docker.api_timeout * 1000);
    assert.equal(compiled.snapshotTimeoutMs, config.docker.snapshot_timeout * 1000);
  });

  it('a bad api_timeout stops start-up naming the option', () => {
    assert.throws(() => load(`${MINIMAL}\n[docker]\napi_timeout = 0\n`), /\[docker\] api_timeout/);
    assert.throws(() => load(`${MINIMAL}\n[docker]\nsnapshot_timeout = soon\n`), /\[docker\] snapshot_timeout/);
  });
});
