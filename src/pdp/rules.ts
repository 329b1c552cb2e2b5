// pdp.yaml rules compiled once into segment matchers: the first rule (in file order) whose methods
// and segments match wins. No regex is built or run per request; matching is exact per segment on
// the canonical path (already decoded, no dot segments, no '//', no encoded '/').
import type { PdpRule } from '../config/types.ts';

export interface RuleMatch {
  readonly rule: PdpRule;
  /** Position of the rule in pdp.yaml (0-based). */
  readonly index: number;
  /** ':name' captures by name; a final '*' is captured as params['*'] (the rest, joined by '/'). */
  readonly params: Readonly<Record<string, string>>;
}

export type MatchRule = (method: string, canonicalPath: string) => RuleMatch | null;

interface CompiledRule {
  readonly rule: PdpRule;
  readonly index: number;
  readonly methods: ReadonlySet<string> | null;
  /** Per fixed segment: the literal to compare, or null for a ':param' capture. */
  readonly literals: readonly (string | null)[];
  readonly names: readonly (string | null)[];
  /** The literals in lower case (null for a capture), for comparisons that ignore letter case. */
  readonly lower: readonly (string | null)[];
  /** A final '*': one or more further segments (so /api/* matches /api/x and /api/, not /api). */
  readonly wildcard: boolean;
}

/** Whether `s` holds a character that case folding may change (ASCII upper case, or any non-ASCII). */
function mayFold(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 65 && c <= 90) || c >= 0x80) return true;
  }
  return false;
}

/** `seg` equals `lower` (a lower-case literal) ignoring letter case; no allocation for ASCII. */
function equalsIgnoringCase(lower: string, seg: string): boolean {
  if (seg.length === lower.length) {
    let i = 0;
    for (; i < seg.length; i++) {
      let a = seg.charCodeAt(i);
      const b = lower.charCodeAt(i);
      if (a >= 0x80 || b >= 0x80) break;
      if (a >= 65 && a <= 90) a += 32;
      if (a !== b) return false;
    }
    if (i === seg.length) return true;
  } else if (!mayFold(seg) && !mayFold(lower)) return false;
  return lower === seg.toLowerCase();
}

/** Problems that make a rule unusable, as `message` strings (the caller adds file and line). */
export function validateRule(rule: PdpRule): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  rule.segments.forEach((seg, i) => {
    if (seg === '*' && i !== rule.segments.length - 1) out.push(`'*' is only allowed as the last segment of ${rule.pattern}`);
    if (seg.startsWith(':')) {
      const name = seg.slice(1);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) out.push(`invalid parameter name '${seg}' in ${rule.pattern}`);
      else if (seen.has(name)) out.push(`parameter '${seg}' appears twice in ${rule.pattern}`);
      seen.add(name);
    }
  });
  const id = rule.resource.id;
  if (id !== undefined && id.startsWith(':') && !seen.has(id.slice(1))) {
    out.push(`resource id '${id}' names no parameter of ${rule.pattern}`);
  }
  if (rule.methods !== '*' && rule.methods.length === 0) out.push(`no method in ${rule.pattern}`);
  return out;
}

/**
 * From how many rules a match looks its candidates up (byLength below) instead of trying every
 * rule: with 3,000 rules a scan took ~24 µs a match, the lookup ~2 µs; with a few dozen the scan is
 * as fast, and simpler.
 */
const INDEX_FROM = 64;

/** The rules a path of some number of segments may match, by one segment's literal. */
interface Bucket {
  /** The segment (1-based) whose lower-cased literal picks the candidates; 0: all of them (`any`). */
  readonly at: number;
  readonly byLiteral: ReadonlyMap<string, readonly CompiledRule[]>;
  /** Those with a parameter at `at`, or their final '*' there: candidates whatever it holds. */
  readonly any: readonly CompiledRule[];
}

/**
 * For each number of segments n, the rules that can match a path of n segments (n fixed ones, or
 * fewer and a final '*'), split by the literal of the segment that splits them best. Keys are
 * lower-cased, so a bucket holds the rules a segment matches exactly and those it matches ignoring
 * case (equalsIgnoringCase compares `lower` with the segment's toLowerCase()): the checks of
 * ambiguity below see every rule the scan would have given them.
 */
function byLength(compiled: readonly CompiledRule[]): (segs: readonly string[], n: number, test: (c: CompiledRule) => boolean) => CompiledRule | undefined {
  const maxK = compiled.reduce((m, c) => Math.max(m, c.literals.length), 0);
  const buckets: Bucket[] = [];
  for (let n = 0; n <= maxK + 1; n++) { // beyond maxK + 1 segments, only rules with a '*' match: those of maxK + 1
    const all = compiled.filter((c) => (c.wildcard ? c.literals.length < n : c.literals.length === n));
    let best: Bucket = { at: 0, byLiteral: new Map(), any: all };
    let bestWorst = all.length;
    for (let at = 1; at <= n; at++) {
      const byLiteral = new Map<string, CompiledRule[]>();
      const any: CompiledRule[] = [];
      for (const c of all) {
        const lower = at <= c.lower.length ? c.lower[at - 1] : null;
        if (lower === null || lower === undefined) any.push(c);
        else (byLiteral.get(lower) ?? byLiteral.set(lower, []).get(lower)!).push(c);
      }
      let worst = any.length;
      for (const list of byLiteral.values()) worst = Math.max(worst, list.length + any.length);
      if (worst < bestWorst) {
        best = { at, byLiteral, any };
        bestWorst = worst;
      }
    }
    buckets.push(best);
  }
  const none: readonly CompiledRule[] = [];
  // The first rule passing `test`, in file order: the bucket's two lists walked as one.
  return (segs, n, test) => {
    const b = buckets[Math.min(n, buckets.length - 1)]!;
    const hits = b.at === 0 ? none : (b.byLiteral.get(segs[b.at]!.toLowerCase()) ?? none);
    const any = b.any;
    for (let i = 0, j = 0; i < hits.length || j < any.length;) {
      const c = j >= any.length || (i < hits.length && hits[i]!.index < any[j]!.index) ? hits[i++]! : any[j++]!;
      if (test(c)) return c;
    }
    return undefined;
  };
}

export function compileRules(rules: readonly PdpRule[], opts: { indexFrom?: number } = {}): MatchRule {
  const compiled: CompiledRule[] = rules.map((rule, index) => {
    const last = rule.segments.length - 1;
    const wildcard = last >= 0 && rule.segments[last] === '*';
    const fixed = wildcard ? rule.segments.slice(0, last) : rule.segments;
    return {
      rule,
      index,
      methods: rule.methods === '*' ? null : new Set(rule.methods.map((m) => m.toUpperCase())),
      literals: fixed.map((s) => (s.startsWith(':') ? null : s)),
      names: fixed.map((s) => (s.startsWith(':') ? s.slice(1) : null)),
      lower: fixed.map((s) => (s.startsWith(':') ? null : s.toLowerCase())),
      wildcard,
    };
  });
  // The rules a path without upper-case (or non-ASCII) letters can match only when case is
  // ignored: those with such a literal (`GET /api/Reports/summary` for /api/reports/summary).
  const foldable = compiled.filter((c) => c.literals.some((l) => l !== null && mayFold(l)));
  const isFoldable = new Set(foldable);

  /** Whether rule `c` matches the segments (`n` of them after the leading ''), literals compared exactly or ignoring case. */
  const matches = (c: CompiledRule, segs: readonly string[], n: number, ignoreCase: boolean): boolean => {
    const k = c.literals.length;
    if (c.wildcard ? n <= k : n !== k) return false;
    for (let i = 0; i < k; i++) {
      const lit = c.literals[i];
      const seg = segs[i + 1]!;
      if (lit !== null) {
        if (lit !== seg && !(ignoreCase && equalsIgnoringCase(c.lower[i]!, seg))) return false;
      } else if (seg === '') return false; // a parameter is never empty
    }
    return true;
  };

  const indexed = compiled.length >= (opts.indexFrom ?? INDEX_FROM) ? byLength(compiled) : undefined;
  /** The first rule, in file order, among those that may match a path of `n` segments (`scan` when not indexed), that passes `test`. */
  const first = (segs: readonly string[], n: number, scan: readonly CompiledRule[], test: (c: CompiledRule) => boolean) => {
    if (indexed !== undefined) return indexed(segs, n, test);
    for (const c of scan) if (test(c)) return c;
    return undefined;
  };

  return (method, path) => {
    if (path.charCodeAt(0) !== 0x2f /* / */) return null;
    const segs = path.split('/'); // segs[0] is the empty string before the leading '/'
    const n = segs.length - 1;
    const m = method.toUpperCase();
    const allows = (c: CompiledRule) => c.methods === null || c.methods.has(m);
    const hit = first(segs, n, compiled, (c) => allows(c) && matches(c, segs, n, false));
    if (hit === undefined) return null;
    // A rule that matches only when letter case is ignored names what a case-insensitive upstream
    // router (@koa/router and Express by default, ASP.NET Core) may serve for this path: with
    // rules `GET /api/orders/admin` then `GET /api/orders/:id`, /api/orders/ADMIN would be
    // judged as an order here and served as admin there. Such a path matches no rule (denied).
    // Also for a path in lower case, against a rule whose literal is not (`GET /api/Reports/summary`
    // above `GET /api/reports/:id`: /api/reports/summary is the summary there).
    const folds = mayFold(path);
    if (folds || foldable.length > 0) {
      const other = first(segs, n, folds ? compiled : foldable, (c) => c !== hit && (folds || isFoldable.has(c)) && allows(c)
        && !matches(c, segs, n, false) && matches(c, segs, n, true));
      if (other !== undefined) return null;
    }
    // The same for a `.format` suffix on the last segment, which Rails routes and Spring MVC (up
    // to 5.2) strip: with the rules above, /api/orders/admin.json is an order here and admin
    // there. Denied when the path without it has another first rule (one that matches nothing is
    // no sign of ambiguity); a literal that holds the dot is the rule's own.
    const last = segs[n]!;
    const dot = last.indexOf('.', 1);
    if (dot > 0 && hit.literals[n - 1] !== last) {
      const bare = segs.slice();
      bare[n] = last.slice(0, dot);
      const other = first(bare, n, compiled, (c) => allows(c) && matches(c, bare, n, false));
      if (other !== undefined && other !== hit) return null;
    }
    // The same for a '?' or '#' in the path, which only a percent-encoding (%3F, %23) puts there:
    // servers that decode the path and then read it as a URL again end it there (urlEnd): with the
    // rules above, /api/orders/admin%3F is an order here and admin there. Denied unless the path
    // cut there has this same rule: also when it has none, which the upstream then serves unjudged.
    const end = urlEnd(path);
    if (end > 0) {
      const cut = path.slice(0, end).split('/');
      const other = first(cut, cut.length - 1, compiled, (c) => allows(c) && matches(c, cut, cut.length - 1, false));
      if (other !== hit) return null;
    }
    // The same for a trailing '/', which most upstream routers ignore (@koa/router and Express by
    // default, ASP.NET Core, Spring MVC up to 5.3): only a final '*' matches such a path here, but
    // with `GET /api/orders` (admin) and `GET /api/orders/*` (reader), /api/orders/ is the list
    // there. Denied unless the path without it has this same rule: also when it has none, as
    // /api/orders is then denied (no rule) and /api/orders/, judged as an order with an empty
    // rest (`not f.params.("*").startsWith("admin/")` holds for it), reached the list.
    if (hit.wildcard && n > 1 && last === '') {
      const other = first(segs, n - 1, compiled, (c) => allows(c) && matches(c, segs, n - 1, false));
      if (other !== hit) return null;
    }
    const k = hit.literals.length;
    // Null prototype: a parameter named like an Object.prototype member stays plain data.
    const params: Record<string, string> = Object.create(null);
    for (let i = 0; i < k; i++) {
      const name = hit.names[i];
      if (name !== null && name !== undefined) params[name] = segs[i + 1]!;
    }
    if (hit.wildcard) params['*'] = segs.slice(k + 1).join('/');
    return { rule: hit.rule, index: hit.index, params };
  };
}

/**
 * Where a decoded path ends for a server that decodes it and then reads it as a URL again: at its
 * first '?' or '#' (which only %3F or %23 puts in a path), or -1 when it holds neither. Apache's
 * mod_rewrite does so when it substitutes a decoded path (before 2.4.60, and with UnsafeAllow3F
 * after: CVE-2024-38474), as does a handler that parses `decodeURIComponent(req.url)`.
 */
export function urlEnd(path: string): number {
  const q = path.indexOf('?');
  const h = path.indexOf('#');
  return q < 0 ? h : h < 0 ? q : Math.min(q, h);
}

/** The resource id a rule's template yields: ':name' → the parameter, a literal as is, none → null. */
export function resourceId(rule: PdpRule, params: Readonly<Record<string, string>>): string | null {
  const t = rule.resource.id;
  if (t === undefined) return null;
  if (t.startsWith(':')) return params[t.slice(1)] ?? null;
  return t;
}
