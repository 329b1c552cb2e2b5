// Decrypted secrets are ours (AEAD under our keys) but not necessarily of this version's shape: a
// blob written by another goldpath version, or by a bug. Everything downstream trusts the shape
// (the CSRF check compares strings, the session cache packs the arrays, Polar reads the claims),
// so a session whose secrets lack what this version needs is not served: it reads as absent (the
// user logs in again) instead of failing every request with a 500. It is not deleted either: a
// process of the version that wrote it may read it fine. (Its user's logout does delete it:
// bff/logout.ts.)
import type { SessionSecrets } from './types.ts';

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const optional = (x: unknown, type: 'string' | 'number') => x === undefined || typeof x === type;
const strings = (x: unknown) => Array.isArray(x) && x.every((v) => typeof v === 'string');

function isToken(t: unknown): boolean {
  return isObject(t) && typeof t['value'] === 'string' && (t['type'] === 'Bearer' || t['type'] === 'DPoP') &&
    optional(t['expiresAt'], 'number') && optional(t['scope'], 'string') && optional(t['lifetimeMs'], 'number') &&
    optional(t['grant'], 'string');
}

export function hasSecretsShape(x: unknown): x is SessionSecrets {
  if (!isObject(x) || !isObject(x['user']) || !isObject(x['tokens'])) return false;
  const u = x['user'];
  return typeof u['sub'] === 'string' && typeof u['idp'] === 'string' && optional(u['name'], 'string') && optional(u['email'], 'string') &&
    strings(u['roles']) && strings(u['groups']) && strings(u['scopes']) && isObject(u['claims']) &&
    typeof x['csrf'] === 'string' && x['csrf'] !== '' &&
    Object.values(x['tokens']).every(isToken) &&
    optional(x['refreshToken'], 'string') && optional(x['idToken'], 'string') && (x['dpopJwk'] === undefined || isObject(x['dpopJwk']));
}
