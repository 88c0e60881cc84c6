// Long-polling fallback: a tab on a network that refuses WebSocket upgrades (a proxy answers them
// 403) talks to both services over HTTP long-polling by itself, says so in its status line, and
// chats with a tab that uses WebSockets, both ways.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  byTestId,
  createErrorLog,
  formatErrors,
  launchBrowser,
  openPage,
  sendMessage,
  startServer,
  waitForMessage,
  waitForState,
} from './lib/harness.mjs';
import { refuseWebSockets } from './lib/proxy.mjs';

const TIMEOUT = { timeout: 90000 };
const BLOCKING_HOST = '127.0.0.3';
let browser;
const errors = createErrorLog();

before(async () => {
  browser = await launchBrowser({ hosts: [BLOCKING_HOST] });
});

after(async () => {
  await browser?.close();
});

test('a tab whose WebSockets are refused falls back to long polling and chats with a WebSocket tab', TIMEOUT, async (t) => {
  const server = await startServer({ env: { HOST: '127.0.0.1' } }); // so the proxy may take the same ports on another address
  const blocker = await refuseWebSockets(BLOCKING_HOST, [server.port, server.signalerPort]);
  const pages = [];
  t.after(async () => {
    await Promise.all(pages.map((p) => p.context().close()));
    await blocker.close();
    await server.stop();
  });
  const a = await openPage(browser, `http://${BLOCKING_HOST}:${server.port}/`, { label: 'blocked tab', errors });
  const b = await openPage(browser, `http://127.0.0.1:${server.port}/`, { label: 'websocket tab', errors });
  pages.push(a, b);

  await a.getByTestId('start').click();
  await b.getByTestId('start').click();
  await Promise.all([waitForState(a, 'connected'), waitForState(b, 'connected')]);
  await sendMessage(a, 'hello over long polling');
  await waitForMessage(b, 'stranger', 'hello over long polling');
  await sendMessage(b, 'hello over a websocket');
  await waitForMessage(a, 'stranger', 'hello over a websocket');

  assert.ok(blocker.refused() >= 1, 'the WebSocket upgrade was refused');
  // Both services were reached over /lp (after one refused upgrade the page goes straight to it).
  const polled = await a.evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name)).filter((u) => u.pathname.startsWith('/lp')).map((u) => Number(u.port)));
  assert.ok(polled.includes(server.port) && polled.includes(server.signalerPort), `long polls went to ${[...new Set(polled)]}`);
  const status = a.locator(byTestId('status'));
  assert.equal(await status.getAttribute('data-transport'), 'long-polling');
  assert.match(await status.textContent(), /blocks WebSockets/);
  assert.equal(await b.locator(byTestId('status')).getAttribute('data-transport'), 'websocket');
});

test('no console errors besides the refused WebSockets', () => {
  const refused = new RegExp(`^WebSocket connection to 'ws://${BLOCKING_HOST.replaceAll('.', '\\.')}:\\d+/ws' failed`);
  const unexpected = errors.entries.filter((e) => !(e.kind === 'console' && refused.test(e.text)));
  assert.deepEqual(unexpected, [], formatErrors(unexpected));
});
