// Resume (wire contract 1.1): the page recovers from dropped sockets by itself.
//
// 1. A TCP proxy of the test's own sits between ONE tab and both services and
//    cuts that tab's connections without a close frame. The chat goes on with
//    the same stranger; nobody is told the stranger left.
// 2. Two instances on one redis-server behind a switchable balancer: a waiting
//    tab whose instance gets SIGTERM (close code 1012) resumes at once on the
//    other and is paired from there without pressing anything.
//
// The proxied tab reaches the services at 127.0.0.2 on the services' own port
// numbers (they listen on 127.0.0.1 only), so the signaling URL the matchmaker
// builds from the page's Host leads that tab, and only that tab, through the
// proxy too.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  WAIT_MS,
  connectAll,
  createErrorLog,
  formatErrors,
  isRefusedConnection,
  launchBrowser,
  openPage,
  sendMessage,
  startServer,
  waitForMessage,
  waitForState,
  waitForStats,
} from './lib/harness.mjs';
import { startRedis } from './lib/redis.mjs';
import { mirrorPorts, startProxy } from './lib/proxy.mjs';

const PROXY_HOST = '127.0.0.2';
const RUNS = Number(process.env.RESUME_RUNS || 3);
const TIMEOUT = { timeout: 120000 + RUNS * 20000 };
let browser;
const errors = createErrorLog();

before(async () => {
  browser = await launchBrowser({ hosts: [PROXY_HOST] });
});

after(async () => {
  await browser?.close();
});

// Runs in the page before its scripts: records every status line and notice
// text shown, and what the matchmaker socket received and how it closed.
function recordPage() {
  window.__statuses = [];
  window.__notices = [];
  window.__mm = []; // {t, type | close}
  const Base = window.WebSocket;
  window.WebSocket = class extends Base {
    constructor(url, ...rest) {
      super(url, ...rest);
      const mm = new URL(url).pathname === '/ws' && new URL(url).port === location.port;
      if (!mm) return;
      this.addEventListener('message', (ev) => {
        try {
          const msg = JSON.parse(ev.data);
          window.__mm.push({ t: Date.now(), type: msg.type, state: msg.state, code: msg.code });
        } catch {
          /* not JSON */
        }
      });
      this.addEventListener('close', (ev) => window.__mm.push({ t: Date.now(), close: ev.code }));
    }
  };
  document.addEventListener('DOMContentLoaded', () => {
    const status = document.querySelector('[data-testid="status"]');
    const notice = document.querySelector('[data-testid="notice"]');
    const note = () => {
      const last = window.__statuses.at(-1);
      const entry = { t: Date.now(), state: status.dataset.state, text: status.textContent };
      if (!last || last.text !== entry.text || last.state !== entry.state) window.__statuses.push(entry);
    };
    note();
    new MutationObserver(note).observe(status, { attributes: true, childList: true, characterData: true, subtree: true });
    if (!notice) return;
    new MutationObserver(() => {
      window.__notices.push({ t: Date.now(), text: notice.hidden ? '' : notice.textContent });
    }).observe(notice, { attributes: true, childList: true, characterData: true, subtree: true });
  });
}


/** One test's teardown, in order: pages first (clean leaves), then proxies, servers, Redis. */
function teardown(t) {
  const pages = [];
  const proxies = [];
  const servers = [];
  const others = [];
  t.after(async () => {
    await Promise.all(pages.map((p) => p.context().close().catch(() => {})));
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(servers.map((s) => s.stop()));
    for (const f of others) f();
  });
  return {
    page: (p) => (pages.push(p), p),
    proxy: (p) => (proxies.push(p), p),
    server: (s) => (servers.push(s), s),
    other: (f) => others.push(f),
  };
}

const history = (page) => page.evaluate(() => ({ statuses: window.__statuses, notices: window.__notices, mm: window.__mm }));

function summary(times) {
  const sorted = [...times].sort((x, y) => x - y);
  const n = sorted.length;
  const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return `median ${median} ms, min ${sorted[0]} ms, max ${sorted[n - 1]} ms [${times.join(', ')}]`;
}

function assertNeverLeft(h, label) {
  const left = h.statuses.filter((s) => /stranger left/i.test(s.text));
  assert.deepEqual(left, [], `${label} never shows "stranger left"`);
}

test(`a tab whose connections are cut keeps chatting with the same stranger (${RUNS} cuts)`, TIMEOUT, async (t) => {
  const td = teardown(t);
  const server = td.server(await startServer({ env: { HOST: '127.0.0.1' } }));
  assert.ok(server.signalerPort, 'the runner printed its signaler port');
  const proxy = td.proxy(await mirrorPorts(PROXY_HOST, [server.port, server.signalerPort]));

  const a = td.page(await openPage(browser, `http://${PROXY_HOST}:${server.port}/`, { label: 'cut tab', errors, initScript: recordPage }));
  const b = td.page(await openPage(browser, `http://127.0.0.1:${server.port}/`, { label: 'direct tab', errors, initScript: recordPage }));

  await connectAll(a, b);
  await sendMessage(a, 'before the cut, from A');
  await waitForMessage(b, 'stranger', 'before the cut, from A');
  await sendMessage(b, 'before the cut, from B');
  await waitForMessage(a, 'stranger', 'before the cut, from B');
  assert.ok(proxy.open >= 2, `the cut tab's matchmaker and signaler sockets go through the proxy (${proxy.open})`);

  const resumedAfter = [];
  const chatAfter = [];
  for (let run = 0; run < RUNS; run += 1) {
    const since = Date.now();
    const cut = proxy.cut();
    assert.ok(cut >= 2, `run ${run}: cut ${cut} connections`);
    const t0 = Date.now();
    // The chat works again: a message each way, after the cut.
    await sendMessage(a, `after cut ${run}, from A`);
    await waitForMessage(b, 'stranger', `after cut ${run}, from A`);
    await sendMessage(b, `after cut ${run}, from B`);
    await waitForMessage(a, 'stranger', `after cut ${run}, from B`);
    chatAfter.push(Date.now() - t0);
    // And the matchmaker resumed: `resumed` (matched) received, state connected again.
    await a.waitForFunction(
      (s) => window.__mm.some((e) => e.t >= s && e.type === 'resumed' && e.state === 'matched'),
      since,
      { timeout: WAIT_MS },
    );
    await waitForState(a, 'connected');
    await a.waitForFunction(() => !document.querySelector('[data-testid="send"]').disabled);
    const h = await history(a);
    const back = h.statuses.find((s) => s.t >= since && s.state === 'connected');
    resumedAfter.push(back.t - t0);
    // The other tab's notice about the blip is gone again once both sockets are back.
    await b.waitForFunction(() => document.querySelector('[data-testid="notice"]').hidden, null, { timeout: WAIT_MS });
    assert.ok(proxy.open >= 2, `run ${run}: both sockets are back through the proxy (${proxy.open})`);
  }

  // Still one room, the same two people, nothing lost on screen.
  const stats = await waitForStats(server.url, (st) => st.rooms === 1 && st.waiting === 0);
  assert.equal(stats.rooms, 1);
  for (const [page, label] of [
    [a, 'cut tab'],
    [b, 'direct tab'],
  ]) {
    const texts = await page.$$eval('[data-testid="messages"] > *', (els) => els.map((el) => el.textContent));
    assert.ok(texts.some((x) => x.includes('before the cut, from A')), `${label}: the conversation stayed on screen`);
    assert.equal(texts.length, 2 + 2 * RUNS, `${label}: every message shown once`);
    assertNeverLeft(await history(page), label);
  }
  const ha = await history(a);
  const hb = await history(b);
  const sawReconnecting = ha.statuses.some((s) => s.state === 'reconnecting' && /reconnecting…/i.test(s.text));
  const sawUnstable = hb.notices.some((n) => /connection is unstable/i.test(n.text));
  assert.ok(sawReconnecting || sawUnstable, 'the cut tab said "reconnecting…" or the other tab said the connection is unstable');
  assert.equal(ha.mm.filter((e) => e.type === 'matched').length, 1 + RUNS, 'one match, and one fresh matched per resume');
  assert.equal(ha.mm.filter((e) => e.code === 'resume-failed').length, 0, 'no resume failed');

  t.diagnostic(`cut -> message each way: ${summary(chatAfter)}`);
  t.diagnostic(`cut -> cut tab connected again (matchmaker resumed): ${summary(resumedAfter)}`);
  t.diagnostic(`cut tab showed "reconnecting…": ${sawReconnecting}; other tab showed "unstable": ${sawUnstable}`);
});

test('an outage of a few seconds: retried with backoff and resumed within the grace window', TIMEOUT, async (t) => {
  const td = teardown(t);
  // Its own error log: Chromium logs each refused WebSocket handshake during the
  // outage as a console error. Only exactly those lines are tolerated here.
  const outage = createErrorLog();
  const server = td.server(await startServer({ env: { HOST: '127.0.0.1' } }));
  const proxy = td.proxy(await mirrorPorts(PROXY_HOST, [server.port, server.signalerPort]));
  const a = td.page(await openPage(browser, `http://${PROXY_HOST}:${server.port}/`, { label: 'outage tab', errors: outage, initScript: recordPage }));
  const b = td.page(await openPage(browser, `http://127.0.0.1:${server.port}/`, { label: 'direct tab', errors: outage, initScript: recordPage }));

  await connectAll(a, b);
  await sendMessage(a, 'before the outage');
  await waitForMessage(b, 'stranger', 'before the outage');

  proxy.refusing = true;
  const since = Date.now();
  proxy.cut();
  await waitForState(a, 'reconnecting');
  await b.waitForFunction(() => /connection is unstable/i.test(document.querySelector('[data-testid="notice"]').textContent), null, { timeout: WAIT_MS });
  // The peer connection does not need the servers: the chat goes on meanwhile.
  await sendMessage(a, 'during the outage, from A');
  await waitForMessage(b, 'stranger', 'during the outage, from A');
  await sendMessage(b, 'during the outage, from B');
  await waitForMessage(a, 'stranger', 'during the outage, from B');
  await new Promise((r) => setTimeout(r, 3000));
  proxy.refusing = false;
  const t0 = Date.now();
  await waitForState(a, 'connected');
  const back = Date.now() - t0;
  await b.waitForFunction(() => document.querySelector('[data-testid="notice"]').hidden, null, { timeout: WAIT_MS });
  await sendMessage(b, 'after the outage');
  await waitForMessage(a, 'stranger', 'after the outage');

  const h = await history(a);
  const closes = h.mm.filter((e) => e.t >= since && e.close !== undefined).length;
  assert.ok(closes >= 2, `retried during the outage (${closes} failed connections)`);
  assert.ok(h.mm.some((e) => e.t >= since && e.type === 'resumed' && e.state === 'matched'), 'resumed the same match');
  assertNeverLeft(h, 'outage tab');
  assertNeverLeft(await history(b), 'direct tab');
  assert.equal(await a.locator('[data-testid="messages"] > *').count(), 4, 'the conversation stayed on screen');

  const unexpected = outage.entries.filter((e) => !isRefusedConnection(e, PROXY_HOST, [server.port, server.signalerPort]));
  assert.deepEqual(unexpected, [], formatErrors(unexpected));
  t.diagnostic(`outage of 3 s: ${closes} matchmaker attempts failed; network back -> connected again: ${back} ms`);
});

// ---- drain: two instances on one Redis --------------------------------------


test('a waiting tab whose instance drains (1012) resumes on the other at once and is paired from there', TIMEOUT, async (t) => {
  const td = teardown(t);
  const redis = await startRedis();
  td.other(() => redis.stop());
  const env = { REDIS_URL: redis.url, ROOM_TICKET_SECRET: 'browser-resume-secret-browser-resume-secret', HOST: '127.0.0.1' };
  const first = td.server(await startServer({ env }));
  const second = td.server(await startServer({ env }));

  // The load balancer: new connections go to the instance in rotation.
  let upstream = first.port;
  const balancer = td.proxy(await startProxy('127.0.0.1', [{ listenPort: 0, target: () => ({ host: '127.0.0.1', port: upstream }) }]));
  const lbUrl = `http://127.0.0.1:${balancer.ports[0]}/`;

  const a = td.page(await openPage(browser, lbUrl, { label: 'drained tab', errors, initScript: recordPage }));
  await a.getByTestId('start').click();
  await waitForStats(first.url, (st) => st.waiting === 1);

  // Take the first instance out of rotation and stop it, as a deploy does.
  upstream = second.port;
  const t0 = Date.now();
  const stopped = first.stop();
  await a.waitForFunction(() => window.__mm.some((e) => e.type === 'resumed'), null, { timeout: WAIT_MS });
  const h = await history(a);
  const closed = h.mm.find((e) => e.close !== undefined);
  const resumed = h.mm.find((e) => e.type === 'resumed');
  assert.equal(closed.close, 1012, 'the draining instance closed the waiting tab with 1012');
  assert.equal(resumed.state, 'queued', 'the tab kept its place in the queue');
  assert.ok(resumed.t - closed.t < 1000, `reconnected at once (${resumed.t - closed.t} ms)`);
  await stopped;

  const b = td.page(await openPage(browser, second.url, { label: 'other instance', errors }));
  await b.getByTestId('start').click();
  await Promise.all([waitForState(a, 'connected'), waitForState(b, 'connected')]);
  await sendMessage(a, 'hello after the drain');
  await waitForMessage(b, 'stranger', 'hello after the drain');
  await sendMessage(b, 'welcome to instance two');
  await waitForMessage(a, 'stranger', 'welcome to instance two');
  assertNeverLeft(await history(a), 'drained tab');
  t.diagnostic(`matchmaker events: ${JSON.stringify(h.mm.map((e) => ({ ...e, t: e.t - t0 })))}`);
  t.diagnostic(`SIGTERM -> 1012 close: ${closed.t - t0} ms; 1012 close -> resumed on the other instance: ${resumed.t - closed.t} ms`);
  await a.context().close();
  await b.context().close();
});

test('no console errors in the resume pages', () => {
  assert.deepEqual(errors.entries, [], formatErrors(errors.entries));
});
