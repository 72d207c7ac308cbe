#!/usr/bin/python3
"""A Python oslo.messaging 14 peer for the interoperability tests (real oslo code, local broker only).

  oslo_peer.py client '<json>'   make the listed calls/casts, print one JSON line with the outcomes
  oslo_peer.py server '<json>'   serve a test endpoint until stdin closes; print "ready" once consuming
  oslo_peer.py listen '<json>'   print each notification received on the topics as one JSON line
  oslo_peer.py bench '<json>'    time sequential echo calls (bench/messaging-rpc.ts), print one JSON line
"""
import json
import sys
import threading
import time

from oslo_config import cfg
import oslo_messaging

URL = 'rabbit://guest:guest@127.0.0.1:5672/'


def transport(spec, notification=False):
    conf = cfg.CONF
    conf([], project='berth-test')
    oslo_messaging.set_transport_defaults(spec['exchange'])
    if notification:
        return oslo_messaging.get_notification_transport(conf, URL)
    return oslo_messaging.get_rpc_transport(conf, URL, allowed_remote_exmods=['nova.exception'])


def run_client(spec):
    t = transport(spec)
    outcomes = []
    for c in spec['calls']:
        target = oslo_messaging.Target(topic=spec['topic'], server=spec.get('server'),
                                       namespace=c.get('namespace'), version=c.get('version', '6.0'),
                                       fanout=c.get('fanout', False))
        client = oslo_messaging.get_rpc_client(t, target, timeout=c.get('timeout', 15),
                                               call_monitor_timeout=c.get('call_monitor_timeout'))
        ctxt = c.get('context', {'request_id': 'req-python-peer'})
        try:
            if c.get('cast'):
                client.cast(ctxt, c['method'], **c.get('args', {}))
                outcomes.append({'ok': None})
            else:
                outcomes.append({'ok': client.call(ctxt, c['method'], **c.get('args', {}))})
        except Exception as exc:
            outcomes.append({'error': type(exc).__name__, 'module': type(exc).__module__,
                             'exc_type': getattr(exc, 'exc_type', None), 'text': str(exc).split('\n')[0],
                             'kwargs': getattr(exc, 'kwargs', None)})
    reply_q = getattr(t._driver, '_reply_q', None)  # for the test's cleanup
    print(json.dumps({'outcomes': outcomes, 'reply_q': reply_q}), flush=True)
    t.cleanup()


def run_bench(spec):
    t = transport(spec)
    target = oslo_messaging.Target(topic=spec['topic'], server=spec['server'], version='6.0')
    client = oslo_messaging.get_rpc_client(t, target, timeout=30)
    ctxt = {'request_id': 'req-bench'}
    for _ in range(spec.get('warmup', 50)):
        client.call(ctxt, 'echo', n=0)
    latencies = []
    for i in range(spec['calls']):
        start = time.perf_counter()
        client.call(ctxt, 'echo', n=i)
        latencies.append(time.perf_counter() - start)
    reply_q = getattr(t._driver, '_reply_q', None)
    print(json.dumps({'latencies_ms': [x * 1000 for x in latencies], 'reply_q': reply_q}), flush=True)
    t.cleanup()


class Endpoint(object):
    target = oslo_messaging.Target(version='6.1')

    def echo(self, ctxt, **kwargs):
        return {'args': kwargs, 'request_id': ctxt.get('request_id')}

    def not_found(self, ctxt, instance_id):
        from nova import exception
        raise exception.InstanceNotFound(instance_id=instance_id)

    def slow(self, ctxt, seconds):
        time.sleep(seconds)
        return 'slept'


class BaseAPI(object):
    target = oslo_messaging.Target(namespace='baseapi', version='1.1')

    def ping(self, ctxt, arg):
        return {'service': 'python-peer', 'arg': arg}


def run_server(spec):
    t = transport(spec)
    target = oslo_messaging.Target(topic=spec['topic'], server=spec['server'])
    server = oslo_messaging.get_rpc_server(t, target, [Endpoint(), BaseAPI()], executor='threading')
    server.start()
    print('ready', flush=True)
    sys.stdin.read()  # until the test closes our stdin
    server.stop()
    server.wait()
    t.cleanup()


class Collector(object):
    def __init__(self):
        self.lock = threading.Lock()

    def _record(self, priority, ctxt, publisher_id, event_type, payload, metadata):
        with self.lock:
            print(json.dumps({'priority': priority, 'ctxt': ctxt, 'publisher_id': publisher_id,
                              'event_type': event_type, 'payload': payload, 'metadata': metadata}), flush=True)

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._record('info', ctxt, publisher_id, event_type, payload, metadata)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self._record('error', ctxt, publisher_id, event_type, payload, metadata)


def run_listener(spec):
    t = transport(spec, notification=True)
    targets = [oslo_messaging.Target(topic=topic) for topic in spec['topics']]
    listener = oslo_messaging.get_notification_listener(t, targets, [Collector()], executor='threading')
    listener.start()
    print('ready', flush=True)
    sys.stdin.read()
    listener.stop()
    listener.wait()
    t.cleanup()


if __name__ == '__main__':
    {'client': run_client, 'server': run_server, 'listen': run_listener, 'bench': run_bench}[sys.argv[1]](json.loads(sys.argv[2]))
