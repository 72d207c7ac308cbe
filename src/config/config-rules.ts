// Rules that span several options. They run once, after every option has its own valid value, and may fill in a
// value (Glance's credential, service_down_time) the way Nova does; each such change is logged.
import type { Logger } from '../log';
import { ConfigError } from './config-error';
import { checkCredential, hasCredential, KEYSTONE_CREDENTIAL_OPTIONS } from './keystone-auth';
import type { OptionValue } from './option-types';
import type { Schema, SectionName } from './schema';

/** BerthConfig before it is frozen. */
export type MutableBerthConfig = {
  -readonly [S in SectionName]: { -readonly [O in keyof Schema[S]]: OptionValue<Schema[S][O]> };
};

export function applyConfigRules(config: MutableBerthConfig, logger: Logger): void {
  if (config.glance.verify_glance_signatures) {
    throw new ConfigError(
      '[glance] verify_glance_signatures = true is not supported: Berth does not implement image signature ' +
        'verification, and would otherwise boot unverified images. Set it to false.',
      { section: 'glance', option: 'verify_glance_signatures' },
    );
  }
  checkDockerEndpoint(config, logger);
  checkRabbitTls(config, logger);
  checkCredentials(config, logger);
  adjustServiceDownTime(config, logger);
}

function checkDockerEndpoint(config: MutableBerthConfig, logger: Logger): void {
  const docker = config.docker;
  const tlsFiles = { ca_file: docker.ca_file, cert_file: docker.cert_file, key_file: docker.key_file };
  const set = Object.entries(tlsFiles).filter(([, value]) => value !== null).map(([name]) => name);
  const missing = Object.entries(tlsFiles).filter(([, value]) => value === null).map(([name]) => name);
  if (set.length > 0 && missing.length > 0) {
    throw new ConfigError(
      `[docker] ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} missing: TLS to the Docker Engine ` +
        `needs ca_file, cert_file and key_file together (set: ${set.join(', ')})`,
      { section: 'docker', option: missing[0] as string },
    );
  }
  const unix = docker.host_url.startsWith('unix://');
  if (set.length > 0 && unix) {
    throw new ConfigError(
      '[docker] ca_file, cert_file and key_file are set but host_url is a unix socket: use tcp:// or https://, ' +
        'or remove the TLS files',
      { section: 'docker', option: 'host_url' },
    );
  }
  if (set.length === 0 && docker.host_url.startsWith('tcp://') && !isLoopback(new URL(docker.host_url).hostname)) {
    logger.warn(
      { host_url: docker.host_url },
      '[docker] host_url is plain tcp:// to another host: the Docker API (root on that host) is then unencrypted ' +
        'and unauthenticated; set ca_file, cert_file and key_file',
    );
  }
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function checkRabbitTls(config: MutableBerthConfig, logger: Logger): void {
  const rabbit = config.oslo_messaging_rabbit;
  if ((rabbit.ssl_cert_file === null) !== (rabbit.ssl_key_file === null)) {
    const missing = rabbit.ssl_cert_file === null ? 'ssl_cert_file' : 'ssl_key_file';
    throw new ConfigError(
      `[oslo_messaging_rabbit] ${missing} is missing: a client certificate needs both ssl_cert_file and ssl_key_file`,
      { section: 'oslo_messaging_rabbit', option: missing },
    );
  }
  const files = (['ssl_ca_file', 'ssl_cert_file', 'ssl_key_file'] as const).filter((name) => rabbit[name] !== null);
  if (!rabbit.ssl && files.length > 0) {
    logger.warn({ options: files }, `[oslo_messaging_rabbit] ${files.join(', ')} only take effect with ssl = true`);
  }
}

function checkCredentials(config: MutableBerthConfig, logger: Logger): void {
  checkCredential('placement', config.placement, 'Berth reports its inventory to Placement');
  const serviceUser = config.service_user;
  if (serviceUser.send_service_user_token) {
    checkCredential('service_user', serviceUser, 'send_service_user_token = true needs a service user');
  } else if (hasCredential(serviceUser)) {
    checkCredential('service_user', serviceUser, 'other [service_user] credential options are set');
  }
  if (hasCredential(config.glance)) {
    checkCredential('glance', config.glance, 'other [glance] credential options are set');
    return;
  }
  if (!hasCredential(serviceUser)) {
    throw new ConfigError(
      '[glance] has no credential and [service_user] has none to fall back on: set auth_type, auth_url and the ' +
        'rest in [service_user] (or in [glance])',
      { section: 'glance', option: 'auth_type' },
    );
  }
  for (const name of KEYSTONE_CREDENTIAL_OPTIONS) {
    // Each credential option has the same type in both sections; TypeScript cannot see that through the index.
    (config.glance as Record<string, unknown>)[name] = serviceUser[name];
  }
  logger.debug("[glance] sets no credential: Berth uses [service_user]'s for Glance");
}

function adjustServiceDownTime(config: MutableBerthConfig, logger: Logger): void {
  const defaults = config.DEFAULT;
  if (defaults.service_down_time > defaults.report_interval) return;
  const adjusted = Math.trunc(defaults.report_interval * 2.5);
  logger.warn(
    { service_down_time: defaults.service_down_time, report_interval: defaults.report_interval, adjusted },
    '[DEFAULT] report_interval must be less than service_down_time: ' +
      `using service_down_time = ${adjusted}, as Nova does`,
  );
  defaults.service_down_time = adjusted;
}
