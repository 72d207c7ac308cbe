// The casts one nova-compute sends another during a resize (nova/compute/rpcapi.py, Zed: version 6.0, topic
// `compute`, server = the host that runs the next step): our own `compute.<host>` queue for a same-host resize, the
// other host's for a move between Berth hosts.
import type { RequestContext, RpcCaller, Target } from '../messaging/types';
import { serializeEntity, type Flavor, type Instance, type Migration, type NovaObject } from '../objects';

/** What a Zed compute sends for every resize cast ("send 6.0 if the cap allows"). */
export const COMPUTE_CAST_VERSION = '6.0';

export interface ResizeInstanceCast {
  readonly instance: Instance;
  readonly migration: Migration;
  readonly image: Readonly<Record<string, unknown>>;
  readonly flavor: Flavor;
  readonly requestSpec: NovaObject | null;
  readonly cleanShutdown: boolean;
}

export interface FinishResizeCast {
  readonly instance: Instance;
  readonly migration: Migration;
  readonly image: Readonly<Record<string, unknown>>;
  readonly diskInfo: string;
  readonly requestSpec: NovaObject | null;
}

export interface FinishRevertResizeCast {
  readonly instance: Instance;
  readonly migration: Migration;
  readonly requestSpec: NovaObject | null;
}

export class ComputeRpcApi {
  constructor(private readonly rpc: Pick<RpcCaller, 'cast'>) {}

  /** dest → source (prep_resize's last step): power off and hand over. */
  resizeInstance(context: RequestContext, host: string, a: ResizeInstanceCast): Promise<void> {
    return this.cast(context, host, 'resize_instance', {
      instance: a.instance,
      migration: a.migration,
      image: a.image,
      flavor: a.flavor,
      clean_shutdown: a.cleanShutdown,
      request_spec: a.requestSpec,
    });
  }

  /** source → dest (resize_instance's last step): bring the instance up with the new flavor. */
  finishResize(context: RequestContext, host: string, a: FinishResizeCast): Promise<void> {
    return this.cast(context, host, 'finish_resize', {
      instance: a.instance,
      migration: a.migration,
      image: a.image,
      disk_info: a.diskInfo,
      request_spec: a.requestSpec,
    });
  }

  /** dest → source (revert_resize's last step): the old flavor back on the source. */
  finishRevertResize(context: RequestContext, host: string, a: FinishRevertResizeCast): Promise<void> {
    return this.cast(context, host, 'finish_revert_resize', {
      instance: a.instance,
      migration: a.migration,
      request_spec: a.requestSpec,
    });
  }

  private cast(context: RequestContext, host: string, method: string, args: Record<string, unknown>): Promise<void> {
    const target: Target = { topic: 'compute', server: host, version: COMPUTE_CAST_VERSION };
    return this.rpc.cast(context, target, method, serializeEntity(args) as Record<string, unknown>);
  }
}
