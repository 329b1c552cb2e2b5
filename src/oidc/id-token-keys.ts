// The ID-token side of an IdP client: the IdP's key set (JWKS) for ID and logout tokens, and the
// signature checks of ID tokens and signed userinfo answers. IdpClient owns one (idp-client.ts).
import { clearTimeout, setTimeout } from 'node:timers';
import type * as oidc from 'openid-client';
import { compactVerify, createRemoteJWKSet, customFetch as joseCustomFetch, errors as joseErrors } from 'jose';
import { Unavailable } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { FetchLike } from './fetch.ts';
import { errorSummary } from './idp-errors.ts';

export type RemoteJwks = ReturnType<typeof createRemoteJWKSet>;

/**
 * How often a token from an untrusted sender (a logout token: anyone can post one) may make the key
 * set be fetched again for a kid it lacks. jose's own wait between such fetches is 10 s (the
 * cool-down below): a logout token signed with a key the IdP rotated in within 10 s of the last
 * fetch was refused as invalid (400), and an IdP does not retry a 400, so the session outlived the
 * IdP's logout. Once a second bounds what forged tokens can make us ask of the IdP.
 */
const UNKNOWN_KID_REFETCH_MS = 1000;

/**
 * ID token signature algorithms we accept: asymmetric only, whatever the discovery document
 * lists. OIDC Core 10.1 allows HS256 keyed with the client secret when the client registered it;
 * goldpath never registers it (the default is RS256), and a token anyone holding the secret can
 * mint proves nothing about the IdP. `none` is never acceptable for a code-flow ID token.
 */
export const ID_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/**
 * Whether a failure of a check against a remote key set is the key set's (it could not be had: a
 * timeout, a network error, an answer that is not 200, not JSON, or no key set), not the token's.
 * jose throws its base JOSEError (ERR_JOSE_GENERIC) only for an answer of the jwks_uri it cannot use.
 */
export function keySetUnavailable(err: unknown): boolean {
  return err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid
    || !(err instanceof joseErrors.JOSEError) || err.code === 'ERR_JOSE_GENERIC';
}

/** The key set of one IdpClient, given what it needs of the client (see IdpClient.jwks). */
export class IdTokenKeys {
  readonly name: string;
  readonly configuration: () => Promise<oidc.Configuration>;
  readonly #log: Logger;
  readonly #fetch: FetchLike;
  readonly #timeout: number;
  readonly #jwksMaxAge: number | undefined;
  #jwks: RemoteJwks | undefined;
  /** When refetchForUnknownKid last began a fetch (performance.now() ms), and that fetch in flight. */
  #refetchedAt = -Infinity;
  #refetching: Promise<void> | undefined;

  constructor(client: { name: string; configuration: () => Promise<oidc.Configuration>; log: Logger; fetch: FetchLike; timeout: number; jwksMaxAge: number | undefined }) {
    this.name = client.name;
    this.configuration = client.configuration;
    this.#log = client.log;
    this.#fetch = client.fetch;
    this.#timeout = client.timeout;
    this.#jwksMaxAge = client.jwksMaxAge;
  }

  /** Key set for ID and logout tokens (refetched on an unknown kid, for key rotation). */
  async jwks(): Promise<RemoteJwks> {
    if (this.#jwks) return this.#jwks;
    const meta = (await this.configuration()).serverMetadata();
    if (!meta.jwks_uri) throw new Unavailable(`the IdP "${this.name}" publishes no jwks_uri`);
    const opts: Parameters<typeof createRemoteJWKSet>[1] = { timeoutDuration: this.#timeout * 1000, cooldownDuration: 10_000 };
    if (this.#jwksMaxAge !== undefined) opts.cacheMaxAge = this.#jwksMaxAge * 1000;
    opts[joseCustomFetch] = this.#fetch as never;
    this.#jwks = createRemoteJWKSet(new URL(meta.jwks_uri), opts);
    return this.#jwks;
  }

  /**
   * Fetches the key set unless it is at hand and fresh, so that checking a refreshed ID token does
   * not have to fetch it after the grant: by then the IdP has rotated the refresh token away, and a
   * key set that cannot be had would leave the session the spent one. Unavailable when it cannot
   * be had; nothing to do for an IdP without jwks_uri (its ID tokens are refused as ever).
   */
  async keySetReady(): Promise<void> {
    if (!(await this.configuration()).serverMetadata().jwks_uri) return;
    const jwks = await this.jwks();
    if (jwks.fresh) return;
    try {
      await jwks.reload();
    } catch (err) {
      const e = this.#jwksFailure(err);
      throw e instanceof Unavailable ? e : new Unavailable(`the IdP "${this.name}" key set cannot be fetched`, { cause: err });
    }
  }

  /**
   * Checks an ID token's signature against the IdP's JWKS, asymmetric algorithms only.
   * openid-client skips this for tokens from the token endpoint (OIDC Core 3.1.3.7 lets TLS stand
   * in for it); we do not: it also holds when the IdP is reached through a proxy, a plain-http
   * dev issuer, or a mis-routed token endpoint. Rejects with the jose error (→ 400) when the
   * token is not signed by a published key, with Unavailable (→ 503) when the JWKS cannot be had,
   * or not by `by` (performance.now() ms; a refresh must save its answer while its lock holds).
   */
  async verifyIdToken(idToken: string, by?: number): Promise<void> {
    const checked = this.checkSignature(idToken);
    if (by === undefined) return checked;
    checked.catch(() => undefined); // the race below may leave it unheard
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Unavailable(`the IdP "${this.name}" key set did not come in time to check an ID token`)), Math.max(0, by - performance.now()));
    });
    try {
      await Promise.race([checked, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async checkSignature(idToken: string): Promise<void> {
    const jwks = await this.jwks();
    const verify = () => compactVerify(idToken, jwks, { algorithms: ID_TOKEN_ALGORITHMS });
    try {
      await verify();
      return;
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw this.#jwksFailure(err);
    }
    // An unknown kid: the IdP rotated its keys. This token came straight from the token endpoint,
    // not from the browser, so refetching at once (skipping the JWKS cool-down) cannot be abused.
    try {
      await jwks.reload();
      await verify();
    } catch (err) {
      throw this.#jwksFailure(err);
    }
  }

  /**
   * A token from an untrusted sender names a key the set lacks (jose's JWKSNoMatchingKey): fetches
   * the set again, at most once every UNKNOWN_KID_REFETCH_MS (callers meanwhile share the fetch in
   * flight). `checkedAt`: when the caller's check began (performance.now() ms). True when the set
   * was fetched after that (check again), false when it is too soon to fetch (the token is refused
   * as it stands). A key set that cannot be had → Unavailable.
   */
  async refetchForUnknownKid(checkedAt: number): Promise<boolean> {
    const jwks = await this.jwks(); // first: no await between the checks below and the fetch they allow
    if (this.#refetching === undefined) {
      if (this.#refetchedAt > checkedAt) return true; // fetched since: the check can be made again
      if (performance.now() - this.#refetchedAt < UNKNOWN_KID_REFETCH_MS) return false;
      this.#refetchedAt = performance.now();
      this.#refetching = jwks.reload().finally(() => { this.#refetching = undefined; });
    }
    try {
      await this.#refetching;
    } catch (err) {
      throw this.#jwksFailure(err);
    }
    return true;
  }

  /** jose errors about the token stay as they are (a bad token); failures to get the keys → 503. */
  #jwksFailure(err: unknown): unknown {
    if (!keySetUnavailable(err)) return err;
    this.#log.warn({ idp: this.name, err: errorSummary(err) }, 'cannot fetch the IdP key set');
    return new Unavailable(`the IdP "${this.name}" key set cannot be fetched`, { cause: err });
  }
}
