// Request-id propagation to OpenStack services: like keystoneauth with `global_request_id=context.global_id`, every
// call made on behalf of a context carries `X-OpenStack-Request-ID` so the service's logs join the request's trail.

/** The part of an RPC RequestContext the HTTP clients need (src/messaging RequestContext satisfies it). */
export interface RequestIds {
  readonly request_id?: string;
  readonly global_request_id?: string | null;
}

/** oslo.context's `global_id`: the global request id when there is one, else the local request id. */
export function globalRequestId(ctx: RequestIds | undefined): string | undefined {
  const id = ctx?.global_request_id || ctx?.request_id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

export function requestIdHeaders(ctx: RequestIds | undefined): Record<string, string> {
  const id = globalRequestId(ctx);
  return id === undefined ? {} : { 'X-OpenStack-Request-ID': id };
}

/** Log fields for a request made on behalf of `ctx`. */
export function requestLogFields(ctx: RequestIds | undefined): Record<string, string> {
  return typeof ctx?.request_id === 'string' ? { request_id: ctx.request_id } : {};
}
