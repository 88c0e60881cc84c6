// Scale-out in a real browser: two instances of the product on one real redis-server, the first
// stranger's page served by one instance and the second's by the other. They are paired through
// the shared queue, signal through two different signalers, and chat peer to peer.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  WAIT_MS,
  connectAll,
  createErrorLog,
  formatErrors,
  launchBrowser,
  openPage,
  sendMessage,
  startServer,
  waitForMessage,
} from './lib/harness.mjs';
import { startRedis } from './lib/redis.mjs';

const TIMEOUT = { timeout: 90000 };
let browser;
const errors = createErrorLog();

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});


test('a page served by one instance chats with a page served by another', TIMEOUT, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const env = { REDIS_URL: redis.url, ROOM_TICKET_SECRET: 'browser-cluster-secret-browser-cluster-secret' };
  const first = await startServer({ env });
  t.after(() => first.stop());
  const second = await startServer({ env });
  t.after(() => second.stop());
  assert.notEqual(first.port, second.port);

  const a = await openPage(browser, first.url, { label: 'instance 1', errors });
  const b = await openPage(browser, second.url, { label: 'instance 2', errors });

  await connectAll(a, b);
  await sendMessage(a, 'hello across instances');
  await waitForMessage(b, 'stranger', 'hello across instances');
  await sendMessage(b, 'and back again');
  await waitForMessage(a, 'stranger', 'and back again');
  // Close the pages before the servers stop, so they do not try to reconnect.
  await a.context().close();
  await b.context().close();
});

test('no console errors in the cluster pages', () => {
  assert.equal(errors.entries.length, 0, formatErrors(errors.entries));
});
