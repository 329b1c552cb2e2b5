// The answers to requests Node's HTTP server refuses itself. Node answers them with a bare status
// line (or, for CONNECT, with nothing: it cuts the connection); ours carry the one error shape
// (JSON, no-store), and each refusal is handed to `onRefused` (src/http/refusals.ts: counted and
// logged). All of them are server-level listeners, registered once (src/http/serve.ts): none adds
// work to a request that is not refused, but for requiringHost's look at its Host field.
import { Buffer } from 'node:buffer';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { parse as legacyParse } from 'node:url';
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
  expectation_failed: ['Expectation Failed', 'expectation_failed', () => 'the only expectation this server meets is 100-continue'],
  connect: ['Method Not Allowed', 'method_not_allowed', () => 'this server opens no tunnels: CONNECT is for proxies'],
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
 *
 * Nor while an answer is still owed to an earlier request received whole (pipelined, its handler
 * still at work: a /readyz waiting on the store): Node answers there too, and its 400 reached the
 * client as the answer to that earlier request, which never came. Cut instead, as a CONNECT in
 * that place is (answerConnect). The request the owed answer is for may also be the one refused
 * (a malformed chunk of its body, a body too slow to arrive): not received whole, it gets the
 * answer, which is its own.
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
  const owed = (socket as { _httpMessage?: { headersSent?: boolean; req?: { complete?: boolean } } | null })._httpMessage;
  const started = owed?.headersSent === true;
  const overtaking = owed?.req?.complete === true;
  const cut = !socket.writable || started || overtaking;
  onRefused?.({ ...refusal, errCode: safeCode(err.code), peer: (socket as Socket).remoteAddress, ...(cut ? { cut } : {}) });
  if (cut) {
    socket.destroy();
    return;
  }
  endWith(socket, refusal.reason, refusal.status, bodyOf(refusal.reason, maxHeaderBytes), '');
}

/**
 * Writes the answer on a socket the HTTP server no longer (or never) answers on, then closes it.
 * Closed for good once written: end() alone half-closes, and the server's sockets allow half-open
 * connections, so a client that never closed its end kept the descriptor for as long as it liked
 * (thousands of them after a flood of stalled connections). A peer that does not read the answer
 * cannot hold it either.
 */
function endWith(socket: Duplex, reason: RefusalReason, status: number, body: string, extraHeaders: string): void {
  const closing = setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS);
  closing.unref();
  socket.once('close', () => clearTimeout(closing));
  socket.end(`HTTP/1.1 ${status} ${ANSWERS[reason][0]}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n${extraHeaders}` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`, () => socket.destroy());
}

/**
 * A CONNECT request (the server's 'connect' event). Node, with no listener, cuts the connection
 * without a word (and without a trace here); this answers it, counts it and closes it.
 *
 * Why 405 (with an empty Allow): CONNECT is a well-formed request for a tunnel, which only a proxy
 * opens (RFC 9110 9.3.6), and goldpath is none. 400 would say the request is malformed, and it is
 * not. 501 says the server lacks the method for any resource, a server-side failure as monitoring
 * reads 5xx; the answer the rest of goldpath gives a method a route does not take is 405 (both
 * processes turn @koa/router's 501 into it: src/http/answer-unmatched.ts). A 405 must name what
 * the target allows; the target of a CONNECT is an authority (`host:port`), no resource here, and
 * allows no method: an empty Allow says exactly that (RFC 9110 10.2.1).
 *
 * The server hands the socket over with its HTTP machinery detached (no parser, no timeouts, no
 * error listener: lib/_http_server.js, onParserExecuteCommon), so this one closes it, takes its
 * errors (a peer reset while the answer is written would otherwise be an uncaught 'error'), and
 * reads and drops whatever the peer still sends (its tunnel's first bytes, never looked at: a
 * close with bytes left unread is a reset, RFC 1122 4.2.2.13, which can cost the peer the answer,
 * and the 2 s linger bounds how long it may send them). A response still
 * owed on the connection to an earlier, pipelined request cannot be followed by this answer in
 * order: the connection is cut, as Node would.
 */
export function answerConnect(socket: Duplex, onRefused: OnRefused | undefined): void {
  socket.on('error', () => socket.destroy());
  socket.resume();
  const cut = !socket.writable || (socket as { _httpMessage?: unknown })._httpMessage != null;
  onRefused?.({ reason: 'connect', status: 405, errCode: undefined, peer: (socket as Socket).remoteAddress, ...(cut ? { cut } : {}) });
  if (cut) {
    socket.destroy();
    return;
  }
  endWith(socket, 'connect', 405, bodyOf('connect', 0), 'Allow: \r\n');
}

/**
 * Whether the request target is one the handlers can read. Node's parser lets through an
 * absolute-form target (`GET http://host/path`, which a server must accept, RFC 9112 3.2.2)
 * whose authority is no valid host (`http://[::1/`, `http://%@a/`); Koa reads every path with
 * the legacy url.parse (parseurl), which throws on those: a 500 and an error line each, as often
 * as anyone liked, and in the BFF a bare text/plain 500, its access log reading the path again
 * after the error handler. Refused here, as the malformed request they are, with the parser's
 * own check (the one Koa would trip on, whatever this runtime's version of it refuses). An
 * origin-form target (`/...`, every request from the edge) costs one comparison: url.parse
 * takes no host from one, and cannot throw.
 */
function targetReadable(url: string | undefined): boolean {
  if (url === undefined || url.charCodeAt(0) === 0x2f /* / */) return true;
  try {
    legacyParse(url);
    return true;
  } catch {
    return false;
  }
}

/**
 * Node's 400 for an HTTP/1.1 request without a Host header (createServer's requireHostHeader),
 * made here instead (the server is created with it off), so that it is counted and logged too.
 * Reading `req.headers` costs nothing more here: Node has already built it for every HTTP/1.1
 * request, to look for an Expect field (lib/_http_server.js, parserOnIncoming). Then a request
 * target the handlers could not read (targetReadable): a 400 too.
 */
export function requiringHost(handler: RequestListener, onRefused: OnRefused | undefined): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.httpVersionMinor === 1 && req.httpVersionMajor === 1 && req.headers.host === undefined) {
      refuse(req, res, 'missing_host', 400, onRefused);
      return;
    }
    if (!targetReadable(req.url)) {
      refuse(req, res, 'bad_request', 400, onRefused);
      return;
    }
    handler(req, res);
  };
}

/**
 * The server's 'checkContinue' event: an HTTP/1.1 request with `Expect: 100-continue`. Node, with
 * no listener, writes `100 Continue` and hands the request on, and requiringHost's 400 then came
 * after a 100 that had invited the body: one without Host is refused before that, as Node's own
 * check (off here) refuses it; so is a target the handlers could not read (targetReadable). Any
 * other gets the 100 and reaches `handler` as Node would send it.
 */
export function continuing(handler: RequestListener, onRefused: OnRefused | undefined): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers.host === undefined) {
      refuse(req, res, 'missing_host', 400, onRefused);
      return;
    }
    if (!targetReadable(req.url)) {
      refuse(req, res, 'bad_request', 400, onRefused);
      return;
    }
    res.writeContinue();
    handler(req, res);
  };
}

/** Answers a request the handler will not see, in the one error shape, and closes its connection. */
function refuse(req: IncomingMessage, res: ServerResponse, reason: RefusalReason, status: number, onRefused: OnRefused | undefined): void {
  onRefused?.({ reason, status, errCode: undefined, peer: req.socket.remoteAddress });
  const body = bodyOf(reason, 0);
  res.shouldKeepAlive = false;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
  res.end(body);
}

/**
 * The server's 'checkExpectation' event: an HTTP/1.1 request whose Expect field is anything but
 * 100-continue (which Node meets itself, answering `100 Continue` before the handler runs). Node,
 * with no listener, answers a bare 417 and keeps the connection; this answers 417 in our shape,
 * counts it, and closes the connection: a client told its expectation failed may never send the
 * body its Content-Length announced, and the connection would then be in no known state. Node
 * checks Host before Expect (requireHostHeader, off here: requiringHost makes that check), so a
 * request with neither is the 400 it would be.
 */
export function refusingExpectation(onRefused: OnRefused | undefined): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers.host !== undefined) refuse(req, res, 'expectation_failed', 417, onRefused);
    else refuse(req, res, 'missing_host', 400, onRefused);
  };
}
