// The answers to requests Node's HTTP server refuses itself. Node answers them with a bare status
// line; ours carry the one error shape (JSON, no-store) with the same status, and each refusal is
// handed to `onRefused` (src/http/refusals.ts: counted and logged).
import { Buffer } from 'node:buffer';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { refusalOf, safeCode, type OnRefused, type RefusalReason } from './refusals.ts';

/** The connections refused already (their answer is on its way, or they were cut). */
const refusedSockets = new WeakSet<Duplex>();

/** How long a refused connection may take to receive its answer before it is cut. */
const CLIENT_ERROR_LINGER_MS = 2_000;

const ANSWERS: Record<RefusalReason, readonly [reason: string, code: string, description: (maxHeaderBytes: number) => string]> = {
  header_too_large: ['Request Header Fields Too Large', 'headers_too_large', (n) => `the request headers are larger than ${n / 1024} KiB`],
  timeout: ['Request Timeout', 'request_timeout', () => 'the request took too long to arrive'],
  chunk_extensions_too_large: ['Payload Too Large', 'invalid_request', () => 'the chunk extensions are too large'],
  bad_request: ['Bad Request', 'invalid_request', () => 'the request is not valid HTTP/1.1'],
  incomplete: ['Bad Request', 'invalid_request', () => 'the request is not valid HTTP/1.1'],
  missing_host: ['Bad Request', 'invalid_request', () => 'an HTTP/1.1 request needs a Host header'],
};

function bodyOf(reason: RefusalReason, maxHeaderBytes: number): string {
  const [, code, description] = ANSWERS[reason];
  return JSON.stringify({ error: code, error_description: description(maxHeaderBytes) });
}

/**
 * Node's default 'clientError' handling (lib/_http_server.js, socketOnError), which a listener
 * replaces: answer only while the socket is writable and no response has started on it (else the
 * bytes would corrupt one in flight), then close it. A reset (or any system error) is the peer
 * gone: no answer, no refusal.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, maxHeaderBytes: number, onRefused: OnRefused | undefined): void {
  const refusal = refusalOf(err.code);
  if (refusal === undefined) {
    socket.destroy();
    return;
  }
  // Node parses each chunk still arriving after the error again, and reports it again (a 100 KiB
  // head over a 32 KiB limit came as two 431s): one refusal a connection.
  if (refusedSockets.has(socket)) {
    socket.destroy();
    return;
  }
  refusedSockets.add(socket);
  onRefused?.({ ...refusal, errCode: safeCode(err.code), peer: (socket as Socket).remoteAddress });
  const started = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (!socket.writable || started) {
    socket.destroy();
    return;
  }
  const body = bodyOf(refusal.reason, maxHeaderBytes);
  // Closed for good once written: end() alone half-closes, and the server's sockets allow half-open
  // connections, so a client that never closed its end kept the descriptor for as long as it liked
  // (thousands of them after a flood of stalled connections). A peer that does not read the
  // answer cannot hold it either.
  const closing = setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS);
  closing.unref();
  socket.once('close', () => clearTimeout(closing));
  socket.end(`HTTP/1.1 ${refusal.status} ${ANSWERS[refusal.reason][0]}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`, () => socket.destroy());
}

/** Whether the request has a Host field, found in rawHeaders: `req.headers` is not built for it. */
function hasHost(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') return true;
  }
  return false;
}

/**
 * Node's 400 for an HTTP/1.1 request without a Host header (createServer's requireHostHeader),
 * made here instead (the server is created with it off), so that it is counted and logged too.
 * Node's own check reads `req.headers.host`, which builds the whole headers object of every
 * request (~0.5 kB); the sidecar reads rawHeaders only (src/verify/request-headers.ts), so this
 * scan is cheaper than the check it replaces.
 */
export function requiringHost(handler: RequestListener, onRefused: OnRefused | undefined): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.httpVersionMinor !== 1 || req.httpVersionMajor !== 1 || hasHost(req.rawHeaders)) {
      handler(req, res);
      return;
    }
    onRefused?.({ reason: 'missing_host', status: 400, errCode: undefined, peer: req.socket.remoteAddress });
    const body = bodyOf('missing_host', 0);
    res.shouldKeepAlive = false;
    res.writeHead(400, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
    res.end(body);
  };
}
