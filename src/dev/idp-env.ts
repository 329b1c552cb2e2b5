// What `goldpath dev-idp` reads from the environment and idps.yaml, validated before anything
// starts. The variables it shares with verify and bff follow their rules (loadSettings: PORT=1e4
// is refused there, so here too); its own are named in every message; every problem at once.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Buffer } from 'node:buffer';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { configDirOf, DEFAULT_PUBLIC_URL, envValue, listenHost, loadSettings } from '../config/env.ts';
import { sameIssuer } from '../config/idps.ts';
import { validateConfig } from '../config/load.ts';
import type { GoldpathConfig, IdpConfig } from '../config/types.ts';

export const DEFAULT_DEV_IDP_PORT = 4000;
/** Loopback unless HOST says otherwise (compose does): this IdP signs anyone in, admin included. */
export const DEFAULT_DEV_IDP_HOST = '127.0.0.1';

/** The variables the dev IdP shares with verify and bff; their other ones (session keys…) are not its concern. */
const SHARED = ['GOLDPATH_PUBLIC_URL', 'PORT', 'HOST', 'LOG_LEVEL'];
const TLS_CERT = 'GOLDPATH_DEV_IDP_TLS_CERT';
const TLS_KEY = 'GOLDPATH_DEV_IDP_TLS_KEY';
const TLS_CA = 'GOLDPATH_DEV_IDP_TLS_CA';

export interface DevIdpSettings {
  readonly port: number;
  readonly host: string;
  readonly logLevel: string;
  readonly issuer: string;
  /** GOLDPATH_PUBLIC_URL's origin: where the BFF's redirect URIs are. */
  readonly origin: string;
  /** GOLDPATH_DEV_IDP_BACKCHANNEL_URL's origin (compose: the BFF on the internal network). */
  readonly backchannelOrigin: string | undefined;
  readonly tls: { cert: Buffer; key: Buffer; ca?: Buffer } | undefined;
  /** The IdPs of idps.yaml whose issuer is this dev IdP's. */
  readonly idps: IdpConfig[];
  readonly config: GoldpathConfig;
  readonly configDir: string;
}

/** The shared variables' problems, found by the validator verify and bff use. */
function sharedProblems(env: Record<string, string | undefined>): ConfigProblem[] {
  try {
    loadSettings(env);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.filter((p) => p.file === 'environment' && SHARED.includes(p.key));
  }
}

/** Throws ConfigError listing every problem of the environment and of the config folder. */
export async function devIdpSettings(env: Record<string, string | undefined>): Promise<DevIdpSettings> {
  const problems = sharedProblems(env);
  const bad = (key: string, message: string) => { problems.push({ file: 'environment', key, message }); };

  const portText = envValue(env, 'PORT');
  const port = portText === undefined ? DEFAULT_DEV_IDP_PORT : Number(portText);
  const issuerText = envValue(env, 'GOLDPATH_IDP_ISSUER');
  const issuer = issuerText ?? `http://localhost:${port}`;
  // The default issuer comes from PORT: when PORT is wrong, that is the one problem to report.
  const issuerOk = httpUrl(issuer) && !problems.some((p) => p.key === 'PORT' && issuerText === undefined);
  if (issuerText !== undefined && !issuerOk) {
    bad('GOLDPATH_IDP_ISSUER', `is ${JSON.stringify(issuerText)}; expected an http(s) URL such as http://localhost:4000`);
  }
  const backchannel = envValue(env, 'GOLDPATH_DEV_IDP_BACKCHANNEL_URL');
  if (backchannel !== undefined && !httpUrl(backchannel)) {
    bad('GOLDPATH_DEV_IDP_BACKCHANNEL_URL', 'is not an http(s) URL; expected the BFF\'s origin such as http://bff:3001');
  }
  const tls = readTls(env, bad);
  if (issuerOk && issuer.startsWith('https:') && !tls && !problems.some((p) => p.key.startsWith('GOLDPATH_DEV_IDP_TLS_'))) {
    bad('GOLDPATH_IDP_ISSUER', `is https: set ${TLS_CERT} and ${TLS_KEY} (PEM files) for the dev IdP to serve it`);
  }

  const configDir = configDirOf(env);
  const { config, problems: inFiles } = await validateConfig(configDir, env);
  problems.push(...inFiles);
  const idps = config && issuerOk ? Object.values(config.idps.idps).filter((i) => sameIssuer(i.issuer, issuer)) : [];
  if (config && issuerOk) {
    if (idps.length === 0) {
      const shown = issuerText === undefined ? `is unset, so ${issuer} (from PORT)` : `is ${issuer}`;
      bad('GOLDPATH_IDP_ISSUER', `${shown}, but no IdP in ${path.join(configDir, 'idps.yaml')} has that issuer: nothing to serve`);
    } else if (issuer.startsWith('http:') && !idps.every((i) => i.dangerouslyAllowInsecureHttp)) {
      bad('GOLDPATH_IDP_ISSUER', 'is plain http but idps.yaml does not set dangerously_allow_insecure_http: true for its IdP (or use https)');
    }
  }
  if (problems.length > 0 || !config) throw new ConfigError(problems);

  return {
    port,
    host: listenHost(envValue(env, 'HOST')) ?? DEFAULT_DEV_IDP_HOST,
    logLevel: (envValue(env, 'LOG_LEVEL') ?? 'info').toLowerCase(),
    issuer,
    origin: new URL(envValue(env, 'GOLDPATH_PUBLIC_URL') ?? DEFAULT_PUBLIC_URL).origin,
    backchannelOrigin: backchannel === undefined ? undefined : new URL(backchannel).origin,
    tls,
    idps,
    config,
    configDir,
  };
}

function httpUrl(text: string): boolean {
  return URL.canParse(text) && ['http:', 'https:'].includes(new URL(text).protocol);
}


/** The PEM files of GOLDPATH_DEV_IDP_TLS_*: both cert and key or none; each named if unreadable. */
function readTls(env: Record<string, string | undefined>, bad: (key: string, message: string) => void): DevIdpSettings['tls'] {
  const [cert, key, ca] = [TLS_CERT, TLS_KEY, TLS_CA].map((n) => envValue(env, n));
  if (cert === undefined && key === undefined) {
    if (ca !== undefined) bad(TLS_CA, `is set, but ${TLS_CERT} and ${TLS_KEY} are not: the CA is for the client certificates of an https dev IdP`);
    return undefined;
  }
  if (cert === undefined || key === undefined) {
    bad(cert === undefined ? TLS_CERT : TLS_KEY, `is required with ${cert === undefined ? TLS_KEY : TLS_CERT} (a PEM file)`);
    return undefined;
  }
  const file = (name: string, at: string): Buffer | undefined => {
    try {
      // A read of a FIFO (or a device) named here would block the start for good, synchronously.
      const s = statSync(at);
      if (!s.isFile() && !s.isDirectory()) {
        bad(name, `cannot read ${at}: it is not a regular file`);
        return undefined;
      }
      return readFileSync(at);
    } catch (err) {
      const code = (err as { code?: string }).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a folder' : code ?? 'error';
      bad(name, `cannot read ${at}: ${why}`);
      return undefined;
    }
  };
  const [c, k, a] = [file(TLS_CERT, cert), file(TLS_KEY, key), ca === undefined ? undefined : file(TLS_CA, ca)];
  if (!c || !k || (ca !== undefined && !a)) return undefined;
  return a ? { cert: c, key: k, ca: a } : { cert: c, key: k };
}
