// `goldpath dev-idp`: a development OpenID Provider built on oidc-provider (a certified OP).
// Any user name signs in without a password; `admin` gets roles [admin, reader], everyone else
// [reader]. It supports what the BFF uses: PKCE, PAR (optionally required), DPoP, refresh-token
// rotation, RFC 8707 resource indicators, revocation, introspection, RP-initiated and back-channel
// logout, private_key_jwt and tls_client_auth. Everything is kept in memory. Dev and tests only.
import { createServer as createHttpServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { randomBytes, X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Buffer } from 'node:buffer';
import Provider, { errors as opErrors } from 'oidc-provider';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Logger } from '../log.ts';
import { listenOn } from '../http/serve.ts';
import { logoutPage, messagePage, PAGE_HEADERS } from './idp-pages.ts';
import { interactions } from './idp-interactions.ts';
import { createDevIdpAdapter } from './idp-adapter.ts';

/** oidc-provider client metadata (snake_case, as registered). */
export type DevIdpClient = Record<string, unknown> & { client_id: string };

export interface DevIdpAudience {
  /** Scopes this resource server accepts. */
  readonly scopes: readonly string[];
}

export interface DevIdpOptions {
  /** 0 = any free port. Default 4000. */
  port?: number;
  /** Interface to bind. Default 127.0.0.1. */
  host?: string;
  /** Issuer identifier. Default `<scheme>://<host>:<port>` (0.0.0.0/127.0.0.1 shown as localhost only if you pass it). */
  issuer?: string;
  clients: DevIdpClient[];
  log: Logger;
  /** HTTPS server (PEM). With `ca`, client certificates are requested (tls_client_auth), not required. */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer };
  /** Plain http. Dev-only and logged loudly; required when `tls` is not given. */
  dangerouslyAllowInsecureHttp?: boolean;
  /** Access token lifetime in seconds (default 300). Tests use a few seconds to force refreshes. */
  accessTokenTtl?: number;
  /** Refresh token lifetime in seconds (default 1 day). */
  refreshTokenTtl?: number;
  /** Every authorization request must be pushed (PAR, RFC 9126). */
  requirePar?: boolean;
  /** Require DPoP nonces (RFC 9449 section 8), so clients must handle use_dpop_nonce retries. */
  requireDpopNonce?: boolean;
  /** RFC 8707 resource servers: resource indicator → accepted scopes. */
  audiences?: Record<string, DevIdpAudience>;
  /** Private signing JWKs, first one signs (include an RS256 key). Default: one fresh RS256 key. */
  keys?: JWK[];
  /** Trust X-Forwarded-* (the IdP runs behind a proxy such as Traefik under another origin). */
  trustProxy?: boolean;
  /** Skip the consent page (the login helper handles both). Default false. */
  autoConsent?: boolean;
  /** Claims of a user over devUserClaims' (tests: a profile of any size or shape). */
  extraClaims?: (user: string) => Record<string, unknown> | undefined;
  /** Tests: edits the oidc-provider configuration before the provider is made (an IdP set up otherwise). */
  configure?: (config: Record<string, any>) => void;
}

export interface DevIdp {
  readonly issuer: string;
  /** Base URL the server listens on (same as issuer unless you passed a different issuer). */
  readonly url: string;
  readonly provider: Provider;
  close(): Promise<void>;
}

/** Roles and groups of a dev user. */
export function devUserClaims(user: string): Record<string, unknown> {
  const admin = user === 'admin';
  return {
    sub: user,
    name: user.charAt(0).toUpperCase() + user.slice(1),
    preferred_username: user,
    email: user.includes('@') ? user : `${user}@example.test`, // an e-mail address is its own
    email_verified: true,
    roles: admin ? ['admin', 'reader'] : ['reader'],
    groups: admin ? ['admins', 'users'] : ['users'],
  };
}

/** A fresh private RS256 signing JWK with kid. */
export async function generateSigningKey(alg: 'RS256' | 'ES256' = 'RS256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg, use: 'sig', kid: await calculateJwkThumbprint(jwk) };
}

/**
 * Client metadata for the goldpath BFF at `origin` (redirect, post-logout and back-channel URIs).
 * Pass `tokenEndpointAuthMethod` extras (jwks for private_key_jwt, tls_client_auth_subject_dn).
 */
export function devIdpClientFor(opts: {
  clientId: string;
  clientSecret?: string;
  origin: string;
  /** The path of the redirect URI at `origin` (src/bff/callback-path.ts). Default /auth/callback. */
  redirectPath?: string;
  /** Where the IdP itself reaches the BFF, when that differs from the browser's origin (compose). */
  backchannelOrigin?: string;
  tokenEndpointAuthMethod?: string;
  extra?: Record<string, unknown>;
}): DevIdpClient {
  return {
    client_id: opts.clientId,
    ...(opts.clientSecret ? { client_secret: opts.clientSecret } : {}),
    redirect_uris: [`${opts.origin}${opts.redirectPath ?? '/auth/callback'}`],
    post_logout_redirect_uris: [`${opts.origin}/`],
    backchannel_logout_uri: `${opts.backchannelOrigin ?? opts.origin}/auth/backchannel-logout`,
    backchannel_logout_session_required: true,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: opts.tokenEndpointAuthMethod ?? 'client_secret_basic',
    ...opts.extra,
  };
}

export async function startDevIdp(opts: DevIdpOptions): Promise<DevIdp> {
  const { log } = opts;
  if (!opts.tls && !opts.dangerouslyAllowInsecureHttp) {
    throw new Error('dev IdP: pass tls, or dangerouslyAllowInsecureHttp: true for plain http (development only)');
  }
  const scheme = opts.tls ? 'https' : 'http';
  const host = opts.host ?? '127.0.0.1';

  // The issuer (and so the provider) is only known once the port is, so requests are routed
  // through a late-bound handler.
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (handler) handler(req, res);
    else {
      res.statusCode = 503;
      res.end();
    }
  };
  const server: Server = opts.tls
    ? createHttpsServer({
      key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca,
      // Ask for a client certificate (tls_client_auth) but let browsers in without one; the
      // provider decides per client whether a verified certificate is needed.
      requestCert: opts.tls.ca !== undefined, rejectUnauthorized: false,
    }, onRequest)
    : createHttpServer(onRequest);
  await listenOn(server, opts.port ?? 4000, host);
  const { port } = server.address() as AddressInfo;
  const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const issuer = opts.issuer ?? url;

  if (!opts.tls) {
    log.warn({ issuer }, '!!! dev IdP on PLAIN HTTP (dangerouslyAllowInsecureHttp): development only, tokens travel unencrypted !!!');
  }

  const keys = opts.keys ?? [await generateSigningKey()];
  const audiences = opts.audiences ?? {};
  const accessTokenTtl = opts.accessTokenTtl ?? 300;

  const providerConfig: Record<string, any> = {
    clients: opts.clients,
    adapter: createDevIdpAdapter(),
    jwks: { keys },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ ...devUserClaims(sub), ...opts.extraClaims?.(sub) }),
    }),
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username', 'roles', 'groups'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', ...new Set(Object.values(audiences).flatMap((a) => a.scopes))],
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    // A BFF session is online access: refresh tokens are issued to clients allowed the grant,
    // without requiring offline_access + prompt=consent; they rotate on every use.
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'tls_client_auth', 'none'],
    pkce: { required: () => true },
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: opts.refreshTokenTtl ?? 86_400,
      Interaction: 600,
      Session: 86_400,
      Grant: 86_400,
    },
    clientBasedCORS: () => false,
    features: {
      devInteractions: { enabled: false },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: !!opts.requirePar },
      dPoP: opts.requireDpopNonce
        ? { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true }
        : { enabled: true },
      backchannelLogout: { enabled: true },
      // A client may revoke and introspect only its own tokens.
      revocation: { enabled: true, allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) => token.clientId === client.clientId },
      introspection: { enabled: true, allowedPolicy: async (_ctx: unknown, client: { clientId: string }, token: { clientId?: string }) => token.clientId === client.clientId },
      rpInitiatedLogout: {
        enabled: true,
        // The sign-out and error pages get the interaction pages' headers (oidc-provider sets none):
        // framed by another page, its Sign out button could be clicked without the user knowing.
        logoutSource: async (ctx: { host: string; type: string; body: string; set(h: Record<string, string>): void }, form: string) => {
          ctx.set(PAGE_HEADERS);
          ctx.type = 'html';
          ctx.body = logoutPage(form, ctx.host);
        },
        postLogoutSuccessSource: async (ctx: { type: string; body: string; set(h: Record<string, string>): void }) => {
          ctx.set(PAGE_HEADERS);
          ctx.type = 'html';
          ctx.body = messagePage('Signed out', 'You are signed out of the development IdP.');
        },
      },
      resourceIndicators: {
        enabled: true,
        // No `resource` at the token endpoint → the token for userinfo (the login token).
        defaultResource: async () => undefined,
        useGrantedResource: async () => false,
        getResourceServerInfo: async (_ctx: unknown, resource: string) => {
          const aud = audiences[resource];
          if (!aud) throw new opErrors['InvalidTarget']!();
          return {
            scope: aud.scopes.join(' '),
            audience: resource,
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
      mTLS: {
        enabled: true,
        tlsClientAuth: true,
        getCertificate: (ctx: { socket: TLSSocket }) => peerCertificatePem(ctx.socket),
        certificateAuthorized: (ctx: { socket: TLSSocket }) => ctx.socket.authorized === true,
        certificateSubjectMatches: (ctx: { socket: TLSSocket }, property: string, expected: string) => {
          if (property !== 'tls_client_auth_subject_dn') return false;
          const pem = peerCertificatePem(ctx.socket);
          return pem !== undefined && normalizeDn(new X509Certificate(pem).subject) === normalizeDn(expected);
        },
      },
    },
    renderError: async (ctx: { type: string; body: string; set(h: Record<string, string>): void }, out: Record<string, string>) => {
      ctx.set(PAGE_HEADERS);
      ctx.type = 'html';
      ctx.body = messagePage('Sign-in error', `${out['error'] ?? 'error'}: ${out['error_description'] ?? ''}`);
    },
    // The SSRF guard of oidc-provider refuses loopback addresses, but in development the BFF's
    // back-channel logout endpoint *is* on loopback. Dev-only trade-off.
    fetch: (u: string, init: Record<string, unknown>) => {
      delete init['dispatcher'];
      return globalThis.fetch(u, init as RequestInit);
    },
  };
  opts.configure?.(providerConfig);
  const provider = new Provider(issuer, providerConfig);
  if (opts.autoConsent) {
    log.info('dev IdP: consent is granted automatically');
  }
  provider.use(interactions(provider, log, { autoConsent: !!opts.autoConsent }));
  provider.on('server_error', (_ctx: unknown, err: Error) => log.error({ err: { message: err.message, type: err.name } }, 'dev IdP server error'));
  provider.on('backchannel.error', (_ctx: unknown, err: Error, clientId: string) =>
    log.warn({ client: clientId, err: { message: err.message } }, 'dev IdP back-channel logout delivery failed'));
  handler = provider.callback();
  if (opts.trustProxy) provider.proxy = true;

  // Both: behind a proxy (or with ISSUER set) the issuer is not where this process listens.
  log.info({ url, issuer, clients: opts.clients.map((c) => c.client_id) }, 'dev IdP listening');
  return {
    issuer,
    url,
    provider,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections?.();
    }),
  };
}

function peerCertificatePem(socket: TLSSocket): string | undefined {
  const cert = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
  if (!cert || !cert.raw) return undefined;
  const b64 = Buffer.from(cert.raw).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}

function normalizeDn(dn: string): string {
  return dn.split(/[\n,]/).map((p) => p.trim()).filter(Boolean).join(',');
}


export { runDevIdp, startDevIdpFromConfig } from './idp-run.ts';
