// Shared set-up of the notification tests: a notifier on a recording session, with the lab's host, topics and
// Glance endpoint, and a lazy-loader that records what it was asked for.
import { strict as assert } from 'node:assert';
import type { Logger } from '../../../src/log';
import { silentLogger } from '../../../src/log';
import type { Instance, NovaObject } from '../../../src/objects';
import {
  createInstanceNotifier,
  type InstanceLazyField,
  type InstanceNotifier,
  type InstanceNotifierOptions,
} from '../../../src/notifications';
import { RecordingSession } from './recording-session';

export const LAB_GLANCE = 'http://127.0.0.1:9292';

/** The default instance_name_template, `instance-%08x`. */
export function labInstanceName(instance: Instance): string {
  return `instance-${Number(instance.get('id')).toString(16).padStart(8, '0')}`;
}

export interface Harness {
  readonly notifier: InstanceNotifier;
  readonly session: RecordingSession;
  /** Every loadFields call's field list. */
  readonly loads: InstanceLazyField[][];
}

export function harness(
  options: Partial<InstanceNotifierOptions> & {
    session?: RecordingSession;
    /** What the fake conductor answers to a lazy-load, per field. */
    lazy?: ReadonlyMap<string, NovaObject | unknown>;
    logger?: Logger;
  } = {},
): Harness {
  const { session = new RecordingSession(), lazy = new Map(), logger = silentLogger(), ...overrides } = options;
  const loads: InstanceLazyField[][] = [];
  const notifier = createInstanceNotifier({
    host: 'fake-1',
    notificationFormat: 'both',
    transport: { session: session.asSession(), driver: 'messagingv2' },
    legacyTopics: ['notifications'],
    versionedTopics: ['versioned_notifications'],
    imageApiServer: () => LAB_GLANCE,
    instanceName: labInstanceName,
    loadFields: async (_context, instance, fields) => {
      loads.push([...fields]);
      for (const field of fields) {
        if (!lazy.has(field)) continue;
        (instance as NovaObject).set(field, lazy.get(field));
        instance.resetChanges([field]);
      }
    },
    logger,
    ...overrides,
  });
  return { notifier, session, loads };
}

/** Asserts equal values and the same key order, recursively. */
export function assertSameShape(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === 'object' && expected !== null && !Array.isArray(expected)) {
    assert.ok(typeof actual === 'object' && actual !== null, `${path} is not an object`);
    assert.deepEqual(Object.keys(actual as object), Object.keys(expected), `${path}: keys differ`);
    for (const [key, value] of Object.entries(expected)) {
      assertSameShape((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
    }
    return;
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path} is not a list`);
    assert.equal(actual.length, expected.length, `${path}: length`);
    expected.forEach((v, i) => assertSameShape(actual[i], v, `${path}[${i}]`));
    return;
  }
  assert.deepEqual(actual, expected, path);
}
