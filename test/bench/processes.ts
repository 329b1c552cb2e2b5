// The processes a benchmark run drives: the sidecar (`goldpath verify`, its own process so the load
// generator never shares its event loop) and bare node:http servers (the ceiling).
import { spawn, type ChildProcess } from 'node:child_process';
import process from 'node:process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../helpers/redis.ts';
import { REPO_ROOT, runCli, waitHealthy, type Child } from '../helpers/process.ts';

export const BENCH_CONFIG_DIR = join(REPO_ROOT, 'test/verify/fixtures/config');
export const PUBLIC_URL = 'https://app.example.test';

export interface Sidecar {
  readonly child: Child;
  readonly port: number;
  readonly env: Record<string, string>;
  /** Resident set size in bytes (VmRSS) and its peak (VmHWM). */
  memory(): { rss: number; peak: number };
  stop(): Promise<void>;
}

export async function startSidecar(redisUrl: string, sessionKeys: string[], extraEnv: Record<string, string> = {}): Promise<Sidecar> {
  const port = await freePort();
  const env = {
    GOLDPATH_CONFIG_DIR: BENCH_CONFIG_DIR, REDIS_URL: redisUrl, GOLDPATH_PUBLIC_URL: PUBLIC_URL,
    GOLDPATH_SESSION_KEYS: sessionKeys.join(','), TEST_CLIENT_SECRET: 'bench-secret',
    PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...extraEnv,
  };
  const child = runCli('node', ['verify'], env);
  await waitHealthy(`http://127.0.0.1:${port}/readyz`, child, 20_000);
  return {
    child, port, env,
    memory: () => procMemory(child.proc.pid!),
    stop: () => child.stop(),
  };
}

export function procMemory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

export interface Bare {
  readonly port: number;
  stop(): Promise<void>;
}

/** A bare node:http server process: 'ok' answers 200 empty; 'json' answers `status` with `body`. */
export async function startBare(mode: 'ok' | 'json', status = 401, body = ''): Promise<Bare> {
  const proc: ChildProcess = spawn('node', [join(REPO_ROOT, 'dist/test/bench/bare-server.js'), mode], {
    env: { PATH: process.env.PATH ?? '', BARE_STATUS: String(status), BARE_BODY: body },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve((JSON.parse(out.slice(0, nl)) as { port: number }).port);
    });
    proc.once('exit', (code) => reject(new Error(`bare server exited with ${code}`)));
  });
  return {
    port,
    stop: () => new Promise<void>((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    }),
  };
}
