// README "Operations": while a dependency is away its 503s are logged one line a second
// (`request failed`, with `alsoFailed`: how many it stands for), and /metrics counts each. The
// failures held back in an outage's last second must be reported when that second ends: they were
// said only by the *next* `request failed` line, which may come hours later in another outage, and
// then claimed failures that were not its own, while the outage itself looked smaller in the log
// than it was.
import assert from 'node:assert/strict';
import { loadSettings } from '../../src/config/env.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { RedisServer } from '../helpers/redis.ts';
import { newSession } from '../helpers/sessions.ts';
import { verifyEnv } from '../helpers/verify-app.ts';
import { spawnVerify, type VerifyChild } from '../helpers/verify-process.ts';

interface Line { level: string; msg: string; alsoFailed?: number; reqId?: string }

for (const runtime of ['node', 'deno'] as const) {
  describe(`verify process under ${runtime}: the 503s of an outage are all accounted for in its own log lines`, function () {
    this.timeout(90_000);

    /**
     * A redis-server, a store on it and a sidecar process with one session it answered 200 for;
     * `failedLines(from)`: the sidecar's "request failed" lines printed since `from`.
     */
    async function withSidecar(body: (o: {
      redis: RedisServer; store: ReturnType<typeof createSessionStore>; sidecar: VerifyChild; cookieValue: string; failedLines(from: number): Line[];
    }) => Promise<void>): Promise<void> {
      const redis = await RedisServer.start();
      const store = createSessionStore({ url: redis.url, settings: loadSettings(verifyEnv(redis.url)), log: silentLogger });
      const sidecar = await spawnVerify(runtime, redis.url);
      try {
        const { cookieValue } = await store.create(newSession());
        assert.equal((await sidecar.verify(cookieValue)).status, 200);
        const failedLines = (from: number): Line[] => sidecar.child.output().slice(from).split('\n')
          .filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line).filter((l) => l.msg === 'request failed');
        await body({ redis, store, sidecar, cookieValue, failedLines });
      } finally {
        await sidecar.stop();
        await store.close();
        await redis.stop();
      }
    }
    const accounted = (lines: Line[]) => lines.reduce((n, l) => n + 1 + (l.alsoFailed ?? 0), 0);

    it('a burst of 503s is summed up within about a second of its end, and the next outage\'s line claims none of it', () => withSidecar(async ({ redis, store, sidecar, cookieValue, failedLines }) => {
      // Outage 1: Redis gone; 20 requests within well under a second, all 503.
      await redis.kill();
      const from = sidecar.child.output().length;
      const n = 20;
      for (let i = 0; i < n; i++) assert.equal((await sidecar.verify(cookieValue)).status, 503);
      await new Promise((r) => setTimeout(r, 2_000));
      const first = failedLines(from);
      assert.equal(accounted(first), n, `the outage's own lines account for its ${n} failures: ${JSON.stringify(first)}`);

      // Redis back; later, outage 2: one failed request. Its line stands for itself only.
      await redis.start(); // empty: the session is created again
      let again: string | undefined;
      for (const deadline = Date.now() + 15_000; ;) {
        again ??= await store.create(newSession()).then((c) => c.cookieValue, () => undefined);
        if (again !== undefined && (await sidecar.verify(again)).status === 200) break;
        assert.ok(Date.now() < deadline, 'the sidecar recovers');
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 1_500)); // past the window the recovery's requests opened
      await redis.kill();
      const from2 = sidecar.child.output().length;
      const one = await sidecar.verify(again);
      assert.equal(one.status, 503);
      await new Promise((r) => setTimeout(r, 300));
      const second = failedLines(from2);
      assert.equal(second.length, 1, JSON.stringify(second));
      assert.equal(second[0]!.reqId, one.headers['x-request-id'], 'the line names the answer the client got');
      assert.equal(second[0]!.alsoFailed, undefined, `the second outage's line claims no failure of the first: ${JSON.stringify(second[0])}`);
    }));

    it('a process stopped during an outage says the failures its last second held before it exits', () => withSidecar(async ({ redis, sidecar, cookieValue, failedLines }) => {
      await redis.kill();
      const from = sidecar.child.output().length;
      for (let i = 0; i < 5; i++) assert.equal((await sidecar.verify(cookieValue)).status, 503);
      await sidecar.stop(); // SIGTERM at once: the window that holds four of them has not ended
      const lines = failedLines(from);
      assert.equal(accounted(lines), 5, JSON.stringify(lines));
    }));
  });
}
