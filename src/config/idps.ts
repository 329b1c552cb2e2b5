// idps.yaml: the OpenID Providers and how goldpath authenticates to each as a client.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AudienceConfig, ClientAuth, IdpConfig, IdpsConfig } from './types.ts';
import { fileProblem, MAX_KEY_FILE_BYTES, resolvedNote } from './files.ts';
import { signingKeyProblem } from './jwk.ts';
import { issuerProblem } from './origin.ts';
import { NAME } from './routes.ts';

/** The longest IdP name: /auth/login?idp= refuses longer ones unread (src/bff/login.ts). */
export const IDP_NAME_MAX = 64;
import { show, type Cursor } from './cursor.ts';

export const CLIENT_AUTHS: readonly ClientAuth[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth'];
export const DEFAULT_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;
const IDP_KEYS = [
  'issuer', 'client_id', 'client_secret', 'client_auth', 'private_key', 'mtls', 'scopes', 'par', 'dpop',
  'audiences', 'claims', 'dangerously_allow_insecure_http', 'dangerously_trust_unverified_email',
];
/** RFC 6749 section 3.3 scope-token. */
const SCOPE = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
const AUDIENCE_NAME = /^[A-Za-z0-9_.-]+$/;
/**
 * A name every JavaScript object already has (constructor, __proto__, toString, ...). IdP and
 * audience names become keys of plain objects (the config, a session's tokens): such a key would
 * read the inherited member where none was set (a "token" that is a function) or replace the
 * object's prototype.
 */
const reserved = (name: string) => Object.prototype.hasOwnProperty.call(Object.prototype, name);
const RESERVED = 'is a name every JavaScript object already has; choose another';

export interface IdpEntry {
  readonly idp: IdpConfig;
  /** Audience names, or undefined when `audiences` had problems (cross-file checks skip it). */
  readonly audienceNames: ReadonlySet<string> | undefined;
}

export interface IdpsResult {
  readonly config: IdpsConfig;
  readonly entries: readonly IdpEntry[];
}

/**
 * The scopes, or undefined on a problem. With `needsOpenid`, lacking openid is reported beside the
 * items' problems (every problem in one round), unless an item could not be read: it might be openid.
 */
function scopeList(c: Cursor, needsOpenid = false): string[] | undefined {
  const items = c.seq('a list of scopes');
  if (!items) return undefined;
  const seen = new Set<string>();
  let ok = true;
  let allRead = true;
  for (const item of items) {
    const s = item.string({ what: 'a scope' });
    if (s === undefined) ok = allRead = false;
    else if (!SCOPE.test(s)) item.problem(`${item.show(s)} is not a single scope token (no spaces or quotes)`), ok = false;
    else if (seen.has(s)) item.problem(`${item.show(s)} is listed twice`), ok = false;
    if (s !== undefined) seen.add(s);
  }
  if (needsOpenid && allRead && !seen.has('openid')) {
    c.problem('must include openid (goldpath signs users in with OpenID Connect)');
    return undefined;
  }
  return ok ? [...seen] : undefined;
}

/** Resolves a key-file path relative to idps.yaml and checks the file is there. */
async function keyFile(c: Cursor, what: string): Promise<string | undefined> {
  const s = c.string({ what });
  if (s === undefined) return undefined;
  const abs = path.resolve(c.y.dir, s);
  // Bounded: each is read whole, at every start and reload (a path to a log file by mistake).
  const why = await fileProblem(abs, MAX_KEY_FILE_BYTES, 'a key or certificate file is a few KiB');
  if (why) {
    c.problem(`${c.show(s)} ${why} ${resolvedNote(abs, (t) => c.safe(t))}`);
    return undefined;
  }
  return abs;
}

/**
 * A private_key_jwt key must be one the BFF can sign with (jwk.ts decides, for both); the problem
 * names the file as written, never any of its content.
 */
async function checkPrivateJwk(c: Cursor, abs: string, written: string): Promise<void> {
  let jwk: unknown;
  try {
    jwk = JSON.parse(await readFile(abs, 'utf8'));
  } catch {
    c.problem(`${c.show(written)} is not a JSON Web Key file (expected a private JWK as JSON)`);
    return;
  }
  const why = jwk !== null && typeof jwk === 'object' && !Array.isArray(jwk)
    ? await signingKeyProblem(jwk as Record<string, unknown>)
    : 'is not an RSA, EC or OKP JSON Web Key';
  if (why) c.problem(`${c.show(written)} ${why}`);
}

/**
 * tls_client_auth's files must hold what they say, and the key must be the certificate's: found
 * here, by `check` and at startup, rather than as a failed TLS handshake at the first login.
 * Never echo any of their content.
 */
async function checkMtlsFiles(m: { cert: Cursor; key: Cursor; ca: Cursor }, files: { cert: string; key: string; ca: string | undefined }): Promise<void> {
  let cert: X509Certificate | undefined;
  let key: KeyObject | undefined;
  try {
    cert = new X509Certificate(await readFile(files.cert));
  } catch {
    m.cert.problem('is not a PEM certificate');
  }
  try {
    key = createPrivateKey(await readFile(files.key));
  } catch {
    m.key.problem('is not a PEM private key (an encrypted key is not supported either)');
  }
  if (cert && key && !cert.checkPrivateKey(key)) m.key.problem('is not the private key of the certificate in mtls.cert');
  if (files.ca !== undefined) {
    const parses = (pem: string) => {
      try {
        new X509Certificate(pem);
        return true;
      } catch {
        return false;
      }
    };
    const blocks = (await readFile(files.ca, 'utf8').catch(() => '')).match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0 || !blocks.every(parses)) m.ca.problem('is not a bundle of PEM certificates');
  }
}

async function validateIdp(name: string, c: Cursor): Promise<IdpEntry | undefined> {
  const f = c.map(IDP_KEYS, 'a map describing the IdP (issuer:, client_id:, ...)');
  if (!f) return undefined;

  let insecure = false;
  const insecureC = f.get('dangerously_allow_insecure_http');
  if (!insecureC.missing) insecure = insecureC.bool() ?? false;

  let issuer = '';
  const issuerC = f.get('issuer');
  if (issuerC.missing) issuerC.required('the IdP issuer URL, e.g. https://idp.example.com');
  else {
    const s = issuerC.string({ what: 'an https URL' });
    if (s !== undefined) {
      const u = URL.canParse(s) ? new URL(s) : undefined;
      const shapeWhy = u ? issuerProblem(s) : undefined;
      if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) issuerC.problem(`is ${issuerC.show(s)}; expected an https URL`);
      else if (u.search || u.hash || s.includes('?') || s.includes('#') || u.username || u.password) {
        issuerC.problem(`is ${issuerC.show(s)}; an issuer has no query, fragment or credentials (OpenID Connect Discovery 1.0)`);
      } else if (shapeWhy) {
        issuerC.problem(`is ${issuerC.show(s)}; an issuer ${shapeWhy} (discovery compares it exactly with what the IdP says)`);
      } else if (/[{}]/.test(s) || multiTenant(u)) {
        // A template's, or a multi-tenant endpoint's, ID tokens carry each tenant's own issuer:
        // one issuer cannot check them, and any issuer would let in every tenant's users.
        issuerC.problem(`is ${issuerC.show(s)}, a multi-tenant endpoint or issuer template; goldpath checks ID tokens against one issuer: ` +
          'write your tenant\'s, e.g. https://login.microsoftonline.com/<tenant-id>/v2.0 (Entra ID)');
      } else if (u.protocol === 'http:' && !insecure) {
        issuerC.problem(`is ${issuerC.show(s)}, plain http: codes, tokens and the client secret would cross the network unencrypted. ` +
          'Use https, or, for a local development IdP only, set dangerously_allow_insecure_http: true on this IdP');
      } else issuer = s;
    }
  }

  let clientId = '';
  const idC = f.get('client_id');
  if (idC.missing) idC.required('the client id registered at the IdP');
  else clientId = idC.string({ allowNumber: true }) ?? '';

  let clientAuth: ClientAuth = 'client_secret_basic';
  // Which credentials are required depends on client_auth; when it is invalid, check none.
  let authKnown = true;
  const authC = f.get('client_auth');
  if (!authC.missing) {
    const s = authC.string();
    if (s !== undefined && (CLIENT_AUTHS as readonly string[]).includes(s)) clientAuth = s as ClientAuth;
    else {
      authKnown = false;
      if (s !== undefined) authC.problem(`is ${authC.show(s)}; expected one of ${CLIENT_AUTHS.join(', ')}`);
    }
  }
  // The method as written (it may come from the environment); the default when none is.
  const authShown = authC.missing ? clientAuth : authC.safe(clientAuth);
  const usedWith = `client_auth: ${authShown}`;

  // Client credentials: required for their own method, refused for the others so that a
  // leftover secret or key never looks like it is in use.
  let clientSecret: string | undefined;
  const secretC = f.get('client_secret');
  const wantsSecret = clientAuth === 'client_secret_basic' || clientAuth === 'client_secret_post';
  if (authKnown && wantsSecret && secretC.missing) secretC.required(`the client secret (${usedWith}); e.g. \${GOLDPATH_CLIENT_SECRET}`);
  else if (authKnown && !wantsSecret && !secretC.missing) secretC.problem(`is not used with ${usedWith}; remove it`);
  else if (!secretC.missing) clientSecret = secretC.string({ what: 'the client secret' });
  if (clientSecret !== undefined && secretC.cutByComment) {
    secretC.warn('has a comment after it on its line: YAML ends an unquoted value at " #", so if the # and what follows ' +
      'are part of the secret, they were left out; quote it (\'...\') or keep it in the environment');
  }

  let privateKey: string | undefined;
  const keyC = f.get('private_key');
  if (authKnown && clientAuth === 'private_key_jwt' && keyC.missing) keyC.required(`a private JWK file relative to idps.yaml (${usedWith})`);
  else if (authKnown && clientAuth !== 'private_key_jwt' && !keyC.missing) keyC.problem(`is only used with client_auth: private_key_jwt, not ${authShown}; remove it`);
  else if (!keyC.missing) {
    privateKey = await keyFile(keyC, 'a path to a private JWK file');
    if (privateKey) await checkPrivateJwk(keyC, privateKey, keyC.string()!);
  }

  let mtls: IdpConfig['mtls'];
  const mtlsC = f.get('mtls');
  if (authKnown && clientAuth === 'tls_client_auth' && mtlsC.missing) mtlsC.required(`{ cert, key, ca } files relative to idps.yaml (${usedWith})`);
  else if (authKnown && clientAuth !== 'tls_client_auth' && !mtlsC.missing) mtlsC.problem(`is only used with client_auth: tls_client_auth, not ${authShown}; remove it`);
  else if (!mtlsC.missing) {
    const m = mtlsC.map(['cert', 'key', 'ca'], 'a map with cert:, key: and optionally ca:');
    if (m) {
      const certC = m.get('cert');
      const mkeyC = m.get('key');
      const caC = m.get('ca');
      const cert = certC.missing ? (certC.required('the client certificate (PEM) file'), undefined) : await keyFile(certC, 'a path to a PEM certificate');
      const key = mkeyC.missing ? (mkeyC.required('the client private key (PEM) file'), undefined) : await keyFile(mkeyC, 'a path to a PEM private key');
      const ca = caC.missing ? undefined : await keyFile(caC, 'a path to a PEM CA bundle');
      if (cert && key) {
        mtls = { cert, key, ca };
        await checkMtlsFiles({ cert: certC, key: mkeyC, ca: caC }, mtls);
      }
    }
  }

  let scopes: string[] = [...DEFAULT_SCOPES];
  const scopesC = f.get('scopes');
  if (!scopesC.missing) {
    const s = scopeList(scopesC, true);
    if (s) scopes = s;
  }

  let par: IdpConfig['par'] = 'auto';
  const parC = f.get('par');
  if (!parC.missing) {
    const s = parC.string({ what: 'auto, always or never' });
    if (s === 'auto' || s === 'always' || s === 'never') par = s;
    else if (s !== undefined) parC.problem(`is ${parC.show(s)}; expected auto (use PAR when the IdP offers it), always or never`);
  }

  let dpop = false;
  const dpopC = f.get('dpop');
  if (!dpopC.missing) dpop = dpopC.bool() ?? false;

  const audiences: Record<string, AudienceConfig> = {};
  let audienceNames: Set<string> | undefined = new Set();
  const audC = f.get('audiences');
  if (!audC.missing) {
    const list = audC.entries('a map of audience name to { resource, scopes }');
    if (!list) audienceNames = undefined;
    for (const a of list ?? []) {
      let ok = true;
      if (!AUDIENCE_NAME.test(a.key)) {
        a.value.problem(`audience name ${show(a.key)} may contain only A-Z a-z 0-9 _ . -`, a.keyLine);
        ok = false;
      } else if (reserved(a.key)) {
        a.value.problem(`audience name ${show(a.key)} ${RESERVED}`, a.keyLine);
        ok = false;
      }
      const af = a.value.map(['resource', 'scopes'], 'a map with resource: and scopes:');
      let resource = '';
      let aScopes: string[] = [];
      if (!af) ok = false;
      else {
        const rC = af.get('resource');
        if (rC.missing) rC.required('the RFC 8707 resource indicator, an absolute URL'), ok = false;
        else {
          const s = rC.string({ what: 'an absolute URL' });
          if (s === undefined) ok = false;
          else if (!URL.canParse(s) || s.includes('#')) rC.problem(`is ${rC.show(s)}; expected an absolute URL without fragment (RFC 8707)`), ok = false;
          else resource = s;
        }
        const sC = af.get('scopes');
        if (!sC.missing) {
          const s = scopeList(sC);
          if (s) aScopes = s;
          else ok = false;
        }
      }
      if (ok) audiences[a.key] = { resource, scopes: aScopes };
      if (!ok) audienceNames = undefined;
      else audienceNames?.add(a.key);
    }
  }

  // By design, an audience's token comes from the refresh token (a login gets the login token
  // only: oidc/token-provider.ts), and most IdPs issue refresh tokens for offline_access only. A
  // warning, not a problem: some issue them without it (Keycloak, where offline_access asks for
  // an offline token with other lifetimes), and a config that works there must keep working.
  if (!scopesC.missing && !scopes.includes('offline_access') && Object.keys(audiences).length > 0) {
    scopesC.warn('lacks offline_access, which audiences need unless the IdP issues refresh tokens without it: their tokens are ' +
      'obtained with the refresh token, so without one every route with an audience answers 503; add offline_access (or remove audiences)');
  }

  const claims = { roles: 'roles', groups: 'groups' };
  const claimsC = f.get('claims');
  if (!claimsC.missing) {
    const cf = claimsC.map(['roles', 'groups'], 'a map with roles: and groups:');
    for (const k of ['roles', 'groups'] as const) {
      const cc = cf?.get(k);
      if (!cc || cc.missing) continue;
      const s = cc.string({ what: 'a dotted claim path such as realm_access.roles' });
      if (s === undefined) continue;
      if (s.split('.').some((part) => part.trim() === '')) cc.problem(`is ${cc.show(s)}; expected a dotted claim path such as realm_access.roles`);
      else claims[k] = s;
    }
  }

  let trustEmail = false;
  const trustEmailC = f.get('dangerously_trust_unverified_email');
  if (!trustEmailC.missing) trustEmail = trustEmailC.bool() ?? false;

  const idp: IdpConfig = {
    name, issuer, clientId, clientSecret, clientAuth, privateKey, mtls, scopes, par, dpop, audiences, claims,
    dangerouslyAllowInsecureHttp: insecure, dangerouslyTrustUnverifiedEmail: trustEmail,
  };
  return { idp, audienceNames };
}

export async function validateIdps(root: Cursor): Promise<IdpsResult> {
  const entries: IdpEntry[] = [];
  const idps: Record<string, IdpConfig> = {};
  let def = '';
  const top = root.map(['default', 'idps'], 'a map with default: and idps:');
  if (!top) return { config: { default: def, idps }, entries };

  const listC = top.get('idps');
  const list = listC.missing ? (listC.required('a map of IdP name to its settings'), undefined) : listC.entries('a map of IdP name to its settings');
  if (list && list.length === 0) listC.problem('must define at least one IdP');
  for (const e of list ?? []) {
    if (!NAME.test(e.key)) e.value.problem(`IdP name ${show(e.key)} may contain only a-z 0-9 _ -`, e.keyLine);
    // /auth/login?idp= takes names of up to IDP_NAME_MAX: a longer one could never be chosen.
    else if (e.key.length > IDP_NAME_MAX) e.value.problem(`IdP name ${show(e.key)} is longer than ${IDP_NAME_MAX} characters`, e.keyLine);
    else if (reserved(e.key)) {
      e.value.problem(`IdP name ${show(e.key)} ${RESERVED}`, e.keyLine);
      continue;
    }
    const entry = await validateIdp(e.key, e.value);
    if (entry) {
      entries.push(entry);
      idps[e.key] = entry.idp;
    }
  }

  const defC = top.get('default');
  if (defC.missing) defC.required('the name of the IdP that /auth/login uses without ?idp=');
  else {
    const s = defC.string();
    if (s !== undefined && list && !list.some((e) => e.key === s)) {
      defC.problem(`is ${defC.show(s)}, which is not an IdP under idps: (have ${list.map((e) => e.key).join(', ') || 'none'})`);
    } else if (s !== undefined) def = s;
  }

  return { config: { default: def, idps }, entries };
}

/** Entra ID's multi-tenant authorities, whose discovery document names the issuer template `{tenantid}`. */
function multiTenant(u: URL): boolean {
  return /^login\.microsoftonline\.(com|us)$|^login\.partner\.microsoftonline\.cn$/i.test(u.hostname)
    && /^\/(common|organizations|consumers)(\/|$)/i.test(u.pathname);
}

/** Whether two spellings name one issuer: trailing slashes aside (Auth0's end in `/`, idps.yaml may not). */
export function sameIssuer(a: string, b: string): boolean {
  return withoutTrailingSlashes(a) === withoutTrailingSlashes(b);
}

/**
 * By hand, not /\/+$/: a back-channel logout token's `iss`, anyone's to send, reaches sameIssuer
 * unverified (registry.ts byIssuer), and that regex backtracks quadratically over a run of slashes
 * not at the end: a 15 KB body of them held the event loop ~65 ms per configured IdP.
 */
function withoutTrailingSlashes(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0x2f) end--;
  return s.slice(0, end);
}
