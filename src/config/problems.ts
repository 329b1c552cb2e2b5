// Collects configuration problems instead of throwing at the first one: users fix a broken
// config in one round, not one error per restart. Values from the environment are kept out of
// messages where they are quoted (Cursor.show in cursor.ts), never by editing finished messages.
import { ConfigError, formatProblem, type ConfigProblem } from '../errors.ts';

export class Problems {
  readonly list: ConfigProblem[] = [];
  /** Legal but probably a mistake: `goldpath check` prints them (`file:line: key: message`); they fail nothing. */
  readonly warnings: ConfigProblem[] = [];

  add(file: string, line: number | undefined, key: string, message: string): void {
    this.list.push(line === undefined ? { file, key, message } : { file, line, key, message });
  }

  warn(file: string, line: number | undefined, key: string, message: string): void {
    this.warnings.push(line === undefined ? { file, key, message } : { file, line, key, message });
  }

  get count(): number {
    return this.list.length;
  }

  /** Throws a ConfigError carrying every problem, if there is any. */
  throwIfAny(): void {
    if (this.list.length > 0) throw new ConfigError(sortProblems(this.list));
  }
}

const FILE_ORDER = ['environment', 'routes.yaml', 'pdp.yaml', 'idps.yaml'];

/** Stable order for people: by file (as they are loaded), then by line; ties keep discovery order. */
export function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  const rank = (f: string) => {
    const i = FILE_ORDER.indexOf(f);
    return i === -1 ? FILE_ORDER.length : i;
  };
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p.file) - rank(b.p.file) || (a.p.line ?? 0) - (b.p.line ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}

/** One problem per line: `file:line: key: message`. */
export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map(formatProblem).join('\n');
}

/** Freezes a value and everything reachable from it, so no caller can change validated config. */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  // Typed arrays with elements cannot be frozen (TypeError); keys are copied per load anyway.
  if (ArrayBuffer.isView(value)) return value;
  for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key]);
  return Object.freeze(value);
}
