// `goldpath <command> --help` is where users look for what a command reads (README "Commands"):
// every variable the command's code reads must be named there. The demo's once left out
// GOLDPATH_PUBLIC_URL, the origin where its sign-ins complete.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandUsage } from '../src/cli-usage.ts';
import { SETTINGS_VARIABLES } from '../src/config/env.ts';
import { REPO_ROOT } from './helpers/process.ts';

/** The variable names a help text gives, `GOLDPATH_SESSION_IDLE, _MAX` spelt out in full. */
function namesIn(text: string): Set<string> {
  const names = new Set<string>();
  let full = '';
  for (const [name] of text.matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\b(?:PORT|HOST)\b|(?<=, )_[A-Z0-9]+\b/g)) {
    full = name.startsWith('_') ? full.slice(0, full.lastIndexOf('_')) + name : name;
    names.add(full);
  }
  return names;
}

// The variables the shipped config files name (${NAME}): every command that loads them reads them
// (a missing one stops it), so its help names them (README: verify, bff and dev-idp need
// GOLDPATH_CLIENT_SECRET with compose/config).
const CONFIG_DIR = join(REPO_ROOT, 'compose', 'config');
const NAMED = [...new Set(['routes.yaml', 'pdp.yaml', 'idps.yaml'].flatMap((f) =>
  [...readFileSync(join(CONFIG_DIR, f), 'utf8').replace(/^\s*#.*$/gm, '').matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!)))];

// What each command reads: loadSettings' variables (verify, bff and the demo all call it).
const READS: Record<string, readonly string[]> = {
  // The sidecar validates GOLDPATH_MAX_LOGINS_PER_MINUTE with the rest but never uses it.
  verify: ['GOLDPATH_CONFIG_DIR', ...NAMED, ...SETTINGS_VARIABLES.filter((n) => n !== 'GOLDPATH_MAX_LOGINS_PER_MINUTE')],
  bff: ['GOLDPATH_CONFIG_DIR', ...NAMED, ...SETTINGS_VARIABLES],
  demo: ['GOLDPATH_CONFIG_DIR', ...NAMED, ...SETTINGS_VARIABLES, 'GOLDPATH_IDP_ISSUER', 'GOLDPATH_CLIENT_SECRET'],
  'dev-idp': ['GOLDPATH_CONFIG_DIR', ...NAMED, 'GOLDPATH_IDP_ISSUER', 'GOLDPATH_PUBLIC_URL', 'GOLDPATH_DEV_IDP_BACKCHANNEL_URL',
    'GOLDPATH_DEV_IDP_TLS_CERT', 'GOLDPATH_DEV_IDP_TLS_KEY', 'GOLDPATH_DEV_IDP_TLS_CA', 'PORT', 'HOST', 'LOG_LEVEL'],
};

describe('goldpath <command> --help', () => {
  for (const [command, reads] of Object.entries(READS)) {
    it(`${command} names every variable it reads`, () => {
      const named = namesIn(commandUsage(command)!);
      assert.ok(NAMED.length >= 2, `the shipped config names ${NAMED}`);
      assert.deepEqual(reads.filter((n) => !named.has(n)), []);
    });
  }
});
