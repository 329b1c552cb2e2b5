// `node dist/test/bench/memory.js [active] [seconds]`: the sidecar's memory with `active` sessions
// (default 10,000) in use, and where it goes (V8 heap spaces, from the sidecar's own /metrics).
// The full target run (100,000 sessions in Redis) is part of `npm run bench`; idle sessions in
// Redis cost the sidecar nothing, so this quicker probe is what to run while changing the code.
// SIDECAR_NODE_OPTIONS sets the sidecar's NODE_OPTIONS; MEMORY_SNAPSHOT=1 takes a heap snapshot at the end;
// MEMORY_REALISTIC=1 makes sessions the size an IdP's are (JWT access tokens, a dozen claims)
// instead of the benchmark's small ones; MEMORY_PLAIN=1 starts the sidecar as a plain
// `node dist/src/cli.js verify`, without compose's process flags.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { verifyRequest } from './load.ts';
import { REPO_ROOT } from '../helpers/process.ts';
import { scrapeMetrics, startHarness, type Sidecar } from './processes.ts';
import { COOKIE, createSessions, driveAll, idpSizedSession } from './scenarios.ts';

const active = Number(process.argv[2] ?? 10_000);
const seconds = Number(process.argv[3] ?? 3);
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

async function describe(sidecar: Sidecar): Promise<string> {
  const m = sidecar.memory();
  const { text: metrics, value } = await scrapeMetrics(sidecar.port);
  const one = (name: string) => mib(value(name));
  const spaces = (name: string) => [...metrics.matchAll(new RegExp(`^${name}\\{space="(\\w+)"\\} (\\d+)`, 'gm'))]
    .filter((x) => Number(x[2]) > 0).map((x) => `${x[1]} ${mib(Number(x[2]))}`).join(', ');
  // Where the resident pages are: the node binary and libraries (files), malloc's heap, anonymous maps.
  const maps = new Map<string, number>();
  let name = '';
  for (const line of readFileSync(`/proc/${sidecar.child.proc.pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) name = head[1]!.startsWith('/') ? 'files' : head[1] || 'anonymous';
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) maps.set(name, (maps.get(name) ?? 0) + Number(rss[1]) * 1024);
  }
  const where = [...maps].filter(([, b]) => b >= 2 ** 20).map(([k, b]) => `${k} ${mib(b)}`).join(', ');
  return `RSS ${mib(m.rss)} MiB (${where}) (peak ${mib(m.peak)}); V8 heap ${one('nodejs_heap_size_total_bytes')} MiB, ` +
    `used ${one('nodejs_heap_size_used_bytes')}, external ${one('nodejs_external_memory_bytes')}\n` +
    `  used by space: ${spaces('nodejs_heap_space_size_used_bytes')}\n  size by space: ${spaces('nodejs_heap_space_size_total_bytes')}`;
}

const snapshot = process.env.MEMORY_SNAPSHOT === '1';
// Heap snapshots hold the sessions' decrypted secrets: written under test-results/ (ignored by git).
const snapshotDir = join(REPO_ROOT, 'test-results', 'heap');
if (snapshot) mkdirSync(snapshotDir, { recursive: true });
const nodeOptions = [process.env.SIDECAR_NODE_OPTIONS, snapshot ? `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshotDir}` : ''].join(' ').trim();
const h = await startHarness({ plain: process.env.MEMORY_PLAIN === '1', env: nodeOptions ? { NODE_OPTIONS: nodeOptions } : {} });
try {
  console.log(`idle: ${await describe(h.sidecar)}`);
  const cookies = await createSessions(h.store, active, process.env.MEMORY_REALISTIC === '1' ? idpSizedSession : (i) => ({ sub: `active-${i}`, roles: ['reader'] }));
  const many = cookies.map((c) => verifyRequest('/api/orders/1', { Cookie: `${COOKIE}=${c}` }));
  const sent = await driveAll(h.sidecar.port, many, { times: 3, seconds });
  console.log(`after ${sent} requests over ${active} sessions: ${await describe(h.sidecar)}`);
  if (snapshot) {
    // --heapsnapshot-signal writes Heap.<date>.<pid>...heapsnapshot into --diagnostic-dir.
    process.kill(h.sidecar.child.proc.pid!, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 15_000));
    console.log(`heap snapshot written to ${snapshotDir}`);
  }
} finally {
  await h.close();
}
