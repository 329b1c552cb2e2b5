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
  | 'non-ascii-access-token';  // an access token a header cannot carry (RFC 6749 A.12: printable ASCII)

export interface FakeIdpOptions {
  clientId: string;
  clientSecret: string;
  /** The only redirect URI accepted (exact match). */
  redirectUri: string;
  /** Advertised id_token_signing_alg_values_supported (a misbehaving IdP may list HS256 or none). */
  advertisedAlgs?: string[];
  /** Advertise authorization_response_iss_parameter_supported and send iss (default true). */
  issParameter?: boolean;
}

export interface FakeIdp {
  readonly issuer: string;
  /** How the next ID tokens are broken (default 'none'). */
  fault: IdTokenFault;
  /** The token endpoint answers this HTTP status with an HTML body instead (e.g. 500). */
  tokenEndpointStatus: number | undefined;
  /** The JWKS endpoint answers this HTTP status with an HTML body instead. */
  jwksStatus: number | undefined;
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

async function signingKey(): Promise<{ privateKey: CryptoKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const pub = await exportJWK(publicKey);
  return { privateKey, jwk: { ...pub, alg: 'RS256', use: 'sig', kid: await calculateJwkThumbprint(pub) } };
}

const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

export async function startFakeIdp(opts: FakeIdpOptions): Promise<FakeIdp> {
  let key = await signingKey();
  const forger = await signingKey();
  const grants = new Map<string, Grant>();
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
    get kid() { return key.jwk.kid!; },
    hits,
    async rotateKey() { key = await signingKey(); },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
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
        return json(res, 200, {
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: opts.advertisedAlgs ?? ['RS256'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['client_secret_basic'],
          authorization_response_iss_parameter_supported: issParameter,
        });
      case 'GET /jwks':
        if (op.jwksStatus !== undefined) {
          res.statusCode = op.jwksStatus;
          res.setHeader('content-type', 'text/html');
          res.end('<h1>down</h1>');
          return;
        }
        return json(res, 200, { keys: [key.jwk] });
      case 'GET /authorize':
        return authorize(url, res);
      case 'POST /token':
        return token(req, res);
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

  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [id, secret] = basic ? Buffer.from(basic, 'base64').toString('utf8').split(':').map(decodeURIComponent) : [];
    if (id !== opts.clientId || secret !== opts.clientSecret) return json(res, 401, { error: 'invalid_client' });
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
      access_token: randomBytes(24).toString('base64url') + (op.fault === 'non-ascii-access-token' ? '\u00e9' : ''),
      token_type: 'Bearer', expires_in: 300, scope: 'openid profile email',
    };
    if (op.fault !== 'no-id-token') body['id_token'] = await idToken(op.fault, grant.nonce);
    return json(res, 200, body);
  }

  async function idToken(fault: IdTokenFault, nonce: string | undefined): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: issuer, sub: 'mallory', aud: opts.clientId, iat: now, exp: now + 300, nonce,
      name: 'Mallory', email: 'mallory@example.test', roles: ['reader'],
    };
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
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid }).sign(signer.privateKey);
  }

  return op;
}
