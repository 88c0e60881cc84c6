// End-to-end behaviour of the chat page: real Chromium tabs against the real
// strangers binary (see lib/harness.mjs). Each test starts its own server so
// nobody is left waiting in a queue that another test uses.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  ARTIFACTS,
  WAIT_MS,
  byTestId,
  connectAll,
  createErrorLog,
  formatErrors,
  isRefusedConnection,
  launchBrowser,
  sendMessage,
  session,
  startServer,
  waitForMessage,
  waitForMetric,
  waitForState,
  waitForStats,
} from './lib/harness.mjs';

const TIMEOUT = { timeout: 90000 };
let browser;
const errors = createErrorLog();

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

test('two strangers who press Start are paired and chat both ways', TIMEOUT, async (t) => {
  const s = await session(t, browser, errors);
  const a = await s.open('A');
  const b = await s.open('B');

  await connectAll(a, b);
  await sendMessage(a, 'hello from A');
  await waitForMessage(a, 'me', 'hello from A');
  await waitForMessage(b, 'stranger', 'hello from A');
  await sendMessage(b, 'hi from B');
  await waitForMessage(a, 'stranger', 'hi from B');
  await waitForMessage(b, 'me', 'hi from B');
  // Each page reported once that its connection opened, directly (host candidates on loopback).
  await waitForMetric(s.url, 'matchmaker_connection_reports_total{outcome="connected"}', (v) => v === 2);
  await waitForMetric(s.url, 'matchmaker_connected_candidates_total{candidate_type="host"}', (v) => v === 2);
  await waitForMetric(s.url, 'matchmaker_connect_seconds_count', (v) => v === 2);
});

test('Next pairs you with the stranger who waited longest and tells the old partner they left', TIMEOUT, async (t) => {
  const s = await session(t, browser, errors);
  const [a, b, c] = [await s.open('A'), await s.open('B'), await s.open('C')];

  await connectAll(a, b);
  await c.getByTestId('start').click();
  await waitForStats(s.url, (st) => st.waiting === 1 && st.rooms >= 1); // C is in the queue

  await a.getByTestId('next').click();
  await Promise.all([waitForState(a, 'connected'), waitForState(c, 'connected')]);
  await sendMessage(a, 'A meets C');
  await waitForMessage(c, 'stranger', 'A meets C');
  await sendMessage(c, 'C meets A');
  await waitForMessage(a, 'stranger', 'C meets A');

  await b.waitForFunction(() => /stranger left/i.test(document.querySelector('[data-testid="status"]').textContent), null, { timeout: WAIT_MS });
  // The old conversation is not carried over to the new stranger.
  assert.equal(await a.locator(`${byTestId('messages')} > [data-author="stranger"]`).count(), 1);
});

test('Stop returns to idle and lets you Start again', TIMEOUT, async (t) => {
  const s = await session(t, browser, errors);
  const a = await s.open('A');
  const b = await s.open('B');

  await connectAll(a, b);
  await a.getByTestId('stop').click();
  await waitForState(a, 'idle');
  assert.equal(await a.getByTestId('start').isEnabled(), true);
  assert.equal(await a.getByTestId('next').isEnabled(), false);
  assert.equal(await a.getByTestId('stop').isEnabled(), false);
  await waitForState(b, 'searching'); // the server requeued B
});

test('Enter sends the message and Shift+Enter starts a new line', TIMEOUT, async (t) => {
  const s = await session(t, browser, errors);
  const a = await s.open('A');
  const b = await s.open('B');

  await connectAll(a, b);
  const input = a.getByTestId('message-input');
  await input.click();
  await input.pressSequentially('line one');
  await input.press('Shift+Enter');
  await input.pressSequentially('line two');
  await input.press('Enter');
  await waitForMessage(b, 'stranger', 'line one\nline two');
  assert.equal(await input.inputValue(), '');
});

test('a stranger cannot inject markup: messages are shown as literal text', TIMEOUT, async (t) => {
  const s = await session(t, browser, errors);
  const a = await s.open('A');
  const b = await s.open('B');
  const hostile = '<img src=x onerror=window.__pwned=1>';

  await connectAll(a, b);
  await sendMessage(a, hostile);
  await sendMessage(a, 'after the hostile one');
  await waitForMessage(b, 'stranger', 'after the hostile one');

  const shown = await b.$$eval(`${byTestId('messages')} > [data-author="stranger"]`, (els) => els.map((el) => el.textContent));
  assert.ok(shown.some((text) => text.includes(hostile)), `hostile text shown literally; got ${JSON.stringify(shown)}`);
  for (const page of [a, b]) {
    assert.equal(await page.locator(`${byTestId('messages')} img`).count(), 0);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
  }
});

test('video mode: each side plays the other side\'s camera', TIMEOUT, async (t) => {
  const s = await session(t, browser, errors);
  const a = await s.open('A', { colorScheme: 'dark' });
  const b = await s.open('B', { viewport: { width: 360, height: 740 } });

  for (const page of [a, b]) {
    await page.getByTestId('video-toggle').click();
    await page.waitForSelector(`${byTestId('video-toggle')}[aria-pressed="true"]`);
  }
  await connectAll(a, b);
  for (const page of [a, b]) {
    await page.waitForFunction(
      () => {
        const v = document.getElementById('remote-video');
        return v && v.readyState >= 2 && !v.paused && v.videoWidth > 0;
      },
      null,
      { timeout: WAIT_MS },
    );
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  await a.screenshot({ path: path.join(ARTIFACTS, 'connected-video-dark.png') });
  await b.screenshot({ path: path.join(ARTIFACTS, 'connected-video-mobile.png') });
});

// Wraps the page's RTCPeerConnection and WebSocket so the test can count live ones.
function countLiveConnections() {
  const track = (Base, list) =>
    class extends Base {
      constructor(...args) {
        super(...args);
        list.push(this);
      }
    };
  window.__pcs = [];
  window.__sockets = [];
  window.RTCPeerConnection = track(window.RTCPeerConnection, window.__pcs);
  window.WebSocket = track(window.WebSocket, window.__sockets);
}

test('pressing Next repeatedly leaks no peer connections or sockets', TIMEOUT, async (t) => {
  // Only two tabs: they may meet again at once only without the rematch cooldown.
  const s = await session(t, browser, errors, { env: { REMATCH_COOLDOWN_SECS: '0' } });
  const a = await s.open('A', { initScript: countLiveConnections });
  const b = await s.open('B');

  await connectAll(a, b);
  // Each click lands as soon as Next is enabled again, i.e. mid-handshake with the rematched stranger.
  for (let i = 0; i < 6; i += 1) await a.getByTestId('next').click();
  await Promise.all([waitForState(a, 'connected'), waitForState(b, 'connected')]);
  await sendMessage(a, 'still one chat');
  await waitForMessage(b, 'stranger', 'still one chat');
  await sendMessage(b, 'and only one');
  await waitForMessage(a, 'stranger', 'and only one');

  const live = await a.evaluate(() => ({
    created: window.__pcs.length,
    pcs: window.__pcs.filter((pc) => pc.signalingState !== 'closed').length,
    sockets: window.__sockets.filter((ws) => ws.readyState <= 1).length,
  }));
  assert.ok(live.created >= 7, `a new peer connection per match (${live.created})`);
  assert.equal(live.pcs, 1, 'one open peer connection');
  assert.equal(live.sockets, 2, 'matchmaker + one signaler socket');
  assert.equal(await a.locator(`${byTestId('messages')} > *`).count(), 2, 'one message each way, nothing from stale matches');
});

test('screenshots of a connected chat (desktop and phone width)', TIMEOUT, async (t) => {
  const s = await session(t, browser, errors);
  const a = await s.open('desktop');
  const b = await s.open('phone', { viewport: { width: 360, height: 740 } });

  await connectAll(a, b);
  const lines = [
    [a, 'Hi! Where are you writing from?'],
    [b, 'Hey! Lisbon. You?'],
    [a, 'Montréal. First time trying this, it connected really fast.'],
    [b, 'Same here. It’s peer-to-peer, so the messages go straight between our browsers.'],
  ];
  for (const [page, text] of lines) {
    await sendMessage(page, text);
    await waitForMessage(page === a ? b : a, 'stranger', text);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  await a.screenshot({ path: path.join(ARTIFACTS, 'connected.png') });
  await b.screenshot({ path: path.join(ARTIFACTS, 'connected-mobile.png') });
});

test('losing the server shows "connection lost" and searching resumes when it is back', TIMEOUT, async (t) => {
  // Its own error log: while the server is down, Chromium itself logs each
  // refused WebSocket handshake as a console error. That is the scenario under
  // test, not normal use, so only exactly those lines are tolerated here.
  const outage = createErrorLog();
  let server = await startServer();
  const port = server.port;
  const contexts = [];
  t.after(async () => {
    await Promise.all(contexts.map((c) => c.close()));
    await server.stop();
  });
  const open = async (label) => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    outage.watch(page, `${t.name}: ${label}`);
    await page.goto(server.url);
    return page;
  };
  const a = await open('A');
  await a.getByTestId('start').click();
  await waitForStats(server.url, (st) => st.waiting === 1);

  await server.stop();
  await waitForState(a, 'reconnecting');
  assert.match(await a.getByTestId('status').textContent(), /connection lost/i);

  server = await startServer({ port });
  const b = await open('B');
  await b.getByTestId('start').click();
  await Promise.all([waitForState(a, 'connected', 30000), waitForState(b, 'connected', 30000)]);

  // Tolerated: refused matchmaker connections (WebSocket, and its long-polling
  // fallback), and a stats poll that was already in flight when the server went away.
  const refusedStats = (e) => /^Failed to load resource: net::ERR_CONNECTION_REFUSED/.test(e.text) && e.location?.url === `http://localhost:${port}/api/stats`;
  const unexpected = outage.entries.filter((e) => !(isRefusedConnection(e, 'localhost', [port]) || (e.kind === 'console' && refusedStats(e))));
  assert.deepEqual(unexpected, [], formatErrors(unexpected));
});

test('no console errors or uncaught exceptions in any page above', () => {
  assert.deepEqual(errors.entries, [], `console errors:\n${formatErrors(errors.entries)}`);
});
