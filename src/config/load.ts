// Loads routes.yaml, pdp.yaml and idps.yaml from one folder, validates them together and returns
// one deep-frozen GoldpathConfig, or throws a ConfigError listing every problem in every file.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import type { GoldpathConfig, PdpConfig, Settings } from './types.ts';
import { configDirOf, loadSettings } from './env.ts';
import { deepFreeze, Problems, sortProblems } from './problems.ts';
import { validateRoutes, type RoutesResult } from './routes.ts';
import { validatePdp, type PdpResult } from './pdp.ts';
import { validateIdps, type IdpsResult } from './idps.ts';
import { splitPath } from './paths.ts';
import { show } from './cursor.ts';
import type { Env } from './env-substitution.ts';
import { YamlFile } from './yaml.ts';
import { decodeUtf8, MAX_CONFIG_FILE_BYTES, notUtf8 } from './files.ts';

export const CONFIG_FILES = ['routes.yaml', 'pdp.yaml', 'idps.yaml'] as const;

async function readYaml(dir: string, file: string, env: Env, problems: Problems): Promise<YamlFile | undefined> {
  const abs = path.join(dir, file);
  let source: string;
  try {
    const s = await stat(abs);
    if (!s.isFile()) {
      problems.add(file, undefined, '(file)', `${abs} is not a file`);
      return undefined;
    }
    if (s.size > MAX_CONFIG_FILE_BYTES) {
      problems.add(file, undefined, '(file)', `is larger than 256 KiB (a goldpath config file is a few KiB)`);
      return undefined;
    }
    const decoded = decodeUtf8(await readFile(abs));
    if ('badLine' in decoded) {
      problems.add(file, decoded.badLine, '(file)', notUtf8());
      return undefined;
    }
    source = decoded.text;
  } catch (err) {
    const code = (err as { code?: string }).code;
    problems.add(file, undefined, '(file)', code === 'ENOENT' ? `not found (looked for ${abs})` : `cannot be read (${code ?? 'error'})`);
    return undefined;
  }
  const depth = flowDepth(source);
  if (depth > MAX_FLOW_DEPTH) {
    // The YAML parser recurses per level: a hostile file of '[[[[…' would exhaust the stack.
    problems.add(file, undefined, '(yaml)', `nests [ ] or { } ${depth} levels deep; at most ${MAX_FLOW_DEPTH} are accepted`);
    return undefined;
  }
  return YamlFile.parse(file, dir, source, env, problems);
}

const MAX_FLOW_DEPTH = 32;

/** Deepest nesting of flow collections, ignoring brackets inside quotes and comments (roughly). */
function flowDepth(source: string): number {
  let depth = 0;
  let max = 0;
  let quote = '';
  let comment = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (comment) {
      if (c === '\n') comment = false;
    } else if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') comment = true;
    else if (c === '[' || c === '{') max = Math.max(max, ++depth);
    else if (c === ']' || c === '}') depth = Math.max(0, depth - 1);
  }
  return max;
}

/** Whether some path under `prefix` could match the rule pattern `rule` (segments). */
function ruleReachesPrefix(prefix: readonly string[], rule: readonly string[]): boolean {
  for (let i = 0; i < prefix.length; i++) {
    const s = rule[i];
    if (s === undefined) return false; // the rule only matches paths above the prefix
    if (s === '*') return true;
    if (!s.startsWith(':') && s !== prefix[i]) return false;
  }
  return true;
}

function crossCheck(routes: RoutesResult | undefined, pdp: PdpResult | undefined, idps: IdpsResult | undefined, problems: Problems): void {
  // Any IdP may be used to log in (?idp=), so a route's audience must exist at every IdP.
  if (routes && idps && idps.entries.length > 0) {
    for (const r of routes.entries) {
      if (!r.audienceAt || r.route.audience === undefined) continue;
      const aud = r.route.audience;
      const shown = r.audienceAt.shown;
      const checked = idps.entries.filter((e) => e.audienceNames !== undefined);
      const lacking = checked.filter((e) => !e.audienceNames!.has(aud)).map((e) => e.idp.name);
      if (lacking.length === 0) continue;
      const msg = lacking.length === checked.length
        ? `is ${show(shown)}, but no IdP in idps.yaml defines audiences.${shown}`
        : `is ${show(shown)}, but IdP ${lacking.join(', ')} in idps.yaml do${lacking.length === 1 ? 'es' : ''} not define audiences.${shown} ` +
          '(every IdP needs it: users may log in with any of them)';
      problems.add('routes.yaml', r.audienceAt.line, r.audienceAt.key, msg);
    }
  }

  // A rule no route covers can never apply: almost always a typo in the rule or the prefix.
  if (routes?.prefixesComplete && pdp) {
    const prefixes = routes.entries.map((e) => e.route.prefix);
    const shownPrefixes = routes.entries.map((e) => e.prefixShown);
    for (const e of pdp.entries) {
      if (!e.matchOk) continue;
      if (prefixes.some((p) => ruleReachesPrefix(splitPath(p), e.rule.segments))) continue;
      problems.add('pdp.yaml', e.matchAt.line, e.matchAt.key,
        `path ${show(e.patternShown)} is under no route prefix in routes.yaml (${shownPrefixes.join(', ')}), so the rule can never apply`);
    }
  }
}

export interface ConfigValidation {
  /** The whole config, only when there is no problem at all. */
  readonly config: GoldpathConfig | undefined;
  readonly problems: ConfigProblem[];
  /**
   * pdp.yaml's policies and rules whenever its `policies:` list has no problem, even if another
   * file or one of its rules has: `goldpath check` then checks the policies too, so that all
   * problems show in one round. A rule with a problem is left out (see pdpPartial).
   */
  readonly pdp: PdpConfig | undefined;
  /** Whether `pdp` lacks rules that have problems (the policies' warnings would then mislead). */
  readonly pdpPartial?: boolean;
  /**
   * When pdp.yaml's `policies:` list has a problem (a file missing, too large...), the listed files
   * that can still be read: each is parsed alone for its syntax errors (the rest needs all of them).
   */
  readonly policiesToParse?: readonly string[];
  /** Legal but probably mistaken (Problems.warn); `goldpath check` prints them. */
  readonly warnings: ConfigProblem[];
}

/** Validates the three files; returns the config only when there is no problem. */
export async function validateConfig(dir: string, env: Env): Promise<ConfigValidation> {
  const abs = path.resolve(dir);
  const problems = new Problems();
  const isDir = await stat(abs).then((s) => s.isDirectory(), () => false);
  if (!isDir) {
    problems.add(abs, undefined, '(folder)', 'config folder not found; set GOLDPATH_CONFIG_DIR to the folder holding routes.yaml, pdp.yaml and idps.yaml');
    return { config: undefined, problems: problems.list, pdp: undefined, warnings: [] };
  }

  const [routesY, pdpY, idpsY] = await Promise.all(CONFIG_FILES.map((f) => readYaml(abs, f, env, problems)));
  const routes = routesY ? validateRoutes(routesY.root()) : undefined;
  const pdp = pdpY ? await validatePdp(pdpY.root()) : undefined;
  const idps = idpsY ? await validateIdps(idpsY.root()) : undefined;
  crossCheck(routes, pdp, idps, problems);

  if (problems.count > 0 || !routes || !pdp || !idps) {
    const inPdp = problems.list.filter((p) => p.file === 'pdp.yaml');
    if (pdp === undefined || inPdp.length === 0) {
      return { config: undefined, problems: sortProblems(problems.list), pdp: pdp && deepFreeze(pdp.config), warnings: problems.warnings };
    }
    // The policies can still be checked when only rules are wrong: a Polar slip must not wait
    // for the next round. Rules with a problem are left out; a problem in the policies list
    // leaves nothing sound to check.
    const badRules = new Set<number>();
    let policiesSound = true;
    for (const p of inPdp) {
      const m = /^rules\[(\d+)\]/.exec(p.key);
      if (m) badRules.add(Number(m[1]));
      else if (/^policies\b/.test(p.key)) policiesSound = false;
    }
    const partial = policiesSound && pdp.config.policies.length > 0
      ? deepFreeze<PdpConfig>({ policies: pdp.config.policies, rules: pdp.config.rules.filter((_, i) => !badRules.has(i)) })
      : undefined;
    return {
      config: undefined, problems: sortProblems(problems.list), pdp: partial, pdpPartial: partial !== undefined && badRules.size > 0,
      policiesToParse: policiesSound ? undefined : pdp.readablePolicies, warnings: problems.warnings,
    };
  }
  const config = deepFreeze<GoldpathConfig>({ routes: routes.config, pdp: pdp.config, idps: idps.config });
  return { config, problems: [], pdp: config.pdp, warnings: problems.warnings };
}

/**
 * Reads routes.yaml, pdp.yaml and idps.yaml from `dir`, substituting `${NAME}` and
 * `${NAME:-default}` from `env`. Throws ConfigError with every problem (file, line, key).
 */
export async function loadConfig(dir: string, env: Env): Promise<GoldpathConfig> {
  const { config, problems } = await validateConfig(dir, env);
  if (!config) throw new ConfigError(problems);
  return config;
}

/**
 * The process settings (environment) and the config folder they name, validated in one pass: the
 * ConfigError lists the environment's problems and the files' together, so that a process that
 * will not start is fixed in one round.
 */
export async function loadSettingsAndConfig(env: Env, opts: { cwd?: string } = {}): Promise<{ settings: Settings; config: GoldpathConfig }> {
  let settings: Settings | undefined;
  const problems: ConfigProblem[] = [];
  try {
    settings = loadSettings(env, opts);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  const { config, problems: inFiles } = await validateConfig(settings?.configDir ?? configDirOf(env, opts), env);
  problems.push(...inFiles);
  if (!settings || !config) throw new ConfigError(problems);
  return { settings, config };
}
