// A small keep-alive HTTP/1.1 load generator with sub-microsecond timing. Each connection has one
// request in flight at a time, as Traefik's ForwardAuth client does. autocannon records latency in
// whole milliseconds; the hot path we measure takes tens of microseconds, so we time it ourselves
// (performance.now() has sub-µs resolution) and keep every sample.
//
// Two modes:
//   closed loop: `connections` clients, each sends the next request as soon as the answer arrives
//                (maximum throughput);
//   fixed rate:  requests are due at exact times (1/rate apart); latency counts from the time a
//                request was DUE, not from when it was sent, so a stall is not hidden by the client
//                politely waiting (no coordinated omission).
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setImmediate, setTimeout } from 'node:timers';

export interface LoadOptions {
  readonly port: number;
  readonly host?: string;
  /** Raw request bytes for the i-th request (HTTP/1.1, keep-alive). */
  readonly request: (i: number) => Buffer;
  readonly seconds: number;
  readonly connections: number;
  /** Requests per second; omitted = closed loop. */
  readonly rate?: number;
  /** Seconds of load before measuring starts (JIT, caches). */
  readonly warmupSeconds?: number;
  /** Fixed rate only: send each request at its due time (costs the generator a busy core). */
  readonly spin?: boolean;
}

export interface LoadResult {
  readonly requests: number;
  /** Every request answered, warm-up included (for per-request server-side counters). */
  readonly sent: number;
  readonly seconds: number;
  readonly rps: number;
  /** Latency percentiles in microseconds. */
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  /** Count per status code. */
  readonly statuses: Record<number, number>;
  readonly errors: number;
}

/** Throws unless every answer of run `r` had status `expect` and no connection failed. */
export function expectAnswers(r: LoadResult, expect: number, what: string): void {
  const wrong = Object.keys(r.statuses).filter((code) => Number(code) !== expect);
  if (wrong.length > 0 || r.errors > 0) throw new Error(`${what}: unexpected answers ${JSON.stringify(r.statuses)}, errors ${r.errors}`);
}

/** Builds a GET /auth/verify request as Traefik sends it. */
export function verifyRequest(uri: string, headers: Record<string, string> = {}, method = 'GET'): Buffer {
  let s = `GET /auth/verify HTTP/1.1\r\nHost: verify\r\nX-Forwarded-Method: ${method}\r\nX-Forwarded-Proto: https\r\n`
    + `X-Forwarded-Host: app.example.test\r\nX-Forwarded-Uri: ${uri}\r\nX-Forwarded-For: 203.0.113.7\r\n`
    + 'User-Agent: Mozilla/5.0 (X11; Linux x86_64) goldpath-bench\r\nAccept: application/json\r\n';
  for (const [k, v] of Object.entries(headers)) s += `${k}: ${v}\r\n`;
  return Buffer.from(s + '\r\n', 'latin1');
}

const HEADER_END = Buffer.from('\r\n\r\n');
const CHUNK_END = Buffer.from('0\r\n\r\n');

class Conn {
  readonly socket: Socket;
  #buf: Buffer | null = null;
  #onResponse: ((status: number) => void) | null = null;
  busy = false;

  constructor(port: number, host: string, onError: (err: Error) => void) {
    this.socket = connect({ port, host, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.#data(chunk));
    this.socket.on('error', onError);
  }

  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
  }

  send(bytes: Buffer, onResponse: (status: number) => void): void {
    this.busy = true;
    this.#onResponse = onResponse;
    this.socket.write(bytes);
  }

  // Parsed on the bytes: a string per response (and its lower-cased copy) was garbage whose
  // collection paused the generator, and those pauses were counted as server latency.
  #data(chunk: Buffer): void {
    const buf = this.#buf === null ? chunk : Buffer.concat([this.#buf, chunk]);
    const end = buf.indexOf(HEADER_END);
    if (end < 0) {
      this.#buf = buf;
      return;
    }
    const status = (buf[9]! - 48) * 100 + (buf[10]! - 48) * 10 + (buf[11]! - 48);
    let total: number;
    const cl = headerValueAt(buf, end, CONTENT_LENGTH);
    if (cl >= 0) {
      let n = 0;
      for (let i = cl; i < end && buf[i]! >= 48 && buf[i]! <= 57; i++) n = n * 10 + buf[i]! - 48;
      total = end + 4 + n;
    } else if (headerValueAt(buf, end, TRANSFER_ENCODING) >= 0) {
      const z = buf.indexOf(CHUNK_END, end + 4);
      total = z < 0 ? Infinity : z + CHUNK_END.length;
    } else {
      total = end + 4; // 1xx/204/304 or no body
    }
    if (buf.length < total) {
      this.#buf = buf;
      return;
    }
    if (buf.length > total) throw new Error('more than one response on a connection with one request in flight');
    this.#buf = null;
    this.busy = false;
    const cb = this.#onResponse!;
    this.#onResponse = null;
    cb(status);
  }
}

const CONTENT_LENGTH = Buffer.from('\r\ncontent-length:');
const TRANSFER_ENCODING = Buffer.from('\r\ntransfer-encoding: chunked');

/**
 * Where the value of header `name` (CRLF + lower-case name + colon) starts within the head
 * (buf[0, end)), spaces skipped; -1 when absent. Case-insensitive on ASCII letters.
 */
function headerValueAt(buf: Buffer, end: number, name: Buffer): number {
  outer: for (let i = 0; i + name.length <= end; i++) {
    for (let j = 0; j < name.length; j++) {
      const c = buf[i + j]!;
      if ((c >= 65 && c <= 90 ? c + 32 : c) !== name[j]) continue outer;
    }
    let v = i + name.length;
    while (v < end && buf[v] === 32) v++;
    return v;
  }
  return -1;
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const host = opts.host ?? '127.0.0.1';
  let errors = 0;
  const conns = Array.from({ length: opts.connections }, () => new Conn(opts.port, host, () => { errors++; }));
  await Promise.all(conns.map((c) => c.ready()));
  try {
    return opts.rate === undefined ? await closedLoop(conns, opts) : await fixedRate(conns, opts, opts.rate);
  } finally {
    for (const c of conns) c.socket.destroy();
  }
}

class Samples {
  #v = new Float64Array(1 << 16);
  n = 0;
  readonly statuses: Record<number, number> = {};
  add(us: number, status: number): void {
    if (this.n === this.#v.length) {
      const bigger = new Float64Array(this.#v.length * 2);
      bigger.set(this.#v);
      this.#v = bigger;
    }
    this.#v[this.n++] = us;
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
  }
  result(seconds: number, errors: number, sent: number): LoadResult {
    const v = this.#v.subarray(0, this.n).sort();
    const at = (q: number) => (this.n === 0 ? NaN : v[Math.min(this.n - 1, Math.floor(q * this.n))]!);
    return {
      requests: this.n, sent, seconds, rps: this.n / seconds,
      p50: at(0.5), p99: at(0.99), p999: at(0.999), max: this.n === 0 ? NaN : v[this.n - 1]!,
      statuses: this.statuses, errors,
    };
  }
}

/** A run's timeline: starts now, measured after the warm-up, over after `seconds` more (ms). */
function timeline(opts: LoadOptions): { t0: number; measureFrom: number; stopAt: number; runMs: number } {
  const t0 = performance.now();
  const runMs = opts.seconds * 1000;
  const measureFrom = t0 + (opts.warmupSeconds ?? 0.5) * 1000;
  return { t0, measureFrom, stopAt: measureFrom + runMs, runMs };
}

function closedLoop(conns: Conn[], opts: LoadOptions): Promise<LoadResult> {
  const { measureFrom, stopAt, runMs } = timeline(opts);
  const samples = new Samples();
  let i = 0;
  let open = conns.length;
  return new Promise((resolve) => {
    const fire = (c: Conn) => {
      const start = performance.now();
      if (start >= stopAt) {
        if (--open === 0) resolve(samples.result(runMs / 1000, 0, i));
        return;
      }
      c.send(opts.request(i++), (status) => {
        const end = performance.now();
        if (start >= measureFrom) samples.add((end - start) * 1000, status);
        fire(c);
      });
    };
    for (const c of conns) fire(c);
  });
}

function fixedRate(conns: Conn[], opts: LoadOptions, rate: number): Promise<LoadResult> {
  const interval = 1000 / rate;
  const { t0, measureFrom, stopAt, runMs } = timeline(opts);
  const samples = new Samples();
  const idle: Conn[] = [...conns];
  // Requests that are due, by the time the generator first saw them due. Node timers tick about
  // once a millisecond, so requests leave in small bursts; a request's latency counts from that
  // tick (the generator's own lateness is not the server's), including any wait for a free
  // connection (which IS the server's: it is still busy with earlier requests).
  const pending: number[] = [];
  let next = t0;
  let i = 0;
  let outstanding = 0;
  let done = false;
  return new Promise((resolve) => {
    const drain = () => {
      while (pending.length > 0 && idle.length > 0) {
        const seen = pending.shift()!;
        const c = idle.pop()!;
        outstanding++;
        c.send(opts.request(i++), (status) => {
          const end = performance.now();
          outstanding--;
          if (seen >= measureFrom) samples.add((end - seen) * 1000, status);
          idle.push(c);
          drain();
        });
      }
      if (!done && next >= stopAt && pending.length === 0 && outstanding === 0) {
        done = true;
        resolve(samples.result(runMs / 1000, 0, i));
      }
    };
    const tick = () => {
      const now = performance.now();
      while (next <= now && next < stopAt) {
        pending.push(now);
        next += interval;
      }
      drain();
      if (next >= stopAt) return;
      // Spin (setImmediate: I/O is still polled between turns) while the next request is due
      // within a timer tick, so requests leave on time instead of in 1 ms bursts; sleep otherwise.
      const wait = next - performance.now();
      if (opts.spin && wait < 1.5) setImmediate(tick);
      else setTimeout(tick, Math.max(0, wait));
    };
    tick();
  });
}
