// One log line a second for the 503s of a dependency that is away, saying how many it stands for.
import assert from 'node:assert/strict';
import { FloodGate } from '../../src/http/flood-gate.ts';
import { render } from '../../src/http/error-handler.ts';
import { Unavailable } from '../../src/errors.ts';
import { capturingLogger } from '../helpers/idp-bff.ts';

describe('FloodGate', function () {
  it('lets the first event through, holds the rest of its window, and the next one says how many were held', function () {
    const gate = new FloodGate(1_000);
    assert.equal(gate.pass(10_000), 0);
    for (let t = 10_001; t < 11_000; t += 20) assert.equal(gate.pass(t), undefined);
    assert.equal(gate.pass(11_000), 50);
    assert.equal(gate.pass(11_500), undefined);
    assert.equal(gate.pass(20_000), 1);
    assert.equal(gate.pass(21_000), 0);
  });
});

describe('the error renderer and the flood gate', function () {
  const ctxOf = () => ({ state: { requestId: 'r' }, status: 0, body: undefined as unknown, set() { /* headers: not read here */ } });

  it('logs a burst of 503s as one line (the next one says how many it stands for), and every 500', function () {
    const { log, lines } = capturingLogger('info');
    for (let i = 0; i < 50; i++) {
      const ctx = ctxOf();
      render(ctx as never, new Unavailable('the session store is unavailable'), log);
      assert.equal(ctx.status, 503, 'each request still gets its 503');
    }
    for (let i = 0; i < 3; i++) render(ctxOf() as never, new Error('a bug'), log);
    const failed = lines.map((l) => JSON.parse(l) as { msg: string; err: { type: string } }).filter((l) => l.msg === 'request failed');
    assert.equal(failed.filter((l) => l.err.type === 'Unavailable').length, 1, 'one line for the burst of 503s');
    assert.equal(failed.filter((l) => l.err.type === 'Error').length, 3, 'a line for every 500');
  });
});

describe('FloodGate with onWindowEnd (the window-end timer)', function () {
  it('a timer running late, after an event let through opened a new window, says nothing until that window ends', async function () {
    const said: [string, number, number][] = [];
    const gate = new FloodGate<string>(200, (last, also) => said.push([last, also, performance.now()]));
    assert.equal(gate.pass(performance.now(), 'a'), 0);
    assert.equal(gate.pass(performance.now(), 'b'), undefined); // held: the window-end timer is set
    // The event loop is busy past the window's end (an overloaded process, the case this is for).
    for (const until = performance.now() + 300; performance.now() < until;) { /* busy */ }
    const opened = performance.now();
    assert.equal(gate.pass(opened, 'c'), 1, 'c opens a new window, standing for b');
    assert.equal(gate.pass(performance.now(), 'd'), undefined, 'd is held in it');
    await new Promise((r) => setTimeout(r, 20)); // the late timer of the first window runs now
    assert.equal(said.length, 0, `one line a window: d is not said 20 ms after c (${JSON.stringify(said)})`);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(said.length, 1, JSON.stringify(said));
    assert.deepEqual(said[0]!.slice(0, 2), ['d', 0]);
    assert.ok(said[0]![2] >= opened + 200, 'when the window c opened ends');
  });
});
