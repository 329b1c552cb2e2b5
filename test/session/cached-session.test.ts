// A cached session keeps its secrets packed in one JSON string (src/session/cached-session.ts):
// reading them back gives exactly what the store decrypted, minus the refresh and ID tokens.
import assert from 'node:assert/strict';
import { CachedSession } from '../../src/session/cached-session.ts';
import type { Session, SessionSecrets } from '../../src/session/types.ts';
import { newSession } from '../helpers/sessions.ts';

function session(secrets: Partial<SessionSecrets> = {}, o: Partial<Session> = {}): Session {
  const n = newSession({ sub: 'alice' });
  return {
    id: 'id-1', sub: n.sub, idp: n.idp, sid: n.sid, createdAt: 1, expiresAt: 2e12, idleExpiresAt: 2e12, version: 3,
    ...o, secrets: { ...n.secrets, refreshToken: 'rt-secret', idToken: 'eyJ.id.token', ...secrets },
  };
}
const withoutRefresh = (x: SessionSecrets): SessionSecrets => ({ ...x, refreshToken: undefined, idToken: undefined });

describe('cached session record', function () {
  it('gives back the secrets it was made from, without the refresh token and the ID token', function () {
    const s = session();
    const c = CachedSession.of(s, 10);
    assert.deepEqual(c.secrets, withoutRefresh(s.secrets));
    assert.equal(c.csrf, s.secrets.csrf);
    assert.notEqual(c.secrets, c.secrets, 'a fresh copy per read: nobody can change what is kept');
    assert.doesNotMatch(JSON.stringify(c.secrets) + Object.values(c).join(), /rt-secret|eyJ\.id\.token/);
  });

  it('round-trips absent fields, DPoP keys, odd names and a user that differs from the session fields', function () {
    const s = session({
      user: {
        sub: 'ü-user', idp: 'other', name: undefined, email: undefined, roles: [], groups: ['g'], scopes: ['openid', 'x'],
        claims: { sub: 'ü-user', nested: { a: [1, null, 'x'] }, ['__proto__']: 'claim' } as Record<string, unknown>,
      },
      tokens: {
        '': { value: 'at', type: 'DPoP', expiresAt: undefined, scope: undefined },
        ['__proto__']: { value: 'odd', type: 'Bearer', expiresAt: 5, scope: 's' },
      },
      dpopJwk: { kty: 'EC', crv: 'P-256', d: 'private' },
    });
    const back = CachedSession.of(s, 10).secrets;
    assert.deepEqual(back, withoutRefresh(s.secrets));
    assert.equal(Object.getPrototypeOf(back.tokens), Object.prototype);
    assert.equal(back.tokens['__proto__']?.value, 'odd');
    assert.equal(back.user.sub, 'ü-user');
    assert.equal(back.user.idp, 'other');
    assert.ok(!('name' in back.user) || back.user.name === undefined);
  });

  it('keeps each access token as the header it is sent as, finds it by audience, and gives the same tokens back', function () {
    const s = session({
      tokens: {
        '': { value: 'at-main', type: 'Bearer', expiresAt: 7, scope: 'openid' },
        reports: { value: 'at-reports', type: 'DPoP', expiresAt: undefined, scope: undefined },
      },
    });
    const c = CachedSession.of(s, 10);
    assert.equal(c.authorization(''), 'Bearer at-main');
    assert.equal(c.authorization('reports'), 'DPoP at-reports');
    assert.equal(c.authorization('orders'), undefined);
    assert.equal(c.authorization('__proto__'), undefined);
    assert.deepEqual(c.secrets.tokens, s.secrets.tokens);
  });

  it('a record of the same version is renewed in place; another version is a new record without the memo', function () {
    const s = session();
    const c = CachedSession.of(s, 10);
    c.memo = 'derived';
    const later = { ...s, idleExpiresAt: s.idleExpiresAt + 1000, get secrets(): SessionSecrets { throw new Error('not read'); } };
    assert.equal(CachedSession.of(later, 20, c), c);
    assert.equal(c.until, 20);
    assert.equal(c.idleExpiresAt, s.idleExpiresAt + 1000);
    assert.equal(c.memo, 'derived');
    const next = CachedSession.of({ ...s, version: 4, secrets: { ...s.secrets, csrf: 'new' } }, 30, c);
    assert.notEqual(next, c);
    assert.equal(next.memo, undefined);
    assert.equal(next.csrf, 'new');
  });

  it('counts its strings at what V8 holds them in: two bytes a character once a string has one beyond Latin-1', function () {
    // The session cache bounds the sum of these (cache.ts maxBytes). Counted a byte a character, a
    // user whose name or claims are in Chinese, Greek or Cyrillic took twice what was counted:
    // 25,000 sessions with 3,000 CJK characters of claims each, through a real sidecar, left as
    // many entries cached as with ASCII claims and 42 MB more heap.
    const pad = 20_000;
    const withClaims = (text: string) => {
      const base = session();
      return CachedSession.of(session({ user: { ...base.secrets.user, claims: { ...base.secrets.user.claims, text } } }), 10);
    };
    const latin = withClaims('é'.repeat(pad)); // Latin-1: one byte a character in V8
    const wide = withClaims('名'.repeat(pad));
    assert.ok(latin.bytes < pad + 4000, `${latin.bytes} bytes counted for ${pad} Latin-1 characters`);
    assert.ok(wide.bytes >= 2 * pad, `${wide.bytes} bytes counted for ${pad} characters held at two bytes each`);
  });
});
