// The forwardAuth request: the auth answer read up to maxResponseBodySize, within a deadline.
import { request as httpRequest, type RequestOptions, type IncomingHttpHeaders } from 'node:http';
import { Buffer } from 'node:buffer';

export class ResponseBodyTooLarge extends Error {}

/** Traefik reads at most limit + 1 bytes of the auth answer: anything more is too large. */
export function fetchLimited(
  options: RequestOptions,
  limit: number,
  timeoutMs: number,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settle = () => clearTimeout(timer);
    const req = httpRequest(options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (limit >= 0 && size > limit) {
          settle();
          res.destroy();
          req.destroy();
          reject(new ResponseBodyTooLarge(`the auth response body is larger than maxResponseBodySize (${limit} bytes)`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => { settle(); resolve({ status: res.statusCode ?? 500, headers: res.headers, body: Buffer.concat(chunks) }); });
      res.on('error', (err) => { settle(); reject(err); });
    });
    req.on('error', (err) => { settle(); reject(err); });
    // A deadline for the whole exchange, reading the answer included, as Go's Client.Timeout: a
    // socket idle timeout never fired for an answer that trickled in, and the client waited forever.
    timer = setTimeout(() => req.destroy(new Error('the auth server did not answer in time')), timeoutMs);
    req.end();
  });
}
