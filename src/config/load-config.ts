// berth-compute --config-file A --config-file B: parse every file, report what Berth ignores, resolve and check each
// option, apply the cross-option rules, freeze. Anything wrong throws ConfigError before Berth touches the network.
import { readFileSync } from 'node:fs';
import type { Logger } from '../log';
import { ConfigError } from './config-error';
import { applyConfigRules, type MutableBerthConfig } from './config-rules';
import { parseIni } from './ini-parser';
import { OptionResolver, schemaOption } from './option-resolver';
import type { BerthConfig } from './schema';
import { reportUnknownOptions } from './unknown-options';

export interface LoadConfigOptions {
  readonly logger: Logger;
}

/** A config file's name (for messages) and text. */
export interface ConfigSource {
  readonly path: string;
  readonly text: string;
}

/** Reads the files in order; a later file overrides an earlier one, as with oslo.config's --config-file. */
export function loadConfig(files: readonly string[], options: LoadConfigOptions): BerthConfig {
  if (files.length === 0) throw new ConfigError('No configuration file given: use --config-file PATH');
  return loadConfigFromSources(files.map(readSource), options);
}

/** loadConfig over texts already in memory (tests, or a caller that reads files itself). */
export function loadConfigFromSources(sources: readonly ConfigSource[], options: LoadConfigOptions): BerthConfig {
  const files = sources.map((source) => parseIni(source.text, source.path));
  reportUnknownOptions(files, options.logger);
  const config = new OptionResolver(files, options.logger).resolveAll() as MutableBerthConfig;
  applyConfigRules(config, options.logger);
  options.logger.debug({ files: sources.map((s) => s.path) }, 'configuration loaded');
  return deepFreeze(config);
}

function readSource(path: string): ConfigSource {
  try {
    return { path, text: readFileSync(path, 'utf8') };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ConfigError(`Cannot read config file ${path}: ${code}`);
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** The configuration with every secret option replaced by "***", for a start-up log line. */
export function configForLog(config: BerthConfig): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [section, values] of Object.entries(config)) {
    const shown: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(values as Record<string, unknown>)) {
      shown[name] = schemaOption(section, name)?.secret === true && value !== null ? '***' : value;
    }
    out[section] = shown;
  }
  return out;
}
