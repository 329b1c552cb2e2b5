// A person in a real browser, beyond the scripted golden path: Back after logging out (with the
// back/forward cache on, as in every browser a person uses: Playwright turns it off by default),
// and two tabs whose sessions change under each other.
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Child } from '../helpers/process.ts';
import { launchChromium, requireChromium, screenshot, signInAtIdp as signInAt, startBrowserDemo, statusAfterClick } from '../helpers/browser.ts';

describe('e2e: tabs and history in Chromium', function () {
  this.timeout(120_000);
  let demo: Child;
  let browser: Browser;
  let origin: string;
  let context: BrowserContext | undefined;
  const problems: string[] = [];

  before(async function () {
    requireChromium(this);
    ({ demo, origin } = await startBrowserDemo());
    browser = await launchChromium({ bfcache: true });
  });

  beforeEach(async function () {
    context = await browser.newContext();
    problems.length = 0;
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && context) {
      for (const [i, p] of context.pages().entries()) console.error(`screenshot: ${await screenshot(p, `${this.currentTest.title}-${i}`)}`);
    }
    await context?.close();
    context = undefined;
    // No script error and no CSP violation on any page of the flow.
    assert.deepEqual(problems, []);
  });

  after(async function () {
    await browser?.close();
    await demo?.stop();
  });

  async function newPage(): Promise<Page> {
    const p = await context!.newPage();
    p.on('pageerror', (e) => problems.push(`pageerror at ${p.url()}: ${e.message}`));
    p.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console at ${p.url()}: ${m.text()}`); });
    return p;
  }

  const signInAtIdp = (p: Page, user: string) => signInAt(p, origin, user);

  async function signIn(p: Page, user: string): Promise<void> {
    await p.goto(origin + '/');
    await p.click('#login');
    await signInAtIdp(p, user);
    await waitWho(p, user);
  }

  async function waitWho(p: Page, user: string): Promise<void> {
    await p.waitForFunction((u) => document.querySelector('#who-sub')?.textContent === u, user, { timeout: 10_000 });
  }

  /** Logs out with the SPA's button, confirming at the dev IdP; back on the SPA, signed out. */
  async function logOut(p: Page): Promise<void> {
    await p.click('#logout');
    await p.waitForURL((u) => u.origin !== origin, { timeout: 20_000 });
    await p.click('button[name=logout]');
    await p.waitForURL((u) => u.origin === origin, { timeout: 20_000 });
    await p.waitForLoadState('networkidle');
  }

  it('Back after logging out: the page restored from the back/forward cache shows no signed-in user and not the previous answer', async function () {
    const p = await newPage();
    await signIn(p, 'admin');
    const read = await statusAfterClick(p, 'read');
    assert.equal(read.status, '200');
    assert.match(read.body, /"user": "admin"/);
    await p.evaluate(() => { (window as unknown as { __samePage: boolean }).__samePage = true; });
    await logOut(p);
    assert.equal(await p.locator('#login').isVisible(), true);
    // Two steps back (the IdP's sign-out page, then the signed-in page): the history menu of Back.
    await p.evaluate(() => history.go(-2));
    await p.waitForFunction(() => (window as unknown as { __samePage?: boolean }).__samePage === true, null, { timeout: 10_000 })
      .catch(() => { throw new Error(`the signed-in page was not restored from the back/forward cache (at ${p.url()}): the scenario did not happen`); });
    // Time for the page to check its session, as any script on it would.
    await p.waitForFunction(() => document.querySelector('#whoami-state')?.textContent?.startsWith('You are not logged in'), null, { timeout: 5_000 }).catch(() => {});
    assert.equal(await p.textContent('#whoami-state'), 'You are not logged in. API calls will answer 401 (except the public endpoint).');
    assert.equal(await p.locator('#whoami-details').isVisible(), false, 'the signed-out user\'s identity is not shown');
    assert.equal(await p.locator('#logout').isVisible(), false);
    assert.equal(await p.locator('#login').isVisible(), true);
    assert.doesNotMatch((await p.innerText('body')), /"user": "admin"|Bearer/, 'the previous user\'s API answer is not shown');
  });

  /** Tab A signed in as admin; then another tab signs out and in as bob. Tab A still shows admin. */
  async function adminTabThenBobInAnother(): Promise<Page> {
    const a = await newPage();
    await signIn(a, 'admin');
    const b = await newPage();
    await b.goto(origin + '/');
    await waitWho(b, 'admin');
    await logOut(b);
    await b.click('#login');
    await signInAtIdp(b, 'bob');
    await waitWho(b, 'bob');
    return a;
  }

  it('another tab signed out and in as someone else: the first write\'s CSRF refusal makes this tab show who is signed in now', async function () {
    const a = await adminTabThenBobInAnother();
    // Tab A still says admin; the browser's session is bob's.
    const write = await statusAfterClick(a, 'write');
    assert.equal(write.status, '403');
    assert.match(write.body, /csrf/);
    await waitWho(a, 'bob').catch(() => {});
    assert.equal(await a.textContent('#who-sub'), 'bob', 'tab A shows who the API calls act as');
    assert.doesNotMatch((await a.textContent('#signed-in-as'))!, /admin/i);
  });

  it('another tab signed out and in as someone else: Log out\'s CSRF refusal makes this tab show who is signed in now, and Log out again goes through', async function () {
    const a = await adminTabThenBobInAnother();
    // Tab A still says admin and holds admin's CSRF token: its logout is refused.
    await a.evaluate(() => document.querySelector('#status')!.setAttribute('data-status', ''));
    await a.click('#logout');
    await a.waitForFunction(() => document.querySelector('#status')?.getAttribute('data-status') !== '');
    assert.equal(await a.getAttribute('#status', 'data-status'), '403');
    assert.match((await a.textContent('#result-body'))!, /csrf/);
    // The note says the page now shows who is signed in: it must, and Log out must then work.
    await waitWho(a, 'bob').catch(() => {});
    assert.equal(await a.textContent('#who-sub'), 'bob', 'tab A shows who a logout would end');
    await logOut(a);
    assert.equal(await a.locator('#login').isVisible(), true, 'the second Log out signed the browser out');
    const session = await (await fetch(origin + '/auth/session', { headers: { cookie: (await context!.cookies(origin)).map((c) => `${c.name}=${c.value}`).join('; ') } })).json() as { authenticated: boolean };
    assert.equal(session.authenticated, false);
  });

  it('/auth/session unavailable (503, the session store down): the page says it could not check, not that nobody is signed in', async function () {
    const p = await newPage();
    await p.route('**/auth/session', (route) => route.fulfill({
      status: 503, contentType: 'application/json', body: '{"error":"unavailable","error_description":"the session store is unavailable"}',
    }));
    await p.goto(origin + '/');
    await p.waitForFunction(() => !document.querySelector('#whoami-state')?.textContent?.startsWith('Checking'), null, { timeout: 10_000 });
    const state = (await p.textContent('#whoami-state'))!;
    assert.doesNotMatch(state, /not logged in/, state);
    assert.match(state, /503/, state);
  });

  it('a tab opened before signing in elsewhere: after one CSRF refusal it shows the user, and the retry goes through', async function () {
    const a = await newPage();
    await a.goto(origin + '/');
    await a.waitForFunction(() => document.querySelector('#whoami-state')?.textContent?.startsWith('You are not logged in'));
    const b = await newPage();
    await signIn(b, 'admin');
    const first = await statusAfterClick(a, 'write');
    assert.equal(first.status, '403');
    await waitWho(a, 'admin').catch(() => {});
    assert.equal(await a.textContent('#who-sub'), 'admin');
    assert.equal((await statusAfterClick(a, 'write')).status, '200', 'the retry carries the session\'s CSRF token');
  });
});
