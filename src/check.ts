// `goldpath check`: validates the three YAML files and the Polar policies, reading files only, and
// the environment variables verify and bff would read, those that are set. Prints every problem
// (file:line: key: message) and returns non-zero on any.
import { resolve } from 'node:path';
import process from 'node:process';
import { ConfigError, formatProblem, PoliciesRefused, type ConfigProblem } from './errors.ts';
import { CONFIG_FILES, validateConfig } from './config/load.ts';
import { checkSettings, configDirOf } from './config/env.ts';
import { sortProblems } from './config/problems.ts';
import { unknownVariableWarnings, variablesNamedIn } from './config/env-names.ts';
import { Pdp } from './pdp/index.ts';
import type { PdpConfig } from './config/types.ts';

/** Every problem of the config folder and its policies, and the warnings: what `goldpath check` says. */
export async function checkConfig(dir: string, env: Record<string, string | undefined>): Promise<{ problems: ConfigProblem[]; warnings: string[] }> {
  // The policies are checked whenever pdp.yaml itself is sound, even if another file is not: every
  // problem in one round.
  // With some rules left out (pdpPartial), only the policies' problems: their warnings would be
  // about the rules left out.
  // With a problem in the policies list (a file missing), each file that can be read is still
  // parsed alone: its syntax errors do not wait for the next round either.
  const { problems, pdp, pdpPartial, policiesToParse, warnings: inFiles } = await validateConfig(dir, env);
  const warnings = inFiles.map(formatProblem);
  if (pdp !== undefined) {
    const checked = await Pdp.check(pdp);
    problems.push(...checked.problems);
    if (!pdpPartial) warnings.push(...checked.warnings);
  } else if (policiesToParse !== undefined && policiesToParse.length > 0) {
    problems.push(...await Pdp.syntaxProblems(policiesToParse));
  }
  return { problems, warnings };
}

/**
 * Fails with the policies' problems, if they do not load (a throwaway engine, freed): for a
 * process that does not run the policies itself (the BFF), so that it accepts exactly the
 * configurations `goldpath check` and the sidecar accept.
 */
export async function assertPoliciesLoad(pdp: PdpConfig, readFile?: (path: string) => Promise<string>): Promise<void> {
  const { problems } = await Pdp.check(pdp, { readFile });
  if (problems.length > 0) throw new PoliciesRefused(problems);
}

/**
 * Runs `load`; when it fails on the configuration, fails with every problem there is, as `goldpath
 * check` lists them (a YAML slip must not hide a Polar one until the next attempt), besides those
 * `load` found (the environment's, say). `also`: problems the caller found that `load` does not
 * look for (REDIS_URL=memory:// in a process of its own): with them it fails even when `load`
 * succeeds, naming every problem of the files and policies too, so that all show in one round.
 */
export async function withEveryProblem<T>(dir: string, env: Record<string, string | undefined>, load: () => Promise<T>,
  also: readonly ConfigProblem[] = []): Promise<T> {
  let found: readonly ConfigProblem[];
  try {
    const value = await load();
    if (also.length === 0) return value;
    found = also;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    found = also.length === 0 ? err.problems : sortProblems([...err.problems, ...also]);
    // Every problem there is (see PoliciesRefused): another look would only load the policies again.
    if (err instanceof PoliciesRefused) throw also.length === 0 ? err : new ConfigError([...found]);
  }
  const seen = new Set(found.map(formatProblem));
  const more = (await checkConfig(dir, env)).problems.filter((p) => !seen.has(formatProblem(p)));
  throw new ConfigError([...found, ...more]);
}

/**
 * The environment's part of `goldpath check`: the variables verify and bff would read, those that
 * are set, checked as they check them; and the GOLDPATH_* names nothing reads (typos).
 */
async function checkEnvironment(dir: string, env: Record<string, string | undefined>) {
  const { checked, problems, missing } = checkSettings(env);
  const warnings = unknownVariableWarnings(env, await variablesNamedIn(dir, CONFIG_FILES));
  const notes = missing.map((name) => `${name} is not set here, so it was not checked; verify and bff will not start without it`);
  const said = checked.length > 0 ? `environment: ${checked.join(', ')} checked` : 'environment: none of verify\'s and bff\'s variables set';
  return { problems, warnings, notes, said };
}

export async function runCheck(o: {
  env: Record<string, string | undefined>;
  dir?: string;
  out: (line: string) => void;
  err: (line: string) => void;
}): Promise<number> {
  const dir = o.dir === undefined ? configDirOf(o.env) : resolve(process.cwd(), o.dir);
  const environment = await checkEnvironment(dir, o.env);
  const files = await checkConfig(dir, o.env);
  const problems = [...environment.problems, ...files.problems];
  for (const w of [...environment.warnings, ...files.warnings]) o.err(`warning: ${w}`);
  for (const n of environment.notes) o.err(`note: ${n}`);
  if (problems.length === 0) {
    o.out(`goldpath check: ${dir}: OK (routes.yaml, pdp.yaml, idps.yaml, policies; ${environment.said})`);
    return 0;
  }
  for (const p of problems) o.err(formatProblem(p));
  o.err(`goldpath check: ${problems.length} problem${problems.length === 1 ? '' : 's'} in ${dir} (${environment.said})`);
  return 1;
}
