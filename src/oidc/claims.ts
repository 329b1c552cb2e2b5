// From ID token + userinfo claims to the SessionUser the PDP and /auth/session see.
import type { IdpConfig } from '../config/types.ts';
import type { SessionUser } from '../session/types.ts';

/** Protocol claims that say nothing about the user and are dropped from SessionUser.claims. */
const PROTOCOL_CLAIMS = new Set(['nonce', 'at_hash', 'c_hash', 's_hash', 'exp', 'iat', 'nbf', 'jti', 'aud', 'azp', 'sid', 'auth_time']);

/** Follows a dotted path (`realm_access.roles`) into nested objects. */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** A claim as a string list: arrays keep their strings, a string is split on spaces and commas. */
export function stringList(value: unknown): string[] {
  if (Array.isArray(value)) return [...new Set(value.filter((v): v is string => typeof v === 'string' && v !== ''))];
  if (typeof value === 'string') return [...new Set(value.split(/[\s,]+/).filter(Boolean))];
  return [];
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
    scopes: stringList(scope ?? ''),
    claims,
  };
}
