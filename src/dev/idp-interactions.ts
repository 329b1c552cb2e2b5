// The dev IdP's login and consent steps, as one Koa middleware mounted in front of oidc-provider.
// GET /interaction/:uid shows the step oidc-provider asks for; POSTs finish it.
import type { Context, Next } from 'koa';
import type { Provider, InteractionDetails } from 'oidc-provider';
import type { Logger } from '../log.ts';
import { readForm } from '../bff/body.ts';
import { consentPage, loginPage, messagePage, PAGE_HEADERS } from './idp-pages.ts';

// A name or an e-mail address (what most people type): the sub becomes X-Auth-User and a path
// segment (/api/profiles/<sub>), so only characters both carry as they are, or percent-encoded
// without any meaning to a router (no space, "/", "%" or non-ASCII). Keep idp-pages.ts's pattern equal.
const USER_NAME = /^[A-Za-z0-9._+-]{1,64}(?:@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*)?$/;
const USER_NAME_RULE = 'User names are 1 to 64 letters, digits, dots, dashes, underscores or plus signs, or such a name @ a domain (an e-mail address).';
const ROUTE = /^\/interaction\/([A-Za-z0-9_-]{1,128})(?:\/(login|confirm|abort))?$/;

export function interactions(provider: Provider, log: Logger, opts: { autoConsent: boolean } = { autoConsent: false }) {
  return async function devInteractions(ctx: Context, next: Next): Promise<void> {
    const m = ROUTE.exec(ctx.path);
    if (!m) return next();
    const [, uid, action] = m as unknown as [string, string, string | undefined];
    ctx.set(PAGE_HEADERS);

    let details: InteractionDetails;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch {
      return fail(ctx, 400, 'This sign-in request has expired or is unknown. Start again from the application.');
    }
    if (details.uid !== uid) return fail(ctx, 400, 'This sign-in request does not belong to this browser.');
    const clientId = String(details.params['client_id'] ?? '');

    if (!action) {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return fail(ctx, 405, 'Method not allowed.');
      ctx.type = 'html';
      if (details.prompt.name === 'login') {
        ctx.body = loginPage(uid, clientId);
      } else if (details.prompt.name === 'consent' && opts.autoConsent && details.session?.accountId) {
        const grantId = await grantAll(provider, details, clientId);
        const location = await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
        ctx.status = 303;
        ctx.redirect(location);
      } else if (details.prompt.name === 'consent') {
        const d = details.prompt.details as { missingOIDCScope?: string[]; missingResourceScopes?: Record<string, string[]> };
        ctx.body = consentPage(uid, clientId, details.session?.accountId ?? '', d.missingOIDCScope ?? [], d.missingResourceScopes ?? {});
      } else {
        return fail(ctx, 400, `Unsupported interaction ${details.prompt.name}.`);
      }
      return;
    }

    if (ctx.method !== 'POST') return fail(ctx, 405, 'Method not allowed.');
    let result: Record<string, unknown>;
    if (action === 'abort') {
      result = { error: 'access_denied', error_description: 'the user cancelled the sign-in' };
    } else if (action === 'login') {
      if (details.prompt.name !== 'login') return fail(ctx, 400, 'Unexpected sign-in step.');
      const form = await readForm(ctx.req, 4096).catch(() => ({} as Record<string, string>));
      const user = (form['login'] ?? '').trim();
      if (user.length > 254 || !USER_NAME.test(user)) {
        ctx.status = 400;
        ctx.type = 'html';
        ctx.body = loginPage(uid, clientId, USER_NAME_RULE);
        return;
      }
      result = { login: { accountId: user } };
    } else {
      if (details.prompt.name !== 'consent' || !details.session?.accountId) return fail(ctx, 400, 'Unexpected consent step.');
      result = { consent: { grantId: await grantAll(provider, details, clientId) } };
    }
    const location = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    log.debug({ step: action, client: clientId }, 'dev IdP interaction finished');
    ctx.status = 303;
    ctx.redirect(location);
  };
}

/** Grants everything that was asked for: the dev IdP's consent is a single "Allow" button. */
async function grantAll(provider: Provider, details: InteractionDetails, clientId: string): Promise<string> {
  const accountId = details.session!.accountId!;
  const grant = (details.grantId ? await provider.Grant.find(details.grantId) : undefined)
    ?? new provider.Grant({ accountId, clientId });
  const d = details.prompt.details as {
    missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]>;
  };
  if (d.missingOIDCScope?.length) grant.addOIDCScope(d.missingOIDCScope.join(' '));
  if (d.missingOIDCClaims?.length) grant.addOIDCClaims(d.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return grant.save();
}

function fail(ctx: Context, status: number, message: string): void {
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = messagePage('Sign-in problem', message);
}
