// `docker save` archives: the image format Berth accepts from Glance and produces for snapshots.
//
// Reading checks that a file is a tar archive with a one-image manifest.json before any runtime sees it, so a bad
// upload fails as InvalidImage. Loading strips the archive's own repository tags (manifest RepoTags, the legacy
// `repositories` file, OCI ref-name annotations): an uploaded archive must never name images on the host, or it
// could retag another Glance image's cache entry.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';

const BLOCK = 512;
/** Metadata files (manifest.json, index.json, pax headers) are small; anything bigger is not a docker archive. */
const MAX_METADATA_BYTES = 1024 * 1024;
/** A docker archive holds a few files per layer; this bounds the memory a hostile tarball can make us use. */
const MAX_ENTRIES = 100_000;
const IMAGE_ID = /^[0-9a-f]{64}$/;
/** Annotations through which OCI archives name images (`docker load` on a containerd store tags from them). */
const REF_NAME_ANNOTATIONS = ['io.containerd.image.name', 'org.opencontainers.image.ref.name'];

/** The file is not a `docker save` archive (not a tar, truncated, no usable manifest). */
export class NotADockerArchive extends Error {
  override readonly name = 'NotADockerArchive';
}

interface TarEntry {
  /** Path inside the archive, without a leading `./`. */
  readonly name: string;
  readonly type: string;
  /** Where this entry's first header starts (including pax / GNU long-name headers that belong to it). */
  readonly start: number;
  readonly dataOffset: number;
  readonly size: number;
  /** Where the next entry starts. */
  readonly end: number;
}

interface ManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
  [key: string]: unknown;
}

export interface DockerArchive {
  readonly path: string;
  /** The image id the runtime will give the loaded image (`sha256:<hex>`, the digest of its config). */
  readonly imageId: string;
  /** The tags the archive asks for; they are not applied on load. */
  readonly repoTags: readonly string[];
  readonly entries: readonly TarEntry[];
  readonly manifest: readonly ManifestEntry[];
}

/** Reads and checks the archive's structure and manifest; throws NotADockerArchive. */
export async function readDockerArchive(path: string): Promise<DockerArchive> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const entries = await readEntries(file, size);
    const byName = new Map(entries.map((entry) => [entry.name, entry]));
    const manifestEntry = byName.get('manifest.json');
    if (!manifestEntry) throw new NotADockerArchive('the archive has no manifest.json');
    const manifest = parseManifest(await readData(file, manifestEntry));
    const image = manifest[0] as ManifestEntry;
    for (const member of [image.Config, ...image.Layers]) {
      const entry = byName.get(normaliseName(member));
      if (!entry || !isRegularFile(entry)) throw new NotADockerArchive(`manifest.json names ${member}, which is missing`);
    }
    const digest = normaliseName(image.Config).replace(/^blobs\/sha256\//, '').replace(/\.json$/, '');
    if (!IMAGE_ID.test(digest)) throw new NotADockerArchive(`unexpected image config name ${image.Config}`);
    return { path, imageId: `sha256:${digest}`, repoTags: image.RepoTags ?? [], entries, manifest };
  } finally {
    await file.close();
  }
}

/** The archive as a stream for `docker load`, with every image name it carries removed. */
export function streamForLoad(archive: DockerArchive): Readable {
  return Readable.from(untaggedChunks(archive));
}

async function* untaggedChunks(archive: DockerArchive): AsyncGenerator<Buffer> {
  let copyFrom = 0;
  let copyTo = 0;
  const file = await open(archive.path, 'r');
  try {
    for (const entry of archive.entries) {
      const replacement = await untaggedReplacement(archive, file, entry);
      if (replacement === undefined) {
        // Unchanged entries are copied as byte ranges, merged while contiguous.
        if (entry.start !== copyTo) {
          yield* copyRange(archive.path, copyFrom, copyTo);
          copyFrom = entry.start;
        }
        copyTo = entry.end;
        continue;
      }
      yield* copyRange(archive.path, copyFrom, copyTo);
      copyFrom = copyTo = entry.end;
      if (replacement !== null) yield tarFile(entry.name, replacement);
    }
    yield* copyRange(archive.path, copyFrom, copyTo);
    yield Buffer.alloc(2 * BLOCK);
  } finally {
    await file.close();
  }
}

/** undefined: copy the entry as it is; null: drop it; a Buffer: the entry's new contents. */
async function untaggedReplacement(archive: DockerArchive, file: FileHandle, entry: TarEntry): Promise<Buffer | null | undefined> {
  if (entry.name === 'repositories') return null;
  if (entry.name === 'manifest.json') {
    const manifest = archive.manifest.map((image) => ({ ...image, RepoTags: null }));
    return Buffer.from(JSON.stringify(manifest));
  }
  if (entry.name === 'index.json') {
    const index = parseJson(await readData(file, entry), 'index.json');
    const manifests = (index as { manifests?: unknown }).manifests;
    if (!Array.isArray(manifests)) return undefined;
    for (const descriptor of manifests) {
      const annotations = (descriptor as { annotations?: Record<string, unknown> }).annotations;
      if (annotations) for (const key of REF_NAME_ANNOTATIONS) delete annotations[key];
    }
    return Buffer.from(JSON.stringify(index));
  }
  return undefined;
}

async function* copyRange(path: string, from: number, to: number): AsyncGenerator<Buffer> {
  if (to <= from) return;
  for await (const chunk of createReadStream(path, { start: from, end: to - 1 })) yield chunk as Buffer;
}

async function readEntries(file: FileHandle, fileSize: number): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const header = Buffer.alloc(BLOCK);
  let offset = 0;
  let start = 0;
  let longName: string | null = null;
  for (;;) {
    if (offset + BLOCK > fileSize) throw new NotADockerArchive('the tar archive is truncated');
    await file.read(header, 0, BLOCK, offset);
    if (header.every((byte) => byte === 0)) break;
    if (!checksumMatches(header)) throw new NotADockerArchive('not a tar archive (bad header checksum)');
    const size = parseOctal(header.subarray(124, 136));
    const type = String.fromCharCode(header[156] ?? 0);
    const dataOffset = offset + BLOCK;
    const end = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
    if (dataOffset + size > fileSize) throw new NotADockerArchive('the tar archive is truncated');
    if (type === 'x' || type === 'L') {
      // Extended headers name the entry that follows them.
      const data = await readData(file, { dataOffset, size });
      longName = type === 'L' ? cString(data) : (paxPath(data) ?? longName);
      offset = end;
      continue;
    }
    const prefix = cString(header.subarray(345, 500));
    const name = longName ?? (prefix ? `${prefix}/${cString(header.subarray(0, 100))}` : cString(header.subarray(0, 100)));
    entries.push({ name: normaliseName(name), type, start, dataOffset, size, end });
    if (entries.length > MAX_ENTRIES) throw new NotADockerArchive('the tar archive has too many entries');
    longName = null;
    offset = start = end;
  }
  if (entries.length === 0) throw new NotADockerArchive('the tar archive is empty');
  return entries;
}

async function readData(file: FileHandle, entry: { dataOffset: number; size: number }): Promise<Buffer> {
  if (entry.size > MAX_METADATA_BYTES) throw new NotADockerArchive('a metadata file in the archive is too large');
  const data = Buffer.alloc(entry.size);
  await file.read(data, 0, entry.size, entry.dataOffset);
  return data;
}

function parseManifest(data: Buffer): ManifestEntry[] {
  const manifest = parseJson(data, 'manifest.json');
  if (!Array.isArray(manifest) || manifest.length !== 1) {
    throw new NotADockerArchive('manifest.json must describe exactly one image');
  }
  const image = manifest[0] as Partial<ManifestEntry> | null;
  const validTags = image?.RepoTags == null || (Array.isArray(image.RepoTags) && image.RepoTags.every((t) => typeof t === 'string'));
  if (
    typeof image !== 'object' || image === null || typeof image.Config !== 'string' || !Array.isArray(image.Layers) ||
    !image.Layers.every((layer) => typeof layer === 'string') || !validTags
  ) {
    throw new NotADockerArchive('manifest.json is malformed');
  }
  return manifest as ManifestEntry[];
}

function parseJson(data: Buffer, what: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    throw new NotADockerArchive(`${what} is not JSON`);
  }
}

function checksumMatches(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] ?? 0);
  return parseOctal(header.subarray(148, 156)) === sum;
}

function parseOctal(field: Buffer): number {
  // GNU base-256 sizes (files over 8 GiB) set the high bit of the first byte.
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let value = (field[0] ?? 0) & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] ?? 0);
    return value;
  }
  const text = cString(field).trim();
  if (!/^[0-7]*$/.test(text)) throw new NotADockerArchive('not a tar archive (bad number field)');
  return text === '' ? 0 : parseInt(text, 8);
}

function paxPath(data: Buffer): string | null {
  // Records are "<len> <key>=<value>\n".
  for (const record of data.toString('utf8').split('\n')) {
    const match = /^\d+ path=(.*)$/.exec(record);
    if (match) return match[1] ?? null;
  }
  return null;
}

function cString(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString('utf8');
}

function normaliseName(name: string): string {
  return name.replace(/^(\.\/)+/, '');
}

function isRegularFile(entry: TarEntry): boolean {
  return entry.type === '0' || entry.type === '\0' || entry.type === '7';
}

// ---------------------------------------------------------------------------------------------------------------
// Writing: the fake driver's snapshots and test images are real, loadable docker archives.

/** One ustar entry (header + data + padding) for a regular file. */
export function tarFile(name: string, data: Buffer): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
  const header = Buffer.alloc(BLOCK);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100, 'ascii');
  header.write('0000000\0', 108, 'ascii');
  header.write('0000000\0', 116, 'ascii');
  header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  header.write('00000000000\0', 136, 'ascii');
  header.write('        ', 148, 'ascii');
  header.write('0', 156, 'ascii');
  header.write('ustar\0' + '00', 257, 'ascii');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  const padding = Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK);
  return Buffer.concat([header, data, padding]);
}

/** A tar archive of the given files, in order. */
export function tarArchive(files: ReadonlyArray<readonly [string, Buffer]>): Buffer {
  return Buffer.concat([...files.map(([name, data]) => tarFile(name, data)), Buffer.alloc(2 * BLOCK)]);
}

export interface ImageConfigSpec {
  readonly cmd: readonly string[];
  readonly architecture?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * A `docker save` archive (manifest.json layout) of a one-layer image: `layer` is the layer's tar.
 * `docker load` accepts it; returns the archive and the image id it loads as.
 */
export function createDockerArchive(spec: ImageConfigSpec, layer: Buffer, repoTags: readonly string[] = []): { archive: Buffer; imageId: string } {
  const layerDigest = sha256(layer);
  const config = Buffer.from(JSON.stringify({
    architecture: spec.architecture ?? 'amd64',
    os: 'linux',
    config: { Cmd: spec.cmd, Labels: spec.labels ?? {} },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
    history: [{ created_by: 'berth' }],
  }));
  const configDigest = sha256(config);
  const manifest = [{ Config: `${configDigest}.json`, RepoTags: repoTags.length ? repoTags : null, Layers: [`${layerDigest}/layer.tar`] }];
  const archive = tarArchive([
    [`${layerDigest}/layer.tar`, layer],
    [`${configDigest}.json`, config],
    ['manifest.json', Buffer.from(JSON.stringify(manifest))],
  ]);
  return { archive, imageId: `sha256:${configDigest}` };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
