// Reading YAML with positions. The `yaml` package keeps every node's source range; a LineCounter
// turns ranges into line numbers, so each problem can name file, line and key path. Validators
// walk the document through Cursors instead of plain JS objects for exactly that reason.
import {
  isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument,
  type Document, type Node, type Scalar,
} from 'yaml';
import type { Problems } from './problems.ts';

export type Env = Readonly<Record<string, string | undefined>>;

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Replaces `${NAME}` and `${NAME:-default}` (compose syntax; the default applies when NAME is
 * unset or empty). `$${` writes a literal `${`. Any other `$` is literal.
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
function expand(text: string, env: Env): { value: string; problems: string[]; fromEnv: string[] } {
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
    const close = text.indexOf('}', dollar + 2);
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
      if (sep !== -1 && (value === undefined || value === '')) literal(body.slice(sep + 2));
      else if (value === undefined) {
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

/** Shorter runs of an environment value may be shown: too short to give a secret away. */
const MIN_SECRET = 3;

/**
 * Whether `text` shows any MIN_SECRET-character piece of one of `fromEnv` (letter case ignored:
 * a host name may come back lower-cased). Linear: the pieces of the values go in a set.
 */
function showsEnv(text: string, fromEnv: readonly string[]): boolean {
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

/** Appends a key to a path: `a.b`, or `a["odd key"]` for keys that are not plain names. */
export function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (/^[A-Za-z0-9_-]+$/.test(key)) return parent ? `${parent}.${key}` : key;
  return `${parent}[${JSON.stringify(key)}]`;
}

/**
 * Quotes a value written in the file into a message. Only for text that cannot hold a value from
 * the environment (a key, a name checked against keys); a scalar's value, which may, goes through
 * its Cursor's show().
 */
export function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
}

function describe(node: Node | undefined): string {
  if (node === undefined) return 'nothing';
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'null';
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'number' || typeof v === 'bigint') return 'a number';
    return 'a string';
  }
  return 'an alias';
}

/** Position in the document: a node (or its absence), its key path and a line to report at. */
export class Cursor {
  readonly y: YamlFile;
  readonly node: Node | undefined;
  readonly path: string;
  readonly line: number | undefined;
  /** An alias without anchor, already reported: later checks stay quiet about it. */
  private readonly danglingAlias: boolean = false;
  /** What string() read here: the text as written and the parts of its value from the environment. */
  #written: { readonly raw: string; readonly fromEnv: readonly string[] } | undefined;

  constructor(y: YamlFile, node: Node | undefined, path: string, fallbackLine: number | undefined) {
    this.y = y;
    this.path = path;
    let n = node;
    if (n !== undefined && isAlias(n)) {
      const target = n.resolve(y.doc);
      if (target === undefined) {
        // Not the name: an unquoted client secret that starts with * is read as an alias too.
        y.problems.add(y.file, y.lineOf(n) ?? fallbackLine, path || '(root)',
          'is an alias (*name) with no anchor (&name) before it; a value that starts with * must be quoted');
        this.danglingAlias = true;
      }
      n = target as Node | undefined;
    }
    this.node = n;
    this.line = y.lineOf(node) ?? fallbackLine;
  }

  /** Absent, or an explicit null (`key:` / `key: ~`). */
  get missing(): boolean {
    if (this.danglingAlias) return false;
    return this.node === undefined || (isScalar(this.node) && this.node.value === null);
  }

  /**
   * `text` (this place's value, a piece of it, or text made from it) as a message may show it:
   * itself, or, when it shows any part of a value from the environment (a secret, maybe), the
   * text written here (`${NAME}`). Decided per value, where it is quoted: a message's own wording
   * is never touched, and a value is never shown as another place's text.
   */
  safe(text: string): string {
    const w = this.#written;
    return w !== undefined && showsEnv(text, w.fromEnv) ? w.raw : text;
  }

  /** safe(), quoted (see show()). */
  show(text: string): string {
    return show(this.safe(text));
  }

  problem(message: string, line = this.line): void {
    if (this.danglingAlias) return;
    this.y.problems.add(this.y.file, line, this.path || '(root)', message);
  }

  /** See Problems.warn. */
  warn(message: string): void {
    if (!this.danglingAlias) this.y.problems.warn(this.y.file, this.line, this.path || '(root)', message);
  }

  /**
   * Whether an unquoted value (not a `${NAME}`) has a comment after it on its line: YAML ends a
   * plain value at ` #`, so a secret holding one is silently cut there.
   */
  get cutByComment(): boolean {
    const n = this.node;
    return n !== undefined && isScalar(n) && n.type === 'PLAIN' && n.comment !== undefined && n.comment !== null &&
      typeof n.value === 'string' && !n.value.includes('${');
  }

  /** Reports a missing required value. */
  required(what: string): void {
    this.problem(`is required: ${what}`);
  }

  /** A map with only `allowed` keys. Unknown keys are problems; returns undefined if not a map. */
  map(allowed: readonly string[], what = 'a map'): Fields | undefined {
    const entries = this.entries(what);
    if (!entries) return undefined;
    const fields = new Map<string, Cursor>();
    for (const e of entries) {
      if (!allowed.includes(e.key)) {
        this.y.problems.add(this.y.file, e.keyLine, e.value.path,
          `unknown key (expected ${allowed.length ? allowed.join(', ') : 'no keys'})`);
      } else fields.set(e.key, e.value);
    }
    return new Fields(this, fields);
  }

  /** A map with arbitrary keys (named things such as IdPs). */
  entries(what = 'a map'): { key: string; keyLine: number | undefined; value: Cursor }[] | undefined {
    if (!this.node || !isMap(this.node)) {
      this.problem(`must be ${what}, got ${describe(this.node)}`);
      return undefined;
    }
    return this.node.items.map((pair) => {
      const k = pair.key as Node | null;
      const key = k && isScalar(k) ? String(k.value) : String(k);
      const keyLine = this.y.lineOf(k) ?? this.line;
      const path = childPath(this.path, key);
      return { key, keyLine, value: new Cursor(this.y, (pair.value ?? undefined) as Node | undefined, path, keyLine) };
    });
  }

  /** A list; returns undefined (after reporting) if it is not one. */
  seq(what = 'a list'): Cursor[] | undefined {
    if (!this.node || !isSeq(this.node)) {
      this.problem(`must be ${what}, got ${describe(this.node)}`);
      return undefined;
    }
    return this.node.items.map((item, i) => new Cursor(this.y, item as Node, childPath(this.path, i), this.line));
  }

  /**
   * A string scalar with `${VAR}` substituted. `allowNumber` accepts a plain number as written
   * (client ids and resource ids are often numeric). Problems never include the value.
   */
  string(opts: { allowNumber?: boolean; nonEmpty?: boolean; what?: string } = {}): string | undefined {
    const what = opts.what ?? 'a string';
    const n = this.node;
    if (!n || !isScalar(n) || n.value === null) {
      this.problem(`must be ${what}, got ${describe(n)}`);
      return undefined;
    }
    let value: string;
    if (typeof n.value === 'string') {
      const r = expand(n.value, this.y.env);
      if (r.problems.length > 0) {
        for (const p of r.problems) this.problem(p);
        return undefined;
      }
      value = r.value;
      this.#written = { raw: n.value, fromEnv: r.fromEnv };
    } else if (opts.allowNumber && (typeof n.value === 'number' || typeof n.value === 'bigint')) {
      value = (n as Scalar).source ?? String(n.value);
    } else {
      this.problem(`must be ${what}, got ${describe(n)}${typeof n.value === 'number' ? ' (quote it)' : ''}`);
      return undefined;
    }
    if (opts.nonEmpty !== false && value.trim() === '') {
      this.problem(`must be ${what}, got an empty string`);
      return undefined;
    }
    return value;
  }

  /** true/false; a substituted string "true"/"false" counts too, so `${FLAG:-false}` works. */
  bool(): boolean | undefined {
    const n = this.node;
    if (n && isScalar(n) && typeof n.value === 'boolean') return n.value;
    if (n && isScalar(n) && typeof n.value === 'string' && n.value.includes('${')) {
      const s = this.string();
      if (s === undefined) return undefined;
      if (s === 'true' || s === 'false') return s === 'true';
    }
    this.problem(`must be true or false, got ${describe(n)}`);
    return undefined;
  }

  /** A list of strings. */
  strings(what = 'a list of strings'): string[] | undefined {
    const items = this.seq(what);
    if (!items) return undefined;
    let ok = true;
    const out: string[] = [];
    for (const item of items) {
      const s = item.string();
      if (s === undefined) ok = false;
      else out.push(s);
    }
    return ok ? out : undefined;
  }
}

/** The known keys of a map, each as a Cursor (absent keys report at the map's line). */
export class Fields {
  readonly parent: Cursor;
  private readonly fields: Map<string, Cursor>;

  constructor(parent: Cursor, fields: Map<string, Cursor>) {
    this.parent = parent;
    this.fields = fields;
  }

  get(key: string): Cursor {
    return this.fields.get(key) ?? new Cursor(this.parent.y, undefined, childPath(this.parent.path, key), this.parent.line);
  }

  has(key: string): boolean {
    const c = this.fields.get(key);
    return c !== undefined && !c.missing;
  }
}
