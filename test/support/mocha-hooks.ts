// Root hooks for every mocha run of test/run-tests.sh (`--require dist/test/support/mocha-hooks.js`).
//
// nock 14 intercepts every HTTP request of the process from the moment any file imports it — including requests to
// dockerd's unix socket, whose streamed bodies it aborts. Mocha loads every test file before running any test, so a
// nock import anywhere would break the suites that talk to real servers in the same run. After loading and before
// the first test, switch it off; the suites that want it switch it on for themselves (useNock).
export const mochaHooks = {
  beforeAll(): void {
    const loaded = Object.keys(require.cache).some((file) => /[\\/]node_modules[\\/]nock[\\/]/.test(file));
    if (!loaded) return;
    const nock = require('nock') as typeof import('nock');
    if (nock.isActive()) nock.restore();
  },
};
