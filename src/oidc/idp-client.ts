// One configured IdP (an idps.yaml entry) as an OAuth client: discovery, authorization URL (PKCE,
// PAR, DPoP binding, resource indicators), code exchange, userinfo, refresh, revocation, end
// session and the JWKS for logout tokens. Thin over openid-client v6; policy lives here.
import * as oidc from 'openid-client';
import type { IdpConfig } from '../config/types.ts';
import { Unavailable } from '../errors.ts';
import type { Logger } from '../log.ts';
import { clientAuthFor } from './client-auth.ts';
import { dpopKeyPair, dpopThumbprint, type DpopJwk } from './dpop.ts';
import { limitedFetch, readTlsMaterial, tlsFetch, type FetchLike } from './fetch.ts';
import { BackgroundTasks } from './background.ts';
import { FloodGate } from '../http/flood-gate.ts';
import { Reachability } from './reachability.ts';
import {
  clientSecrets, errorSummary, ID_TOKEN_CHECKS, ID_TOKEN_TIMESTAMPS, issuerDiscovered, issuerSpelledOtherwise, refreshTokenOf, refusedAtUserinfo,
  MalformedRefresh, refusedByChallenge, OUTAGE_CODES, RefreshOutOfTime, tokensOf, UntrustedRefresh, UntrustedUserinfo, IssuerMismatch, UnusableCredentials,
} from './idp-errors.ts';
import { subOfOutOfTime } from './out-of-time-id-token.ts';
import { CLOCK_TOLERANCE_S, ClockSkew, iatAheadS, refusedClaims } from './clock.ts';
import { REFRESH_GRANT_BUDGET_S, type IdpClientOptions } from './idp-client-options.ts';
import { ID_TOKEN_ALGORITHMS, IdTokenKeys, type RemoteJwks } from './id-token-keys.ts';

export { REFRESH_GRANT_BUDGET_S, type IdpClientOptions } from './idp-client-options.ts';
export { ID_TOKEN_ALGORITHMS, type RemoteJwks } from './id-token-keys.ts';
export { revokeInBackground } from './revoke-in-background.ts';

export type TokenResponse = oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;

/** The longest end-session URL sent with id_token_hint (see IdpClient.endSessionUrl). */
export const MAX_END_SESSION_URL = 4096;

export class IdpClient {
  readonly idp: IdpConfig;
  /** The revocations this client runs in the background (see IdpClientOptions.background). */
  readonly background: BackgroundTasks;
  /** What this client's own requests met: whether the IdP takes connections now (a logout asks). */
  readonly reachability = new Reachability();
  readonly #log: Logger;
  /**
   * Discovery is tried again by every request that needs it while the IdP is away (a sidecar's
   * refreshes, the BFF's sign-ins): its failures are logged one line a second, saying how many
   * more it stands for, as the 503s they end in are (src/http/error-handler.ts).
   */
  readonly #discoveryFailures = new FloodGate<Record<string, unknown>>(1_000,
    (err, also) => this.#log.warn({ idp: this.name, err, ...(also > 0 ? { alsoFailed: also } : {}) }, 'IdP discovery failed'));
  readonly #fetch: FetchLike;
  readonly #timeout: number;
  readonly #refreshTimeout: number;
  /**
   * Per audience, whether the IdP's last refresh answer carried an ID token (none yet: assumed so).
   * Many IdPs never send one on refresh: their grants need no key set at hand (idTokenOnRefresh).
   */
  readonly #idTokenOnRefresh = new Map<string, boolean>();
  #issuerMismatchLogged = false;
  #pending: Promise<oidc.Configuration> | undefined;
  #config: oidc.Configuration | undefined;
  /** What the client was configured with at discovery (a second configuration needs them). */
  #client: { readonly metadata: Partial<oidc.ClientMetadata>; readonly auth: oidc.ClientAuth } | undefined;
  readonly #keys: IdTokenKeys;
  readonly #previous: Readonly<oidc.ServerMetadata> | undefined;

  constructor(idp: IdpConfig, opts: IdpClientOptions) {
    this.idp = idp;
    this.#log = opts.log;
    this.#timeout = opts.timeoutSeconds ?? 5;
    this.#refreshTimeout = opts.refreshTimeoutSeconds ?? REFRESH_GRANT_BUDGET_S / (idp.dpop ? 2 : 1);
    this.#previous = opts.previousMetadata;
    this.background = opts.background ?? new BackgroundTasks();
    if (idp.clientSecret) clientSecrets.add(idp.clientSecret);
    // Every IdP answer is size-bounded, whichever fetch carries it (fetch.ts).
    // Every request (discovery, tokens, revocation, key set) tells whether the IdP takes connections.
    this.#fetch = idp.clientAuth === 'tls_client_auth' && idp.mtls
      ? this.reachability.watch(tlsFetch(readTlsMaterial(idp.mtls)))
      : limitedFetch(this.reachability.watch(opts.fetch ?? ((url, init) => globalThis.fetch(url, init as RequestInit))));
    this.#keys = new IdTokenKeys({ name: idp.name, configuration: () => this.configuration(), log: this.#log, fetch: this.#fetch, timeout: this.#timeout, jwksMaxAge: opts.jwksMaxAgeSeconds });
  }

  get name(): string {
    return this.idp.name;
  }

  /**
   * The longest a refresh grant can take, ms: one request, or two with DPoP (openid-client retries
   * once when the IdP asks for a nonce), each bounded by the refresh timeout.
   */
  get refreshBudgetMs(): number {
    return (this.idp.dpop ? 2 : 1) * this.#refreshTimeout * 1000;
  }

  /** True once the discovery document has been loaded. */
  get ready(): boolean {
    return this.#config !== undefined;
  }

  /**
   * The server metadata, once loaded, else what this client was handed (and hands on to the client
   * that replaces it): a second reload before this client is first used must not lose it.
   */
  get metadata(): Readonly<oidc.ServerMetadata> | undefined {
    return this.#config?.serverMetadata() ?? this.#previous;
  }

  /** The discovered configuration; discovery is retried on the next call after a failure. */
  configuration(): Promise<oidc.Configuration> {
    if (this.#config) return Promise.resolve(this.#config);
    this.#pending ??= this.#discover().then(
      (c) => {
        this.#config = c;
        this.#pending = undefined;
        return c;
      },
      (err: unknown) => {
        this.#pending = undefined;
        if (err instanceof IssuerMismatch) {
          // Not an outage: every retry meets the same document. One line per client (a reload makes another).
          if (!this.#issuerMismatchLogged) this.#log.error({ idp: this.name, configured: this.idp.issuer, discovered: err.discovered }, err.message);
          this.#issuerMismatchLogged = true;
          throw new Unavailable(`the IdP "${this.name}" names another issuer than idps.yaml`, { cause: err });
        }
        if (err instanceof UnusableCredentials) {
          // Not the IdP's fault: saying it "cannot be reached" would send the operator to the network.
          this.#log.error({ idp: this.name, err: errorSummary(err.cause) }, 'the client credentials in idps.yaml cannot be used');
          throw new Unavailable(`the client credentials of IdP "${this.name}" cannot be used (goldpath check names the problem)`, { cause: err.cause });
        }
        const summary = errorSummary(err);
        const held = this.#discoveryFailures.pass(performance.now(), summary);
        if (held !== undefined) this.#log.warn({ idp: this.name, err: summary, ...(held > 0 ? { alsoFailed: held } : {}) }, 'IdP discovery failed');
        throw new Unavailable(`the IdP "${this.name}" cannot be reached`, { cause: err });
      },
    );
    return this.#pending;
  }

  async #discover(): Promise<oidc.Configuration> {
    const idp = this.idp;
    // The tolerance of ID tokens' exp and nbf (openid-client's default is 30 s): the one logout
    // tokens get too (clock.ts), so a skew that lets a sign-in through lets its logout through.
    const metadata: Partial<oidc.ClientMetadata> = { [oidc.clockTolerance]: CLOCK_TOLERANCE_S };
    if (idp.clientSecret) metadata.client_secret = idp.clientSecret;
    if (idp.clientAuth === 'tls_client_auth') metadata.use_mtls_endpoint_aliases = true;
    // Validation vetted the key files, but they are read again here and may have changed since.
    const auth = await clientAuthFor(idp).catch((err: unknown) => { throw new UnusableCredentials(err); });
    this.#client = { metadata, auth };
    // The same client as before the reload (its key files read again), on what was discovered then.
    if (this.#previous !== undefined) {
      return this.#discovered(this.#configurationOf(this.#previous as oidc.ServerMetadata, this.#timeout), 'IdP metadata kept from before the reload');
    }
    let config: oidc.Configuration;
    try {
      // openid-client looks for allowInsecureRequests itself in `execute` (the discovery request
      // is plain http too): the function, not a wrapper.
      const execute = this.idp.dangerouslyAllowInsecureHttp ? [oidc.allowInsecureRequests] : [];
      const options: oidc.DiscoveryRequestOptions = { execute, timeout: this.#timeout };
      options[oidc.customFetch] = this.#fetch as oidc.CustomFetch;
      config = await oidc.discovery(new URL(idp.issuer), idp.clientId, metadata, auth, options);
    } catch (err) {
      const spelled = issuerSpelledOtherwise(err, idp.issuer);
      if (spelled !== undefined) {
        // The IdP's issuer is idps.yaml's but for a trailing slash (`.../realms/corp/` written,
        // `.../realms/corp` said): the same issuer, as everywhere else (sameIssuer). The IdP's
        // own spelling is the one ID tokens and RFC 9207 `iss` are then held to.
        this.#log.info({ idp: this.name, issuer: spelled.issuer }, 'the IdP spells its issuer with a different trailing slash than idps.yaml: using the IdP\'s');
        return this.#discovered(this.#configurationOf(spelled, this.#timeout));
      }
      const discovered = issuerDiscovered(err);
      if (discovered !== undefined) throw new IssuerMismatch(this.idp.issuer, discovered);
      throw err;
    }
    return this.#discovered(config);
  }

  #discovered(config: oidc.Configuration, loaded = 'IdP metadata loaded'): oidc.Configuration {
    const idp = this.idp;
    const meta = config.serverMetadata();
    if (meta.require_pushed_authorization_requests && idp.par === 'never') {
      this.#log.warn({ idp: this.name }, 'the IdP requires PAR: using it although idps.yaml says par: never');
    }
    if (idp.dpop && !meta.dpop_signing_alg_values_supported) {
      this.#log.warn({ idp: this.name }, 'idps.yaml sets dpop: true, but the IdP does not advertise DPoP (dpop_signing_alg_values_supported): sign-ins fail if it issues bearer tokens');
    }
    this.#log.info({ idp: this.name, issuer: meta.issuer }, loaded);
    return config;
  }

  /** A configuration of this client on known metadata (no discovery), with its own timeout. */
  #configurationOf(meta: oidc.ServerMetadata, timeoutSeconds: number, fetch = this.#fetch): oidc.Configuration {
    const config = new oidc.Configuration(meta, this.idp.clientId, this.#client!.metadata, this.#client!.auth);
    if (this.idp.dangerouslyAllowInsecureHttp) oidc.allowInsecureRequests(config);
    config[oidc.customFetch] = fetch as oidc.CustomFetch;
    config.timeout = timeoutSeconds;
    return config;
  }

  /**
   * The configuration one refresh grant runs on: the discovered one's, with the refresh timeout,
   * keeping the token endpoint's successful answer in `answer`. One per grant: grants of other
   * sessions run at the same time, and each must see its own answer only.
   */
  #refreshConfiguration(from: oidc.Configuration, answer: { last?: Response }): oidc.Configuration {
    const inner = this.#fetch;
    return this.#configurationOf(from.serverMetadata(), this.#refreshTimeout, async (url, init) => {
      const res = await inner(url, init);
      // A copy: openid-client reads the answer itself (a DPoP nonce retry's 400 is not kept).
      if (res.ok) answer.last = res.clone();
      return res;
    });
  }

  /** Key set for ID and logout tokens: IdTokenKeys.jwks. */
  jwks(): Promise<RemoteJwks> {
    return this.#keys.jwks();
  }

  /** The key set fetched again for an untrusted token's unknown kid, rate-limited: IdTokenKeys.refetchForUnknownKid. */
  refetchKeysForUnknownKid(checkedAt: number): Promise<boolean> {
    return this.#keys.refetchForUnknownKid(checkedAt);
  }

  /** Fetches the key set unless it is at hand and fresh: IdTokenKeys.keySetReady. */
  keySetReady(): Promise<void> {
    return this.#keys.keySetReady();
  }

  /**
   * Whether a refresh grant for `audience` may bring an ID token, so that keySetReady must come
   * first: yes until the IdP has answered one without (and again once it answers one with). One
   * that sends an ID token after all while its key set is away is the 503 of verifyIdToken.
   */
  idTokenOnRefresh(audience: string): boolean {
    return this.#idTokenOnRefresh.get(audience) ?? true;
  }

  /** Scope parameter of the authorization request: idps.yaml scopes plus every audience's scopes. */
  scope(): string {
    const all = [...this.idp.scopes, ...Object.values(this.idp.audiences).flatMap((a) => a.scopes)];
    return [...new Set(all)].join(' ');
  }

  /** PAR per idps.yaml: auto uses it when advertised; an IdP that requires it always gets it. */
  usesPar(meta: oidc.ServerMetadata): boolean {
    if (meta.require_pushed_authorization_requests) return true;
    if (this.idp.par === 'never') return false;
    if (this.idp.par === 'always') return true;
    return typeof meta.pushed_authorization_request_endpoint === 'string';
  }

  async authorizationUrl(p: { redirectUri: string; state: string; nonce: string; codeVerifier: string; dpopJwk: DpopJwk | undefined }): Promise<URL> {
    const config = await this.configuration();
    const params = new URLSearchParams({
      redirect_uri: p.redirectUri,
      scope: this.scope(),
      state: p.state,
      nonce: p.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(p.codeVerifier),
      code_challenge_method: 'S256',
    });
    // RFC 8707: ask for every audience up front, so later refresh grants may narrow to one.
    for (const a of Object.values(this.idp.audiences)) params.append('resource', a.resource);
    const meta = config.serverMetadata();
    if (!this.usesPar(meta)) {
      // RFC 9449 section 10: bind the code to the session's DPoP key.
      if (p.dpopJwk) params.set('dpop_jkt', await dpopThumbprint(p.dpopJwk));
      return oidc.buildAuthorizationUrl(config, params);
    }
    if (!meta.pushed_authorization_request_endpoint) {
      throw new Unavailable(`idps.yaml asks for PAR but the IdP "${this.name}" has no pushed_authorization_request_endpoint`);
    }
    const dpop = await this.#dpop(config, p.dpopJwk);
    return this.#idpCall('PAR', () => oidc.buildAuthorizationUrlWithPAR(config, params, dpop));
  }

  /**
   * Validates the authorization response (state, iss, code), redeems the code (PKCE) and checks the
   * ID token: claims (iss, aud, exp, iat, nonce) by openid-client, signature by verifyIdToken.
   * `issued` is given the token endpoint's answer before the checks made here (DPoP binding, the ID
   * token's signature): a sign-in they refuse still has a refresh token to dispose of.
   */
  async exchangeCode(currentUrl: URL, p: { state: string; nonce: string; codeVerifier: string; dpopJwk: DpopJwk | undefined }, issued?: (tokens: TokenResponse) => void): Promise<TokenResponse> {
    const config = await this.configuration();
    let tokens: TokenResponse;
    try {
      tokens = await oidc.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: p.codeVerifier,
        expectedState: p.state,
        expectedNonce: p.nonce,
        idTokenExpected: true,
      }, undefined, await this.#dpop(config, p.dpopJwk));
    } catch (err) {
      // The ID token's exp passed or its nbf not come, beyond CLOCK_TOLERANCE_S: said as a clock.
      if (err instanceof oidc.ClientError && err.code === ID_TOKEN_TIMESTAMPS) {
        const claims = refusedClaims(err);
        throw new ClockSkew('the ID token', claims === undefined ? undefined : iatAheadS(claims), err);
      }
      throw err;
    }
    issued?.(tokens);
    if (p.dpopJwk && tokens.token_type?.toLowerCase() !== 'dpop') {
      // An IdP without DPoP (or not for this client) ignores the proof and issues a bearer token:
      // not what idps.yaml asked for, and not to be kept as if it were bound to the session's key.
      this.#log.error({ idp: this.name, token_type: tokens.token_type }, 'idps.yaml sets dpop: true, but the IdP issued an access token that is not DPoP-bound: ' +
        'sign-ins are refused until DPoP is enabled for this client at the IdP, or dpop: false is set');
      throw new Unavailable(`the IdP "${this.name}" issued a bearer token although idps.yaml sets dpop: true`);
    }
    if (tokens.id_token) await this.verifyIdToken(tokens.id_token);
    // openid-client takes iat as it is: one from the future (the IdP's clock ahead, or ours
    // behind) by more than the tolerance is refused, as a clock, once the signature holds (a
    // forged token is refused as one). Let through, the session's back-channel logouts (whose iat
    // must be within the same tolerance, backchannel-logout.ts) would be refused: a session its
    // IdP could not end.
    const ahead = tokens.id_token === undefined ? undefined : iatAheadS(tokens.id_token);
    if (ahead !== undefined && ahead > CLOCK_TOLERANCE_S) throw new ClockSkew('the ID token', ahead);
    return tokens;
  }

  /** Checks an ID token's signature against the IdP's JWKS: IdTokenKeys.verifyIdToken. */
  verifyIdToken(idToken: string, by?: number): Promise<void> {
    return this.#keys.verifyIdToken(idToken, by);
  }

  /**
   * Userinfo claims, or undefined when the IdP has no userinfo endpoint. An answer that is a signed
   * JWT (application/jwt: a client registered for signed userinfo) has its signature checked as an
   * ID token's is (UntrustedUserinfo when it fails): openid-client takes its claims unchecked, and
   * they decide roles as the ID token's do. openid-client also refuses one whose alg the IdP does
   * not list in userinfo_signing_alg_values_supported, which many leave out (a 503 that no retry
   * cured): the algorithms are ours to choose, ID_TOKEN_ALGORITHMS, as for ID tokens.
   * `by` (performance.now()): the call must end by then (a refresh asks under its lock, which must
   * outlast it): each request's timeout is cut to fit (two with DPoP: a nonce retry), the key set
   * of a signed answer is waited for until then, and with less than a second per request left
   * nothing is sent (Unavailable).
   */
  async userinfo(accessToken: string, sub: string, dpopJwk: DpopJwk | undefined, by?: number): Promise<Record<string, unknown> | undefined> {
    const meta = (await this.configuration()).serverMetadata();
    if (!meta.userinfo_endpoint) return undefined;
    let timeout = this.#timeout;
    if (by !== undefined) {
      // Whole seconds: openid-client's timeout (seconds) becomes an AbortSignal.timeout of
      // timeout * 1000 ms, which throws for a fraction of a millisecond (0.3 * 1000 is not 300).
      const left = Math.floor((by - performance.now()) / (this.idp.dpop ? 2 : 1) / 1000);
      if (left < 1) throw new Unavailable(`no time was left for the userinfo request of IdP "${this.name}"`);
      timeout = Math.min(timeout, left);
    }
    const signed: { jwt?: string } = {};
    const inner = this.#fetch;
    const config = this.#configurationOf({ ...meta, userinfo_signing_alg_values_supported: ID_TOKEN_ALGORITHMS } as typeof meta, timeout, async (url, init) => {
      const res = await inner(url, init);
      if (res.ok && /^application\/jwt\s*(;|$)/i.test(res.headers.get('content-type') ?? '')) signed.jwt = await res.clone().text();
      return res;
    });
    const claims = await this.#idpCall('userinfo', async () => oidc.fetchUserInfo(config, accessToken, sub, await this.#dpop(config, dpopJwk)), refusedAtUserinfo);
    if (signed.jwt !== undefined) {
      try {
        await this.#keys.verifyIdToken(signed.jwt, by);
      } catch (err) {
        throw err instanceof Unavailable ? err : new UntrustedUserinfo(err);
      }
    }
    return claims;
  }

  /**
   * A refresh_token grant; for an audience, narrowed with `resource` and its scopes (RFC 8707).
   * An ID token in the answer is checked as at sign-in: claims (iss, aud, exp, nbf) by
   * openid-client, signature by verifyIdToken, its key set waited for until `verifyBy` (performance.now()) at most.
   * A signature, iss or aud that fails rejects with UntrustedRefresh; a key set not had in time,
   * with Unavailable; an exp or nbf alone, with RefreshOutOfTime (see #outOfTime); a 200 answer
   * openid-client refuses for its shape, with MalformedRefresh (see #malformed).
   */
  async refresh(refreshToken: string, audience: string, dpopJwk: DpopJwk | undefined, verifyBy?: number): Promise<TokenResponse> {
    const answer: { last?: Response } = {};
    const config = this.#refreshConfiguration(await this.configuration(), answer);
    const params: Record<string, string> = {};
    if (audience !== '') {
      const a = this.idp.audiences[audience];
      if (!a) throw new Error(`audience "${audience}" is not configured for IdP "${this.name}"`);
      params['resource'] = a.resource;
      if (a.scopes.length) params['scope'] = a.scopes.join(' ');
    }
    const tokens = await oidc.refreshTokenGrant(config, refreshToken, params, await this.#dpop(config, dpopJwk)).catch(async (err: unknown) => {
      if (!(err instanceof oidc.ClientError)) throw err;
      if (ID_TOKEN_CHECKS.has(err.code ?? '')) {
        this.#idTokenOnRefresh.set(audience, true);
        // openid-client refused the answer before handing it over: its refresh token (the IdP may
        // have rotated to it) is read from the answer itself, so that it can be revoked too.
        throw new UntrustedRefresh(await refreshTokenOf(answer.last), err);
      }
      if (err.code === ID_TOKEN_TIMESTAMPS) {
        this.#idTokenOnRefresh.set(audience, true);
        throw await this.#outOfTime(config, answer.last, err, verifyBy);
      }
      // A success openid-client refused for its shape: its refresh token is kept (MalformedRefresh).
      if (answer.last?.status === 200) throw await this.#malformed(config, answer.last, err, verifyBy);
      throw err;
    });
    this.#idTokenOnRefresh.set(audience, tokens.id_token !== undefined);
    if (tokens.id_token !== undefined) {
      try {
        await this.verifyIdToken(tokens.id_token, verifyBy);
      } catch (err) {
        // A key set that cannot be had says nothing about the answer (503); any other failure does.
        throw err instanceof Unavailable ? err : new UntrustedRefresh(tokens.refresh_token, err);
      }
    }
    return tokens;
  }

  /**
   * What to reject a refresh with whose answer openid-client refused for its ID token's exp or nbf
   * (`err`): a clock off at either end fails those for every answer, yet the IdP has rotated the
   * refresh token. openid-client checks them first, so what it would have checked after them is
   * checked here (the signature, iss, aud, azp, sub): RefreshOutOfTime when they hold (the answer
   * is the IdP's, and its refresh token is to be kept); UntrustedRefresh when one fails;
   * Unavailable for a key set not had in time, as for any refreshed ID token.
   */
  async #outOfTime(config: oidc.Configuration, answer: Response | undefined, err: oidc.ClientError, verifyBy: number | undefined): Promise<Error> {
    const { idToken, refreshToken } = await tokensOf(answer);
    if (idToken === undefined) return err; // not an ID token's timestamps: nothing to read them from
    try {
      return new RefreshOutOfTime(refreshToken, await this.#subOfRefused(config, idToken, verifyBy), err);
    } catch (e) {
      return e instanceof Unavailable ? e : new UntrustedRefresh(refreshToken, e);
    }
  }

  /**
   * What to reject a refresh with whose 200 answer openid-client refused for its shape (`err`: no
   * access_token, an unknown token_type...): MalformedRefresh when it carries a refresh token and
   * its ID token, if any, holds (the signature, iss, aud, azp, sub); `err` when it carries none, or
   * an ID token that fails (nothing of such an answer is kept, as before); Unavailable for a key set
   * not had in time.
   */
  async #malformed(config: oidc.Configuration, answer: Response, err: oidc.ClientError, verifyBy: number | undefined): Promise<Error> {
    const { idToken, refreshToken } = await tokensOf(answer);
    if (refreshToken === undefined) return err;
    try {
      return new MalformedRefresh(refreshToken, idToken === undefined ? undefined : await this.#subOfRefused(config, idToken, verifyBy), err);
    } catch (e) {
      return e instanceof Unavailable ? e : err;
    }
  }

  /** The sub of a refused answer's ID token once its signature, iss, aud and azp hold; throws otherwise. */
  async #subOfRefused(config: oidc.Configuration, idToken: string, verifyBy: number | undefined): Promise<string> {
    await this.verifyIdToken(idToken, verifyBy);
    return subOfOutOfTime(idToken, { issuer: config.serverMetadata().issuer, clientId: this.idp.clientId });
  }

  /** RFC 7009 revocation when the IdP advertises it; returns whether it was attempted and accepted. */
  async revoke(refreshToken: string): Promise<boolean> {
    const config = await this.configuration();
    if (!config.serverMetadata().revocation_endpoint) return false;
    await oidc.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' });
    return true;
  }

  /**
   * RP-initiated logout URL, or undefined when the IdP has no end_session_endpoint. With the ID
   * token as id_token_hint, unless that makes the URL longer than MAX_END_SESSION_URL: a large ID
   * token (many groups or claims) would make a request line the IdP refuses (servers and proxies
   * cap it at 4 to 8 KiB), leaving the user on its error page. client_id names the client
   * instead (RP-Initiated Logout 1.0, section 2); the IdP may then ask the user to confirm.
   */
  async endSessionUrl(idToken: string | undefined, postLogoutRedirectUri: string): Promise<string | undefined> {
    const config = await this.configuration();
    if (!config.serverMetadata().end_session_endpoint) return undefined;
    const build = (hint: Record<string, string>) => oidc.buildEndSessionUrl(config, { post_logout_redirect_uri: postLogoutRedirectUri, ...hint }).href;
    if (idToken) {
      const url = build({ id_token_hint: idToken });
      if (url.length <= MAX_END_SESSION_URL) return url;
      this.#log.info({ idp: this.name, idTokenBytes: idToken.length }, 'the ID token is too large for the end-session URL: client_id is sent instead of id_token_hint (the IdP may ask the user to confirm the logout)');
    }
    return build({ client_id: this.idp.clientId });
  }

  async #dpop(config: oidc.Configuration, jwk: DpopJwk | undefined): Promise<oidc.DPoPOptions | undefined> {
    if (!jwk) return undefined;
    return { DPoP: oidc.getDPoPHandle(config, await dpopKeyPair(jwk)) };
  }

  async #idpCall<T>(what: string, fn: () => Promise<T>, refused: (err: unknown) => boolean = refusedByChallenge): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      // The IdP's own error answers stay (the caller tells the user); an IdP that times out or
      // answers a non-OAuth page (a proxy's 502, an HTML error) is unavailable, as at the token endpoint.
      if (err instanceof oidc.ResponseBodyError || refused(err)) throw err;
      if (err instanceof oidc.ClientError && err.code !== undefined && !OUTAGE_CODES.has(err.code)) throw err;
      throw new Unavailable(`the IdP "${this.name}" did not answer the ${what} request`, { cause: err });
    }
  }
}
