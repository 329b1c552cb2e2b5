// A real dev IdP (oidc-provider) whose clock is off by `offsetMs` from this process's: it runs in a
// child process with test/helpers/shifted-clock.ts preloaded, so every time it reads (token iat
// and exp, code and DPoP proof checks, cookies) is shifted, and nothing in the test's process is.
//
//   const idp = await startShiftedDevIdp(-120_000, { clients: [...], port: 0 });   // 2 min behind
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DevIdpOptions } from '../../src/dev/idp.ts';

export interface ShiftedDevIdp {
  readonly issuer: string;
  readonly url: string;
  /** How far its clock is off now (ms, negative: behind). */
  readonly offsetMs: number;
  /** Moves its clock to `offsetMs` from the test's (resolves once the IdP reads it so). */
  setOffset(offsetMs: number): Promise<void>;
  /** What the child printed on stderr (its failures). */
  output(): string;
  close(): Promise<void>;
}

/** Only the options that travel as JSON (no functions: configure, extraClaims, log). */
export type ShiftedDevIdpOptions = Omit<DevIdpOptions, 'log' | 'configure' | 'extraClaims'>;

const PRELOAD = new URL('./shifted-clock.js', import.meta.url).href;
const CHILD = fileURLToPath(new URL('./shifted-idp-child.js', import.meta.url));

export function startShiftedDevIdp(offsetMs: number, opts: ShiftedDevIdpOptions): Promise<ShiftedDevIdp> {
  const proc = spawn(process.execPath, ['--import', PRELOAD, CHILD], {
    env: { PATH: process.env['PATH'] ?? '', GOLDPATH_TEST_CLOCK_OFFSET_MS: String(offsetMs), GOLDPATH_TEST_IDP_OPTIONS: JSON.stringify(opts) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d) => { err += d; });
  const close = () => new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
    setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { void close(); reject(new Error(`the shifted dev IdP did not start in 20 s:\n${err}`)); }, 20_000);
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the shifted dev IdP exited (${code}):\n${err}`)); });
    let started = false;
    let offsetSet: (() => void) | undefined;
    proc.stdout!.on('data', (d) => {
      out += d;
      for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (started) {
          if (line.startsWith('offset ')) offsetSet?.();
          continue;
        }
        started = true;
        clearTimeout(timer);
        proc.removeAllListeners('exit');
        const { issuer, url } = JSON.parse(line) as { issuer: string; url: string };
        let current = offsetMs;
        resolve({
          issuer, url, output: () => err, close,
          get offsetMs() { return current; },
          setOffset: (ms) => new Promise<void>((done) => {
            offsetSet = () => { current = ms; offsetSet = undefined; done(); };
            proc.stdin!.write(`${ms}\n`);
          }),
        });
      }
    });
  });
}
