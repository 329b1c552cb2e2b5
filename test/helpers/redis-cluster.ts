// A real Redis Cluster on loopback for tests: N masters (+ R replicas each), every node a
// redis-server on a random free port with its own temp dir and nodes.conf. Built with
// `redis-cli --cluster create`, like an operator would. Missing redis-server or redis-cli is a
// failure (never a skip), in CI and out of it.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { RedisServer, canListen, freePort, nodeOptions } from './redis.ts';
import type { TestPki } from './idp-tls.ts';

export interface ClusterNodeInfo {
  readonly id: string;
  readonly port: number;
  readonly role: 'master' | 'replica';
  /** For a replica: the id of its master. */
  readonly masterId: string | undefined;
  /** For a master: its slot ranges [from, to]. */
  readonly slots: readonly (readonly [number, number])[];
}

export interface RedisClusterOptions {
  masters?: number;
  /** Replicas per master (0 = no failover possible). */
  replicas?: number;
  /** cluster-node-timeout; generous by default so a starved 2-core CI box does not fail nodes over. */
  nodeTimeoutMs?: number;
  /**
   * TLS only, with this PKI: every node listens on a TLS port alone (the bus is TLS too, so nodes
   * announce their TLS ports) and the URL is rediss+cluster://.
   */
  tls?: TestPki;
}

/** Runs redis-cli with the given arguments; rejects with its output on a non-zero exit. */
export function redisCli(args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`redis-cli ${args.join(' ')} timed out:\n${out}`)); }, timeoutMs);
    p.once('error', (e) => { clearTimeout(timer); reject(new Error(`cannot run redis-cli (is it installed?): ${e.message}`)); });
    p.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`redis-cli ${args.join(' ')} exited ${code}:\n${out}`));
    });
  });
}

/** A short-lived direct connection to one node, for admin commands. */
export async function withNode<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({ ...nodeOptions(port), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, commandTimeout: 5000 });
  c.on('error', () => {});
  try {
    await c.connect();
    return await fn(c);
  } finally {
    c.disconnect();
  }
}

export async function waitFor(what: string, check: () => Promise<boolean>, ms = 20_000, every = 100): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(every);
  }
}

function parseNodes(text: string): ClusterNodeInfo[] {
  const out: ClusterNodeInfo[] = [];
  for (const line of text.trim().split('\n')) {
    const [id, addr, flags, master, , , , , ...slotSpecs] = line.trim().split(' ');
    if (!id || !addr || !flags || flags.includes('fail') || flags.includes('noaddr')) continue;
    const port = Number(/:(\d+)@/.exec(addr)?.[1]);
    const isMaster = flags.split(',').includes('master');
    const slots: [number, number][] = [];
    for (const s of slotSpecs) {
      if (s.startsWith('[')) continue; // migrating/importing marker
      const [a, b] = s.split('-').map(Number) as [number, number | undefined];
      slots.push([a, b ?? a]);
    }
    out.push({ id, port, role: isMaster ? 'master' : 'replica', masterId: isMaster ? undefined : master, slots });
  }
  return out;
}

export class RedisCluster {
  private constructor(readonly servers: RedisServer[], readonly tls: TestPki | undefined) {}

  /** redis+cluster:// (rediss+cluster:// with TLS) with every master as a seed (a client needs only one to reach). */
  get url(): string {
    return `${this.tls ? 'rediss' : 'redis'}+cluster://${this.servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`;
  }

  get ports(): number[] {
    return this.servers.map((s) => s.port);
  }

  static async start(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
    const masters = opts.masters ?? 3;
    const replicas = opts.replicas ?? 0;
    const total = masters * (1 + replicas);
    const ports: number[] = [];
    while (ports.length < total) {
      const p = await freePort();
      // Each node also listens on port + 10000 (the cluster bus): both must be free and distinct.
      if (p + 10000 > 65535 || ports.includes(p) || ports.some((q) => Math.abs(q - p) === 10000) || !await canListen(p + 10000)) continue;
      ports.push(p);
    }
    const servers = ports.map((p) => new RedisServer(p, [
      '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
      '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 5000),
      // A replica may be promoted however long it was disconnected (tests fail over on purpose).
      '--cluster-replica-validity-factor', '0',
      // Replicas sync at once (the default waits 5 s for more replicas to join a diskless transfer).
      '--repl-diskless-sync-delay', '0',
      // Redis lists a replica in CLUSTER SLOTS only once its replication offset is non-zero: ping
      // replicas every second so an idle, fresh cluster gets there fast.
      '--repl-ping-replica-period', '1',
    ], { tls: opts.tls }));
    const cluster = new RedisCluster(servers, opts.tls);
    try {
      await Promise.all(servers.map((s) => s.start()));
      await redisCli([...cluster.cliTlsArgs(), '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
      await cluster.waitSettled();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** redis-cli's arguments to reach the nodes (TLS, trusting the CA), if they speak TLS. */
  cliTlsArgs(): string[] {
    return this.tls ? ['--tls', '--cacert', this.tls.caCertPath] : [];
  }

  /** The topology as node `port` (default: the first live node) sees it. */
  async topology(port = this.servers.find((s) => s.proc)!.port): Promise<ClusterNodeInfo[]> {
    return parseNodes(await withNode(port, (c) => c.cluster('NODES') as Promise<string>));
  }

  /**
   * Waits until every live node reports cluster_state:ok, all of them agree on who owns each slot,
   * and every replica's link to its master is up (so a failover now can lose nothing).
   */
  async waitSettled(ms = 30_000): Promise<void> {
    await waitFor('the cluster to settle', async () => {
      const live = this.servers.filter((s) => s.proc);
      const views: string[] = [];
      for (const s of live) {
        const info = await withNode(s.port, (c) => c.cluster('INFO') as Promise<string>);
        if (!/cluster_state:ok/.test(info)) return false;
        const nodes = parseNodes(await withNode(s.port, (c) => c.cluster('NODES') as Promise<string>));
        // Every node must know every live node, with the same role, master and slots.
        if (nodes.length !== live.length) return false;
        const portOf = new Map(nodes.map((n) => [n.id, n.port]));
        views.push(JSON.stringify(nodes.map((n) => [n.port, n.role, n.masterId && portOf.get(n.masterId), n.slots]).sort()));
        const me = nodes.find((n) => n.port === s.port);
        if (me?.role === 'replica') {
          const repl = await withNode(s.port, (c) => c.info('replication'));
          if (!/master_link_status:up/.test(repl)) return false;
        }
        // Clients learn replicas from CLUSTER SLOTS (it decides whether writes WAIT): every live
        // replica must be listed there too.
        const slots = await withNode(s.port, (c) => c.cluster('SLOTS') as Promise<unknown[][]>);
        for (const m of nodes.filter((n) => n.role === 'master')) {
          const replicas = nodes.filter((n) => n.masterId === m.id).length;
          for (const range of slots.filter((r) => (r[2] as unknown[])[1] === m.port)) {
            if (range.length - 3 !== replicas) return false;
          }
        }
      }
      return views.length > 0 && views.every((v) => v === views[0]);
    }, ms);
  }

  /** The slot of a key, as the server computes it. */
  keyslot(key: string): Promise<number> {
    return withNode(this.servers[0]!.port, async (c) => Number(await c.cluster('KEYSLOT', key)));
  }

  /** The master currently serving `slot`. */
  async masterOf(slot: number): Promise<ClusterNodeInfo> {
    const m = (await this.topology()).find((n) => n.role === 'master' && n.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!m) throw new Error(`no master serves slot ${slot}`);
    return m;
  }

  /**
   * Manual, coordinated failover of the master serving `slot`: CLUSTER FAILOVER on one of its
   * replicas (the master stops writes, the replica catches up, then takes over), then waits until
   * the whole cluster agrees. Returns [old master port, new master port].
   */
  async failover(slot: number): Promise<[number, number]> {
    const topo = await this.topology();
    const master = topo.find((n) => n.role === 'master' && n.slots.some(([a, b]) => slot >= a && slot <= b));
    const replica = topo.find((n) => n.role === 'replica' && n.masterId === master?.id);
    if (!master || !replica) throw new Error(`slot ${slot} has no replica to fail over to`);
    await withNode(replica.port, (c) => c.cluster('FAILOVER'));
    await waitFor(`node ${replica.port} to become master`, async () => (await this.masterOf(slot)).port === replica.port);
    await this.waitSettled();
    return [master.port, replica.port];
  }

  /** A plain cluster client for assertions (probes, dumps). */
  client(): Cluster {
    const c = new Cluster(this.servers.slice(0, 3).map((s) => ({ host: '127.0.0.1', port: s.port })),
      { redisOptions: { commandTimeout: 5000, tls: nodeOptions(this.servers[0]!.port).tls } });
    c.on('error', () => {});
    return c;
  }

  /** Sum of a command's calls over every node (INFO commandstats). */
  async commandStats(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const s of this.servers.filter((x) => x.proc)) {
      const info = await withNode(s.port, (c) => c.info('commandstats'));
      for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
    }
    return out;
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}
