// From ID token + userinfo claims to the SessionUser the PDP and /auth/session see.
import type { IdpConfig } from '../config/types.ts';
import type { SessionUser } from '../session/types.ts';

/** Protocol claims that say nothing about the user and are dropped from SessionUser.claims. */
const PROTOCOL_CLAIMS = new Set(['nonce', 'at_hash', 'c_hash', 's_hash', 'exp', 'iat', 'nbf', 'jti', 'aud', 'azp', 'sid', 'auth_time']);

/**
 * Follows a dotted path (`realm_access.roles`) into nested objects. A claim name may itself
 * contain dots (Auth0's namespaced `https://app.example.com/roles`): at each level the longest
 * run of parts that names a member is taken first.
 */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  return walk(claims, path.split('.'));
}

function walk(cur: unknown, parts: readonly string[]): unknown {
  if (parts.length === 0) return cur;
  if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
  for (let n = parts.length; n >= 1; n--) {
    const key = parts.slice(0, n).join('.');
    if (!Object.prototype.hasOwnProperty.call(cur, key)) continue;
    const found = walk((cur as Record<string, unknown>)[key], parts.slice(n));
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * A roles/groups claim as a string list: arrays keep their strings; a single string is ONE value
 * (IdPs send a single-valued claim as a string, and group names and DNs hold spaces and commas:
 * splitting "Not Admins" would grant "Admins").
 */
export function stringList(value: unknown): string[] {
  if (Array.isArray(value)) return [...new Set(value.filter((v): v is string => typeof v === 'string' && v !== ''))];
  if (typeof value === 'string' && value !== '') return [value];
  return [];
}

/** The granted `scope` (space-separated, RFC 6749 3.3; some IdPs use commas). */
function spaceList(value: string): string[] {
  return [...new Set(value.split(/[\s,]+/).filter(Boolean))];
}

/** userinfo wins over the ID token for the same claim (it is the fresher source), except `sub`. */
export function mergeClaims(idToken: Record<string, unknown>, userinfo: Record<string, unknown> | undefined): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...idToken, ...(userinfo ?? {}), sub: idToken['sub'] };
  for (const k of PROTOCOL_CLAIMS) delete merged[k];
  return merged;
}

export function userFromClaims(idp: IdpConfig, claims: Record<string, unknown>, scope: string | undefined): SessionUser {
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  return {
    sub: String(claims['sub']),
    idp: idp.name,
    name: str(claims['name']) ?? str(claims['preferred_username']),
    email: str(claims['email']),
    roles: stringList(claimAt(claims, idp.claims.roles)),
    groups: stringList(claimAt(claims, idp.claims.groups)),
    scopes: spaceList(scope ?? ''),
    claims,
  };
}
