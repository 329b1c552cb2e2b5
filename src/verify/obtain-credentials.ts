// Step 6: the access token for the route's audience, refreshed first when it is about to expire
// (the TokenProvider makes that single-flight across processes). A refresh the IdP rejects has
// already deleted the session: the user must log in again.
import type { VerifyDeps, VerifyMiddleware } from './state.ts';
import { requireLogin } from './load-session.ts';

export function obtainCredentials(deps: VerifyDeps): VerifyMiddleware {
  const origin = deps.settings.publicOrigin;
  return async function obtainCredentialsMw(ctx, next) {
    const s = ctx.state;
    if (s.session) {
      const creds = await deps.tokens.credentials(s.session, s.route.audience ?? '', s.method, origin + s.path);
      if (!creds) {
        s.session = undefined;
        return requireLogin(ctx, deps);
      }
      s.credentials = creds;
    }
    await next();
  };
}
