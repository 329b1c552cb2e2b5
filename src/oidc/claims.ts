// From ID token + userinfo claims to the SessionUser the PDP and /auth/session see.
import type { IdpConfig } from '../config/types.ts';
import { Buffer } from 'node:buffer';
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

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** The granted `scope` (space-separated, RFC 6749 3.3; some IdPs use commas). */
function spaceList(value: string): string[] {
  return [...new Set(value.split(/[\s,]+/).filter(Boolean))];
}

/**
 * userinfo wins over the ID token for the same claim (it is the fresher source), except `sub` and
 * `iss`: who signed the user in is what the ID token says (src/session/issuer.ts checks it).
 */
export function mergeClaims(idToken: Record<string, unknown>, userinfo: Record<string, unknown> | undefined): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...idToken, ...(userinfo ?? {}), sub: idToken['sub'], iss: idToken['iss'] };
  // An address and the IdP's word that it verified it are one statement: userinfo's own address
  // is verified by userinfo's own email_verified, never by the ID token's (which is about another).
  if (userinfo !== undefined && hasOwn(userinfo, 'email') && userinfo['email'] !== idToken['email'] && !hasOwn(userinfo, 'email_verified')) {
    delete merged['email_verified'];
  }
  // Cognito's userinfo spells email_verified as a string ("true") where its ID token has a boolean:
  // no statement (emailVerified), and it must not take the place of the ID token's about the same address.
  if (userinfo !== undefined && hasOwn(userinfo, 'email_verified') && typeof userinfo['email_verified'] !== 'boolean'
    && typeof idToken['email_verified'] === 'boolean' && merged['email'] === idToken['email']) {
    merged['email_verified'] = idToken['email_verified'];
  }
  for (const k of PROTOCOL_CLAIMS) delete merged[k];
  return merged;
}

/**
 * Bounds on what a session keeps of the user. Claims are often the user's own to edit (a profile
 * name, custom attributes, self-service groups), and each session keeps them in Redis and in every
 * sidecar's cache: unbounded (up to the IdP's 1 MiB responses), a few thousand logins could fill
 * either. And every uncached Oso query walks the role list (~16 ms with 10,000 roles). Real
 * sessions hold 1-20 KB (the roles and groups lists are kept twice: as lists and in `claims`;
 * 200 Entra ID group ids are ~16 KB), and IdPs cap their lists (Entra ID at 200 groups).
 */
export const MAX_USER_JSON_BYTES = 64 * 1024;
export const MAX_LIST_ENTRIES = 1000;

/**
 * Why a user is too large to keep in a session (sizes and counts only, never values), or
 * undefined. Every list counts, not only roles and groups: a policy may walk any claim (a
 * `permissions` list of 30,000 short strings fits in 64 KiB and made each query ~0.5 s).
 */
export function oversized(user: SessionUser): Record<string, number> | undefined {
  const counts = { roles: user.roles.length, groups: user.groups.length, scopes: user.scopes.length, longest_claim_list: longestList(user.claims, 0) };
  const bytes = Buffer.byteLength(JSON.stringify(user));
  if (bytes <= MAX_USER_JSON_BYTES && Math.max(counts.roles, counts.groups, counts.scopes, counts.longest_claim_list) <= MAX_LIST_ENTRIES) return undefined;
  return { bytes, ...counts };
}

/** The longest array anywhere in a JSON value (claims come from JSON: no cycles; depth bounded anyway). */
function longestList(v: unknown, depth: number): number {
  if (v === null || typeof v !== 'object' || depth > 64) return 0;
  let longest = Array.isArray(v) ? v.length : 0;
  for (const x of Array.isArray(v) ? v : Object.values(v)) longest = Math.max(longest, longestList(x, depth + 1));
  return longest;
}

/**
 * Whether the IdP says it verified the address: the boolean true only (OIDC Core 5.1). A string
 * "true" is not taken for it: "false", "0", "no" and "True" are strings too, and guessing which
 * spellings mean yes would count an IdP's bug as its word on who owns an address. The caller logs
 * it (misspelledEmailVerified), so an operator sees why an email is missing.
 */
const emailVerified = (v: unknown): boolean => v === true;

/** The email_verified claim when the IdP sent something else than a boolean (Cognito's "true"). */
export function misspelledEmailVerified(claims: Readonly<Record<string, unknown>>): string | undefined {
  const v = claims['email_verified'];
  return v === undefined || typeof v === 'boolean' ? undefined : typeof v;
}

export function userFromClaims(idp: IdpConfig, claims: Record<string, unknown>, scope: string | undefined): SessionUser {
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  return {
    sub: String(claims['sub']),
    idp: idp.name,
    name: str(claims['name']) ?? str(claims['preferred_username']),
    // Only an address the IdP verified (OIDC Core 5.1, 5.7): many let anyone put any address on
    // their own account unconfirmed, and a policy reading user.email as the user's would take one
    // for its owner. (Not the string "true": see emailVerified.) The claim itself stays in `claims`. An
    // operator who knows the IdP owns every address it hands out, yet says nothing of it, says so
    // in idps.yaml; an IdP's explicit "not verified" stands all the same.
    email: emailVerified(claims['email_verified']) || (idp.dangerouslyTrustUnverifiedEmail && claims['email_verified'] === undefined) ? str(claims['email']) : undefined,
    roles: stringList(claimAt(claims, idp.claims.roles)),
    groups: stringList(claimAt(claims, idp.claims.groups)),
    scopes: spaceList(scope ?? ''),
    claims,
  };
}

/**
 * The user a refresh answer's ID token makes of a session's `user` when userinfo is not asked (an
 * IdP without it, an audience's token) or cannot be had (refreshed-user.ts): the token's claims
 * over those the session holds (mergeClaims: `sub` and `iss` stay). So a role the IdP took away
 * reaches the policies at the next refresh that brings an ID token. A claim the token leaves out
 * stays as it was: it may have come from userinfo at sign-in.
 */
export function refreshedUser(idp: IdpConfig, user: SessionUser, idClaims: Record<string, unknown>): SessionUser {
  return userFromClaims(idp, mergeClaims(user.claims as Record<string, unknown>, idClaims), user.scopes.join(' '));
}
