// One error hierarchy for every process. The single error middleware (src/http/error-handler.ts)
// renders these as {"error", "error_description"}; anything else becomes an opaque 500.
export class GoldpathError extends Error {
  /** HTTP status to answer with. */
  readonly status: number;
  /** Machine-readable code, sent as `error`. */
  readonly code: string;
  /** Whether `message` may be shown to the client (never for 5xx). */
  readonly expose: boolean;
  /** Extra JSON members to merge into the body (e.g. login_url). */
  readonly extra: Record<string, unknown> | undefined;
  /** Extra response headers (e.g. Location for a 302 rendering). */
  readonly headers: Record<string, string> | undefined;

  constructor(
    status: number,
    code: string,
    description: string,
    opts: { extra?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(description, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.expose = status < 500;
    this.extra = opts.extra;
    this.headers = opts.headers;
  }
}

export class BadRequest extends GoldpathError {
  constructor(description: string, code = 'invalid_request', opts?: ConstructorParameters<typeof GoldpathError>[3]) {
    super(400, code, description, opts);
  }
}
/** A login whose IdP session (`sid`) a back-channel logout ended before the goldpath session existed. */
export class SessionEnded extends BadRequest {
  constructor() {
    super('the identity provider ended this sign-in (a logout) before it completed', 'login_failed');
  }
}
export class LoginRequired extends GoldpathError {
  constructor(loginUrl: string) {
    super(401, 'login_required', 'a valid session is required', { extra: { login_url: loginUrl } });
  }
}
export class Forbidden extends GoldpathError {
  constructor(description = 'the policy does not allow this request', code = 'forbidden') {
    super(403, code, description);
  }
}
export class CsrfError extends Forbidden {
  constructor(description = 'missing or invalid CSRF token or origin') {
    super(description, 'csrf');
  }
}
export class NotFound extends GoldpathError {
  constructor(description = 'no route matches this request') {
    super(404, 'not_found', description);
  }
}
export class MethodNotAllowed extends GoldpathError {
  /** `allow`: the methods the path does accept, as the Allow header lists them. */
  constructor(allow: string) {
    super(405, 'method_not_allowed', `this endpoint accepts ${allow} only`, { headers: { Allow: allow } });
  }
}
export class UriTooLong extends GoldpathError {
  constructor() {
    super(414, 'uri_too_long', 'the request URI is longer than 8 KiB');
  }
}
/** Too many requests of a kind in a window (a bound on what anonymous clients can make us store). */
export class TooManyRequests extends GoldpathError {
  constructor(description: string, retryAfterS: number) {
    super(429, 'too_many_requests', description, { headers: { 'Retry-After': String(retryAfterS) } });
  }
}
/** The session store (or another dependency) cannot be reached: fail closed. */
export class Unavailable extends GoldpathError {
  constructor(description = 'a dependency is unavailable', opts?: { cause?: unknown }) {
    super(503, 'unavailable', description, opts);
  }
}
/** The store did not answer in time or at all. Thrown by session stores; maps to 503. */
export class StoreUnavailable extends Unavailable {
  constructor(cause?: unknown) {
    super('the session store is unavailable', { cause });
  }
}

/** One problem found in a configuration file. */
export interface ConfigProblem {
  file: string;
  line?: number;
  key: string;
  message: string;
}

/** Configuration is invalid: carries every problem found, not just the first. */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
  readonly problems: readonly ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(`invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
      problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * The policies' problems, from loading them (Pdp.load, assertPoliciesLoad): raised only for files
 * already read and found valid, so they are every problem there is. withEveryProblem does not look
 * again: a policy's inline query (`?=`) runs at every load, and one that loops takes Oso's fixed
 * 30 s to fail, on the event loop; a second look took as long again.
 */
export class PoliciesRefused extends ConfigError {}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}${p.line ? `:${p.line}` : ''}: ${p.key}: ${p.message}`;
}

/**
 * A server that could not listen: where, and why in plain words. `naming` adds which variables
 * chose the address; the CLI prints `goldpath <command>: <message>`, never a stack trace.
 */
export class ListenError extends Error {
  readonly host: string;
  readonly port: number;
  readonly code: string | undefined;
  /** The variables that chose the address, e.g. `HOST=127.0.0.1, PORT=3002`, once named. */
  readonly vars: string | undefined;

  constructor(host: string, port: number, cause: unknown, vars?: string, part?: string, fix?: string) {
    const code = (cause as { code?: unknown })?.code;
    const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    super(`${part ? `${part} ` : ''}cannot listen on ${where}${vars ? ` (${vars})` : ''}: ` +
      `${listenReason(typeof code === 'string' ? code : undefined, cause)}${fix ? `; ${fix}` : ''}`, { cause });
    this.name = 'ListenError';
    this.host = host;
    this.port = port;
    this.code = typeof code === 'string' ? code : undefined;
    this.vars = vars;
  }

  /** The same failure, saying which part of the process it was and which variables move it. */
  naming(vars: string, part?: string, fix?: string): ListenError {
    return new ListenError(this.host, this.port, this.cause, vars, part, fix);
  }
}

/**
 * A listen failure not yet explained, naming the variables that chose the address (`vars`, e.g.
 * `HOST=127.0.0.1, PORT=3002`) and the part that wanted it; `ifInUse` says how to move it when
 * the port is taken. Anything else is returned as it is.
 */
export function explainListenError(err: unknown, vars: (e: ListenError) => string, part?: string, ifInUse?: string): unknown {
  if (!(err instanceof ListenError) || err.vars !== undefined) return err;
  return err.naming(vars(err), part, err.code === 'EADDRINUSE' ? ifInUse : undefined);
}

/** Node's listen error codes, in the words of the person who set HOST and PORT. */
function listenReason(code: string | undefined, cause: unknown): string {
  switch (code) {
    case 'EADDRINUSE': return 'the address is in use (another process listens on that port)';
    case 'EADDRNOTAVAIL': return 'this machine has no network interface with that address';
    // Deno reports an address the machine does not have as EINVAL.
    case 'EINVAL': return 'this machine cannot listen on that address (is it one of its own?)';
    case 'ENOTFOUND': case 'EAI_NONAME': case 'EAI_AGAIN': case 'EAI_FAIL': return 'the host name does not resolve to an address';
    case 'EACCES': case 'EPERM': return 'permission denied (ports below 1024 need privileges)';
    case 'EAFNOSUPPORT': return 'this machine does not support that address family (IPv6?)';
    default: return code ?? ((cause as Error)?.message || 'unknown error');
  }
}
