// The SessionStore contract as ONE parameterised suite: every backend (memory://, standalone Redis,
// Redis Cluster, Redis Sentinel) runs exactly these tests through createSessionStore (SPEC 4).
// contract.test.ts runs it on memory:// and standalone Redis; cluster.test.ts and sentinel.test.ts
// on the scale-out topologies.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionEnded, StoreUnavailable } from '../../src/errors.ts';
import { silentLogger } from '../../src/log.ts';
import {
  CookieCodec, createSessionStore, MemoryBackend, parseRedisUrl, RedisBackend, storeKeys,
  type KvBackend, type KvSessionStore, type NewSession, type SessionSecrets,
} from '../../src/session/index.ts';
import { REPLACED } from '../../src/session/types.ts';

export const KEY_A = randomBytes(32);
export const KEY_B = randomBytes(32);
export const MIN = 60_000;

interface StoreOpts {
  keys?: Uint8Array[];
  idleMs?: number;
  maxMs?: number;
  now?: () => number;
}

/** What the suite needs from a backend, beyond the store itself. */
export interface Harness {
  /** A URL for an isolated dataset (memory) or the shared test server (redis). */
  url(): string;
  /** Whether the session's record exists in the backend (bypassing the store's read-side checks). */
  rawExists(url: string, id: string): Promise<boolean>;
  /** Backend operations so far: reads (HGETALL) and everything else. */
  counts(url: string): Promise<{ reads: number; writes: number }>;
  /**
   * The stores' command timeout, when not the default 500 ms (which waits 300 ms for a connection
   * to be ready). A Cluster's first connection (slot table, then one per node) took longer than
   * that on a loaded machine: the contract is about what the store does, not how soon.
   */
  readonly commandTimeoutMs?: number;
  /** TLS schemes: the PEM CA the stores trust (settings.redisTlsCa, as REDIS_TLS_CA_FILE gives it). */
  readonly redisTlsCa?: string;
}

export function secrets(tag = randomBytes(6).toString('hex')): SessionSecrets {
  return {
    user: {
      sub: `user-${tag}`, idp: 'dev', name: 'Alice', email: 'alice@example.test', roles: ['admin', 'reader'],
      groups: ['g1'], scopes: ['openid', 'orders.read'], claims: { sub: `user-${tag}`, tenant: 't1', n: 3 },
    },
    csrf: `csrf-${randomBytes(16).toString('base64url')}`,
    tokens: {
      '': { value: `at-${randomBytes(24).toString('base64url')}`, type: 'Bearer', expiresAt: 1_900_000_000_000, scope: 'openid' },
      orders: { value: `at-orders-${randomBytes(24).toString('base64url')}`, type: 'DPoP', expiresAt: undefined, scope: undefined },
    },
    refreshToken: `rt-${randomBytes(24).toString('base64url')}`,
    idToken: `eyJ${randomBytes(30).toString('base64url')}`,
    dpopJwk: { kty: 'EC', crv: 'P-256', d: `jwkd-${randomBytes(16).toString('base64url')}`, x: 'x', y: 'y' },
  };
}

export function newSession(o: Partial<NewSession> = {}): NewSession {
  return { sub: o.sub ?? 'alice', idp: o.idp ?? 'dev', sid: 'sid' in o ? o.sid : 'sid-1', secrets: o.secrets ?? secrets(), login: o.login };
}

/** JSON drops undefined members; compare what a round trip can preserve. */
export const viaJson = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
export const uniq = () => randomBytes(6).toString('hex');

export function contract(name: string, harness: () => Harness): void {
  describe(`SessionStore contract: ${name}`, function () {
    this.timeout(10_000);
    let h: Harness;
    let url: string;
    const opened: KvSessionStore[] = [];
    const backends: KvBackend[] = [];
    const open = (o: StoreOpts = {}, u = url): KvSessionStore => {
      const s = createSessionStore({
        url: u,
        settings: { sessionKeys: o.keys ?? [KEY_A], sessionIdleMs: o.idleMs ?? 30 * MIN, sessionMaxMs: o.maxMs ?? 12 * 60 * MIN, redisTlsCa: h.redisTlsCa },
        now: o.now,
        commandTimeoutMs: h.commandTimeoutMs,
      });
      opened.push(s);
      return s;
    };
    beforeEach(() => {
      h = harness();
      url = h.url();
    });
    afterEach(async () => {
      await Promise.all([...opened.splice(0), ...backends.splice(0)].map((s) => s.close()));
    });

    it('creates a session and reads it back by cookie and by id', async () => {
      const store = open();
      const input = newSession({ sub: 'alice', idp: 'dev', sid: 'sid-a' });
      const before = Date.now();
      const { cookieValue, session } = await store.create(input);
      assert.match(cookieValue, /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{22}$/);
      assert.match(session.id, /^[A-Za-z0-9_-]{43}$/);
      assert.ok(!cookieValue.includes(session.id), 'the storage id is not part of the cookie');
      assert.equal(session.version, 1);
      assert.ok(session.createdAt >= before && session.createdAt <= Date.now());
      assert.equal(session.expiresAt, session.createdAt + 12 * 60 * MIN);
      assert.equal(session.idleExpiresAt, session.createdAt + 30 * MIN);

      const got = await store.get(cookieValue);
      assert.ok(got);
      assert.deepEqual(viaJson(got), viaJson(session));
      assert.deepEqual(got.secrets, viaJson(input.secrets));
      assert.equal(got.sid, 'sid-a');
      assert.deepEqual(viaJson(await store.getById(session.id)), viaJson(session));
      assert.equal(store.idOf(cookieValue), session.id);
    });

    it('keeps sid undefined when the IdP gave none', async () => {
      const store = open();
      const { cookieValue } = await store.create(newSession({ sid: undefined }));
      const got = await store.get(cookieValue);
      assert.ok(got);
      assert.equal(got.sid, undefined);
    });

    it('issues a new random id on every create', async () => {
      const store = open();
      const input = newSession();
      const a = await store.create(input);
      const b = await store.create(input);
      assert.notEqual(a.cookieValue, b.cookieValue);
      assert.notEqual(a.session.id, b.session.id);
      assert.notEqual(a.cookieValue.slice(0, 43), b.cookieValue.slice(0, 43));
      assert.equal((await store.get(a.cookieValue))?.id, a.session.id);
      assert.equal((await store.get(b.cookieValue))?.id, b.session.id);
    });

    it('answers null for malformed, forged and unknown cookies', async () => {
      const store = open();
      const { cookieValue } = await store.create(newSession());
      const [id, mac] = cookieValue.split('.') as [string, string];
      const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
      const bad = [
        '', 'x', '.', `${id}.`, `.${mac}`, id, `${id}.${mac}.`, `${id}.${mac}=`, ` ${cookieValue}`, `${cookieValue} `,
        `${id}${mac}`, `${id}:${mac}`, cookieValue.slice(1), `${cookieValue}A`, `${flip(id, 5)}.${mac}`, `${id}.${flip(mac, 3)}`,
        `${id.slice(0, 42)}+.${mac}`, `${id}.${mac.slice(0, 21)}/`, cookieValue.toUpperCase(),
        // same bits, non-canonical last character (base64url slack bits set)
        `${id.slice(0, 42)}${String.fromCharCode(id.charCodeAt(42) + 1)}.${mac}`,
      ];
      for (const v of bad) assert.equal(await store.get(v), null, `cookie ${JSON.stringify(v)} must be refused`);
      // forged: right shape, MAC made with another key
      const forged = new CookieCodec([KEY_B]).issue().cookieValue;
      assert.equal(await store.get(forged), null);
      // unknown: a genuine MAC for an id that was never stored
      const unknown = new CookieCodec([KEY_A]).issue().cookieValue;
      assert.equal(await store.get(unknown), null);
      assert.equal(await store.getById('not-an-id'), null);
      assert.equal(await store.getById(randomBytes(32).toString('base64url')), null);
      assert.ok(await store.get(cookieValue), 'the genuine cookie still works');
    });

    it('rotates keys: the first key issues, every key reads', async () => {
      const a = open({ keys: [KEY_A] });
      const ba = open({ keys: [KEY_B, KEY_A] });
      const b = open({ keys: [KEY_B] });
      const issuedA = await a.create(newSession());
      const viaBA = await ba.get(issuedA.cookieValue);
      assert.ok(viaBA, 'a store configured [B, A] reads a session issued under A');
      assert.deepEqual(viaBA.secrets, viaJson(issuedA.session.secrets));
      assert.equal(await b.get(issuedA.cookieValue), null, 'a store configured [B] alone does not');

      const issuedBA = await ba.create(newSession());
      assert.ok(await b.get(issuedBA.cookieValue), 'new sessions are issued under the first key');
      assert.equal(await a.get(issuedBA.cookieValue), null);
    });

    it('treats a session sealed under a key it lacks as absent, and keeps it for the processes that have the key', async () => {
      const a = open({ keys: [KEY_A] });
      const b = open({ keys: [KEY_B] });
      const { session } = await a.create(newSession());
      assert.equal(await b.getById(session.id), null);
      assert.equal(await h.rawExists(url, session.id), true, 'still stored');
      assert.ok(await a.getById(session.id), 'still served where the key is known');
    });

    it('rolling key rotation: a process not yet given the new key does not delete sessions re-sealed under it', async () => {
      // README: rotate by prepending. During the rollout some processes run [B, A], others still [A].
      const old = open({ keys: [KEY_A] });
      const rotated = open({ keys: [KEY_B, KEY_A] });
      const { cookieValue, session } = await old.create(newSession());
      // A token refresh in an updated process re-seals the secrets under B (the cookie stays A's).
      assert.equal(await rotated.updateSecrets(session.id, secrets()), true);
      assert.equal(await old.get(cookieValue), null, 'unreadable where B is unknown');
      assert.equal(await h.rawExists(url, session.id), true, 'but not deleted');
      assert.ok(await rotated.get(cookieValue), 'the user is still signed in once the rollout reaches every process');
    });

    it('treats secrets of a shape this version cannot use as absent, and keeps them stored', async () => {
      const s = open();
      const bad: Record<string, (x: SessionSecrets) => unknown> = {
        'no csrf': (x) => ({ ...x, csrf: undefined }),
        'empty csrf': (x) => ({ ...x, csrf: '' }),
        'roles not a list': (x) => ({ ...x, user: { ...x.user, roles: 'admin' } }),
        'no user': (x) => ({ ...x, user: undefined }),
        'a token without a value': (x) => ({ ...x, tokens: { '': { type: 'Bearer' } } }),
        'an unknown token type': (x) => ({ ...x, tokens: { '': { ...x.tokens['']!, type: 'MAC' } } }),
        'claims not an object': (x) => ({ ...x, user: { ...x.user, claims: ['a'] } }),
      };
      for (const [what, change] of Object.entries(bad)) {
        const { cookieValue, session } = await s.create(newSession({ secrets: change(secrets()) as SessionSecrets }));
        assert.equal(await s.get(cookieValue), null, what);
        assert.equal(await s.getById(session.id), null, what);
        assert.equal(await h.rawExists(url, session.id), true, `${what}: still stored`);
      }
      // Extra members (a newer version's) are fine.
      const { cookieValue } = await s.create(newSession({ secrets: { ...secrets(), future: { x: 1 } } as SessionSecrets }));
      assert.notEqual(await s.get(cookieValue), null);
    });

    it('enforces idle expiry on read, sliding with activity', async () => {
      let t = Date.now();
      const store = open({ idleMs: 10 * MIN, maxMs: 60 * MIN, now: () => t });
      const { cookieValue, session } = await store.create(newSession());
      t += 10 * MIN - 1;
      const s1 = await store.get(cookieValue);
      assert.ok(s1, 'alive just before the idle limit');
      assert.equal(s1.idleExpiresAt, t + 10 * MIN, 'the read recorded activity');
      t += 10 * MIN - 1;
      assert.ok(await store.get(cookieValue), 'activity slid the idle expiry');
      t += 10 * MIN;
      assert.equal(await store.get(cookieValue), null, 'idle for the whole idle period: gone');
      assert.equal(await h.rawExists(url, session.id), false, 'and removed from the backend');
    });

    it('a read with slide: false is no activity: the idle expiry stays, and the session ends on time', async () => {
      let t = Date.now();
      const store = open({ idleMs: 10 * MIN, maxMs: 60 * MIN, now: () => t });
      const { cookieValue, session } = await store.create(newSession());
      const created = t;
      t += 10 * MIN - 1;
      const s1 = await store.get(cookieValue, { slide: false });
      assert.ok(s1, 'alive just before the idle limit');
      assert.equal(s1.idleExpiresAt, created + 10 * MIN, 'the read recorded no activity');
      t += 1;
      assert.equal(await store.get(cookieValue, { slide: false }), null, 'idle since its creation: gone');
      assert.equal(await h.rawExists(url, session.id), false, 'and removed from the backend');
    });

    it('enforces absolute expiry on read however active the session is', async () => {
      let t = Date.now();
      const store = open({ idleMs: 10 * MIN, maxMs: 30 * MIN, now: () => t });
      const { cookieValue, session } = await store.create(newSession());
      for (let i = 0; i < 5; i++) {
        t += 5 * MIN;
        assert.ok(await store.get(cookieValue), `active at +${(i + 1) * 5} min`);
      }
      t += 5 * MIN - 1;
      assert.ok(await store.get(cookieValue));
      t += 1;
      assert.equal(await store.get(cookieValue), null, 'past the absolute limit');
      assert.equal(await store.getById(session.id), null);
    });

    it('a GOLDPATH_SESSION_MAX lowered since a session was made ends it as the new maximum says, as a lowered idle timeout does', async () => {
      let t = Date.now();
      const before = open({ idleMs: 30 * MIN, maxMs: 12 * 60 * MIN, now: () => t });
      const { cookieValue, session } = await before.create(newSession());
      // The operator lowers the maximum to one hour and restarts.
      const after = open({ idleMs: 30 * MIN, maxMs: 60 * MIN, now: () => t });
      t += 20 * MIN;
      assert.equal((await after.get(cookieValue))?.expiresAt, session.createdAt + 60 * MIN, 'its end as the maximum now says');
      t += 20 * MIN;
      assert.ok(await after.get(cookieValue), 'active, within the hour');
      t += 20 * MIN;
      assert.equal(await after.get(cookieValue), null, 'an hour after sign-in: gone, however active');
      assert.equal(await after.getById(session.id), null);
    });

    it('expires sessions in the backend itself (idle TTL, absolute TTL, sliding TTL)', async () => {
      // Margins sized for a loaded 2-core box and a cluster hop or two.
      const idle = open({ idleMs: 500, maxMs: 60 * MIN });
      const max = open({ idleMs: 60 * MIN, maxMs: 500 });
      const sliding = open({ idleMs: 1000, maxMs: 60 * MIN });
      assert.equal(sliding.touchIntervalMs, 100);
      const [i, m, s] = await Promise.all([idle.create(newSession()), max.create(newSession()), sliding.create(newSession())]);
      assert.deepEqual(await Promise.all([i, m].map((x) => h.rawExists(url, x.session.id))), [true, true]);
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        assert.ok(await sliding.get(s.cookieValue), 'kept alive by activity');
        await sleep(100);
      }
      assert.equal(await h.rawExists(url, i.session.id), false, 'idle TTL expired the record');
      assert.equal(await h.rawExists(url, m.session.id), false, 'absolute TTL expired the record');
      assert.equal(await h.rawExists(url, s.session.id), true, 'reads slid the TTL');
      await sleep(1400);
      assert.equal(await h.rawExists(url, s.session.id), false, 'then the idle TTL ran out');
    });

    it('does not write on every read: one read per get, one touch per interval', async () => {
      let t = Date.now();
      const store = open({ idleMs: 30 * MIN, now: () => t });
      assert.equal(store.touchIntervalMs, 60_000);
      const { cookieValue, session } = await store.create(newSession());
      const c0 = await h.counts(url);
      const N = 25;
      for (let i = 0; i < N; i++) {
        t += 2000; // 50 s in total: within the touch interval
        const s = await store.get(cookieValue);
        assert.equal(s?.idleExpiresAt, session.createdAt + 30 * MIN, 'no activity recorded yet');
      }
      const c1 = await h.counts(url);
      assert.equal(c1.reads - c0.reads, N, 'N gets cost N reads');
      assert.equal(c1.writes - c0.writes, 0, 'and no write');
      t += 10_000; // 60 s since the last recorded activity
      const touched = await store.get(cookieValue);
      assert.equal(touched?.idleExpiresAt, t + 30 * MIN);
      const c2 = await h.counts(url);
      assert.equal(c2.reads - c1.reads, 1);
      assert.ok(c2.writes - c1.writes >= 1, 'the touch wrote');
      t += 1000;
      assert.equal((await store.get(cookieValue))?.idleExpiresAt, touched?.idleExpiresAt);
      const c3 = await h.counts(url);
      assert.equal(c3.writes - c2.writes, 0, 'and the next read does not write again');
    });

    it('updates secrets, bumping the version, and never resurrects a deleted session', async () => {
      const store = open();
      const { cookieValue, session } = await store.create(newSession());
      const next = secrets();
      assert.equal(await store.updateSecrets(session.id, next), true);
      const got = await store.get(cookieValue);
      assert.equal(got?.version, 2);
      assert.deepEqual(got?.secrets, viaJson(next));
      assert.equal(await store.updateSecrets(session.id, secrets()), true);
      assert.equal((await store.getById(session.id))?.version, 3);

      assert.equal(await store.delete(session.id), true);
      assert.equal(await store.updateSecrets(session.id, secrets()), false);
      assert.equal(await h.rawExists(url, session.id), false, 'not recreated');
      assert.equal(await store.get(cookieValue), null);
      assert.equal(await store.updateSecrets(randomBytes(32).toString('base64url'), secrets()), false);
      assert.equal(await store.updateSecrets('garbage', secrets()), false);
    });

    it('deletes one session and its index entries', async () => {
      const store = open();
      const idp = `idp-${uniq()}`;
      const { cookieValue, session } = await store.create(newSession({ idp, sub: 'u', sid: 's' }));
      assert.equal(await store.delete(session.id), true);
      assert.equal(await store.get(cookieValue), null);
      assert.equal(await store.delete(session.id), false);
      assert.equal(await store.deleteBySid(idp, 's'), 0);
      assert.equal(await store.deleteBySub(idp, 'u'), 0);
    });

    it('take deletes a session as delete does and returns the secrets it held then (a logout revokes the refresh token a refresh saved since its read)', async () => {
      const store = open();
      const idp = `idp-${uniq()}`;
      const { cookieValue, session } = await store.create(newSession({ idp, sub: 'u', sid: 's' }));
      const later = secrets();
      assert.equal(await store.updateSecrets(session.id, later), true);
      const local: string[] = [];
      // Only this session's: earlier tests' deletions on the same backend can still be arriving
      // (on a Cluster, over the bus), and they are no business of this one.
      store.onInvalidate((id) => { if (id === session.id) local.push(id); });
      assert.deepEqual(await store.take(session.id), viaJson(later), 'as stored at the delete, not as first read');
      assert.deepEqual(local, [session.id], 'announced as a delete is');
      assert.equal(await store.get(cookieValue), null);
      assert.equal(await h.rawExists(url, session.id), false);
      assert.equal(await store.deleteBySid(idp, 's'), 0, 'index entries gone');
      assert.equal(await store.take(session.id), null, 'nothing left to take');
      assert.equal(await store.take('garbage'), null);
      // Secrets sealed under a key this store lacks: deleted all the same, nothing to return.
      const other = open({ keys: [KEY_B] });
      const foreign = await other.create(newSession());
      assert.equal(await store.take(foreign.session.id), null);
      assert.equal(await h.rawExists(url, foreign.session.id), false);
    });

    it('deleteBySid and deleteBySub delete exactly the matching sessions', async () => {
      const store = open();
      const a = `a-${uniq()}`;
      const b = `b-${uniq()}`;
      const mk = async (idp: string, sub: string, sid: string | undefined) => (await store.create(newSession({ idp, sub, sid }))).session.id;
      const s1 = await mk(a, 'u1', 'x');
      const s2 = await mk(a, 'u1', 'y');
      const s3 = await mk(a, 'u2', 'x');
      const s4 = await mk(b, 'u1', 'x');
      const s5 = await mk(a, 'u1', undefined);
      // separators cannot be forged through the names
      const s6 = await mk(`${a}:x`, 'u9', 'z');
      const s7 = await mk(a, 'u9', 'x:z');
      const alive = async () => {
        const out: string[] = [];
        for (const [n, id] of Object.entries({ s1, s2, s3, s4, s5, s6, s7 })) if (await store.getById(id)) out.push(n);
        return out;
      };
      assert.equal(await store.deleteBySid(a, 'x'), 2);
      assert.deepEqual(await alive(), ['s2', 's4', 's5', 's6', 's7']);
      assert.equal(await store.deleteBySub(a, 'u1'), 2);
      assert.deepEqual(await alive(), ['s4', 's6', 's7']);
      assert.equal(await store.deleteBySid(a, 'x'), 0);
      assert.equal(await store.deleteBySid(`${a}:x`, 'z'), 1);
      assert.deepEqual(await alive(), ['s4', 's7']);
      assert.equal(await store.deleteBySub(b, 'u1'), 1);
      assert.equal(await store.deleteBySid(a, 'x:z'), 1);
      assert.deepEqual(await alive(), []);
      assert.equal(await store.deleteBySub(`nobody-${uniq()}`, 'nobody'), 0);
    });

    it('index names holding a lone surrogate are keys of their own, not a URIError', async () => {
      // JSON lets a claim hold one; the BFF refuses such ids at sign-in, the store must not throw.
      const store = open();
      const idp = `l-${uniq()}`;
      const literal = (await store.create(newSession({ idp, sub: 'u%ud800', sid: 's%udc00' }))).session.id;
      assert.equal(await store.deleteBySub(idp, 'u\ud800'), 0, 'not the session whose sub spells the escape');
      assert.equal(await store.deleteBySid(idp, 's\udc00'), 0);
      assert.equal(await store.markOnce('lone', 'j\ud800x', 60_000), true);
      assert.equal(await store.markOnce('lone', 'j\ud800x', 60_000), false);
      assert.equal(await store.markOnce('lone', 'j%ud800x', 60_000), true);
      assert.ok(await store.getById(literal));
    });

    it('after deleteBySid no session of that sid can be created, not even one racing it', async () => {
      const store = open();
      const other = open();
      const idp = `idp-${uniq()}`;
      await store.deleteBySid(idp, 'gone');
      await assert.rejects(other.create(newSession({ idp, sub: 'late', sid: 'gone' })), SessionEnded);
      assert.equal(await other.deleteBySub(idp, 'late'), 0, 'nothing of it was kept');
      assert.ok(await other.create(newSession({ idp, sub: 'late', sid: 'another' })), 'other sids are unaffected');
      // A login completing while the IdP's logout arrives: whichever order, nothing lives on.
      for (let i = 0; i < 20; i++) {
        const sid = `race-${i}`;
        const [, created] = await Promise.allSettled([store.deleteBySid(idp, sid), other.create(newSession({ idp, sub: `r${i}`, sid }))]);
        if (created.status === 'fulfilled') assert.equal(await store.getById(created.value.session.id), null, `round ${i}: the session outlived its sid`);
        else assert.ok(created.reason instanceof SessionEnded, String(created.reason));
      }
    });

    it('after deleteBySub no sign-in begun before it can create a session of that sub, not even one racing it', async () => {
      const store = open();
      const other = open();
      const idp = `idp-${uniq()}`;
      const signIn = (startedAt: number) => ({ browser: `b-${uniq()}`, startedAt });
      const before = (await other.clock()) - 1;
      await store.deleteBySub(idp, 'gone');
      await assert.rejects(other.create(newSession({ idp, sub: 'gone', sid: undefined, login: signIn(before) })), SessionEnded);
      assert.equal(await other.deleteBySub(idp, 'gone'), 0, 'nothing of it was kept');
      await sleep(2); // the store's clock is in ms
      assert.ok(await other.create(newSession({ idp, sub: 'gone', sid: 'new', login: signIn(await other.clock()) })), 'a sign-in begun after it is not ended');
      assert.ok(await other.create(newSession({ idp, sub: 'someone-else', sid: undefined, login: signIn(before) })), 'other subs are unaffected');
      // A login completing while the IdP's logout of the user arrives: whichever order, nothing lives on.
      for (let i = 0; i < 20; i++) {
        const sub = `race-${i}`;
        const login = signIn(Date.now() - 1);
        const [, created] = await Promise.allSettled([store.deleteBySub(idp, sub), other.create(newSession({ idp, sub, sid: undefined, login }))]);
        if (created.status === 'fulfilled') assert.equal(await store.getById(created.value.session.id), null, `round ${i}: the session outlived its user's logout`);
        else assert.ok(created.reason instanceof SessionEnded, String(created.reason));
      }
    });

    it('deleteBySid with the sub also deletes that sub\'s sessions stored without a sid; not its others, nor other users\'', async () => {
      const store = open();
      const idp = `idp-${uniq()}`;
      const mk = async (sub: string, sid: string | undefined, i = idp) => (await store.create(newSession({ idp: i, sub, sid }))).session.id;
      const named = await mk('u', 's');
      const namedOtherSub = await mk('v', 's');
      const sidless = [await mk('u', undefined), await mk('u', undefined)];
      const otherSid = await mk('u', 't');
      const otherUserSidless = await mk('v', undefined);
      const otherIdp = await mk('u', undefined, `${idp}-2`);
      assert.equal(await store.deleteBySid(idp, 's', 'u'), 4);
      for (const id of [named, namedOtherSub, ...sidless]) assert.equal(await store.getById(id), null);
      for (const id of [otherSid, otherUserSidless, otherIdp]) assert.ok(await store.getById(id), 'not named by the token');
      assert.equal(await store.deleteBySid(idp, 's', 'u'), 0);
      assert.equal(await store.deleteBySub(idp, 'u'), 1, 'the sub index kept only the session under another sid');
    });

    it('after deleteBySid with the sub, no sign-in of that sub without a sid begun before it can create a session, not even one racing it', async () => {
      const store = open();
      const other = open();
      const idp = `idp-${uniq()}`;
      const signIn = (startedAt: number) => ({ browser: `b-${uniq()}`, startedAt });
      const before = (await other.clock()) - 1;
      await store.deleteBySid(idp, 's', 'gone');
      await assert.rejects(other.create(newSession({ idp, sub: 'gone', sid: undefined, login: signIn(before) })), SessionEnded);
      assert.ok(await other.create(newSession({ idp, sub: 'gone', sid: 'another', login: signIn(before) })), 'a sign-in at another IdP session is not ended');
      assert.ok(await other.create(newSession({ idp, sub: 'someone-else', sid: undefined, login: signIn(before) })), 'other subs are unaffected');
      await sleep(2);
      assert.ok(await other.create(newSession({ idp, sub: 'gone', sid: undefined, login: signIn(await other.clock()) })), 'a sign-in begun after it is not ended');
      for (let i = 0; i < 20; i++) {
        const sub = `race-${i}`;
        const login = signIn((await other.clock()) - 1);
        const [, created] = await Promise.allSettled([store.deleteBySid(idp, `s-${i}`, sub), other.create(newSession({ idp, sub, sid: undefined, login }))]);
        if (created.status === 'fulfilled') assert.equal(await store.getById(created.value.session.id), null, `round ${i}: the session outlived the logout`);
        else assert.ok(created.reason instanceof SessionEnded, String(created.reason));
      }
    });

    it('clock() is the store\'s, not the process\'s: stores whose processes\' clocks disagree agree on it, and so on what a logout by sub ends', async () => {
      const behind = open({ now: () => Date.now() - 10 * MIN });
      const ahead = open({ now: () => Date.now() + 10 * MIN });
      const [x, y] = await Promise.all([behind.clock(), ahead.clock()]);
      assert.ok(Math.abs(x - y) < 5_000, `${x} vs ${y}`);
      const idp = `idp-${uniq()}`;
      const signIn = (startedAt: number) => ({ browser: `b-${uniq()}`, startedAt });
      const early = signIn((await ahead.clock()) - 1);
      await behind.deleteBySub(idp, 'u');
      await assert.rejects(ahead.create(newSession({ idp, sub: 'u', sid: undefined, login: early })), SessionEnded, 'begun before a logout a lagging process received');
      await ahead.deleteBySub(idp, 'w');
      await sleep(2);
      assert.ok(await behind.create(newSession({ idp, sub: 'w', sid: undefined, login: signIn(await behind.clock()) })), 'begun after a logout a leading process received');
    });

    it('a sign-in deletes the session of the same browser\'s previous sign-in, and only that one', async () => {
      const store = open();
      const other = open();
      const browser = `browser-${uniq()}`;
      const first = await store.create(newSession({ login: { browser, startedAt: Date.now() - 1 } }));
      const unrelated = await store.create(newSession({ login: { browser: `elsewhere-${uniq()}`, startedAt: Date.now() } }));
      const plain = await store.create(newSession());
      await new Promise((r) => setTimeout(r, 2));
      // The next sign-in in this browser began after the first one's session was made.
      const second = await other.create(newSession({ login: { browser, startedAt: Date.now() } }));
      assert.equal(await store.getById(first.session.id), null, 'the first sign-in\'s session is gone');
      assert.ok(await store.getById(second.session.id));
      assert.ok(await store.getById(unrelated.session.id), 'another browser\'s session stays');
      assert.ok(await store.getById(plain.session.id), 'a session made without a sign-in stays');
    });

    it('two sign-ins of one browser that overlapped both keep their sessions (the browser may keep either cookie)', async () => {
      const store = open();
      const other = open();
      for (let i = 0; i < 10; i++) {
        // Two tabs sent to the IdP at once: both began before either session was made.
        const both = { browser: `tabs-${i}-${uniq()}`, startedAt: Date.now() - 1 };
        const made = await Promise.all([store.create(newSession({ login: both })), other.create(newSession({ login: both }))]);
        const alive = (await Promise.all(made.map((m) => store.getById(m.session.id)))).filter(Boolean);
        assert.equal(alive.length, 2, `round ${i}: ${alive.length} sessions left`);
        // One made in the same millisecond the later sign-in began overlapped it too.
        const browser = `same-ms-${i}-${uniq()}`;
        const early = await store.create(newSession({ login: { browser, startedAt: Date.now() - 1 } }));
        await other.create(newSession({ login: { browser, startedAt: early.session.createdAt } }));
        assert.ok(await store.getById(early.session.id), `round ${i}: the session made as the later sign-in began stays`);
      }
    });

    it('on a process whose clock lags the store\'s, a sign-in keeps the session a later sign-in of the browser made (one clock: the store\'s)', async () => {
      open(); // the memory dataset's clock: real time, as Redis's TIME is here
      const lagging = open({ now: () => Date.now() - 10 * MIN });
      const browser = `lagging-${uniq()}`;
      const earlier = await lagging.clock(); // sign-in A begins (/auth/login reads the store's clock)
      await sleep(2);
      const later = await lagging.create(newSession({ login: { browser, startedAt: await lagging.clock() } })); // B begins and completes
      await lagging.create(newSession({ login: { browser, startedAt: earlier } })); // A completes
      assert.ok(await lagging.getById(later.session.id), 'the session of a sign-in begun after this one was deleted (its createdAt, on the lagging clock, read as before)');
    });

    it('a sign-in never deletes another user\'s session through a shared browser binding', async () => {
      // The binding is the hash of the login-transaction cookie, which another browser may share
      // (a value planted on plain-http localhost): only the same user's session is "the previous one".
      const store = open();
      const browser = `shared-${uniq()}`;
      const idp = `idp-${uniq()}`;
      const alice = await store.create(newSession({ idp, sub: 'alice', login: { browser, startedAt: Date.now() } }));
      await store.create(newSession({ idp, sub: 'mallory', login: { browser, startedAt: Date.now() } }));
      assert.ok(await store.getById(alice.session.id), 'alice\'s session survives mallory\'s sign-in');
      const elsewhere = await store.create(newSession({ idp: `${idp}-2`, sub: 'alice', login: { browser, startedAt: Date.now() } }));
      assert.ok(await store.getById(elsewhere.session.id));
      await sleep(2); // startedAt is read from the store's clock (ms), as /auth/login does
      const again = await store.create(newSession({ idp: `${idp}-2`, sub: 'alice', login: { browser, startedAt: await store.clock() } }));
      assert.equal(await store.getById(elsewhere.session.id), null, 'the same user\'s previous sign-in in that browser is still replaced');
      assert.ok(await store.getById(again.session.id));
    });

    it('lastSignInIdp names the IdP of the browser\'s last sign-in while its session lives; a replaced session is marked with the new sign-in\'s IdP', async () => {
      const store = open();
      const browser = `last-${uniq()}`;
      const idp = `idp-${uniq()}`;
      assert.equal(await store.lastSignInIdp(browser), null, 'no sign-in yet');
      const first = await store.create(newSession({ idp, sub: 'lena', login: { browser, startedAt: Date.now() } }));
      assert.equal(await store.lastSignInIdp(browser), idp);
      await sleep(2);
      const second = await store.create(newSession({ idp, sub: 'lena', login: { browser, startedAt: await store.clock() } }));
      assert.equal(await store.getById(first.session.id), null, 'replaced');
      assert.equal(await store.takeTransient(REPLACED.kind, first.session.id), idp, 'marked with the IdP of the sign-in that replaced it');
      assert.equal(await store.lastSignInIdp(browser), idp);
      assert.ok(await store.delete(second.session.id));
      assert.equal(await store.lastSignInIdp(browser), null, 'its session is gone');
      await store.create(newSession({ idp: `${idp}-2`, sub: 'lena', login: { browser, startedAt: Date.now() } }));
      assert.equal(await store.lastSignInIdp(browser), `${idp}-2`);
      assert.equal(await store.lastSignInIdp(browser, 'lena'), `${idp}-2`, 'that user\'s');
      assert.equal(await store.lastSignInIdp(browser, 'otto'), null, 'another user\'s session in the same browser is not counted when a user is named');
    });

    it('tally counts the events of a kind per window, every store instance together', async () => {
      let t = 1_900_000_000_000;
      const store = open({ now: () => t });
      const other = open({ now: () => t });
      const kind = `starts-${uniq()}`;
      assert.deepEqual([await store.tally(kind, 60_000), await other.tally(kind, 60_000), await store.tally(kind, 60_000)], [1, 2, 3]);
      assert.equal(await other.tally(`${kind}-else`, 60_000), 1, 'kinds count apart');
      t += 60_000;
      assert.equal(await other.tally(kind, 60_000), 1, 'a new window starts at one');
      assert.equal(await store.tally(kind, 60_000), 2);
      await assert.rejects(store.tally(kind, 0), RangeError);
      // A weighted event (a sign-in whose transaction is larger) counts for its weight.
      const weighted = `${kind}-weighted`;
      assert.equal(await store.tally(weighted, 60_000, 17), 17);
      assert.equal(await other.tally(weighted, 60_000), 18);
      assert.equal(await store.tally(weighted, 60_000, 3), 21);
      t += 2 * 60_000;
      assert.equal(await store.tally(weighted, 60_000, 5), 5, 'a new window starts at the weight');
      for (const bad of [0, -1, 1.5, Number.NaN]) await assert.rejects(store.tally(weighted, 60_000, bad), RangeError);
    });

    it('locks are exclusive and only released by their token', async () => {
      const store = open();
      const other = open();
      const name = `refresh-${uniq()}`;
      const t1 = await store.tryLock(name, 10_000);
      assert.ok(t1);
      assert.equal(await other.tryLock(name, 10_000), null, 'held: exclusive across store instances');
      await other.unlock(name, 'not-the-token');
      assert.equal(await store.tryLock(name, 10_000), null, 'a wrong token does not release');
      assert.ok(await other.tryLock(`${name}-other`, 10_000), 'other names are independent');
      await store.unlock(name, t1);
      const t2 = await other.tryLock(name, 10_000);
      assert.ok(t2);
      assert.notEqual(t2, t1);
      await store.unlock(name, t1); // stale token from the previous holder
      assert.equal(await store.tryLock(name, 10_000), null, 'a stale token does not release the new holder');

      const short = `short-${uniq()}`;
      assert.ok(await store.tryLock(short, 150));
      await sleep(300);
      assert.ok(await other.tryLock(short, 150), 'locks expire');
      await assert.rejects(store.tryLock(short, 0), RangeError);
    });

    it('transients are one-use, expire, and are bound to the store keys', async () => {
      const store = open();
      const key = `state-${uniq()}`;
      await store.putTransient('login', key, '{"verifier":"v"}', 10_000);
      assert.equal(await store.takeTransient('other-kind', key), null);
      assert.equal(await store.takeTransient('login', key), '{"verifier":"v"}');
      assert.equal(await store.takeTransient('login', key), null, 'one use only');

      await store.putTransient('login', key, 'short', 150);
      await sleep(300);
      assert.equal(await store.takeTransient('login', key), null, 'expired');

      await store.putTransient('login', key, 'secret', 10_000);
      assert.equal(await open({ keys: [KEY_B] }).takeTransient('login', key), null, 'other keys cannot read it');
    });

    it('markOnce records a key once until it expires', async () => {
      const store = open();
      const jti = `jti-${uniq()}`;
      assert.equal(await store.markOnce('logout', jti, 10_000), true);
      assert.equal(await store.markOnce('logout', jti, 10_000), false);
      assert.equal(await open().markOnce('logout', jti, 10_000), false, 'across instances');
      assert.equal(await store.markOnce('other', jti, 10_000), true, 'kinds are separate');
      const short = `jti-${uniq()}`;
      assert.equal(await store.markOnce('logout', short, 150), true);
      await sleep(300);
      assert.equal(await store.markOnce('logout', short, 150), true, 'expired');
    });

    it('unmark forgets a markOnce, for that kind and key only', async () => {
      const store = open();
      const jti = `jti-${uniq()}`;
      assert.equal(await store.markOnce('logout', jti, 10_000), true);
      assert.equal(await store.markOnce('other', jti, 10_000), true);
      await open().unmark('logout', jti);
      assert.equal(await store.markOnce('logout', jti, 10_000), true, 'recorded again after unmark');
      assert.equal(await store.markOnce('other', jti, 10_000), false, 'the other kind is kept');
      await store.unmark('logout', `never-${uniq()}`); // nothing to forget: no error
    });

    it('fires onInvalidate on delete and update, in this and other instances, within 100 ms', async () => {
      const store = open();
      const other = open();
      await Promise.all([store.ping(), other.ping()]);
      const heardLocal: string[] = [];
      const heardRemote: { id: string; at: number }[] = [];
      // Everything is recorded (a create that invalidated would show), but only this test's
      // sessions are read: earlier tests' deletions on the same backend can still be arriving (on
      // a Cluster, over the bus).
      const ours = new Set<string>();
      const local = () => heardLocal.filter((id) => ours.has(id));
      const remote = () => heardRemote.filter((r) => ours.has(r.id));
      const offLocal = store.onInvalidate((id) => heardLocal.push(id));
      other.onInvalidate((id) => heardRemote.push({ id, at: Date.now() }));
      const waitRemote = async (n: number, since: number) => {
        while (remote().length < n && Date.now() - since < 1000) await sleep(2);
        assert.equal(remote().length, n);
        assert.ok(remote()[n - 1]!.at - since < 100, `arrived after ${remote()[n - 1]!.at - since} ms`);
      };

      const a = await store.create(newSession());
      const b = await store.create(newSession({ idp: `i-${uniq()}`, sid: 'bsid' }));
      const c = await store.create(newSession());
      for (const x of [a, b, c]) ours.add(x.session.id);
      assert.deepEqual(local(), [], 'create does not invalidate');

      let t0 = Date.now();
      await store.updateSecrets(a.session.id, secrets());
      assert.deepEqual(local(), [a.session.id]);
      await waitRemote(1, t0);
      assert.equal(remote()[0]!.id, a.session.id);

      t0 = Date.now();
      await store.delete(a.session.id);
      assert.deepEqual(local(), [a.session.id, a.session.id]);
      await waitRemote(2, t0);

      t0 = Date.now();
      assert.equal(await other.deleteBySid(b.session.idp, 'bsid'), 1);
      while (local().length < 3 && Date.now() - t0 < 1000) await sleep(2);
      assert.deepEqual(local().slice(2), [b.session.id], 'a delete elsewhere reaches this instance');
      assert.ok(Date.now() - t0 < 100 + 50);
      assert.equal(remote().length, 3, 'the deleting instance heard itself exactly once');

      offLocal();
      assert.equal(await store.delete(c.session.id), true);
      await waitRemote(4, Date.now());
      assert.equal(local().length, 3, 'unsubscribed');
    });

    /** The backend under the store, to put there what the store itself never writes. */
    const raw = (u = url): KvBackend => {
      const b = u.startsWith('memory:') ? new MemoryBackend(u) : new RedisBackend(parseRedisUrl(u), { log: silentLogger, commandTimeoutMs: h.commandTimeoutMs, tlsCa: h.redisTlsCa });
      backends.push(b);
      return b;
    };

    it('a value of another type under a session key is no session (not a store failure), and a logout removes it', async () => {
      // Were it a failure, every request of the browser holding that cookie would be a 503: its
      // sign-in and its logout too, which read the old session first (BFF callback, logout).
      const store = open();
      const b = raw();
      for (const foreign of [
        (k: string) => b.put(k, 'not a session', 60_000, false),
        (k: string) => b.setAdd(k, 'not a session', 60_000),
      ]) {
        const { cookieValue, session } = await store.create(newSession());
        const key = storeKeys.session(session.id);
        await b.hashTake(key, ['sub']);
        await foreign(key);
        assert.equal(await store.get(cookieValue), null, 'get: absent');
        assert.equal(await store.getById(session.id), null, 'getById: absent');
        assert.equal(await store.revalidate(session), null, 'revalidate: absent');
        assert.equal(await store.updateSecrets(session.id, secrets()), false, 'nothing to update, nothing written');
        assert.equal(await store.delete(session.id), false, 'not a session that was deleted, but no failure');
        assert.equal(await b.exists(key), false, 'and the value is gone');
        await foreign(key);
        assert.equal(await store.take(session.id), null, 'take: nothing to return, no failure');
        assert.equal(await b.exists(key), false, 'and take removes it as delete does');
      }
    });

    it('a session whose version is not a number: a refresh fails closed and writes nothing', async () => {
      const store = open();
      const b = raw();
      const { session } = await store.create(newSession());
      await b.hashUpdate(storeKeys.session(session.id), { version: 'garbled' });
      await assert.rejects(store.updateSecrets(session.id, secrets()), StoreUnavailable);
      assert.deepEqual((await store.getById(session.id))?.secrets, viaJson(session.secrets), 'the secrets it had');
    });

    it('a value of another type under an index key fails closed, never read as an empty index nor replaced', async () => {
      const store = open();
      const idp = `wt-${uniq()}`;
      const b = raw();
      await b.put(storeKeys.bySub(idp, 'u'), 'not a set', 60_000, false);
      await b.put(storeKeys.bySid(idp, 's'), 'not a set', 60_000, false);
      await assert.rejects(store.deleteBySub(idp, 'u'), StoreUnavailable, 'a back-channel logout that found nothing is not a success');
      await assert.rejects(store.deleteBySid(idp, 's'), StoreUnavailable);
      await assert.rejects(store.create(newSession({ idp, sub: 'u', sid: undefined })), StoreUnavailable);
      assert.equal(await b.get(storeKeys.bySub(idp, 'u')), 'not a set', 'left as it was');
      await b.setAdd(storeKeys.subEnded(idp, 'w'), 'a', 60_000);
      await assert.rejects(store.create(newSession({ idp, sub: 'w', sid: undefined })), StoreUnavailable);
      // A lock, a transient or a tally counter holding something else: the same failure.
      await b.setAdd(storeKeys.transient('login', 'k'), 'x', 60_000);
      await assert.rejects(store.takeTransient('login', 'k'), StoreUnavailable);
      const hour = Math.floor(Date.now() / 3_600_000);
      for (const w of [hour, hour + 1]) await b.put(storeKeys.tally('t', w), 'many', 60_000, false);
      await assert.rejects(store.tally('t', 3_600_000), StoreUnavailable);
    });

    it('a sign-in costs a bounded number of operations, however many sessions its user already has', async function () {
      // Each sign-in past 32 sessions of one user checked every member of the user's index: N
      // sessions, N commands a sign-in. 3,000 sign-ins of one account sent Redis 4.5 million.
      this.timeout(30_000);
      const store = open();
      const idp = `many-${uniq()}`;
      for (let i = 0; i < 200; i++) await store.create(newSession({ idp, sub: 'u', sid: undefined }));
      await sleep(300); // the index prunes run in the background
      const c0 = await h.counts(url);
      await store.create(newSession({ idp, sub: 'u', sid: undefined }));
      await sleep(300);
      const c1 = await h.counts(url);
      const ops = c1.reads + c1.writes - c0.reads - c0.writes;
      assert.ok(ops < 100, `the 201st sign-in cost ${ops} operations`);
    });

    it('the index of a user who signs in again and again keeps few members whose session is gone', async function () {
      this.timeout(30_000);
      const idp = `gone-${uniq()}`;
      const brief = open({ idleMs: 1000 });
      for (let i = 0; i < 100; i++) await brief.create(newSession({ idp, sub: 'u', sid: undefined }));
      await sleep(1500); // all 100 idle out
      const store = open();
      for (let i = 0; i < 40; i++) await store.create(newSession({ idp, sub: 'u', sid: undefined }));
      await sleep(300);
      const members = await raw().setMembers(storeKeys.bySub(idp, 'u'));
      assert.ok(members.length <= 45, `${members.length} members for 40 sessions`);
      assert.equal(await store.deleteBySub(idp, 'u'), 40);
    });

    it('pings', async () => {
      await open().ping();
    });
  });
}
