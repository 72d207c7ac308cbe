import assert from 'node:assert/strict';
import { imagePatch } from '../../../src/image/image-patch';

describe('image/image-patch', () => {
  it('replace for keys the image has, add for new ones, remove only what exists (glanceclient update)', () => {
    const current = { id: 'i', disk_format: null, container_format: null, image_state: 'creating', old: 'x' };
    assert.deepEqual(
      imagePatch(current, {
        set: { disk_format: 'raw', container_format: 'docker', image_location: 'snapshot', image_state: 'available' },
        remove: ['old', 'never_there'],
      }),
      [
        { op: 'replace', path: '/disk_format', value: 'raw' },
        { op: 'replace', path: '/container_format', value: 'docker' },
        { op: 'add', path: '/image_location', value: 'snapshot' },
        { op: 'replace', path: '/image_state', value: 'available' },
        { op: 'remove', path: '/old' },
      ],
    );
  });

  it('escapes JSON pointer characters', () => {
    assert.deepEqual(imagePatch({}, { set: { 'a/b~c': '1' } }), [{ op: 'add', path: '/a~1b~0c', value: '1' }]);
  });

  it('no changes, no ops', () => {
    assert.deepEqual(imagePatch({ a: 1 }, {}), []);
  });
});
