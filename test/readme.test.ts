// README is what users copy from: its config snippets must pass the real `goldpath check`, each
// client_auth it names must work in its IdP example, "Write a policy" must decide as it says, the
// metrics it names must exist, and its Environment table must name exactly the variables the code
// reads. Files and in-process registries only, no goldpath processes (openssl makes the mTLS files).
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatProblem } from '../src/errors.ts';
import { checkConfig } from '../src/check.ts';
import { loadConfig } from '../src/config/index.ts';
import { REFUSAL_REASONS, refusalRecorder } from '../src/http/refusals.ts';
import { silentLogger } from '../src/log.ts';
import { Pdp } from '../src/pdp/index.ts';
import { createBffMetrics } from '../src/bff/metrics.ts';
import { createVerifyMetrics, exportSessionCacheMetrics } from '../src/verify/metrics.ts';
import type { SessionUser } from '../src/session/types.ts';
import { CLIENT_AUTHS } from '../src/config/idps.ts';
import { devIdpSettings } from '../src/dev/idp-env.ts';
import { makeTestPki } from './helpers/idp-tls.ts';
import { REPO_ROOT } from './helpers/process.ts';

const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const CONFIG = join(REPO_ROOT, 'compose', 'config');

/** Fenced blocks of one language, with the README line they start on (for failure messages). */
function blocks(lang: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const re = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```', 'gm');
  for (const m of README.matchAll(re)) out.push({ line: README.slice(0, m.index).split('\n').length, text: m[1]! });
  return out;
}

/** Which config file a YAML snippet is, by its top-level keys (the loader's own): by content, not by heading. */
function fileOf(text: string): string | undefined {
  const keys = [...text.matchAll(/^([a-z_]+):/gm)].map((m) => m[1]);
  if (keys.includes('routes') || keys.includes('cors')) return 'routes.yaml';
  if (keys.includes('policies') || keys.includes('rules')) return 'pdp.yaml';
  if (keys.includes('idps') || keys.includes('default')) return 'idps.yaml';
  return undefined;
}

/** A copy of compose/config and policies/, in the repository's layout (pdp.yaml names ../../policies). */
function scratch(): { root: string; dir: string } {
  const root = mkdtempSync(join(tmpdir(), 'goldpath-readme-'));
  const dir = join(root, 'compose', 'config');
  cpSync(CONFIG, dir, { recursive: true });
  cpSync(join(REPO_ROOT, 'policies'), join(root, 'policies'), { recursive: true });
  // Key files a snippet points at are the user's own: supply a valid one so the rest is checked.
  mkdirSync(join(dir, 'keys'));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, 'keys', 'client.jwk.json'), JSON.stringify(privateKey.export({ format: 'jwk' })));
  return { root, dir };
}

const ENV = { GOLDPATH_CLIENT_SECRET: 'x'.repeat(32) };

/** The text of one `## ` section (its heading excluded, up to the next `## `). */
function section(heading: string): string {
  const parts = README.split(new RegExp('^## ' + heading + '\\n', 'm'));
  assert.equal(parts.length, 2, `README has one "## ${heading}" section`);
  return parts[1]!.split(/^## /m)[0]!;
}

async function problemsOf(dir: string): Promise<string[]> {
  return (await checkConfig(dir, ENV)).problems.map(formatProblem);
}

describe('README stays true', function () {
  this.timeout(30_000);

  it('every ```yaml block is a routes.yaml, pdp.yaml or idps.yaml that `goldpath check` accepts', async () => {
    const yaml = blocks('yaml');
    assert.ok(yaml.length >= 3, 'README shows routes.yaml, pdp.yaml and idps.yaml');
    const byFile = new Map<string, { line: number; text: string }[]>();
    for (const b of yaml) {
      const file = fileOf(b.text);
      assert.ok(file, `README.md:${b.line}: a yaml block that is none of the three config files`);
      byFile.set(file, [...byFile.get(file) ?? [], b]);
    }
    // Each snippet with the README's first snippet of the other files (they refer to each other:
    // a route's audience is an IdP's), or the shipped file where README shows none.
    for (const [file, list] of byFile) {
      for (const b of list) {
        const { root, dir } = scratch();
        try {
          for (const [other, l] of byFile) if (other !== file) writeFileSync(join(dir, other), l[0]!.text);
          writeFileSync(join(dir, file), b.text);
          assert.deepEqual(await problemsOf(dir), [], `README.md:${b.line} (${file})`);
        } finally {
          rmSync(root, { recursive: true, force: true });
        }
      }
    }
  });

  it('every ```polar block loads with the real PDP, added to policies/main.polar', async () => {
    const polar = blocks('polar');
    assert.ok(polar.length >= 1);
    for (const b of polar) {
      const { root, dir } = scratch();
      try {
        const main = join(root, 'policies', 'main.polar');
        writeFileSync(main, readFileSync(main, 'utf8') + '\n' + b.text);
        assert.deepEqual(await problemsOf(dir), [], `README.md:${b.line}`);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
  });

  it('each client_auth the idps.yaml table names, with the files it says, turns the "Swap the IdP" block into one check accepts', async () => {
    const row = README.split('\n').find((l) => l.startsWith('| `client_auth` |'));
    assert.ok(row, 'README\'s idps.yaml table has a client_auth row');
    // The modes are the names of three words (`alg`, `use` and file keys are not).
    const modes = [...row.split('|')[2]!.matchAll(/`([a-z]+_[a-z]+_[a-z_]+)`(?: \(\+`([a-z_]+)(?::[^`]*)?`)?/g)].map((m) => ({ mode: m[1]!, needs: m[2] }));
    assert.deepEqual(modes.map((m) => m.mode).sort(), [...CLIENT_AUTHS].sort(), 'the modes README names are the ones the loader accepts');
    const swap = blocks('yaml').find((b) => /^idps:/m.test(b.text) && /client_auth:/.test(b.text));
    assert.ok(swap, 'README "Swap the IdP" shows an idps.yaml with client_auth');
    const pki = makeTestPki();
    try {
      for (const { mode, needs } of modes) {
        // The block's own client authentication lines, replaced by this mode's, with its files.
        const auth = needs === 'private_key' ? `    client_auth: ${mode}\n    private_key: ./keys/client.jwk.json\n`
          : needs === 'mtls' ? `    client_auth: ${mode}\n    mtls: { cert: ./keys/client.crt, key: ./keys/client.key, ca: ./keys/ca.crt }\n`
          : `    client_auth: ${mode}\n    client_secret: \${GOLDPATH_CLIENT_SECRET}\n`;
        const text = swap.text.replace(/^ {4}client_auth: .*\n(?: {4}private_key: .*\n)?/m, auth);
        assert.match(text, new RegExp(`client_auth: ${mode}\n`));
        const { root, dir } = scratch();
        try {
          cpSync(pki.clientCertPath, join(dir, 'keys', 'client.crt'));
          cpSync(pki.clientKeyPath, join(dir, 'keys', 'client.key'));
          cpSync(pki.caCertPath, join(dir, 'keys', 'ca.crt'));
          // The shipped routes.yaml names no audience; pdp.yaml and the policies as shipped.
          writeFileSync(join(dir, 'idps.yaml'), text);
          assert.deepEqual(await problemsOf(dir), [], `client_auth: ${mode}`);
        } finally {
          rmSync(root, { recursive: true, force: true });
        }
      }
    } finally {
      pki.cleanup();
    }
  });

  it('"Write a policy": its route, rule and Polar block, added as it says, decide as its comments say', async () => {
    const text = section('Write a policy');
    // Step 1's route, step 2's rule and step 3's policy, exactly as README writes them.
    const route = /`(- \{ name: [^`]+\})`/.exec(text)?.[1];
    const rule = /`match: ("[^"`]+")`,\s+`action: (\w+)`,\s+`resource: (\{[^`]+\})`/.exec(text);
    const polar = /^```polar\n([\s\S]*?)^```/m.exec(text)?.[1];
    assert.ok(route && rule && polar, 'README "Write a policy" shows a route, a rule and a Polar block');
    const { root, dir } = scratch();
    try {
      const routes = join(dir, 'routes.yaml');
      writeFileSync(routes, readFileSync(routes, 'utf8').replace(/^routes:\n/m, `routes:\n  ${route}\n`));
      const pdpFile = join(dir, 'pdp.yaml');
      writeFileSync(pdpFile, readFileSync(pdpFile, 'utf8').replace(/\n*$/, '\n') +
        `  - match: ${rule[1]}\n    action: ${rule[2]}\n    resource: ${rule[3]}\n`);
      const main = join(root, 'policies', 'main.polar');
      writeFileSync(main, readFileSync(main, 'utf8') + '\n' + polar);
      assert.deepEqual(await problemsOf(dir), []);

      const pdp = await Pdp.load((await loadConfig(dir, ENV)).pdp, { log: silentLogger, cache: false });
      const who = (sub: string, roles: string[], claims: Record<string, unknown> = {}): SessionUser => ({
        sub, idp: 'dev', name: sub, email: undefined, roles, groups: [], scopes: ['openid'], claims: { sub, ...claims },
      });
      const put = async (user: SessionUser, path: string) => {
        const route = path.startsWith('/api/tenants/') ? 'tenants' : 'orders';
        return (await pdp.decide(user, { method: 'PUT', path, route })).outcome;
      };
      const acme = who('ann', ['reader'], { tenant: 'acme' });
      try {
        // "a user may also write the orders of their own tenant (claim "tenant"), on the tenants route"
        assert.equal(await put(acme, '/api/tenants/acme/orders/1'), 'allow');
        assert.equal(await put(acme, '/api/tenants/other/orders/1'), 'deny');
        // "the orders route's requests have no :tenant": the guard makes them a deny, not a policy error
        assert.equal(await put(acme, '/api/orders/1'), 'deny');
        // a user without the claim: every pattern over it fails (README: "Claims are the exception")
        assert.equal(await put(who('bob', ['reader']), '/api/tenants/acme/orders/1'), 'deny');
        // "admins write any order"
        assert.equal(await put(who('admin', ['admin', 'reader']), '/api/tenants/acme/orders/1'), 'allow');
        assert.equal(await put(who('admin', ['admin', 'reader']), '/api/orders/1'), 'allow');
      } finally {
        pdp.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('"Write a policy": a second rule for what the shipped pdp.yaml maps to write is refused, as it says', async () => {
    // "(The shipped pdp.yaml already maps `PUT|PATCH|DELETE /api/orders/:id` to `write`: a second
    // rule for those requests could never apply, and `goldpath check` says so.)"
    const said = /maps\s+`([A-Z|]+ \/api\/orders\/:id)` to `(\w+)`/.exec(section('Write a policy'));
    assert.ok(said, 'README names the shipped write rule');
    assert.match(readFileSync(join(CONFIG, 'pdp.yaml'), 'utf8'), new RegExp(`match: ${said[1]!.replace(/\|/g, '\\|')}\n\\s+action: ${said[2]}\n`));
    const { root, dir } = scratch();
    try {
      const pdpFile = join(dir, 'pdp.yaml');
      writeFileSync(pdpFile, readFileSync(pdpFile, 'utf8').replace(/\n*$/, '\n') +
        '  - match: PUT /api/orders/:id\n    action: write\n    resource: { type: Order, id: ":id" }\n');
      const problems = await problemsOf(dir);
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(problems[0]!, /can never apply/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('every goldpath_* metric README names is one verify or the BFF exports, with the refusal reasons it lists', async () => {
    // Names ending as metrics do (the cookies goldpath_tx and goldpath_browser are not metrics).
    const named = new Set([...README.matchAll(/`(goldpath_[a-z_]+_(?:total|seconds|bytes|entries))(?:\{[a-z_]+\})?`/g)].map((m) => m[1]!));
    assert.ok(named.size >= 2, 'README names metrics');
    const verify = createVerifyMetrics(undefined, { processMetrics: true });
    exportSessionCacheMetrics(verify.registry, { hits: 0, misses: 0, refused: 0, size: 0 });
    refusalRecorder(verify.registry, silentLogger);
    const bff = createBffMetrics();
    refusalRecorder(bff.registry, silentLogger);
    const exported = new Set<string>();
    for (const r of [verify.registry, bff.registry]) for (const m of await r.getMetricsAsJSON()) exported.add(m.name);
    for (const name of named) assert.ok(exported.has(name), `README names ${name}, which neither process exports`);
    // "reason one of `header_too_large`, …, `connect` (all exported from zero)"
    const listed = /`reason` one of ((?:`[a-z_]+`,?\s*(?:and\s*)?)+)/.exec(README)?.[1];
    assert.ok(listed, 'README lists the refusal reasons');
    assert.deepEqual([...listed.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]).sort(), [...REFUSAL_REASONS].sort());
  });

  it('the GOLDPATH_IDP_ISSUER row says where `goldpath dev-idp` listens as it does: on PORT, whatever the issuer', async () => {
    const row = README.split('\n').find((l) => l.startsWith('| `GOLDPATH_IDP_ISSUER` |'));
    assert.ok(row);
    // The issuer alone does not move a standalone dev IdP (compose's issuer is Traefik's address).
    assert.match(row, /`goldpath dev-idp` listens on `PORT`/);
    const env = { GOLDPATH_CONFIG_DIR: CONFIG, ...ENV };
    const alone = await devIdpSettings({ ...env, GOLDPATH_IDP_ISSUER: 'http://127.0.0.1:4010' });
    assert.deepEqual([alone.port, alone.issuer], [4000, 'http://127.0.0.1:4010']);
    // The row's own example of both given alike.
    const [, port, issuer] = /`PORT=(\d+) GOLDPATH_IDP_ISSUER=(\S+)`/.exec(row) ?? [];
    assert.ok(port && issuer, 'the row shows PORT and GOLDPATH_IDP_ISSUER given alike');
    const both = await devIdpSettings({ ...env, PORT: port, GOLDPATH_IDP_ISSUER: issuer });
    assert.deepEqual([both.port, both.issuer], [Number(port), issuer]);
    assert.equal(new URL(issuer).port, port);
  });

  it('the Environment table names exactly the variables the code reads and the shipped config files name', () => {
    const section = README.split(/^### Environment\n/m)[1]!.split(/^###? /m)[0]!;
    const documented = new Set<string>();
    for (const row of section.split('\n').filter((l) => l.startsWith('| `'))) {
      let full = '';
      for (const [, name] of row.split('|')[1]!.matchAll(/`([A-Z_][A-Z0-9_]*)`/g)) {
        // `GOLDPATH_DEV_IDP_TLS_CERT`, `_KEY`: a suffix shares the previous name's prefix.
        full = name!.startsWith('_') ? full.slice(0, full.lastIndexOf('_')) + name : name!;
        documented.add(full);
      }
    }
    const read = new Set<string>();
    for (const file of tsFiles(join(REPO_ROOT, 'src'))) {
      const text = readFileSync(file, 'utf8');
      // Names the code spells out (env reads go through helpers such as envValue(env, 'PORT')).
      for (const m of text.matchAll(/'(GOLDPATH_[A-Z0-9_]*[A-Z0-9]|REDIS_URL|REDIS_TLS_CA_FILE|PORT|HOST|LOG_LEVEL)'/g)) read.add(m[1]!);
      for (const m of text.matchAll(/process\.env\.([A-Z][A-Z0-9_]*)/g)) read.add(m[1]!);
    }
    // Node's own variable: read only to keep flags a user gave (src/verify/process-tuning.ts).
    read.delete('NODE_OPTIONS');
    for (const f of ['routes.yaml', 'pdp.yaml', 'idps.yaml']) {
      for (const m of readFileSync(join(CONFIG, f), 'utf8').matchAll(/\$\{(GOLDPATH_[A-Z0-9_]+)/g)) read.add(m[1]!);
    }
    assert.deepEqual([...documented].sort(), [...read].sort());
  });
});

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}
