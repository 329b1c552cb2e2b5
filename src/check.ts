// `goldpath check`: validates the three YAML files and the Polar policies, reading files only.
// Prints every problem (file:line: key: message) and returns non-zero on any.
import { resolve } from 'node:path';
import process from 'node:process';
import { ConfigError, formatProblem, type ConfigProblem } from './errors.ts';
import { loadConfig } from './config/load.ts';
import { DEFAULT_CONFIG_DIR } from './config/env.ts';
import { Pdp } from './pdp/index.ts';

export async function runCheck(o: {
  env: Record<string, string | undefined>;
  dir?: string;
  out: (line: string) => void;
  err: (line: string) => void;
}): Promise<number> {
  const dir = resolve(process.cwd(), o.dir ?? o.env.GOLDPATH_CONFIG_DIR ?? DEFAULT_CONFIG_DIR);
  let problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  try {
    const config = await loadConfig(dir, o.env);
    const pdp = await Pdp.check(config.pdp);
    problems = pdp.problems;
    warnings.push(...pdp.warnings);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems = [...err.problems];
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
