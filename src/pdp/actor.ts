// What a Polar policy sees of a request: the actor (User, and its claims), the resource (a class
// per pdp.yaml resource type), and the Proxy that notes every field a query asked of them and they
// lack (a policy bug, which Pdp turns into an error). Pdp (index.ts) makes them for each query;
// actorKeyOf is the actor's part of the decision-cache key.
import type { SessionUser } from '../session/types.ts';
import { actorKey } from './decision-cache.ts';

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
export interface Misses {
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
export function noting<T extends object>(o: T, on: string, misses: Misses): T {
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

export type ResourceClass = new (f: ResourceFields) => ResourceFields;

/** A real class named `name`, so `order: Order` specialisers match and reprs read naturally. */
export function resourceClass(name: string): ResourceClass {
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
