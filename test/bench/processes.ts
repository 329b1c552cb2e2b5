// The processes a benchmark run drives: the sidecar (`goldpath verify`, its own process so the load
// generator never shares its event loop) and bare node:http servers (the ceiling).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import process from 'node:process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, RedisServer } from '../helpers/redis.ts';
import { REPO_ROOT, runCli, waitHealthy, type Child } from '../helpers/process.ts';
import { randomBytes } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { loadSettings } from '../../src/config/env.ts';
import { createSessionStore, type KvSessionStore } from '../../src/session/index.ts';
import { silentLogger } from '../../src/log.ts';

export const BENCH_CONFIG_DIR = join(REPO_ROOT, 'test/verify/fixtures/config');
export const PUBLIC_URL = 'https://app.example.test';
/**
 * One session key, as a deployment runs between rotations. (During a rotation every extra key in
 * GOLDPATH_SESSION_KEYS adds one HMAC, ~1.7 µs, to the refusal of a forged cookie.)
 */
export const BENCH_KEYS = [randomBytes(32).toString('base64url')];

export interface Sidecar {
  readonly child: Child;
  readonly port: number;
  readonly env: Record<string, string>;
  /** Resident set size in bytes (VmRSS) and its peak (VmHWM). */
  memory(): { rss: number; peak: number };
  stop(): Promise<void>;
}

export interface SidecarOptions {
  readonly env?: Record<string, string>;
  /** Flags for node itself (e.g. --cpu-prof, which NODE_OPTIONS does not accept). */
  readonly nodeArgs?: readonly string[];
  /** Another built checkout to run instead of this one (compare.ts). */
  readonly root?: string;
  /** Without compose.yaml's node flags and tuning environment (shippedVerify). */
  readonly plain?: boolean;
  /** A command that runs node (valgrind, instructions.ts). */
  readonly wrap?: readonly string[];
  /** How long it may take to become ready. Default 20 s. */
  readonly readyMs?: number;
}

/**
 * How compose/compose.yaml starts the sidecar: the node flags of its command and its process
 * tuning environment (MALLOC_*, UV_*). The benchmark runs the sidecar the way it ships.
 */
export function shippedVerify(root = REPO_ROOT): { nodeArgs: string[]; env: Record<string, string> } {
  const compose = parseYaml(readFileSync(join(root, 'compose/compose.yaml'), 'utf8')) as {
    services: { verify: { command: string[]; environment: Record<string, string> } };
  };
  const { command, environment } = compose.services.verify;
  const cli = command.indexOf('dist/src/cli.js');
  if (command[0] !== 'node' || cli < 0 || command[cli + 1] !== 'verify') throw new Error(`compose.yaml: unexpected verify command ${JSON.stringify(command)}`);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(environment)) if (/^(MALLOC|UV)_/.test(k)) env[k] = String(v);
  return { nodeArgs: command.slice(1, cli), env };
}

export async function startSidecar(redisUrl: string, sessionKeys: string[], opts: SidecarOptions = {}): Promise<Sidecar> {
  const port = await freePort();
  const shipped = opts.plain ? { nodeArgs: [], env: {} } : shippedVerify(opts.root);
  const env = {
    GOLDPATH_CONFIG_DIR: BENCH_CONFIG_DIR, REDIS_URL: redisUrl, GOLDPATH_PUBLIC_URL: PUBLIC_URL,
    GOLDPATH_SESSION_KEYS: sessionKeys.join(','), TEST_CLIENT_SECRET: 'bench-secret',
    PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...shipped.env, ...opts.env,
  };
  const child = runCli('node', ['verify'], env, { nodeArgs: [...shipped.nodeArgs, ...(opts.nodeArgs ?? [])], root: opts.root, wrap: opts.wrap });
  await waitHealthy(`http://127.0.0.1:${port}/readyz`, child, opts.readyMs ?? 20_000);
  return {
    child, port, env,
    memory: () => procMemory(child.proc.pid!),
    stop: () => child.stop(),
  };
}

/** The sidecar's 401 body for a request without a session: what the bare 401 server writes. */
export async function loginRequiredBody(sidecar: Sidecar): Promise<string> {
  const probe = await fetch(`http://127.0.0.1:${sidecar.port}/auth/verify`, {
    headers: { 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/api/orders/1' },
  });
  const body = await probe.text();
  if (probe.status !== 401) throw new Error(`probe: expected 401, got ${probe.status} ${body}`);
  return body;
}

/** A sidecar's /metrics, read once: `value` gives an unlabelled sample (NaN when absent). */
export async function scrapeMetrics(port: number): Promise<{ text: string; value(name: string): number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return { text, value: (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) };
}

/** Pins a process (all its threads) to the given CPUs with taskset; returns whether it did. */
export function pin(pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-acp', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The benchmarks' layout: this process (the load generator) and redis-server on CPU 0, the servers
 * under test on CPU 1, so each server gets the same dedicated core. False, pinning nothing more,
 * on a machine with fewer than two CPUs or without taskset.
 */
export function pinBench(redisPid: number, serverPids: readonly number[]): boolean {
  return cpus().length >= 2 && pin(process.pid, '0') && pin(redisPid, '0') && serverPids.every((p) => pin(p, '1'));
}

/** CPU time (user + system) a process has used so far, in seconds (/proc/<pid>/stat). */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5); here indexes 11 and 12 (after pid and comm).
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) on Linux

export function procMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

export interface Bare {
  readonly port: number;
  readonly pid: number;
  /** Everything the process printed on stdout so far (gc.ts reads --trace-gc-nvp from it). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * A bare node:http server process: 'ok' answers 200 empty; 'json' answers `status` with `body`.
 * `wrap`: a command that runs node (valgrind, instructions.ts); `nodeArgs`: flags for node itself.
 */
export async function startBare(mode: 'ok' | 'json', status = 401, body = '', o: { wrap?: readonly string[]; nodeArgs?: readonly string[] } = {}): Promise<Bare> {
  const [bin, ...argv] = [...(o.wrap ?? []), 'node', ...(o.nodeArgs ?? []), join(REPO_ROOT, 'dist/test/bench/bare-server.js'), mode];
  const proc: ChildProcess = spawn(bin!, argv, {
    env: { PATH: process.env.PATH ?? '', BARE_STATUS: String(status), BARE_BODY: body },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d;
      // Its first line of JSON (node's own tracing may print before it).
      const line = /^\{"port":\d+\}$/m.exec(out);
      if (line) resolve((JSON.parse(line[0]) as { port: number }).port);
    });
    proc.once('exit', (code) => reject(new Error(`bare server exited with ${code}`)));
  });
  return {
    port,
    pid: proc.pid!,
    output: () => out,
    stop: () => new Promise<void>((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    }),
  };
}

export interface Harness {
  readonly redis: RedisServer;
  readonly store: KvSessionStore;
  readonly sidecar: Sidecar;
  close(): Promise<void>;
}

/** redis-server, a store with the bench keys (for creating sessions) and one sidecar process. */
export async function startHarness(sidecar: SidecarOptions = {}): Promise<Harness> {
  const redis = await RedisServer.start();
  const settings = loadSettings({
    GOLDPATH_CONFIG_DIR: BENCH_CONFIG_DIR, REDIS_URL: redis.url, GOLDPATH_PUBLIC_URL: PUBLIC_URL,
    GOLDPATH_SESSION_KEYS: BENCH_KEYS.join(','),
  });
  // The fixture's store (the BFF's part: it writes the sessions), not the one under test: thousands
  // of creates in flight on a loaded machine outlast the production 500 ms command timeout.
  const store = createSessionStore({ url: redis.url, settings, log: silentLogger, commandTimeoutMs: 5_000 });
  let sc: Sidecar;
  try {
    sc = await startSidecar(redis.url, BENCH_KEYS, sidecar);
  } catch (err) {
    await store.close();
    await redis.stop();
    throw err;
  }
  return {
    redis, store, sidecar: sc,
    async close() {
      await sc.stop();
      await store.close();
      await redis.stop();
    },
  };
}
