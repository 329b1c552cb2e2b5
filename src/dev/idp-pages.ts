// The dev IdP's HTML: a login form that accepts any user name and a consent form. Forms carry
// stable ids (login, consent, abort) so test/helpers/login.ts can drive them like a browser.

/**
 * Headers of every page of the dev IdP's own: never framed (a click on Allow or Sign out under
 * another page), never sniffed, no Referer (the sign-out page's URL holds an ID token).
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'",
};

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}
.banner{background:#fff3cd;border:1px solid #e0c36b;padding:.5rem .75rem;border-radius:4px;font-size:.9rem}
input[type=text]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
button{margin-top:.75rem;padding:.5rem 1rem;font-size:1rem}.muted{color:#666;font-size:.9rem}</style>
</head><body><p class="banner">goldpath development IdP: any user name signs in, no password. Never use in production.</p>
${body}
</body></html>`;
}

export function loginPage(uid: string, clientId: string, error?: string): string {
  const uidE = encodeURIComponent(uid);
  return page('Sign in', `<h1>Sign in</h1>
<p class="muted">to <strong>${escapeHtml(clientId)}</strong>. Try <code>admin</code> (roles admin, reader) or any other name (role reader).</p>
${error ? `<p role="alert" style="color:#b00020">${escapeHtml(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${uidE}/login" autocomplete="off">
<label for="user">User name</label>
<input type="text" id="user" name="login" required autofocus maxlength="254"
pattern="[A-Za-z0-9._+\\-]{1,64}(@[A-Za-z0-9\\-]{1,63}(\\.[A-Za-z0-9\\-]{1,63})*)?"
title="a name (letters, digits, . _ - +) or an e-mail address">
<button type="submit">Sign in</button>
</form>
<form id="abort" method="post" action="/interaction/${uidE}/abort"><button type="submit">Cancel</button></form>`);
}

export function consentPage(uid: string, clientId: string, accountId: string, scopes: string[], resources: Record<string, string[]>): string {
  const uidE = encodeURIComponent(uid);
  const items = scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join('');
  const res = Object.entries(resources)
    .map(([r, ss]) => `<li>${escapeHtml(r)}: ${ss.map(escapeHtml).join(', ')}</li>`).join('');
  return page('Allow access', `<h1>Allow access?</h1>
<p><strong>${escapeHtml(clientId)}</strong> asks to act as <strong>${escapeHtml(accountId)}</strong>.</p>
${items ? `<p>Scopes:</p><ul>${items}</ul>` : ''}${res ? `<p>APIs:</p><ul>${res}</ul>` : ''}
<form id="consent" method="post" action="/interaction/${uidE}/confirm"><button type="submit" autofocus>Allow</button></form>
<form id="abort" method="post" action="/interaction/${uidE}/abort"><button type="submit">Deny</button></form>`);
}

export function messagePage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`);
}

export function logoutPage(form: string, host: string): string {
  // oidc-provider hands us its own form (with its xsrf field); we add the submit buttons.
  return page('Sign out', `<h1>Sign out of ${escapeHtml(host)}?</h1>${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Sign out</button>
<button type="submit" form="op.logoutForm">Stay signed in</button>`);
}
