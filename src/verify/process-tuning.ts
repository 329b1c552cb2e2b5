// Imported first by server.ts, before anything loads Oso: what the sidecar process changes about
// its runtime, and why. Both are measured with `npm run bench` (test/bench/).
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
if (!/wasm|liftoff|turbo/.test(own)) {
  try {
    setFlagsFromString('--liftoff-only');
  } catch {
    // A runtime without V8 flags at runtime (or without this one) compiles as it likes.
  }
}

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
