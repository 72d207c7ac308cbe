// Start-up stops on any of these; main prints the message and exits non-zero. Messages never carry a secret value.

/** Where a value came from: a config file and the line its key is on. */
export interface ValueSource {
  readonly file: string;
  readonly line: number;
}

/** A configuration problem: a bad or missing value, a contradiction between options, an unreadable file. */
export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
  /** The option at fault (`section`, `option`), when there is one. */
  readonly section: string | undefined;
  readonly option: string | undefined;

  constructor(message: string, where: { readonly section?: string; readonly option?: string } = {}) {
    super(message);
    this.section = where.section;
    this.option = where.option;
  }
}

/**
 * An INI syntax error, named by file and line as oslo.config's `ParseError` does. Unlike oslo it does not quote the
 * line: a malformed line may hold a password.
 */
export class ConfigParseError extends ConfigError {
  override readonly name = 'ConfigParseError';

  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
  }
}

/** A bad command line (unknown flag, missing argument). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
