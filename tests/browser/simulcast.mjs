// Simulcast in, one layer out, in one headless Chromium: page A publishes
// the fake camera at 1280x720 as three layers (RIDs h, m, l) over WHIP to
// ORIGIN/whip/NAME; page B plays ORIGIN/whep/NAME with the answer's
// candidate rewritten to RELAY (host:port, a UDP relay in front of the
// origin's WebRTC port that the test caps and uncaps), and samples what it
// decodes every 500 ms for SECONDS. Both sessions are DELETEd at the end.
//
//   node simulcast.mjs ORIGIN NAME RELAY SECONDS SCREENSHOT.png
//
// Prints ONE JSON line on stdout:
//
//   {"ok":bool,"samples":[{"t":unix_ms,"width":..,"frames":..}, ...],
//    "error":..}
//
// Diagnostics go to stderr. Exit status 0 if ok, else 1 (2 for bad usage).

import { WAIT_GATHERED, launchWebRtc } from './chromium.mjs';

const [origin, name, relay, secondsArg, screenshot] = process.argv.slice(2);
if (!origin || !name || !relay || !secondsArg || !screenshot) {
  process.stderr.write('usage: node simulcast.mjs ORIGIN NAME RELAY SECONDS SCREENSHOT.png\n');
  process.exit(2);
}
const log = (...a) => process.stderr.write(`[simulcast.mjs] ${a.join(' ')}\n`);

/** An offer/answer exchange of `pc` with `url` (no trickle ICE). */
const exchange = `async (pc, url, rewrite) => {
  await pc.setLocalDescription(await pc.createOffer());
  await (${WAIT_GATHERED})(pc);
  const resp = await fetch(url, {
    method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp,
  });
  let text = await resp.text();
  if (resp.status !== 201) throw new Error(url + ': ' + resp.status + ' ' + text);
  if (rewrite) {
    const [host, port] = rewrite.split(':');
    text = text.replace(/ (\\d+\\.\\d+\\.\\d+\\.\\d+) (\\d+) typ host/g, ' ' + host + ' ' + port + ' typ host');
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
  return new URL(resp.headers.get('location'), resp.url).href;
}`;

let result = { ok: false, error: 'not run' };
let browser;
try {
  browser = await launchWebRtc('livestack-simulcast-');
  const publisher = browser.pages()[0] ?? (await browser.newPage());
  publisher.on('console', (m) => log(`publisher console.${m.type()}: ${m.text()}`));
  await publisher.goto(`${origin}/healthz`);
  await publisher.evaluate(
    async ({ name, exchange }) => {
      const media = await navigator.mediaDevices.getUserMedia({
        video: { width: 1280, height: 720, frameRate: 25 },
        audio: true,
      });
      const pc = new RTCPeerConnection();
      window.pc = pc;
      for (const track of media.getTracks()) {
        const init = { direction: 'sendonly' };
        if (track.kind === 'video') {
          init.sendEncodings = [
            { rid: 'h' },
            { rid: 'm', scaleResolutionDownBy: 2 },
            { rid: 'l', scaleResolutionDownBy: 4 },
          ];
        }
        const t = pc.addTransceiver(track, init);
        if (track.kind === 'video') {
          t.setCodecPreferences(
            RTCRtpSender.getCapabilities('video').codecs.filter(
              (c) => c.mimeType === 'video/H264' && /packetization-mode=1/.test(c.sdpFmtpLine ?? ''),
            ),
          );
        }
      }
      window.location_ = await eval(exchange)(pc, `/whip/${name}`, null);
    },
    { name, exchange },
  );
  // Every layer live before the viewer comes.
  await new Promise((r) => setTimeout(r, 4000));

  const viewer = await browser.newPage();
  viewer.on('console', (m) => log(`viewer console.${m.type()}: ${m.text()}`));
  await viewer.goto(`${origin}/healthz`);
  await viewer.setContent('<video id="v" autoplay muted playsinline width="640" height="360"></video>');
  await viewer.evaluate(
    async ({ name, relay, exchange }) => {
      const pc = new RTCPeerConnection();
      window.pc = pc;
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const stream = new MediaStream();
      pc.ontrack = (e) => {
        stream.addTrack(e.track);
        document.getElementById('v').srcObject = stream;
      };
      window.location_ = await eval(exchange)(pc, `/whep/${name}`, relay);
    },
    { name, relay, exchange },
  );
  const samples = [];
  const end = Date.now() + Number(secondsArg) * 1000;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 500));
    samples.push(
      await viewer.evaluate(async () => {
        let width = 0;
        let frames = 0;
        (await window.pc.getStats()).forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video') {
            width = s.frameWidth ?? 0;
            frames = s.framesDecoded ?? 0;
          }
        });
        return { t: Date.now(), width, frames };
      }),
    );
  }
  await viewer.screenshot({ path: screenshot });
  for (const page of [viewer, publisher]) {
    await page.evaluate(async () => fetch(window.location_, { method: 'DELETE' }).catch(() => {}));
  }
  result = { ok: samples.some((s) => s.frames > 0), samples, error: null };
} catch (e) {
  result = { ok: false, error: `driver: ${e}` };
} finally {
  if (browser) await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(result.ok ? 0 : 1);
