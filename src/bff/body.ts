// A small, bounded request-body reader. The BFF accepts only tiny bodies (a CSRF token, a logout
// token), so anything large, malformed or of an unexpected type is a 400/413, never a hang or 500.
import type { IncomingMessage } from 'node:http';
import { Buffer } from 'node:buffer';
import { BadRequest, GoldpathError } from '../errors.ts';

export class PayloadTooLarge extends GoldpathError {
  constructor(limit: number) {
    super(413, 'invalid_request', `request body exceeds ${limit} bytes`);
  }
}

/** Reads the raw body up to `limit` bytes, rejecting larger bodies without buffering them. */
export async function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const n = Number(declared);
    if (!Number.isSafeInteger(n) || n < 0) throw new BadRequest('invalid Content-Length');
    if (n > limit) throw new PayloadTooLarge(limit);
  }
  // Event-based rather than for-await: leaving a for-await loop early destroys the socket, and the
  // client would see a reset instead of our 413.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | undefined, value?: Buffer) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      if (err) {
        req.pause();
        reject(err);
      } else {
        resolve(value!);
      }
    };
    const onData = (chunk: Buffer | string) => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += buf.length;
      if (size > limit) return finish(new PayloadTooLarge(limit));
      chunks.push(buf);
    };
    const onEnd = () => finish(undefined, Buffer.concat(chunks));
    const onError = () => finish(new BadRequest('the request body could not be read'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** Media type of the request without parameters, lower-cased ('' when absent). */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/**
 * Parses an application/x-www-form-urlencoded body (or an empty body) into single-valued fields.
 * A repeated field is ambiguous and therefore a 400.
 */
export async function readForm(req: IncomingMessage, limit = 8 * 1024): Promise<Record<string, string>> {
  const raw = await readRawBody(req, limit);
  if (raw.length === 0) return {};
  if (mediaType(req) !== 'application/x-www-form-urlencoded') {
    throw new BadRequest('expected an application/x-www-form-urlencoded body');
  }
  return parseForm(raw.toString('utf8'));
}

export function parseForm(text: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(text);
  } catch {
    throw new BadRequest('malformed form body');
  }
  for (const [k, v] of params) {
    if (k in out) throw new BadRequest(`field ${JSON.stringify(k.slice(0, 40))} is repeated`);
    out[k] = v;
  }
  return out;
}

/**
 * The text fields of a multipart/form-data body (RFC 7578), as parseForm gives a urlencoded one:
 * what `fetch(url, { method: 'POST', body: new FormData(form) })` and an HTML form with that
 * enctype send. Files are left out; a repeated field is a 400, as is a body that is not multipart.
 */
export function parseMultipart(text: string, contentType: string): Record<string, string> {
  const b = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  if (!b) throw new BadRequest('a multipart body without its boundary');
  const delimiter = `--${b[1] ?? b[2]}`;
  const out: Record<string, string> = Object.create(null);
  const parts = text.split(`\r\n${delimiter}`);
  // The first delimiter may open the body (no CRLF before it); what precedes it is a preamble.
  const first = parts[0]!.startsWith(delimiter) ? parts[0]!.slice(delimiter.length) : undefined;
  if (first === undefined && parts.length < 2) throw new BadRequest('malformed multipart body');
  const bodyParts = first === undefined ? parts.slice(1) : [first, ...parts.slice(1)];
  let closed = false;
  for (const part of bodyParts) {
    if (part.startsWith('--')) {
      closed = true;
      break;
    }
    const headEnd = part.indexOf('\r\n\r\n');
    if (!part.startsWith('\r\n') || headEnd < 0) throw new BadRequest('malformed multipart body');
    const head = part.slice(0, headEnd);
    const disposition = /\r\ncontent-disposition:[ \t]*form-data[ \t]*;[ \t]*name="([^"\r\n]*)"([^\r\n]*)/i.exec(head);
    if (!disposition || /;\s*filename\*?=/i.test(disposition[2]!)) continue; // not a field, or a file
    const name = disposition[1]!;
    if (name in out) throw new BadRequest(`field ${JSON.stringify(name.slice(0, 40))} is repeated`);
    out[name] = part.slice(headEnd + 4);
  }
  if (!closed) throw new BadRequest('malformed multipart body');
  return out;
}
