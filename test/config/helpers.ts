// Shared helpers for the config tests: fixture paths and throwaway config folders.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigProblem } from '../../src/errors.ts';
import { checkConfig } from '../../src/config/check.ts';

/** The repository root (tests run from dist/test/config/). */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const FIXTURES = path.join(REPO, 'test', 'config', 'fixtures');

export const BASE_ROUTES = `routes:
  - name: orders
    prefix: /api/orders
  - name: public
    prefix: /api/public
    auth: public
`;
export const BASE_PDP = `policies: [app.polar]
rules:
  - match: GET /api/orders/:id
    action: read
    resource: { type: Order, id: ":id" }
`;
export const BASE_IDPS = `default: dev
idps:
  dev:
    issuer: https://idp.example.com
    client_id: goldpath
    client_secret: secret
`;

const made: string[] = [];

/**
 * Writes a config folder: the three base files unless overridden, app.polar, plus `extra` files
 * (relative paths). `omit` leaves a file out entirely.
 */
export async function configDir(files: { routes?: string; pdp?: string; idps?: string; extra?: Record<string, string>; omit?: string[] } = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'goldpath-config-'));
  made.push(dir);
  const all: Record<string, string> = {
    'routes.yaml': files.routes ?? BASE_ROUTES,
    'pdp.yaml': files.pdp ?? BASE_PDP,
    'idps.yaml': files.idps ?? BASE_IDPS,
    'app.polar': 'allow(_user: User, "read", _order: Order);\n',
    ...files.extra,
  };
  for (const [name, text] of Object.entries(all)) {
    if (files.omit?.includes(name)) continue;
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

/** Problems for a config folder built by configDir(). */
export async function problemsFor(files: Parameters<typeof configDir>[0], env: Record<string, string | undefined> = {}): Promise<ConfigProblem[]> {
  return checkConfig(await configDir(files), env);
}

/** [file, line, key] of each problem: what a user needs to find the mistake. */
export function where(problems: readonly ConfigProblem[]): [string, number | undefined, string][] {
  return problems.map((p) => [p.file, p.line, p.key]);
}

/** Asserts exactly one problem and returns it. */
export function only(problems: readonly ConfigProblem[]): ConfigProblem {
  if (problems.length !== 1) throw new Error(`expected exactly one problem, got ${problems.length}:\n${JSON.stringify(problems, null, 1)}`);
  return problems[0]!;
}

export async function cleanupConfigDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}
