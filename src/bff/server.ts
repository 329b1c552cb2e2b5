// `goldpath bff`: the OAuth process. Validates settings and config before listening (it never
// starts half-configured); reloads idps.yaml (and the rest) on SIGHUP, keeping the old config
// when the new one is broken.
import process from 'node:process';
import { loadConfig, loadSettingsAndConfig } from '../config/load.ts';
import { configDirOf, separateProcessStoreProblem } from '../config/env.ts';
import { assertPoliciesLoad, withEveryProblem } from '../check.ts';
import { tryPolicies } from '../pdp/policy-trial.ts';
import { createLogger, type Logger } from '../log.ts';
import { createSessionStore } from '../session/index.ts';
import type { SessionStore } from '../session/types.ts';
import { listen, onShutdown, type Listening } from '../http/serve.ts';
import { createBffApp, type BffApp } from './app.ts';
import { serialized } from '../http/serialized.ts';
import { refusalRecorder } from '../http/refusals.ts';
import { exportProcessMetrics } from '../http/process-metrics.ts';
import { FloodGate } from '../http/flood-gate.ts';

export const DEFAULT_BFF_PORT = 3001;

export interface BffProcessOptions {
  readonly env: Record<string, string | undefined>;
  readonly log?: Logger;
  /** Share a store (memory:// in the demo); otherwise one is made from REDIS_URL. */
  readonly store?: SessionStore;
  readonly port?: number;
  readonly host?: string;
  /** Install SIGTERM/SIGINT/SIGHUP handlers (the CLI does; embedded uses do not). Default true. */
  readonly signals?: boolean;
  /** How long a reload's policies may take to load in their trial (policy-trial.ts; tests). */
  readonly policyTrialMs?: number;
}

export interface BffProcess extends Listening {
  readonly bff: BffApp;
  readonly store: SessionStore;
  readonly log: Logger;
  reload(): Promise<boolean>;
}

export async function startBffProcess(opts: BffProcessOptions): Promise<BffProcess> {
  // The policies too, though the BFF does not run them: it starts on exactly the configurations
  // the sidecar and `goldpath check` accept, and names every problem as they do.
  // Sessions in this process's memory could never reach a verify sidecar (its own process, which
  // refuses memory:// too): every sign-in would end in a 401 at the API. Named with every other
  // problem, not after they are fixed.
  const memory = opts.store ? undefined : separateProcessStoreProblem(opts.env);
  const { settings, config } = await withEveryProblem(configDirOf(opts.env), opts.env, async () => {
    const loaded = await loadSettingsAndConfig(opts.env);
    await assertPoliciesLoad(loaded.config.pdp);
    return loaded;
  }, memory ? [memory] : []);
  const log = opts.log ?? createLogger({ level: settings.logLevel, name: 'bff' });
  const store = opts.store ?? createSessionStore({ url: settings.redisUrl, settings, log });
  const bff = await createBffApp({ settings, config, store, log });
  // Memory, CPU and event-loop lag, as the sidecar has them: a process of its own (not the demo's,
  // which shares its process with the sidecar, as it shares the store).
  if (!opts.store) exportProcessMetrics(bff.metrics.registry);
  const listening = await listen(bff.app.callback(), opts.port ?? settings.port ?? DEFAULT_BFF_PORT, opts.host ?? settings.host, undefined,
    refusalRecorder(bff.metrics.registry, log));

  // One reload at a time (see serialized): the last SIGHUP's files are the ones that serve.
  const reload = serialized(async (): Promise<boolean> => {
    try {
      // As at startup and in the sidecar: a YAML slip must not hide a policy problem.
      const next = await withEveryProblem(settings.configDir, opts.env, async () => {
        const loaded = await loadConfig(settings.configDir, opts.env);
        // Inline queries in a worker first: requests go on meanwhile. Loaded there, they are checked:
        // the BFF keeps no engine, so loading them again here would only run those queries again.
        const trial = await tryPolicies(loaded.pdp, opts.policyTrialMs);
        if (!trial.loaded) await assertPoliciesLoad(loaded.pdp, trial.readFile);
        return loaded;
      });
      await bff.reload(next);
      log.info('configuration reloaded');
      return true;
    } catch (err) {
      log.error({ err: (err as Error).message }, 'reload rejected: the previous configuration keeps serving');
      return false;
    }
  });
  const p: BffProcess = {
    ...listening, bff, store, log, reload,
    async close() {
      await listening.close();
      await bff.close();
      // The failures of an outage's last second, held for the line its end would have said.
      FloodGate.flushAll();
      if (!opts.store) await store.close();
    },
  };
  if (opts.signals !== false) {
    process.on('SIGHUP', () => void reload());
    onShutdown(log, () => p.close());
  }
  log.info({ url: listening.url, publicOrigin: settings.publicOrigin }, 'goldpath bff listening');
  return p;
}
