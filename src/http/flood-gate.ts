// One log line a window for an error that comes once per request. A dependency that is away (the
// session store, the IdP) fails every request: at tens of thousands a second, a line each would
// flood the log pipeline and, while stdout backs up, the process's memory.
//
// Times are performance.now() (monotonic): on wall time a clock stepped back an hour (NTP) held
// every line for that hour (now - openedAt stayed negative), an outage's included.
import { clearTimeout, setTimeout } from 'node:timers';

/** The gates holding events whose window has not ended yet (flushAll says them at shutdown). */
const holding = new Set<FloodGate<unknown>>();

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
   * At `now` (performance.now()): the number of events held back since the last one let through (0 for none), when
   * this one may be logged; undefined when it is held back too (`last`: what it is, for
   * onWindowEnd).
   */
  pass(now: number, last?: T): number | undefined {
    if (now - this.#openedAt < this.#windowMs) {
      this.#held++;
      this.#last = last;
      if (this.#onWindowEnd !== undefined && this.#timer === undefined) this.#schedule(this.#openedAt + this.#windowMs - now);
      return undefined;
    }
    const held = this.#held;
    this.#openedAt = now;
    this.#held = 0;
    this.#last = undefined;
    return held;
  }

  /**
   * Says what every gate holds now, without waiting for its window to end: for a process about to
   * exit (the timers are unref'd, and an exit would drop the last second of an outage).
   */
  static flushAll(): void {
    for (const gate of [...holding]) gate.#endWindow(true);
  }

  #schedule(ms: number): void {
    const timer = setTimeout(() => this.#endWindow(false), Math.max(0, ms));
    timer.unref?.();
    this.#timer = timer;
    holding.add(this as FloodGate<unknown>);
  }

  #endWindow(now: boolean): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    holding.delete(this as FloodGate<unknown>);
    const held = this.#held;
    if (held === 0) return; // said already, by an event let through first
    // A timer running late (a busy event loop), after an event let through opened another window:
    // what that window holds is said when it ends, not now (one line a window).
    const left = this.#openedAt + this.#windowMs - performance.now();
    if (left > 0 && !now) {
      this.#schedule(left);
      return;
    }
    const last = this.#last as T;
    this.#held = 0;
    this.#last = undefined;
    // The line said now opens the next window: an outage still going on is one line a window.
    this.#openedAt = performance.now();
    this.#onWindowEnd!(last, held - 1);
  }
}
