// Outbound HTTP to an IdP. The global fetch of Node (undici) and Deno cannot present a client
// certificate without runtime-specific APIs (undici's Agent is not a dependency; Deno.createHttpClient
// is Deno-only), so tls_client_auth goes through node:https, which both runtimes implement.
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { readFileSync } from 'node:fs';
import { Buffer } from 'node:buffer';

/** The fetch shape openid-client's customFetch and jose's customFetch both accept. */
export type FetchLike = (url: string, init: {
  method?: string;
  headers?: HeadersInit | Record<string, string>;
  body?: BodyInit | null | undefined;
  signal?: AbortSignal | null | undefined;
  redirect?: RequestRedirect;
}) => Promise<Response>;

export interface TlsMaterial {
  cert?: string | Buffer;
  key?: string | Buffer;
  ca?: string | Buffer;
}

/** IdP responses are small JSON documents; anything larger is refused. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * `inner` (the global fetch, or the one the caller passed) with the same bound on the response
 * body as tlsFetch: a larger answer is an error (→ 503), never buffered whole or kept in a session.
 */
export function limitedFetch(inner: FetchLike): FetchLike {
  return async (url, init) => {
    const res = await inner(url, init);
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > MAX_RESPONSE_BYTES) {
      await res.body?.cancel().catch(() => undefined);
      throw new Error('IdP response too large');
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > MAX_RESPONSE_BYTES) {
          await reader.cancel().catch(() => undefined);
          throw new Error('IdP response too large');
        }
        chunks.push(value);
      }
    }
    const headers = new Headers(res.headers);
    // The body below is the decoded one.
    headers.delete('content-encoding');
    headers.delete('content-length');
    const noBody = res.status === 204 || res.status === 304 || res.body === null;
    return new Response(noBody ? null : Buffer.concat(chunks), { status: res.status, statusText: res.statusText, headers });
  };
}

/** Reads the PEM files of an idps.yaml `mtls:` block. */
export function readTlsMaterial(m: { cert: string; key: string; ca: string | undefined }): TlsMaterial {
  return { cert: readFileSync(m.cert), key: readFileSync(m.key), ca: m.ca ? readFileSync(m.ca) : undefined };
}

/**
 * A fetch over node:http(s) with a client certificate and/or a private CA. Never follows
 * redirects (openid-client asks for redirect: 'manual'); bounded response size; honours `signal`.
 */
export function tlsFetch(tls: TlsMaterial): FetchLike {
  return async (url, init) => {
    const u = new URL(url);
    const headers = new Headers(init.headers as HeadersInit | undefined);
    const body = await bodyBytes(init.body);
    if (body) headers.set('content-length', String(body.length));
    const flat: Record<string, string> = {};
    headers.forEach((v, k) => { flat[k] = v; });
    const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Response>((resolve, reject) => {
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
      const req = request(u, {
        method: init.method ?? 'GET', headers: flat,
        cert: tls.cert, key: tls.key, ca: tls.ca,
        // A new connection per request: keeps certificate handling simple and identical on Deno.
        agent: false,
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new Error('IdP response too large'));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          const status = res.statusCode ?? 502;
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined) continue;
            for (const one of Array.isArray(v) ? v : [v]) h.append(k, one);
          }
          const noBody = status === 204 || status === 304 || (status >= 100 && status < 200);
          resolve(new Response(noBody ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage ?? '', headers: h }));
        });
        res.on('error', reject);
      });
      const onAbort = () => req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('error', reject);
      req.end(body);
    });
  };
}

async function bodyBytes(body: BodyInit | null | undefined): Promise<Buffer | undefined> {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return Buffer.from(await new Response(body).arrayBuffer());
}
