// Which digest an image download is checked against, in python-glanceclient's order (v2/images.py `data`):
// the multihash (os_hash_algo / os_hash_value), else the MD5 `checksum`, else the response's Content-MD5 header,
// else nothing (the download is unverified, which the caller is told).
import crypto from 'node:crypto';
import { ImageUnacceptable } from './glance-errors';

export type VerificationSource = 'os_hash_value' | 'checksum' | 'content-md5';

export interface ExpectedHash {
  readonly source: VerificationSource;
  /** Glance's (Python hashlib) name: `sha512`, `sha3_256`, `md5`. */
  readonly algorithm: string;
  /** Lower-case hex. */
  readonly hex: string;
}

/** The image-record fields the verification reads. */
export interface ImageChecksums {
  readonly id: string;
  readonly checksum?: string | null;
  readonly os_hash_algo?: string | null;
  readonly os_hash_value?: string | null;
}

/** The digest the image record promises, or null when it promises none (then Content-MD5 may still apply). */
export function expectedFromImage(image: ImageChecksums): ExpectedHash | null {
  const value = nonEmpty(image.os_hash_value);
  if (value !== null) {
    // Glance's default algorithm, for records that carry a value but lost the name.
    const algorithm = nonEmpty(image.os_hash_algo) ?? 'sha512';
    if (nodeHashName(algorithm) === null) {
      throw new ImageUnacceptable(image.id, `unsupported os_hash_algo '${algorithm}'`);
    }
    return { source: 'os_hash_value', algorithm, hex: value.toLowerCase() };
  }
  const checksum = nonEmpty(image.checksum);
  return checksum === null ? null : { source: 'checksum', algorithm: 'md5', hex: checksum.toLowerCase() };
}

/** Glance sends Content-MD5 as hex (it copies `checksum`); RFC 1864 says base64. Both are accepted. */
export function expectedFromContentMd5(header: string | undefined): ExpectedHash | null {
  const value = nonEmpty(header);
  if (value === null) return null;
  if (/^[0-9a-f]{32}$/i.test(value)) return { source: 'content-md5', algorithm: 'md5', hex: value.toLowerCase() };
  const raw = Buffer.from(value, 'base64');
  return raw.length === 16 ? { source: 'content-md5', algorithm: 'md5', hex: raw.toString('hex') } : null;
}

export function createHasher(expected: ExpectedHash): crypto.Hash {
  const name = nodeHashName(expected.algorithm);
  if (name === null) throw new Error(`unsupported hash algorithm ${expected.algorithm}`);
  return crypto.createHash(name);
}

/** Python hashlib name → OpenSSL name, or null when this Node cannot compute it. */
function nodeHashName(pythonName: string): string | null {
  const lower = pythonName.toLowerCase();
  const mapped =
    lower === 'blake2b' ? 'blake2b512' : lower === 'blake2s' ? 'blake2s256' : lower.replace(/^sha3_/, 'sha3-');
  return crypto.getHashes().includes(mapped) ? mapped : null;
}

function nonEmpty(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : null;
}
