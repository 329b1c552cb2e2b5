// `goldpath demo` (npm start): the whole golden path in one process, no Docker. The dev IdP, the
// BFF, the verify sidecar, the example API and SPA, behind a development edge that applies the
// bundled Traefik routers and entry point (read from traefik/, not written twice) on http://localhost:8080.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import process from 'node:process';
import { listenHost, LOG_LEVELS, loadSettings } from '../config/env.ts';
import { explainListenError } from '../errors.ts';
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
  const port = env['PORT'] || '8080';
  const out: Record<string, string | undefined> = {
    ...env,
    GOLDPATH_CONFIG_DIR: demoConfigDir(env),
    REDIS_URL: env['REDIS_URL'] || 'memory://',
    GOLDPATH_PUBLIC_URL: env['GOLDPATH_PUBLIC_URL'] || `http://localhost:${port}`,
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

export async function startDemo(opts: { env: Record<string, string | undefined>; log?: Logger; signals?: boolean }): Promise<Demo> {
  // Every part logs with its own svc (one svc key per line: a child's svc beside the root's would
  // repeat the key, which some log pipelines refuse).
  // A LOG_LEVEL pino does not know would throw pino's own message here: loadSettings below names
  // the variable instead, as for the other commands.
  const level = opts.env['LOG_LEVEL'] || 'info';
  const root = opts.log ?? createLogger({ level: (LOG_LEVELS as readonly string[]).includes(level) ? level : 'info' });
  const log = root.child({ svc: 'demo' });
  const env = demoEnv(opts.env, log);
  const settings = loadSettings(env);
  const store = createSessionStore({ url: settings.redisUrl, settings, log });
  const internal = { ...env, PORT: undefined };
  const closers: (() => Promise<void>)[] = [];
  try {
    const issuerPort = Number(new URL(env['GOLDPATH_IDP_ISSUER']!).port || 80);
    // On the edge's interface (loopback unless HOST says otherwise): the dev IdP signs anyone in.
    const host = listenHost(env['HOST'] || undefined) ?? '127.0.0.1';
    // A failure to listen names the part and the variables that move it (the dev IdP's port is its issuer's).
    const idp = await startDevIdpFromConfig({
      env: { ...internal, PORT: String(issuerPort), HOST: host }, log: root.child({ svc: 'dev-idp' }),
    }).catch((err: unknown) => {
      throw explainListenError(err, () => `HOST=${host}, GOLDPATH_IDP_ISSUER=${env['GOLDPATH_IDP_ISSUER']}`, 'the dev IdP',
        'give it another port: GOLDPATH_IDP_ISSUER=http://localhost:<free port>');
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
    const edge = await startDevEdge({
      port: Number(env['PORT']), host,
      dynamicConfigPath: join(packageRoot(), 'traefik/dynamic/goldpath.yml'),
      staticConfigPath: join(packageRoot(), 'traefik/traefik.yml'),
      services: { api: api.url, bff: bff.url, spa: spa.url, verify: verify.url },
      // The demo reaches the dev IdP directly on its own port; compose routes it through Traefik.
      omitRouters: ['idp'],
      canonicalOrigin: settings.publicOrigin,
      log: root.child({ svc: 'edge' }),
    }).catch((err: unknown) => {
      throw explainListenError(err, () => `HOST=${host}, PORT=${env['PORT']}`, `the demo's page (${settings.publicOrigin})`,
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
    const storeAnswers = await store.ping().then(() => true, () => false);
    if (storeAnswers) log.info(`goldpath demo ready: open ${settings.publicOrigin} (log in as any user; "admin" may also write)`);
    else log.error(`goldpath demo started at ${settings.publicOrigin}, but its session store (REDIS_URL) does not answer: every sign-in and API call is a 503 until it does`);
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
