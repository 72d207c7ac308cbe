// TypeScript types derived from ./object-schema.ts, so the field types have one source: `instance.get('vm_state')`
// is `string | null | undefined` because the table says `vm_state: "string?"`.
import type { NovaObject } from './nova-object';
import type { ENUM_VALUES, OBJECT_SCHEMAS } from './object-schema';

type Schemas = typeof OBJECT_SCHEMAS;

/** The name of a nova_object class of this Nova release. */
export type ObjectName = keyof Schemas;

/** One VIF of a network model (nova/network/model.py VIF, as JSON). */
export type Vif = Record<string, unknown>;
/** `InstanceInfoCache.network_info`: the VIF list (a JSON string on the wire). */
export type NetworkInfo = Vif[];

type Notation<S> = S extends string ? S : S extends { readonly type: infer T extends string } ? T : never;

type ScalarValue<S extends string> = S extends 'int' | 'uint' | 'float' | 'ufloat'
  ? number
  : S extends 'bool' | 'flexbool'
    ? boolean
    : S extends 'datetime'
      ? Date
      : S extends 'network-model'
        ? NetworkInfo
        : S extends 'vif-model'
          ? Vif
          : string;

/** The value type of a field-type notation (`"list<object<HVSpec>>"` → `NovaObject<HVSpecFields>[]`). */
export type FieldValue<S extends string> = S extends `${infer T}?`
  ? FieldValue<T> | null
  : S extends `list<${infer T}>`
    ? FieldValue<T>[]
    : S extends `set<${infer T}>`
      ? FieldValue<T>[]
      : S extends `dict<${infer T}>`
        ? Record<string, FieldValue<T>>
        : S extends `object<${infer C}>`
          ? C extends ObjectName
            ? NovaObject<FieldsOf<C>>
            : NovaObject
          : S extends `enum<${infer E}>`
            ? E extends keyof typeof ENUM_VALUES
              ? (typeof ENUM_VALUES)[E][number]
              : string
            : ScalarValue<S>;

/** The fields of class N and their value types (a field that is not set reads as undefined). */
export type FieldsOf<N extends ObjectName> = {
  -readonly [K in keyof Schemas[N]['fields']]: FieldValue<Notation<Schemas[N]['fields'][K]>>;
};

/** A typed NovaObject of class N. */
export type NovaObjectOf<N extends ObjectName> = NovaObject<FieldsOf<N>>;
