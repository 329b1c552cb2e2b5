// A TCP proxy on 127.0.0.1 for fault tests, between one process and a real server (Redis) while
// everyone else keeps a direct link. Chunks go through in order, both ways:
//   - delayMs: each chunk is held that long, so each command takes about twice it while the
//     connection stays up and answers: a slow store (far or overloaded), as opposed to one that is
//     down or frozen (RedisServer kill and pause);
//   - stall(): nothing is forwarded and every socket stays open (bytes are held, not dropped): a
//     partition that closes nothing; resume() delivers what was held, in order, and forwards again.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/** One direction of one connection: chunks leave in the order they came, each when it is due. */
class Pipe {
  readonly #queue: { due: number; chunk: Buffer }[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly to: Socket, private readonly proxy: TcpProxy) {}

  push(chunk: Buffer): void {
    this.#queue.push({ due: performance.now() + this.proxy.delayMs, chunk });
    this.schedule();
  }

  schedule(): void {
    if (this.#timer !== undefined || this.#queue.length === 0 || this.proxy.stalled) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const now = performance.now();
      while (!this.proxy.stalled && this.#queue.length > 0 && this.#queue[0]!.due <= now + 0.5) {
        const { chunk } = this.#queue.shift()!;
        if (!this.to.destroyed) this.to.write(chunk);
      }
      this.schedule();
    }, Math.max(0, this.#queue[0]!.due - performance.now()));
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
  }
}

export class TcpProxy {
  /** Milliseconds each chunk is held, each way; may be changed at any time (new chunks use it). */
  delayMs = 0;
  #stalled = false;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #pipes = new Set<Pipe>();

  private constructor(server: Server) {
    this.#server = server;
  }

  /** Listens on a free port of 127.0.0.1 and forwards every connection to `targetPort` there. */
  static async start(targetPort: number, delayMs = 0): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy!.#pipe(client, targetPort));
    proxy = new TcpProxy(server);
    proxy.delayMs = delayMs;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  /** REDIS_URL through the proxy. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get stalled(): boolean {
    return this.#stalled;
  }

  /** Stops forwarding (both ways), sockets left open: to both ends the link just goes silent. */
  stall(): void {
    this.#stalled = true;
  }

  /** Delivers what was held (each chunk once its delay is over), then forwards again. */
  resume(): void {
    this.#stalled = false;
    for (const p of this.#pipes) p.schedule();
  }

  #pipe(client: Socket, targetPort: number): void {
    const upstream = connect(targetPort, '127.0.0.1');
    const up = new Pipe(upstream, this);
    const down = new Pipe(client, this);
    this.#pipes.add(up).add(down);
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.setNoDelay(true);
    }
    client.on('data', (c: Buffer) => up.push(c));
    upstream.on('data', (c: Buffer) => down.push(c));
    const end = () => {
      up.stop();
      down.stop();
      this.#pipes.delete(up);
      this.#pipes.delete(down);
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('close', end);
      s.on('error', end);
    }
  }

  async close(): Promise<void> {
    for (const p of this.#pipes) p.stop();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
