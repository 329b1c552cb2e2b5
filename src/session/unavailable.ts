import { StoreUnavailable } from '../errors.ts';

/** The store failed: anything from the backend becomes StoreUnavailable (503), never "absent". */
export function unavailable(err: unknown): StoreUnavailable {
  return err instanceof StoreUnavailable ? err : new StoreUnavailable(err);
}

/**
 * The help of goldpath_store_errors_total, the same in both processes (one dashboard query covers
 * both): a failure thrown to a request is counted where it is answered, one the store or a caller
 * caught is reported through SessionStore.onCaughtError or the token provider's onStoreError.
 */
export const STORE_ERRORS_HELP = 'Session store failures: those that failed a request, and those caught while the work went on without them';
