// A full nova.conf sets hundreds of options Berth has no use for. Each is ignored, but never silently: one warning
// per section lists its unknown option names; Nova's own sections that Berth never reads get one debug line.
import type { Logger } from '../log';
import type { IniFile } from './ini-parser';
import { IGNORED_NOVA_SECTIONS, SCHEMA } from './schema';
import type { Option } from './option-types';

/** section → every option name the schema reads there, under its current or a deprecated name. */
function knownNames(): Map<string, Set<string>> {
  const known = new Map<string, Set<string>>();
  const add = (section: string, name: string): void => {
    const names = known.get(section) ?? new Set<string>();
    names.add(name);
    known.set(section, names);
  };
  for (const [section, options] of Object.entries(SCHEMA)) {
    for (const [name, option] of Object.entries(options as Record<string, Option<unknown>>)) {
      add(section, name);
      for (const deprecated of option.deprecatedNames) add(deprecated.section ?? section, deprecated.name ?? name);
    }
  }
  return known;
}

export function reportUnknownOptions(files: readonly IniFile[], logger: Logger): void {
  const known = knownNames();
  const unknown = new Map<string, Set<string>>();
  const ignoredSections = new Set<string>();
  for (const file of files) {
    for (const [section, options] of file.sections) {
      if (IGNORED_NOVA_SECTIONS.has(section)) {
        ignoredSections.add(section);
        continue;
      }
      const names = unknown.get(section) ?? new Set<string>();
      for (const name of options.keys()) if (known.get(section)?.has(name) !== true) names.add(name);
      unknown.set(section, names);
    }
  }
  for (const [section, names] of unknown) {
    if (names.size === 0) continue;
    const options = [...names].sort();
    const what = known.has(section) ? `unknown options in [${section}]` : `the unknown section [${section}] with`;
    logger.warn({ section, options }, `Berth ignores ${what}: ${options.join(', ')}`);
  }
  if (ignoredSections.size > 0) {
    const sections = [...ignoredSections].sort();
    logger.debug({ sections }, `Berth does not read these Nova sections: ${sections.join(', ')}`);
  }
}
