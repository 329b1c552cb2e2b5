// Process settings from the environment (SPEC section 2). Every variable is checked, every
// problem is reported at once, and no message ever repeats a secret (session keys, a password
// inside REDIS_URL).
import { Buffer } from 'node:buffer';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import process from 'node:process';
import { ConfigError, type ConfigProblem } from '../errors.ts';
import { parseRedisUrl } from '../session/redis-url.ts';
import type { Settings } from './types.ts';
import { checkOrigin } from './origin.ts';
import { MAX_KEY_FILE_BYTES, readTextFileSync } from './files.ts';
import { deepFreeze, Problems } from './problems.ts';

const FILE = 'environment';

export const DEFAULT_CONFIG_DIR = 'compose/config';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_PUBLIC_URL = 'http://localhost:8080';
/** Containers must listen on every interface to be reachable from Traefik; bind narrower with HOST. */
export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_SESSION_IDLE = '30m';
/** ~680 bytes of Redis a pending sign-in: at most 10 × 6,000 of them, ~40 MB. */
export const DEFAULT_MAX_LOGINS_PER_MINUTE = 6000;
export const DEFAULT_SESSION_MAX = '12h';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const KEY_GENERATE_HINT =
  `generate one with: node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))"`;

/**
 * The shortest idle timeout: it counts time without any request, and below a minute it ends
 * sessions in ordinary use (a user reading a page). Nor could much less be enforced as written:
 * a sidecar serves a session from memory for up to 5 s without asking the store (session/cache.ts).
 */
export const MIN_SESSION_IDLE_MS = 60_000;

/** Browsers cap cookie lifetimes at 400 days; a longer session would silently end earlier. */
const MAX_DURATION_MS = 400 * 24 * 3600 * 1000;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses `90s`, `30m`, `12h`, `1d` or `250ms`. Returns undefined for anything else (including
 * zero, negatives, fractions and a number without a unit: `1800` meant as seconds was read as
 * 1.8 s, and sessions died at once).
 */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,15})(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * UNITS[m[2]!]!;
  return Number.isSafeInteger(ms) && ms > 0 ? ms : undefined;
}

/** Empty strings count as unset: `FOO=` in an .env file means "use the default". */
/** A variable as every process reads it: trimmed, and empty means unset (`FOO=` in an .env file). */
export function envValue(env: Record<string, string | undefined>, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/**
 * HOST as a listen address: a bracketed IPv6 literal (`[::1]`, as URLs write it) without its
 * brackets, which listen() would take as part of a host name that resolves to nothing.
 */
export function listenHost(text: string | undefined): string | undefined {
  return text !== undefined && /^\[[^\]]*\]$/.test(text) ? text.slice(1, -1) : text;
}

/** Checks REDIS_URL with the parser the store itself uses, so both agree on what is valid. */
function checkRedisUrl(value: string, problems: Problems): void {
  // memory://[name]: one in-process dataset per name (the demo and tests).
  if (/^memory:(\/\/[A-Za-z0-9._-]*)?$/.test(value)) return;
  try {
    parseRedisUrl(value);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Its messages describe the shape and never echo the URL (it may carry a password).
    for (const p of err.problems) problems.add(FILE, undefined, 'REDIS_URL', p.message);
  }
}

const TLS_SCHEMES = /^rediss(\+sentinel|\+cluster)?:\/\//;
const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/**
 * REDIS_TLS_CA_FILE: the PEM CA certificate(s) a rediss* REDIS_URL's servers are checked against,
 * instead of Node's CAs. Read here, at startup, like every other file: a CA that is missing or
 * not a certificate stops the process rather than failing every connection later. Set with a
 * plain REDIS_URL it is a problem too: whoever set it expects TLS, and would not get it.
 */
function readRedisTlsCa(env: Record<string, string | undefined>, redisUrl: string, cwd: string | undefined, problems: Problems): string | undefined {
  const key = 'REDIS_TLS_CA_FILE';
  const file = envValue(env, key);
  if (file === undefined) return undefined;
  if (!TLS_SCHEMES.test(redisUrl)) {
    problems.add(FILE, undefined, key, 'is set, but REDIS_URL is not a TLS scheme (rediss://, rediss+sentinel://, rediss+cluster://): the connection would not be encrypted');
  }
  const abs = path.resolve(cwd ?? process.cwd(), file);
  const read = readTextFileSync(abs, MAX_KEY_FILE_BYTES, 'a CA file is a few KiB');
  if ('problem' in read) {
    problems.add(FILE, undefined, key, `${read.problem} (resolved to ${abs})`);
    return undefined;
  }
  const certs = read.text.match(PEM_CERT) ?? [];
  if (certs.length === 0) {
    problems.add(FILE, undefined, key, `holds no PEM certificate (-----BEGIN CERTIFICATE-----) (resolved to ${abs})`);
    return undefined;
  }
  for (const [i, pem] of certs.entries()) {
    try {
      new X509Certificate(pem);
    } catch {
      problems.add(FILE, undefined, key, `certificate #${i + 1} is not a valid X.509 certificate (resolved to ${abs})`);
      return undefined;
    }
  }
  return certs.join('\n');
}

function parsePublicUrl(value: string, problems: Problems): { origin: string; secure: boolean } | undefined {
  const r = checkOrigin(value, 'session cookies would travel unencrypted');
  if (r.problem === undefined) return r;
  problems.add(FILE, undefined, 'GOLDPATH_PUBLIC_URL', `${r.problem}; expected an origin such as https://app.example.com ` +
    '(goldpath serves /auth/* and /api/* at its root)');
  return undefined;
}

function parseSessionKeys(value: string | undefined, problems: Problems): Uint8Array[] {
  const key = 'GOLDPATH_SESSION_KEYS';
  if (value === undefined) {
    problems.add(FILE, undefined, key,
      `is required: comma-separated base64url keys of 32 random bytes (the first encrypts, all decrypt); ${KEY_GENERATE_HINT}`);
    return [];
  }
  const keys: Uint8Array[] = [];
  const seen = new Map<string, number>();
  const parts = value.split(',').map((s) => s.trim());
  parts.forEach((part, i) => {
    const which = parts.length === 1 ? 'the key' : `key #${i + 1}`;
    // Explain the shape of what is wrong, never the value itself.
    if (part === '') {
      problems.add(FILE, undefined, key, `${which} is empty (remove the extra comma)`);
    } else if (!/^[A-Za-z0-9_-]+={0,2}$/.test(part)) {
      problems.add(FILE, undefined, key,
        `${which} is not base64url (only A-Z a-z 0-9 - _ are allowed; standard base64 with + or / is not); ${KEY_GENERATE_HINT}`);
    } else {
      const bytes = Buffer.from(part, 'base64url');
      if (bytes.length !== 32) {
        problems.add(FILE, undefined, key,
          `${which} decodes to ${bytes.length} bytes, expected exactly 32; ${KEY_GENERATE_HINT}`);
      } else if (bytes.toString('base64url') !== part) {
        // The decoder ignores the unused low bits of the last character and any = padding: another
        // text would be the same key, so a key list could hold one key twice under two spellings.
        problems.add(FILE, undefined, key,
          `${which} is not canonical base64url (its last character has unused bits set, or it has = padding); ${KEY_GENERATE_HINT}`);
      } else if (bytes.every((b) => b === 0)) {
        problems.add(FILE, undefined, key, `${which} is all zero bytes, a placeholder, not a random key; ${KEY_GENERATE_HINT}`);
      } else if (seen.has(part)) {
        problems.add(FILE, undefined, key, `key #${i + 1} is the same as key #${seen.get(part)! + 1}; list each key once`);
      } else {
        seen.set(part, i);
        keys.push(new Uint8Array(bytes));
      }
    }
  });
  return keys;
}

function parseDurationVar(env: Record<string, string | undefined>, name: string, fallback: string, problems: Problems): number | undefined {
  const text = envValue(env, name) ?? fallback;
  const ms = parseDuration(text);
  if (ms === undefined && /^\d{1,15}$/.test(text) && Number(text) > 0) {
    const n = Number(text);
    const minutes = n % 60 === 0 ? `, ${n / 60}m` : '';
    problems.add(FILE, undefined, name, `is ${JSON.stringify(text)}, a number without a unit; give a unit: ${n}s${minutes} ` +
      '(units: ms, s, m, h, d)');
    return undefined;
  }
  if (ms === undefined) {
    problems.add(FILE, undefined, name, `is ${JSON.stringify(text)}; expected a positive duration with a unit such as 90s, 30m, 12h, 1d or 250ms`);
    return undefined;
  }
  if (ms > MAX_DURATION_MS) {
    problems.add(FILE, undefined, name, 'is longer than 400 days, the longest cookie lifetime browsers keep');
    return undefined;
  }
  return ms;
}

/** The config folder: GOLDPATH_CONFIG_DIR, or compose/config, from the working directory. */
export function configDirOf(env: Record<string, string | undefined>, opts: { cwd?: string } = {}): string {
  return path.resolve(opts.cwd ?? process.cwd(), envValue(env, 'GOLDPATH_CONFIG_DIR') ?? DEFAULT_CONFIG_DIR);
}

/**
 * Reads and validates the process settings. Throws ConfigError (file "environment", key = the
 * variable) listing every problem; otherwise returns deep-frozen Settings.
 */
export function loadSettings(env: Record<string, string | undefined>, opts: { cwd?: string } = {}): Settings {
  const problems = new Problems();

  const configDir = configDirOf(env, opts);

  const redisUrl = envValue(env, 'REDIS_URL') ?? DEFAULT_REDIS_URL;
  checkRedisUrl(redisUrl, problems);
  const redisTlsCa = readRedisTlsCa(env, redisUrl, opts.cwd, problems);

  const pub = parsePublicUrl(envValue(env, 'GOLDPATH_PUBLIC_URL') ?? DEFAULT_PUBLIC_URL, problems);
  const sessionKeys = parseSessionKeys(envValue(env, 'GOLDPATH_SESSION_KEYS'), problems);

  let port: number | undefined;
  const portText = envValue(env, 'PORT');
  if (portText !== undefined) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 0 && port <= 65535)) problems.add(FILE, undefined, 'PORT', `is ${JSON.stringify(portText)}; expected a TCP port 0-65535`);
  }

  const host = listenHost(envValue(env, 'HOST')) ?? DEFAULT_HOST;
  if (/\s/.test(host)) problems.add(FILE, undefined, 'HOST', 'must be a host name or IP address to listen on');

  const logLevel = (envValue(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    problems.add(FILE, undefined, 'LOG_LEVEL', `is ${JSON.stringify(logLevel)}; expected one of ${LOG_LEVELS.join(', ')}`);
  }

  let idle = parseDurationVar(env, 'GOLDPATH_SESSION_IDLE', DEFAULT_SESSION_IDLE, problems);
  if (idle !== undefined && idle < MIN_SESSION_IDLE_MS) {
    problems.add(FILE, undefined, 'GOLDPATH_SESSION_IDLE', 'is shorter than 60s, the least accepted: it counts time without any ' +
      'request, so sessions would end while their users read a page (OWASP suggests 2-5 minutes at the shortest)');
    idle = undefined;
  }
  const max = parseDurationVar(env, 'GOLDPATH_SESSION_MAX', DEFAULT_SESSION_MAX, problems);
  if (idle !== undefined && max !== undefined && idle > max) {
    problems.add(FILE, undefined, 'GOLDPATH_SESSION_IDLE',
      'is longer than GOLDPATH_SESSION_MAX; the idle timeout must be at most the absolute session lifetime');
  }

  const limitText = envValue(env, 'GOLDPATH_MAX_LOGINS_PER_MINUTE');
  const loginsPerMinute = limitText === undefined ? DEFAULT_MAX_LOGINS_PER_MINUTE : /^\d{1,9}$/.test(limitText) ? Number(limitText) : NaN;
  if (!(loginsPerMinute >= 1)) {
    problems.add(FILE, undefined, 'GOLDPATH_MAX_LOGINS_PER_MINUTE', `is ${JSON.stringify(limitText)}; expected a whole number of sign-ins, 1 or more`);
  }

  problems.throwIfAny();
  return deepFreeze<Settings>({
    configDir,
    redisUrl,
    redisTlsCa,
    publicOrigin: pub!.origin,
    secureCookies: pub!.secure,
    cookieName: pub!.secure ? '__Host-goldpath' : 'goldpath',
    sessionKeys,
    sessionIdleMs: idle!,
    sessionMaxMs: max!,
    loginsPerMinute,
    port,
    host,
    logLevel,
  });
}

/**
 * memory:// as a process of its own would use it: verify and bff refuse it (the other process,
 * with its own empty memory, would never see a session: every sign-in a 401 at the API), and so
 * does `goldpath check`, which applies their rules. Only the demo, one process, may share it.
 */
export function separateProcessStoreProblem(env: Record<string, string | undefined>): ConfigProblem | undefined {
  if (!(envValue(env, 'REDIS_URL') ?? DEFAULT_REDIS_URL).startsWith('memory:')) return undefined;
  return { file: FILE, key: 'REDIS_URL', message: 'memory:// only works when everything runs in one process (goldpath demo); use redis://' };
}

/** What loadSettings reads and checks (GOLDPATH_CONFIG_DIR aside: `check` takes the folder itself). */
export const SETTINGS_VARIABLES: readonly string[] = [
  'REDIS_URL', 'REDIS_TLS_CA_FILE', 'GOLDPATH_PUBLIC_URL', 'GOLDPATH_SESSION_KEYS', 'PORT', 'HOST', 'LOG_LEVEL',
  'GOLDPATH_SESSION_IDLE', 'GOLDPATH_SESSION_MAX', 'GOLDPATH_MAX_LOGINS_PER_MINUTE',
];
const REQUIRED = 'GOLDPATH_SESSION_KEYS';

/**
 * The environment as `goldpath check` sees it: loadSettings' own rules and messages, as verify and
 * bff apply them. An unset variable takes its default, which is valid; the one without a default
 * (GOLDPATH_SESSION_KEYS) is returned as `missing`, not a problem: check also runs where the
 * processes' secrets are not (CI), and its contract is the config folder.
 */
export function checkSettings(env: Record<string, string | undefined>): { checked: string[]; problems: ConfigProblem[]; missing: string[] } {
  const checked = SETTINGS_VARIABLES.filter((name) => envValue(env, name) !== undefined);
  const missing = envValue(env, REQUIRED) === undefined ? [REQUIRED] : [];
  let problems: ConfigProblem[] = [];
  try {
    loadSettings(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems = err.problems.filter((p) => !missing.includes(p.key));
  }
  // verify and bff refuse memory://, with every other problem; check says so in the same round.
  const memory = separateProcessStoreProblem(env);
  if (memory && !problems.some((p) => p.key === 'REDIS_URL')) problems.push(memory);
  return { checked, problems, missing };
}
