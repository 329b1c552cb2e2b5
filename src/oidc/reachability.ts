// Whether one IdP is known to be unreachable right now, from what this process's own calls to it
// met. A logout reads it: sending the browser to the end-session endpoint of an IdP that takes no
// connections leaves the user, signed out here, on the browser's error page (bff/logout.ts).
import type { FetchLike } from './fetch.ts';

/**
 * How long a connection failure counts as evidence, ms. Short: the BFF sees the IdP from its own
 * network, the browser from another; an old failure says little about where the browser can go.
 */
export const UNREACHABLE_WINDOW_MS = 30_000;

/**
 * Errors that mean no connection could be made: refused, no such host, no route. Not a timeout
 * (an IdP slow to answer still serves the browser, later) nor an HTTP error status (something
 * answered: a proxy's 502 is its page, not a connection error).
 */
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Deno's fetch names no code: its cause's message is hyper's, and a failure to connect (refused, no
 * such host, no route, the TLS handshake) is its "Connect" kind.
 */
const DENO_CONNECT = /\bclient error \(Connect\)/;

/** The error's code, or its cause's (undici wraps it: TypeError 'fetch failed' { cause }). */
export function connectionFailed(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
    if (code === undefined && DENO_CONNECT.test(e.message)) return true;
    if (e instanceof AggregateError && e.errors.some((x) => connectionFailed(x))) return true;
  }
  return false;
}

export class Reachability {
  readonly #windowMs: number;
  /** performance.now() of the last connection failure with no answer since; undefined when none. */
  #failedAt: number | undefined;

  constructor(windowMs = UNREACHABLE_WINDOW_MS) {
    this.#windowMs = windowMs;
  }

  /** Any answer ends the evidence at once: a recovered IdP gets its logouts back. */
  answered(): void {
    this.#failedAt = undefined;
  }

  failed(now = performance.now()): void {
    this.#failedAt = now;
  }

  /** A connection failure within the window, and no answer since. */
  unreachable(now = performance.now()): boolean {
    return this.#failedAt !== undefined && now - this.#failedAt < this.#windowMs;
  }

  /** `inner`, noting what each request meets: an answer (any status), a connection failure, or neither (a timeout). */
  watch(inner: FetchLike): FetchLike {
    return async (url, init) => {
      try {
        const res = await inner(url, init);
        this.answered();
        return res;
      } catch (err) {
        if (connectionFailed(err)) this.failed();
        throw err;
      }
    };
  }
}
