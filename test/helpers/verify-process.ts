// `goldpath verify` as a real child process (Node or Deno) on a free port, against any REDIS_URL,
// with the verify fixture config. For tests that need the sidecar exactly as it is deployed.
import assert from 'node:assert/strict';
import { loadSettings } from '../../src/config/env.ts';
import { silentLogger } from '../../src/log.ts';
import { createSessionStore } from '../../src/session/index.ts';
import { newSession } from './sessions.ts';
import { freePort } from './redis.ts';
import { runCli, waitHealthy, type Child, type Runtime } from './process.ts';
import { send, verifyEnv, type VerifyResponse } from './verify-app.ts';

export interface VerifyChild {
  readonly port: number;
  readonly child: Child;
  /** GET /auth/verify for GET `uri` with the session cookie value (if any). */
  verify(cookieValue: string | undefined, uri?: string): Promise<VerifyResponse>;
  get(path: string): Promise<VerifyResponse>;
  stop(): Promise<void>;
}

export async function spawnVerify(runtime: Runtime, redisUrl: string, extraEnv: Record<string, string> = {}): Promise<VerifyChild> {
  const port = await freePort();
  const env = { ...verifyEnv(redisUrl), PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...extraEnv };
  const child = runCli(runtime, ['verify'], env);
  try {
    await waitHealthy(`http://127.0.0.1:${port}/healthz`, child, runtime === 'deno' ? 45_000 : 15_000);
  } catch (err) {
    await child.stop();
    throw err;
  }
  return {
    port,
    child,
    verify: (cookieValue, uri = '/api/orders/1') => send(port, '/auth/verify', {
      'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': uri, 'X-Forwarded-Host': 'localhost:8080', 'X-Forwarded-Proto': 'http',
      ...(cookieValue === undefined ? {} : { Cookie: `goldpath=${cookieValue}` }),
    }),
    get: (path) => send(port, path, {}),
    stop: () => child.stop(),
  };
}

/**
 * Mocha tests: `goldpath verify` under Node and Deno against the store at `url()` answers 200 for a
 * session created through the store API, 401 without one, and is ready. Shared by every topology.
 * `extraEnv`: more variables for both (REDIS_TLS_CA_FILE for a TLS deployment).
 */
export function itServesVerifyProcesses(kind: string, url: () => string, extraEnv: () => Record<string, string> = () => ({})): void {
  for (const runtime of ['node', 'deno'] as const) {
    it(`the goldpath verify process under ${runtime} with ${kind}: 200 for a session, 401 without, ready`, async function () {
      this.timeout(60_000);
      const store = createSessionStore({ url: url(), settings: loadSettings({ ...verifyEnv(url()), ...extraEnv() }), log: silentLogger });
      const sidecar = await spawnVerify(runtime, url(), extraEnv());
      try {
        const { cookieValue } = await store.create(newSession());
        assert.equal((await sidecar.verify(cookieValue)).status, 200);
        assert.equal((await sidecar.verify(undefined)).status, 401);
        assert.equal((await sidecar.get('/readyz')).status, 200);
      } finally {
        await sidecar.stop();
        await store.close();
      }
    });
  }
}
