// Step 6: the access token for the route's audience, refreshed first when it is about to expire
// (the TokenProvider makes that single-flight across processes). A refresh the IdP rejects has
// already deleted the session: the user must log in again, or, on a public route, goes on
// anonymously (as step 4 would have done without the session).
import type { UpstreamCredentials } from '../oidc/types.ts';
import { flatCopy } from '../strings.ts';
import { refreshWindow } from '../oidc/tokens.ts';
import { CachedSession } from '../session/cached-session.ts';
import type { Session } from '../session/types.ts';
import type { VerifyDeps, VerifyStep } from './state.ts';
import { withoutSession } from './load-session.ts';
import { memoOf, type KeptCredentials } from './session-memo.ts';

/** SPEC 5.6: a token is refreshed when it expires within 30 s. */
const REFRESH_SKEW_MS = 30_000;

// The provider's Bearer answer for a session's secrets and an audience stays the same until the
// token comes within the refresh window: kept with the session (session-memo.ts) so the hot path
// does not go through the provider, and awaits nothing. DPoP credentials carry a fresh proof per
// request: never kept.
function recall(session: Session, audience: string, policy: number): KeptCredentials | undefined {
  const kept = memoOf(session).credentials;
  if (kept === undefined) return undefined;
  if (!Array.isArray(kept)) {
    const k = kept as KeptCredentials;
    return k.audience === audience && k.policy === policy ? k : undefined;
  }
  for (const k of kept as readonly KeptCredentials[]) if (k.audience === audience) return k.policy === policy ? k : undefined;
  return undefined;
}

/**
 * Keeps a Bearer answer, only for a token this session holds: after a refresh the provider answers
 * from a newer session, whose token this one does not have. The header kept is the cached
 * session's own string (cached-session.ts: one copy of a ~1 KB token per session, not two), or a
 * flat copy: the provider's is a concatenation that would keep its pieces alive too.
 */
function keep(session: Session, audience: string, creds: UpstreamCredentials, policy: number): void {
  if (creds.dpop !== undefined) return;
  const token = session.secrets.tokens[audience];
  if (token === undefined || creds.authorization !== `Bearer ${token.value}`) return;
  const until = token.expiresAt === undefined ? Infinity : token.expiresAt - refreshWindow(token, REFRESH_SKEW_MS);
  const memo = memoOf(session);
  const own = session instanceof CachedSession ? session.authorization(audience) : undefined;
  const authorization = own === creds.authorization ? own : flatCopy(creds.authorization);
  const k: KeptCredentials = { authorization, dpop: undefined, audience, until, policy };
  const kept = memo.credentials;
  const others = kept === undefined ? [] : (Array.isArray(kept) ? kept as readonly KeptCredentials[] : [kept as KeptCredentials]).filter((x) => x.audience !== audience);
  memo.credentials = others.length === 0 ? k : [...others, k];
}

export function obtainCredentials(deps: VerifyDeps): VerifyStep {
  const origin = deps.settings.publicOrigin;
  return function obtainCredentialsStep(ctx) {
    const s = ctx.state;
    const session = s.session;
    if (!session) return;
    const audience = s.route.audience ?? '';
    const k = recall(session, audience, s.policy.version);
    if (k !== undefined && k.until > Date.now()) {
      s.credentials = k;
      return;
    }
    // The URL the upstream receives (a DPoP proof's htu): the path as sent, not the decoded one,
    // which reads differently once it holds a decoded '?', '#' or '%'. No query (RFC 9449 4.2).
    const q = s.rawUri.indexOf('?');
    const url = origin + (q < 0 ? s.rawUri : s.rawUri.slice(0, q));
    // The state is the request's scope: the refresh's log lines read its id (only if they log) and
    // its store waits are bounded from its start (nothing made per request for either).
    return s.policy.tokens.credentials(session, audience, s.method, url, s).then((creds) => {
      if (!creds) return withoutSession(ctx, deps);
      keep(session, audience, creds, s.policy.version);
      s.credentials = creds;
      // Refreshed: the policies decide on the user the refresh made (a role the IdP took away is
      // gone from this request on), and the identity headers name it.
      if (creds.refreshed !== undefined) s.session = creds.refreshed;
    });
  };
}
