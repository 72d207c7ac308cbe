#!/usr/bin/python3
"""Writes src/objects/object-schema.ts from the installed Nova's object registry.

Run with Debian's interpreter (it has python3-nova): /usr/bin/python3 src/objects/tools/generate-schema.py [OUTPUT]
The output is the single table of nova_object classes, versions and field types that src/objects reads; it is
committed, so Berth builds without Python. Re-run it when the target Nova release changes. OUTPUT (default: the
committed file) lets a test compare a fresh run with the committed table.
"""
import json
import os
import re
import sys

from nova import objects
from nova.objects import base as nova_base
from nova.objects import fields as nova_fields
from nova.objects import service as nova_service
from nova import version as nova_version
from oslo_versionedobjects import base as ovo_base
from oslo_versionedobjects import fields as ovo_fields

objects.register_all()

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'object-schema.ts')

# Classes whose obj_what_changed() also compares these fields against the value last received or reset (so an
# in-place edit of the dict counts as a change). That logic is code, not data, so it is listed here and checked.
VALUE_TRACKED = {
    'Instance': ['metadata', 'system_metadata'],
    'Flavor': ['extra_specs', 'projects'],
}

# Exact type → DSL name. Subclasses are matched exactly, so the order of this table does not matter.
SCALARS = {
    ovo_fields.String: 'string',
    ovo_fields.SensitiveString: 'string',
    ovo_fields.VersionPredicate: 'string',
    ovo_fields.UUID: 'uuid',
    ovo_fields.MACAddress: 'mac',
    ovo_fields.PCIAddress: 'pci-address',
    ovo_fields.Integer: 'int',
    ovo_fields.NonNegativeInteger: 'uint',
    ovo_fields.Float: 'float',
    ovo_fields.NonNegativeFloat: 'ufloat',
    ovo_fields.Boolean: 'bool',
    ovo_fields.FlexibleBoolean: 'flexbool',
    ovo_fields.DateTime: 'datetime',
    ovo_fields.IPAddress: 'ip',
    ovo_fields.IPV4Address: 'ipv4',
    ovo_fields.IPV6Address: 'ipv6',
    ovo_fields.IPV4AndV6Address: 'ipv4v6',
    nova_fields.ResourceClass: 'resource-class',
    nova_fields.USBAddress: 'usb-address',
    nova_fields.SCSIAddress: 'scsi-address',
    nova_fields.IDEAddress: 'ide-address',
    nova_fields.XenAddress: 'xen-address',
    nova_fields.NetworkModel: 'network-model',
    nova_fields.NetworkVIFModel: 'vif-model',
}

enums = {}


def type_dsl(ftype, where, field):
    """DSL of one field type; `where` is 'Class.field', `field` the top-level Field."""
    if isinstance(ftype, ovo_fields.Enum):
        # Named enum classes keep their name; anonymous EnumField values are named after their field.
        name = type(ftype).__name__
        if type(ftype) is ovo_fields.Enum:
            name = where
        values = list(ftype.valid_values)
        if enums.setdefault(name, values) != values:
            sys.exit('enum %s has two value lists' % name)
        return 'enum<%s>' % name
    if isinstance(ftype, ovo_fields.DateTime) and not ftype.tzinfo_aware:
        sys.exit('%s.%s: naive DateTime is not modelled' % where)
    if type(ftype) in SCALARS:
        return SCALARS[type(ftype)]
    if isinstance(ftype, ovo_fields.Object):
        return 'object<%s>' % ftype._obj_name
    for compound, word in ((ovo_fields.List, 'list'), (ovo_fields.Set, 'set'), (ovo_fields.Dict, 'dict')):
        if type(ftype) is compound:
            element = ftype._element_type
            inner = type_dsl(element._type, where, field)
            if isinstance(element._type, ovo_fields.Object) and not isinstance(field, ovo_fields.ListOfObjectsField):
                # obj_tree_get_versions only follows ObjectField / ListOfObjectsField; so do we.
                sys.exit('%s.%s: objects nested in %s are not modelled' % (where, word))
            return '%s<%s%s>' % (word, inner, '?' if element.nullable else '')
    sys.exit('%s.%s: unknown field type %r' % (where, ftype))


def ts_key(name):
    return name if re.match(r'^[A-Za-z_$][A-Za-z0-9_$]*$', name) else json.dumps(name)


registry = ovo_base.VersionedObjectRegistry.obj_classes()
lines = []
for cls_name in sorted(registry):
    cls = registry[cls_name][0]
    if not cls.__module__.startswith('nova.objects.'):
        continue
    head = ['version: %s' % json.dumps(cls.VERSION)]
    if issubclass(cls, ovo_base.ObjectListBase):
        head.append('list: true')
    if issubclass(cls, nova_base.EphemeralObject):
        head.append('ephemeral: true')
    if cls_name in VALUE_TRACKED:
        if 'obj_what_changed' not in vars(cls):
            sys.exit('%s no longer overrides obj_what_changed' % cls_name)
        head.append('valueTracked: %s' % json.dumps(VALUE_TRACKED[cls_name]))
    lines.append('  %s: {' % ts_key(cls_name))
    for h in head:
        lines.append('    %s,' % h)
    lines.append('    fields: {')
    for field_name, field in cls.fields.items():
        dsl = type_dsl(field._type, '%s.%s' % (cls_name, field_name), field) + ('?' if field.nullable else '')
        extra = []
        if field.default is not ovo_fields.UnspecifiedDefault:
            default = field.default
            if isinstance(default, (set, tuple)):
                default = sorted(default)
            elif isinstance(default, ovo_base.VersionedObject):
                default = default.obj_to_primitive()
            extra.append('default: %s' % json.dumps(default))
        if field.read_only:
            extra.append('readOnly: true')
        if isinstance(field._type, ovo_fields.Object) and field._type._subclasses:
            base_name = field._type._obj_name
            subs = sorted(n for n, c in registry.items()
                          if any(getattr(p, 'obj_name', lambda: None)() == base_name
                                 for p in c[0].__mro__ if hasattr(p, 'obj_name')))
            extra.append('subclasses: %s' % json.dumps(subs))
        if extra:
            lines.append('      %s: { type: %s, %s },' % (ts_key(field_name), json.dumps(dsl), ', '.join(extra)))
        else:
            lines.append('      %s: %s,' % (ts_key(field_name), json.dumps(dsl)))
    lines.append('    },')
    lines.append('  },')

enum_lines = ['  %s: %s,' % (ts_key(name), json.dumps(values)) for name, values in sorted(enums.items())]

header = '''// GENERATED by src/objects/tools/generate-schema.py from python3-nova %s (%s objects); do not edit by hand.
// Every nova_object class of nova/objects at the version this Nova release registers, its fields in Nova's
// declaration order, and each field's type in a small notation that ./field-types.ts parses:
//   string uuid int uint float ufloat bool flexbool datetime ip ipv4 ipv6 ipv4v6 mac pci-address resource-class
//   usb-address scsi-address ide-address xen-address network-model vif-model enum<Name> object<Class>
//   list<T> set<T> dict<T>, and a trailing ? for "nullable" (inside <> it applies to the element).
// `list` marks ObjectListBase classes, `ephemeral` classes that set their defaults on creation, `valueTracked`
// fields whose in-place edits count as changes (Nova's obj_what_changed overrides).
''' % (nova_version.version_string(), len([1 for n in registry if registry[n][0].__module__.startswith('nova.objects.')]))

with open(OUT, 'w') as out:
    out.write(header)
    out.write('\nexport const OBJECT_SCHEMAS = {\n')
    out.write('\n'.join(lines))
    out.write('\n} as const;\n\n')
    out.write('/** Valid values of the enum field types (oslo Enum), by Nova class name or `Class.field` if anonymous. */\n')
    out.write('export const ENUM_VALUES = {\n')
    out.write('\n'.join(enum_lines))
    out.write('\n} as const;\n\n')
    out.write('/** nova.objects.service.SERVICE_VERSION: what a compute of this release reports in Service.version. */\n')
    out.write('export const NOVA_SERVICE_VERSION = %d;\n' % nova_service.SERVICE_VERSION)
print('wrote %s' % os.path.normpath(OUT))
