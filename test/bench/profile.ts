// Profiles the sidecar under one scenario: `node dist/test/bench/profile.js a [seconds]`.
// Starts a sidecar with --cpu-prof, drives the scenario, stops it (the profile is written on exit)
// and prints where its CPU time went: top functions by self time, and totals by package.
// The .cpuprofile is kept under test-results/prof/ (open it in Chrome DevTools for the flame chart).
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { REPO_ROOT } from '../helpers/process.ts';
import { runLoad } from './load.ts';
import { startHarness } from './processes.ts';
import { createBenchSessions, scenarios } from './scenarios.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

async function main(): Promise<void> {
  const key = process.argv[2] ?? 'a';
  const seconds = Number(process.argv[3] ?? 5);
  const dir = join(REPO_ROOT, 'test-results', 'prof', key);
  let sent = 0;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const h = await startHarness({ nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
  try {
    const s = scenarios(await createBenchSessions(h.store)).find((x) => x.key === key && x.server === 'sidecar');
    if (!s) throw new Error(`no sidecar scenario ${key}`);
    const r = await runLoad({ port: h.sidecar.port, request: s.request, seconds, connections: 32 });
    sent = r.sent;
    process.stdout.write(`${s.title}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(0)} µs, statuses ${JSON.stringify(r.statuses)}\n`);
  } finally {
    await h.close();
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written');
  summarize(JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile, sent);
  process.stdout.write(`profile: ${join(dir, file)}\n`);
}

/** Self time per function, in µs per request (idle excluded), and totals by package. */
function summarize(p: Profile, requests: number): void {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  let total = 0;
  for (const [id, t] of self) if (byId.get(id)!.callFrame.functionName !== '(idle)') total += t;
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    const url = n.callFrame.url.replace(/^file:\/\//, '').replace(REPO_ROOT, '');
    const name = `${n.callFrame.functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`;
    fn.set(name, (fn.get(name) ?? 0) + t);
    const where = url === '' ? n.callFrame.functionName : url.startsWith('node:') ? 'node:' + url.slice(5).split('/')[0]
      : url.includes('node_modules/') ? url.split('node_modules/')[1]!.split('/')[0]! : url.startsWith('dist/src/') ? url.split('/').slice(2, 4).join('/') : url;
    pkg.set(where, (pkg.get(where) ?? 0) + t);
  }
  fn.delete('(idle) :0');
  pkg.delete('(idle)');
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, t]) => `  ${(t / requests).toFixed(2).padStart(6)} µs  ${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`).join('\n');
  process.stdout.write(`\nbusy: ${(total / requests).toFixed(1)} µs per request (profiler timestamps, µs; idle excluded)\n` +
    `\nself time by function:\n${top(fn, 40)}\n\nby package / file:\n${top(pkg, 20)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`profile failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
