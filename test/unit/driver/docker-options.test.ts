import assert from 'node:assert/strict';

import { compareApiVersions } from '../../../driver/docker/docker-connection';
import { InvalidDockerOptions, compileDockerOptions, parseHostUrl } from '../../../driver/docker/docker-options';

describe('docker options', () => {
  it('defaults to the local socket and the documented containment', () => {
    const options = compileDockerOptions({ stateDir: '/var/lib/berth' });
    assert.deepEqual(options.endpoint, { kind: 'unix', socketPath: '/var/run/docker.sock' });
    assert.equal(options.pidsLimit, 1024);
    assert.equal(options.noNewPrivileges, true);
    assert.equal(options.readOnlyRootFilesystem, false);
    assert.deepEqual(options.allowedExtraCapabilities, []);
    assert.equal(options.minApiVersion, '1.41');
    assert.equal(options.injectMetadataAsEnv, false);
  });

  it('parses unix:// and tcp:// endpoints; TLS when certificate files are given', () => {
    assert.deepEqual(parseHostUrl('unix:///run/user/1000/docker.sock', false), { kind: 'unix', socketPath: '/run/user/1000/docker.sock' });
    assert.deepEqual(parseHostUrl('tcp://127.0.0.1:2375', false), { kind: 'tcp', host: '127.0.0.1', port: 2375, tls: false });
    assert.deepEqual(parseHostUrl('tcp://[::1]:2376', true), { kind: 'tcp', host: '::1', port: 2376, tls: true });
    const options = compileDockerOptions({ stateDir: '/s', hostUrl: 'tcp://docker.example:2376', caFile: '/ca.pem' });
    assert.deepEqual(options.endpoint, { kind: 'tcp', host: 'docker.example', port: 2376, tls: true });
  });

  it('refuses unusable settings before anything is contacted', () => {
    const refused = (options: Parameters<typeof compileDockerOptions>[0], reason: RegExp) =>
      assert.throws(() => compileDockerOptions(options), (error: unknown) => error instanceof InvalidDockerOptions && reason.test(error.message));
    refused({ stateDir: '/s', hostUrl: 'http://x:1' }, /only unix:\/\/, tcp:\/\/ and https:\/\//);
    assert.deepEqual(compileDockerOptions({ stateDir: '/s', hostUrl: 'https://engine:2376' }).endpoint, {
      kind: 'tcp',
      host: 'engine',
      port: 2376,
      tls: true,
    });
    refused({ stateDir: '/s', hostUrl: 'tcp://x' }, /host and a port/);
    refused({ stateDir: '/s', hostUrl: 'not a url' }, /not a URL/);
    refused({ stateDir: '/s', certFile: '/c.pem', hostUrl: 'tcp://x:1' }, /together/);
    refused({ stateDir: '/s', caFile: '/ca.pem' }, /tcp:\/\/ engines only/);
    refused({ stateDir: '' }, /stateDir/);
    refused({ stateDir: '/s', pidsLimit: 0 }, /pidsLimit/);
    refused({ stateDir: '/s', capabilities: ['SYS ADMIN'] }, /not a capability/);
    refused({ stateDir: '/s', allowedFlavorExtraSpecs: ['docker:cap_add'] }, /allowedFlavorExtraSpecs/);
    refused({ stateDir: '/s', logMaxSize: 'big' }, /logMaxSize/);
    refused({ stateDir: '/s', minApiVersion: 'v1' }, /minApiVersion/);
  });

  it('compares API versions numerically', () => {
    assert.ok(compareApiVersions('1.41', '1.41') === 0);
    assert.ok(compareApiVersions('1.9', '1.41') < 0);
    assert.ok(compareApiVersions('1.44', '1.41') > 0);
    assert.ok(compareApiVersions('2.0', '1.99') > 0);
  });
});
