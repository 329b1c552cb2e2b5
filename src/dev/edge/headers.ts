// Header helpers of the development edge: Traefik's own X-headers, hop-by-hop headers, the Host
// header's parts, and case-insensitive edits of an answer's headers.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/**
 * The X-headers Traefik manages (pkg/middlewares/forwardedheaders: XHeadersSet of v3.6.14 and later).
 * From an untrusted client, the entry point deletes each of them, and any spelling that is one of
 * them once every "_" is read as "-" (X_Forwarded_Host, X-Real_Ip); forwardAuth with
 * trustForwardHeader: false deletes them again from the auth request before setting its own.
 */
export const TRAEFIK_X_HEADERS: ReadonlySet<string> = new Set([
  'x-forwarded-proto', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-server',
  'x-forwarded-uri', 'x-forwarded-method', 'x-forwarded-prefix', 'x-forwarded-tls-client-cert',
  'x-forwarded-tls-client-cert-info', 'x-real-ip',
]);

/** Deletes the headers of TRAEFIK_X_HEADERS and their underscore spellings (lower-case names). */
export function deleteTraefikXHeaders(h: Record<string, unknown>): void {
  for (const k of Object.keys(h)) if (TRAEFIK_X_HEADERS.has(k.replaceAll('_', '-'))) delete h[k];
}

export type ResponseHeaders = Record<string, string | string[]>;

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

export function copyHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = v;
  return out;
}

/** Removes hop-by-hop headers, including every header the Connection header names. */
export function stripHopByHop(h: Record<string, string | string[]>, proxyAuth: boolean): void {
  const conn = h.connection;
  for (const v of Array.isArray(conn) ? conn : conn ? [conn] : []) {
    for (const name of v.split(',')) delete h[name.trim().toLowerCase()];
  }
  for (const k of HOP_BY_HOP) delete h[k];
  // Proxy-Authorization goes to the auth server (RFC 7235 4.4), never to an upstream.
  if (proxyAuth) { delete h['proxy-authorization']; delete h['proxy-authenticate']; }
}

/** The port of a Host header ('' when it names none). */
export function portOf(hostHeader: string): string {
  const i = hostHeader.lastIndexOf(':');
  return i > hostHeader.lastIndexOf(']') ? hostHeader.slice(i + 1) : '';
}

export function hostOnly(hostHeader: string): string {
  const h = hostHeader.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const i = h.lastIndexOf(':');
  return i === -1 ? h : h.slice(0, i);
}

export function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * A request header's first value, as Go's Header.Get reads it; undefined when absent. Node joins a
 * repeated Origin or Access-Control-Request-Method into one value (", "), which Traefik never sees.
 */
export function firstValue(req: IncomingMessage, lowerName: string): string | undefined {
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === lowerName) return raw[i + 1];
  return undefined;
}

export function setHeader(h: ResponseHeaders, name: string, value: string): void {
  deleteHeader(h, name);
  h[name.toLowerCase()] = value;
}
export function deleteHeader(h: ResponseHeaders, name: string): void {
  const lc = name.toLowerCase();
  for (const k of Object.keys(h)) if (k.toLowerCase() === lc) delete h[k];
}
export function getHeader(h: ResponseHeaders, name: string): string | undefined {
  const lc = name.toLowerCase();
  for (const [k, v] of Object.entries(h)) if (k.toLowerCase() === lc) return Array.isArray(v) ? v.join(',') : v;
  return undefined;
}
