// `goldpath dev-idp` from the command line: registers, for every IdP of idps.yaml whose issuer is
// this dev IdP, a client with the same id, secret and authentication method, so the BFF and the
// dev IdP agree without a second config file.
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { X509Certificate } from 'node:crypto';
import type { JWK } from 'jose';
import { callbackPath } from '../bff/callback-path.ts';
import type { IdpConfig } from '../config/types.ts';
import { createLogger, type Logger } from '../log.ts';
import { devIdpClientFor, startDevIdp, type DevIdp, type DevIdpAudience, type DevIdpClient } from './idp.ts';
import { devIdpSettings, type DevIdpSettings } from './idp-env.ts';

export { DEFAULT_DEV_IDP_PORT } from './idp-env.ts';

export interface RunningDevIdp extends DevIdp {
  /** What SIGHUP does to it: one log line saying it changes nothing (the CLI calls it for one sent while starting). */
  sighup(): void;
}

/** `goldpath dev-idp`: starts the dev IdP from the environment and stops it on SIGTERM/SIGINT. */
export async function runDevIdp(opts: { env: Record<string, string | undefined>; log?: Logger }): Promise<RunningDevIdp> {
  const settings = await devIdpSettings(opts.env);
  const log = opts.log ?? createLogger({ level: settings.logLevel, name: 'dev-idp' });
  const idp = await start(settings, log);
  const stop = () => void idp.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // verify, bff and demo reload on SIGHUP, so scripts send it to every goldpath process; without a
  // handler it would end this one. Its clients are registered once, in oidc-provider's static
  // configuration: a reload would be a restart (which would also forget every sign-in), so say so.
  const sighup = () => log.warn('SIGHUP ignored: the dev IdP reads idps.yaml only when it starts; restart it to apply changes');
  process.on('SIGHUP', sighup);
  return { ...idp, sighup };
}

/**
 * The dev IdP for the IdPs of idps.yaml (GOLDPATH_CONFIG_DIR) whose issuer is GOLDPATH_IDP_ISSUER
 * (default http://localhost:<PORT>), with clients for GOLDPATH_PUBLIC_URL. No signal handlers.
 * Throws ConfigError naming every variable and file that is wrong.
 */
export async function startDevIdpFromConfig(opts: { env: Record<string, string | undefined>; log?: Logger }): Promise<DevIdp> {
  const settings = await devIdpSettings(opts.env);
  return start(settings, opts.log ?? createLogger({ level: settings.logLevel, name: 'dev-idp' }));
}

function start(s: DevIdpSettings, log: Logger): Promise<DevIdp> {
  const audiences: Record<string, DevIdpAudience> = {};
  for (const idp of s.idps) {
    for (const a of Object.values(idp.audiences)) {
      audiences[a.resource] = { scopes: [...new Set([...(audiences[a.resource]?.scopes ?? []), ...a.scopes])] };
    }
  }
  return startDevIdp({
    port: s.port, host: s.host, issuer: s.issuer, log, tls: s.tls, audiences,
    clients: s.idps.map((i) => clientFor(i, s.origin, s.backchannelOrigin, s.config.idps.default)),
    dangerouslyAllowInsecureHttp: s.issuer.startsWith('http:'),
    trustProxy: new URL(s.issuer).port !== String(s.port),
  });
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
