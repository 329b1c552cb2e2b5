// `goldpath demo` as a user runs it (npm start): README "Write a policy" says to edit the policy
// and `kill -HUP` to reload. The demo is one process holding the sidecar and the BFF: SIGHUP must
// reload them (a broken set rejected and logged, the old one serving), never end the demo, which
// Node's default SIGHUP action did (exit 129, nothing logged). Its log lines are JSON with one
// `svc` each. And a port it cannot have says which part wanted it and which variable moves it.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startDemo } from '../../src/dev/demo.ts';
import { silentLogger } from '../../src/log.ts';
import { browserLogin } from '../helpers/login.ts';
import { REPO_ROOT, runCli, waitHealthy, type Child } from '../helpers/process.ts';
import { freePort, heldPort } from '../helpers/redis.ts';

async function until(what: string, child: Child, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`the demo ended (${child.proc.exitCode ?? child.proc.signalCode}) waiting for ${what}:\n${child.output()}`);
    }
    if (Date.now() > deadline) throw new Error(`no ${what} in time:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('goldpath demo: SIGHUP reloads, logs and ports', function () {
  this.timeout(60_000);
  let dir: string;
  let demo: Child | undefined;
  let origin: string;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'goldpath-demo-reload-'));
    cpSync(join(REPO_ROOT, 'compose', 'config'), dir, { recursive: true });
    cpSync(join(REPO_ROOT, 'policies', 'main.polar'), join(dir, 'main.polar'));
    writeFileSync(join(dir, 'pdp.yaml'), readFileSync(join(dir, 'pdp.yaml'), 'utf8').replace('../../policies/main.polar', 'main.polar'));
    const [edgePort, idpPort] = [await freePort(), await freePort()];
    origin = `http://localhost:${edgePort}`;
    demo = runCli('node', ['demo'], {
      PORT: String(edgePort), GOLDPATH_IDP_ISSUER: `http://localhost:${idpPort}`, GOLDPATH_CONFIG_DIR: dir, LOG_LEVEL: 'info',
    });
    await waitHealthy(`${origin}/`, demo, 45_000);
  });
  after(async function () {
    await demo?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a broken policy is rejected and logged, a fixed one serves, and the demo keeps running', async function () {
    const child = demo!;
    const login = await browserLogin({ start: `${origin}/auth/login?return_to=/`, user: 'alice' });
    const cookie = `goldpath=${login.sessionCookie}`;
    const session = await (await fetch(`${origin}/auth/session`, { headers: { cookie } })).json() as { csrf_token: string };
    const create = () => fetch(`${origin}/api/orders`, {
      method: 'POST', headers: { cookie, origin, 'x-csrf-token': session.csrf_token, 'content-type': 'application/json' }, body: '{}',
    }).then((r) => r.status);
    assert.equal(await create(), 403, 'alice (a reader) may not create orders');

    const policy = join(dir, 'main.polar');
    const good = readFileSync(policy, 'utf8');
    const readersCreate = good + '\nallow(user: User, "create", _orders: OrderList) if has_idp_role(user, "reader");\n';
    writeFileSync(policy, readersCreate.replace(/;\n$/, '\n')); // the new rule lacks its `;`
    const rejected = () => (child.output().match(/reload rejected/g) ?? []).length;
    child.proc.kill('SIGHUP');
    await until('"reload rejected" from the sidecar', child, () => rejected() >= 1);
    assert.match(child.output(), /main\.polar:\d+/);
    assert.equal(await create(), 403, 'the old policy keeps serving');

    writeFileSync(policy, readersCreate);
    const reloaded = () => (child.output().match(/"configuration reloaded"/g) ?? []).length;
    const before = reloaded();
    child.proc.kill('SIGHUP');
    await until('"configuration reloaded" from the sidecar and the BFF', child, () => reloaded() >= before + 2);
    assert.equal(await create(), 200, 'the new policy serves');
    assert.equal(child.proc.exitCode, null);
    assert.equal(child.proc.signalCode, null);
  });

  it('every log line is one JSON object with one svc key', function () {
    const lines = demo!.output().split('\n').filter((l) => l.startsWith('{'));
    assert.ok(lines.length > 5, demo!.output());
    for (const line of lines) {
      assert.doesNotThrow(() => JSON.parse(line), line);
      assert.equal(line.match(/"svc":/g)?.length ?? 0, 1, line);
    }
  });

  describe('a port that is taken', function () {
    const port = heldPort();

    it("the dev IdP's: the error names GOLDPATH_IDP_ISSUER", async function () {
      await assert.rejects(
        startDemo({ env: { PORT: String(await freePort()), GOLDPATH_IDP_ISSUER: `http://localhost:${port()}`, LOG_LEVEL: 'silent' }, log: silentLogger, signals: false }),
        (err: Error) => /dev IdP/.test(err.message) && /GOLDPATH_IDP_ISSUER=/.test(err.message) && err.message.includes(String(port())),
      );
    });

    it("the page's: the error names PORT", async function () {
      await assert.rejects(
        startDemo({ env: { PORT: String(port()), GOLDPATH_IDP_ISSUER: `http://localhost:${await freePort()}`, LOG_LEVEL: 'silent' }, log: silentLogger, signals: false }),
        (err: Error) => /PORT=/.test(err.message) && err.message.includes(String(port())),
      );
    });

    // A dev server bound to "localhost" (Vite, say) holds [::1]:PORT only. Browsers try ::1 first
    // for http://localhost: the demo said "ready" on 127.0.0.1 while the page was that server's.
    it("the page's, on ::1 only: the page at http://localhost would be another server's, so it is an error too", async function () {
      const other = createServer((_req, res) => res.end('another server'));
      const held = await new Promise<number | undefined>((resolve) => {
        other.once('error', () => resolve(undefined));
        other.listen(0, '::1', () => resolve((other.address() as AddressInfo).port));
      });
      if (held === undefined) {
        // No IPv6 loopback on this machine: the demo must start on 127.0.0.1 alone, not fail on ::1.
        const demo = await startDemo({ env: { PORT: String(await freePort()), GOLDPATH_IDP_ISSUER: `http://127.0.0.1:${await freePort()}`, LOG_LEVEL: 'silent' }, log: silentLogger, signals: false });
        try {
          assert.equal((await fetch(`${demo.url.replace('localhost', '127.0.0.1')}/`)).status, 200);
        } finally {
          await demo.close();
        }
        return;
      }
      try {
        await assert.rejects(
          startDemo({ env: { PORT: String(held), GOLDPATH_IDP_ISSUER: `http://127.0.0.1:${await freePort()}`, LOG_LEVEL: 'silent' }, log: silentLogger, signals: false }),
          (err: Error) => /PORT=/.test(err.message) && err.message.includes(`[::1]:${held}`) && /in use/.test(err.message),
        );
      } finally {
        await new Promise((resolve) => other.close(resolve));
      }
    });
  });
});
