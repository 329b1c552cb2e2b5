// Odd ids and times from an IdP (found reviewing 43f44f2 and fda6bd6):
//   - the store's key encoder is total whatever was checked before it: wellFormed() and the
//     encoder once shared an exported global regex, whose lastIndex a refusal left set, and
//     String#matchAll started from it (a URIError for the next id holding a lone surrogate);
//   - a token's times are finite or absent: an IdP's expires_in of 1e306 (finite, openid-client
//     takes it) or a JWT iat of -1e306 made Infinity, stored as null (JSON), and the session's
//     secrets failed the shape check: the session read as absent right after it was written.
import assert from 'node:assert/strict';
import { toAccessToken } from '../../src/oidc/tokens.ts';
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { keys } from '../../src/session/store.ts';
import { wellFormed } from '../../src/strings.ts';
import { KEY_A, MIN, newSession, uniq } from './contract-suite.ts';

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (p: Record<string, unknown>) => `${b64({ alg: 'RS256' })}.${b64(p)}.c2ln`;

describe('review: lone surrogates after a refusal, non-finite token times', () => {
  const opened: KvSessionStore[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  it('store keys stay total after wellFormed() refused a longer string', () => {
    const before = keys.bySub('idp', '\ud800');
    assert.equal(wellFormed('a longer sub \ud800'), false);
    assert.equal(keys.bySub('idp', '\ud800'), before);
    assert.equal(keys.once('bcl-jti', 'x\udc00'), 'gp:once:bcl-jti:{x%udc00}');
    assert.equal(wellFormed('\ud83d\ude00'), true);
  });

  it('a token with an absurd expires_in or iat keeps only finite times, and its session reads back', async () => {
    const now = Date.now();
    const odd = {
      huge: toAccessToken({ access_token: 'opaque', token_type: 'bearer', expires_in: 1e306 } as never, now),
      jwtIat: toAccessToken({ access_token: jwt({ exp: Math.floor(now / 1000) + 3600, iat: -1e306 }), token_type: 'bearer' } as never, now),
      jwtExp: toAccessToken({ access_token: jwt({ exp: 1e306, iat: Math.floor(now / 1000) }), token_type: 'bearer' } as never, now),
    };
    for (const [name, t] of Object.entries(odd)) {
      for (const k of ['expiresAt', 'lifetimeMs'] as const) {
        assert.ok(t[k] === undefined || Number.isFinite(t[k]), `${name}.${k} is ${t[k]}`);
      }
    }
    assert.equal(odd.jwtIat.expiresAt, (Math.floor(now / 1000) + 3600) * 1000, 'a finite exp is still kept');
    const store = createSessionStore({ url: `memory://odd-times-${uniq()}`, settings: { sessionKeys: [KEY_A], sessionIdleMs: MIN, sessionMaxMs: 10 * MIN } });
    opened.push(store);
    const input = newSession({ idp: `idp-${uniq()}` });
    const { session } = await store.create({ ...input, secrets: { ...input.secrets, tokens: odd } });
    const back = await store.getById(session.id);
    assert.ok(back, 'the session reads as absent');
    assert.deepEqual(Object.keys(back.secrets.tokens).sort(), ['huge', 'jwtExp', 'jwtIat']);
  });
});
