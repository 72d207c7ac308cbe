// Version manifests (nova-compute-protocol.md §2.4): what object_class_action_versions sends as `object_versions`,
// computed like oslo's obj_tree_get_versions — the class, then depth first every class its object fields reach.
import { classSpec, type FieldType } from './field-types';
import { UnknownObjectClassError } from './object-errors';
import { OBJECT_SCHEMAS } from './object-schema';
import type { ObjectName } from './object-types';

/** Every class of this Nova release (Zed) at its current version. */
export const OBJECT_VERSIONS: Readonly<Record<ObjectName, string>> = Object.fromEntries(
  Object.entries(OBJECT_SCHEMAS).map(([name, spec]) => [name, spec.version]),
) as Record<ObjectName, string>;

/** `{Class: version}` for `rootClass` and every class reachable through its object fields, in oslo's order. */
export function versionManifest(rootClass: string): Record<string, string> {
  const tree: Record<string, string> = {};
  const visit = (name: string): void => {
    if (Object.hasOwn(tree, name)) return;
    const spec = classSpec(name);
    if (!spec) throw new UnknownObjectClassError(name);
    tree[name] = spec.version;
    for (const field of spec.fields.values()) {
      const child = objectClassOf(field.type);
      if (child) visit(child);
    }
  };
  visit(rootClass);
  return tree;
}

/** The class of an ObjectField or ListOfObjectsField (the only kinds obj_tree_get_versions follows). */
function objectClassOf(type: FieldType): string | undefined {
  if (type.kind === 'object') return type.className;
  if (type.kind === 'list' && type.element.kind === 'object') return type.element.className;
  return undefined;
}
