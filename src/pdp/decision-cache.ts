// Decisions cached on the full input of the Oso query. An Oso query costs a few hundred µs; the same
// user asking the same question again is the common case (SPA polling, lists then details).
//
// No TTL: the policy and rules are fixed for the life of a Pdp, and a reload builds a new Pdp (and
// cache) that the caller swaps in atomically. Same input + same policy = same answer.
import { createHash } from 'node:crypto';
import type { SessionUser } from '../session/types.ts';

/**
 * Two generations of at most max/2 entries each: when the young one fills, the old one is dropped.
 * Bounded, O(1), no per-hit bookkeeping; entries still in use are promoted on hit so they survive.
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
    this.#young.set(key, value);
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  clear(): void {
    this.#young = new Map();
    this.#old = new Map();
  }
}

/**
 * Everything Polar can see of the actor, as a fixed-size digest. Computed once per SessionUser
 * object: session caches hand out the same (readonly) object for the life of a session, so the
 * per-request cost is one WeakMap lookup. A digest, not the JSON itself, keeps 50,000 entries small
 * even when claims are large.
 */
const actorKeys = new WeakMap<SessionUser, string>();

export function actorKey(user: SessionUser): string {
  let key = actorKeys.get(user);
  if (key === undefined) {
    key = digest(JSON.stringify([
      user.sub, user.idp, user.email ?? null, user.roles, user.groups, user.scopes, user.claims,
    ]));
    actorKeys.set(user, key);
  }
  return key;
}

/** The complete resource plus the action; long ones (long paths) are digested to bound memory. */
export function requestKey(input: {
  action: string;
  type: string;
  id: string | null;
  params: Readonly<Record<string, string>>;
  path: string;
  method: string;
  route: string;
}): string {
  const s = JSON.stringify([input.action, input.type, input.id, input.params, input.path, input.method, input.route]);
  return s.length > 512 ? digest(s) : s;
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}
