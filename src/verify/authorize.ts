// Step 7: ask the PDP. Public routes need no rule. Deny, no rule and a throwing policy all give
// 403: the PDP never lets an exception through, and we never allow on doubt.
import { Forbidden } from '../errors.ts';
import { FloodGate } from '../http/flood-gate.ts';
import { actorKeyOf, type Decision } from '../pdp/index.ts';
import { intern } from '../session/intern.ts';
import { flatCopy } from '../strings.ts';
import { MEMO_URI_LENGTH } from './canonical-uri.ts';
import type { SessionUser } from '../session/types.ts';
import { quiet } from './quiet.ts';
import { memoOf } from './session-memo.ts';
import type { VerifyDeps, VerifyStep } from './state.ts';

// The Pdp caches decisions on their full input, but building that key (rule match, resource,
// a JSON string, its hash) is most of the cost of a cached decision. In front of it, each session
// keeps the few decisions it got under the current policy, by method and path (session-memo.ts):
// the same input (the route is a function of path and policy), so the same answer. A reload of
// the policy is a new VerifyPolicy, which empties them. Errors are never kept.
// Small: searched linearly, emptied when full.
const MEMO_PER_SESSION = 8;

function recall(e: readonly (string | Decision)[], method: string, path: string): Decision | undefined {
  for (let i = 0; i < e.length; i += 3) if (e[i] === method && e[i + 1] === path) return e[i + 2] as Decision;
  return undefined;
}

export function authorize(deps: VerifyDeps): VerifyStep {
  // Every denial renders the same: one error object (see run-chain.ts).
  const forbidden = quiet(() => new Forbidden());
  // A rule that throws does so for every request that reaches it, and anyone signed in can send
  // those: a line each was a log flood at the request rate. One a second, the held ones counted
  // (the PDP logs each rule's error itself, once); the last one held is said when its second ends.
  type ErrorLine = { reqId: string | undefined; route: string; rule: string | undefined };
  const said = (line: ErrorLine, also: number) => deps.log.warn({ ...line, ...(also > 0 ? { alsoDenied: also } : {}) }, 'policy error: denied');
  const errors = new FloodGate<ErrorLine>(1_000, said);
  const deny = (ctx: Parameters<VerifyStep>[0], d: Decision): void => {
    const s = ctx.state;
    s.outcome = d.outcome === 'allow' ? 'deny' : d.outcome;
    if (d.outcome === 'error') {
      const line = { reqId: s.requestId, route: s.route.name, rule: d.rule };
      const held = errors.pass(performance.now(), line);
      if (held !== undefined) said(line, held);
    }
    ctx.fail(forbidden);
  };
  return function authorizeStep(ctx) {
    const s = ctx.state;
    if (s.route.auth !== 'session') return;
    const session = s.session!;
    const memo = memoOf(session);
    const { method, path, policy } = s;
    if (memo.policy === policy.version) {
      const known = recall(memo.decisions, method, path);
      if (known !== undefined) {
        if (!known.allow) deny(ctx, known);
        return;
      }
    }
    // The actor's decision-cache key is kept in the memo: a decision the Pdp has cached (another
    // path of this user) is then found without reading the session's secrets (cached-session.ts).
    let user: SessionUser | (() => SessionUser) = () => session.secrets.user;
    if (memo.actorKey === undefined) {
      user = session.secrets.user;
      try {
        memo.actorKey = actorKeyOf(user);
      } catch {
        // Claims JSON cannot hold: the Pdp answers such a user uncached.
      }
    }
    // The state goes along for the PDP's policy-error line, which reads its request id only then.
    return policy.pdp.decide(user, { method, path, route: s.route.name }, memo.actorKey, s).then((d) => {
      // Long paths are not kept: 20,000 sessions × 8 paths of 8 KiB were 1.3 GB (the Pdp's own
      // cache digests long keys).
      if (d.outcome !== 'error' && path.length <= MEMO_URI_LENGTH) {
        const list = memo.decisions;
        // The method string is the request's own: one shared copy instead (every session keeps one).
        const m = intern(method);
        // A path cut from a longer X-Forwarded-Uri (before a query of up to 8 KiB) is a slice that
        // keeps the whole alive: kept as a copy. Otherwise it is the URI itself, short.
        const kept = s.rawUri.length !== path.length ? flatCopy(path) : path;
        if (memo.policy === policy.version && list.length > 0 && list.length < 3 * MEMO_PER_SESSION) {
          (list as (string | Decision)[]).push(m, kept, d); // a session asking about many paths
        } else {
          memo.decisions = [m, kept, d]; // exact size: most sessions never need a second
        }
        memo.policy = policy.version;
      }
      if (!d.allow) deny(ctx, d);
    });
  };
}
