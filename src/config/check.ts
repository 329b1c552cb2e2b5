// `goldpath check`: every problem in the three config files, offline (reads files only).
// The CLI adds the Polar policies (loaded through the PDP) and prints formatProblems().
import type { ConfigProblem } from '../errors.ts';
import { validateConfig } from './load.ts';
import type { Env } from './env-substitution.ts';

export { formatProblems } from './problems.ts';

/** Every problem in routes.yaml, pdp.yaml and idps.yaml under `dir`; empty when all is well. */
export async function checkConfig(dir: string, env: Env): Promise<ConfigProblem[]> {
  return (await validateConfig(dir, env)).problems;
}
