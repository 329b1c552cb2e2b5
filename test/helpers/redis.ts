// Spawns a real redis-server on a random free port for tests that need to kill, stall or
// restart it. In CI (CI=true) a missing redis-server is a failure, never a skip.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import type { TestPki } from './idp-tls.ts';

/**
 * A client for a test's own commands (assertions, faults) that hears its connection errors: its
 * commands reject on their own, and a server killed or stopped under it would otherwise have
 * ioredis print "[ioredis] Unhandled error event" on stderr at each of its reconnections.
 */
export function adminClient(where: string | RedisOptions): Redis {
  const c = typeof where === 'string' ? new Redis(where) : new Redis(where);
  c.on('error', () => {});
  return c;
}

export async function freePort(): Promise<number> {
  // Below Linux's ephemeral range (32768–60999): a port the kernel picked for listen(0) here was
  // free to be picked again, before the test used it, by any process listening on port 0 (the
  // demo's own BFF and sidecar took its page's port once: "address in use", a red CI run).
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
  return listenOn(0);
}

/** Whether something could listen on 127.0.0.1:`port` now. */
export async function canListen(port: number): Promise<boolean> {
  return listenOn(port).then(() => true, () => false);
}

/** Listens on 127.0.0.1:`port` and closes again; the port it had. */
function listenOn(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      const { port: got } = srv.address() as { port: number };
      srv.close(() => resolve(got));
    });
  });
}

/** A port on 127.0.0.1 that something listens on (a taken port), until close(). */
export async function takenPort(): Promise<{ port: number; close(): Promise<void> }> {
  const port = await freePort();
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
  return { port, close: () => new Promise((resolve) => blocker.close(() => resolve())) };
}

/**
 * A taken port held for the enclosing mocha suite (its before and after hooks): read its number
 * from the returned function once the suite runs.
 */
export function heldPort(): () => number {
  let held: Awaited<ReturnType<typeof takenPort>> | undefined;
  before(async function () {
    held = await takenPort();
  });
  after(async function () {
    await held?.close();
  });
  return () => held!.port;
}

/**
 * The test nodes (servers and sentinels) that speak only TLS, by port, with the options that
 * trust their CA. The helpers' admin connections (withNode, probes) are made from a port alone,
 * all over the tests: they look it up here, through nodeOptions().
 */
const tlsNodes = new Map<number, ConnectionOptions>();

/**
 * Marks 127.0.0.1:`port` as a TLS-only node whose certificate chains to `pki`'s CA (undefined:
 * plain again), and names `name` (by default its address).
 */
export function setNodeTls(port: number, pki: TestPki | undefined, name?: string): void {
  if (pki) tlsNodes.set(port, name === undefined ? { ca: [pki.caCert] } : { ca: [pki.caCert], servername: name });
  else tlsNodes.delete(port);
}

/** ioredis options to reach the test node on `port`: over TLS, trusting its CA, when it is a TLS node. */
export function nodeOptions(port: number): { host: string; port: number; tls?: ConnectionOptions } {
  const tls = tlsNodes.get(port);
  return tls ? { host: '127.0.0.1', port, tls } : { host: '127.0.0.1', port };
}

/**
 * redis-server arguments to listen on `port` with TLS only (no plain port at all), presenting
 * `pki`'s server certificate (SAN 127.0.0.1, localhost); replication and the cluster bus use TLS
 * too. Clients need no certificate.
 */
export function tlsServerArgs(port: number, pki: TestPki): string[] {
  return [
    '--port', '0', '--tls-port', String(port),
    '--tls-cert-file', join(pki.dir, 'server.crt'), '--tls-key-file', join(pki.dir, 'server.key'),
    '--tls-ca-cert-file', pki.caCertPath, '--tls-auth-clients', 'no',
    '--tls-replication', 'yes', '--tls-cluster', 'yes',
  ];
}

export interface RedisServerOptions {
  /** Serve TLS only, with this PKI's server certificate: the URL is then rediss://. */
  tls?: TestPki;
  /** A name the certificate carries, for the helpers' own connections, when 127.0.0.1 is not one. */
  tlsName?: string;
}

export class RedisServer {
  proc: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'goldpath-redis-'));
  readonly tls: TestPki | undefined;
  constructor(readonly port: number, readonly extraArgs: string[] = [], opts: RedisServerOptions = {}) {
    this.tls = opts.tls;
    setNodeTls(port, opts.tls, opts.tlsName);
  }

  get url(): string {
    return `${this.tls ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`;
  }

  static async start(extraArgs: string[] = [], opts: RedisServerOptions = {}): Promise<RedisServer> {
    const s = new RedisServer(await freePort(), extraArgs, opts);
    await s.start();
    return s;
  }

  async start(): Promise<void> {
    const listen = this.tls ? tlsServerArgs(this.port, this.tls) : ['--port', String(this.port)];
    const proc = spawn('redis-server', [
      ...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', this.dir, ...this.extraArgs,
    ], { stdio: 'ignore' });
    this.proc = proc;
    await new Promise<void>((resolve, reject) => {
      proc.once('error', (e) => reject(new Error(`cannot start redis-server (is it installed?): ${e.message}`)));
      proc.once('spawn', () => resolve());
    });
    // A server that never became ready is not left running after the test that started it.
    await this.waitReady().catch(async (err: unknown) => {
      await this.kill();
      throw err;
    });
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const c = new Redis({ ...nodeOptions(this.port), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      let refused = false;
      c.on('error', (err: Error) => { refused ||= /^NOAUTH/.test(err.message); });
      try {
        await c.connect();
        await c.ping();
        c.disconnect();
        return;
      } catch {
        c.disconnect();
        // Up, and asking for a password (--requirepass): ready.
        if (refused) return;
        if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not become ready`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** A plain client for assertions (INFO commandstats, KEYS, dumps). */
  client(): Redis {
    return adminClient({ ...nodeOptions(this.port), maxRetriesPerRequest: 1 });
  }

  /** Total commands processed, excluding the ones this call itself issues. */
  async commandCount(): Promise<number> {
    const c = this.client();
    try {
      const info = await c.info('stats');
      return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN);
    } finally {
      c.disconnect();
    }
  }

  /** Calls per command name so far (INFO commandstats), lower-case names. */
  async commandCalls(): Promise<Record<string, number>> {
    const c = this.client();
    try {
      const info = await c.info('commandstats');
      const calls: Record<string, number> = {};
      for (const [, name, n] of info.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)) calls[name!] = Number(n);
      return calls;
    } finally {
      c.disconnect();
    }
  }

  /** kill -9 and wait for the process to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
    this.proc = undefined;
  }

  pause(): void { this.proc?.kill('SIGSTOP'); }
  resume(): void { this.proc?.kill('SIGCONT'); }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async stop(): Promise<void> {
    this.resume();
    await this.kill('SIGTERM');
    setNodeTls(this.port, undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
