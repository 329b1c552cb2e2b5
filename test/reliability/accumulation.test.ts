// Accumulation under a mixed workload, against real processes: one `goldpath verify` and one
// `goldpath bff` on a real redis-server (append-only file, fsync always), a real dev IdP with
// short-lived access tokens. Sign-ins through the IdP, allowed / denied / anonymous / forged
// /auth/verify calls, token refreshes, logouts, back-channel logouts (by sid and by sub), 20 SIGHUP
// reloads of each process and one Redis restart (kill -9). Then the invariants a ten-minute soak of
// the same mix measured (README "Reliability" › *Long run*) must hold at once:
//   - every key goldpath left in Redis expires (has a TTL), and the sessions in Redis are exactly
//     the ones still signed in: nothing accumulates beyond what live sessions need;
//   - each process holds as many Redis connections, pub/sub channels and file descriptors as it
//     did before the workload, the reloads and the restart (a reload or a reconnect that opened a
//     connection or a socket and never closed it would show here);
//   - nothing is lost: with a persisted store, every session still signed in before the restart
//     is allowed after it, and every one that was logged out stays refused.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import { devIdpClientFor, generateSigningKey, startDevIdp, type DevIdp } from '../../src/dev/idp.ts';
import { silentLogger } from '../../src/log.ts';
import { browserLogin, httpCall, type HttpResponse } from '../helpers/login.ts';
import { REPO_ROOT, runCli, waitCatches, waitHealthy, type Child } from '../helpers/process.ts';
import { waitFor } from '../helpers/redis-cluster.ts';
import { RedisServer, freePort } from '../helpers/redis.ts';
import { TEST_KEYS } from '../helpers/sessions.ts';
import { devIdpsYaml, logoutToken } from '../helpers/idp-bff.ts';

const SECRET = randomBytes(24).toString('base64url');
const RELOADS = 20;
const SIGHUP = 1;

interface Proc { name: string; child: Child; origin: string; pid: number }
interface Signed { sub: string; cookie: string }

/** The sockets (inodes) among a process's open file descriptors. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

/**
 * Established TCP connections of `pid` to 127.0.0.1:`port`, read from /proc (no ss or lsof
 * needed): the process's own sockets matched against the kernel's TCP table.
 */
function connectionsTo(pid: number, port: number): number {
  const mine = socketInodes(pid);
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try { text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[2] remote address:port, f[3] state (01 = ESTABLISHED), f[9] inode.
      if (f.length > 9 && f[2]!.endsWith(`:${hexPort}`) && f[3] === '01' && mine.has(f[9]!)) n++;
    }
  }
  return n;
}

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

describe('accumulation: a mixed workload, 20 reloads and a Redis restart leave nothing behind', function () {
  this.timeout(180_000);
  let redis: RedisServer;
  let idp: DevIdp;
  let key: JWK;
  let root: string;
  const procs: Proc[] = [];

  before(async function () {
    // Persisted (AOF, fsync on every write), so a restart must lose nothing that was written.
    redis = await RedisServer.start(['--appendonly', 'yes', '--appendfsync', 'always']);
    root = mkdtempSync(join(tmpdir(), 'goldpath-accumulation-'));
    const bffPort = await freePort();
    const publicOrigin = `http://127.0.0.1:${bffPort}`;
    key = await generateSigningKey();
    idp = await startDevIdp({
      port: 0, log: silentLogger, dangerouslyAllowInsecureHttp: true, autoConsent: true, keys: [key],
      // Inside the 30 s refresh window 2 s after issue: every session is refreshed during the run.
      accessTokenTtl: 32,
      clients: [devIdpClientFor({ clientId: 'goldpath', clientSecret: SECRET, origin: publicOrigin })],
      audiences: { 'https://api.example.test/reports': { scopes: ['reports.read'] } },
    });
    const env = {
      REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: publicOrigin, GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','),
      // info: each process says 'configuration reloaded', so the test knows every reload ran.
      TEST_CLIENT_SECRET: SECRET, HOST: '127.0.0.1', LOG_LEVEL: 'info',
    };
    for (const [name, cmd] of [['verify', 'verify'], ['bff', 'bff']] as const) {
      const dir = join(root, name);
      cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
      writeFileSync(join(dir, 'idps.yaml'), devIdpsYaml(idp.issuer));
      const port = name === 'bff' ? bffPort : await freePort();
      const child = runCli('node', [cmd], { ...env, GOLDPATH_CONFIG_DIR: dir, PORT: String(port) });
      procs.push({ name, child, origin: `http://127.0.0.1:${port}`, pid: child.proc.pid! });
    }
    await Promise.all(procs.map((p) => waitHealthy(`${p.origin}/readyz`, p.child, 30_000)));
  });

  after(async function () {
    await Promise.all(procs.map((p) => p.child.stop()));
    await idp?.close();
    await redis?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('every key expires, only live sessions remain, connections/channels/fds return to baseline, nothing is lost', async function () {
    const [verify, bff] = procs as [Proc, Proc];
    const admin = redis.client();
    try {
      const call = (method: string, uri: string, cookie?: string, headers: Record<string, string> = {}): Promise<HttpResponse> =>
        httpCall(`${verify.origin}/auth/verify`, { headers: {
          'x-forwarded-method': method, 'x-forwarded-proto': 'http', 'x-forwarded-host': '127.0.0.1',
          'x-forwarded-uri': uri, accept: 'application/json', ...(cookie ? { cookie: `goldpath=${cookie}` } : {}), ...headers,
        } });
      const signIn = async (sub: string): Promise<Signed> => {
        const r = await browserLogin({ start: `${bff.origin}/auth/login?return_to=/x`, user: sub });
        assert.equal(r.status, 302, r.last.body);
        return { sub, cookie: r.sessionCookie! };
      };
      const traffic = async (s: Signed) => {
        assert.equal((await call('GET', '/api/orders/1', s.cookie)).status, 200);
        assert.equal((await call('GET', '/api/reports', s.cookie)).status, 200); // audience token
        assert.equal((await call('GET', '/api/boom', s.cookie)).status, 403); // a throwing policy
        assert.equal((await call('POST', '/api/orders/1', s.cookie)).status, 403); // no CSRF token
      };
      const strangers = async () => {
        assert.equal((await call('GET', '/api/orders/1')).status, 401);
        assert.equal((await call('GET', '/api/public/x')).status, 200);
        assert.equal((await call('GET', '/api/orders/1', `${randomBytes(32).toString('base64url')}.${randomBytes(16).toString('base64url')}`)).status, 401);
        assert.equal((await call('GET', '/api/orders/1', randomBytes(7).toString('base64url'))).status, 401);
      };
      const sessionIdsOf = async (sub: string) => (await admin.smembers(`gp:sub:{dev:${sub}}`));

      // Warm-up (IdP discovery, first refresh, keep-alive sockets to the IdP), then the baseline.
      const warm = await signIn('warm-up');
      await traffic(warm);
      await strangers();
      const settle = () => new Promise((r) => setTimeout(r, 500));
      await settle();
      const baseline = procs.map((p) => ({ conns: connectionsTo(p.pid, redis.port), fds: fdCount(p.pid) }));
      const baseChannels = (await admin.pubsub('CHANNELS')).length;
      assert.ok(baseline.every((b) => b.conns > 0), `each process is connected to Redis: ${JSON.stringify(baseline)}`);

      // The mixed workload: 12 users sign in, use their sessions, tokens are refreshed.
      const users = await Promise.all(Array.from({ length: 12 }, (_, i) => signIn(`soak-${i}`)));
      for (const s of users) await traffic(s);
      await strangers();
      await new Promise((r) => setTimeout(r, 2_500)); // past the refresh window's start
      for (const s of users) await traffic(s); // refreshes (ahead of time)

      // Logouts (4), back-channel logouts by sid (2) and by sub (1).
      const ended = new Set<string>();
      for (const s of users.slice(0, 4)) {
        const info = await httpCall(`${bff.origin}/auth/session`, { headers: { cookie: `goldpath=${s.cookie}`, accept: 'application/json' } });
        const csrf = (JSON.parse(info.body) as { csrf_token: string }).csrf_token;
        const r = await httpCall(`${bff.origin}/auth/logout`, { method: 'POST', headers: { cookie: `goldpath=${s.cookie}`, accept: 'application/json', 'x-csrf-token': csrf } });
        assert.equal(r.status, 200, r.body);
        ended.add(s.sub);
      }
      for (const [i, s] of users.slice(4, 7).entries()) {
        const [id] = await sessionIdsOf(s.sub);
        const sid = await admin.hget(`gp:s:{${id}}`, 'sid');
        assert.ok(sid, 'a session from the dev IdP has a sid');
        const token = await logoutToken(idp.issuer, key, i < 2 ? { sid, sub: s.sub } : { sub: s.sub });
        const form = { method: 'POST', body: new URLSearchParams({ logout_token: token }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
        assert.equal((await httpCall(`${bff.origin}/auth/backchannel-logout`, form)).status, 200);
        assert.equal((await httpCall(`${bff.origin}/auth/backchannel-logout`, form)).status, 400); // replayed
        ended.add(s.sub);
      }
      const live = [warm, ...users.filter((s) => !ended.has(s.sub))];

      // SIGHUP reloads, each one sent once the previous one is done (the processes coalesce a
      // SIGHUP that arrives during a reload), with traffic in between.
      const reloaded = (p: Proc) => p.child.output().split('\n').filter((l) => l.includes('"configuration reloaded"')).length;
      for (const p of procs) assert.ok(await waitCatches(p.child, SIGHUP), `${p.name} handles SIGHUP`);
      for (let i = 0; i < RELOADS; i++) {
        await Promise.all(procs.map(async (p) => {
          const before = reloaded(p);
          p.child.proc.kill('SIGHUP');
          await waitFor(`${p.name} reload ${i + 1}`, async () => reloaded(p) > before, 10_000, 20);
        }));
        assert.equal((await call('GET', '/api/orders/1', live[i % live.length]!.cookie)).status, 200);
      }
      assert.deepEqual(procs.map(reloaded), procs.map(() => RELOADS));

      // One Redis restart (kill -9), then both processes find it again by themselves.
      await redis.kill('SIGKILL');
      await redis.start();
      await Promise.all(procs.map((p) => waitFor(`${p.name} ready after the restart`, async () => (await fetch(`${p.origin}/readyz`)).status === 200, 15_000)));
      await waitFor('the admin client to reconnect', async () => (await admin.ping()) === 'PONG', 10_000);

      // Nothing lost: the persisted sessions still signed in are allowed, the ended ones are not.
      for (const s of live) assert.equal((await call('GET', '/api/orders/1', s.cookie)).status, 200, `${s.sub} survives the restart`);
      for (const s of users.filter((u) => ended.has(u.sub))) assert.equal((await call('GET', '/api/orders/1', s.cookie)).status, 401, `${s.sub} stays ended`);
      await strangers();

      // Every key expires; the sessions stored are exactly the live ones.
      const keys: string[] = [];
      for (let cursor = '0'; ;) {
        const [next, batch] = await admin.scan(cursor, 'COUNT', 1000);
        keys.push(...batch);
        if ((cursor = next) === '0') break;
      }
      const ttls = await Promise.all(keys.map((k) => admin.pttl(k)));
      const forever = keys.filter((_, i) => ttls[i] === -1);
      assert.deepEqual(forever, [], `keys without a TTL: ${forever.join(', ')}`);
      assert.equal(keys.filter((k) => k.startsWith('gp:s:')).length, live.length, 'one session key per live session');

      // Connections, channels and fds back to the baseline (sockets of finished requests may take
      // a moment to close: polled, not sampled once).
      let now: { conns: number; fds: number }[] = [];
      try {
        await waitFor('connections and fds back to the baseline', async () => {
          now = procs.map((p) => ({ conns: connectionsTo(p.pid, redis.port), fds: fdCount(p.pid) }));
          return now.every((n, i) => n.conns === baseline[i]!.conns && n.fds <= baseline[i]!.fds + 2);
        }, 10_000, 250);
      } catch {
        assert.fail(`per process [verify, bff], before ${JSON.stringify(baseline)}, after ${RELOADS} reloads and a Redis restart ${JSON.stringify(now)}`);
      }
      assert.equal((await admin.pubsub('CHANNELS')).length, baseChannels, 'pub/sub channels');
      const [, subscribers] = await admin.pubsub('NUMSUB', 'gp:invalidate') as [string, number];
      assert.equal(Number(subscribers), procs.length, 'one invalidation subscriber per process');
    } finally {
      admin.disconnect();
    }
  });
});
