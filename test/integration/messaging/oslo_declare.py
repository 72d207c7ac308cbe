#!/usr/bin/python3
"""Declares RPC and notification entities with oslo.messaging's own impl_rabbit code, under given names.

The messaging integration tests run it before or after Berth declares the same names: a flag that differs makes
one side get 406 PRECONDITION_FAILED. Input: one JSON argument; output: one JSON line {"ok": [...], "errors": [...]}.
"""
import json
import sys
import types

from oslo_config import cfg
import oslo_messaging
from oslo_messaging._drivers import common as rpc_common
from oslo_messaging._drivers import impl_rabbit

URL = 'rabbit://guest:guest@127.0.0.1:5672/'


def main():
    spec = json.loads(sys.argv[1])
    conf = cfg.CONF
    conf([], project='berth-test')
    oslo_messaging.get_rpc_transport(conf, URL)  # registers [oslo_messaging_rabbit]
    for name, value in spec.get('options', {}).items():
        conf.set_override(name, value, group='oslo_messaging_rabbit')
    url = oslo_messaging.TransportURL.parse(conf, URL)
    conn = impl_rabbit.Connection(conf, url, rpc_common.PURPOSE_LISTEN, retry=0)
    # declare_fanout_consumer names its queue <topic>_fanout_<uuid4 hex>: make that the name Berth uses.
    impl_rabbit.uuid = types.SimpleNamespace(uuid4=lambda: types.SimpleNamespace(hex=spec['fanout_hex']))
    callback = lambda message: None  # noqa: E731
    steps = [
        ('topic queue', lambda: conn.declare_topic_consumer(spec['exchange'], spec['topic'], callback)),
        ('server queue', lambda: conn.declare_topic_consumer(
            spec['exchange'], '%s.%s' % (spec['topic'], spec['server']), callback)),
        ('fanout queue', lambda: conn.declare_fanout_consumer(spec['topic'], callback)),
        ('reply queue', lambda: conn.declare_direct_consumer(spec['reply_queue'], callback)),
    ]
    for routing_key in spec.get('notification_queues', []):
        steps.append(('notification queue %s' % routing_key, lambda rk=routing_key: conn.notify_send(
            spec['exchange'], rk, {'oslo.version': '2.0', 'oslo.message': '{}'})))
    ok, errors = [], []
    for what, step in steps:
        try:
            step()
            ok.append(what)
        except Exception as exc:  # report every mismatch, not only the first
            errors.append('%s: %s' % (what, exc))
    # No conn.close(): oslo would delete the fanout queue, which is Berth's when Berth declared it first.
    print(json.dumps({'ok': ok, 'errors': errors}))


if __name__ == '__main__':
    main()
