// routes.yaml: which canonical API prefixes may reach an upstream, and with which token.
import type { AuthMode, RouteConfig, RoutesConfig } from './types.ts';
import { checkOrigin } from './origin.ts';
import { pathProblem } from './paths.ts';
import type { Cursor } from './cursor.ts';

export const NAME = /^[a-z0-9_-]+$/;
/** The CSRF check trusts these origins' requests as the app's own. */
const PLAIN_HTTP_ORIGIN = 'anyone on the network can change what a plain-http page sends, and the CSRF check trusts its requests';

/** A validated route plus where it was written (for cross-file checks). */
export interface RouteEntry {
  readonly route: RouteConfig;
  readonly line: number | undefined;
  /** Whether the prefix is valid (only then may other checks rely on it). */
  readonly prefixOk: boolean;
  /** The prefix as another file's problem may show it (Cursor.safe: it may come from the environment). */
  readonly prefixShown: string;
  /** Where the audience was written, and the name as a message may show it. */
  readonly audienceAt: { readonly line: number | undefined; readonly key: string; readonly shown: string } | undefined;
}

export interface RoutesResult {
  readonly config: RoutesConfig;
  readonly entries: readonly RouteEntry[];
  /** Every route was read with a valid prefix: checks against "all prefixes" are meaningful. */
  readonly prefixesComplete: boolean;
}

export function validateRoutes(root: Cursor): RoutesResult {
  const entries: RouteEntry[] = [];
  const allowedOrigins: string[] = [];
  const top = root.map(['routes', 'cors'], 'a map with routes: and cors:');
  if (!top) return { config: { routes: [], cors: { allowedOrigins } }, entries, prefixesComplete: false };

  const list = top.get('routes');
  const items = list.missing ? (list.required('a list of routes'), undefined) : list.seq('a list of routes');
  if (items && items.length === 0) list.problem('must list at least one route (nothing can reach an upstream otherwise)');

  const names = new Map<string, number | undefined>();
  const prefixes = new Map<string, number | undefined>();
  const foldedPrefixes = new Map<string, number | undefined>();
  for (const item of items ?? []) {
    const f = item.map(['name', 'prefix', 'audience', 'auth'], 'a map with name:, prefix:, audience:, auth:');
    if (!f) continue;

    let name = '';
    const nameC = f.get('name');
    if (nameC.missing) nameC.required('a unique name made of a-z 0-9 _ -');
    else {
      const s = nameC.string();
      if (s !== undefined && !NAME.test(s)) nameC.problem(`is ${nameC.show(s)}; expected a-z 0-9 _ - only`);
      else if (s !== undefined && names.has(s)) nameC.problem(`${nameC.show(s)} is already used by the route at line ${names.get(s)}`);
      else if (s !== undefined) {
        names.set(s, nameC.line);
        name = s;
      }
    }

    let prefix = '';
    let prefixOk = false;
    const prefixC = f.get('prefix');
    if (prefixC.missing) prefixC.required('a path prefix such as /api/orders');
    else {
      const s = prefixC.string();
      if (s !== undefined) {
        const why = pathProblem(s, (x) => prefixC.show(x));
        if (why) prefixC.problem(`${why}; got ${prefixC.show(s)}`);
        else if (s !== '/api' && !s.startsWith('/api/')) {
          prefixC.problem(`must start with /api/ (Traefik sends only /api/** through the verify sidecar); got ${prefixC.show(s)}`);
        } else {
          const folded = foldedPrefixes.get(s.toLowerCase());
          if (prefixes.has(s)) prefixC.problem(`${prefixC.show(s)} is already the prefix of the route at line ${prefixes.get(s)}`);
          else if (folded !== undefined) {
            // The sidecar refuses a path that another route would match once case is ignored (as
            // many upstream routers match): every request under this prefix would be a 400.
            prefixC.problem(`${prefixC.show(s)} differs from the prefix of the route at line ${folded} only in letter case; ` +
              'the sidecar answers 400 to every request under it (case-insensitive upstream routers would give it to that route)');
          } else {
            prefixes.set(s, prefixC.line);
            foldedPrefixes.set(s.toLowerCase(), prefixC.line);
          }
          prefix = s;
          prefixOk = true;
        }
      }
    }

    let audience: string | undefined;
    let audienceAt: RouteEntry['audienceAt'];
    const audC = f.get('audience');
    if (!audC.missing) {
      audience = audC.string({ what: 'the name of an audience in idps.yaml' });
      if (audience !== undefined) audienceAt = { line: audC.line, key: audC.path, shown: audC.safe(audience) };
    }

    let auth: AuthMode = 'session';
    const authC = f.get('auth');
    if (!authC.missing) {
      const s = authC.string();
      if (s === 'session' || s === 'public') auth = s;
      else if (s !== undefined) authC.problem(`is ${authC.show(s)}; expected session (login required) or public (no login required)`);
    }

    entries.push({ route: { name, prefix, audience, auth }, line: item.line, prefixOk, prefixShown: prefixC.safe(prefix), audienceAt });
  }

  const corsC = top.get('cors');
  if (!corsC.missing) {
    const cors = corsC.map(['allowed_origins'], 'a map with allowed_origins:');
    const originsC = cors?.get('allowed_origins');
    if (originsC && !originsC.missing) {
      const seen = new Set<string>();
      for (const o of originsC.seq('a list of origins such as http://localhost:5173') ?? []) {
        const s = o.string({ what: 'an origin such as http://localhost:5173' });
        if (s === undefined) continue;
        const r = checkOrigin(s, PLAIN_HTTP_ORIGIN);
        if (r.problem !== undefined) o.problem(`${r.problem}; got ${o.show(s)}`);
        else if (seen.has(r.origin)) o.problem(`${o.show(s)} is listed twice`);
        else {
          seen.add(r.origin);
          allowedOrigins.push(r.origin);
        }
      }
    }
  }

  const prefixesComplete = items !== undefined && entries.length === items.length && entries.every((e) => e.prefixOk);
  return { config: { routes: entries.map((e) => e.route), cors: { allowedOrigins } }, entries, prefixesComplete };
}
