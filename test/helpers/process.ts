// Runs a goldpath CLI subcommand as a real child process (under Node or Deno) and waits for it.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export type Runtime = 'node' | 'deno';

export interface Child {
  readonly proc: ChildProcess;
  /** Everything the process printed so far (stdout + stderr). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * `nodeArgs` go before the script (e.g. --cpu-prof), for Node only. `root`: another built checkout
 * to run instead of this one (test/bench/compare.ts). `wrap`: a command that runs it (e.g.
 * valgrind and its flags, test/bench/instructions.ts).
 */
export function runCli(runtime: Runtime, args: string[], env: Record<string, string>, opts: { nodeArgs?: readonly string[]; root?: string; wrap?: readonly string[] } = {}): Child {
  const cmd = runtime === 'node'
    ? ['node', ...(opts.nodeArgs ?? []), 'dist/src/cli.js', ...args]
    // The sidecar under Deno as compose/Dockerfile.deno starts it, with its V8 tuning.
    : ['node_modules/.bin/deno', 'run', '--quiet', ...(args[0] === 'verify' ? [`--v8-flags=${denoImageV8Flags().join(',')}`] : []),
      '--allow-net', '--allow-env', '--allow-read', '--allow-sys', 'src/cli.ts', ...args];
  const [bin, ...argv] = [...(opts.wrap ?? []), ...cmd];
  const proc = spawn(bin!, argv, { cwd: opts.root ?? REPO_ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => { out += d; });
  proc.stderr!.on('data', (d) => { out += d; });
  return {
    proc,
    output: () => out,
    stop: () => new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
    }),
  };
}

/**
 * The V8 flags compose/Dockerfile.deno's command gives Deno (`--v8-flags=a,b,…`), which ignores
 * the ones src/verify/process-tuning.ts sets at run time under Node.
 */
export function denoImageV8Flags(): string[] {
  const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(join(REPO_ROOT, 'compose', 'Dockerfile.deno'), 'utf8'));
  if (!cmd) throw new Error('compose/Dockerfile.deno has no exec-form CMD');
  const flags = (JSON.parse(cmd[1]!) as string[]).find((a) => a.startsWith('--v8-flags='));
  return flags === undefined ? [] : flags.slice('--v8-flags='.length).split(',');
}

/**
 * Waits until the process has a handler for signal number `signo` (Linux: the SigCgt mask in
 * /proc/<pid>/status), so a test sends it no earlier than the code that catches it ran, however
 * slowly a loaded machine starts the process. False if the process ended or `ms` passed.
 */
export async function waitCatches(child: Child, signo: number, ms = 20_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && child.proc.exitCode === null && child.proc.signalCode === null) {
    let status = '';
    try { status = readFileSync(`/proc/${child.proc.pid}/status`, 'utf8'); } catch { /* not yet, or gone */ }
    const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    if (mask !== undefined && (BigInt(`0x${mask}`) >> BigInt(signo - 1)) & 1n) return true;
    await new Promise((r) => setTimeout(r, 2));
  }
  return false;
}

/** Polls url until it answers 200 (or the child dies, or the deadline passes). */
export async function waitHealthy(url: string, child: Child, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.proc.exitCode !== null) throw new Error(`process exited (${child.proc.exitCode}):\n${child.output()}`);
    try {
      const r = await fetch(url);
      if (r.status === 200) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`${url} not healthy in time:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** How the child ended; if it is still running after `ms`, it is stopped and this rejects. */
export async function exitOf(child: Child, ms = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const { proc } = child;
  const ended = () => ({ code: proc.exitCode, signal: proc.signalCode });
  // 'close', not 'exit': by then everything the child printed has been read.
  if (proc.stdout!.closed && proc.stderr!.closed && (proc.exitCode !== null || proc.signalCode !== null)) return ended();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('close', () => resolve(ended()))),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          void child.stop();
          reject(new Error(`still running after ${ms} ms (it should have exited):\n${child.output()}`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a TypeScript file under Deno (node_modules/.bin/deno) with the permissions the sidecars
 * need, and only PATH, HOME and `env` in its environment; resolves with its exit code and output.
 */
export function runDenoScript(script: string, env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn('node_modules/.bin/deno', ['run', '--quiet', '--allow-net', '--allow-env', '--allow-read', '--allow-sys', script], {
      cwd: REPO_ROOT, env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => resolve({ code, out, err }));
  });
}
