// Key files and policies that the process can read only through a supplementary group (Kubernetes
// fsGroup: secret volumes owned root:<fsGroup>, mode 0440) must be accepted under Deno as under
// Node. Deno's fs.access emulates R_OK from the mode bits with the uid and primary gid alone
// (supplementary groups and root's privilege are not considered), so it answers EACCES for a file
// that a read opens fine.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { REPO_ROOT, exitOf, runCli, type Runtime } from '../helpers/process.ts';
import { makeTestPki, type TestPki } from '../helpers/idp-tls.ts';

const GROUP = 4242; // a group the checking process has only as a supplementary group

describe('files readable through a supplementary group (goldpath check, Node and Deno)', function () {
  this.timeout(40_000);
  let dir: string;
  let home: string;
  let pki: TestPki;
  /** How the CLI is run: as nobody, whose supplementary group GROUP reads the files. */
  let wrap: string[] = [];

  before(async function () {
    // Made as root, run as nobody with GROUP as a supplementary group (setpriv, util-linux).
    if (process.getuid?.() !== 0 || !existsSync('/usr/bin/setpriv')) {
      // CI runs as root with util-linux: there a missing part is a failure, never a skip.
      if (process.env.CI) throw new Error('this test needs root and /usr/bin/setpriv (util-linux)');
      this.skip();
    }
    pki = makeTestPki();
    dir = mkdtempSync(join(tmpdir(), 'goldpath-fsgroup-'));
    home = mkdtempSync(join(tmpdir(), 'goldpath-fsgroup-home-'));
    cpSync(join(REPO_ROOT, 'test/verify/fixtures/config'), dir, { recursive: true });
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    writeFileSync(join(dir, 'client.jwk.json'), JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'k1' }));
    writeFileSync(join(dir, 'client.crt'), readFileSync(pki.clientCertPath));
    writeFileSync(join(dir, 'client.key'), readFileSync(pki.clientKeyPath));
    writeFileSync(join(dir, 'ca.crt'), pki.caCert);
    const audiences = '    audiences:\n      reports: { resource: "https://api.example.test/reports", scopes: [reports.read] }\n';
    writeFileSync(join(dir, 'idps.yaml'), 'default: dev\nidps:\n' +
      '  dev:\n    issuer: https://idp.example.test\n    client_id: goldpath\n    client_auth: private_key_jwt\n    private_key: ./client.jwk.json\n' + audiences +
      '  corp:\n    issuer: https://corp.example.test\n    client_id: goldpath\n    client_auth: tls_client_auth\n' +
      '    mtls: { cert: ./client.crt, key: ./client.key, ca: ./ca.crt }\n' + audiences);
    for (const d of [dir, home]) chmodSync(d, 0o755);
    for (const f of ['idps.yaml', 'routes.yaml', 'pdp.yaml', 'client.crt', 'ca.crt']) chmodSync(join(dir, f), 0o644);
    // Owner root, group GROUP, readable by the owner and that group only (mode 0440).
    for (const f of ['client.jwk.json', 'client.key', 'policy.polar']) {
      chownSync(join(dir, f), 0, GROUP);
      chmodSync(join(dir, f), 0o440);
    }
    wrap = ['setpriv', '--reuid=65534', '--regid=65534', `--groups=${GROUP}`];
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (home) rmSync(home, { recursive: true, force: true });
    pki?.cleanup();
  });

  for (const runtime of ['node', 'deno'] as Runtime[]) {
    it(`${runtime}: the private_key_jwt key, the mtls key and the policy are accepted`, async () => {
      const child = runCli(runtime, ['check', dir], { GOLDPATH_CONFIG_DIR: dir, HOME: home, DENO_DIR: join(home, 'deno') }, { wrap });
      const { code } = await exitOf(child, 30_000);
      const out = child.output();
      assert.doesNotMatch(out, /cannot be read/, out);
      assert.equal(code, 0, out);
    });
  }

  it('a key file the process cannot read is named the same way under both runtimes', async () => {
    chmodSync(join(dir, 'client.jwk.json'), 0o400);
    try {
      const outs = await Promise.all((['node', 'deno'] as Runtime[]).map(async (runtime) => {
        const child = runCli(runtime, ['check', dir], { GOLDPATH_CONFIG_DIR: dir, HOME: home, DENO_DIR: join(home, 'deno') }, { wrap });
        const { code } = await exitOf(child, 30_000);
        return `exit ${code}\n${child.output()}`;
      }));
      assert.match(outs[0]!, /idps\.yaml:7: idps\.dev\.private_key: "\.\/client\.jwk\.json" cannot be read \(EACCES\)/, outs[0]);
      assert.equal(outs[1], outs[0]);
    } finally {
      chmodSync(join(dir, 'client.jwk.json'), 0o440);
    }
  });
});
