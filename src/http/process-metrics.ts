// Every goldpath process's process_* and nodejs_* metrics (the sidecar's and the BFF's), all read at scrape time.
//
// Why not prom-client's collectDefaultMetrics: its GC histogram subscribes a PerformanceObserver
// to every garbage collection. The hot path makes ~250 young-generation collections a second at
// 30k requests/s, and each one then ran JavaScript whose objects were promoted to the old
// generation (60 % of all promoted bytes, measured with V8's sampling heap profiler). That garbage
// forced a full collection every few seconds, a 7 ms pause plus ~10 ms of marking on the sidecar's
// core: p99 at half rate went from ~1 ms to 8 ms whenever one landed. Everything below costs
// nothing between scrapes; GC pauses show up in nodejs_eventloop_lag_* instead.
import process from 'node:process';
import { createHistogram, monitorEventLoopDelay, performance, type RecordableHistogram } from 'node:perf_hooks';
import { setInterval } from 'node:timers';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { Counter, Gauge, type Registry } from 'prom-client';

/** Registers process and runtime metrics; a runtime without one of the hooks simply lacks it. */
export function exportProcessMetrics(registry: Registry): void {
  const registers = [registry];
  const started = Math.round(Date.now() / 1000 - process.uptime());
  const cpuSeconds = (name: string, help: string, part: (u: NodeJS.CpuUsage) => number) => {
    let last = 0;
    return new Counter({
      name, help, registers,
      collect() {
        const now = part(process.cpuUsage());
        this.inc(Math.max(0, (now - last) / 1e6));
        last = now;
      },
    });
  };
  cpuSeconds('process_cpu_user_seconds_total', 'user CPU time, seconds', (u) => u.user);
  cpuSeconds('process_cpu_system_seconds_total', 'system CPU time, seconds', (u) => u.system);
  cpuSeconds('process_cpu_seconds_total', 'user and system CPU time, seconds', (u) => u.user + u.system);
  new Gauge({ name: 'process_start_time_seconds', help: 'start time, seconds since the epoch', registers, collect() { this.set(started); } });
  new Gauge({ name: 'process_resident_memory_bytes', help: 'resident set size', registers, collect() { this.set(process.memoryUsage.rss()); } });
  new Gauge({
    name: 'nodejs_external_memory_bytes', help: 'memory of objects outside the JS heap (buffers, WebAssembly)', registers,
    collect() { this.set(process.memoryUsage().external); },
  });
  new Gauge({ name: 'nodejs_heap_size_total_bytes', help: 'JS heap size', registers, collect() { this.set(getHeapStatistics().total_heap_size); } });
  new Gauge({ name: 'nodejs_heap_size_used_bytes', help: 'JS heap in use', registers, collect() { this.set(getHeapStatistics().used_heap_size); } });
  const spaces = (what: 'total' | 'used' | 'available', read: (s: ReturnType<typeof getHeapSpaceStatistics>[number]) => number) =>
    new Gauge({
      name: `nodejs_heap_space_size_${what}_bytes`, help: `JS heap ${what} by space`, labelNames: ['space'], registers,
      collect() {
        for (const s of getHeapSpaceStatistics()) this.set({ space: s.space_name.replace(/_space$/, '') }, read(s));
      },
    });
  spaces('total', (s) => s.space_size);
  spaces('used', (s) => s.space_used_size);
  spaces('available', (s) => s.space_available_size);
  try {
    // A native histogram sampled every 10 ms: no JavaScript runs between scrapes.
    const delay = eventLoopDelay(10);
    // The registry reads its metrics in registration order, each right after its own collect():
    // this one, registered first, sets the others from one reading and starts the next interval.
    // (After a reset Node's monitor skips its first 10 ms tick, as with prom-client's defaults.)
    new Gauge({
      name: 'nodejs_eventloop_lag_max_seconds', help: 'event loop delay, maximum since the last scrape', registers,
      collect() {
        const s = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0);
        this.set(s(delay.max));
        mean.set(s(delay.mean));
        p50.set(s(delay.percentile(50)));
        p99.set(s(delay.percentile(99)));
        delay.reset();
      },
    });
    const lag = (stat: string, help: string) =>
      new Gauge({ name: `nodejs_eventloop_lag_${stat}_seconds`, help: `event loop delay, ${help} since the last scrape`, registers });
    const mean = lag('mean', 'mean');
    const p50 = lag('p50', 'median');
    const p99 = lag('p99', '99th percentile');
  } catch {
    // No event loop delay monitor in this runtime.
  }
}

/**
 * The event loop's delay, sampled every `resolutionMs`: what Node's monitorEventLoopDelay records,
 * the time between two of its ticks (so ~resolutionMs on an idle loop, and the whole block when
 * the loop is held up). Deno 2.9's monitorEventLoopDelay exists but does not see the loop: a loop
 * blocked for 60 ms reads as a 2 ms maximum, an idle one as 3 µs. There the same quantity is
 * sampled with a timer instead (one callback per tick, unref'd: it never keeps a process alive).
 */
function eventLoopDelay(resolutionMs: number): Pick<RecordableHistogram, 'max' | 'mean' | 'percentile' | 'reset'> {
  if (typeof process.versions['deno'] !== 'string') {
    const native = monitorEventLoopDelay({ resolution: resolutionMs });
    native.enable();
    return native;
  }
  const sampled = createHistogram();
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    sampled.record(Math.max(1, Math.round((now - last) * 1e6)));
    last = now;
  }, resolutionMs).unref();
  return sampled;
}
