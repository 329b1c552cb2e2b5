// The whole golden path in a real browser: `goldpath demo` as a process, headless Chromium via
// playwright-core. Open the SPA, log in at the dev IdP, see the identity the API received, write,
// log out, see the 401. Screenshots of every failure go to test-results/.
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import type { Child } from '../helpers/process.ts';
import { launchChromium, requireChromium, screenshot, signInAtIdp as signInAt, startBrowserDemo, statusAfterClick as clickFor } from '../helpers/browser.ts';

describe('e2e: the golden path in Chromium', function () {
  this.timeout(120_000);
  let demo: Child;
  let browser: Browser;
  let page: Page;
  let origin: string;

  before(async function () {
    requireChromium(this);
    ({ demo, origin } = await startBrowserDemo());
    browser = await launchChromium();
    page = await browser.newPage();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && page) {
      const file = await screenshot(page, this.currentTest.title);
      console.error(`screenshot: ${file}\ndemo output:\n${demo?.output().slice(-4000)}`);
    }
  });
  after(async function () {
    await browser?.close();
    await demo?.stop();
  });

  const signInAtIdp = (p: Page, user: string) => signInAt(p, origin, user);
  const statusAfterClick = async (id: string) => (await clickFor(page, id)).status;

  it('shows a 401 before login', async function () {
    await page.goto(origin + '/');
    assert.equal(await statusAfterClick('read'), '401');
  });

  it('logs in at the dev IdP and comes back to the SPA with the identity', async function () {
    await page.click('#login');
    await signInAtIdp(page, 'admin');
    await page.waitForFunction(() => document.querySelector('#who-sub')?.textContent === 'admin', null, { timeout: 10_000 });
    assert.match((await page.textContent('#who-roles'))!, /admin/);
    const cookies = await page.context().cookies(origin);
    const session = cookies.find((c) => c.name === 'goldpath');
    assert.ok(session, 'session cookie set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
  });

  it('reads through the API and sees the identity the API received, without the session cookie', async function () {
    assert.equal(await statusAfterClick('read'), '200');
    const body = JSON.parse((await page.textContent('#result-body'))!);
    const h = body.headers ?? body;
    assert.equal(h['x-auth-user'], 'admin');
    assert.match(String(h['authorization']), /^Bearer /);
    assert.equal(JSON.stringify(body).includes('goldpath='), false, 'the session cookie must not reach the API');
    // Nor the dev IdP's login session (oidc-provider's _session and _interaction cookies): the
    // demo's IdP is at 127.0.0.1, another host than the page's.
    assert.doesNotMatch(String(h['cookie'] ?? ''), /_session|_interaction/, "the IdP's cookies must not reach the API");
  });

  it('writes with the CSRF header (admin may write)', async function () {
    assert.equal(await statusAfterClick('write'), '200');
  });

  it('logs out, then the API answers 401', async function () {
    await page.click('#logout');
    // The SPA posts the logout, then navigates to the IdP's end-session page, which asks to confirm.
    await page.waitForURL((u) => u.origin !== origin, { timeout: 20_000 });
    await page.click('button[name=logout]');
    await page.waitForURL((u) => u.origin === origin, { timeout: 20_000 });
    await page.waitForLoadState('networkidle');
    assert.equal(await statusAfterClick('read'), '401');
    assert.equal(await page.locator('#login').isVisible(), true);
  });

  it('a link to a session route while logged out: sign in, then the API\'s answer (no sign-in loop)', async function () {
    // The sidecar's 302 to sign in returns to the API URI; after the IdP (another site) the browser
    // withholds the SameSite=Strict cookie from the rest of that navigation, so a 302 from the
    // callback reached the API without a session: to sign in again, in a loop until a 429.
    const context = await browser.newContext();
    try {
      const p = await context.newPage();
      await p.goto(origin + '/api/orders/42');
      await signInAtIdp(p, 'carol');
      await p.waitForLoadState('networkidle');
      assert.equal(new URL(p.url()).pathname, '/api/orders/42', `after login the browser shows ${p.url()}: ${(await p.content()).slice(0, 200)}`);
      const body = JSON.parse(await p.innerText('body')) as { received: { user: string } };
      assert.equal(body.received.user, 'carol');
    } finally {
      await context.close();
    }
  });

  it('a link from another site to /api/... while signed in: the silent sign-in replaces the session, and no goldpath cookie reaches the API', async function () {
    // The cross-site navigation withholds the Strict session cookie, so the sidecar sends the
    // browser to sign in, and the IdP session signs it in again: the session it had before, held
    // by no cookie from then on, must go with that sign-in, found by the browser cookie.
    const context = await browser.newContext();
    try {
      const p = await context.newPage();
      await p.goto(origin + '/');
      await p.click('#login');
      await signInAtIdp(p, 'dave');
      await p.waitForFunction(() => document.querySelector('#who-sub')?.textContent === 'dave', null, { timeout: 10_000 });
      const cookie = async (name: string) => (await context.cookies(origin)).find((c) => c.name === name);
      const first = (await cookie('goldpath'))!.value;
      const key = await cookie('goldpath_browser');
      assert.ok(key, 'the browser cookie is set');
      assert.equal(key.httpOnly, true);
      assert.equal(key.sameSite, 'Lax');
      // TX_TTL cannot be waited out here: the login-transaction cookie goes as it would expire.
      await context.clearCookies({ name: 'goldpath_tx' });
      // Another site's page with a link (an e-mail, a chat), served by the browser itself.
      await context.route('http://mail.example.test/**', (route) => route.fulfill({
        contentType: 'text/html', body: `<!doctype html><a id="go" href="${origin}/api/orders/7">order 7</a>`,
      }));
      await p.goto('http://mail.example.test/inbox');
      await p.click('#go');
      await p.waitForURL((u) => u.origin === origin && u.pathname === '/api/orders/7', { timeout: 20_000 });
      await p.waitForLoadState('networkidle');
      const body = JSON.parse(await p.innerText('body')) as { received: { user: string; cookies: string[] } };
      assert.equal(body.received.user, 'dave');
      assert.deepEqual(body.received.cookies.filter((n) => /goldpath/i.test(n)), [], 'no goldpath cookie (goldpath_browser neither) reaches the API');
      const second = (await cookie('goldpath'))!.value;
      assert.notEqual(second, first, 'signed in anew');
      assert.equal((await cookie('goldpath_browser'))?.value, key.value);
      const replay = async (value: string) => (await fetch(`${origin}/auth/session`, { headers: { cookie: `goldpath=${value}` } })).status;
      assert.equal(await replay(second), 200);
      assert.equal(await replay(first), 401, 'the first session, held by no cookie, is gone');
    } finally {
      await context.close();
    }
  });

  it('the Log in link under a 401 lands back on the SPA page, logged in (not on the JSON of the API call)', async function () {
    // The sidecar's login_url returns to the API URI, which suits a navigation to the API, not a
    // fetch made by the page. Another browser profile: no session, no IdP session.
    const context = await browser.newContext();
    try {
      const p = await context.newPage();
      await p.goto(origin + '/');
      await p.click('#read');
      await p.waitForSelector('#result-login');
      await p.click('#result-login');
      await signInAtIdp(p, 'alice');
      await p.waitForLoadState('load');
      assert.equal(new URL(p.url()).pathname, '/', `after login the browser shows ${p.url()}: ${(await p.content()).slice(0, 200)}`);
    } finally {
      await context.close();
    }
  });
});
