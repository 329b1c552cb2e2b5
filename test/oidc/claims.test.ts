// Claim mapping (idps.yaml claims: dotted paths) and merging of ID token and userinfo claims.
import assert from 'node:assert/strict';
import { claimAt, mergeClaims, stringList, userFromClaims } from '../../src/oidc/claims.ts';
import { testIdpConfig } from '../helpers/idp-bff.ts';

describe('claims', () => {
  it('follows dotted paths, not prototype members', () => {
    const c = { realm_access: { roles: ['a', 'b'] }, groups: 'x y', n: null };
    assert.deepEqual(claimAt(c, 'realm_access.roles'), ['a', 'b']);
    assert.equal(claimAt(c, 'realm_access.nope'), undefined);
    assert.equal(claimAt(c, 'n.x'), undefined);
    assert.equal(claimAt(c, 'constructor'), undefined);
    assert.equal(claimAt(c, '__proto__.toString'), undefined);
  });

  it('turns claims into string lists', () => {
    assert.deepEqual(stringList(['a', 1, 'b', 'a', '']), ['a', 'b']);
    assert.deepEqual(stringList('a b,c'), ['a', 'b', 'c']);
    assert.deepEqual(stringList({ a: 1 }), []);
    assert.deepEqual(stringList(undefined), []);
  });

  it('userinfo wins except for sub, protocol claims are dropped', () => {
    const m = mergeClaims({ sub: 'u1', name: 'Old', nonce: 'n', at_hash: 'h', sid: 's', iss: 'https://idp' }, { sub: 'evil', name: 'New', email: 'u@x' });
    assert.deepEqual(m, { sub: 'u1', name: 'New', email: 'u@x', iss: 'https://idp' });
  });

  it('maps roles and groups by the configured paths', () => {
    const idp = testIdpConfig('kc', 'https://kc.example.test', { claims: { roles: 'realm_access.roles', groups: 'grp' } });
    const u = userFromClaims(idp, { sub: 'u1', preferred_username: 'ux', realm_access: { roles: ['admin'] }, grp: ['g1'] }, 'openid profile');
    assert.deepEqual(u, {
      sub: 'u1', idp: 'kc', name: 'ux', email: undefined, roles: ['admin'], groups: ['g1'], scopes: ['openid', 'profile'],
      claims: { sub: 'u1', preferred_username: 'ux', realm_access: { roles: ['admin'] }, grp: ['g1'] },
    });
  });
});
