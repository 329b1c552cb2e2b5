// What the verify chain keeps with a cached session, so a repeated request recomputes nothing:
// the policy decisions it got (authorize.ts), the upstream credentials (obtain-credentials.ts) and
// the identity headers (allow.ts).
//
// Keyed by the session's secrets object: the session cache (src/session/cache.ts) hands out the
// same one until the secrets change (a refresh, new claims), and a change means a new object, so
// nothing kept here can outlive what it was computed from. One record per session, not one
// WeakMap entry per step: with 10,000 active sessions every entry and object counts.
import type { Decision } from '../pdp/index.ts';
import type { UpstreamCredentials } from '../oidc/types.ts';
import type { SessionSecrets } from '../session/types.ts';
import type { VerifyPolicy } from './state.ts';

export interface SessionMemo {
  /** The policy `decisions` were made under; another one (a SIGHUP reload) empties them. */
  policy: VerifyPolicy | undefined;
  /**
   * Flat [method, path, decision, method, path, decision...]: no key string to build per request.
   * Its first entry gets an array of exactly three (push would leave spare room, ~50 bytes a
   * session); only a session asking about more paths grows it.
   */
  decisions: readonly (string | Decision)[];
  /** Bearer credentials per audience, until the token nears its refresh window. */
  credentials: readonly KeptCredentials[] | undefined;
  /** The X-Auth-User and X-Auth-Roles values. */
  user: string | undefined;
  roles: string | undefined;
}

export interface KeptCredentials {
  readonly audience: string;
  readonly creds: UpstreamCredentials;
  readonly until: number;
}

const NONE: readonly (string | Decision)[] = Object.freeze([]);
const memos = new WeakMap<SessionSecrets, SessionMemo>();

export function memoOf(secrets: SessionSecrets): SessionMemo {
  let m = memos.get(secrets);
  if (m === undefined) {
    m = { policy: undefined, decisions: NONE, credentials: undefined, user: undefined, roles: undefined };
    memos.set(secrets, m);
  }
  return m;
}
