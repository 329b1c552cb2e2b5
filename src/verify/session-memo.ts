// What the verify chain keeps with a cached session, so a repeated request recomputes nothing:
// the policy decisions it got (authorize.ts), the upstream credentials (obtain-credentials.ts) and
// the identity headers (allow.ts).
//
// Kept in the slot a cached session has for it (src/session/cached-session.ts): the session cache
// hands out records of one version of the session's secrets, a change of the secrets (a refresh,
// new claims) makes a record without a memo, so nothing kept here can outlive what it was
// computed from. Sessions read without the cache (tests, the one-process demo) get a memo per
// session object, which is per request. One record per session, not one entry per step: with
// 10,000 active sessions every object counts.
import type { Decision } from '../pdp/index.ts';
import type { UpstreamCredentials } from '../oidc/types.ts';
import { CachedSession } from '../session/cached-session.ts';
import type { Session } from '../session/types.ts';

export interface SessionMemo {
  /**
   * The version of the policy `decisions` were made under; another one (a SIGHUP reload) empties
   * them. A number, not the policy: a memo kept in the cache (an idle session) would keep an old
   * policy alive, its route table, Pdp and token provider with it, long after a reload.
   */
  policy: number;
  /**
   * Flat [method, path, decision, method, path, decision...]: no key string to build per request.
   * Its first entry gets an array of exactly three (push would leave spare room, ~50 bytes a
   * session); only a session asking about more paths grows it.
   */
  decisions: readonly (string | Decision)[];
  /**
   * Bearer credentials per audience, until the token nears its refresh window: one, or a list for
   * a session whose routes use several audiences (a list per session would cost ~60 bytes).
   */
  credentials: KeptCredentials | readonly KeptCredentials[] | undefined;
  /** The X-Auth-User and X-Auth-Roles values. */
  user: string | undefined;
  roles: string | undefined;
  /** The actor's decision-cache key (src/pdp): found without reading the secrets again. */
  actorKey: string | undefined;
  /** The version of the policy under which the session's issuer was found to be its IdP's (load-session.ts). */
  issuerChecked: number;
}

/** The provider's answer itself, with what it is for and until when: one object per audience. */
export interface KeptCredentials extends UpstreamCredentials {
  readonly dpop: undefined;
  readonly audience: string;
  readonly until: number;
  /**
   * The version of the policy it was kept under (VerifyPolicy.version): after a reload the provider
   * is asked again, as idps.yaml may have given the audience another resource or other scopes.
   */
  readonly policy: number;
}

const NONE: readonly (string | Decision)[] = Object.freeze([]);
const uncached = new WeakMap<Session, SessionMemo>();

const fresh = (): SessionMemo => ({
  policy: 0, decisions: NONE, credentials: undefined, user: undefined, roles: undefined, actorKey: undefined, issuerChecked: 0,
});

export function memoOf(session: Session): SessionMemo {
  if (session instanceof CachedSession) return (session.memo ??= fresh()) as SessionMemo;
  let m = uncached.get(session);
  if (m === undefined) uncached.set(session, (m = fresh()));
  return m;
}
