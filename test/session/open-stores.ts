// The stores a durability test opens on a deployment it may stall (SIGSTOP) or kill: after each
// test every server runs again and every store it opened is closed, whatever the test left.
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { silentLogger } from '../../src/log.ts';
import { KEY_A, MIN } from './contract-suite.ts';

/**
 * Registers that afterEach in the calling describe, and returns open(): a store on
 * `deployment()` (read when called: the deployment starts in a before hook).
 */
export function storesOn(deployment: () => { url: string; servers: readonly { resume(): void }[]; tls?: { caCert: string } }): () => KvSessionStore {
  const opened: KvSessionStore[] = [];
  const open = () => {
    const s = createSessionStore({ url: deployment().url, settings: { sessionKeys: [KEY_A], sessionIdleMs: 30 * MIN, sessionMaxMs: 60 * MIN, redisTlsCa: deployment().tls?.caCert }, log: silentLogger });
    opened.push(s);
    return s;
  };
  afterEach(async function () {
    for (const s of deployment().servers) s.resume();
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });
  return open;
}
