// Collects configuration problems instead of throwing at the first one: users fix a broken
// config in one round, not one error per restart.
import { ConfigError, formatProblem, type ConfigProblem } from '../errors.ts';

export class Problems {
  readonly list: ConfigProblem[] = [];
  /** Values that came from the environment, shown in messages as the ${NAME} that produced them. */
  readonly #fromEnv = new Map<string, string>();

  add(file: string, line: number | undefined, key: string, message: string): void {
    this.list.push(line === undefined ? { file, key, message } : { file, line, key, message });
  }

  /** Remembers that `value` came from `${name}`: no message may show it (it may be a secret). */
  substituted(value: string, raw: string): void {
    if (value.length >= 3 && value !== raw) this.#fromEnv.set(value, raw);
  }

  /**
   * Every problem, with substituted environment values masked back to the text that was written:
   * in every form a message can show them (yaml.ts `show`): whole or cut at 80 characters, as
   * written or JSON-escaped. Longest first, so a value is never half masked by a shorter one.
   */
  redacted(): ConfigProblem[] {
    if (this.#fromEnv.size === 0) return this.list;
    const forms = new Map<string, string>();
    const escaped = (v: string) => JSON.stringify(v).slice(1, -1);
    for (const [value, raw] of this.#fromEnv) {
      for (const f of [value, escaped(value), value.slice(0, 80), escaped(value.slice(0, 80))]) {
        if (f.length >= 3 && !forms.has(f)) forms.set(f, raw);
      }
    }
    const needles = [...forms].sort((a, b) => b[0].length - a[0].length);
    return this.list.map((p) => {
      let message = p.message;
      for (const [value, raw] of needles) message = message.split(value).join(raw);
      return message === p.message ? p : { ...p, message };
    });
  }

  get count(): number {
    return this.list.length;
  }

  /** Throws a ConfigError carrying every problem, if there is any. */
  throwIfAny(): void {
    if (this.list.length > 0) throw new ConfigError(sortProblems(this.redacted()));
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
