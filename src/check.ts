// `goldpath check`: validates the three YAML files and the Polar policies, reading files only.
// Prints every problem (file:line: key: message) and returns non-zero on any.
import { resolve } from 'node:path';
import process from 'node:process';
import { formatProblem } from './errors.ts';
import { validateConfig } from './config/load.ts';
import { configDirOf } from './config/env.ts';
import { Pdp } from './pdp/index.ts';

export async function runCheck(o: {
  env: Record<string, string | undefined>;
  dir?: string;
  out: (line: string) => void;
  err: (line: string) => void;
}): Promise<number> {
  const dir = o.dir === undefined ? configDirOf(o.env) : resolve(process.cwd(), o.dir);
  const warnings: string[] = [];
  // The policies are checked whenever pdp.yaml itself is sound, even if another file is not: every
  // problem in one round.
  const { problems, pdp } = await validateConfig(dir, o.env);
  if (pdp !== undefined) {
    const checked = await Pdp.check(pdp);
    problems.push(...checked.problems);
    warnings.push(...checked.warnings);
  }
  for (const w of warnings) o.err(`warning: ${w}`);
  if (problems.length === 0) {
    o.out(`goldpath check: ${dir}: OK (routes.yaml, pdp.yaml, idps.yaml and policies)`);
    return 0;
  }
  for (const p of problems) o.err(formatProblem(p));
  o.err(`goldpath check: ${problems.length} problem${problems.length === 1 ? '' : 's'} in ${dir}`);
  return 1;
}
