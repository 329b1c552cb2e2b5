// `node dist/test/bench/instructions.js [warm-s] [window-s] [scenario,...]`: instructions per
// request, the figure this shared machine cannot blur. Requests per second move by ±30 % between
// runs here (other tenants); the instructions a process executes per request do not. Each server
// runs under valgrind's callgrind (every instruction of every thread in user space, JIT code
// included): a scenario is driven for `warm` seconds, then counted in windows until the count
// settles (count()). What it cannot see: the kernel's side of each request (one read and one
// writev per request for every server here, ~12 µs of the sidecar's ~20 on this machine), so its
// ratios are those of the work a server itself does.
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
  readonly perRequest: number;
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
  const drive = async (seconds: number) => {
    const r = await runLoad({ port: server.port, request: s.request, seconds, connections: CONNECTIONS, warmupSeconds: 0 });
    expectAnswers(r, s.expect, s.title);
    return r.sent;
  };
  await drive(WARM);
  let last: Counted | undefined;
  for (let window = 1; window <= MAX_WINDOWS; window++) {
    // Awake before counting: a dump takes seconds under valgrind, long enough for the session
    // cache's heartbeat to pause (5 s without a lookup), and the first requests after a pause
    // read Redis until a probe is back. Not checked: under valgrind a few of those reads pass
    // their 800 ms deadline (503).
    await runLoad({ port: server.port, request: s.request, seconds: 1, connections: CONNECTIONS, warmupSeconds: 0 });
    control(server, '--zero');
    const requests = await drive(SECONDS);
    const c = { key: s.key, title: s.title, requests, perRequest: (await dump(server)) / requests };
    process.stderr.write(`${s.key} window ${window}: ${requests} requests, ${(c.perRequest / 1000).toFixed(1)} k instructions each\n`);
    if (last !== undefined && Math.abs(c.perRequest - last.perRequest) <= 0.02 * last.perRequest) return c;
    last = c;
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
  const rows = counted.map((c) => {
    const base = c.key === 'bare401' || c.key === 'b' || c.key === 'c' ? per('bare401') : per('bare200');
    const ratio = (b: number) => (Number.isNaN(b) ? '–' : (b / c.perRequest).toFixed(2)); // its bare server not counted this time
    return `| ${c.title} | ${c.requests} | ${(c.perRequest / 1000).toFixed(1)} | ${ratio(per('bare200'))} | ${ratio(base)} |`;
  });
  process.stdout.write(`\nInstructions per request in user space (callgrind; ${WARM} s warm-up, then ${SECONDS} s windows until two agree within 2 %, ${CONNECTIONS} connections; the last window's figures):\n\n` +
    '| scenario | requests counted | k instructions / request | × bare 200 | × bare, same answer |\n|---|---:|---:|---:|---:|\n' +
    rows.join('\n') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`instructions failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
