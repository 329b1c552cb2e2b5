// What goldpath reads of a Polar source before Oso does: its code without strings and comments,
// whether it nests too deeply for Oso (refused before Oso reads it: oso-adapter.ts calls this for
// every source it loads or checks), and whether it holds inline queries (policy-trial.ts).
import type { PolarSource, PolicyErrorInfo } from './oso-adapter.ts';

// Oso's parser and the passes after it recurse once per level of nesting: brackets (`[[[…`,
// `{a: {a: …`, `not (not (…`) and chains of `.`, `+`, `*`… (`x.a.a.a…`, `1 + 1 + …`). A few
// thousand levels overflow its stack (WebAssembly's, or V8's), and that breaks the one Polar
// WebAssembly instance of the whole process, not only this load: the engine already serving
// failed every later query ("memory access out of bounds", all requests denied) and every later
// load, until a restart. So such a file never reaches Oso. Real policies nest a few levels.
export const MAX_POLICY_NESTING = 200;

/**
 * `src` with every string and comment blanked (spaces; newlines kept, so lines and columns stay):
 * what is left is code. A string left open runs to the end, as Oso reads it.
 */
export function codeOf(src: string): string {
  return src.replace(/"(?:[^"\\]|\\[\s\S])*(?:"|$)|#[^\n]*/g, (m) => m.replace(/[^\n]/g, ' '));
}

/** Whether Polar source `src` holds an inline query (`?=` outside strings and comments). */
export function hasInlineQuery(src: string): boolean {
  return codeOf(src).includes('?=');
}

/**
 * Where `source` first nests deeper than MAX_POLICY_NESTING (line and column, 1-based), or undefined.
 * Depth: open brackets, plus the `.`, `+`, `-`, `*`, `/`, `mod` and `rem` chained at each of them
 * (a chain ends at `,`, `;`, `and`, `or` and `if`). Strings, comments and numbers (`1.5`) do not count.
 */
export function deepNesting(source: string): { line: number; column: number } | undefined {
  const src = codeOf(source);
  const chains: number[] = [0];
  let depth = 0;
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\n') {
      line++;
      lineStart = i + 1;
    } else if (/[0-9]/.test(c)) {
      while (i + 1 < src.length && /[0-9._eE]/.test(src[i + 1]!)) i++;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i;
      while (j + 1 < src.length && /[A-Za-z0-9_]/.test(src[j + 1]!)) j++;
      const word = src.slice(i, j + 1);
      i = j;
      if (word === 'and' || word === 'or' || word === 'if') {
        depth -= chains[chains.length - 1]!;
        chains[chains.length - 1] = 0;
      } else if (word === 'mod' || word === 'rem') {
        chains[chains.length - 1]!++;
        depth++;
      }
    } else if (c === '(' || c === '[' || c === '{') {
      chains.push(0);
      depth++;
    } else if (c === ')' || c === ']' || c === '}') {
      if (chains.length > 1) depth -= chains.pop()! + 1;
    } else if (c === ',' || c === ';') {
      depth -= chains[chains.length - 1]!;
      chains[chains.length - 1] = 0;
    } else if ('.+-*/'.includes(c)) {
      chains[chains.length - 1]!++;
      depth++;
    }
    if (depth > MAX_POLICY_NESTING) return { line, column: i - lineStart + 1 };
  }
  return undefined;
}

/** The problem of a source that nests too deeply for Oso (see deepNesting), or undefined. */
export function nestingError(source: PolarSource): PolicyErrorInfo | undefined {
  const at = deepNesting(source.src);
  if (at === undefined) return undefined;
  return {
    message: `nests brackets or chains of . + - * / more than ${MAX_POLICY_NESTING} levels deep, ` +
      'deeper than the policy engine can parse (a policy needs a few levels)',
    file: source.filename, line: at.line, column: at.column,
  };
}
