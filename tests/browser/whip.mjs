// Publishes Chromium's fake camera and microphone over WHIP (RFC 9725):
// H.264 video, Opus audio, to ORIGIN/whip/NAME for SECONDS, then DELETEs
// the session.
//
//   node whip.mjs ORIGIN NAME SECONDS [simulcast]
//
// `simulcast`: the camera at 1280x720 sent as three layers (RIDs h, m, l
// at full, half and quarter size; Chromium sends all three only from a
// 720p capture).
//
// Prints ONE JSON line on stdout:
//
//   {"ok":bool,"status":..,"location":..,"framesSent":..,"deleteStatus":..,
//    "state":..,"error":..}
//
// Diagnostics go to stderr. Exit status 0 if ok, else 1 (2 for bad usage).

import { WAIT_GATHERED, launchWebRtc } from './chromium.mjs';

const [origin, name, secondsArg, mode] = process.argv.slice(2);
const simulcast = mode === 'simulcast';
if (!origin || !name || !secondsArg) {
  process.stderr.write('usage: node whip.mjs ORIGIN NAME SECONDS\n');
  process.exit(2);
}
const log = (...a) => process.stderr.write(`[whip.mjs] ${a.join(' ')}\n`);

let result = { ok: false, error: 'not run' };
let browser;
try {
  browser = await launchWebRtc('livestack-whip-');
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.on('console', (m) => log(`console.${m.type()}: ${m.text()}`));
  // Any page of the origin: http://127.0.0.1 is a secure context.
  await page.goto(`${origin}/healthz`);
  result = await page.evaluate(
    async ({ name, seconds, simulcast, gathered }) => {
      const media = await navigator.mediaDevices.getUserMedia({
        video: simulcast
          ? { width: 1280, height: 720, frameRate: 25 }
          : { width: 640, height: 360, frameRate: 25 },
        audio: true,
      });
      const pc = new RTCPeerConnection();
      for (const track of media.getTracks()) {
        const init = { direction: 'sendonly' };
        if (simulcast && track.kind === 'video') {
          init.sendEncodings = [
            { rid: 'h' },
            { rid: 'm', scaleResolutionDownBy: 2 },
            { rid: 'l', scaleResolutionDownBy: 4 },
          ];
        }
        const t = pc.addTransceiver(track, init);
        if (track.kind === 'video') {
          const h264 = RTCRtpSender.getCapabilities('video').codecs.filter(
            (c) => c.mimeType === 'video/H264' && /packetization-mode=1/.test(c.sdpFmtpLine ?? ''),
          );
          t.setCodecPreferences(h264);
        }
      }
      await pc.setLocalDescription(await pc.createOffer());
      // No trickle ICE: the offer goes out with every candidate.
      await eval(gathered)(pc);
      const resp = await fetch(`/whip/${name}`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: pc.localDescription.sdp,
      });
      const text = await resp.text();
      if (resp.status !== 201) {
        return { ok: false, status: resp.status, error: text };
      }
      const location = resp.headers.get('location');
      await pc.setRemoteDescription({ type: 'answer', sdp: text });
      await new Promise((r) => setTimeout(r, seconds * 1000));
      let framesSent = 0;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') framesSent += s.framesSent ?? 0;
      });
      const state = pc.connectionState;
      const del = await fetch(location, { method: 'DELETE' });
      pc.close();
      return {
        ok: state === 'connected' && framesSent > 0 && del.status === 200,
        status: resp.status,
        location,
        framesSent,
        deleteStatus: del.status,
        state,
        error: null,
      };
    },
    { name, seconds: Number(secondsArg), simulcast, gathered: WAIT_GATHERED },
  );
} catch (e) {
  result = { ok: false, error: `driver: ${e}` };
} finally {
  if (browser) await browser.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(result.ok ? 0 : 1);
