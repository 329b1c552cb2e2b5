// A TCP proxy that holds every chunk for `delayMs` before passing it on, in both directions and in
// order: put between a client and a real redis-server, each command takes about twice the delay
// (request chunk, then reply chunk) while the connection stays up and answers. What a slow store
// looks like (a far or overloaded Redis), as opposed to one that is down or stalled (RedisServer
// kill and pause).
import { createServer, connect, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** One direction of one connection: chunks leave in the order they came, each `delay` late. */
class DelayedPipe {
  readonly #queue: { due: number; chunk: Buffer }[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly to: Socket, private readonly delay: () => number) {}

  push(chunk: Buffer): void {
    this.#queue.push({ due: performance.now() + this.delay(), chunk });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#queue.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const now = performance.now();
      while (this.#queue.length > 0 && this.#queue[0]!.due <= now + 0.5) {
        if (!this.to.destroyed) this.to.write(this.#queue.shift()!.chunk);
        else this.#queue.shift();
      }
      this.#schedule();
    }, Math.max(0, this.#queue[0]!.due - performance.now()));
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#queue.length = 0;
  }
}

export class SlowProxy {
  /** Milliseconds each chunk is held, each way; may be changed at any time (new chunks use it). */
  delayMs: number;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(server: Server, delayMs: number) {
    this.#server = server;
    this.delayMs = delayMs;
  }

  /** Listens on a free port of 127.0.0.1 and forwards to `port` there. */
  static async start(targetPort: number, delayMs = 0): Promise<SlowProxy> {
    let proxy: SlowProxy | undefined;
    const server = createServer((client) => proxy!.#pipe(client, targetPort));
    proxy = new SlowProxy(server, delayMs);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  /** REDIS_URL through the proxy. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  #pipe(client: Socket, targetPort: number): void {
    const upstream = connect(targetPort, '127.0.0.1');
    const delay = () => this.delayMs;
    const up = new DelayedPipe(upstream, delay);
    const down = new DelayedPipe(client, delay);
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.setNoDelay(true);
    }
    client.on('data', (c: Buffer) => up.push(c));
    upstream.on('data', (c: Buffer) => down.push(c));
    const end = () => {
      up.stop();
      down.stop();
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
