// The IdP calls a request starts and does not wait for (revokeInBackground: refresh tokens nobody
// holds; token refreshes, which outlive a request answered ahead of time), kept track of by the
// process that owns the IdP clients, so that a graceful shutdown waits for them: dropped, the IdP
// keeps a live grant nobody holds until it expires, or a session keeps a spent refresh token.
import { clearTimeout, setTimeout } from 'node:timers';
import type { Logger } from '../log.ts';

/**
 * How long a shutdown waits for background revocations, after the accepted requests were answered
 * (http/serve.ts SHUTDOWN_GRACE_MS, 5 s) and before the store closes: both together stay well
 * under the 10 s Docker gives a container between SIGTERM and SIGKILL. A healthy IdP answers a
 * revocation in milliseconds; one slower than this would be cut by SIGKILL anyway.
 */
export const BACKGROUND_DRAIN_MS = 3_000;

export class BackgroundTasks {
  /** Settled versions of the tasks still running (they never reject). */
  readonly #pending = new Set<Promise<void>>();

  get size(): number {
    return this.#pending.size;
  }

  /** Keeps track of `task` until it settles; its outcome is the caller's to log. */
  track(task: Promise<unknown>): void {
    const settled: Promise<void> = task.then(() => {}, () => {}).finally(() => this.#pending.delete(settled));
    this.#pending.add(settled);
  }

  /**
   * Resolves once every task has settled, those started while waiting too (a refresh still running
   * may let go of a token), or after `ms`: then logs how many are dropped (never what they carry).
   */
  async drain(log: Logger, ms = BACKGROUND_DRAIN_MS): Promise<void> {
    if (this.#pending.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let late = false;
    const deadline = new Promise<void>((resolve) => { timer = setTimeout(() => { late = true; resolve(); }, ms); });
    try {
      while (this.#pending.size > 0 && !late) await Promise.race([Promise.all(this.#pending), deadline]);
    } finally {
      clearTimeout(timer);
    }
    if (this.#pending.size > 0) {
      log.warn({ dropped: this.#pending.size, waitedMs: ms }, 'shutting down: background token revocations still unanswered are dropped, as are token refreshes still running (the IdP keeps their grants until they expire)');
    }
  }
}
