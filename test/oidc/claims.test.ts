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
    assert.deepEqual(stringList('a b,c'), ['a b,c']);
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

describe('claims: one string is one role or group', () => {
  it('a roles or groups claim holding a single string is that one value, not split on spaces or commas', () => {
    // ADFS and SAML-bridging IdPs send a single-valued claim as a string; group names and DNs
    // contain spaces and commas. Splitting made "Not Admins" grant the role "Admins".
    const idp = testIdpConfig('adfs', 'https://adfs.example.test', { claims: { roles: 'role', groups: 'group' } });
    const u = userFromClaims(idp, { sub: 'u1', role: 'Not Admins', group: 'CN=Finance,OU=Groups,DC=corp' }, 'openid profile');
    assert.deepEqual(u.roles, ['Not Admins']);
    assert.deepEqual(u.groups, ['CN=Finance,OU=Groups,DC=corp']);
    assert.deepEqual(u.scopes, ['openid', 'profile'], 'the scope string is space-separated (RFC 6749 3.3)');
  });

  it('a claim whose name contains dots (Auth0 namespaced claims) is found by its full name', () => {
    const idp = testIdpConfig('auth0', 'https://tenant.auth0.example', { claims: { roles: 'https://app.example.com/roles', groups: 'org.groups' } });
    const u = userFromClaims(idp, { sub: 'u1', 'https://app.example.com/roles': ['admin'], org: { groups: ['g1'] } }, undefined);
    assert.deepEqual(u.roles, ['admin']);
    assert.deepEqual(u.groups, ['g1'], 'a dotted path still walks nested objects');
  });
});

describe('claims: email is the user\'s only when the IdP says it verified it', () => {
  const idp = testIdpConfig('dev', 'https://idp.example.test');
  it('email_verified true keeps it; the string "true" (Cognito\'s userinfo), false, absent or anything else leaves it out (still in claims)', () => {
    for (const [verified, kept] of [[true, true], ['true', false], [false, false], [undefined, false], ['false', false], [1, false]] as const) {
      const claims = { sub: 'u1', email: 'boss@example.com', ...(verified === undefined ? {} : { email_verified: verified }) };
      const u = userFromClaims(idp, claims, 'openid email');
      assert.equal(u.email, kept ? 'boss@example.com' : undefined, JSON.stringify(verified));
      assert.equal(u.claims['email'], 'boss@example.com');
    }
  });

  it('an address and its email_verified come from one source: userinfo\'s own address is not verified by the ID token\'s flag', () => {
    const id = { sub: 'u1', iss: 'https://idp', email: 'me@example.com', email_verified: true };
    const other = mergeClaims(id, { sub: 'u1', email: 'boss@example.com' });
    assert.equal(userFromClaims(idp, other, undefined).email, undefined, 'another address in userinfo, unverified there');
    assert.equal(userFromClaims(idp, mergeClaims(id, { sub: 'u1', email: 'me@example.com' }), undefined).email, 'me@example.com', 'the same address');
    assert.equal(userFromClaims(idp, mergeClaims(id, { sub: 'u1', name: 'Me' }), undefined).email, 'me@example.com', 'userinfo without an address');
    assert.equal(userFromClaims(idp, mergeClaims(id, { sub: 'u1', email: 'boss@example.com', email_verified: true }), undefined).email, 'boss@example.com');
  });

  it('an IdP whose idps.yaml entry says dangerously_trust_unverified_email (Entra ID sends no email_verified) gives its claim when it says nothing; its explicit false stands', () => {
    const trusting = testIdpConfig('entra', 'https://login.example.test', { dangerouslyTrustUnverifiedEmail: true });
    for (const [verified, kept] of [[undefined, true], [true, true], [false, false], ['false', false]] as const) {
      const claims = { sub: 'u1', email: 'me@example.com', ...(verified === undefined ? {} : { email_verified: verified }) };
      assert.equal(userFromClaims(trusting, claims, undefined).email, kept ? 'me@example.com' : undefined, JSON.stringify(verified));
    }
    assert.equal(userFromClaims(trusting, { sub: 'u1' }, undefined).email, undefined, 'no claim, no address');
  });
});
