// The notifier's behaviour around the payloads: which streams notification_format and the driver list switch on,
// when it lazy-loads, how faults look when they come from Berth itself, and that nothing ever throws at the caller
// while every failure is logged with the event type and the instance uuid.
import { strict as assert } from 'node:assert';
import { createLogger, type Logger } from '../../../src/log';
import { RemoteFailure } from '../../../src/messaging';
import type { InstanceNotifierOptions, NotificationFormat } from '../../../src/notifications';
import type { Instance, NovaObject } from '../../../src/objects';
import { notificationPoints } from './capture-replay';
import { RecordingSession } from './recording-session';
import { harness, LAB_GLANCE } from './support';

const CONTEXT = { request_id: 'req-5f0c', user_id: 'u1', project_id: 'p1', roles: ['member'] };
const IMAGE_REF = '1271781e-5153-43b9-a96c-9851e9bec3c0';

/** The instance of create.end in the capture: every field a payload reads is set. */
function fullInstance(): Instance {
  const point = notificationPoints().find((p) => p.legacy['event_type'] === 'compute.instance.create.end');
  assert.ok(point);
  return point.instance.clone();
}

/** The same instance as stop_instance receives it: without flavor and info_cache. */
function bareInstance(): Instance {
  const instance = fullInstance();
  instance.unset('flavor');
  instance.unset('info_cache');
  return instance;
}

function recordingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } });
  return { logger, lines };
}

function payloadOf(message: Record<string, unknown>): Record<string, unknown> {
  return message['payload'] as Record<string, unknown>;
}

function versionedData(message: Record<string, unknown>): Record<string, unknown> {
  return payloadOf(message)['nova_object.data'] as Record<string, unknown>;
}

describe('notifications: streams by notification_format and driver', () => {
  const routes = async (options: Partial<InstanceNotifierOptions>): Promise<string[]> => {
    const h = harness(options);
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'pause', 'start');
    await h.notifier.exception(CONTEXT, 'pause_instance', new RemoteFailure('ValueError', 'builtins', 'x'), {});
    return h.session.published.map((p) => `${p.routingKey} ${String(p.message['event_type'])}`);
  };

  const cases: Array<[NotificationFormat, string[]]> = [
    ['unversioned', ['notifications.info compute.instance.pause.start', 'notifications.error pause_instance']],
    ['versioned', ['versioned_notifications.info instance.pause.start', 'versioned_notifications.error compute.exception']],
    [
      'both',
      [
        'notifications.info compute.instance.pause.start',
        'versioned_notifications.info instance.pause.start',
        'notifications.error pause_instance',
        'versioned_notifications.error compute.exception',
      ],
    ],
  ];
  for (const [format, expected] of cases) {
    it(`${format}: ${expected.length} notifications`, async () => {
      assert.deepEqual(await routes({ notificationFormat: format }), expected);
    });
  }

  for (const driver of [[], ['noop'], '']) {
    it(`driver ${JSON.stringify(driver)}: nothing sent, nothing loaded`, async () => {
      const session = new RecordingSession();
      const h = harness({ session, transport: { session: session.asSession(), driver } });
      await h.notifier.instanceAction(CONTEXT, bareInstance(), 'power_off', 'start');
      await h.notifier.exception(CONTEXT, 'stop_instance', new RemoteFailure('ValueError', 'builtins', 'x'), {});
      assert.deepEqual(session.requests, []);
      assert.deepEqual(h.loads, []);
    });
  }

  it('topics and host come from the options', async () => {
    const session = new RecordingSession();
    const h = harness({
      session,
      host: 'berth-7',
      transport: { session: session.asSession(), driver: ['messagingv2'], exchange: 'openstack' },
      legacyTopics: ['notifications', 'audit'],
      versionedTopics: ['vn'],
    });
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'resume', 'end');
    assert.deepEqual(
      session.published.map((p) => [p.exchange, p.routingKey, p.message['publisher_id']]),
      [
        ['openstack', 'notifications.info', 'compute.berth-7'],
        ['openstack', 'audit.info', 'compute.berth-7'],
        ['openstack', 'vn.info', 'nova-compute:berth-7'],
      ],
    );
  });

  it('the log driver logs both notifications and needs no session', async () => {
    const { logger, lines } = recordingLogger();
    const h = harness({ logger, transport: { session: null, driver: 'log' } });
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'unpause', 'end');
    const logged = lines.filter((l) => l['notification'] !== undefined).map((l) => (l['notification'] as Record<string, unknown>)['event_type']);
    assert.deepEqual(logged, ['compute.instance.unpause.end', 'instance.unpause.end']);
  });

  it('a bad driver name is refused when the notifier is built (start-up), not at send time', () => {
    assert.throws(() => harness({ transport: { session: null, driver: 'kafka' } }), RangeError);
  });
});

describe('notifications: lazy-loading missing instance fields', () => {
  const flavor = (): NovaObject => fullInstance().get('flavor') as NovaObject;
  const infoCache = (): NovaObject => fullInstance().get('info_cache') as NovaObject;

  it('legacy only: loads the flavor, not the info cache (power_off has no fixed_ips)', async () => {
    const h = harness({ notificationFormat: 'unversioned', lazy: new Map([['flavor', flavor()]]) });
    await h.notifier.instanceAction(CONTEXT, bareInstance(), 'power_off', 'start');
    assert.deepEqual(h.loads, [['flavor']]);
    assert.equal(payloadOf(h.session.published[0]?.message ?? {})['instance_type'], 'm1.tiny');
  });

  it('versioned: loads flavor and info cache in one call', async () => {
    const h = harness({ notificationFormat: 'versioned', lazy: new Map<string, unknown>([['flavor', flavor()], ['info_cache', infoCache()]]) });
    await h.notifier.instanceAction(CONTEXT, bareInstance(), 'power_off', 'start');
    assert.deepEqual(h.loads, [['flavor', 'info_cache']]);
  });

  it('create: also loads keypairs, tags and trusted_certs when the instance lacks them', async () => {
    const instance = fullInstance();
    for (const field of ['keypairs', 'tags', 'trusted_certs'] as const) instance.unset(field);
    const h = harness();
    await h.notifier.instanceAction(CONTEXT, instance, 'create', 'end');
    assert.deepEqual(h.loads, [['keypairs', 'tags', 'trusted_certs']]);
    const data = versionedData(h.session.published[1]?.message ?? {});
    assert.deepEqual([data['keypairs'], data['tags'], data['trusted_image_certificates']], [[], [], null]);
  });

  it('nothing is loaded when the instance has every field', async () => {
    const h = harness();
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'create', 'end');
    assert.deepEqual(h.loads, []);
    assert.equal(h.session.published.length, 2);
  });

  it('a failing load is logged; without a flavor nothing is sent, and the call still resolves', async () => {
    const { logger, lines } = recordingLogger();
    const h = harness({
      logger,
      loadFields: async () => {
        throw new RemoteFailure('MessagingTimeout', 'oslo_messaging.exceptions', 'Timed out waiting for a reply');
      },
    });
    const instance = bareInstance();
    await h.notifier.instanceAction(CONTEXT, instance, 'power_off', 'start');
    assert.deepEqual(h.session.requests, []);
    const uuid = instance.get('uuid');
    assert.ok(lines.some((l) => l['level'] === 'warn' && l['instance_uuid'] === uuid && l['request_id'] === CONTEXT.request_id));
    assert.ok(lines.some((l) => l['level'] === 'error' && l['instance_uuid'] === uuid && l['event_type'] === 'instance.power_off.start'));
  });

  it('a missing info cache that cannot be loaded leaves ip_addresses empty', async () => {
    const instance = fullInstance();
    instance.unset('info_cache');
    const h = harness({ notificationFormat: 'versioned' });
    await h.notifier.instanceAction(CONTEXT, instance, 'pause', 'end');
    assert.deepEqual(h.loads, [['info_cache']]);
    assert.deepEqual(versionedData(h.session.published[0]?.message ?? {})['ip_addresses'], []);
  });
});

describe('notifications: errors never reach the caller', () => {
  it('a failed publish is logged with the event type and the instance uuid', async () => {
    const { logger, lines } = recordingLogger();
    const session = new RecordingSession({ fail: new Error('CHANNEL_ERROR - broker went away') });
    const h = harness({ session, logger });
    const instance = fullInstance();
    await h.notifier.instanceAction(CONTEXT, instance, 'suspend', 'start');
    assert.equal(session.requests.length, 2);
    const failures = lines.filter((l) => l['level'] === 'error');
    assert.deepEqual(
      failures.map((l) => [l['event_type'], l['instance_uuid']]),
      [
        ['compute.instance.suspend.start', instance.get('uuid')],
        ['instance.suspend.start', instance.get('uuid')],
      ],
    );
  });

  it('an exception notification that cannot be published is logged too', async () => {
    const { logger, lines } = recordingLogger();
    const session = new RecordingSession({ fail: new Error('no route') });
    const h = harness({ session, logger });
    await h.notifier.exception(CONTEXT, 'reboot_instance', new RemoteFailure('ValueError', 'builtins', 'x'), { instance: 'uuid-1' });
    assert.deepEqual(
      lines.filter((l) => l['level'] === 'error').map((l) => [l['event_type'], l['instance_uuid']]),
      [
        ['reboot_instance', 'uuid-1'],
        ['compute.exception', 'uuid-1'],
      ],
    );
  });

  it('a throwing instanceName callback, an unknown action or a garbage instance is logged, not thrown', async () => {
    const { logger, lines } = recordingLogger();
    const h = harness({
      logger,
      instanceName: () => {
        throw new Error('template needs the integer id');
      },
    });
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'create', 'start');
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'explode' as never, 'start');
    await h.notifier.instanceAction(CONTEXT, 'not an instance' as never, 'pause', 'start');
    assert.deepEqual(
      lines.filter((l) => l['level'] === 'error').map((l) => l['event_type']),
      ['instance.create.start', 'instance.explode.start', 'instance.pause.start'],
    );
    assert.deepEqual(h.session.published.map((p) => p.message['event_type']), ['compute.instance.create.start']);
  });
});

describe('notifications: payload details', () => {
  it('image_ref_url is the bare image ref without a Glance endpoint, as Nova falls back to', async () => {
    const h = harness({ imageApiServer: () => undefined });
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'pause', 'start');
    assert.equal(payloadOf(h.session.published[0]?.message ?? {})['image_ref_url'], IMAGE_REF);
  });

  it('image_ref_url: a failing endpoint lookup is logged and falls back; an async one is awaited', async () => {
    const { logger, lines } = recordingLogger();
    const failing = harness({
      logger,
      imageApiServer: async () => {
        throw new Error('EndpointNotFound');
      },
    });
    await failing.notifier.instanceAction(CONTEXT, fullInstance(), 'pause', 'start');
    assert.equal(payloadOf(failing.session.published[0]?.message ?? {})['image_ref_url'], IMAGE_REF);
    assert.ok(lines.some((l) => l['level'] === 'warn'));
    const async = harness({ imageApiServer: async () => `${LAB_GLANCE}/glance` });
    await async.notifier.instanceAction(CONTEXT, fullInstance(), 'pause', 'start');
    assert.equal(payloadOf(async.session.published[0]?.message ?? {})['image_ref_url'], `${LAB_GLANCE}/glance/images/${IMAGE_REF}`);
  });

  it('snapshot without the image id: the legacy notification goes, the versioned one is refused and logged', async () => {
    const { logger, lines } = recordingLogger();
    const h = harness({ logger });
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'snapshot', 'start');
    assert.deepEqual(h.session.published.map((p) => p.message['event_type']), ['compute.instance.snapshot.start']);
    assert.ok(lines.some((l) => l['level'] === 'error' && l['event_type'] === 'instance.snapshot.start'));
  });

  it('an error phase Nova never sends in the legacy stream is sent with Nova\'s warning', async () => {
    const { logger, lines } = recordingLogger();
    const h = harness({ logger });
    const fault = new RemoteFailure('InstanceNotRunning', 'nova.exception', 'Instance x is not running.', { kwargs: { code: 400 } });
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'power_off', 'error', { fault });
    const [legacy, versioned] = h.session.published;
    assert.equal(legacy?.routingKey, 'notifications.error');
    assert.equal(versioned?.routingKey, 'versioned_notifications.error');
    assert.ok(lines.some((l) => l['level'] === 'warn' && l['event_type'] === 'compute.instance.power_off.error'));
  });

  it('a fault raised in Berth: JavaScript frames in Python\'s traceback layout, module and function of the origin', async () => {
    const cause = new Error('connect ECONNREFUSED /var/run/docker.sock');
    const fault = new RemoteFailure('HypervisorUnavailable', 'nova.exception', 'Connection to the hypervisor is broken on host', {
      kwargs: { code: 500 },
      cause,
    });
    const h = harness();
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'create', 'error', { fault });
    const [legacy, versioned] = h.session.published;
    const legacyPayload = payloadOf(legacy?.message ?? {});
    assert.equal(legacyPayload['message'], 'Connection to the hypervisor is broken on host');
    assert.equal(legacyPayload['code'], 500);
    assert.equal(
      legacyPayload['exception'],
      "{'kwargs': {'code': 500}, 'message': 'Connection to the hypervisor is broken on host', 'class': 'HypervisorUnavailable'}",
    );
    const faultPayload = versionedData(versioned?.message ?? {})['fault'] as Record<string, unknown>;
    assert.equal(faultPayload['nova_object.name'], 'ExceptionPayload');
    const data = faultPayload['nova_object.data'] as Record<string, string>;
    assert.equal(data['exception'], 'HypervisorUnavailable');
    assert.equal(data['module_name'], 'test.unit.notifications.instance-notifier.test');
    assert.equal(data['function_name'], 'Context.<anonymous>');
    const traceback = data['traceback'] ?? '';
    assert.match(traceback, /^Traceback \(most recent call last\):\n,  File "[^"]+", line \d+, in /);
    assert.ok(traceback.endsWith(',nova.exception.HypervisorUnavailable: Connection to the hypervisor is broken on host\n'));
  });

  it('a builtin fault without a traceback: its class name as the message, code 500, one traceback line', async () => {
    const fault = new RemoteFailure('NotImplementedError', 'builtins', 'Pause is not supported', { tb: [] });
    Object.defineProperty(fault, 'stack', { value: undefined });
    const h = harness();
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'reboot', 'error', { fault });
    const [legacy, versioned] = h.session.published;
    const legacyPayload = payloadOf(legacy?.message ?? {});
    assert.deepEqual([legacyPayload['exception'], legacyPayload['message'], legacyPayload['code']], [
      "NotImplementedError('Pause is not supported')",
      'NotImplementedError',
      500,
    ]);
    const data = (versionedData(versioned?.message ?? {})['fault'] as Record<string, unknown>)['nova_object.data'] as Record<string, unknown>;
    assert.deepEqual(data, {
      module_name: 'unknown',
      function_name: 'unknown',
      exception: 'NotImplementedError',
      exception_message: 'Pause is not supported',
      traceback: 'NotImplementedError: Pause is not supported\n',
    });
  });

  it('the legacy fault message is cut at 255 UTF-8 bytes, never inside a character', async () => {
    const message = 'é'.repeat(200);
    const fault = new RemoteFailure('NovaException', 'nova.exception', message, { kwargs: { code: 500 } });
    const h = harness({ notificationFormat: 'unversioned' });
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'create', 'error', { fault });
    assert.equal(payloadOf(h.session.published[0]?.message ?? {})['message'], 'é'.repeat(127));
  });

  it('create.start carries image_name None when the image has no name, create.end "Success"', async () => {
    const h = harness({ notificationFormat: 'unversioned' });
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'create', 'start');
    await h.notifier.instanceAction(CONTEXT, fullInstance(), 'create', 'end');
    const [start, end] = h.session.published.map((p) => payloadOf(p.message));
    assert.equal(start?.['image_name'], null);
    assert.equal(end?.['message'], 'Success');
    assert.deepEqual(end?.['fixed_ips'], []);
  });
});
