// The real BFF, on a real port, signing in at the small real IdP of fake-idp.ts (one that can
// misbehave), with a real redis-server and a log the test can read: the setup of the tests of IdP
// faults and quirks (test/oidc/misbehaving-idp.test.ts, test/oidc/idp-quirks.test.ts).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBffApp, type BffApp } from '../../src/bff/app.ts';
import type { GoldpathConfig, IdpConfig } from '../../src/config/types.ts';
import { createSessionStore } from '../../src/session/index.ts';
import type { SessionStore } from '../../src/session/types.ts';
import { startFakeIdp, type FakeIdp, type FakeIdpOptions } from './fake-idp.ts';
import { capturingLogger, testIdpConfig, testSettings, TEST_CLIENT_SECRET } from './idp-bff.ts';
import type { RedisServer } from './redis.ts';
import { closeServer } from './close-server.ts';

export interface FakeIdpBff {
  readonly op: FakeIdp;
  /** The BFF's origin. */
  readonly url: string;
  readonly store: SessionStore;
  readonly bff: BffApp;
  /** The BFF's log lines (JSON), from info up. */
  readonly lines: string[];
  close(): Promise<void>;
}

export interface FakeIdpBffOptions {
  /** How the IdP behaves. */
  readonly idp?: Partial<FakeIdpOptions>;
  /** The idps.yaml entry's settings beyond testIdpConfig's. */
  readonly client?: Partial<IdpConfig>;
  /** Discover the IdP at start (as a process does) rather than at the first sign-in. */
  readonly discoverEagerly?: boolean;
}

export async function startFakeIdpBff(redis: RedisServer, o: FakeIdpBffOptions = {}): Promise<FakeIdpBff> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server: Server = createServer((req, res) => handler!(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const op = await startFakeIdp({ clientId: 'goldpath', clientSecret: TEST_CLIENT_SECRET, redirectUri: `${url}/auth/callback`, ...o.idp });
  const { log, lines } = capturingLogger('info');
  const settings = testSettings(url, redis.url);
  const config: GoldpathConfig = {
    routes: { routes: [], cors: { allowedOrigins: [] } },
    pdp: { policies: [], rules: [] },
    idps: { default: 'fake', idps: { fake: testIdpConfig('fake', op.issuer, o.client ?? {}) } },
  };
  const store = createSessionStore({ url: redis.url, settings, log });
  const bff = await createBffApp({ settings, config, store, log, discoverEagerly: o.discoverEagerly ?? false });
  handler = bff.app.callback();
  return {
    op, url, store, bff, lines,
    async close() {
      await closeServer(server);
      await store.close();
      await op.close();
    },
  };
}
