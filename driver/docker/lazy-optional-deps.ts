// dockerode requires gRPC (for BuildKit sessions) and, through docker-modem, ssh2 (for ssh:// engines) as soon as it
// is loaded: about 12 MB of resident memory that Berth never uses (it builds no images and speaks unix:// and
// tcp:// only). This module, imported before dockerode, puts lazy stand-ins for them in the module cache: the real
// module loads the first time anything touches it, so behaviour is unchanged if a code path ever needs them.
import Module from 'node:module';
import * as path from 'node:path';

type Loader = () => Record<string | symbol, unknown>;

function standIn(id: string, fromPackage: string, shape: (load: Loader) => unknown): void {
  let resolved: string;
  try {
    resolved = require.resolve(id, { paths: [path.dirname(require.resolve(`${fromPackage}/package.json`))] });
  } catch {
    return; // another install layout: the real module simply loads eagerly
  }
  if (require.cache[resolved]) return;
  let real: Record<string | symbol, unknown> | null = null;
  const load: Loader = () => {
    if (real === null) {
      delete require.cache[resolved];
      real = require(resolved) as Record<string | symbol, unknown>;
    }
    return real;
  };
  const stub = new Module(resolved);
  stub.filename = resolved;
  stub.loaded = true;
  stub.exports = shape(load);
  require.cache[resolved] = stub;
}

/** Every property read goes to the real module (grpc and proto-loader are only used inside functions). */
const forwarding = (load: Loader): unknown =>
  new Proxy({}, { get: (_target, key) => load()[key], has: (_target, key) => key in load() });

standIn('@grpc/grpc-js', 'dockerode', forwarding);
standIn('@grpc/proto-loader', 'dockerode', forwarding);
// docker-modem reads `require('ssh2').Client` at load time and calls `new Client()` only for ssh:// engines.
standIn('ssh2', 'docker-modem', (load) => ({
  Client: function Client(this: unknown, ...args: unknown[]): unknown {
    const RealClient = load()['Client'] as new (...a: unknown[]) => unknown;
    return new RealClient(...args);
  },
}));
