// The real AMQP traffic of Nova and its Python compute (../shared/lab/captures), as test fixtures.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

export const CAPTURES = join(repoRoot(), '../shared/lab/captures');

export interface TraceRecord {
  ts: string;
  event: 'publish' | 'deliver';
  exchange: string;
  routing_key: string;
  properties: Record<string, unknown>;
  body: string;
  oslo_message: Record<string, unknown>;
}

export interface FailureRecord {
  label: string;
  routing_key: string;
  request: Record<string, unknown>;
  reply: Record<string, unknown>;
}

function jsonLines<T>(file: string): T[] {
  return readFileSync(join(CAPTURES, file), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}

export const lifecycle = (): TraceRecord[] => jsonLines<TraceRecord>('fake-driver-lifecycle.jsonl');
export const publishes = (): TraceRecord[] => lifecycle().filter((r) => r.event === 'publish');
export const failureReplies = (): FailureRecord[] => jsonLines<FailureRecord>('failure-replies.jsonl');
