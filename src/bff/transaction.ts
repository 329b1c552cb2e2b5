// The login transaction: everything /auth/callback needs to finish what /auth/login started. Kept
// server-side (encrypted by the store, one use, 10 minutes), found by the hash of the browser's
// transaction cookie and `state` together. Why both in the key: the state travels in URLs (the
// IdP's logs, a Referer, a shoulder), and a transaction found by the state alone would be consumed
// by whoever sent it first, so anyone who learnt it could spoil that browser's sign-in.
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
  /**
   * The redirect URI the login was sent with (callback-path.ts); the response must come back there.
   * Absent in a transaction saved by an earlier version, whose redirect URI was /auth/callback.
   */
  readonly redirectUri?: string;
  readonly dpopJwk: DpopJwk | undefined;
  /** sha256 of the transaction cookie value. */
  readonly binding: string;
  /** Storage id of the session the browser had when the login started (replaced on success). */
  readonly previousSessionId: string | undefined;
  /**
   * When the login started (ms since epoch): a back-channel logout of the user received after
   * that ends it (SignIn). Absent in a transaction saved by an earlier version.
   */
  readonly startedAt?: number;
}

/** The cookie first: its alphabet (base64url) has no newline, so no two pairs give one string. */
const keyOf = (txCookie: string, state: string): string => sha256(`${txCookie}\n${state}`);

export async function saveTransaction(store: SessionStore, txCookie: string, tx: Omit<LoginTransaction, 'binding'>): Promise<void> {
  const value: LoginTransaction = { ...tx, binding: sha256(txCookie) };
  await store.putTransient(KIND, keyOf(txCookie, tx.state), JSON.stringify(value), TX_TTL_MS);
}

export type TakeResult =
  | { ok: true; tx: LoginTransaction }
  | { ok: false; reason: 'unknown' | 'no_tx_cookie' };

/**
 * Takes (and so consumes) this browser's transaction for `state`. Without the transaction cookie
 * nothing is looked up, and with another browser's cookie nothing is found: neither consumes it.
 */
export async function takeTransaction(store: SessionStore, state: string, txCookie: string | undefined): Promise<TakeResult> {
  // No transaction cookie: it expired with the transaction (TX_TTL_MS), or this is another browser.
  if (!txCookie) return { ok: false, reason: 'no_tx_cookie' };
  const raw = await store.takeTransient(KIND, keyOf(txCookie, state));
  if (raw === null) return { ok: false, reason: 'unknown' };
  let tx: LoginTransaction;
  try {
    tx = JSON.parse(raw) as LoginTransaction;
  } catch {
    return { ok: false, reason: 'unknown' };
  }
  // Implied by the key; checked again so that a key collision could never hand out another login.
  if (tx.state !== state || !safeEqual(sha256(txCookie), tx.binding)) return { ok: false, reason: 'unknown' };
  return { ok: true, tx };
}
