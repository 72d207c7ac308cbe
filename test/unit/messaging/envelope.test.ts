import assert from 'node:assert/strict';
import { decodeBody, decodeEnvelope, encodeBare, encodeEnvelope, messageProperties } from '../../../src/messaging/envelope';
import { EnvelopeError } from '../../../src/messaging/errors';
import { failureReplies, publishes } from './captures';

// amqplib property names → the trace's (kombu) names.
function asTraceProperties(props: ReturnType<typeof messageProperties>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    priority: props.priority,
    delivery_mode: props.deliveryMode,
    headers: props.headers,
    content_encoding: props.contentEncoding,
    content_type: props.contentType,
  };
  if (props.expiration !== undefined) out['expiration'] = props.expiration;
  return out;
}

describe('messaging envelope', () => {
  it('decodes every published message of the lifecycle capture to its oslo message', () => {
    const records = publishes();
    assert.ok(records.length > 300);
    for (const record of records) {
      assert.deepEqual(decodeBody(Buffer.from(record.body, 'utf8')), record.oslo_message);
    }
  });

  it('re-encodes every captured request, reply and notification to the same structure and properties', () => {
    for (const record of publishes()) {
      const body = encodeEnvelope(record.oslo_message);
      const outer = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      const capturedOuter = JSON.parse(record.body) as Record<string, unknown>;
      assert.deepEqual(Object.keys(outer), Object.keys(capturedOuter));
      assert.equal(outer['oslo.version'], '2.0');
      assert.equal(typeof outer['oslo.message'], 'string');
      const inner = JSON.parse(String(outer['oslo.message'])) as Record<string, unknown>;
      assert.deepEqual(inner, record.oslo_message);
      assert.deepEqual(Object.keys(inner), Object.keys(record.oslo_message), 'key order kept');
      const expiration = record.properties['expiration'];
      assert.deepEqual(asTraceProperties(messageProperties(expiration === undefined ? undefined : Number(expiration))), record.properties);
    }
  });

  it('round-trips the captured failure requests and replies', () => {
    for (const record of failureReplies()) {
      for (const message of [record.request, record.reply]) {
        assert.deepEqual(decodeBody(encodeEnvelope(message)), message);
      }
    }
  });

  it('accepts a bare 1.0 dict and envelope versions 2.0.x', () => {
    assert.deepEqual(decodeEnvelope({ method: 'ping', args: {} }), { method: 'ping', args: {} });
    assert.deepEqual(decodeBody(encodeBare({ event_type: 'x' })), { event_type: 'x' });
    assert.deepEqual(decodeEnvelope({ 'oslo.version': '2.0.0', 'oslo.message': '{"a": 1}' }), { a: 1 });
    // Only one of the two keys: not an envelope, a bare message.
    assert.deepEqual(decodeEnvelope({ 'oslo.message': 'x' }), { 'oslo.message': 'x' });
  });

  const bad: [string, unknown, string, string][] = [
    ['a JSON list', [1, 2], 'TypeError', 'builtins'],
    ['a JSON string', 'hello', 'TypeError', 'builtins'],
    ['null', null, 'TypeError', 'builtins'],
    ['envelope 3.0', { 'oslo.version': '3.0', 'oslo.message': '{}' }, 'UnsupportedRpcEnvelopeVersion', 'oslo_messaging._drivers.common'],
    ['envelope 2.1', { 'oslo.version': '2.1', 'oslo.message': '{}' }, 'UnsupportedRpcEnvelopeVersion', 'oslo_messaging._drivers.common'],
    ['a numeric version', { 'oslo.version': 2, 'oslo.message': '{}' }, 'AttributeError', 'builtins'],
    ['an object as oslo.message', { 'oslo.version': '2.0', 'oslo.message': {} }, 'TypeError', 'builtins'],
    ['bad inner JSON', { 'oslo.version': '2.0', 'oslo.message': '{"a":' }, 'JSONDecodeError', 'json.decoder'],
    ['an inner list', { 'oslo.version': '2.0', 'oslo.message': '[1]' }, 'TypeError', 'builtins'],
  ];
  for (const [what, body, cls, module] of bad) {
    it(`rejects ${what} with the error Python raises (${cls})`, () => {
      assert.throws(
        () => decodeEnvelope(body),
        (err: unknown) => err instanceof EnvelopeError && err.pythonClass === cls && err.pythonModule === module,
      );
    });
  }

  it('rejects a body that is not JSON', () => {
    assert.throws(() => decodeBody(Buffer.from([0xff, 0x00, 0x7b])), (err: unknown) => err instanceof EnvelopeError && err.pythonClass === 'JSONDecodeError');
  });

  it('sets expiration only for CALLs, in milliseconds', () => {
    assert.equal(messageProperties().expiration, undefined);
    assert.equal(messageProperties(60_000).expiration, '60000');
    assert.equal(messageProperties(1500.4).expiration, '1500');
  });
});
