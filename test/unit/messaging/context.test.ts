import assert from 'node:assert/strict';
import { adminContext, newRequestId, notificationContext, packContext, unpackContext } from '../../../src/messaging/context';
import { publishes } from './captures';

const contextKeys = (message: Record<string, unknown>): string[] => Object.keys(message).filter((k) => k.startsWith('_context_'));

describe('messaging context', () => {
  it('unpacks and re-packs the context of every captured RPC request unchanged', () => {
    const requests = publishes().filter((r) => typeof r.oslo_message['method'] === 'string');
    assert.ok(requests.length > 100);
    for (const { oslo_message: message } of requests) {
      const { context, msgId, replyQ, clientTimeout, rest } = unpackContext(message);
      const packed = packContext(context);
      assert.deepEqual(Object.keys(packed), contextKeys(message));
      for (const key of contextKeys(message)) assert.deepEqual(packed[key], message[key]);
      assert.equal(msgId, message['_msg_id']);
      assert.equal(replyQ, message['_reply_q']);
      assert.equal(clientTimeout, message['_timeout']);
      assert.equal(rest['method'], message['method']);
      assert.ok(!Object.keys(rest).some((k) => k.startsWith('_context_') || k === '_msg_id' || k === '_reply_q' || k === '_timeout'));
    }
  });

  it('gives a context without a request id a fresh one', () => {
    assert.match(unpackContext({ method: 'x' }).context.request_id, /^req-[0-9a-f-]{36}$/);
    assert.match(unpackContext({ _context_request_id: 42 }).context.request_id, /^req-/);
    assert.match(newRequestId(), /^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("builds an admin context exactly like Nova's in the captured ping", () => {
    const ping = publishes().find((r) => r.oslo_message['method'] === 'ping');
    assert.ok(ping);
    const captured = ping.oslo_message;
    const ours = packContext(adminContext());
    assert.deepEqual(Object.keys(ours), contextKeys(captured));
    for (const key of contextKeys(captured)) {
      if (key === '_context_request_id' || key === '_context_timestamp') continue;
      assert.deepEqual(ours[key], captured[key], key);
    }
    assert.match(String(ours['_context_request_id']), /^req-[0-9a-f-]{36}$/);
    assert.match(String(ours['_context_timestamp']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    assert.notEqual(adminContext().request_id, adminContext().request_id);
  });

  it('sanitises a request context for notifications the way the captured compute did', () => {
    // The build request (with the user's token) and the notification nova-compute sent while handling it.
    const build = publishes().find((r) => r.oslo_message['method'] === 'build_and_run_instance');
    const notification = publishes().find((r) => r.oslo_message['event_type'] === 'compute.instance.create.start');
    assert.ok(build && notification);
    const { context } = unpackContext(build.oslo_message);
    assert.ok(typeof context.auth_token === 'string' && context.auth_token.length > 10);
    const ours = packContext(notificationContext(context));
    const theirs = notification.oslo_message;
    assert.deepEqual(Object.keys(ours), contextKeys(theirs));
    for (const key of contextKeys(theirs)) {
      if (key === '_context_timestamp') continue;
      assert.deepEqual(ours[key], theirs[key], key);
    }
    assert.notEqual(ours['_context_timestamp'], build.oslo_message['_context_timestamp'], 'a fresh timestamp');
  });

  it('keeps unknown context keys and drops undefined ones when packing', () => {
    const packed = packContext({ request_id: 'req-1', custom: { a: 1 }, gone: undefined });
    assert.deepEqual(packed, { _context_request_id: 'req-1', _context_custom: { a: 1 } });
  });
});
