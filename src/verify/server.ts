// `goldpath verify`: the sidecar process. Loads and validates everything before listening (it never
// starts half-configured) and reloads routes, rules and policies on SIGHUP, atomically.
import './process-tuning.ts'; // first: before anything loads Oso (see there)
import process from 'node:process';
import { loadConfig, loadSettingsAndConfig } from '../config/load.ts';
import { configDirOf, separateProcessStoreProblem } from '../config/env.ts';
import { withEveryProblem } from '../check.ts';
import { tryPolicies } from '../pdp/policy-trial.ts';
import type { GoldpathConfig, Settings } from '../config/types.ts';
import { createLogger, type Logger } from '../log.ts';
import { createSessionStore } from '../session/index.ts';
import { CachingSessionStore, type SessionCacheOptions } from '../session/cache.ts';
import type { SessionStore } from '../session/types.ts';
import type { TokenProvider } from '../oidc/types.ts';
import { BackgroundTasks } from '../oidc/background.ts';
import { FORWARD_AUTH_MAX_HEADER_BYTES, listen, type Listening } from '../http/serve.ts';
import { serialized } from '../http/serialized.ts';
import { refusalRecorder } from '../http/refusals.ts';
import { createVerifyApp } from './app.ts';
import { createVerifyMetrics, exportSessionCacheMetrics } from './metrics.ts';
import { buildVerifyPolicy } from './policy.ts';
import type { VerifyPolicy } from './state.ts';
import { FloodGate } from '../http/flood-gate.ts';

export const DEFAULT_VERIFY_PORT = 3002;
/**
 * How long a replaced policy stays usable. A request takes its policy at step 1 and asks it at
 * step 7, after a Redis round trip and maybe an IdP refresh: freed at once, the requests in the
 * chain during a reload were denied as engine errors. Longer than any request lives.
 */
const RELOAD_GRACE_MS = 60_000;

export interface VerifyOptions {
  readonly env: Record<string, string | undefined>;
  readonly log?: Logger;
  /** Share a store (memory:// in the demo); otherwise one is made from REDIS_URL. */
  readonly store?: SessionStore;
  /** How tokens are refreshed; defaults to the OIDC token provider for idps.yaml. */
  readonly tokens?: (args: {
    settings: Settings; store: SessionStore; log: Logger; config: GoldpathConfig; onRefresh?: (outcome: string) => void;
    /** The store's failures the provider caught and did not throw (goldpath_store_errors_total). */
    onStoreError?: (err: unknown) => void;
    /** Where its background revocations are kept: close() waits for them. */
    background: BackgroundTasks;
    /** The provider a reload replaces (what its IdPs discovered is handed on); none at startup. */
    previous?: TokenProvider;
  }) => Promise<TokenProvider>;
  readonly port?: number;
  readonly host?: string;
  /** How long a reload's policies may take to load in their trial (policy-trial.ts; tests). */
  readonly policyTrialMs?: number;
  /**
   * The in-process session cache (src/session/cache.ts) in front of a store made from REDIS_URL;
   * false turns it off. A store passed in (memory:// in the demo) is already in-process: not cached.
   */
  readonly sessionCache?: SessionCacheOptions | false;
}

export interface VerifyProcess extends Listening {
  /** Re-reads config and policies; keeps the old ones (and resolves false) when the new ones are broken. */
  reload(): Promise<boolean>;
  readonly store: SessionStore;
  readonly log: Logger;
}

export async function startVerify(opts: VerifyOptions): Promise<VerifyProcess> {
  const dir = configDirOf(opts.env);
  // A separate sidecar process would have its own empty memory: every request would be a 401.
  // Named with every other problem, not after they are fixed.
  const memory = opts.store ? undefined : separateProcessStoreProblem(opts.env);
  const { settings, config } = await withEveryProblem(dir, opts.env, () => loadSettingsAndConfig(opts.env), memory ? [memory] : []);
  const log = opts.log ?? createLogger({ level: settings.logLevel, name: 'verify' });
  let store: SessionStore;
  if (opts.store) {
    store = opts.store;
  } else {
    const kv = createSessionStore({ url: settings.redisUrl, settings, log });
    store = opts.sessionCache === false ? kv : new CachingSessionStore(kv, { onRefused: refusedCookieLog(log), ...opts.sessionCache });
  }
  const metrics = createVerifyMetrics(undefined, { processMetrics: !opts.store });
  const makeTokens = opts.tokens ?? (await import('../oidc/index.ts')).tokenProviderFactory;
  const onRefresh = (outcome: string) => metrics.refreshes.inc({ outcome });
  const onStoreError = () => metrics.storeErrors.inc();
  // The process's, not a policy's: a reload replaces the token provider, not what it started.
  const background = new BackgroundTasks();
  // The token provider is part of the policy: a reload swaps both at once (state.ts), and hands the
  // one it replaces to the new one, as the BFF does (IdpRegistry.replacing).
  let policy: VerifyPolicy;
  const build = async (c: typeof config, previous?: TokenProvider, readFile?: (path: string) => Promise<string>) =>
    buildVerifyPolicy(c, settings, log, await makeTokens({ settings, store, log, config: c, onRefresh, onStoreError, background, previous }), readFile);
  try {
    policy = await withEveryProblem(dir, opts.env, () => build(config));
  } catch (err) {
    if (!opts.store) await store.close().catch(() => {}); // a policy that does not load: nothing left open
    throw err;
  }
  if (store instanceof CachingSessionStore) exportSessionCacheMetrics(metrics.registry, store);
  const app = createVerifyApp({ settings, store, log, metrics, policy: () => policy });
  const listening = await listen(app.callback(), opts.port ?? settings.port ?? DEFAULT_VERIFY_PORT, opts.host ?? settings.host, FORWARD_AUTH_MAX_HEADER_BYTES,
    refusalRecorder(metrics.registry, log));

  async function reloadOnce(): Promise<boolean> {
    try {
      const nextPolicy = await withEveryProblem(settings.configDir, opts.env, async () => {
        const next = await loadConfig(settings.configDir, opts.env);
        // Inline queries in a worker first: requests go on meanwhile. The load then reads what was tried.
        const { readFile } = await tryPolicies(next.pdp, opts.policyTrialMs);
        return build(next, policy.tokens, readFile);
      });
      const old = policy;
      policy = nextPolicy;
      // Oso's WASM heap is not garbage-collected: free the old engine once the requests that took
      // it (not only its queries already running) are done.
      setTimeout(() => old.pdp.close(), RELOAD_GRACE_MS).unref();
      log.info('configuration reloaded');
      return true;
    } catch (err) {
      log.error({ err: (err as Error).message }, 'reload rejected: the previous configuration keeps serving');
      return false;
    }
  }
  const reload = serialized(reloadOnce);
  log.info({ url: listening.url }, 'goldpath verify listening');
  return {
    ...listening,
    store,
    log,
    reload,
    async close() {
      await listening.close();
      // The failures of an outage's last second, held for the line its end would have said.
      FloodGate.flushAll();
      // A refresh that found its session gone lets go of its refresh token: revoked before we go.
      await background.drain(log);
      if (!opts.store) await store.close();
    },
  };
}

/**
 * A warning when session cookies are refused, then at most one a minute. Forged ones are the usual
 * cause, but a sidecar whose GOLDPATH_SESSION_KEYS differ from the BFF's refuses every cookie the
 * BFF sets: users then go round between a sign-in that succeeds and a 401, and this line is the
 * clue. The clock is read on the first refusal since a line and then every 1024th only: reading
 * it on each was most of what this cost a refused request.
 */
function refusedCookieLog(log: Logger): () => void {
  let pending = 0;
  let loggedAt = -Infinity;
  return () => {
    pending++;
    if (pending !== 1 && (pending & 1023) !== 0) return;
    const now = performance.now(); // monotonic: a clock stepped back must not mute it for as long
    if (now - loggedAt < 60_000) return;
    loggedAt = now;
    log.warn({ refused: pending }, 'session cookies refused: malformed, or signed by no key of GOLDPATH_SESSION_KEYS (forged, or set by a BFF whose keys differ from this sidecar\'s: then every sign-in ends in a 401)');
    pending = 0;
  };
}

/** SIGHUP → reload, for processes started from the CLI. */
export function reloadOnSighup(p: { reload(): Promise<boolean> }): void {
  process.on('SIGHUP', () => void p.reload());
}
