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
