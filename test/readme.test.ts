// README is what users copy from: its config snippets must pass the real `goldpath check`, and its
// Environment table must name exactly the variables the code reads. Files only, no processes.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatProblem } from '../src/errors.ts';
import { checkConfig } from '../src/check.ts';
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
