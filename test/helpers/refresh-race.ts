// What the tests of refresh tokens nobody holds share: a gate to hold an IdP's answer, a question
// to the IdP (is this refresh token still granted?), and the real /auth/verify chain with the real
// token provider over a real store, for an IdpBff environment and a fetch that watches the IdP.
import * as oidc from 'openid-client';
import type { FetchLike } from '../../src/oidc/fetch.ts';
import { IdpRegistry } from '../../src/oidc/registry.ts';
import { createTokenProvider } from '../../src/oidc/token-provider.ts';
import { silentLogger, type Logger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import type { SessionStore } from '../../src/session/types.ts';
import type { DevIdpOptions } from '../../src/dev/idp.ts';
import { TEST_CLIENT_SECRET, type IdpBff } from './idp-bff.ts';
import { startVerifyApp, type RunningVerify } from './verify-app.ts';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A promise opened from outside. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => { open = r; });
  return { promise, open };
}

/** Whether the IdP's token endpoint still grants a refresh with `rt` (it rotates it when it does). */
export async function grantsRefresh(issuer: string, rt: string): Promise<boolean> {
  const config = await oidc.discovery(new URL(issuer), 'goldpath', TEST_CLIENT_SECRET, oidc.ClientSecretBasic(TEST_CLIENT_SECRET), { execute: [oidc.allowInsecureRequests] });
  try {
    await oidc.refreshTokenGrant(config, rt);
    return true;
  } catch (err) {
    if (err instanceof oidc.ResponseBodyError && err.error === 'invalid_grant') return false;
    throw err;
  }
}

/**
 * A fetch to the IdP that hands the JSON of each successful refresh answer to `seen`, awaited
 * before the caller reads the answer (a test holds or edits the answer there), and answers with
 * what `seen` left of it.
 */
export function refreshAnswers(seen: (body: Record<string, unknown>) => Promise<void> | void): FetchLike {
  return async (url, init) => {
    const res = await globalThis.fetch(url, init as RequestInit);
    if (!String(init.body ?? '').includes('grant_type=refresh_token') || res.status !== 200) return res;
    const body = await res.json() as Record<string, unknown>;
    await seen(body);
    return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
  };
}

/**
 * A fetch to the IdP (through `inner`) that hands the claims of each successful userinfo answer
 * (oidc-provider's /me, JSON) to `seen`, awaited before the caller reads the answer: a test edits
 * them there, holds the answer, or answers with a Response of its own instead (an outage).
 */
export function userinfoAnswers(inner: FetchLike, seen: (claims: Record<string, unknown>) => Promise<Response | void> | Response | void): FetchLike {
  return async (url, init) => {
    const res = await inner(url, init);
    if (new URL(String(url)).pathname !== '/me' || res.status !== 200) return res;
    const claims = await res.json() as Record<string, unknown>;
    const instead = await seen(claims);
    if (instead !== undefined) return instead;
    return new Response(JSON.stringify(claims), { status: res.status, headers: res.headers });
  };
}

/**
 * A fetch to the IdP that reports each revocation request (`revoking`) and hands each successful
 * refresh answer's refresh token to `refreshed`, awaited before the caller reads the answer: a
 * test holds the answer there.
 */
export function watchingFetch(revoking: () => void, refreshed: (refreshToken: string) => Promise<void> | void): FetchLike {
  const answers = refreshAnswers((body) => refreshed(String(body['refresh_token'])));
  return async (url, init) => {
    if (String(url).endsWith('/token/revocation')) revoking();
    return answers(url, init);
  };
}

/**
 * A dev IdP `configure` under which a revocation ends that refresh token only: neither the grant
 * nor the tokens issued under it since (its rotated successors), as at IdPs that revoke per token.
 */
export function revokesPerToken(config: Parameters<NonNullable<DevIdpOptions['configure']>>[0]): void {
  config['revokeGrantPolicy'] = () => false;
  const adapter = config['adapter'] as (model: string) => Record<string, unknown>;
  config['adapter'] = (model: string) => ({ ...adapter(model), revokeByGrantId: async () => {} });
}

/** The verify chain refreshing through `fetch`, beside env's BFF, on a store of its own. */
export async function startRefreshingVerify(env: IdpBff, fetch: FetchLike, log: Logger = silentLogger): Promise<{ store: SessionStore; verify: RunningVerify; close(): Promise<void> }> {
  const store = createSessionStore({ url: env.redis.url, settings: env.settings, log: silentLogger });
  const tokens = createTokenProvider({ idps: new IdpRegistry(env.config.idps, { log, fetch }), store, log });
  const verify = await startVerifyApp(store, env.redis.url, { tokens, idps: env.config.idps });
  return {
    store, verify,
    async close() {
      await verify.close();
      await store.close();
    },
  };
}
