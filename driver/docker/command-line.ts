// The Glance image property `os_command_line` as a container command: split like POSIX sh words (Python's
// shlex.split, as nova-docker did), never run through a shell.

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
