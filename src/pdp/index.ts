// The policy decision point: a request (method, canonical path, route name) is mapped by pdp.yaml to
// an (action, resource) pair and asked to the Polar policy as allow(User, action, Resource).
// Fails closed: no rule, a deny, or a policy that throws are all `allow: false`; decide() never throws.
import { Buffer } from 'node:buffer';
import { FileTooLargeError, MAX_POLICY_BYTES, readTextCapped } from '../config/files.ts';
import type { PdpConfig, PdpRule } from '../config/types.ts';
import type { ConfigProblem } from '../errors.ts';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { SessionUser } from '../session/types.ts';
import { DecisionCache, actorKey, decisionKey } from './decision-cache.ts';
import {
  PolicyLoadError, describePolicyError, loadPolicyEngine, policySyntaxErrors,
  type PolicyClass, type PolicyEngine, type PolicyErrorInfo, type PolarSource,
} from './oso-adapter.ts';
import { compileRules, resourceId, validateRule, type MatchRule, type RuleMatch } from './rules.ts';

export type { RuleMatch } from './rules.ts';

export type Decision = {
  readonly allow: boolean;
  readonly outcome: 'allow' | 'deny' | 'no_rule' | 'error';
  /** The matching rule as `METHODS /pattern` (absent for no_rule). */
  readonly rule?: string;
};

export interface PdpRequest {
  /** The original request method (X-Forwarded-Method). */
  readonly method: string;
  /** The canonical path (see src/verify/canonical-uri.ts). */
  readonly path: string;
  /** The routes.yaml route name. */
  readonly route: string;
}

/** The request a decision is for: its id goes on the policy-error line (read only then). */
export interface DecisionScope {
  readonly requestId: string;
}

export interface PdpLoadOptions {
  readonly log: Logger;
  /** Reads a policy file as UTF-8 (default: node:fs). */
  readonly readFile?: (path: string) => Promise<string>;
  /** false: never cache (benchmarks, debugging). Default true. */
  readonly cache?: boolean;
  /** Bound on cached decisions. Default 50,000. */
  readonly cacheSize?: number;
}

export interface PdpCheckResult {
  readonly problems: ConfigProblem[];
  readonly warnings: string[];
}

const inspectCustom = Symbol.for('nodejs.util.inspect.custom');

/**
 * The claims Polar sees (`user.claims.tenant`): a frozen copy with no prototype methods, so a
 * claim the IdP did not send is simply absent. Handed to Oso by reference (an external instance),
 * hence the short repr: Oso renders every value with util.inspect, and claims can be personal.
 * A class instance, not Object.create(null): V8 keeps those in slow dictionary mode, ~10 times the
 * memory of a copy whose shape is shared by every user with the same claim names.
 */
class Claims {
  constructor(c: Readonly<Record<string, unknown>>, seen: Map<object, unknown> = new Map()) {
    seen.set(c, this);
    // `__proto__` as an assignment would set the prototype, never a claim worth reading. A claim
    // whose value is undefined is absent (JSON has no undefined, and the decision-cache key, made
    // with JSON.stringify, drops it: kept, {tenant: undefined} matched {tenant: _} and its allow
    // was served to users without the claim).
    for (const k of Object.keys(c)) {
      const v = c[k];
      if (k !== '__proto__' && v !== undefined) (this as Record<string, unknown>)[k] = claimValue(v, seen);
    }
    Object.freeze(this);
  }
}

/**
 * Nested objects, in lists too, are Claims as well: a plain object shows Object.prototype to Oso
 * (which asks `name in object`), so `user.claims.tenant_roles.(key)` held for the key
 * `constructor` from a path, and `{org: {toString: _}}` matched every org. Cycles (not from JSON)
 * stay cycles.
 */
function claimValue(v: unknown, seen: Map<object, unknown>): unknown {
  if (v === null || typeof v !== 'object') return v;
  const known = seen.get(v);
  if (known !== undefined) return known;
  if (Array.isArray(v)) {
    const list: unknown[] = [];
    seen.set(v, list);
    for (const x of v) list.push(claimValue(x, seen));
    return Object.freeze(list);
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null ? new Claims(v as Record<string, unknown>, seen) : v;
}
Object.setPrototypeOf(Claims.prototype, null);
Reflect.deleteProperty(Claims.prototype, 'constructor');
Object.defineProperty(Claims.prototype, inspectCustom, { value: () => '{claims}' });

/** The first field a query asked of an object that does not have it. */
interface Misses {
  field: string | undefined;
}

/**
 * The object itself, for Polar, noting in `misses` every field asked of it that it lacks. Oso
 * reports such a lookup to the Polar VM as an application error, which the VM raises (with the
 * policy line), except under `not` (and `matches`): there it is a mere failed subgoal, so
 * `not order.owner = "x"` on an Order without `owner` succeeded, and allowed. The actor's and the
 * resources' fields are fixed: a field they lack is always a policy bug, and a query that met one
 * is an error, wherever it met it. (Claims are not wrapped: a claim the IdP did not send is
 * absent, and `claims matches {tenant: t}` is the documented guard.)
 */
function noting<T extends object>(o: T, on: string, misses: Misses): T {
  return new Proxy(o, {
    has(target, key) {
      // Own fields only: what they inherit (toString, constructor…) is no field of theirs, and
      // `user matches {toString: _}` or `r.params.(segment)` with a segment `constructor` held.
      const has = typeof key === 'string' ? Object.hasOwn(target, key) : Reflect.has(target, key);
      if (!has && typeof key === 'string') misses.field ??= `${key} not found on ${on}`;
      return has;
    },
  });
}

/**
 * The actor Polar sees. Short repr: Oso renders every value it is handed with util.inspect (cost on
 * every query, and the text lands in error traces); the sub is enough to debug with.
 * The lists are the session's own: Oso converts a list to a Polar value when a policy reads it,
 * so a policy can never change them.
 */
export class User {
  readonly id: string;
  readonly idp: string;
  readonly email: string | null;
  readonly roles: readonly string[];
  readonly groups: readonly string[];
  readonly scopes: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
  constructor(u: SessionUser) {
    this.id = u.sub;
    this.idp = u.idp;
    this.email = u.email ?? null;
    this.roles = u.roles;
    this.groups = u.groups;
    this.scopes = u.scopes;
    this.claims = new Claims(u.claims) as Readonly<Record<string, unknown>>;
    Object.freeze(this);
  }
  [inspectCustom](): string {
    return `User<${this.id}>`;
  }
}

/** The fields every resource has; the class (its Polar name) is the rule's resource type. */
export interface ResourceFields {
  readonly id: string | null;
  readonly params: Readonly<Record<string, string>>;
  readonly path: string;
  readonly method: string;
  readonly route: string;
}

type ResourceClass = new (f: ResourceFields) => ResourceFields;

/** A real class named `name`, so `order: Order` specialisers match and reprs read naturally. */
function resourceClass(name: string): ResourceClass {
  const holder = {
    [name]: class implements ResourceFields {
      // Only a rule with an `id:` template gives its resource an id. Without one, reading it is a
      // policy bug, an error like any missing field: as nil, `doc.id = user.email` held for every
      // user without an email (nil = nil), on every request of such a rule.
      declare readonly id: string | null;
      readonly params: Readonly<Record<string, string>>;
      readonly path: string;
      readonly method: string;
      readonly route: string;
      constructor(f: ResourceFields) {
        if (f.id !== null) Object.defineProperty(this, 'id', { value: f.id, enumerable: true });
        this.params = f.params;
        this.path = f.path;
        this.method = f.method;
        this.route = f.route;
      }
      [inspectCustom](): string {
        return `${name}<${this.id ?? ''}>`;
      }
    },
  };
  return holder[name]!;
}

// The decision-cache key of each SessionUser object: a cached session hands out the same object
// for its life, so the digest is made once per session. The actor itself is made per Oso query
// (~0.3 µs against the query's ~70): kept, it would cost every active session ~150 bytes more.
const actorKeys = new WeakMap<SessionUser, string>();
/** Everything Polar can see of the actor, as a digest (throws for claims JSON cannot hold). */
export function actorKeyOf(user: SessionUser): string {
  let key = actorKeys.get(user);
  if (key === undefined) {
    key = actorKey(new User(user));
    actorKeys.set(user, key);
  }
  return key;
}

// Names Polar already binds, and the actor's: a resource type cannot reuse them.
const RESERVED_TYPES = new Set(['User', 'Boolean', 'Integer', 'Float', 'String', 'List', 'Dictionary', 'nil']);
const TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PDP_FILE = 'pdp.yaml';
const MAX_LOGGED_ERRORS = 1000;

interface Built {
  problems: ConfigProblem[];
  warnings: string[];
  engine: PolicyEngine | undefined;
  classes: Map<string, ResourceClass>;
  /** The policies' text without comments (see namedByPolicy). */
  text?: string;
}

async function build(
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
      const message = err instanceof FileTooLargeError ? err.message
        : `cannot read policy file (${typeof code === 'string' ? code : String(err)})`;
      problems.push({ file, key: 'policies', message });
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
function policyProblem(info: PolicyErrorInfo, files: string): ConfigProblem {
  const file = info.file ?? files;
  // The usual cause of a token the parser did not expect at the start of a line: the rule before
  // it lacks its closing `;`.
  const hint = info.column === 1 && /^did not expect to find the token/.test(info.message) ? ' (is the `;` missing at the end of the rule before it?)' : '';
  const message = info.column === undefined ? info.message : `${info.message}${hint} (column ${info.column})`;
  return info.line === undefined ? { file, key: 'policies', message } : { file, line: info.line, key: 'policies', message };
}

const defaultReadFile = (path: string) => readTextCapped(path, MAX_POLICY_BYTES);

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
function namedByPolicy(name: string, text: string): boolean {
  const n = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`\\.\\s*${n}(?![A-Za-z0-9_])|"${n}"|[{,]\\s*${n}\\s*:`).test(text);
}

function ruleName(rule: PdpRule): string {
  return `${rule.methods === '*' ? '*' : rule.methods.join('|')} ${rule.pattern}`;
}

const NO_RULE: Decision = Object.freeze({ allow: false, outcome: 'no_rule' });

/**
 * How Polar ends a query that ran away: unbounded recursion at its goal limit after ~7 s, a loop
 * at its 30 s timeout (neither can be set in its WebAssembly build), the query holding the event
 * loop all along: every other request of the process waits. Known by Polar's own messages, not by
 * time: concurrent queries interleave, so a fast error in a burst took as long as the burst.
 */
const RUNAWAY = /Goal stack overflow|Query timeout/;
/** How long a rule whose query ran away is denied without a query (then one is tried again). */
const RUNAWAY_PAUSE_MS = 60_000;

export class Pdp {
  /** Non-fatal findings from loading (unknown specialisers, unused types...). */
  readonly warnings: readonly string[];
  readonly #engine: PolicyEngine;
  readonly #match: MatchRule;
  readonly #classes: Map<string, ResourceClass>;
  readonly #log: Logger;
  readonly #cache: DecisionCache<Decision> | null;
  readonly #inflight = new Map<string, Promise<Decision>>();
  /** Per rule index: the allow, deny and error decisions (shared frozen objects). */
  readonly #decisions: { allow: Decision; deny: Decision; error: Decision }[];
  readonly #loggedErrors = new Set<string>();
  /** The policies' text, to tell a field name the policy wrote from one a query computed. */
  readonly #text: string;
  /** Per rule index: until when (performance.now()) it is denied without a query, after a runaway. */
  readonly #pausedUntil: Float64Array;
  #active = 0;
  #closed = false;

  private constructor(built: Built, engine: PolicyEngine, config: PdpConfig, opts: PdpLoadOptions) {
    this.warnings = Object.freeze([...built.warnings]);
    this.#engine = engine;
    this.#match = compileRules(config.rules);
    this.#classes = built.classes;
    this.#log = opts.log;
    this.#text = built.text ?? '';
    this.#cache = opts.cache === false ? null : new DecisionCache<Decision>(opts.cacheSize);
    this.#pausedUntil = new Float64Array(config.rules.length);
    this.#decisions = config.rules.map((r) => {
      const rule = ruleName(r);
      return {
        allow: Object.freeze({ allow: true, outcome: 'allow', rule }),
        deny: Object.freeze({ allow: false, outcome: 'deny', rule }),
        error: Object.freeze({ allow: false, outcome: 'error', rule }),
      };
    });
  }

  /** Loads rules and policies; rejects with a ConfigError naming each file, line and message. */
  static async load(config: PdpConfig, opts: PdpLoadOptions): Promise<Pdp> {
    const built = await build(config, opts.readFile ?? defaultReadFile);
    if (built.problems.length > 0 || built.engine === undefined) throw new ConfigError(built.problems);
    for (const w of built.warnings) opts.log.warn({ warning: w }, 'pdp: policy warning');
    return new Pdp(built, built.engine, config, opts);
  }

  /**
   * The syntax errors of each file parsed alone (files that cannot be read are skipped: the caller
   * reported them): what can be said of policies whose list has a problem.
   */
  static async syntaxProblems(files: readonly string[]): Promise<ConfigProblem[]> {
    const sources: PolarSource[] = [];
    for (const file of files) {
      const src = await defaultReadFile(file).catch(() => undefined);
      if (src !== undefined) sources.push({ filename: file, src });
    }
    return (await policySyntaxErrors(sources)).map((e) => policyProblem(e, files.join(', ')));
  }

  /** Offline validation for `goldpath check`: loads into a throwaway engine, never throws on bad input. */
  static async check(
    config: PdpConfig,
    opts: { readFile?: (path: string) => Promise<string> } = {},
  ): Promise<PdpCheckResult> {
    const { problems, warnings, engine } = await build(config, opts.readFile ?? defaultReadFile);
    engine?.free();
    return { problems, warnings };
  }

  /** The rule a request maps to (first match in file order), or null. */
  matchRule(method: string, path: string): RuleMatch | null {
    return this.#match(method, path);
  }

  /** Number of cached decisions (metrics). */
  get cacheSize(): number {
    return this.#cache?.size ?? 0;
  }

  /**
   * Releases the policy engine once the decisions in flight have finished. Call it on the old Pdp
   * after swapping in a reloaded one (Oso's memory is not garbage-collected). Later decisions that
   * need the engine are errors (denied); cached ones are still served.
   */
  close(): void {
    this.#closed = true;
    if (this.#active === 0) this.#engine.free();
  }

  /**
   * `user` may be a function, called only when the policy engine must be asked, with `actorKey`
   * (actorKeyOf of that user) for the decision cache: a caller that keeps the key (the verify
   * chain's session memo) then answers a cached decision without materialising the user at all.
   * `scope`: the request asking, whose id a policy-error line carries (the verify chain hands its
   * state in, so nothing is made per request, and its id is read only if the line is logged).
   */
  decide(user: SessionUser | (() => SessionUser), request: PdpRequest, actorKey?: string, scope?: DecisionScope): Promise<Decision> {
    return this.#decide(typeof user === 'function' ? user : () => user, request, this.#cache, actorKey, scope);
  }

  /** Always asks the policy engine (benchmarks: the cost of one Oso query). */
  decideUncached(user: SessionUser, request: PdpRequest): Promise<Decision> {
    return this.#decide(() => user, request, null, undefined, undefined);
  }

  async #decide(userOf: () => SessionUser, request: PdpRequest, cache: DecisionCache<Decision> | null, actor: string | undefined, scope: DecisionScope | undefined): Promise<Decision> {
    let m: RuleMatch | null = null;
    let user: SessionUser | undefined;
    try {
      m = this.#match(request.method, request.path);
      if (m === null) return NO_RULE;
      const method = request.method.toUpperCase();
      const fields: ResourceFields = {
        id: resourceId(m.rule, m.params),
        params: m.params,
        path: request.path,
        method,
        route: request.route,
      };
      if (cache === null) return await this.#query(m, (user = userOf()), fields, scope);

      let key: string;
      try {
        key = decisionKey(actor ?? actorKeyOf((user = userOf())), m.index, fields);
      } catch {
        // Claims that cannot be serialised (not from JSON, e.g. a cycle): still answer, uncached.
        return await this.#query(m, (user ??= userOf()), fields, scope);
      }
      const hit = cache.get(key);
      if (hit !== undefined) return hit;
      // Concurrent identical questions share one query.
      let pending = this.#inflight.get(key);
      if (pending === undefined) {
        pending = this.#query(m, (user ??= userOf()), fields, scope).then((d) => {
          if (d.outcome !== 'error') cache.set(key, d);
          return d;
        }).finally(() => this.#inflight.delete(key));
        this.#inflight.set(key, pending);
      }
      return await pending;
    } catch (err) {
      // Only reachable through a bug outside the policy (#query catches policy errors): fail closed.
      this.#logPolicyError(m, user, err, scope);
      return m === null ? Object.freeze({ allow: false, outcome: 'error' }) : this.#decisions[m.index]!.error;
    }
  }

  async #query(m: RuleMatch, user: SessionUser, fields: ResourceFields, scope: DecisionScope | undefined): Promise<Decision> {
    const d = this.#decisions[m.index]!;
    if (this.#closed) return d.error;
    const paused = this.#pausedUntil[m.index]!;
    if (paused !== 0 && paused > performance.now()) return d.error;
    this.#active++;
    try {
      const type = m.rule.resource.type;
      const Resource = this.#classes.get(type)!;
      const misses: Misses = { field: undefined };
      const resource = new Resource({ ...fields, params: noting(fields.params, `${type}.params`, misses) });
      const allowed = await this.#engine.isAllowed(noting(new User(user), 'User', misses), m.rule.action, noting(resource, type, misses));
      // A lookup Polar did not raise (under `not`): the answer rests on a policy bug.
      if (misses.field !== undefined) throw new Error(`Application error: ${misses.field}.`);
      return allowed ? d.allow : d.deny;
    } catch (err) {
      this.#logPolicyError(m, user, err, scope);
      if (RUNAWAY.test(String((err as { message?: unknown } | null)?.message))) this.#pause(m, scope);
      return d.error;
    } finally {
      if (--this.#active === 0 && this.#closed) this.#engine.free();
    }
  }

  /**
   * A rule whose query ran away is denied (a policy error, fail closed) without asking the policy
   * for RUNAWAY_PAUSE_MS: otherwise each request for it stops the whole process for seconds,
   * health checks included, and any signed-in user could keep it stopped. For every user: a
   * runaway that only some users' data causes (a recursive walk of a claim's list) then denies
   * the rule to the others too, but the process keeps answering everything else; paused per user,
   * a policy that runs away for everyone would stop the process once for each.
   */
  #pause(m: RuleMatch, scope: DecisionScope | undefined): void {
    this.#pausedUntil[m.index] = performance.now() + RUNAWAY_PAUSE_MS;
    this.#log.error({ reqId: scope?.requestId, rule: ruleName(m.rule), pause_s: RUNAWAY_PAUSE_MS / 1000 },
      'pdp: a policy query ran away (unbounded recursion?) and held the process until Polar stopped it: the rule is denied without a query for a while; fix the policy');
  }

  /**
   * Once per (rule, error): a throwing policy would otherwise log on every request. No user data but
   * sub. The request id is the one that met the error first (concurrent identical questions share
   * one query, and its line).
   */
  #logPolicyError(m: RuleMatch | null, user: SessionUser | undefined, err: unknown, scope: DecisionScope | undefined): void {
    try {
      const described = describePolicyError(err, { hideValues: true });
      // A missing field's name is what the author needs, when the policy wrote it; looked up by a
      // variable (`u.claims.roles.(t)` with t a claim), it is a value of the query: not logged.
      const info = { ...described, message: described.message.replace(/attribute '([^']*)' not found/, (all, name: string) =>
        namedByPolicy(name, this.#text) ? all : "attribute '…' not found") };
      const once = `${m?.index ?? -1}\0${info.message}\0${info.file ?? ''}:${info.line ?? ''}`;
      if (this.#loggedErrors.has(once)) return;
      if (this.#loggedErrors.size < MAX_LOGGED_ERRORS) this.#loggedErrors.add(once);
      this.#log.error({
        reqId: scope?.requestId,
        rule: m ? ruleName(m.rule) : undefined,
        action: m?.rule.action,
        resource_type: m?.rule.resource.type,
        sub: user?.sub,
        policy_error: info.message,
        policy_file: info.file,
        policy_line: info.line,
      }, 'pdp: policy error, request denied (logged once per rule and error)');
    } catch {
      // Logging must not turn a denial into an exception.
    }
  }
}
