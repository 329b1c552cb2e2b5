// Flight: one token refresh in this process, and the callers waiting for it, each with its own
// store budget and wall-clock limit (see the top of token-provider.ts for the timings).
import { clearTimeout, setTimeout } from 'node:timers';
import { StoreUnavailable, Unavailable } from '../errors.ts';
import type { Session } from '../session/types.ts';
import type { RequestScope } from './types.ts';

/** A caller waiting for a Flight, with what is left of its store budget (ms). */
interface Waiter {
  left: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  readonly expire: () => void;
}

/**
 * One refresh of one session and audience in this process, running to its end whoever waits for
 * it, and metering the time it spends waiting on the store against each waiting caller's budget.
 */
export class Flight {
  readonly done: Promise<Session | null>;
  /** The request that started it (its log lines carry that request's id). */
  readonly scope: RequestScope | undefined;
  /** performance.now() when the store call in progress began; undefined between store calls. */
  #since: number | undefined;
  readonly #waiters = new Set<Waiter>();
  /** Callers waiting without a store budget (within()). */
  #others = 0;

  constructor(scope: RequestScope | undefined, run: (f: Flight) => Promise<Session | null>) {
    this.scope = scope;
    this.done = run(this);
  }

  /** Whether a caller is still waiting to hear how it ends (or it ends unheard: logged then). */
  get heard(): boolean {
    return this.#waiters.size > 0 || this.#others > 0;
  }

  /** A store call of the refresh: its time counts against every waiting caller's budget. */
  async store<T>(call: Promise<T>): Promise<T> {
    this.#since = performance.now();
    for (const w of this.#waiters) this.#arm(w);
    try {
      return await call;
    } finally {
      const spent = performance.now() - this.#since;
      this.#since = undefined;
      for (const w of this.#waiters) {
        clearTimeout(w.timer);
        w.left -= spent;
      }
    }
  }

  #arm(w: Waiter): void {
    w.timer = setTimeout(w.expire, Math.max(0, w.left));
    w.timer.unref();
  }

  /**
   * Its outcome, or StoreUnavailable once it has kept this caller waiting on the store for
   * `budgetMs`. The refresh itself goes on either way.
   */
  wait(budgetMs: number, wallMs: number): Promise<Session | null> {
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        left: budgetMs,
        timer: undefined,
        expire: () => {
          clearTimeout(wall);
          this.#waiters.delete(w);
          reject(new StoreUnavailable(new Error('a token refresh waited on the session store beyond the request\'s budget')));
        },
      };
      this.#waiters.add(w);
      if (this.#since !== undefined) this.#arm(w);
      const leave = () => {
        clearTimeout(w.timer);
        clearTimeout(wall);
        return this.#waiters.delete(w);
      };
      // And in all, however the time goes (a slow IdP): the refresh goes on, and saves what it gets.
      const wall = setTimeout(() => {
        if (leave()) reject(new Unavailable('the token refresh is taking long: it goes on, try again shortly'));
      }, wallMs);
      wall.unref();
      this.done.then((s) => { if (leave()) resolve(s); }, (err: unknown) => { if (leave()) reject(err); });
    });
  }

  /** Its outcome if it comes within `ms` (wall time); `otherwise` after that, the refresh going on. */
  within(ms: number, otherwise: Session): Promise<Session | null> {
    return new Promise((resolve, reject) => {
      let waiting = true;
      this.#others++;
      const leave = () => {
        if (!waiting) return false;
        waiting = false;
        this.#others--;
        clearTimeout(timer);
        return true;
      };
      const timer = setTimeout(() => { if (leave()) resolve(otherwise); }, ms);
      timer.unref();
      this.done.then((s) => { if (leave()) resolve(s); }, (err: unknown) => { if (leave()) reject(err); });
    });
  }
}
