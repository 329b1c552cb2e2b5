// What the sidecar's session cache (cache.ts) keeps of one session: its plain fields, its CSRF token,
// its access tokens as the Authorization header values they become, the rest of its secrets as one
// JSON string, and a slot for what the verify chain derives from it (src/verify/session-memo.ts:
// decisions, upstream credentials, identity headers).
//
// Why a string: a session as parsed JSON is some twenty small objects, arrays and strings (user,
// claims, roles, tokens...), ~1.9 KB of heap with the test sessions of `npm run bench` and far more
// with real ID-token claims; the same data as one flat string is the size of its characters. The
// hot path never reads the secrets: every request of a session after its first is answered from
// the memo. Reading `secrets` parses the string again (a few µs): what needs them (a policy query
// the memo and the decision cache cannot answer, a token near its refresh) costs far more anyway.
//
// Why the tokens apart: a JWT access token is ~1 KB, most of what a real session weighs. The memo
// keeps the header it sends upstream (obtain-credentials.ts); kept here as that very header, the
// memo holds the record's string, not a second copy, and a token is in memory once per session.
//
// What is not kept: the refresh token and the ID token, which a sidecar never sends anywhere (a
// refresh reads the session again from the store, under its lock). A secret not held in memory
// cannot leak from it.
import { flatCopy } from '../strings.ts';
import { intern } from './intern.ts';
import type { AccessToken, Session, SessionSecrets } from './types.ts';

/**
 * The secrets but the tokens' values as one JSON array, without property names (they were a
 * quarter of the bytes) and without what the record holds anyway (csrf; user.sub and user.idp when
 * they equal the session's):
 *   [sub|null, idp|null, name, email, roles, groups, scopes, claims, tokens, dpopJwk]
 * where tokens = [type, expiresAt, scope, lifetimeMs, grant, type, ...] (null for undefined), in the order of the
 * record's [audience, header, audience, header...] list.
 */
type Packed = [string | null, string | null, string | null, string | null, string[], string[], string[], Record<string, unknown>, (string | number | null)[], Record<string, unknown> | null];

function pack(s: Session): { json: string; tokens: string[] } {
  const { user, tokens, dpopJwk } = s.secrets;
  const flat: (string | number | null)[] = [];
  const entries = Object.entries(tokens);
  // Exactly as long as it is full (push grows a backing store ~4× the size of a short list's).
  const headers = new Array<string>(2 * entries.length);
  for (let k = 0; k < entries.length; k++) {
    const [audience, t] = entries[k]!;
    flat.push(t.type, t.expiresAt ?? null, t.scope ?? null, t.lifetimeMs ?? null, t.grant === undefined ? null : intern(t.grant));
    headers[2 * k] = intern(audience);
    // A flat string: the concatenation would keep its two pieces alive with it.
    headers[2 * k + 1] = flatCopy(`${t.type} ${t.value}`);
  }
  const packed: Packed = [
    user.sub === s.sub ? null : user.sub, user.idp === s.idp ? null : user.idp, user.name ?? null, user.email ?? null,
    [...user.roles], [...user.groups], [...user.scopes], user.claims as Record<string, unknown>, flat, dpopJwk ?? null,
  ];
  return { json: JSON.stringify(packed), tokens: headers };
}

function unpack(json: string, headers: readonly string[], r: CachedSession): SessionSecrets {
  const [sub, idp, name, email, roles, groups, scopes, claims, flat, dpopJwk] = JSON.parse(json) as Packed;
  const tokens: Record<string, AccessToken> = {};
  for (let i = 0, j = 0; j + 1 < headers.length; i += 5, j += 2) {
    const type = flat[i] as AccessToken['type'];
    const lifetimeMs = flat[i + 3] as number | null;
    const grant = flat[i + 4] as string | null;
    const token: AccessToken = {
      // A view into the header, not a copy (and gone with this parse).
      value: headers[j + 1]!.slice(type.length + 1), type,
      expiresAt: (flat[i + 1] as number | null) ?? undefined, scope: (flat[i + 2] as string | null) ?? undefined,
      ...(lifetimeMs === null ? {} : { lifetimeMs }),
      ...(grant === null ? {} : { grant: intern(grant) }),
    };
    // An own property whatever the audience is called (as JSON.parse makes it: even `__proto__`).
    Object.defineProperty(tokens, headers[j]!, { value: token, enumerable: true, writable: true, configurable: true });
  }
  return {
    user: { sub: sub ?? r.sub, idp: idp ?? r.idp, name: name ?? undefined, email: email ?? undefined, roles, groups, scopes, claims },
    csrf: r.csrf, tokens, refreshToken: undefined, idToken: undefined, dpopJwk: dpopJwk ?? undefined,
  };
}

/** A character beyond Latin-1: V8 then holds the whole string at two bytes a character. */
const WIDE = /[^\x00-\xff]/;

/**
 * What a string takes in memory, roughly: a byte a character, two when it has one beyond Latin-1
 * (a name or claims in Chinese, Greek, Cyrillic...). Counted a byte a character, such sessions took
 * twice what the cache's bound counted. Once per record (a miss, which also decrypts and parses).
 */
function held(s: string): number {
  return WIDE.test(s) ? 2 * s.length : s.length;
}

/**
 * The rest of a cached session, beyond the strings a record counts: the record, its memo and what
 * the memo derives (identity headers, decisions, credentials), the cache's key and map slots.
 * ~1.2 KB by heap snapshot with IdP-sized sessions (test/bench/RESULTS.md, Memory).
 */
const RECORD_OVERHEAD = 1200;

export class CachedSession implements Session {
  readonly id: string;
  readonly sub: string;
  readonly idp: string;
  readonly sid: string | undefined;
  readonly createdAt: number;
  readonly version: number;
  readonly csrf: string;
  // Moved forward in place by a revalidation (renew): a new record per session per cache TTL
  // would be steady old-generation garbage (a record lives long enough to be promoted).
  expiresAt: number;
  idleExpiresAt: number;
  /** Until when the cache serves this record without asking the store. */
  until: number;
  /**
   * Owned by the code that reads sessions (the verify chain's memo): it lives exactly as long as
   * this version of the session.
   */
  memo: unknown;
  /** The session cache's revalidation of this record, while one is in flight (cache.ts). */
  reloading: Promise<Session | null> | undefined;
  readonly #json: string;
  /** [audience, Authorization header value, audience, ...]: `${type} ${value}` per token. */
  readonly #tokens: readonly string[];
  /**
   * What this record holds, roughly, in bytes: its strings (as V8 holds them, see held) plus RECORD_OVERHEAD. The cache bounds
   * the sum (cache.ts): an IdP's tokens and a user's claims have no size of their own.
   */
  readonly bytes: number;

  private constructor(s: Session, until: number, csrf: string, packed: { json: string; tokens: string[] }) {
    this.id = s.id;
    this.sub = s.sub;
    this.idp = s.idp;
    this.sid = s.sid;
    this.createdAt = s.createdAt;
    this.expiresAt = s.expiresAt;
    this.idleExpiresAt = s.idleExpiresAt;
    this.version = s.version;
    this.csrf = csrf;
    this.until = until;
    this.memo = undefined;
    this.reloading = undefined;
    this.#json = packed.json;
    this.#tokens = packed.tokens;
    let bytes = RECORD_OVERHEAD + held(packed.json) + held(csrf) + held(s.id);
    for (const t of packed.tokens) bytes += held(t);
    this.bytes = bytes;
  }

  /**
   * A record of `found`. When `known` is the same session at the same version (a revalidation:
   * the store guarantees an equal version is an equal blob), `known` itself with its times moved
   * forward, without reading found.secrets at all: its memo stays with it.
   */
  static of(found: Session, until: number, known?: CachedSession): CachedSession {
    if (known !== undefined && known.id === found.id && known.version === found.version && known.sid === found.sid) {
      known.expiresAt = found.expiresAt;
      known.idleExpiresAt = found.idleExpiresAt;
      known.until = until;
      return known;
    }
    return new CachedSession(found, until, found.secrets.csrf, pack(found));
  }

  /** A new copy each time: parsed from the kept JSON (no refresh token, no ID token). */
  get secrets(): SessionSecrets {
    return unpack(this.#json, this.#tokens, this);
  }

  /**
   * The kept `${type} ${value}` of the token for `audience`: the very string, so that what is
   * derived from it (the memo's credentials) can hold it instead of a copy.
   */
  authorization(audience: string): string | undefined {
    const t = this.#tokens;
    for (let j = 0; j + 1 < t.length; j += 2) if (t[j] === audience) return t[j + 1];
    return undefined;
  }
}
