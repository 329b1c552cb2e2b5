// Builds session contents for tests that create sessions through the store API.
import { randomBytes } from 'node:crypto';
import type { NewSession, SessionSecrets } from '../../src/session/types.ts';

export const TEST_KEYS = [randomBytes(32).toString('base64url'), randomBytes(32).toString('base64url')];

export function newSession(o: { sub?: string; idp?: string; sid?: string; roles?: string[]; csrf?: string; tokens?: SessionSecrets['tokens']; claims?: Record<string, unknown> } = {}): NewSession {
  const sub = o.sub ?? 'alice';
  const idp = o.idp ?? 'dev';
  return {
    sub, idp, sid: o.sid ?? `sid-${sub}`,
    secrets: {
      user: { sub, idp, name: sub, email: `${sub}@example.test`, roles: o.roles ?? ['reader'], groups: [], scopes: ['openid'], claims: { sub, ...o.claims } },
      csrf: o.csrf ?? `csrf-${sub}-${randomBytes(8).toString('hex')}`,
      tokens: o.tokens ?? {
        '': { value: `at-${sub}-${randomBytes(8).toString('hex')}`, type: 'Bearer', expiresAt: Date.now() + 3600_000, scope: 'openid' },
        reports: { value: `at-reports-${sub}`, type: 'Bearer', expiresAt: Date.now() + 3600_000, scope: 'reports.read' },
      },
      refreshToken: `rt-${sub}-${randomBytes(8).toString('hex')}`,
      idToken: undefined,
      dpopJwk: undefined,
    },
  };
}
