// REDIS_URL → ioredis connection target. Parsed here rather than handed to ioredis so that query
// parameters can never override the fail-fast options the store depends on, and so that errors
// never echo the URL (it may carry a password).
//   redis://[user[:pass]@]host[:port][/db]          rediss:// = the same over TLS
//   redis+sentinel://[user[:pass]@]host:port,host:port/mastername[/db]   (credentials: the master's)
//   redis+cluster://[user[:pass]@]host:port,host:port
//   rediss+sentinel://, rediss+cluster:// = the same over TLS, to every node and every sentinel
import { ConfigError } from '../errors.ts';

export interface HostPort {
  host: string;
  port: number;
}

interface Auth {
  username?: string;
  password?: string;
}

export type RedisTarget =
  | { mode: 'standalone'; host: string; port: number; db: number; tls: boolean; auth: Auth }
  | { mode: 'sentinel'; sentinels: HostPort[]; name: string; db: number; tls: boolean; auth: Auth }
  | { mode: 'cluster'; nodes: HostPort[]; tls: boolean; auth: Auth };

function invalid(message: string): ConfigError {
  return new ConfigError([{ file: 'environment', key: 'REDIS_URL', message }]);
}

const MULTI_RE = /^(rediss?\+sentinel|rediss?\+cluster):\/\/(?:([^@/?#]*)@)?([^/?#]+)(\/[^?#]*)?$/;

export function parseRedisUrl(url: string): RedisTarget {
  const scheme = /^([a-z+]+):\/\//.exec(url)?.[1];
  if (scheme === 'redis' || scheme === 'rediss') return parseStandalone(url, scheme === 'rediss');
  if (scheme === 'redis+sentinel' || scheme === 'redis+cluster' || scheme === 'rediss+sentinel' || scheme === 'rediss+cluster') {
    const tls = scheme.startsWith('rediss');
    const sentinel = scheme.endsWith('+sentinel');
    const m = MULTI_RE.exec(url);
    if (!m) throw invalid(`is not a valid ${scheme}:// URL (expected ${scheme}://host:port,host:port${sentinel ? '/mastername' : ''}; no query or fragment)`);
    const auth = parseAuth(m[2]);
    const hosts = m[3]!.split(',').map((h) => parseHostPort(h, sentinel ? 26379 : 6379));
    const path = (m[4] ?? '').split('/').filter((p) => p !== '');
    if (!sentinel) {
      if (path.length > 0) throw invalid(`${scheme}:// takes no path (Redis Cluster has only database 0)`);
      return { mode: 'cluster', nodes: hosts, tls, auth };
    }
    if (path.length < 1 || path.length > 2) throw invalid(`${scheme}:// needs the master name as its path: ${scheme}://host:port,host:port/mastername`);
    return { mode: 'sentinel', sentinels: hosts, name: decode(path[0]!, 'master name'), db: parseDb(path[1]), tls, auth };
  }
  throw invalid('has an unsupported scheme (expected redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster://, rediss+cluster:// or memory://)');
}

function parseStandalone(url: string, tls: boolean): RedisTarget {
  if (!URL.canParse(url)) throw invalid('is not a valid URL');
  const u = new URL(url);
  if (u.search !== '' || u.hash !== '') throw invalid('must not have a query or fragment');
  if (u.hostname === '') throw invalid('has no host');
  if (u.port === '0') throw invalid('has port 0 (expected 1-65535)');
  const auth: Auth = {};
  if (u.username) auth.username = decode(u.username, 'credentials');
  if (u.password) auth.password = decode(u.password, 'credentials');
  const path = u.pathname.split('/').filter((p) => p !== '');
  if (path.length > 1) throw invalid('path must be empty or a database number');
  return {
    mode: 'standalone',
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port === '' ? 6379 : Number(u.port),
    db: parseDb(path[0]),
    tls,
    auth,
  };
}

/** decodeURIComponent, but a bad %-escape is a ConfigError (a URIError would crash start-up). */
function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalid(`has badly percent-encoded ${what}`);
  }
}

function parseAuth(userinfo: string | undefined): Auth {
  if (userinfo === undefined || userinfo === '') return {};
  const i = userinfo.indexOf(':');
  const auth: Auth = {};
  try {
    const user = decodeURIComponent(i < 0 ? userinfo : userinfo.slice(0, i));
    if (user !== '') auth.username = user;
    if (i >= 0 && i < userinfo.length - 1) auth.password = decodeURIComponent(userinfo.slice(i + 1));
  } catch {
    throw invalid('has badly percent-encoded credentials');
  }
  return auth;
}

function parseHostPort(text: string, defaultPort: number): HostPort {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/.exec(text);
  const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
  if (!m || port < 1 || port > 65535) throw invalid('has a host that is not host[:port] (hosts are separated by commas)');
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function parseDb(text: string | undefined): number {
  if (text === undefined) return 0;
  if (!/^\d{1,5}$/.test(text)) throw invalid('database must be a number');
  return Number(text);
}
