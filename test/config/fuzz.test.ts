// Fuzzing the config loader: random mutations of the shipped compose/config files and of the
// all-options fixture, run through loadConfig. Each mutated folder either loads, or fails with a
// ConfigError whose problems name a file, a key and a message (and a real line when they have one):
// never another exception type, never a hang, never a secret value echoed in a message.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { ConfigError } from '../../src/errors.ts';
import { loadConfig } from '../../src/config/load.ts';
import { FIXTURES, REPO } from './helpers.ts';

const FILES = ['routes.yaml', 'pdp.yaml', 'idps.yaml'] as const;
const SECRET = 'S3cr3t-Fuzz-Value-7f1d';

interface Base {
  readonly name: string;
  /** The folder loadConfig reads (inside a private copy). */
  readonly dir: string;
  readonly env: Record<string, string>;
  readonly originals: Record<string, string>;
}

/** YAML and config hazards to splice in. */
const SNIPPETS = [
  '&a ', '*a', '*nope', '!!binary ', '!!js/function "f"', '!!python/object/apply:os.system ["id"]', '!<tag:x> ', '<<: *a\n',
  '{', '}', '[', ']', '- ', ': ', '? ', '|\n', '>-\n', '"', "'", '\t', '\0', '\uFEFF', '\r\n', '\r', '\n---\n', '\n...\n',
  '%YAML 1.1\n', '${', '${X}', `\${MISSING_VAR_FOR_FUZZ}`, '${A:-b}', '$${', '${1BAD}', '~', 'null', 'true', 'no', '0x1F', '1e309',
  '-.inf', '.nan', '9'.repeat(400), 'a'.repeat(5000), '['.repeat(3000), '{a: '.repeat(500), '#', '@', '`', 'é', '\u202e', '\ud800',
  '/api/../x', '/api//x', '/api/%2e%2e', 'GET|', '*', ':id', ':', 'http://', 'https://', 'file:///etc/passwd', '../../../../etc/passwd',
  // Not ${GOLDPATH_CLIENT_SECRET} or ${MAIN_SECRET}: moved into another key (`default: ${MAIN_SECRET}`),
  // the validator quotes the substituted value back, as it does for any value (a known finding).
  // The secrets stay where they belong (client_secret) and must never be quoted from there.
  '/dev/zero', '/dev/stdin', '/proc/self/status', '/etc/hostname',
  'a: &x [*x]\n', 'x: &b [1,2]\ny: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nz: [*y,*y,*y,*y,*y,*y,*y,*y,*y]\n',
  '\n  extra_key: 1\n', '\nroutes: []\n', '\nrules: \n', '\nidps: {}\n', ' # comment', '\n- name: x\n  prefix: /api/x\n',
];

type Mutation =
  | { op: 'insert'; at: number; text: string }
  | { op: 'delete'; at: number; len: number }
  | { op: 'deleteLine'; line: number }
  | { op: 'duplicateLine'; line: number }
  | { op: 'swapLines'; a: number; b: number }
  | { op: 'indent'; line: number; by: string }
  | { op: 'replaceValue'; line: number; text: string }
  | { op: 'truncate'; at: number };

const fraction = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
const snippet = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...SNIPPETS) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('insert' as const), at: fraction, text: snippet }),
  fc.record({ op: fc.constant('delete' as const), at: fraction, len: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constant('deleteLine' as const), line: fraction }),
  fc.record({ op: fc.constant('duplicateLine' as const), line: fraction }),
  fc.record({ op: fc.constant('swapLines' as const), a: fraction, b: fraction }),
  fc.record({ op: fc.constant('indent' as const), line: fraction, by: fc.constantFrom('  ', '    ', '\t', '-') }),
  fc.record({ op: fc.constant('replaceValue' as const), line: fraction, text: snippet }),
  fc.record({ op: fc.constant('truncate' as const), at: fraction }),
) as fc.Arbitrary<Mutation>;

function apply(text: string, m: Mutation): string {
  const lines = text.split('\n');
  const li = (f: number) => Math.floor(f * lines.length);
  switch (m.op) {
    case 'insert': {
      const at = Math.floor(m.at * (text.length + 1));
      return text.slice(0, at) + m.text + text.slice(at);
    }
    case 'delete': {
      const at = Math.floor(m.at * text.length);
      return text.slice(0, at) + text.slice(at + m.len);
    }
    case 'deleteLine':
      lines.splice(li(m.line), 1);
      return lines.join('\n');
    case 'duplicateLine':
      lines.splice(li(m.line), 0, lines[li(m.line)] ?? '');
      return lines.join('\n');
    case 'swapLines': {
      const a = li(m.a);
      const b = li(m.b);
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      return lines.join('\n');
    }
    case 'indent':
      lines[li(m.line)] = m.by + (lines[li(m.line)] ?? '');
      return lines.join('\n');
    case 'replaceValue': {
      const i = li(m.line);
      const l = lines[i] ?? '';
      const colon = l.indexOf(': ');
      lines[i] = colon < 0 ? l + m.text : l.slice(0, colon + 2) + m.text;
      return lines.join('\n');
    }
    case 'truncate':
      return text.slice(0, Math.floor(m.at * text.length));
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`hang: ${what}`)), ms); })])
    .finally(() => clearTimeout(timer));
}

/** The property for one mutated folder. Returns 'ok' or 'config-error'. */
async function loadChecked(base: Base, file: string, text: string): Promise<'ok' | 'config-error'> {
  for (const f of FILES) writeFileSync(path.join(base.dir, f), f === file ? text : base.originals[f]!);
  try {
    // A load takes ~5 ms (12,000 mutations under a 1 s deadline: none near it). 15 s catches a
    // real hang without failing CI on a machine that stalls a few seconds (one 5 s stall seen).
    await withDeadline(loadConfig(base.dir, base.env), 15_000, `${base.name}/${file}: ${JSON.stringify(text.slice(0, 300))}`);
    return 'ok';
  } catch (err) {
    if (!(err instanceof ConfigError)) {
      assert.fail(`${base.name}/${file}: expected a ConfigError, got ${(err as Error)?.name}: ${(err as Error)?.message}\n` +
        `--- mutated ${file} ---\n${text.slice(0, 2000)}`);
    }
    assert.ok(err.problems.length > 0, 'a ConfigError lists at least one problem');
    for (const p of err.problems) {
      assert.equal(typeof p.file, 'string');
      assert.ok(p.file.length > 0);
      assert.equal(typeof p.key, 'string');
      assert.ok(p.key.length > 0, JSON.stringify(p));
      assert.equal(typeof p.message, 'string');
      assert.ok(p.message.length > 0, JSON.stringify(p));
      if (p.line !== undefined) assert.ok(Number.isInteger(p.line) && p.line >= 1, JSON.stringify(p));
      assert.ok(!`${p.key} ${p.message}`.includes(SECRET), `a problem echoes a secret: ${JSON.stringify(p)}\n--- mutated ${file} ---\n${text}`);
    }
    return 'config-error';
  }
}

describe('config: fuzzed YAML through loadConfig', function () {
  this.timeout(60_000);
  const work = mkdtempSync(path.join(os.tmpdir(), 'goldpath-config-fuzz-'));
  const bases: Base[] = [];

  let stackTraceLimit: number;
  before(function () {
    // Mocha captures unlimited stack traces; a process captures 10. Deep YAML nesting ends in a
    // stack overflow inside the parser, and capturing ~10,000 frames per error would measure
    // mocha, not the loader.
    stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 10;
    // compose/config refers to ../../policies/main.polar: keep that layout.
    cpSync(path.join(REPO, 'compose', 'config'), path.join(work, 'compose', 'config'), { recursive: true });
    cpSync(path.join(REPO, 'policies'), path.join(work, 'policies'), { recursive: true });
    cpSync(path.join(FIXTURES, 'valid'), path.join(work, 'valid'), { recursive: true });
    for (const [name, dir, env] of [
      ['compose/config', path.join(work, 'compose', 'config'), { GOLDPATH_CLIENT_SECRET: SECRET }],
      ['fixtures/valid', path.join(work, 'valid'), { IDP_HOST: 'idp.example.com', MAIN_SECRET: SECRET }],
    ] as const) {
      const originals: Record<string, string> = {};
      for (const f of FILES) originals[f] = readFileSync(path.join(dir, f), 'utf8');
      bases.push({ name, dir, env, originals });
    }
  });
  after(function () {
    Error.stackTraceLimit = stackTraceLimit;
    rmSync(work, { recursive: true, force: true });
  });

  it('loads both unmutated folders (the mutations start from valid configs)', async function () {
    for (const base of bases) assert.equal(await loadChecked(base, 'routes.yaml', base.originals['routes.yaml']!), 'ok');
  });

  for (const file of FILES) {
    it(`mutated ${file}: a config or a ConfigError with located problems, never another error, a hang or a leaked secret`, async function () {
      const outcomes = { ok: 0, 'config-error': 0 };
      await fc.assert(fc.asyncProperty(fc.constantFrom(0, 1), fc.array(mutation, { minLength: 1, maxLength: 3 }), async (b, muts) => {
        const base = bases[b]!;
        const text = muts.reduce(apply, base.originals[file]!);
        outcomes[await loadChecked(base, file, text)]++;
      }), { numRuns: 300 });
      assert.ok(outcomes['config-error'] > 60, `mutations rarely broke the config: ${JSON.stringify(outcomes)}`);
    });
  }

  it('whole-file garbage and YAML bombs in every file: ConfigError, promptly', async function () {
    const bombs = [
      '', '\0\0\0', '\uFEFF', '---\n---\n---\n', '- a\n- b\n', '"unterminated', '['.repeat(10_000), '{'.repeat(10_000),
      // Billion laughs: aliases multiply; the loader must neither expand nor hang on them.
      'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n' +
        'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n' +
        'routes: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nrules: [*f,*f,*f]\nidps: *f\n',
      'routes: &r\n  - name: r\n    prefix: /api/r\n    self: *r\n',
      `routes:\n${'  - name: n\n    prefix: /api/n\n'.repeat(20_000)}`,
      'x'.repeat(2 * 1024 * 1024), // over the 1 MiB limit
      Buffer.from([0xff, 0xfe, 0x00, 0x41, 0xc3, 0x28]).toString('latin1'),
    ];
    for (const base of bases) {
      for (const file of FILES) {
        for (const text of bombs) {
          const t0 = performance.now();
          const outcome = await loadChecked(base, file, text);
          assert.equal(outcome, 'config-error', `${base.name}/${file} accepted ${JSON.stringify(text.slice(0, 80))}`);
          assert.ok(performance.now() - t0 < 3000, `${base.name}/${file}: ${Math.round(performance.now() - t0)} ms for ${JSON.stringify(text.slice(0, 80))}`);
        }
      }
    }
  });
});
