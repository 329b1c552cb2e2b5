// Structured JSON logs. Redaction is by key *and* by shape: anything under a sensitive key is
// replaced, and no code path is supposed to hand a token to the logger in the first place.
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT_PATHS = [
  'token', '*.token', 'access_token', '*.access_token', 'refresh_token', '*.refresh_token',
  'id_token', '*.id_token', 'code', '*.code', 'cookie', '*.cookie', 'authorization', '*.authorization',
  'headers.cookie', 'headers.authorization', 'headers["set-cookie"]', 'headers["x-csrf-token"]',
  'req.headers.cookie', 'req.headers.authorization', 'req.headers["x-csrf-token"]',
  'client_secret', '*.client_secret', 'secret', '*.secret', 'csrf', '*.csrf', 'logout_token', '*.logout_token',
];

export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: opts.name ? { svc: opts.name } : {},
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination as never ?? pino.destination({ sync: false }),
  );
}

/** A logger that drops everything (unit tests). */
export const silentLogger: Logger = pino({ level: 'silent' });
