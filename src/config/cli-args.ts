// The command line of berth-compute: oslo.config's --config-file (repeatable; later files override earlier ones),
// --help and --version. Nothing else is accepted, so a typo cannot silently drop a config file.
import { UsageError } from './config-error';

export interface CliArgs {
  readonly configFiles: readonly string[];
  readonly help: boolean;
  readonly version: boolean;
}

export const USAGE = `Usage: berth-compute --config-file PATH [--config-file PATH ...]

Runs a Nova compute service that hosts instances as Docker containers.

Options:
  --config-file PATH  An INI file in nova.conf's format. Repeat it to layer files: a
                      later file overrides an earlier one (e.g. /etc/nova/nova.conf,
                      then /etc/berth/berth.conf).
  --help, -h          Show this help and exit.
  --version           Show the version and exit.
`;

/** Parses the arguments after the program name (process.argv.slice(2)); throws UsageError. */
export function parseArgs(argv: readonly string[]): CliArgs {
  const configFiles: string[] = [];
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') {
      help = true;
    } else if (arg === '--version') {
      version = true;
    } else if (arg === '--config-file') {
      const path = argv[i + 1];
      if (path === undefined || path.startsWith('-') || path === '') {
        throw new UsageError('--config-file needs a PATH argument');
      }
      configFiles.push(path);
      i++;
    } else if (arg.startsWith('--config-file=')) {
      const path = arg.slice('--config-file='.length);
      if (path === '') throw new UsageError('--config-file needs a PATH argument');
      configFiles.push(path);
    } else if (arg.startsWith('-')) {
      throw new UsageError(`Unknown option ${arg.split('=')[0]}`);
    } else {
      throw new UsageError(`Unexpected argument ${JSON.stringify(arg)}`);
    }
  }
  if (configFiles.length === 0 && !help && !version) {
    throw new UsageError('At least one --config-file PATH is required');
  }
  return { configFiles, help, version };
}
