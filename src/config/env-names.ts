// The GOLDPATH_* variables goldpath reads. Any other one set is almost always a typo
// (GOLDPATH_SESION_KEYS, GOLDPATH_PUBLICURL) that would otherwise leave the default in force
// without a word: a warning names it and the variable it was probably meant to be.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { MAX_CONFIG_FILE_BYTES } from './files.ts';

/** Read by the processes themselves (verify, bff, demo, dev-idp); the config files may read more. */
export const GOLDPATH_VARIABLES: readonly string[] = [
  'GOLDPATH_CONFIG_DIR', 'GOLDPATH_PUBLIC_URL', 'GOLDPATH_SESSION_KEYS', 'GOLDPATH_SESSION_IDLE', 'GOLDPATH_SESSION_MAX',
  'GOLDPATH_MAX_LOGINS_PER_MINUTE', 'GOLDPATH_IDP_ISSUER', 'GOLDPATH_DEV_IDP_BACKCHANNEL_URL',
  'GOLDPATH_DEV_IDP_TLS_CERT', 'GOLDPATH_DEV_IDP_TLS_KEY', 'GOLDPATH_DEV_IDP_TLS_CA',
];

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * The variables the config files under `dir` name as `${NAME}` (GOLDPATH_CLIENT_SECRET, say): known
 * too. Read from the text, comments included (a name only a comment mentions is not worth a
 * warning); a file that cannot be read names none (validation reports it).
 */
export async function variablesNamedIn(dir: string, files: readonly string[]): Promise<Set<string>> {
  const names = new Set<string>();
  for (const f of files) {
    const abs = path.join(dir, f);
    // Only a regular file within the size validation accepts: this runs before validation, and
    // reading a FIFO put where a file should be would block the start (and `goldpath check`)
    // forever; /dev/zero would fill memory. Validation then names what is wrong with it.
    const s = await stat(abs).catch(() => undefined);
    if (!s?.isFile() || s.size > MAX_CONFIG_FILE_BYTES) continue;
    const text = await readFile(abs, 'utf8').catch(() => '');
    for (const m of text.matchAll(REFERENCE)) names.add(m[1]!);
  }
  return names;
}

/** One warning per GOLDPATH_* variable set in `env` that is neither read nor named in the config. */
export function unknownVariableWarnings(env: Readonly<Record<string, string | undefined>>, named: ReadonlySet<string>): string[] {
  const known = [...GOLDPATH_VARIABLES, ...[...named].filter((n) => n.startsWith('GOLDPATH_'))];
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('GOLDPATH_') || env[name] === undefined || known.includes(name)) continue;
    const near = closest(name, known);
    out.push(`${name} is set, but goldpath reads no such variable${near ? ` (did you mean ${near}?)` : ''}; it is ignored`);
  }
  return out;
}

/** The known name within a few edits of `name` (typos: a letter or an underscore off), if any. */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const k of known) {
    const d = distance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** Levenshtein distance (names are short: the plain quadratic table is fine). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
