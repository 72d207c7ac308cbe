import assert from 'node:assert/strict';
import { encodeEnvelope } from '../../../src/messaging/envelope';
import { parseRpcDelivery, recoverReplyAddress } from '../../../src/messaging/incoming-message';
import { failureReplies, publishes } from './captures';

const LIMIT = 16 * 1024 * 1024;

describe('messaging incoming RPC message', () => {
  it('parses every captured request: context, reply address for CALLs only, oslo fields', () => {
    const requests = publishes().filter((r) => typeof r.oslo_message['method'] === 'string');
    for (const record of requests) {
      const parsed = parseRpcDelivery(Buffer.from(record.body), LIMIT);
      assert.equal(parsed.kind, 'request');
      if (parsed.kind !== 'request') continue;
      const m = record.oslo_message;
      assert.equal(parsed.request.context.request_id, m['_context_request_id']);
      if (m['_msg_id']) assert.deepEqual(parsed.request.replyTo, { msgId: m['_msg_id'], replyQ: m['_reply_q'] });
      else assert.equal(parsed.request.replyTo, null);
      assert.equal(parsed.request.unanswerable, false);
      assert.equal(parsed.request.uniqueId, m['_unique_id']);
      assert.deepEqual(parsed.request.fields, { method: m['method'], namespace: m['namespace'], version: m['version'], args: m['args'] });
    }
  });

  it('refuses an oversized body before parsing it, answering the caller when its address is visible', () => {
    const request = failureReplies()[0]?.request;
    assert.ok(request);
    const body = encodeEnvelope({ ...request, args: { filler: 'x'.repeat(2048) } });
    const parsed = parseRpcDelivery(body, 1024);
    assert.equal(parsed.kind, 'invalid');
    if (parsed.kind !== 'invalid') return;
    assert.equal(parsed.failure.className, 'MessageTooLarge');
    assert.match(parsed.failure.message, /exceeds the limit of 1024 bytes/);
    assert.deepEqual(parsed.replyTo, { msgId: request['_msg_id'], replyQ: request['_reply_q'] });
    assert.equal(parsed.requestId, request['_context_request_id']);
    assert.equal(parsed.uniqueId, request['_unique_id']);
  });

  it('recovers the reply address of a truncated envelope, and finds none in garbage', () => {
    const whole = encodeEnvelope({ method: 'x', args: { _msg_id: 'fake', _reply_q: 'fake_q' }, _msg_id: 'abc123', _reply_q: 'reply_1', _timeout: null });
    const truncated = whole.subarray(0, whole.length - 5);
    const parsed = parseRpcDelivery(truncated, LIMIT);
    assert.equal(parsed.kind, 'invalid');
    if (parsed.kind === 'invalid') {
      assert.equal(parsed.failure.className, 'JSONDecodeError');
      assert.equal(parsed.failure.module, 'json.decoder');
      assert.deepEqual(parsed.replyTo, { msgId: 'abc123', replyQ: 'reply_1' }, 'the real keys, after args, win');
    }
    assert.equal(recoverReplyAddress(Buffer.from([0, 1, 2, 3, 255])), null);
    assert.deepEqual(recoverReplyAddress(Buffer.from('{"_msg_id": "m1", "_reply_q": "q1"')), { msgId: 'm1', replyQ: 'q1' });
    assert.equal(recoverReplyAddress(Buffer.from('{"_msg_id": "m1"')), null, 'no reply queue, no address');
  });

  it('marks a CALL whose reply address is unusable', () => {
    const cases = [
      { method: 'x', _msg_id: 5, _reply_q: 'q' },
      { method: 'x', _msg_id: 'm', _reply_q: 'q'.repeat(256) },
      { method: 'x', _msg_id: 'm' },
      { method: 'x', _reply_q: 'q' },
      { method: 'x', _msg_id: '', _reply_q: 'q' },
    ];
    for (const message of cases) {
      const parsed = parseRpcDelivery(encodeEnvelope(message), LIMIT);
      assert.equal(parsed.kind, 'request');
      if (parsed.kind === 'request') {
        assert.equal(parsed.request.replyTo, null, JSON.stringify(message).slice(0, 60));
        assert.equal(parsed.request.unanswerable, true);
      }
    }
    const cast = parseRpcDelivery(encodeEnvelope({ method: 'x', _msg_id: null, _reply_q: null }), LIMIT);
    assert.ok(cast.kind === 'request' && !cast.request.unanswerable && cast.request.replyTo === null);
  });

  it('turns envelope errors into the failure Python would raise', () => {
    const parsed = parseRpcDelivery(Buffer.from(JSON.stringify({ 'oslo.version': '9.9', 'oslo.message': '{"_msg_id": "a", "_reply_q": "b"}' })), LIMIT);
    assert.ok(parsed.kind === 'invalid');
    assert.equal(parsed.failure.className, 'UnsupportedRpcEnvelopeVersion');
    assert.equal(parsed.failure.message, 'Specified RPC envelope version, 9.9, not supported by this endpoint.');
    assert.deepEqual(parsed.replyTo, { msgId: 'a', replyQ: 'b' });
  });
});
