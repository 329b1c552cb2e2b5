// Reading YAML with positions. The `yaml` package keeps every node's source range; a LineCounter
// turns ranges into line numbers, so each problem can name file, line and key path. Validators
// walk the document through Cursors instead of plain JS objects for exactly that reason.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { childPath, Cursor } from './cursor.ts';
import type { Env } from './env-substitution.ts';
import type { Problems } from './problems.ts';

/**
 * The parser's messages that repeat file text after the fact, each with that text left out: an
 * unquoted value YAML reads as a tag (`!…`), a block scalar header (`|…`, `>…`) or an escape could
 * be a client secret written in the file. The line and key still say where.
 */
const SOURCE_ECHOES: readonly [RegExp, string][] = [
  [/^(Unresolved tag|Could not resolve tag|Not a valid tag|Verbatim tags aren't resolved|The .* tag has no suffix)\b.*/s,
    'a value that starts with ! is read as a YAML tag, and this one is not known (quote the value)'],
  [/^Block scalar header includes extra characters\b.*/s,
    'a value that starts with | or > is read as a block scalar header (quote the value)'],
  [/^Invalid escape sequence\b.*/s, 'invalid escape sequence in a double-quoted string (write \\\\ for a backslash, or use single quotes)'],
  [/^Unresolved plain scalar\b.*/s, 'unresolved plain scalar (quote the value)'],
  [/^Unknown directive\b.*/s, 'unknown % directive (a value that starts with % must be quoted)'],
  // The parser's stray tokens (a first line indented deeper than the lines after it) quote their text.
  [/^(Unexpected \S+ token in YAML (stream|document)|Not a YAML token)\b.*/s,
    'unexpected text outside the structure of the lines above (check the indentation)'],
  // The parser recurses once per level of block nesting (`- - - …`, deeper and deeper indents).
  [/^Maximum call stack size exceeded\b.*/s, 'lists or maps nest too deeply to read (a goldpath config file needs a few levels)'],
];

function withoutSource(message: string): string {
  for (const [re, safe] of SOURCE_ECHOES) if (re.test(message)) return safe;
  return message;
}

/** YAML parser error codes that mean, in a hand-written config, a key at the wrong column. */
const INDENTATION = new Set(['BAD_INDENT', 'TAB_AS_INDENT', 'BLOCK_AS_IMPLICIT_KEY', 'MULTILINE_IMPLICIT_KEY']);

/**
 * Lines (1-based) holding an unquoted `${` inside a flow collection (`[ ]`, `{ }`), where YAML
 * reads its braces as a map. Quotes and comments are skipped (roughly, as flowDepth does), so a
 * line is only a candidate: each `${NAME}` found is also given here as [start, end) to quote.
 */
function flowVariableLines(source: string): Map<number, [number, number][]> {
  const lines = new Map<number, [number, number][]>();
  let depth = 0;
  let line = 1;
  let quote = '';
  let comment = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\n') {
      line++;
      comment = false;
      continue;
    }
    if (comment) continue;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(source[i - 1]!))) comment = true;
    else if (c === '$' && source[i + 1] === '{' && depth > 0) {
      const spans = lines.get(line) ?? [];
      lines.set(line, spans);
      const close = source.indexOf('}', i + 2);
      if (close !== -1 && !source.slice(i, close).includes('\n')) {
        spans.push([i, close + 1]);
        i = close;
      }
    } else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth = Math.max(0, depth - 1);
  }
  return lines;
}

/**
 * Of the candidate lines, those whose every syntax error quoting their `${NAME}`s removes: the
 * advice to quote is then the fix. A candidate may be no flow collection at all (a `{` in a plain
 * value, or an unclosed `[` above it), and its error another one (a duplicate key, the missing `]`).
 */
function unquotedVariableLines(source: string): Set<number> {
  const candidates = flowVariableLines(source);
  const confirmed = new Set<number>();
  if (candidates.size === 0) return confirmed;
  const spans = [...candidates.values()].flat().sort((a, b) => a[0] - b[0]);
  let quoted = '';
  let at = 0;
  for (const [start, end] of spans) {
    quoted += `${source.slice(at, start)}"${source.slice(start, end)}"`;
    at = end;
  }
  quoted += source.slice(at);
  const lc = new LineCounter();
  const doc = parseDocument(quoted, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, version: '1.2' });
  const still = new Set([...doc.errors, ...doc.warnings].map((e) => lc.linePos(e.pos[0]).line || 1));
  for (const [line, s] of candidates) if (s.length > 0 && !still.has(line)) confirmed.add(line);
  return confirmed;
}

/** A parsed YAML file plus what is needed to report problems in it. */
export class YamlFile {
  readonly file: string;
  readonly dir: string;
  readonly doc: Document.Parsed;
  readonly env: Env;
  readonly problems: Problems;
  private readonly lc: LineCounter;

  private constructor(file: string, dir: string, doc: Document.Parsed, lc: LineCounter, env: Env, problems: Problems) {
    this.file = file;
    this.dir = dir;
    this.doc = doc;
    this.lc = lc;
    this.env = env;
    this.problems = problems;
  }

  /**
   * Parses `source`. Syntax errors are reported as problems; returns undefined if there were any,
   * since a half-parsed document would only produce misleading follow-up problems.
   */
  static parse(file: string, dir: string, source: string, env: Env, problems: Problems): YamlFile | undefined {
    const lc = new LineCounter();
    // prettyErrors would append a source excerpt to messages, and that excerpt may hold a secret.
    const doc = parseDocument(source, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, version: '1.2' });
    const issues = [...doc.errors, ...doc.warnings];
    // Errors at end of input (an unclosed quote or bracket) point past the last line; clamp to it.
    const lastLine = source.replace(/\n+$/, '').split('\n').length;
    const told = new Set<string>();
    const indented = new Set<number>();
    const lastChar = source.trimEnd().length - 1;
    // `{ client_secret: ${SECRET} }`: inside [ ] or { } YAML reads the braces of an unquoted
    // ${NAME} as a map, and says so in two or three unhelpful errors. One line says the fix.
    const unquotedVarLines = issues.length > 0 ? unquotedVariableLines(source) : new Set<number>();
    const toldVar = new Set<number>();
    for (const e of issues) {
      const line = Math.min(lc.linePos(e.pos[0]).line || 1, lastLine);
      if (unquotedVarLines.has(line)) {
        if (toldVar.has(line)) continue;
        toldVar.add(line);
        const key = pathAt(doc.contents, Math.min(e.pos[0], lastChar));
        problems.add(file, line, key || '(yaml)', 'YAML syntax: an unquoted ${NAME} inside [ ] or { } is read as a YAML map, ' +
          'not substituted: quote it, e.g. client_secret: "${NAME}" (or write the map one key per line)');
        continue;
      }
      let message = e.code === 'DUPLICATE_KEY' ? 'a key appears twice in the same map'
        : e.code === 'MULTIPLE_DOCS' ? 'the file holds more than one document (a second --- line); a goldpath config file is one'
          : withoutSource(e.message.split('\n')[0]!);
      // `match: * /api/x` is the classic trap: a plain value starting with * is an alias.
      if (e.code === 'BAD_ALIAS') message += ' (a value that starts with * must be quoted, e.g. match: "* /api/orders/*")';
      // A key a space off, or a tab: the parser names the grammar it broke, not the fix; and it
      // reports the slip two or three times on that line, once is enough.
      const indentation = INDENTATION.has(e.code) || (e.code === 'MISSING_CHAR' && /without - indicator/.test(message));
      if (indented.has(line)) continue;
      if (indentation) {
        indented.add(line);
        message += ': check the indentation of this line and the next (the keys of one map or list item start at the same column; indent with spaces, never tabs)';
      }
      // An error at the end of input (an unclosed quote or bracket) is in the last entry.
      const key = e.code === 'MULTIPLE_DOCS' ? '' : pathAt(doc.contents, Math.min(e.pos[0], lastChar), e.code === 'DUPLICATE_KEY');
      // The parser may report one fault twice (a stack overflow unwinding): once is enough.
      if (told.has(`${line}\n${message}`)) continue;
      told.add(`${line}\n${message}`);
      problems.add(file, line, key || '(yaml)', `YAML syntax: ${message}`);
    }
    if (issues.length > 0) return undefined;
    return new YamlFile(file, dir, doc, lc, env, problems);
  }

  lineOf(node: { range?: readonly number[] | null } | null | undefined): number | undefined {
    if (!node?.range) return undefined;
    return this.lc.linePos(node.range[0]!).line || 1;
  }

  root(): Cursor {
    return new Cursor(this, this.doc.contents ?? undefined, '', 1);
  }
}

/**
 * The key path of the deepest map entry or list item holding `offset` in a (partly) parsed
 * document: a syntax problem is located by key too. Only plain keys are named (a key written
 * oddly could itself be a misread value); '' when the offset is outside every entry. Nor is a key
 * the parser faults itself (the offset is on it: a value written on the line after its key, or
 * holding ': ', is read as a key) or one without a ':' (no value): such a "key" is a misread
 * value, maybe a secret. Only a duplicate key (`keyAtFault`) is a key the user wrote as one.
 */
function pathAt(node: unknown, offset: number, keyAtFault = false, path = '', depth = 0): string {
  // A config file is a few levels deep; a path of hundreds would only bury the message.
  if (depth >= 8) return path;
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = pair.key as Node | null;
      const value = pair.value as Node | null;
      const start = key?.range?.[0] ?? value?.range?.[0];
      const end = value?.range?.[2] ?? key?.range?.[2];
      if (start === undefined || end === undefined || offset < start || offset >= end) continue; // [start, end)
      if (!isScalar(key) || typeof key.value !== 'string' || !/^[A-Za-z0-9_-]+$/.test(key.value)) return path;
      if (value === null || (!keyAtFault && key.range !== undefined && key.range !== null && offset < key.range[1])) return path;
      return pathAt(value, offset, keyAtFault, childPath(path, key.value), depth + 1);
    }
  } else if (isSeq(node)) {
    for (let i = 0; i < node.items.length; i++) {
      const range = (node.items[i] as Node | null)?.range;
      if (range && offset >= range[0] && offset < range[2]) return pathAt(node.items[i], offset, keyAtFault, childPath(path, i), depth + 1);
    }
  }
  return path;
}
