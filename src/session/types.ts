// The session store contract (SPEC section 4). Two implementations (Redis through ioredis, and
// memory://) satisfy it; test/session/contract.test.ts runs the same suite against both.

/** The identity the PDP and /auth/session see. Encrypted at rest with the rest of the secrets. */
export interface SessionUser {
  readonly sub: string;
  readonly idp: string;
  readonly name: string | undefined;
  readonly email: string | undefined;
  readonly roles: readonly string[];
  readonly groups: readonly string[];
  readonly scopes: readonly string[];
  /** Merged ID token + userinfo claims (for Polar's `claims`). */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface AccessToken {
  readonly value: string;
  /** 'Bearer' or 'DPoP' (RFC 9449 bound). */
  readonly type: 'Bearer' | 'DPoP';
  /** ms since epoch; undefined = the IdP did not say. */
  readonly expiresAt: number | undefined;
  readonly scope: string | undefined;
  /**
   * How long the token was issued for, ms (the IdP's expires_in, or a JWT's exp - iat); absent when
   * unknown (and in sessions stored before it was kept). A token issued for less than twice the
   * refresh window is refreshed at half its life, not for the whole of it (tokens.ts refreshWindow).
   */
  readonly lifetimeMs?: number | undefined;
  /**
   * An audience's token: the `resource` and `scopes` idps.yaml asked it for (tokens.ts grantOf).
   * One issued for another grant before a reload gave the audience another resource or other
   * scopes is no token for the audience any more: the next request gets one for what idps.yaml now
   * says (audience-tokens.ts, tokenFor; one issued since, by a replica still on another version, is
   * served). Absent for the login token, and in sessions stored before it was kept.
   */
  readonly grant?: string | undefined;
}

/** Everything secret about a session: stored only as AEAD ciphertext. */
export interface SessionSecrets {
  readonly user: SessionUser;
  /** Compared in constant time with X-CSRF-Token. */
  readonly csrf: string;
  /** '' = the token from login; other keys = audiences of idps.yaml. */
  readonly tokens: Readonly<Record<string, AccessToken>>;
  readonly refreshToken: string | undefined;
  readonly idToken: string | undefined;
  /** Private JWK of the session's DPoP key, when the IdP uses DPoP. */
  readonly dpopJwk: Readonly<Record<string, unknown>> | undefined;
}

export interface Session {
  /** Storage id: base64url SHA-256 of the cookie's random part. Never the cookie value. */
  readonly id: string;
  readonly sub: string;
  readonly idp: string;
  /** The IdP's session id (`sid` claim), for back-channel logout. */
  readonly sid: string | undefined;
  /** ms since epoch. */
  readonly createdAt: number;
  /** Absolute expiry, ms since epoch. */
  readonly expiresAt: number;
  /** Idle expiry as of the last recorded activity, ms since epoch. */
  readonly idleExpiresAt: number;
  /** Bumped by every secrets update; lets a refresher detect it lost a race. */
  readonly version: number;
  readonly secrets: SessionSecrets;
}

export interface NewSession {
  readonly sub: string;
  readonly idp: string;
  readonly sid: string | undefined;
  readonly secrets: SessionSecrets;
  /** The sign-in that creates it (the BFF's callback); absent for sessions made otherwise (tests). */
  readonly login?: SignIn;
}

/**
 * The longest a sign-in can take from its start to its session's creation: the login transaction
 * lives this long (bff/cookies.ts TX_TTL_MS). The marks a back-channel logout leaves (create())
 * live at least this long, so no sign-in begun before a logout outlasts its mark.
 */
export const LONGEST_SIGN_IN_MS = 10 * 60 * 1000;

/**
 * Transient marker (putTransient kind, keyed by session id) of a session a new sign-in of the same
 * browser replaced. At the same IdP session the new sign-in usually holds the same grant, which an
 * IdP that revokes per grant (oidc-provider, Keycloak) ends with any of its refresh tokens: a
 * refresh of the replaced session that finds it gone must not revoke what it obtained. It lives
 * past any refresh lock (token-refresh.ts). Its value is the IdP of the new sign-in: a session
 * replaced by a sign-in at another IdP shares no grant with it, and its refresh revokes as any.
 */
export const REPLACED = { kind: 'replaced', ttlMs: 60_000 } as const;

export interface SignIn {
  /**
   * Stands for the browser the sign-in ran in (a hash of its browser cookie, or of its
   * login-transaction cookie when it has none: src/bff/callback.ts browserOf). A browser
   * holds one session cookie, so the session of this browser's previous sign-in is deleted when it
   * is the same user's and was made before this sign-in began. Two sign-ins that overlapped (two
   * tabs sent to the IdP at once) both keep their sessions: their responses may reach the browser
   * in either order, and deleting the one whose cookie the browser kept would sign the user out.
   * The other, held by no cookie, idles out.
   */
  readonly browser: string;
  /**
   * When the sign-in began (ms since epoch), read from the store's clock (SessionStore.clock). A
   * back-channel logout by `sub` received after that ends it (SessionEnded), as a logout by `sid`
   * ends every session of that sid, and one by `sid` and `sub` a sign-in of that sub without a sid.
   */
  readonly startedAt: number;
}

/** Thrown by a store when the backend cannot answer within its deadline: maps to 503. */
export { StoreUnavailable } from '../errors.ts';

export interface ReadOptions {
  /** Whether this read counts as activity, sliding the idle expiry (default true). */
  readonly slide?: boolean;
}

export interface SessionStore {
  /**
   * Creates a session under a fresh random id; returns the cookie value to set. SessionEnded when
   * a back-channel logout ended its `sid` (deleteBySid), or its `sub` after its sign-in began
   * (deleteBySub), or, for a session without a sid, named its `sub` with a sid after its sign-in
   * began (deleteBySid with a sub): no session outlives its IdP session. With `login`, deletes
   * the session of the same browser's previous sign-in (SignIn).
   */
  create(input: NewSession): Promise<{ cookieValue: string; session: Session }>;
  /**
   * The session for a cookie value, or null when the cookie is malformed, forged (bad MAC: no
   * backend call at all), unknown, expired or undecryptable. Slides the idle expiry, writing to
   * the backend at most once per touch interval rather than on every call; with `slide: false`
   * never (a read that is no activity of the user's: an SPA polling who is signed in).
   */
  get(cookieValue: string, opts?: ReadOptions): Promise<Session | null>;
  /** Same as get, by storage id (used after a lock wait, and by back-channel logout tests). */
  getById(id: string): Promise<Session | null>;
  /**
   * The storage id a cookie value names, or null when the value is malformed or forged (bad MAC).
   * No I/O; says nothing about whether that session exists.
   */
  idOf(cookieValue: string): string | null;
  /**
   * Replaces the secrets of an existing session (token refresh). Returns false, writing nothing,
   * when the session no longer exists: a refresh must never resurrect a deleted session.
   */
  updateSecrets(id: string, secrets: SessionSecrets): Promise<boolean>;
  /** Deletes one session and its index entries. */
  delete(id: string): Promise<boolean>;
  /**
   * Deletes one session as delete() does, returning the secrets it held at that moment (null when
   * it did not exist or they cannot be read): a logout revokes the refresh token the session holds
   * when it ends, which a refresh may have rotated since the session was read.
   */
  take(id: string): Promise<SessionSecrets | null>;
  /**
   * The IdP of the session the browser's last sign-in created (SignIn.browser), while that session
   * is stored and, when `sub` is given, is that user's; null when there is none. Reads only: no
   * idle touch.
   */
  lastSignInIdp(browser: string, sub?: string): Promise<string | null>;
  /**
   * Deletes every session of that IdP with that `sid`, whatever its sub, and refuses new ones for
   * it (create); returns how many. With `sub` (a logout token naming both), also every session of
   * that sub stored without a sid (the IdP gave none at sign-in: it may be that IdP session), and
   * refuses such sign-ins begun before (create); never the sub's sessions under another sid.
   */
  deleteBySid(idp: string, sid: string, sub?: string): Promise<number>;
  /**
   * Deletes every session of that IdP with that `sub`, and refuses new ones whose sign-in began
   * before it (create); returns how many.
   */
  deleteBySub(idp: string, sub: string): Promise<number>;

  /**
   * The store's clock, ms since epoch (Redis TIME, from one server): what SignIn.startedAt and the
   * logout marks are read from, so that replicas whose clocks disagree still order them alike.
   */
  clock(): Promise<number>;

  /** A cross-process lock (e.g. single-flight refresh). Returns a release token, or null if held. */
  tryLock(name: string, ttlMs: number): Promise<string | null>;
  /** Releases the lock only if `token` still holds it. */
  unlock(name: string, token: string): Promise<void>;

  /** Stores a short-lived value (login transaction). */
  putTransient(kind: string, key: string, value: string, ttlMs: number): Promise<void>;
  /** Reads and deletes a short-lived value atomically (one use only). */
  takeTransient(kind: string, key: string): Promise<string | null>;
  /**
   * Counts an event of `kind` in the current window of `windowMs` as `weight` (a positive integer,
   * default 1; every process on the same backend counts together) and returns the count so far in
   * that window, this one included.
   */
  tally(kind: string, windowMs: number, weight?: number): Promise<number>;
  /** Records `key` once; false when it was already recorded and unexpired (jti replay). */
  markOnce(kind: string, key: string, ttlMs: number): Promise<boolean>;
  /** Forgets what markOnce recorded: the work it guarded failed, and may be tried again. */
  unmark(kind: string, key: string): Promise<void>;

  /**
   * Called, in every process using the same backend, with a session id whenever that session is
   * deleted or its secrets change, so in-process caches can drop it. Returns an unsubscribe.
   */
  onInvalidate(listener: (id: string) => void): () => void;
  /**
   * Called with each failure of the store that it caught itself and did not throw: best-effort
   * work a request goes on without (an idle touch, an index cleanup, a logout mark, a broadcast
   * given up on, the removal of an expired session), the backend's connection errors, and a
   * caching store's heartbeat. What a caller hears thrown is never reported here too: both
   * processes count the two in goldpath_store_errors_total. Returns an unsubscribe.
   */
  onCaughtError(listener: (err: unknown) => void): () => void;

  /** Resolves when the backend answers; throws StoreUnavailable otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
