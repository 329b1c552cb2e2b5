// `node dist/test/bench/compare.js <other checkout> [scenarios]`: this sidecar against another
// build of it (say, `git worktree add /tmp/old <ref> && cd /tmp/old && ln -s $PWD/../main/node_modules
// && npx tsc -p .`), both as processes on the same core, the same Redis and sessions, runs alternating.
// Prints the server CPU time per request of each run and the median ratio of paired runs. On a shared
// machine whose speed drifts, the ratio of two sidecars measured side by side is the figure to
// trust when asking "did this change make it slower?". Scenarios: keys from scenarios.ts (a,b,e...);
// COMPARE_RUNS runs of each (default 5). COMPARE_NODE_ARGS: node flags for the other sidecar only,
// after compose's (`COMPARE_NODE_ARGS=--single-threaded-gc node dist/test/bench/compare.js . b,c`
// weighs a V8 flag on this very build).
import process from 'node:process';
import { runLoad } from './load.ts';
import { BENCH_KEYS, pinBench, procCpuSeconds, startHarness, startSidecar } from './processes.ts';
import { createBenchSessions, prime, scenarios } from './scenarios.ts';

const otherDir = process.argv[2];
if (!otherDir) {
  process.stderr.write('usage: node dist/test/bench/compare.js <other checkout, built> [a,b,e]\n');
  process.exit(2);
}
const keys = (process.argv[3] ?? 'a,b,e').split(',');
const RUNS = Number(process.env.COMPARE_RUNS ?? 5);
const median = (x: number[]) => [...x].sort((a, b) => a - b)[x.length >> 1]!;

const h = await startHarness();
const otherArgs = (process.env.COMPARE_NODE_ARGS ?? '').split(' ').filter(Boolean);
const other = await startSidecar(h.redis.url, BENCH_KEYS, { root: otherDir, nodeArgs: otherArgs }).catch(async (err: unknown) => {
  await h.close();
  throw err;
});
try {
  const list = scenarios(await createBenchSessions(h.store));
  if (!pinBench(h.redis.proc!.pid!, [h.sidecar.child.proc.pid!, other.child.proc.pid!])) process.stderr.write('not pinned: both sidecars share the CPUs with everything else\n');
  const sides = { this: { port: h.sidecar.port, pid: h.sidecar.child.proc.pid! }, other: { port: other.port, pid: other.child.proc.pid! } };
  for (const key of keys) {
    const s = list.find((x) => x.key === key);
    if (!s || s.server !== 'sidecar') throw new Error(`no sidecar scenario ${key}`);
    for (const side of Object.values(sides)) await prime(side.port, s);
    const us: Record<keyof typeof sides, number[]> = { this: [], other: [] };
    for (let i = 0; i < RUNS; i++) {
      for (const [name, side] of Object.entries(sides) as [keyof typeof sides, { port: number; pid: number }][]) {
        const c0 = procCpuSeconds(side.pid);
        const r = await runLoad({ port: side.port, request: s.request, seconds: 2, connections: 32 });
        us[name].push(((procCpuSeconds(side.pid) - c0) * 1e6) / r.sent);
      }
    }
    const f = (x: number[]) => x.map((v) => v.toFixed(1)).join(' ');
    // Each run of this build is paired with the run of the other just after it: the median of those
    // ratios is steadier than a ratio of medians when the machine's speed drifts.
    const paired = median(us.this.map((t, i) => t / us.other[i]!));
    console.log(`${s.title}: this ${f(us.this)} | other ${f(us.other)} µs/req | this ÷ other: ${paired.toFixed(2)} (median of paired runs)`);
  }
} finally {
  await other.stop();
  await h.close();
}
