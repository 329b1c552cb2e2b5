// One copy of the short strings every session repeats (IdP names, roles, scopes, token types).
// A decrypted session is parsed from JSON, which makes a fresh string for every value: with 10,000
// sessions cached in a sidecar, "reader" or "Bearer" would be held 10,000 times. Only fields whose
// values are shared by many sessions go through here, never the unique ones (ids, tokens, csrf),
// and the table is bounded (emptied when full), so no input can make it grow without end.
import type { SessionSecrets } from './types.ts';

const MAX_ENTRIES = 4096;
const MAX_LENGTH = 64;
const table = new Map<string, string>();

export function intern(s: string): string {
  if (s.length > MAX_LENGTH) return s;
  const known = table.get(s);
  if (known !== undefined) return known;
  if (table.size >= MAX_ENTRIES) table.clear();
  table.set(s, s);
  return s;
}

/** Strings held at the moment (tests: the table stays bounded). */
export function internedCount(): number {
  return table.size;
}

function internList(list: unknown): void {
  if (!Array.isArray(list)) return;
  for (let i = 0; i < list.length; i++) if (typeof list[i] === 'string') list[i] = intern(list[i] as string);
}

/** Replaces, in place, the shared strings of secrets just parsed (and not yet handed to anyone). */
export function internSecrets(secrets: SessionSecrets): SessionSecrets {
  const user = secrets.user as unknown as Record<string, unknown> | undefined;
  if (user !== null && typeof user === 'object') {
    if (typeof user['idp'] === 'string') user['idp'] = intern(user['idp']);
    internList(user['roles']);
    internList(user['groups']);
    internList(user['scopes']);
  }
  const tokens = secrets.tokens as unknown as Record<string, Record<string, unknown>> | undefined;
  if (tokens !== null && typeof tokens === 'object') {
    for (const t of Object.values(tokens)) {
      if (t === null || typeof t !== 'object') continue;
      if (typeof t['type'] === 'string') t['type'] = intern(t['type']);
      if (typeof t['scope'] === 'string') t['scope'] = intern(t['scope']);
      if (typeof t['grant'] === 'string') t['grant'] = intern(t['grant']);
    }
  }
  return secrets;
}
