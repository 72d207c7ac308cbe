// Turns the body of an AMQP delivery on an RPC queue into a request, or into the failure to report and, when the
// caller can still be found, the address to report it to. Nothing here throws: hostile bytes are data too.
import { decodeBody } from './envelope';
import { EnvelopeError } from './errors';
import { unpackContext } from './context';
import type { DispatchRequest } from './dispatcher';
import { pythonException } from './dispatcher';
import type { RemoteFailure } from './failure';
import type { RequestContext } from './types';

export interface ReplyAddress {
  readonly msgId: string;
  readonly replyQ: string;
}

export interface RpcRequest {
  readonly context: RequestContext;
  /** Where a CALL's reply goes; null for a CAST. */
  readonly replyTo: ReplyAddress | null;
  /** `_msg_id` or `_reply_q` present but unusable: meant as a CALL, but no reply can be sent. */
  readonly unanswerable: boolean;
  readonly uniqueId: unknown;
  readonly clientTimeout: unknown;
  readonly fields: DispatchRequest;
}

export type ParsedDelivery =
  | { readonly kind: 'request'; readonly request: RpcRequest }
  | {
      readonly kind: 'invalid';
      readonly failure: RemoteFailure;
      /** Recovered from the raw bytes when the body could not be decoded. */
      readonly replyTo: ReplyAddress | null;
      readonly requestId: string | null;
      readonly uniqueId: string | null;
    };

const MAX_SHORTSTR = 255; // an AMQP routing key is a short string

function replyAddress(msgId: unknown, replyQ: unknown): ReplyAddress | null {
  if (typeof msgId !== 'string' || msgId === '' || typeof replyQ !== 'string' || replyQ === '') return null;
  if (Buffer.byteLength(replyQ) > MAX_SHORTSTR) return null;
  return { msgId, replyQ };
}

// A key's value in the raw body, written either plainly (bare message) or escaped inside the 2.0 envelope string.
// The last occurrence wins: oslo writes the call keys after `args`, so a look-alike inside the arguments comes first.
function scanString(content: Buffer, key: string): string | null {
  const at = content.lastIndexOf(`"${key}`);
  if (at < 0) return null;
  const window = content.subarray(at + key.length + 1, at + key.length + 1 + 300).toString('latin1');
  const m = /^\\?"\s*:\s*\\?"([A-Za-z0-9_.:@-]{1,255})\\?"/.exec(window);
  return m?.[1] ?? null;
}

/** Best effort for bodies that cannot be decoded: find `_msg_id` and `_reply_q` in the bytes. */
export function recoverReplyAddress(content: Buffer): ReplyAddress | null {
  return replyAddress(scanString(content, '_msg_id'), scanString(content, '_reply_q'));
}

function invalid(content: Buffer, failure: RemoteFailure): ParsedDelivery {
  return {
    kind: 'invalid',
    failure,
    replyTo: recoverReplyAddress(content),
    requestId: scanString(content, '_context_request_id'),
    uniqueId: scanString(content, '_unique_id'),
  };
}

/** Size limit first (before any parsing), then JSON, envelope and the oslo keys. */
export function parseRpcDelivery(content: Buffer, maxBytes: number): ParsedDelivery {
  if (content.length > maxBytes) {
    return invalid(
      content,
      pythonException('MessageTooLarge', 'berth', `RPC message of ${content.length} bytes exceeds the limit of ${maxBytes} bytes`),
    );
  }
  let message: Record<string, unknown>;
  try {
    message = decodeBody(content);
  } catch (err) {
    const e = err instanceof EnvelopeError ? err : new EnvelopeError(String(err), 'ValueError', 'builtins');
    return invalid(content, pythonException(e.pythonClass, e.pythonModule, e.message));
  }
  const { context, msgId, replyQ, clientTimeout, rest } = unpackContext(message);
  const replyTo = replyAddress(msgId, replyQ);
  const meantAsCall = (msgId !== undefined && msgId !== null) || (replyQ !== undefined && replyQ !== null);
  return {
    kind: 'request',
    request: {
      context,
      replyTo,
      unanswerable: replyTo === null && meantAsCall,
      uniqueId: rest['_unique_id'],
      clientTimeout,
      fields: { method: rest['method'], namespace: rest['namespace'], version: rest['version'], args: rest['args'] },
    },
  };
}
