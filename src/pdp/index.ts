// The policy decision point: a request (method, canonical path, route name) is mapped by pdp.yaml to
// an (action, resource) pair and asked to the Polar policy as allow(User, action, Resource).
// Fails closed: no rule, a deny, or a policy that throws are all `allow: false`; decide() never throws.
import type { PdpConfig, PdpRule } from '../config/types.ts';
import type { ConfigProblem } from '../errors.ts';
import { PoliciesRefused } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { SessionUser } from '../session/types.ts';
import { DecisionCache, decisionKey } from './decision-cache.ts';
import { describePolicyError, policySyntaxErrors, type PolicyEngine, type PolarSource } from './oso-adapter.ts';
import { compileRules, resourceId, type MatchRule, type RuleMatch } from './rules.ts';
import { User, actorKeyOf, noting, type Misses, type ResourceClass, type ResourceFields } from './actor.ts';
import { build, defaultReadFile, namedByPolicy, policyProblem, type Built } from './load.ts';

export type { RuleMatch } from './rules.ts';
export { User, actorKeyOf, type ResourceFields } from './actor.ts';

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

const MAX_LOGGED_ERRORS = 1000;

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

  /** Loads rules and policies; rejects with a ConfigError (PoliciesRefused) naming each file, line and message. */
  static async load(config: PdpConfig, opts: PdpLoadOptions): Promise<Pdp> {
    const built = await build(config, opts.readFile ?? defaultReadFile);
    if (built.problems.length > 0 || built.engine === undefined) throw new PoliciesRefused(built.problems);
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
