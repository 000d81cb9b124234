// Plays the origin's Media over QUIC page (/moq.html: @moq/watch over
// WebTransport, WebCodecs) in headless Chromium and reports whether video
// frames were decoded.
//
//   node moq.mjs URL SCREENSHOT.png [frames]
//
// Opens URL (e.g. http://127.0.0.1:8080/moq.html?stream=demo), waits until
// window.__moq.frames (the <moq-watch> video decoder's decoded frame count)
// reaches `frames` (default 50) while window.__moq.error stays null, saves a
// screenshot and prints ONE JSON line on stdout:
//
//   {"ok":bool,"frames":..,"status":..,"url":..,"error":..,
//    "consoleErrors":[...],"pageErrors":[...],"elapsed":..,"reason":..}
//
// Diagnostics go to stderr. Exit status 0 if ok, else 1 (2 for bad usage).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';

const POLL_MS = 250;
const TIMEOUT_MS = 45_000;

const [url, screenshot, framesArg = '50'] = process.argv.slice(2);
if (!url || !screenshot) {
  process.stderr.write('usage: node moq.mjs URL SCREENSHOT.png [frames]\n');
  process.exit(2);
}
const target = Number(framesArg);
const log = (...a) => process.stderr.write(`[moq.mjs] ${a.join(' ')}\n`);

const profile = await mkdtemp(join(tmpdir(), 'livestack-moq-'));
const consoleErrors = [];
const pageErrors = [];
const started = Date.now();
let result = { ok: false, frames: 0, status: null, url: null, error: null, reason: 'timeout' };
let browser;
try {
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
    log(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(url);
  while (Date.now() - started < TIMEOUT_MS) {
    const s = await page.evaluate(() => window.__moq ?? null);
    if (s) {
      result = { ...result, frames: s.frames, status: s.status, url: s.url, error: s.error };
      if (s.error) {
        result.reason = 'page error';
        break;
      }
      if (s.frames >= target) {
        result.ok = true;
        result.reason = null;
        break;
      }
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  await page.screenshot({ path: screenshot });
} catch (e) {
  result.reason = `driver: ${e}`;
} finally {
  if (browser) await browser.close();
  await rm(profile, { recursive: true, force: true });
}
result.consoleErrors = consoleErrors;
result.pageErrors = pageErrors;
result.elapsed = (Date.now() - started) / 1000;
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(result.ok ? 0 : 1);
