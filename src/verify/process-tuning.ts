// Imported by cli.ts before it loads the sidecar's modules (loading them grows the nursery, see 3),
// and first by server.ts, before anything loads Oso: what the sidecar process changes about its
// runtime, and why. Each is measured with `npm run bench` (test/bench/, memory.ts for memory).
import { createRequire } from 'node:module';
import process from 'node:process';
import { setFlagsFromString } from 'node:v8';

// 1. --liftoff-only. Oso's policy engine is a 1.2 MB WebAssembly module. V8 first compiles it with
// its baseline compiler (Liftoff), then recompiles the hot functions with TurboFan, whose
// compilation leaves ~45 MB of process memory behind (RSS 150 → 105 MB after 20,000 queries).
// TurboFan makes one uncached Oso query ~25 % faster (64 → 83 µs), but the sidecar caches its
// decisions (src/pdp/decision-cache.ts, authorize.ts), so it keeps the memory instead.
// A process started with its own wasm flags (NODE_OPTIONS, node --...) keeps them.
const own = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
/** Sets a V8 flag unless the operator set a related one; a runtime that refuses keeps its default. */
function flag(value: string, unlessOwn: RegExp): void {
  if (unlessOwn.test(own)) return;
  try {
    setFlagsFromString(value);
  } catch {
    // A runtime without V8 flags at runtime (or without this one) behaves as it likes.
  }
}
flag('--liftoff-only', /wasm|liftoff|turbo/);

// 2. No `repl` for Oso. oso/dist/src/Polar.js requires Node's `repl` when it loads, for
// Polar.repl(), an interactive console a server never opens. Loading `repl` loads `domain`, and
// once `domain` is loaded every EventEmitter defines an extra property when it is created: two
// per HTTP request (the request and the response), ~0.9 µs, 6 % of a whole /auth/verify answer.
// Polar gets a stand-in whose start() explains itself. (CommonJS looks in require.cache before
// its built-ins for a bare 'repl'; where that does not hold the real module loads, as before.)
try {
  const require = createRequire(import.meta.url);
  if (require.cache.repl === undefined) {
    const start = () => {
      throw new Error('the Polar REPL is not available inside goldpath verify');
    };
    require.cache.repl = { id: 'repl', filename: 'repl', loaded: true, exports: { start } } as unknown as NodeJS.Module;
  }
} catch {
  // No CommonJS cache here (another runtime): nothing to do.
}

// 3. A young generation that does not grow. V8 starts it at 1 MB per semi-space and doubles it,
// up to 16 MB, whenever much of it survives a scavenge, which a sidecar caching 10,000 sessions
// makes happen: the process then holds 32 MB for the nursery alone. The sidecar's garbage is
// per-request and dies young, so a small nursery collects it just as well (a scavenge costs what
// survives, not the nursery's size: more, shorter pauses). `--max-semi-space-size` cannot be
// changed once the heap exists; the growth factor can, and 1 means "keep the current size".
// Measured: RSS with 10,000 active sessions −28 MB. CPU per request against a build without 3
// and 4 (test/bench/compare.js): hot path 1.01, a 401 0.97, but one user asking about 1,000
// resource ids in turn (bench scenario (f), every request a decision-cache lookup) 1.24: the
// price of the memory, paid only by sessions that keep asking about new resources.
// compose/compose.yaml starts the sidecar with `--max-semi-space-size=2` instead (which skips this
// one): a nursery of 2 MB, not 1, gives half the scavenges (4.6 instead of 9.2 per 1,000 hot-path
// requests, each paid by whichever request arrives during it; `--trace-gc`) at the same RSS
// within the ±2 MB between identical runs. Only a flag given before the heap exists can do that.
flag('--semi-space-growth-factor=1', /semi-space/);

// 4. A tighter old generation. After each full collection V8 lets the heap grow by a factor it
// picks from its GC speed (often 2 or more) before collecting again: with 40 MB live, 40 MB of
// garbage could wait in RSS. The sidecar's long-lived data (cached sessions, decisions) changes
// slowly, so a full collection is rare either way; 20 % growth between them keeps RSS close to
// what is live.
flag('--heap-growing-percent=20', /heap-growing|optimize-for-size/);

// 5. Scavenges on the main thread alone. With the small nursery of 3 a scavenge has little to copy
// (the requests in flight), and handing that to helper threads costs more in coordination than
// it saves: median pause 0.20–0.26 ms in parallel, 0.16–0.18 ms alone, total pause time −20 to
// −30 % (`--trace-gc`, hot path at 20,000 req/s, four runs each), at the same instructions per
// request (test/bench/instructions.ts). Every request that arrives during a scavenge waits for
// it, so this is latency, not throughput. V8 reads the flag at every scavenge.
flag('--no-parallel-scavenge', /scavenge|single-threaded/);

// 6. No allocation-site pretenuring. V8 watches each object and array literal. When, at a
// scavenge of a nursery at its maximum size, 85 % of the objects a literal made since the last
// one (at least 100) are still alive, V8 allocates that literal's objects in the old generation
// from then on, and never goes back. The fixed nursery of 3 is always at its maximum, so one
// unlucky scavenge decides. When the chain's per-request literals were tenured (the headers it
// reads, its list of response headers), every request put them in the old generation, with the
// young strings they point to. At 20,000 req/s that was 18 MB every 2 s, 3–4 full collections,
// and a p99 of 5–9 ms, for the life of the process. It hit 1 sidecar process in 4 to 8 under
// test/bench/gc.ts, at random ("the promoting mode" in test/bench/RESULTS.md). Newer V8 refuses such decisions
// in nurseries under 16 MB for this reason, but not when the maximum is smaller still, as here.
// The sidecar's long-lived objects (cached sessions, decisions) are few and change slowly:
// copying them once more through the nursery costs nothing measurable.
flag('--no-allocation-site-pretenuring', /pretenur/);

// 7. No Sparkplug. V8's baseline compiler turns every function that runs a few times into machine
// code on the main thread, on its way to TurboFan. The sidecar's hot functions reach TurboFan
// either way; what Sparkplug adds is code for the warm rest (startup, config, the heartbeat),
// plus its compile-time memory. Measured (memory.ts's workload, 10,000 active sessions, six runs
// each, alternating): RSS 96.1 → 94.4 MiB. Server CPU per request without it ÷ with it (the same
// build started both ways, compare.ts's alternating pairs, 7 each): hot path 0.98, no cookie 1.03,
// forged cookie 1.00, 10,000 sessions 0.93: no cost.
flag('--no-sparkplug', /sparkplug|jitless/);

// Deno 2.9 ignores every V8 flag set at run time: compose/Dockerfile.deno gives all of these on
// its command line (test/compose/static.test.ts keeps the lists in step).
