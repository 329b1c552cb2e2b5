// Builds PdpConfig values the way the pdp.yaml loader does, so PDP tests do not depend on it.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PdpConfig, PdpRule } from '../../src/config/types.ts';
import type { SessionUser } from '../../src/session/types.ts';

/** `rule('GET|HEAD /api/orders/:id', 'read', 'Order', ':id')` */
export function rule(match: string, action: string, type: string, id?: string, line?: number): PdpRule {
  const [m, pattern] = match.split(' ') as [string, string];
  return {
    methods: m === '*' ? '*' : m.split('|'),
    pattern,
    segments: pattern.split('/').slice(1),
    action,
    resource: { type, id },
    line,
  };
}

/** The repository root, whether tests run from dist/ (after tsc) or from the sources. */
export const repoRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test file');
    dir = up;
  }
  return dir;
})();

export const mainPolicy = join(repoRoot, 'policies', 'main.polar');
export const fixture = (name: string): string => join(repoRoot, 'test', 'pdp', 'fixtures', name);

/** The demo's pdp.yaml rules. */
export const demoRules: PdpRule[] = [
  rule('GET|HEAD /api/orders', 'list', 'OrderList'),
  rule('GET|HEAD /api/orders/:id', 'read', 'Order', ':id'),
  rule('POST /api/orders', 'create', 'OrderList'),
  rule('PUT|PATCH|DELETE /api/orders/:id', 'write', 'Order', ':id'),
  rule('GET /api/profiles/:id', 'read', 'Profile', ':id'),
];

export const demoConfig = (policies: string[] = [mainPolicy]): PdpConfig => ({ policies, rules: demoRules });

export function user(over: Partial<SessionUser> = {}): SessionUser {
  return {
    sub: 'u1',
    idp: 'dev',
    name: 'User One',
    email: 'u1@example.com',
    roles: [],
    groups: [],
    scopes: ['openid'],
    claims: { sub: over.sub ?? 'u1' },
    ...over,
  };
}
