// JSON logs (pino). Every log line about a request carries request_id, and instance_uuid where there is one.
// Secrets never reach a log line: the redact list covers every place a password or token can sit in our objects.
import pino from 'pino';

export type Logger = pino.Logger;

const REDACT = [
  'password',
  '*.password',
  '*.*.password',
  'auth_token',
  '*.auth_token',
  '*.*.auth_token',
  'token',
  '*.token',
  'headers["x-auth-token"]',
  'headers["X-Auth-Token"]',
  '*.headers["x-auth-token"]',
  '*.headers["X-Auth-Token"]',
  '*.headers["x-service-token"]',
  '*.headers["X-Service-Token"]',
  'admin_password',
  '*.admin_password',
  'new_pass',
  '*.new_pass',
  'application_credential_secret',
  '*.application_credential_secret',
  'transport_url',
  '*.transport_url',
];

export interface LogOptions {
  readonly level?: string;
  /** A destination stream; defaults to stdout. Tests pass a collecting stream. */
  readonly destination?: pino.DestinationStream;
}

export function createLogger(options: LogOptions = {}): Logger {
  const opts: pino.LoggerOptions = {
    level: options.level ?? 'info',
    base: { pid: process.pid, service: 'berth-compute' },
    redact: { paths: REDACT, censor: '***' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

/** A logger that drops everything (unit tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Strips credentials from a URL before it is logged (`rabbit://user:pass@host` → `rabbit://user:***@host`), for
 * every host of a multi-host transport URL (`rabbit://a:p1@h1,b:p2@h2`).
 */
export function redactUrl(url: string): string {
  return url.replace(/((?:\/\/|,)[^:/@,]+:)[^@/,]*@/g, '$1***@');
}
