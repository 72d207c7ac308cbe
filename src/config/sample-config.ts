// Renders config/berth.conf from the schema, in the style of Nova's generated nova.conf sample, so help texts and
// defaults are written once. The values a sample sets are taken from the existing file and kept.
// Regenerate:  node dist-<area>/src/config/sample-config.js config/berth.conf
import { readFileSync, writeFileSync } from 'node:fs';
import { parseIni } from './ini-parser';
import type { Option } from './option-types';
import { SCHEMA, SECTION_HELP, type SectionName } from './schema';

/** section → option → the raw values the sample sets (several for a multi-valued option). */
export type SampleValues = ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;

const WIDTH = 79;

const HEADER = `# Sample configuration for berth-compute, a Nova compute service that runs
# OpenStack instances as Docker containers.
#
# Run it with this file alone, or on top of an existing nova.conf (a later
# --config-file overrides an earlier one):
#   berth-compute --config-file /etc/berth/berth.conf
#   berth-compute --config-file /etc/nova/nova.conf --config-file /etc/berth/berth.conf
#
# Format, sections and option names are nova.conf's (oslo.config):
# "key = value", whole-line "#" comments, "$option" or "\${section.option}"
# refer to another option ("$$" is a literal "$"). An empty value means "unset"
# for an option without a fixed default. Options Berth does not know are
# ignored with a warning; Nova's sections that Berth never reads ([database],
# [neutron], ...) are ignored quietly.
#
# "#name = value" lines show the default. The values set below work against the
# project's all-in-one control plane (test/e2e/control-plane.sh): Keystone at
# http://127.0.0.1:5000/v3 (user nova, project service), RabbitMQ at
# 127.0.0.1:5672, region RegionOne. For a packaged install, set state_path to
# /var/lib/berth (the default) and host to this machine's name.
#
# This file is rendered from src/config/schema.ts; values set here survive:
#   node dist-<area>/src/config/sample-config.js config/berth.conf
`;

function wrap(text: string): string[] {
  const lines: string[] = [];
  let line = '#';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line.length + 1 + word.length > WIDTH && line !== '#') {
      lines.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines;
}

function defaultText(option: Option<unknown>): string {
  const fallback = option.default;
  switch (fallback.kind) {
    case 'value':
      return option.type.format(fallback.value);
    case 'derived':
      return `<${fallback.derived.describe}>`;
    case 'none':
    case 'required':
      return '<None>';
  }
}

function renderOption(
  section: string,
  name: string,
  option: Option<unknown>,
  values: readonly string[] | undefined,
): string[] {
  const traits = [option.type.label, ...(option.multi ? ['multi valued'] : []), ...(option.secret ? ['secret'] : [])];
  const lines = ['#', ...wrap(option.help), `#  (${traits.join(', ')})`];
  if (option.default.kind === 'required') lines.push('# Required.');
  lines.push(...option.type.notes.flatMap(wrap));
  for (const deprecated of option.deprecatedNames) {
    lines.push(`# Deprecated name: [${deprecated.section ?? section}] ${deprecated.name ?? name}`);
  }
  lines.push(`#${name} = ${defaultText(option)}`.trimEnd());
  for (const value of values ?? []) lines.push(`${name} = ${value}`.trimEnd());
  return lines;
}

export function renderSampleConfig(values: SampleValues): string {
  const out = [HEADER];
  for (const [section, options] of Object.entries(SCHEMA)) {
    out.push(`[${section}]`, ...wrap(SECTION_HELP[section as SectionName]), '');
    for (const [name, option] of Object.entries(options as Record<string, Option<unknown>>)) {
      out.push(...renderOption(section, name, option, values.get(section)?.get(name)), '');
    }
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** The values a sample file sets, to render it again around them. */
export function sampleValuesOf(text: string, file: string): SampleValues {
  const parsed = parseIni(text, file);
  const values = new Map<string, Map<string, string[]>>();
  for (const [section, options] of parsed.sections) {
    values.set(section, new Map([...options].map(([name, assignments]) => [name, assignments.map((a) => a.value)])));
  }
  return values;
}

if (require.main === module) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: sample-config.js config/berth.conf\n');
    process.exit(2);
  }
  writeFileSync(file, renderSampleConfig(sampleValuesOf(readFileSync(file, 'utf8'), file)));
}
