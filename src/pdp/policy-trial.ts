// A reload's policies with inline queries (`?=`) are tried first in a worker thread, with a time
// limit, before the process loads them itself. Oso runs inline queries while it loads a policy, on
// the thread that loads it, and stops one only at its own fixed 30 s; one that never ends (a typo
// that makes a search space of 2^60) froze the process that long: every request of a serving
// sidecar waited, though the reload was then rejected and the old policies kept. In a worker it
// costs that worker, stopped at TRIAL_MS. A trial that passes leaves the real load the same quick
// work again (the same bytes: the files are read once, for both), and the BFF, which only checks
// policies, nothing at all; one that fails says why, as a load would, and nothing is loaded here.
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
import type { TrialInput } from './policy-trial-worker.ts';

/** How long the policies may take to load in the trial: a 1 MiB policy loads in well under a second. */
export const TRIAL_MS = 10_000;

/** The worker's file beside this one: .ts when run from sources (Deno), .js when built (Node). */
const WORKER_URL = new URL(`./policy-trial-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

export interface PolicyTrial {
  /**
   * The policy files as the trial read them: a load given this reads the very bytes tried, not a
   * file changed since (untried, it could hold the loop the trial was there to catch).
   */
  readonly readFile: (path: string) => Promise<string>;
  /** The policies loaded in the worker, without problems: a load only to check them is done. */
  readonly loaded: boolean;
}

/**
 * Reads `pdp`'s policies once and, when they hold an inline query, loads them in a worker; rejects
 * with PoliciesRefused when they do not load there. Without inline queries, or with a file that
 * cannot be read, nothing is tried: the load itself says what is wrong, and runs no query.
 */
export async function tryPolicies(pdp: PdpConfig, timeoutMs = TRIAL_MS): Promise<PolicyTrial> {
  const read = await Promise.allSettled(pdp.policies.map((f) => defaultReadFile(f)));
  const texts = new Map(pdp.policies.map((f, i) => [f, read[i]!]));
  const readFile = async (path: string): Promise<string> => {
    const r = texts.get(path);
    // Only the files tried: any other would be loaded untried (none is asked for: the load reads
    // the same list).
    if (r === undefined) throw new Error(`${path} was not read for the policy trial`);
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  };
  const sources: string[] = [];
  for (const r of read) {
    if (r.status === 'rejected') return { readFile, loaded: false };
    sources.push(r.value);
  }
  if (!sources.some(hasInlineQuery)) return { readFile, loaded: false };
  const workerData: TrialInput = { pdp, texts: Object.fromEntries(pdp.policies.map((f, i) => [f, sources[i]!])) };
  const problems = await new Promise<readonly ConfigProblem[]>((resolve, reject) => {
    const worker = new Worker(WORKER_URL, { workerData });
    worker.unref(); // a trial under way never holds a closing process open
    // Settled before terminate(): under Deno it emits 'exit' at once, inside the call, and the
    // 'exit' listener below would reject first (every trial "ended without an answer": no policy
    // with an inline query could ever be reloaded under Deno).
    const timer = setTimeout(() => {
      resolve([{
        file: pdp.policies.join(', '), key: 'policies',
        message: `did not load within ${timeoutMs / 1000} s (an inline query, ?=, that does not end?); ` +
          'loaded here it would have stopped every request for up to 30 s',
      }]);
      void worker.terminate();
    }, timeoutMs);
    timer.unref();
    worker.once('message', (answer: readonly ConfigProblem[]) => {
      clearTimeout(timer);
      resolve(answer);
      void worker.terminate();
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
  return { readFile, loaded: true };
}
