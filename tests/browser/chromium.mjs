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
