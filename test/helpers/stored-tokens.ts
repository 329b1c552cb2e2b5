// A TokenProvider for sidecar tests that never talks to an IdP: it hands out the tokens already in
// the session and can be told to behave as if the IdP had rejected a refresh.
import type { TokenProvider, UpstreamCredentials } from '../../src/oidc/types.ts';
import type { Session, SessionStore } from '../../src/session/types.ts';

export class StoredTokens implements TokenProvider {
  /** Session ids whose refresh the "IdP" rejects. */
  readonly rejected = new Set<string>();
  calls = 0;
  constructor(private readonly store: SessionStore) {}

  async credentials(session: Session, audience: string): Promise<UpstreamCredentials | null> {
    this.calls++;
    const t = session.secrets.tokens[audience];
    if (this.rejected.has(session.id) || !t) {
      await this.store.delete(session.id);
      return null;
    }
    return { authorization: `${t.type} ${t.value}`, dpop: undefined };
  }
}
