// Decisions cached on the full input of the Oso query. An Oso query costs a few hundred µs; the same
// user asking the same question again is the common case (SPA polling, lists then details).
//
// No TTL: the policy and rules are fixed for the life of a Pdp, and a reload builds a new Pdp (and
// cache) that the caller swaps in atomically. Same input + same policy = same answer.
import { createHash } from 'node:crypto';
import { flatCopy } from '../strings.ts';

/**
 * What one entry is counted as against the byte bound: its key at two bytes a character (a key
 * with one character beyond Latin-1, from a decoded path, is stored two bytes a character) plus
 * the Map slot and the entry's share of the Map's table.
 */
const ENTRY_BYTES = 64;
export const entryBytes = (key: string): number => ENTRY_BYTES + 2 * key.length;

/**
 * Two generations of at most max/2 entries and maxBytes/2 bytes (entryBytes) each: when the young
 * one fills, the old one is dropped. Bounded, O(1), no per-hit bookkeeping; entries still in use
 * are promoted on hit so they survive. Keys are looked up as built (concatenated, per call) and
 * stored as flat copies (strings.ts).
 * Bytes too, not only entries: keys of up to ~560 characters (decisionKey digests longer ones)
 * are ~1.1 KB each when a path holds a character beyond Latin-1, and any signed-in user's
 * requests for 50,000 such paths of a rule (denials are cached too) took 59 MB of the sidecar's
 * heap in 11 s. The default byte bound holds 50,000 entries of usual keys (~80 characters).
 */
export class DecisionCache<V> {
  readonly #half: number;
  readonly #halfBytes: number;
  #young = new Map<string, V>();
  #old = new Map<string, V>();
  #youngBytes = 0;

  constructor(maxEntries = 50_000, maxBytes = 12 * 1024 * 1024) {
    this.#half = Math.max(1, Math.floor(maxEntries / 2));
    this.#halfBytes = Math.max(1, Math.floor(maxBytes / 2));
  }

  get(key: string): V | undefined {
    const v = this.#young.get(key);
    if (v !== undefined) return v;
    const o = this.#old.get(key);
    if (o !== undefined) this.set(key, o);
    return o;
  }

  set(key: string, value: V): void {
    const bytes = entryBytes(key);
    if (this.#young.size >= this.#half || (this.#youngBytes > 0 && this.#youngBytes + bytes > this.#halfBytes)) {
      this.#old = this.#young;
      this.#young = new Map();
      this.#youngBytes = 0;
    }
    this.#young.set(flatCopy(key), value);
    this.#youngBytes += bytes;
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  clear(): void {
    this.#young = new Map();
    this.#old = new Map();
    this.#youngBytes = 0;
  }
}

/** Everything Polar can see of the actor (a User), as a fixed-size digest: see actorKeyOf in actor.ts. */
export function actorKey(user: {
  id: string; idp: string; email: string | null; roles: readonly string[]; groups: readonly string[];
  scopes: readonly string[]; claims: Readonly<Record<string, unknown>>;
}): string {
  return digest(JSON.stringify([user.id, user.idp, user.email, user.roles, user.groups, user.scopes, user.claims]));
}

/**
 * The key of one decision: the actor's digest, the rule, and the request the resource is made from.
 * Within one Pdp the rule (its index) fixes the action and the resource type, and the rule's match
 * on the path gives the resource's id and params: method, route and path are the whole input.
 * Lengths delimit method and route, so no value can be read as another. Long keys (long paths)
 * are digested to bound memory; the others are used as they are, because a SHA-256 per lookup
 * would cost more than the lookup (scenario (f) of the benchmark: every request of one user asks
 * about another resource).
 */
export function decisionKey(actor: string, rule: number, input: { method: string; route: string; path: string }): string {
  const rest = `${input.method.length}:${input.method}${input.route.length}:${input.route}${input.path}`;
  return actor + '|' + rule + '|' + (rest.length > 512 ? digest(rest) : rest);
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}
