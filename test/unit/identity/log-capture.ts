// A logger whose JSON lines the test can read (to check what reaches the logs, and what never does).
import { createLogger, type Logger } from '../../../src/log';

export function collectingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
  return { logger, lines };
}
