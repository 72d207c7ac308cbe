import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';

import {
  NotADockerArchive,
  createDockerArchive,
  readDockerArchive,
  streamForLoad,
  tarArchive,
  tarFile,
} from '../../../driver/image-archive';

describe('image-archive', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-archive-test-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const layer = tarArchive([['hello.txt', Buffer.from('hello\n')]]);
  const write = async (name: string, data: Buffer) => {
    const path = join(dir, name);
    await writeFile(path, data);
    return path;
  };
  const entriesOf = (archive: Buffer): Map<string, Buffer> => {
    // A minimal reader for assertions: ustar names and sizes.
    const files = new Map<string, Buffer>();
    for (let offset = 0; offset + 512 <= archive.length;) {
      const header = archive.subarray(offset, offset + 512);
      if (header.every((b) => b === 0)) break;
      const name = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
      const size = parseInt(header.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim() || '0', 8);
      files.set(name, archive.subarray(offset + 512, offset + 512 + size));
      offset += 512 + Math.ceil(size / 512) * 512;
    }
    return files;
  };

  it('reads a docker save archive: image id from the config digest, repo tags from the manifest', async () => {
    const { archive, imageId } = createDockerArchive({ cmd: ['/bin/sh'] }, layer, ['busybox:latest']);
    const read = await readDockerArchive(await write('ok.tar', archive));
    assert.equal(read.imageId, imageId);
    assert.match(read.imageId, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(read.repoTags, ['busybox:latest']);
  });

  it('streams the archive for docker load without any image name', async () => {
    const { archive } = createDockerArchive({ cmd: ['/bin/sh'] }, layer, ['berth-glance:someone-else', 'victim:latest']);
    const withRepositories = Buffer.concat([
      archive.subarray(0, archive.length - 1024),
      tarFile('repositories', Buffer.from('{"victim":{"latest":"abc"}}')),
      Buffer.alloc(1024),
    ]);
    const original = await readDockerArchive(await write('tagged.tar', withRepositories));
    const loaded = await buffer(streamForLoad(original));
    const files = entriesOf(loaded);
    assert.equal(files.has('repositories'), false);
    const manifest = JSON.parse((files.get('manifest.json') as Buffer).toString()) as Array<Record<string, unknown>>;
    assert.equal(manifest[0]?.['RepoTags'], null);
    assert.deepEqual(manifest[0]?.['Layers'], original.manifest[0]?.Layers);
    // Layers and config are copied byte for byte; the result is itself a valid archive of the same image.
    const reread = await readDockerArchive(await write('untagged.tar', loaded));
    assert.equal(reread.imageId, original.imageId);
    assert.deepEqual(reread.repoTags, []);
    const layerName = original.manifest[0]?.Layers[0] as string;
    assert.deepEqual(files.get(layerName), layer);
  });

  it('removes OCI ref-name annotations from index.json', async () => {
    const { archive } = createDockerArchive({ cmd: ['/bin/sh'] }, layer);
    const index = {
      schemaVersion: 2,
      manifests: [{ digest: 'sha256:x', annotations: { 'io.containerd.image.name': 'docker.io/library/victim:latest', 'org.opencontainers.image.ref.name': 'latest', keep: 'me' } }],
    };
    const withIndex = Buffer.concat([archive.subarray(0, archive.length - 1024), tarFile('index.json', Buffer.from(JSON.stringify(index))), Buffer.alloc(1024)]);
    const loaded = await buffer(streamForLoad(await readDockerArchive(await write('oci.tar', withIndex))));
    const rewritten = JSON.parse((entriesOf(loaded).get('index.json') as Buffer).toString()) as typeof index;
    assert.deepEqual(rewritten.manifests[0]?.annotations, { keep: 'me' });
  });

  const refuses = async (name: string, data: Buffer, reason: RegExp) => {
    await assert.rejects(readDockerArchive(await write(name, data)), (error: unknown) => {
      assert.ok(error instanceof NotADockerArchive, String(error));
      assert.match(error.message, reason);
      return true;
    });
  };

  it('refuses data that is not tar', async () => {
    await refuses('text.tar', Buffer.from('hello world\n'.repeat(100)), /not a tar archive|truncated/);
    await refuses('empty.tar', Buffer.alloc(0), /truncated/);
    await refuses('zeros.tar', Buffer.alloc(1024), /empty/);
  });

  it('refuses a truncated archive', async () => {
    const { archive } = createDockerArchive({ cmd: ['/bin/sh'] }, layer);
    await refuses('cut.tar', archive.subarray(0, 700), /truncated/);
  });

  it('refuses a tar without manifest.json, or with a malformed one', async () => {
    await refuses('plain.tar', tarArchive([['etc/hostname', Buffer.from('x')]]), /no manifest.json/);
    await refuses('badjson.tar', tarArchive([['manifest.json', Buffer.from('{nope')]]), /not JSON/);
    await refuses('object.tar', tarArchive([['manifest.json', Buffer.from('{}')]]), /exactly one image/);
    await refuses('fields.tar', tarArchive([['manifest.json', Buffer.from('[{"Config":1,"Layers":[]}]')]]), /malformed/);
  });

  it('refuses an archive of several images (one Glance image is one Docker image)', async () => {
    const manifest = [{ Config: 'a.json', Layers: [] }, { Config: 'b.json', Layers: [] }];
    await refuses('two.tar', tarArchive([['manifest.json', Buffer.from(JSON.stringify(manifest))]]), /exactly one image/);
  });

  it('refuses a manifest that names files the archive lacks', async () => {
    const { archive } = createDockerArchive({ cmd: ['/bin/sh'] }, layer);
    const manifest = (await readDockerArchive(await write('src.tar', archive))).manifest;
    const broken = tarArchive([['manifest.json', Buffer.from(JSON.stringify(manifest))]]);
    await refuses('missing.tar', broken, /missing/);
  });

  for (const format of ['gnu', 'pax']) {
    it(`follows long names in ${format} archives (extended headers)`, async () => {
      const { execFileSync } = await import('node:child_process');
      const { mkdir } = await import('node:fs/promises');
      const root = join(dir, `long-${format}`);
      const layerDir = `${'d'.repeat(90)}/${'e'.repeat(40)}`;
      await mkdir(join(root, layerDir), { recursive: true });
      await writeFile(join(root, layerDir, 'layer.tar'), layer);
      await writeFile(join(root, 'config.json'), '{}');
      const configName = `${'a'.repeat(64)}.json`;
      await writeFile(join(root, configName), '{}');
      await writeFile(join(root, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: ['x:y'], Layers: [`${layerDir}/layer.tar`] }]));
      const path = join(dir, `long-${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '-C', root, '-cf', path, layerDir, configName, 'manifest.json']);
      const read = await readDockerArchive(path);
      assert.equal(read.imageId, `sha256:${'a'.repeat(64)}`);
      const files = await buffer(streamForLoad(read));
      const out = join(dir, `long-${format}-out.tar`);
      await writeFile(out, files);
      assert.equal(execFileSync('tar', ['-xOf', out, `${layerDir}/layer.tar`]).length, layer.length);
      assert.deepEqual((await readDockerArchive(out)).repoTags, []);
    });
  }

  it('writes ustar headers that the system tar accepts', async () => {
    const path = await write('system.tar', tarArchive([['dir/file.txt', Buffer.from('content\n')]]));
    const { execFileSync } = await import('node:child_process');
    assert.equal(execFileSync('tar', ['-xOf', path, 'dir/file.txt']).toString(), 'content\n');
    assert.ok((await readFile(path)).length % 512 === 0);
  });
});
