// The login transaction: everything /auth/callback needs to finish what /auth/login started. Kept
// server-side (encrypted by the store, one use, 10 minutes), found by the hash of `state`, and
// bound to the browser through the hash of the transaction cookie.
import type { SessionStore } from '../session/types.ts';
import type { DpopJwk } from '../oidc/dpop.ts';
import { TX_TTL_MS, safeEqual, sha256 } from './cookies.ts';

const KIND = 'login';

export interface LoginTransaction {
  readonly idp: string;
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
  readonly returnTo: string;
  readonly dpopJwk: DpopJwk | undefined;
  /** sha256 of the transaction cookie value. */
  readonly binding: string;
  /** Storage id of the session the browser had when the login started (replaced on success). */
  readonly previousSessionId: string | undefined;
}

export async function saveTransaction(store: SessionStore, txCookie: string, tx: Omit<LoginTransaction, 'binding'>): Promise<void> {
  const value: LoginTransaction = { ...tx, binding: sha256(txCookie) };
  await store.putTransient(KIND, sha256(tx.state), JSON.stringify(value), TX_TTL_MS);
}

export type TakeResult =
  | { ok: true; tx: LoginTransaction }
  | { ok: false; reason: 'unknown' | 'browser_mismatch' };

/** Takes (and so consumes) the transaction for `state`; checks it belongs to this browser. */
export async function takeTransaction(store: SessionStore, state: string, txCookie: string | undefined): Promise<TakeResult> {
  const raw = await store.takeTransient(KIND, sha256(state));
  if (raw === null) return { ok: false, reason: 'unknown' };
  let tx: LoginTransaction;
  try {
    tx = JSON.parse(raw) as LoginTransaction;
  } catch {
    return { ok: false, reason: 'unknown' };
  }
  if (tx.state !== state) return { ok: false, reason: 'unknown' };
  if (!txCookie || !safeEqual(sha256(txCookie), tx.binding)) return { ok: false, reason: 'browser_mismatch' };
  return { ok: true, tx };
}
