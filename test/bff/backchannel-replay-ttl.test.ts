// A back-channel logout token's jti marker must outlive every BFF's acceptance of the token, not
// only the first one's: BFFs on other hosts disagree on the time by seconds (up to the 60 s the
// store's indexes allow for). Acceptance on one BFF, by jose: iat in [now - maxAge - tolerance,
// now + tolerance] on its clock. Simulated here: the first BFF accepts at the earliest, another
// whose clock lags `spread` ms accepts at the latest.
import assert from 'node:assert/strict';
import { BFF_CLOCK_SPREAD_S, LOGOUT_TOKEN_TIMES, REPLAY_TTL_MS } from '../../src/bff/backchannel-logout.ts';

describe('back-channel logout replay markers across skewed BFF clocks', function () {
  for (const spreadS of [5, 30, 60]) {
    it(`a BFF lagging ${spreadS} s finds the marker of a token another BFF took first`, function () {
      const { maxAgeS, toleranceS } = LOGOUT_TOKEN_TIMES;
      const iat = 1_000_000; // true time, s
      const firstAccepted = iat - toleranceS; // the first BFF (true clock): iat a minute ahead
      const lastAccepted = iat + maxAgeS + toleranceS + spreadS; // the lagging BFF's last second
      assert.ok(spreadS <= BFF_CLOCK_SPREAD_S);
      assert.ok(firstAccepted * 1000 + REPLAY_TTL_MS > (lastAccepted + 1) * 1000,
        `the marker (${REPLAY_TTL_MS} ms) lives past the last second a replay is accepted (${lastAccepted - firstAccepted} s after the first)`);
    });
  }
});
