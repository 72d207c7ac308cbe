// Placement failures the resource tracker treats differently from a plain RequestError. Names follow
// nova.exception where Nova has one.

/** POST /resource_providers: another provider already has our name (e.g. a node re-created with a new UUID). */
export class ResourceProviderNameConflict extends Error {
  override readonly name = 'ResourceProviderNameConflict';
  readonly uuid: string;
  readonly providerName: string;
  /** The provider that holds the name, when placement could tell us; it is stale and must be cleaned up. */
  readonly staleUuid: string | null;

  constructor(uuid: string, providerName: string, staleUuid: string | null, options?: { cause?: unknown }) {
    const holder = staleUuid === null ? 'another resource provider' : `resource provider ${staleUuid}`;
    super(
      `Cannot create resource provider ${uuid}: its name '${providerName}' is already used by ${holder}; ` +
        'delete that stale provider (e.g. `openstack resource provider delete`) and retry',
      options,
    );
    this.uuid = uuid;
    this.providerName = providerName;
    this.staleUuid = staleUuid;
  }
}

/** 409 placement.inventory.inuse: the new inventory would drop resources that are allocated. */
export class InventoryInUse extends Error {
  override readonly name = 'InventoryInUse';
  readonly uuid: string;

  constructor(uuid: string, detail: string, options?: { cause?: unknown }) {
    super(`Inventory of resource provider ${uuid} is in use: ${detail}`, options);
    this.uuid = uuid;
  }
}

/** The provider kept changing under us (409 concurrent update) for every attempt. */
export class ResourceProviderUpdateConflict extends Error {
  override readonly name = 'ResourceProviderUpdateConflict';
  readonly uuid: string;

  constructor(uuid: string, what: string, attempts: number, options?: { cause?: unknown }) {
    super(`Updating ${what} of resource provider ${uuid} conflicted ${attempts} times; giving up`, options);
    this.uuid = uuid;
  }
}

/** A trait we want is missing from placement and cannot be created (only CUSTOM_ traits can). */
export class TraitCreationFailed extends Error {
  override readonly name = 'TraitCreationFailed';
  readonly trait: string;

  constructor(trait: string, reason: string, options?: { cause?: unknown }) {
    super(`Failed to create trait ${trait}: ${reason}`, options);
    this.trait = trait;
  }
}

/** DELETE /resource_providers/<uuid> → 409: allocations or child providers still reference it. */
export class ResourceProviderInUse extends Error {
  override readonly name = 'ResourceProviderInUse';
  readonly uuid: string;

  constructor(uuid: string, options?: { cause?: unknown }) {
    super(`Resource provider ${uuid} has allocations or children and cannot be deleted`, options);
    this.uuid = uuid;
  }
}

/** POST /allocations (a move between consumers) hit a consumer generation conflict: someone else changed one. */
export class AllocationMoveFailed extends Error {
  override readonly name = 'AllocationMoveFailed';
  readonly sourceConsumer: string;
  readonly targetConsumer: string;

  constructor(sourceConsumer: string, targetConsumer: string, detail: string, options?: { cause?: unknown }) {
    super(`Failed to move allocations from consumer ${sourceConsumer} to consumer ${targetConsumer}. Error: ${detail}`, options);
    this.sourceConsumer = sourceConsumer;
    this.targetConsumer = targetConsumer;
  }
}
