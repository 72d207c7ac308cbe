// Docker has one frozen state (paused); Nova has two (PAUSED, SUSPENDED). A marker file per suspended instance, under
// the driver's state dir, tells them apart and survives a Berth restart.

import { mkdir, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const SUFFIX = '.suspended';

export class SuspendMarkers {
  private readonly dir: string;
  private readonly suspended = new Set<string>();

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'suspended');
  }

  /** Creates the directory and reads the markers left by a previous run. */
  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.suspended.clear();
    for (const file of await readdir(this.dir)) {
      if (file.endsWith(SUFFIX)) this.suspended.add(decodeURIComponent(file.slice(0, -SUFFIX.length)));
    }
  }

  has(uuid: string): boolean {
    return this.suspended.has(uuid);
  }

  async mark(uuid: string): Promise<void> {
    const path = this.path(uuid);
    // Write then rename: a crash never leaves a half-written marker.
    await writeFile(`${path}.tmp`, JSON.stringify({ uuid, suspendedAt: new Date().toISOString() }));
    await rename(`${path}.tmp`, path);
    this.suspended.add(uuid);
  }

  async clear(uuid: string): Promise<void> {
    // The set mirrors the directory (this driver is its only writer), so most calls touch no file.
    if (!this.suspended.delete(uuid)) return;
    await unlink(this.path(uuid)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }

  private path(uuid: string): string {
    // One path component whatever the uuid holds.
    return join(this.dir, `${encodeURIComponent(uuid)}${SUFFIX}`);
  }
}
