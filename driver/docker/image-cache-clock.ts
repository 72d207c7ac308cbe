// When each cached Glance image was first seen unused by the image cache manager. Docker cannot relabel an image
// after `docker load`, and an image's own dates say when it was built, not when we stopped using it, so the clock is
// a small JSON file under the driver's state dir. It is written atomically (temporary file, fsync, rename): a crash
// leaves the old clock or the new one, never half of one, and a restart does not reset it.

import { open, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

import type { Logger } from 'pino';

const FILE = 'image-cache.json';
const FORMAT = 1;

interface ClockFile {
  readonly format: number;
  /** Glance image id → ISO time it was first seen unused. */
  readonly unused_since: Readonly<Record<string, string>>;
}

export class UnusedClock {
  private readonly path: string;
  private readonly since = new Map<string, number>();
  private dirty = false;

  constructor(private readonly stateDir: string, private readonly logger: Logger) {
    this.path = join(stateDir, FILE);
  }

  /**
   * Reads the clock a previous run left. A missing file is an empty clock; an unreadable or malformed one is logged
   * and replaced: every image then starts counting again, which delays a removal and never hastens one.
   */
  async load(): Promise<void> {
    this.since.clear();
    this.dirty = false;
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.logger.warn({ err: error, path: this.path }, 'cannot read the image cache clock; unused images start counting again');
      return;
    }
    try {
      const parsed = JSON.parse(text) as Partial<ClockFile>;
      const entries = parsed.unused_since;
      if (parsed.format !== FORMAT || typeof entries !== 'object' || entries === null || Array.isArray(entries)) {
        throw new Error(`not an image cache clock of format ${FORMAT}`);
      }
      for (const [imageId, iso] of Object.entries(entries)) {
        const at = typeof iso === 'string' ? Date.parse(iso) : Number.NaN;
        if (Number.isFinite(at)) this.since.set(imageId, at);
        else this.dirty = true;
      }
    } catch (error) {
      this.logger.warn({ err: error, path: this.path }, 'the image cache clock is malformed; unused images start counting again');
      this.since.clear();
      this.dirty = true;
    }
  }

  /** When the image was first seen unused, or null when it is not counting. */
  get(imageId: string): number | null {
    return this.since.get(imageId) ?? null;
  }

  /** Starts the image's clock at `at` unless it is already running; returns when it started. */
  start(imageId: string, at: number): number {
    const since = this.since.get(imageId);
    if (since !== undefined) return since;
    this.since.set(imageId, at);
    this.dirty = true;
    return at;
  }

  /** The image is used (or freshly loaded): its clock stops. */
  stop(imageId: string): void {
    if (this.since.delete(imageId)) this.dirty = true;
  }

  /** Forgets images that are no longer cached. */
  retain(cached: ReadonlySet<string>): void {
    for (const imageId of [...this.since.keys()]) if (!cached.has(imageId)) this.stop(imageId);
  }

  /** Writes the clock when it changed since the last load or save. */
  async save(): Promise<void> {
    if (!this.dirty) return;
    const body: ClockFile = {
      format: FORMAT,
      unused_since: Object.fromEntries([...this.since].sort(([a], [b]) => a.localeCompare(b)).map(([id, at]) => [id, new Date(at).toISOString()])),
    };
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      const file = await open(tmp, 'w', 0o600);
      try {
        await file.writeFile(`${JSON.stringify(body, null, 2)}\n`);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, this.path);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
    this.dirty = false;
  }
}
