// The latency breakdown's timing hook, loaded into Berth only for that phase:
//   NODE_OPTIONS="--require <dist>/bench/timing-hook.js" BERTH_BENCH_TIMINGS=<file> node <dist>/src/cli.js …
// It wraps a few prototypes (no Berth file changes, no log-level change) and appends one JSON line per event:
//   {k:"rpc"}        a delivery on Berth's RPC server (t = when amqplib handed it over), with method and instance uuid
//   {k:"conductor"}  one conductor round trip (object_action / object_class_action_versions), s → e
//   {k:"docker"}     one Engine API request (docker-modem dial), s → e
//   {k:"notify"}     one notification publish (broker confirm), {k:"cast"} one RPC cast, {k:"http"} one HTTP request
//   {k:"driver"}     one driver method (spawn, getInfo, destroy), s → e
// Each event carries `store`: the delivery whose handling caused it (AsyncLocalStorage), null for background work.
// A wrapped method that no longer exists fails Berth's start loudly, so the hook cannot silently measure nothing.
import { AsyncLocalStorage } from 'node:async_hooks';
import { appendFileSync } from 'node:fs';
import { dirname } from 'node:path';

import { ConductorClient } from '../src/conductor/conductor-client';
import { HttpClient } from '../src/identity/http-client';
import { Notifier } from '../src/messaging/notifier';
import { RpcClient } from '../src/messaging/rpc-client';
import { RpcServer } from '../src/messaging/rpc-server';
import { DockerDriver } from '../driver/docker/docker-driver';

export type TimingKind = 'rpc' | 'conductor' | 'docker' | 'notify' | 'cast' | 'http' | 'driver';

/** One line of the timings file (times are epoch milliseconds with sub-millisecond precision). */
export interface TimingEvent {
  readonly k: TimingKind;
  readonly store: number | null;
  /** rpc: delivery time */
  readonly t?: number;
  readonly s?: number;
  readonly e?: number;
  readonly name?: string;
  readonly ok?: boolean;
  readonly request_id?: string | null;
  readonly uuid?: string | null;
  /** conductor Instance.save: the instance's vm_state after the save */
  readonly vm_state?: string | null;
}

interface Store {
  readonly id: number;
  readonly t: number;
}

type AnyFunction = (this: unknown, ...args: unknown[]) => unknown;

const now = (): number => performance.timeOrigin + performance.now();

function method(proto: object, name: string): AnyFunction {
  const fn = (proto as Record<string, unknown>)[name];
  if (typeof fn !== 'function') throw new Error(`bench timing hook: ${proto.constructor.name}.${name} no longer exists`);
  return fn as AnyFunction;
}

function replace(proto: object, name: string, make: (original: AnyFunction) => AnyFunction): void {
  (proto as Record<string, unknown>)[name] = make(method(proto, name));
}

/** The uuid of the `instance` argument of an RPC message (a nova_object primitive), if any. */
function instanceUuid(args: unknown): string | null {
  const instance = (args as { instance?: { 'nova_object.data'?: { uuid?: unknown } } } | undefined)?.instance;
  const uuid = instance?.['nova_object.data']?.uuid;
  return typeof uuid === 'string' ? uuid : null;
}

function install(file: string): void {
  const als = new AsyncLocalStorage<Store>();
  let nextStore = 0;
  const buffer: string[] = [];
  const record = (event: TimingEvent): void => {
    buffer.push(JSON.stringify(event));
  };
  const flush = (): void => {
    if (buffer.length > 0) appendFileSync(file, `${buffer.splice(0).join('\n')}\n`);
  };
  setInterval(flush, 200).unref();
  process.on('exit', flush);

  /** Wraps an async method: one event from call to settlement, attributed to the delivery being handled. */
  const timeAsync = (proto: object, name: string, kind: TimingKind, describe: (args: unknown[], self: unknown) => Partial<TimingEvent>): void => {
    replace(proto, name, (original) =>
      function (this: unknown, ...args: unknown[]): unknown {
        const store = als.getStore()?.id ?? null;
        const s = now();
        const result = original.apply(this, args) as Promise<unknown>;
        const done = (ok: boolean): void => record({ k: kind, store, s, e: now(), ok, ...describe(args, this) });
        result.then(
          () => done(true),
          () => done(false),
        );
        return result;
      },
    );
  };

  replace(RpcServer.prototype, 'onDelivery', (original) =>
    function (this: unknown, ...args: unknown[]): unknown {
      return als.run({ id: ++nextStore, t: now() }, () => original.apply(this, args));
    },
  );
  replace(RpcServer.prototype, 'handleRequest', (original) =>
    function (this: unknown, ...args: unknown[]): unknown {
      const store = als.getStore();
      const [request, info] = args as [{ fields: { args?: unknown } }, { method: string | null; requestId: string | null }];
      if (store) {
        record({ k: 'rpc', store: store.id, t: store.t, name: info.method ?? '?', request_id: info.requestId, uuid: instanceUuid(request.fields.args) });
      }
      return original.apply(this, args);
    },
  );

  const requestId = (args: unknown[]): string | null => (args[0] as { request_id?: string } | undefined)?.request_id ?? null;
  timeAsync(ConductorClient.prototype, 'objectAction', 'conductor', (args) => {
    const obj = args[1] as { name: string; get(field: string): unknown; has(field: string): boolean };
    const vmState = obj.name === 'Instance' && obj.has('vm_state') ? (obj.get('vm_state') as string | null) : undefined;
    return { name: `${obj.name}.${String(args[2])}`, request_id: requestId(args), ...(vmState === undefined ? {} : { vm_state: vmState }) };
  });
  timeAsync(ConductorClient.prototype, 'objectClassAction', 'conductor', (args) => ({ name: `${String(args[1])}.${String(args[2])}`, request_id: requestId(args) }));
  timeAsync(Notifier.prototype, 'notify', 'notify', (args) => ({ name: String(args[1]), request_id: requestId(args) }));
  timeAsync(RpcClient.prototype, 'cast', 'cast', (args) => ({ name: String(args[2]), request_id: requestId(args) }));
  timeAsync(HttpClient.prototype, 'request', 'http', (args) => {
    const req = args[0] as { method?: string; url?: string; path?: string };
    return { name: `${req.method ?? 'GET'} ${req.url ?? req.path ?? ''}` };
  });
  for (const name of ['spawn', 'getInfo', 'destroy']) {
    timeAsync(DockerDriver.prototype, name, 'driver', (args) => ({ name, uuid: (args[0] as { uuid?: string }).uuid ?? null }));
  }

  // Every Engine API request goes through docker-modem's dial(options, callback).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Modem = require(require.resolve('docker-modem', { paths: [dirname(require.resolve('dockerode'))] })) as { prototype: object };
  replace(Modem.prototype, 'dial', (original) =>
    function (this: unknown, ...args: unknown[]): unknown {
      const [options, callback] = args as [{ method?: string; path?: string }, ((...cb: unknown[]) => unknown) | undefined];
      const store = als.getStore()?.id ?? null;
      const name = `${options.method ?? 'GET'} ${(options.path ?? '').split('?')[0] ?? ''}`;
      const s = now();
      const timed = (...cb: unknown[]): unknown => {
        record({ k: 'docker', store, s, e: now(), ok: !cb[0], name });
        return callback?.(...cb);
      };
      return original.call(this, options, timed);
    },
  );
}

const file = process.env['BERTH_BENCH_TIMINGS'];
if (file) install(file);
