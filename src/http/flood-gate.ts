// One log line a window for an error that comes once per request. A dependency that is away (the
// session store, the IdP) fails every request: at tens of thousands a second, a line each would
// flood the log pipeline and, while stdout backs up, the process's memory.

export class FloodGate {
  readonly #windowMs: number;
  #openedAt = -Infinity;
  #held = 0;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /**
   * At `now`: the number of events held back since the last one let through (0 for none), when
   * this one may be logged; undefined when it is held back too.
   */
  pass(now: number): number | undefined {
    if (now - this.#openedAt < this.#windowMs) {
      this.#held++;
      return undefined;
    }
    const held = this.#held;
    this.#openedAt = now;
    this.#held = 0;
    return held;
  }
}
