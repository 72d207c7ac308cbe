import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classSpec, parseFieldType } from '../../../src/objects/field-types';
import { OBJECT_SCHEMAS } from '../../../src/objects/object-schema';
import { REPO_ROOT } from './capture-fixtures';

const PYTHON = '/usr/bin/python3';

describe('objects: the generated schema table', () => {
  it('parses every field type of every class', () => {
    let fields = 0;
    for (const name of Object.keys(OBJECT_SCHEMAS)) {
      const spec = classSpec(name);
      assert.ok(spec, name);
      fields += spec.fields.size;
    }
    assert.ok(fields > 700, `${fields} fields`);
    assert.deepEqual(parseFieldType('dict<string?>?'), {
      kind: 'dict',
      nullable: true,
      element: { kind: 'scalar', scalar: 'string', nullable: true },
    });
    assert.throws(() => parseFieldType('nonsense'), /unknown field type/);
  });

  it("is what the generator makes from the installed Nova (skipped without Debian's python3-nova)", function () {
    this.timeout(60_000);
    const script = join(REPO_ROOT, 'src/objects/tools/generate-schema.py');
    try {
      execFileSync(PYTHON, ['-c', 'import nova.objects'], { stdio: 'ignore' });
    } catch {
      this.skip();
    }
    const dir = mkdtempSync(join(tmpdir(), 'berth-schema-'));
    try {
      const out = join(dir, 'object-schema.ts');
      execFileSync(PYTHON, [script, out], { stdio: 'ignore' });
      assert.equal(readFileSync(out, 'utf8'), readFileSync(join(REPO_ROOT, 'src/objects/object-schema.ts'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
