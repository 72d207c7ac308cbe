import assert from 'node:assert/strict';
import { TransportUrlError } from '../../../src/messaging/errors';
import { describeHost, parseTransportUrl, redactTransportUrl } from '../../../src/messaging/transport-url';

describe('messaging transport URL', () => {
  it('parses the lab URL', () => {
    assert.deepEqual(parseTransportUrl('rabbit://openstack:secret@127.0.0.1:5672/'), {
      transport: 'rabbit',
      hosts: [{ hostname: '127.0.0.1', port: 5672, username: 'openstack', password: 'secret' }],
      virtualHost: '/',
      query: {},
    });
  });

  it('parses several hosts, each with its own credentials, default port 5672 and a vhost', () => {
    const url = parseTransportUrl('rabbit://a:pa@h1:5673,b:pb@h2/nova_vhost');
    assert.deepEqual(url.hosts, [
      { hostname: 'h1', port: 5673, username: 'a', password: 'pa' },
      { hostname: 'h2', port: 5672, username: 'b', password: 'pb' },
    ]);
    assert.equal(url.virtualHost, 'nova_vhost');
  });

  it('decodes url-encoded credentials and vhost; splits user and password at the first colon, host at the last @', () => {
    const url = parseTransportUrl('rabbit://us%40er:p%3Ass:w@rd@host:5672/%2Fvh%20x');
    assert.deepEqual(url.hosts[0], { hostname: 'host', port: 5672, username: 'us@er', password: 'p:ss:w@rd' });
    assert.equal(url.virtualHost, '/vh x');
    // Invalid escapes stay as written (urllib.parse.unquote).
    assert.equal(parseTransportUrl('rabbit://u:100%zz@h/').hosts[0]?.password, '100%zz');
  });

  it("applies kombu's defaults for what is missing", () => {
    assert.deepEqual(parseTransportUrl('rabbit://').hosts, [{ hostname: 'localhost', port: 5672, username: 'guest', password: 'guest' }]);
    assert.deepEqual(parseTransportUrl('rabbit://h').hosts[0], { hostname: 'h', port: 5672, username: 'guest', password: 'guest' });
    assert.equal(parseTransportUrl('rabbit://h').virtualHost, '/');
    assert.equal(parseTransportUrl('rabbit://h/').virtualHost, '/');
    assert.deepEqual(parseTransportUrl('rabbit://u:p@h1,,h2:').hosts.map((h) => describeHost(h)), ['h1:5672', 'h2:5672']);
  });

  it('accepts amqp:// and kombu://, IPv6 and query options', () => {
    assert.equal(parseTransportUrl('amqp://h').transport, 'amqp');
    assert.equal(parseTransportUrl('KOMBU://h').transport, 'kombu');
    const v6 = parseTransportUrl('rabbit://u:p@[::1]:5673,[fe80::2]/');
    assert.deepEqual(v6.hosts.map((h) => [h.hostname, h.port]), [['::1', 5673], ['fe80::2', 5672]]);
    assert.equal(describeHost(v6.hosts[0]!), '[::1]:5673');
    assert.deepEqual(parseTransportUrl('rabbit://h/?ssl=1&heartbeat_timeout_threshold=30&x=1&x=2&empty=').query, {
      ssl: '1',
      heartbeat_timeout_threshold: '30',
      x: '1,2',
    });
  });

  const bad: [string, RegExp][] = [
    ['localhost:5672', /unsupported transport 'localhost'/],
    ['//h', /no scheme/],
    ['kafka://h', /unsupported transport 'kafka'/],
    ['rabbit://u:secretpw@h:abc/', /host #1 \(h\) has a port that is not a number/],
    ['rabbit://u:secretpw@h:70000/', /outside 1-65535/],
    ['rabbit://u:secretpw@[::1/', /unterminated IPv6/],
    ['rabbit://u:secretpw@[::1]x/', /text after the IPv6 address/],
  ];
  for (const [url, problem] of bad) {
    it(`rejects ${url.replace('secretpw', '***')} without showing the password`, () => {
      assert.throws(
        () => parseTransportUrl(url),
        (err: unknown) => err instanceof TransportUrlError && problem.test(err.message) && !err.message.includes('secretpw'),
      );
    });
  }

  it('redacts every password of a multi-host URL', () => {
    assert.equal(redactTransportUrl('rabbit://a:p1@h1:5672,b:p2@h2/vh?x=1'), 'rabbit://a:***@h1:5672,b:***@h2/vh?x=1');
    assert.equal(redactTransportUrl('rabbit://a:p@ss@h1'), 'rabbit://a:***@h1');
    assert.equal(redactTransportUrl('rabbit://h1,h2'), 'rabbit://h1,h2');
    assert.equal(redactTransportUrl('rabbit://user@h1'), 'rabbit://user@h1');
  });
});
