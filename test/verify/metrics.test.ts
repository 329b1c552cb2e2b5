// The sidecar's decision metrics are plain counters read at scrape time: what Prometheus scrapes
// must still be a well-formed counter and a cumulative histogram, per outcome.
import assert from 'node:assert/strict';
import { createVerifyMetrics } from '../../src/verify/metrics.ts';

describe('verify metrics', function () {
  it('exports decisions by outcome and a cumulative latency histogram with _sum and _count', async function () {
    const m = createVerifyMetrics();
    m.observe('allow', 0.00003);
    m.observe('allow', 0.0007);
    m.observe('allow', 3); // beyond the last bucket: only +Inf
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
    assert.ok(Math.abs(sum - 3.00073) < 1e-9, String(sum));
    assert.match(text, /^goldpath_store_errors_total 0$/m);
  });
});
