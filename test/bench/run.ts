// `npm run bench`: /auth/verify against a bare node:http server, in the same run, on this machine.
//
// One redis-server, one sidecar process (`goldpath verify`), two bare servers (200, and the same 401
// JSON the sidecar writes), all driven by one load generator (this process; nothing else runs here
// while load is on). Rounds interleave every scenario with the bare server so drift (thermal, noisy
// neighbours) hits both alike; we report medians over rounds, and ratios to the bare server taken
// within each round.
//
// Env: BENCH_SECONDS (per run, default 3), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 32),
// BENCH_MEMORY_SESSIONS (default 100000; 0 skips the memory step). To see where the sidecar's time
// goes: `node dist/test/bench/profile.js <scenario> [seconds]` (profile.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import type { RedisServer } from '../helpers/redis.ts';
import { REPO_ROOT } from '../helpers/process.ts';
import { runLoad, verifyRequest, type LoadResult } from './load.ts';
import { procCpuSeconds, startBare, startHarness, type Bare } from './processes.ts';
import { pdpMicro, type MicroResult } from './pdp-micro.ts';
import { ACTIVE_SESSIONS, COOKIE, createBenchSessions, createSessions, scenarios, type Scenario } from './scenarios.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const MEMORY_SESSIONS = Number(process.env.BENCH_MEMORY_SESSIONS ?? 100_000);

interface Row {
  readonly results: LoadResult[];
  readonly ratios: number[];
  readonly redisPerRequest: number[];
  /** CPU used by the server process and by the load generator, in cores (1 = one core busy). */
  readonly serverCpu: number[];
  readonly loaderCpu: number[];
  /** Server CPU time per answered request, µs: unlike req/s, barely moved by other load on the machine. */
  readonly cpuPerRequest: number[];
}

interface Memory {
  readonly sessions: number;
  readonly active: number;
  readonly rss: number;
  readonly peak: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const log = (s: string) => process.stderr.write(s + '\n');

async function main(): Promise<void> {
  const started = Date.now();
  const h = await startHarness();
  const { redis, store, sidecar } = h;
  const bare: Bare[] = [];
  try {
    log(`creating ${ACTIVE_SESSIONS + 2} sessions...`);
    const sessions = await createBenchSessions(store);
    // The bare 401 server writes exactly the sidecar's 401 body.
    const probe = await fetch(`http://127.0.0.1:${sidecar.port}/auth/verify`, {
      headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/api/orders/1' },
    });
    const body401 = await probe.text();
    if (probe.status !== 401) throw new Error(`probe: expected 401, got ${probe.status} ${body401}`);
    bare.push(await startBare('ok'), await startBare('json', 401, body401));
    const ports = { bare200: bare[0]!.port, bare401: bare[1]!.port, sidecar: sidecar.port };
    const pids = { bare200: bare[0]!.pid, bare401: bare[1]!.pid, sidecar: sidecar.child.proc.pid! };

    const list = scenarios(sessions);
    const rows = new Map<string, Row>(list.map((s) => [s.key, { results: [], ratios: [], redisPerRequest: [], serverCpu: [], loaderCpu: [], cpuPerRequest: [] }]));
    const redisBase = await commandOverhead(redis);
    for (let round = 1; round <= ROUNDS; round++) {
      let bareRps = NaN;
      for (const s of list) {
        const before = await redis.commandCount();
        const cpu0 = procCpuSeconds(pids[s.server]);
        const own0 = process.cpuUsage();
        const t0 = performance.now();
        const r = await runLoad({ port: ports[s.server], request: s.request, seconds: SECONDS, connections: CONNECTIONS });
        const wall = (performance.now() - t0) / 1000;
        const own = process.cpuUsage(own0);
        const serverSeconds = procCpuSeconds(pids[s.server]) - cpu0;
        const serverCpu = serverSeconds / wall;
        const loaderCpu = (own.user + own.system) / 1e6 / wall;
        const cmds = (await redis.commandCount()) - before - redisBase;
        const wrong = Object.keys(r.statuses).filter((code) => Number(code) !== s.expect);
        if (wrong.length > 0 || r.errors > 0) throw new Error(`${s.title}: unexpected answers ${JSON.stringify(r.statuses)}, errors ${r.errors}`);
        if (s.server === 'bare200') bareRps = r.rps;
        const row = rows.get(s.key)!;
        row.results.push(r);
        row.ratios.push(r.rps / bareRps);
        row.redisPerRequest.push(cmds / r.sent); // warm-up requests reached Redis too
        row.serverCpu.push(serverCpu);
        row.loaderCpu.push(loaderCpu);
        row.cpuPerRequest.push((serverSeconds * 1e6) / r.sent);
        log(`round ${round}  ${s.title.padEnd(58)} ${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50.toFixed(0)} µs  p99 ${r.p99.toFixed(0)} µs  ` +
          `redis/req ${(cmds / r.sent).toFixed(3)}  cpu server ${serverCpu.toFixed(2)} loader ${loaderCpu.toFixed(2)}  ` +
          `server ${((serverSeconds * 1e6) / r.sent).toFixed(1)} µs/req`);
      }
    }

    // (a) at a fixed rate of half the sidecar's maximum: the latency a sidecar with headroom gives.
    const hot = list.find((s) => s.key === 'a')!;
    const halfRate = Math.round(median(rows.get('a')!.results.map((r) => r.rps)) / 2);
    const fixed: { sidecar: LoadResult[]; bare: LoadResult[] } = { sidecar: [], bare: [] };
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, port] of [['bare', ports.bare200], ['sidecar', ports.sidecar]] as const) {
        const r = await runLoad({ port, request: hot.request, seconds: SECONDS, connections: CONNECTIONS, rate: halfRate });
        fixed[name].push(r);
        log(`round ${round}  (a) at ${halfRate} req/s, ${name.padEnd(8)} p50 ${r.p50.toFixed(0)} µs  p99 ${r.p99.toFixed(0)} µs  p99.9 ${r.p999.toFixed(0)} µs`);
      }
    }

    log('(g) PDP micro-benchmark...');
    const micro = await pdpMicro(Math.max(1, Math.min(3, SECONDS)));

    let memory: Memory | undefined;
    if (MEMORY_SESSIONS > 0) {
      const extra = Math.max(0, MEMORY_SESSIONS - ACTIVE_SESSIONS - 2);
      log(`memory: creating ${extra} more sessions (${MEMORY_SESSIONS} in Redis)...`);
      await createSessions(store, extra, (i) => ({ sub: `idle-${i}` }));
      // Every one of the active sessions through the sidecar once more, after all the scenarios.
      const many = sessions.many.map((c) => verifyRequest('/api/orders/1', { Cookie: `${COOKIE}=${c}` }));
      let sent = 0;
      while (sent < many.length) {
        const r = await runLoad({ port: ports.sidecar, request: (i) => many[(sent + i) % many.length]!, seconds: 1, connections: CONNECTIONS, warmupSeconds: 0 });
        sent += r.sent;
      }
      const m = sidecar.memory();
      memory = { sessions: MEMORY_SESSIONS, active: ACTIVE_SESSIONS, rss: m.rss, peak: m.peak };
      log(`memory: sidecar RSS ${(m.rss / 2 ** 20).toFixed(1)} MiB (peak ${(m.peak / 2 ** 20).toFixed(1)} MiB)`);
    }

    const md = report({ list, rows, halfRate, fixed, micro, memory, seconds: (Date.now() - started) / 1000 });
    process.stdout.write('\n' + md + '\n');
    const out = join(REPO_ROOT, 'test-results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'bench.md'), md + '\n');
    log('written to test-results/bench.md');
  } finally {
    for (const b of bare) await b.stop();
    await h.close();
  }
}

/** INFO stats costs commands of its own (connection setup + INFO): measured once, subtracted. */
async function commandOverhead(redis: RedisServer): Promise<number> {
  const a = await redis.commandCount();
  const b = await redis.commandCount();
  return b - a;
}

function report(o: {
  list: Scenario[];
  rows: Map<string, Row>;
  halfRate: number;
  fixed: { sidecar: LoadResult[]; bare: LoadResult[] };
  micro: MicroResult[];
  memory: Memory | undefined;
  seconds: number;
}): string {
  const us = (x: number) => x.toFixed(0);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  let nproc = String(cpus().length);
  try {
    nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  } catch { /* not on every OS */ }
  const lines = [
    `Machine: ${nproc} cores (\`nproc\`), ${cpu}; Node ${process.version}; \`npm run bench\` ` +
      `(BENCH_SECONDS=${SECONDS}, BENCH_ROUNDS=${ROUNDS}, ${CONNECTIONS} keep-alive connections, ` +
      `load generator, sidecar, bare servers and redis-server on the same machine); whole run ${o.seconds.toFixed(0)} s.`,
    '',
    `Closed loop (each connection sends its next request when the answer arrives), medians of ${ROUNDS} interleaved rounds; ` +
      'ratio = scenario ÷ bare 200 server in the same round (median of rounds). Latency in µs. ' +
      'Server CPU µs/req: CPU time (user + system, /proc) the server process spent per answered request; ' +
      '× bare CPU = bare server\'s µs/req ÷ this one (the throughput ratio a dedicated core would give). ' +
      'CPU columns: cores used by the server process and by the load generator during the run (1.00 = one core busy).',
    '',
    '| scenario | answer | req/s | × bare | p50 µs | p99 µs | p99.9 µs | Redis cmds/req | server CPU µs/req | × bare CPU | server CPU | load gen CPU |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const bareCpu = median(o.rows.get('bare200')!.cpuPerRequest);
  for (const s of o.list) {
    const row = o.rows.get(s.key)!;
    const r = row.results;
    lines.push(`| ${s.title} | ${s.expect} | ${median(r.map((x) => x.rps)).toFixed(0)} | ${median(row.ratios).toFixed(2)} | ` +
      `${us(median(r.map((x) => x.p50)))} | ${us(median(r.map((x) => x.p99)))} | ${us(median(r.map((x) => x.p999)))} | ` +
      `${s.server === 'sidecar' ? median(row.redisPerRequest).toFixed(3) : '–'} | ` +
      `${median(row.cpuPerRequest).toFixed(1)} | ${(bareCpu / median(row.cpuPerRequest)).toFixed(2)} | ` +
      `${median(row.serverCpu).toFixed(2)} | ${median(row.loaderCpu).toFixed(2)} |`);
  }
  lines.push('', `Fixed rate ${o.halfRate} req/s (half the sidecar's (a) maximum), latency counted from when each request was due:`, '',
    '| server | p50 µs | p99 µs | p99.9 µs | max µs |', '|---|---:|---:|---:|---:|');
  for (const [name, rs] of [['bare node:http, 200', o.fixed.bare], ['(a) sidecar, hot path', o.fixed.sidecar]] as const) {
    lines.push(`| ${name} | ${us(median(rs.map((x) => x.p50)))} | ${us(median(rs.map((x) => x.p99)))} | ${us(median(rs.map((x) => x.p999)))} | ${us(median(rs.map((x) => x.max)))} |`);
  }
  lines.push('', '(g) The PDP alone, in process, one call at a time:', '', '| call | calls/s | p50 µs | p99 µs | p99.9 µs |', '|---|---:|---:|---:|---:|');
  for (const m of o.micro) lines.push(`| ${m.name} | ${m.opsPerSec.toFixed(0)} | ${m.p50.toFixed(1)} | ${m.p99.toFixed(1)} | ${m.p999.toFixed(1)} |`);
  if (o.memory) {
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    lines.push('', `Memory: ${o.memory.sessions.toLocaleString('en')} sessions in Redis, ${o.memory.active.toLocaleString('en')} of them driven through the sidecar ` +
      `(after all scenarios above): sidecar RSS **${mib(o.memory.rss)} MiB** (peak ${mib(o.memory.peak)} MiB; VmRSS/VmHWM from /proc).`);
  }
  return lines.join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
