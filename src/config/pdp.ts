// pdp.yaml: which Polar files to load and how a request becomes `allow(User, action, Resource)`.
import path from 'node:path';
import type { PdpConfig, PdpRule } from './types.ts';
import { pathProblem, segmentProblem, splitPath } from './paths.ts';
import { fileProblem, MAX_POLICY_BYTES, resolvedNote } from './files.ts';
import { show, type Cursor } from './cursor.ts';

/** Methods a rule may name. TRACE and CONNECT never reach an API through the edge. */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;
const POLAR_CLASS = /^[A-Z][A-Za-z0-9_]*$/;
/** `User` is the actor; the others are Polar built-ins that a resource class must not shadow. */
const RESERVED_CLASSES = new Set(['User', 'Boolean', 'Integer', 'Float', 'String', 'List', 'Dictionary']);

export interface RuleEntry {
  readonly rule: PdpRule;
  /** Whether methods and pattern are valid (only then may other checks rely on them). */
  readonly matchOk: boolean;
  readonly matchAt: { readonly line: number | undefined; readonly key: string };
  /** The pattern, and the whole `METHODS /path`, as another problem may show them (Cursor.safe). */
  readonly patternShown: string;
  readonly shown: string;
}

export interface PdpResult {
  readonly config: PdpConfig;
  readonly entries: readonly RuleEntry[];
  /** The listed policy files that exist and can be read (a list with a missing one still has these to parse). */
  readonly readablePolicies: readonly string[];
}

/** A rule's path pattern, valid. */
interface ParsedPath {
  pattern: string;
  segments: string[];
  params: Set<string>;
}

interface ParsedMatch extends ParsedPath {
  methods: readonly string[] | '*';
}

/**
 * Parses `METHODS PATH`, reporting problems on `c`. `match` is the whole when valid; `path` the
 * path part when that is valid, even beside a bad method: resource.id is still checked against
 * its parameters, so that both mistakes show in one round.
 */
function parseMatch(c: Cursor, text: string): { match?: ParsedMatch; path?: ParsedPath } {
  const m = /^(\S+)\s+(\S+)$/.exec(text.trim());
  if (!m) {
    c.problem(`is ${c.show(text)}; expected "METHODS /path", e.g. "GET|HEAD /api/orders/:id" or "* /api/orders/*"`);
    return {};
  }
  let methodsOk = true;
  const [, methodText, pattern] = m as unknown as [string, string, string];
  let methods: string[] | '*' = '*';
  if (methodText !== '*') {
    methods = methodText.split('|');
    const seen = new Set<string>();
    for (const meth of methods) {
      if (!(HTTP_METHODS as readonly string[]).includes(meth)) {
        const hint = (HTTP_METHODS as readonly string[]).includes(meth.toUpperCase()) ? ' (methods are upper-case)' : '';
        c.problem(`has method ${c.show(meth)}${hint}; expected * or methods from ${HTTP_METHODS.join(', ')} joined by |`);
        methodsOk = false;
      } else if (seen.has(meth)) {
        c.problem(`names method ${c.safe(meth)} twice`);
        methodsOk = false;
      }
      seen.add(meth);
    }
  }

  const params = new Set<string>();
  const quote = (x: string) => c.show(x);
  const why = pathProblem(pattern, quote, (s) => {
    if (s.startsWith(':')) {
      if (!PARAM.test(s)) return `has parameter ${c.show(s)}; expected :name with name like [A-Za-z_][A-Za-z0-9_]*`;
      if (params.has(s)) return `uses parameter ${c.safe(s)} twice`;
      params.add(s);
      return undefined;
    }
    if (s === '*') return undefined;
    return segmentProblem(s, quote);
  });
  const segments = splitPath(pattern);
  let path: ParsedPath | undefined;
  if (why) c.problem(`path ${why}; got ${c.show(pattern)}`);
  else if (segments.slice(0, -1).includes('*')) {
    c.problem(`path may use * only as its last segment (it captures the rest of the path); got ${c.show(pattern)}`);
  } else path = { pattern, segments, params };
  return { path, match: methodsOk && path ? { methods, ...path } : undefined };
}

function ruleText(r: PdpRule): string {
  return `${r.methods === '*' ? '*' : r.methods.join('|')} ${r.pattern}`;
}

/**
 * A rule's path with parameter names left out, made once per rule: every rule is compared with
 * every earlier one, and making it per comparison took 1.6 s of a 2,900-rule file's 4 s check (a
 * reload blocks the sidecar while it runs).
 */
const shapes = new WeakMap<PdpRule, string>();
function shapeOf(r: PdpRule): string {
  let shape = shapes.get(r);
  if (shape === undefined) shapes.set(r, (shape = r.segments.map((s) => (s.startsWith(':') ? ':' : s)).join('/')));
  return shape;
}

/** Two rules the same request would match, written differently only in parameter names. */
function sameShape(a: PdpRule, b: PdpRule): boolean {
  if (shapeOf(a) !== shapeOf(b)) return false;
  if (a.methods === '*' || b.methods === '*') return true;
  return a.methods.some((m) => (b.methods as readonly string[]).includes(m));
}

/**
 * Whether every request `b` matches is matched by `a` too (a comes first in the file: first match
 * wins, so b would never apply). Conservative: when in doubt, not covered.
 */
function covers(a: PdpRule, b: PdpRule): boolean {
  if (a.methods !== '*' && (b.methods === '*' || !b.methods.every((m) => (a.methods as readonly string[]).includes(m)))) return false;
  const aWild = a.segments[a.segments.length - 1] === '*';
  const bWild = b.segments[b.segments.length - 1] === '*';
  const aFixed = a.segments.length - (aWild ? 1 : 0);
  const bFixed = b.segments.length - (bWild ? 1 : 0);
  // a's final * needs at least one more segment than its fixed ones; b's paths must all have it.
  if (aWild ? bFixed <= aFixed : bWild || bFixed !== aFixed) return false;
  for (let i = 0; i < aFixed; i++) {
    const s = a.segments[i]!;
    if (!s.startsWith(':') && b.segments[i] !== s) return false;
  }
  return true;
}

export async function validatePdp(root: Cursor): Promise<PdpResult> {
  const policies: string[] = [];
  const readablePolicies: string[] = [];
  const entries: RuleEntry[] = [];
  const top = root.map(['policies', 'rules'], 'a map with policies: and rules:');
  if (!top) return { config: { policies, rules: [] }, entries, readablePolicies };

  const polC = top.get('policies');
  if (polC.missing) polC.required('a list of .polar files, relative to pdp.yaml');
  else {
    // Not a list at all is one problem (seq reports it), not also "lists none".
    const items = polC.seq('a list of .polar files, relative to pdp.yaml');
    if (items?.length === 0) polC.problem('must list at least one .polar file');
    for (const item of items ?? []) {
      const s = item.string({ what: 'a path to a .polar file' });
      if (s === undefined) continue;
      const abs = path.resolve(root.y.dir, s);
      if (!abs.endsWith('.polar')) item.problem(`${item.show(s)} must end in .polar`);
      else if (policies.includes(abs)) item.problem(`${item.show(s)} is listed twice`);
      else {
        const why = await fileProblem(abs, MAX_POLICY_BYTES);
        if (why) item.problem(`${item.show(s)} ${why} ${resolvedNote(abs, (t) => item.safe(t))}`);
        else readablePolicies.push(abs);
        policies.push(abs);
      }
    }
  }

  /** The parsed rules by shape (shapeOf): a twin is looked for among its own shape only. */
  const byShape = new Map<string, RuleEntry[]>();
  const rulesC = top.get('rules');
  if (rulesC.missing) rulesC.required('a list of rules (a session route request that matches no rule is denied)');
  for (const item of rulesC.missing ? [] : rulesC.seq('a list of rules') ?? []) {
    const f = item.map(['match', 'action', 'resource'], 'a map with match:, action:, resource:');
    if (!f) continue;

    const matchC = f.get('match');
    let parsed: ParsedMatch | undefined;
    let pathPart: ParsedPath | undefined;
    if (matchC.missing) matchC.required('"METHODS /path", e.g. "GET /api/orders/:id"');
    else {
      const s = matchC.string();
      if (s !== undefined) ({ match: parsed, path: pathPart } = parseMatch(matchC, s));
    }

    let action = '';
    const actionC = f.get('action');
    if (actionC.missing) actionC.required('the Polar action, e.g. read');
    else action = actionC.string({ what: 'a non-empty string (the Polar action)' }) ?? '';

    let type = '';
    let id: string | undefined;
    const resC = f.get('resource');
    if (resC.missing) resC.required('{ type: PolarClass, id: ":param" }');
    else {
      const r = resC.map(['type', 'id'], 'a map with type: and id:');
      if (r) {
        const typeC = r.get('type');
        if (typeC.missing) typeC.required('a Polar class name such as Order');
        else {
          const s = typeC.string();
          if (s !== undefined && !POLAR_CLASS.test(s)) typeC.problem(`is ${typeC.show(s)}; expected a Polar class name like Order ([A-Z][A-Za-z0-9_]*)`);
          else if (s !== undefined && RESERVED_CLASSES.has(s)) {
            typeC.problem(`is ${typeC.safe(s)}, which is ${s === 'User' ? 'the actor class' : 'a Polar built-in class'}; choose another name`);
          } else if (s !== undefined) type = s;
        }
        const idC = r.get('id');
        if (!idC.missing) {
          id = idC.string({ allowNumber: true, what: 'a literal id or ":param"' });
          if (id !== undefined && id.startsWith(':') && pathPart && !pathPart.params.has(id)) {
            const have = [...pathPart.params].map((p) => matchC.safe(p));
            idC.problem(`is ${idC.show(id)}, which is not a parameter of ${matchC.show(pathPart.pattern)}` +
              (have.length ? ` (it has ${have.join(', ')})` : ' (it has no parameters)'));
          }
        }
      }
    }

    const rule: PdpRule = {
      methods: parsed?.methods ?? '*',
      pattern: parsed?.pattern ?? '',
      segments: parsed?.segments ?? [],
      action,
      // Only when it differs: the frozen config of a literal action stays as written.
      ...(actionC.show(action) === show(action) ? {} : { actionShown: actionC.show(action) }),
      resource: { type, id },
      line: item.line,
    };
    if (parsed) {
      // A rule an earlier one covers entirely is the more useful news (nothing of it applies).
      const cover = entries.find((e) => e.matchOk && covers(e.rule, rule));
      const twin = cover ? undefined : byShape.get(shapeOf(rule))?.find((e) => sameShape(e.rule, rule));
      if (cover) {
        matchC.problem(`can never apply: the rule at line ${cover.rule.line} (${show(cover.shown)}) matches every request it matches, ` +
          'and the first matching rule wins (put the more specific rule first, or remove this one)');
      } else if (twin) {
        const shared = twin.rule.methods === '*' ? rule.methods : rule.methods === '*' ? twin.rule.methods
          : rule.methods.filter((m) => (twin.rule.methods as readonly string[]).includes(m));
        const which = shared === '*' ? 'every request' : `${shared.join(', ')} requests`;
        matchC.problem(`overlaps the rule at line ${twin.rule.line} (${show(twin.shown)}): ${which} match both, and the first ` +
          'matching rule wins, so this one never sees them (list each method in one of the two rules only)');
      }
    }
    const entry: RuleEntry = {
      rule, matchOk: parsed !== undefined, matchAt: { line: matchC.line, key: matchC.path },
      patternShown: matchC.safe(rule.pattern), shown: matchC.safe(ruleText(rule)),
    };
    entries.push(entry);
    if (parsed) {
      const same = byShape.get(shapeOf(rule));
      if (same) same.push(entry);
      else byShape.set(shapeOf(rule), [entry]);
    }
  }

  return { config: { policies, rules: entries.map((e) => e.rule) }, entries, readablePolicies };
}
