// memory:// — the same store semantics inside one process, for the demo and tests.
//
// ONLY VALID WHEN EVERYTHING RUNS IN ONE PROCESS: the BFF and the verify sidecar see the same
// sessions only because they share this module's registry. Stores opened with the same URL
// (e.g. `memory://` or `memory://demo`) share one dataset and one broadcast channel; distinct
// names are isolated. A dataset is dropped when its last store closes.
//
// TTLs behave like Redis: checked lazily on every access, plus a periodic sweep (unref'd, so it
// never keeps a process alive) that frees what nobody reads again.
import { setInterval, clearInterval } from 'node:timers';
import { END_FIELD, type Fields, type KvBackend } from './backend.ts';

type Entry =
  | { kind: 'hash'; value: Map<string, string>; expiresAt: number }
  | { kind: 'set'; value: Set<string>; expiresAt: number }
  | { kind: 'string'; value: string; expiresAt: number };

class Dataset {
  readonly entries = new Map<string, Entry>();
  readonly members = new Set<MemoryBackend>();
  /** Operation counts (tests prove "no write on every get" with these). */
  readonly stats = { reads: 0, writes: 0 };
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(readonly name: string, readonly now: () => number, sweepMs: number) {
    this.#timer = setInterval(() => this.sweep(), sweepMs);
    this.#timer.unref();
  }

  sweep(): void {
    const t = this.now();
    for (const [k, e] of this.entries) if (e.expiresAt <= t) this.entries.delete(k);
  }

  live(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (e && e.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  dispose(): void {
    clearInterval(this.#timer);
    this.entries.clear();
  }
}

const registry = new Map<string, Dataset>();

/**
 * A key holding another type than the command's, as Redis answers it: set and string commands
 * fail (a store failure: 503), and hash commands read it as no hash (redis-backend.ts NOT_A_HASH),
 * so that a value nobody should have put there gives the same answer on both backends.
 */
function ofKind<K extends Entry['kind']>(e: Entry | undefined, kind: K): Extract<Entry, { kind: K }> | undefined {
  if (e === undefined || e.kind === kind) return e as Extract<Entry, { kind: K }> | undefined;
  throw new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
}

export interface MemoryBackendOptions {
  /** Clock for TTLs; only the store that opens a dataset first sets it. Default Date.now. */
  now?: () => number;
  /** Sweep period in ms (default 30 s). */
  sweepMs?: number;
}

export class MemoryBackend implements KvBackend {
  readonly #data: Dataset;
  readonly #listeners: ((message: string) => void)[] = [];
  #closed = false;

  /** `name`: the dataset, normally the whole memory:// URL. */
  constructor(name: string, opts: MemoryBackendOptions = {}) {
    let data = registry.get(name);
    if (!data) {
      data = new Dataset(name, opts.now ?? Date.now, opts.sweepMs ?? 30_000);
      registry.set(name, data);
    }
    data.members.add(this);
    this.#data = data;
  }

  /** Counters of the shared dataset (reads: hashGet/setMembers/exists/get; writes: everything else). */
  get stats(): { readonly reads: number; readonly writes: number } {
    return this.#data.stats;
  }

  /** Runs the expiry sweep now (tests). */
  sweep(): void {
    this.#data.sweep();
  }

  /** Number of keys held, including expired ones not yet swept (tests). */
  get rawSize(): number {
    return this.#data.entries.size;
  }

  #open(): Dataset {
    if (this.#closed) throw new Error('memory store is closed');
    return this.#data;
  }

  #read(key: string): Entry | undefined {
    const d = this.#open();
    d.stats.reads++;
    return d.live(key);
  }

  #write(key: string): Entry | undefined {
    const d = this.#open();
    d.stats.writes++;
    return d.live(key);
  }

  async hashGet(key: string): Promise<Fields | null> {
    const e = this.#read(key);
    return e?.kind === 'hash' ? Object.fromEntries(e.value) : null;
  }

  async hashGetSome(key: string, fields: readonly string[]): Promise<(string | null)[] | null> {
    const e = this.#read(key);
    if (e?.kind !== 'hash') return null;
    const values = fields.map((f) => e.value.get(f) ?? null);
    return values.some((v) => v !== null) ? values : null;
  }

  async hashCreate(key: string, fields: Fields, ttlMs: number, lifetimeMs?: number): Promise<void> {
    this.#write(key);
    const value = new Map(Object.entries(fields));
    if (lifetimeMs !== undefined) value.set(END_FIELD, String(this.#data.now() + Math.ceil(lifetimeMs)));
    this.#data.entries.set(key, { kind: 'hash', value, expiresAt: this.#data.now() + ttlMs });
  }

  async hashUpdate(key: string, fields: Fields, incrField?: string, announce?: string): Promise<number | null> {
    const e = this.#write(key);
    if (e?.kind !== 'hash') return null;
    // HINCRBY refuses a field that is not an integer, before the script has changed anything.
    const n = incrField === undefined ? 0 : integer(e.value.get(incrField) ?? '0', 'hash value is not an integer') + 1;
    for (const [f, v] of Object.entries(fields)) e.value.set(f, v);
    if (announce !== undefined) this.#broadcast(announce);
    if (incrField === undefined) return 0;
    e.value.set(incrField, String(n));
    return n;
  }

  async hashTouch(key: string, field: string, value: number, ttlMs: number): Promise<boolean> {
    const e = this.#write(key);
    if (e?.kind !== 'hash') return false;
    // As the script does: a field that is missing or not a number is replaced (NaN >= x is false).
    if (!(Number(e.value.get(field)) >= value)) {
      // As the script does: never past the end recorded at creation (END_FIELD).
      const end = Number(e.value.get(END_FIELD) ?? Infinity);
      const ttl = Math.min(ttlMs, end - this.#data.now());
      if (ttl <= 0) {
        this.#data.entries.delete(key);
        return false;
      }
      e.value.set(field, String(value));
      e.expiresAt = this.#data.now() + ttl;
    }
    return true;
  }

  async hashTake(key: string, fields: readonly string[], announce?: string): Promise<(string | null)[] | null> {
    const e = this.#write(key);
    this.#data.entries.delete(key); // whatever it holds (redis-scripts.ts TAKE)
    if (announce !== undefined) this.#broadcast(announce);
    if (e?.kind !== 'hash') return null;
    return fields.map((f) => e.value.get(f) ?? null);
  }

  async exists(key: string): Promise<boolean> {
    return this.#read(key) !== undefined;
  }

  async setAdd(key: string, member: string, ttlMs: number): Promise<number> {
    let e = ofKind(this.#write(key), 'set');
    const expiresAt = this.#data.now() + ttlMs;
    if (e === undefined) {
      e = { kind: 'set', value: new Set(), expiresAt };
      this.#data.entries.set(key, e);
    }
    e.value.add(member);
    if (e.expiresAt < expiresAt) e.expiresAt = expiresAt;
    return e.value.size;
  }

  async setMembers(key: string): Promise<string[]> {
    const e = ofKind(this.#read(key), 'set');
    return e === undefined ? [] : [...e.value];
  }

  async setSample(key: string, count: number): Promise<string[]> {
    const e = ofKind(this.#read(key), 'set');
    if (e === undefined) return [];
    // Reservoir sampling: `count` distinct members, each as likely as any other.
    const out: string[] = [];
    let seen = 0;
    for (const m of e.value) {
      if (out.length < count) out.push(m);
      else {
        const j = Math.floor(Math.random() * (seen + 1));
        if (j < count) out[j] = m;
      }
      seen++;
    }
    return out;
  }

  async setRemove(key: string, members: readonly string[]): Promise<void> {
    const e = ofKind(this.#write(key), 'set');
    if (e === undefined) return;
    for (const m of members) e.value.delete(m);
    if (e.value.size === 0) this.#data.entries.delete(key);
  }

  async put(key: string, value: string, ttlMs: number, onlyIfAbsent: boolean): Promise<boolean> {
    if (this.#write(key) && onlyIfAbsent) return false;
    this.#data.entries.set(key, { kind: 'string', value, expiresAt: this.#data.now() + ttlMs });
    return true;
  }

  async take(key: string): Promise<string | null> {
    const e = ofKind(this.#write(key), 'string');
    if (e === undefined) return null;
    this.#data.entries.delete(key);
    return e.value;
  }

  async increment(key: string, ttlMs: number, by: number): Promise<number> {
    const e = ofKind(this.#write(key), 'string');
    const n = (e === undefined ? 0 : integer(e.value, 'value is not an integer or out of range')) + by;
    this.#data.entries.set(key, { kind: 'string', value: String(n), expiresAt: e?.expiresAt ?? this.#data.now() + ttlMs });
    return n;
  }

  async get(key: string): Promise<string | null> {
    return ofKind(this.#read(key), 'string')?.value ?? null;
  }

  async swap(key: string, value: string, ttlMs: number): Promise<string | null> {
    const e = ofKind(this.#write(key), 'string');
    this.#data.entries.set(key, { kind: 'string', value, expiresAt: this.#data.now() + ttlMs });
    return e?.value ?? null;
  }

  async deleteIfEquals(key: string, value: string): Promise<boolean> {
    const e = ofKind(this.#write(key), 'string');
    if (e === undefined || e.value !== value) return false;
    this.#data.entries.delete(key);
    return true;
  }

  /** The dataset's clock: every store in the process shares it, as Redis processes share TIME. */
  async time(): Promise<number> {
    return this.#data.now();
  }

  async publish(message: string): Promise<void> {
    this.#open();
    this.#broadcast(message);
  }

  #broadcast(message: string): void {
    for (const m of this.#data.members) m.#deliver(message);
  }

  onMessage(listener: (message: string) => void): void {
    this.#listeners.push(listener);
  }

  #deliver(message: string): void {
    for (const l of this.#listeners) {
      try {
        l(message);
      } catch {
        // A listener's bug must not break the publisher; the store logs its own listener errors.
      }
    }
  }

  async ping(): Promise<void> {
    this.#open();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.length = 0;
    const d = this.#data;
    d.members.delete(this);
    if (d.members.size === 0 && registry.get(d.name) === d) {
      registry.delete(d.name);
      d.dispose();
    }
  }
}

/** A stored integer, as Redis reads one for INCR and HINCRBY (which refuse anything else). */
function integer(text: string, refusal: string): number {
  if (!/^-?(0|[1-9][0-9]{0,17})$/.test(text)) throw new Error(`ERR ${refusal}`);
  return Number(text);
}
