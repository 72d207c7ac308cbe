import assert from 'node:assert/strict';
import { TopologyMismatchError } from '../../../src/messaging/errors';
import {
  controlExchange,
  fanoutExchange,
  fanoutQueue,
  notificationQueue,
  queueArguments,
  replyQueue,
  resolveQueueFlags,
  topicQueue,
  topologyError,
} from '../../../src/messaging/topology';

describe('messaging topology specs', () => {
  const defaults = resolveQueueFlags();

  it('declares the default (Nova Zed) topology of nova-compute-protocol.md §1.2', () => {
    assert.deepEqual(controlExchange('nova', defaults), { name: 'nova', type: 'topic', durable: false, autoDelete: false });
    assert.deepEqual(topicQueue('compute.h', defaults), { name: 'compute.h', durable: false, autoDelete: false, arguments: {} });
    assert.deepEqual(fanoutExchange('compute'), { name: 'compute_fanout', type: 'fanout', durable: false, autoDelete: true });
    assert.deepEqual(fanoutQueue('compute_fanout_x', defaults).arguments, { 'x-expires': { '!': 'int', value: 1800000 } });
    assert.deepEqual(replyQueue('reply_x', defaults), {
      name: 'reply_x',
      durable: false,
      autoDelete: false,
      arguments: { 'x-expires': { '!': 'int', value: 1800000 } },
    });
    const nova = controlExchange('nova', defaults);
    assert.deepEqual(notificationQueue('notifications.info', nova, defaults), { name: 'notifications.info', durable: false, autoDelete: false, arguments: {} });
  });

  it('follows the [oslo_messaging_rabbit] flags', () => {
    const durable = resolveQueueFlags({ durable: true, autoDelete: true });
    assert.deepEqual(controlExchange('nova', durable), { name: 'nova', type: 'topic', durable: true, autoDelete: true });
    assert.equal(topicQueue('compute', durable).durable, true);
    assert.equal(fanoutQueue('f', durable).durable, false, 'fanout queues never become durable');
    assert.equal(replyQueue('r', durable).durable, false);
    const ha = resolveQueueFlags({ haQueues: true });
    assert.deepEqual(queueArguments(ha, 'topic'), { 'x-ha-policy': 'all' });
    assert.deepEqual(queueArguments(ha, 'transient'), { 'x-ha-policy': 'all', 'x-expires': { '!': 'int', value: 1800000 } });
    const quorum = resolveQueueFlags({ quorumQueues: true, quorumDeliveryLimit: 3, quorumMaxMemoryBytes: 5_000_000_000 });
    assert.equal(controlExchange('nova', quorum).durable, true, 'quorum queues make the topic entities durable');
    assert.deepEqual(queueArguments(quorum, 'topic'), {
      'x-queue-type': 'quorum',
      'x-delivery-limit': { '!': 'int', value: 3 },
      'x-max-in-memory-bytes': { '!': 'long', value: 5_000_000_000 },
    });
    assert.deepEqual(queueArguments(quorum, 'transient'), { 'x-expires': { '!': 'int', value: 1800000 } });
    assert.deepEqual(queueArguments(resolveQueueFlags({ transientQueuesTtlSec: 60 }), 'transient'), { 'x-expires': { '!': 'int', value: 60000 } });
  });

  it('rejects flag combinations oslo rejects', () => {
    assert.throws(() => resolveQueueFlags({ haQueues: true, quorumQueues: true }), /quorum or HA/);
    assert.throws(() => resolveQueueFlags({ transientQueuesTtlSec: 0 }), RangeError);
  });

  it("turns RabbitMQ's 406 into an error naming the entity, the argument and the option", () => {
    const amqplibError = Object.assign(
      new Error(
        `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg 'x-expires' for queue 'reply_1' in vhost '/': received the value '60000' of type 'signedint' but current is the value '1800000' of type 'signedint'"`,
      ),
      { code: 406 },
    );
    const err = topologyError(amqplibError, 'queue', 'reply_1', 'durable=false');
    assert.ok(err instanceof TopologyMismatchError);
    assert.equal(err.argument, 'x-expires');
    assert.equal(err.option, 'rabbit_transient_queues_ttl');
    assert.match(err.message, /^queue 'reply_1' already exists with different flags: PRECONDITION_FAILED - inequivalent arg 'x-expires'/);
    assert.match(err.message, /we declared durable=false\. Make \[oslo_messaging_rabbit\] rabbit_transient_queues_ttl match/);
    const other = new Error('Channel closed by server: 404');
    assert.equal(topologyError(other, 'queue', 'q', ''), other);
    const typeMismatch = topologyError(
      Object.assign(new Error(`... with message "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'nova' in vhost '/': received 'fanout' but current is 'topic'"`), { code: 406 }),
      'exchange',
      'nova',
      'type=fanout',
    );
    assert.ok(typeMismatch instanceof TopologyMismatchError);
    assert.equal(typeMismatch.option, null);
    assert.doesNotMatch(typeMismatch.message, /oslo_messaging_rabbit/);
  });
});
