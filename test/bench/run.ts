// `npm run bench`: /auth/verify against a bare node:http server, in the same run, on this machine.
//
// One redis-server, one sidecar process (`goldpath verify`), two bare servers (200, and the same 401
// JSON the sidecar writes), all driven by one load generator (this process; nothing else runs here
// while load is on). Rounds interleave every scenario with the bare server so drift (thermal, noisy
// neighbours) hits both alike; we report medians over rounds, and ratios to the bare server taken
// within each round.
//
// Env: BENCH_SECONDS (per run, default 3), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 32),
// BENCH_MEMORY_SESSIONS (default 100000; 0 skips the memory step), BENCH_SIDECAR_NODE_OPTIONS
// (e.g. "--cpu-prof --cpu-prof-dir=test-results/prof" to profile the sidecar).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { execFileSync } from 'node:child_process';
import { RedisServer } from '../helpers/redis.ts';
import { REPO_ROOT } from '../helpers/process.ts';
import { newSession, TEST_KEYS } from '../helpers/sessions.ts';
import { loadSettings } from '../../src/config/env.ts';
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { silentLogger } from '../../src/log.ts';
import { runLoad, verifyRequest, type LoadResult } from './load.ts';
import { startBare, startSidecar, PUBLIC_URL, BENCH_CONFIG_DIR, type Sidecar } from './processes.ts';
import { pdpMicro, type MicroResult } from './pdp-micro.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const MEMORY_SESSIONS = Number(process.env.BENCH_MEMORY_SESSIONS ?? 100_000);
const ACTIVE_SESSIONS = 10_000;
const COOKIE = '__Host-goldpath';

interface Scenario {
  readonly key: string;
  readonly title: string;
  /** What the sidecar must answer. */
  readonly expect: number;
  /** The bare server this scenario's ratio is against. */
  readonly target: 'ok' | 'json';
  readonly port: () => number;
  readonly request: (i: number) => Buffer;
  /** Whether Redis commands are expected (the figure is printed either way). */
  readonly redis: boolean;
}

interface Row {
  readonly results: LoadResult[];
  readonly ratios: number[];
  readonly redisPerRequest: number[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const log = (s: string) => process.stderr.write(s + '\n');

async function createSessions(store: KvSessionStore, n: number, make: (i: number) => Parameters<typeof newSession>[0]): Promise<string[]> {
  const cookies = new Array<string>(n);
  let next = 0;
  // 256 creates in flight: ioredis writes them back to back, Redis answers them in batches.
  await Promise.all(Array.from({ length: Math.min(256, n) }, async () => {
    while (next < n) {
      const i = next++;
      cookies[i] = (await store.create(newSession(make(i)))).cookieValue;
    }
  }));
  return cookies;
}

async function main(): Promise<void> {
  const started = Date.now();
  const redis = await RedisServer.start();
  const env = {
    GOLDPATH_CONFIG_DIR: BENCH_CONFIG_DIR, REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: PUBLIC_URL,
    GOLDPATH_SESSION_KEYS: TEST_KEYS.join(','), TEST_CLIENT_SECRET: 'bench-secret',
  };
  const store = createSessionStore({ url: redis.url, settings: loadSettings(env), log: silentLogger });
  const nodeOptions = process.env.BENCH_SIDECAR_NODE_OPTIONS;
  const sidecar: Sidecar = await startSidecar(redis.url, TEST_KEYS, nodeOptions ? { NODE_OPTIONS: nodeOptions } : {});
  const bareOk = await startBare('ok');
  let bareJson: Awaited<ReturnType<typeof startBare>> | undefined;
  try {
    // Sessions, through the store API with the sidecar's keys.
    const reader = (await store.create(newSession({ sub: 'bench-reader', roles: ['reader'] }))).cookieValue;
    const nobody = (await store.create(newSession({ sub: 'bench-nobody', roles: [] }))).cookieValue;
    log(`creating ${ACTIVE_SESSIONS} sessions...`);
    const many = await createSessions(store, ACTIVE_SESSIONS, (i) => ({ sub: `active-${i}`, roles: ['reader'] }));
    // Well-formed (right length and alphabet) but not MAC'd by our keys.
    const forged = reader.slice(0, 43) + '.' + 'A'.repeat(21) + 'Q';

    // The bare 401 server writes exactly the sidecar's 401 body.
    const probe = await fetch(`http://127.0.0.1:${sidecar.port}/auth/verify`, {
      headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/api/orders/1' },
    });
    const body401 = await probe.text();
    if (probe.status !== 401) throw new Error(`probe: expected 401, got ${probe.status} ${body401}`);
    bareJson = await startBare('json', 401, body401);

    const sc = () => sidecar.port;
    const hot = verifyRequest('/api/orders/1', { Cookie: `theme=dark; ${COOKIE}=${reader}; lang=en` });
    const scenarios: Scenario[] = [
      { key: 'bare200', title: 'bare node:http, 200', expect: 200, target: 'ok', port: () => bareOk.port, request: () => hot, redis: false },
      { key: 'a', title: '(a) allowed, valid session (hot path)', expect: 200, target: 'ok', port: sc, request: () => hot, redis: false },
      { key: 'bare401', title: 'bare node:http, same 401 JSON', expect: 401, target: 'ok', port: () => bareJson!.port, request: () => hot, redis: false },
      {
        key: 'b', title: '(b) no cookie, session route', expect: 401, target: 'ok', port: sc, redis: false,
        request: () => NO_COOKIE,
      },
      {
        key: 'c', title: '(c) forged, well-formed cookie', expect: 401, target: 'ok', port: sc, redis: false,
        request: () => FORGED,
      },
      {
        key: 'd', title: '(d) policy deny', expect: 403, target: 'ok', port: sc, redis: false,
        request: () => DENY,
      },
      {
        key: 'e', title: `(e) ${ACTIVE_SESSIONS.toLocaleString('en')} sessions, round robin`, expect: 200, target: 'ok', port: sc, redis: true,
        request: (i) => MANY[i % MANY.length]!,
      },
      {
        key: 'f', title: '(f) 1,000 resource ids, round robin', expect: 200, target: 'ok', port: sc, redis: false,
        request: (i) => IDS[i % IDS.length]!,
      },
      {
        key: 'f2', title: '(f′) new resource id every request (decision-cache miss)', expect: 200, target: 'ok', port: sc, redis: false,
        request: (i) => verifyRequest(`/api/orders/u${i}-${RUN}`, { Cookie: `${COOKIE}=${reader}` }),
      },
    ];
    const NO_COOKIE = verifyRequest('/api/orders/1', { Cookie: 'theme=dark; lang=en' });
    const FORGED = verifyRequest('/api/orders/1', { Cookie: `theme=dark; ${COOKIE}=${forged}` });
    const DENY = verifyRequest('/api/orders/1', { Cookie: `${COOKIE}=${nobody}` });
    const MANY = many.map((c) => verifyRequest('/api/orders/1', { Cookie: `${COOKIE}=${c}` }));
    const IDS = Array.from({ length: 1000 }, (_, i) => verifyRequest(`/api/orders/${i}`, { Cookie: `${COOKIE}=${reader}` }));
    let RUN = 0;

    const rows = new Map<string, Row>(scenarios.map((s) => [s.key, { results: [], ratios: [], redisPerRequest: [] }]));
    const redisBase = await commandOverhead(redis);
    for (let round = 1; round <= ROUNDS; round++) {
      const bare: Record<string, number> = {};
      for (const s of scenarios) {
        RUN++;
        const before = await redis.commandCount();
        const r = await runLoad({ port: s.port(), request: s.request, seconds: SECONDS, connections: CONNECTIONS });
        const cmds = (await redis.commandCount()) - before - redisBase;
        const wrong = Object.entries(r.statuses).filter(([code]) => Number(code) !== s.expect);
        if (wrong.length > 0 || r.errors > 0) throw new Error(`${s.title}: unexpected answers ${JSON.stringify(r.statuses)}, errors ${r.errors}`);
        if (s.key === 'bare200') bare.ok = r.rps;
        const row = rows.get(s.key)!;
        row.results.push(r);
        row.ratios.push(r.rps / bare.ok!);
        // Warm-up requests reached Redis too: divide by everything sent.
        row.redisPerRequest.push(cmds / r.sent);
        log(`round ${round}  ${s.title.padEnd(58)} ${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50.toFixed(0)} µs  p99 ${r.p99.toFixed(0)} µs  redis/req ${(cmds / r.sent).toFixed(3)}`);
      }
    }

    // (a) at a fixed rate of half the sidecar's maximum: the latency a sidecar with headroom gives.
    const halfRate = Math.round(median(rows.get('a')!.results.map((r) => r.rps)) / 2);
    const fixed: { sidecar: LoadResult[]; bare: LoadResult[] } = { sidecar: [], bare: [] };
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, port] of [['bare', bareOk.port], ['sidecar', sidecar.port]] as const) {
        const r = await runLoad({ port, request: () => hot, seconds: SECONDS, connections: CONNECTIONS, rate: halfRate });
        fixed[name].push(r);
        log(`round ${round}  (a) at ${halfRate} req/s, ${name.padEnd(8)} p50 ${r.p50.toFixed(0)} µs  p99 ${r.p99.toFixed(0)} µs  p99.9 ${r.p999.toFixed(0)} µs`);
      }
    }

    log('(g) PDP micro-benchmark...');
    const micro = await pdpMicro(Math.max(1, Math.min(3, SECONDS)));

    let memory: { sessions: number; active: number; rss: number; peak: number; seconds: number } | undefined;
    if (MEMORY_SESSIONS > 0) {
      const t = Date.now();
      const extra = Math.max(0, MEMORY_SESSIONS - ACTIVE_SESSIONS - 2);
      log(`memory: creating ${extra} more sessions (${MEMORY_SESSIONS} in Redis)...`);
      await createSessions(store, extra, (i) => ({ sub: `idle-${i}` }));
      // Every one of the 10,000 active sessions through the sidecar again, 32 at a time.
      await runLoad({ port: sidecar.port, request: (i) => MANY[i % MANY.length]!, seconds: 2, connections: CONNECTIONS, warmupSeconds: 0 });
      const m = sidecar.memory();
      memory = { sessions: MEMORY_SESSIONS, active: ACTIVE_SESSIONS, rss: m.rss, peak: m.peak, seconds: (Date.now() - t) / 1000 };
      log(`memory: sidecar RSS ${(m.rss / 2 ** 20).toFixed(1)} MiB (peak ${(m.peak / 2 ** 20).toFixed(1)} MiB)`);
    }

    const md = report({ scenarios, rows, halfRate, fixed, micro, memory, seconds: (Date.now() - started) / 1000 });
    process.stdout.write('\n' + md + '\n');
    const out = join(REPO_ROOT, 'test-results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'bench.md'), md + '\n');
    log(`written to test-results/bench.md`);
  } finally {
    await sidecar.stop();
    await bareOk.stop();
    await bareJson?.stop();
    await store.close();
    await redis.stop();
  }
}

/** INFO stats costs commands of its own (connection setup + INFO): measured once, subtracted. */
async function commandOverhead(redis: RedisServer): Promise<number> {
  const a = await redis.commandCount();
  const b = await redis.commandCount();
  return b - a;
}

function report(o: {
  scenarios: Scenario[];
  rows: Map<string, Row>;
  halfRate: number;
  fixed: { sidecar: LoadResult[]; bare: LoadResult[] };
  micro: MicroResult[];
  memory: { sessions: number; active: number; rss: number; peak: number; seconds: number } | undefined;
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
      'ratio = scenario ÷ bare 200 server in the same round (median of rounds). Latency in µs.',
    '',
    '| scenario | answer | req/s | × bare | p50 µs | p99 µs | p99.9 µs | Redis cmds/req |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of o.scenarios) {
    const row = o.rows.get(s.key)!;
    const r = row.results;
    lines.push(`| ${s.title} | ${s.expect} | ${median(r.map((x) => x.rps)).toFixed(0)} | ${median(row.ratios).toFixed(2)} | ` +
      `${us(median(r.map((x) => x.p50)))} | ${us(median(r.map((x) => x.p99)))} | ${us(median(r.map((x) => x.p999)))} | ` +
      `${s.key.startsWith('bare') ? '–' : median(row.redisPerRequest).toFixed(3)} |`);
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
