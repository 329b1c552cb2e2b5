// The example SPA: plain browser JavaScript, no build step, no framework, no inline script.
// Everything the API sends back is shown with textContent: no HTML is ever built from strings.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  /** The /auth/session answer while logged in, else null. */
  let session = null;

  const REASONS = { 200: 'OK', 201: 'Created', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized',
    403: 'Forbidden', 404: 'Not Found', 413: 'Payload Too Large', 500: 'Server Error', 502: 'Bad Gateway',
    503: 'Unavailable' };

  function formatTime(value) {
    if (value === undefined || value === null) return '—';
    const ms = typeof value === 'number' ? (value < 1e12 ? value * 1000 : value) : Date.parse(String(value));
    if (!Number.isFinite(ms)) return String(value);
    const mins = Math.round((ms - Date.now()) / 60000);
    const rel = mins <= 0 ? 'now' : mins < 90 ? `in ${mins} min` : `in ${Math.round(mins / 60)} h`;
    return `${new Date(ms).toLocaleString()} (${rel})`;
  }

  /**
   * The login URL the sidecar sent (same origin only), returning to this page: its return_to is
   * the API call that failed, and a person who logs in wants the SPA back, not that call's JSON.
   */
  function loginLinkFrom(value) {
    if (typeof value !== 'string') return loginHref();
    try {
      const u = new URL(value, window.location.href);
      if (u.origin !== window.location.origin) return loginHref();
      u.searchParams.set('return_to', window.location.pathname || '/');
      return u.pathname + u.search;
    } catch {
      return loginHref();
    }
  }

  function loginHref() {
    return '/auth/login?return_to=' + encodeURIComponent(window.location.pathname || '/');
  }

  function renderSession(body) {
    const details = $('whoami-details');
    if (session) {
      const u = session.user || {};
      $('who-sub').textContent = u.sub || '—';
      $('who-name').textContent = u.name || '—';
      $('who-email').textContent = u.email || '—';
      $('who-roles').textContent = Array.isArray(u.roles) && u.roles.length ? u.roles.join(', ') : '(none)';
      $('who-idp').textContent = u.idp || '—';
      $('who-expires').textContent = formatTime(session.expires_at);
      $('who-idle').textContent = formatTime(session.idle_expires_at);
      $('whoami-state').textContent = 'You are logged in. The BFF holds your tokens; this page never sees them.';
      $('signed-in-as').textContent = u.name || u.email || u.sub || '';
      details.hidden = false;
      $('signed-in-as').hidden = false;
      $('login').hidden = true;
      $('logout').hidden = false;
    } else {
      $('whoami-state').textContent = body === 'error'
        ? 'Could not reach /auth/session.'
        : body && typeof body.status === 'number'
          ? `Could not check your session: /auth/session answered ${body.status}. Try again shortly.`
          : 'You are not logged in. API calls will answer 401 (except the public endpoint).';
      details.hidden = true;
      $('signed-in-as').hidden = true;
      $('login').hidden = false;
      $('logout').hidden = true;
    }
  }

  async function loadSession() {
    try {
      const r = await fetch('/auth/session', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
      const body = await r.json().catch(() => null);
      session = r.ok && body && body.authenticated ? body : null;
      // Only a 401 (or a 200 saying so) means nobody is signed in: a 503 (the session store down)
      // read as "not logged in" sent people to sign in again, which fails the same way.
      renderSession(r.ok || r.status === 401 ? body : { status: r.status });
    } catch {
      session = null;
      renderSession('error');
    }
  }

  function showResult(method, path, status, data) {
    const el = $('status');
    const kind = status >= 200 && status < 300 ? 'ok' : status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : 'error';
    el.textContent = status ? `${status} ${REASONS[status] || ''}`.trim() : 'network error';
    el.dataset.status = String(status);
    el.className = `status status-${kind}`;
    $('result').dataset.outcome = kind;
    $('result-request').textContent = `${method} ${path}`;

    const note = $('result-note');
    note.replaceChildren();
    note.hidden = true;
    if (status === 401) {
      const link = document.createElement('a');
      link.id = 'result-login';
      link.href = loginLinkFrom(data && data.login_url);
      link.textContent = 'Log in';
      note.append('Not logged in, or the session has ended. ', link, ' to continue.');
      note.hidden = false;
    } else if (status === 403) {
      // The demo's policy (policies/main.polar): only admin may create orders; anyone may read
      // their own profile, and no one else's.
      const why = method === 'POST' && path === '/api/orders' ? ' (In the demo, only the user "admin" may create orders.)'
        : path.startsWith('/api/profiles/') ? ' (In the demo, a user may read only their own profile.)' : '';
      note.textContent = data && data.error === 'csrf'
        ? 'Forbidden: the CSRF check failed (the session changed, in another tab perhaps). This page now shows who is signed in: try again.'
        : `Forbidden: the policy does not allow this request.${why}`;
      note.hidden = false;
    }
    $('result-body').textContent = typeof data === 'string' ? data : JSON.stringify(data, null, 2);
  }

  async function call(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && method !== 'HEAD' && session) headers['X-CSRF-Token'] = session.csrf_token;
    $('status').textContent = 'calling…';
    try {
      const r = await fetch(path, {
        method, headers, credentials: 'same-origin', cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      let data = text;
      try { data = text ? JSON.parse(text) : ''; } catch { /* not JSON: show the text */ }
      showResult(method, path, r.status, data);
      if (r.status === 401 && session) await loadSession();
      // A CSRF refusal means the session this page knows is not the browser's any more: another
      // tab signed out and in again (perhaps as someone else), or signed in after this page loaded.
      // Show who is signed in now, and carry the new token on the next try.
      else if (r.status === 403 && data && data.error === 'csrf') await loadSession();
    } catch (err) {
      showResult(method, path, 0, String(err));
    }
  }

  async function logout() {
    if (!session) return;
    try {
      const r = await fetch('/auth/logout', {
        method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: { Accept: 'application/json', 'X-CSRF-Token': session.csrf_token },
      });
      const data = await r.json().catch(() => ({}));
      if (!r.ok) {
        showResult('POST', '/auth/logout', r.status, data);
        // As for an API call: a CSRF refusal means the browser's session is not the one this page
        // knows (another tab signed in again). Without asking again, every later click sent the
        // same stale token and the person could not sign out from this tab at all.
        if (r.status === 403 && data && data.error === 'csrf') await loadSession();
        return;
      }
      session = null;
      const target = data && typeof data.logout_url === 'string' && /^https?:\/\//i.test(data.logout_url) ? data.logout_url : '/';
      window.location.assign(target);
    } catch (err) {
      showResult('POST', '/auth/logout', 0, String(err));
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login').href = loginHref();
    $('logout').addEventListener('click', logout);
    $('read').addEventListener('click', () => call('GET', '/api/orders/42'));
    $('write').addEventListener('click', () => call('POST', '/api/orders', { item: 'coffee beans', quantity: 2 }));
    $('profile').addEventListener('click', () => {
      const sub = session && session.user && session.user.sub;
      call('GET', '/api/profiles/' + encodeURIComponent(sub || 'me'));
    });
    $('public').addEventListener('click', () => call('GET', '/api/public/hello'));
    loadSession();
  });

  // Back/forward cache: Back after a logout (or after another tab signed out, or in as someone
  // else) restores this page as it was, showing the previous user's identity and last API answer,
  // without running any script again. Hide both, ask /auth/session again, and show the last
  // answer again only when the same user is still signed in.
  window.addEventListener('pageshow', async (event) => {
    if (!event.persisted) return;
    const before = session && session.user ? session.user.sub : null;
    session = null;
    $('result').hidden = true;
    $('whoami-state').textContent = 'Checking your session…';
    $('whoami-details').hidden = true;
    $('signed-in-as').hidden = true;
    await loadSession();
    if (!session || !session.user || session.user.sub !== before) {
      const el = $('status');
      el.textContent = 'no request yet';
      el.dataset.status = '';
      el.className = 'status';
      delete $('result').dataset.outcome;
      $('result-request').textContent = '';
      $('result-note').replaceChildren();
      $('result-note').hidden = true;
      $('result-body').textContent = 'Press a button above.';
    }
    $('result').hidden = false;
  });
})();
