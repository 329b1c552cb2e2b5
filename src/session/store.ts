// The one SessionStore, on top of a KvBackend (Redis or memory). Layout, crypto, expiry, indexes
// and invalidation are written here once, so both backends behave identically by construction.
//
// Layout (Redis keys; braces are Cluster hash tags). Every operation touches exactly one key (Lua
// scripts included), so no operation can span two slots; the tags keep each key's slot stable:
//   gp:s:{<id>}                 hash: sub idp sid createdAt expiresAt lastSeen version d end
//                               end = expiresAt on Redis's clock (TIME): touches never pass it
//                               d = AEAD(SessionSecrets JSON, aad = id): user, csrf and all tokens
//   gp:sid:{<idp>:<sid>}        set of ids   } TTL >= the longest absolute expiry of a member,
//   gp:sub:{<idp>:<sub>}        set of ids   } for back-channel logout
//   gp:lock:{<name>}            lock token (SET NX PX)
//   gp:t:<kind>:{<key>}         AEAD(transient value, aad = kind + key)
//   gp:once:<kind>:{<key>}      replay marker
//   gp:sid-ended:{<idp>:<sid>}      '1': a back-channel logout ended this sid         } TTL = the longest
//   gp:sub-ended:{<idp>:<sub>}      when a back-channel logout ended this sub (ms)     } absolute expiry or
//   gp:sidless-ended:{<idp>:<sub>}  when one by sid and sub ended the sub's sessions   } sign-in, if longer
//                                   stored without a sid (ms)
//   (the times above, and SignIn.startedAt, are read from the store's clock: clock())
//   gp:clock                        never written: routes Redis TIME to one server (redis-scripts.ts)
//   gp:browser:{<browser>}      id of the session the browser's last sign-in created
//   gp:tally:{<kind>:<window>}  count of events in a window (sign-ins started per minute)
// <id> is the storage id (SHA-256 of the cookie's random part): a dump holds no cookie and no token.
// Index components are percent-encoded so no idp/sid/sub can forge a separator or a hash tag.
import { randomBytes } from 'node:crypto';
import { clearTimeout, setTimeout } from 'node:timers';
import { SessionEnded, StoreUnavailable } from '../errors.ts';
import { FloodGate } from '../http/flood-gate.ts';
import { percentEncode } from '../strings.ts';
import { errorFields, type Logger } from '../log.ts';
import { END_FIELD, type Fields, type KvBackend } from './backend.ts';
import { CookieCodec, isStorageId } from './cookie.ts';
import { SecretBox } from './crypto.ts';
import { DEFAULT_SESSION_CACHE_TTL_MS } from './cache.ts';
import { intern, internSecrets } from './intern.ts';
import { hasSecretsShape } from './secrets-shape.ts';
import { LONGEST_SIGN_IN_MS, REPLACED, type NewSession, type ReadOptions, type Session, type SessionSecrets, type SessionStore, type SignIn } from './types.ts';

/** Index sets outlive their members' sessions by this much (clock skew between processes). */
const INDEX_SLACK_MS = 60_000;
/**
 * The whole of a session load (its reads, the idle touch, the removal of an expired session) ends
 * within this, or fails with StoreUnavailable (503): SPEC 5 wants /auth/verify answered within 1 s
 * on a store that is down or slow, and each backend call is only bounded alone. A single read may
 * already take the backend's ready-wait plus its command timeout (300 + 500 ms, redis-backend.ts),
 * so the bound is that, and what is left of the second goes to the rest of the chain (a refresh
 * ahead of time waits at most what is left of 850 ms: oidc/token-provider.ts).
 */
export const DEFAULT_LOAD_DEADLINE_MS = 800;
/** Above this many members an index is pruned of ids whose session is gone. */
const INDEX_PRUNE_AT = 32;
const SESSION_FIELDS = ['idp', 'sid', 'sub'] as const;
/** The hash fields of a session without its secrets (layout above). */
const METADATA_FIELDS = ['sub', 'idp', 'sid', 'createdAt', 'expiresAt', 'lastSeen', 'version'] as const;

/** The stored session is the version `known` was read at (same blob, see #load). */
function sameVersion(h: Fields, known: Session): boolean {
  return h.version === String(known.version) && h.sub === known.sub && h.idp === known.idp;
}

/** Key text: percent-encoded, lone surrogates included (the BFF refuses such ids at sign-in). */
const enc = percentEncode;
export const keys = {
  session: (id: string) => `gp:s:{${id}}`,
  bySid: (idp: string, sid: string) => `gp:sid:{${enc(idp)}:${enc(sid)}}`,
  bySub: (idp: string, sub: string) => `gp:sub:{${enc(idp)}:${enc(sub)}}`,
  lock: (name: string) => `gp:lock:{${enc(name)}}`,
  transient: (kind: string, key: string) => `gp:t:${enc(kind)}:{${enc(key)}}`,
  once: (kind: string, key: string) => `gp:once:${enc(kind)}:{${enc(key)}}`,
  /** An IdP session (sid) a back-channel logout ended: no session may be created for it after. */
  sidEnded: (idp: string, sid: string) => `gp:sid-ended:{${enc(idp)}:${enc(sid)}}`,
  /** When a back-channel logout ended every session of a user: sign-ins begun before are refused. */
  subEnded: (idp: string, sub: string) => `gp:sub-ended:{${enc(idp)}:${enc(sub)}}`,
  /**
   * When a logout by sid and sub ended the user's sessions stored without a sid (deleteBySid):
   * such sign-ins begun before are refused, as we cannot tell which IdP session they belong to.
   */
  sidlessEnded: (idp: string, sub: string) => `gp:sidless-ended:{${enc(idp)}:${enc(sub)}}`,
  /** The session a browser's last sign-in created (SignIn.browser). */
  browser: (browser: string) => `gp:browser:{${enc(browser)}}`,
  /** Events of a kind in one window (tally). */
  tally: (kind: string, window: number) => `gp:tally:{${enc(kind)}:${window}}`,
};

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

/** What a wait that ran into a load's deadline resolves to. */
const LATE = Symbol('late');

/** One timer for every wait of one load (see DEFAULT_LOAD_DEADLINE_MS). */
class Deadline {
  readonly #reached: Promise<typeof LATE>;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(ms: number) {
    this.#reached = new Promise((resolve) => {
      this.#timer = setTimeout(resolve, ms, LATE);
      this.#timer.unref(); // a load never keeps a closing process alive
    });
  }

  /** `p`'s outcome, or LATE once the deadline has passed (a later rejection of `p` is handled here). */
  race<T>(p: Promise<T>): Promise<T | typeof LATE> {
    return Promise.race([p, this.#reached]);
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}

/** The store failed: anything from the backend becomes StoreUnavailable (503), never "absent". */
function unavailable(err: unknown): StoreUnavailable {
  return err instanceof StoreUnavailable ? err : new StoreUnavailable(err);
}

function checkTtl(ttlMs: number): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError('ttlMs must be a positive number of milliseconds');
  return Math.ceil(ttlMs);
}

export class KvSessionStore implements SessionStore {
  readonly #backend: KvBackend;
  readonly #cookies: CookieCodec;
  readonly #box: SecretBox;
  readonly #idleMs: number;
  readonly #maxMs: number;
  readonly #touchMs: number;
  readonly #loadMs: number;
  readonly #now: () => number;
  readonly #log: Logger;
  /** Sessions that cannot be decrypted are logged a line a minute at most (see #unreadable). */
  readonly #unreadableGate = new FloodGate(60_000);
  /** Tags this instance's broadcasts so it does not hear its own twice. */
  readonly #origin = randomBytes(9).toString('base64url');
  readonly #listeners = new Set<(id: string) => void>();
  readonly #resyncListeners = new Set<() => void>();
  /** Feed probes (probeInvalidations) waiting for their own message to come back. */
  readonly #probes = new Map<string, () => void>();
  #probeSeq = 0;
  /** Whether other processes' invalidations reach us (see invalidationsLive). */
  #feedLive: boolean;

  constructor(opts: KvSessionStoreOptions) {
    if (!(opts.sessionIdleMs > 0) || !(opts.sessionMaxMs > 0)) throw new RangeError('session durations must be positive');
    this.#backend = opts.backend;
    this.#cookies = new CookieCodec(opts.sessionKeys);
    this.#box = new SecretBox(opts.sessionKeys);
    this.#idleMs = opts.sessionIdleMs;
    this.#maxMs = opts.sessionMaxMs;
    this.#touchMs = Math.max(1, opts.touchIntervalMs ?? Math.min(60_000, Math.floor(opts.sessionIdleMs / 10)));
    this.#loadMs = opts.loadDeadlineMs ?? DEFAULT_LOAD_DEADLINE_MS;
    if (!(this.#loadMs > 0)) throw new RangeError('loadDeadlineMs must be positive');
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log;
    this.#backend.onMessage((message) => {
      const bar = message.indexOf('|');
      if (bar < 0) return;
      const mine = message.slice(0, bar) === this.#origin;
      const id = message.slice(bar + 1);
      // `~…` is a feed probe (no storage id has a ~), never an invalidation: only its sender
      // listens for it.
      if (id.charCodeAt(0) === 0x7e) {
        if (mine) this.#probes.get(id)?.();
        return;
      }
      if (!mine) this.#fire(id);
    });
    this.#feedLive = this.#backend.onFeedState === undefined;
    this.#backend.onFeedState?.((live) => {
      this.#feedLive = live;
      for (const l of this.#resyncListeners) {
        try {
          l();
        } catch (err) {
          this.#log.error({ err: (err as Error).message }, 'session resync listener threw');
        }
      }
    });
  }

  /**
   * Whether invalidations from other processes are being received right now. False until the
   * backend's subscription is up, and again whenever it drops: a cache must not serve meanwhile.
   */
  get invalidationsLive(): boolean {
    return this.#feedLive;
  }

  /**
   * Called whenever the invalidation feed drops or comes back (a reconnect): invalidations may
   * have been missed, so every cache built on onInvalidate must empty itself. Returns an unsubscribe.
   */
  onResync(listener: () => void): () => void {
    const l = () => listener();
    this.#resyncListeners.add(l);
    return () => {
      this.#resyncListeners.delete(l);
    };
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
    return id === null ? Promise.resolve(null) : this.#load(id, undefined, opts?.slide !== false);
  }

  getById(id: string): Promise<Session | null> {
    return typeof id === 'string' && isStorageId(id) ? this.#load(id) : Promise.resolve(null);
  }

  /**
   * For caches: reads `known` again (existence, expiry, activity, exactly as get()), but when its
   * version is unchanged keeps its secrets instead of decrypting and parsing them again. The result
   * then reads its secrets from `known` (for a plain Session: the same object); null when the
   * session is gone.
   */
  revalidate(known: Session): Promise<Session | null> {
    return this.#load(known.id, known);
  }

  /**
   * One backend read; a second (the touch) only when lastSeen is older than the touch interval.
   * With `known`, the read leaves out the secrets (HMGET of the other fields: the ciphertext is most
   * of a session's bytes), and only a changed version reads them too. All of it within the load
   * deadline (DEFAULT_LOAD_DEADLINE_MS): a read not answered by then is StoreUnavailable.
   */
  async #load(id: string, known?: Session, slide = true): Promise<Session | null> {
    const deadline = new Deadline(this.#loadMs);
    try {
      return await this.#loadWithin(id, known, deadline, slide);
    } finally {
      deadline.clear();
    }
  }

  async #loadWithin(id: string, known: Session | undefined, deadline: Deadline, slide: boolean): Promise<Session | null> {
    const key = keys.session(id);
    let h: Fields | null | typeof LATE;
    try {
      h = await deadline.race(known === undefined ? this.#backend.hashGet(key) : this.#metadata(key));
      if (h !== LATE && h !== null && known !== undefined && !sameVersion(h, known)) h = await deadline.race(this.#backend.hashGet(key));
    } catch (err) {
      throw unavailable(err);
    }
    if (h === LATE) throw new StoreUnavailable(new Error(`the session store did not answer a session read within ${this.#loadMs} ms`));
    if (h === null) return null;
    const now = this.#now();
    const expiresAt = Number(h.expiresAt);
    const lastSeen = Number(h.lastSeen);
    // Every change of the secrets bumps the version (updateSecrets), so an equal version is an
    // equal blob: what `known` holds is what decrypting it would give.
    const same = known !== undefined && sameVersion(h, known);
    // NaN-safe: a field that is missing or garbled fails these comparisons and the session goes.
    if (!(expiresAt > now) || !(lastSeen + this.#idleMs > now) || (!same && h.d === undefined) || !h.sub || !h.idp) {
      return this.#discard(id, deadline);
    }
    let secrets: SessionSecrets | undefined;
    if (!same) {
      const plain = this.#box.openText(h.d!, id);
      if (plain === null) {
        // Tampering or a moved blob (a key we have does not authenticate it): removed. A key we
        // lack: sealed by a process that has it (a rotation rolling out: a refresh there re-seals
        // under the new first key), so absent here but not ours to delete; its TTLs end it.
        const ours = this.#box.hasKeyFor(h.d!);
        this.#unreadable(ours);
        return ours ? this.#discard(id, deadline) : null;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(plain);
      } catch {
        return this.#discard(id, deadline);
      }
      if (!hasSecretsShape(parsed)) return null; // see secrets-shape.ts: not ours to delete
      secrets = internSecrets(parsed);
    }
    let seen = lastSeen;
    if (slide && now - lastSeen >= this.#touchMs) {
      const ttl = Math.max(1, Math.min(now + this.#idleMs, expiresAt) - now);
      let alive: boolean | typeof LATE;
      try {
        alive = await deadline.race(this.#backend.hashTouch(key, 'lastSeen', now, ttl));
      } catch (err) {
        throw unavailable(err); // never allow on error: the store is failing right now
      }
      // A touch still unanswered at the deadline: the session is served from the read. The read
      // succeeded, so the session existed a moment ago, and the touch is bookkeeping for sliding
      // expiry (it goes on, and lands or not; lastSeen is left as read, so a cache keeps the
      // session no longer than the store last confirmed). Failing instead would turn every read
      // of a slow store that is due a touch into a 503, and a request racing a logout may be
      // answered from the read before it anyway (the logout's broadcast keeps any cache from
      // keeping it). A touch that DOES answer within the deadline still decides: "no such
      // session" there is a deletion between our read and the touch, and is honoured (null).
      if (alive === false) return null;
      if (alive === true) seen = now;
    }
    const times = { createdAt: Number(h.createdAt), expiresAt, idleExpiresAt: seen + this.#idleMs, version: Number(h.version) };
    if (same) {
      // A revalidated session keeps the strings it had (equal, checked above), and its secrets are
      // read from `known` only if someone asks (a cache that keeps them its own way never does).
      const k = known!;
      const sid = h.sid === k.sid ? k.sid : h.sid;
      return { id, sub: k.sub, idp: k.idp, sid, ...times, get secrets() { return k.secrets; } };
    }
    return { id, sub: h.sub, idp: intern(h.idp), sid: h.sid, ...times, secrets: secrets! };
  }

  /** Every field of a session's hash but its secrets (`d`). */
  async #metadata(key: string): Promise<Fields | null> {
    const values = await this.#backend.hashGetSome(key, METADATA_FIELDS);
    if (values === null) return null;
    const h: Fields = {};
    METADATA_FIELDS.forEach((f, i) => {
      const v = values[i];
      if (typeof v === 'string') h[f] = v;
    });
    return h;
  }

  /** A session that reads as absent because it cannot be decrypted: a warning a minute, at most. */
  #unreadable(keyKnown: boolean): void {
    const held = this.#unreadableGate.pass(performance.now());
    if (held === undefined) return;
    this.#log.warn({ sessions: held + 1 }, keyKnown
      ? 'sessions refused: their tokens fail authentication under GOLDPATH_SESSION_KEYS (tampered with, or moved between sessions); deleted'
      : 'sessions refused: their tokens are sealed under a key this process lacks (a key rotation half rolled out? every process needs every key of GOLDPATH_SESSION_KEYS)');
  }

  /**
   * An expired or unreadable session counts as absent and is removed (best effort): waited for
   * until the load's deadline at most, then left to finish on its own.
   */
  async #discard(id: string, deadline: Deadline): Promise<null> {
    const removal = this.delete(id).catch((err: unknown) => {
      this.#log.debug({ err: (err as Error).message }, 'could not remove an expired or undecryptable session');
    });
    await deadline.race(removal);
    return null;
  }

  async updateSecrets(id: string, secrets: SessionSecrets): Promise<boolean> {
    if (typeof id !== 'string' || !isStorageId(id)) return false;
    const d = this.#box.seal(JSON.stringify(secrets), id);
    let version: number | null;
    try {
      // Announced in the same step: see delete().
      version = await this.#backend.hashUpdate(keys.session(id), { d }, 'version', this.#message(id));
    } catch (err) {
      // It may have run (a write a replica did not confirm in time): announce it on its own.
      await this.#invalidate(id).catch(() => { /* the update's failure is what the caller hears */ });
      throw unavailable(err);
    }
    if (version === null) return false;
    this.#fire(id);
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
      was = await this.#backend.hashTake(keys.session(id), withSecrets ? [...SESSION_FIELDS, 'd'] : SESSION_FIELDS, this.#message(id));
      this.#fire(id);
    } catch (err) {
      failure = err; // it may be gone anyway: a write a replica did not confirm in time still ran
      // Broadcast whatever happened, even when nothing was stored: a cache elsewhere may still
      // hold it, and must not serve a session that may be gone for its TTL.
      await this.#invalidate(id).catch(() => { /* retried in the background (#republish) */ });
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
      ]).catch((err: unknown) => this.#log.warn({ err: errorFields(err) }, 'session deleted, but not yet removed from its sid/sub index'));
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
      const others = more.filter((id) => !ids.includes(id));
      const fields = await Promise.all(others.map((id) => this.#backend.hashGetSome(keys.session(id), ['sub', 'sid'])));
      const sidless = others.filter((_, i) => fields[i] !== null && fields[i]![1] === null);
      if (ids.length + sidless.length === 0) return 0;
      const deleted = await Promise.all([...ids, ...sidless].map((id) => this.delete(id)));
      await this.#backend.setRemove(indexKey, ids); // stale members too
      return deleted.filter(Boolean).length;
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Drops index members whose session expired (indexes only expire as a whole). Best effort. */
  #prune(indexKey: string): void {
    void (async () => {
      const ids = await this.#backend.setMembers(indexKey);
      const alive = await Promise.all(ids.map((id) => this.#backend.exists(keys.session(id))));
      await this.#backend.setRemove(indexKey, ids.filter((_, i) => !alive[i]));
    })().catch((err: Error) => this.#log.debug({ err: err.message }, 'index prune failed'));
  }

  async tally(kind: string, windowMs: number): Promise<number> {
    const window = Math.floor(this.#now() / checkTtl(windowMs));
    try {
      // Lives one window past its own, for processes whose clocks lag a little.
      return await this.#backend.increment(keys.tally(kind, window), 2 * windowMs);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async tryLock(name: string, ttlMs: number): Promise<string | null> {
    const ttl = checkTtl(ttlMs);
    const token = randomBytes(16).toString('base64url');
    try {
      return (await this.#backend.put(keys.lock(name), token, ttl, true)) ? token : null;
    } catch (err) {
      // A write a replica did not confirm in time still ran on the master: the lock may be ours,
      // and nobody would release it, blocking every refresh of that session for the lock's TTL.
      this.#backend.deleteIfEquals(keys.lock(name), token).catch(() => { /* it expires anyway */ });
      throw unavailable(err);
    }
  }

  async unlock(name: string, token: string): Promise<void> {
    try {
      await this.#backend.deleteIfEquals(keys.lock(name), token);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async putTransient(kind: string, key: string, value: string, ttlMs: number): Promise<void> {
    const ttl = checkTtl(ttlMs);
    // Login transactions hold PKCE verifiers and nonces: encrypted like everything else.
    const sealed = this.#box.seal(value, `t:${enc(kind)}:${enc(key)}`);
    try {
      await this.#backend.put(keys.transient(kind, key), sealed, ttl, false);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async takeTransient(kind: string, key: string): Promise<string | null> {
    let sealed: string | null;
    try {
      sealed = await this.#backend.take(keys.transient(kind, key));
    } catch (err) {
      throw unavailable(err);
    }
    return sealed === null ? null : this.#box.openText(sealed, `t:${enc(kind)}:${enc(key)}`);
  }

  async markOnce(kind: string, key: string, ttlMs: number): Promise<boolean> {
    const ttl = checkTtl(ttlMs);
    try {
      return await this.#backend.put(keys.once(kind, key), '1', ttl, true);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async unmark(kind: string, key: string): Promise<void> {
    try {
      await this.#backend.take(keys.once(kind, key));
    } catch (err) {
      throw unavailable(err);
    }
  }

  onInvalidate(listener: (id: string) => void): () => void {
    const l = (id: string) => listener(id); // distinct wrapper: the same function may subscribe twice
    this.#listeners.add(l);
    return () => {
      this.#listeners.delete(l);
    };
  }

  /** What announces a change of session `id` to the other processes (their listeners). */
  #message(id: string): string {
    return `${this.#origin}|${id}`;
  }

  /** Local listeners at once; other processes through the backend's broadcast. */
  async #invalidate(id: string): Promise<void> {
    this.#fire(id);
    const message = this.#message(id);
    try {
      await this.#backend.publish(message);
    } catch (err) {
      // The change is made (or may be): the caller hears of the failure, and the broadcast is
      // sent again until it goes through, for as long as a cache elsewhere may hold the session.
      this.#republish(message);
      throw unavailable(err);
    }
  }

  /** Retries a failed broadcast in the background, every 25 ms to 400 ms, for a cache's TTL. */
  #republish(message: string): void {
    const until = performance.now() + DEFAULT_SESSION_CACHE_TTL_MS;
    const attempt = (delayMs: number) => {
      setTimeout(() => {
        this.#backend.publish(message).catch((err: unknown) => {
          if (performance.now() + delayMs < until) attempt(Math.min(2 * delayMs, 400));
          else this.#log.warn({ err: errorFields(err) }, 'a session invalidation could not be broadcast; caches elsewhere drop it within their TTL');
        });
      }, delayMs).unref();
    };
    attempt(25);
  }

  #fire(id: string): void {
    for (const l of this.#listeners) {
      try {
        l(id);
      } catch (err) {
        this.#log.error({ err: (err as Error).message }, 'session invalidation listener threw');
      }
    }
  }

  async ping(): Promise<void> {
    try {
      await this.#backend.ping();
    } catch (err) {
      throw unavailable(err);
    }
  }

  /**
   * Resolves when the store answers and a message published now comes back through this
   * process's own invalidation feed within `timeoutMs`; StoreUnavailable otherwise. What a cache
   * needs to trust its feed: a subscriber can go deaf without its connection closing (a Redis
   * Cluster node that stalls holds it, and ioredis moves it to another node silently), and
   * invalidations published meanwhile are lost. And, since one subscriber connection receives
   * messages in the order Redis executed their PUBLISH, an echo proves that every invalidation
   * published before the probe was sent has been received (the session cache's freshness bound).
   */
  async probeInvalidations(timeoutMs: number): Promise<void> {
    const token = `~probe:${++this.#probeSeq}`;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const echoed = new Promise<void>((resolve, reject) => {
      this.#probes.set(token, resolve);
      timer = setTimeout(() => reject(new StoreUnavailable(new Error(`the invalidation feed did not echo within ${timeoutMs} ms`))), timeoutMs);
      timer.unref(); // a probe never keeps a closing process alive
    });
    echoed.catch(() => { /* awaited below; this keeps a rejection while publish() runs from counting as unhandled */ });
    try {
      // To ourselves only when the backend can (no fan-out to every process), on the same feed.
      const message = `${this.#origin}|${token}`;
      await (this.#backend.echo !== undefined ? this.#backend.echo(message) : this.#backend.publish(message));
      await Promise.all([this.#backend.ping(), echoed]);
    } catch (err) {
      throw unavailable(err);
    } finally {
      clearTimeout(timer);
      this.#probes.delete(token);
    }
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    this.#resyncListeners.clear();
    await this.#backend.close();
  }
}
