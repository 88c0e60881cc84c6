// Interests, Block, Report and bans on the chat page: real Chromium tabs against
// the real strangers binary. Each tab reaches the matchmaker through its own
// proxy on loopback that names it by another client address (X-Forwarded-For,
// believed from loopback as from a reverse proxy), so that reports come from
// different people.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  WAIT_MS,
  byTestId,
  connectAll,
  createErrorLog,
  formatErrors,
  launchBrowser,
  openPage,
  sendMessage,
  startServer,
  waitForMessage,
  waitForState,
} from './lib/harness.mjs';
import { startProxy } from './lib/proxy.mjs';

const TIMEOUT = { timeout: 90000 };
let browser;
const errors = createErrorLog();

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  assert.equal(errors.entries.length, 0, `console errors:\n${formatErrors(errors.entries)}`);
});

/** A server, and `open(label, address)`: a tab whose client address is `address`. */
async function world(t, env = {}) {
  const server = await startServer({ env: { REMATCH_COOLDOWN_SECS: '0', ...env } });
  const pages = [];
  const proxies = [];
  t.after(async () => {
    await Promise.all(pages.map((p) => p.context().close()));
    await Promise.all(proxies.map((p) => p.close()));
    await server.stop();
  });
  return {
    server,
    async open(label, address) {
      const proxy = await startProxy('127.0.0.1', [
        { listenPort: 0, target: () => ({ host: '127.0.0.1', port: server.port }), forwardedFor: address },
      ]);
      proxies.push(proxy);
      const page = await openPage(browser, `http://127.0.0.1:${proxy.ports[0]}/`, { label: `${t.name}: ${label}`, errors });
      pages.push(page);
      return page;
    },
  };
}

async function addInterest(page, interest) {
  await page.getByTestId('interests').fill(interest);
  await page.getByTestId('interests').press('Enter');
}

const text = (page, id) => page.getByTestId(id).textContent();

test('two tabs that share an interest are told what they both like', TIMEOUT, async (t) => {
  const w = await world(t);
  const a = await w.open('A', '198.51.100.1');
  const b = await w.open('B', '198.51.100.2');
  await addInterest(a, 'Chess');
  await addInterest(a, 'music');
  await addInterest(b, 'chess');
  assert.deepEqual(await a.locator(byTestId('interest-chip')).evaluateAll((els) => els.map((e) => e.dataset.interest)), ['chess', 'music']);
  await connectAll(a, b);
  for (const page of [a, b]) {
    await page.waitForSelector(`${byTestId('common-interests')}:not([hidden])`, { timeout: WAIT_MS });
    assert.equal(await text(page, 'common-interests'), 'You both like: chess');
  }
  // Remembered for the next visit, and removable.
  await a.reload();
  await a.getByTestId('start').waitFor();
  assert.equal(await a.locator(byTestId('interest-chip')).count(), 2);
  await a.locator(`${byTestId('interest-chip')}[data-interest="music"] button`).click();
  assert.equal(await a.locator(byTestId('interest-chip')).count(), 1);
});

test('a tab whose interest nobody shares is told it chats with a random stranger', TIMEOUT, async (t) => {
  const w = await world(t, { INTEREST_WAIT_SECS: '1' });
  const a = await w.open('A', '198.51.100.1');
  const b = await w.open('B', '198.51.100.2');
  await addInterest(a, 'astronomy');
  await connectAll(a, b);
  await a.waitForSelector(`${byTestId('common-interests')}:not([hidden])`, { timeout: WAIT_MS });
  assert.equal(await text(a, 'common-interests'), 'You’re now chatting with a random stranger.');
});

test('Report ends the chat, the reporter searches again, and the two never meet again', TIMEOUT, async (t) => {
  const w = await world(t);
  const a = await w.open('A', '198.51.100.1');
  const b = await w.open('B', '198.51.100.2');
  await connectAll(a, b);
  await sendMessage(b, 'buy my stuff');
  await waitForMessage(a, 'stranger', 'buy my stuff');
  await a.getByTestId('report').click();
  await a.getByTestId('report-reason').selectOption('spam');
  await a.getByTestId('report-submit').click();
  await a.waitForSelector(`${byTestId('status')}[data-state="searching"][data-reason="reported"]`, { timeout: WAIT_MS });
  await b.waitForFunction(() => /stranger left/i.test(document.querySelector('[data-testid="status"]').textContent), null, { timeout: WAIT_MS });
  // Both are searching again, nobody else is there, and no cooldown keeps them apart: only the report does.
  await waitForState(b, 'searching');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await a.getByTestId('status').getAttribute('data-state'), 'searching');
  assert.equal(await b.getByTestId('status').getAttribute('data-state'), 'searching');
  const c = await w.open('C', '198.51.100.3');
  await c.getByTestId('start').click();
  await waitForState(c, 'connected');
});

test('Block ends the chat and the two never meet again', TIMEOUT, async (t) => {
  const w = await world(t);
  const a = await w.open('A', '198.51.100.1');
  const b = await w.open('B', '198.51.100.2');
  await connectAll(a, b);
  await a.getByTestId('block').click();
  await a.waitForSelector(`${byTestId('status')}[data-state="searching"][data-reason="blocked"]`, { timeout: WAIT_MS });
  await b.waitForFunction(() => /stranger left/i.test(document.querySelector('[data-testid="status"]').textContent), null, { timeout: WAIT_MS });
  await waitForState(b, 'searching');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await a.getByTestId('status').getAttribute('data-state'), 'searching');
  assert.equal(await b.getByTestId('status').getAttribute('data-state'), 'searching');
});

test('a tab reported by two others sees that it is banned, with the time left', TIMEOUT, async (t) => {
  const w = await world(t, { REPORT_THRESHOLD: '2' });
  const abuser = await w.open('abuser', '203.0.113.9');
  for (const [label, address] of [['first reporter', '198.51.100.1'], ['second reporter', '198.51.100.2']]) {
    const reporter = await w.open(label, address);
    if ((await abuser.getByTestId('status').getAttribute('data-state')) === 'idle') await abuser.getByTestId('start').click();
    await reporter.getByTestId('start').click();
    await Promise.all([waitForState(abuser, 'connected'), waitForState(reporter, 'connected')]);
    await reporter.getByTestId('report').click();
    await reporter.getByTestId('report-reason').selectOption('harassment');
    await reporter.getByTestId('report-submit').click();
    await reporter.getByTestId('stop').click();
    await reporter.waitForSelector(`${byTestId('status')}[data-state="idle"]`, { timeout: WAIT_MS });
  }
  await abuser.waitForSelector(`${byTestId('banned')}:not([hidden])`, { timeout: WAIT_MS });
  assert.match(await text(abuser, 'banned'), /can’t meet strangers for 60 minutes/);
  await waitForState(abuser, 'idle');
  assert.equal(await abuser.getByTestId('start').isDisabled(), true);
});
