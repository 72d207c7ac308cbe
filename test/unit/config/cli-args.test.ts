import assert from 'node:assert/strict';
import { parseArgs, UsageError, USAGE } from '../../../src/config';

describe('config/cli-args', () => {
  it('collects repeated --config-file in order, in both spellings', () => {
    assert.deepEqual(parseArgs(['--config-file', '/etc/nova/nova.conf', '--config-file=/etc/berth/berth.conf']), {
      configFiles: ['/etc/nova/nova.conf', '/etc/berth/berth.conf'],
      help: false,
      version: false,
    });
  });

  it('accepts --help, -h and --version without a config file', () => {
    assert.deepEqual(parseArgs(['--help']), { configFiles: [], help: true, version: false });
    assert.deepEqual(parseArgs(['-h']), { configFiles: [], help: true, version: false });
    assert.deepEqual(parseArgs(['--version']), { configFiles: [], help: false, version: true });
  });

  const errors: Record<string, [string[], string]> = {
    'an unknown flag': [['--config-file', 'a.conf', '--config-dir', '/etc'], 'Unknown option --config-dir'],
    'an unknown flag with a value, naming only the flag': [['--debug=secret'], 'Unknown option --debug'],
    'a positional argument': [['--config-file', 'a.conf', 'b.conf'], 'Unexpected argument "b.conf"'],
    '--config-file without a path': [['--config-file'], '--config-file needs a PATH argument'],
    '--config-file followed by a flag': [['--config-file', '--help'], '--config-file needs a PATH argument'],
    '--config-file= with nothing': [['--config-file='], '--config-file needs a PATH argument'],
    'no config file': [[], 'At least one --config-file PATH is required'],
  };
  for (const [name, [argv, message]] of Object.entries(errors)) {
    it(`rejects ${name}`, () => {
      assert.throws(
        () => parseArgs(argv),
        (error: unknown) => error instanceof UsageError && error.message === message,
      );
    });
  }

  it('documents every flag it accepts', () => {
    for (const flag of ['--config-file PATH', '--help', '-h', '--version']) assert.ok(USAGE.includes(flag), flag);
  });
});
