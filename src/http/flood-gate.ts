// One log line a window for an error that comes once per request. A dependency that is away (the
// session store, the IdP) fails every request: at tens of thousands a second, a line each would
// flood the log pipeline and, while stdout backs up, the process's memory.
import { setTimeout } from 'node:timers';

export class FloodGate<T = undefined> {
  readonly #windowMs: number;
  readonly #onWindowEnd: ((last: T, alsoHeld: number) => void) | undefined;
  #openedAt = -Infinity;
  #held = 0;
  #last: T | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * `onWindowEnd`: called when a window that held events ends, with the last one held and how many
   * more it stands for, so that an outage's last events are said when it ends, not by the next
   * event let through (maybe hours later, in another outage). Without it, the next event let
   * through says how many were held.
   */
  constructor(windowMs: number, onWindowEnd?: (last: T, alsoHeld: number) => void) {
    this.#windowMs = windowMs;
    this.#onWindowEnd = onWindowEnd;
  }

  /**
   * At `now`: the number of events held back since the last one let through (0 for none), when
   * this one may be logged; undefined when it is held back too (`last`: what it is, for
   * onWindowEnd).
   */
  pass(now: number, last?: T): number | undefined {
    if (now - this.#openedAt < this.#windowMs) {
      this.#held++;
      this.#last = last;
      if (this.#onWindowEnd !== undefined && this.#timer === undefined) {
        const timer = setTimeout(() => this.#endWindow(), Math.max(0, this.#openedAt + this.#windowMs - now));
        timer.unref?.();
        this.#timer = timer;
      }
      return undefined;
    }
    const held = this.#held;
    this.#openedAt = now;
    this.#held = 0;
    this.#last = undefined;
    return held;
  }

  #endWindow(): void {
    this.#timer = undefined;
    const held = this.#held;
    if (held === 0) return; // said already, by an event let through first
    const last = this.#last as T;
    this.#held = 0;
    this.#last = undefined;
    // The line said now opens the next window: an outage still going on is one line a window.
    this.#openedAt = Date.now();
    this.#onWindowEnd!(last, held - 1);
  }
}
