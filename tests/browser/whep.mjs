// WHIP in, WHEP out, in one headless Chromium: page A publishes the fake
// camera and microphone (H.264, Opus) to ORIGIN/whip/NAME; page B plays
// ORIGIN/whep/NAME in a <video> and reports what it decoded. Both
// sessions are DELETEd at the end.
//
//   node whep.mjs ORIGIN NAME SECONDS SCREENSHOT.png [PUBLISH_TOKEN PLAY_TOKEN]
//
// With tokens, each POST carries `Authorization: Bearer TOKEN` (and each
// DELETE the same): ORIGIN may then be an edge, whose signaling answers
// with a 307 to the origin node, which fetch follows (the report's
// whipUrl/whepUrl are where the sessions were created).
//
// Prints ONE JSON line on stdout:
//
//   {"ok":bool,"framesDecoded":..,"audioPackets":..,"width":..,
//    "pliCount":..,"keyFramesEncoded":..,
//    "whipStatus":..,"whepStatus":..,"deleteStatus":[..],"error":..}
//
// Diagnostics go to stderr. Exit status 0 if ok, else 1 (2 for bad usage).

import { WAIT_GATHERED, launchWebRtc } from './chromium.mjs';

const [origin, name, secondsArg, screenshot, publishToken, playToken] = process.argv.slice(2);
if (!origin || !name || !secondsArg || !screenshot) {
  process.stderr.write('usage: node whep.mjs ORIGIN NAME SECONDS SCREENSHOT.png\n');
  process.exit(2);
}
const log = (...a) => process.stderr.write(`[whep.mjs] ${a.join(' ')}\n`);

/** Waits for ICE gathering to complete (no trickle ICE), at most 3 s. */
const gathered = WAIT_GATHERED;

let result = { ok: false, error: 'not run' };
let browser;
try {
  browser = await launchWebRtc('livestack-whep-');
  const publisher = browser.pages()[0] ?? (await browser.newPage());
  publisher.on('console', (m) => log(`publisher console.${m.type()}: ${m.text()}`));
  await publisher.goto(`${origin}/healthz`);
  const whip = await publisher.evaluate(
    async ({ name, gathered, token }) => {
      const wait = eval(gathered);
      window.token = token;
      const media = await navigator.mediaDevices.getUserMedia({
        video: { width: 640, height: 360, frameRate: 25 },
        audio: true,
      });
      const pc = new RTCPeerConnection();
      window.pc = pc;
      for (const track of media.getTracks()) {
        const t = pc.addTransceiver(track, { direction: 'sendonly' });
        if (track.kind === 'video') {
          t.setCodecPreferences(
            RTCRtpSender.getCapabilities('video').codecs.filter(
              (c) => c.mimeType === 'video/H264' && /packetization-mode=1/.test(c.sdpFmtpLine ?? ''),
            ),
          );
        }
      }
      await pc.setLocalDescription(await pc.createOffer());
      await wait(pc);
      const headers = { 'content-type': 'application/sdp' };
      if (token) headers.authorization = `Bearer ${token}`;
      const resp = await fetch(`/whip/${name}`, {
        method: 'POST',
        headers,
        body: pc.localDescription.sdp,
      });
      const text = await resp.text();
      if (resp.status !== 201) return { status: resp.status, error: text };
      window.whipLocation = new URL(resp.headers.get('location'), resp.url).href;
      await pc.setRemoteDescription({ type: 'answer', sdp: text });
      return { status: resp.status, error: null, url: resp.url };
    },
    { name, gathered, token: publishToken ?? null },
  );
  if (whip.status !== 201) throw new Error(`WHIP ${whip.status}: ${whip.error}`);
  // Let the origin go live (a keyframe in the relay) before the viewer.
  await new Promise((r) => setTimeout(r, 3000));

  const viewer = await browser.newPage();
  viewer.on('console', (m) => log(`viewer console.${m.type()}: ${m.text()}`));
  await viewer.goto(`${origin}/healthz`);
  await viewer.setContent('<video id="v" autoplay muted playsinline width="640" height="360"></video>');
  const whep = await viewer.evaluate(
    async ({ origin, name, gathered, token }) => {
      const wait = eval(gathered);
      window.token = token;
      const pc = new RTCPeerConnection();
      window.pc = pc;
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const stream = new MediaStream();
      pc.ontrack = (e) => {
        stream.addTrack(e.track);
        document.getElementById('v').srcObject = stream;
      };
      await pc.setLocalDescription(await pc.createOffer());
      await wait(pc);
      const headers = { 'content-type': 'application/sdp' };
      if (token) headers.authorization = `Bearer ${token}`;
      const resp = await fetch(`${origin}/whep/${name}`, {
        method: 'POST',
        headers,
        body: pc.localDescription.sdp,
      });
      const text = await resp.text();
      if (resp.status !== 201) return { status: resp.status, error: text };
      window.whepLocation = new URL(resp.headers.get('location'), resp.url).href;
      await pc.setRemoteDescription({ type: 'answer', sdp: text });
      return { status: resp.status, error: null, url: resp.url };
    },
    { origin, name, gathered, token: playToken ?? null },
  );
  if (whep.status !== 201) throw new Error(`WHEP ${whep.status}: ${whep.error}`);
  await new Promise((r) => setTimeout(r, Number(secondsArg) * 1000));
  const stats = await viewer.evaluate(async () => {
    let framesDecoded = 0;
    let audioPackets = 0;
    let width = 0;
    (await window.pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        framesDecoded += s.framesDecoded ?? 0;
        width = s.frameWidth ?? width;
      }
      if (s.type === 'inbound-rtp' && s.kind === 'audio') audioPackets += s.packetsReceived ?? 0;
    });
    return { framesDecoded, audioPackets, width, state: window.pc.connectionState };
  });
  // Keyframe requests the origin forwarded to the publisher (PLI).
  const publisherStats = await publisher.evaluate(async () => {
    let pliCount = 0;
    let keyFramesEncoded = 0;
    (await window.pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        pliCount += s.pliCount ?? 0;
        keyFramesEncoded += s.keyFramesEncoded ?? 0;
      }
    });
    return { pliCount, keyFramesEncoded };
  });
  await viewer.screenshot({ path: screenshot });
  const deleteStatus = [];
  const remove = async () => {
    const headers = window.token ? { authorization: `Bearer ${window.token}` } : {};
    return (await fetch(window.whepLocation ?? window.whipLocation, { method: 'DELETE', headers })).status;
  };
  deleteStatus.push(await viewer.evaluate(remove));
  deleteStatus.push(await publisher.evaluate(remove));
  result = {
    ok: stats.framesDecoded > 0 && deleteStatus.every((s) => s === 200),
    ...stats,
    ...publisherStats,
    whipStatus: whip.status,
    whepStatus: whep.status,
    whipUrl: whip.url,
    whepUrl: whep.url,
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
