// Rules: Traefik v3 syntax, matchers Path, PathPrefix, Host with ||, &&, ! and parentheses.

export interface RouteRequest {
  /** Host header without the port, lower-case. */
  readonly host: string;
  /** The sanitised path (see sanitizeRequestTarget). */
  readonly path: string;
}
export type RuleMatcher = (r: RouteRequest) => boolean;

const SUPPORTED_MATCHERS = ['Path', 'PathPrefix', 'Host'];

/** Parses a Traefik v3 rule; throws an Error naming the problem for anything unsupported. */
export function parseRule(rule: string): RuleMatcher {
  const tokens = tokenize(rule);
  let pos = 0;
  const peek = () => tokens[pos];
  const expect = (kind: string) => {
    const t = tokens[pos++];
    if (!t || t.kind !== kind) throw new Error(`expected ${kind} at ${t ? `"${t.text}"` : 'the end of the rule'}`);
    return t;
  };
  const orExpr = (): RuleMatcher => {
    const parts = [andExpr()];
    while (peek()?.kind === '||') { pos++; parts.push(andExpr()); }
    return parts.length === 1 ? parts[0]! : (r) => parts.some((p) => p(r));
  };
  const andExpr = (): RuleMatcher => {
    const parts = [unary()];
    while (peek()?.kind === '&&') { pos++; parts.push(unary()); }
    return parts.length === 1 ? parts[0]! : (r) => parts.every((p) => p(r));
  };
  const unary = (): RuleMatcher => {
    if (peek()?.kind === '!') { pos++; const inner = unary(); return (r) => !inner(r); }
    if (peek()?.kind === '(') { pos++; const inner = orExpr(); expect(')'); return inner; }
    return matcher();
  };
  const matcher = (): RuleMatcher => {
    const name = expect('ident').text;
    if (!SUPPORTED_MATCHERS.includes(name)) {
      throw new Error(`matcher ${name}() is not supported by the development edge (supported: ${SUPPORTED_MATCHERS.join(', ')})`);
    }
    expect('(');
    const arg = expect('string').text;
    if (peek()?.kind === ',') throw new Error(`${name}() takes exactly one argument in Traefik v3 rule syntax`);
    expect(')');
    return makeMatcher(name, arg);
  };
  const m = orExpr();
  if (pos !== tokens.length) throw new Error(`unexpected "${tokens[pos]!.text}"`);
  return m;
}

function makeMatcher(name: string, arg: string): RuleMatcher {
  switch (name) {
    case 'Host': {
      if (arg === '' || /[\s/]/.test(arg)) throw new Error(`Host(\`${arg}\`) is not a host name`);
      const host = arg.toLowerCase();
      // Traefik (pkg/muxer/http/matcher.go, host): a trailing "." on either side still matches.
      const bare = host.endsWith('.') ? host.slice(0, -1) : host;
      return (r) => r.host === host || (r.host.endsWith('.') ? r.host.slice(0, -1) : r.host) === bare;
    }
    case 'Path':
      if (!arg.startsWith('/')) throw new Error(`Path(\`${arg}\`) must start with /`);
      return (r) => r.path === arg;
    default: // PathPrefix
      if (!arg.startsWith('/')) throw new Error(`PathPrefix(\`${arg}\`) must start with /`);
      return (r) => r.path.startsWith(arg);
  }
}

interface Token { kind: 'ident' | 'string' | '(' | ')' | ',' | '||' | '&&' | '!'; text: string }

function tokenize(rule: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < rule.length) {
    const c = rule[i]!;
    if (/\s/.test(c)) { i++; continue; }
    const two = rule.slice(i, i + 2);
    if (two === '||' || two === '&&') { out.push({ kind: two, text: two }); i += 2; continue; }
    if (c === '(' || c === ')' || c === ',' || c === '!') { out.push({ kind: c, text: c }); i++; continue; }
    if (c === '`' || c === '"') {
      const end = rule.indexOf(c, i + 1);
      if (end === -1) throw new Error(`unterminated string starting at column ${i + 1}`);
      const text = rule.slice(i + 1, end);
      if (c === '"' && text.includes('\\')) throw new Error('escapes in "…" strings are not supported; use backticks');
      out.push({ kind: 'string', text });
      i = end + 1;
      continue;
    }
    const ident = /^[A-Za-z][A-Za-z0-9]*/.exec(rule.slice(i));
    if (ident) { out.push({ kind: 'ident', text: ident[0] }); i += ident[0].length; continue; }
    throw new Error(`unexpected character "${c}" at column ${i + 1}`);
  }
  if (out.length === 0) throw new Error('the rule is empty');
  return out;
}
