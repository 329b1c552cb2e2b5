// `goldpath dev-idp` from the command line: registers, for every IdP of idps.yaml whose issuer is
// this dev IdP, a client with the same id, secret and authentication method, so the BFF and the
// dev IdP agree without a second config file.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { X509Certificate } from 'node:crypto';
import type { JWK } from 'jose';
import { callbackPath } from '../bff/callback-path.ts';
import { loadConfig } from '../config/load.ts';
import type { IdpConfig } from '../config/types.ts';
import { createLogger, type Logger } from '../log.ts';
import { devIdpClientFor, startDevIdp, type DevIdp, type DevIdpAudience, type DevIdpClient } from './idp.ts';

export const DEFAULT_DEV_IDP_PORT = 4000;

/** `goldpath dev-idp`: starts the dev IdP from the environment and stops it on SIGTERM/SIGINT. */
export async function runDevIdp(opts: { env: Record<string, string | undefined>; log?: Logger }): Promise<DevIdp> {
  const idp = await startDevIdpFromConfig(opts);
  const stop = () => void idp.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return idp;
}

/**
 * The dev IdP for the IdPs of idps.yaml (GOLDPATH_CONFIG_DIR) whose issuer is GOLDPATH_IDP_ISSUER
 * (default http://localhost:<PORT>), with clients for GOLDPATH_PUBLIC_URL. No signal handlers.
 */
export async function startDevIdpFromConfig(opts: { env: Record<string, string | undefined>; log?: Logger }): Promise<DevIdp> {
  const env = opts.env;
  const log = opts.log ?? createLogger({ level: env['LOG_LEVEL'] || 'info', name: 'dev-idp' });
  const port = env['PORT'] ? Number(env['PORT']) : DEFAULT_DEV_IDP_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('PORT must be an integer from 0 to 65535');
  // Loopback unless HOST says otherwise (compose does): this IdP signs anyone in, admin included.
  const host = env['HOST'] || '127.0.0.1';
  const issuer = env['GOLDPATH_IDP_ISSUER'] || `http://localhost:${port}`;
  const origin = new URL(env['GOLDPATH_PUBLIC_URL'] || 'http://localhost:8080').origin;
  // In compose the IdP container cannot reach the BFF at the browser's origin (localhost is itself):
  // GOLDPATH_DEV_IDP_BACKCHANNEL_URL (e.g. http://bff:3001) is where back-channel logouts go then.
  const backchannelOrigin = env['GOLDPATH_DEV_IDP_BACKCHANNEL_URL'] ? new URL(env['GOLDPATH_DEV_IDP_BACKCHANNEL_URL']).origin : undefined;
  const dir = path.resolve(env['GOLDPATH_CONFIG_DIR'] || 'compose/config');

  const config = await loadConfig(dir, env);
  const mine = Object.values(config.idps.idps).filter((i) => sameIssuer(i.issuer, issuer));
  if (mine.length === 0) {
    throw new Error(`no IdP in ${path.join(dir, 'idps.yaml')} has issuer ${issuer}: nothing to serve (set GOLDPATH_IDP_ISSUER)`);
  }
  const insecure = issuer.startsWith('http:');
  if (insecure && !mine.every((i) => i.dangerouslyAllowInsecureHttp)) {
    throw new Error('the dev IdP issuer is plain http but idps.yaml does not set dangerously_allow_insecure_http: true for it');
  }
  const tls = env['GOLDPATH_DEV_IDP_TLS_CERT'] && env['GOLDPATH_DEV_IDP_TLS_KEY']
    ? {
      cert: readFileSync(env['GOLDPATH_DEV_IDP_TLS_CERT']),
      key: readFileSync(env['GOLDPATH_DEV_IDP_TLS_KEY']),
      ca: env['GOLDPATH_DEV_IDP_TLS_CA'] ? readFileSync(env['GOLDPATH_DEV_IDP_TLS_CA']) : undefined,
    }
    : undefined;

  const audiences: Record<string, DevIdpAudience> = {};
  for (const idp of mine) {
    for (const a of Object.values(idp.audiences)) {
      audiences[a.resource] = { scopes: [...new Set([...(audiences[a.resource]?.scopes ?? []), ...a.scopes])] };
    }
  }
  return startDevIdp({
    port, host, issuer, log, tls, audiences,
    clients: mine.map((i) => clientFor(i, origin, backchannelOrigin, config.idps.default)),
    dangerouslyAllowInsecureHttp: insecure,
    trustProxy: new URL(issuer).port !== String(port),
  });
}

function sameIssuer(a: string, b: string): boolean {
  return a.replace(/\/+$/, '') === b.replace(/\/+$/, '');
}

function clientFor(idp: IdpConfig, origin: string, backchannelOrigin: string | undefined, defaultIdp: string): DevIdpClient {
  const extra: Record<string, unknown> = {};
  if (idp.clientAuth === 'private_key_jwt' && idp.privateKey) {
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, k: _k, ...pub } = JSON.parse(readFileSync(idp.privateKey, 'utf8')) as JWK;
    extra['jwks'] = { keys: [pub] };
  }
  if (idp.clientAuth === 'tls_client_auth' && idp.mtls) {
    extra['tls_client_auth_subject_dn'] = new X509Certificate(readFileSync(idp.mtls.cert)).subject.split('\n').join(',');
  }
  if (idp.dpop) extra['dpop_bound_access_tokens'] = true;
  return devIdpClientFor({
    clientId: idp.clientId,
    clientSecret: idp.clientSecret,
    origin,
    redirectPath: callbackPath(idp.name, defaultIdp),
    backchannelOrigin,
    tokenEndpointAuthMethod: idp.clientAuth,
    extra,
  });
}
