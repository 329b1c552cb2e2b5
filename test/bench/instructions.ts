// `node dist/test/bench/instructions.js [warm-s] [window-s] [scenario,...]`: instructions per
// request, the figure this shared machine cannot blur. Requests per second move by ±30 % between
// runs here (other tenants); the instructions a process executes per request do not. Each server
// runs under valgrind's callgrind (every instruction of every thread in user space, JIT code
// included): a scenario is driven for `warm` seconds, then counted in windows until the count
// settles (count()). What it cannot see: the kernel's side of each request (one read and one
// writev per request for every server here, ~12 µs of the sidecar's ~20 on this machine), so its
// ratios are those of the work a server itself does.
//
// A server also does work by the second, whatever its load: the sidecar's session-cache heartbeat
// (a PING and a PUBLISH every 50 ms while sessions are looked up), its event-loop lag timer.
// Spread over requests, that part grows as valgrind lets fewer through (a busier machine, a
// slower one), so a per-request count alone moved with the machine after all. Each scenario is
// therefore also counted at half its rate, and the two windows split into instructions per
// request (the slope) and per second (the rest); the slope is the figure to compare.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { REPO_ROOT } from '../helpers/process.ts';
import { expectAnswers, runLoad } from './load.ts';
import { loginRequiredBody, startBare, startHarness } from './processes.ts';
import { createBenchSessions, scenarios, type Scenario } from './scenarios.ts';

const WARM = Number(process.argv[2] ?? 10);
const SECONDS = Number(process.argv[3] ?? 6);
const MAX_WINDOWS = 10;
/** Fewer connections than the closed-loop bench: under valgrind a server answers ~1–2k req/s. */
const CONNECTIONS = 8;
/** The scenarios counted (a third argument, comma-separated, picks some). */
const KEYS = process.argv[4]?.split(',') ?? ['bare200', 'a', 'bare401', 'b', 'c', 'd'];
const dir = join(REPO_ROOT, 'test-results', 'callgrind');

interface Counted {
  readonly key: string;
  readonly title: string;
  readonly requests: number;
  /** All the window's instructions over its requests: the by-the-second work included. */
  readonly perRequest: number;
  /** The slope between the full-rate and the half-rate windows: what one more request costs. */
  readonly marginal: number;
  /** The by-the-second part: what the window's instructions hold beyond marginal × requests. */
  readonly perSecond: number;
}

interface Server {
  readonly port: number;
  readonly pid: number;
  /**
   * The server's HOST variable: valgrind names the pipes callgrind_control talks through after
   * the host, which it reads from HOST (the sidecar's listen address), so the controller needs it too.
   */
  readonly host: string | undefined;
}

/**
 * Instructions per request for `s` driven through `server`: counted over windows of SECONDS (zero
 * the counters, drive, dump) until two windows in a row agree within 2 %. Under valgrind V8 takes
 * some 20–30 s of load to finish tiering up; the counts then repeat to ±0.5 % between runs. A
 * zeroing, like a dump, takes effect when the process next runs: between windows it is idle, so
 * at the window's first request.
 */
async function count(s: Scenario, server: Server): Promise<Counted> {
  const drive = async (seconds: number, rate?: number) => {
    const r = await runLoad({ port: server.port, request: s.request, seconds, connections: CONNECTIONS, warmupSeconds: 0, rate });
    expectAnswers(r, s.expect, s.title);
    return r.sent;
  };
  /** One counted window: its requests and instructions. */
  const counted = async (rate?: number) => {
    // Awake before counting: a dump takes seconds under valgrind, long enough for the session
    // cache's heartbeat to pause (5 s without a lookup), and the first requests after a pause
    // read Redis until a probe is back. Not checked: under valgrind a few of those reads pass
    // their 800 ms deadline (503).
    await runLoad({ port: server.port, request: s.request, seconds: 1, connections: CONNECTIONS, warmupSeconds: 0, rate });
    control(server, '--zero');
    const requests = await drive(SECONDS, rate);
    return { requests, instructions: await dump(server) };
  };
  await drive(WARM);
  let last: { requests: number; instructions: number } | undefined;
  for (let window = 1; window <= MAX_WINDOWS; window++) {
    const full = await counted();
    const perRequest = full.instructions / full.requests;
    process.stderr.write(`${s.key} window ${window}: ${full.requests} requests, ${(perRequest / 1000).toFixed(1)} k instructions each\n`);
    if (last !== undefined && Math.abs(perRequest - last.instructions / last.requests) <= 0.02 * (last.instructions / last.requests)) {
      const half = await counted(full.requests / SECONDS / 2);
      const marginal = (full.instructions - half.instructions) / (full.requests - half.requests);
      const perSecond = (full.instructions - marginal * full.requests) / SECONDS;
      process.stderr.write(`${s.key} at half rate: ${half.requests} requests; ${(marginal / 1000).toFixed(1)} k instructions a request and ${(perSecond / 1e6).toFixed(1)} M a second\n`);
      return { key: s.key, title: s.title, requests: full.requests, perRequest, marginal, perSecond };
    }
    last = full;
  }
  throw new Error(`${s.title}: instruction counts still moving after ${MAX_WINDOWS} windows`);
}

function control(server: Server, command: string): void {
  const env: Record<string, string | undefined> = { ...process.env, HOST: server.host };
  if (server.host === undefined) delete env['HOST'];
  execFileSync('callgrind_control', [command, String(server.pid)], { stdio: 'ignore', env });
}

/**
 * Asks callgrind for a dump and returns its instruction count. callgrind_control only delivers
 * the request: the process writes the dump (cg.<pid>.<n>, numbered from 1) when it next runs, so
 * the file is awaited.
 */
async function dump(server: Server): Promise<number> {
  const { pid } = server;
  const dumps = () => readdirSync(dir).filter((f) => f.startsWith(`cg.${pid}.`));
  const before = dumps().length;
  control(server, '--dump');
  const name = `cg.${pid}.${before + 1}`;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
    if (!dumps().includes(name)) continue;
    const total = /^totals: (\d+)/m.exec(readFileSync(join(dir, name), 'utf8'))?.[1];
    if (total !== undefined) return Number(total);
  }
  throw new Error(`no callgrind dump ${name} within 60 s`);
}

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const wrap = ['valgrind', '--tool=callgrind', `--callgrind-out-file=${join(dir, 'cg.%p')}`, `--log-file=${join(dir, 'valgrind.%p.log')}`];
  const h = await startHarness({ wrap, readyMs: 180_000 });
  const counted: Counted[] = [];
  try {
    const list = scenarios(await createBenchSessions(h.store));
    const body401 = await loginRequiredBody(h.sidecar);
    const bare200 = await startBare('ok', 200, '', { wrap });
    const bare401 = await startBare('json', 401, body401, { wrap });
    const servers: Record<Scenario['server'], Server> = {
      bare200: { ...bare200, host: undefined }, bare401: { ...bare401, host: undefined },
      sidecar: { port: h.sidecar.port, pid: h.sidecar.child.proc.pid!, host: h.sidecar.env['HOST'] },
    };
    try {
      for (const key of KEYS) {
        const s = list.find((x) => x.key === key)!;
        const c = await count(s, servers[s.server]);
        counted.push(c);
        process.stderr.write(`${s.title.padEnd(40)} ${c.requests} requests, ${(c.perRequest / 1000).toFixed(1)} k instructions each\n`);
      }
    } finally {
      await Promise.all([bare200.stop(), bare401.stop()]);
    }
  } finally {
    await h.close();
  }
  const per = (k: string) => counted.find((c) => c.key === k)?.perRequest ?? NaN;
  const slope = (k: string) => counted.find((c) => c.key === k)?.marginal ?? NaN;
  const ratio = (b: number, x: number) => (Number.isNaN(b) ? '–' : (b / x).toFixed(2)); // its bare server not counted this time
  const rows = counted.map((c) => {
    const base = c.key === 'bare401' || c.key === 'b' || c.key === 'c' ? 'bare401' : 'bare200';
    return `| ${c.title} | ${c.requests} | ${(c.perRequest / 1000).toFixed(1)} | ${ratio(per('bare200'), c.perRequest)} | ${ratio(per(base), c.perRequest)} | ` +
      `${(c.marginal / 1000).toFixed(1)} | ${ratio(slope(base), c.marginal)} | ${(c.perSecond / 1e6).toFixed(1)} |`;
  });
  process.stdout.write(`\nInstructions per request in user space (callgrind; ${WARM} s warm-up, then ${SECONDS} s windows until two agree within 2 %, ${CONNECTIONS} connections; the last window's figures). ` +
    'Then one window at half that rate: "a request" is the slope between the two (what one more request costs), "a second" the work the server does by the second whatever its load (the heartbeat, timers):\n\n' +
    '| scenario | requests counted | k instructions / request | × bare 200 | × bare, same answer | k a request | × bare, same answer | M a second |\n|---|---:|---:|---:|---:|---:|---:|---:|\n' +
    rows.join('\n') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`instructions failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
