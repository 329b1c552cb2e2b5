// Loading pdp.yaml's rules and their Polar policies into a policy engine, and what loading finds
// wrong: problems (file, line) that refuse the config, and warnings for what loads but would
// quietly deny. Pdp.load and Pdp.check (index.ts, `goldpath check`) share build(); namedByPolicy
// reads the loaded policy text when Pdp logs a policy error.
import { Buffer } from 'node:buffer';
import { FileTooLargeError, MAX_POLICY_BYTES, NotUtf8Error, readTextCapped } from '../config/files.ts';
import type { PdpConfig } from '../config/types.ts';
import type { ConfigProblem } from '../errors.ts';
import {
  PolicyLoadError, describePolicyError, loadPolicyEngine, policySyntaxErrors,
  type PolicyClass, type PolicyEngine, type PolicyErrorInfo, type PolarSource,
} from './oso-adapter.ts';
import { validateRule } from './rules.ts';
import { User, resourceClass, type ResourceClass } from './actor.ts';

// Names Polar already binds, and the actor's: a resource type cannot reuse them.
const RESERVED_TYPES = new Set(['User', 'Boolean', 'Integer', 'Float', 'String', 'List', 'Dictionary', 'nil']);
const TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PDP_FILE = 'pdp.yaml';

export interface Built {
  problems: ConfigProblem[];
  warnings: string[];
  engine: PolicyEngine | undefined;
  classes: Map<string, ResourceClass>;
  /** The policies' text without comments (see namedByPolicy). */
  text?: string;
}

export async function build(
  config: PdpConfig,
  readFile: (path: string) => Promise<string>,
): Promise<Built> {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const classes = new Map<string, ResourceClass>();

  config.rules.forEach((rule, i) => {
    const at = (key: string, message: string) =>
      problems.push(rule.line === undefined ? { file: PDP_FILE, key, message } : { file: PDP_FILE, line: rule.line, key, message });
    for (const m of validateRule(rule)) at(`rules[${i}].match`, m);
    const type = rule.resource.type;
    if (!TYPE_NAME.test(type)) at(`rules[${i}].resource.type`, `'${type}' is not a Polar class name (letters, digits, _)`);
    else if (RESERVED_TYPES.has(type)) at(`rules[${i}].resource.type`, `'${type}' is reserved (the actor is User; the others are Polar built-ins)`);
    else if (!classes.has(type)) classes.set(type, resourceClass(type));
  });

  if (config.policies.length === 0) warnings.push('pdp.yaml lists no policy files: every request with a rule will be denied');
  const sources: PolarSource[] = [];
  for (const file of config.policies) {
    try {
      const src = await readFile(file);
      // Also for a caller's readFile: the limit is the policy's, not the reader's.
      if (Buffer.byteLength(src) > MAX_POLICY_BYTES) throw new FileTooLargeError(MAX_POLICY_BYTES);
      sources.push({ filename: file, src });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const message = err instanceof FileTooLargeError || err instanceof NotUtf8Error ? err.message
        : `cannot read policy file (${typeof code === 'string' ? code : String(err)})`;
      problems.push(err instanceof NotUtf8Error ? { file, line: err.line, key: 'policies', message } : { file, key: 'policies', message });
    }
  }
  if (problems.length > 0) return { problems, warnings, engine: undefined, classes };

  const policyClasses: PolicyClass[] = [{ name: 'User', cls: User }];
  for (const [name, cls] of classes) policyClasses.push({ name, cls });
  try {
    const { engine, stubbedClasses } = await loadPolicyEngine({
      classes: policyClasses,
      sources,
      onWarning: (m) => warnings.push(`policy: ${m}`),
    });
    for (const name of stubbedClasses) {
      warnings.push(`policy names type ${name}, which no pdp.yaml rule produces (its rules never apply)`);
    }
    const text = sources.map((s) => s.src.replace(/#.*$/gm, '')).join('\n');
    for (const type of classes.keys()) {
      if (!new RegExp(`\\b${type}\\b`).test(text)) {
        warnings.push(`pdp.yaml uses resource type ${type}, which no policy mentions: those requests will be denied`);
      }
    }
    // A misspelt action (`action: wirte`) or rule name (`alow(...)`) loads fine and denies quietly.
    const warned = new Set<string>();
    for (const rule of config.rules) {
      if (warned.has(rule.action) || text.includes(JSON.stringify(rule.action))) continue;
      warned.add(rule.action);
      warnings.push(`pdp.yaml${rule.line === undefined ? '' : `:${rule.line}`} asks action ${rule.actionShown ?? JSON.stringify(rule.action)}, which no policy mentions: unless a rule allows any action, those requests will be denied`);
    }
    for (const name of unusedRuleNames(text)) {
      warnings.push(`policy rule ${name}(…) is defined but never used (allow is what goldpath asks; is it misspelt?)`);
    }
    return { problems, warnings, engine, classes, text };
  } catch (err) {
    const info = err instanceof PolicyLoadError ? err.info : describePolicyError(err);
    const seen = new Set<string>();
    const add = (e: PolicyErrorInfo) => {
      const problem = policyProblem(e, config.policies.join(', '));
      const id = `${problem.file}\0${problem.line ?? ''}\0${problem.message}`;
      if (!seen.has(id)) problems.push(problem);
      seen.add(id);
    };
    add(info);
    // Oso stops at the first error of all the files together: each other file's own syntax error
    // is found by parsing it alone, so that every broken file shows in one round.
    if (sources.length > 1) for (const e of await policySyntaxErrors(sources)) add(e);
    return { problems, warnings, engine: undefined, classes };
  }
}

/** A policy load error as a problem at its file and line. */
export function policyProblem(info: PolicyErrorInfo, files: string): ConfigProblem {
  const file = info.file ?? files;
  // The usual cause of a token the parser did not expect at the start of a line: the rule before
  // it lacks its closing `;`.
  const hint = info.column === 1 && /^did not expect to find the token/.test(info.message) ? ' (is the `;` missing at the end of the rule before it?)' : '';
  const message = info.column === undefined ? info.message : `${info.message}${hint} (column ${info.column})`;
  return info.line === undefined ? { file, key: 'policies', message } : { file, line: info.line, key: 'policies', message };
}

export const defaultReadFile = (path: string) => readTextCapped(path, MAX_POLICY_BYTES);

/** Rules Oso or goldpath call by name, whether or not a policy does. */
const ENTRY_RULES = new Set(['allow', 'allow_field', 'allow_request', 'has_role', 'has_permission', 'has_relation', 'actor_has_role_for_resource']);

/**
 * Names of rules `text` (comments removed) defines and never calls: a rule head is a name and `(`
 * at the start of a statement (after a `;`, a `{` or `}` of a resource block, or the file's start).
 * Strings are blanked first, so a `;` or `name(` inside one counts for nothing.
 */
function unusedRuleNames(text: string): string[] {
  const code = text.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const heads = new Map<string, number>();
  for (const m of code.matchAll(/(?:^|[;{}])\s*([a-z_][A-Za-z0-9_]*)\s*\(/g)) heads.set(m[1]!, (heads.get(m[1]!) ?? 0) + 1);
  const unused: string[] = [];
  for (const [name, defined] of heads) {
    if (ENTRY_RULES.has(name)) continue;
    const uses = code.match(new RegExp(`\\b${name}\\s*\\(`, 'g'))?.length ?? 0;
    if (uses <= defined) unused.push(name);
  }
  return unused;
}

/** Whether the policy text names the field `name`: `.name`, `.("name")`, or a pattern key `{name: …}`. */
export function namedByPolicy(name: string, text: string): boolean {
  const n = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`\\.\\s*${n}(?![A-Za-z0-9_])|"${n}"|[{,]\\s*${n}\\s*:`).test(text);
}
