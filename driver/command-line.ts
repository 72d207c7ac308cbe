// The Glance image property `os_command_line` as the instance's command: split like POSIX sh words (Python's
// shlex.split, as nova-docker did), never run through a shell. Every driver reads it the same way.

import { InvalidImage, type ImageSource } from './driver';

export class CommandLineSyntaxError extends Error {
  override readonly name = 'CommandLineSyntaxError';
}

export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quote === "'") {
      if (ch === "'") quote = null;
      else word += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === '\\' && i + 1 < line.length && '\\"$`\n'.includes(line[i + 1] as string)) word += line[++i];
      else word += ch;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      inWord = true;
      if (ch === "'" || ch === '"') quote = ch;
      else if (ch === '\\') {
        if (i + 1 >= line.length) throw new CommandLineSyntaxError('the command line ends with a backslash');
        word += line[++i];
      } else word += ch;
    }
  }
  if (quote !== null) throw new CommandLineSyntaxError(`the command line has an unterminated ${quote} quote`);
  if (inWord) words.push(word);
  return words;
}

/** The command from the image property `os_command_line`, or null for the image's own; throws InvalidImage. */
export function commandOverride(image: ImageSource): string[] | null {
  const line = image.properties['os_command_line'];
  if (line === undefined || line === null || line === '') return null;
  if (typeof line !== 'string') throw new InvalidImage(image.id, 'os_command_line must be a string');
  try {
    const words = splitCommandLine(line);
    return words.length > 0 ? words : null;
  } catch (error) {
    if (error instanceof CommandLineSyntaxError) throw new InvalidImage(image.id, `os_command_line: ${error.message}`);
    throw error;
  }
}
