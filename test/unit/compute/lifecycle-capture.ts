// What Python's nova-compute (FakeDriver, host fake-1) did in the lab capture, per request: the compute RPCs it
// received, its Instance.save calls, its action events and its legacy notifications — reduced to what Berth must
// reproduce, and the same reduction of what Berth sent to the fake conductor.
import { contextOf, publishedMessages } from '../objects/capture-fixtures';
import type { ConductorRequest } from './fake-conductor';

/** The host the capture's compute ran as. */
export const CAPTURE_HOST = 'fake-1';
/** The instance the capture's lifecycle ran on. */
export const CAPTURE_INSTANCE_UUID = 'ae8e9f49-252f-493c-aa82-5113fd9bd2e7';

export interface CapturedCompute {
  readonly method: string;
  readonly args: Record<string, unknown>;
  readonly context: { request_id: string; [key: string]: unknown };
  readonly requestId: string;
  readonly isCall: boolean;
}

/** Every RPC the control plane sent to compute.fake-1, in order. */
export function capturedComputeCalls(): CapturedCompute[] {
  return publishedMessages()
    .filter((m) => m.exchange === 'nova' && m.routingKey === `compute.${CAPTURE_HOST}`)
    .map((m) => {
      const context = contextOf(m.message);
      return {
        method: String(m.message['method']),
        args: structuredClone(m.message['args'] as Record<string, unknown>),
        context,
        requestId: context.request_id,
        isCall: typeof m.message['_reply_q'] === 'string',
      };
    });
}

/** The captured RPC of `method` (reboot_instance: of that reboot_type). */
export function capturedCompute(method: string, rebootType?: 'SOFT' | 'HARD'): CapturedCompute {
  const found = capturedComputeCalls().find((c) => c.method === method && (rebootType === undefined || c.args['reboot_type'] === rebootType));
  if (!found) throw new Error(`the capture has no ${method} ${rebootType ?? ''}`);
  return found;
}

/** The fields of an Instance.save that tell the state machine apart. */
const STATE_FIELDS = ['host', 'node', 'power_state', 'task_state', 'vm_state'];

/**
 * One Instance.save reduced to what must match Python: which state fields changed, the vm_state/task_state values
 * it wrote, and the expected_task_state it sent (`'<absent>'` when it sent none). power_state values are left out:
 * Python's FakeDriver reports RUNNING for a paused instance, Berth's PAUSED.
 */
export interface SaveSummary {
  readonly fields: readonly string[];
  readonly vm_state?: unknown;
  readonly task_state?: unknown;
  readonly expected_task_state: unknown;
}

export function summariseSave(args: Record<string, unknown>): SaveSummary {
  const objinst = args['objinst'] as Record<string, unknown>;
  const data = objinst['nova_object.data'] as Record<string, unknown>;
  const changes = (objinst['nova_object.changes'] as string[] | undefined) ?? [];
  const fields = STATE_FIELDS.filter((f) => changes.includes(f));
  const kwargs = (args['kwargs'] as Record<string, unknown> | undefined) ?? {};
  return {
    fields,
    ...(fields.includes('vm_state') ? { vm_state: data['vm_state'] } : {}),
    ...(fields.includes('task_state') ? { task_state: data['task_state'] } : {}),
    expected_task_state: 'expected_task_state' in kwargs ? kwargs['expected_task_state'] : '<absent>',
  };
}

function capturedConductorCalls(requestId: string): Array<Record<string, unknown>> {
  return publishedMessages()
    .filter((m) => m.routingKey === 'conductor' && m.message['_context_request_id'] === requestId)
    .map((m) => m.message['args'] as Record<string, unknown>);
}

function isInstanceMethod(args: Record<string, unknown>, method: string): boolean {
  const objinst = args['objinst'] as Record<string, unknown> | undefined;
  return objinst?.['nova_object.name'] === 'Instance' && args['objmethod'] === method;
}

/** Python's Instance.save calls for one request, in order. */
export function capturedSaves(requestId: string): SaveSummary[] {
  return capturedConductorCalls(requestId).filter((a) => isInstanceMethod(a, 'save')).map(summariseSave);
}

/**
 * Python's build saves as Berth makes them: Berth writes the claim's host / node (Nova's separate save with no
 * expected state and no vm_state/task_state change) with the next save, the one that moves task_state to networking.
 * Every vm_state/task_state transition and expected_task_state stays Python's; only that round trip is merged.
 */
export function withClaimMerged(saves: readonly SaveSummary[]): SaveSummary[] {
  const out: SaveSummary[] = [];
  for (let i = 0; i < saves.length; i++) {
    const save = saves[i] as SaveSummary;
    const next = saves[i + 1];
    const claimOnly = save.fields.length > 0 && save.fields.every((f) => f === 'host' || f === 'node');
    if (claimOnly && next?.task_state === 'networking') {
      out.push({ ...next, fields: STATE_FIELDS.filter((f) => save.fields.includes(f) || next.fields.includes(f)) });
      i++;
    } else {
      out.push(save);
    }
  }
  return out;
}

/** Berth's Instance.save calls (as recorded by the fake conductor) for one request, in order. */
export function berthSaves(requests: readonly ConductorRequest[], requestId: string): SaveSummary[] {
  return requests.filter((r) => r.requestId === requestId && isInstanceMethod(r.args, 'save')).map((r) => summariseSave(r.args));
}

/** `start compute_x` / `finish compute_x ok|error` for the action events of one request, in order. */
function eventLine(args: Record<string, unknown>): string | null {
  if (args['objname'] !== 'InstanceActionEvent') return null;
  const [, name] = args['args'] as [string, string];
  const kwargs = args['kwargs'] as Record<string, unknown>;
  if (args['objmethod'] === 'event_start') return `start ${name}`;
  return `finish ${name} ${kwargs['exc_tb'] === null ? 'ok' : 'error'}`;
}

export function capturedEvents(requestId: string): string[] {
  return capturedConductorCalls(requestId).map(eventLine).filter((l): l is string => l !== null);
}

export function berthEvents(requests: readonly ConductorRequest[], requestId: string): string[] {
  return requests.filter((r) => r.requestId === requestId).map((r) => eventLine(r.args)).filter((l): l is string => l !== null);
}

/** Whether the request ended with Instance.destroy (terminate). */
export function capturedDestroyed(requestId: string): boolean {
  return capturedConductorCalls(requestId).some((a) => isInstanceMethod(a, 'destroy'));
}

function capturedLegacy(requestId: string): Array<Record<string, unknown>> {
  return publishedMessages()
    .filter((m) => m.routingKey.startsWith('notifications.') && m.message['_context_request_id'] === requestId)
    // Only the compute's own (nova-conductor would publish compute.instance.update with the same request id).
    .filter((m) => m.message['publisher_id'] === `compute.${CAPTURE_HOST}`)
    .filter((m) => String(m.message['event_type']).startsWith('compute.instance.'))
    .map((m) => m.message);
}

/** The legacy instance notifications of one request without the `compute.instance.` prefix, in order. */
export function capturedNotifications(requestId: string): string[] {
  return capturedLegacy(requestId).map((m) => String(m['event_type']).slice('compute.instance.'.length));
}

/** The same, each with the vm_state / task_state its payload carried (`state`, `state_description`). */
export function capturedNotificationStates(requestId: string): string[] {
  return capturedLegacy(requestId).map((m) => {
    const payload = m['payload'] as Record<string, unknown>;
    return `${String(m['event_type']).slice('compute.instance.'.length)} ${String(payload['state'])}/${String(payload['state_description'])}`;
  });
}
