// A wall clock stepped back (NTP) must not stall what is timed on it: durations, windows and
// timeouts run on performance.now(). Date.now is stepped back an hour here, as ntpd -g would.
import assert from 'node:assert/strict';
import { render } from '../../src/http/error-handler.ts';
import { RateLimiter } from '../../src/dev/edge/rate-limit.ts';
import { Unavailable } from '../../src/errors.ts';
import { capturingLogger } from '../helpers/idp-bff.ts';

const HOUR = 3_600_000;

function stepBack(ms: number): () => void {
  const real = Date.now;
  Date.now = () => real() - ms;
  return () => { Date.now = real; };
}

describe('a wall clock stepped back an hour', function () {
  this.timeout(5_000);
  let restore: (() => void) | undefined;
  afterEach(() => { restore?.(); restore = undefined; });

  it('does not mute the 503 log line (FloodGate) for that hour', async function () {
    const { log, lines } = capturingLogger('info');
    const ctx = () => ({ state: { requestId: 'r' }, status: 0, body: undefined as unknown, set() { /* not read */ } });
    const failed = () => lines.filter((l) => (JSON.parse(l) as { msg: string }).msg === 'request failed').length;
    render(ctx() as never, new Unavailable('the session store is unavailable'), log);
    assert.equal(failed(), 1);
    restore = stepBack(HOUR);
    await new Promise((r) => setTimeout(r, 1_100)); // the gate's 1 s window has passed
    render(ctx() as never, new Unavailable('the session store is unavailable'), log);
    assert.equal(failed(), 2, 'an outage going on after the step is still logged a line a second');
  });

  it('does not have the edge rate limiter refuse every source for that hour', async function () {
    const real = Date.now;
    let back = 0;
    Date.now = () => real() - back; // in place before the limiter reads (or keeps) the clock
    restore = () => { Date.now = real; };
    const limiter = new RateLimiter({ average: 10, period: '1s', burst: 1 });
    assert.deepEqual(limiter.admit('a'), { wait: 0 });
    back = HOUR;
    await new Promise((r) => setTimeout(r, 200)); // two tokens' worth at 10/s
    assert.deepEqual(limiter.admit('a'), { wait: 0 });
  });
});
