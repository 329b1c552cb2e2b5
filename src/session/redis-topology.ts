// What the Redis backend reads of a Sentinel or Cluster topology: a key's hash slot, whether
// Sentinel sees the master's replicas in sync, which nodes own the slots, and where an ASK
// redirection points. The Redis backend decides from these whether a write must WAIT for a replica
// and where a write pipeline goes during a resharding (redis-write.ts), and when a Cluster is back
// after an outage (redis-watch.ts).
import { Redis, type Cluster } from 'ioredis';
import { setInterval, clearInterval } from 'node:timers';
import type { RedisTarget } from './redis-url.ts';
import { hearEverySocketError, tlsOptions } from './redis-connect.ts';

/** CRC16/XMODEM, the Redis Cluster key hash. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

const utf8 = new TextEncoder();

/** The Redis Cluster hash slot of a key (hash tags honoured), as CLUSTER KEYSLOT computes it. */
export function keySlot(key: string): number {
  let bytes = utf8.encode(key);
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  return crc16(bytes) % 16384;
}

/**
 * Sentinel's view of the master's replicas, polled: how many are up and in sync. Writes wait for
 * a replica unless Sentinel positively says there is none in sync; no answer means "wait".
 */
export class SentinelReplicas {
  #inSync: number | undefined;
  #at = 0;
  #client: Redis | undefined;
  #next = 0;
  #polling = false;
  #closed = false;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly target: Extract<RedisTarget, { mode: 'sentinel' }>,
    private readonly everyMs: number,
    private readonly commandTimeout: number,
    /** A poll that failed, reported (KvBackend.onCaughtError). */
    private readonly caught: (err: unknown) => void,
    /** REDIS_TLS_CA_FILE's PEM: rediss+sentinel:// polls the sentinels over TLS too. */
    private readonly ca?: string,
  ) {
    void this.#poll();
    this.#timer = setInterval(() => void this.#poll(), everyMs);
    this.#timer.unref();
  }

  /** Replicas a write must reach: 0 only on a fresh answer that no replica is in sync. */
  get needed(): number {
    const fresh = this.#inSync !== undefined && performance.now() - this.#at <= 3 * this.everyMs; // monotonic: a step back kept a stale 0 "fresh"
    return fresh && this.#inSync === 0 ? 0 : 1;
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      this.#client ??= await this.#connect();
      // Closed while connecting: the connection made is dropped here, or it would stay open.
      if (this.#closed) return this.close();
      const replicas = (await this.#client.call('SENTINEL', 'REPLICAS', this.target.name)) as string[][];
      this.#inSync = replicas.filter((flat) => {
        const r: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) r[flat[i]!] = flat[i + 1]!;
        return !/s_down|o_down|disconnected/.test(r.flags ?? '') && r['master-link-status'] === 'ok';
      }).length;
      this.#at = performance.now();
    } catch (err) {
      // Ask the next sentinel next time; meanwhile `needed` turns conservative once stale.
      this.caught(err);
      this.#client?.disconnect();
      this.#client = undefined;
      this.#next++;
    } finally {
      this.#polling = false;
    }
  }

  async #connect(): Promise<Redis> {
    const s = this.target.sentinels[this.#next % this.target.sentinels.length]!;
    const c = new Redis({
      host: s.host, port: s.port, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0,
      retryStrategy: () => null, commandTimeout: this.commandTimeout, connectTimeout: this.commandTimeout,
      tls: tlsOptions(this.target, this.ca),
    });
    c.on('error', () => { /* reported through the failed poll */ });
    hearEverySocketError(c);
    try {
      await c.connect();
    } catch (err) {
      c.disconnect();
      throw err;
    }
    return c;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#client?.disconnect();
    this.#client = undefined;
  }
}

/**
 * A PING answered by the master of every slot. A Cluster's own PING goes to one node at random,
 * and the connection to a node that refuses the password is dropped from c.nodes(): one still
 * refusing would be called restored while its keys fail. A slot owner without a connection is
 * not back yet; a slot refresh makes its connection anew for the next probe.
 */
export function everySlotOwner(c: Cluster): Promise<unknown> {
  const owners = new Set<string>();
  for (const s of c.slots) if (s?.[0] !== undefined) owners.add(s[0]);
  const byKey = new Map(c.nodes('master').map((n) => [`${n.options.host}:${n.options.port}`, n]));
  const nodes = [...owners].map((k) => byKey.get(k));
  if (owners.size === 0 || nodes.some((n) => n === undefined)) {
    c.refreshSlotsCache();
    return Promise.reject(new Error('a slot owner has no connection'));
  }
  return Promise.all(nodes.map((n) => n!.ping()));
}

/**
 * The connection to `hostPort` (from an ASK reply) as ioredis itself finds it when it follows ASK:
 * a master new to the cluster (what a resharding usually fills) holds no slot yet, so it may not
 * be among the client's nodes. Undefined if the address is unreadable or ioredis has no such pool.
 */
export function askTarget(c: Cluster, hostPort: string): Redis | undefined {
  const at = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, at);
  const port = Number(hostPort.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port)) return undefined;
  const known = c.nodes('master').find((n) => n.options.host === host && n.options.port === port);
  if (known !== undefined) return known;
  const pool = (c as unknown as { connectionPool?: { findOrCreate?(node: { host: string; port: number }): Redis } }).connectionPool;
  return pool?.findOrCreate?.({ host, port });
}
