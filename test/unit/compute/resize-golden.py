#!/usr/bin/python3
"""Golden resize notifications from Nova's own code (Debian's python3-nova, Zed): what the compute manager's
_send_prep_resize_notifications, _send_finish_resize_notifications, _confirm_resize, _finish_revert_resize and
_reschedule_resize_or_reraise emit, for test/unit/compute/resize-notifications.test.ts.

    /usr/bin/python3 test/unit/compute/resize-golden.py > test/unit/compute/resize-golden.json

It reuses the instance, context and test notifiers of test/unit/notifications/nova_golden.py.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'notifications'))
import nova_golden as g  # noqa: E402

from nova import objects  # noqa: E402
from nova.compute import utils as compute_utils  # noqa: E402
from nova.network import model as network_model  # noqa: E402
from nova.objects import fields  # noqa: E402

CONF = g.CONF


def new_flavor():
    return objects.Flavor(
        id=2, name='m1.small', memory_mb=1024, vcpus=2, root_gb=1, ephemeral_gb=0, flavorid='f2', swap=0,
        rxtx_factor=1.0, vcpu_weight=0, disabled=False, is_public=True, extra_specs={}, description=None)


def cases():
    ctx = g.nova_context.RequestContext(user_id='u1', project_id='p1', request_id='req-golden', roles=['member'])
    nw = network_model.NetworkInfo.hydrate(g.NETWORK_INFO)
    bdms = objects.BlockDeviceMappingList(objects=[])
    flavor = new_flavor()
    out = []

    def call(action, phase, **extra):
        return dict({'action': action, 'phase': phase}, **extra)

    for phase in ('start', 'end'):
        inst = g.make_instance(ctx, task_state='resize_prep', power_state=1)
        extra = {'new_instance_type': flavor.name, 'new_instance_type_id': flavor.id} if phase == 'end' else None
        compute_utils.notify_about_instance_usage(g.legacy_notifier(), ctx, inst, 'resize.prep.%s' % phase,
                                                  extra_usage_info=extra)
        compute_utils.notify_about_resize_prep_instance(ctx, inst, CONF.host, phase, flavor)
        out.append(g.case('resize_prep.%s' % phase, ctx, inst,
                          call('resize_prep', phase, new_flavor=flavor.obj_to_primitive())))

    for phase in ('start', 'end'):
        inst = g.make_instance(ctx, task_state='resize_finish', power_state=1)
        compute_utils.notify_about_instance_usage(g.legacy_notifier(), ctx, inst, 'finish_resize.%s' % phase,
                                                  network_info=nw)
        compute_utils.notify_about_instance_action(ctx, inst, CONF.host,
                                                   action=fields.NotificationAction.RESIZE_FINISH,
                                                   phase=phase, bdms=bdms)
        out.append(g.case('resize_finish.%s' % phase, ctx, inst, call('resize_finish', phase)))

    for phase in ('start', 'end'):
        inst = g.make_instance(ctx, vm_state='resized', task_state=None, power_state=1)
        compute_utils.notify_about_instance_usage(g.legacy_notifier(), ctx, inst, 'resize.confirm.%s' % phase,
                                                  network_info=nw if phase == 'end' else None)
        compute_utils.notify_about_instance_action(ctx, inst, CONF.host,
                                                   action=fields.NotificationAction.RESIZE_CONFIRM, phase=phase)
        out.append(g.case('resize_confirm.%s' % phase, ctx, inst, call('resize_confirm', phase)))

    for phase in ('start', 'end'):
        inst = g.make_instance(ctx, vm_state='resized', task_state='resize_reverting', power_state=1)
        compute_utils.notify_about_instance_usage(g.legacy_notifier(), ctx, inst, 'resize.revert.%s' % phase)
        compute_utils.notify_about_instance_action(ctx, inst, CONF.host,
                                                   action=fields.NotificationAction.RESIZE_REVERT,
                                                   phase=phase, bdms=bdms)
        out.append(g.case('resize_revert.%s' % phase, ctx, inst, call('resize_revert', phase)))

    # _reschedule_resize_or_reraise: resize.error with the fault, no BDMs, no network_info. The exception is raised
    # inside Nova (its module_name comes from where it was raised).
    inst = g.make_instance(ctx, task_state='resize_prep', power_state=1)
    try:
        g.utils.validate_integer('ten', 'count')
    except Exception as e:
        failure = g.serialised_failure()
        compute_utils.notify_about_instance_usage(g.legacy_notifier(), ctx, inst, 'resize.error', fault=e)
        compute_utils.notify_about_instance_action(ctx, inst, CONF.host, action=fields.NotificationAction.RESIZE,
                                                   phase=fields.NotificationPhase.ERROR, exception=e)
    out.append(g.case('resize.error', ctx, inst, call('resize', 'error', failure=failure)))
    return out


if __name__ == '__main__':
    json.dump(cases(), sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write('\n')
