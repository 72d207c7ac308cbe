import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ImageUnacceptable } from '../../../src/image/glance-errors';
import { createHasher, expectedFromContentMd5, expectedFromImage } from '../../../src/image/image-hash';

describe('image/image-hash', () => {
  it('prefers os_hash_value (with os_hash_algo), then checksum, in glanceclient order', () => {
    assert.deepEqual(expectedFromImage({ id: 'i', os_hash_algo: 'sha512', os_hash_value: 'ABC', checksum: 'def' }), {
      source: 'os_hash_value',
      algorithm: 'sha512',
      hex: 'abc',
    });
    assert.deepEqual(expectedFromImage({ id: 'i', os_hash_value: null, checksum: 'DEF' }), {
      source: 'checksum',
      algorithm: 'md5',
      hex: 'def',
    });
    assert.equal(expectedFromImage({ id: 'i', checksum: '', os_hash_value: '' }), null);
    assert.equal(expectedFromImage({ id: 'i' }), null);
  });

  it('defaults a missing os_hash_algo to sha512 (Glance default)', () => {
    assert.equal(expectedFromImage({ id: 'i', os_hash_value: 'aa' })?.algorithm, 'sha512');
  });

  it('maps hashlib names to OpenSSL ones and computes the same digests', () => {
    const data = Buffer.from('berth');
    for (const [python, node] of [
      ['sha256', 'sha256'],
      ['sha3_256', 'sha3-256'],
      ['blake2b', 'blake2b512'],
    ] as const) {
      const expected = expectedFromImage({ id: 'i', os_hash_algo: python, os_hash_value: 'x' });
      assert.ok(expected !== null);
      const hasher = createHasher(expected);
      hasher.update(data);
      assert.equal(hasher.digest('hex'), crypto.createHash(node).update(data).digest('hex'));
    }
  });

  it('an algorithm we cannot compute is ImageUnacceptable (glanceclient raises too; no silent md5 fallback)', () => {
    assert.throws(
      () => expectedFromImage({ id: 'img-1', os_hash_algo: 'whirlpool9', os_hash_value: 'aa', checksum: 'bb' }),
      (e: unknown) => e instanceof ImageUnacceptable && e.imageId === 'img-1' && /whirlpool9/.test(e.message),
    );
  });

  it('Content-MD5 as Glance sends it (hex) or as RFC 1864 says (base64); anything else is ignored', () => {
    const md5 = crypto.createHash('md5').update('x').digest();
    assert.deepEqual(expectedFromContentMd5(md5.toString('hex').toUpperCase()), {
      source: 'content-md5',
      algorithm: 'md5',
      hex: md5.toString('hex'),
    });
    assert.equal(expectedFromContentMd5(md5.toString('base64'))?.hex, md5.toString('hex'));
    assert.equal(expectedFromContentMd5('garbage'), null);
    assert.equal(expectedFromContentMd5(undefined), null);
  });
});
