// Keeps a store (and a verify sidecar on it) busy while a failover happens, and records exactly what
// each caller was told, so the tests can hold the store to its word: a create() that resolved is
// a promise that the session exists, before, during and after the failover.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreUnavailable } from '../../src/errors.ts';
import type { KvSessionStore } from '../../src/session/index.ts';
import type { RunningVerify } from '../helpers/verify-app.ts';
import { newSession } from './contract-suite.ts';

export interface RunReport {
  /** Sessions whose create() resolved, with when it resolved relative to the failover. */
  readonly confirmed: { cookie: string; id: string; phase: 'before' | 'during' | 'after' }[];
  /** create() rejections (all StoreUnavailable: anything else fails the run). */
  readonly failedCreates: number;
  /** get() of a session confirmed before the failover that answered null (a miss: must stay 0). */
  readonly misses: number;
  readonly readErrors: number;
  /** /auth/verify statuses for a session that existed before the failover. */
  readonly verifyStatuses: Map<number, number>;
}

/**
 * Runs `workers` loops of create + read (+ a /auth/verify call) against `store` while `failover`
 * runs, then keeps going until `afterCreates` creates have succeeded after it (proving the store
 * healed by itself) or `healMs` passes.
 */
export async function runThroughFailover(
  store: KvSessionStore,
  failover: () => Promise<unknown>,
  opts: { sidecar?: RunningVerify; workers?: number; afterCreates?: number; healMs?: number } = {},
): Promise<RunReport> {
  const confirmed: RunReport['confirmed'] = [];
  const verifyStatuses = new Map<number, number>();
  let failedCreates = 0;
  let misses = 0;
  let readErrors = 0;
  let phase: 'before' | 'during' | 'after' = 'before';
  let stop = false;
  const unexpected: unknown[] = [];

  // Sessions that exist before anything happens: every read of them must find them or fail closed.
  for (let i = 0; i < 5; i++) {
    const { cookieValue, session } = await store.create(newSession({ sub: `pre-${i}`, sid: `pre-${i}` }));
    confirmed.push({ cookie: cookieValue, id: session.id, phase });
  }
  const preexisting = confirmed.slice();
  const sidecarSession = opts.sidecar ? await opts.sidecar.login({ sub: 'through-failover' }) : undefined;

  const worker = async (w: number) => {
    for (let i = 0; !stop; i++) {
      try {
        const at = phase;
        const { cookieValue, session } = await store.create(newSession({ sub: `w${w}-${i % 7}`, sid: `w${w}-${i}` }));
        // A create that resolved *during* the failover counts as during even if it ended after.
        confirmed.push({ cookie: cookieValue, id: session.id, phase: at === 'during' ? 'during' : phase });
      } catch (err) {
        if (err instanceof StoreUnavailable) failedCreates++;
        else unexpected.push(err);
      }
      const pre = preexisting[i % preexisting.length]!;
      try {
        if ((await store.get(pre.cookie)) === null) misses++;
      } catch (err) {
        if (err instanceof StoreUnavailable) readErrors++;
        else unexpected.push(err);
      }
      if (opts.sidecar && sidecarSession && w === 0) {
        const res = await opts.sidecar.verify('GET', '/api/orders/1', { Cookie: sidecarSession.cookie });
        verifyStatuses.set(res.status, (verifyStatuses.get(res.status) ?? 0) + 1);
      }
      await sleep(5); // a steady trickle, not a flood: this box has two cores
    }
  };

  const workers = Array.from({ length: opts.workers ?? 3 }, (_, w) => worker(w));
  await sleep(300);
  phase = 'during';
  try {
    await failover();
  } finally {
    phase = 'after';
  }
  const deadline = Date.now() + (opts.healMs ?? 15_000);
  while (confirmed.filter((c) => c.phase === 'after').length < (opts.afterCreates ?? 10) && Date.now() < deadline) await sleep(50);
  stop = true;
  await Promise.all(workers);
  assert.deepEqual(unexpected, [], 'the store only ever fails with StoreUnavailable');
  return { confirmed, failedCreates, misses, readErrors, verifyStatuses };
}

/** Reads every confirmed session back (retrying only StoreUnavailable, briefly); returns the lost ones. */
export async function lostSessions(store: KvSessionStore, confirmed: RunReport['confirmed']): Promise<string[]> {
  const lost: string[] = [];
  for (const c of confirmed) {
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        const s = await store.get(c.cookie);
        if (!s || s.id !== c.id) lost.push(`${c.phase}:${c.id}`);
        break;
      } catch (err) {
        if (!(err instanceof StoreUnavailable) || Date.now() > deadline) throw err;
        await sleep(50);
      }
    }
  }
  return lost;
}
