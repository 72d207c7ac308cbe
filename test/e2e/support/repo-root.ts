// The repository's root, found from wherever this file was compiled to (dist/, dist-e2e/, ...).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

let cached: string | undefined;

/** The nearest ancestor directory holding Berth's package.json. */
export function repoRoot(): string {
  if (cached !== undefined) return cached;
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'berth') {
      cached = dir;
      return dir;
    }
    if (dirname(dir) === dir) throw new Error(`no Berth package.json above ${__dirname}`);
  }
}
