// The benchmark scenarios, and the sessions they need (created through the store API with the
// sidecar's keys, as the BFF would).
import { randomBytes } from 'node:crypto';
import { newSession } from '../helpers/sessions.ts';
import type { KvSessionStore } from '../../src/session/index.ts';
import type { SessionStore } from '../../src/session/types.ts';
import { expectAnswers, runLoad, verifyRequest } from './load.ts';

export const COOKIE = '__Host-goldpath';
export const ACTIVE_SESSIONS = 10_000;

export interface Scenario {
  readonly key: string;
  readonly title: string;
  /** The status every answer must have. */
  readonly expect: number;
  /** 'bare' rows are the bare node:http servers; the others hit the sidecar. */
  readonly server: 'bare200' | 'bare401' | 'sidecar';
  readonly request: (i: number) => Buffer;
  /**
   * Requests to send before each measured run, so a round-robin scenario measures its steady
   * state: not the first-ever request of each session or resource (the cost of a decision-cache
   * miss is scenario (f′) and the micro-benchmark (g)), nor a revalidation of every session at
   * once because their time in the session cache lapsed while other scenarios ran.
   */
  readonly prime?: number;
}

/** Creates `n` sessions, 256 creates in flight (ioredis writes them back to back). */
export async function createSessions(store: SessionStore, n: number, make: (i: number) => Parameters<typeof newSession>[0]): Promise<string[]> {
  const cookies = new Array<string>(n);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(256, n) }, async () => {
    while (next < n) {
      const i = next++;
      cookies[i] = (await store.create(newSession(make(i)))).cookieValue;
    }
  }));
  return cookies;
}

/**
 * Sends every request of `requests` in turn, in one-second closed-loop runs, until each has gone
 * at least `times` times and at least `seconds` have passed (at most `maxRuns` runs). Every answer
 * must have status `expect`. Returns how many requests were sent.
 */
export async function driveAll(port: number, requests: readonly Buffer[], o: {
  times?: number; seconds?: number; connections?: number; expect?: number; maxRuns?: number;
} = {}): Promise<number> {
  const { times = 3, seconds = 0, connections = 32, expect = 200, maxRuns = 60 } = o;
  let sent = 0;
  const t0 = Date.now();
  for (let run = 0; run < maxRuns && (sent < times * requests.length || Date.now() - t0 < seconds * 1000); run++) {
    const r = await runLoad({ port, request: (i) => requests[(sent + i) % requests.length]!, seconds: 1, connections, warmupSeconds: 0 });
    expectAnswers(r, expect, 'driveAll');
    sent += r.sent;
  }
  return sent;
}

/** Sends a scenario's `prime` requests (its steady state, see Scenario.prime). */
export async function prime(port: number, s: Scenario, connections = 32): Promise<void> {
  for (let sent = 0; sent < (s.prime ?? 0);) {
    sent += (await runLoad({ port, request: (i) => s.request(sent + i), seconds: 1, connections, warmupSeconds: 0 })).sent;
  }
}

/** A session as a typical OIDC login leaves it: two ~1 KB JWT access tokens and the user's claims. */
export function idpSizedSession(i: number): Parameters<typeof newSession>[0] {
  const sub = `5f3c${i.toString(16).padStart(8, '0')}-8b1e-4c2a-9d7f-3e6a1b2c4d5e`;
  const jwt = () => ['eyJhbGciOiJSUzI1NiIsImtpZCI6ImtleS0xIiwidHlwIjoiYXQrand0In0', randomBytes(560).toString('base64url'), randomBytes(256).toString('base64url')].join('.');
  const exp = Date.now() + 3_600_000;
  return {
    sub, roles: ['reader', 'orders.viewer'],
    tokens: {
      '': { value: jwt(), type: 'Bearer', expiresAt: exp, scope: 'openid profile email offline_access' },
      reports: { value: jwt(), type: 'Bearer', expiresAt: exp, scope: 'reports.read' },
    },
    claims: {
      // The bench config's issuer for `dev` (a session of another issuer is no session): 11 characters
      // shorter than the Keycloak-like one these sessions had before Nov 30, 13:00.
      iss: 'https://idp.example.test', email: `user${i}@example.com`, email_verified: true,
      name: `User Number ${i}`, given_name: 'User', family_name: `Number ${i}`, preferred_username: `user${i}`,
      locale: 'en', tenant: `tenant-${i % 50}`, groups: ['/staff', '/staff/orders'],
      realm_access: { roles: ['reader', 'orders.viewer', 'offline_access'] }, updated_at: 1_790_000_000,
    },
  };
}

export interface BenchSessions {
  readonly reader: string;
  readonly nobody: string;
  readonly many: readonly string[];
}

export async function createBenchSessions(store: KvSessionStore): Promise<BenchSessions> {
  const reader = (await store.create(newSession({ sub: 'bench-reader', roles: ['reader'] }))).cookieValue;
  const nobody = (await store.create(newSession({ sub: 'bench-nobody', roles: [] }))).cookieValue;
  const many = await createSessions(store, ACTIVE_SESSIONS, (i) => ({ sub: `active-${i}`, roles: ['reader'] }));
  return { reader, nobody, many };
}

export function scenarios(s: BenchSessions): Scenario[] {
  // Well-formed (right length and alphabet) but not MAC'd by our keys.
  const forged = s.reader.slice(0, 43) + '.' + 'A'.repeat(21) + 'Q';
  const hot = verifyRequest('/api/orders/1', { Cookie: `theme=dark; ${COOKIE}=${s.reader}; lang=en` });
  const noCookie = verifyRequest('/api/orders/1', { Cookie: 'theme=dark; lang=en' });
  const forgedReq = verifyRequest('/api/orders/1', { Cookie: `theme=dark; ${COOKIE}=${forged}` });
  const deny = verifyRequest('/api/orders/1', { Cookie: `${COOKIE}=${s.nobody}` });
  const many = s.many.map((c) => verifyRequest('/api/orders/1', { Cookie: `${COOKIE}=${c}` }));
  const ids = Array.from({ length: 1000 }, (_, i) => verifyRequest(`/api/orders/${i}`, { Cookie: `${COOKIE}=${s.reader}` }));
  // Well-formed forged values, a new one per request (and per run): every one needs its MAC checked.
  let forgedRun = 0;
  const forgedNo = (i: number) => {
    if (i === 0) forgedRun++;
    const tag = `${forgedRun.toString(36)}x${i.toString(36)}`;
    return tag + s.reader.slice(tag.length, 43) + '.' + 'A'.repeat(21) + 'Q';
  };
  // A new resource id on every request, unique across runs too: every decision is a cache miss.
  let unique = 0;
  const n = s.many.length.toLocaleString('en');
  return [
    { key: 'bare200', title: 'bare node:http, 200', expect: 200, server: 'bare200', request: () => hot },
    { key: 'a', title: '(a) allowed, valid session (hot path)', expect: 200, server: 'sidecar', request: () => hot },
    { key: 'bare401', title: 'bare node:http, same 401 JSON', expect: 401, server: 'bare401', request: () => hot },
    { key: 'b', title: '(b) no cookie, session route', expect: 401, server: 'sidecar', request: () => noCookie },
    { key: 'c', title: '(c) forged, well-formed cookie', expect: 401, server: 'sidecar', request: () => forgedReq },
    {
      key: 'c2', title: '(c′) a different forged cookie every request', expect: 401, server: 'sidecar',
      request: (i) => verifyRequest('/api/orders/1', { Cookie: `theme=dark; ${COOKIE}=${forgedNo(i)}` }),
    },
    { key: 'd', title: '(d) policy deny', expect: 403, server: 'sidecar', request: () => deny },
    { key: 'e', title: `(e) ${n} sessions, round robin`, expect: 200, server: 'sidecar', request: (i) => many[i % many.length]!, prime: many.length },
    { key: 'f', title: '(f) 1,000 resource ids, round robin', expect: 200, server: 'sidecar', request: (i) => ids[i % ids.length]!, prime: ids.length },
    {
      key: 'f2', title: '(f′) new resource id every request (decision-cache miss)', expect: 200, server: 'sidecar',
      request: () => verifyRequest(`/api/orders/u${unique++}`, { Cookie: `${COOKIE}=${s.reader}` }),
    },
  ];
}
