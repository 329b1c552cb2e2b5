// The benchmark's two small C programs (the stall probe and the fixed-rate generator), compiled
// with the machine's C compiler into test-results/ once per process. C because a JavaScript loop
// measures its own collector and compiler along with what it is meant to measure (see each file).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/process.ts';
import { pin } from './processes.ts';

type Tool = 'stall-probe' | 'fixed-rate';
const built = new Map<Tool, string | undefined>();

/** The binary of test/bench/<name>.c, or undefined when this machine has no C compiler. */
function binary(name: Tool): string | undefined {
  if (built.has(name)) return built.get(name);
  const dir = join(REPO_ROOT, 'test-results');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, name);
  let bin: string | undefined = out;
  try {
    execFileSync('cc', ['-O2', '-o', out, join(REPO_ROOT, `test/bench/${name}.c`)], { stdio: 'ignore' });
  } catch {
    bin = undefined;
  }
  built.set(name, bin);
  return bin;
}

/**
 * Starts tool `name` with `args`, pinned to `cpu` (undefined: wherever the OS puts it); `output`
 * is what it printed (a JSON object), once it exited 0. Undefined without a C compiler.
 */
export function runNative(name: Tool, args: readonly string[], cpu: string | undefined): { output: Promise<unknown> } | undefined {
  const bin = binary(name);
  if (bin === undefined) return undefined;
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  // 'close', not 'exit': the output may still be in the pipe when the process exits.
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  if (cpu !== undefined && !pin(child.pid!, cpu)) {
    child.kill();
    throw new Error(`could not pin ${name} to CPU ${cpu}`);
  }
  return {
    output: exited.then((code) => {
      if (code !== 0) throw new Error(`${name} exited with ${code}`);
      return JSON.parse(out) as unknown;
    }),
  };
}
