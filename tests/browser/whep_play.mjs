// A WHEP viewer alone: headless Chromium plays ORIGIN/whep/NAME (video and
// audio, receive-only) in a <video> for SECONDS and reports what it
// received and decoded, from getStats() once early and once at the end
// (so a caller sees decoding go on, not only start). The session is
// DELETEd at the end.
//
//   node whep_play.mjs ORIGIN NAME SECONDS SCREENSHOT.png
//
// Prints ONE JSON line on stdout:
//
//   {"ok":bool,"framesDecodedEarly":..,"framesDecoded":..,"framesDropped":..,
//    "width":..,"videoCodec":"video/H264",
//    "audioCodec":"audio/opus","audioChannels":..,"audioPackets":..,
//    "audioPacketsLost":..,"totalSamplesReceived":..,"concealedSamples":..,
//    "audioLevel":..,"whepStatus":..,"deleteStatus":..,"error":..}
//
// Diagnostics go to stderr. Exit status 0 if ok (video frames decoded and
// the DELETE answered 200), else 1 (2 for bad usage).

import { WAIT_GATHERED, launchWebRtc } from './chromium.mjs';

const [origin, name, secondsArg, screenshot] = process.argv.slice(2);
if (!origin || !name || !secondsArg || !screenshot) {
  process.stderr.write('usage: node whep_play.mjs ORIGIN NAME SECONDS SCREENSHOT.png\n');
  process.exit(2);
}
const seconds = Number(secondsArg);
const log = (...a) => process.stderr.write(`[whep_play.mjs] ${a.join(' ')}\n`);

/** The inbound-rtp video and audio stats and their codecs. */
const collect = `async (pc) => {
  const all = new Map();
  (await pc.getStats()).forEach((s) => all.set(s.id, s));
  const r = { framesDecoded: 0, framesDropped: 0, width: 0, videoCodec: null,
    audioCodec: null, audioChannels: null, audioPackets: 0, audioPacketsLost: 0,
    totalSamplesReceived: 0, concealedSamples: 0, audioLevel: null };
  for (const s of all.values()) {
    if (s.type !== 'inbound-rtp') continue;
    const codec = all.get(s.codecId);
    if (s.kind === 'video') {
      r.framesDecoded += s.framesDecoded ?? 0;
      r.framesDropped += s.framesDropped ?? 0;
      r.width = s.frameWidth ?? r.width;
      r.videoCodec = codec?.mimeType ?? r.videoCodec;
    } else if (s.kind === 'audio') {
      r.audioPackets += s.packetsReceived ?? 0;
      r.audioPacketsLost += s.packetsLost ?? 0;
      r.totalSamplesReceived += s.totalSamplesReceived ?? 0;
      r.concealedSamples += s.concealedSamples ?? 0;
      r.audioLevel = s.audioLevel ?? r.audioLevel;
      r.audioCodec = codec?.mimeType ?? r.audioCodec;
      r.audioChannels = codec?.channels ?? r.audioChannels;
    }
  }
  return r;
}`;

let result = { ok: false, error: 'not run' };
let browser;
try {
  browser = await launchWebRtc('livestack-whep-play-', { fakeMedia: false });
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.on('console', (m) => log(`console.${m.type()}: ${m.text()}`));
  await page.goto(`${origin}/healthz`);
  // Not muted: the audio track is rendered (and so decoded); the browser
  // itself is muted (--mute-audio).
  await page.setContent('<video id="v" autoplay playsinline width="640" height="360"></video>');
  const whep = await page.evaluate(
    async ({ origin, name, gathered }) => {
      const pc = new RTCPeerConnection();
      window.pc = pc;
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const stream = new MediaStream();
      pc.ontrack = (e) => {
        stream.addTrack(e.track);
        const v = document.getElementById('v');
        v.srcObject = stream;
        v.play().catch(() => {});
      };
      await pc.setLocalDescription(await pc.createOffer());
      await eval(gathered)(pc);
      const resp = await fetch(`${origin}/whep/${name}`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: pc.localDescription.sdp,
      });
      const text = await resp.text();
      if (resp.status !== 201) return { status: resp.status, error: text };
      window.whepLocation = `${origin}${resp.headers.get('location')}`;
      await pc.setRemoteDescription({ type: 'answer', sdp: text });
      return { status: resp.status, error: null };
    },
    { origin, name, gathered: WAIT_GATHERED },
  );
  if (whep.status !== 201) throw new Error(`WHEP ${whep.status}: ${whep.error}`);
  const early = Math.max(2, Math.floor(seconds / 3));
  await new Promise((r) => setTimeout(r, early * 1000));
  const first = await page.evaluate(`(${collect})(window.pc)`);
  await new Promise((r) => setTimeout(r, (seconds - early) * 1000));
  const stats = await page.evaluate(`(${collect})(window.pc)`);
  const state = await page.evaluate(() => window.pc.connectionState);
  await page.screenshot({ path: screenshot });
  const deleteStatus = await page.evaluate(
    async () => (await fetch(window.whepLocation, { method: 'DELETE' })).status,
  );
  result = {
    ok: stats.framesDecoded > 0 && deleteStatus === 200,
    framesDecodedEarly: first.framesDecoded,
    totalSamplesReceivedEarly: first.totalSamplesReceived,
    ...stats,
    state,
    whepStatus: whep.status,
    deleteStatus,
    error: null,
  };
} catch (e) {
  result = { ok: false, error: `driver: ${e}` };
} finally {
  if (browser) await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(result.ok ? 0 : 1);
