// `npm run bench`: /auth/verify against a bare node:http server, in the same run, on this machine.
//
// One redis-server, one sidecar process (`goldpath verify`), two bare servers (200, and the same 401
// JSON the sidecar writes), all driven by one load generator (this process; nothing else runs here
// while load is on; the fixed-rate runs are sent by a C generator instead, fixed-rate.ts). Rounds
// interleave every scenario with the bare server so drift (thermal, noisy neighbours) hits both
// alike; we report medians over rounds, and ratios to the bare server taken within each round.
//
// Env: BENCH_SECONDS (per run, default 2; round-robin scenarios at least one session-cache TTL + 1 s), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 32),
// BENCH_MEMORY_SESSIONS (default 100000; 0 skips the memory step), BENCH_PIN (default 1: servers on
// CPU 1, load generator and redis-server on CPU 0, with taskset). To see where the sidecar's time
// goes: `node dist/test/bench/profile.js <scenario> [seconds]` (profile.ts). After each fixed-rate
// round, the floor the machine alone puts under every server's latency there (stalls.ts; needs a C
// compiler), and gc.ts for the collector's part in it. The same ratios in
// instructions, which other tenants of the machine cannot blur: `npm run bench:instructions`
// (instructions.ts, under valgrind).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import type { RedisServer } from '../helpers/redis.ts';
import { REPO_ROOT } from '../helpers/process.ts';
import { expectAnswers, runLoad, verifyRequest, type LoadResult } from './load.ts';
import { BENCH_KEYS, loginRequiredBody, pinBench, procCpuSeconds, scrapeMetrics, startBare, startHarness, startSidecar, type Bare, type SidecarOptions } from './processes.ts';
import { pdpMicro, type MicroResult } from './pdp-micro.ts';
import { measureStalls, type Stalls } from './stalls.ts';
import { runFixedRate, type FixedRateResult } from './fixed-rate.ts';
import { DEFAULT_SESSION_CACHE_TTL_MS } from '../../src/session/cache.ts';
import { ACTIVE_SESSIONS, COOKIE, createBenchSessions, createSessions, driveAll, idpSizedSession, prime, scenarios, type Scenario } from './scenarios.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/**
 * More rounds at a fixed rate than closed-loop ones: a tail is one event, and on a shared machine
 * a 2 s run may or may not contain one of its stalls (tens of ms, to the bare server too), so
 * the median needs more runs to say what the server does (each round costs 3 × BENCH_SECONDS).
 */
const FIXED_ROUNDS = Number(process.env.BENCH_FIXED_ROUNDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const MEMORY_SESSIONS = Number(process.env.BENCH_MEMORY_SESSIONS ?? 100_000);
/** BENCH_PIN=0 leaves scheduling to the OS. */
const PIN = process.env.BENCH_PIN !== '0';
let PINNED = false;
/** `nproc`, asked before this process is pinned to one CPU (nproc counts the allowed ones). */
const NPROC = (() => {
  try {
    return execFileSync('nproc', { encoding: 'utf8' }).trim();
  } catch {
    return String(cpus().length); // not on every OS
  }
})();
/**
 * The memory step runs `goldpath verify` as compose/compose.yaml starts it (node flags and malloc
 * tuning, see shippedVerify), and as a plain `node dist/src/cli.js verify`. Both get the runtime
 * tuning of src/verify/process-tuning.ts. Every scenario above runs the compose way.
 */
const MEMORY_VARIANTS: [string, SidecarOptions][] = [
  ['`goldpath verify` as compose.yaml starts it', {}],
  ['`node dist/src/cli.js verify`, no process flags', { plain: true }],
];

interface Row {
  readonly results: LoadResult[];
  readonly ratios: number[];
  /** Redis commands per request, the session cache's heartbeat not counted (see heartbeatCalls). */
  readonly redisPerRequest: number[];
  /** The heartbeat's commands per second during the run (PING + PUBLISH, see heartbeatCalls). */
  readonly heartbeatPerSec: number[];
  /** CPU used by the server process and by the load generator, in cores (1 = one core busy). */
  readonly serverCpu: number[];
  readonly loaderCpu: number[];
  /** Server CPU time per answered request, µs: unlike req/s, barely moved by other load on the machine. */
  readonly cpuPerRequest: number[];
  /** The bare server's CPU µs per request (mean of the runs around this one) ÷ this run's. */
  readonly cpuRatios: number[];
}

/** The fixed-rate runs: each with its generator's own stalls when the C generator sent it. */
interface Fixed {
  readonly sidecar: FixedRateResult[];
  readonly bare: FixedRateResult[];
  readonly stalls: Stalls[];
  /** Per round: the longest its event loop stopped during its run, in ms (loopStopMaxMs). */
  readonly sidecarLoopStopMaxMs: number[];
}

interface Memory {
  readonly label: string;
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
    const body401 = await loginRequiredBody(sidecar);
    bare.push(await startBare('ok'), await startBare('json', 401, body401));
    const ports = { bare200: bare[0]!.port, bare401: bare[1]!.port, sidecar: sidecar.port };
    const pids = { bare200: bare[0]!.pid, bare401: bare[1]!.pid, sidecar: sidecar.child.proc.pid! };
    // One core for the server under test, the other for the load generator and Redis: each
    // server gets the same dedicated core, and scheduling noise between them is gone.
    PINNED = PIN && pinBench(redis.proc!.pid!, Object.values(pids));
    log(PINNED ? 'pinned: load generator and redis-server on CPU 0, servers on CPU 1' : 'not pinned');

    const list = scenarios(sessions);
    const rows = new Map<string, Row>(list.map((s) => [s.key, { results: [], ratios: [], redisPerRequest: [], heartbeatPerSec: [], serverCpu: [], loaderCpu: [], cpuPerRequest: [], cpuRatios: [] }]));
    const redisBase = await commandOverhead(redis);
    /** One closed-loop run of a scenario, recorded in its row (ratios are added by the caller). */
    const measure = async (s: Scenario, round: number) => {
      // Steady state for a round-robin scenario: its sessions have been out of the cache since its
      // last run (their 5 s lapsed while other scenarios ran), so one cycle first, not measured;
      // then a run one session-cache TTL long and more, in which every session is revalidated
      // once, as it is every 5 s in steady state (a 2 s run right after the cycle would see none).
      const roundRobin = s.prime !== undefined;
      if (roundRobin) await prime(ports[s.server], s, CONNECTIONS);
      const seconds = roundRobin ? Math.max(SECONDS, DEFAULT_SESSION_CACHE_TTL_MS / 1000 + 1) : SECONDS;
      const before = await redis.commandCount();
      const calls0 = await redis.commandCalls();
      const cpu0 = procCpuSeconds(pids[s.server]);
      const own0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await runLoad({ port: ports[s.server], request: s.request, seconds, connections: CONNECTIONS });
      const wall = (performance.now() - t0) / 1000;
      const own = process.cpuUsage(own0);
      const serverSeconds = procCpuSeconds(pids[s.server]) - cpu0;
      const serverCpu = serverSeconds / wall;
      const loaderCpu = (own.user + own.system) / 1e6 / wall;
      const heartbeat = heartbeatCalls(calls0, await redis.commandCalls());
      const cmds = (await redis.commandCount()) - before - redisBase - heartbeat;
      expectAnswers(r, s.expect, s.title);
      const row = rows.get(s.key)!;
      const cpuPerRequest = (serverSeconds * 1e6) / r.sent;
      row.results.push(r);
      row.redisPerRequest.push(cmds / r.sent); // warm-up requests reached Redis too
      row.heartbeatPerSec.push(heartbeat / wall);
      row.serverCpu.push(serverCpu);
      row.loaderCpu.push(loaderCpu);
      row.cpuPerRequest.push(cpuPerRequest);
      log(`round ${round}  ${s.title.padEnd(58)} ${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50.toFixed(0)} µs  p99 ${r.p99.toFixed(0)} µs  ` +
        `redis/req ${(cmds / r.sent).toFixed(3)} (+ heartbeat ${(heartbeat / wall).toFixed(0)}/s)  cpu server ${serverCpu.toFixed(2)} loader ${loaderCpu.toFixed(2)}  ` +
        `server ${cpuPerRequest.toFixed(1)} µs/req`);
      return { rps: r.rps, cpuPerRequest };
    };
    // Every scenario runs between two runs of the bare server, and its ratios are taken against
    // the mean of those two: this machine's speed drifts over seconds (other tenants), and a
    // scenario compared with a bare run half a minute earlier would carry that drift.
    const closedLoop = async (scenarioList: Scenario[]) => {
      const bare200 = scenarioList.find((s) => s.server === 'bare200')!;
      const bareRow = rows.get(bare200.key)!;
      for (let round = 1; round <= ROUNDS; round++) {
        let before = await measure(bare200, round);
        for (const s of scenarioList) {
          if (s === bare200) continue;
          const m = await measure(s, round);
          const after = await measure(bare200, round);
          const row = rows.get(s.key)!;
          row.ratios.push(m.rps / ((before.rps + after.rps) / 2));
          row.cpuRatios.push((before.cpuPerRequest + after.cpuPerRequest) / 2 / m.cpuPerRequest);
          before = after;
        }
        bareRow.ratios.push(1);
        bareRow.cpuRatios.push(1);
      }
    };
    // Scenarios that fill the sidecar's caches with garbage-to-be ((f′): tens of thousands of
    // one-off decisions) run last, after the fixed-rate runs, so their collection does not land
    // in another scenario's latencies. Their rounds repeat the bare server for their ratios.
    const late = (s: Scenario) => s.key === 'f2';
    await closedLoop(list.filter((s) => !late(s)));
    // (a) at a fixed rate of half the sidecar's maximum: the latency a sidecar with headroom gives.
    const hot = list.find((s) => s.key === 'a')!;
    const halfRate = Math.round(median(rows.get('a')!.results.map((r) => r.rps)) / 2);
    const fixed: Fixed = { sidecar: [], bare: [], stalls: [], sidecarLoopStopMaxMs: [] };
    for (let round = 1; round <= FIXED_ROUNDS; round++) {
      for (const [name, port] of [['bare', ports.bare200], ['sidecar', ports.sidecar]] as const) {
        if (name === 'sidecar') await loopStopMaxMs(port); // a scrape starts the monitor's next interval
        // The C generator, on this process's core.
        const r = await runFixedRate({ port, seconds: SECONDS, connections: CONNECTIONS, rate: halfRate, request: hot.request(0), cpu: PINNED ? '0' : undefined });
        expectAnswers(r, 200, `fixed rate, ${name}`);
        fixed[name].push(r);
        const own = r.generator === undefined ? '' : `  (generator's own stalls: ${(r.generator.lost * 100).toFixed(2)} %, floor p99 ${r.generator.p99.toFixed(0)} µs)`;
        // Whether a long wait was the sidecar's event loop stopping (a collection, its own work, its
        // core taken away) or happened outside it (the generator, the network): its own monitor.
        let lag = '';
        if (name === 'sidecar') {
          const ms = await loopStopMaxMs(port);
          fixed.sidecarLoopStopMaxMs.push(ms);
          lag = `  its event loop's longest stop ${ms.toFixed(1)} ms`;
        }
        log(`round ${round}  (a) at ${halfRate} req/s, ${name.padEnd(8)} p50 ${r.p50.toFixed(0)} µs  p99 ${r.p99.toFixed(0)} µs  p99.9 ${r.p999.toFixed(0)} µs${own}${lag}`);
      }
      // The same seconds with no server: what the servers' core alone does to a request's wait.
      const st = await measureStalls(SECONDS, PINNED ? '1' : undefined);
      if (st === undefined) {
        if (round === 1) log('no C compiler (cc): the stall floor is not measured');
        continue;
      }
      fixed.stalls.push(st);
      log(`round ${round}  the servers' core alone: lost ${(st.lost * 100).toFixed(2)} % in stalls, ${st.over1ms} of 1 ms or more (longest ${st.maxMs.toFixed(2)} ms); ` +
        `wait floor p99 ${st.p99.toFixed(0)} µs  p99.9 ${st.p999.toFixed(0)} µs`);
    }

    await closedLoop(list.filter((s) => s.server === 'bare200' || late(s)));

    log('(g) PDP micro-benchmark...');
    const micro = await pdpMicro(Math.max(1, Math.min(3, SECONDS)));

    // Memory: 100,000 sessions in Redis, 10,000 of them active through one fresh sidecar process
    // (test/bench/memory.ts shows where it goes), plus the RSS of the
    // sidecar that ran every scenario above (its decision cache filled by (f′)).
    const memory: Memory[] = [];
    if (MEMORY_SESSIONS > 0) {
      const extra = Math.max(0, MEMORY_SESSIONS - ACTIVE_SESSIONS - 2);
      const t = performance.now();
      await createSessions(store, extra, (i) => ({ sub: `idle-${i}` }));
      log(`memory: created ${extra} more sessions in ${((performance.now() - t) / 1000).toFixed(1)} s (${MEMORY_SESSIONS} in Redis)`);
      /** A fresh sidecar driven through `cookies` (each at least three times, at least 3 s): its RSS. */
      const measureFresh = async (label: string, cookies: readonly string[], options: SidecarOptions, inRedis: number) => {
        const requests = cookies.map((c) => verifyRequest('/api/orders/1', { Cookie: `${COOKIE}=${c}` }));
        const fresh = await startSidecar(redis.url, BENCH_KEYS, options);
        try {
          const sent = await driveAll(fresh.port, requests, { times: 3, seconds: 3, connections: CONNECTIONS });
          const m = fresh.memory();
          memory.push({ label, sessions: inRedis, active: cookies.length, rss: m.rss, peak: m.peak });
          log(`memory: ${label}: RSS ${(m.rss / 2 ** 20).toFixed(1)} MiB (peak ${(m.peak / 2 ** 20).toFixed(1)} MiB) after ${sent} requests`);
        } finally {
          await fresh.stop();
        }
      };
      for (const [label, options] of MEMORY_VARIANTS) await measureFresh(label, sessions.many, options, MEMORY_SESSIONS);
      // The same with 10,000 more sessions the size an IdP's are (two ~1.1 KB JWT access tokens,
      // a dozen claims) as the active ones: what a deployment's sessions weigh in the cache.
      const sized = await createSessions(store, ACTIVE_SESSIONS, idpSizedSession);
      const [compose, composeOptions] = MEMORY_VARIANTS[0]!;
      await measureFresh(`${compose}, IdP-sized sessions (${ACTIVE_SESSIONS.toLocaleString('en')} more in Redis)`, sized, composeOptions, MEMORY_SESSIONS + ACTIVE_SESSIONS);
      const m = sidecar.memory();
      memory.push({ label: 'the sidecar that ran every scenario above', sessions: MEMORY_SESSIONS, active: ACTIVE_SESSIONS, rss: m.rss, peak: m.peak });
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

/**
 * INFO stats and INFO commandstats cost commands of their own (connection setup + INFO): measured
 * once, as measure() takes them, and subtracted (the heartbeat running meanwhile not counted).
 */
async function commandOverhead(redis: RedisServer): Promise<number> {
  const a = await redis.commandCount();
  const calls0 = await redis.commandCalls();
  const calls1 = await redis.commandCalls();
  const b = await redis.commandCount();
  return b - a - heartbeatCalls(calls0, calls1);
}

/**
 * The session cache's heartbeat between two INFO commandstats: its PING and PUBLISH calls (every
 * 50 ms, a PUBLISH of a probe to the sidecar itself and a PING; see src/session/cache-freshness.ts). No
 * scenario publishes (nothing is logged out) and no request pings, so these are the heartbeat's
 * alone: counted apart, per second, and left out of the commands per request, which are what a
 * request costs Redis (targets (a)–(d): none).
 */
function heartbeatCalls(before: Record<string, number>, after: Record<string, number>): number {
  let n = 0;
  for (const name of ['ping', 'publish']) n += (after[name] ?? 0) - (before[name] ?? 0);
  return n;
}

/** The heartbeat's commands/s over the sidecar's runs (median, range), for the legend. */
function heartbeatSummary(list: Scenario[], rows: Map<string, Row>): string {
  const all = list.filter((s) => s.server === 'sidecar').flatMap((s) => rows.get(s.key)!.heartbeatPerSec);
  if (all.length === 0) return 'not measured';
  return `${median(all).toFixed(0)} commands/s (${Math.min(...all).toFixed(0)}–${Math.max(...all).toFixed(0)} over the runs), counted apart`;
}

function report(o: {
  list: Scenario[];
  rows: Map<string, Row>;
  halfRate: number;
  fixed: Fixed;
  micro: MicroResult[];
  memory: Memory[];
  seconds: number;
}): string {
  const us = (x: number) => x.toFixed(0);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const lines = [
    `Machine: ${NPROC} cores (\`nproc\`), ${cpu}; Node ${process.version}; \`npm run bench\` ` +
      `(BENCH_SECONDS=${SECONDS}, BENCH_ROUNDS=${ROUNDS}, BENCH_FIXED_ROUNDS=${FIXED_ROUNDS}, ${CONNECTIONS} keep-alive connections; load generator, sidecar, ` +
      `bare servers and redis-server on the same machine${PINNED ? ', the servers pinned to CPU 1, load generator and redis-server to CPU 0 (taskset)' : ''}); ` +
      `whole run ${o.seconds.toFixed(0)} s.`,
    '',
    `Closed loop (each connection sends its next request when the answer arrives), medians of ${ROUNDS} rounds; ` +
      'every scenario runs between two runs of the bare 200 server, and × bare = its req/s ÷ the mean of those two (median of rounds); ' +
      `round-robin scenarios send one whole cycle unmeasured first, then run ${Math.max(SECONDS, DEFAULT_SESSION_CACHE_TTL_MS / 1000 + 1)} s (every session revalidated once, as every 5 s in steady state). Latency in µs. ` +
      'Server CPU µs/req: CPU time (user + system, /proc) the server process spent per answered request; ' +
      '× bare CPU = the bare server\'s µs/req (the same two runs) ÷ this one (the throughput ratio a dedicated core would give). ' +
      'CPU columns: cores used by the server process and by the load generator during the run (1.00 = one core busy). ' +
      'Redis cmds/req: Redis commands (INFO stats) per request, without the session cache\'s heartbeat, which runs while sessions are looked up ' +
      '(a PING and a PUBLISH every 50 ms, from INFO commandstats; no scenario publishes or pings): ' +
      `${heartbeatSummary(o.list, o.rows)}.`,
    '',
    '| scenario | answer | req/s | × bare | p50 µs | p99 µs | p99.9 µs | Redis cmds/req | server CPU µs/req | × bare CPU | server CPU | load gen CPU |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of o.list) {
    const row = o.rows.get(s.key)!;
    const r = row.results;
    lines.push(`| ${s.title} | ${s.expect} | ${median(r.map((x) => x.rps)).toFixed(0)} | ${median(row.ratios).toFixed(2)} | ` +
      `${us(median(r.map((x) => x.p50)))} | ${us(median(r.map((x) => x.p99)))} | ${us(median(r.map((x) => x.p999)))} | ` +
      `${s.server === 'sidecar' ? median(row.redisPerRequest).toFixed(3) : '–'} | ` +
      `${median(row.cpuPerRequest).toFixed(1)} | ${median(row.cpuRatios).toFixed(2)} | ` +
      `${median(row.serverCpu).toFixed(2)} | ${median(row.loaderCpu).toFixed(2)} |`);
  }
  const f = o.fixed;
  const generator = [...f.sidecar, ...f.bare].every((x) => x.generator !== undefined)
    ? 'sent by a C generator (test/bench/fixed-rate.c) spinning on its own core, so that no pause of a JavaScript generator is counted as the server\'s'
    : 'sent by the JavaScript generator (no C compiler here: its own pauses count as the server\'s)';
  lines.push('', `Fixed rate ${o.halfRate} req/s (half the sidecar's (a) maximum; each request's latency counted from the moment it was due; ${generator}), medians of ${FIXED_ROUNDS} rounds:`, '',
    '| server | p50 µs | p99 µs | p99.9 µs | max µs | generator\'s own stalls: floor p99 µs |', '|---|---:|---:|---:|---:|---:|');
  for (const [name, rs] of [['bare node:http, 200', f.bare], ['(a) sidecar, hot path', f.sidecar]] as const) {
    const own = rs.flatMap((x) => (x.generator === undefined ? [] : [x.generator.p99]));
    lines.push(`| ${name} | ${us(median(rs.map((x) => x.p50)))} | ${us(median(rs.map((x) => x.p99)))} | ${us(median(rs.map((x) => x.p999)))} | ${us(median(rs.map((x) => x.max)))} | ${own.length > 0 ? us(median(own)) : '–'} |`);
  }
  const st = f.stalls;
  if (st.length > 0) lines.push(`| the servers' core alone, no server (floor) | 0 | ${us(median(st.map((x) => x.p99)))} | ${us(median(st.map((x) => x.p999)))} | ${us(median(st.map((x) => x.maxMs * 1000)))} | – |`,
    '', `Floor: after each round, a loop that only reads the clock spins on the servers' core for ${SECONDS} s (test/bench/stalls.ts) while the generator's core spins too; ` +
    'every gap between two readings is time the core was taken away (interrupts, other tenants, the hypervisor). A request arriving during a gap waits for the rest of it, ' +
    'so these are the waits a server that took no time at all would give, from the machine alone. ' +
    `Per round: ${st.map((x) => `${(x.lost * 100).toFixed(2)} % of the time lost, ${x.over1ms} gaps of 1 ms or more`).join('; ')}. ` +
    'The generator\'s own stalls are the same measure taken by the generator during each run, on its core: a request due while its generator is stalled is sent late, and that counts.');
  // Per round, side by side: a round whose bare server has a tail of milliseconds was a noisy
  // stretch of the machine, and the sidecar's rounds are read against the quiet ones.
  lines.push('', `Per round (the bare server's run, then the sidecar's, then the floor's, ${SECONDS} s each, one after the other):`, '',
    '| round | bare p99 µs | sidecar p99 µs | sidecar p99.9 µs | the sidecar\'s event loop\'s longest stop, ms | floor p99.9 µs | floor: gaps of 1 ms or more |',
    '|---:|---:|---:|---:|---:|---:|---:|');
  f.sidecar.forEach((r, i) => {
    const floor = st[i];
    lines.push(`| ${i + 1} | ${us(f.bare[i]!.p99)} | ${us(r.p99)} | ${us(r.p999)} | ${f.sidecarLoopStopMaxMs[i]!.toFixed(1)} | ${floor ? us(floor.p999) : '–'} | ${floor ? floor.over1ms : '–'} |`);
  });
  lines.push('', 'The event loop\'s longest stop comes from the sidecar\'s nodejs_eventloop_lag_max_seconds (a 10 ms timer\'s longest interval, less those 10 ms): ' +
    'a wait longer than that happened outside its event loop (the generator, the network, the kernel, the hypervisor).');
  lines.push('', '(g) The PDP alone, in process, one call at a time:', '', '| call | calls/s | p50 µs | p99 µs | p99.9 µs |', '|---|---:|---:|---:|---:|');
  for (const m of o.micro) lines.push(`| ${m.name} | ${m.opsPerSec.toFixed(0)} | ${m.p50.toFixed(1)} | ${m.p99.toFixed(1)} | ${m.p999.toFixed(1)} |`);
  if (o.memory.length > 0) {
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    lines.push('', `Memory, ${o.memory[0]!.sessions.toLocaleString('en')} sessions in Redis, ${o.memory[0]!.active.toLocaleString('en')} of them active ` +
      '(each driven through the sidecar at least three times); resident set size from /proc/<pid>/status:', '',
      '| sidecar process | RSS MiB | peak RSS MiB |', '|---|---:|---:|');
    for (const m of o.memory) lines.push(`| ${m.label} | ${mib(m.rss)} | ${mib(m.peak)} |`);
  }
  return lines.join('\n');
}

/**
 * The longest the sidecar's event loop stopped since the previous scrape of its /metrics, in ms:
 * its nodejs_eventloop_lag_max_seconds is the longest interval of a 10 ms timer (as prom-client
 * reports it, the interval itself included), so a loop that never stopped reads ~10 ms.
 */
async function loopStopMaxMs(port: number): Promise<number> {
  const max = (await scrapeMetrics(port)).value('nodejs_eventloop_lag_max_seconds');
  if (Number.isNaN(max)) throw new Error('the sidecar\'s /metrics has no nodejs_eventloop_lag_max_seconds');
  return Math.max(0, max * 1000 - 10);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
