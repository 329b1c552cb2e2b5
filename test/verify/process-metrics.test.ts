// The sidecar's process metrics mean the same under Deno 2 as under Node (test/verify/metrics.test.ts
// checks Node): nodejs_eventloop_lag_* must show a blocked event loop. Deno's own
// monitorEventLoopDelay does not (a 60 ms block read as ~2 ms), so process-metrics.ts samples the
// delay with a timer there.
import assert from 'node:assert/strict';
import { runDenoScript } from '../helpers/process.ts';


describe('verify process metrics under Deno', function () {
  this.timeout(60_000);

  it('nodejs_eventloop_lag_* show a loop blocked for 60 ms, and mean what they mean under Node', async function () {
    const res = await runDenoScript('test/verify/fixtures/deno-eventloop-lag.ts');
    assert.equal(res.code, 0, `deno failed:\n${res.err}\n${res.out}`);
    const r = JSON.parse(res.out.trim().split('\n').at(-1)!) as { runtime: string; idleP50: number; blockedMax: number; afterMax: number };
    assert.equal(r.runtime, 'deno');
    assert.ok(r.blockedMax >= 0.04, `a 60 ms block read as a ${r.blockedMax} s maximum`);
    assert.ok(r.afterMax < r.blockedMax, `reset at each scrape (${r.afterMax} after ${r.blockedMax})`);
    // As Node's monitor: the time between two 10 ms ticks, so ~10 ms on an idle loop (not ~0).
    assert.ok(r.idleP50 >= 0.005 && r.idleP50 < 0.05, `idle median ${r.idleP50} s`);
  });
});
