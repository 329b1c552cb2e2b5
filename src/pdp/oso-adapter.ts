// The only file that knows about Oso. Oso 0.27 is deprecated upstream; everything the rest of the
// PDP needs from a policy engine is the small PolicyEngine interface below, so swapping the engine
// means rewriting this file only.
import { Oso } from 'oso';
import * as osoHelpers from 'oso/dist/src/helpers.js';
import { Host } from 'oso/dist/src/Host.js';
import { Query } from 'oso/dist/src/Query.js';
import { nestingError } from './policy-nesting.ts';

// Oso tells a class from an instance by constructing a String with the value as new.target
// (helpers.isConstructor, a try/catch around Reflect.construct): for every instance it hands the
// VM, the actor and the resource of each query among them, that throws and catches a TypeError,
// and a thrown error captures a stack trace: 10 % of a request that misses the decision cache
// (`node dist/test/bench/profile.js f2`; one query 66 → 54 µs in process without it). A value
// that is not a function cannot be a constructor (Reflect.construct throws for it whatever it
// is), so it is answered without the throw; a function still gets Oso's own test. Host.js calls
// it through the module object (`helpers_1.isConstructor`), so replacing the export reaches its
// calls; `helpers.ancestors` keeps its local binding, and only ever sees constructors.
{
  const helpers = ((osoHelpers as { default?: unknown }).default ?? osoHelpers) as { isConstructor?: (f: unknown) => boolean };
  const { isConstructor } = helpers;
  if (typeof isConstructor === 'function' && Object.isExtensible(helpers)) {
    helpers.isConstructor = (f: unknown) => typeof f === 'function' && isConstructor(f);
  }
}

// Oso's JavaScript host answers a lookup of an attribute the object lacks with an application
// error *and* a result (`undefined`, as an external instance). Where the Polar VM ignores lookup
// errors, in a `matches` pattern, it went on with that value: `user.claims matches {tenant: _}`
// held for a user without a tenant claim, and `{tenant: t}` bound t. Oso's Python host answers
// "no result" there, a failed lookup; so does this one now. Elsewhere the error is raised as
// before.
// A failed method call (a misspelt or missing method, a call on nil) is an error wherever it
// happens, under `not` too: Oso answers it with `undefined`, which the VM, under `not`, used as
// the call's value, so `not user.claims.tier.toLowercase() = "blocked"` passed for a blocked user
// (SPEC: a policy that throws fails closed). Outside `not` the VM raises it first, with its line.
const lookup = Symbol('goldpath.lookup');
const failedLookup = Symbol('goldpath.failedLookup');
const failedCall = Symbol('goldpath.failedCall');
{
  const q = Query.prototype as unknown as {
    handleCall(attr: string, callId: number, instance: unknown, args: unknown): Promise<void>;
    applicationError(message: string): void;
    callResult(callId: number, term: unknown): void;
    start(): AsyncGenerator<unknown, void, undefined>;
    [lookup]?: boolean;
    [failedLookup]?: boolean;
    [failedCall]?: string;
  };
  const { handleCall, applicationError, callResult, start } = q;
  if ([handleCall, applicationError, callResult, start].every((f) => typeof f === 'function')) {
    // One call at a time per query: the VM waits for each call's result before the next. Oso's
    // handleCall reports an error (applicationError) and then, always, a result (callResult).
    q.handleCall = function (this: typeof q, attr, callId, instance, args) {
      this[lookup] = !args;
      this[failedLookup] = false;
      return handleCall.call(this, attr, callId, instance, args);
    };
    q.applicationError = function (this: typeof q, message: string) {
      if (this[lookup]) this[failedLookup] = true;
      else this[failedCall] ??= message;
      return applicationError.call(this, message);
    };
    // The query's results: none once a method call has failed, the query fails instead.
    q.start = async function* (this: typeof q) {
      for await (const result of start.call(this)) {
        if (this[failedCall] !== undefined) break;
        yield result;
      }
      if (this[failedCall] !== undefined) throw new Error(`Application error: ${this[failedCall]}`);
    };
    q.callResult = function (this: typeof q, callId: number, term: unknown) {
      if (this[failedLookup]) {
        this[failedLookup] = false;
        return callResult.call(this, callId, undefined);
      }
      return callResult.call(this, callId, term);
    };
  }
}

// An ordering comparison (<, <=, >, >=) reaches the host only when a side is not a Polar number
// or string: nil or an object. Oso's JS host then compared with JavaScript's loose rules, where
// null is 0 (`user.claims.risk < 50` held for `"risk": null`) and an object a string
// ("[object Object]" < "m"). Polar refuses to order values of different types, and Oso's Python
// host raises a TypeError here: so does this one now (the query fails, the request is denied).
// = and != keep Oso's answer (nil = nil holds in Polar too).
{
  const h = Host.prototype as unknown as {
    externalOp(op: string, left: unknown, right: unknown): Promise<boolean>;
    toJs(term: unknown): Promise<unknown>;
  };
  const { externalOp } = h;
  if (typeof externalOp === 'function' && typeof h.toJs === 'function') {
    h.externalOp = async function (this: typeof h, op, leftTerm, rightTerm) {
      if (op === 'Eq' || op === 'Neq') return externalOp.call(this, op, leftTerm, rightTerm);
      const [left, right] = [await this.toJs(leftTerm), await this.toJs(rightTerm)];
      const kind = (v: unknown) => (v === null ? 'nil' : typeof v);
      if (!(typeof left === typeof right && (typeof left === 'number' || typeof left === 'string'))) {
        throw new TypeError(`Type error: cannot order ${kind(left)} and ${kind(right)} (${op})`);
      }
      return externalOp.call(this, op, leftTerm, rightTerm);
    };
  }
}

/** One Polar file's text, named by the path that errors should point at. */
export interface PolarSource {
  readonly filename: string;
  readonly src: string;
}

/** A class the policy can name (specialisers like `user: User`). */
export interface PolicyClass {
  readonly name: string;
  readonly cls: abstract new (...args: never[]) => object;
}

export interface PolicyEngine {
  /** `allow(actor, action, resource)`: true when at least one allow rule succeeds. Throws when the policy throws. */
  isAllowed(actor: object, action: string, resource: object): Promise<boolean>;
  /** Releases the engine's memory (Oso's WASM heap is not garbage-collected). No call after this. */
  free(): void;
}

/** A policy error reduced to what may be logged: no values from the query (they may hold user data). */
export interface PolicyErrorInfo {
  readonly message: string;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;
}

/** The policy files do not load (syntax, validation, failed inline query). */
export class PolicyLoadError extends Error {
  readonly info: PolicyErrorInfo;
  constructor(info: PolicyErrorInfo, cause: unknown) {
    super(info.message, { cause });
    this.name = 'PolicyLoadError';
    this.info = info;
  }
}

export class OsoEngine implements PolicyEngine {
  readonly #oso: Oso;
  constructor(oso: Oso) {
    this.#oso = oso;
  }
  isAllowed(actor: object, action: string, resource: object): Promise<boolean> {
    return this.#oso.isAllowed(actor, action, resource);
  }
  free(): void {
    freeOso(this.#oso);
  }
}

function freeOso(oso: Oso): void {
  try {
    oso.free();
  } catch {
    // already freed, or a failed load left nothing to free
  }
}

// A shared policy file may name types that this deployment's pdp.yaml never produces. Resource
// blocks naming an unregistered class fail to load; plain rules load with a warning but crash the
// query later. So every such type gets an empty stand-in class (reported as a warning): rules about
// it simply never apply. Bounded so a pathological file cannot loop.
const MAX_STUBS = 64;
const UNREGISTERED = /^Unregistered class: ([A-Za-z_][A-Za-z0-9_]*)/;
const UNKNOWN_SPECIALIZER = /^Unknown specializer ([A-Za-z_][A-Za-z0-9_]*)/;

export async function loadPolicyEngine(opts: {
  classes: readonly PolicyClass[];
  sources: readonly PolarSource[];
  /** Warnings Polar emits while loading (missing allow rule...). */
  onWarning?: (message: string) => void;
}): Promise<{ engine: PolicyEngine; stubbedClasses: string[] }> {
  for (const source of opts.sources) {
    const deep = nestingError(source);
    if (deep) throw new PolicyLoadError(deep, undefined);
  }
  const stubbedClasses: string[] = [];
  const known = (name: string) => opts.classes.some((c) => c.name === name) || stubbedClasses.includes(name);
  for (;;) {
    const warnings: string[] = [];
    const oso = newOso((w) => warnings.push(w));
    for (const { name, cls } of opts.classes) oso.registerClass(cls as never, { name });
    for (const name of stubbedClasses) oso.registerClass({ [name]: class {} }[name]!, { name });
    try {
      await loadSources(oso, opts.sources);
    } catch (err) {
      freeOso(oso);
      const info = describePolicyError(err);
      const missing = UNREGISTERED.exec(info.message)?.[1];
      if (missing === undefined || known(missing) || stubbedClasses.length >= MAX_STUBS) {
        throw new PolicyLoadError(info, err);
      }
      stubbedClasses.push(missing);
      continue;
    }
    // A specialiser naming an unregistered class only warns at load, but makes Oso 0.27 panic at
    // query time ("no class ID for symbol") whenever a query reaches that rule: register it too.
    const unknown = warnings.map((w) => UNKNOWN_SPECIALIZER.exec(w)?.[1]).filter((n): n is string => n !== undefined && !known(n));
    if (unknown.length > 0 && stubbedClasses.length + unknown.length <= MAX_STUBS) {
      stubbedClasses.push(...new Set(unknown));
      freeOso(oso);
      continue;
    }
    for (const w of warnings) opts.onWarning?.(w);
    return { engine: new OsoEngine(oso), stubbedClasses };
  }
}

/**
 * The syntax error of each source parsed alone, in a throwaway engine: parsing needs no other
 * file, so unlike a load of all of them together (which stops at the first error) this finds
 * every broken file. Other errors need the files together and are left to loadPolicyEngine.
 */
export async function policySyntaxErrors(sources: readonly PolarSource[]): Promise<PolicyErrorInfo[]> {
  const errors: PolicyErrorInfo[] = [];
  for (const source of sources) {
    const deep = nestingError(source);
    if (deep) {
      errors.push(deep);
      continue;
    }
    const oso = newOso(undefined);
    try {
      await oso.loadStr(source.src, source.filename);
    } catch (err) {
      // Oso names its errors by kind: ParseError::UnrecognizedToken, ValidationError::…
      if (err instanceof Error && err.name.startsWith('ParseError::')) errors.push(describePolicyError(err));
    } finally {
      freeOso(oso);
    }
  }
  return errors;
}

function newOso(onWarning: ((message: string) => void) | undefined): Oso {
  const oso = new Oso();
  // Oso prints load-time warnings with console.warn (not JSON, not our logger). Its message pump is
  // an internal method; reroute it when present, else leave Oso's default.
  const internal = oso as unknown as { processMessages?: unknown; getFfi(): { nextMessage(): unknown } };
  if (typeof internal.processMessages === 'function') {
    internal.processMessages = () => {
      for (;;) {
        const msg = internal.getFfi().nextMessage() as { kind?: string; msg?: string } | undefined;
        if (msg === undefined) break;
        if (msg.kind === 'Warning') onWarning?.(firstLine(String(msg.msg)));
      }
    };
  }
  return oso;
}

async function loadSources(oso: Oso, sources: readonly PolarSource[]): Promise<void> {
  if (sources.length === 0) return;
  if (sources.length === 1) return oso.loadStr(sources[0]!.src, sources[0]!.filename);
  // Several files must load in one call (rules may span files). loadFiles would read the disk
  // itself; loadSources is the same code path taking the texts we already read.
  const internal = oso as unknown as { loadSources?: (s: PolarSource[]) => Promise<void> };
  if (typeof internal.loadSources !== 'function') {
    return oso.loadStr(sources.map((s) => s.src).join('\n'), sources.map((s) => s.filename).join(', '));
  }
  return internal.loadSources(sources.map((s) => ({ filename: s.filename, src: s.src })));
}

const LOCATION = / at line (\d+), column (\d+) of file (.+?):?$/m;

/**
 * Reduces a Polar error to one line plus its location. With `hideValues` (query-time errors) the
 * line keeps only the kind of error and, when an attribute is missing, its name: Polar's messages
 * embed the repr of the values in the query (the actor, the claims), which must not reach a log.
 * Load-time errors only quote policy source, so they are kept whole.
 */
export function describePolicyError(err: unknown, opts: { hideValues?: boolean } = {}): PolicyErrorInfo {
  const raw = err instanceof Error ? err.message : String(err);
  // Runtime errors read "trace (most recent evaluation last): ...\n\n<Kind> error: <detail> at line L,
  // column C of file F:\n<source>". The trace is all values; the last paragraph is the error.
  // Some errors span paragraphs before the location (an invalid rule: what it must match, why it
  // failed, what to add), so the error is everything from its start to the location.
  const paragraphs = raw.split(/\n\s*\n/).filter((p) => !/^(?:Error )?trace \(most recent/i.test(p.trim()));
  const main = paragraphs.join('\n') || raw;
  const loc = LOCATION.exec(main);
  let head = (loc ? main.slice(0, loc.index) : firstLine(main)).trim();
  if (opts.hideValues) {
    // The name is anything up to the first " not found on ": a name looked up by a variable is a
    // value of the query (a claim), and may hold spaces or colons (`SEKRIT with spaces`).
    const notFound = /^([^:]*):\s*([^]*?) not found on /.exec(head);
    // A lookup on a string or number claim: JavaScript's TypeError ends with the value, unquoted
    // (an email); numbers appear unquoted in Polar's messages too ("918273 < …"). The name may
    // hold a quote (a path segment `a'b`): then the value after it was logged.
    const notObject = /^([^:]*):\s*Cannot use 'in' operator to search for '([^]*?)' in /.exec(head);
    head = notFound ? `${notFound[1]}: attribute '${notFound[2]}' not found` :
      notObject ? `${notObject[1]}: attribute '${notObject[2]}' not found (not an object)` :
      // A string a policy passed to a method as a regular expression (`s.match(t)`), which V8's
      // SyntaxError quotes between slashes.
      head.replace(/^(Invalid regular expression: )\/[^]*\/([a-z]*): /, '$1/…/$2: ')
        .replace(/\{[^]*\}/g, '{…}').replace(/\[[^]*\]/g, '[…]')
        // Strings: everything from the first quote to the last (or to the end, for one alone).
        // Where a string ends cannot be told: Polar writes "a"b" without escaping its quote, and
        // util.inspect quotes with ', " or ` by what the string holds ('a\'b"c`d'), so pairs of
        // quotes let the rest of `a"b SECRET` or `it's "SECRET"` through.
        .replace(/['"`][^]*['"`]|['"`][^]*$/, '…')
        .replace(/(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?!\w)/gi, '…')
        // A boolean value ("this is true", "Boolean(false)"): a claim's, as much as a number is.
        .replace(/\b(?:true|false)\b/g, '…');
  }
  head = head.replace(/\s*\n\s*/g, ' ');
  if (head.length > 600) head = `${head.slice(0, 600)}…`;
  return {
    message: head || 'policy error',
    file: loc?.[3],
    line: loc ? Number(loc[1]) : undefined,
    column: loc ? Number(loc[2]) : undefined,
  };
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i === -1 ? s : s.slice(0, i);
}
