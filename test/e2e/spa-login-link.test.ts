// The example SPA's "Log in" link under a 401 brings the user back to the SPA, not to
// the raw JSON of the API call that failed (the sidecar's login_url returns to the API URI, which
// suits a navigation to the API, not a fetch made by the page).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { freePort } from '../helpers/redis.ts';
import { runCli, waitHealthy, type Child } from '../helpers/process.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('the SPA\'s login link after a 401', function () {
  this.timeout(120_000);
  let demo: Child;
  let browser: Browser;
  let origin: string;

  before(async function () {
    if (!existsSync(CHROMIUM)) this.skip();
    const [edgePort, idpPort] = [await freePort(), await freePort()];
    origin = `http://localhost:${edgePort}`;
    demo = runCli('node', ['demo'], { PORT: String(edgePort), GOLDPATH_PUBLIC_URL: origin, GOLDPATH_IDP_ISSUER: `http://localhost:${idpPort}`, LOG_LEVEL: 'warn' });
    await waitHealthy(`${origin}/`, demo, 45_000);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  });
  after(async () => {
    await browser?.close();
    await demo?.stop();
  });

  it('lands back on the SPA page, logged in', async () => {
    const page = await browser.newPage();
    await page.goto(origin + '/');
    await page.click('#read');
    await page.waitForSelector('#result-login');
    await page.click('#result-login');
    await page.waitForURL((u) => u.origin !== origin, { timeout: 20_000 });
    await page.fill('#user', 'alice');
    await page.click('#login button[type=submit]');
    if (await page.locator('#consent').count()) await page.click('#consent button[type=submit]');
    await page.waitForURL((u) => u.origin === origin, { timeout: 20_000 });
    await page.waitForLoadState('load');
    assert.equal(new URL(page.url()).pathname, '/', `after login the browser shows ${page.url()}: ${(await page.content()).slice(0, 200)}`);
  });
});
