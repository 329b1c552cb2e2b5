// The example upstream API and the example SPA's static file server (demo, compose, tests).
//
// The API answers every /api/** request with what it received, so a person can see the golden
// path work: the identity headers the verify sidecar added, and that no session cookie arrived.
// It never echoes a credential in full: Authorization and DPoP show the scheme and 8 characters.
// It does no authentication of its own; a real API must validate the Bearer token it receives
// (signature, issuer, audience, expiry) and must only be reachable through the edge.
//
// Run alone (compose): node dist/src/dev/api.js api|spa   (PORT, HOST from the environment)
import { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, extname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { listen, onShutdown } from '../http/serve.ts';
import { createLogger } from '../log.ts';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface ExampleApiOptions {
  readonly port?: number;
  readonly host?: string;
  /** Also serve the SPA's static files (non-/api paths) from this folder. */
  readonly spaDir?: string;
}

/** The names of the session cookie (SPEC section 4); the API reports whether one reached it. */
const SESSION_COOKIES = new Set(['goldpath', '__Host-goldpath']);
const MAX_BODY = 16 * 1024;
/**
 * How deep a JSON body may nest. The echo indents two spaces a level, so a body n deep comes back
 * ~2n² bytes long: 16 KiB of brackets was ~130 MB and seconds of the demo's one thread, and
 * deeper still JSON.stringify overflowed its stack (a 500).
 */
const MAX_DEPTH = 32;
/** Headers shown only as a fingerprint or by name, never in full. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'dpop', 'x-csrf-token']);

/** "Bearer eyJhbGci…": the scheme (if any) and at most 8 characters of the credential. */
export function fingerprint(value: string): string {
  const m = /^(\S+)\s+(\S.*)$/.exec(value.trim());
  const [scheme, secret] = m ? [m[1]! + ' ', m[2]!] : ['', value.trim()];
  const shown = Math.min(8, Math.floor(secret.length / 2));
  return `${scheme}${secret.slice(0, shown)}…`;
}

/** The request handler of the example API (exported for tests and in-process demos). */
export function exampleApiHandler(opts: { spaDir?: string } = {}): RequestListener {
  const spa = opts.spaDir === undefined ? undefined : spaHandler(opts.spaDir);
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://api.invalid');
    if (url.pathname === '/api' || url.pathname.startsWith('/api/')) {
      echo(req, res, url).catch(() => json(res, 500, { error: 'server_error' }));
      return;
    }
    if (spa) { spa(req, res); return; }
    json(res, 404, { error: 'not_found', error_description: 'the example API serves /api/** only' });
  };
}

export async function startExampleApi(opts: ExampleApiOptions = {}): Promise<RunningServer> {
  const l = await listen(exampleApiHandler({ spaDir: opts.spaDir }), opts.port ?? 0, opts.host ?? '127.0.0.1');
  return { url: l.url, port: l.port, close: () => l.close() };
}

export async function startSpaServer(opts: { port?: number; host?: string; dir?: string } = {}): Promise<RunningServer> {
  const l = await listen(spaHandler(opts.dir ?? defaultSpaDir()), opts.port ?? 0, opts.host ?? '127.0.0.1');
  return { url: l.url, port: l.port, close: () => l.close() };
}

/** src/dev/spa, found both from src/ (Deno, ts) and from dist/src/dev (Node after tsc). */
export function defaultSpaDir(): string {
  const candidates = [new URL('./spa/', import.meta.url), new URL('../../../src/dev/spa/', import.meta.url)];
  for (const c of candidates) {
    const dir = fileURLToPath(c);
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  throw new Error('the example SPA (src/dev/spa/index.html) was not found');
}

async function echo(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const method = req.method ?? 'GET';
  let body: unknown;
  if (['POST', 'PUT', 'PATCH'].includes(method)) {
    const raw = await readBody(req);
    if (raw === 'too_large') { json(res, 413, { error: 'payload_too_large', error_description: `at most ${MAX_BODY} bytes` }); return; }
    if (raw.length > 0) {
      const type = String(req.headers['content-type'] ?? '');
      if (/^application\/([a-z.+-]*\+)?json\b/i.test(type)) {
        try { body = JSON.parse(raw.toString('utf8')); } catch {
          json(res, 400, { error: 'invalid_json', error_description: 'the body is not valid JSON' });
          return;
        }
        if (depth(body) > MAX_DEPTH) {
          json(res, 400, { error: 'invalid_json', error_description: `the body is nested deeper than ${MAX_DEPTH} levels` });
          return;
        }
      } else body = { bytes: raw.length, content_type: type || null };
    }
  } else req.resume();

  // No prototype: ?constructor=x read Object as an earlier value and echoed [null, "x"], and
  // ?__proto__=a was lost.
  const query: Record<string, string | string[]> = Object.create(null);
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const header = (n: string) => {
    const v = req.headers[n];
    return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
  };
  const cookieNames = parseCookieNames(header('cookie') ?? '');
  const authorization = header('authorization');
  const dpop = header('dpop');
  const roles = header('x-auth-roles');

  const headers: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    const value = Array.isArray(v) ? v.join(', ') : v;
    headers[k] = CREDENTIAL_HEADERS.has(k) ? fingerprint(value)
      : k === 'cookie' ? cookieNames.map((n) => `${n}=…`).join('; ')
      : value;
  }
  json(res, 200, {
    service: 'example-api',
    method,
    path: url.pathname,
    query,
    received: {
      authorization: authorization === null ? null : fingerprint(authorization),
      dpop: dpop === null ? null : fingerprint(dpop),
      user: header('x-auth-user'),
      roles: roles === null || roles === '' ? [] : roles.split(','),
      request_id: header('x-request-id'),
      cookies: cookieNames,
      session_cookie_received: cookieNames.some((n) => SESSION_COOKIES.has(n)),
    },
    headers,
    ...(body === undefined ? {} : { body }),
  }, method === 'HEAD');
}

/** The nesting depth of a parsed JSON value, without recursion (a scalar is 0). */
function depth(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > max) max = d + 1;
    if (max > MAX_DEPTH) return max;
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

function parseCookieNames(cookie: string): string[] {
  return cookie.split(';').map((p) => p.split('=')[0]!.trim()).filter((n) => n !== '');
}

function readBody(req: IncomingMessage): Promise<Buffer | 'too_large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? 'too_large' : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, value: unknown, headOnly = false): void {
  const body = Buffer.from(JSON.stringify(value, null, 2) + '\n');
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': body.length,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(headOnly ? undefined : body);
}

// ---------------------------------------------------------------------------------------------
// Static files: the folder is read once at startup into an allow-list, so no request path is
// ever joined onto the file system (no traversal, no symlinks followed later).

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

export function spaHandler(dir: string): RequestListener {
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || !statSync(join(dir, name)).isFile()) continue;
    files.set('/' + name, { type, body: readFileSync(join(dir, name)) });
  }
  const index = files.get('/index.html');
  if (index) files.set('/', index);
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('405 method not allowed\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    const file = files.get(path);
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
      res.end('404 not found\n');
      return;
    }
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': file.body.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  };
}

// ---------------------------------------------------------------------------------------------
// Entry point for the compose services "api" and "spa".

async function main(mode: string): Promise<void> {
  const log = createLogger({ name: `example-${mode}`, level: process.env.LOG_LEVEL ?? 'info' });
  const host = process.env.HOST ?? '127.0.0.1';
  const port = process.env.PORT === undefined ? (mode === 'spa' ? 3003 : 3000) : Number(process.env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a TCP port, got ${process.env.PORT}`);
  const running = mode === 'spa' ? await startSpaServer({ port, host }) : await startExampleApi({ port, host });
  log.info({ url: running.url }, `example ${mode} listening`);
  onShutdown(log, () => running.close());
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  const mode = process.argv[2] ?? 'api';
  if (mode !== 'api' && mode !== 'spa') {
    process.stderr.write('usage: node dist/src/dev/api.js api|spa\n');
    process.exit(2);
  }
  main(mode).catch((err: unknown) => {
    process.stderr.write(`example ${mode}: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
