// A deliberately misbehaving OpenID Provider for tests: node:http + jose, just enough of OIDC for
// the BFF's code flow (discovery, JWKS, authorize, token). The authorize endpoint signs the user
// in at once and redirects back; the token endpoint answers with an ID token that is broken in the
// way `fault` says, so tests can check the relying party refuses it. Never use outside tests.
//
//   const op = await startFakeIdp({ clientId: 'goldpath', clientSecret, redirectUri });
//   op.fault = 'wrong-nonce';          // the next token response carries a bad ID token
//   await op.rotateKey();              // new signing key and kid; the JWKS publishes only the new key
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { SignJWT, exportJWK, generateKeyPair, calculateJwkThumbprint, type JWK } from 'jose';
import { closeServer } from './close-server.ts';

export type IdTokenFault =
  | 'none'            // a correct ID token
  | 'bad-signature'   // right kid and alg, signed by another key
  | 'wrong-iss'
  | 'wrong-aud'
  | 'no-nonce'
  | 'wrong-nonce'
  | 'expired'         // exp an hour ago
  | 'alg-none'        // unsecured JWS (RFC 7519 section 6)
  | 'hs256-secret'    // HS256, keyed with the client secret
  | 'unknown-kid'     // signed by a key the JWKS never publishes
  | 'no-id-token'     // the token response has no id_token at all
  | 'empty-sub'       // sub is the empty string (a string, so the claim type checks pass)
  | 'lone-surrogate-sub'  // sub holds a lone UTF-16 surrogate ("\ud800" in the JSON: valid JSON, not valid text)
  | 'lone-surrogate-sid'
  | 'empty-sid'       // sid is the empty string: no IdP session to index (back-channel logout refuses an empty sid)
  | 'non-ascii-access-token'  // an access token a header cannot carry (RFC 6749 A.12: printable ASCII)
  | 'spaced-access-token';  // one with a space (VSCHAR, but no Bearer or DPoP credential holds one)

export interface FakeIdpOptions {
  clientId: string;
  clientSecret: string;
  /** The only redirect URI accepted (exact match). */
  redirectUri: string;
  /** Advertised id_token_signing_alg_values_supported (a misbehaving IdP may list HS256 or none). */
  advertisedAlgs?: string[];
  /** Advertise authorization_response_iss_parameter_supported and send iss (default true). */
  issParameter?: boolean;
  /** The ID token signing algorithm (default RS256); advertised unless advertisedAlgs says otherwise. */
  alg?: 'RS256' | 'PS256' | 'ES256';
  /** Other keys the JWKS publishes beside the signing key (other kids, as IdPs publish during rotation). */
  decoyKeys?: number;
  /** Members merged into the discovery document (an undefined value removes the member; `$ISSUER` in a string is the issuer). */
  discovery?: Record<string, unknown>;
  /** Serve a userinfo endpoint (advertised): plain JSON, or a signed JWT (application/jwt). */
  userinfo?: 'json' | 'jwt';
}

/** One token endpoint answer being made (`grant`: which grant it answers), for a test to edit. */
export type TokenEdit = (body: Record<string, unknown>, grant: 'authorization_code' | 'refresh_token') => void;

export interface FakeIdp {
  readonly issuer: string;
  /** How the next ID tokens are broken (default 'none'). */
  fault: IdTokenFault;
  /** The token endpoint answers this HTTP status with an HTML body instead (e.g. 500). */
  tokenEndpointStatus: number | undefined;
  /** The JWKS endpoint answers this HTTP status with an HTML body instead. */
  jwksStatus: number | undefined;
  /** Refresh grants are answered with this HTTP status and an HTML body (a proxy's 502 page). */
  refreshStatus: number | undefined;
  /** Claims merged into the next ID tokens (an undefined value removes the claim). */
  claims: Record<string, unknown>;
  /** A userinfo JWT is signed by a key the JWKS does not publish (under the published kid). */
  forgeUserinfo: boolean;
  /** Claims the userinfo endpoint answers with (beside sub). */
  userinfoClaims: Record<string, unknown>;
  /** Edits each token endpoint answer before it is sent. */
  editToken: TokenEdit | undefined;
  /** The form of the last refresh grant received. */
  lastRefresh: URLSearchParams | undefined;
  /** Refresh tokens revoked at /revoke. */
  readonly revoked: string[];
  /** kid of the key that signs now. */
  readonly kid: string;
  /** Requests per path (e.g. '/jwks', '/token'). */
  readonly hits: Record<string, number>;
  /** A new signing key (new kid); the JWKS then publishes only it. */
  rotateKey(): Promise<void>;
  close(): Promise<void>;
}

interface Grant {
  nonce: string | undefined;
  challenge: string;
  redirectUri: string;
  used: boolean;
}

async function signingKey(alg = 'RS256'): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const pub = await exportJWK(publicKey);
  return { privateKey, jwk: { ...pub, alg, use: 'sig', kid: await calculateJwkThumbprint(pub) } };
}

const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

export async function startFakeIdp(opts: FakeIdpOptions): Promise<FakeIdp> {
  const alg = opts.alg ?? 'RS256';
  let key = await signingKey(alg);
  const forger = await signingKey(alg);
  const decoys = await Promise.all(Array.from({ length: opts.decoyKeys ?? 0 }, () => signingKey(alg)));
  const grants = new Map<string, Grant>();
  /** Refresh tokens issued and not revoked: each names the nonce-less grant it refreshes. */
  const refreshTokens = new Set<string>();
  const hits: Record<string, number> = {};
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issParameter = opts.issParameter ?? true;

  const op: FakeIdp = {
    issuer,
    fault: 'none',
    tokenEndpointStatus: undefined,
    jwksStatus: undefined,
    refreshStatus: undefined,
    claims: {},
    userinfoClaims: {},
    forgeUserinfo: false,
    editToken: undefined,
    lastRefresh: undefined,
    revoked: [],
    get kid() { return key.jwk.kid!; },
    hits,
    async rotateKey() { key = await signingKey(alg); },
    close: () => closeServer(server),
  };

  function json(res: ServerResponse, status: number, body: unknown): void {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.setHeader('cache-control', 'no-store');
    res.end(JSON.stringify(body));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', issuer);
    hits[url.pathname] = (hits[url.pathname] ?? 0) + 1;
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /.well-known/openid-configuration':
        return json(res, 200, withMembers({
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: opts.advertisedAlgs ?? [alg],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['client_secret_basic'],
          authorization_response_iss_parameter_supported: issParameter,
          revocation_endpoint: `${issuer}/revoke`,
          ...(opts.userinfo ? { userinfo_endpoint: `${issuer}/userinfo` } : {}),
          ...(opts.userinfo === 'jwt' ? { userinfo_signing_alg_values_supported: [alg] } : {}),
        }, Object.fromEntries(Object.entries(opts.discovery ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v.replace('$ISSUER', issuer) : v]))));
      case 'GET /jwks':
        if (op.jwksStatus !== undefined) {
          res.statusCode = op.jwksStatus;
          res.setHeader('content-type', 'text/html');
          res.end('<h1>down</h1>');
          return;
        }
        return json(res, 200, { keys: [...decoys.map((d) => d.jwk), key.jwk] });
      case 'GET /authorize':
        return authorize(url, res);
      case 'POST /token':
        return token(req, res);
      case 'POST /revoke':
        return revoke(req, res);
      case 'GET /userinfo':
        return userinfo(req, res);
      default:
        return json(res, 404, { error: 'not_found' });
    }
  }

  function authorize(url: URL, res: ServerResponse): void {
    const q = url.searchParams;
    if (q.get('client_id') !== opts.clientId || q.get('redirect_uri') !== opts.redirectUri
      || q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) {
      return json(res, 400, { error: 'invalid_request' });
    }
    const code = randomBytes(16).toString('base64url');
    grants.set(code, { nonce: q.get('nonce') ?? undefined, challenge: q.get('code_challenge')!, redirectUri: opts.redirectUri, used: false });
    const back = new URL(opts.redirectUri);
    back.searchParams.set('code', code);
    if (q.get('state') !== null) back.searchParams.set('state', q.get('state')!);
    if (issParameter) back.searchParams.set('iss', issuer);
    res.statusCode = 302;
    res.setHeader('location', back.href);
    res.end();
  }

  /** The form of a client-authenticated POST, or undefined (answered 401) when the client is not ours. */
  async function clientForm(req: IncomingMessage, res: ServerResponse): Promise<URLSearchParams | undefined> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [id, secret] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(':').map(decodeURIComponent) : [];
    if (id !== opts.clientId || secret !== opts.clientSecret) {
      json(res, 401, { error: 'invalid_client' });
      return undefined;
    }
    return form;
  }

  function html(res: ServerResponse, status: number): void {
    res.statusCode = status;
    res.setHeader('content-type', 'text/html');
    res.end(`<html><body><h1>${status} Bad Gateway</h1><hr><center>nginx</center></body></html>`);
  }

  async function revoke(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await clientForm(req, res);
    if (!form) return;
    const t = form.get('token') ?? '';
    if (refreshTokens.delete(t)) op.revoked.push(t);
    res.statusCode = 200;
    res.end();
  }

  async function userinfo(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!/^Bearer \S+$/i.test(req.headers.authorization ?? '')) return json(res, 401, { error: 'invalid_token' });
    const claims = { sub: 'mallory', ...op.userinfoClaims };
    if (opts.userinfo !== 'jwt') return json(res, 200, claims);
    res.statusCode = 200;
    res.setHeader('content-type', 'application/jwt');
    res.end(await new SignJWT({ ...claims, iss: issuer, aud: opts.clientId }).setProtectedHeader({ alg, kid: key.jwk.kid! }).sign((op.forgeUserinfo ? forger : key).privateKey));
  }

  async function refresh(form: URLSearchParams, res: ServerResponse): Promise<void> {
    op.lastRefresh = form;
    const rt = form.get('refresh_token') ?? '';
    if (!refreshTokens.has(rt)) return json(res, 400, { error: 'invalid_grant' });
    if (op.refreshStatus !== undefined) return html(res, op.refreshStatus);
    // Rotation: the old one is spent, unless the answer (edited) leaves the refresh token out.
    const body: Record<string, unknown> = {
      access_token: randomBytes(24).toString('base64url'), token_type: 'Bearer', expires_in: 300,
      scope: form.get('scope') ?? 'openid profile email', refresh_token: randomBytes(24).toString('base64url'),
      id_token: await idToken('none', undefined),
    };
    op.editToken?.(body, 'refresh_token');
    if (typeof body['refresh_token'] === 'string') {
      refreshTokens.delete(rt);
      refreshTokens.add(body['refresh_token']);
    }
    return json(res, 200, body);
  }

  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await clientForm(req, res);
    if (!form) return;
    if (form.get('grant_type') === 'refresh_token') return refresh(form, res);
    const grant = grants.get(form.get('code') ?? '');
    const verifier = form.get('code_verifier') ?? '';
    if (form.get('grant_type') !== 'authorization_code' || !grant || grant.used || grant.redirectUri !== form.get('redirect_uri')
      || createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) {
      return json(res, 400, { error: 'invalid_grant' });
    }
    grant.used = true;
    if (op.tokenEndpointStatus !== undefined) {
      res.statusCode = op.tokenEndpointStatus;
      res.setHeader('content-type', 'text/html');
      res.end('<h1>oops</h1>');
      return;
    }
    const body: Record<string, unknown> = {
      access_token: randomBytes(24).toString('base64url') + (op.fault === 'non-ascii-access-token' ? '\u00e9' : op.fault === 'spaced-access-token' ? ' x' : ''),
      token_type: 'Bearer', expires_in: 300, scope: 'openid profile email',
      refresh_token: randomBytes(24).toString('base64url'),
    };
    refreshTokens.add(body['refresh_token'] as string);
    if (op.fault !== 'no-id-token') body['id_token'] = await idToken(op.fault, grant.nonce);
    op.editToken?.(body, 'authorization_code');
    return json(res, 200, body);
  }

  async function idToken(fault: IdTokenFault, nonce: string | undefined): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: issuer, sub: 'mallory', aud: opts.clientId, iat: now, exp: now + 300, nonce,
      name: 'Mallory', email: 'mallory@example.test', roles: ['reader'],
    };
    Object.assign(claims, op.claims);
    for (const [k, v] of Object.entries(op.claims)) if (v === undefined) delete claims[k];
    if (fault === 'wrong-iss') claims['iss'] = 'https://evil.example';
    if (fault === 'wrong-aud') claims['aud'] = 'someone-else';
    if (fault === 'no-nonce') delete claims['nonce'];
    if (fault === 'empty-sub') claims['sub'] = '';
    if (fault === 'lone-surrogate-sub') claims['sub'] = 'user-\ud800';
    if (fault === 'lone-surrogate-sid') claims['sid'] = 'sid-\udc00';
    if (fault === 'empty-sid') claims['sid'] = '';
    if (fault === 'wrong-nonce') claims['nonce'] = 'attacker-nonce';
    if (fault === 'expired') {
      claims['iat'] = now - 7200;
      claims['exp'] = now - 3600;
    }
    if (fault === 'alg-none') return `${b64u({ alg: 'none', typ: 'JWT' })}.${b64u(claims)}.`;
    if (fault === 'hs256-secret') {
      return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(opts.clientSecret));
    }
    const signer = fault === 'bad-signature' || fault === 'unknown-kid' ? forger : key;
    const kid = fault === 'unknown-kid' ? forger.jwk.kid! : key.jwk.kid!;
    return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT', kid }).sign(signer.privateKey);
  }

  return op;
}

/** `base` with `members` merged in, an undefined member removing the key. */
function withMembers(base: Record<string, unknown>, members: Record<string, unknown> = {}): Record<string, unknown> {
  const out = { ...base, ...members };
  for (const [k, v] of Object.entries(members)) if (v === undefined) delete out[k];
  return out;
}
