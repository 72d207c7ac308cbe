// Public contract of src/messaging (oslo.messaging's rabbit driver over amqplib). Pure transport: nothing here
// knows a Nova method. The wire rules are in ../shared/docs/nova-compute-protocol.md §1.

/**
 * The request context as it travels on the wire (`_context_<key>` flattened into the message), keys as Nova sends
 * them (`request_id`, `user_id`, `project_id`, `auth_token`, `roles`, `is_admin`, `global_request_id`, …).
 * Unknown keys are kept so a context can be passed back to the conductor unchanged.
 */
export interface RequestContext {
  request_id: string;
  global_request_id?: string | null;
  user_id?: string | null;
  project_id?: string | null;
  auth_token?: string | null;
  is_admin?: boolean;
  roles?: string[];
  read_deleted?: string;
  [key: string]: unknown;
}

/** Where a message goes: exchange `nova` (control_exchange), routing key `topic` or `topic.server`. */
export interface Target {
  readonly topic: string;
  readonly server?: string;
  /** e.g. `baseapi`, `compute_task`; absent for compute and conductor object methods. */
  readonly namespace?: string | null;
  /** The version the caller asks for, e.g. "3.0". */
  readonly version: string;
  /** Overrides the control exchange. */
  readonly exchange?: string;
  /** Fanout cast to `<topic>_fanout`. */
  readonly fanout?: boolean;
}

/** What a handler sees of an incoming RPC. */
export interface IncomingCall {
  readonly method: string;
  readonly namespace: string | null;
  /** The requested version ("1.0" when the message had none). */
  readonly version: string;
  readonly args: Readonly<Record<string, unknown>>;
  readonly context: RequestContext;
  /** True for a CALL (the server replies), false for a CAST. */
  readonly isCall: boolean;
  /** `_msg_id` for CALLs, `_unique_id` otherwise: the id to log. */
  readonly messageId: string;
}

/** A handler returns the JSON-ready result (objects already serialised to primitives) or throws. */
export type RpcHandler = (call: IncomingCall) => Promise<unknown>;

/** One oslo endpoint: methods are matched by name within a namespace and a compatible version (same major, minor ≤). */
export interface RpcEndpoint {
  readonly namespace: string | null;
  readonly version: string;
  readonly methods: Readonly<Record<string, RpcHandler>>;
}

/** Flags that must match what the rest of the deployment declared (a mismatch gets 406 from RabbitMQ). */
export interface QueueFlags {
  /** `[oslo_messaging_rabbit] amqp_durable_queues` */
  readonly durable: boolean;
  /** `[oslo_messaging_rabbit] amqp_auto_delete` */
  readonly autoDelete: boolean;
  /** `[oslo_messaging_rabbit] rabbit_ha_queues` → `x-ha-policy: all` */
  readonly haQueues: boolean;
  /** `[oslo_messaging_rabbit] rabbit_quorum_queue` → `x-queue-type: quorum` on topic queues */
  readonly quorumQueues: boolean;
  /** `[oslo_messaging_rabbit] rabbit_transient_queues_ttl` seconds → `x-expires` on fanout and reply queues */
  readonly transientQueuesTtlSec: number;
  /** `[oslo_messaging_rabbit] rabbit_quorum_delivery_limit` → `x-delivery-limit` on quorum queues (0 = unset) */
  readonly quorumDeliveryLimit?: number;
  /** `[oslo_messaging_rabbit] rabbit_quroum_max_memory_length` (sic) → `x-max-in-memory-length` (0 = unset) */
  readonly quorumMaxMemoryLength?: number;
  /** `[oslo_messaging_rabbit] rabbit_quroum_max_memory_bytes` (sic) → `x-max-in-memory-bytes` (0 = unset) */
  readonly quorumMaxMemoryBytes?: number;
}

/** Per-call options of RpcCaller.call. */
export interface CallOptions {
  /** Overall reply timeout (oslo `timeout`; default `[DEFAULT] rpc_response_timeout` = 60 s); also the `expiration`. */
  readonly timeoutMs?: number;
  /**
   * oslo `call_monitor_timeout`: sent as `_timeout`; the server then heartbeats every half of it and the call fails
   * early if the heartbeats stop. Integer seconds ≥ 2 to be useful.
   */
  readonly callMonitorTimeoutSec?: number;
}

/** The calling half of the RPC client, as the conductor client and the compute manager use it. */
export interface RpcCaller {
  /** CALL: resolves with the reply's result; rejects with RemoteFailure or MessagingTimeout. */
  call(
    context: RequestContext,
    target: Target,
    method: string,
    args: Record<string, unknown>,
    options?: CallOptions,
  ): Promise<unknown>;
  /** CAST: resolves when the broker confirmed the publish. */
  cast(context: RequestContext, target: Target, method: string, args: Record<string, unknown>): Promise<void>;
}
