// What the Chromium tests share: `goldpath demo` as a process on free ports, headless Chromium via
// playwright-core (Debian's binary: `npx playwright install` cannot work here), signing in at the
// dev IdP, and the SPA's result box.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from './redis.ts';
import { REPO_ROOT, runCli, waitHealthy, type Child } from './process.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SHOTS = join(REPO_ROOT, 'test-results');

/** In a `before`: skips without Chromium, except in CI, where a missing browser is a failure. */
export function requireChromium(ctx: Mocha.Context): void {
  if (existsSync(CHROMIUM)) return;
  if (process.env.CI) throw new Error(`Chromium not found at ${CHROMIUM}: .ci/run installs it (apt-get install chromium)`);
  ctx.skip();
}

/** The demo on free ports: the page at http://localhost:<port>, the dev IdP on 127.0.0.1. */
export async function startBrowserDemo(): Promise<{ demo: Child; origin: string }> {
  const [edgePort, idpPort] = [await freePort(), await freePort()];
  const origin = `http://localhost:${edgePort}`;
  const demo = runCli('node', ['demo'], {
    PORT: String(edgePort), GOLDPATH_PUBLIC_URL: origin, GOLDPATH_IDP_ISSUER: `http://127.0.0.1:${idpPort}`, LOG_LEVEL: 'warn',
  });
  await waitHealthy(`${origin}/`, demo, 45_000);
  return { demo, origin };
}

/**
 * Headless Chromium. `bfcache`: keep the back/forward cache on, as in every browser a person uses
 * (Playwright's default arguments switch it off).
 */
export function launchChromium(opts: { bfcache?: boolean } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM, headless: true,
    ...(opts.bfcache ? { ignoreDefaultArgs: ['--disable-back-forward-cache'] } : {}),
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** On the dev IdP's pages (after a click that leads there): signs in as `user`, back on the SPA at `origin`. */
export async function signInAtIdp(p: Page, origin: string, user: string): Promise<void> {
  await p.waitForURL((u) => u.origin !== origin, { timeout: 20_000 });
  await p.fill('#user', user);
  await p.click('#login button[type=submit]');
  // Consent (first login of this user).
  if (await p.locator('#consent').count()) await p.click('#consent button[type=submit]');
  // Past the callback: after the IdP's site it is a page that moves on by itself (callback.ts).
  await p.waitForURL((u) => u.origin === origin && u.pathname !== '/auth/callback', { timeout: 20_000 });
}

/** Clicks one of the SPA's API buttons; the status and body its result box then shows. */
export async function statusAfterClick(p: Page, id: string): Promise<{ status: string; body: string }> {
  await p.evaluate(() => document.querySelector('#status')!.setAttribute('data-status', ''));
  await p.click(`#${id}`);
  await p.waitForFunction(() => document.querySelector('#status')?.getAttribute('data-status') !== '');
  return { status: (await p.getAttribute('#status', 'data-status'))!, body: (await p.textContent('#result-body'))! };
}

/** A failed test's screenshot of `page`, under test-results/; returns the file. */
export async function screenshot(page: Page, title: string): Promise<string> {
  mkdirSync(SHOTS, { recursive: true });
  const file = join(SHOTS, `${title.replace(/\W+/g, '-')}.png`);
  await page.screenshot({ path: file, fullPage: true }).catch(() => {});
  return file;
}
