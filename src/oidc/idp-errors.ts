// How goldpath reads what an IdP answered when it failed: which openid-client errors are the IdP's
// own refusal and which an outage, the answers that cannot be trusted, and the summary a log line
// keeps of an error (no response bodies, no tokens, no client secrets). IdpClient and its callers
// (the BFF's login, callback and logout; token refresh) classify with these.
import { Buffer } from 'node:buffer';
import * as oidc from 'openid-client';
import { errorFields } from '../log.ts';
import { sameIssuer } from '../config/idps.ts';

/**
 * openid-client's code for an ID token whose claims name another issuer or audience (iss, aud,
 * azp). Not its timestamp checks (ID_TOKEN_TIMESTAMPS): see RefreshOutOfTime.
 */
export const ID_TOKEN_CHECKS: ReadonlySet<string> = new Set(['OAUTH_JWT_CLAIM_COMPARISON_FAILED']);

/**
 * openid-client's code for an ID token whose exp has passed or whose nbf has not come, by this
 * process's clock (it takes iat as it is). It checks those first: when they fail, nothing else of
 * the ID token has been checked (IdpClient.refresh checks the rest itself).
 */
export const ID_TOKEN_TIMESTAMPS = 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED';

/**
 * A refresh answer whose ID token fails verification (its signature, or openid-client's claim
 * checks): nothing of it can be trusted. `refreshToken` is the one it carried, if any.
 */
export class UntrustedRefresh extends Error {
  // Private: no serializer of the error (a logger's) ever sees the token.
  readonly #refreshToken: string | undefined;
  constructor(refreshToken: string | undefined, cause: unknown) {
    super('the IdP\'s refresh answer carries an ID token that fails verification', { cause });
    this.name = 'UntrustedRefresh';
    this.#refreshToken = refreshToken;
  }

  get refreshToken(): string | undefined {
    return this.#refreshToken;
  }
}

/**
 * A refresh answer openid-client refused that is the IdP's own all the same (what could be checked
 * of it holds): an IdP that rotates refresh tokens has spent the one sent, so the one this answer
 * carries is the session's from now on (token-refresh.ts keeps it, and nothing else of the answer).
 * `sub` is its ID token's, once that token's signature, iss, aud and azp hold; undefined when it
 * carries none.
 */
export abstract class RefreshTokenOnly extends Error {
  readonly sub: string | undefined;
  // Private, as UntrustedRefresh's.
  readonly #refreshToken: string | undefined;
  constructor(message: string, refreshToken: string | undefined, sub: string | undefined, cause: unknown) {
    super(message, { cause });
    this.sub = sub;
    this.#refreshToken = refreshToken;
  }

  get refreshToken(): string | undefined {
    return this.#refreshToken;
  }
}

/** Refused only for its ID token's exp or nbf, by this process's clock (a clock off at either end). */
export class RefreshOutOfTime extends RefreshTokenOnly {
  constructor(refreshToken: string | undefined, sub: string, cause: unknown) {
    super('the IdP\'s refresh answer carries an ID token whose exp or nbf fails by this process\'s clock', refreshToken, sub, cause);
    this.name = 'RefreshOutOfTime';
  }
}

/**
 * A 200 answer to a refresh grant that openid-client refused for its shape (no access_token, a
 * token_type it does not know, an expires_in that is no number...): the IdP's bug, but the IdP may
 * have rotated the refresh token all the same, and the session would end at its next refresh.
 */
export class MalformedRefresh extends RefreshTokenOnly {
  constructor(refreshToken: string, sub: string | undefined, cause: unknown) {
    super('the IdP answered a refresh grant with a success that is not a valid token response', refreshToken, sub, cause);
    this.name = 'MalformedRefresh';
  }
}

/** A signed userinfo answer (application/jwt) whose signature does not verify: none of its claims count. */
export class UntrustedUserinfo extends Error {
  constructor(cause: unknown) {
    super('the IdP\'s userinfo answer is a JWT whose signature does not verify', { cause });
    this.name = 'UntrustedUserinfo';
  }
}

/**
 * The id_token and refresh_token of a token endpoint's answer, from one read (an answer is read
 * once). Read only to check the ID token and to keep or revoke the refresh token, never logged.
 */
export async function tokensOf(answer: Response | undefined): Promise<{ idToken?: string; refreshToken?: string }> {
  const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  try {
    const body = await answer?.json() as { id_token?: unknown; refresh_token?: unknown } | undefined;
    return { idToken: text(body?.id_token), refreshToken: text(body?.refresh_token) };
  } catch {
    return {}; // not JSON: openid-client would have refused it before any claim check
  }
}

/** The refresh_token of a token endpoint's answer (read only to revoke it, never logged). */
export async function refreshTokenOf(answer: Response | undefined): Promise<string | undefined> {
  return (await tokensOf(answer)).refreshToken;
}

/** The issuer a discovery document named when openid-client refused it for not being idps.yaml's. */
export function issuerDiscovered(err: unknown): string | undefined {
  if (!(err instanceof oidc.ClientError) || err.code !== 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') return undefined;
  const cause = err.cause as { attribute?: unknown; body?: { issuer?: unknown } } | undefined;
  return cause?.attribute === 'issuer' && typeof cause.body?.issuer === 'string' ? cause.body.issuer.slice(0, 300) : undefined;
}

/**
 * The discovery document openid-client refused only because its issuer differs from idps.yaml's
 * by a trailing slash; undefined for any other failure.
 */
export function issuerSpelledOtherwise(err: unknown, configured: string): oidc.ServerMetadata | undefined {
  if (!(err instanceof oidc.ClientError) || err.code !== 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') return undefined;
  const cause = err.cause as { attribute?: unknown; body?: unknown } | undefined;
  const body = cause?.body as oidc.ServerMetadata | undefined;
  if (cause?.attribute !== 'issuer' || typeof body?.issuer !== 'string') return undefined;
  return sameIssuer(body.issuer, configured) ? body : undefined;
}

/**
 * The IdP refused what it was sent with a 4xx WWW-Authenticate challenge (RFC 6750 3.1: a userinfo
 * `invalid_token`, an `insufficient_scope`): its own answer, not an outage. A DPoP nonce it still
 * asks for after openid-client's one retry is no refusal: asking again may pass.
 */
export function refusedByChallenge(err: unknown): err is oidc.WWWAuthenticateChallengeError {
  return err instanceof oidc.WWWAuthenticateChallengeError && err.status < 500
    && !err.cause.some((c) => c.parameters['error'] === 'use_dpop_nonce');
}

/**
 * The userinfo endpoint refused the access token: with a challenge (refusedByChallenge), or with a
 * bare 401 or 403, as many IdPs answer, leaving WWW-Authenticate out (RFC 6750 3.1 asks for it).
 * openid-client reports that as an unexpected status (its cause the answer), as it does a proxy's
 * 502: only the status tells them apart.
 */
export function refusedAtUserinfo(err: unknown): boolean {
  if (refusedByChallenge(err)) return true;
  if (!(err instanceof oidc.ClientError) || err.code !== 'OAUTH_RESPONSE_IS_NOT_CONFORM') return false;
  const status = (err.cause as { status?: unknown } | undefined)?.status;
  return status === 401 || status === 403;
}

/**
 * The token endpoint refused goldpath's own client (RFC 6749 5.2): its authentication
 * (`invalid_client` in the body, or a 401 challenge, which at a token endpoint only client
 * authentication raises), or its registration (`unauthorized_client`: not allowed this grant).
 * Nothing a user's grant or a new sign-in can cure: an operator must fix idps.yaml or the IdP.
 */
export function refusesClient(err: unknown): boolean {
  if (err instanceof oidc.WWWAuthenticateChallengeError) return !err.cause.some((c) => c.parameters['error'] === 'use_dpop_nonce');
  return err instanceof oidc.ResponseBodyError && (err.error === 'invalid_client' || err.error === 'unauthorized_client');
}

/** openid-client error codes that mean "the IdP could not be reached or answered garbage". */
export const OUTAGE_CODES: ReadonlySet<string> = new Set(['OAUTH_TIMEOUT', 'OAUTH_ABORT', 'OAUTH_RESPONSE_IS_NOT_CONFORM', 'OAUTH_RESPONSE_IS_NOT_JSON']);

/**
 * The client secrets of the IdPs this process was configured with (a reload adds its own; a few
 * strings). errorSummary withholds an IdP's error text that quotes one: a secret is chosen by
 * people, and passes for plain text (`Sup3r.S3cret/Value!`) where tokens and codes do not.
 */
export const clientSecrets = new Set<string>();

/** Percent-decoding that leaves what does not decode (a stray `%`) as it was. */
const percentDecoded = (s: string) => s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (m) => {
  try {
    return decodeURIComponent(m);
  } catch {
    return m;
  }
});

/** JSON string escapes (`\/`, `\u002F`) and the HTML entities an error page may hold, undone. */
const unescaped = (s: string) => s
  .replace(/\\u([0-9A-Fa-f]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
  .replace(/\\(["\\/])/g, '$1')
  .replace(/&#x([0-9A-Fa-f]{1,6});/g, (_, h: string) => String.fromCodePoint(Math.min(parseInt(h, 16), 0x10ffff)))
  .replace(/&#(\d{1,7});/g, (_, d: string) => String.fromCodePoint(Math.min(Number(d), 0x10ffff)))
  .replace(/&(amp|lt|gt|quot|apos);/g, (_, n: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" })[n]!);

/** Every reading of `text` a quoted secret may hide in: decoded twice over, and base64 runs. */
function readingsOf(text: string): Set<string> {
  const decoders = [percentDecoded, (s: string) => percentDecoded(s.replace(/\+/g, ' ')), unescaped];
  const all = new Set([text]);
  let frontier = [text];
  for (let round = 0; round < 2; round++) {
    const next: string[] = [];
    for (const t of frontier) {
      for (const decode of decoders) {
        const r = decode(t);
        if (!all.has(r)) all.add(r), next.push(r);
      }
    }
    frontier = next;
  }
  for (const t of [...all]) {
    for (const run of t.match(/[A-Za-z0-9+/]{8,}={0,2}/g) ?? []) {
      const bytes = Buffer.from(run, 'base64').toString('latin1');
      all.add(bytes).add(percentDecoded(bytes.replace(/\+/g, ' ')));
    }
  }
  return all;
}

/** Part of a secret long enough to count as quoting it (an IdP may quote a secret cut short). */
const QUOTED_PART = 8;

/**
 * Whether `text` holds a client secret, or 8 characters of one in a row, as sent in any of the
 * ways a client sends it (as is, form- or percent-encoded for client_secret_post, RFC 6749 2.3.1,
 * in a Basic header's base64) and as an IdP may quote it back (JSON- or HTML-escaped). A false
 * alarm only leaves a description out.
 */
function quotesClientSecret(text: string): boolean {
  if (clientSecrets.size === 0) return false;
  const readings = [...readingsOf(text)];
  for (const secret of clientSecrets) {
    const parts = secret.length <= QUOTED_PART ? [secret] : Array.from({ length: secret.length - QUOTED_PART + 1 }, (_, i) => secret.slice(i, i + QUOTED_PART));
    if (readings.some((r) => parts.some((p) => r.includes(p)))) return true;
  }
  return false;
}

/** Loggable summary of an openid-client/network error: no response bodies, no tokens, no secrets. */
export function errorSummary(err: unknown): Record<string, unknown> {
  // The IdP's error_description is what tells an operator the cause (a redirect URI not
  // registered, a client authentication that failed): kept when it is plain short text, with any
  // run that could be a token or code an IdP quoted back (20 or more token characters) cut out,
  // and left out whole when it quotes the client secret.
  const described = (d: unknown) => (typeof d !== 'string' || !/^[\x20-\x7e]{1,300}$/.test(d) ? {}
    : quotesClientSecret(d) ? { error_description: '[left out: it quotes the client secret]' }
      : { error_description: d.replace(/[A-Za-z0-9_~+=-]{20,}/g, '[…]') });
  if (err instanceof oidc.ResponseBodyError) return { type: 'ResponseBodyError', error: err.error, status: err.status, ...described(err.error_description) };
  if (err instanceof oidc.AuthorizationResponseError) return { type: 'AuthorizationResponseError', error: err.error, ...described(err.error_description) };
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    const c = err.cause.find((x) => x.parameters['error'] !== undefined) ?? err.cause[0];
    return { type: 'WWWAuthenticateChallengeError', status: err.status, scheme: c?.scheme, error: c?.parameters['error'], ...described(c?.parameters['error_description']) };
  }
  // An unexpected status (OAUTH_RESPONSE_IS_NOT_CONFORM: a bare 401/403, a proxy's 502) carries
  // the answer as its cause: its status is what tells an IdP's refusal from a firewall or an outage.
  const status = err instanceof oidc.ClientError ? (err.cause as { status?: unknown } | undefined)?.status : undefined;
  return typeof status === 'number' ? { ...errorFields(err), status } : errorFields(err);
}

/**
 * The discovery document names another issuer than idps.yaml (beyond a trailing slash): ID tokens
 * are checked against exactly one issuer, so no sign-in can pass. An issuer template, as Entra
 * ID's multi-tenant endpoints (common, organizations, consumers) publish, names none: each
 * tenant's tokens carry their own issuer, and accepting any would let every tenant's users in.
 */
export class IssuerMismatch extends Error {
  readonly discovered: string;
  constructor(configured: string, discovered: string) {
    super(/[{}]/.test(discovered)
      ? 'the IdP\'s discovery document names an issuer template (' + discovered + '), as a multi-tenant endpoint does (Entra ID\'s ' +
        'common, organizations or consumers): goldpath checks ID tokens against one issuer; write your tenant\'s issuer in idps.yaml ' +
        '(https://login.microsoftonline.com/<tenant-id>/v2.0)'
      : 'the IdP\'s discovery document names another issuer than idps.yaml (' + configured + '): write its issuer (' + discovered + ') in idps.yaml exactly');
    this.name = 'IssuerMismatch';
    this.discovered = discovered;
  }
}

/** The client's own key or secret failed before any request was made (see configuration()). */
export class UnusableCredentials extends Error {
  constructor(cause: unknown) {
    super('unusable client credentials', { cause });
  }
}
