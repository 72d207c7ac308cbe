import assert from 'node:assert/strict';
import { RemoteFailure, toRemoteFailure } from '../../../src/messaging/failure';
import { failureReplies } from './captures';

describe('messaging RemoteFailure', () => {
  it('deserialises every captured failure reply', () => {
    const failures = failureReplies().filter((r) => r.reply['failure'] !== null);
    assert.ok(failures.length >= 4);
    for (const record of failures) {
      const raw = JSON.parse(String(record.reply['failure'])) as Record<string, unknown>;
      const failure = RemoteFailure.deserialize(record.reply['failure']);
      assert.equal(failure.className, raw['class']);
      assert.equal(failure.module, raw['module']);
      assert.equal(failure.message, raw['message']);
      assert.deepEqual(failure.args, raw['args']);
      assert.deepEqual(failure.kwargs, raw['kwargs']);
      assert.deepEqual(failure.tb, raw['tb']);
      assert.deepEqual(JSON.parse(failure.serialize()), raw, 'serialises back to the same failure');
    }
  });

  it('reads the conductor InstanceNotFound as Nova code expects', () => {
    const record = failureReplies().find((r) => r.label.includes('InstanceNotFound'));
    assert.ok(record);
    const failure = RemoteFailure.deserialize(record.reply['failure']);
    assert.ok(failure.is('InstanceNotFound'));
    assert.equal(failure.kwargs['code'], 404);
  });

  it('never throws on garbage and strips _Remote', () => {
    assert.equal(RemoteFailure.deserialize('not json').className, 'RemoteError');
    assert.equal(RemoteFailure.deserialize(42).className, 'RemoteError');
    assert.equal(RemoteFailure.deserialize({ class: 'InstanceNotFound_Remote', module: 'nova.exception' }).className, 'InstanceNotFound');
  });

  it('wraps what a handler throws', () => {
    const own = new RemoteFailure('InstanceNotFound', 'nova.exception', 'gone');
    assert.equal(toRemoteFailure(own), own);
    const wrapped = toRemoteFailure(new TypeError('bad'));
    assert.equal(wrapped.className, 'TypeError');
    assert.equal(wrapped.message, 'bad');
    assert.equal(toRemoteFailure('text').message, 'text');
    assert.equal(toRemoteFailure(null).className, 'Error');
  });
});
