// The one SessionStore, on top of a KvBackend (Redis or memory). Layout, crypto, expiry, indexes
// and invalidation are written here once, so both backends behave identically by construction.
// Its parts: the key layout (keys.ts), session reads (session-load.ts), the invalidation feed
// (invalidation-feed.ts), and tallies, locks, transient values and replay marks (kv-primitives.ts).
import { SessionEnded } from '../errors.ts';
import { errorFields, type Logger } from '../log.ts';
import { END_FIELD, type Fields, type KvBackend } from './backend.ts';
import { CookieCodec, isStorageId } from './cookie.ts';
import { SecretBox } from './crypto.ts';
import { InvalidationFeed } from './invalidation-feed.ts';
import { keys } from './keys.ts';
import { KvPrimitives } from './kv-primitives.ts';
import { hasSecretsShape } from './secrets-shape.ts';
import { DEFAULT_LOAD_DEADLINE_MS, SessionLoader } from './session-load.ts';
import { LONGEST_SIGN_IN_MS, REPLACED, type NewSession, type ReadOptions, type Session, type SessionSecrets, type SessionStore, type SignIn } from './types.ts';
import { unavailable } from './unavailable.ts';

export { DEFAULT_LOAD_DEADLINE_MS } from './session-load.ts';
export { keys } from './keys.ts';

/** Index sets outlive their members' sessions by this much (clock skew between processes). */
const INDEX_SLACK_MS = 60_000;
/**
 * Above this many members an index is pruned of ids whose session is gone, checking this many of
 * them, picked at random, at each sign-in (see #prune).
 */
const INDEX_PRUNE_AT = 32;
const SESSION_FIELDS = ['idp', 'sid', 'sub'] as const;
/** How many sessions a back-channel logout reads or deletes at once (see inBatches). */
export const LOGOUT_BATCH = 256;

/**
 * `fn` over `items`, LOGOUT_BATCH at a time, results in order. All at once, the 20,000 sessions of
 * one user queued their commands on one connection past the 500 ms command bound: the logout was
 * a 503 though every session was deleted, and every other user's reads waited behind them.
 */
async function inBatches<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += LOGOUT_BATCH) out.push(...await Promise.all(items.slice(i, i + LOGOUT_BATCH).map(fn)));
  return out;
}

export interface KvSessionStoreOptions {
  backend: KvBackend;
  /** GOLDPATH_SESSION_KEYS: the first signs and encrypts, all verify and decrypt. */
  sessionKeys: readonly Uint8Array[];
  sessionIdleMs: number;
  sessionMaxMs: number;
  log: Logger;
  /** Clock (tests move it to prove expiry). Default Date.now. */
  now?: () => number;
  /** How stale lastSeen may get before a read records activity. Default min(60 s, idle / 10). */
  touchIntervalMs?: number;
  /** Bound on a whole session load (get, getById, revalidate). Default DEFAULT_LOAD_DEADLINE_MS. */
  loadDeadlineMs?: number;
}

export class KvSessionStore implements SessionStore {
  readonly #backend: KvBackend;
  readonly #cookies: CookieCodec;
  readonly #box: SecretBox;
  readonly #idleMs: number;
  readonly #maxMs: number;
  readonly #touchMs: number;
  readonly #now: () => number;
  readonly #log: Logger;
  /** Session reads: get, getById, revalidate. */
  readonly #loader: SessionLoader;
  /** Tallies, locks, transient values, replay marks. */
  readonly #kv: KvPrimitives;
  /** Announces changes of sessions to the other processes, and hears theirs. */
  readonly #feed: InvalidationFeed;
  /** onCaughtError's listeners. */
  readonly #caughtListeners = new Set<(err: unknown) => void>();
  /** Reports a failure caught and not thrown (see onCaughtError); bound once, handed to the parts. */
  readonly #caught = (err: unknown): void => {
    for (const l of this.#caughtListeners) {
      try {
        l(err);
      } catch (e) {
        this.#log.error({ err: (e as Error).message }, 'store error listener threw');
      }
    }
  };

  constructor(opts: KvSessionStoreOptions) {
    if (!(opts.sessionIdleMs > 0) || !(opts.sessionMaxMs > 0)) throw new RangeError('session durations must be positive');
    this.#backend = opts.backend;
    this.#cookies = new CookieCodec(opts.sessionKeys);
    this.#box = new SecretBox(opts.sessionKeys);
    this.#idleMs = opts.sessionIdleMs;
    this.#maxMs = opts.sessionMaxMs;
    this.#touchMs = Math.max(1, opts.touchIntervalMs ?? Math.min(60_000, Math.floor(opts.sessionIdleMs / 10)));
    const loadMs = opts.loadDeadlineMs ?? DEFAULT_LOAD_DEADLINE_MS;
    if (!(loadMs > 0)) throw new RangeError('loadDeadlineMs must be positive');
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log;
    this.#loader = new SessionLoader({
      backend: this.#backend, box: this.#box, idleMs: this.#idleMs, maxMs: this.#maxMs, touchMs: this.#touchMs, loadMs,
      now: this.#now, log: this.#log, remove: (id) => this.delete(id), caught: this.#caught,
    });
    this.#kv = new KvPrimitives(this.#backend, this.#box, this.#now);
    this.#feed = new InvalidationFeed(this.#backend, this.#log, this.#caught);
    this.#backend.onCaughtError?.(this.#caught);
  }

  /** See SessionStore.onCaughtError. */
  onCaughtError(listener: (err: unknown) => void): () => void {
    const l = (err: unknown) => listener(err); // distinct wrapper: the same function may subscribe twice
    this.#caughtListeners.add(l);
    return () => {
      this.#caughtListeners.delete(l);
    };
  }

  /** See InvalidationFeed. */
  get invalidationsLive(): boolean {
    return this.#feed.invalidationsLive;
  }

  /** See InvalidationFeed. */
  onResync(listener: () => void): () => void {
    return this.#feed.onResync(listener);
  }

  /** The storage id for a cookie value, or null if malformed or forged. No backend call. */
  idOf(cookieValue: string | undefined | null): string | null {
    return this.#cookies.parseCookie(cookieValue);
  }

  /** How long a session lives without a request (GOLDPATH_SESSION_IDLE). */
  get sessionIdleMs(): number {
    return this.#idleMs;
  }

  /** How stale lastSeen may get before a read writes (exposed for tests and metrics). */
  get touchIntervalMs(): number {
    return this.#touchMs;
  }

  async create(input: NewSession): Promise<{ cookieValue: string; session: Session }> {
    if (typeof input.sub !== 'string' || input.sub === '' || typeof input.idp !== 'string' || input.idp === '') {
      throw new TypeError('a session needs a non-empty sub and idp');
    }
    const { cookieValue, id } = this.#cookies.issue();
    const now = this.#now();
    const expiresAt = now + this.#maxMs;
    const fields: Fields = {
      sub: input.sub,
      idp: input.idp,
      createdAt: String(now),
      expiresAt: String(expiresAt),
      lastSeen: String(now),
      version: '1',
      d: this.#box.seal(JSON.stringify(input.secrets), id),
    };
    if (input.sid !== undefined) fields.sid = input.sid;
    const indexTtl = this.#maxMs + INDEX_SLACK_MS;
    // If any write fails the cookie is never handed out, so a half-written session is unreachable
    // and simply expires. The session before its index entries: #prune drops members whose session
    // does not exist, and on Redis Cluster writes sent together reach their nodes in no order.
    try {
      // The absolute lifetime again, on the store's clock: no touch by a process whose clock lags
      // keeps the key past it (backend.ts END_FIELD).
      await this.#backend.hashCreate(keys.session(id), fields, Math.min(this.#idleMs, this.#maxMs), this.#maxMs);
      const [bySub, bySid] = await Promise.all([
        this.#backend.setAdd(keys.bySub(input.idp, input.sub), id, indexTtl),
        input.sid === undefined ? 0 : this.#backend.setAdd(keys.bySid(input.idp, input.sid), id, indexTtl),
      ]);
      if (bySub > INDEX_PRUNE_AT) this.#prune(keys.bySub(input.idp, input.sub));
      if (bySid > INDEX_PRUNE_AT && input.sid !== undefined) this.#prune(keys.bySid(input.idp, input.sid));
    } catch (err) {
      throw unavailable(err);
    }
    // A back-channel logout that ran while the login completed (its code exchange came first):
    // deleteBySid and deleteBySub mark the sid or sub ended before they read the index, and this
    // reads the marks after the index write, so one of the two always sees the other. The marks'
    // times and startedAt come from one clock (clock()). A start in the very ms of the logout is
    // after it: the IdP ended its session before it sent the logout, so that sign-in reached it later.
    const startedAt = input.login?.startedAt ?? now;
    const endedSince = (at: string | null) => at !== null && Number(at) > startedAt;
    let sidEnded: boolean;
    let subEndedAt: string | null;
    try {
      [sidEnded, subEndedAt] = await Promise.all([
        input.sid === undefined
          ? this.#backend.get(keys.sidlessEnded(input.idp, input.sub)).then(endedSince)
          : this.#backend.exists(keys.sidEnded(input.idp, input.sid)),
        this.#backend.get(keys.subEnded(input.idp, input.sub)),
      ]);
    } catch (err) {
      throw unavailable(err);
    }
    if (sidEnded || endedSince(subEndedAt)) {
      await this.delete(id);
      throw new SessionEnded();
    }
    if (input.login !== undefined) await this.#replaceBrowserSession(input.login, id, input.idp, input.sub);
    return {
      cookieValue,
      session: {
        id, sub: input.sub, idp: input.idp, sid: input.sid, createdAt: now, expiresAt,
        idleExpiresAt: now + this.#idleMs, version: 1, secrets: input.secrets,
      },
    };
  }

  get(cookieValue: string, opts?: ReadOptions): Promise<Session | null> {
    const id = this.#cookies.parseCookie(cookieValue);
    return id === null ? Promise.resolve(null) : this.#loader.load(id, undefined, opts?.slide !== false);
  }

  getById(id: string): Promise<Session | null> {
    return typeof id === 'string' && isStorageId(id) ? this.#loader.load(id) : Promise.resolve(null);
  }

  /**
   * For caches: reads `known` again (existence, expiry, activity, exactly as get()), but when its
   * version is unchanged keeps its secrets instead of decrypting and parsing them again. The result
   * then reads its secrets from `known` (for a plain Session: the same object); null when the
   * session is gone.
   */
  revalidate(known: Session): Promise<Session | null> {
    return this.#loader.load(known.id, known);
  }

  async updateSecrets(id: string, secrets: SessionSecrets): Promise<boolean> {
    if (typeof id !== 'string' || !isStorageId(id)) return false;
    const d = this.#box.seal(JSON.stringify(secrets), id);
    let version: number | null;
    try {
      // Announced in the same step: see delete().
      version = await this.#backend.hashUpdate(keys.session(id), { d }, 'version', this.#feed.message(id));
    } catch (err) {
      // It may have run (a write a replica did not confirm in time): announce it on its own.
      await this.#feed.invalidate(id).catch(() => { /* the update's failure is what the caller hears */ });
      throw unavailable(err);
    }
    if (version === null) return false;
    this.#feed.fire(id);
    return true;
  }

  async delete(id: string): Promise<boolean> {
    return (await this.#remove(id, false)) !== null;
  }

  async take(id: string): Promise<SessionSecrets | null> {
    const d = (await this.#remove(id, true))?.[SESSION_FIELDS.length];
    const plain = typeof d === 'string' ? this.#box.openText(d, id) : null;
    if (plain === null) return null;
    try {
      const parsed: unknown = JSON.parse(plain);
      return hasSecretsShape(parsed) ? parsed : null;
    } catch {
      return null;
    }
  }

  /** Deletes a session; its fields as they were (SESSION_FIELDS, then `d` when asked), or null when there was none. */
  async #remove(id: string, withSecrets: boolean): Promise<(string | null)[] | null> {
    if (typeof id !== 'string' || !isStorageId(id)) return null;
    let was: (string | null)[] | null = null;
    let failure: unknown;
    try {
      // The invalidation is published by the delete itself, in one step: a second command would
      // reach the other processes one round trip later, or never when this process's link fails
      // in between, while their caches kept the session (their own links being fresh).
      was = await this.#backend.hashTake(keys.session(id), withSecrets ? [...SESSION_FIELDS, 'd'] : SESSION_FIELDS, this.#feed.message(id));
      this.#feed.fire(id);
    } catch (err) {
      failure = err; // it may be gone anyway: a write a replica did not confirm in time still ran
      // Broadcast whatever happened, even when nothing was stored: a cache elsewhere may still
      // hold it, and must not serve a session that may be gone for its TTL.
      await this.#feed.invalidate(id).catch(() => { /* retried in the background (InvalidationFeed, invalidation-feed.ts) */ });
    }
    if (failure !== undefined) throw unavailable(failure);
    if (was !== null && was[0]) {
      // The indexes only point at sessions: a member left behind points at nothing (deleteBySid
      // and #prune skip and drop such members). Best effort, so that a failure here does not turn
      // a logout that happened into an error.
      const [idp, sid, sub] = was as [string, string | null, string | null];
      await Promise.all([
        sub ? this.#backend.setRemove(keys.bySub(idp, sub), [id]) : undefined,
        sid ? this.#backend.setRemove(keys.bySid(idp, sid), [id]) : undefined,
      ]).catch((err: unknown) => {
        this.#caught(err);
        this.#log.warn({ err: errorFields(err) }, 'session deleted, but not yet removed from its sid/sub index');
      });
    }
    return was;
  }

  async deleteBySid(idp: string, sid: string, sub?: string): Promise<number> {
    await Promise.all([
      this.#markEnded(keys.sidEnded(idp, sid), '1'),
      sub === undefined ? undefined : this.clock().then((at) => this.#markEnded(keys.sidlessEnded(idp, sub), String(at))),
    ]);
    return this.#deleteIndexed(keys.bySid(idp, sid), sub === undefined ? undefined : keys.bySub(idp, sub));
  }

  async deleteBySub(idp: string, sub: string): Promise<number> {
    await this.#markEnded(keys.subEnded(idp, sub), String(await this.clock()));
    return this.#deleteIndexed(keys.bySub(idp, sub));
  }

  /**
   * The store's clock (Redis TIME), not this process's: a logout's mark and the start of a sign-in
   * are often written by two replicas, whose clocks may disagree by more than a sign-in takes.
   */
  async clock(): Promise<number> {
    try {
      return await this.#backend.time();
    } catch (err) {
      throw unavailable(err);
    }
  }

  /**
   * For as long as any session could carry the sid or sub, and any sign-in begun before could
   * still complete (a login transaction outlives a short GOLDPATH_SESSION_MAX); see create().
   */
  async #markEnded(key: string, value: string): Promise<void> {
    try {
      await this.#backend.put(key, value, Math.max(this.#maxMs, LONGEST_SIGN_IN_MS) + INDEX_SLACK_MS, false);
    } catch (err) {
      // Deleting must not wait on it: a full Redis (noeviction) refuses this write but still
      // deletes, and it refuses the writes of create() too, so no session can race this one then.
      this.#caught(err);
      this.#log.warn({ err: errorFields(err) }, 'back-channel logout: the end of the IdP session could not be recorded; deleting its sessions anyway');
    }
  }

  /**
   * The browser's previous sign-in left a session only that browser's cookie could name, and the
   * cookie now names the new one. Best effort: the new session is made, and the old one at worst
   * idles out as it did before. Only a session of the same user is replaced: the binding is a
   * cookie another browser may share (a browser cookie planted on plain-http localhost,
   * where it has no __Host- prefix and no port), and one user's sign-in must never end another's.
   * Nor one made after this sign-in began (SignIn.browser: overlapping sign-ins both stay).
   */
  async #replaceBrowserSession(login: SignIn, id: string, idp: string, sub: string): Promise<void> {
    try {
      const previous = await this.#backend.swap(keys.browser(login.browser), id, this.#maxMs);
      if (previous === null || previous === id || !isStorageId(previous)) return;
      const owner = await this.#backend.hashGetSome(keys.session(previous), ['idp', 'sub', 'createdAt', END_FIELD]);
      // "Made after this sign-in began" on one clock: startedAt is the store's (clock()), and so is
      // END_FIELD (the store's time at creation + the absolute lifetime); createdAt is the creating
      // process's, which may lag the store's by more than two overlapping sign-ins lie apart. (A
      // GOLDPATH_SESSION_MAX changed since the session was made shifts madeAt by the change: rare,
      // and the cost is one of two overlapping sign-ins signed out.)
      const end = owner?.[3];
      const madeAt = typeof end === 'string' ? Number(end) - Math.ceil(this.#maxMs) : Number(owner?.[2]);
      if (owner !== null && owner[0] === idp && owner[1] === sub && madeAt < login.startedAt) {
        await this.putTransient(REPLACED.kind, previous, idp, REPLACED.ttlMs);
        await this.delete(previous);
      }
    } catch (err) {
      this.#caught(err);
      this.#log.warn({ err: errorFields(err) }, 'sign-in: the session of the browser\'s previous sign-in could not be deleted');
    }
  }

  async lastSignInIdp(browser: string, sub?: string): Promise<string | null> {
    try {
      const id = await this.#backend.get(keys.browser(browser));
      if (id === null || !isStorageId(id)) return null;
      const owner = await this.#backend.hashGetSome(keys.session(id), ['idp', 'sub']);
      if (owner === null || (sub !== undefined && owner[1] !== sub)) return null;
      return owner[0] ?? null;
    } catch (err) {
      throw unavailable(err);
    }
  }

  /**
   * Deletes the sessions an index names; with `sidlessIn` (a sub index), also those of that index
   * stored without a sid, read from each session (its `sub` is always stored: no answer = gone).
   */
  async #deleteIndexed(indexKey: string, sidlessIn?: string): Promise<number> {
    try {
      const [ids, more] = await Promise.all([this.#backend.setMembers(indexKey), sidlessIn === undefined ? [] : this.#backend.setMembers(sidlessIn)]);
      const named = new Set(ids);
      const others = more.filter((id) => !named.has(id));
      const fields = await inBatches(others, (id) => this.#backend.hashGetSome(keys.session(id), ['sub', 'sid']));
      const sidless = others.filter((_, i) => fields[i] !== null && fields[i]![1] === null);
      if (ids.length + sidless.length === 0) return 0;
      const deleted = await inBatches([...ids, ...sidless], (id) => this.delete(id));
      await this.#backend.setRemove(indexKey, ids); // stale members too
      return deleted.filter(Boolean).length;
    } catch (err) {
      throw unavailable(err);
    }
  }

  /**
   * Drops index members whose session expired (indexes only expire as a whole), from a random
   * sample of INDEX_PRUNE_AT of them. Best effort. Checking every member made each sign-in of a
   * user with N sessions cost N commands: 3,000 sign-ins of one account sent Redis 4.5 million
   * commands and some timed out (503), slowing every other user's reads on the same connection.
   * A sign-in adds one member and checks 32: members whose session is gone stay about 1/32 of the
   * index, and sessions that ended together are dropped 32 a sign-in.
   */
  #prune(indexKey: string): void {
    void (async () => {
      const ids = await this.#backend.setSample(indexKey, INDEX_PRUNE_AT);
      const alive = await Promise.all(ids.map((id) => this.#backend.exists(keys.session(id))));
      await this.#backend.setRemove(indexKey, ids.filter((_, i) => !alive[i]));
    })().catch((err: Error) => {
      this.#caught(err);
      this.#log.debug({ err: err.message }, 'index prune failed');
    });
  }

  tally(kind: string, windowMs: number, weight = 1): Promise<number> {
    return this.#kv.tally(kind, windowMs, weight);
  }

  tryLock(name: string, ttlMs: number): Promise<string | null> {
    return this.#kv.tryLock(name, ttlMs);
  }

  unlock(name: string, token: string): Promise<void> {
    return this.#kv.unlock(name, token);
  }

  putTransient(kind: string, key: string, value: string, ttlMs: number): Promise<void> {
    return this.#kv.putTransient(kind, key, value, ttlMs);
  }

  takeTransient(kind: string, key: string): Promise<string | null> {
    return this.#kv.takeTransient(kind, key);
  }

  markOnce(kind: string, key: string, ttlMs: number): Promise<boolean> {
    return this.#kv.markOnce(kind, key, ttlMs);
  }

  unmark(kind: string, key: string): Promise<void> {
    return this.#kv.unmark(kind, key);
  }

  onInvalidate(listener: (id: string) => void): () => void {
    return this.#feed.onInvalidate(listener);
  }

  async ping(): Promise<void> {
    try {
      await this.#backend.ping();
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** See InvalidationFeed. */
  probeInvalidations(timeoutMs: number): Promise<void> {
    return this.#feed.probeInvalidations(timeoutMs);
  }

  async close(): Promise<void> {
    this.#feed.dropListeners();
    await this.#backend.close();
  }
}
