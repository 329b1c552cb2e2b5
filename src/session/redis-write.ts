// The Redis backend's durable writes: the write, then WAIT for a replica when the topology has one.
//
// Durability with replicas (Sentinel, Cluster). Replication is asynchronous: a write the master
// acknowledged can vanish if a replica that never got it is promoted. A lost session is only
// annoying, but a lost *delete* resurrects a logged-out session, a lost lock lets two processes
// spend one refresh token, a lost replay marker re-opens a jti. So every write (not the idle
// touch, whose loss is harmless) is followed, in the same pipeline on the same connection, by
// WAIT 1: it succeeds only once a replica holds it, and fails (StoreUnavailable, no cookie
// handed out, the caller may retry) when no replica confirms within the command timeout. So in
// these modes a write may take up to twice the command timeout; reads keep the single bound.
// "Has a replica" comes from the topology, so a master whose replicas are all down or resyncing
// keeps accepting writes (single copy) instead of refusing every login:
//   - Cluster: the slot's replicas in CLUSTER SLOTS (failed replicas are left out by Redis),
//     refreshed every 2 s;
//   - Sentinel: the replicas Sentinel lists as up with their link to the master ok, polled every
//     second; unknown or stale (Sentinel unreachable) counts as "has a replica".
// This closes the gap for one replica per master (any failover promotes the replica that
// confirmed the write; Sentinel's split-brain window — old master still accepting writes after
// its replica was promoted — fails WAIT instead of silently losing writes). With several replicas
// the promoted one may not be the one that confirmed: Redis cannot promise more than that.
// RedisBackend (redis-backend.ts) owns the write connection and runs each write through its
// command gate (the `run` given here).
import { Cluster, type Redis } from 'ioredis';
import { LUA, type Scripted } from './redis-scripts.ts';
import type { Client } from './redis-connect.ts';
import { type SentinelReplicas, askTarget, keySlot } from './redis-topology.ts';

/** RedisBackend's gate: runs `op` on `c` when it is usable, within the call's deadline. */
export type Run = <T>(c: Client, op: () => Promise<T>) => Promise<T>;

export class DurableWrites {
  /** RedisBackend's write connection. */
  readonly #writer: Client;
  readonly #replicas: SentinelReplicas | undefined;
  /** WAIT timeout (the command timeout): a replica starved of CPU for a moment is not an outage. */
  readonly #waitMs: number;
  readonly #run: Run;

  constructor(writer: Client, replicas: SentinelReplicas | undefined, commandTimeout: number, run: Run) {
    this.#writer = writer;
    this.#replicas = replicas;
    this.#waitMs = commandTimeout;
    this.#run = run;
  }

  /** How many replicas must confirm a write to `key` (0 or 1), from the current topology. */
  #acksFor(key: string): number {
    if (this.#replicas) return this.#replicas.needed;
    if (this.#writer instanceof Cluster) {
      const owners = this.#writer.slots[keySlot(key)];
      return owners === undefined || owners.length > 1 ? 1 : 0;
    }
    return 0;
  }

  /**
   * A write that must survive a failover: `name` is one of our scripts or a plain command whose
   * first argument is `key`. With replicas, the write and WAIT travel in one pipeline, so WAIT
   * runs on the very connection (and, in a cluster, the very node) that took the write.
   */
  write(key: string, name: string, args: string[]): Promise<unknown> {
    const w = this.#writer;
    return this.#run(w, async () => {
      const acks = this.#acksFor(key);
      if (acks === 0) {
        return LUA[name] ? (w as unknown as Scripted)[name]!(key, ...args) : w.call(name, key, ...args);
      }
      /** ASK: the master the key's slot is being migrated to (the key is there already). */
      let asking: Redis | undefined;
      for (let attempt = 0; ; attempt++) {
        const p = asking !== undefined ? asking.pipeline() : w.pipeline();
        if (asking !== undefined) p.call('ASKING');
        // EVAL, not EVALSHA: a NOSCRIPT retry would run outside the pipeline, after the WAIT.
        if (LUA[name]) p.call('EVAL', LUA[name], '1', key, ...args);
        else p.call(name, key, ...args);
        p.call('WAIT', String(acks), String(this.#waitMs));
        const all = await p.exec();
        const results = asking !== undefined ? all?.slice(1) : all;
        if (!results || results.length !== 2) throw new Error('the write pipeline was discarded');
        const [[err, reply], [waitErr, acked]] = results as [[Error | null, unknown], [Error | null, unknown]];
        if (err) {
          // A failover moved the slot: learn the new owner and try once more.
          if (w instanceof Cluster && attempt === 0 && /^MOVED /.test(err.message)) {
            await new Promise<void>((resolve) => w.refreshSlotsCache(() => resolve()));
            continue;
          }
          // A slot in migration whose key has moved (a resharding): the slot table still names the
          // old master, which answers ASK every time. ioredis follows ASK for single commands, not
          // for a pipeline that holds a WAIT: send it to the new master, after ASKING, once.
          if (w instanceof Cluster && asking === undefined && attempt < 2 && /^ASK /.test(err.message)) {
            asking = askTarget(w, err.message.split(' ')[2] ?? '');
            if (asking !== undefined) continue;
          }
          throw err;
        }
        if (waitErr) throw waitErr;
        if (typeof acked !== 'number' || acked < acks) {
          throw new Error(`write not confirmed by a replica within ${this.#waitMs} ms`);
        }
        return reply;
      }
    });
  }
}
