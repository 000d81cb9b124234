// Plays a livestack player page in headless Chromium and reports whether the
// video really played.
//
//   node play.mjs URL SCREENSHOT.png [seconds] [page|shaka]
//
// With `page` (the default), opens URL (the origin's player page, e.g.
// http://127.0.0.1:8080/?stream=demo: hls.js). With `shaka`, URL is a
// multivariant playlist, played by Shaka Player (node_modules/shaka-player,
// low-latency mode) in shaka.html, which this script serves itself under
// /__shaka/ of the playlist's own origin (the request never reaches the
// server; same origin, so Chromium's Private Network Access rules, which
// block a public page from fetching loopback URLs, do not apply).
// Either way in /usr/bin/chromium driven by playwright-core, waits until the <video>
// element's currentTime has advanced by at least `seconds` (default 4) of
// playback while window.__player.fatal stays null, saves a screenshot of the
// page and prints ONE JSON line on stdout:
//
//   {"ok":bool,"currentTime":..,"advanced":..,"fatal":..,"errors":[...],
//    "errorDetails":[...],"latency":..,"videoWidth":..,"videoHeight":..,
//    "buffered":[[start,end],...],
//    "consoleErrors":[...],"pageErrors":[...],"failedRequests":[...],
//    "jumps":..,"elapsed":..,"reason":..}
//
// `errors` are the player's (window.__player.errors), `errorDetails` (hls.js
// only) the same errors with URL, HTTP status and reason; `latency` the
// player's (hls.js: its live latency; Shaka: wall clock minus the playhead's
// program-date-time), seconds; `advanced` counts smooth
// playback only (seeks / live-edge jumps are counted in `jumps`, not in
// `advanced`). Diagnostics go to stderr. Exit status 0 if ok, else 1 (2 for
// bad usage).

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.mjs';

const POLL_MS = 250;

function usage(message) {
  process.stderr.write(`${message}\nusage: node play.mjs URL SCREENSHOT.png [seconds] [page|shaka]\n`);
  process.exit(2);
}

const [url, screenshot, secondsArg = '4', player = 'page'] = process.argv.slice(2);
if (!url || !screenshot) usage('missing arguments');
const seconds = Number(secondsArg);
if (!Number.isFinite(seconds) || seconds <= 0) usage(`bad seconds: ${secondsArg}`);
if (player !== 'page' && player !== 'shaka') usage(`bad player: ${player}`);
// Where shaka.html and the Shaka script are served from (play.mjs answers
// every request under it).
const SHAKA_PREFIX = '/__shaka';
const here = dirname(fileURLToPath(import.meta.url));
// Overall budget: start-up (first playlist, first segment) plus the playback.
const timeoutMs = Math.max(45_000, (seconds + 40) * 1000);

const log = (...a) => process.stderr.write(`[play.mjs] ${a.join(' ')}\n`);

// Runs in the page before its scripts: when the player stores its Hls
// object in window.__player.hls, adds a second ERROR listener that keeps what
// the player's own list leaves out (which URL, which HTTP status), in
// window.__playErrorDetails. The page itself is unchanged.
function recordHlsErrorDetails() {
  const details = [];
  window.__playErrorDetails = details;
  let player;
  Object.defineProperty(window, '__player', {
    configurable: true,
    get: () => player,
    set: (state) => {
      player = state;
      let hls;
      Object.defineProperty(state, 'hls', {
        configurable: true,
        enumerable: true,
        get: () => hls,
        set: (h) => {
          hls = h;
          try {
            h.on(window.Hls.Events.ERROR, (_, d) => details.push({
              details: d.details,
              fatal: !!d.fatal,
              url: d.url ?? d.context?.url ?? d.frag?.url ?? null,
              code: d.response?.code ?? null,
              reason: d.reason ?? d.error?.message ?? null,
            }));
          } catch (e) {
            details.push({ details: `cannot listen to hls.js errors: ${e}` });
          }
        },
      });
    },
  });
}

// What the page reports on each poll. window.__player.hls is the Hls object
// (not serialisable), so copy out only plain values.
function sample() {
  const v = document.querySelector('video');
  const p = window.__player || {};
  const latency = typeof p.latency === 'number' ? p.latency
    : (p.hls && typeof p.hls.latency === 'number' ? p.hls.latency : null);
  return {
    currentTime: v ? v.currentTime : null,
    paused: v ? v.paused : null,
    readyState: v ? v.readyState : null,
    videoWidth: v ? v.videoWidth : null,
    videoHeight: v ? v.videoHeight : null,
    buffered: v ? Array.from({ length: v.buffered.length },
      (_, i) => [v.buffered.start(i), v.buffered.end(i)]) : [],
    fatal: p.fatal ?? null,
    errors: Array.isArray(p.errors) ? [...p.errors] : [],
    errorDetails: Array.isArray(window.__playErrorDetails) ? [...window.__playErrorDetails] : [],
    latency: Number.isFinite(latency) ? latency : null,
    src: p.src ?? null,
  };
}

const report = {
  ok: false,
  currentTime: null,
  advanced: 0,
  fatal: null,
  errors: [],
  errorDetails: [],
  latency: null,
  videoWidth: null,
  videoHeight: null,
  buffered: [],
  consoleErrors: [],
  pageErrors: [],
  failedRequests: [],
  jumps: 0,
  elapsed: 0,
  reason: null,
};

const profile = await mkdtemp(join(tmpdir(), 'livestack-chromium-'));
const started = Date.now();
let context = null;
try {
  // A fresh profile per run; XDG_CONFIG_HOME / XDG_CACHE_HOME keep Chromium's
  // crash reports and caches out of the home folder.
  context = await chromium.launchPersistentContext(join(profile, 'user-data'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    env: {
      ...process.env,
      XDG_CONFIG_HOME: join(profile, 'config'),
      XDG_CACHE_HOME: join(profile, 'cache'),
    },
    viewport: { width: 1280, height: 800 },
    timeout: 30_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const where = msg.location()?.url;
    report.consoleErrors.push(where ? `${msg.text()} [${where}]` : msg.text());
  });
  page.on('pageerror', (err) => report.pageErrors.push(String(err)));
  page.on('requestfailed', (req) =>
    report.failedRequests.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`));
  page.on('response', (res) => {
    if (res.status() >= 400) report.failedRequests.push(`${res.request().method()} ${res.url()}: HTTP ${res.status()}`);
  });

  await page.addInitScript(recordHlsErrorDetails);
  let pageUrl = url;
  if (player === 'shaka') {
    const files = {
      [`${SHAKA_PREFIX}/shaka.html`]: ['text/html', join(here, 'shaka.html')],
      [`${SHAKA_PREFIX}/shaka-player.compiled.js`]: ['text/javascript',
        join(here, 'node_modules/shaka-player/dist/shaka-player.compiled.js')],
    };
    const origin = new URL(url).origin;
    await page.route(`${origin}${SHAKA_PREFIX}/**`, async (route) => {
      const file = files[new URL(route.request().url()).pathname];
      if (!file) return route.fulfill({ status: 404, body: 'not found' });
      return route.fulfill({ status: 200, contentType: file[0], body: await readFile(file[1]) });
    });
    pageUrl = `${origin}${SHAKA_PREFIX}/shaka.html?src=${encodeURIComponent(url)}`;
  }
  await page.goto(pageUrl, { waitUntil: 'load', timeout: 20_000 });
  log(`opened ${pageUrl}`);

  // Accumulate smooth playback: between two polls currentTime may move by at
  // most about the wall-clock time elapsed (times the playback rate, which
  // hls.js may raise a little to catch up). Larger moves are seeks.
  let last = null;
  let lastAt = 0;
  for (;;) {
    const now = Date.now();
    const s = await page.evaluate(sample);
    Object.assign(report, {
      currentTime: s.currentTime,
      fatal: s.fatal,
      errors: s.errors,
      errorDetails: s.errorDetails,
      latency: s.latency,
      videoWidth: s.videoWidth,
      videoHeight: s.videoHeight,
      buffered: s.buffered,
    });
    if (s.fatal !== null) {
      report.reason = `${player === 'shaka' ? 'Shaka' : 'hls.js'} fatal error: ${s.fatal}`;
      break;
    }
    if (typeof s.currentTime === 'number' && s.currentTime > 0) {
      if (last !== null) {
        const delta = s.currentTime - last;
        const wall = (now - lastAt) / 1000;
        if (delta > 0 && delta <= wall * 2 + 0.1) report.advanced += delta;
        else if (delta !== 0) {
          report.jumps += 1;
          log(`currentTime jumped ${last.toFixed(3)} -> ${s.currentTime.toFixed(3)} `
            + `(buffered ${JSON.stringify(s.buffered)})`);
        }
      } else {
        log(`playback started at currentTime ${s.currentTime.toFixed(3)} (src ${s.src})`);
      }
      last = s.currentTime;
      lastAt = now;
    }
    if (report.advanced >= seconds) {
      report.ok = true;
      break;
    }
    if (now - started > timeoutMs) {
      report.reason = `timed out after ${timeoutMs / 1000} s: advanced ${report.advanced.toFixed(3)} s `
        + `(paused ${s.paused}, readyState ${s.readyState})`;
      break;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }

  // A screenshot in every case where the page loaded: it is the first thing
  // to look at when playback failed.
  await page.screenshot({ path: screenshot, timeout: 10_000 });
} catch (err) {
  report.ok = false;
  report.reason = `${err?.name ?? 'Error'}: ${err?.message ?? err}`;
} finally {
  report.elapsed = (Date.now() - started) / 1000;
  if (context) await context.close().catch((e) => log(`closing Chromium: ${e}`));
  await rm(profile, { recursive: true, force: true }).catch(() => {});
}

report.advanced = Math.round(report.advanced * 1000) / 1000;
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exitCode = report.ok ? 0 : 1;
