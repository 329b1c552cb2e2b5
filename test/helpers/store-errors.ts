// goldpath_store_errors_total as a process's /metrics says it: `app` is what supertest takes (a
// sidecar's URL, a BFF's app.callback()).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';

type Target = Parameters<typeof request>[0];

export async function storeErrors(app: Target): Promise<number> {
  const res = await request(app).get('/metrics').expect(200);
  const m = /^goldpath_store_errors_total (\d+)$/m.exec(res.text);
  assert.ok(m, 'goldpath_store_errors_total is exported');
  return Number(m[1]);
}

/** Waits until the counter is above `from`; its value then. */
export async function storeErrorsRise(app: Target, from: number, what: string, ms = 5_000): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const n = await storeErrors(app);
    if (n > from) return n;
    if (Date.now() > deadline) assert.fail(`${what}: goldpath_store_errors_total stayed at ${n}`);
    await sleep(50);
  }
}
