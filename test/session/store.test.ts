// KvSessionStore semantics that need a clock moved by hand (memory://, whose TTLs follow the
// store's clock): what the back-channel logout marks must cover.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SessionEnded } from '../../src/errors.ts';
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { TX_TTL_MS } from '../../src/bff/cookies.ts';
import { KEY_A, MIN, newSession, uniq } from './contract-suite.ts';

describe('session store: back-channel logout marks', () => {
  const opened: KvSessionStore[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  it('refuse a sign-in begun before the logout for as long as its login transaction lives, even with a short GOLDPATH_SESSION_MAX', async () => {
    let t = Date.now();
    // GOLDPATH_SESSION_MAX=3m (valid: idle <= max). The login transaction still lives 10 minutes.
    const store = createSessionStore({
      url: `memory://marks-${uniq()}`, settings: { sessionKeys: [KEY_A], sessionIdleMs: MIN, sessionMaxMs: 3 * MIN }, now: () => t,
    });
    opened.push(store);
    const idp = `idp-${uniq()}`;
    const startedAt = t;
    t += 1000;
    await store.deleteBySub(idp, 'alice');
    await store.deleteBySid(idp, 'sid-x');
    await store.deleteBySid(idp, 'sid-y', 'carol');
    t = startedAt + TX_TTL_MS - 60_000; // the callback arrives, its transaction still valid
    const browser = randomBytes(8).toString('hex');
    await assert.rejects(store.create(newSession({ idp, sub: 'alice', sid: undefined, login: { browser, startedAt } })), SessionEnded,
      'a sign-in begun before the logout of its user was accepted');
    await assert.rejects(store.create(newSession({ idp, sub: 'bob', sid: 'sid-x', login: { browser, startedAt } })), SessionEnded,
      'a session was created for an ended sid');
    await assert.rejects(store.create(newSession({ idp, sub: 'carol', sid: undefined, login: { browser, startedAt } })), SessionEnded,
      'a sign-in without a sid begun before a logout naming its sub (and a sid) was accepted');
  });
});
