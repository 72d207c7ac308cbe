// Finds each option's value the way oslo.config does: the last file that sets it wins (under its name or a deprecated
// one), the last assignment in that file wins, a multi-valued option collects every assignment of every file; then
// "$" references are expanded and the value converted. Defaults, including derived ones, go through the same checks.
import type { Logger } from '../log';
import { ConfigError } from './config-error';
import { normalizeSectionName, type IniFile, type IniValue } from './ini-parser';
import { OptionValueError, type Option, type OptionLookup } from './option-types';
import { SCHEMA } from './schema';
import { substitute } from './substitution';

interface Found {
  readonly values: readonly IniValue[];
  readonly deprecatedNames: readonly string[];
}

const label = (section: string, name: string): string => `[${section}] ${name}`;

export function schemaOption(section: string, name: string): Option<unknown> | undefined {
  const options: Readonly<Record<string, Option<unknown>>> | undefined = (
    SCHEMA as Readonly<Record<string, Readonly<Record<string, Option<unknown>>>>>
  )[section];
  return options !== undefined && Object.hasOwn(options, name) ? options[name] : undefined;
}

export class OptionResolver implements OptionLookup {
  private readonly resolved = new Map<string, unknown>();
  private readonly inProgress = new Set<string>();
  private readonly reportedDeprecations = new Set<string>();

  constructor(
    private readonly files: readonly IniFile[],
    private readonly logger: Logger,
  ) {}

  /** Every option of the schema, by section. */
  resolveAll(): Record<string, Record<string, unknown>> {
    const config: Record<string, Record<string, unknown>> = {};
    for (const [section, options] of Object.entries(SCHEMA)) {
      const values: Record<string, unknown> = {};
      for (const name of Object.keys(options)) values[name] = this.get(section, name);
      config[section] = values;
    }
    return config;
  }

  get(section: string, name: string): unknown {
    const option = schemaOption(section, name);
    if (option === undefined) throw new Error(`${label(section, name)} is not in the schema`);
    const key = `${section}\0${name}`;
    if (this.resolved.has(key)) return this.resolved.get(key);
    const value = this.guarded(key, label(section, name), () => this.compute(section, name, option));
    this.resolved.set(key, value);
    return value;
  }

  private guarded<T>(key: string, what: string, work: () => T): T {
    if (this.inProgress.has(key)) {
      throw new ConfigError(`${what} refers back to itself (through "$" references or defaults)`);
    }
    this.inProgress.add(key);
    try {
      return work();
    } finally {
      this.inProgress.delete(key);
    }
  }

  private compute(section: string, name: string, option: Option<unknown>): unknown {
    const found = this.find(section, name, option);
    if (found === undefined) return this.fromDefault(section, name, option);
    for (const deprecated of found.deprecatedNames) this.reportDeprecated(deprecated, label(section, name));

    if (option.multi) {
      const values: unknown[] = [];
      for (const assignment of found.values) {
        const raw = this.expand(section, name, assignment);
        if (raw !== '') values.push(...(this.convert(section, name, option, raw, assignment) as unknown[]));
      }
      return values;
    }
    const assignment = found.values[found.values.length - 1] as IniValue;
    const raw = this.expand(section, name, assignment);
    // An empty value means "unset" unless the option has a fixed default (then its type judges "": a list is empty).
    if (raw === '' && option.default.kind !== 'value') return this.fromDefault(section, name, option);
    return this.convert(section, name, option, raw, assignment);
  }

  /** oslo's _get_file_value: later files first; in a file, the current name before deprecated ones. */
  private find(section: string, name: string, option: Option<unknown>): Found | undefined {
    const names = [
      { section, name },
      ...option.deprecatedNames.map((d) => ({ section: d.section ?? section, name: d.name ?? name })),
    ];
    let collected: IniValue[] = [];
    const deprecatedNames: string[] = [];
    for (const file of [...this.files].reverse()) {
      for (const [index, candidate] of names.entries()) {
        const values = file.sections.get(candidate.section)?.get(candidate.name);
        if (values === undefined || values.length === 0) continue;
        if (index > 0) deprecatedNames.push(label(candidate.section, candidate.name));
        if (!option.multi) return { values, deprecatedNames };
        collected = [...values, ...collected];
      }
    }
    return collected.length > 0 ? { values: collected, deprecatedNames } : undefined;
  }

  private reportDeprecated(deprecated: string, current: string): void {
    if (this.reportedDeprecations.has(deprecated)) return;
    this.reportedDeprecations.add(deprecated);
    this.logger.warn({ deprecated, option: current }, `Option ${deprecated} is deprecated: use ${current}`);
  }

  private fromDefault(section: string, name: string, option: Option<unknown>): unknown {
    const fallback = option.default;
    switch (fallback.kind) {
      case 'value':
        return fallback.value;
      case 'none':
        return null;
      case 'required':
        throw new ConfigError(
          `${label(section, name)} is required but not set (read ${this.files.map((f) => f.file).join(', ')})`,
          { section, option: name },
        );
      case 'derived': {
        const value = fallback.derived.derive(this);
        try {
          return option.type.convert(option.type.format(value));
        } catch (error) {
          if (!(error instanceof OptionValueError)) throw error;
          throw new ConfigError(
            `The default of ${label(section, name)} (${fallback.derived.describe}) is not valid: ${error.message}; ` +
              `set ${label(section, name)}`,
            { section, option: name },
          );
        }
      }
    }
  }

  private convert(section: string, name: string, option: Option<unknown>, raw: string, at: IniValue): unknown {
    try {
      return option.type.convert(raw);
    } catch (error) {
      if (!(error instanceof OptionValueError)) throw error;
      // The value as written, not as expanded: a "$" reference may have pulled in a secret.
      const shown = option.secret ? '(a secret: value not shown)' : `= ${JSON.stringify(at.value)}`;
      const where = `at ${at.file}:${at.line}`;
      throw new ConfigError(`${label(section, name)} ${shown} ${where} is not valid: ${error.message}`, {
        section,
        option: name,
      });
    }
  }

  private expand(section: string, name: string, at: IniValue): string {
    return substitute(at.value, (reference) => this.reference(section, name, reference, at));
  }

  /**
   * The text a "$reference" in [section] name stands for. Like oslo: "a.b" is option b of section a; a bare name is
   * looked up in the option's own section, then in DEFAULT. Options outside the schema count when a file sets them
   * (nova.conf's "$pybasedir" and the like); a reference to nothing stops start-up, as in oslo.
   */
  private reference(section: string, name: string, reference: string, at: IniValue): string {
    const dot = reference.indexOf('.');
    const candidates: [string, string][] =
      dot >= 0
        ? [[normalizeSectionName(reference.slice(0, dot)), reference.slice(dot + 1)]]
        : [
            [section, reference],
            ['DEFAULT', reference],
          ];
    for (const [refSection, refName] of candidates) {
      const option = schemaOption(refSection, refName);
      if (option !== undefined) {
        const value = this.get(refSection, refName);
        return value === null ? '' : option.type.format(value);
      }
      const values = this.files
        .map((file) => file.sections.get(refSection)?.get(refName))
        .filter((v): v is readonly IniValue[] => v !== undefined && v.length > 0);
      const last = values[values.length - 1]?.at(-1);
      if (last !== undefined) {
        return this.guarded(`raw\0${refSection}\0${refName}`, label(refSection, refName), () =>
          this.expand(refSection, refName, last),
        );
      }
    }
    // In a secret, "$name" is probably part of the password itself: say so without repeating it.
    const what = schemaOption(section, name)?.secret === true ? 'a "$" name' : `$${reference}, which is`;
    throw new ConfigError(
      `${label(section, name)} at ${at.file}:${at.line} refers to ${what} not set in any config file ` +
        '(write "$$" for a literal "$")',
      { section, option: name },
    );
  }
}
