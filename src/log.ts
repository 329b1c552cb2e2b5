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
      // Pino's own `err` serializer would turn any object with a message into {type: 'Object',
      // message, stack}: ours keeps the summary as given, and summarises a raw Error without its stack.
      serializers: { err: (e: unknown) => (e instanceof Error ? errorFields(e) : e) },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination as never ?? pino.destination({ sync: false }),
  );
}

/** A logger that drops everything (unit tests). */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * What a log line says of an error: name, code, message and its cause's, never the stack (the
 * contract: no stack trace in any log line). `errCode`, as any field called `code` is redacted (an
 * authorization code would be one). Messages are cut short: they never carry secrets here, but a
 * library's may quote a whole response.
 */
export function errorFields(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const cause = (err as { cause?: unknown }).cause;
  return {
    type: err.name, errCode: (err as { code?: unknown }).code, message: err.message.slice(0, 200),
    ...(cause instanceof Error ? { cause: `${cause.name}: ${cause.message.slice(0, 200)}` } : {}),
  };
}
