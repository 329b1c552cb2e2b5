// What the Redis backend tells the operator about its connections: one warning per outage, one
// line when a connection is back, an error when Redis refuses the credentials or the database of
// REDIS_URL (that connection then ends for good). RedisBackend (redis-backend.ts) watches each
// connection it makes; the errors told apart are redis-connect.ts's.
import { Cluster, Redis } from 'ioredis';
import { setInterval, clearInterval } from 'node:timers';
import type { Logger } from '../log.ts';
import { AUTH_REFUSED, WRONG_DB, type Client } from './redis-connect.ts';
import { everySlotOwner } from './redis-topology.ts';

export class ConnectionWatch {
  readonly #log: Logger;
  /** The owning backend's closed state (one flag, RedisBackend's). */
  readonly #isClosed: () => boolean;
  /** Each connection error heard, reported (KvBackend.onCaughtError). */
  readonly #caught: (err: unknown) => void;

  constructor(log: Logger, isClosed: () => boolean, caught: (err: unknown) => void) {
    this.#log = log;
    this.#isClosed = isClosed;
    this.#caught = caught;
  }

  get #closed(): boolean {
    return this.#isClosed();
  }

  /**
   * Logs one warning per outage and one line when the connection is back (never the URL), and
   * an error when Redis refuses the credentials, even within an outage: a Redis that came back with
   * another password is then told apart from one still away (the first error of the outage, a
   * refused connection, was all its log said).
   */
  watch(c: Client, role: string): void {
    let down = false;
    let refused = false;
    // A Cluster whose node connections ioredis replaces one by one stays 'ready' throughout: no
    // 'ready' says it is back, so while it is down a PING every second finds out.
    let probing: ReturnType<typeof setInterval> | undefined;
    const back = (): void => {
      if (!down) return;
      if (this.#closed) return void clearInterval(probing);
      // 'ready' comes before Redis has answered the AUTH (no ready check): back once a command is.
      (c instanceof Cluster ? everySlotOwner(c) : c.ping()).then(() => {
        if (!down || c.status !== 'ready') return;
        this.#log.info({ role }, 'session store connection restored');
        down = refused = false;
        clearInterval(probing);
        probing = undefined;
      }, () => { /* still down: the error handler has said why */ });
    };
    const lost = (): void => {
      down = true;
      if (c instanceof Cluster && probing === undefined) (probing = setInterval(back, 1000)).unref?.();
    };
    const refusing = (err: Error): void => {
      if (this.#closed || refused) return;
      refused = true;
      lost();
      this.#log.error({ role, err: err.message.slice(0, 120) }, 'Redis refuses the user name or password of REDIS_URL; failing closed until it accepts them');
    };
    // A Cluster's own 'error' only says "Failed to refresh slots cache": the refusal comes from
    // its node connections, which ioredis drops and makes anew on its own (slot refreshes).
    if (c instanceof Cluster) c.on('node error', (err: Error) => { if (AUTH_REFUSED.test(err.message)) refusing(err); });
    c.on('error', (err: Error) => {
      // Every one, not one an outage as logged: each failed (re)connection attempt (at most one
      // every 2 s a connection, redis-connect.ts backoff) keeps goldpath_store_errors_total rising
      // while the store is away, with no request to fail. (None once closed: RedisBackend.)
      this.#caught(err);
      if (WRONG_DB.test(err.message)) return this.#refuseDb(c, role);
      if (this.#closed) return;
      if (AUTH_REFUSED.test(err.message)) {
        // The connection stays open but unauthenticated, every command refused, even once Redis
        // takes the password again (CONFIG SET): reconnect, with the usual backoff, until it does.
        if (c instanceof Redis) c.disconnect(true);
        return refusing(err);
      }
      if (down) return;
      lost();
      this.#log.warn({ role, err: err.message }, 'session store connection lost; failing closed until it is back');
    });
    c.on('ready', back);
  }

  /**
   * REDIS_URL names a database the server does not have. ioredis reports the failed SELECT and
   * then carries on in database 0, where every session would be written: this connection ends
   * for good instead, so the store fails closed (503s, /readyz 503) until REDIS_URL is fixed.
   */
  #refuseDb(c: Client, role: string): void {
    c.disconnect(false);
    if (this.#closed) return;
    this.#log.error({ role }, 'REDIS_URL names a database the server does not have (SELECT refused): the session store stays closed; use a database the server has (0 to its `databases` setting less one) and restart');
  }
}
