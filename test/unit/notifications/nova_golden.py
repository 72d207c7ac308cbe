#!/usr/bin/python3
"""Golden notifications from Nova's own code (Debian's python3-nova, Zed), for the cases the lab capture lacks.

Run with the system Python that has nova installed:
    /usr/bin/python3 test/unit/notifications/nova_golden.py > test/unit/notifications/fixtures/nova-golden.json

Each case holds the Instance primitive and the request context Nova was given, the exception (serialised exactly
as oslo.messaging sends failures), and the notifications Nova emitted through oslo's in-memory 'test' driver:
publisher, event type, priority and the serialised payload, i.e. what would go on the wire.
"""
import datetime
import json
import sys

import oslo_messaging as messaging
from oslo_messaging._drivers import common as rpc_common
from oslo_messaging.notify import _impl_test

import nova.conf
from nova import context as nova_context
from nova import exception_wrapper
from nova import objects
from nova import rpc
from nova import utils
from nova.compute import utils as compute_utils
from nova.network import model as network_model
from nova.objects import fields

CONF = nova.conf.CONF
objects.register_all()
CONF([], project='nova')
CONF.set_override('host', 'fake-1')
CONF.set_override('notification_format', 'both', 'notifications')
CONF.set_override('api_servers', ['http://127.0.0.1:9292'], 'glance')

_transport = messaging.get_notification_transport(CONF, url='fake:/')
_serializer = rpc.RequestContextSerializer(rpc.JsonPayloadSerializer())
rpc.LEGACY_NOTIFIER = messaging.Notifier(_transport, serializer=_serializer, driver='test')
rpc.NOTIFIER = messaging.Notifier(_transport, serializer=_serializer, driver='test',
                                  topics=['versioned_notifications'])

UUID = 'ae8e9f49-252f-493c-aa82-5113fd9bd2e7'
NETWORK_INFO = [{
    'id': '0a1b2c3d-0000-4000-8000-000000000001', 'address': 'FA:16:3E:4C:2C:30', 'type': 'ovs',
    'devname': 'tap0a1b2c3d-00', 'vnic_type': 'normal', 'active': True, 'meta': {'vif_mtu': 1450},
    'extra_key': 'x',
    'network': {'id': 'net-1', 'label': 'private', 'bridge': 'br-int', 'meta': {'mtu': 1450}, 'subnets': [
        {'cidr': '10.0.0.0/24', 'meta': {'dhcp_server': '10.0.0.2'}, 'ips': [
            {'address': '10.0.0.5', 'type': 'fixed', 'version': 4, 'meta': {},
             'floating_ips': [{'address': '172.24.4.3', 'type': 'floating'}]}]},
        {'cidr': 'fd00::/64', 'ips': [{'address': 'fd00:0:0:0::5', 'floating_ips': []}]}]},
}]


def when(*args):
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc)


def make_instance(ctx, **overrides):
    flavor = objects.Flavor(
        id=1, name='m1.tiny', memory_mb=512, vcpus=1, root_gb=1, ephemeral_gb=2, flavorid='f1', swap=0,
        rxtx_factor=1.5, vcpu_weight=0, disabled=False, is_public=True, extra_specs={'hw:cpu_policy': 'shared'},
        description='tiny')
    values = dict(
        uuid=UUID, id=42, user_id='u1', project_id='p1', image_ref='1271781e-5153-43b9-a96c-9851e9bec3c0',
        kernel_id='', ramdisk_id='', hostname='vm1', display_name='vm1', display_description='a server',
        reservation_id='r-1', host='fake-1', node='fake-1', availability_zone='nova', cell_name=None,
        architecture='x86_64', os_type='linux', instance_type_id=1, access_ip_v4='192.0.2.10', access_ip_v6=None,
        key_name='key1', vm_state='active', task_state='resize_migrating', power_state=4, progress=42, locked=True,
        locked_by='admin', auto_disk_config=True, launched_at=when(2026, 11, 30, 1, 8, 22),
        terminated_at=None, deleted_at=None, updated_at=when(2026, 11, 30, 1, 9, 0),
        created_at=when(2026, 11, 30, 1, 8, 21), metadata={'a': 'b'},
        system_metadata={'image_min_disk': '1', 'image_disk_format': 'raw', 'other': 'x', 'locked_reason': 'maint'},
        flavor=flavor,
        info_cache=objects.InstanceInfoCache(
            instance_uuid=UUID, network_info=network_model.NetworkInfo.hydrate(NETWORK_INFO)),
        keypairs=objects.KeyPairList(objects=[objects.KeyPair(
            id=1, name='key1', user_id='u1', fingerprint='aa:bb', public_key='ssh-rsa AAAA', type='ssh')]),
        tags=objects.TagList(objects=[objects.Tag(resource_id=UUID, tag='t1'), objects.Tag(resource_id=UUID, tag='t2')]),
        trusted_certs=objects.TrustedCerts(ids=['cert-1', 'cert-2']),
    )
    values.update(overrides)
    return objects.Instance(context=ctx, **values)


def serialised_failure():
    """The exception being handled, serialised as oslo.messaging sends it (its traceback as of now)."""
    return json.loads(rpc_common.serialize_remote_exception(sys.exc_info()))


def emitted():
    out = [{'publisher_id': m['publisher_id'], 'event_type': m['event_type'], 'priority': m['priority'],
            'payload': m['payload']} for _ctx, m, _priority, _retry in _impl_test.NOTIFICATIONS]
    _impl_test.reset()
    return out


def context_dict(ctx):
    return {k: v for k, v in ctx.to_dict().items() if k in (
        'request_id', 'user_id', 'project_id', 'is_admin', 'roles', 'global_request_id')}


def legacy_notifier():
    return rpc.get_notifier('compute', CONF.host)


def case(name, ctx, instance, call, **extra):
    out = {'name': name, 'context': context_dict(ctx), 'instance': instance.obj_to_primitive(), 'call': call,
           'expected': emitted()}
    out.update(extra)
    return out


def cases():
    ctx = nova_context.RequestContext(user_id='u1', project_id='p1', request_id='req-golden', roles=['member'])
    out = []

    # resize.start: legacy with network_info (fixed_ips), versioned with BDMs (none with a volume).
    inst = make_instance(ctx)
    compute_utils.notify_about_instance_usage(legacy_notifier(), ctx, inst, 'resize.start',
                                              network_info=network_model.NetworkInfo.hydrate(NETWORK_INFO))
    compute_utils.notify_about_instance_action(ctx, inst, CONF.host, action=fields.NotificationAction.RESIZE,
                                               phase=fields.NotificationPhase.START,
                                               bdms=objects.BlockDeviceMappingList(objects=[]))
    out.append(case('resize.start with network info', ctx, inst, {'action': 'resize', 'phase': 'start'}))

    # create.error: a NovaException raised inside Nova (InvalidInput from nova.utils).
    inst = make_instance(ctx, vm_state='building', task_state='spawning', power_state=0, launched_at=None,
                         host=None, node=None)
    try:
        utils.validate_integer('ten', 'count')
    except Exception as e:
        failure = serialised_failure()
        compute_utils.notify_about_instance_usage(legacy_notifier(), ctx, inst, 'create.error', fault=e)
        compute_utils.notify_about_instance_create(ctx, inst, CONF.host, phase=fields.NotificationPhase.ERROR,
                                                   exception=e, bdms=objects.BlockDeviceMappingList(objects=[]))
    out.append(case('create.error with a Nova exception', ctx, inst,
                    {'action': 'create', 'phase': 'error', 'failure': failure}))

    # reboot.error: a builtin exception raised in oslo.versionedobjects (message is the class name, code 500).
    inst = make_instance(ctx, task_state='reboot_started')
    try:
        fields.InstancePowerState().coerce(inst, 'power_state', 'bogus')
    except Exception as e:
        failure = serialised_failure()
        compute_utils.notify_about_instance_usage(legacy_notifier(), ctx, inst, 'reboot.error', fault=e)
        compute_utils.notify_about_instance_action(ctx, inst, CONF.host, action=fields.NotificationAction.REBOOT,
                                                   phase=fields.NotificationPhase.ERROR, exception=e,
                                                   bdms=objects.BlockDeviceMappingList(objects=[]))
    out.append(case('reboot.error with a builtin exception', ctx, inst,
                    {'action': 'reboot', 'phase': 'error', 'failure': failure}))

    # snapshot.start: InstanceActionSnapshotPayload.
    inst = make_instance(ctx, task_state='image_snapshot', info_cache=None)
    compute_utils.notify_about_instance_usage(legacy_notifier(), ctx, inst, 'snapshot.start')
    compute_utils.notify_about_instance_snapshot(ctx, inst, CONF.host, phase=fields.NotificationPhase.START,
                                                 snapshot_image_id='9f0e6b0a-9c57-4a43-8a1c-1c8a8b9d7e11')
    out.append(case('snapshot.start', ctx, inst, {'action': 'snapshot', 'phase': 'start',
                                                  'snapshot_image_id': '9f0e6b0a-9c57-4a43-8a1c-1c8a8b9d7e11'}))

    # rebuild.start / rebuild.end: InstanceActionRebuildPayload, legacy image_name, end with network_info.
    inst = make_instance(ctx, task_state='rebuilding', trusted_certs=None)
    compute_utils.notify_about_instance_usage(legacy_notifier(), ctx, inst, 'rebuild.start',
                                              extra_usage_info={'image_name': 'tiny2'})
    compute_utils.notify_about_instance_rebuild(ctx, inst, CONF.host, phase=fields.NotificationPhase.START,
                                                bdms=objects.BlockDeviceMappingList(objects=[]))
    out.append(case('rebuild.start', ctx, inst, {'action': 'rebuild', 'phase': 'start', 'image_name': 'tiny2'}))
    inst = make_instance(ctx, task_state=None)
    compute_utils.notify_about_instance_usage(legacy_notifier(), ctx, inst, 'rebuild.end',
                                              network_info=network_model.NetworkInfo.hydrate(NETWORK_INFO),
                                              extra_usage_info={'image_name': 'tiny2'})
    compute_utils.notify_about_instance_rebuild(ctx, inst, CONF.host, phase=fields.NotificationPhase.END,
                                                bdms=objects.BlockDeviceMappingList(objects=[]))
    out.append(case('rebuild.end', ctx, inst, {'action': 'rebuild', 'phase': 'end', 'image_name': 'tiny2'}))

    # A periodic task's admin context: no request_id and no initiator in the versioned payload.
    admin = nova_context.get_admin_context()
    inst = make_instance(admin, task_state='powering-off', progress=0, auto_disk_config=False, locked=False,
                         system_metadata={})
    compute_utils.notify_about_instance_usage(legacy_notifier(), admin, inst, 'power_off.start')
    compute_utils.notify_about_instance_action(admin, inst, CONF.host, action=fields.NotificationAction.POWER_OFF,
                                               phase=fields.NotificationPhase.START)
    out.append(case('power_off.start from a periodic task', admin, inst, {'action': 'power_off', 'phase': 'start'}))

    # wrap_exception: legacy `<function name>` at ERROR with {exception, args}, versioned compute.exception.
    flavor = objects.Flavor(id=1, name='m1.tiny', memory_mb=512, created_at=when(2026, 11, 30, 1, 8, 12))

    class Manager(object):
        @exception_wrapper.wrap_exception(service='compute', binary='nova-compute')
        def stop_instance(self, context, instance, clean_shutdown, admin_password=None, flavor=None):
            utils.validate_integer('ten', 'count')

    # The failure as it stands when wrap_exception emits (its traceback then ends in the wrapper).
    seen = {}
    emit_versioned = exception_wrapper._emit_versioned_exception_notification

    def spy(context, exc, source):
        seen['failure'] = serialised_failure()
        return emit_versioned(context, exc, source)

    exception_wrapper._emit_versioned_exception_notification = spy
    call_args = {'instance': UUID, 'clean_shutdown': True, 'admin_password': 'secret', 'flavor': flavor}
    try:
        Manager().stop_instance(ctx, **call_args)
    except Exception:
        pass
    finally:
        exception_wrapper._emit_versioned_exception_notification = emit_versioned
    failure = seen['failure']
    out.append({'name': 'wrap_exception', 'context': context_dict(ctx), 'method': 'stop_instance',
                'args': {'instance': UUID, 'clean_shutdown': True, 'admin_password': 'secret',
                         'flavor': flavor.obj_to_primitive()},
                'failure': failure, 'expected': emitted()})
    return out


if __name__ == '__main__':
    json.dump(cases(), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write('\n')
