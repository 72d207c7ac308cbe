// Servers that move between hosts, as the e2e suites see them: the migration records nova-api lists, and a pair of
// Berth hosts for the suites that move servers between two of them (A on the machine's shared dockerd, B on a
// private one: two hosts on one engine would collide on the container name nova-<uuid>).
import assert from 'node:assert/strict';

import { buildBusyboxImage } from '../../support/images';
import { BerthHost } from './berth-host';
import { PrivateDockerd } from './docker-engine';
import type { Flavor } from './compute';
import type { Image } from './image';
import { openstackJson } from './openstack-cli';
import { findResourceProvider } from './placement';

/** A row of `openstack server migration list -f json` at microversion 2.80. */
export interface MigrationRow {
  readonly Id: number;
  readonly UUID: string;
  readonly Status: string;
  readonly Type: string;
  readonly 'Source Compute': string;
  readonly 'Dest Compute': string;
  readonly 'Old Flavor': number;
  readonly 'New Flavor': number;
}

/** Every migration record of a server (compute API 2.80). */
export function serverMigrations(serverId: string): Promise<MigrationRow[]> {
  return openstackJson<MigrationRow[]>(['--os-compute-api-version', '2.80', 'server', 'migration', 'list', '--server', serverId]);
}

/** The server's one migration record of `type` (migration, resize, evacuation); fails unless there is exactly one. */
export async function onlyMigration(serverId: string, type: string): Promise<MigrationRow> {
  const rows = (await serverMigrations(serverId)).filter((r) => r.Type === type);
  assert.equal(rows.length, 1, `one ${type} migration`);
  return rows[0] as MigrationRow;
}

export interface TwoHosts {
  readonly engine: PrivateDockerd;
  readonly a: BerthHost;
  readonly b: BerthHost;
  readonly image: Image;
  readonly flavor: Flavor;
  readonly providerA: string;
  readonly providerB: string;
}

/**
 * Starts hosts `<suite>-a` (shared dockerd) and `<suite>-b` (a private dockerd named `suite`), uploads a busybox image
 * and makes a small flavor through A. When any step fails, what was made is removed before the error is rethrown;
 * afterwards the suite removes it (A's cleanup first: it deletes the servers wherever they are, so B must still run;
 * then B's, then `engine.destroy()`).
 */
export async function startTwoHosts(suite: string): Promise<TwoHosts> {
  const engine = await PrivateDockerd.start(suite);
  const a = new BerthHost({ suite: `${suite}-a` });
  const b = new BerthHost({ suite: `${suite}-b`, docker: engine });
  try {
    const tar = buildBusyboxImage(`berth-e2e-${suite}:latest`);
    await Promise.all([a.start(), b.start()]);
    const image = await a.uploadImage({ file: (await tar).tarPath });
    const flavor = await a.createFlavor({ vcpus: 1, ramMb: 64, diskGb: 1 });
    const [rpA, rpB] = await Promise.all([findResourceProvider(a.host), findResourceProvider(b.host)]);
    assert.ok(rpA && rpB, 'both hosts have a resource provider');
    return { engine, a, b, image, flavor, providerA: rpA.uuid, providerB: rpB.uuid };
  } catch (error) {
    await a.cleanup().catch(() => undefined);
    await b.cleanup().catch(() => undefined);
    await engine.destroy().catch(() => undefined);
    throw error;
  }
}
