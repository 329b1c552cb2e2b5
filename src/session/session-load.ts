// Reading a session (the store's get, getById and revalidate): one read, an idle touch when due,
// the removal of an expired or unreadable session, all within one deadline.
import { clearTimeout, setTimeout } from 'node:timers';
import { StoreUnavailable } from '../errors.ts';
import { FloodGate } from '../http/flood-gate.ts';
import type { Logger } from '../log.ts';
import type { Fields, KvBackend } from './backend.ts';
import type { SecretBox } from './crypto.ts';
import { intern, internSecrets } from './intern.ts';
import { keys } from './keys.ts';
import { hasSecretsShape } from './secrets-shape.ts';
import type { Session, SessionSecrets } from './types.ts';
import { unavailable } from './unavailable.ts';

/**
 * The whole of a session load (its reads, the idle touch, the removal of an expired session) ends
 * within this, or fails with StoreUnavailable (503): SPEC 5 wants /auth/verify answered within 1 s
 * on a store that is down or slow, and each backend call is only bounded alone. A single read may
 * already take the backend's ready-wait plus its command timeout (300 + 500 ms, redis-backend.ts),
 * so the bound is that, and what is left of the second goes to the rest of the chain (a refresh
 * ahead of time waits at most what is left of 850 ms: oidc/token-provider.ts).
 */
export const DEFAULT_LOAD_DEADLINE_MS = 800;
/** The hash fields of a session without its secrets (layout: keys.ts). */
const METADATA_FIELDS = ['sub', 'idp', 'sid', 'createdAt', 'expiresAt', 'lastSeen', 'version'] as const;

/** The stored session is the version `known` was read at (same blob, see load()). */
function sameVersion(h: Fields, known: Session): boolean {
  return h.version === String(known.version) && h.sub === known.sub && h.idp === known.idp;
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

export interface SessionLoaderOptions {
  backend: KvBackend;
  box: SecretBox;
  idleMs: number;
  /** GOLDPATH_SESSION_MAX as configured now (see #loadWithin). */
  maxMs: number;
  touchMs: number;
  loadMs: number;
  now: () => number;
  log: Logger;
  /** Removes an expired or unreadable session (the store's delete()). */
  remove: (id: string) => Promise<boolean>;
  /** A failure a load caught and did not throw (KvSessionStore's onCaughtError). */
  caught: (err: unknown) => void;
}

export class SessionLoader {
  readonly #backend: KvBackend;
  readonly #box: SecretBox;
  readonly #idleMs: number;
  readonly #maxMs: number;
  readonly #touchMs: number;
  readonly #loadMs: number;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #remove: (id: string) => Promise<boolean>;
  readonly #caught: (err: unknown) => void;
  /** Sessions that cannot be decrypted are logged a line a minute at most (see #unreadable). */
  readonly #unreadableGate = new FloodGate(60_000);

  constructor(opts: SessionLoaderOptions) {
    this.#backend = opts.backend;
    this.#box = opts.box;
    this.#idleMs = opts.idleMs;
    this.#maxMs = opts.maxMs;
    this.#touchMs = opts.touchMs;
    this.#loadMs = opts.loadMs;
    this.#now = opts.now;
    this.#log = opts.log;
    this.#remove = opts.remove;
    this.#caught = opts.caught;
  }

  /**
   * One backend read; a second (the touch) only when lastSeen is older than the touch interval.
   * With `known`, the read leaves out the secrets (HMGET of the other fields: the ciphertext is most
   * of a session's bytes), and only a changed version reads them too. All of it within the load
   * deadline (DEFAULT_LOAD_DEADLINE_MS): a read not answered by then is StoreUnavailable.
   */
  async load(id: string, known?: Session, slide = true): Promise<Session | null> {
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
    const createdAt = Number(h.createdAt);
    // The absolute end as GOLDPATH_SESSION_MAX says now, as the idle timeout is: one lowered since
    // the session was made ends it too. The stored expiresAt alone kept sessions made under a
    // longer maximum (up to 400 days) for all of it, whatever the operator had set since.
    const expiresAt = Math.min(Number(h.expiresAt), createdAt + this.#maxMs);
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
      const touch = this.#backend.hashTouch(key, 'lastSeen', now, ttl);
      try {
        alive = await deadline.race(touch);
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
      // The touch that fails after the deadline failed nobody's request: counted here.
      else touch.catch(this.#caught);
    }
    const times = { createdAt, expiresAt, idleExpiresAt: seen + this.#idleMs, version: Number(h.version) };
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
    const removal = this.#remove(id).catch((err: unknown) => {
      this.#caught(err);
      this.#log.debug({ err: (err as Error).message }, 'could not remove an expired or undecryptable session');
    });
    await deadline.race(removal);
    return null;
  }
}
