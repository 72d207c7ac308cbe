// Named field types and object types for the classes the compute host handles, so signatures read
// `instance: Instance` and `instance.get('vm_state')` is typed. All of them are derived from ./object-schema.ts.
import type { NovaObject } from './nova-object';
import type { FieldsOf } from './object-types';

export interface InstanceFields extends FieldsOf<'Instance'> {}
export type Instance = NovaObject<InstanceFields>;
export interface InstanceListFields extends FieldsOf<'InstanceList'> {}
export type InstanceList = NovaObject<InstanceListFields>;
export interface FlavorFields extends FieldsOf<'Flavor'> {}
export type Flavor = NovaObject<FlavorFields>;
export interface InstanceInfoCacheFields extends FieldsOf<'InstanceInfoCache'> {}
export type InstanceInfoCache = NovaObject<InstanceInfoCacheFields>;
export interface ImageMetaFields extends FieldsOf<'ImageMeta'> {}
export type ImageMeta = NovaObject<ImageMetaFields>;
export interface ImageMetaPropsFields extends FieldsOf<'ImageMetaProps'> {}
export type ImageMetaProps = NovaObject<ImageMetaPropsFields>;
export interface ServiceFields extends FieldsOf<'Service'> {}
export type Service = NovaObject<ServiceFields>;
export interface ComputeNodeFields extends FieldsOf<'ComputeNode'> {}
export type ComputeNode = NovaObject<ComputeNodeFields>;
export interface ComputeNodeListFields extends FieldsOf<'ComputeNodeList'> {}
export type ComputeNodeList = NovaObject<ComputeNodeListFields>;
export interface HVSpecFields extends FieldsOf<'HVSpec'> {}
export type HVSpec = NovaObject<HVSpecFields>;
export interface PciDevicePoolListFields extends FieldsOf<'PciDevicePoolList'> {}
export type PciDevicePoolList = NovaObject<PciDevicePoolListFields>;
export interface InstanceActionEventFields extends FieldsOf<'InstanceActionEvent'> {}
export type InstanceActionEvent = NovaObject<InstanceActionEventFields>;
export interface InstanceFaultFields extends FieldsOf<'InstanceFault'> {}
export type InstanceFault = NovaObject<InstanceFaultFields>;
export interface BlockDeviceMappingFields extends FieldsOf<'BlockDeviceMapping'> {}
export type BlockDeviceMapping = NovaObject<BlockDeviceMappingFields>;
export interface BlockDeviceMappingListFields extends FieldsOf<'BlockDeviceMappingList'> {}
export type BlockDeviceMappingList = NovaObject<BlockDeviceMappingListFields>;
export interface NetworkRequestFields extends FieldsOf<'NetworkRequest'> {}
export type NetworkRequest = NovaObject<NetworkRequestFields>;
export interface NetworkRequestListFields extends FieldsOf<'NetworkRequestList'> {}
export type NetworkRequestList = NovaObject<NetworkRequestListFields>;
export interface RequestSpecFields extends FieldsOf<'RequestSpec'> {}
export type RequestSpec = NovaObject<RequestSpecFields>;
export interface SelectionFields extends FieldsOf<'Selection'> {}
export type Selection = NovaObject<SelectionFields>;
export interface InstanceExternalEventFields extends FieldsOf<'InstanceExternalEvent'> {}
export type InstanceExternalEvent = NovaObject<InstanceExternalEventFields>;
export interface DiagnosticsFields extends FieldsOf<'Diagnostics'> {}
export type Diagnostics = NovaObject<DiagnosticsFields>;
export interface MemoryDiagnosticsFields extends FieldsOf<'MemoryDiagnostics'> {}
export type MemoryDiagnostics = NovaObject<MemoryDiagnosticsFields>;
export interface CpuDiagnosticsFields extends FieldsOf<'CpuDiagnostics'> {}
export type CpuDiagnostics = NovaObject<CpuDiagnosticsFields>;
export interface NicDiagnosticsFields extends FieldsOf<'NicDiagnostics'> {}
export type NicDiagnostics = NovaObject<NicDiagnosticsFields>;
export interface DiskDiagnosticsFields extends FieldsOf<'DiskDiagnostics'> {}
export type DiskDiagnostics = NovaObject<DiskDiagnosticsFields>;
export interface MigrationFields extends FieldsOf<'Migration'> {}
export type Migration = NovaObject<MigrationFields>;
