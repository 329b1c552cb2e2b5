// `node dist/test/bench/gc.js [rate] [seconds] [rounds]`: the garbage collector's part in the
// fixed-rate tail. The sidecar (10,000 sessions cached and 1,000 decisions made first, as in
// `npm run bench`) and the bare 200 server, each with --trace-gc-nvp, pinned as `npm run bench`
// pins them, take the hot path at the same fixed rate, alternating (sent by the C generator of
// fixed-rate.ts, which also reports its own stalls). For each run: bytes allocated a request (the
// `allocated` of every collection), scavenges (how many, median
// and longest pause), bytes promoted to the old generation, and full collections (final pause
// plus the incremental marking done on the main thread). Every pause is a stall of the server's
// own: requests that arrive during it wait. The machine's stalls are the other part (stalls.ts,
// in `npm run bench`).
import process from 'node:process';
import { runFixedRate } from './fixed-rate.ts';
import { runLoad } from './load.ts';
import { pinBench, startBare, startHarness } from './processes.ts';
import { createBenchSessions, driveAll, scenarios } from './scenarios.ts';

const rate = Number(process.argv[2] ?? 10_000);
const seconds = Number(process.argv[3] ?? 4);
const rounds = Number(process.argv[4] ?? 2);
const TRACE = ['--trace-gc-nvp'];

/** Reads the --trace-gc-nvp lines a run printed. */
function gcSummary(trace: string, requests: number): string {
  const scavenges: number[] = [];
  const full: string[] = [];
  let promoted = 0;
  let allocated = 0;
  for (const line of trace.split('\n')) {
    const field = (name: string) => Number(new RegExp(` ${name}=([\\d.]+)`).exec(line)?.[1] ?? NaN);
    const kind = / gc=(\w+)/.exec(line)?.[1];
    if (kind === undefined) continue;
    promoted += field('promoted') || 0;
    allocated += field('allocated') || 0;
    if (kind === 's') scavenges.push(field('pause'));
    else full.push(`${field('pause')} ms + ${field('incremental') || 0} ms incremental`);
  }
  scavenges.sort((a, b) => a - b);
  const median = scavenges[scavenges.length >> 1] ?? 0;
  return `scavenges ${scavenges.length} (median ${median} ms, longest ${scavenges.at(-1) ?? 0} ms), ` +
    `allocated ${(allocated / requests / 1000).toFixed(1)} kB a request, promoted ${(promoted / 1024).toFixed(0)} KiB, full collections ${full.length}${full.length ? ': ' + full.join(', ') : ''}`;
}

const h = await startHarness({ nodeArgs: TRACE });
const bare = await startBare('ok', 200, '', { nodeArgs: TRACE });
try {
  const pinned = pinBench(h.redis.proc!.pid!, [h.sidecar.child.proc.pid!, bare.pid]);
  if (!pinned) process.stderr.write('not pinned: both servers share the CPUs with everything else\n');
  const list = scenarios(await createBenchSessions(h.store));
  const hot = list.find((s) => s.key === 'a')!;
  const many = list.find((s) => s.key === 'e')!;
  const ids = list.find((s) => s.key === 'f')!;
  // The state `npm run bench` leaves before its fixed-rate runs: 10,000 sessions cached, 1,000
  // decisions on one session.
  await driveAll(h.sidecar.port, Array.from({ length: many.prime! }, (_, i) => many.request(i)), { times: 2 });
  await driveAll(h.sidecar.port, Array.from({ length: 1000 }, (_, i) => ids.request(i)), { times: 3 });
  const servers = [
    { name: 'bare node:http, 200', port: bare.port, output: () => bare.output() },
    { name: '(a) sidecar, hot path', port: h.sidecar.port, output: () => h.sidecar.child.output() },
  ];
  for (const s of servers) await runLoad({ port: s.port, request: hot.request, seconds: 2, connections: 32 });
  for (let round = 1; round <= rounds; round++) {
    for (const s of servers) {
      const from = s.output().length;
      const r = await runFixedRate({ port: s.port, seconds, connections: 32, rate, warmupSeconds: 0, request: hot.request(0), cpu: pinned ? '0' : undefined });
      const g = r.generator;
      process.stdout.write(`round ${round}  ${s.name.padEnd(22)} ${rate} req/s ${seconds} s: p50 ${r.p50.toFixed(0)} µs, p99 ${r.p99.toFixed(0)} µs; ` +
        `${gcSummary(s.output().slice(from), r.requests)}` +
        `${g === undefined ? '' : `; the generator's own stalls ${(g.lost * 100).toFixed(2)} %, longest ${g.maxMs.toFixed(1)} ms`}\n`);
    }
  }
} finally {
  await bare.stop();
  await h.close();
}
