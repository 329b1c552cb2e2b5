// The development edge's rateLimit middleware, with Traefik v3's semantics
// (pkg/middlewares/ratelimiter): one token bucket per client address (the remote address: no
// forwarded header is trusted), refilled at `average` per `period`, holding at most `burst`. A
// request that finds the bucket empty waits for its token when that is at most maxDelay away
// (500 ms over the rate in whole requests a second, as Traefik truncates it; 500 ms below 1/s), and is otherwise refused at once with 429,
// `Retry-After` and `X-Retry-In`. A source with no request for the TTL (2 s at one token a second
// or more, else 1 s plus the interval between tokens, in whole seconds of the clock) is forgotten,
// and comes back to a full bucket: so a burst larger than what the TTL refills is given again to
// whoever pauses that long (a limit of 60 a minute with a burst of 60 lets ~1,800 a minute through).
// Traefik is the production edge; this is for local trials.

export interface RateLimitConfig {
  readonly average: number;
  /** Traefik duration: seconds as an integer, or text like 10s, 1m. Default 1 s. */
  readonly period?: number | string;
  readonly burst?: number;
}

/** The period in ms, or undefined when Traefik would not read it as a duration. */
export function periodMs(period: number | string | undefined): number | undefined {
  if (period === undefined) return 1000;
  if (typeof period === 'number') return Number.isInteger(period) && period > 0 ? period * 1000 : undefined;
  const m = /^(\d+)(ms|s|m|h)$/.exec(period);
  if (!m) return undefined;
  const n = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return n > 0 ? n : undefined;
}

/** Problems with a rateLimit block, as [key, message] pairs. */
export function rateLimitProblems(body: Record<string, unknown>): [string, string][] {
  const out: [string, string][] = [];
  for (const k of Object.keys(body)) {
    if (!['average', 'period', 'burst'].includes(k)) out.push([k, `option ${k} is not supported by the development edge (it limits by remote address only)`]);
  }
  if (!Number.isInteger(body['average']) || (body['average'] as number) < 1) out.push(['average', 'expected a whole number of requests, 1 or more']);
  if (body['burst'] !== undefined && (!Number.isInteger(body['burst']) || (body['burst'] as number) < 1)) out.push(['burst', 'expected a whole number, 1 or more']);
  if (periodMs(body['period'] as number | string | undefined) === undefined) out.push(['period', 'expected a duration: whole seconds, or text such as 10s or 1m']);
  return out;
}

/** A duration as Go's time.Duration prints it (Traefik's X-Retry-In): 816.2ms, 1.4s, 1m2.5s. */
export function goDuration(ms: number): string {
  const trim = (x: number, digits: number) => x.toFixed(digits).replace(/\.?0+$/, '');
  if (ms < 1000) return `${trim(ms, 6)}ms`;
  if (ms < 60_000) return `${trim(ms / 1000, 9)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${trim((ms - m * 60_000) / 1000, 9)}s`;
}

/** Buckets kept at most (Traefik: 65,536); idle ones go first. */
const MAX_SOURCES = 65_536;

interface Bucket {
  tokens: number;
  at: number;
  /** Unix seconds at which the source is forgotten (Traefik's ttlmap: whole seconds). */
  expiry: number;
}

export type Admission = { readonly wait: number } | { readonly refused: true; readonly retryInMs: number };

export class RateLimiter {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #maxDelay: number;
  readonly #ttlS: number;
  readonly #buckets = new Map<string, Bucket>();
  readonly #now: () => number;

  // Monotonic by default: on Date.now a clock stepped back an hour left every bucket owing an
  // hour of tokens (and not forgotten), so each source was refused (429) for that hour.
  constructor(cfg: RateLimitConfig, now: () => number = () => performance.now()) {
    this.#perMs = cfg.average / periodMs(cfg.period)!;
    this.#burst = cfg.burst ?? 1;
    const perS = this.#perMs * 1000;
    // Traefik: time.Second / (time.Duration(rtl) * 2): the rate is truncated to whole requests a
    // second first, so 1.5/s waits up to 500 ms (not 333 ms) and 2.9/s up to 250 ms.
    this.#maxDelay = perS < 1 ? 500 : 500 / Math.trunc(perS);
    this.#ttlS = perS >= 1 ? 2 : 1 + Math.floor(1 / perS);
    this.#now = now;
  }

  /** Takes a token for `source`: now (wait 0), after `wait` ms, or refused. */
  admit(source: string): Admission {
    const now = this.#now();
    const second = Math.floor(now / 1000);
    let b = this.#buckets.get(source);
    if (b !== undefined && b.expiry <= second) {
      this.#buckets.delete(source);
      b = undefined;
    }
    if (b === undefined) {
      if (this.#buckets.size >= MAX_SOURCES) this.#forgetIdle(now);
      b = { tokens: this.#burst, at: now, expiry: 0 };
      this.#buckets.set(source, b);
    }
    // Every request, refused or not, puts the forgetting off (Traefik sets the entry each time).
    b.expiry = second + this.#ttlS;
    b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) * this.#perMs);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { wait: 0 };
    }
    const wait = (1 - b.tokens) / this.#perMs;
    if (wait > this.#maxDelay) return { refused: true, retryInMs: wait };
    b.tokens -= 1; // reserved: the bucket owes this token until it refills
    return { wait };
  }

  #forgetIdle(now: number): void {
    const second = Math.floor(now / 1000);
    for (const [k, b] of this.#buckets) {
      if (b.expiry <= second || b.tokens + (now - b.at) * this.#perMs >= this.#burst) this.#buckets.delete(k);
    }
    // All busy: the oldest go (a fresh bucket is what a forgotten source gets back).
    for (const k of this.#buckets.keys()) {
      if (this.#buckets.size < MAX_SOURCES) break;
      this.#buckets.delete(k);
    }
  }
}
