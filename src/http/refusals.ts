// Requests Node's HTTP server refuses before any handler sees them (a head over the size limit,
// malformed HTTP, a client too slow to send its request, an Expect other than 100-continue, a
// CONNECT): counted and logged here, as nothing else would. Without this, the 431s and 400s an
// edge reports from a goldpath process left no trace in it.
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../log.ts';
import { FloodGate } from './flood-gate.ts';

/** The `reason` label: a fixed set, whatever code a client's bytes make the parser report. */
export const REFUSAL_REASONS = [
  'header_too_large', 'bad_request', 'incomplete', 'timeout', 'chunk_extensions_too_large', 'missing_host', 'expectation_failed', 'connect',
] as const;
export type RefusalReason = typeof REFUSAL_REASONS[number];

export interface Refusal {
  readonly reason: RefusalReason;
  /** The status Node answers it with (when the socket can still take an answer). */
  readonly status: number;
  /**
   * True when no answer could be written, and the connection was cut instead: a response to an
   * earlier, pipelined request had started or was still owed on it (an answer then would corrupt
   * it or overtake it), or the socket could no longer be written. The line says so; `status` is
   * then the answer the request would have had.
   */
  readonly cut?: boolean;
  /** Node's error code (HPE_INVALID_METHOD...): a name from a fixed list, never the client's bytes. */
  readonly errCode: string | undefined;
  /** The peer's address, no port: the most a line says of who sent it. */
  readonly peer: string | undefined;
}

/** What a process does with each refusal (listen() calls it); counting and logging, below. */
export type OnRefused = (refusal: Refusal) => void;

/**
 * The reason and status for a 'clientError', as Node's own default handler answers it
 * (lib/_http_server.js, socketOnError); undefined for a connection error that is no refusal:
 * the peer reset or went away (ECONNRESET, EPIPE...), nothing to answer and no client fault.
 */
export function refusalOf(code: string | undefined): { reason: RefusalReason; status: number } | undefined {
  if (code === 'HPE_HEADER_OVERFLOW') return { reason: 'header_too_large', status: 431 };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { reason: 'timeout', status: 408 };
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return { reason: 'chunk_extensions_too_large', status: 413 };
  // The peer closed its end mid-request (Node answers 400 to a half-closed socket): a client
  // or an edge that gave up, not a malformed request.
  if (code === 'HPE_INVALID_EOF_STATE') return { reason: 'incomplete', status: 400 };
  // A system error (ECONNRESET, EPIPE, ETIMEDOUT): the connection failed, the request was not refused.
  if (code !== undefined && /^E[A-Z]+$/.test(code)) return undefined;
  // Any other parser code (HPE_INVALID_METHOD, HPE_INVALID_HEADER_TOKEN...; Deno says HPE_ERROR).
  return { reason: 'bad_request', status: 400 };
}

/** Only a code of the parser's fixed vocabulary goes into a log line. */
const CODE = /^[A-Z][A-Z0-9_]{0,47}$/;
export function safeCode(code: unknown): string | undefined {
  return typeof code === 'string' && CODE.test(code) ? code : undefined;
}

/**
 * `goldpath_http_refused_total{reason}` in `registry`, every reason from zero, and a warning a
 * second at most (the FloodGate of the other repeated failures): a flood of malformed requests
 * must not become a flood of log lines. The line holds the reason, status, Node's code and the
 * peer's address; never the request's bytes (err.rawPacket holds its headers, cookies included).
 */
export function refusalRecorder(registry: Registry, log: Logger): OnRefused {
  const name = 'goldpath_http_refused_total';
  const counter = (registry.getSingleMetric(name) as Counter<'reason'> | undefined) ?? new Counter({
    name, help: "requests the HTTP server refused before goldpath saw them (Node's own 400, 408, 413, 417, 431; 405 for CONNECT), by reason",
    labelNames: ['reason'], registers: [registry],
  });
  for (const reason of REFUSAL_REASONS) counter.inc({ reason }, 0);
  const say = (r: Refusal, also: number) => log.warn({
    reason: r.reason, status: r.status, ...(r.cut === true ? { cut: true } : {}), errCode: r.errCode, peer: r.peer,
    ...(also > 0 ? { alsoRefused: also } : {}),
  }, 'request refused by the HTTP server');
  // The refusals held in a second are said when it ends (the last one, standing for the others).
  const gate = new FloodGate<Refusal>(1_000, say);
  return (r) => {
    counter.inc({ reason: r.reason });
    const held = gate.pass(performance.now(), r);
    if (held !== undefined) say(r, held);
  };
}
