// dockerode's unused heavy dependencies stay out of memory until something touches them, and then work as before.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

describe('driver/docker lazy optional dependencies', () => {
  const run = (code: string): string =>
    execFileSync(process.execPath, ['-e', code], { cwd: path.resolve(__dirname, '../../..'), encoding: 'utf8' }).trim();
  const connection = JSON.stringify(path.resolve(__dirname, '../../../driver/docker/docker-connection.js'));

  it('loading the docker driver does not load gRPC or ssh2', () => {
    const loaded = run(`require(${connection}); console.log(Object.values(require.cache).filter((m) => m.loaded && m.children.length > 0 && /[\\\\/](@grpc|ssh2)[\\\\/]/.test(m.filename)).length)`);
    assert.equal(loaded, '0');
  });

  it('the real modules load on first use', () => {
    const out = run(`require(${connection}); const g = require('@grpc/grpc-js'); const s = require('ssh2'); console.log(typeof g.credentials.createInsecure, typeof s.Client)`);
    assert.equal(out, 'function function');
  });
});
