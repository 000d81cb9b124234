// A three-participant SFU room in one headless Chromium: alice, bob and
// carol open ORIGIN/room.html?room=ROOM&name=..&auto=1 (each publishes the
// fake camera and microphone with a data channel and subscribes to the
// others). Then: alice sends a chat message; a fourth page watches bob's
// publication over plain WHEP; bob leaves (DELETE); finally carol's page is
// closed without a word (a crash).
//
//   node room.mjs ORIGIN ROOM SCREENSHOT.png
//
// Prints ONE JSON line on stdout:
//
//   {"ok":bool,
//    "joined": {alice: {bob: {framesDecoded, audioPackets}, carol: ..}, ..},
//    "chat": {bob: bool, carol: bool},
//    "left": {alice: reason|null, carol: reason|null},      // bob left
//    "afterLeave": {alice: [ids subscribed], carol: [..]},
//    "watcher": {framesAtLeave, framesLater},               // WHEP of bob
//    "stillFlowing": {alice: {carol: {before, after}}, carol: {alice: ..}},
//    "crash": {reason, seconds},                            // carol, as alice saw it
//    "speakers": [..], "error": ..}
//
// Diagnostics go to stderr. Exit status 0 if every step ran, else 1
// (2 for bad usage); the Rust test asserts on the numbers.

import { WAIT_GATHERED, launchWebRtc } from './chromium.mjs';

const [origin, room, screenshot] = process.argv.slice(2);
if (!origin || !room || !screenshot) {
  process.stderr.write('usage: node room.mjs ORIGIN ROOM SCREENSHOT.png\n');
  process.exit(2);
}
const log = (...a) => process.stderr.write(`[room.mjs] ${a.join(' ')}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 250 ms until it returns a truthy value, at most `ms`. */
async function until(what, ms, check) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(250);
  }
}

const result = { ok: false, error: null };
let browser;
try {
  browser = await launchWebRtc('livestack-room-');
  const names = ['alice', 'bob', 'carol'];
  const pages = {};
  for (const name of names) {
    const page = await browser.newPage();
    page.on('console', (m) => log(`${name} console.${m.type()}: ${m.text()}`));
    await page.goto(`${origin}/room.html?room=${room}&name=${name}&auto=1`);
    pages[name] = page;
  }
  const stats = (name) => pages[name].evaluate(() => window.roomStats());
  const events = (name) => pages[name].evaluate(() => window.room.events);

  // Everyone receives the other two: video decoded and audio packets.
  result.joined = {};
  for (const name of names) {
    result.joined[name] = await until(`${name} receives the others`, 45000, async () => {
      const s = await stats(name);
      const others = names.filter((n) => n !== name);
      const ok = others.every((o) => s[o] && s[o].framesDecoded >= 25 && s[o].audioPackets > 0);
      return ok ? s : null;
    });
    log(`${name} receives`, JSON.stringify(result.joined[name]));
  }

  // Chat over the data channel.
  await pages.alice.evaluate(() => window.room.channel.send('hello from alice'));
  result.chat = {};
  for (const name of ['bob', 'carol']) {
    result.chat[name] = await until(`${name} gets alice's message`, 10000, async () =>
      (await events(name)).some((e) => e.event === 'message' && e.from === 'alice' && e.text === 'hello from alice'));
  }

  // A plain WHEP viewer of bob's publication (it is a broadcast too).
  const watcher = await browser.newPage();
  await watcher.goto(`${origin}/healthz`);
  await watcher.evaluate(async ({ name, gathered }) => {
    const pc = new RTCPeerConnection();
    window.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await eval(gathered)(pc);
    const resp = await fetch(`/whep/${name}`, {
      method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp,
    });
    const text = await resp.text();
    if (resp.status !== 201) throw new Error(`WHEP ${resp.status} ${text}`);
    await pc.setRemoteDescription({ type: 'answer', sdp: text });
  }, { name: `${room}.bob`, gathered: WAIT_GATHERED });
  const watcherFrames = () => watcher.evaluate(async () => {
    let n = 0;
    for (const r of (await window.pc.getStats()).values()) {
      if (r.type === 'inbound-rtp' && r.kind === 'video') n = r.framesDecoded ?? 0;
    }
    return n;
  });
  await until('the WHEP watcher decodes bob', 30000, async () => (await watcherFrames()) >= 10);

  // Alice and carol, before bob leaves.
  const before = { alice: await stats('alice'), carol: await stats('carol') };

  // Bob leaves: DELETE of his publication.
  await pages.bob.evaluate(() => window.leaveRoom());
  result.left = {};
  for (const name of ['alice', 'carol']) {
    const e = await until(`${name} is told bob left`, 15000, async () =>
      (await events(name)).find((e) => e.event === 'left' && e.participant === 'bob'));
    result.left[name] = e.reason;
  }
  result.afterLeave = {
    alice: Object.keys(await stats('alice')),
    carol: Object.keys(await stats('carol')),
  };
  const framesAtLeave = await watcherFrames();
  await sleep(3000);
  result.watcher = { framesAtLeave, framesLater: await watcherFrames() };

  // Alice and carol still receive each other.
  const after = { alice: await stats('alice'), carol: await stats('carol') };
  result.stillFlowing = {
    alice: { carol: { before: before.alice.carol?.framesDecoded, after: after.alice.carol?.framesDecoded } },
    carol: { alice: { before: before.carol.alice?.framesDecoded, after: after.carol.alice?.framesDecoded } },
  };
  result.speakers = (await events('alice')).filter((e) => e.event === 'speaking').map((e) => e.participant);
  await pages.alice.screenshot({ path: screenshot });

  // Carol crashes: her page goes away without a DELETE.
  const crashed = Date.now();
  await pages.carol.close();
  const e = await until('alice is told carol left', 60000, async () =>
    (await events('alice')).find((e) => e.event === 'left' && e.participant === 'carol'));
  result.crash = { reason: e.reason, seconds: (Date.now() - crashed) / 1000 };
  result.ok = true;
} catch (e) {
  result.error = String(e?.stack ?? e);
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(result.ok ? 0 : 1);
