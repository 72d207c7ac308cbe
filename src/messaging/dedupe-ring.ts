// oslo's _MsgIdCache: the last 16 `_unique_id`s a listener saw. A broker may redeliver a message whose ack was lost;
// its second copy is dropped. Protocol: §1.10.

import { jsonText } from './envelope';

export const DUPLICATE_CHECK_SIZE = 16;

export class DedupeRing {
  private readonly ids: string[] = [];

  constructor(private readonly size: number = DUPLICATE_CHECK_SIZE) {}

  /**
   * Records the id and tells whether it was already among the last `size` ids. A message without an id (or with a
   * Python-falsy one) is never a duplicate, as in oslo.
   */
  seen(uniqueId: unknown): boolean {
    if (!pythonTruthy(uniqueId)) return false;
    const key = typeof uniqueId === 'string' ? `s:${uniqueId}` : `j:${jsonText(uniqueId)}`;
    if (this.ids.includes(key)) return true;
    this.ids.push(key);
    if (this.ids.length > this.size) this.ids.shift();
    return false;
  }
}

function pythonTruthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object' && value !== null) return Object.keys(value).length > 0;
  return Boolean(value);
}
