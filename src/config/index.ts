// Berth's configuration: nova.conf-compatible INI files → one validated, deeply frozen BerthConfig.
export { ConfigError, ConfigParseError, UsageError } from './config-error';
export { parseIni, type IniFile, type IniValue } from './ini-parser';
export {
  configForLog,
  loadConfig,
  loadConfigFromSources,
  type ConfigSource,
  type LoadConfigOptions,
} from './load-config';
export { parseArgs, USAGE, type CliArgs } from './cli-args';
export { SCHEMA, LOG_LEVELS, NOTIFICATION_DRIVERS, type BerthConfig, type SectionName } from './schema';
export { AUTH_TYPES, type AuthType, type KeystoneAuthConfig } from './keystone-auth';
export { LINUX_CAPABILITIES } from './capabilities';
