// How the browser tests launch Chromium (play.mjs, moq.mjs).

/** The system Chromium (tests/run.sh installs it; never a downloaded one). */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless Chromium on a test machine: no sandbox (runs as root in CI), no
 * GPU (WebCodecs and media decode in software), and no background
 * networking (it would flood a closed network with refused connections).
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  '--mute-audio',
];

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/**
 * Headless Chromium for the WebRTC scripts, in a fresh profile directory
 * (`prefix` names it) that `close()` removes: fake camera and microphone
 * (`fakeMedia`), and host candidates as IP addresses rather than mDNS
 * names (the origin cannot resolve `.local`).
 */
export async function launchWebRtc(prefix, { fakeMedia = true } = {}) {
  const profile = await mkdtemp(join(tmpdir(), prefix));
  const removeProfile = () => rm(profile, { recursive: true, force: true }).catch(() => {});
  let browser;
  try {
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        ...CHROMIUM_ARGS,
        ...(fakeMedia ? ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'] : []),
        '--disable-features=WebRtcHideLocalIpsWithMdns',
      ],
      env: { ...process.env, XDG_CONFIG_HOME: profile },
    });
  } catch (e) {
    await removeProfile();
    throw e;
  }
  const close = browser.close.bind(browser);
  browser.close = async () => {
    try {
      await close();
    } finally {
      await removeProfile();
    }
  };
  return browser;
}

/**
 * Source of `(pc) => Promise`, resolved when `pc`'s ICE gathering is
 * complete (no trickle ICE: the offer carries every candidate), at most
 * 3 s: pages `eval` it.
 */
export const WAIT_GATHERED = `(pc) => new Promise((resolve) => {
  if (pc.iceGatheringState === 'complete') return resolve();
  pc.addEventListener('icegatheringstatechange', () => {
    if (pc.iceGatheringState === 'complete') resolve();
  });
  setTimeout(resolve, 3000);
})`;
