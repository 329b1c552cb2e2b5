// Step 1: the request being authorised is described by Traefik's X-Forwarded-* headers, not by
// the request to /auth/verify itself.
import { BadRequest } from '../errors.ts';
import { canonicalize, MEMO_URI_LENGTH, type CanonicalUri } from './canonical-uri.ts';
import type { VerifyDeps, VerifyStep } from './state.ts';

const METHOD = /^[A-Z]{1,16}$/;

// canonicalize() is a pure function of the URI string and costs more than a Map lookup (decoding,
// segment checks, look-alike checks): an SPA asks about the same few URIs again and again, so the
// results for short ones are kept. Bounded, emptied when full; a refusal is never kept (it throws,
// and is rare).
const MEMO_ENTRIES = 2048;
const memo = new Map<string, CanonicalUri>();

function canonical(uri: string | undefined): CanonicalUri {
  if (uri === undefined || uri.length > MEMO_URI_LENGTH) return canonicalize(uri);
  let c = memo.get(uri);
  if (c === undefined) {
    c = Object.freeze(canonicalize(uri));
    if (memo.size >= MEMO_ENTRIES) memo.clear();
    memo.set(uri, c);
  }
  return c;
}

export function canonicalizeRequest(deps: VerifyDeps): VerifyStep {
  return function canonicalizeRequestStep(ctx) {
    // Traefik always sends it. Without it, the request to /auth/verify (a GET) is no stand-in for
    // the one being authorised: read as a GET, a POST would skip the CSRF check.
    const method = ctx.h.method;
    if (method === undefined) throw new BadRequest('X-Forwarded-Method is missing');
    if (!METHOD.test(method)) throw new BadRequest('X-Forwarded-Method is not an HTTP method');
    if (ctx.h.confusing !== undefined) {
      throw new BadRequest(`the ${ctx.h.confusing} header is refused: an upstream could read it as another method, path or identity than the one authorised`);
    }
    const { path, raw } = canonical(ctx.h.uri);
    const s = ctx.state;
    s.method = method;
    s.path = path;
    s.rawUri = raw;
    s.policy = deps.policy();
  };
}

/** How much of a refused URI's path a debug line shows: enough to recognise it, not 8 KiB of it. */
const LOGGED_PATH_CHARS = 256;

/**
 * What the debug line of an answer says of the request when step 1 refused it (the state's method
 * and path are set only once it passes): the forwarded method when it is one, and the URI as sent
 * up to its query (which may hold secrets, as the path of an answered request is logged without
 * it), cut short. Read only at LOG_LEVEL=debug.
 */
export function describeRequest(ctx: Parameters<VerifyStep>[0]): { method: string | undefined; path: string | undefined } {
  const s = ctx.state;
  const method = s.method || (ctx.h.method !== undefined && METHOD.test(ctx.h.method) ? ctx.h.method : undefined);
  if (s.path) return { method, path: s.path };
  const uri = ctx.h.uri;
  if (!uri) return { method, path: undefined };
  const end = uri.search(/[?#]/);
  const path = end < 0 ? uri : uri.slice(0, end);
  return { method, path: path.length > LOGGED_PATH_CHARS ? `${path.slice(0, LOGGED_PATH_CHARS)}…` : path };
}
