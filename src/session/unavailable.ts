import { StoreUnavailable } from '../errors.ts';

/** The store failed: anything from the backend becomes StoreUnavailable (503), never "absent". */
export function unavailable(err: unknown): StoreUnavailable {
  return err instanceof StoreUnavailable ? err : new StoreUnavailable(err);
}
