// Public surface of src/placement: the Placement client a compute host needs and the inventory it reports.
export {
  buildComputeInventory,
  inventoriesEqual,
  type ComputeInventoryInput,
  type Inventories,
  type InventoryRecord,
} from './inventory';
export {
  MAX_UPDATE_ATTEMPTS,
  PLACEMENT_MICROVERSIONS,
  PLACEMENT_SERVICE_TYPE,
  PlacementClient,
  type ConsumerAllocations,
  type PlacementClientOptions,
  type ProviderAllocations,
  type ProviderInventories,
  type ProviderTraits,
  type ResourceProvider,
  type TraitChange,
} from './placement-client';
export {
  AllocationMoveFailed,
  InventoryInUse,
  ResourceProviderInUse,
  ResourceProviderNameConflict,
  ResourceProviderUpdateConflict,
  TraitCreationFailed,
} from './placement-errors';
