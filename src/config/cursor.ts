// Walking a parsed YAML document. A Cursor is a place in it (a node, its key path, its line);
// validators read values through Cursors, so every problem names where it is, and no message shows
// a value that came from the environment.
import { isAlias, isMap, isScalar, isSeq, type Node, type Scalar } from 'yaml';
import { expand, showsEnv } from './env-substitution.ts';
import type { YamlFile } from './yaml.ts';

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
