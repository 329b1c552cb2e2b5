// Decisions cached on the full input of the Oso query. An Oso query costs a few hundred µs; the same
// user asking the same question again is the common case (SPA polling, lists then details).
//
// No TTL: the policy and rules are fixed for the life of a Pdp, and a reload builds a new Pdp (and
// cache) that the caller swaps in atomically. Same input + same policy = same answer.
import { createHash } from 'node:crypto';
import { flatCopy } from '../strings.ts';

/**
 * Two generations of at most max/2 entries each: when the young one fills, the old one is dropped.
 * Bounded, O(1), no per-hit bookkeeping; entries still in use are promoted on hit so they survive.
 * Keys are looked up as built (concatenated, per call) and stored as flat copies (strings.ts).
 */
export class DecisionCache<V> {
  readonly #half: number;
  #young = new Map<string, V>();
  #old = new Map<string, V>();

  constructor(maxEntries = 50_000) {
    this.#half = Math.max(1, Math.floor(maxEntries / 2));
  }

  get(key: string): V | undefined {
    const v = this.#young.get(key);
    if (v !== undefined) return v;
    const o = this.#old.get(key);
    if (o !== undefined) this.set(key, o);
    return o;
  }

  set(key: string, value: V): void {
    if (this.#young.size >= this.#half) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(flatCopy(key), value);
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  clear(): void {
    this.#young = new Map();
    this.#old = new Map();
  }
}

/** Everything Polar can see of the actor, as a fixed-size digest (see User.cacheKey). */
export function actorKey(user: {
  id: string; idp: string; email: string | null; roles: readonly string[]; groups: readonly string[];
  scopes: readonly string[]; claims: Readonly<Record<string, unknown>>;
}): string {
  return digest(JSON.stringify([user.id, user.idp, user.email, user.roles, user.groups, user.scopes, user.claims]));
}

/**
 * The key of one decision: the actor's digest, the rule, the complete resource and the action.
 * Long ones (long paths) are digested to bound memory; the others are used as they are, because a
 * SHA-256 per lookup would cost more than the lookup (scenario (f) of the benchmark: every
 * request of one user asks about another resource).
 */
export function decisionKey(actor: string, rule: number, input: {
  action: string;
  type: string;
  id: string | null;
  params: Readonly<Record<string, string>>;
  path: string;
  method: string;
  route: string;
}): string {
  const s = JSON.stringify([input.action, input.type, input.id, input.params, input.path, input.method, input.route]);
  return actor + '|' + rule + '|' + (s.length > 512 ? digest(s) : s);
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}
