// `[DEFAULT] transport_url`, parsed the way oslo.messaging's TransportURL.parse and impl_rabbit read it:
// `rabbit://user:pass@host:port,user2:pass2@host2:port2/vhost?query`. Several hosts are failover candidates.
import { TransportUrlError } from './errors';

export interface TransportHost {
  readonly hostname: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
}

export interface TransportUrl {
  /** `rabbit`, `kombu` or `amqp` as written. */
  readonly transport: string;
  readonly hosts: readonly TransportHost[];
  /** AMQP virtual host; `/` when the URL has none. */
  readonly virtualHost: string;
  /**
   * Query parameters (repeated keys joined with `,`, empty values dropped, as oslo does). oslo lets them override
   * same-named [oslo_messaging_rabbit] options; applying them is the config layer's job.
   */
  readonly query: Readonly<Record<string, string>>;
}

// kombu's defaults for what the URL leaves out (kombu.transport.pyamqp default_connection_params).
const DEFAULT_PORT = 5672;
const DEFAULT_USER = 'guest';
const DEFAULT_PASSWORD = 'guest';
const DEFAULT_HOST = 'localhost';
// `amqp` selects oslo's AMQP 1.0 driver in Python; we accept it as an alias of the rabbit driver on purpose.
const TRANSPORTS = new Set(['rabbit', 'kombu', 'amqp']);

/** The URL with the password of every host replaced by `***` (safe for logs and errors). */
export function redactTransportUrl(url: string): string {
  const m = /^([^:/?#]*:\/\/)([^/?#]*)(.*)$/s.exec(url);
  if (!m) return url.replace(/:[^:@/]*@/g, ':***@');
  const [, head = '', netloc = '', tail = ''] = m;
  const hosts = netloc.split(',').map((entry) => {
    const at = entry.lastIndexOf('@');
    if (at < 0) return entry;
    const userinfo = entry.slice(0, at);
    const colon = userinfo.indexOf(':');
    return colon < 0 ? entry : `${userinfo.slice(0, colon)}:***${entry.slice(at)}`;
  });
  return head + hosts.join(',') + tail;
}

/** `host:port` for logs (IPv6 in brackets), never the credentials. */
export function describeHost(host: TransportHost): string {
  return host.hostname.includes(':') ? `[${host.hostname}]:${host.port}` : `${host.hostname}:${host.port}`;
}

// urllib.parse.unquote: valid %XX runs decode as UTF-8 (bad bytes become U+FFFD), anything else stays as written.
function unquote(text: string): string {
  return text.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8'));
}

export function parseTransportUrl(url: string): TransportUrl {
  const redacted = redactTransportUrl(url);
  const fail = (problem: string): never => {
    throw new TransportUrlError(problem, redacted);
  };

  // urllib.parse.urlparse: scheme ':' ['//' netloc] path ['?' query] ['#' fragment]
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url);
  if (!schemeMatch?.[1]) return fail('no scheme specified');
  const transport = schemeMatch[1].toLowerCase();
  if (!TRANSPORTS.has(transport)) return fail(`unsupported transport '${transport}' (expected rabbit://)`);

  let rest = url.slice(schemeMatch[0].length);
  const hashAt = rest.indexOf('#');
  if (hashAt >= 0) rest = rest.slice(0, hashAt);
  const queryAt = rest.indexOf('?');
  const queryText = queryAt >= 0 ? rest.slice(queryAt + 1) : '';
  if (queryAt >= 0) rest = rest.slice(0, queryAt);
  let netloc = '';
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2);
    netloc = slash >= 0 ? rest.slice(2, slash) : rest.slice(2);
    rest = slash >= 0 ? rest.slice(slash) : '';
  }
  const virtualHost = rest.startsWith('/') ? unquote(rest.slice(1)) : '';

  const hosts: TransportHost[] = [];
  netloc.split(',').forEach((entry, index) => {
    if (entry === '') return;
    const which = `host #${index + 1}`;
    let hostport = entry;
    let username: string | null = null;
    let password: string | null = null;
    const at = entry.lastIndexOf('@');
    if (at >= 0) {
      const userinfo = entry.slice(0, at);
      hostport = entry.slice(at + 1);
      const colon = userinfo.indexOf(':');
      username = unquote(colon >= 0 ? userinfo.slice(0, colon) : userinfo);
      if (colon >= 0) password = unquote(userinfo.slice(colon + 1));
    }
    let hostname = hostport;
    let portText: string | null = null;
    if (hostport.startsWith('[')) {
      const end = hostport.indexOf(']');
      if (end < 0) return fail(`${which} has an unterminated IPv6 address`);
      hostname = hostport.slice(1, end);
      const after = hostport.slice(end + 1);
      if (after.startsWith(':')) portText = after.slice(1);
      else if (after !== '') return fail(`${which} has text after the IPv6 address`);
    } else {
      const colon = hostport.indexOf(':');
      if (colon >= 0) {
        hostname = hostport.slice(0, colon);
        portText = hostport.slice(colon + 1);
      }
    }
    let port = DEFAULT_PORT;
    if (portText !== null && portText !== '') {
      if (!/^\d+$/.test(portText)) return fail(`${which} (${hostname}) has a port that is not a number`);
      port = Number(portText);
      if (port < 1 || port > 65535) return fail(`${which} (${hostname}) has port ${port}, outside 1-65535`);
    }
    hosts.push({
      hostname: hostname === '' ? DEFAULT_HOST : hostname,
      port,
      username: username || DEFAULT_USER,
      password: password || DEFAULT_PASSWORD,
    });
  });
  // oslo connects to guest@localhost when the URL names no host at all.
  if (hosts.length === 0) {
    hosts.push({ hostname: DEFAULT_HOST, port: DEFAULT_PORT, username: DEFAULT_USER, password: DEFAULT_PASSWORD });
  }

  const grouped = new Map<string, string[]>();
  for (const [key, value] of new URLSearchParams(queryText)) {
    if (value === '') continue; // parse_qs drops blank values
    grouped.set(key, [...(grouped.get(key) ?? []), value]);
  }
  const query: Record<string, string> = {};
  for (const [key, values] of grouped) query[key] = values.join(',');

  return { transport, hosts, virtualHost: virtualHost === '' ? '/' : virtualHost, query };
}
