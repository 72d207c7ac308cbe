// The lab's AMQP captures (../shared/lab/captures, README there) as test fixtures: published messages, and
// conductor calls paired with their replies.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export interface CapturedMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly message: Record<string, unknown>;
}

export interface ConductorExchange {
  readonly request: Record<string, unknown>;
  /** The reply's inner message (`result`, `failure`, …). */
  readonly reply: Record<string, unknown>;
}

function repoRoot(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error('package.json not found above ' + __dirname);
  }
}

/** The repository (the directory of package.json above this file). */
export const REPO_ROOT = repoRoot();
export const CAPTURES_DIR = process.env['BERTH_CAPTURES_DIR'] ?? resolve(REPO_ROOT, '../shared/lab/captures');

let published: CapturedMessage[] | undefined;

/** Every `publish` trace record of fake-driver-lifecycle.jsonl with a parsed inner message, in order. */
export function publishedMessages(): CapturedMessage[] {
  published ??= readFileSync(join(CAPTURES_DIR, 'fake-driver-lifecycle.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as { event: string; exchange: string; routing_key: string; oslo_message?: unknown })
    .filter((r) => r.event === 'publish' && typeof r.oslo_message === 'object' && r.oslo_message !== null)
    .map((r) => ({ exchange: r.exchange, routingKey: r.routing_key, message: r.oslo_message as Record<string, unknown> }));
  return published;
}

/** Conductor CALLs (routing key `conductor`) with their replies. */
export function conductorExchanges(): ConductorExchange[] {
  const replies = new Map<string, Record<string, unknown>>();
  for (const m of publishedMessages()) {
    const id = m.message['_msg_id'];
    if (m.exchange === '' && typeof id === 'string') replies.set(id, m.message);
  }
  const out: ConductorExchange[] = [];
  for (const m of publishedMessages()) {
    if (m.routingKey !== 'conductor') continue;
    const reply = replies.get(m.message['_msg_id'] as string);
    if (reply) out.push({ request: m.message, reply });
  }
  return out;
}

/** The conductor exchanges for one object class and method (object_action or object_class_action_versions). */
export function exchangesFor(objName: string, objMethod: string): ConductorExchange[] {
  return conductorExchanges().filter(({ request }) => {
    const args = request['args'] as Record<string, unknown>;
    const objinst = args['objinst'] as Record<string, unknown> | undefined;
    const name = args['objname'] ?? objinst?.['nova_object.name'];
    return name === objName && args['objmethod'] === objMethod;
  });
}

/** The first exchange for a class and method (fails the test if the capture has none). */
export function firstExchange(objName: string, objMethod: string): ConductorExchange {
  const found = exchangesFor(objName, objMethod)[0];
  if (!found) throw new Error(`the capture has no ${objName}.${objMethod}`);
  return found;
}

/** Every dict with `nova_object.name` anywhere inside `value`, outermost first (nested ones included). */
export function findPrimitives(value: unknown, out: Array<Record<string, unknown>> = []): Array<Record<string, unknown>> {
  if (Array.isArray(value)) {
    for (const v of value) findPrimitives(v, out);
  } else if (typeof value === 'object' && value !== null) {
    const dict = value as Record<string, unknown>;
    if ('nova_object.name' in dict) out.push(dict);
    for (const v of Object.values(dict)) findPrimitives(v, out);
  }
  return out;
}

/** The `_context_*` keys of a captured message as a RequestContext-shaped dict. */
export function contextOf(message: Record<string, unknown>): { request_id: string; [key: string]: unknown } {
  const ctx: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(message)) if (k.startsWith('_context_')) ctx[k.slice('_context_'.length)] = v;
  return ctx as { request_id: string };
}

/** failure-replies.jsonl: CALLs that had to fail, sent to the real conductor and compute, with their replies. */
export function failureExchanges(): Array<ConductorExchange & { readonly label: string; readonly routingKey: string }> {
  return readFileSync(join(CAPTURES_DIR, 'failure-replies.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as { label: string; routing_key: string; request: Record<string, unknown>; reply: Record<string, unknown> })
    .map((r) => ({ label: r.label, routingKey: r.routing_key, request: r.request, reply: r.reply }));
}
