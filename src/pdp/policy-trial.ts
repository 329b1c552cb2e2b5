// A reload's policies with inline queries (`?=`) are tried first in a worker thread, with a time
// limit, before the process loads them itself. Oso runs inline queries while it loads a policy, on
// the thread that loads it, and stops one only at its own fixed 30 s; one that never ends (a typo
// that makes a search space of 2^60) froze the process that long: every request of a serving
// sidecar waited, though the reload was then rejected and the old policies kept. In a worker it
// costs that worker, stopped at TRIAL_MS. A trial that passes leaves the real load the same quick
// work again; one that fails says why, as a load would, and nothing is loaded here.
// Why only with inline queries: nothing else in a load can run long (parsing is linear, and
// nesting is bounded: policy-nesting.ts), and a worker is not free: ~100 ms, and 12-22 MiB of the
// process's RSS that stays after it ends (measured with compose's flags and MALLOC_ARENA_MAX=2),
// which a sidecar near its memory target cannot spare on every reload.
// Only reloads: at startup nothing is served yet, and the load is the check.
import { Worker } from 'node:worker_threads';
import { setTimeout, clearTimeout } from 'node:timers';
import { PoliciesRefused, type ConfigProblem } from '../errors.ts';
import type { PdpConfig } from '../config/types.ts';
import { defaultReadFile } from './load.ts';
import { hasInlineQuery } from './policy-nesting.ts';

/** How long the policies may take to load in the trial: a 1 MiB policy loads in well under a second. */
export const TRIAL_MS = 10_000;

/** The worker's file beside this one: .ts when run from sources (Deno), .js when built (Node). */
const WORKER_URL = new URL(`./policy-trial-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/**
 * Resolves when `pdp`'s policies have no inline query (nothing tried: the load itself says what is
 * wrong), or when they load in a worker; rejects with PoliciesRefused when they do not.
 */
export async function tryPolicies(pdp: PdpConfig, timeoutMs = TRIAL_MS): Promise<void> {
  const sources = await Promise.all(pdp.policies.map((f) => defaultReadFile(f).catch(() => '')));
  if (!sources.some(hasInlineQuery)) return;
  const problems = await new Promise<readonly ConfigProblem[]>((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { workerData: pdp });
    worker.unref(); // a trial under way never holds a closing process open
    const timer = setTimeout(() => {
      void worker.terminate();
      resolve([{
        file: pdp.policies.join(', '), key: 'policies',
        message: `did not load within ${timeoutMs / 1000} s (an inline query, ?=, that does not end?); ` +
          'loaded here it would have stopped every request for up to 30 s',
      }]);
    }, timeoutMs);
    timer.unref();
    worker.once('message', (answer: readonly ConfigProblem[]) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(answer);
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // Ended without a word (killed, out of memory): not a policy problem to report, but no answer.
    worker.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the policy trial ended without an answer (exit code ${code})`));
    });
  });
  if (problems.length > 0) throw new PoliciesRefused([...problems]);
}
