// Revocation of refresh tokens nobody holds any more, off the request that let go of them (the
// BFF's callback and logout, token refresh).
import type { Logger } from '../log.ts';
import type { IdpClient } from './idp-client.ts';
import { errorSummary } from './idp-errors.ts';

/**
 * Revokes, in the background, a refresh token that no session holds (RFC 7009, when the IdP has a
 * revocation endpoint): the answer of the request that let go of it never waits for the IdP, and
 * this client's timeout bounds the call, and a graceful shutdown waits for it (idp.background).
 * Logs `subject` and the outcome, never the token.
 */
export function revokeInBackground(idp: IdpClient, refreshToken: string, log: Logger, reqId: string | undefined, subject: string): Promise<void> {
  const task = idp.revoke(refreshToken).then(
    (revoked) => log.info({ reqId, idp: idp.name, revoked }, revoked
      ? `${subject} is revoked`
      : `${subject} is dropped (the IdP has no revocation endpoint)`),
    (err: unknown) => log.warn({ reqId, idp: idp.name, err: errorSummary(err) }, `${subject} could not be revoked`),
  );
  idp.background.track(task);
  // Settled, logged and tracked: a caller may wait on it (a logout does, briefly), or not.
  return task;
}
