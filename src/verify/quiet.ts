// Denials on /auth/verify (401, 403, 404...) are answers, not faults: thousands per second under an
// attack or a logged-out SPA that keeps polling. V8 captures a stack trace for every Error (2–3 µs,
// more than the rest of a denial costs); these errors are rendered as 4xx JSON and never logged with
// a stack, so the chain builds them without one.
import type { GoldpathError } from '../errors.ts';

export function quiet<E extends GoldpathError>(make: () => E): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
