// A real pino logger whose JSON lines are kept in memory, to assert on what gets logged.
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.ts';

export function captureLogger(): { log: Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const log = createLogger({ level: 'debug', destination });
  const text = () => chunks.join('');
  const lines = () => text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, text };
}
