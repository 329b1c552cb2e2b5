// A real Redis Sentinel deployment on loopback for tests: one master, N replicas and M sentinels
// (`redis-server <conf> --sentinel`, each with its own generated, writable sentinel.conf), all on
// random free ports. Missing redis-server is a failure (never a skip), in CI and out of it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { RedisServer, adminClient, freePort, nodeOptions, setNodeTls } from './redis.ts';
import { waitFor, withNode } from './redis-cluster.ts';
import type { TestPki } from './idp-tls.ts';

export interface RedisSentinelOptions {
  /** Master name (the path of redis+sentinel://). Default mymaster. */
  name?: string;
  replicas?: number;
  sentinels?: number;
  /** down-after-milliseconds: how long a silent master takes to be declared down. */
  downAfterMs?: number;
  /**
   * TLS only, with this PKI: data nodes and sentinels listen on TLS ports alone, replication and
   * Sentinel's own connections use TLS, and the URL is rediss+sentinel://.
   */
  tls?: TestPki;
}

/** One `redis-server --sentinel` process. */
export class SentinelProcess {
  proc: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'goldpath-sentinel-'));
  constructor(readonly port: number, readonly conf: string, readonly tls?: TestPki) {
    setNodeTls(port, tls);
  }

  async start(): Promise<void> {
    const file = join(this.dir, 'sentinel.conf');
    writeFileSync(file, this.conf); // sentinels rewrite their config: each needs its own file
    const proc = spawn('redis-server', [file, '--sentinel'], { stdio: 'ignore' });
    this.proc = proc;
    await new Promise<void>((resolve, reject) => {
      proc.once('error', (e) => reject(new Error(`cannot start redis-server --sentinel (is redis-server installed?): ${e.message}`)));
      proc.once('spawn', () => resolve());
    });
    await waitFor(`sentinel on ${this.port}`, () => withNode(this.port, async (c) => (await c.ping()) === 'PONG'), 10_000, 50);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (p && p.exitCode === null && p.signalCode === null) {
      await new Promise<void>((resolve) => {
        p.once('exit', () => resolve());
        p.kill('SIGKILL');
      });
    }
    setNodeTls(this.port, undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export class RedisSentinel {
  private constructor(
    readonly name: string,
    readonly servers: RedisServer[],
    readonly sentinels: SentinelProcess[],
    readonly tls: TestPki | undefined,
  ) {}

  get url(): string {
    return `${this.tls ? 'rediss' : 'redis'}+sentinel://${this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${this.name}`;
  }

  static async start(opts: RedisSentinelOptions = {}): Promise<RedisSentinel> {
    const name = opts.name ?? 'mymaster';
    const dataArgs = ['--repl-diskless-sync-delay', '0'];
    const master = await RedisServer.start(dataArgs, { tls: opts.tls });
    const servers = [master];
    const sentinels: SentinelProcess[] = [];
    const set = new RedisSentinel(name, servers, sentinels, opts.tls);
    try {
      for (let i = 0; i < (opts.replicas ?? 1); i++) {
        servers.push(await RedisServer.start([...dataArgs, '--replicaof', '127.0.0.1', String(master.port)], { tls: opts.tls }));
      }
      const count = opts.sentinels ?? 3;
      const quorum = Math.floor(count / 2) + 1;
      for (let i = 0; i < count; i++) {
        const port = await freePort();
        const listen = opts.tls ? [
          'port 0', `tls-port ${port}`,
          `tls-cert-file ${join(opts.tls.dir, 'server.crt')}`, `tls-key-file ${join(opts.tls.dir, 'server.key')}`,
          `tls-ca-cert-file ${opts.tls.caCertPath}`, 'tls-auth-clients no',
          // Sentinel's connections to the data nodes and to the other sentinels.
          'tls-replication yes',
        ] : [`port ${port}`];
        sentinels.push(new SentinelProcess(port, [
          ...listen,
          'bind 127.0.0.1',
          `dir ${tmpdir()}`,
          `sentinel monitor ${name} 127.0.0.1 ${master.port} ${quorum}`,
          `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 2000}`,
          `sentinel failover-timeout ${name} 10000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'), opts.tls));
      }
      await Promise.all(sentinels.map((s) => s.start()));
      // Sentinel's periods suit production, not a test: it INFOs replicas every 10 s and waits
      // 4 publish periods (8 s) before demoting an old master that still claims the role, so a
      // failover took ~20 s to settle. SENTINEL DEBUG (Redis 7+) shortens both; the TILT trigger
      // goes up so a starved CI box does not make Sentinel freeze for 30 s.
      await Promise.all(sentinels.map((s) => withNode(s.port, (c) => c.call('SENTINEL', 'DEBUG', 'info-period', '1000', 'publish-period', '500', 'tilt-trigger', '10000'))));
      await set.waitSettled();
    } catch (err) {
      await set.stop();
      throw err;
    }
    return set;
  }

  /** The data node listening on `port`. */
  server(port: number): RedisServer {
    const s = this.servers.find((x) => x.port === port);
    if (!s) throw new Error(`no data node on ${port}`);
    return s;
  }

  /** The master's port according to the first live sentinel. */
  async masterPort(): Promise<number> {
    const s = this.sentinels.find((x) => x.proc)!;
    return withNode(s.port, async (c) => Number(((await c.call('SENTINEL', 'get-master-addr-by-name', this.name)) as string[])[1]));
  }

  /**
   * Waits until every sentinel names the same master, that node says it is master, every other
   * live data node replicates from it with its link up, and each sentinel knows every replica
   * and the other sentinels (so a failover or an election can start at once).
   */
  async waitSettled(ms = 30_000): Promise<number> {
    let port = 0;
    const replicas = this.servers.filter((s) => s.proc).length - 1;
    await waitFor('the sentinel deployment to settle', async () => {
      const views = new Set<number>();
      for (const s of this.sentinels.filter((x) => x.proc)) {
        const ok = await withNode(s.port, async (c) => {
          views.add(Number(((await c.call('SENTINEL', 'get-master-addr-by-name', this.name)) as string[])[1]));
          const m = pack((await c.call('SENTINEL', 'master', this.name)) as string[]);
          if (m.flags !== 'master' || Number(m['num-slaves']) < replicas) return false;
          if (Number(m['num-other-sentinels']) < this.sentinels.filter((x) => x.proc).length - 1) return false;
          const known = ((await c.call('SENTINEL', 'replicas', this.name)) as string[][]).map(pack);
          return known.filter((r) => !/s_down|o_down|disconnected/.test(r.flags ?? '') && r['master-link-status'] === 'ok').length >= replicas;
        });
        if (!ok) return false;
      }
      if (views.size !== 1) return false;
      port = [...views][0]!;
      if (!/role:master/.test(await withNode(port, (c) => c.info('replication')))) return false;
      for (const d of this.servers.filter((x) => x.proc && x.port !== port)) {
        const info = await withNode(d.port, (c) => c.info('replication'));
        if (!info.includes(`master_port:${port}`) || !/master_link_status:up/.test(info)) return false;
      }
      return true;
    }, ms);
    return port;
  }

  /**
   * SENTINEL FAILOVER: promote a replica now, without waiting for the master to be declared down.
   * Resolves once every sentinel names the new master and it acts as one; the old master is
   * turned into a replica by Sentinel later (it waits ~8 s before reconfiguring a node that still
   * claims to be master): call waitSettled() for that. Returns [old master port, new master port].
   */
  async failover(): Promise<[number, number]> {
    const before = await this.masterPort();
    await withNode(this.sentinels[0]!.port, (c) => c.call('SENTINEL', 'failover', this.name));
    return [before, await this.waitSwitched(before)];
  }

  /** kill -9 of the master: the sentinels must agree it is down and elect a leader to fail over. */
  async killMaster(): Promise<[number, number]> {
    const before = await this.masterPort();
    await this.server(before).kill();
    return [before, await this.waitSwitched(before)];
  }

  /** Waits until every live sentinel names a master other than `old` and that node is master. */
  async waitSwitched(old: number, ms = 30_000): Promise<number> {
    let port = 0;
    await waitFor('sentinels to switch master', async () => {
      const views = new Set<number>();
      for (const s of this.sentinels.filter((x) => x.proc)) {
        views.add(await withNode(s.port, async (c) => Number(((await c.call('SENTINEL', 'get-master-addr-by-name', this.name)) as string[])[1])));
      }
      if (views.size !== 1 || views.has(old)) return false;
      port = [...views][0]!;
      return /role:master/.test(await withNode(port, (c) => c.info('replication')));
    }, ms);
    return port;
  }

  /** A direct client to the current master (assertions). */
  async masterClient(): Promise<Redis> {
    return adminClient({ ...nodeOptions(await this.masterPort()), maxRetriesPerRequest: 1 });
  }

  async stop(): Promise<void> {
    await Promise.all([...this.sentinels.map((s) => s.stop()), ...this.servers.map((s) => s.stop())]);
  }
}

/** SENTINEL replies are flat [key, value, key, value...] arrays. */
function pack(a: string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i + 1 < a.length; i += 2) o[a[i]!] = a[i + 1]!;
  return o;
}
