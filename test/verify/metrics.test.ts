// The sidecar's decision metrics are plain counters read at scrape time: what Prometheus scrapes
// must still be a well-formed counter and a cumulative histogram, per outcome.
import assert from 'node:assert/strict';
import { createVerifyMetrics } from '../../src/verify/metrics.ts';

describe('verify metrics', function () {
  it('exports decisions by outcome and a cumulative latency histogram with _sum and _count', async function () {
    const m = createVerifyMetrics();
    m.observe('allow', 0.00003);
    m.observe('allow', 0.0007);
    m.observe('allow', 30); // beyond the last bucket: only +Inf
    m.observe('login_required', 0.0002);
    const text = await m.registry.metrics();
    assert.match(text, /^# TYPE goldpath_verify_decisions_total counter$/m);
    assert.match(text, /^goldpath_verify_decisions_total\{outcome="allow"\} 3$/m);
    assert.match(text, /^goldpath_verify_decisions_total\{outcome="login_required"\} 1$/m);
    assert.match(text, /^# TYPE goldpath_verify_duration_seconds histogram$/m);
    const bucket = (le: string, outcome: string) =>
      Number(new RegExp(`^goldpath_verify_duration_seconds_bucket\\{le="${le.replace('+', '\\+')}",outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
    assert.equal(bucket('0.00005', 'allow'), 1);
    assert.equal(bucket('0.0005', 'allow'), 1);
    assert.equal(bucket('0.001', 'allow'), 2);
    assert.equal(bucket('1', 'allow'), 2);
    assert.equal(bucket('+Inf', 'allow'), 3);
    assert.equal(bucket('0.0001', 'login_required'), 0);
    assert.equal(bucket('0.00025', 'login_required'), 1);
    assert.match(text, /^goldpath_verify_duration_seconds_count\{outcome="allow"\} 3$/m);
    const sum = Number(/^goldpath_verify_duration_seconds_sum\{outcome="allow"\} ([\d.e-]+)$/m.exec(text)?.[1]);
    assert.ok(Math.abs(sum - 30.00073) < 1e-9, String(sum));
    assert.match(text, /^goldpath_store_errors_total 0$/m);
  });

  it('process metrics are read at scrape time: CPU, memory, heap by space, event loop lag since the last scrape, no GC hook', async function () {
    const m = createVerifyMetrics(undefined, { processMetrics: true });
    const value = (text: string, name: string) => Number(new RegExp(`^${name} ([\\d.e+-]+)$`, 'm').exec(text)?.[1]);
    await new Promise((r) => setTimeout(r, 30));
    const first = await m.registry.metrics();
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.ok(value(first, name) > 0, name);
    }
    assert.match(first, /^nodejs_heap_space_size_total_bytes\{space="new"\} \d+$/m);
    assert.match(first, /^# TYPE process_cpu_seconds_total counter$/m);
    // The GC histogram of prom-client's defaults ran JavaScript on every collection (see
    // process-metrics.ts): it is not there.
    assert.doesNotMatch(first, /nodejs_gc_/);
    // The event loop blocked for 60 ms shows in the next scrape's maximum, and only in that one.
    // (Node's monitor drops the first 10 ms tick after a reset: the block starts after it.)
    await new Promise((r) => setTimeout(r, 25));
    // Blocked until 60 ms of CPU are spent (not of wall time: on a busy machine those may hold less).
    const c0 = process.cpuUsage();
    const spent = () => { const u = process.cpuUsage(c0); return (u.user + u.system) / 1000; };
    while (spent() < 60) { /* block the loop */ }
    await new Promise((r) => setTimeout(r, 30));
    const blocked = await m.registry.metrics();
    assert.ok(value(blocked, 'nodejs_eventloop_lag_max_seconds') >= 0.04, blocked);
    await new Promise((r) => setTimeout(r, 30));
    const after = await m.registry.metrics();
    assert.ok(value(after, 'nodejs_eventloop_lag_max_seconds') < 0.04, 'reset at each scrape');
    assert.ok(value(after, 'process_cpu_seconds_total') >= value(first, 'process_cpu_seconds_total') + 0.04, 'CPU counted, cumulatively');
  });
});
