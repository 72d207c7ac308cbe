// The live control plane of the e2e harness (test/e2e/control-plane.sh): Keystone 127.0.0.1:5000, Placement :8778,
// Glance :9292, credentials in /etc/berth-aio/berth.conf. Live suites skip, saying why, when it is not there.
import fs from 'node:fs';
import http from 'node:http';
import type { KeystoneAuthOptions } from '../../../src/identity/auth-options';

export const BERTH_CONF = process.env['BERTH_CONF'] ?? '/etc/berth-aio/berth.conf';
const KEYSTONE_URL = 'http://127.0.0.1:5000/v3';

/** Resolves with the reason the live control plane cannot be used, or null when it can. */
export async function liveUnavailable(): Promise<string | null> {
  const up = await new Promise<boolean>((resolve) => {
    const req = http.get(KEYSTONE_URL, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
  if (!up) return `no Keystone at ${KEYSTONE_URL} (start it with test/e2e/control-plane.sh up)`;
  if (!fs.existsSync(BERTH_CONF)) return `${BERTH_CONF} does not exist (written by test/e2e/control-plane.sh)`;
  return null;
}

/** In a describe(): skips the suite with a message when the live control plane is not there. */
export function requireLiveControlPlane(): void {
  before(async function () {
    this.timeout(10_000);
    const reason = await liveUnavailable();
    if (reason !== null) {
      console.warn(`      skipped: ${reason}`);
      this.skip();
    }
  });
}

/** The keystoneauth options of one berth.conf section (plain `key = value` lines). */
export function liveSection(section: string): KeystoneAuthOptions & Record<string, unknown> {
  const values: Record<string, unknown> = {};
  let current = '';
  for (const raw of fs.readFileSync(BERTH_CONF, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header !== null) {
      current = header[1] ?? '';
      continue;
    }
    const eq = line.indexOf('=');
    if (current === section && eq > 0) values[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  if (typeof values['auth_type'] !== 'string') throw new Error(`[${section}] of ${BERTH_CONF} has no auth_type`);
  if (typeof values['send_service_user_token'] === 'string') {
    values['send_service_user_token'] = values['send_service_user_token'] === 'true';
  }
  return values as KeystoneAuthOptions & Record<string, unknown>;
}
