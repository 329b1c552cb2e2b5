// Step 7: ask the PDP. Public routes need no rule. Deny, no rule and a throwing policy all give
// 403: the PDP never lets an exception through, and we never allow on doubt.
import { Forbidden } from '../errors.ts';
import type { Decision } from '../pdp/index.ts';
import type { SessionUser } from '../session/types.ts';
import { quiet } from './quiet.ts';
import type { VerifyDeps, VerifyPolicy, VerifyStep } from './state.ts';

// The Pdp caches decisions on their full input, but building that key (rule match, resource,
// a JSON string, its hash) is most of the cost of a cached decision. In front of it, each user
// object keeps the few decisions it got under the current policy, by method and path: the same
// input (the route is a function of path and policy), so the same answer. A cached session hands
// out one user object until it is reloaded (src/session/cache.ts), and a reload of the policy is
// a new VerifyPolicy, so neither can serve a stale decision. Errors are never kept.
// Small: a flat [key, decision, key, decision...] list (10,000 active users each holding a Map
// would cost megabytes), searched linearly, emptied when full.
const MEMO_PER_USER = 8;
interface Memo {
  readonly policy: VerifyPolicy;
  readonly entries: (string | Decision)[];
}
const memos = new WeakMap<SessionUser, Memo>();

function recall(memo: Memo, key: string): Decision | undefined {
  const e = memo.entries;
  for (let i = 0; i < e.length; i += 2) if (e[i] === key) return e[i + 1] as Decision;
  return undefined;
}

export function authorize(deps: VerifyDeps): VerifyStep {
  // Every denial renders the same: one error object (see run-chain.ts).
  const forbidden = quiet(() => new Forbidden());
  const deny = (ctx: Parameters<VerifyStep>[0], d: Decision): void => {
    const s = ctx.state;
    s.outcome = d.outcome === 'allow' ? 'deny' : d.outcome;
    if (d.outcome === 'error') deps.log.warn({ reqId: s.requestId, route: s.route.name, rule: d.rule }, 'policy error: denied');
    ctx.fail(forbidden);
  };
  return function authorizeStep(ctx) {
    const s = ctx.state;
    if (s.route.auth !== 'session') return;
    const user = s.session!.secrets.user;
    let memo = memos.get(user);
    if (memo === undefined || memo.policy !== s.policy) {
      memo = { policy: s.policy, entries: [] };
      memos.set(user, memo);
    }
    const key = s.method + ' ' + s.path;
    const known = recall(memo, key);
    if (known !== undefined) {
      if (!known.allow) deny(ctx, known);
      return;
    }
    const entries = memo.entries;
    return s.policy.pdp.decide(user, { method: s.method, path: s.path, route: s.route.name }).then((d) => {
      if (d.outcome !== 'error') {
        if (entries.length >= 2 * MEMO_PER_USER) entries.length = 0;
        entries.push(key, d);
      }
      if (!d.allow) deny(ctx, d);
    });
  };
}
