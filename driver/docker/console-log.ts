// `docker logs` of a container without a TTY is a multiplexed stream: frames of [stream type, 0, 0, 0, size (u32 BE)]
// followed by the payload. The console output is the payloads in order, stdout and stderr interleaved as written.

import { MAX_CONSOLE_BYTES } from '../driver';

const HEADER = 8;

export function demultiplexLogs(raw: Buffer): Buffer {
  const payloads: Buffer[] = [];
  let offset = 0;
  while (offset < raw.length) {
    const type = raw[offset];
    if (offset + HEADER > raw.length || (type !== 0 && type !== 1 && type !== 2)) {
      // Not framed (a TTY container) or cut short: the rest is plain text.
      payloads.push(raw.subarray(offset));
      break;
    }
    const size = raw.readUInt32BE(offset + 4);
    payloads.push(raw.subarray(offset + HEADER, offset + HEADER + size));
    offset += HEADER + size;
  }
  return Buffer.concat(payloads);
}

/** The console text: demultiplexed, the last MAX_CONSOLE_BYTES bytes, invalid UTF-8 replaced. */
export function consoleText(raw: Buffer): string {
  const text = demultiplexLogs(raw);
  return text.subarray(Math.max(0, text.length - MAX_CONSOLE_BYTES)).toString('utf8');
}
