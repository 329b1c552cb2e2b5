// `${NAME}` substitution in config values, and what a message may show of the result. A value from
// the environment may be a secret, so the runs that came from it are tracked: a problem quotes the
// text as written (`${NAME}`) rather than any part of them.

export type Env = Readonly<Record<string, string | undefined>>;

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** How many `${…}` may hold one another through their defaults (`${A:-${B:-${C}}}` is three). */
const MAX_DEFAULT_NESTING = 8;

/**
 * Replaces `${NAME}` and `${NAME:-default}` (compose syntax; the default applies when NAME is
 * unset or empty, and may hold variables itself: `${A:-${B}}`). `$${` writes a literal `${`. Any
 * other `$` is literal.
 * Returns the problems instead of throwing; never includes a variable's value in them.
 */
export function substitute(text: string, env: Env): { value: string; problems: string[] } {
  const { value, problems } = expand(text, env);
  return { value, problems };
}

/**
 * substitute(), plus the runs of the result that came from the environment (adjacent variables
 * make one run: `${A}${B}` is one secret, not two short ones). Defaults and literal text are the
 * file's own; only these runs may hold a secret.
 */
export function expand(text: string, env: Env, depth = 0): { value: string; problems: string[]; fromEnv: string[] } {
  const problems: string[] = [];
  const fromEnv: string[] = [];
  let run = '';
  let out = '';
  let i = 0;
  const literal = (s: string) => {
    if (s === '') return;
    if (run !== '') fromEnv.push(run);
    run = '';
    out += s;
  };
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar === -1) {
      literal(text.slice(i));
      break;
    }
    literal(text.slice(i, dollar));
    if (text.startsWith('$${', dollar)) {
      literal('${');
      i = dollar + 3;
      continue;
    }
    if (text[dollar + 1] !== '{') {
      literal('$');
      i = dollar + 1;
      continue;
    }
    const close = closingBrace(text, dollar + 2);
    if (close === -1) {
      problems.push('has "${" without a closing "}" (write "$${" for a literal "${")');
      literal(text.slice(dollar));
      break;
    }
    const body = text.slice(dollar + 2, close);
    const sep = body.indexOf(':-');
    const name = sep === -1 ? body : body.slice(0, sep);
    if (!VAR_NAME.test(name)) {
      problems.push(`has \${${body.slice(0, 40)}}: expected \${NAME} or \${NAME:-default} with NAME like [A-Za-z_][A-Za-z0-9_]*`);
    } else {
      const value = env[name];
      if (sep !== -1 && (value === undefined || value === '')) {
        // A default may itself hold variables (compose's `${A:-${B}}`): read as written, it was the
        // text `${B}`, silently, where a secret or an issuer was meant.
        if (depth >= MAX_DEFAULT_NESTING) {
          // Each level re-reads what it holds: thousands of them (a 256 KiB file allows 50,000)
          // took seconds, then overflowed the stack.
          problems.push(`nests \${NAME:-default} more than ${MAX_DEFAULT_NESTING} levels deep`);
          i = close + 1;
          continue;
        }
        const d = expand(body.slice(sep + 2), env, depth + 1);
        problems.push(...d.problems);
        // What came from the environment is kept out of messages; with it, so is the default's own
        // text around it (a message then shows `${A:-${B}}` as written, never a piece of B).
        if (d.fromEnv.length > 0) {
          run += d.value;
          out += d.value;
        } else literal(d.value);
      } else if (value === undefined) {
        problems.push(`environment variable ${name} is not set (set it, or write \${${name}:-default} for a default)`);
      } else {
        run += value;
        out += value;
      }
    }
    i = close + 1;
  }
  if (run !== '') fromEnv.push(run);
  return { value: out, problems, fromEnv };
}

/**
 * The index of the `}` that closes the `${` whose body starts at `from`, or -1: a `${` inside
 * (a nested default) opens another level, a `$${` (a literal) does not.
 */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length; i++) {
    if (text.startsWith('$${', i)) i += 2;
    else if (text.startsWith('${', i)) {
      depth++;
      i++;
    } else if (text[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

/** Shorter runs of an environment value may be shown: too short to give a secret away. */
const MIN_SECRET = 3;

/**
 * Whether `text` shows any MIN_SECRET-character piece of one of `fromEnv` (letter case ignored:
 * a host name may come back lower-cased). Linear: the pieces of the values go in a set.
 */
export function showsEnv(text: string, fromEnv: readonly string[]): boolean {
  const pieces = new Set<string>();
  for (const v of fromEnv) {
    const lower = v.toLowerCase();
    for (let i = 0; i + MIN_SECRET <= lower.length; i++) pieces.add(lower.slice(i, i + MIN_SECRET));
  }
  if (pieces.size === 0) return false;
  const lower = text.toLowerCase();
  for (let i = 0; i + MIN_SECRET <= lower.length; i++) if (pieces.has(lower.slice(i, i + MIN_SECRET))) return true;
  return false;
}
