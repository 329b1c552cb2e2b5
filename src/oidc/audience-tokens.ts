// Which token of a session serves an audience: the grant (resource, scopes) idps.yaml asks of
// each audience, and whether a token the session holds was obtained for it (a reload may have
// changed that grant since).
import type { AccessToken, Session } from '../session/types.ts';
import type { IdpRegistry } from './registry.ts';
import { grantOf } from './tokens.ts';

/** `t` recording the grant it was asked for (an audience's token), as AccessToken.grant says. */
export function withGrant(t: AccessToken, grant: string | undefined): AccessToken {
  return grant === undefined ? t : { ...t, grant };
}

export interface AudienceTokens {
  grantFor(idpName: string, audience: string): string | undefined;
  tokenFor(session: Session, audience: string): AccessToken | undefined;
}

/** A token provider's: made with it (its configuration's load), as its grants are. */
export function audienceTokens(idps: IdpRegistry): AudienceTokens {
  /** Each IdP's audiences' grants (tokens.ts grantOf), by IdP name and audience: made once per provider. */
  const grants = new Map<string, Map<string, string | undefined>>();
  function grantFor(idpName: string, audience: string): string | undefined {
    if (audience === '') return undefined;
    let byAudience = grants.get(idpName);
    if (byAudience === undefined) grants.set(idpName, (byAudience = new Map()));
    let grant = byAudience.get(audience);
    if (grant === undefined && !byAudience.has(audience)) byAudience.set(audience, (grant = grantOf(idps.get(idpName)?.idp.audiences[audience])));
    return grant;
  }
  /** When this provider's configuration was loaded (a process start, a reload). */
  const loadedAt = Date.now();
  /**
   * The session's token for `audience`, unless it was obtained, before this configuration was
   * loaded, for another resource or other scopes than idps.yaml now asks (a reload changed them):
   * that one is none, never served, and refreshed as a missing one is. One of another grant
   * obtained since is another process's, whose configuration differs (a rollout in progress):
   * served, as that process serves it. Refreshing it here would have the two refresh in turn at
   * every request of every session they share, each overwriting the other's token. One whose time
   * of issue is unknown is taken as old; one stored without a grant (a session from before it was
   * kept), as it is.
   */
  function tokenFor(session: Session, audience: string): AccessToken | undefined {
    const t = session.secrets.tokens[audience];
    if (t === undefined || t.grant === undefined || t.grant === grantFor(session.idp, audience)) return t;
    const issuedAt = t.expiresAt !== undefined && t.lifetimeMs !== undefined ? t.expiresAt - t.lifetimeMs : undefined;
    return issuedAt !== undefined && issuedAt >= loadedAt ? t : undefined;
  }

  return { grantFor, tokenFor };
}
