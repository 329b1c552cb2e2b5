// `goldpath demo` (npm start): the whole golden path in one process, no Docker. The dev IdP, the
// BFF, the verify sidecar, the example API and SPA, behind a development edge that applies the
// bundled Traefik routers and entry point (read from traefik/, not written twice) on http://localhost:8080.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import process from 'node:process';
import { envValue, listenHost, LOG_LEVELS, loadSettings } from '../config/env.ts';
import { isOriginPort } from '../config/origin.ts';
import type { Settings } from '../config/types.ts';
import { ConfigError, explainListenError, type ConfigProblem } from '../errors.ts';
import { createLogger, type Logger } from '../log.ts';
import { packageRoot } from '../paths.ts';
import { createSessionStore } from '../session/index.ts';
import { startVerify } from '../verify/server.ts';
import { startBffProcess } from '../bff/server.ts';
import { startDevIdpFromConfig } from './idp-run.ts';
import { startExampleApi, startSpaServer } from './api.ts';
import { startDevEdge } from './edge/index.ts';

export interface Demo {
  readonly url: string;
  readonly issuer: string;
  /** Reloads the three files and the policies in the sidecar and the BFF (SIGHUP); false if rejected. */
  reload(): Promise<boolean>;
  close(): Promise<void>;
}

/** The demo's config folder: GOLDPATH_CONFIG_DIR, or the bundled one wherever it runs from. */
export function demoConfigDir(env: Record<string, string | undefined>): string {
  return env['GOLDPATH_CONFIG_DIR'] || join(packageRoot(), 'compose/config');
}

/** Fills what a fresh machine lacks; everything can still be set from the environment. */
export function demoEnv(env: Record<string, string | undefined>, log: Logger): Record<string, string | undefined> {
  const port = envValue(env, 'PORT') ?? '8080';
  // The page's origin, from a port it can name: another PORT (abc, 0, 99999) was reported as a bad
  // GOLDPATH_PUBLIC_URL, a variable the user never set; now PORT itself is named (demoSettings).
  const named = isOriginPort(port);
  const out: Record<string, string | undefined> = {
    ...env,
    GOLDPATH_CONFIG_DIR: demoConfigDir(env),
    REDIS_URL: env['REDIS_URL'] || 'memory://',
    GOLDPATH_PUBLIC_URL: env['GOLDPATH_PUBLIC_URL'] || (named ? `http://localhost:${Number(port)}` : undefined),
    // 127.0.0.1, not localhost: another host to the browser, whose cookies (the dev IdP's login
    // session) are then never sent to the page's host, and so never reach the example API. On
    // localhost they did: browsers share cookies between the ports of a host.
    GOLDPATH_IDP_ISSUER: env['GOLDPATH_IDP_ISSUER'] || 'http://127.0.0.1:4000',
    PORT: port,
  };
  if (!env['GOLDPATH_SESSION_KEYS']) {
    out['GOLDPATH_SESSION_KEYS'] = randomBytes(32).toString('base64url');
    log.warn('demo: GOLDPATH_SESSION_KEYS not set, using a random key (sessions end when the demo stops)');
  }
  if (!env['GOLDPATH_CLIENT_SECRET']) out['GOLDPATH_CLIENT_SECRET'] = randomBytes(24).toString('base64url');
  return out;
}

/** loadSettings, and the demo's own rule for PORT; every problem at once. */
function demoSettings(env: Record<string, string | undefined>): Settings {
  // Its page's port is the public URL's, where sign-ins complete: "any free port" cannot be it.
  const own: ConfigProblem[] = Number(envValue(env, 'PORT')) === 0
    ? [{ file: 'environment', key: 'PORT', message: 'is "0"; the demo\'s page needs a fixed port, which its public URL names: set a free one, e.g. PORT=8090' }]
    : [];
  let settings: Settings;
  try {
    settings = loadSettings(env);
  } catch (err) {
    throw err instanceof ConfigError ? new ConfigError([...own, ...err.problems]) : err;
  }
  if (own.length > 0) throw new ConfigError(own);
  return settings;
}

export async function startDemo(opts: { env: Record<string, string | undefined>; log?: Logger; signals?: boolean }): Promise<Demo> {
  // Every part logs with its own svc (one svc key per line: a child's svc beside the root's would
  // repeat the key, which some log pipelines refuse).
  // A LOG_LEVEL pino does not know would throw pino's own message here: loadSettings below names
  // the variable instead, as for the other commands.
  const level = opts.env['LOG_LEVEL'] || 'info';
  const root = opts.log ?? createLogger({ level: (LOG_LEVELS as readonly string[]).includes(level) ? level : 'info' });
  const log = root.child({ svc: 'demo' });
  const env = demoEnv(opts.env, log);
  const settings = demoSettings(env);
  const store = createSessionStore({ url: settings.redisUrl, settings, log });
  const internal = { ...env, PORT: undefined };
  const closers: (() => Promise<void>)[] = [];
  try {
    // One that is not a URL is left to the dev IdP's checks, which name the variable ("Invalid URL" did not).
    const issuer = env['GOLDPATH_IDP_ISSUER']!;
    const issuerUrl = URL.canParse(issuer) ? new URL(issuer) : undefined;
    const issuerPort = issuerUrl ? Number(issuerUrl.port || 80) : 0;
    // Its own host, never the page's: on localhost, the dev IdP's cookies reached the example API.
    const moved = `${issuerUrl?.protocol ?? 'http:'}//${issuerUrl?.hostname ?? '127.0.0.1'}:<free port>`;
    // On the edge's interface (loopback unless HOST says otherwise): the dev IdP signs anyone in.
    const host = listenHost(env['HOST'] || undefined) ?? '127.0.0.1';
    // A failure to listen names the part and the variables that move it (the dev IdP's port is its issuer's).
    const idp = await startDevIdpFromConfig({
      env: { ...internal, PORT: String(issuerPort), HOST: host }, log: root.child({ svc: 'dev-idp' }),
    }).catch((err: unknown) => {
      throw explainListenError(err, () => `HOST=${host}, GOLDPATH_IDP_ISSUER=${env['GOLDPATH_IDP_ISSUER']}`, 'the dev IdP',
        `give it another port: GOLDPATH_IDP_ISSUER=${moved}`);
    });
    closers.push(() => idp.close());
    const bff = await startBffProcess({ env: internal, store, port: 0, host: '127.0.0.1', signals: false, log: root.child({ svc: 'bff' }) });
    closers.push(() => bff.close());
    const verify = await startVerify({ env: internal, store, port: 0, host: '127.0.0.1', log: root.child({ svc: 'verify' }) });
    closers.push(() => verify.close());
    const api = await startExampleApi({ port: 0, host: '127.0.0.1' });
    closers.push(() => api.close());
    const spa = await startSpaServer({ port: 0, host: '127.0.0.1' });
    closers.push(() => spa.close());
    // The page at http://localhost: browsers try ::1 first, so with HOST unset the edge holds the
    // port there too. On 127.0.0.1 alone, another server on [::1]:PORT (a dev server bound to
    // "localhost") went unnoticed: the demo said "ready", and the browser showed that server.
    const alsoHosts = !env['HOST'] && new URL(settings.publicOrigin).hostname === 'localhost' ? ['::1'] : [];
    const edge = await startDevEdge({
      port: Number(env['PORT']), host, alsoHosts,
      dynamicConfigPath: join(packageRoot(), 'traefik/dynamic/goldpath.yml'),
      staticConfigPath: join(packageRoot(), 'traefik/traefik.yml'),
      services: { api: api.url, bff: bff.url, spa: spa.url, verify: verify.url },
      // The demo reaches the dev IdP directly on its own port; compose routes it through Traefik.
      omitRouters: ['idp'],
      canonicalOrigin: settings.publicOrigin,
      log: root.child({ svc: 'edge' }),
    }).catch((err: unknown) => {
      throw explainListenError(err, (e) => `${e.host === host ? `HOST=${host}` : `HOST unset: ${host} and, for localhost, ${e.host}`}, PORT=${env['PORT']}`, `the demo's page (${settings.publicOrigin})`,
        'give it another port: PORT=<free port>');
    });
    closers.push(() => edge.close());
    const demo: Demo = {
      url: settings.publicOrigin,
      issuer: idp.issuer,
      async reload() {
        const [v, b] = await Promise.all([verify.reload(), bff.reload()]);
        return v && b;
      },
      async close() {
        for (const c of closers.reverse()) await c().catch(() => {});
        await store.close();
      },
    };
    // "Ready" only when it is: with REDIS_URL pointing at nothing, every sign-in and API call
    // would be a 503 (fail closed) behind a line saying all is well.
    // Nor with a dev IdP the BFF cannot reach at its issuer: under HOST=[::1] the dev IdP listened
    // there, the default issuer named 127.0.0.1, and every sign-in was a 503.
    const storeAnswers = await store.ping().then(() => true, () => false);
    const idpAnswers = await bff.bff.idps.default.configuration().then(() => true, () => false);
    if (!storeAnswers) log.error(`goldpath demo started at ${settings.publicOrigin}, but its session store (REDIS_URL) does not answer: every sign-in and API call is a 503 until it does`);
    else if (!idpAnswers) {
      log.error(`goldpath demo started at ${settings.publicOrigin}, but its BFF cannot reach the dev IdP at its issuer (GOLDPATH_IDP_ISSUER=${issuer}, ` +
        `the dev IdP listening on ${host}): every sign-in is a 503 until it can`);
    } else log.info(`goldpath demo ready: open ${settings.publicOrigin} (log in as any user; "admin" may also write)`);
    if (opts.signals !== false) {
      const stop = () => void demo.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // As `goldpath verify` and `goldpath bff` do: without a handler, SIGHUP would end the demo.
      process.on('SIGHUP', () => void demo.reload());
    }
    return demo;
  } catch (err) {
    for (const c of closers.reverse()) await c().catch(() => {});
    await store.close();
    throw err;
  }
}
