// Why the Redis backend calls makeStringPrototypeFast() once ioredis has loaded.
//
// ioredis declares `class VerbatimString extends String` (built/resp/verbatim-string.js) as it
// loads. V8 turns an object into a dictionary (slow mode) when it becomes the prototype of another
// prototype, and turns it back into a fast object only during a property lookup whose receiver is
// an object. A lookup on a string primitive never is one, so String.prototype would stay a
// dictionary for the life of the process. Optimised code then cannot inline any string method
// (our `name.charCodeAt`, `cookie.slice`, Node's own `field.toLowerCase()` in its header parser...):
// each one becomes a call to V8's generic LoadIC builtin. In the sidecar that was ~60 calls per
// /auth/verify request (callgrind with --perf-basic-prof; test/bench/RESULTS.md, "Where the gains came from").
//
// A lookup through a String wrapper object makes it fast again, provided the lookup's call site
// has feedback. V8 gives a function feedback only after a few calls (8 in Node 20), hence the
// loop. test/session/string-prototype.test.ts checks both halves: ioredis alone leaves
// String.prototype slow, the Redis backend leaves it fast.
const LOOKUPS = 32;

function lookUp(wrapper: object): unknown {
  return (wrapper as { charCodeAt?: unknown }).charCodeAt;
}

export function makeStringPrototypeFast(): void {
  const wrapper: object = Object('');
  for (let i = 0; i < LOOKUPS; i++) lookUp(wrapper);
}
